import XCTest
@testable import DispatchWebSocket

final class MaskingTests: XCTestCase {
    private let key = WebSocketMaskingKey(0x37, 0xFA, 0x21, 0x3D)

    private func reference(_ bytes: [UInt8], offset: Int) -> [UInt8] {
        let k = [key.bytes.0, key.bytes.1, key.bytes.2, key.bytes.3]
        return bytes.enumerated().map { $1 ^ k[($0 + offset) % 4] }
    }

    func testRFCExample() {
        var hello = Array("Hello".utf8)
        hello.withUnsafeMutableBytes { key.unmask($0) }
        XCTAssertEqual(hello, [0x7F, 0x9F, 0x4D, 0x51, 0x58])
    }

    func testMatchesBytewiseReferenceForEveryLengthOffsetAndAlignment() {
        let storage = UnsafeMutableRawBufferPointer.allocate(byteCount: 300 + 16, alignment: 16)
        let output = UnsafeMutableRawBufferPointer.allocate(byteCount: 300 + 16, alignment: 16)
        defer { storage.deallocate(); output.deallocate() }
        for length in 0...300 {
            let input = (0..<length).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
            for offset in 0..<4 {
                let expected = reference(input, offset: offset)
                for alignment in 0..<8 {
                    let region = UnsafeMutableRawBufferPointer(rebasing: storage[alignment..<(alignment + length)])
                    region.copyBytes(from: input)
                    key.unmask(region, offset: offset)
                    XCTAssertEqual(Array(region), expected, "unmask length \(length) offset \(offset) alignment \(alignment)")

                    region.copyBytes(from: input)
                    let destination = UnsafeMutableRawBufferPointer(rebasing: output[(7 - alignment)..<(7 - alignment + length)])
                    key.mask(UnsafeRawBufferPointer(region), into: destination, offset: offset)
                    XCTAssertEqual(Array(destination), expected, "mask length \(length) offset \(offset) alignment \(alignment)")
                }
            }
        }
    }

    func testMaskingTwiceRestoresTheInput() {
        let input = (0..<1000).map { UInt8(truncatingIfNeeded: $0) }
        var bytes = input
        let key = WebSocketMaskingKey.random()
        bytes.withUnsafeMutableBytes { key.unmask($0, offset: 3) }
        XCTAssertNotEqual(bytes, input)
        bytes.withUnsafeMutableBytes { key.unmask($0, offset: 3) }
        XCTAssertEqual(bytes, input)
    }

    func testKeyFromBytes() {
        XCTAssertEqual(WebSocketMaskingKey([1, 2, 3, 4]), WebSocketMaskingKey(1, 2, 3, 4))
        XCTAssertNil(WebSocketMaskingKey([1, 2, 3]))
        XCTAssertEqual(WebSocketMaskingKey(0xAB, 0, 1, 0xFF).description, "ab0001ff")
    }
}

final class UTF8ValidatorTests: XCTestCase {
    /// A slow, obviously-correct reference: the length of the longest prefix that can still be
    /// extended to valid UTF-8, and whether the whole input is valid.
    private func reference(_ bytes: [UInt8]) -> (validPrefix: Int, complete: Bool) {
        var i = 0
        while i < bytes.count {
            let b = bytes[i]
            let (count, lo, hi): (Int, UInt8, UInt8)
            switch b {
            case 0x00...0x7F: i += 1; continue
            case 0xC2...0xDF: (count, lo, hi) = (1, 0x80, 0xBF)
            case 0xE0: (count, lo, hi) = (2, 0xA0, 0xBF)
            case 0xED: (count, lo, hi) = (2, 0x80, 0x9F)
            case 0xE1...0xEF: (count, lo, hi) = (2, 0x80, 0xBF)
            case 0xF0: (count, lo, hi) = (3, 0x90, 0xBF)
            case 0xF4: (count, lo, hi) = (3, 0x80, 0x8F)
            case 0xF1...0xF3: (count, lo, hi) = (3, 0x80, 0xBF)
            default: return (i, false)
            }
            for j in 1...count {
                guard i + j < bytes.count else { return (bytes.count, false) }
                let c = bytes[i + j]
                let (l, h) = j == 1 ? (lo, hi) : (UInt8(0x80), UInt8(0xBF))
                guard c >= l && c <= h else { return (i + j, false) }
            }
            i += count + 1
        }
        return (bytes.count, true)
    }

    /// Index of the byte at which feeding one byte at a time first fails (count when none).
    private func firstFailureByteByByte(_ bytes: [UInt8]) -> Int {
        var validator = UTF8Validator()
        for (index, byte) in bytes.enumerated() where ![byte].withUnsafeBytes({ validator.validate($0) }) {
            return index
        }
        return bytes.count
    }

    private func verdict(_ bytes: [UInt8], split: Int) -> Bool {
        var validator = UTF8Validator()
        let a = bytes[..<split].withUnsafeBytes { validator.validate($0) }
        let b = a && bytes[split...].withUnsafeBytes { validator.validate($0) }
        return b && validator.isAtBoundary
    }

    private var samples: [[UInt8]] {
        var samples: [[UInt8]] = [
            Array("Hello-µ@ßöäüàá-UTF-8!!".utf8), Array("κόσμε".utf8), [0xEF, 0xBB, 0xBF],
            [0xC2, 0x80], [0xDF, 0xBF], [0xE0, 0xA0, 0x80], [0xEF, 0xBF, 0xBF], [0xF0, 0x90, 0x80, 0x80], [0xF4, 0x8F, 0xBF, 0xBF],
            [0xC0, 0x80], [0xE0, 0x80, 0x80], [0xF0, 0x80, 0x80, 0x80], [0xC1, 0xBF], [0xE0, 0x9F, 0xBF], [0xF0, 0x8F, 0xBF, 0xBF],
            [0xED, 0xA0, 0x80], [0xED, 0xBF, 0xBF], [0xF4, 0x90, 0x80, 0x80], [0xF5, 0x80, 0x80, 0x80],
            Array("κόσμε".utf8) + [0xED, 0xA0, 0x80] + Array("edited".utf8),
            [0xE2, 0x82], [0xF0, 0x9F, 0x98], Array(repeating: 0x41, count: 40) + [0xCE, 0xBA, 0xFF],
        ]
        samples += (0x80...0xFF).map { [UInt8($0)] }
        return samples
    }

    func testVerdictsMatchTheReferenceAtEverySplit() {
        for sample in samples {
            let expected = reference(sample)
            for split in 0...sample.count {
                XCTAssertEqual(verdict(sample, split: split), expected.complete, "\(sample) split at \(split)")
            }
        }
    }

    func testFailsAtTheFirstInvalidByte() {
        for sample in samples {
            let expected = reference(sample)
            XCTAssertEqual(firstFailureByteByByte(sample), expected.validPrefix, "\(sample)")
        }
    }

    func testTruncatedSequenceIsNotAtABoundary() {
        var validator = UTF8Validator()
        XCTAssertTrue([UInt8]([0xE2, 0x82]).withUnsafeBytes { validator.validate($0) })
        XCTAssertFalse(validator.isAtBoundary)
        XCTAssertTrue([UInt8]([0xAC]).withUnsafeBytes { validator.validate($0) })
        XCTAssertTrue(validator.isAtBoundary)
    }

    func testRandomInputAgreesWithTheStandardLibrary() {
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        func next() -> UInt64 {
            state ^= state << 13; state ^= state >> 7; state ^= state << 17
            return state
        }
        for _ in 0..<20_000 {
            let length = Int(next() % 41)
            let bytes = (0..<length).map { _ -> UInt8 in
                let r = next()
                return r % 3 == 0 ? UInt8(truncatingIfNeeded: r >> 8) & 0x7F : UInt8(truncatingIfNeeded: r >> 8) | 0x80
            }
            let expected = String(validating: bytes, as: UTF8.self) != nil
            XCTAssertEqual(bytes.withUnsafeBytes { UTF8Validator.isValid($0) }, expected, "\(bytes)")
            XCTAssertEqual(reference(bytes).complete, expected)
        }
    }

    func testValidTextWithASCIIRunsAtEveryAlignment() {
        let scalars = ["a", "é", "€", "😀", "ω"]
        for prefix in 0..<20 {
            var text = String(repeating: "x", count: prefix)
            for i in 0..<50 { text += scalars[i % scalars.count] + String(repeating: "y", count: i % 19) }
            XCTAssertTrue(Array(text.utf8).withUnsafeBytes { UTF8Validator.isValid($0) })
            var broken = Array(text.utf8)
            broken.insert(0xFF, at: broken.count / 2)
            XCTAssertFalse(broken.withUnsafeBytes { UTF8Validator.isValid($0) })
        }
    }
}

final class CloseCodeTests: XCTestCase {
    func testWireValidityOfEveryCode() {
        for raw in UInt16(0)...5000 {
            let expected = (1000...1003).contains(raw) || (1007...1014).contains(raw) || (3000...4999).contains(raw)
            XCTAssertEqual(WebSocketCloseCode(rawValue: raw).isValidOnWire, expected, "\(raw)")
        }
        XCTAssertFalse(WebSocketCloseCode(rawValue: 65535).isValidOnWire)
        XCTAssertEqual([1005, 1006, 1015].map { WebSocketCloseCode(rawValue: $0).isReservedForLocalUse }, [true, true, true])
        XCTAssertFalse(WebSocketCloseCode.normalClosure.isReservedForLocalUse)
    }

    private func parse(_ bytes: [UInt8]) -> Result<(code: WebSocketCloseCode?, reason: String), ClosePayloadError> {
        bytes.withUnsafeBytes { ClosePayload.parse($0) }
    }

    func testParsingClosePayloads() {
        XCTAssertNil(try parse([]).get().code)
        XCTAssertEqual(try parse([0x03, 0xE8] + Array("bye".utf8)).get().reason, "bye")
        XCTAssertEqual(try parse([0x0F, 0xA0]).get().code, 4000)
        guard case .failure(.truncatedCode) = parse([0x03]) else { return XCTFail() }
        guard case .failure(.invalidCode(1005)) = parse([0x03, 0xED]) else { return XCTFail() }
        guard case .failure(.invalidUTF8Reason) = parse([0x03, 0xE8, 0xC0, 0x80]) else { return XCTFail() }
    }

    func testEncodingTruncatesTheReasonAtACharacterBoundary() {
        let reason = String(repeating: "a", count: 122) + "é"
        let payload = ClosePayload.encode(code: .normalClosure, reason: reason)
        XCTAssertEqual(payload.count, 2 + 122)
        XCTAssertEqual(try parse(payload).get().reason, String(repeating: "a", count: 122))
        XCTAssertEqual(ClosePayload.encode(code: .goingAway, reason: "x"), [0x03, 0xE9, UInt8(ascii: "x")])
    }
}

final class SecureRandomPoolTests: XCTestCase {
    func testKeysKeepComingAcrossRefillsAndDoNotRepeat() {
        var pool = SecureRandomPool()
        let count = 3 * SecureRandomPool.refillSize / 4  // three refills
        let keys = (0..<count).map { _ in pool.nextMaskingKey() }
        // 32-bit keys: a few collisions are possible by chance, a broken source gives many.
        XCTAssertGreaterThan(Set(keys).count, count - 10)
    }
}
