import XCTest

@testable import DispatchWebSocket

final class UTF8ValidationTests: XCTestCase {
    // MARK: - Reference

    /// RFC 3629 §4 `UTF8-char`, one alternative per entry: the lead byte range, then the range
    /// of each following byte.
    private static let grammar: [(lead: ClosedRange<UInt8>, rest: [ClosedRange<UInt8>])] = {
        let tail: ClosedRange<UInt8> = 0x80...0xBF
        return [
            (0x00...0x7F, []),
            (0xC2...0xDF, [tail]),
            (0xE0...0xE0, [0xA0...0xBF, tail]),
            (0xE1...0xEC, [tail, tail]),
            (0xED...0xED, [0x80...0x9F, tail]),
            (0xEE...0xEF, [tail, tail]),
            (0xF0...0xF0, [0x90...0xBF, tail, tail]),
            (0xF1...0xF3, [tail, tail, tail]),
            (0xF4...0xF4, [0x80...0x8F, tail, tail]),
        ]
    }()

    /// A slow reference: the index of the first byte at which the input stops being a prefix of
    /// valid UTF-8 (`nil` if it never does), and whether the whole input is complete UTF-8.
    private func reference(_ bytes: [UInt8]) -> (firstInvalid: Int?, complete: Bool) {
        var i = 0
        while i < bytes.count {
            guard let alternative = Self.grammar.first(where: { $0.lead.contains(bytes[i]) }) else {
                return (i, false)
            }
            for (k, range) in alternative.rest.enumerated() {
                let position = i + 1 + k
                if position == bytes.count { return (nil, false) }  // cut off: incomplete, not invalid
                if !range.contains(bytes[position]) { return (position, false) }
            }
            i += 1 + alternative.rest.count
        }
        return (nil, true)
    }

    /// Feeds `bytes` one at a time; the index of the first `false`, and whether it ended at a boundary.
    private func byteByByte(_ bytes: [UInt8]) -> (firstInvalid: Int?, complete: Bool) {
        var validator = UTF8Validator()
        var firstInvalid: Int?
        for (index, byte) in bytes.enumerated() {
            let ok = withUnsafeBytes(of: byte) { validator.validate($0) }
            if !ok && firstInvalid == nil { firstInvalid = index }
            if firstInvalid != nil { XCTAssertFalse(ok, "a failure must stick") }
        }
        return (firstInvalid, firstInvalid == nil && validator.isAtBoundary)
    }

    /// The verdict for `bytes` fed in the given pieces.
    private func verdict(_ bytes: [UInt8], splitAt cuts: [Int]) -> Bool {
        var validator = UTF8Validator()
        var start = 0
        var ok = true
        for end in cuts + [bytes.count] {
            ok = bytes[start..<end].withUnsafeBytes { validator.validate($0) } && ok
            start = end
        }
        return ok && validator.isAtBoundary
    }

    private func isValid(_ bytes: [UInt8]) -> Bool {
        bytes.withUnsafeBytes { UTF8Validator.isValid($0) }
    }

    private func standardLibraryAccepts(_ bytes: [UInt8]) -> Bool {
        String(validating: bytes, as: UTF8.self) != nil
    }

    /// Checks every way of feeding `bytes` against the reference.
    private func assertAgreesWithReference(_ bytes: [UInt8], file: StaticString = #filePath, line: UInt = #line) {
        let expected = reference(bytes)
        XCTAssertEqual(isValid(bytes), expected.complete, "isValid \(hex(bytes))", file: file, line: line)
        let single = byteByByte(bytes)
        XCTAssertEqual(
            single.firstInvalid, expected.firstInvalid, "first failure \(hex(bytes))", file: file, line: line)
        XCTAssertEqual(single.complete, expected.complete, "byte by byte \(hex(bytes))", file: file, line: line)
        for cut in 0...bytes.count {
            XCTAssertEqual(
                verdict(bytes, splitAt: [cut]), expected.complete, "split at \(cut): \(hex(bytes))", file: file,
                line: line)
        }
    }

    private func hex(_ bytes: [UInt8]) -> String {
        bytes.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined(separator: " ")
    }

    private func utf8(_ scalar: UInt32) -> [UInt8] {
        Array(String(Character(Unicode.Scalar(scalar)!)).utf8)
    }

    // MARK: - Fixed cases

    private var validSamples: [[UInt8]] {
        [
            [],
            Array("Hello, WebSocket! 0123456789 ~".utf8),
            Array("κόσμε".utf8),
            [0xCE, 0xBA, 0xE1, 0xBD, 0xB9, 0xCF, 0x83, 0xCE, 0xBC, 0xCE, 0xB5],  // κόσμε spelled out
            utf8(0x00), utf8(0x7F),
            utf8(0x80), utf8(0x7FF),
            utf8(0x800), utf8(0xD7FF), utf8(0xE000), utf8(0xFFFD), utf8(0xFFFF),
            utf8(0x10000), utf8(0x10FFFF),
            [0xEF, 0xBB, 0xBF],  // U+FEFF
            Array("Hello-µ@ßöäüàá-UTF-8!! 😀 €".utf8),
            Array(String(repeating: "a", count: 70).utf8) + utf8(0x1F600)
                + Array(String(repeating: "b", count: 33).utf8),
        ]
    }

    private var invalidSamples: [[UInt8]] {
        var samples: [[UInt8]] = [
            // Overlong forms.
            [0xC0, 0x80], [0xC1, 0xBF], [0xE0, 0x80, 0x80], [0xE0, 0x9F, 0xBF], [0xF0, 0x80, 0x80, 0x80],
            [0xF0, 0x8F, 0xBF, 0xBF],
            [0xC0, 0xAF], [0xE0, 0x80, 0xAF], [0xF0, 0x80, 0x80, 0xAF],
            // Surrogates, above U+10FFFF, bytes that never occur.
            [0xED, 0xA0, 0x80], [0xED, 0xAD, 0xBF], [0xED, 0xB0, 0x80], [0xED, 0xBF, 0xBF],
            [0xED, 0xA0, 0x80, 0xED, 0xB0, 0x80],  // a UTF-16 surrogate pair spelled in UTF-8 (CESU-8)
            [0xF4, 0x90, 0x80, 0x80], [0xF5, 0x80, 0x80, 0x80], [0xF7, 0xBF, 0xBF, 0xBF],
            [0xF8, 0x88, 0x80, 0x80, 0x80], [0xFC, 0x84, 0x80, 0x80, 0x80, 0x80], [0xFE], [0xFF], [0xFE, 0xFF],
            // Stray continuations, truncated sequences followed by something else.
            [0x80], [0xBF], [0x41, 0x80], Array("κ".utf8) + [0x80],
            [0xC2, 0x41], [0xE1, 0x80, 0x41], [0xF1, 0x80, 0x80, 0x41], [0xE2, 0x82, 0xE2, 0x82, 0xAC],
            [
                0xCE, 0xBA, 0xE1, 0xBD, 0xB9, 0xCF, 0x83, 0xCE, 0xBC, 0xCE, 0xB5, 0xED, 0xA0, 0x80, 0x65, 0x64, 0x69,
                0x74, 0x65, 0x64,
            ],
            Array(String(repeating: "x", count: 40).utf8) + [0xCE, 0xBA, 0xFF]
                + Array(String(repeating: "y", count: 40).utf8),
        ]
        // Every high byte on its own.
        samples += (0x80...0xFF).map { [UInt8($0)] }
        // Every surrogate.
        for second in UInt8(0xA0)...0xBF {
            for third in UInt8(0x80)...0xBF { samples.append([0xED, second, third]) }
        }
        return samples
    }

    private var truncatedSamples: [[UInt8]] {
        [
            [0xC2], [0xDF], [0xE0, 0xA0], [0xE2, 0x82], [0xED, 0x9F], [0xF0, 0x9F, 0x98], [0xF4, 0x8F, 0xBF],
            Array("κόσμε".utf8) + [0xCE], Array(String(repeating: "z", count: 64).utf8) + [0xF0, 0x90],
        ]
    }

    func testValidSamples() {
        for sample in validSamples {
            XCTAssertTrue(isValid(sample), hex(sample))
            XCTAssertTrue(standardLibraryAccepts(sample), hex(sample))
            assertAgreesWithReference(sample)
        }
    }

    func testInvalidSamples() {
        for sample in invalidSamples {
            XCTAssertFalse(isValid(sample), hex(sample))
            XCTAssertFalse(standardLibraryAccepts(sample), hex(sample))
            assertAgreesWithReference(sample)
        }
    }

    func testEverySingleByte() {
        for value in UInt8.min...UInt8.max {
            var validator = UTF8Validator()
            let ok = withUnsafeBytes(of: value) { validator.validate($0) }
            switch value {
            case 0x00...0x7F:
                XCTAssertTrue(ok && validator.isAtBoundary, "\(value)")
            case 0xC2...0xF4:  // a lead byte: fine so far, but incomplete
                XCTAssertTrue(ok, "\(value)")
                XCTAssertFalse(validator.isAtBoundary, "\(value)")
            default:  // 80–BF, C0, C1, F5–FF
                XCTAssertFalse(ok, "\(value)")
                XCTAssertFalse(validator.isAtBoundary, "\(value)")
            }
        }
    }

    func testTruncatedSequencesAtTheEnd() {
        for sample in truncatedSamples {
            var validator = UTF8Validator()
            XCTAssertTrue(sample.withUnsafeBytes { validator.validate($0) }, hex(sample))
            XCTAssertFalse(validator.isAtBoundary, hex(sample))
            XCTAssertFalse(isValid(sample), hex(sample))
            assertAgreesWithReference(sample)
        }
        // Completed in the next call.
        var validator = UTF8Validator()
        XCTAssertTrue([UInt8]([0x61, 0xF0, 0x9F]).withUnsafeBytes { validator.validate($0) })
        XCTAssertFalse(validator.isAtBoundary)
        XCTAssertTrue([UInt8]([0x98]).withUnsafeBytes { validator.validate($0) })
        XCTAssertFalse(validator.isAtBoundary)
        XCTAssertTrue([UInt8]([0x80, 0x62]).withUnsafeBytes { validator.validate($0) })
        XCTAssertTrue(validator.isAtBoundary)
    }

    func testAFailureSticksUntilReset() {
        var validator = UTF8Validator()
        XCTAssertFalse([UInt8]([0x61, 0xC0, 0x80]).withUnsafeBytes { validator.validate($0) })
        XCTAssertFalse(Array("plain ASCII after the error".utf8).withUnsafeBytes { validator.validate($0) })
        XCTAssertFalse(validator.validate(UnsafeRawBufferPointer(start: nil, count: 0)))
        XCTAssertFalse(validator.isAtBoundary)
        validator.reset()
        XCTAssertTrue(validator.isAtBoundary)
        XCTAssertTrue(Array("fresh".utf8).withUnsafeBytes { validator.validate($0) })
        XCTAssertTrue(validator.isAtBoundary)
    }

    func testResetDropsAnIncompleteSequence() {
        var validator = UTF8Validator()
        XCTAssertTrue([UInt8]([0xE2, 0x82]).withUnsafeBytes { validator.validate($0) })
        validator.reset()
        XCTAssertTrue([UInt8]([0x41]).withUnsafeBytes { validator.validate($0) })
        XCTAssertTrue(validator.isAtBoundary)
    }

    func testEmptyInput() {
        var validator = UTF8Validator()
        XCTAssertTrue(validator.validate(UnsafeRawBufferPointer(start: nil, count: 0)))
        XCTAssertTrue(validator.isAtBoundary)
        XCTAssertTrue(isValid([]))
    }

    // MARK: - The ASCII fast path

    /// An error or a multi-byte scalar at every position of an ASCII run, at every alignment: the
    /// fast path must hand over to the DFA at exactly the right byte.
    func testFastPathBoundariesAtEveryPositionAndAlignment() {
        let storage = UnsafeMutableRawBufferPointer.allocate(byteCount: 160, alignment: 16)
        defer { storage.deallocate() }
        func check(_ bytes: [UInt8], alignment: Int) -> Bool {
            let region = UnsafeMutableRawBufferPointer(rebasing: storage[alignment..<(alignment + bytes.count)])
            region.copyBytes(from: bytes)
            return UTF8Validator.isValid(UnsafeRawBufferPointer(region))
        }
        let inserts: [[UInt8]] = [
            [0x80], [0xFF], [0xC0, 0x80], [0xED, 0xA0, 0x80], [0xC2], utf8(0xE9), utf8(0x20AC), utf8(0x1F600),
        ]
        for length in [0, 1, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 100] {
            for position in 0...length {
                for insert in inserts {
                    var bytes = Array(repeating: UInt8(ascii: "a"), count: length)
                    bytes.insert(contentsOf: insert, at: position)
                    let expected = reference(bytes).complete
                    for alignment in 0..<8 {
                        XCTAssertEqual(
                            check(bytes, alignment: alignment), expected,
                            "\(hex(insert)) at \(position) of \(length), alignment \(alignment)")
                    }
                }
            }
        }
    }

    // MARK: - Exhaustive and randomized differential tests

    /// Continuation bytes fall into three classes for validation (80–8F, 90–9F, A0–BF), so one
    /// representative per class is enough to decide whether a prefix can still be completed.
    private func standardLibraryCanComplete(_ prefix: [UInt8]) -> Bool {
        if standardLibraryAccepts(prefix) { return true }
        let representatives: [UInt8] = [0x80, 0x90, 0xA0]
        var completions: [[UInt8]] = representatives.map { [$0] }
        for _ in 0..<2 {
            for completion in completions where standardLibraryAccepts(prefix + completion) { return true }
            completions = completions.flatMap { c in representatives.map { c + [$0] } }
        }
        return completions.contains { standardLibraryAccepts(prefix + $0) }
    }

    /// Every 1- and 2-byte input: `validate` says "still a prefix" exactly when the standard
    /// library can complete it, and `isValid` matches the standard library.
    func testEveryTwoByteInputAgainstTheStandardLibrary() {
        var inputs: [[UInt8]] = (0...255).map { [UInt8($0)] }
        for a in 0...255 { for b in 0...255 { inputs.append([UInt8(a), UInt8(b)]) } }
        for bytes in inputs {
            var validator = UTF8Validator()
            let ok = bytes.withUnsafeBytes { validator.validate($0) }
            if ok != standardLibraryCanComplete(bytes) {
                XCTFail("prefix verdict for \(hex(bytes))")
                continue
            }
            if (ok && validator.isAtBoundary) != standardLibraryAccepts(bytes) { XCTFail("verdict for \(hex(bytes))") }
        }
    }

    /// A tiny deterministic generator (xorshift64*), so failures reproduce.
    private struct XorShift {
        var state: UInt64
        mutating func next() -> UInt64 {
            state ^= state >> 12
            state ^= state << 25
            state ^= state >> 27
            return state &* 0x2545_F491_4F6C_DD1D
        }
        mutating func below(_ n: Int) -> Int { Int(next() % UInt64(n)) }
    }

    func testRandomBytesAgainstTheStandardLibraryAndTheReference() {
        var random = XorShift(state: 0x5EED_1234_ABCD_0001)
        // Bytes that sit on the edges of the grammar's ranges, to hit the interesting cases often.
        let interesting: [UInt8] = [
            0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xC1, 0xC2, 0xDF, 0xE0, 0xE1, 0xEC, 0xED, 0xEE, 0xEF, 0xF0,
            0xF1, 0xF3, 0xF4, 0xF5, 0xFF,
        ]
        var validCount = 0
        for _ in 0..<20_000 {
            let length = random.below(41)
            var bytes: [UInt8]
            if random.below(2) == 0 {
                // Noise, biased toward high bytes.
                bytes = (0..<length).map { _ in
                    switch random.below(8) {
                    case 0: return UInt8(random.below(0x80))  // ASCII
                    case 1, 2: return interesting[random.below(interesting.count)]
                    case 3, 4, 5: return UInt8(0x80 + random.below(0x40))  // continuation
                    default: return UInt8(0x80 + random.below(0x80))  // any high byte
                    }
                }
            } else {
                // Almost valid: well-formed lead bytes with their continuation count, then a few
                // bytes replaced by edge values, and cut at `length`.
                bytes = []
                while bytes.count < length {
                    let lead = UInt8(random.below(2) == 0 ? random.below(0x80) : 0xC2 + random.below(0xF5 - 0xC2))
                    bytes.append(lead)
                    let continuations = lead < 0x80 ? 0 : lead < 0xE0 ? 1 : lead < 0xF0 ? 2 : 3
                    for _ in 0..<continuations { bytes.append(UInt8(0x80 + random.below(0x40))) }
                }
                bytes.removeLast(bytes.count - length)
                for _ in 0..<random.below(3) where !bytes.isEmpty {
                    bytes[random.below(bytes.count)] = interesting[random.below(interesting.count)]
                }
            }
            let expected = standardLibraryAccepts(bytes)
            if expected { validCount += 1 }
            let ref = reference(bytes)
            XCTAssertEqual(ref.complete, expected, "reference vs standard library: \(hex(bytes))")
            XCTAssertEqual(isValid(bytes), expected, "isValid: \(hex(bytes))")
            let single = byteByByte(bytes)
            XCTAssertEqual(single.firstInvalid, ref.firstInvalid, "first failure: \(hex(bytes))")
            XCTAssertEqual(single.complete, expected, "byte by byte: \(hex(bytes))")
            let cuts = [random.below(length + 1), random.below(length + 1)].sorted()
            XCTAssertEqual(verdict(bytes, splitAt: cuts), expected, "split at \(cuts): \(hex(bytes))")
        }
        XCTAssertGreaterThan(validCount, 1000, "the generator should produce a fair share of valid inputs")
    }

    /// Long valid text from random scalars with ASCII runs of every length, at every alignment and
    /// in random pieces; then the same text with one byte corrupted, or cut short.
    func testRandomValidTextWithASCIIRuns() {
        var random = XorShift(state: 0xC0FF_EE00_1234_5678)
        let storage = UnsafeMutableRawBufferPointer.allocate(byteCount: 4096, alignment: 16)
        defer { storage.deallocate() }

        func randomScalar() -> UInt32 {
            switch random.below(4) {
            case 0: return UInt32(0x80 + random.below(0x800 - 0x80))
            case 1:
                let v = UInt32(0x800 + random.below(0x10000 - 0x800 - 0x800))
                return v < 0xD800 ? v : v + 0x800  // skip the surrogates
            case 2: return UInt32(0x10000 + random.below(0x110000 - 0x10000))
            default: return [0x80, 0x7FF, 0x800, 0xD7FF, 0xE000, 0xFEFF, 0xFFFF, 0x10000, 0x10FFFF][random.below(9)]
            }
        }

        for round in 0..<400 {
            var bytes: [UInt8] = []
            while bytes.count < 600 {
                bytes += (0..<random.below(72)).map { _ in UInt8(0x20 + random.below(0x5F)) }
                for _ in 0..<(1 + random.below(3)) { bytes += utf8(randomScalar()) }
            }
            XCTAssertTrue(standardLibraryAccepts(bytes))

            let alignment = round % 8
            let region = UnsafeMutableRawBufferPointer(rebasing: storage[alignment..<(alignment + bytes.count)])
            region.copyBytes(from: bytes)
            XCTAssertTrue(UTF8Validator.isValid(UnsafeRawBufferPointer(region)), "round \(round)")

            var cuts: [Int] = []
            var position = 0
            while true {
                position += 1 + random.below(90)
                if position >= bytes.count { break }
                cuts.append(position)
            }
            XCTAssertTrue(verdict(bytes, splitAt: cuts), "round \(round), pieces \(cuts)")

            // One corrupted byte: compare with the reference, whole and byte by byte.
            var corrupted = bytes
            let index = random.below(corrupted.count)
            corrupted[index] = random.below(2) == 0 ? UInt8(0x80 + random.below(0x80)) : UInt8(random.below(0x100))
            let expected = reference(corrupted)
            XCTAssertEqual(isValid(corrupted), expected.complete, "round \(round), byte \(index)")
            XCTAssertEqual(isValid(corrupted), standardLibraryAccepts(corrupted), "round \(round), byte \(index)")
            XCTAssertEqual(
                verdict(corrupted, splitAt: cuts), expected.complete, "round \(round), byte \(index), pieces")
            XCTAssertEqual(byteByByte(corrupted).firstInvalid, expected.firstInvalid, "round \(round), byte \(index)")

            // Cut inside the last scalar: still a valid prefix, but not complete.
            var truncated = bytes + utf8(randomScalar())
            truncated.removeLast()
            var validator = UTF8Validator()
            XCTAssertTrue(truncated.withUnsafeBytes { validator.validate($0) }, "round \(round)")
            XCTAssertFalse(validator.isAtBoundary, "round \(round)")
        }
    }
}
