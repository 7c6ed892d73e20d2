import XCTest

@testable import DispatchWebSocket

/// Our client and our server over loopback with permessage-deflate: each parameter combination,
/// large and fragmented messages, both context-takeover modes; and the wire seen by a raw client.
final class PerMessageDeflateLoopbackTests: XCTestCase {
    /// Connects a client with `client` options to an echo server with `server` options, sends
    /// `messages`, and checks every echo. Returns the extensions both ends report.
    @discardableResult
    private func echo(
        server serverOptions: PerMessageDeflateOptions?, client clientOptions: PerMessageDeflateOptions?,
        messages: [WebSocketMessage], fragment: Int? = nil, file: StaticString = #filePath, line: UInt = #line
    ) throws -> (client: String, server: String) {
        let serverExtensions = EventLog<String>()
        let (_, port) = try startServer(
            self,
            configure: {
                $0.perMessageDeflate = serverOptions
                if let fragment { $0.connection.fragmentationThreshold = fragment }
            }
        ) { server in
            server.onRequest = { request in
                guard let connection = try? request.accept() else { return }
                serverExtensions.append(connection.extensions)
                connection.onMessage = { connection.send($0) }
            }
        }
        var configuration = WebSocketClient.Configuration()
        configuration.perMessageDeflate = clientOptions
        if let fragment { configuration.connection.fragmentationThreshold = fragment }
        let client = WebSocketClient(configuration: configuration)
        let received = EventLog<String>()  // summaries: a failure must not print megabytes
        let opened = EventLog<WebSocketConnection>()
        let closes = EventLog<WebSocketCloseCode>()
        client.onConnect = { connection in
            connection.onMessage = { received.append(Self.summary($0)) }
            connection.onClose = { code, _ in closes.append(code) }
            opened.append(connection)
            for message in messages { connection.send(message) }
        }
        client.onConnectFailed = { XCTFail("connect failed: \($0)") }
        client.connect(url: "ws://127.0.0.1:\(port)/")
        let connection = try XCTUnwrap(opened.waitForCount(1, file: file, line: line).first, file: file, line: line)
        let echoes = received.waitForCount(messages.count, file: file, line: line)
        XCTAssertEqual(echoes.count, messages.count, file: file, line: line)
        for (index, (echo, sent)) in zip(echoes, messages.map(Self.summary)).enumerated() where echo != sent {
            XCTFail("echo \(index) differs", file: file, line: line)
        }
        connection.close()
        closes.waitForCount(1, file: file, line: line)
        XCTAssertEqual(closes.all.first, .normalClosure, file: file, line: line)
        return (connection.extensions, serverExtensions.all.first ?? "")
    }

    private static func summary(_ message: WebSocketMessage) -> String {
        switch message {
        case .text(let text): return "text \(text.utf8.count) \(text.hashValue)"
        case .binary(let bytes): return "binary \(bytes.count) \(bytes.hashValue)"
        }
    }

    private static func text(_ count: Int, seed: UInt64) -> String {
        var generator = SplitMix64(seed: seed)
        let words = ["{\"id\":", "\"name\":", "\"chat\",", "\"room\":", "42,", "true}", " ", "ü", "€", "𝄞"]
        var text = ""
        while text.utf8.count < count { text += words.randomElement(using: &generator)! }
        return text
    }

    private static let messages: [WebSocketMessage] = [
        .text("short"),  // below the threshold: sent uncompressed
        .text(text(5_000, seed: 1)),
        .text(text(5_000, seed: 1)),  // the same again: context takeover helps
        .binary((0..<300_000).map { UInt8(truncatingIfNeeded: $0 &* 31 >> 3) }),
        .text(text(200_000, seed: 2)),
        .binary([]),
        .binary((0..<70_000).map { _ in UInt8.random(in: 0...255) }),  // incompressible
    ]

    func testEveryParameterCombinationEchoes() throws {
        for serverNoContext in [false, true] {
            for clientNoContext in [false, true] {
                for (serverBits, clientBits) in [(15, 15), (9, 9), (12, 10)] {
                    let options = PerMessageDeflateOptions(
                        serverMaxWindowBits: serverBits, clientMaxWindowBits: clientBits,
                        serverNoContextTakeover: serverNoContext, clientNoContextTakeover: clientNoContext)
                    let (client, server) = try echo(server: options, client: options, messages: Self.messages)
                    XCTAssertEqual(client, server)
                    XCTAssertTrue(client.hasPrefix("permessage-deflate"), client)
                    XCTAssertEqual(client.contains("server_no_context_takeover"), serverNoContext, client)
                    XCTAssertEqual(client.contains("client_no_context_takeover"), clientNoContext, client)
                }
            }
        }
    }

    func testFragmentedCompressedMessagesEcho() throws {
        try echo(server: .init(), client: .init(), messages: Self.messages, fragment: 1000)
        try echo(
            server: PerMessageDeflateOptions(serverNoContextTakeover: false), client: .init(), messages: Self.messages,
            fragment: 7)
    }

    func testDifferentSettingsOnEachEnd() throws {
        let (client, _) = try echo(
            server: PerMessageDeflateOptions(
                serverMaxWindowBits: 10, clientMaxWindowBits: 9, memoryLevel: 3, compressionLevel: 1),
            client: PerMessageDeflateOptions(
                serverMaxWindowBits: 13, clientMaxWindowBits: 15, serverNoContextTakeover: false,
                memoryLevel: 9, compressionLevel: 9, threshold: 0),
            messages: Self.messages)
        XCTAssertEqual(
            client,
            "permessage-deflate; server_no_context_takeover; server_max_window_bits=10; client_max_window_bits=9")
    }

    func testOffByDefaultOnTheServerAndWithoutAnOffer() throws {
        let off = try echo(server: nil, client: .init(), messages: Self.messages)
        XCTAssertEqual(off.client, "")
        XCTAssertEqual(off.server, "")
        let noOffer = try echo(server: .init(), client: nil, messages: Self.messages)
        XCTAssertEqual(noOffer.client, "")
    }

    /// The server's frames on the wire: RSV1 on the first frame of a compressed message only,
    /// small messages and `compress: false` uncompressed, compressed bytes counted and sent.
    func testWireFramesFromTheServer() throws {
        let big = Self.text(20_000, seed: 3)
        let (_, port) = try startServer(
            self,
            configure: {
                $0.perMessageDeflate = PerMessageDeflateOptions()
                $0.connection.fragmentationThreshold = 1000
            }
        ) { server in
            server.onRequest = { request in
                guard let connection = try? request.accept() else { return }
                connection.onMessage = { message in
                    guard case .text(let text) = message else { return }
                    switch text {
                    case "small": connection.sendUTF("tiny")
                    case "raw": connection.sendUTF(big, compress: false)
                    default: connection.sendUTF(big)
                    }
                }
            }
        }
        let raw = try RawClient(port: port)
        let head = try raw.upgrade(
            extraHeaders: "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n")
        XCTAssertTrue(
            head.contains(
                "Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; client_max_window_bits=12"),
            head)

        try raw.sendText("big")
        var frames: [WebSocketFrame] = []
        repeat { frames.append(try XCTUnwrap(raw.readFrame())) } while !frames.last!.fin
        XCTAssertTrue(frames[0].rsv1)
        XCTAssertFalse(frames.dropFirst().contains { $0.rsv1 })
        XCTAssertTrue(frames.allSatisfy { $0.payload.count <= 1000 })
        let compressed = frames.flatMap(\.payload)
        XCTAssertLessThan(compressed.count, big.utf8.count / 2)
        let inflater = try XCTUnwrap(ZlibInflater(windowBits: 15))
        _ = (compressed + [0, 0, 0xff, 0xff]).withUnsafeBytes { inflater.inflate($0, limit: 1 << 20) }
        XCTAssertEqual(String(decoding: inflater.output, as: UTF8.self), big)

        try raw.sendText("small")
        let small = try XCTUnwrap(raw.readFrame())
        XCTAssertFalse(small.rsv1)
        XCTAssertEqual(small.payload, Array("tiny".utf8))

        try raw.sendText("raw")
        var rawFrames: [WebSocketFrame] = []
        repeat { rawFrames.append(try XCTUnwrap(raw.readFrame())) } while !rawFrames.last!.fin
        XCTAssertFalse(rawFrames.contains { $0.rsv1 })
        XCTAssertEqual(String(decoding: rawFrames.flatMap(\.payload), as: UTF8.self), big)

        // A compressed message from the client is inflated; a zip bomb is closed with 1009.
        let deflater = try XCTUnwrap(ZlibDeflater(.init(windowBits: 15, memoryLevel: 8, level: 9)))
        let bomb = [UInt8](repeating: 0x61, count: 80 << 20).withUnsafeBytes { deflater.compress($0)! }
        try raw.send(.text, bomb, rsv1: true)
        let closing = try raw.readUntilClosed()
        XCTAssertEqual(closing.last.flatMap(RawClient.closeCode), 1009)
    }

    /// A browser-style offer (Chromium sends exactly this) and a server without deflate.
    func testBrowserOfferAndDeclinedOffer() throws {
        let (_, port) = try startServer(self, configure: { $0.perMessageDeflate = PerMessageDeflateOptions() }) {
            server in
            server.onRequest = { request in
                if request.path == "/off" { request.perMessageDeflate = nil }
                _ = try? request.accept()
            }
        }
        let raw = try RawClient(port: port)
        let head = try raw.upgrade(
            extraHeaders: "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n")
        XCTAssertTrue(head.contains("permessage-deflate"), head)
        let off = try RawClient(port: port)
        let offHead = try off.upgrade(path: "/off", extraHeaders: "Sec-WebSocket-Extensions: permessage-deflate\r\n")
        XCTAssertFalse(offHead.lowercased().contains("sec-websocket-extensions"), offHead)
        // A bad offer: the connection still opens, uncompressed, with no extensions header.
        let bad = try RawClient(port: port)
        let badHead = try bad.upgrade(extraHeaders: "Sec-WebSocket-Extensions: permessage-deflate; bogus\r\n")
        XCTAssertFalse(badHead.lowercased().contains("sec-websocket-extensions"), badHead)
    }

    /// The browser-style WebSocket offers deflate by default and says what was agreed.
    func testBrowserStyleWebSocketReportsExtensions() throws {
        let fixture = try startEchoServer(self) { $0.perMessageDeflate = PerMessageDeflateOptions() }
        let long = String(repeating: "browser ", count: 1000)
        let events = EventLog<Bool>()
        let opened = EventLog<Bool>()
        let socket = try WebSocket(url: "ws://127.0.0.1:\(fixture.port)/") { socket in
            socket.onopen = { opened.append(true) }
            socket.onmessage = { message in events.append(message == .text(long)) }
        }
        XCTAssertEqual(opened.waitForCount(1), [true])
        XCTAssertEqual(socket.readyState, .open)
        XCTAssertEqual(socket.extensions, "permessage-deflate; server_no_context_takeover; client_max_window_bits=12")
        try socket.send(long)
        XCTAssertEqual(events.waitForCount(1), [true])
        try socket.close()
    }

    /// A client refuses an answer it did not allow.
    func testClientFailsOnAnAnswerItDidNotAllow() throws {
        let server = try FakeServer { head in
            let answer =
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                + "Sec-WebSocket-Accept: \(FakeServer.acceptValue(head))\r\n"
                + "Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=16\r\n\r\n"
            return Array(answer.utf8)
        }
        server.serve()
        let client = WebSocketClient()
        let failures = EventLog<WebSocketError>()
        client.onConnect = { _ in XCTFail("connected") }
        client.onConnectFailed = { failures.append($0) }
        client.connect(url: "ws://127.0.0.1:\(server.port)/")
        let error = try XCTUnwrap(failures.waitForCount(1).first)
        XCTAssertEqual(error.code, .handshakeFailed)
        XCTAssertTrue("\(error)".contains("permessage-deflate"), "\(error)")
    }

    /// Broadcast to connections without server context takeover: every client gets the message.
    func testBroadcastToDeflateAndPlainConnections() throws {
        let (server, port) = try startServer(self, configure: { $0.perMessageDeflate = PerMessageDeflateOptions() }) {
            server in
            server.onRequest = { request in _ = try? request.accept() }
        }
        let long = Self.text(50_000, seed: 9)
        let received = EventLog<String>()
        var clients: [WebSocketClient] = []
        for index in 0..<6 {
            var configuration = WebSocketClient.Configuration()
            configuration.perMessageDeflate =
                index % 3 == 2 ? nil : PerMessageDeflateOptions(serverMaxWindowBits: index % 2 == 0 ? 15 : 11)
            let client = WebSocketClient(configuration: configuration)
            client.onConnect = { connection in
                connection.onMessage = { if case .text(let text) = $0 { received.append(text) } }
            }
            client.connect(url: "ws://127.0.0.1:\(port)/")
            clients.append(client)
        }
        let deadline = DispatchTime.now() + 10
        while server.connectionCount < 6 && DispatchTime.now() < deadline { usleep(2000) }
        let cache = BroadcastDeflateCache()
        server.broadcast(.text(long), cache: cache)
        let all = received.waitForCount(6)
        XCTAssertTrue(all.allSatisfy { $0 == long })
        XCTAssertEqual(Set(server.connections.map(\.extensions)).count, 3)
        // Four deflate connections with two window settings: compressed twice, not four times.
        XCTAssertEqual(cache.compressions, 2)
    }
}
