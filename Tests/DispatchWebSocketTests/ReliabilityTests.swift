import XCTest

@testable import DispatchWebSocket

#if canImport(Glibc)
import Glibc
#endif

/// Lifecycle and resource guarantees: descriptors and connection objects come back to their
/// baseline whatever way a peer goes away; backpressure, limits, pause/resume and idle timeouts.
final class ReliabilityTests: XCTestCase {
    private func resetSocket(_ client: RawClient) {
        var option = linger(l_onoff: 1, l_linger: 0)
        setsockopt(client.fd, SOL_SOCKET, SO_LINGER, &option, socklen_t(MemoryLayout<linger>.size))
    }

    func testDescriptorsReturnToBaselineAfterEveryKindOfPeerFault() throws {
        let fixture = try startEchoServer(self) {
            $0.connection.keepalive = true
            $0.connection.keepaliveInterval = .milliseconds(200)
            $0.connection.keepaliveGracePeriod = .milliseconds(200)
            $0.handshakeTimeout = .milliseconds(500)
        }
        // Warm up the loops and timers so their own descriptors are part of the baseline.
        do {
            let client = try RawClient(port: fixture.port)
            try client.upgrade()
            try client.sendClose(code: 1000)
            _ = try client.readUntilClosed()
        }
        fixture.closes.waitForCount(1)
        let baseline = openDescriptors()

        do {  // RST in the middle of a frame
            let client = try RawClient(port: fixture.port)
            try client.upgrade()
            try client.write(
                Array(
                    WebSocketFrame(opcode: .binary, maskingKey: .random(), payload: Array(repeating: 1, count: 1000))
                        .encoded().prefix(100)))
            resetSocket(client)
        }
        do {  // RST in the middle of the handshake
            let client = try RawClient(port: fixture.port)
            try client.write("GET / HTTP/1.1\r\nHost: x\r\nUpg")
            resetSocket(client)
        }
        do {  // half-close without a close frame
            let client = try RawClient(port: fixture.port)
            try client.upgrade()
            shutdown(client.fd, Int32(SHUT_WR))
            XCTAssertEqual(try client.readUntilClosed(), [])
        }
        do {  // a silent peer that never answers keepalive pings
            let client = try RawClient(port: fixture.port)
            try client.upgrade()
            _ = try client.readUntilClosed()
        }
        do {  // a client that stops after a partial request head
            let client = try RawClient(port: fixture.port)
            try client.write("GET / HTTP/1.1\r\n")
            _ = try client.readUntilClosed()
        }
        fixture.closes.waitForCount(4)
        waitUntil(openDescriptors, equals: baseline)
    }

    /// Data and the end of the connection arriving in one wake-up: libdispatch stops watching a
    /// descriptor after EPOLLHUP/EPOLLRDHUP, so the channel must read to the end right then.
    func testDataFollowedAtOnceByResetOrFINStillEndsTheConnection() throws {
        let fixture = try startEchoServer(self)
        do {
            let warm = try RawClient(port: fixture.port)
            try warm.upgrade()
        }
        fixture.closes.waitForCount(1)
        let baseline = openDescriptors()
        let partial = Array(
            WebSocketFrame(opcode: .binary, maskingKey: .random(), payload: Array(repeating: 1, count: 5000)).encoded()
                .prefix(700))
        for index in 0..<200 {
            let client = try RawClient(port: fixture.port)
            try client.upgrade()
            if index % 2 == 0 { resetSocket(client) }  // RST right behind the data
            try client.write(partial)
        }  // each client closes here: RST or FIN right after its bytes
        fixture.closes.waitForCount(201)
        waitUntil(openDescriptors, equals: baseline)
    }

    func testConnectionObjectsAreFreedAfterAChurnOfConnections() throws {
        let fixture = try startEchoServer(self)
        let baseline = WebSocketConnection.liveCount.load(ordering: .relaxed)
        for index in 0..<1500 {
            let client = try RawClient(port: fixture.port)
            try client.upgrade()
            if index % 3 == 0 {
                try client.sendText("x")
                _ = try client.readFrame()
                try client.sendClose(code: 1000)
                _ = try client.readUntilClosed()
            } else if index % 3 == 1 {
                resetSocket(client)
            }  // else: plain close without a close frame
        }
        fixture.closes.waitForCount(1500)
        waitUntil({ WebSocketConnection.liveCount.load(ordering: .relaxed) }, equals: baseline)
        XCTAssertTrue(fixture.server.connections.isEmpty)
    }

    func testCloseIsDeliveredExactlyOnceWhateverHappensTogether() throws {
        let closes = EventLog<WebSocketCloseCode>()
        let (_, port) = try startServer(self, configure: { $0.connection.closeTimeout = .milliseconds(200) }) {
            server in
            server.onRequest = { request in
                let connection = try? request.accept()
                connection?.onClose = { code, _ in closes.append(code) }
                connection?.onMessage = { _ in
                    // Local close, a drop and a close from another thread, all at once.
                    connection?.close(code: .goingAway)
                    DispatchQueue.global().async {
                        connection?.close(code: .normalClosure)
                        connection?.drop()
                    }
                    connection?.drop(code: .policyViolation)
                }
            }
        }
        for _ in 0..<20 {
            let client = try RawClient(port: port)
            try client.upgrade()
            try client.sendText("go")
            try client.sendClose(code: 1000)
            resetSocket(client)
        }
        closes.waitForCount(20)
        usleep(300_000)  // any duplicate would have arrived by now; the count must stay at 20
        XCTAssertEqual(closes.all.count, 20)
    }

    func testANonReadingClientHitsTheQueueLimitAndIsClosed() throws {
        let errors = EventLog<WebSocketError.Code>()
        let statuses = EventLog<WebSocketSendStatus>()
        let closes = EventLog<WebSocketCloseCode>()
        let (_, port) = try startServer(
            self,
            configure: {
                $0.connection.highWaterMark = 64 * 1024
                $0.connection.maxQueuedBytes = 1024 * 1024
                $0.connection.closeTimeout = .milliseconds(300)
            }
        ) { server in
            server.onRequest = { request in
                guard let connection = try? request.accept() else { return }
                connection.onError = { errors.append($0.code) }
                connection.onClose = { code, _ in closes.append(code) }
                connection.onMessage = { _ in
                    let chunk = [UInt8](repeating: 7, count: 64 * 1024)
                    for _ in 0..<400 {  // 25 MiB: far more than the socket buffers and the limit
                        let status = connection.sendBytes(chunk)
                        statuses.append(status)
                        if status == .dropped { break }
                    }
                }
            }
        }
        let client = try RawClient(port: port)
        try client.upgrade()
        try client.sendText("flood me")  // and never read
        XCTAssertEqual(errors.waitForCount(1), [.sendQueueFull])
        XCTAssertEqual(closes.waitForCount(1), [.policyViolation])
        XCTAssertTrue(statuses.all.contains(.backpressure))
        XCTAssertEqual(statuses.all.last, .dropped)
        XCTAssertLessThan(statuses.all.count, 400)
    }

    func testDropMessagePolicyKeepsTheConnection() throws {
        let outcomes = EventLog<String>()
        let (_, port) = try startServer(
            self,
            configure: {
                $0.connection.maxQueuedBytes = 256 * 1024
                $0.connection.sendQueueOverflow = .dropMessage
            }
        ) { server in
            server.onRequest = { request in
                guard let connection = try? request.accept() else { return }
                connection.onMessage = { _ in
                    var dropped = 0
                    for _ in 0..<200 where connection.sendBytes([UInt8](repeating: 1, count: 32 * 1024)) == .dropped {
                        dropped += 1
                    }
                    outcomes.append("dropped>0:\(dropped > 0) open:\(connection.isConnected)")
                }
            }
        }
        let client = try RawClient(port: port)
        try client.upgrade()
        try client.sendText("flood")
        XCTAssertEqual(outcomes.waitForCount(1), ["dropped>0:true open:true"])
    }

    func testDrainFiresWhenTheQueueEmptiesAfterBackpressure() throws {
        let events = EventLog<String>()
        let (_, port) = try startServer(
            self,
            configure: {
                $0.connection.highWaterMark = 16 * 1024
                $0.connection.maxQueuedBytes = 8 * 1024 * 1024  // the 4 MiB burst below stays under it
            }
        ) { server in
            server.onRequest = { request in
                guard let connection = try? request.accept() else { return }
                connection.onDrain = { events.append("drain:\(connection.bufferedAmount)") }
                connection.onMessage = { _ in
                    for _ in 0..<64 { connection.sendBytes([UInt8](repeating: 3, count: 64 * 1024)) }
                    events.append("queued:\(connection.bufferedAmount > 16 * 1024)")
                }
            }
        }
        let client = try RawClient(port: port)
        try client.upgrade()
        try client.sendText("go")
        XCTAssertEqual(events.waitForCount(1), ["queued:true"])
        var received = 0
        while received < 64 * 64 * 1024, let frame = try client.readFrame() { received += frame.payload.count }
        XCTAssertEqual(events.waitForCount(2).last, "drain:0")
    }

    func testPauseStopsDeliveryAndResumeDeliversEverythingInOrder() throws {
        let messages = EventLog<String>()
        let connections = EventLog<WebSocketConnection>()
        let (_, port) = try startServer(self) { server in
            server.onRequest = { request in
                guard let connection = try? request.accept() else { return }
                connection.onMessage = { if case .text(let text) = $0 { messages.append(text) } }
                connection.pause()
                connections.append(connection)
            }
        }
        let client = try RawClient(port: port)
        try client.upgrade()
        let connection = connections.waitForCount(1)[0]
        for index in 0..<50 { try client.sendText("m\(index)") }
        usleep(200_000)  // time for the bytes to arrive; a paused connection must not deliver them
        XCTAssertEqual(messages.all, [])
        connection.resume()
        XCTAssertEqual(messages.waitForCount(50), (0..<50).map { "m\($0)" })
    }

    func testIdleTimeoutClosesASilentConnectionWithAReason() throws {
        let closes = EventLog<String>()
        let errors = EventLog<WebSocketError.Code>()
        let (_, port) = try startServer(self, configure: { $0.connection.idleTimeout = .milliseconds(300) }) { server in
            server.onRequest = { request in
                let connection = try? request.accept()
                connection?.onError = { errors.append($0.code) }
                connection?.onClose = { code, reason in closes.append("\(code.rawValue) \(reason)") }
            }
        }
        let client = try RawClient(port: port)
        try client.upgrade()
        let frames = try client.readUntilClosed()
        XCTAssertEqual(frames.compactMap { RawClient.closeCode($0) }, [1001])
        XCTAssertEqual(closes.waitForCount(1), ["1001 idle timeout"])
        XCTAssertEqual(errors.all, [.timeout])
    }

    func testAPeerDribblingAFrameIsClosedAfterMaxMessageDuration() throws {
        let closes = EventLog<String>()
        let (_, port) = try startServer(self, configure: { $0.connection.maxMessageDuration = .milliseconds(400) }) {
            server in
            server.onRequest = { request in
                _ = try? request.accept { connection in
                    connection.onClose = { code, reason in closes.append("\(code.rawValue) \(reason)") }
                }
            }
        }
        let client = try RawClient(port: port)
        try client.upgrade()
        // A 1000-byte frame, one byte every 20 ms: live traffic that never completes a message.
        let frame = WebSocketFrame(opcode: .binary, maskingKey: .random(), payload: Array(repeating: 1, count: 1000))
            .encoded()
        var closedByServer = false
        for byte in frame {
            do { try client.write([byte]) } catch {
                closedByServer = true
                break
            }
            if !closes.all.isEmpty {
                closedByServer = true
                break
            }
            usleep(20_000)
        }
        XCTAssertTrue(closedByServer)
        XCTAssertEqual(closes.waitForCount(1), ["1008 message not completed within maxMessageDuration"])
    }

    func testWholeMessagesKeepAConnectionWithMaxMessageDurationOpen() throws {
        let fixture = try startEchoServer(self) { $0.connection.maxMessageDuration = .milliseconds(200) }
        let client = try RawClient(port: fixture.port)
        try client.upgrade()
        for index in 0..<8 {  // longer than the limit in total, each message complete at once
            try client.sendText("m\(index)")
            XCTAssertEqual(try client.readFrame()?.payload, Array("m\(index)".utf8))
            usleep(60_000)
        }
    }

    func testASlowReceiverDoesNotHoldUpABroadcast() throws {
        let connects = EventLog<Int>()
        let (server, port) = try startServer(
            self,
            configure: {
                $0.autoAcceptConnections = true
                $0.connection.maxQueuedBytes = 64 * 1024 * 1024
                $0.connection.fragmentOutgoingMessages = false  // one frame per message, for the raw client
            }
        ) { server in
            server.onConnect = { _ in connects.append(1) }
        }
        let slow = try RawClient(port: port)  // upgrades, then never reads again
        try slow.upgrade()
        let fast = try (0..<3).map { _ in try RawClient(port: port) }
        for client in fast { try client.upgrade() }
        connects.waitForCount(4)
        let payload = [UInt8](repeating: 9, count: 64 * 1024)
        for _ in 0..<200 { server.broadcastBytes(payload) }  // 12.5 MiB each: far beyond the slow one's buffers
        for client in fast {
            for _ in 0..<200 { XCTAssertEqual(try client.readFrame(skippingPings: true)?.payload.count, payload.count) }
        }
        _ = slow
    }

    func testShutDownIsBoundedByCloseTimeoutWhenAPeerNeverAnswers() throws {
        var configuration = WebSocketServer.Configuration()
        configuration.autoAcceptConnections = true
        configuration.connection.closeTimeout = .milliseconds(300)
        configuration.connection.keepalive = false
        let server = WebSocketServer(configuration: configuration)
        let port = try server.listen(port: 0).port
        let silent = try RawClient(port: port)
        try silent.upgrade()
        while server.connections.isEmpty { usleep(1_000) }
        let done = EventLog<Int>()
        server.shutDown { done.append(1) }
        done.waitForCount(1)  // the client never answers the 1001: closeTimeout ends it
        XCTAssertTrue(server.connections.isEmpty)
        XCTAssertEqual(RawClient.closeCode(try XCTUnwrap(silent.readFrame())), 1001)
    }

    func testMaxConnectionsRejectsExtraUpgradesWith503() throws {
        let (_, port) = try startServer(
            self,
            configure: {
                $0.maxConnections = 1
                $0.autoAcceptConnections = true
            }
        ) { _ in }
        let first = try RawClient(port: port)
        try first.upgrade()
        let second = try RawClient(port: port)
        XCTAssertThrowsError(try second.upgrade()) { XCTAssertTrue("\($0)".contains("503"), "\($0)") }
    }
}

final class DescriptorExhaustionTests: XCTestCase {
    /// Runs out of descriptors on purpose (a lowered RLIMIT_NOFILE), checks that the accept loop
    /// reports EMFILE, keeps serving, and accepts the waiting clients once descriptors are freed.
    func testAcceptRecoversFromEMFILE() throws {
        let errors = EventLog<Int32>()
        let (server, port) = try startServer(self, configure: { $0.autoAcceptConnections = true }) { server in
            server.onError = { errors.append($0.errno ?? 0) }
        }
        _ = server
        // Warm up: the first connection creates the loops' own descriptors.
        do {
            let warm = try RawClient(port: port)
            try warm.upgrade()
        }
        // Create every client socket before lowering the limit; connecting needs no new descriptor.
        let address = try Socket.resolve(host: "127.0.0.1", port: port, passive: false)[0]
        let sockets = (0..<8).map { _ in socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0) }
        var saved = rlimit()
        getrlimit(RLIMIT_NOFILE_VALUE, &saved)
        let open = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd").count) ?? 0
        var lowered = saved
        lowered.rlim_cur = rlim_t(open + 2)  // room for two accepted connections only
        setrlimit(RLIMIT_NOFILE_VALUE, &lowered)
        defer { setrlimit(RLIMIT_NOFILE_VALUE, &saved) }

        let request = Array(
            ("GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n").utf8)
        for fd in sockets {
            var timeout = timeval(tv_sec: 10, tv_usec: 0)
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            XCTAssertEqual(address.withSockAddr { connect(fd, $0, $1) }, 0)
            _ = request.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        }
        XCTAssertEqual(errors.waitForCount(1).first, EMFILE)

        // Read each answer; closing an answered client frees a descriptor for the next one.
        var upgraded = 0
        for fd in sockets {
            var buffer = [UInt8](repeating: 0, count: 512)
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n > 0 && String(decoding: buffer[0..<n], as: UTF8.self).hasPrefix("HTTP/1.1 101") { upgraded += 1 }
            close(fd)
        }
        XCTAssertEqual(upgraded, sockets.count, "every waiting client is accepted once descriptors are free")
    }
}

#if canImport(Glibc)
private let RLIMIT_NOFILE_VALUE = Int32(RLIMIT_NOFILE.rawValue)
#else
private let RLIMIT_NOFILE_VALUE = RLIMIT_NOFILE
#endif
