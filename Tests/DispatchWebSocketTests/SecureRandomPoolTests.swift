import XCTest

@testable import DispatchWebSocket

final class SecureRandomPoolTests: XCTestCase {
    func testKeysKeepComingAcrossRefillsAndDoNotRepeat() {
        var pool = SecureRandomPool()
        let count = 3 * SecureRandomPool.refillSize / 4  // three refills
        let keys = (0..<count).map { _ in pool.nextMaskingKey() }
        // 32-bit keys: a few collisions are possible by chance, a broken source gives many.
        XCTAssertGreaterThan(Set(keys).count, count - 10)
    }
}
