import XCTest

@testable import DispatchWebSocket

#if canImport(Glibc)
import Glibc
#endif

/// A one-shot raw TCP server: accepts one connection at a time, reads the request head, answers
/// with `response(requestHead)`, then keeps the socket open until the client leaves.
final class FakeServer: @unchecked Sendable {
    var port: Int { listener.port }
    private let listener: BlockingListener
    private let respond: @Sendable (String) -> [UInt8]

    init(backlog: Int32 = 16, respond: @escaping @Sendable (String) -> [UInt8]) throws {
        listener = try BlockingListener(backlog: backlog)
        self.respond = respond
    }

    func serve(connections: Int = 1) {
        let listener = self.listener
        let respond = self.respond
        DispatchQueue.global().async {
            for _ in 0..<connections {
                guard let client = listener.nextConnection() else { return }
                var head: [UInt8] = []
                var byte: UInt8 = 0
                while read(client, &byte, 1) == 1 {
                    head.append(byte)
                    if head.suffix(4) == [13, 10, 13, 10] { break }
                }
                let response = respond(String(decoding: head, as: UTF8.self))
                _ = response.withUnsafeBytes { send(client, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                var sink = [UInt8](repeating: 0, count: 1024)
                while read(client, &sink, sink.count) > 0 {}
                close(client)
            }
        }
    }

    deinit { listener.stop() }

    /// The accept value for the key in a request head.
    static func acceptValue(_ head: String) -> String {
        let line = head.split(separator: "\r\n").first { $0.lowercased().hasPrefix("sec-websocket-key:") } ?? ""
        return WebSocketAccept.value(forKey: String(line.split(separator: ":")[1].trimmingCharacters()))
    }
}

/// Non-blocking connects that fill a listener's backlog, so the next SYN is dropped.
func fillBacklog(port: Int) throws -> [Socket] {
    let address = try Socket.resolve(host: "127.0.0.1", port: port, passive: false)[0]
    return try (0..<4).map { _ in try Socket.connect(to: address).0 }
}

final class ClientTests: XCTestCase {
    private func connect(
        _ url: String, protocols: [String] = [], configure: (inout WebSocketClient.Configuration) -> Void = { _ in }
    ) -> (WebSocketClient, EventLog<String>, EventLog<WebSocketConnection>) {
        var configuration = WebSocketClient.Configuration()
        configure(&configuration)
        let client = WebSocketClient(configuration: configuration)
        let events = EventLog<String>()
        let connections = EventLog<WebSocketConnection>()
        client.onConnect = { connection in
            connection.onMessage = { message in
                switch message {
                case .text(let text): events.append("text:\(text)")
                case .binary(let bytes): events.append("binary:\(bytes.count)")
                }
            }
            connection.onPong = { events.append("pong:\($0)") }
            connection.onClose = { code, reason in events.append("close:\(code.rawValue):\(reason)") }
            events.append("connect:\(connection.protocol ?? "-")")
            connections.append(connection)
        }
        client.onConnectFailed = { events.append("failed:\($0.code):\($0.message)") }
        client.onHTTPResponse = { status, _, body in
            events.append("http:\(status):\(String(decoding: body, as: UTF8.self))")
        }
        client.connect(url: url, protocols: protocols)
        return (client, events, connections)
    }

    func testEchoFragmentationAndPingAgainstOurServer() throws {
        let fixture = try startEchoServer(self) { $0.connection.fragmentationThreshold = 100 }
        let (_, events, connections) = connect("ws://127.0.0.1:\(fixture.port)/echo") {
            $0.connection.fragmentationThreshold = 50
        }
        let connection = connections.waitForCount(1)[0]
        XCTAssertFalse(connection.isServer)
        XCTAssertEqual(connection.remoteAddress?.port, fixture.port)
        connection.sendUTF("hello")
        let long = String(repeating: "0123456789", count: 30)  // fragmented both ways
        connection.sendUTF(long)
        connection.sendBytes(Array(repeating: 1, count: 1000))
        connection.ping([1, 2])
        events.wait { $0.contains("text:\(long)") && $0.contains("binary:1000") && $0.contains("pong:[1, 2]") }
        XCTAssertEqual(events.all.filter { $0.hasPrefix("text:") }, ["text:hello", "text:\(long)"])
    }

    func testClientInitiatedClose() throws {
        let fixture = try startEchoServer(self)
        let (_, events, connections) = connect("ws://127.0.0.1:\(fixture.port)")
        connections.waitForCount(1)[0].close(code: .goingAway, description: "bye")
        events.wait { $0.contains("close:1001:") }
        XCTAssertEqual(fixture.closes.waitForCount(1)[0].0, .goingAway)
    }

    func testServerInitiatedClose() throws {
        let (_, port) = try startServer(self) { server in
            server.onRequest = { request in
                let connection = try? request.accept()
                connection?.onMessage = { _ in
                    connection?.close(code: WebSocketCloseCode(rawValue: 4000), description: "done")
                }
            }
        }
        let (_, events, connections) = connect("ws://127.0.0.1:\(port)")
        connections.waitForCount(1)[0].sendUTF("close me")
        events.wait { $0.contains("close:4000:done") }
    }

    func testSubprotocolNegotiation() throws {
        let fixture = try startEchoServer(self)  // picks the first offered protocol
        let (_, chosen, _) = connect("ws://127.0.0.1:\(fixture.port)", protocols: ["chat", "other"])
        chosen.wait { $0.contains("connect:chat") }
        let (_, none, _) = connect("ws://127.0.0.1:\(fixture.port)")
        none.wait { $0.contains("connect:-") }
    }

    func testAProtocolWeDidNotOfferFailsTheConnection() throws {
        let server = try FakeServer { head in
            Array(
                ("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                    + "Sec-WebSocket-Accept: \(FakeServer.acceptValue(head))\r\nSec-WebSocket-Protocol: evil\r\n\r\n")
                    .utf8)
        }
        server.serve()
        let (_, events, _) = connect("ws://127.0.0.1:\(server.port)", protocols: ["chat"])
        let failure = events.waitForCount(1)[0]
        XCTAssertTrue(failure.hasPrefix("failed:handshakeFailed") && failure.contains("evil"), failure)
    }

    func testEachHandshakeValidationFailure() throws {
        let cases: [(String, String)] = [
            (
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: wrong\r\n\r\n",
                "Sec-WebSocket-Accept"
            ),
            (
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ACCEPT\r\n\r\n",
                "Upgrade header"
            ),
            (
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: close\r\nSec-WebSocket-Accept: ACCEPT\r\n\r\n",
                "Connection header"
            ),
            (
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ACCEPT\r\nSec-WebSocket-Extensions: permessage-deflate\r\n\r\n",
                "permessage-deflate"
            ),
            ("HTTP/1.1 403 Forbidden\r\nContent-Length: 4\r\n\r\nnope", "403"),
            ("NOT HTTP\r\n\r\n", "malformed"),
        ]
        for (template, expected) in cases {
            let server = try FakeServer { head in
                Array(template.replacingOccurrences(of: "ACCEPT", with: FakeServer.acceptValue(head)).utf8)
            }
            server.serve()
            let (_, events, _) = connect("ws://127.0.0.1:\(server.port)")
            let seen = events.wait { $0.contains { $0.hasPrefix("failed:") } }
            XCTAssertTrue(seen.contains { $0.hasPrefix("failed:") && $0.contains(expected) }, "\(expected): \(seen)")
            XCTAssertFalse(seen.contains { $0.hasPrefix("connect:") })
        }
    }

    func testNon101ResponseBodyIsReported() throws {
        let server = try FakeServer { _ in
            Array("HTTP/1.1 401 Unauthorized\r\nContent-Length: 12\r\n\r\nlog in first".utf8)
        }
        server.serve()
        let (_, events, _) = connect("ws://127.0.0.1:\(server.port)")
        let seen = events.waitForCount(2)
        XCTAssertEqual(seen[0], "http:401:log in first")
        XCTAssertTrue(seen[1].hasPrefix("failed:handshakeFailed"))
    }

    func testRedirectsAreFollowedWhenEnabled() throws {
        let fixture = try startEchoServer(self)
        let redirect = try FakeServer { _ in
            Array(
                "HTTP/1.1 302 Found\r\nLocation: ws://127.0.0.1:\(fixture.port)/moved\r\nContent-Length: 0\r\n\r\n".utf8
            )
        }
        redirect.serve(connections: 2)
        let (_, followed, _) = connect("ws://127.0.0.1:\(redirect.port)/old") { $0.followRedirects = true }
        followed.wait { $0.contains("connect:-") }
        XCTAssertEqual(followed.all.first, "http:302:")
        let (_, refused, _) = connect("ws://127.0.0.1:\(redirect.port)/old")
        refused.wait { $0.contains { $0.hasPrefix("failed:") } }
        XCTAssertFalse(refused.all.contains { $0.hasPrefix("connect:") })
    }

    func testConnectTimeoutAgainstAListenerThatNeverAnswers() throws {
        // A backlog of 0 that is already full: further SYNs are dropped, so connect never completes.
        let server = try FakeServer(backlog: 0) { _ in [] }
        let fillers = try fillBacklog(port: server.port)
        defer { fillers.forEach { $0.close() } }
        let (_, events, _) = connect("ws://127.0.0.1:\(server.port)") {
            $0.connectTimeout = .milliseconds(300)
            $0.handshakeTimeout = .milliseconds(300)
        }
        let failure = events.waitForCount(1)[0]
        XCTAssertTrue(failure.hasPrefix("failed:timeout"), failure)
    }

    func testRefusedConnectionAndBadURLsFail() throws {
        let (socket, address) = try Socket.listen(host: "127.0.0.1", port: 0, backlog: 1)
        socket.close()  // nothing listens there now
        let (_, refused, _) = connect("ws://127.0.0.1:\(address.port)")
        XCTAssertTrue(refused.waitForCount(1)[0].hasPrefix("failed:socketError"))
        for url in ["http://x", "ws://", "ws://host:99999", "wss://", "wss://host:0"] {
            let (_, events, _) = connect(url)
            XCTAssertTrue(events.waitForCount(1)[0].hasPrefix("failed:invalidArgument"), url)
        }
    }

    func testAbortCancelsAPendingConnect() throws {
        let server = try FakeServer(backlog: 0) { _ in [] }
        let fillers = try fillBacklog(port: server.port)
        defer { fillers.forEach { $0.close() } }
        let (client, events, _) = connect("ws://127.0.0.1:\(server.port)")
        client.abort()
        XCTAssertEqual(events.waitForCount(1)[0], "failed:notConnected:aborted")
    }

    func testURLParsing() throws {
        let url = try WebSocketURL("ws://[::1]:9001/a/b?c=d#frag")
        XCTAssertEqual(url.host, "::1")
        XCTAssertEqual(url.port, 9001)
        XCTAssertEqual(url.resource, "/a/b?c=d")
        XCTAssertEqual(try WebSocketURL("ws://example.com").port, 80)
        XCTAssertEqual(try WebSocketURL("ws://example.com?x").resource, "/?x")
        XCTAssertEqual(try url.resolving(location: "/z").resource, "/z")
        XCTAssertEqual(try url.resolving(location: "c").resource, "/a/c")
        XCTAssertEqual(try url.resolving(location: "http://h:1/p").description, "ws://h:1/p")
    }
}

final class BrowserWebSocketTests: XCTestCase {
    func testStateTransitionsAndEvents() throws {
        let fixture = try startEchoServer(self)
        let log = EventLog<String>()
        var listener: WebSocket.ListenerID?
        // configure runs before connecting starts: the state and the handlers cannot race the open.
        let socket = try WebSocket(url: "ws://127.0.0.1:\(fixture.port)/", protocols: ["chat"]) { socket in
            XCTAssertEqual(socket.readyState, .connecting)
            do {
                try socket.send("too early")
                XCTFail("sent before the socket was open")
            } catch {
                XCTAssertEqual((error as? WebSocketError)?.code, .notConnected)
            }
            socket.onopen = { log.append("open") }
            socket.onmessage = { message in if case .text(let text) = message { log.append("message:\(text)") } }
            socket.onclose = { event in log.append("close:\(event.code):\(event.reason):\(event.wasClean)") }
            listener = socket.addEventListener(.message) { _ in log.append("listener") }
        }
        log.wait { $0.contains("open") }
        XCTAssertEqual(socket.readyState, .open)
        XCTAssertEqual(socket.protocol, "chat")
        XCTAssertEqual(socket.extensions, "")
        try socket.send("hi")
        log.wait { $0.contains("message:hi") && $0.contains("listener") }
        socket.removeEventListener(try XCTUnwrap(listener))
        // Closed from a handler, as a page would: the loop cannot see the server's reply before
        // the handler returns, so the state in between is observable without a race.
        _ = socket.addEventListener(.message) { [weak socket] _ in
            guard let socket else { return }
            try? socket.close(code: 4001, reason: "done")
            log.append("after close(): \(socket.readyState)")
        }
        socket.onclose = { [weak socket] event in
            log.append(
                "close:\(event.code):\(event.reason):\(event.wasClean) in state \(socket.map { "\($0.readyState)" } ?? "gone")"
            )
        }
        try socket.send("again")
        log.wait { $0.contains("message:again") }
        XCTAssertEqual(log.all.filter { $0 == "listener" }.count, 1)
        // The reason is the one the server sent back: an empty one.
        log.wait { $0.contains("close:4001::true in state closed") }
        XCTAssertTrue(log.all.contains("after close(): closing"), "\(log.all)")
        XCTAssertEqual(socket.readyState, .closed)
        XCTAssertNoThrow(try socket.send("after close is discarded"))
    }

    func testCloseArgumentsAreCheckedAsInBrowsers() throws {
        let fixture = try startEchoServer(self)
        let socket = try WebSocket(url: "ws://127.0.0.1:\(fixture.port)/")
        for code in [999, 1001, 1005, 2999, 5000] {
            XCTAssertThrowsError(try socket.close(code: code)) {
                XCTAssertEqual(($0 as? WebSocketError)?.code, .invalidArgument)
            }
        }
        XCTAssertThrowsError(try socket.close(code: 1000, reason: String(repeating: "é", count: 62))) {
            XCTAssertEqual(($0 as? WebSocketError)?.code, .invalidArgument)
        }
        XCTAssertThrowsError(try WebSocket(url: "http://example.com"))
        XCTAssertThrowsError(try WebSocket(url: "ws://x", protocols: ["a", "a"]))
    }

    func testClosingWhileConnectingFailsTheConnection() throws {
        let fixture = try startEchoServer(self)
        let log = EventLog<String>()
        let socket = try WebSocket(url: "ws://127.0.0.1:\(fixture.port)/") { socket in
            socket.onerror = { _ in log.append("error") }
            socket.onclose = { event in log.append("close:\(event.code):\(event.wasClean)") }
        }
        try socket.close()
        log.wait { $0.contains { $0.hasPrefix("close:") } }
        XCTAssertEqual(socket.readyState, .closed)
        // Either the abort won the race (1006, after an error event) or the connection had just
        // opened and was closed at once; never both, never an open event.
        let closes = log.all.filter { $0.hasPrefix("close:") }
        XCTAssertEqual(closes.count, 1)
        if closes == ["close:1006:false"] { XCTAssertTrue(log.all.contains("error")) }
    }
}
