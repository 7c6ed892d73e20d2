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
    /// accepting; every connection made after the old listener closed reaches the new server,
    /// and the old server's connections are closed with 1001 ("going away").
    func testSecondServerKeepsAcceptingWhileFirstShutsDown() throws {
        var configuration = WebSocketServer.Configuration()
        configuration.autoAcceptConnections = true
        configuration.reusePort = true
        configuration.connection.keepalive = false
        let old = WebSocketServer(configuration: configuration)
        let port = try old.listen(host: "127.0.0.1", port: 0).port
        let (_, fresh, _) = try startCountingServer(port: port, reusePort: true)
        var clients: [RawClient] = []
        for _ in 0..<20 {
            let client = try RawClient(port: port)
            try client.upgrade()
            clients.append(client)
        }
        // Which clients the kernel gave the old server: their local ports are its peers' ports.
        let oldPeers = Set(old.connections.compactMap { $0.remoteAddress?.port })
        let onOld = clients.filter { oldPeers.contains(Socket(fd: $0.fd).localAddress()?.port ?? -1) }
        XCTAssertGreaterThan(onOld.count, 0)
        XCTAssertEqual(onOld.count, oldPeers.count)
        let stopped = DispatchSemaphore(value: 0)
        old.shutDown { stopped.signal() }
        // The old server's clients read its close frame, 1001, and answer it.
        for client in onOld {
            let frame = try client.readFrame()
            XCTAssertEqual(frame?.opcode, .close)
            XCTAssertEqual(frame.flatMap(RawClient.closeCode), 1001)
            try client.sendClose(code: 1001)
        }
        XCTAssertEqual(stopped.wait(timeout: .now() + 15), .success)
        let countBefore = fresh.all.count
        for _ in 0..<20 {
            let client = try RawClient(port: port)
            try client.upgrade()  // would fail if it reached the closed listener
            clients.append(client)
        }
        fresh.wait { $0.count == countBefore + 20 }
    }

    #endif
}
