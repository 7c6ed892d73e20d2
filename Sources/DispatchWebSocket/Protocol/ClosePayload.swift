/// The payload of a close frame (RFC 6455 §5.5.1): empty, or a 2-byte big-endian status code
/// followed by a UTF-8 reason. A control frame carries at most 125 bytes, so at most 123 for
/// the reason.
enum ClosePayload {
    /// The longest reason that fits a control frame next to the code.
    static let maxReasonByteCount = 123

    /// Parses a received close frame payload.
    ///
    /// - Returns: `(nil, "")` for an empty payload; otherwise the code, which must be
    ///   ``WebSocketCloseCode/isValidOnWire``, and the reason, which must be valid UTF-8
    ///   (§5.5.1, §8.1). A 1-byte payload cannot hold a code and is an error. Every failure is a
    ///   reason to fail the connection with 1002.
    static func parse(_ payload: UnsafeRawBufferPointer) -> Result<
        (code: WebSocketCloseCode?, reason: String), ClosePayloadError
    > {
        switch payload.count {
        case 0: return .success((nil, ""))
        case 1: return .failure(.truncatedCode)
        default: break
        }
        let code = WebSocketCloseCode(rawValue: UInt16(payload[0]) &<< 8 | UInt16(payload[1]))
        guard code.isValidOnWire else { return .failure(.invalidCode(code.rawValue)) }
        let reason = UnsafeRawBufferPointer(rebasing: payload[2...])
        guard UTF8Validator.isValid(reason) else { return .failure(.invalidUTF8Reason) }
        return .success((code, String(decoding: reason, as: UTF8.self)))
    }

    /// Encodes `code` and `reason` as a close payload.
    ///
    /// The reason is truncated to at most 123 bytes, cutting before the scalar that would not
    /// fit, so the frame stays a legal control frame and the reason stays valid UTF-8. The code
    /// is written as given; callers decide whether it may be sent.
    static func encode(code: WebSocketCloseCode, reason: String) -> [UInt8] {
        let utf8 = reason.utf8
        var end = utf8.index(utf8.startIndex, offsetBy: maxReasonByteCount, limitedBy: utf8.endIndex) ?? utf8.endIndex
        // `end` is the first byte left out; if it continues a scalar, back up to that scalar's start.
        while end != utf8.endIndex && end != utf8.startIndex && utf8[end] & 0xC0 == 0x80 {
            utf8.formIndex(before: &end)
        }
        var payload: [UInt8] = []
        payload.reserveCapacity(2 + utf8.distance(from: utf8.startIndex, to: end))
        payload.append(UInt8(truncatingIfNeeded: code.rawValue &>> 8))
        payload.append(UInt8(truncatingIfNeeded: code.rawValue))
        payload.append(contentsOf: utf8[..<end])
        return payload
    }
}

/// Why a received close payload is invalid; each one fails the connection with 1002.
enum ClosePayloadError: Error, Equatable, CustomStringConvertible {
    /// A 1-byte payload: too short for a status code.
    case truncatedCode
    /// A status code that must not appear on the wire (see ``WebSocketCloseCode/isValidOnWire``).
    case invalidCode(UInt16)
    /// The reason is not valid UTF-8.
    case invalidUTF8Reason

    /// A short explanation for logs and error reports.
    var description: String {
        switch self {
        case .truncatedCode: return "a 1-byte close payload"
        case .invalidCode(let code): return "close code \(code) is not allowed on the wire"
        case .invalidUTF8Reason: return "the close reason is not valid UTF-8"
        }
    }
}
