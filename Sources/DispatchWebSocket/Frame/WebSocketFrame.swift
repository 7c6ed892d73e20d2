/// One WebSocket frame (RFC 6455 §5.2) as a value: the header fields and the *unmasked* payload.
///
/// Applications meet frames when ``WebSocketConfiguration/assembleFragments`` is off (each data
/// frame is delivered as it arrives) and when they send raw frames with
/// ``WebSocketConnection/sendFrame(_:completion:)``.
///
/// ```swift
/// let frame = WebSocketFrame(fin: false, opcode: .text, payload: Array("Hel".utf8))
/// let wire = frame.encoded()   // header + payload, masked if `maskingKey` is set
/// ```
public struct WebSocketFrame: Sendable, Hashable {
    /// Whether this is the last frame of a message.
    public var fin: Bool
    /// The first reserved bit (RSV1), which permessage-deflate sets on the first frame of a compressed
    /// message. Reserved bits must be clear unless an extension gives them a meaning.
    public var rsv1: Bool
    /// The second reserved bit; no extension here uses it.
    public var rsv2: Bool
    /// The third reserved bit; no extension here uses it.
    public var rsv3: Bool
    /// What the frame carries.
    public var opcode: WebSocketOpcode
    /// The key the payload is (or will be) masked with on the wire; `nil` for an unmasked frame.
    public var maskingKey: WebSocketMaskingKey?
    /// The payload, unmasked.
    public var payload: [UInt8]

    /// Whether the frame is masked on the wire.
    public var isMasked: Bool { maskingKey != nil }

    /// Creates a frame; the payload is given unmasked.
    public init(
        fin: Bool = true, rsv1: Bool = false, rsv2: Bool = false, rsv3: Bool = false,
        opcode: WebSocketOpcode, maskingKey: WebSocketMaskingKey? = nil, payload: [UInt8] = []
    ) {
        self.fin = fin
        self.rsv1 = rsv1
        self.rsv2 = rsv2
        self.rsv3 = rsv3
        self.opcode = opcode
        self.maskingKey = maskingKey
        self.payload = payload
    }

    var rsvBits: UInt8 { (rsv1 ? 0x40 : 0) | (rsv2 ? 0x20 : 0) | (rsv3 ? 0x10 : 0) }

    var header: FrameHeader {
        FrameHeader(fin: fin, rsv: rsvBits, opcode: opcode, maskingKey: maskingKey, payloadLength: payload.count)
    }

    /// The frame as it goes on the wire: header (minimal length encoding) and payload, masked
    /// with ``maskingKey`` when it is set.
    public func encoded() -> [UInt8] {
        let header = self.header
        let headerSize = header.encodedSize
        return [UInt8](unsafeUninitializedCapacity: headerSize + payload.count) { buffer, count in
            let base = UnsafeMutableRawPointer(buffer.baseAddress!)
            header.write(to: base)
            let body = UnsafeMutableRawBufferPointer(start: base + headerSize, count: payload.count)
            payload.withUnsafeBytes { source in
                if let key = maskingKey {
                    key.mask(source, into: body)
                } else if source.count > 0 {
                    body.copyMemory(from: source)
                }
            }
            count = headerSize + payload.count
        }
    }
}
