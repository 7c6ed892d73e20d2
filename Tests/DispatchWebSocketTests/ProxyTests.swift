import XCTest

@testable import DispatchWebSocket

#if canImport(Glibc)
import Glibc
#endif

/// The client through HTTP CONNECT proxies on loopback: ``TestProxy`` (written here, so it can
/// refuse, die mid-answer or stay silent) and, when installed, Debian's tinyproxy.
final class ProxyTests: XCTestCase {
    private struct Outcome {
        let connections: EventLog<WebSocketConnection>
        let failures: EventLog<WebSocketError>
        let messages: EventLog<String>
        let client: WebSocketClient
    }

    private func connect(
        _ url: String, origin: String? = nil, headers: HTTPHeaders = [:],
        configure: (inout WebSocketClient.Configuration) -> Void
    ) -> Outcome {
        var configuration = WebSocketClient.Configuration()
        configure(&configuration)
        let client = WebSocketClient(configuration: configuration)
        let outcome = Outcome(connections: EventLog(), failures: EventLog(), messages: EventLog(), client: client)
        client.onConnect = { connection in
            connection.onMessage = { if case .text(let text) = $0 { outcome.messages.append(text) } }
            outcome.connections.append(connection)
        }
        client.onConnectFailed = { outcome.failures.append($0) }
        client.connect(url: url, origin: origin, headers: headers)
        return outcome
    }

    private func startProxy(
        _ behaviour: TestProxy.Behaviour = .tunnel, credentials: String? = nil, hosts: [String: String] = [:]
    ) throws -> TestProxy {
        let proxy = try TestProxy(behaviour: behaviour, credentials: credentials, hosts: hosts)
        addTeardownBlock {
            // Let its tunnels wind down, so that later tests do not count their descriptors.
            let deadline = DispatchTime.now() + 10
            while proxy.activeConnections > 0 && DispatchTime.now() < deadline { usleep(10_000) }
            proxy.stop()
        }
        return proxy
    }

    /// Echoes, and records each request's Origin and `X-Test` header; answers with `X-Upgrade: yes`.
    private func startRecordingEchoServer(
        configure: @escaping (inout WebSocketServer.Configuration) -> Void = { _ in }
    ) throws -> (port: Int, seen: EventLog<String>) {
        let seen = EventLog<String>()
        let (_, port) = try startServer(self, configure: configure) { server in
            server.onRequest = { request in
                seen.append(
                    "origin=\(request.origin ?? "-") x-test=\(request.headers["X-Test"] ?? "-") host=\(request.headers["Host"] ?? "-")"
                )
                guard let connection = try? request.accept(headers: ["X-Upgrade": "yes"]) else { return }
                connection.onMessage = { connection.send($0) }
            }
        }
        return (port, seen)
    }

    /// Runs `attempt` (which must end in a failure) a few times to warm up the loops, then again,
    /// and checks that the process has as many descriptors open as between the rounds.
    /// `proxy`'s own sockets are in the process too: its connections must be closed at both counts.
    /// A descriptor whose Dispatch sources are still cancelling may be in the baseline: a leak is
    /// more descriptors afterwards.
    private func assertNoDescriptorLeak(
        _ proxy: TestProxy, _ attempt: () throws -> Void, file: StaticString = #filePath, line: UInt = #line
    ) rethrows {
        for _ in 0..<3 { try attempt() }
        waitUntil({ proxy.activeConnections }, equals: 0, file: file, line: line)
        let baseline = openDescriptors()
        for _ in 0..<3 { try attempt() }
        waitUntil({ proxy.activeConnections }, equals: 0, file: file, line: line)
        let deadline = DispatchTime.now() + 10
        while openDescriptors() > baseline && DispatchTime.now() < deadline { usleep(10_000) }
        XCTAssertLessThanOrEqual(openDescriptors(), baseline, file: file, line: line)
    }

    private static func echo(_ outcome: Outcome, _ text: String) {
        guard let connection = outcome.connections.waitForCount(1).first else { return }
        connection.sendUTF(text)
        outcome.messages.wait { $0.contains(text) }
        connection.close()
    }

    // MARK: Tunnels that open

    func testWSThroughProxyCarriesOriginCustomHeadersAndUpgradeResponseHeaders() throws {
        let (port, seen) = try startRecordingEchoServer()
        let proxy = try startProxy()
        let outcome = connect("ws://127.0.0.1:\(port)/chat", origin: "https://app.example", headers: ["X-Test": "42"]) {
            $0.proxy = WebSocketProxy(host: "127.0.0.1", port: proxy.port)
        }
        Self.echo(outcome, "hello through the tunnel")
        XCTAssertEqual(outcome.failures.all.map(\.description), [])
        XCTAssertEqual(seen.all, ["origin=https://app.example x-test=42 host=127.0.0.1:\(port)"])
        let connection = try XCTUnwrap(outcome.connections.all.first)
        XCTAssertEqual(connection.upgradeResponseHeaders?["X-Upgrade"], "yes")
        XCTAssertEqual(connection.upgradeResponseHeaders?["Upgrade"]?.lowercased(), "websocket")
        let request = try XCTUnwrap(proxy.requests.all.first)
        XCTAssertTrue(request.hasPrefix("CONNECT 127.0.0.1:\(port) HTTP/1.1\r\n"), request)
        XCTAssertTrue(request.contains("\r\nHost: 127.0.0.1:\(port)\r\n"), request)
        XCTAssertFalse(request.lowercased().contains("proxy-authorization"), request)
    }

    func testUpgradeResponseHeadersAreReadableWithoutAProxy() throws {
        let (port, _) = try startRecordingEchoServer()
        let outcome = connect("ws://127.0.0.1:\(port)/") { _ in }
        let connection = try XCTUnwrap(outcome.connections.waitForCount(1).first)
        XCTAssertEqual(connection.upgradeResponseHeaders?["X-Upgrade"], "yes")
        connection.close()
    }

    func testBasicCredentialsFromTheProxyURLAreSentAndAccepted() throws {
        let (port, _) = try startRecordingEchoServer()
        let proxy = try startProxy(credentials: "alice:s:cret é")
        let outcome = connect("ws://127.0.0.1:\(port)/") {
            $0.proxy = try? WebSocketProxy(url: "http://alice:s%3Acret%20%C3%A9@127.0.0.1:\(proxy.port)")
        }
        Self.echo(outcome, "authorized")
        let request = try XCTUnwrap(proxy.requests.all.first)
        let expected = "Proxy-Authorization: Basic " + Base64.encode(Array("alice:s:cret é".utf8))
        XCTAssertTrue(request.contains("\r\n\(expected)\r\n"), request)
    }

    func testWSSThroughProxyUsesTheTargetNameForSNIAndVerification() throws {
        let pki = try TestPKI.require()
        let names = EventLog<String>()
        let wrongHost = TLSIdentity.pemFiles(certificateChain: pki.wrongHostCertPath, privateKey: pki.wrongHostKeyPath)
        let (_, port) = try startServer(
            self,
            configure: {
                var tls = TLSServerConfiguration(
                    identity: .pemFiles(certificateChain: pki.serverChainPath, privateKey: pki.serverKeyPath))
                tls.certificateSelector = { name in name == "wrong.example" ? wrongHost : nil }
                $0.tls = tls
            }
        ) { server in
            server.onRequest = { request in
                names.append(request.serverName ?? "-")
                guard let connection = try? request.accept() else { return }
                connection.onMessage = { connection.send($0) }
            }
        }
        // Only the proxy knows wrong.example (the client never resolves it). The certificate the
        // server picks for that SNI name is valid for wrong.example only, not for the proxy's
        // 127.0.0.1: the connection opens only if SNI and verification both use the target.
        let proxy = try startProxy(hosts: ["wrong.example": "127.0.0.1"])
        let outcome = connect("wss://wrong.example:\(port)/") {
            $0.tls.trustRoots = .pemFile(pki.caPath)
            $0.proxy = WebSocketProxy(host: "127.0.0.1", port: proxy.port)
        }
        Self.echo(outcome, "secret")
        XCTAssertEqual(names.all, ["wrong.example"])
        XCTAssertEqual(outcome.connections.all.first?.isSecure, true)
        XCTAssertEqual(outcome.connections.all.first?.peerCertificate?.subjectAlternativeNames, [.dns("wrong.example")])
        XCTAssertTrue(proxy.requests.all.first?.hasPrefix("CONNECT wrong.example:\(port) HTTP/1.1\r\n") ?? false)
    }

    func testWSSThroughProxyRejectsACertificateForAnotherHost() throws {
        let pki = try TestPKI.require()
        let fixture = try startEchoServer(self) {
            $0.tls = TLSServerConfiguration(
                identity: .pemFiles(certificateChain: pki.serverChainPath, privateKey: pki.serverKeyPath))
        }
        // server.pem is valid for localhost and 127.0.0.1; the target name is wrong.example.
        let proxy = try startProxy(hosts: ["wrong.example": "127.0.0.1"])
        let outcome = connect("wss://wrong.example:\(fixture.port)/") {
            $0.tls.trustRoots = .pemFile(pki.caPath)
            $0.proxy = WebSocketProxy(host: "127.0.0.1", port: proxy.port)
        }
        let failure = try XCTUnwrap(outcome.failures.waitForCount(1).first)
        XCTAssertEqual(failure.code, .certificateHostnameMismatch, failure.description)
        XCTAssertEqual(outcome.connections.all.count, 0)
    }

    func testRedirectsThroughTheProxyHonorMaxRedirects() throws {
        let (port, seen) = try startRecordingEchoServer()
        let redirect = try FakeServer { head in
            // /hop1 → /hop2 → the echo server.
            let location = head.hasPrefix("GET /hop1 ") ? "/hop2" : "ws://127.0.0.1:\(port)/end"
            return Array("HTTP/1.1 302 Found\r\nLocation: \(location)\r\nContent-Length: 0\r\n\r\n".utf8)
        }
        redirect.serve(connections: 4)
        let proxy = try startProxy()

        let followed = connect("ws://127.0.0.1:\(redirect.port)/hop1") {
            $0.proxy = WebSocketProxy(host: "127.0.0.1", port: proxy.port)
            $0.followRedirects = true
            $0.maxRedirects = 2
        }
        Self.echo(followed, "arrived")
        XCTAssertEqual(seen.all.count, 1)
        XCTAssertEqual(
            proxy.requests.all.compactMap { $0.split(separator: "\r\n").first.map(String.init) },
            [
                "CONNECT 127.0.0.1:\(redirect.port) HTTP/1.1", "CONNECT 127.0.0.1:\(redirect.port) HTTP/1.1",
                "CONNECT 127.0.0.1:\(port) HTTP/1.1",
            ])

        // One redirect allowed: the second 302 ends the attempt.
        let stopped = connect("ws://127.0.0.1:\(redirect.port)/hop1") {
            $0.proxy = WebSocketProxy(host: "127.0.0.1", port: proxy.port)
            $0.followRedirects = true
            $0.maxRedirects = 1
        }
        let failure = try XCTUnwrap(stopped.failures.waitForCount(1).first)
        XCTAssertEqual(failure.code, .handshakeFailed)
        XCTAssertTrue(failure.message.contains("302"), failure.message)
        XCTAssertEqual(stopped.connections.all.count, 0)
        XCTAssertEqual(seen.all.count, 1)
    }

    func testNoProxyHostsAreReachedDirectly() throws {
        let (port, _) = try startRecordingEchoServer()
        let proxy = try startProxy()
        let outcome = connect("ws://127.0.0.1:\(port)/") {
            $0.proxy = WebSocketProxy(
                host: "127.0.0.1", port: proxy.port, noProxy: ["example.com", "127.0.0.1:\(port)"])
        }
        Self.echo(outcome, "direct")
        XCTAssertEqual(proxy.requests.all.count, 0)
    }

    // MARK: Tunnels that do not open

    func testRefusalsAreTypedErrorsWithTheStatusAndLeakNoDescriptor() throws {
        let (port, seen) = try startRecordingEchoServer()
        for (status, proxy) in [(407, try startProxy(credentials: "alice:right")), (403, try startProxy(.refuse(403)))]
        {
            try assertNoDescriptorLeak(proxy) {
                let outcome = connect("ws://127.0.0.1:\(port)/") {
                    $0.proxy = WebSocketProxy(host: "127.0.0.1", port: proxy.port, username: "alice", password: "wrong")
                }
                let failure = try XCTUnwrap(outcome.failures.waitForCount(1).first)
                XCTAssertEqual(failure.code, .proxyFailed, failure.description)
                XCTAssertEqual(failure.httpStatus, status, failure.description)
                XCTAssertEqual(outcome.connections.all.count, 0)
            }
        }
        XCTAssertEqual(seen.all.count, 0)
    }

    func testAProxyClosingMidAnswerFailsWithoutLeakingTheSocket() throws {
        let proxy = try startProxy(.closeMidAnswer)
        try assertNoDescriptorLeak(proxy) {
            let outcome = connect("ws://127.0.0.1:9/") {
                $0.proxy = WebSocketProxy(host: "127.0.0.1", port: proxy.port)
            }
            let failure = try XCTUnwrap(outcome.failures.waitForCount(1).first)
            XCTAssertEqual(failure.code, .proxyFailed, failure.description)
            XCTAssertNil(failure.httpStatus)
            XCTAssertTrue(failure.message.contains("closed"), failure.message)
        }
    }

    func testATunnelClosingBeforeTheUpgradeFailsWithoutLeakingTheSocket() throws {
        let proxy = try startProxy(.closeAfterTunnel)
        for (url, codes) in [
            ("ws://127.0.0.1:9/", [WebSocketError.Code.handshakeFailed]),
            ("wss://127.0.0.1:9/", [.tlsHandshakeFailed, .handshakeFailed]),
        ] {
            try assertNoDescriptorLeak(proxy) {
                let outcome = connect(url) { $0.proxy = WebSocketProxy(host: "127.0.0.1", port: proxy.port) }
                let failure = try XCTUnwrap(outcome.failures.waitForCount(1).first)
                XCTAssertTrue(codes.contains(failure.code), failure.description)
                XCTAssertEqual(outcome.connections.all.count, 0)
            }
        }
    }

    func testASilentProxyCountsAgainstTheHandshakeTimeout() throws {
        let proxy = try startProxy(.silent)
        try assertNoDescriptorLeak(proxy) {
            let outcome = connect("wss://127.0.0.1:9/") {
                $0.proxy = WebSocketProxy(host: "127.0.0.1", port: proxy.port)
                $0.handshakeTimeout = .milliseconds(300)
            }
            let failure = try XCTUnwrap(outcome.failures.waitForCount(1).first)
            XCTAssertEqual(failure.code, .timeout, failure.description)
            XCTAssertTrue(failure.message.contains("proxy"), failure.message)
        }
    }

    func testAnUnreachableProxyIsAConnectError() throws {
        let (socket, address) = try Socket.listen(host: "127.0.0.1", port: 0, backlog: 1)
        socket.close()  // nothing listens there now
        let outcome = connect("ws://127.0.0.1:9/") { $0.proxy = WebSocketProxy(host: "127.0.0.1", port: address.port) }
        let failure = try XCTUnwrap(outcome.failures.waitForCount(1).first)
        XCTAssertEqual(failure.code, .socketError, failure.description)
        XCTAssertTrue(failure.message.contains("proxy 127.0.0.1:\(address.port)"), failure.message)
    }

    func testTheEnvironmentsProxyIsUsedOnlyWhenOptedIn() throws {
        let (port, seen) = try startRecordingEchoServer()
        let proxy = try startProxy()
        let saved = getenv("http_proxy").map { String(cString: $0) }
        setenv("http_proxy", "http://127.0.0.1:\(proxy.port)", 1)
        defer { if let saved { setenv("http_proxy", saved, 1) } else { unsetenv("http_proxy") } }

        Self.echo(connect("ws://127.0.0.1:\(port)/") { _ in }, "direct")
        XCTAssertEqual(proxy.requests.all.count, 0)
        Self.echo(connect("ws://127.0.0.1:\(port)/") { $0.proxyFromEnvironment = true }, "proxied")
        XCTAssertEqual(proxy.requests.all.count, 1)
        XCTAssertEqual(seen.all.count, 2)

        setenv("http_proxy", "socks5://127.0.0.1:1080", 1)
        let refused = connect("ws://127.0.0.1:\(port)/") { $0.proxyFromEnvironment = true }
        XCTAssertEqual(refused.failures.waitForCount(1).first?.code, .invalidArgument)
    }

    // MARK: A real proxy

    func testThroughTinyproxyWithAndWithoutBasicAuth() throws {
        let executable = "/usr/bin/tinyproxy"
        guard access(executable, X_OK) == 0 else { throw XCTSkip("tinyproxy is not installed at \(executable)") }
        let (port, seen) = try startRecordingEchoServer()
        for credentials in [nil, ("bob", "hunter2")] as [(String, String)?] {
            let tiny = try Tinyproxy(executable: executable, credentials: credentials, allowPort: port)
            addTeardownBlock { tiny.stop() }
            let outcome = connect("ws://127.0.0.1:\(port)/") {
                $0.proxy = WebSocketProxy(
                    host: "127.0.0.1", port: tiny.port, username: credentials?.0, password: credentials?.1)
            }
            Self.echo(outcome, "via tinyproxy")
            if credentials != nil {
                let refused = connect("ws://127.0.0.1:\(port)/") {
                    $0.proxy = WebSocketProxy(host: "127.0.0.1", port: tiny.port, username: "bob", password: "wrong")
                }
                let failure = try XCTUnwrap(refused.failures.waitForCount(1).first)
                XCTAssertEqual(failure.code, .proxyFailed, failure.description)
                // tinyproxy 1.11 answers a failed BasicAuth with 401 rather than RFC 9110's 407.
                XCTAssertTrue([401, 407].contains(failure.httpStatus ?? 0), failure.description)
            }
        }
        XCTAssertEqual(seen.all.count, 2)
    }
}

/// tinyproxy in the foreground on a free loopback port, with a generated configuration.
private final class Tinyproxy: @unchecked Sendable {
    let port: Int
    private let process: Process
    private let directory: String

    init(executable: String, credentials: (String, String)?, allowPort: Int) throws {
        // A free port: bind port 0, note it, release it for tinyproxy.
        let (probe, address) = try Socket.listen(host: "127.0.0.1", port: 0, backlog: 1)
        probe.close()
        port = address.port
        var template = Array("/tmp/proxytests-XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else { throw XCTSkip("cannot make a temporary directory") }
        directory = String(cString: made)
        var config = """
            Port \(port)
            Listen 127.0.0.1
            Timeout 30
            MaxClients 8
            LogLevel Info
            LogFile "\(directory)/tinyproxy.log"
            PidFile "\(directory)/tinyproxy.pid"
            Allow 127.0.0.1
            ConnectPort \(allowPort)

            """
        if let (user, password) = credentials { config += "BasicAuth \(user) \(password)\n" }
        try config.write(toFile: directory + "/tinyproxy.conf", atomically: true, encoding: .utf8)
        process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = ["-d", "-c", directory + "/tinyproxy.conf"]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        // Wait (bounded) until it listens.
        let deadline = DispatchTime.now() + 10
        while DispatchTime.now() < deadline {
            if let target = try? Socket.resolve(host: "127.0.0.1", port: port, passive: false).first {
                let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
                let ok = target.withSockAddr { connect(fd, $0, $1) } == 0
                close(fd)
                if ok { return }
            }
            usleep(20_000)
        }
        stop()
        throw XCTSkip("tinyproxy did not start listening on \(port); see \(directory)/tinyproxy.log")
    }

    func stop() {
        if process.isRunning {
            process.terminate()
            process.waitUntilExit()
        }
        try? FileManager.default.removeItem(atPath: directory)
    }
}
