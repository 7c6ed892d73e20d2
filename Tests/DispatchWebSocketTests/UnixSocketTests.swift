import XCTest

@testable import DispatchWebSocket

#if canImport(Glibc)
import Glibc
#endif

/// Servers on Unix domain sockets (`listen(unixPath:)`) with our client (`ws+unix:` URLs) and a
/// raw client; stale socket files, permissions and paths too long for `sun_path`.
final class UnixSocketTests: XCTestCase {
    private var directory = ""

    override func setUpWithError() throws {
        var template = Array("/tmp/dws-unix-XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else { throw XCTSkip("mkdtemp failed: errno \(errno)") }
        directory = String(cString: made)
    }

    override func tearDown() {
        if let dir = opendir(directory) {
            while let entry = readdir(dir) {
                let name = withUnsafeBytes(of: entry.pointee.d_name) {
                    String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self)
                }
                if name != "." && name != ".." { unlink(directory + "/" + name) }
            }
            closedir(dir)
        }
        rmdir(directory)
    }

    private func echoServer(
        _ path: String, requests: EventLog<String>? = nil, removingStale: Bool = false, permissions: Int? = nil
    ) throws -> WebSocketServer {
        var configuration = WebSocketServer.Configuration()
        configuration.connection.keepalive = false
        let server = WebSocketServer(configuration: configuration)
        server.onRequest = { request in
            requests?.append("\(request.resource) peer=\(request.socketAddress?.description ?? "nil")")
            let connection = try? request.accept(protocol: request.requestedProtocols.first)
            connection?.onMessage = { connection?.send($0) }
        }
        try server.listen(unixPath: path, removingStaleSocket: removingStale, permissions: permissions)
        return server
    }

    private func shutDown(_ server: WebSocketServer) {
        let done = DispatchSemaphore(value: 0)
        server.shutDown { done.signal() }
        XCTAssertEqual(done.wait(timeout: .now() + 15), .success)
    }

    /// Leaves a socket file nobody listens on, as a crashed server does.
    private func makeStaleSocket(_ path: String) throws {
        let (socket, _) = try Socket.listen(unixPath: path, backlog: 1, removingStale: false, permissions: nil)
        socket.close()
    }

    private func exists(_ path: String) -> Bool {
        var info = stat()
        return lstat(path, &info) == 0
    }

    func testOurClientOverAUnixSocketAndTheFileIsRemovedOnShutDown() throws {
        try warmUpDescriptors()
        let baseline = openDescriptors()
        let path = directory + "/echo.sock"
        let requests = EventLog<String>()
        let server = try echoServer(path, requests: requests)
        XCTAssertEqual(server.localAddress?.unixPath, path)
        XCTAssertEqual(server.localAddress?.description, "unix:" + path)
        XCTAssertEqual(server.localAddress?.port, 0)

        let client = WebSocketClient()
        let events = EventLog<String>()
        client.onConnect = { connection in
            events.append("connect:\(connection.protocol ?? "-")")
            connection.onMessage = { message in
                if case .text(let text) = message { events.append("text:\(text)") }
                connection.close()
            }
            connection.onClose = { code, _ in events.append("close:\(code.rawValue)") }
            connection.sendUTF("over unix")
        }
        client.onConnectFailed = { events.append("failed:\($0)") }
        client.connect(url: "ws+unix://\(path):/chat?room=1", protocols: ["chat"])
        events.wait { $0.contains("close:1000") }
        XCTAssertEqual(events.all, ["connect:chat", "text:over unix", "close:1000"])
        XCTAssertEqual(requests.all, ["/chat?room=1 peer=unix:"], "an unnamed client socket")

        shutDown(server)
        XCTAssertFalse(exists(path), "shutDown removes the socket file")
        waitUntil(openDescriptors, equals: baseline)
    }

    func testTLSOverAUnixSocketVerifiesTheCertificateForLocalhost() throws {
        let pki = try TestPKI.require()
        let path = directory + "/tls.sock"
        var configuration = WebSocketServer.Configuration()
        configuration.connection.keepalive = false
        configuration.tls = TLSServerConfiguration(
            identity: .pemFiles(
                certificateChain: pki.serverChainPath, privateKey: pki.serverKeyPath))
        let server = WebSocketServer(configuration: configuration)
        server.onRequest = { request in
            let connection = try? request.accept()
            connection?.onMessage = { _ in
                connection?.sendUTF("secure=\(request.isSecure) sni=\(request.serverName ?? "-")")
            }
        }
        try server.listen(unixPath: path)
        defer { shutDown(server) }

        var clientConfiguration = WebSocketClient.Configuration()
        clientConfiguration.tls.trustRoots = .pemFile(pki.caPath)
        let client = WebSocketClient(configuration: clientConfiguration)
        let events = EventLog<String>()
        client.onConnect = { connection in
            connection.onMessage = { message in
                if case .text(let text) = message { events.append(text) }
                connection.close()
            }
            connection.onClose = { code, _ in events.append("close:\(code.rawValue)") }
            connection.sendUTF("hi")
        }
        client.onConnectFailed = { events.append("failed:\($0)") }
        client.connect(url: "wss+unix://\(path):/secure")
        events.wait { $0.contains("close:1000") || $0.contains { $0.hasPrefix("failed") } }
        XCTAssertEqual(events.all, ["secure=true sni=localhost", "close:1000"])
    }

    func testRawClientOverAUnixSocket() throws {
        let path = directory + "/raw.sock"
        let server = try echoServer(path)
        defer { shutDown(server) }
        let client = try RawClient(unixPath: path)
        let head = try client.upgrade(path: "/raw", protocols: ["p"])
        XCTAssertTrue(head.contains("Sec-WebSocket-Protocol: p"), head)
        try client.sendText("raw over unix")
        XCTAssertEqual(try client.readFrame().map { String(decoding: $0.payload, as: UTF8.self) }, "raw over unix")
        try client.sendClose(code: 1000)
        XCTAssertEqual(try client.readUntilClosed().last.flatMap(RawClient.closeCode), 1000)

        // Plain HTTP on the same socket is answered as on TCP (426 without a handler).
        let http = try RawClient(unixPath: path)
        try http.write("GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        XCTAssertTrue(try http.readHTTPHead().hasPrefix("HTTP/1.1 426"))
    }

    func testAStaleSocketFileIsRemovedOnlyWhenAsked() throws {
        let path = directory + "/stale.sock"
        try makeStaleSocket(path)
        XCTAssertTrue(exists(path))
        XCTAssertThrowsError(try echoServer(path)) { error in
            XCTAssertEqual((error as? WebSocketError)?.code, .socketError)
            XCTAssertEqual((error as? WebSocketError)?.errno, EADDRINUSE)
        }
        XCTAssertTrue(exists(path), "not removed unless asked")

        let server = try echoServer(path, removingStale: true)
        let client = try RawClient(unixPath: path)
        try client.upgrade()

        // A live server's socket is never taken over, even when asked.
        XCTAssertThrowsError(try echoServer(path, removingStale: true)) { error in
            XCTAssertEqual((error as? WebSocketError)?.errno, EADDRINUSE)
        }
        try client.sendText("still served")
        XCTAssertEqual(try client.readFrame().map { String(decoding: $0.payload, as: UTF8.self) }, "still served")
        try client.sendClose(code: 1000)
        _ = try client.readUntilClosed()
        shutDown(server)

        // A file that is not a socket is never removed.
        let regular = directory + "/regular"
        let fd = open(regular, O_CREAT | O_WRONLY, 0o600)
        XCTAssertGreaterThanOrEqual(fd, 0)
        close(fd)
        XCTAssertThrowsError(try echoServer(regular, removingStale: true)) { error in
            XCTAssertEqual((error as? WebSocketError)?.errno, EADDRINUSE)
        }
        XCTAssertTrue(exists(regular))
    }

    func testPermissionsAreSetOnTheSocketFile() throws {
        let path = directory + "/perm.sock"
        let server = try echoServer(path, permissions: 0o600)
        defer { shutDown(server) }
        var info = stat()
        XCTAssertEqual(lstat(path, &info), 0)
        XCTAssertEqual(info.st_mode & 0o7777, 0o600)
        XCTAssertEqual(info.st_mode & S_IFMT, S_IFSOCK)

        XCTAssertThrowsError(try echoServer(directory + "/bad-mode.sock", permissions: 0o17777)) { error in
            XCTAssertEqual((error as? WebSocketError)?.code, .invalidArgument)
        }
        XCTAssertFalse(exists(directory + "/bad-mode.sock"))
    }

    func testPathsTooLongForSunPathAreTypedErrors() throws {
        try warmUpDescriptors()
        let baseline = openDescriptors()
        let long = directory + "/" + String(repeating: "s", count: 200) + ".sock"
        let server = WebSocketServer()
        XCTAssertThrowsError(try server.listen(unixPath: long)) { error in
            XCTAssertEqual((error as? WebSocketError)?.code, .invalidArgument)
            XCTAssertTrue("\(error)".contains("sun_path"), "\(error)")
        }
        XCTAssertThrowsError(try server.listen(unixPath: "")) { error in
            XCTAssertEqual((error as? WebSocketError)?.code, .invalidArgument)
        }
        XCTAssertNil(server.localAddress)

        let client = WebSocketClient()
        let failures = EventLog<WebSocketError.Code>()
        client.onConnectFailed = { failures.append($0.code) }
        client.connect(url: "ws+unix://\(long):/x")
        client.connect(url: "ws+unix://\(directory)/nobody.sock:/x")
        failures.waitForCount(2)
        XCTAssertEqual(Set(failures.all), [.invalidArgument, .socketError])
        waitUntil(openDescriptors, equals: baseline)
    }

    func testWsUnixURLsParseAsWsSpellsThem() throws {
        let full = try WebSocketURL("ws+unix:///run/app.sock:/chat?room=1")
        XCTAssertEqual(full.unixSocketPath, "/run/app.sock")
        XCTAssertEqual(full.resource, "/chat?room=1")
        XCTAssertEqual(full.host, "localhost")
        XCTAssertFalse(full.secure)
        XCTAssertEqual(full.description, "ws+unix:/run/app.sock:/chat?room=1")

        let short = try WebSocketURL("ws+unix:/run/app.sock")
        XCTAssertEqual(short.unixSocketPath, "/run/app.sock")
        XCTAssertEqual(short.resource, "/")

        let query = try WebSocketURL("WS+UNIX:/run/app.sock?x=1")
        XCTAssertEqual(query.unixSocketPath, "/run/app.sock")
        XCTAssertEqual(query.resource, "/?x=1")

        let secure = try WebSocketURL("wss+unix://example.com/run/app.sock:/p")
        XCTAssertTrue(secure.secure)
        XCTAssertEqual(secure.host, "example.com")
        XCTAssertEqual(secure.unixSocketPath, "/run/app.sock")
        XCTAssertEqual(secure.resource, "/p")

        XCTAssertNil(try WebSocketURL("ws://example.com/a:b").unixSocketPath)
        for bad in ["ws+unix:", "ws+unix://", "ws+unix:/a.sock:/has space"] {
            XCTAssertThrowsError(try WebSocketURL(bad), bad) {
                XCTAssertEqual(($0 as? WebSocketError)?.code, .invalidArgument)
            }
        }
    }
}
