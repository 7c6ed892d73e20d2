import XCTest

@testable import DispatchWebSocket

#if canImport(Glibc)
import Glibc
#endif

final class BlockingListenerTests: XCTestCase {
    func testStopWakesABlockedAcceptWhichThenClosesTheListener() throws {
        let baseline = openDescriptors()
        let listener = try BlockingListener()
        let returned = EventLog<String>()
        let thread = Thread { returned.append(listener.nextConnection() == nil ? "nil" : "connection") }
        thread.start()
        // No way to see the thread inside accept(2); whether it is or not, the outcome is the same.
        usleep(20_000)
        listener.stop()
        XCTAssertEqual(returned.waitForCount(1), ["nil"])
        XCTAssertEqual(openDescriptors(), baseline, "the listener is closed once its last user is out")
        XCTAssertNil(listener.nextConnection(), "a stopped listener accepts nothing")
    }

    func testAcceptsConnectionsUntilStopped() throws {
        let listener = try BlockingListener()
        let address = try Socket.resolve(host: "127.0.0.1", port: listener.port, passive: false)[0]
        let (client, _) = try Socket.connect(to: address)
        defer { client.close() }
        let accepted = try XCTUnwrap(listener.nextConnection())
        XCTAssertGreaterThanOrEqual(accepted, 0)
        close(accepted)
        listener.stop()
        XCTAssertNil(listener.nextConnection())
    }
}
