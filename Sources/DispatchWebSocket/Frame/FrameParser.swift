/// Receives what ``FrameParser`` finds, as it finds it.
///
/// Each method returns `false` to stop parsing (the connection failed or closed); the parser then
/// reports how far it got and must not be fed again.
protocol FrameParserDelegate {
    /// A complete header arrived; the payload follows in `framePayload` calls.
    mutating func frameHeader(_ header: FrameHeader) -> Bool
    /// Unmasked payload bytes of the current frame. `isEnd` marks the last chunk; a frame with an
    /// empty payload gets exactly one empty chunk with `isEnd` set. The memory is only valid
    /// during the call.
    mutating func framePayload(_ chunk: UnsafeMutableRawBufferPointer, isEnd: Bool) -> Bool
    /// The header is malformed (a 64-bit length with its most significant bit set).
    mutating func frameError(_ reason: String)
}

/// An incremental frame parser (RFC 6455 §5.2) that streams payloads instead of buffering them.
///
/// It copes with a frame split at any byte and with many frames in one read. Payload bytes are
/// unmasked in place and handed on in the chunks they arrived in, so a large frame is never
/// copied into an intermediate buffer and only an incomplete *header* (at most 14 bytes) is kept
/// between reads. Protocol rules (which opcodes, masking, sizes) are the delegate's business.
struct FrameParser {
    /// Bytes of a header split across reads.
    private var pendingHeader: (UInt64, UInt64) = (0, 0)
    private var pendingHeaderCount = 0
    private var inPayload = false
    private var remaining = 0
    private var maskingKey: WebSocketMaskingKey?
    private var maskOffset = 0

    init() {}

    /// True between frames (no partial header or payload pending).
    var isAtFrameBoundary: Bool { !inPayload && pendingHeaderCount == 0 }

    /// Parses `buffer` and returns the number of bytes consumed: all of them, unless the delegate
    /// stopped the parse or reported an error.
    mutating func parse<D: FrameParserDelegate>(_ buffer: UnsafeMutableRawBufferPointer, delegate: inout D) -> Int {
        guard let base = buffer.baseAddress else { return 0 }
        let end = buffer.count
        var index = 0
        while true {
            if inPayload {
                let n = min(remaining, end - index)
                if n == 0 && remaining > 0 { return index }
                let chunk = UnsafeMutableRawBufferPointer(start: base + index, count: n)
                if let key = maskingKey {
                    key.unmask(chunk, offset: maskOffset)
                    maskOffset = (maskOffset + n) & 3
                }
                index += n
                remaining -= n
                let isEnd = remaining == 0
                if isEnd { inPayload = false }
                guard delegate.framePayload(chunk, isEnd: isEnd) else { return index }
                continue
            }
            if index == end { return index }

            let header: FrameHeader
            if pendingHeaderCount == 0,
                case (let parsed, let size)? = Self.decodeHeader(base + index, available: end - index)
            {
                // The common case: the whole header is in this read.
                switch parsed {
                case .success(let h): header = h
                case .failure(let error):
                    delegate.frameError(error.reason)
                    return index
                }
                index += size
            } else {
                // Accumulate a split header byte by byte (it is at most 14 bytes).
                var complete: Result<FrameHeader, FrameHeaderError>?
                withUnsafeMutableBytes(of: &pendingHeader) { storage in
                    while index < end && complete == nil {
                        storage[pendingHeaderCount] = base.load(fromByteOffset: index, as: UInt8.self)
                        pendingHeaderCount += 1
                        index += 1
                        if case (let parsed, _)? = Self.decodeHeader(
                            storage.baseAddress!, available: pendingHeaderCount)
                        {
                            complete = parsed
                        }
                    }
                }
                guard let complete else { return index }
                pendingHeaderCount = 0
                switch complete {
                case .success(let h): header = h
                case .failure(let error):
                    delegate.frameError(error.reason)
                    return index
                }
            }
            inPayload = true
            remaining = header.payloadLength
            maskingKey = header.maskingKey
            maskOffset = 0
            guard delegate.frameHeader(header) else { return index }
            if remaining == 0 {
                inPayload = false
                guard delegate.framePayload(UnsafeMutableRawBufferPointer(start: base + index, count: 0), isEnd: true)
                else {
                    return index
                }
            }
        }
    }

    /// Why a header is malformed.
    struct FrameHeaderError: Error, Equatable {
        let reason: String
    }

    /// Decodes a header from `available` contiguous bytes: nil when more bytes are needed,
    /// otherwise the header (or why it is malformed) and its size on the wire.
    static func decodeHeader(_ p: UnsafeRawPointer, available: Int) -> (Result<FrameHeader, FrameHeaderError>, Int)? {
        guard available >= 2 else { return nil }
        let b0 = p.load(as: UInt8.self)
        let b1 = p.load(fromByteOffset: 1, as: UInt8.self)
        let masked = b1 & 0x80 != 0
        let shortLength = Int(b1 & 0x7F)
        let lengthBytes = shortLength == 127 ? 8 : (shortLength == 126 ? 2 : 0)
        let size = 2 + lengthBytes + (masked ? 4 : 0)
        guard available >= size else { return nil }
        let length: Int
        switch lengthBytes {
        case 0:
            length = shortLength
        case 2:
            length = Int(UInt16(bigEndian: p.loadUnaligned(fromByteOffset: 2, as: UInt16.self)))
        default:
            let wide = UInt64(bigEndian: p.loadUnaligned(fromByteOffset: 2, as: UInt64.self))
            guard wide <= UInt64(Int.max) else {
                return (
                    .failure(FrameHeaderError(reason: "64-bit payload length has its most significant bit set")), size
                )
            }
            length = Int(wide)
        }
        var key: WebSocketMaskingKey?
        if masked {
            let k = 2 + lengthBytes
            key = WebSocketMaskingKey(
                p.load(fromByteOffset: k, as: UInt8.self), p.load(fromByteOffset: k + 1, as: UInt8.self),
                p.load(fromByteOffset: k + 2, as: UInt8.self), p.load(fromByteOffset: k + 3, as: UInt8.self))
        }
        let header = FrameHeader(
            fin: b0 & 0x80 != 0, rsv: b0 & 0x70, opcode: WebSocketOpcode(uncheckedRawValue: b0 & 0x0F),
            maskingKey: key, payloadLength: length)
        return (.success(header), size)
    }
}
