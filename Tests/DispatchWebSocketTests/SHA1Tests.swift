import XCTest

@testable import DispatchWebSocket

/// FIPS 180-4 examples, plus lengths around the padding boundaries checked against `sha1sum`.
final class SHA1DigestTests: XCTestCase {
    private func hex(_ bytes: [UInt8]) -> String {
        bytes.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
    }

    private func digest(_ text: String) -> String {
        hex(SHA1.hash(Array(text.utf8)))
    }

    func testFIPSExampleVectors() {
        XCTAssertEqual(digest("abc"), "a9993e364706816aba3e25717850c26c9cd0d89d")
        XCTAssertEqual(digest(""), "da39a3ee5e6b4b0d3255bfef95601890afd80709")
        XCTAssertEqual(
            digest("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "84983e441c3bd26ebaae4aa1f95129e5e54670f1")
    }

    func testOneMillionRepetitionsOfA() {
        XCTAssertEqual(
            hex(SHA1.hash([UInt8](repeating: UInt8(ascii: "a"), count: 1_000_000))),
            "34aa973cd4c4daa4f61eeb2bdbad27316534016f")
    }

    /// 55 bytes fit the length in the same block, 56…63 need a second padding block, 64 is a
    /// full block and padding on its own; 119…129 repeat that one block later.
    func testLengthsAroundThePaddingBoundaries() {
        let expected: [(Int, String)] = [
            (55, "c1c8bbdc22796e28c0e15163d20899b65621d65a"),
            (56, "c2db330f6083854c99d4b5bfb6e8f29f201be699"),
            (63, "03f09f5b158a7a8cdad920bddc29b81c18a551f5"),
            (64, "0098ba824b5c16427bd7a1122a5a442a25ec644d"),
            (65, "11655326c708d70319be2610e8a57d9a5b959d3b"),
            (119, "ee971065aaa017e0632a8ca6c77bb3bf8b1dfc56"),
            (120, "f34c1488385346a55709ba056ddd08280dd4c6d6"),
            (127, "89d95fa32ed44a7c610b7ee38517ddf57e0bb975"),
            (128, "ad5b3fdbcb526778c2839d2f151ea753995e26a0"),
            (129, "d96debf1bdcbc896e6c134ea76e8141f40d78536"),
        ]
        for (length, digest) in expected {
            XCTAssertEqual(
                hex(SHA1.hash([UInt8](repeating: UInt8(ascii: "a"), count: length))), digest, "length \(length)")
        }
    }

    func testEveryByteValueHashesLikeSHA1Sum() {
        let bytes = (0..<768).map { UInt8(truncatingIfNeeded: $0) }
        XCTAssertEqual(hex(SHA1.hash(bytes)), "ac2a264c8ec1f4232a40854e8239bc3a697ab1d2")
    }

    /// The raw-buffer entry point must not assume alignment or a buffer that starts at index 0.
    func testUnalignedRawBufferSliceHashesLikeAnArray() {
        let bytes = (0..<300).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        for offset in [1, 3, 5] {
            let expected = SHA1.hash(Array(bytes[offset..<(offset + 200)]))
            let actual = bytes.withUnsafeBytes {
                SHA1.hash(UnsafeRawBufferPointer(rebasing: $0[offset..<(offset + 200)]))
            }
            XCTAssertEqual(actual, expected, "offset \(offset)")
        }
        XCTAssertEqual(hex(SHA1.hash([0, 1, 2])), "0c7a623fd2bbc05b06423be359e4021d36e721ad")
    }

    func testDigestIsTwentyBytes() {
        XCTAssertEqual(SHA1.hash([]).count, 20)
        XCTAssertEqual(SHA1.hash([UInt8](repeating: 1, count: 1000)).count, 20)
    }
}
