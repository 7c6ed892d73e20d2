/// The 4-byte masking key of a frame (RFC 6455 §5.3).
///
/// Clients mask every frame they send with a fresh random key so that a script cannot choose
/// the bytes that appear on the wire (§10.3); servers unmask every frame they receive. Masking
/// is an XOR with the key repeated over the payload, so applying it twice restores the input.
///
/// The key is read back with ``bytes`` (a tuple in wire order).
public struct WebSocketMaskingKey: Sendable, Hashable, CustomStringConvertible {
    /// The key bytes in memory order: storing this word writes them in wire order, on any
    /// endianness. Kept as one word so building the 8-byte XOR pattern is a few register ops.
    private let word: UInt32

    /// Creates a key from its four bytes in wire order.
    public init(_ b0: UInt8, _ b1: UInt8, _ b2: UInt8, _ b3: UInt8) {
        // `numeric` holds b0 in its low byte; `.littleEndian` turns that into memory order.
        let numeric = UInt32(b0) | UInt32(b1) &<< 8 | UInt32(b2) &<< 16 | UInt32(b3) &<< 24
        word = numeric.littleEndian
    }

    /// Creates a key from a collection of exactly four bytes (wire order), or `nil` for any other
    /// count, so a key can be taken straight from a header slice.
    public init?<C: Collection>(_ bytes: C) where C.Element == UInt8 {
        var iterator = bytes.makeIterator()
        guard let b0 = iterator.next(), let b1 = iterator.next(), let b2 = iterator.next(),
            let b3 = iterator.next(), iterator.next() == nil
        else { return nil }
        self.init(b0, b1, b2, b3)
    }

    /// The four key bytes in wire order, as they follow the payload length in a frame header.
    public var bytes: (UInt8, UInt8, UInt8, UInt8) {
        let numeric = UInt32(littleEndian: word)
        return (
            UInt8(truncatingIfNeeded: numeric), UInt8(truncatingIfNeeded: numeric &>> 8),
            UInt8(truncatingIfNeeded: numeric &>> 16), UInt8(truncatingIfNeeded: numeric &>> 24)
        )
    }

    /// A key drawn from `generator`; lets tests and pooled random sources supply the entropy.
    public static func random<G: RandomNumberGenerator>(using generator: inout G) -> WebSocketMaskingKey {
        let value = UInt32(truncatingIfNeeded: generator.next())
        return WebSocketMaskingKey(
            UInt8(truncatingIfNeeded: value), UInt8(truncatingIfNeeded: value &>> 8),
            UInt8(truncatingIfNeeded: value &>> 16), UInt8(truncatingIfNeeded: value &>> 24))
    }

    /// A key from the system's cryptographically secure generator, as §5.3 requires
    /// ("derived from a strong source of entropy").
    public static func random() -> WebSocketMaskingKey {
        var generator = SystemRandomNumberGenerator()
        return random(using: &generator)
    }

    /// The key as eight lowercase hex digits in wire order, e.g. `37fa213d`.
    public var description: String {
        let digits: [UInt8] = Array("0123456789abcdef".utf8)
        let b = bytes
        var text: [UInt8] = []
        text.reserveCapacity(8)
        for byte in [b.0, b.1, b.2, b.3] {
            text.append(digits[Int(byte &>> 4)])
            text.append(digits[Int(byte & 0x0F)])
        }
        return String(decoding: text, as: UTF8.self)
    }

    /// XORs `buffer` in place, byte `i` with key byte `(offset + i) % 4`.
    ///
    /// Masking and unmasking are the same operation. `offset` is the number of payload bytes
    /// already processed, so a frame's payload can be unmasked in the chunks it arrives in.
    func unmask(_ buffer: UnsafeMutableRawBufferPointer, offset: Int = 0) {
        guard let base = buffer.baseAddress else { return }
        xor(from: UnsafeRawPointer(base), to: base, count: buffer.count, offset: offset)
    }

    /// Writes `dst[i] = src[i] ^ key[(offset + i) % 4]` for every byte of `src`.
    ///
    /// Copying while masking saves a pass over the payload when a client builds a frame.
    /// `dst` must hold at least `src.count` bytes; it may be the very same memory as `src`
    /// (but must not overlap it at a different address). Bytes of `dst` past `src.count` are
    /// left untouched.
    func mask(_ src: UnsafeRawBufferPointer, into dst: UnsafeMutableRawBufferPointer, offset: Int = 0) {
        precondition(dst.count >= src.count, "WebSocketMaskingKey.mask: destination is smaller than the source")
        guard let source = src.baseAddress, let destination = dst.baseAddress else { return }
        xor(from: source, to: destination, count: src.count, offset: offset)
    }

    /// The shared loop: 32 bytes per iteration as four independent 64-bit words (so the CPU can
    /// overlap them), then single words, then at most 7 bytes one at a time. Loads and stores are
    /// unaligned because payloads start wherever the header ended.
    @inline(__always)
    private func xor(from source: UnsafeRawPointer, to destination: UnsafeMutableRawPointer, count: Int, offset: Int) {
        // Rotate the key so that its byte `offset % 4` comes first. Working on the numeric
        // (little-endian) value keeps this endian-neutral; with masking shifts a rotation by 0
        // is `k | k`, so no branch is needed.
        let k = UInt32(littleEndian: word)
        let shift = UInt32(truncatingIfNeeded: offset & 3) &* 8
        let rotated = (k &>> shift) | (k &<< (32 &- shift))
        let numeric = UInt64(rotated) | UInt64(rotated) &<< 32
        // Byte j of `pattern` in memory is key byte (offset + j) % 4, for j in 0..<8.
        let pattern = numeric.littleEndian

        var i = 0
        let wideEnd = count & ~31
        while i < wideEnd {
            let a = source.loadUnaligned(fromByteOffset: i, as: UInt64.self)
            let b = source.loadUnaligned(fromByteOffset: i &+ 8, as: UInt64.self)
            let c = source.loadUnaligned(fromByteOffset: i &+ 16, as: UInt64.self)
            let d = source.loadUnaligned(fromByteOffset: i &+ 24, as: UInt64.self)
            destination.storeBytes(of: a ^ pattern, toByteOffset: i, as: UInt64.self)
            destination.storeBytes(of: b ^ pattern, toByteOffset: i &+ 8, as: UInt64.self)
            destination.storeBytes(of: c ^ pattern, toByteOffset: i &+ 16, as: UInt64.self)
            destination.storeBytes(of: d ^ pattern, toByteOffset: i &+ 24, as: UInt64.self)
            i &+= 32
        }
        let wordEnd = count & ~7
        while i < wordEnd {
            let a = source.loadUnaligned(fromByteOffset: i, as: UInt64.self)
            destination.storeBytes(of: a ^ pattern, toByteOffset: i, as: UInt64.self)
            i &+= 8
        }
        // `i` is a multiple of 8 here, so the tail starts again at pattern byte 0.
        if count &- i >= 4 {
            let a = source.loadUnaligned(fromByteOffset: i, as: UInt32.self)
            destination.storeBytes(
                of: a ^ UInt32(truncatingIfNeeded: numeric).littleEndian, toByteOffset: i, as: UInt32.self)
            i &+= 4
        }
        var keyBytes = rotated  // the next key byte in its low 8 bits
        while i < count {
            let byte = source.load(fromByteOffset: i, as: UInt8.self) ^ UInt8(truncatingIfNeeded: keyBytes)
            destination.storeBytes(of: byte, toByteOffset: i, as: UInt8.self)
            keyBytes &>>= 8
            i &+= 1
        }
    }
}
