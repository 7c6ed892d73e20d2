import XCTest

@testable import DispatchWebSocket

final class WebSocketMaskingKeyTests: XCTestCase {
    private let key = WebSocketMaskingKey(0x37, 0xFA, 0x21, 0x3D)

    /// The definition of §5.3, one byte at a time.
    private func referenceMask(_ input: [UInt8], key: WebSocketMaskingKey, offset: Int) -> [UInt8] {
        let k = key.bytes
        let keyBytes = [k.0, k.1, k.2, k.3]
        return input.indices.map { input[$0] ^ keyBytes[(offset + $0) % 4] }
    }

    /// Deterministic, non-repeating-looking bytes.
    private func sampleBytes(_ count: Int, seed: UInt64 = 0x1234_5678_9ABC_DEF1) -> [UInt8] {
        var state = seed
        return (0..<count).map { _ in
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return UInt8(truncatingIfNeeded: state >> 56)
        }
    }

    func testRFCSection57Example() {
        let hello = Array("Hello".utf8)
        let masked: [UInt8] = [0x7F, 0x9F, 0x4D, 0x51, 0x58]

        var inPlace = hello
        inPlace.withUnsafeMutableBytes { key.unmask($0) }
        XCTAssertEqual(inPlace, masked)
        inPlace.withUnsafeMutableBytes { key.unmask($0) }
        XCTAssertEqual(inPlace, hello)

        var copy = [UInt8](repeating: 0, count: 5)
        hello.withUnsafeBytes { src in copy.withUnsafeMutableBytes { key.mask(src, into: $0) } }
        XCTAssertEqual(copy, masked)
    }

    func testEveryLengthOffsetAndAlignmentMatchesTheBytewiseReference() {
        let maxLength = 300
        let source = UnsafeMutableRawBufferPointer.allocate(byteCount: maxLength + 8, alignment: 16)
        let destination = UnsafeMutableRawBufferPointer.allocate(byteCount: maxLength + 8, alignment: 16)
        defer {
            source.deallocate()
            destination.deallocate()
        }
        let keys = [key, WebSocketMaskingKey(0x01, 0x80, 0xFE, 0x7F)]
        for key in keys {
            for length in 0...maxLength {
                let input = sampleBytes(length, seed: UInt64(length) &+ 1)
                for offset in 0..<4 {
                    let expected = referenceMask(input, key: key, offset: offset)
                    for alignment in 0..<8 {
                        let region = UnsafeMutableRawBufferPointer(rebasing: source[alignment..<(alignment + length)])

                        // In place.
                        region.copyBytes(from: input)
                        key.unmask(region, offset: offset)
                        XCTAssertEqual(
                            Array(region), expected,
                            "unmask: length \(length), offset \(offset), alignment \(alignment)")

                        // Copy, the destination at a different alignment than the source.
                        region.copyBytes(from: input)
                        let other = (alignment + 3) % 8
                        let target = UnsafeMutableRawBufferPointer(rebasing: destination[other..<(other + length)])
                        key.mask(UnsafeRawBufferPointer(region), into: target, offset: offset)
                        XCTAssertEqual(
                            Array(target), expected, "mask: length \(length), offset \(offset), alignment \(alignment)")
                        XCTAssertEqual(Array(region), input, "mask must not modify its source")

                        // Copy onto the same memory.
                        key.mask(UnsafeRawBufferPointer(region), into: region, offset: offset)
                        XCTAssertEqual(
                            Array(region), expected,
                            "mask in place: length \(length), offset \(offset), alignment \(alignment)")
                    }
                }
            }
        }
    }

    func testOffsetIsTakenModuloFour() {
        let input = sampleBytes(77)
        for offset in [4, 5, 6, 7, 1001, 65_538, Int(Int32.max)] {
            XCTAssertEqual(masked(input, offset: offset), masked(input, offset: offset % 4), "offset \(offset)")
        }
    }

    func testChunkedUnmaskingWithRunningOffsetEqualsOnePass() {
        let input = sampleBytes(1000)
        let whole = masked(input, offset: 0)
        for chunkSize in [1, 2, 3, 5, 7, 9, 31, 33, 100] {
            var bytes = input
            bytes.withUnsafeMutableBytes { raw in
                var start = 0
                while start < raw.count {
                    let end = min(start + chunkSize, raw.count)
                    key.unmask(UnsafeMutableRawBufferPointer(rebasing: raw[start..<end]), offset: start)
                    start = end
                }
            }
            XCTAssertEqual(bytes, whole, "chunk size \(chunkSize)")
        }
    }

    func testMaskingTwiceRestoresTheInput() {
        var generator = SplitMix64(seed: 42)
        let input = sampleBytes(4099)
        for _ in 0..<20 {
            let key = WebSocketMaskingKey.random(using: &generator)
            let offset = Int(generator.next() % 4)
            var bytes = input
            bytes.withUnsafeMutableBytes { key.unmask($0, offset: offset) }
            bytes.withUnsafeMutableBytes { key.unmask($0, offset: offset) }
            XCTAssertEqual(bytes, input)
        }
    }

    func testMaskLeavesTheRestOfALargerDestinationAlone() {
        let input = sampleBytes(13)
        var destination = [UInt8](repeating: 0xAA, count: 20)
        input.withUnsafeBytes { src in destination.withUnsafeMutableBytes { key.mask(src, into: $0, offset: 2) } }
        XCTAssertEqual(Array(destination[..<13]), referenceMask(input, key: key, offset: 2))
        XCTAssertEqual(Array(destination[13...]), [UInt8](repeating: 0xAA, count: 7))
    }

    func testEmptyBuffersAreFine() {
        key.unmask(UnsafeMutableRawBufferPointer(start: nil, count: 0))
        key.mask(
            UnsafeRawBufferPointer(start: nil, count: 0), into: UnsafeMutableRawBufferPointer(start: nil, count: 0))
    }

    func testZeroKeyIsTheIdentity() {
        let input = sampleBytes(100)
        var bytes = input
        bytes.withUnsafeMutableBytes { WebSocketMaskingKey(0, 0, 0, 0).unmask($0, offset: 1) }
        XCTAssertEqual(bytes, input)
    }

    func testInitializersBytesAndDescription() {
        let b = key.bytes
        XCTAssertEqual([b.0, b.1, b.2, b.3], [0x37, 0xFA, 0x21, 0x3D])
        XCTAssertEqual(WebSocketMaskingKey([0x37, 0xFA, 0x21, 0x3D]), key)
        XCTAssertEqual(WebSocketMaskingKey([UInt8]([9, 8, 7, 6, 5, 4]).dropFirst(2)), WebSocketMaskingKey(7, 6, 5, 4))
        XCTAssertNil(WebSocketMaskingKey([UInt8]()))
        XCTAssertNil(WebSocketMaskingKey([1, 2, 3]))
        XCTAssertNil(WebSocketMaskingKey([1, 2, 3, 4, 5]))
        XCTAssertEqual(key.description, "37fa213d")
        XCTAssertEqual(WebSocketMaskingKey(0xAB, 0, 1, 0xFF).description, "ab0001ff")
        XCTAssertNotEqual(WebSocketMaskingKey(1, 2, 3, 4), WebSocketMaskingKey(4, 3, 2, 1))
        XCTAssertEqual(
            Set([key, WebSocketMaskingKey(0x37, 0xFA, 0x21, 0x3D), WebSocketMaskingKey(1, 2, 3, 4)]).count, 2)
    }

    func testRandomKeys() {
        var a = SplitMix64(seed: 7)
        var b = SplitMix64(seed: 7)
        let first = (0..<16).map { _ in WebSocketMaskingKey.random(using: &a) }
        XCTAssertEqual(first, (0..<16).map { _ in WebSocketMaskingKey.random(using: &b) }, "same generator, same keys")
        XCTAssertGreaterThan(Set(first).count, 1)

        // 32-bit keys from the system source: a handful of collisions in 2,000 is possible only in theory.
        let system = (0..<2000).map { _ in WebSocketMaskingKey.random() }
        XCTAssertGreaterThan(Set(system).count, 1990)
    }

    private func masked(_ input: [UInt8], offset: Int) -> [UInt8] {
        var bytes = input
        bytes.withUnsafeMutableBytes { key.unmask($0, offset: offset) }
        return bytes
    }
}
