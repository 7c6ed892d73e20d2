import TestSupport
import XCTest

@testable import DispatchWebSocket

#if canImport(Glibc)
import Glibc
#endif

/// Handing sockets to the library: `handleUpgrade` with connections the app accepted (and
/// partly read) itself, over plain and TLS servers, and `listen(fileDescriptor:)` for a socket
/// that already listens; wrong descriptors are typed errors and stay the caller's.
final class EmbeddingTests: XCTestCase {
    private let request = Array(
        ("GET /embedded?via=app HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
            + "Sec-WebSocket-Protocol: echo\r\n\r\n").utf8)

    /// An echo server that never listens; `requests` records each request's resource.
    private func embeddedServer(
        requests: EventLog<String>? = nil, configure: (inout WebSocketServer.Configuration) -> Void = { _ in }
    ) -> WebSocketServer {
        var configuration = WebSocketServer.Configuration()
        configuration.connection.keepalive = false
        configure(&configuration)
        let server = WebSocketServer(configuration: configuration)
        server.onRequest = { request in
            requests?.append("\(request.resource) from \(request.socketAddress?.description ?? "nil")")
            let connection = try? request.accept(protocol: request.requestedProtocols.first)
            connection?.onMessage = { connection?.send($0) }
        }
        server.onHTTPRequest = { request in HTTPResponse(status: 200, body: Array("page \(request.path)".utf8)) }
        addTeardownBlock {
            let done = DispatchSemaphore(value: 0)
            server.shutDown { done.signal() }
            _ = done.wait(timeout: .now() + 15)
        }
        return server
    }

    private func socketPair() -> (client: Int32, server: Int32) {
        var fds: [Int32] = [-1, -1]
        XCTAssertEqual(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds), 0)
        return (fds[0], fds[1])
    }

    /// Reads exactly `count` bytes (blocking), as an app that read part of the request does.
    private static func readExactly(_ fd: Int32, _ count: Int) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        var got = 0
        while got < count {
            let n = bytes.withUnsafeMutableBytes { read(fd, $0.baseAddress! + got, count - got) }
            guard n > 0 else { break }
            got += n
        }
        return Array(bytes.prefix(got))
    }

    private func text(_ frame: WebSocketFrame?) -> String? {
        frame.map { String(decoding: $0.payload, as: UTF8.self) }
    }

    func testHandleUpgradeWithTheRequestSplitAnywhereBetweenTheAppsReadAndOurs() throws {
        let requests = EventLog<String>()
        let server = embeddedServer(requests: requests)
        try warmUpDescriptors()
        let baseline = openDescriptors()
        // The request and a first frame in the same bytes: the split also falls inside the frame.
        let frame = WebSocketFrame(fin: true, opcode: .text, maskingKey: .random(), payload: Array("first frame".utf8))
            .encoded()
        let bytes = request + frame
        for split in 0...bytes.count {
            let (clientFD, serverFD) = socketPair()
            let client = RawClient(connectedFD: clientFD)
            try client.write(bytes)
            let alreadyRead = Self.readExactly(serverFD, split)
            XCTAssertEqual(alreadyRead.count, split)
            try server.handleUpgrade(socket: serverFD, initialBytes: alreadyRead)
            let head = try client.readHTTPHead()
            XCTAssertTrue(head.hasPrefix("HTTP/1.1 101"), "split \(split): \(head)")
            XCTAssertTrue(head.contains("Sec-WebSocket-Protocol: echo"), "split \(split): \(head)")
            XCTAssertEqual(text(try client.readFrame()), "first frame", "split \(split)")
            try client.sendText("after split \(split)")
            XCTAssertEqual(text(try client.readFrame()), "after split \(split)")
            try client.sendClose(code: 1000)
            XCTAssertEqual(try client.readUntilClosed().last.flatMap(RawClient.closeCode), 1000)
        }
        XCTAssertEqual(requests.all.count, bytes.count + 1)
        XCTAssertEqual(Set(requests.all), ["/embedded?via=app from unix:"])
        waitUntil({ server.connections.count }, equals: 0)
        waitUntil(openDescriptors, equals: baseline)
    }

    func testHandleUpgradeOfATCPConnectionTheAppAcceptedAndPlainHTTP() throws {
        let requests = EventLog<String>()
        let server = embeddedServer(requests: requests)
        // The app's own listener, accepting with blocking calls.
        let (listening, address) = try Socket.listen(host: "127.0.0.1", port: 0, backlog: 8)
        defer { listening.close() }
        _ = fcntl(listening.fd, F_SETFL, fcntl(listening.fd, F_GETFL) & ~O_NONBLOCK)

        let client = try RawClient(port: address.port)
        try client.write(request)
        let accepted = accept(listening.fd, nil, nil)
        XCTAssertGreaterThanOrEqual(accepted, 0)
        // The app reads the request line to decide where it goes, then hands the socket over.
        let line = Self.readExactly(accepted, 20)
        XCTAssertEqual(String(decoding: line, as: UTF8.self), "GET /embedded?via=ap")
        try server.handleUpgrade(socket: accepted, initialBytes: line)
        XCTAssertTrue(try client.readHTTPHead().hasPrefix("HTTP/1.1 101"))
        try client.sendText("tcp")
        XCTAssertEqual(text(try client.readFrame()), "tcp")
        let clientPort = Socket(fd: client.fd).localAddress()?.port ?? -1
        XCTAssertEqual(
            requests.all, ["/embedded?via=app from 127.0.0.1:\(clientPort)"], "the peer comes from getpeername")

        // A plain HTTP request handed over is answered by onHTTPRequest, keep-alive included.
        let http = try RawClient(port: address.port)
        try http.write("GET /page HTTP/1.1\r\nHost: localhost\r\n\r\nGET /again HTTP/1.1\r\nHost: localhost\r\n\r\n")
        let httpFD = accept(listening.fd, nil, nil)
        try server.handleUpgrade(socket: httpFD, initialBytes: Self.readExactly(httpFD, 7))
        XCTAssertEqual(try http.readHTTPResponse().body, "page /page")
        XCTAssertEqual(try http.readHTTPResponse().body, "page /again")
    }

    func testOneListenerOfTheAppFeedsTwoServersByPath() throws {
        func greeter(_ name: String, maxMessageBytes: Int) -> WebSocketServer {
            var configuration = WebSocketServer.Configuration()
            configuration.connection.keepalive = false
            configuration.connection.maxReceivedMessageSize = maxMessageBytes
            configuration.connection.maxReceivedFrameSize = maxMessageBytes
            let server = WebSocketServer(configuration: configuration)
            server.onRequest = { request in
                let connection = try? request.accept()
                connection?.onMessage = { message in
                    if case .text(let text) = message { connection?.sendUTF("\(name):\(text)") }
                }
            }
            addTeardownBlock {
                let done = DispatchSemaphore(value: 0)
                server.shutDown { done.signal() }
                _ = done.wait(timeout: .now() + 15)
            }
            return server
        }
        let small = greeter("small", maxMessageBytes: 16)
        let large = greeter("large", maxMessageBytes: 1 << 20)
        for (path, expected) in [("/small", "small:hello"), ("/large", "large:hello")] {
            let (clientFD, serverFD) = socketPair()
            let client = RawClient(connectedFD: clientFD)
            let head =
                "GET \(path) HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
            try client.write(head)
            let line = Self.readExactly(serverFD, 10)  // "GET /small" or "GET /large"
            let target = String(decoding: line, as: UTF8.self).hasSuffix("/small") ? small : large
            try target.handleUpgrade(socket: serverFD, initialBytes: line)
            XCTAssertTrue(try client.readHTTPHead().hasPrefix("HTTP/1.1 101"))
            try client.sendText("hello")
            XCTAssertEqual(text(try client.readFrame()), expected)
            // Each server applies its own limits.
            try client.sendText(String(repeating: "x", count: 100))
            if path == "/small" {
                XCTAssertEqual(try client.readUntilClosed().last.flatMap(RawClient.closeCode), 1009)
            } else {
                XCTAssertEqual(text(try client.readFrame()), "large:" + String(repeating: "x", count: 100))
            }
        }
    }

    func testHandleUpgradeOnATLSServerTakesTheStartOfTheClientHello() throws {
        let pki = try TestPKI.require()
        let server = embeddedServer { configuration in
            configuration.tls = TLSServerConfiguration(
                identity: .pemFiles(
                    certificateChain: pki.serverChainPath, privateKey: pki.serverKeyPath))
        }
        let (clientFD, serverFD) = socketPair()
        let client = RawClient(connectedFD: clientFD)
        let handedOver = EventLog<String>()
        DispatchQueue.global().async {
            // The app peeks at the TLS record header (say, to route by SNI), then hands over.
            let header = EmbeddingTests.readExactly(serverFD, 5)
            do {
                try server.handleUpgrade(socket: serverFD, initialBytes: header)
                handedOver.append("ok:\(header.first ?? 0)")
            } catch {
                handedOver.append("error:\(error)")
            }
        }
        try client.startTLS(caFile: pki.caPath, serverName: "localhost")
        XCTAssertEqual(handedOver.waitForCount(1), ["ok:22"], "a TLS handshake record starts with 22")
        try client.upgrade(path: "/secure")
        try client.sendText("through tls")
        XCTAssertEqual(text(try client.readFrame()), "through tls")
        try client.sendClose(code: 1000)
        XCTAssertEqual(try client.readUntilClosed().last.flatMap(RawClient.closeCode), 1000)
    }

    func testInitialBytesCountAgainstMaxHeaderBytes() throws {
        let server = embeddedServer { $0.maxHeaderBytes = 1024 }
        let (clientFD, serverFD) = socketPair()
        let client = RawClient(connectedFD: clientFD)
        let oversized = Array("GET / HTTP/1.1\r\nX-Padding: ".utf8) + [UInt8](repeating: UInt8(ascii: "a"), count: 4096)
        try server.handleUpgrade(socket: serverFD, initialBytes: oversized)
        XCTAssertTrue(try client.readHTTPHead().hasPrefix("HTTP/1.1 431"))
    }

    func testListenOnAnAlreadyListeningDescriptor() throws {
        let server = WebSocketServer()
        try warmUpDescriptors()
        let baseline = openDescriptors()
        let (fd, _) = try Loopback.bind(listeningWithBacklog: 16)
        let expected = Socket(fd: fd).localAddress()

        server.onRequest = { request in
            let connection = try? request.accept()
            connection?.onMessage = { connection?.send($0) }
        }
        let listening = try server.listen(fileDescriptor: fd)
        XCTAssertEqual(listening, expected)
        XCTAssertEqual(server.localAddress, expected)
        XCTAssertNotEqual(fcntl(fd, F_GETFL) & O_NONBLOCK, 0, "the server made it non-blocking")

        // A second listener on a server that listens is refused, and stays the caller's.
        let other = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        XCTAssertEqual(listen(other, 1), 0)
        XCTAssertThrowsError(try server.listen(fileDescriptor: other)) {
            XCTAssertEqual(($0 as? WebSocketError)?.code, .invalidArgument)
        }
        XCTAssertNotEqual(fcntl(other, F_GETFD), -1)
        close(other)

        do {
            let client = try RawClient(port: listening.port)
            try client.upgrade()
            try client.sendText("activated")
            XCTAssertEqual(text(try client.readFrame()), "activated")
            try client.sendClose(code: 1000)
            _ = try client.readUntilClosed()
        }
        let done = DispatchSemaphore(value: 0)
        server.shutDown { done.signal() }
        XCTAssertEqual(done.wait(timeout: .now() + 15), .success)
        waitUntil(openDescriptors, equals: baseline)  // the server closed the descriptor it took
    }

    func testDescriptorsThatDoNotFitAreTypedErrorsAndStayTheCallers() throws {
        let server = embeddedServer()
        try warmUpDescriptors()
        let baseline = openDescriptors()
        func expect(
            _ code: WebSocketError.Code, errno expectedErrno: Int32? = nil, line: UInt = #line,
            _ body: () throws -> Void
        ) {
            XCTAssertThrowsError(try body(), line: line) { error in
                XCTAssertEqual((error as? WebSocketError)?.code, code, "\(error)", line: line)
                if let expectedErrno { XCTAssertEqual((error as? WebSocketError)?.errno, expectedErrno, line: line) }
            }
        }
        var pipeFDs: [Int32] = [-1, -1]
        XCTAssertEqual(pipe(&pipeFDs), 0)
        expect(.invalidArgument, errno: ENOTSOCK) {
            try server.handleUpgrade(socket: pipeFDs[0], initialBytes: [1, 2])
        }
        expect(.invalidArgument, errno: ENOTSOCK) { try server.listen(fileDescriptor: pipeFDs[0]) }
        XCTAssertNotEqual(fcntl(pipeFDs[0], F_GETFD), -1, "still open: it stays the caller's")
        XCTAssertEqual(fcntl(pipeFDs[0], F_GETFL) & O_NONBLOCK, 0, "and untouched")

        expect(.invalidArgument, errno: EBADF) { try server.handleUpgrade(socket: -1) }
        expect(.invalidArgument, errno: EBADF) { try server.listen(fileDescriptor: 1_000_000) }

        let udp = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        expect(.invalidArgument) { try server.handleUpgrade(socket: udp) }
        expect(.invalidArgument) { try server.listen(fileDescriptor: udp) }

        let unconnected = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        expect(.notConnected) { try server.handleUpgrade(socket: unconnected) }
        expect(.invalidArgument) { try server.listen(fileDescriptor: unconnected) }

        let (listening, _) = try Socket.listen(host: "127.0.0.1", port: 0, backlog: 1)
        expect(.invalidArgument) { try server.handleUpgrade(socket: listening.fd) }

        let (a, b) = socketPair()
        expect(.invalidArgument) { try server.listen(fileDescriptor: a) }
        XCTAssertNil(server.localAddress)

        for fd in [pipeFDs[0], pipeFDs[1], udp, unconnected, listening.fd, a, b] {
            XCTAssertEqual(close(fd), 0, "descriptor \(fd) was still open")
        }
        waitUntil(openDescriptors, equals: baseline)
    }

    func testSocketActivationDescriptorsFollowLISTEN_PIDAndLISTEN_FDS() {
        let pid: pid_t = 4242
        XCTAssertEqual(
            WebSocketServer.socketActivationFileDescriptors(listenPID: "4242", listenFDs: "2", pid: pid), [3, 4])
        XCTAssertEqual(
            WebSocketServer.socketActivationFileDescriptors(listenPID: "1", listenFDs: "2", pid: pid), [],
            "descriptors meant for another process")
        XCTAssertEqual(WebSocketServer.socketActivationFileDescriptors(listenPID: nil, listenFDs: "2", pid: pid), [])
        XCTAssertEqual(WebSocketServer.socketActivationFileDescriptors(listenPID: "4242", listenFDs: "x", pid: pid), [])
        XCTAssertEqual(WebSocketServer.socketActivationFileDescriptors(listenPID: "4242", listenFDs: "0", pid: pid), [])
        XCTAssertEqual(WebSocketServer.socketActivationFileDescriptors(), [], "not started by systemd")
    }
}

/// Runs a connection on each loop of a throwaway server, so that the descriptors the loops
/// (each its epoll set) and libdispatch open once, lazily, are open before a test takes its
/// descriptor baseline.
func warmUpDescriptors() throws {
    let server = WebSocketServer()
    server.onRequest = { _ = try? $0.accept() }
    for _ in 0..<server.group.loops.count {
        var fds: [Int32] = [-1, -1]
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds) == 0 else {
            throw RawClient.Failure(description: "socketpair failed: errno \(errno)")
        }
        let client = RawClient(connectedFD: fds[0])
        try server.handleUpgrade(socket: fds[1])
        try client.upgrade()
        try client.sendClose(code: 1000)
        _ = try client.readUntilClosed()
    }
    let done = DispatchSemaphore(value: 0)
    server.shutDown { done.signal() }
    _ = done.wait(timeout: .now() + 15)
}
