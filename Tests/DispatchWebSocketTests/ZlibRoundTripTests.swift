import XCTest

@testable import DispatchWebSocket

/// Our zlib wrappers against each other for every window, memory level and a few levels.
final class ZlibRoundTripTests: XCTestCase {
    func testEverySettingRoundTrips() throws {
        var generator = SplitMix64(seed: 5)
        let random = (0..<70_000).map { _ in UInt8.random(in: 0...255, using: &generator) }
        let text = Array(String(repeating: "round trip through zlib, ", count: 3000).utf8)
        for windowBits in 9...15 {
            for memoryLevel in [1, 3, 8, 9] {
                for level in [0, 1, 6, 9] {
                    let deflater = try XCTUnwrap(
                        ZlibDeflater(.init(windowBits: windowBits, memoryLevel: memoryLevel, level: level)))
                    let inflater = try XCTUnwrap(ZlibInflater(windowBits: windowBits))
                    for (index, input) in [random, text, [], random].enumerated() {
                        let compressed = try XCTUnwrap(input.withUnsafeBytes { deflater.compress($0) })
                        let outcome = (compressed + [0, 0, 0xff, 0xff]).withUnsafeBytes {
                            inflater.inflate($0, limit: 1 << 24)
                        }
                        XCTAssertEqual(
                            outcome, .inflated(input.count), "w\(windowBits) m\(memoryLevel) l\(level) #\(index)")
                        XCTAssertTrue(
                            Array(inflater.output) == input, "w\(windowBits) m\(memoryLevel) l\(level) n\(input.count)")
                        inflater.clearOutput()
                    }
                }
            }
        }
    }
}

final class ZlibStreamPoolTests: XCTestCase {
    /// Connections without context takeover reuse pooled streams instead of setting one up per message.
    func testPooledStreamsAreReused() throws {
        let pool = ZlibStreamPool()
        let key = ZlibDeflater.Key(windowBits: 11, memoryLevel: 4, level: 3)
        let deflater = try XCTUnwrap(pool.takeDeflater(key))
        pool.give(deflater)
        XCTAssertTrue(pool.takeDeflater(key) === deflater)
        let inflater = try XCTUnwrap(pool.takeInflater(windowBits: 11))
        pool.give(inflater)
        XCTAssertTrue(pool.takeInflater(windowBits: 11) === inflater)
        XCTAssertFalse(pool.takeInflater(windowBits: 12) === inflater)
    }
}
