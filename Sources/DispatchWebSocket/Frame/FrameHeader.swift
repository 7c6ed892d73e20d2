/// The fixed part of a frame (RFC 6455 §5.2): everything but the payload bytes.
///
/// The encoder writes it into caller-provided memory so the payload can follow as a separate
/// iovec; the parser fills it in incrementally.
struct FrameHeader: Equatable, Sendable {
    /// The largest header: 2 bytes, 8 bytes of extended length, 4 bytes of masking key.
    static let maxSize = 14

    var fin: Bool
    /// RSV1…RSV3 as the bits 0x40, 0x20, 0x10 of the first byte.
    var rsv: UInt8
    var opcode: WebSocketOpcode
    var maskingKey: WebSocketMaskingKey?
    var payloadLength: Int

    init(
        fin: Bool = true, rsv: UInt8 = 0, opcode: WebSocketOpcode, maskingKey: WebSocketMaskingKey? = nil,
        payloadLength: Int
    ) {
        self.fin = fin
        self.rsv = rsv
        self.opcode = opcode
        self.maskingKey = maskingKey
        self.payloadLength = payloadLength
    }

    /// Bytes this header takes on the wire.
    var encodedSize: Int {
        let lengthBytes = payloadLength < 126 ? 0 : (payloadLength <= 0xFFFF ? 2 : 8)
        return 2 + lengthBytes + (maskingKey == nil ? 0 : 4)
    }

    /// Writes the header (minimal length encoding) and returns the number of bytes written.
    /// `buffer` must have room for `FrameHeader.maxSize` bytes.
    @discardableResult
    func write(to buffer: UnsafeMutableRawPointer) -> Int {
        buffer.storeBytes(of: (fin ? 0x80 : 0) | (rsv & 0x70) | opcode.rawValue, as: UInt8.self)
        let maskBit: UInt8 = maskingKey == nil ? 0 : 0x80
        var offset: Int
        if payloadLength < 126 {
            buffer.storeBytes(of: maskBit | UInt8(payloadLength), toByteOffset: 1, as: UInt8.self)
            offset = 2
        } else if payloadLength <= 0xFFFF {
            buffer.storeBytes(of: maskBit | 126, toByteOffset: 1, as: UInt8.self)
            buffer.storeBytes(of: UInt16(payloadLength).bigEndian, toByteOffset: 2, as: UInt16.self)
            offset = 4
        } else {
            buffer.storeBytes(of: maskBit | 127, toByteOffset: 1, as: UInt8.self)
            buffer.storeBytes(of: UInt64(payloadLength).bigEndian, toByteOffset: 2, as: UInt64.self)
            offset = 10
        }
        if let key = maskingKey {
            let b = key.bytes
            buffer.storeBytes(of: b.0, toByteOffset: offset, as: UInt8.self)
            buffer.storeBytes(of: b.1, toByteOffset: offset + 1, as: UInt8.self)
            buffer.storeBytes(of: b.2, toByteOffset: offset + 2, as: UInt8.self)
            buffer.storeBytes(of: b.3, toByteOffset: offset + 3, as: UInt8.self)
            offset += 4
        }
        return offset
    }

    /// The header as an array, for tests and the public encoder.
    var bytes: [UInt8] {
        [UInt8](unsafeUninitializedCapacity: FrameHeader.maxSize) { buffer, count in
            count = write(to: UnsafeMutableRawPointer(buffer.baseAddress!))
        }
    }
}
