/// The payload of a close frame (RFC 6455 §5.5.1): nothing, or a status code and a UTF-8 reason.
enum ClosePayload {
    /// Parses a received close payload. A code must be valid on the wire and the reason valid UTF-8.
    static func parse(_ payload: UnsafeRawBufferPointer) -> Result<(code: WebSocketCloseCode?, reason: String), ClosePayloadError> {
        if payload.isEmpty { return .success((nil, "")) }
        guard payload.count >= 2 else { return .failure(.truncatedCode) }
        let code = WebSocketCloseCode(rawValue: UInt16(payload[0]) << 8 | UInt16(payload[1]))
        guard code.isValidOnWire else { return .failure(.invalidCode(code.rawValue)) }
        let reason = UnsafeRawBufferPointer(rebasing: payload[2...])
        guard UTF8Validator.isValid(reason) else { return .failure(.invalidUTF8Reason) }
        return .success((code, String(decoding: reason, as: UTF8.self)))
    }

    /// Encodes a code and a reason, truncating the reason at a character boundary so the payload
    /// stays within the 125 bytes of a control frame.
    static func encode(code: WebSocketCloseCode, reason: String) -> [UInt8] {
        var payload: [UInt8] = [UInt8(code.rawValue >> 8), UInt8(code.rawValue & 0xFF)]
        var utf8 = Array(reason.utf8)
        if utf8.count > 123 {
            var end = 123
            while end > 0 && utf8[end] & 0xC0 == 0x80 { end -= 1 }  // do not cut a scalar in half
            utf8.removeSubrange(end...)
        }
        payload += utf8
        return payload
    }
}

/// Why a received close payload is invalid.
enum ClosePayloadError: Error, Equatable, CustomStringConvertible {
    case truncatedCode
    case invalidCode(UInt16)
    case invalidUTF8Reason

    var description: String {
        switch self {
        case .truncatedCode: return "a 1-byte close payload"
        case .invalidCode(let code): return "close code \(code) may not be sent"
        case .invalidUTF8Reason: return "the close reason is not valid UTF-8"
        }
    }
}
