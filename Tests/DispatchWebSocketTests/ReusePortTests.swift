import XCTest
@testable import DispatchWebSocket

/// `Configuration.reusePort`: several servers on one port (Linux `SO_REUSEPORT`).
final class ReusePortTests: XCTestCase {
    /// A server that accepts every upgrade and counts its connections.
    private func startCountingServer(port: Int, reusePort: Bool) throws -> (WebSocketServer, EventLog<Int>, Int) {
        let accepted = EventLog<Int>()
        var configuration = WebSocketServer.Configuration()
        configuration.connection.keepalive = false
        configuration.autoAcceptConnections = true
        configuration.reusePort = reusePort
        let server = WebSocketServer(configuration: configuration)
        server.onConnect = { _ in accepted.append(1) }
        let address = try server.listen(host: "127.0.0.1", port: port)
        addTeardownBlock {
            let done = DispatchSemaphore(value: 0)
            server.shutDown { done.signal() }
            _ = done.wait(timeout: .now() + 15)
        }
        return (server, accepted, address.port)
    }

    func testSecondBindWithoutReusePortFails() throws {
        let (_, _, port) = try startCountingServer(port: 0, reusePort: false)
        XCTAssertThrowsError(try startCountingServer(port: port, reusePort: true)) { error in
            XCTAssertEqual((error as? WebSocketError)?.errno, EADDRINUSE)
        }
        let (_, _, shared) = try startCountingServer(port: 0, reusePort: true)
        XCTAssertThrowsError(try startCountingServer(port: shared, reusePort: false)) { error in
            XCTAssertEqual((error as? WebSocketError)?.errno, EADDRINUSE)
        }
    }

    #if os(Linux)
    /// Linux hashes each connection's addresses to one of the sockets: over 40 connections from
    /// different source ports both servers get some (all on one has probability 2⁻³⁹).
    func testTwoServersOnOnePortBothReceiveConnections() throws {
        let (_, first, port) = try startCountingServer(port: 0, reusePort: true)
        let (_, second, secondPort) = try startCountingServer(port: port, reusePort: true)
        XCTAssertEqual(secondPort, port)
        var clients: [RawClient] = []
        for _ in 0..<40 {
            let client = try RawClient(port: port)
            try client.upgrade()
            clients.append(client)
        }
        first.wait { _ in first.all.count + second.all.count == 40 }
        XCTAssertGreaterThan(first.all.count, 0)
        XCTAssertGreaterThan(second.all.count, 0)
    }

    /// A rolling restart: the old server shuts down while the new one on the same port keeps
    /// accepting; every connection made after the old listener closed reaches the new server.
    func testSecondServerKeepsAcceptingWhileFirstShutsDown() throws {
        var configuration = WebSocketServer.Configuration()
        configuration.autoAcceptConnections = true
        configuration.reusePort = true
        configuration.connection.keepalive = false
        let old = WebSocketServer(configuration: configuration)
        let oldClosed = EventLog<WebSocketCloseCode>()
        old.onConnect = { connection in connection.onClose = { code, _ in oldClosed.append(code) } }
        let port = try old.listen(host: "127.0.0.1", port: 0).port
        let (_, fresh, _) = try startCountingServer(port: port, reusePort: true)
        let before = try RawClient(port: port)
        try before.upgrade()
        var onOld = 0
        for _ in 0..<20 where old.connections.count == onOld {  // until one lands on the old server
            let client = try RawClient(port: port)
            try client.upgrade()
            onOld = old.connections.count
        }
        let stopped = DispatchSemaphore(value: 0)
        old.shutDown { stopped.signal() }
        // The old server's members are told it is going away (1001) and must reconnect.
        XCTAssertEqual(stopped.wait(timeout: .now() + 15), .success)
        XCTAssertTrue(oldClosed.all.allSatisfy { $0 == .goingAway })
        let countBefore = fresh.all.count
        for _ in 0..<20 {
            let client = try RawClient(port: port)
            try client.upgrade()  // would throw if it reached the closed listener
        }
        fresh.wait { $0.count == countBefore + 20 }
    }
    #endif
}
