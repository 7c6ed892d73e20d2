import Synchronization
import XCTest

@testable import DispatchWebSocket

#if canImport(Glibc)
import Glibc
#endif

struct HangGuardExpired: Error {}

/// Runs `body`, failing with `HangGuardExpired` (and cancelling it) if it has not finished after
/// `seconds`: a guard against hangs, not a timing assertion.
func withHangGuard<T: Sendable>(
    seconds: Double = 30, _ body: @escaping @Sendable () async throws -> T
) async throws -> T {
    try await withThrowingTaskGroup(of: T?.self) { group in
        group.addTask { try await body() }
        group.addTask {
            try await Task.sleep(for: .seconds(seconds))
            return nil
        }
        defer { group.cancelAll() }
        guard let first = try await group.next(), let value = first else { throw HangGuardExpired() }
        return value
    }
}

/// A server whose accept loop runs `handle` for every connection (in a task group), through
/// `server.requests`; shut down at the end of the test.
func startAsyncServer(
    _ test: XCTestCase, configure: (inout WebSocketServer.Configuration) -> Void = { _ in },
    onConnectionLoops: Bool = false, handle: @escaping @Sendable (WebSocketConnection) async -> Void
) throws -> (WebSocketServer, Int) {
    try startServer(test, configure: configure) { server in
        let requests = server.requests
        Task {
            await withDiscardingTaskGroup { group in
                for await request in requests {
                    group.addTask(executorPreference: onConnectionLoops ? request.taskExecutor : nil) {
                        guard let connection = try? request.accept(protocol: request.requestedProtocols.first) else {
                            return
                        }
                        await handle(connection)
                    }
                }
            }
        }
    }
}

/// The async echo: one message at a time, in order.
@Sendable func asyncEcho(_ connection: WebSocketConnection) async {
    do {
        for try await message in connection.messages { try await connection.send(message) }
    } catch {}
}

/// With the callback client: sends `messages`, returns the first `messages.count` received.
func callbackRoundTrip(port: Int, _ messages: [WebSocketMessage]) -> [WebSocketMessage] {
    let received = EventLog<WebSocketMessage>()
    let client = WebSocketClient()
    client.onConnect = { connection in
        connection.onMessage = { received.append($0) }
        for message in messages { connection.send(message) }
    }
    client.connect(url: "ws://127.0.0.1:\(port)/")
    return Array(received.waitForCount(messages.count).prefix(messages.count))
}

final class AsyncAPITests: XCTestCase {
    let sample: [WebSocketMessage] = [
        .text("hello"), .binary([1, 2, 3]), .text(""), .binary(Array(repeating: 7, count: 70_000)),
    ]

    // MARK: Same semantics as the callbacks

    func testAsyncServerEchoesLikeTheCallbackServer() throws {
        let callback = try startEchoServer(self)
        let (_, asyncPort) = try startAsyncServer(self, handle: asyncEcho)
        let viaCallbacks = callbackRoundTrip(port: callback.port, sample)
        let viaAsync = callbackRoundTrip(port: asyncPort, sample)
        XCTAssertEqual(viaCallbacks, sample)
        XCTAssertEqual(viaAsync, viaCallbacks)
    }

    func testAsyncClientAgainstCallbackAndAsyncServers() async throws {
        let callback = try startEchoServer(self)
        let (_, asyncPort) = try startAsyncServer(self, handle: asyncEcho)
        for port in [callback.port, asyncPort] {
            let received = try await withHangGuard {
                let connection = try await WebSocketClient.connect(url: "ws://127.0.0.1:\(port)/")
                try await connection.send("hello")
                try await connection.send([1, 2, 3] as [UInt8])
                try await connection.send(WebSocketMessage.binary(Array(repeating: 7, count: 70_000)))
                var received: [WebSocketMessage] = []
                for try await message in connection.messages {
                    received.append(message)
                    if received.count == 3 { break }
                }
                let code = try await connection.close(code: .normalClosure, reason: "done")
                return (received, code)
            }
            XCTAssertEqual(
                received.0, [.text("hello"), .binary([1, 2, 3]), .binary(Array(repeating: 7, count: 70_000))])
            XCTAssertEqual(received.1, .normalClosure)
        }
    }

    /// A task that prefers its connection's `taskExecutor` runs on the connection's loop at every
    /// step, and its replies keep their order.
    func testHandlersOnTheConnectionsLoopRunThereAndEchoInOrder() async throws {
        let offLoop = Atomic<Int>(0)
        let (_, port) = try startAsyncServer(self, onConnectionLoops: true) { connection in
            do {
                if !connection.loop.inLoop { offLoop.add(1, ordering: .relaxed) }
                for try await message in connection.messages {
                    if !connection.loop.inLoop { offLoop.add(1, ordering: .relaxed) }
                    try await connection.send(message)
                    if !connection.loop.inLoop { offLoop.add(1, ordering: .relaxed) }
                }
            } catch {}
        }
        let messages = (0..<500).map { WebSocketMessage.text("message \($0)") }
        XCTAssertEqual(callbackRoundTrip(port: port, messages), messages)
        XCTAssertEqual(offLoop.load(ordering: .relaxed), 0)
    }

    /// `next(isolation:)` and `send` are `nonisolated(nonsending)`: called from an actor they run
    /// on it and return there, so the actor's state is never touched from the loop's thread.
    func testIteratingAndSendingFromAnActorStayOnTheActor() async throws {
        let (_, port) = try startAsyncServer(self) { connection in
            await QueueActor().echo(connection)
        }
        let messages = (0..<300).map { WebSocketMessage.text("message \($0)") }
        XCTAssertEqual(callbackRoundTrip(port: port, messages), messages)
        XCTAssertEqual(QueueActor.offActor.load(ordering: .relaxed), 0)
        XCTAssertEqual(QueueActor.echoed.load(ordering: .relaxed), messages.count)
    }

    /// oven-sh/bun#32483: handlers must not run concurrently and reorder messages.
    func testEachConnectionHandlesMessagesOneAtATimeInOrder() async throws {
        let (_, port) = try startAsyncServer(self, handle: asyncEcho)
        let count = 300
        try await withHangGuard {
            try await withThrowingTaskGroup(of: [String].self) { group in
                for client in 0..<3 {
                    group.addTask {
                        let connection = try await WebSocketClient.connect(url: "ws://127.0.0.1:\(port)/")
                        for index in 0..<count { try await connection.send("\(client)-\(index)") }
                        var received: [String] = []
                        for try await message in connection.messages {
                            if case .text(let text) = message { received.append(text) }
                            if received.count == count { break }
                        }
                        _ = try await connection.close()
                        XCTAssertEqual(received, (0..<count).map { "\(client)-\($0)" })
                        return received
                    }
                }
                var total = 0
                for try await received in group { total += received.count }
                XCTAssertEqual(total, 3 * count)
            }
        }
    }

    // MARK: Buffering and backpressure

    /// vapor/websocket-kit#156: messages sent right after the upgrade, before the server's task
    /// starts iterating, must all arrive.
    func testMessagesSentBeforeTheFirstIterationAreNotLost() async throws {
        let received = EventLog<WebSocketMessage>()
        let (_, port) = try startAsyncServer(self) { connection in
            try? await Task.sleep(for: .milliseconds(300))  // the client has sent everything by now
            do {
                for try await message in connection.messages { received.append(message) }
            } catch {}
        }
        let messages = (0..<5).map { WebSocketMessage.text("early \($0)") }
        // Raw client: the frames travel in the same packets as the upgrade request's end.
        let raw = try RawClient(port: port)
        var request = "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        request += "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        var bytes = Array(request.utf8)
        for index in 0..<5 {
            let payload = Array("early \(index)".utf8)
            let key: [UInt8] = [1, 2, 3, 4]
            bytes +=
                [0x81, 0x80 | UInt8(payload.count)] + key + payload.enumerated().map { $0.element ^ key[$0.offset % 4] }
        }
        try raw.write(bytes)
        XCTAssertTrue(try raw.readHTTPHead().hasPrefix("HTTP/1.1 101"))
        XCTAssertEqual(received.waitForCount(5), messages)
    }

    func testSlowConsumerPausesReadingWithBoundedBufferAndGetsEverythingInOrder() async throws {
        let limit = 8
        let size = 32 * 1024
        let count = 200
        let stats = LockedValue<(highest: Int, pauses: Int)>((0, 0))
        let received = EventLog<Int>()
        let (_, port) = try startAsyncServer(self, configure: { $0.connection.maxBufferedMessages = limit }) {
            connection in
            do {
                var index = 0
                for try await message in connection.messages {
                    guard case .binary(let bytes) = message else { continue }
                    received.append(Int(bytes[0]) | Int(bytes[1]) << 8)
                    index += 1
                    if index == 10 { try? await Task.sleep(for: .milliseconds(500)) }  // falls behind
                    if index == count {
                        let statistics = connection.inboundBuffer().statistics
                        stats.withLock { $0 = (statistics.highestCount, statistics.pauseCount) }
                    }
                }
            } catch {}
        }
        var clientConfiguration = WebSocketClient.Configuration()
        clientConfiguration.connection.maxQueuedBytes = 64 << 20  // all 200 messages queued at once
        let client = WebSocketClient(configuration: clientConfiguration)
        client.onConnect = { connection in
            for index in 0..<count {
                var bytes = [UInt8](repeating: 0xAB, count: size)
                bytes[0] = UInt8(index & 0xFF)
                bytes[1] = UInt8(index >> 8)
                connection.sendBytes(bytes)
            }
        }
        client.connect(url: "ws://127.0.0.1:\(port)/")
        XCTAssertEqual(received.waitForCount(count), Array(0..<count))
        received.wait { _ in stats.withLock { $0.pauses } > 0 }
        let (highest, pauses) = stats.withLock { $0 }
        XCTAssertGreaterThan(pauses, 0, "reading never paused")
        // The limit plus the rest of one read (256 KiB of 32 KiB messages).
        XCTAssertLessThanOrEqual(highest, limit + EventLoop.readBufferSize / size + 1)
    }

    // MARK: Close through the sequence

    func testCloseIsReportedThroughTheSequence() async throws {
        let outcomes = EventLog<String>()
        let (_, port) = try startAsyncServer(self) { connection in
            do {
                for try await _ in connection.messages {}
                outcomes.append("finished")
            } catch let error as WebSocketError {
                outcomes.append(
                    "\(error.code) \(error.closeCode.map { "\($0.rawValue)" } ?? "-") \(error.closeReason ?? "-")")
            } catch {
                outcomes.append("unexpected \(error)")
            }
        }
        let normal = try await WebSocketClient.connect(url: "ws://127.0.0.1:\(port)/")
        let normalCode = try await normal.close(code: .normalClosure)
        XCTAssertEqual(normalCode, .normalClosure)
        outcomes.waitForCount(1)

        let custom = try await WebSocketClient.connect(url: "ws://127.0.0.1:\(port)/")
        _ = try await custom.close(code: 4001, reason: "bye")
        outcomes.waitForCount(2)

        let raw = try RawClient(port: port)
        XCTAssertTrue(try raw.upgrade().hasPrefix("HTTP/1.1 101"))
        shutdown(raw.fd, Int32(SHUT_RDWR))  // TCP ends without a closing handshake: 1006
        let all = outcomes.waitForCount(3)
        XCTAssertEqual(Array(all.prefix(2)), ["finished", "connectionClosed 4001 bye"])
        XCTAssertTrue(all.count == 3 && all[2].hasPrefix("connectionClosed 1006"), "\(all)")
    }

    func testIteratingTwiceThrowsAndOnMessageIsNotCalledOnceMessagesIsUsed() async throws {
        let callbackMessages = EventLog<WebSocketMessage>()
        let fixture = try startEchoServer(self)
        try await withHangGuard {
            let connection = try await WebSocketClient.connect(url: "ws://127.0.0.1:\(fixture.port)/")
            connection.onMessage = { callbackMessages.append($0) }
            let messages = connection.messages
            var first = messages.makeAsyncIterator()
            var second = messages.makeAsyncIterator()
            do {
                _ = try await second.next()
                XCTFail("a second iteration must throw")
            } catch let error as WebSocketError {
                XCTAssertEqual(error.code, .invalidArgument)
            }
            try await connection.send("one")
            let one = try await first.next()
            XCTAssertEqual(one, .text("one"))
            _ = try await connection.close()
        }
        XCTAssertTrue(callbackMessages.all.isEmpty)
    }

    func testSendAfterCloseThrowsNotConnected() async throws {
        let fixture = try startEchoServer(self)
        let connection = try await WebSocketClient.connect(url: "ws://127.0.0.1:\(fixture.port)/")
        _ = try await connection.close()
        do {
            try await connection.send("late")
            XCTFail("send after close must throw")
        } catch {
            XCTAssertEqual(error.code, .notConnected)
        }
    }

    // MARK: Connect failures

    func testConnectFailuresAreTyped() async throws {
        let (rejecting, rejectingPort) = try startServer(self) { _ in }  // no onRequest: 403
        _ = rejecting
        let (closedSocket, closedAddress) = try Socket.listen(host: "127.0.0.1", port: 0, backlog: 1)
        closedSocket.close()  // nobody listens there now
        let cases: [(String, WebSocketError.Code)] = [
            ("http://127.0.0.1:1/", .invalidArgument),
            ("ws://127.0.0.1:\(closedAddress.port)/", .socketError),
            ("ws://127.0.0.1:\(rejectingPort)/", .handshakeFailed),
        ]
        for (url, expected) in cases {
            do {
                _ = try await withHangGuard { try await WebSocketClient.connect(url: url) }
                XCTFail("\(url) must fail")
            } catch let error as WebSocketError {
                XCTAssertEqual(error.code, expected, "\(url): \(error)")
            }
        }
    }

    func testBrowserStyleConnectOpensOrThrowsTypedErrors() async throws {
        let fixture = try startEchoServer(self)
        let received = EventLog<WebSocketMessage>()
        let socket = try await withHangGuard {
            try await WebSocket.connect(url: "ws://127.0.0.1:\(fixture.port)/") { socket in
                socket.onmessage = { received.append($0) }
            }
        }
        XCTAssertEqual(socket.readyState, .open)
        try socket.send("hi")
        XCTAssertEqual(received.waitForCount(1), [.text("hi")])
        try socket.close()

        let (_, rejectingPort) = try startServer(self) { _ in }  // no onRequest: 403
        for (url, expected) in [
            ("ftp://x/", WebSocketError.Code.invalidArgument), ("ws://127.0.0.1:\(rejectingPort)/", .handshakeFailed),
        ] {
            do {
                _ = try await withHangGuard { try await WebSocket.connect(url: url) }
                XCTFail("\(url) must fail")
            } catch let error as WebSocketError {
                XCTAssertEqual(error.code, expected, "\(url): \(error)")
            }
        }

        let cancelled = Task {
            withUnsafeCurrentTask { $0?.cancel() }
            return try await WebSocket.connect(url: "ws://127.0.0.1:\(fixture.port)/")
        }
        let result = await cancelled.result
        XCTAssertEqual(errorCode(result), .cancelled)
    }

    // MARK: Cancellation at every await point

    func testCancellingConnectAbortsIt() async throws {
        let requests = EventLog<Int>()
        let pending = LockedValue<[WebSocketRequest]>([])
        let (_, port) = try startServer(self) { server in
            server.onRequest = { request in  // never decided: the handshake hangs
                pending.withLock { $0.append(request) }
                requests.append(1)
            }
        }
        // Warm-up: every loop gets its first sockets (and its poller's descriptors) before the baseline.
        for _ in 0..<(2 * EventLoopGroup.shared.loops.count) {
            let (socket, address) = try Socket.listen(host: "127.0.0.1", port: 0, backlog: 1)
            socket.close()
            _ = try? await WebSocketClient.connect(url: "ws://127.0.0.1:\(address.port)/")
        }
        let baseline = openDescriptors()
        let task = Task { try await WebSocketClient.connect(url: "ws://127.0.0.1:\(port)/") }
        requests.waitForCount(1)
        task.cancel()
        let result = await task.result
        XCTAssertEqual(errorCode(result), .cancelled)
        for request in pending.withLock({ $0 }) { request.reject() }  // the server side of it ends too

        // Cancelled before it started: fails at once, opens nothing.
        let early = Task {
            withUnsafeCurrentTask { $0?.cancel() }
            return try await WebSocketClient.connect(url: "ws://127.0.0.1:\(port)/")
        }
        let earlyResult = await early.result
        XCTAssertEqual(errorCode(earlyResult), .cancelled)
        XCTAssertEqual(requests.all.count, 1)
        waitUntil(openDescriptors, equals: baseline)
    }

    func testCancellingTheIteratingTaskClosesWith1001() async throws {
        let fixture = try startEchoServer(self)
        let connection = try await WebSocketClient.connect(url: "ws://127.0.0.1:\(fixture.port)/")
        let started = EventLog<Int>()
        let task = Task {
            var count = 0
            for try await _ in connection.messages {
                count += 1
                started.append(count)
            }
            return count
        }
        try await connection.send("one")
        started.waitForCount(1)  // the task is now suspended in next()
        task.cancel()
        let count = try await withHangGuard { try await task.value }
        XCTAssertEqual(count, 1)
        XCTAssertEqual(fixture.closes.waitForCount(1).first?.0, .goingAway)
    }

    func testCancellingWhileMessagesKeepComingEndsTheIterationAtTheBatchEnd() async throws {
        let fixture = try startEchoServer(self)
        var configuration = WebSocketClient.Configuration()
        // Reading never pauses, so messages keep arriving while the consumer is busy: only the
        // cancellation check when its batch is used up can end the iteration.
        configuration.connection.maxBufferedMessages = 10_000
        configuration.connection.maxBufferedMessageBytes = 16 << 20
        let connection = try await WebSocketClient.connect(
            url: "ws://127.0.0.1:\(fixture.port)/", configuration: configuration)
        let first = EventLog<Int>()
        let flooded = EventLog<Int>()
        let task = Task {
            var count = 0
            for try await _ in connection.messages {
                count += 1
                guard count == 1 else { continue }
                // The batch holds this one message (nothing else was sent yet). Cancel, then stay
                // busy, without suspending, until many more messages are buffered behind it.
                withUnsafeCurrentTask { $0?.cancel() }
                first.append(1)
                flooded.waitForCount(1)
                let until = ContinuousClock.now + .milliseconds(100)
                while ContinuousClock.now < until {}
            }
            return count
        }
        try await connection.send("first")
        first.waitForCount(1)
        for _ in 0..<2000 { connection.sendBytes([UInt8](repeating: 7, count: 1024)) }  // echoed back
        flooded.append(1)
        let count = try await withHangGuard { try await task.value }
        XCTAssertEqual(count, 1, "messages were handed out after the batch ended in a cancelled task")
        XCTAssertEqual(fixture.closes.waitForCount(1).first?.0, .goingAway)
    }

    func testCancellingABlockedSendClosesWith1001AndLeaksNothing() async throws {
        let liveBefore = WebSocketConnection.liveCount.load(ordering: .relaxed)
        let serverCloses = EventLog<WebSocketCloseCode>()
        let (server, port) = try startServer(self, configure: { $0.connection.closeTimeout = .milliseconds(500) }) {
            server in
            server.onRequest = { request in
                let connection = try? request.accept()
                connection?.pause()  // never reads: the client's sends back up
                connection?.onClose = { code, _ in serverCloses.append(code) }
            }
        }
        try await sendUntilBlockedThenCancel(port: port)
        await server.shutDown()
        XCTAssertEqual(serverCloses.waitForCount(1).count, 1)
        waitUntil({ WebSocketConnection.liveCount.load(ordering: .relaxed) }, equals: liveBefore)
    }

    /// Fills the send queue of a connection to a server that does not read, cancels the blocked
    /// sender, and checks what it got; every reference to the connection ends with this call.
    private func sendUntilBlockedThenCancel(port: Int) async throws {
        var configuration = WebSocketClient.Configuration()
        configuration.connection.highWaterMark = 64 * 1024
        configuration.connection.maxQueuedBytes = 1 << 30
        configuration.connection.closeTimeout = .milliseconds(500)
        let connection = try await WebSocketClient.connect(url: "ws://127.0.0.1:\(port)/", configuration: configuration)
        let sent = Atomic<Int>(0)
        let task = Task {
            let chunk = [UInt8](repeating: 1, count: 64 * 1024)
            while true {
                try await connection.send(chunk)
                sent.add(1, ordering: .relaxed)
            }
        }
        // Wait until the sender is stuck: no progress, bytes waiting for a kernel that takes no more.
        var lastCount = -1
        for round in 0... {
            try await Task.sleep(for: .milliseconds(200))
            let now = sent.load(ordering: .relaxed)
            if now == lastCount && connection.bufferedAmount > 0 { break }
            lastCount = now
            if round == 300 {  // hang guard
                XCTFail("the sender never blocked: \(now) sent, \(connection.bufferedAmount) buffered")
                break
            }
        }
        task.cancel()
        let result = try await withHangGuard { await task.result }
        XCTAssertEqual(errorCode(result), .cancelled)
        // The close frame cannot get through the full buffers: after closeTimeout the socket closes.
        let code = try await withHangGuard { try await connection.close() }
        XCTAssertNotNil(connection.closeReasonCode)
        XCTAssertTrue([.goingAway, .abnormalClosure].contains(code), "\(code)")
    }

    func testCancellingAnAsyncCloseDropsTheConnection() async throws {
        let (_, port) = try startServer(self, configure: { $0.connection.closeTimeout = .milliseconds(500) }) {
            server in
            server.onRequest = { request in (try? request.accept())?.pause() }  // never answers the close
        }
        var configuration = WebSocketClient.Configuration()
        configuration.connection.closeTimeout = .seconds(120)  // only the cancellation can end it in time
        let connection = try await WebSocketClient.connect(url: "ws://127.0.0.1:\(port)/", configuration: configuration)
        let waiting = Task { try await connection.close(code: .normalClosure, reason: "bye") }
        while connection.isConnected { try await Task.sleep(for: .milliseconds(10)) }  // the close frame is out
        waiting.cancel()
        let code = try await withHangGuard { try await waiting.value }
        XCTAssertEqual(code, .goingAway)
        XCTAssertEqual(connection.closeReasonCode, .goingAway)
    }

    func testCancellingTheAcceptLoopLeavesTheServerRunning() async throws {
        let (server, port) = try startServer(self) { _ in }
        let requests = server.requests
        let loop = Task {
            var count = 0
            for await request in requests {
                _ = try? request.accept()
                count += 1
            }
            return count
        }
        try await Task.sleep(for: .milliseconds(50))
        loop.cancel()
        let count = try await withHangGuard { await loop.value }
        XCTAssertEqual(count, 0)
        XCTAssertNotNil(server.localAddress)
        // A new accept loop takes over.
        let again = Task { () -> Bool in
            for await request in requests {
                return (try? request.accept()) != nil
            }
            return false
        }
        let connection = try await WebSocketClient.connect(url: "ws://127.0.0.1:\(port)/")
        let accepted = try await withHangGuard { await again.value }
        XCTAssertTrue(accepted)
        _ = try await connection.close()
    }

    /// livekit/client-sdk-swift#528: whichever of racing events comes first resumes; exactly once.
    func testContinuationIsResumedExactlyOnceUnderRaces() async throws {
        for round in 0..<500 {
            let once = AsyncResumeOnce<Int>()
            let winners = Atomic<Int>(0)
            let value = await withCheckedContinuation { (continuation: CheckedContinuation<Int, Never>) in
                let racers = DispatchGroup()
                for racer in 0..<3 {
                    DispatchQueue.global().async(group: racers) {
                        if once.resume(racer) { winners.add(1, ordering: .relaxed) }
                    }
                }
                if round % 2 == 0 { racers.wait() }  // half the rounds: the value comes before set
                once.set(continuation)
            }
            XCTAssertTrue((0..<3).contains(value))
            while winners.load(ordering: .relaxed) == 0 { await Task.yield() }
            XCTAssertEqual(winners.load(ordering: .relaxed), 1)
        }
    }

    // MARK: run / shutDown

    func testRunServesUntilShutDownAndReturns() async throws {
        let server = WebSocketServer()
        do {
            try await server.run(asyncEcho)
            XCTFail("run before listen must throw")
        } catch {
            XCTAssertEqual(error.code, .invalidArgument)
        }
        let port = try server.listen(host: "127.0.0.1", port: 0).port
        let running = Task { try await server.run(asyncEcho) }
        let connection = try await WebSocketClient.connect(url: "ws://127.0.0.1:\(port)/")
        try await connection.send("ping")
        var iterator = connection.messages.makeAsyncIterator()
        let echoed = try await iterator.next()
        XCTAssertEqual(echoed, .text("ping"))
        await server.shutDown()
        try await withHangGuard { try await running.value }
        let end = try await iterator.next()
        XCTAssertNil(end)  // 1001 from the shutdown: a normal end
        XCTAssertEqual(connection.closeReasonCode, .goingAway)
    }
}

/// The ``WebSocketError`` code a task failed with, `nil` when it succeeded or threw something else.
func errorCode<T>(_ result: Result<T, any Error>) -> WebSocketError.Code? {
    if case .failure(let error as WebSocketError) = result { return error.code }
    return nil
}

/// An actor on its own dispatch queue, so a test can tell whether code runs on it.
actor QueueActor {
    final class QueueExecutor: SerialExecutor {
        // Sendable: the queue and the key are immutable and thread-safe.
        let queue = DispatchQueue(label: "QueueActor")
        static let key = DispatchSpecificKey<Bool>()
        init() { queue.setSpecific(key: Self.key, value: true) }
        func enqueue(_ job: consuming ExecutorJob) {
            let job = UnownedJob(job)
            let executor = asUnownedSerialExecutor()
            queue.async { job.runSynchronously(on: executor) }
        }
    }

    static let offActor = Atomic<Int>(0)
    static let echoed = Atomic<Int>(0)
    private let executor = QueueExecutor()
    nonisolated var unownedExecutor: UnownedSerialExecutor { executor.asUnownedSerialExecutor() }

    private func check() {
        if DispatchQueue.getSpecific(key: QueueExecutor.key) != true { Self.offActor.add(1, ordering: .relaxed) }
    }

    func echo(_ connection: WebSocketConnection) async {
        check()
        do {
            for try await message in connection.messages {
                check()
                Self.echoed.add(1, ordering: .relaxed)  // before the echo leaves, so the test sees it
                try await connection.send(message)
                check()
            }
        } catch {}
        check()
    }
}
