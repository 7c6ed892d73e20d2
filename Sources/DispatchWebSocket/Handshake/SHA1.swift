/// SHA-1 (FIPS 180-4 §6.1), only for `Sec-WebSocket-Accept`.
///
/// The handshake is the one place the library needs a digest, and SHA-1 is small enough that
/// a crypto dependency is not worth it. It is not used for anything security-relevant: the
/// accept value only proves the peer read the key.
enum SHA1 {
    /// The 20-byte digest of `bytes`.
    static func hash(_ bytes: [UInt8]) -> [UInt8] {
        bytes.withUnsafeBytes { hash($0) }
    }

    /// The 20-byte digest of `bytes`.
    static func hash(_ bytes: UnsafeRawBufferPointer) -> [UInt8] {
        var state = State()
        let length = bytes.count
        let fullBlocks = length / 64
        // The message schedule lives on the stack for the whole hash, not per block.
        withUnsafeTemporaryAllocation(of: UInt32.self, capacity: 80) { schedule in
            for block in 0..<fullBlocks {
                state.compress(UnsafeRawBufferPointer(rebasing: bytes[block * 64..<block * 64 + 64]), schedule)
            }
            // Padding (§5.1.1): 0x80, zeros, then the length in bits as a big-endian UInt64.
            // That takes one more block, or two when fewer than 9 bytes are left in the last.
            withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 128) { tail in
                let rest = length - fullBlocks * 64
                let tailCount = rest < 56 ? 64 : 128
                tail.initialize(repeating: 0)
                for i in 0..<rest { tail[i] = bytes[fullBlocks * 64 + i] }
                tail[rest] = 0x80
                let bitLength = UInt64(length) &* 8
                for i in 0..<8 { tail[tailCount - 1 - i] = UInt8(truncatingIfNeeded: bitLength >> (8 * UInt64(i))) }
                let raw = UnsafeRawBufferPointer(tail)
                state.compress(UnsafeRawBufferPointer(rebasing: raw[0..<64]), schedule)
                if tailCount == 128 { state.compress(UnsafeRawBufferPointer(rebasing: raw[64..<128]), schedule) }
            }
        }
        return state.digest
    }

    /// The five working words between blocks (H0…H4).
    private struct State {
        var h0: UInt32 = 0x6745_2301
        var h1: UInt32 = 0xEFCD_AB89
        var h2: UInt32 = 0x98BA_DCFE
        var h3: UInt32 = 0x1032_5476
        var h4: UInt32 = 0xC3D2_E1F0

        var digest: [UInt8] {
            var out: [UInt8] = []
            out.reserveCapacity(20)
            for word in [h0, h1, h2, h3, h4] {
                out.append(UInt8(truncatingIfNeeded: word >> 24))
                out.append(UInt8(truncatingIfNeeded: word >> 16))
                out.append(UInt8(truncatingIfNeeded: word >> 8))
                out.append(UInt8(truncatingIfNeeded: word))
            }
            return out
        }

        /// Processes one 64-byte block (§6.1.2). The rounds are four plain loops rather than
        /// one loop with a switch so the optimizer keeps the function and constant inline.
        @inline(__always)
        mutating func compress(_ block: UnsafeRawBufferPointer, _ w: UnsafeMutableBufferPointer<UInt32>) {
            for t in 0..<16 {
                w[t] = UInt32(bigEndian: block.loadUnaligned(fromByteOffset: t &* 4, as: UInt32.self))
            }
            for t in 16..<80 {
                w[t] = (w[t &- 3] ^ w[t &- 8] ^ w[t &- 14] ^ w[t &- 16]).rotatedLeft(1)
            }
            var a = h0
            var b = h1
            var c = h2
            var d = h3
            var e = h4

            @inline(__always)
            func step(_ f: UInt32, _ k: UInt32, _ word: UInt32) {
                let temp = a.rotatedLeft(5) &+ f &+ e &+ k &+ word
                e = d
                d = c
                c = b.rotatedLeft(30)
                b = a
                a = temp
            }
            for t in 0..<20 { step((b & c) | (~b & d), 0x5A82_7999, w[t]) }
            for t in 20..<40 { step(b ^ c ^ d, 0x6ED9_EBA1, w[t]) }
            for t in 40..<60 { step((b & c) | (b & d) | (c & d), 0x8F1B_BCDC, w[t]) }
            for t in 60..<80 { step(b ^ c ^ d, 0xCA62_C1D6, w[t]) }

            h0 &+= a
            h1 &+= b
            h2 &+= c
            h3 &+= d
            h4 &+= e
        }
    }
}

extension UInt32 {
    @inline(__always)
    fileprivate func rotatedLeft(_ count: UInt32) -> UInt32 {
        (self << count) | (self >> (32 &- count))
    }
}
