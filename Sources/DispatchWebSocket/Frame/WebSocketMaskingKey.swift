/// The 4-byte masking key of a frame (RFC 6455 §5.3).
public struct WebSocketMaskingKey: Sendable, Hashable, CustomStringConvertible {
    /// The key's bytes in wire order, stored in memory order so one load gives a word to XOR with.
    private let word: UInt32

    public init(_ b0: UInt8, _ b1: UInt8, _ b2: UInt8, _ b3: UInt8) {
        var word: UInt32 = 0
        withUnsafeMutableBytes(of: &word) { raw in
            raw[0] = b0
            raw[1] = b1
            raw[2] = b2
            raw[3] = b3
        }
        self.word = word
    }

    /// Creates a key from exactly four bytes.
    public init?<C: Collection>(_ bytes: C) where C.Element == UInt8 {
        guard bytes.count == 4 else { return nil }
        var iterator = bytes.makeIterator()
        self.init(iterator.next()!, iterator.next()!, iterator.next()!, iterator.next()!)
    }

    /// The four bytes in wire order.
    public var bytes: (UInt8, UInt8, UInt8, UInt8) {
        withUnsafeBytes(of: word) { ($0[0], $0[1], $0[2], $0[3]) }
    }

    /// A key from `generator`.
    public static func random<G: RandomNumberGenerator>(using generator: inout G) -> WebSocketMaskingKey {
        let value = UInt32.random(in: .min ... .max, using: &generator)
        return withUnsafeBytes(of: value) { WebSocketMaskingKey($0[0], $0[1], $0[2], $0[3]) }
    }

    /// A key from the system's secure random source.
    public static func random() -> WebSocketMaskingKey {
        var generator = SystemRandomNumberGenerator()
        return random(using: &generator)
    }

    public var description: String {
        let b = bytes
        return [b.0, b.1, b.2, b.3].map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
    }

    /// The key repeated over 8 bytes, rotated so that its first byte lines up with `offset % 4`.
    @inline(__always)
    private func pattern(offset: Int) -> UInt64 {
        let shift = UInt32((offset & 3) * 8)
        // Memory order: byte i of `rotated` is key byte (i + offset) % 4.
        #if _endian(little)
        let rotated = shift == 0 ? word : (word >> shift) | (word << (32 - shift))
        #else
        let rotated = shift == 0 ? word : (word << shift) | (word >> (32 - shift))
        #endif
        var pattern: UInt64 = 0
        withUnsafeMutableBytes(of: &pattern) { raw in
            raw.storeBytes(of: rotated, toByteOffset: 0, as: UInt32.self)
            raw.storeBytes(of: rotated, toByteOffset: 4, as: UInt32.self)
        }
        return pattern
    }

    /// XORs `buffer` in place: byte `i` with key byte `(offset + i) % 4`. Masking and unmasking
    /// are the same operation. Works 32 bytes per iteration, then 8, then byte-wise.
    public func unmask(_ buffer: UnsafeMutableRawBufferPointer, offset: Int = 0) {
        guard let base = buffer.baseAddress, buffer.count > 0 else { return }
        apply(from: UnsafeRawPointer(base), to: base, count: buffer.count, offset: offset)
    }

    /// Writes `src` XOR the key into `dst` (which may be the same memory); `dst` must be at
    /// least as long as `src`.
    public func mask(_ src: UnsafeRawBufferPointer, into dst: UnsafeMutableRawBufferPointer, offset: Int = 0) {
        precondition(dst.count >= src.count, "mask destination too small")
        guard let source = src.baseAddress, let destination = dst.baseAddress, src.count > 0 else { return }
        apply(from: source, to: destination, count: src.count, offset: offset)
    }

    @inline(__always)
    private func apply(from source: UnsafeRawPointer, to destination: UnsafeMutableRawPointer, count: Int, offset: Int) {
        let pattern = self.pattern(offset: offset)
        var i = 0
        while i + 32 <= count {
            let a = source.loadUnaligned(fromByteOffset: i, as: UInt64.self)
            let b = source.loadUnaligned(fromByteOffset: i + 8, as: UInt64.self)
            let c = source.loadUnaligned(fromByteOffset: i + 16, as: UInt64.self)
            let d = source.loadUnaligned(fromByteOffset: i + 24, as: UInt64.self)
            destination.storeBytes(of: a ^ pattern, toByteOffset: i, as: UInt64.self)
            destination.storeBytes(of: b ^ pattern, toByteOffset: i + 8, as: UInt64.self)
            destination.storeBytes(of: c ^ pattern, toByteOffset: i + 16, as: UInt64.self)
            destination.storeBytes(of: d ^ pattern, toByteOffset: i + 24, as: UInt64.self)
            i += 32
        }
        while i + 8 <= count {
            let a = source.loadUnaligned(fromByteOffset: i, as: UInt64.self)
            destination.storeBytes(of: a ^ pattern, toByteOffset: i, as: UInt64.self)
            i += 8
        }
        // The pattern repeats every 4 bytes, so byte i of the tail uses pattern byte i % 8.
        withUnsafeBytes(of: pattern) { keyBytes in
            while i < count {
                let byte = source.load(fromByteOffset: i, as: UInt8.self) ^ keyBytes[i & 7]
                destination.storeBytes(of: byte, toByteOffset: i, as: UInt8.self)
                i += 1
            }
        }
    }
}
