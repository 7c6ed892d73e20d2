import XCTest

@testable import DispatchWebSocket

/// `isWritable`, `hasFinished` and `hasEnded` through both closing orders.
final class ConnectionStateTests: XCTestCase {
    private func connected() throws -> (WebSocketConnection, RawClient, EventLog<String>) {
        let connections = EventLog<WebSocketConnection>()
        let events = EventLog<String>()
        let (_, port) = try startServer(self) { server in
            server.onRequest = { request in
                guard let connection = try? request.accept() else { return }
                connection.onMessage = { message in
                    if case .text(let text) = message { events.append("text:\(text)") }
                }
                connection.onClose = { code, _ in events.append("close:\(code.rawValue)") }
                connections.append(connection)
            }
        }
        let client = try RawClient(port: port)
        try client.upgrade()
        return (connections.waitForCount(1)[0], client, events)
    }

    private func state(_ connection: WebSocketConnection) -> String {
        "connected:\(connection.isConnected) writable:\(connection.isWritable) finished:\(connection.hasFinished) ended:\(connection.hasEnded)"
    }

    func testWeCloseFirstThenThePeerEnds() throws {
        let (connection, client, events) = try connected()
        XCTAssertEqual(state(connection), "connected:true writable:true finished:false ended:false")
        connection.close(code: .goingAway)
        let close = try XCTUnwrap(client.readFrame())
        XCTAssertEqual(RawClient.closeCode(close), 1001)
        // Our half is done, the peer's is not: what it still sends is delivered.
        XCTAssertEqual(state(connection), "connected:false writable:false finished:true ended:false")
        XCTAssertEqual(connection.sendUTF("refused"), .dropped)
        try client.sendText("still arriving")
        events.wait { $0.contains("text:still arriving") }
        XCTAssertFalse(connection.hasEnded)
        try client.sendClose(code: 1001)
        events.wait { $0.contains("close:1001") }
        XCTAssertEqual(state(connection), "connected:false writable:false finished:true ended:true")
    }

    func testThePeerClosesFirstAndIsAnsweredAtOnce() throws {
        let (connection, client, events) = try connected()
        try client.sendText("before")
        events.wait { $0.contains("text:before") }
        XCTAssertEqual(state(connection), "connected:true writable:true finished:false ended:false")
        try client.sendClose(code: 1000)
        let reply = try XCTUnwrap(client.readFrame())
        XCTAssertEqual(RawClient.closeCode(reply), 1000)
        XCTAssertTrue(connection.hasEnded)
        XCTAssertTrue(connection.hasFinished)
        XCTAssertFalse(connection.isWritable)
        events.wait { $0.contains("close:1000") }
        XCTAssertEqual(state(connection), "connected:false writable:false finished:true ended:true")
    }

    func testTCPEndingWithoutACloseFrameEndsBothHalves() throws {
        let (connection, client, events) = try connected()
        shutdown(client.fd, Int32(SHUT_RDWR))
        events.wait { $0.contains("close:1006") }
        XCTAssertEqual(state(connection), "connected:false writable:false finished:true ended:true")
    }
}
