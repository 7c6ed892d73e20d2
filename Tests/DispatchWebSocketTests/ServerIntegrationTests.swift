import XCTest

@testable import DispatchWebSocket

/// Loopback tests: a real server on port 0 and a raw-socket client that sends exact bytes.
final class ServerIntegrationTests: XCTestCase {
    func testEchoesTextAndBinaryWithTheirTypes() throws {
        let fixture = try startEchoServer(self)
        let client = try RawClient(port: fixture.port)
        try client.upgrade()
        try client.sendText("héllo")
        XCTAssertEqual(try client.readFrame(), WebSocketFrame(opcode: .text, payload: Array("héllo".utf8)))
        try client.send(.binary, [0, 1, 2, 255])
        XCTAssertEqual(try client.readFrame(), WebSocketFrame(opcode: .binary, payload: [0, 1, 2, 255]))
    }

    func testEchoesManyMessagesSentInOneWrite() throws {
        let fixture = try startEchoServer(self)
        let client = try RawClient(port: fixture.port)
        try client.upgrade()
        let texts = (0..<200).map { "message \($0)" }
        try client.write(
            texts.flatMap { WebSocketFrame(opcode: .text, maskingKey: .random(), payload: Array($0.utf8)).encoded() })
        for text in texts {
            XCTAssertEqual(try client.readFrame()?.payload, Array(text.utf8))
        }
    }

    func testFrameSentTogetherWithTheHandshakeIsDelivered() throws {
        let fixture = try startEchoServer(self)
        let client = try RawClient(port: fixture.port)
        let frame = WebSocketFrame(opcode: .text, maskingKey: .random(), payload: Array("early".utf8)).encoded()
        try client.write(
            Array(
                ("GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                    + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n").utf8) + frame)
        XCTAssertTrue(try client.readHTTPHead().hasPrefix("HTTP/1.1 101"))
        XCTAssertEqual(try client.readFrame()?.payload, Array("early".utf8))
    }

    func testReassemblesFragmentsAndFragmentsLargeReplies() throws {
        let fixture = try startEchoServer(self) { $0.connection.fragmentationThreshold = 1000 }
        let client = try RawClient(port: fixture.port)
        try client.upgrade()
        let payload = (0..<2500).map { UInt8($0 % 256) }
        try client.send(.binary, Array(payload[..<1200]), fin: false)
        try client.send(.ping, [42])
        try client.send(.continuation, Array(payload[1200...]))
        XCTAssertEqual(try client.readFrame(), WebSocketFrame(opcode: .pong, payload: [42]))
        var frames: [WebSocketFrame] = []
        repeat { frames.append(try XCTUnwrap(client.readFrame())) } while !frames.last!.fin
        XCTAssertEqual(frames.map(\.payload.count), [1000, 1000, 500])
        XCTAssertEqual(frames.map(\.opcode), [.binary, .continuation, .continuation])
        XCTAssertEqual(frames.flatMap(\.payload), payload)
    }

    func testWithoutFragmentationALargeMessageGoesOutAsOneFrame() throws {
        let fixture = try startEchoServer(self) { $0.connection.fragmentOutgoingMessages = false }
        let client = try RawClient(port: fixture.port)
        try client.upgrade()
        let payload = [UInt8](repeating: 5, count: 100_000)
        try client.send(.binary, payload)
        XCTAssertEqual(try client.readFrame(), WebSocketFrame(opcode: .binary, payload: payload))
        try client.send(.binary, [])
        XCTAssertEqual(try client.readFrame(), WebSocketFrame(opcode: .binary, payload: []))
    }

    func testPingIsAnsweredUnlessTheHandlerCancels() throws {
        let pings = EventLog<[UInt8]>()
        let (_, port) = try startServer(self) { server in
            server.onRequest = { request in
                let connection = try? request.accept()
                connection?.onPing = { data, event in
                    pings.append(data)
                    if data == [2] { event.cancelAutoPong() }
                }
            }
        }
        let client = try RawClient(port: port)
        try client.upgrade()
        try client.send(.ping, [1])
        XCTAssertEqual(try client.readFrame(), WebSocketFrame(opcode: .pong, payload: [1]))
        try client.send(.ping, [2])
        try client.send(.ping, [3])
        // The cancelled ping gets no pong: the next frame answers the third ping.
        XCTAssertEqual(try client.readFrame(), WebSocketFrame(opcode: .pong, payload: [3]))
        XCTAssertEqual(pings.waitForCount(3), [[1], [2], [3]])
    }

    func testPongEventAndServerPing() throws {
        let pongs = EventLog<[UInt8]>()
        let (_, port) = try startServer(self) { server in
            server.onRequest = { request in
                let connection = try? request.accept()
                connection?.onPong = { pongs.append($0) }
                connection?.onMessage = { _ in connection?.ping([9, 9]) }
            }
        }
        let client = try RawClient(port: port)
        try client.upgrade()
        try client.sendText("ping me")
        XCTAssertEqual(try client.readFrame(), WebSocketFrame(opcode: .ping, payload: [9, 9]))
        try client.send(.pong, [9, 9])
        XCTAssertEqual(pongs.waitForCount(1), [[9, 9]])
    }

    func testFrameModeDeliversRawFrames() throws {
        let frames = EventLog<WebSocketFrame>()
        let (_, port) = try startServer(self, configure: { $0.connection.assembleFragments = false }) { server in
            server.onRequest = { request in
                let connection = try? request.accept()
                connection?.onFrame = { frames.append($0) }
            }
        }
        let client = try RawClient(port: port)
        try client.upgrade()
        try client.sendText("ab", fin: false)
        try client.send(.continuation, Array("c".utf8))
        XCTAssertEqual(
            frames.waitForCount(2),
            [
                WebSocketFrame(fin: false, opcode: .text, payload: Array("ab".utf8)),
                WebSocketFrame(opcode: .continuation, payload: Array("c".utf8)),
            ])
    }

    func testClientInitiatedCloseIsEchoedAndTheServerClosesTCP() throws {
        let fixture = try startEchoServer(self)
        let client = try RawClient(port: fixture.port)
        try client.upgrade()
        try client.sendClose(code: 1000, reason: "done")
        let frames = try client.readUntilClosed()
        XCTAssertEqual(frames.map(\.opcode), [.close])
        XCTAssertEqual(RawClient.closeCode(frames[0]), 1000)
        let close = fixture.closes.waitForCount(1)[0]
        XCTAssertEqual(close.0, .normalClosure)
        XCTAssertEqual(close.1, "done")
    }

    func testServerInitiatedCloseCompletesWhenTheClientAnswers() throws {
        let closes = EventLog<WebSocketCloseCode>()
        let (_, port) = try startServer(self) { server in
            server.onRequest = { request in
                let connection = try? request.accept()
                connection?.onClose = { code, _ in closes.append(code) }
                connection?.onMessage = { _ in connection?.close(code: .goingAway, description: "bye") }
            }
        }
        let client = try RawClient(port: port)
        try client.upgrade()
        try client.sendText("close please")
        let frame = try XCTUnwrap(client.readFrame())
        XCTAssertEqual(RawClient.closeCode(frame), 1001)
        XCTAssertEqual(frame.payload.dropFirst(2), ArraySlice("bye".utf8))
        try client.sendClose(code: 1001)
        XCTAssertEqual(try client.readUntilClosed(), [])
        XCTAssertEqual(closes.waitForCount(1), [.goingAway])
    }

    func testCloseTimeoutEndsTheConnectionWhenThePeerStaysSilent() throws {
        let closes = EventLog<WebSocketCloseCode>()
        let (_, port) = try startServer(self, configure: { $0.connection.closeTimeout = .milliseconds(300) }) {
            server in
            server.onRequest = { request in
                let connection = try? request.accept()
                connection?.onClose = { code, _ in closes.append(code) }
                connection?.onMessage = { _ in connection?.close() }
            }
        }
        let client = try RawClient(port: port)
        try client.upgrade()
        try client.sendText("x")
        XCTAssertEqual(try client.readFrame()?.opcode, .close)
        // Never answer: the server must give up and close TCP on its own.
        XCTAssertEqual(try client.readUntilClosed(), [])
        XCTAssertEqual(closes.waitForCount(1), [.abnormalClosure])
    }

    func testDropSendsACloseFrameAndClosesAtOnce() throws {
        let closes = EventLog<WebSocketCloseCode>()
        let (_, port) = try startServer(self) { server in
            server.onRequest = { request in
                let connection = try? request.accept()
                connection?.onClose = { code, _ in closes.append(code) }
                connection?.onMessage = { _ in connection?.drop(code: .policyViolation, description: "go") }
            }
        }
        let client = try RawClient(port: port)
        try client.upgrade()
        try client.sendText("x")
        let frames = try client.readUntilClosed()
        XCTAssertEqual(frames.map { RawClient.closeCode($0) }, [1008])
        XCTAssertEqual(closes.waitForCount(1), [.policyViolation])
    }

    func testKeepaliveDropsASilentPeer() throws {
        let closes = EventLog<WebSocketCloseCode>()
        let (_, port) = try startServer(
            self,
            configure: {
                $0.connection.keepalive = true
                $0.connection.keepaliveInterval = .milliseconds(200)
                $0.connection.keepaliveGracePeriod = .milliseconds(200)
            }
        ) { server in
            server.onRequest = { request in
                let connection = try? request.accept()
                connection?.onClose = { code, _ in closes.append(code) }
            }
        }
        let client = try RawClient(port: port)
        try client.upgrade()
        // The client never answers the keepalive ping.
        let frames = try client.readUntilClosed()
        XCTAssertEqual(frames.map(\.opcode), [.ping])
        XCTAssertEqual(closes.waitForCount(1), [.abnormalClosure])
    }

    func testKeepaliveKeepsAnsweringPeerOpen() throws {
        let (server, port) = try startServer(
            self,
            configure: {
                $0.connection.keepalive = true
                $0.connection.keepaliveInterval = .milliseconds(100)
                $0.connection.keepaliveGracePeriod = .seconds(5)  // generous: a loaded CI machine must not drop us
            }
        ) { server in
            server.onRequest = { request in _ = try? request.accept() }
        }
        let client = try RawClient(port: port)
        try client.upgrade()
        for _ in 0..<4 {
            let ping = try XCTUnwrap(client.readFrame())
            XCTAssertEqual(ping.opcode, .ping)
            try client.send(.pong, ping.payload)
        }
        XCTAssertEqual(server.connections.count, 1)
    }

    func testOversizedMessageClosesWith1009() throws {
        let fixture = try startEchoServer(self) { $0.connection.maxReceivedMessageSize = 1000 }
        let client = try RawClient(port: fixture.port)
        try client.upgrade()
        try client.send(.binary, Array(repeating: 7, count: 600), fin: false)
        try client.send(.continuation, Array(repeating: 7, count: 600))
        let frames = try client.readUntilClosed()
        XCTAssertEqual(frames.compactMap { RawClient.closeCode($0) }, [1009])
        XCTAssertEqual(fixture.errors.waitForCount(1), [.messageTooBig])
        XCTAssertEqual(fixture.closes.waitForCount(1)[0].0, .messageTooBig)
    }

    func testInvalidUTF8ClosesWith1007() throws {
        let fixture = try startEchoServer(self)
        let client = try RawClient(port: fixture.port)
        try client.upgrade()
        try client.send(.text, [0xCE, 0xBA, 0xED, 0xA0, 0x80])
        XCTAssertEqual(try client.readUntilClosed().compactMap { RawClient.closeCode($0) }, [1007])
    }

    func testSubprotocolNegotiation() throws {
        let fixture = try startEchoServer(self)
        let client = try RawClient(port: fixture.port)
        let head = try client.upgrade(protocols: ["chat", "superchat"])
        XCTAssertTrue(head.contains("Sec-WebSocket-Protocol: chat\r\n"), head)
    }

    func testAcceptingAProtocolTheClientDidNotOfferThrows() throws {
        let outcome = EventLog<String>()
        let (_, port) = try startServer(self) { server in
            server.onRequest = { request in
                do throws(WebSocketError) {
                    _ = try request.accept(protocol: "other")
                    outcome.append("accepted")
                } catch {
                    outcome.append("\(error.code)")
                    request.reject(status: 400)
                }
            }
        }
        let client = try RawClient(port: port)
        XCTAssertThrowsError(try client.upgrade(protocols: ["chat"]))
        XCTAssertEqual(outcome.waitForCount(1), ["invalidArgument"])
    }

    func testRequestCarriesPathQueryOriginCookiesAndAddress() throws {
        let seen = EventLog<WebSocketRequest>()
        let (_, port) = try startServer(self) { server in
            server.onRequest = { request in
                seen.append(request)
                request.reject(status: 403, reason: "no")
            }
        }
        let client = try RawClient(port: port)
        XCTAssertThrowsError(
            try client.upgrade(
                path: "/room%201?name=J%C3%BCrgen&flag", protocols: ["a", "b"],
                extraHeaders: "Origin: http://example.com\r\nCookie: id=42; theme=dark\r\nX-Forwarded-For: 6.6.6.6\r\n"
                    + "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits, x-foo\r\n"))
        let request = seen.waitForCount(1)[0]
        XCTAssertEqual(request.path, "/room 1")
        XCTAssertEqual(request.resource, "/room%201?name=J%C3%BCrgen&flag")
        XCTAssertEqual(
            request.queryItems,
            [WebSocketQueryItem(name: "name", value: "Jürgen"), WebSocketQueryItem(name: "flag", value: nil)])
        XCTAssertEqual(request.origin, "http://example.com")
        XCTAssertEqual(request.cookies, ["id": "42", "theme": "dark"])
        XCTAssertEqual(request.requestedProtocols, ["a", "b"])
        XCTAssertEqual(request.requestedExtensions.map(\.name), ["permessage-deflate", "x-foo"])
        XCTAssertEqual(request.remoteAddress, "127.0.0.1", "X-Forwarded-For is not trusted by default")
        XCTAssertEqual(request.webSocketVersion, 13)
        XCTAssertEqual(request.headers["x-forwarded-for"], "6.6.6.6")
    }

    func testTrustedForwardedForSetsTheRemoteAddress() throws {
        let seen = EventLog<WebSocketRequest>()
        let (_, port) = try startServer(self, configure: { $0.trustXForwardedFor = true }) { server in
            server.onRequest = { request in
                seen.append(request)
                request.reject()
            }
        }
        let client = try RawClient(port: port)
        XCTAssertThrowsError(try client.upgrade(extraHeaders: "X-Forwarded-For: 6.6.6.6, 10.0.0.1\r\n"))
        let request = seen.waitForCount(1)[0]
        XCTAssertEqual(request.remoteAddress, "6.6.6.6")
        XCTAssertEqual(request.remoteAddresses, ["6.6.6.6", "10.0.0.1", "127.0.0.1"])
    }

    func testRejectSendsTheStatusAndCloses() throws {
        let (_, port) = try startServer(self) { server in
            server.onRequest = { request in
                request.reject(status: 401, reason: "who are you", headers: ["X-Why": "token"])
            }
        }
        let client = try RawClient(port: port)
        try client.write(
            "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        let response = try client.readHTTPResponse()
        XCTAssertTrue(response.head.hasPrefix("HTTP/1.1 401"), response.head)
        XCTAssertTrue(response.head.contains("X-Why: token"))
        XCTAssertEqual(response.body, "who are you\n")
        XCTAssertEqual(try client.readUntilClosed(), [])
    }

    func testAcceptCanComeLaterThanTheEvent() throws {
        let (_, port) = try startServer(self) { server in
            server.onRequest = { request in
                DispatchQueue.global().asyncAfter(deadline: .now() + .milliseconds(50)) {
                    // From another thread, handlers go in `configure` so no message can beat them.
                    _ = try? request.accept { connection in
                        connection.onMessage = { connection.send($0) }
                    }
                }
            }
        }
        let client = try RawClient(port: port)
        try client.upgrade()
        try client.sendText("later")
        XCTAssertEqual(try client.readFrame()?.payload, Array("later".utf8))
    }

    func testHandshakeErrorsGetTheirStatus() throws {
        let fixture = try startEchoServer(self)
        let cases: [(String, String)] = [
            (
                "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n\r\n",
                "426"
            ),
            (
                "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: c2hvcnQ=\r\nSec-WebSocket-Version: 13\r\n\r\n",
                "400"
            ),
            (
                "GET / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
                "400"
            ),
            (
                "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: keep-alive\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
                "400"
            ),
            (
                "GET / HTTP/1.0\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
                "400"
            ),
            (
                "BREW / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
                "40"
            ),
            ("GARBAGE\r\n\r\n", "400"),
            ("GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + String(repeating: "a", count: 20_000) + "\r\n\r\n", "431"),
        ]
        for (request, status) in cases {
            let client = try RawClient(port: fixture.port)
            try client.write(request)
            let head = try client.readHTTPHead()
            XCTAssertTrue(head.hasPrefix("HTTP/1.1 \(status)"), "\(request.prefix(60)) → \(head)")
            if status == "426" { XCTAssertTrue(head.contains("Sec-WebSocket-Version: 13"), head) }
        }
        // Connection is a token list: keep-alive, Upgrade is a valid upgrade.
        let client = try RawClient(port: fixture.port)
        try client.write(
            "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: WebSocket\r\nConnection: keep-alive, Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        XCTAssertTrue(try client.readHTTPHead().hasPrefix("HTTP/1.1 101"))
    }

    func testHandshakeTimeoutDropsAClientThatDribbles() throws {
        let (_, port) = try startServer(self, configure: { $0.handshakeTimeout = .milliseconds(300) }) { server in
            server.onRequest = { request in _ = try? request.accept() }
        }
        let client = try RawClient(port: port)
        try client.write("GET / HTTP/1.1\r\n")
        var closed = false
        for _ in 0..<200 {  // keeps sending a header byte at a time; must still be cut off
            do {
                try client.write("X")
            } catch {
                closed = true
                break
            }
            usleep(10_000)
        }
        if !closed { XCTAssertEqual(try client.readUntilClosed(), []) }
    }

    func testPlainHTTPGoesToTheAppHandlerWithKeepAlive() throws {
        let (_, port) = try startServer(self) { server in
            server.onHTTPRequest = { request in
                if request.path == "/" {
                    return HTTPResponse(status: 200, contentType: "text/html", body: "<h1>hi</h1>")
                }
                if request.method == "POST" {
                    return HTTPResponse(status: 200, body: "got \(request.body.count) bytes")
                }
                return HTTPResponse(status: 404, body: "no \(request.path)")
            }
        }
        let client = try RawClient(port: port)
        try client.write("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        var response = try client.readHTTPResponse()
        XCTAssertTrue(response.head.hasPrefix("HTTP/1.1 200"))
        XCTAssertTrue(response.head.contains("Content-Type: text/html"))
        XCTAssertEqual(response.body, "<h1>hi</h1>")
        // Same connection: keep-alive.
        try client.write("POST /form HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello")
        response = try client.readHTTPResponse()
        XCTAssertEqual(response.body, "got 5 bytes")
        try client.write("GET /missing HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        response = try client.readHTTPResponse()
        XCTAssertTrue(response.head.hasPrefix("HTTP/1.1 404"))
        XCTAssertTrue(response.head.contains("Connection: close"))
        XCTAssertEqual(try client.readUntilClosed(), [])
    }

    func testPlainHTTPWithoutAHandlerGets426() throws {
        let fixture = try startEchoServer(self)
        let client = try RawClient(port: fixture.port)
        try client.write("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        XCTAssertTrue(try client.readHTTPResponse().head.hasPrefix("HTTP/1.1 426"))
    }

    func testIPv6Loopback() throws {
        let server = WebSocketServer()
        server.onRequest = { request in
            let connection = try? request.accept()
            connection?.onMessage = { connection?.send($0) }
        }
        let address: SocketAddress
        do {
            address = try server.listen(host: "::1", port: 0)
        } catch {
            throw XCTSkip("no IPv6 loopback here: \(error)")
        }
        defer { server.shutDown() }
        XCTAssertEqual(address.host, "::1")
        let client = try RawClient(port: address.port, host: "::1")
        try client.upgrade()
        try client.sendText("six")
        XCTAssertEqual(try client.readFrame()?.payload, Array("six".utf8))
    }

    func testSendCompletionAndSendingFromAnotherThread() throws {
        let completions = EventLog<String>()
        let (_, port) = try startServer(self) { server in
            server.onRequest = { request in
                guard let connection = try? request.accept() else { return }
                DispatchQueue.global().async {
                    connection.sendUTF("from elsewhere") { error in
                        completions.append(error.map { "\($0.code)" } ?? "sent")
                    }
                }
            }
        }
        let client = try RawClient(port: port)
        try client.upgrade()
        XCTAssertEqual(try client.readFrame()?.payload, Array("from elsewhere".utf8))
        XCTAssertEqual(completions.waitForCount(1), ["sent"])
    }

    func testServerEventsAndShutDownClosesWith1001() throws {
        let connects = EventLog<Int>()
        let closes = EventLog<WebSocketCloseCode>()
        let server = WebSocketServer(
            configuration: {
                var c = WebSocketServer.Configuration()
                c.autoAcceptConnections = true
                return c
            }())
        server.onConnect = { _ in connects.append(1) }
        server.onClose = { _, code, _ in closes.append(code) }
        let port = try server.listen(port: 0).port
        let client = try RawClient(port: port)
        try client.upgrade()
        connects.waitForCount(1)
        XCTAssertEqual(server.connections.count, 1)
        let done = EventLog<Int>()
        server.shutDown { done.append(1) }
        let frame = try XCTUnwrap(client.readFrame())
        XCTAssertEqual(RawClient.closeCode(frame), 1001)
        try client.sendClose(code: 1001)
        XCTAssertEqual(try client.readUntilClosed(), [])
        done.waitForCount(1)
        XCTAssertEqual(closes.all, [.goingAway])
        XCTAssertTrue(server.connections.isEmpty)
        XCTAssertThrowsError(try RawClient(port: port), "no longer listening")
    }

    func testBroadcastReachesEveryConnection() throws {
        let connects = EventLog<Int>()
        let (server, port) = try startServer(self, configure: { $0.autoAcceptConnections = true }) { server in
            server.onConnect = { _ in connects.append(1) }
        }
        let clients = try (0..<5).map { _ in try RawClient(port: port) }
        for client in clients { try client.upgrade() }
        connects.waitForCount(5)
        server.broadcastUTF("to all")
        server.broadcastBytes([1, 2, 3])
        for client in clients {
            XCTAssertEqual(try client.readFrame(), WebSocketFrame(opcode: .text, payload: Array("to all".utf8)))
            XCTAssertEqual(try client.readFrame(), WebSocketFrame(opcode: .binary, payload: [1, 2, 3]))
        }
    }

    func testPeerResetEndsTheConnectionWith1006() throws {
        let fixture = try startEchoServer(self)
        do {
            let client = try RawClient(port: fixture.port)
            try client.upgrade()
            var linger = linger(l_onoff: 1, l_linger: 0)  // close() sends RST
            setsockopt(client.fd, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<linger>.size))
        }
        XCTAssertEqual(fixture.closes.waitForCount(1)[0].0, .abnormalClosure)
    }
}

extension ServerIntegrationTests {
    func testListeningSocketDefersAcceptOnlyWhenAsked() throws {
        #if os(Linux)
        func deferSeconds(_ socket: Socket) -> Int32 {
            var value: Int32 = -1
            var length = socklen_t(MemoryLayout<Int32>.size)
            getsockopt(socket.fd, Int32(IPPROTO_TCP), TCP_DEFER_ACCEPT, &value, &length)
            return value
        }
        let (deferring, _) = try Socket.listen(host: "127.0.0.1", port: 0, backlog: 8, deferAcceptSeconds: 5)
        defer { deferring.close() }
        let (plain, _) = try Socket.listen(host: "127.0.0.1", port: 0, backlog: 8, deferAcceptSeconds: 0)
        defer { plain.close() }
        XCTAssertGreaterThan(deferSeconds(deferring), 0)
        XCTAssertEqual(deferSeconds(plain), 0)
        #endif
    }

    func testServerWithoutDeferredAcceptServesUpgrades() throws {
        let (_, port) = try startServer(self, configure: { $0.deferAccept = .zero }) { server in
            server.onRequest = { request in _ = try? request.accept() }
        }
        let client = try RawClient(port: port)
        try client.write(
            "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        XCTAssertTrue(try client.readHTTPHead().hasPrefix("HTTP/1.1 101"))
    }
}
