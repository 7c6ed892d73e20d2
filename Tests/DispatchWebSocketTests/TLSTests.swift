import COpenSSL
import XCTest

@testable import DispatchWebSocket

#if canImport(Glibc)
import Glibc
#endif

/// wss:// end to end: our client and our server, a blocking OpenSSL client written in the test,
/// and raw TCP peers that misbehave. Certificates come from a throwaway PKI made at test time.
final class TLSTests: XCTestCase {
    private var pki: TestPKI!

    override func setUpWithError() throws {
        pki = try TestPKI.require()
    }

    private func serverTLS(cert: String? = nil, key: String? = nil) -> TLSServerConfiguration {
        TLSServerConfiguration(
            identity: .pemFiles(
                certificateChain: cert ?? pki.serverChainPath, privateKey: key ?? pki.serverKeyPath))
    }

    private func startTLSEchoServer(
        cert: String? = nil, key: String? = nil, configure: (inout WebSocketServer.Configuration) -> Void = { _ in }
    ) throws -> EchoFixture {
        try startEchoServer(self) { configuration in
            configuration.tls = serverTLS(cert: cert, key: key)
            configure(&configuration)
        }
    }

    /// Connects our client; `events` records what happens, `connections` the open connection.
    private func connect(
        _ url: String, configure: (inout WebSocketClient.Configuration) -> Void = { _ in }
    ) -> (WebSocketClient, EventLog<String>, EventLog<WebSocketConnection>, EventLog<WebSocketError>) {
        var configuration = WebSocketClient.Configuration()
        configuration.tls.trustRoots = .pemFile(pki.caPath)
        configure(&configuration)
        let client = WebSocketClient(configuration: configuration)
        let events = EventLog<String>()
        let connections = EventLog<WebSocketConnection>()
        let failures = EventLog<WebSocketError>()
        client.onConnect = { connection in
            connection.onMessage = { message in
                switch message {
                case .text(let text): events.append("text:\(text)")
                case .binary(let bytes): events.append("binary:\(bytes.count):\(bytes.reduce(0) { $0 &+ Int($1) })")
                }
            }
            connection.onClose = { code, reason in events.append("close:\(code.rawValue):\(reason)") }
            connections.append(connection)
        }
        client.onConnectFailed = { failures.append($0) }
        client.connect(url: url)
        return (client, events, connections, failures)
    }

    // MARK: Our client, our server

    func testEchoLargeAndFragmentedMessagesAndCloseOverTLS() throws {
        let fixture = try startTLSEchoServer { $0.connection.fragmentationThreshold = 1000 }
        let (_, events, connections, failures) = connect("wss://localhost:\(fixture.port)/echo") {
            $0.connection.fragmentationThreshold = 700
        }
        let connection = connections.waitForCount(1)[0]
        XCTAssertTrue(failures.all.isEmpty)
        XCTAssertTrue(connection.isSecure)
        XCTAssertEqual(connection.tlsProtocolVersion, "TLSv1.3")
        XCTAssertNotNil(connection.tlsCipherSuite)
        XCTAssertEqual(connection.peerCertificate?.commonName, "localhost")
        XCTAssertTrue(connection.peerCertificate?.subjectAlternativeNames.contains(.ipAddress("127.0.0.1")) ?? false)

        connection.sendUTF("hello")
        let text = String(repeating: "wss fragment ", count: 500)  // fragmented both ways
        connection.sendUTF(text)
        var large = [UInt8](repeating: 0, count: 3 * 1024 * 1024 + 17)  // many records, not a record multiple
        var generator = SplitMix64(seed: 11)
        for i in large.indices { large[i] = UInt8(truncatingIfNeeded: generator.next()) }
        let sum = large.reduce(0) { $0 &+ Int($1) }
        connection.sendBytes(large)
        events.wait { $0.contains("text:\(text)") && $0.contains("binary:\(large.count):\(sum)") }
        XCTAssertEqual(events.all.first, "text:hello")

        connection.close(code: .normalClosure, description: "bye")
        events.wait { $0.contains("close:1000:") }  // the server's reply
        fixture.closes.wait { $0.contains { $0.0 == .normalClosure && $0.1 == "bye" } }
    }

    func testCompressionOverTLS() throws {
        let fixture = try startTLSEchoServer { $0.perMessageDeflate = PerMessageDeflateOptions() }
        // The client offers deflate by default.
        let (_, events, connections, _) = connect("wss://127.0.0.1:\(fixture.port)/")
        let connection = connections.waitForCount(1)[0]
        XCTAssertTrue(connection.isSecure)
        XCTAssertTrue(connection.extensions.hasPrefix("permessage-deflate"), connection.extensions)
        let text = String(repeating: "{\"type\":\"message\",\"text\":\"compressible\"} ", count: 4000)
        connection.sendUTF(text)
        connection.sendUTF("small")
        events.wait { $0.contains("text:\(text)") && $0.contains("text:small") }
    }

    func testServerInitiatedCloseOverTLS() throws {
        let fixture = try startTLSEchoServer()
        let (_, events, connections, _) = connect("wss://127.0.0.1:\(fixture.port)/")
        _ = connections.waitForCount(1)
        fixture.server.closeAllConnections(code: .goingAway, description: "maintenance")
        events.wait { $0.contains("close:1001:maintenance") }
    }

    func testServerSendsCloseNotifyBeforeItsFINAndServesALPN() throws {
        let fixture = try startTLSEchoServer()
        let client = try RawClient(port: fixture.port)
        try client.startTLS(caFile: pki.caPath, serverName: "localhost")
        XCTAssertEqual(client.alpn, "http/1.1")
        let head = try client.upgrade(path: "/raw")
        XCTAssertTrue(head.hasPrefix("HTTP/1.1 101"), head)
        try client.sendText("ping over tls")
        XCTAssertEqual(try client.readFrame().map { String(decoding: $0.payload, as: UTF8.self) }, "ping over tls")
        try client.sendClose(code: 1000)
        let frames = try client.readUntilClosed()
        XCTAssertEqual(frames.last.flatMap(RawClient.closeCode), 1000)
        XCTAssertTrue(client.receivedCloseNotify, "the server closed TCP without close_notify")
    }

    func testPlainHTTPIsServedOverTLS() throws {
        let (server, port) = try startServer(self, configure: { $0.tls = serverTLS() }) { server in
            server.onHTTPRequest = { request in
                HTTPResponse(status: 200, body: request.isSecure ? "secure \(request.path)" : "plain")
            }
        }
        _ = server
        let client = try RawClient(port: port)
        try client.startTLS(caFile: pki.caPath)
        try client.write("GET /page HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        let (head, body) = try client.readHTTPResponse()
        XCTAssertTrue(head.hasPrefix("HTTP/1.1 200"), head)
        XCTAssertEqual(body, "secure /page")
    }

    func testRequestCarriesServerNameAndTheSelectorChoosesTheCertificate() throws {
        let names = EventLog<String>()
        let wrongHost = TLSIdentity.pemFiles(certificateChain: pki.wrongHostCertPath, privateKey: pki.wrongHostKeyPath)
        let (_, port) = try startServer(
            self,
            configure: {
                var tls = serverTLS()
                tls.certificateSelector = { name in name == "wrong.example" ? wrongHost : nil }
                $0.tls = tls
            }
        ) { server in
            server.onRequest = { request in
                names.append("\(request.isSecure) \(request.serverName ?? "-")")
                _ = try? request.accept()
            }
        }
        // The selector's certificate is valid for wrong.example only: verification passes only
        // if the server really switched to it.
        let (_, _, chosen, chosenFailures) = connect("wss://127.0.0.1:\(port)/") { $0.tls.serverName = "wrong.example" }
        XCTAssertEqual(chosen.waitForCount(1)[0].peerCertificate?.subjectAlternativeNames, [.dns("wrong.example")])
        XCTAssertTrue(chosenFailures.all.isEmpty)
        let (_, _, plain, _) = connect("wss://localhost:\(port)/")
        XCTAssertEqual(plain.waitForCount(1)[0].peerCertificate?.commonName, "localhost")
        XCTAssertEqual(Set(names.waitForCount(2)), ["true wrong.example", "true localhost"])
    }

    func testEncryptedKeyNeedsItsPassword() throws {
        var configuration = WebSocketServer.Configuration()
        configuration.tls = TLSServerConfiguration(
            identity: .pemFiles(
                certificateChain: pki.serverChainPath, privateKey: pki.serverEncryptedKeyPath, password: "wrong"))
        XCTAssertThrowsError(try WebSocketServer(configuration: configuration).listen(port: 0)) { error in
            XCTAssertEqual((error as? WebSocketError)?.code, .tlsConfigurationInvalid)
        }
        configuration.tls = TLSServerConfiguration(
            identity: .pem(
                certificateChain: pki.pem("server-chain.pem"), privateKey: pki.pem("server-encrypted.key"),
                password: TestPKI.keyPassword))
        let server = WebSocketServer(configuration: configuration)
        server.onRequest = { _ = try? $0.accept() }
        let port = try server.listen(port: 0).port
        defer { server.shutDown() }
        let (_, _, connections, _) = connect("wss://127.0.0.1:\(port)/")
        XCTAssertTrue(connections.waitForCount(1)[0].isSecure)
    }

    func testMissingAndMismatchedFilesAreConfigurationErrors() throws {
        for identity in [
            TLSIdentity.pemFiles(certificateChain: "/nonexistent.pem", privateKey: pki.serverKeyPath),
            .pemFiles(certificateChain: pki.serverChainPath, privateKey: pki.clientKeyPath),
            .pem(certificateChain: Array("not a certificate".utf8), privateKey: pki.pem("server.key")),
        ] {
            var configuration = WebSocketServer.Configuration()
            configuration.tls = TLSServerConfiguration(identity: identity)
            XCTAssertThrowsError(try WebSocketServer(configuration: configuration).listen(port: 0)) { error in
                XCTAssertEqual((error as? WebSocketError)?.code, .tlsConfigurationInvalid, "\(error)")
            }
        }
    }

    // MARK: Verification failures, each typed

    private func connectionFailure(
        cert: String, key: String, url: (Int) -> String,
        configure: (inout WebSocketClient.Configuration) -> Void = { _ in }
    ) throws -> WebSocketError {
        let fixture = try startTLSEchoServer(cert: cert, key: key)
        let (_, _, connections, failures) = connect(url(fixture.port), configure: configure)
        let failure = failures.waitForCount(1)[0]
        XCTAssertTrue(connections.all.isEmpty)
        return failure
    }

    func testWrongHostNameIsRejected() throws {
        let failure = try connectionFailure(cert: pki.wrongHostCertPath, key: pki.wrongHostKeyPath) {
            "wss://127.0.0.1:\($0)/"
        }
        XCTAssertEqual(failure.code, .certificateHostnameMismatch, failure.description)
        let byName = try connectionFailure(cert: pki.wrongHostCertPath, key: pki.wrongHostKeyPath) {
            "wss://localhost:\($0)/"
        }
        XCTAssertEqual(byName.code, .certificateHostnameMismatch, byName.description)
    }

    func testExpiredCertificateIsRejected() throws {
        let failure = try connectionFailure(cert: pki.expiredCertPath, key: pki.expiredKeyPath) {
            "wss://127.0.0.1:\($0)/"
        }
        XCTAssertEqual(failure.code, .certificateExpired, failure.description)
    }

    func testUnknownCAIsRejectedUnlessVerificationIsOff() throws {
        let failure = try connectionFailure(cert: pki.untrustedCertPath, key: pki.untrustedKeyPath) {
            "wss://127.0.0.1:\($0)/"
        }
        XCTAssertEqual(failure.code, .certificateUntrusted, failure.description)

        let fixture = try startTLSEchoServer(cert: pki.untrustedCertPath, key: pki.untrustedKeyPath)
        let (_, _, connections, _) = connect("wss://127.0.0.1:\(fixture.port)/") {
            $0.tls.verification = .insecureNoVerification
        }
        XCTAssertTrue(connections.waitForCount(1)[0].isSecure)
    }

    func testSystemTrustStoreDoesNotTrustATestCA() throws {
        let failure = try connectionFailure(
            cert: pki.serverChainPath, key: pki.serverKeyPath, url: { "wss://127.0.0.1:\($0)/" }
        ) {
            $0.tls.trustRoots = .system
        }
        XCTAssertEqual(failure.code, .certificateUntrusted, failure.description)
    }

    func testRequiredClientCertificate() throws {
        let tlsErrors = EventLog<WebSocketError.Code>()
        let subjects = EventLog<String>()
        let (server, port) = try startServer(
            self,
            configure: {
                var tls = serverTLS()
                tls.clientCertificates = .require
                tls.clientCertificateTrustRoots = .pemFile(pki.caPath)
                $0.tls = tls
            }
        ) { server in
            server.onRequest = { request in
                subjects.append(request.peerCertificate?.commonName ?? "none")
                _ = try? request.accept()
            }
        }
        server.onTLSError = { error, _ in tlsErrors.append(error.code) }

        let (_, _, _, failures) = connect("wss://127.0.0.1:\(port)/")
        let failure = failures.waitForCount(1)[0]
        XCTAssertEqual(failure.code, .certificateRequired, failure.description)
        XCTAssertEqual(tlsErrors.waitForCount(1)[0], .certificateRequired)

        let (_, _, connections, _) = connect("wss://127.0.0.1:\(port)/") {
            $0.tls.identity = .pemFiles(certificateChain: pki.clientCertPath, privateKey: pki.clientKeyPath)
        }
        let connection = connections.waitForCount(1)[0]
        XCTAssertEqual(subjects.waitForCount(1), ["test-client"])
        XCTAssertEqual(connection.peerCertificate?.commonName, "localhost")
        let serverSide = server.connections.first
        XCTAssertEqual(serverSide?.peerCertificate?.commonName, "test-client")
        XCTAssertEqual(serverSide?.peerCertificate?.serialNumber, TestPKI.clientSerial)
    }

    func testClientCertificateFromAnotherCAIsRefused() throws {
        let tlsErrors = EventLog<WebSocketError.Code>()
        let (server, port) = try startServer(
            self,
            configure: {
                var tls = serverTLS()
                tls.clientCertificates = .request
                tls.clientCertificateTrustRoots = .pemFile(pki.otherCAPath)
                $0.tls = tls
            }
        ) { server in
            server.onRequest = { _ = try? $0.accept() }
        }
        server.onTLSError = { error, _ in tlsErrors.append(error.code) }
        let (_, _, _, failures) = connect("wss://127.0.0.1:\(port)/") {
            $0.tls.identity = .pemFiles(certificateChain: pki.clientCertPath, privateKey: pki.clientKeyPath)
        }
        XCTAssertEqual(failures.waitForCount(1)[0].code, .tlsAlertReceived)
        XCTAssertEqual(tlsErrors.waitForCount(1)[0], .certificateUntrusted)
        // `.request` lets a client without a certificate in.
        let (_, _, connections, _) = connect("wss://127.0.0.1:\(port)/")
        _ = connections.waitForCount(1)
        XCTAssertEqual(server.connections.count, 1)
        XCTAssertNil(server.connections.first?.peerCertificate)
    }

    func testFailedHandshakesOfEveryKindLeaveNoDescriptor() throws {
        let good = try startTLSEchoServer()
        let servers = [
            try startTLSEchoServer(cert: pki.wrongHostCertPath, key: pki.wrongHostKeyPath),
            try startTLSEchoServer(cert: pki.expiredCertPath, key: pki.expiredKeyPath),
            try startTLSEchoServer(cert: pki.untrustedCertPath, key: pki.untrustedKeyPath),
            try startTLSEchoServer {
                $0.tls?.clientCertificates = .require
                $0.tls?.clientCertificateTrustRoots = .pemFile(pki.caPath)
            },
        ]
        func failAll() -> [WebSocketError.Code] {
            servers.map { fixture in
                let (_, _, _, failures) = connect("wss://127.0.0.1:\(fixture.port)/")
                return failures.waitForCount(1)[0].code
            }
        }
        // Warm up: the client's context, loops and timers are part of the baseline.
        let (_, _, warm, _) = connect("wss://127.0.0.1:\(good.port)/")
        warm.waitForCount(1)[0].close()
        XCTAssertEqual(
            failAll(), [.certificateHostnameMismatch, .certificateExpired, .certificateUntrusted, .certificateRequired])
        waitUntil({ good.server.connections.count }, equals: 0)
        let baseline = openDescriptors()
        for _ in 0..<3 { _ = failAll() }
        waitUntil(openDescriptors, equals: baseline)
    }

    // MARK: Misbehaving peers

    func testStalledHandshakePlainBytesAndHalfClientHelloLeaveNoDescriptor() throws {
        let tlsErrors = EventLog<WebSocketError.Code>()
        let fixture = try startTLSEchoServer { $0.handshakeTimeout = .milliseconds(300) }
        fixture.server.onTLSError = { error, _ in tlsErrors.append(error.code) }
        do {  // warm up loops and timers so their descriptors are in the baseline
            let (_, _, connections, _) = connect("wss://127.0.0.1:\(fixture.port)/")
            connections.waitForCount(1)[0].close()
        }
        waitUntil({ fixture.server.connections.count }, equals: 0)
        let baseline = openDescriptors()

        // Opens TCP and never speaks: dropped at handshakeTimeout.
        let silent = try RawClient(port: fixture.port)
        // Plain HTTP to the TLS port: an alert or nothing, then EOF; never a hang.
        let plain = try RawClient(port: fixture.port)
        try plain.write("GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\r\n")
        // The first bytes of a ClientHello, then silence.
        let partial = try RawClient(port: fixture.port)
        try partial.write([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03])
        for client in [silent, plain, partial] {
            XCTAssertNoThrow(try client.readUntilEOF())
        }
        XCTAssertTrue(tlsErrors.waitForCount(1).contains(.tlsHandshakeFailed))
        withExtendedLifetime([silent, plain, partial]) {}
        waitUntil(openDescriptors, equals: baseline + 3)  // only our own three client sockets remain
    }

    func testHandshakesBeyondTheLimitWaitForASlot() throws {
        let fixture = try startTLSEchoServer { $0.tls?.maxHandshakesInProgress = 1 }
        let limiter = try XCTUnwrap(fixture.server.handshakeLimiter)
        // Holds the only slot until it leaves.
        var staller: RawClient? = try RawClient(port: fixture.port)
        try staller?.write([0x16, 0x03, 0x01])
        waitUntil({ limiter.handshakesInProgress }, equals: 1)
        let (_, events, connections, failures) = connect("wss://127.0.0.1:\(fixture.port)/")
        waitUntil({ limiter.sessionsWaiting }, equals: 1)
        XCTAssertTrue(connections.all.isEmpty)
        staller = nil  // its slot passes to the waiting client
        let connection = connections.waitForCount(1)[0]
        XCTAssertTrue(failures.all.isEmpty)
        connection.sendUTF("after the wait")
        events.wait { $0.contains("text:after the wait") }
        waitUntil({ limiter.handshakesInProgress }, equals: 0)
        XCTAssertEqual(limiter.sessionsWaiting, 0)
    }

    func testPausingMidRecordStallsNothing() throws {
        let received = EventLog<String>()
        let (_, port) = try startServer(self, configure: { $0.tls = serverTLS() }) { server in
            server.onRequest = { request in
                guard let connection = try? request.accept() else { return }
                connection.onMessage = { message in
                    guard case .text(let text) = message else { return }
                    received.append(text)
                    if text == "0" {
                        // Pause with the rest of the record already decrypted; resume from elsewhere.
                        connection.pause()
                        DispatchQueue.global().asyncAfter(deadline: .now() + .milliseconds(50)) { connection.resume() }
                    }
                }
            }
        }
        let (_, _, connections, _) = connect("wss://127.0.0.1:\(port)/")
        let connection = connections.waitForCount(1)[0]
        // Sent from the loop in one event: one gathered write, so one TLS record.
        connection.loop.execute {
            connection.loop.runEvent { for i in 0..<50 { connection.sendUTF("\(i)") } }
        }
        XCTAssertEqual(received.waitForCount(50), (0..<50).map(String.init))
    }

    func testAPlainServerBehindAWSSURLFailsTheHandshakeTyped() throws {
        let (listener, address) = try Socket.listen(host: "127.0.0.1", port: 0, backlog: 4)
        _ = fcntl(listener.fd, F_SETFL, 0)
        defer { listener.close() }
        DispatchQueue.global().async {
            let client = accept(listener.fd, nil, nil)
            guard client >= 0 else { return }
            let answer = Array("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n".utf8)
            _ = answer.withUnsafeBytes { send(client, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            usleep(200_000)
            close(client)
        }
        let (_, _, _, failures) = connect("wss://127.0.0.1:\(address.port)/")
        let failure = failures.waitForCount(1)[0]
        XCTAssertEqual(failure.code, .tlsHandshakeFailed, failure.description)
    }

    func testRedirectFromWSSToWSIsRefused() throws {
        let fixture = try startTLSEchoServer()
        fixture.server.onHTTPRequest = nil
        let (server, port) = try startServer(self, configure: { $0.tls = serverTLS() }) { server in
            server.onRequest = {
                $0.reject(status: 302, reason: nil, headers: ["Location": "ws://127.0.0.1:\(fixture.port)/"])
            }
        }
        _ = server
        let (_, _, _, failures) = connect("wss://127.0.0.1:\(port)/") { $0.followRedirects = true }
        let failure = failures.waitForCount(1)[0]
        XCTAssertEqual(failure.code, .handshakeFailed)
        XCTAssertTrue(failure.message.contains("drop TLS"), failure.message)
    }
}
