import XCTest

@testable import DispatchWebSocket

#if canImport(Glibc)
import Glibc
#endif

/// Bounded memory under default settings: a peer that sends fast and never reads is slowed by
/// TCP, not buffered; the app's own pause composes with it; a broadcast drops the slow one.
final class FlowControlTests: XCTestCase {
    /// Reads `body` on the connection's loop (the channel's counters are loop-confined).
    private func onLoop<R: Sendable>(_ connection: WebSocketConnection, _ body: @Sendable @escaping () -> R) -> R {
        connection.loop.queue.sync { body() }
    }

    private static func bufferSize(_ fd: Int32, _ option: Int32) -> Int {
        var value: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        getsockopt(fd, SOL_SOCKET, option, &value, &length)
        return Int(value)
    }

    /// The i-th test message: 1 MiB, its index in the first bytes, so order and content are checked.
    private static func message(_ index: Int) -> [UInt8] {
        var bytes = [UInt8](repeating: UInt8(truncatingIfNeeded: index &* 31 &+ 7), count: 1 << 20)
        bytes[0] = UInt8(index)
        return bytes
    }

    /// Sends `count` messages from a background thread (its writes block once TCP pushes back).
    private func sendInBackground(_ client: RawClient, count: Int) -> EventLog<Int> {
        let sent = EventLog<Int>()
        let client = UncheckedBox(client)
        DispatchQueue.global().async {
            for index in 0..<count {
                guard (try? client.value.send(.binary, Self.message(index))) != nil else { return }
                sent.append(index)
            }
        }
        return sent
    }

    func testAnEchoToAClientThatNeverReadsStopsReadingWithinTheBound() throws {
        let connections = EventLog<WebSocketConnection>()
        let (_, port) = try startServer(self) { server in  // default connection settings (keepalive off)
            server.onRequest = { request in
                guard let connection = try? request.accept() else { return }
                connection.onMessage = { connection.send($0) }
                connections.append(connection)
            }
        }
        let client = try RawClient(port: port, timeoutSeconds: 30)
        try client.upgrade()
        let connection = connections.waitForCount(1)[0]
        let configuration = connection.configuration
        XCTAssertTrue(configuration.pauseReadingWhileBackpressured)
        XCTAssertLessThanOrEqual(configuration.maxQueuedBytes, 4 << 20)

        let count = 48  // 48 MiB offered: far more than any buffer on the way
        let sent = sendInBackground(client, count: count)
        // The server stops reading once its queue passes highWaterMark.
        let deadline = DispatchTime.now() + 20
        while !onLoop(connection, { connection.isPausedByBackpressure }) && DispatchTime.now() < deadline {
            usleep(5_000)
        }
        XCTAssertTrue(onLoop(connection, { connection.isPausedByBackpressure }))
        // What it may read: its queue (highWaterMark + the message that crossed it), one read
        // buffer, and what the two kernels hold (its send buffer, the client's receive buffer).
        let serverSendBuffer = onLoop(connection) { Self.bufferSize(connection.channel.socket.fd, SO_SNDBUF) }
        let bound =
            configuration.highWaterMark + (1 << 20) + EventLoop.readBufferSize
            + serverSendBuffer + Self.bufferSize(client.fd, SO_RCVBUF)
            + (1 << 20)  // slack: frame headers, a partial read
        for _ in 0..<20 {  // samples over a while: the bound holds at every one
            let (read, queued) = onLoop(connection) {
                (connection.channel.bytesRead, connection.channel.bufferedAmount)
            }
            XCTAssertLessThanOrEqual(read, bound)
            XCTAssertLessThanOrEqual(queued, configuration.maxQueuedBytes + (1 << 20))
            usleep(25_000)
        }
        XCTAssertLessThan(sent.all.count, count)  // TCP pushed back on the sender
        XCTAssertTrue(connection.isConnected)

        // Once the client reads, everything flows again: every echo, intact and in order.
        for index in 0..<count {
            let frame = try XCTUnwrap(client.readFrame(skippingPings: true))
            XCTAssertEqual(frame.opcode, .binary)
            var payload = frame.payload
            var last = frame
            while !last.fin {
                last = try XCTUnwrap(client.readFrame(skippingPings: true))
                payload += last.payload
            }
            XCTAssertEqual(payload, Self.message(index), "echo \(index)")
        }
        XCTAssertEqual(sent.waitForCount(count).count, count)
    }

    func testTheAppsPauseHoldsReadingAfterTheQueueDrains() throws {
        let connections = EventLog<WebSocketConnection>()
        let received = EventLog<Int>()
        let (_, port) = try startServer(self) { server in
            server.onRequest = { request in
                guard let connection = try? request.accept() else { return }
                connection.onMessage = { message in
                    guard case .binary(let bytes) = message else { return }
                    received.append(Int(bytes[0]))
                    connection.send(message)
                    if bytes[0] == 0 { connection.pause() }  // the app holds reading too
                }
                connections.append(connection)
            }
        }
        let client = try RawClient(port: port, timeoutSeconds: 30)
        try client.upgrade()
        let connection = connections.waitForCount(1)[0]
        _ = sendInBackground(client, count: 8)
        XCTAssertEqual(received.waitForCount(1), [0])
        // Reading the first echo empties the server's queue; the backpressure pause ends, the
        // app's does not.
        var first = try XCTUnwrap(client.readFrame(skippingPings: true)).payload
        while first.count < 1 << 20 { first += try XCTUnwrap(client.readFrame(skippingPings: true)).payload }
        XCTAssertEqual(first, Self.message(0))
        let deadline = DispatchTime.now() + 10
        while onLoop(connection, { connection.isPausedByBackpressure || connection.bufferedAmount > 0 })
            && DispatchTime.now() < deadline
        {
            usleep(5_000)
        }
        XCTAssertFalse(onLoop(connection) { connection.isPausedByBackpressure })
        XCTAssertTrue(onLoop(connection) { connection.channel.isReadingPaused })
        XCTAssertEqual(received.all, [0])
        connection.resume()
        for index in 1..<8 {  // the client reads again, so the server's queue keeps draining
            var echo = try XCTUnwrap(client.readFrame(skippingPings: true)).payload
            while echo.count < 1 << 20 { echo += try XCTUnwrap(client.readFrame(skippingPings: true)).payload }
            XCTAssertEqual(echo, Self.message(index))
        }
        XCTAssertEqual(received.waitForCount(8), Array(0..<8))
    }

    func testABroadcastClosesAReceiverThatNeverReadsAndServesTheOthers() throws {
        let connects = EventLog<Int>()
        let closes = EventLog<WebSocketCloseCode>()
        let (server, port) = try startServer(
            self,
            configure: {
                $0.autoAcceptConnections = true  // default queue limits
                $0.connection.fragmentOutgoingMessages = false
            }
        ) { server in
            server.onConnect = { _ in connects.append(1) }
            server.onClose = { _, code, _ in closes.append(code) }
        }
        let slow = try RawClient(port: port)  // upgrades, then never reads again
        try slow.upgrade()
        connects.waitForCount(1)
        let fast = try (0..<3).map { _ in try RawClient(port: port) }
        for client in fast { try client.upgrade() }
        connects.waitForCount(4)
        let payload = [UInt8](repeating: 9, count: 256 * 1024)
        let rounds = 96  // 24 MiB to each: beyond the slow one's kernel buffers and maxQueuedBytes
        let readers = fast.map { client in
            let got = EventLog<Int>()
            let client = UncheckedBox(client)
            DispatchQueue.global().async {
                for _ in 0..<rounds {
                    guard let frame = try? client.value.readFrame(skippingPings: true), frame.payload == payload else {
                        return
                    }
                    got.append(1)
                }
            }
            return got
        }
        for round in 1...rounds {
            server.broadcastBytes(payload)
            // Paced by the fast readers, as an app streaming to live clients is: their queues
            // stay small, while the one that never reads falls behind until its limit.
            for got in readers { got.waitForCount(round) }
        }
        for got in readers { XCTAssertEqual(got.all.count, rounds) }
        XCTAssertEqual(closes.waitForCount(1), [.policyViolation])  // the slow one, with 1008
        XCTAssertEqual(server.connections.count, 3)
        _ = slow
    }

    func testOneLargeMessageOnAnEmptyQueueIsNotRefused() throws {
        let statuses = EventLog<WebSocketSendStatus>()
        let (_, port) = try startServer(self) { server in
            server.onRequest = { request in
                guard let connection = try? request.accept() else { return }
                connection.onMessage = { _ in
                    statuses.append(connection.sendBytes([UInt8](repeating: 5, count: 12 << 20)))  // 3x maxQueuedBytes
                    statuses.append(connection.sendBytes([1]))  // a second one beyond the limit is refused
                }
            }
        }
        let client = try RawClient(port: port, timeoutSeconds: 30)
        try client.upgrade()
        try client.sendText("big")
        XCTAssertEqual(statuses.waitForCount(2), [.backpressure, .dropped])
    }
}

/// Hands a test object to one other thread (the test does not touch it meanwhile).
final class UncheckedBox<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}
