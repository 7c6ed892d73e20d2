/// Base64 with the standard alphabet and `=` padding (RFC 4648 §4), for the handshake keys.
enum Base64 {
    private static let alphabet: [UInt8] = Array(
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)

    /// Maps an input byte to its 6-bit value; `invalid` for anything outside the alphabet.
    private static let decodeTable: [UInt8] = {
        var table = [UInt8](repeating: invalid, count: 256)
        for (value, byte) in alphabet.enumerated() { table[Int(byte)] = UInt8(value) }
        return table
    }()

    private static let invalid: UInt8 = 0xFF
    private static let pad = UInt8(ascii: "=")

    static func encode(_ bytes: [UInt8]) -> String {
        var output: [UInt8] = []
        output.reserveCapacity((bytes.count + 2) / 3 * 4)
        alphabet.withUnsafeBufferPointer { alphabet in
            var i = 0
            while i + 3 <= bytes.count {
                let n = UInt32(bytes[i]) << 16 | UInt32(bytes[i + 1]) << 8 | UInt32(bytes[i + 2])
                output.append(alphabet[Int(n >> 18)])
                output.append(alphabet[Int(n >> 12 & 0x3F)])
                output.append(alphabet[Int(n >> 6 & 0x3F)])
                output.append(alphabet[Int(n & 0x3F)])
                i += 3
            }
            switch bytes.count - i {
            case 1:
                let n = UInt32(bytes[i]) << 16
                output.append(alphabet[Int(n >> 18)])
                output.append(alphabet[Int(n >> 12 & 0x3F)])
                output.append(pad)
                output.append(pad)
            case 2:
                let n = UInt32(bytes[i]) << 16 | UInt32(bytes[i + 1]) << 8
                output.append(alphabet[Int(n >> 18)])
                output.append(alphabet[Int(n >> 12 & 0x3F)])
                output.append(alphabet[Int(n >> 6 & 0x3F)])
                output.append(pad)
            default:
                break
            }
        }
        return String(decoding: output, as: UTF8.self)
    }

    /// Decodes canonical Base64 only, returning `nil` otherwise.
    ///
    /// Rejected: a length that is not a multiple of 4, characters outside the alphabet
    /// (including whitespace and the URL-safe `-`/`_`), `=` anywhere but the last one or two
    /// positions, and non-zero unused bits before the padding (RFC 4648 §3.5 lets decoders
    /// reject those; accepting them would give one key several spellings).
    static func decode(_ string: some StringProtocol) -> [UInt8]? {
        let utf8 = string.utf8
        if let result = utf8.withContiguousStorageIfAvailable({ decode(bytes: $0) }) { return result }
        return Array(utf8).withUnsafeBufferPointer { decode(bytes: $0) }
    }

    private static func decode(bytes input: UnsafeBufferPointer<UInt8>) -> [UInt8]? {
        guard input.count % 4 == 0 else { return nil }
        guard !input.isEmpty else { return [] }
        var padding = 0
        if input[input.count - 1] == pad { padding = input[input.count - 2] == pad ? 2 : 1 }
        var output: [UInt8] = []
        output.reserveCapacity(input.count / 4 * 3 - padding)
        return decodeTable.withUnsafeBufferPointer { table -> [UInt8]? in
            var i = 0
            // Every quantum but the last has no padding; any `=` in them fails the table lookup.
            let unpaddedEnd = padding == 0 ? input.count : input.count - 4
            while i < unpaddedEnd {
                let a = table[Int(input[i])]
                let b = table[Int(input[i + 1])]
                let c = table[Int(input[i + 2])]
                let d = table[Int(input[i + 3])]
                guard (a | b | c | d) & 0xC0 == 0 else { return nil }
                let n = UInt32(a) << 18 | UInt32(b) << 12 | UInt32(c) << 6 | UInt32(d)
                output.append(UInt8(truncatingIfNeeded: n >> 16))
                output.append(UInt8(truncatingIfNeeded: n >> 8))
                output.append(UInt8(truncatingIfNeeded: n))
                i += 4
            }
            guard padding > 0 else { return output }
            let a = table[Int(input[i])]
            let b = table[Int(input[i + 1])]
            if padding == 2 {
                guard (a | b) & 0xC0 == 0, b & 0x0F == 0 else { return nil }
                output.append(a << 2 | b >> 4)
            } else {
                let c = table[Int(input[i + 2])]
                guard (a | b | c) & 0xC0 == 0, c & 0x03 == 0 else { return nil }
                output.append(a << 2 | b >> 4)
                output.append(b << 4 | c >> 2)
            }
            return output
        }
    }
}
