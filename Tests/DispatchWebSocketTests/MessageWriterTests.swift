import XCTest

@testable import DispatchWebSocket

/// `makeMessageWriter`: fragments leave as they are written, other messages wait behind an open
/// writer while control frames do not, backpressure bounds the queue, abort closes with 1011,
/// split UTF-8 is held back. Frames are read raw so their opcodes and FIN bits are visible.
final class MessageWriterTests: XCTestCase {
    /// A server whose connection the test drives, and a raw client upgraded to it.
    private func connected(
        configure: (inout WebSocketServer.Configuration) -> Void = { _ in },
        extraHeaders: String = "",
        onMessage: (@Sendable (WebSocketConnection, WebSocketMessage) -> Void)? = nil
    ) throws -> (WebSocketConnection, RawClient) {
        let connections = EventLog<WebSocketConnection>()
        let (_, port) = try startServer(self, configure: configure) { server in
            server.onRequest = { request in
                guard let connection = try? request.accept() else { return }
                if let onMessage { connection.onMessage = { onMessage(connection, $0) } }
                connections.append(connection)
            }
        }
        let client = try RawClient(port: port, timeoutSeconds: 20)
        try client.upgrade(extraHeaders: extraHeaders)
        return (connections.waitForCount(1)[0], client)
    }

    private func frame(_ client: RawClient, file: StaticString = #filePath, line: UInt = #line) throws -> WebSocketFrame
    {
        try XCTUnwrap(client.readFrame(), "EOF instead of a frame", file: file, line: line)
    }

    func testEachWriteLeavesAsAFrameBeforeTheMessageEnds() throws {
        let (connection, client) = try connected()
        let writer = try connection.makeMessageWriter(.text)
        XCTAssertEqual(writer.write("hel"), .queued)
        // The first fragment arrives while the message is still open.
        let first = try frame(client)
        XCTAssertEqual(first.opcode, .text)
        XCTAssertFalse(first.fin)
        XCTAssertEqual(first.payload, Array("hel".utf8))
        writer.write(Array("lo".utf8))
        let second = try frame(client)
        XCTAssertEqual(second.opcode, .continuation)
        XCTAssertFalse(second.fin)
        XCTAssertEqual(second.payload, Array("lo".utf8))
        let done = EventLog<String>()
        writer.end(with: "!") { done.append($0.map { "\($0.code)" } ?? "sent") }
        let last = try frame(client)
        XCTAssertEqual(last.opcode, .continuation)
        XCTAssertTrue(last.fin)
        XCTAssertEqual(last.payload, Array("!".utf8))
        XCTAssertEqual(done.waitForCount(1), ["sent"])
        // Ended: further writes are refused, and a new writer may open.
        let refused = EventLog<WebSocketError.Code>()
        writer.write("late") { if let error = $0 { refused.append(error.code) } }
        XCTAssertEqual(refused.waitForCount(1), [.invalidArgument])
        let next = try connection.makeMessageWriter(.binary)
        next.end()
        let empty = try frame(client)
        XCTAssertEqual(empty.opcode, .binary)
        XCTAssertTrue(empty.fin)
        XCTAssertEqual(empty.payload, [])
    }

    func testMessagesWaitBehindAnOpenWriterWhileControlFramesGoBetweenItsFragments() throws {
        let writerBox = LockedValue<WebSocketMessageWriter?>(nil)
        let results = EventLog<String>()
        let (_, client) = try connected(onMessage: { connection, message in
            guard case .text(let step) = message else { return }
            // Each step runs in one loop event, so what is queued is exactly what it says.
            if step == "one" {
                let writer = try! connection.makeMessageWriter(.binary)
                writerBox.withLock { $0 = writer }
                writer.write([1, 1])
                connection.sendUTF("waited") { results.append($0 == nil ? "waited sent" : "waited failed") }
                connection.sendFrame(WebSocketFrame(fin: true, opcode: .binary, payload: [9]))
            } else {
                let writer = writerBox.withLock { $0 }!
                connection.ping([7])
                writer.write([2, 2])
                connection.pong([8])
                writer.end()
            }
        })
        try client.sendText("one")
        let first = try frame(client)
        XCTAssertEqual(first.opcode, .binary)
        XCTAssertFalse(first.fin)
        XCTAssertEqual(first.payload, [1, 1])
        try client.sendText("two")
        var rest: [String] = []
        for _ in 0..<6 {
            let frame = try frame(client)
            rest.append("\(frame.opcode):\(frame.fin):\(frame.payload)")
        }
        XCTAssertEqual(
            rest,
            [
                "ping:true:[7]", "pong:true:[8]",  // control frames overtake the queued fragment
                "continuation:false:[2, 2]", "continuation:true:[]",
                "text:true:\(Array("waited".utf8))", "binary:true:[9]",  // then the waiting sends, in order
            ])
        XCTAssertEqual(results.waitForCount(1), ["waited sent"])
    }

    func testOneWriterAtATimeAndNoneOnAClosedConnection() throws {
        let (connection, client) = try connected()
        let writer = try connection.makeMessageWriter(.text)
        XCTAssertThrowsError(try connection.makeMessageWriter(.binary)) { error in
            XCTAssertEqual((error as? WebSocketError)?.code, .invalidArgument)
        }
        writer.end(with: "x")
        XCTAssertEqual(try frame(client).payload, Array("x".utf8))
        XCTAssertNoThrow(try connection.makeMessageWriter(.text).end())
        XCTAssertTrue(try frame(client).fin)  // the empty message
        connection.close()
        XCTAssertEqual(try frame(client).opcode, .close)  // the close has run on the loop
        XCTAssertThrowsError(try connection.makeMessageWriter(.text)) { error in
            XCTAssertEqual((error as? WebSocketError)?.code, .notConnected)
        }
    }

    func testAbortMidMessageClosesWith1011AndFailsTheSendsBehindIt() throws {
        let (connection, client) = try connected()
        let writer = try connection.makeMessageWriter(.binary)
        writer.write([1, 2, 3])
        let failures = EventLog<WebSocketError.Code>()
        connection.sendBytes([4]) { if let error = $0 { failures.append(error.code) } }
        // The waiting message counts in bufferedAmount (read on the loop, after the sends above).
        XCTAssertGreaterThanOrEqual(connection.loop.queue.sync { connection.bufferedAmount }, 1 + FrameHeader.maxSize)
        writer.abort()
        let part = try frame(client)
        XCTAssertEqual(part.opcode, .binary)
        XCTAssertFalse(part.fin)
        let close = try frame(client)
        XCTAssertEqual(close.opcode, .close)
        XCTAssertEqual(RawClient.closeCode(close), 1011)
        XCTAssertEqual(failures.waitForCount(1), [.notConnected])
        writer.write([5]) { if let error = $0 { failures.append(error.code) } }
        XCTAssertEqual(failures.waitForCount(2)[1], .invalidArgument)
        XCTAssertTrue(connection.hasFinished)
    }

    func testTextSplitInsideACharacterIsHeldBackAndInvalidUTF8IsRefused() throws {
        let (connection, client) = try connected()
        let writer = try connection.makeMessageWriter(.text)
        let errors = EventLog<String>()
        let euro = Array("€".utf8)  // E2 82 AC
        writer.write([0x41, euro[0]])  // "A" and the euro sign's first byte
        let first = try frame(client)
        XCTAssertEqual(first.opcode, .text)
        XCTAssertEqual(first.payload, [0x41])  // the split character is held back
        writer.write([euro[1]])  // still incomplete: no frame
        writer.write([0xFF]) { errors.append($0.map { "\($0.code)" } ?? "sent") }  // invalid here
        XCTAssertEqual(errors.waitForCount(1), ["invalidArgument"])
        writer.end { errors.append($0.map { "\($0.code)" } ?? "sent") }  // cannot end inside it
        XCTAssertEqual(errors.waitForCount(2)[1], "invalidArgument")
        writer.write("x")  // a string completes nothing: refused as invalid after the lead bytes
        writer.write([euro[2]] + Array("é".utf8)) { errors.append($0.map { "\($0.code)" } ?? "sent") }
        let second = try frame(client)
        XCTAssertEqual(second.opcode, .continuation)
        XCTAssertEqual(String(decoding: second.payload, as: UTF8.self), "€é")
        writer.end(with: "!")
        let last = try frame(client)
        XCTAssertTrue(last.fin)
        XCTAssertEqual(last.payload, Array("!".utf8))
        XCTAssertEqual(errors.waitForCount(3)[2], "sent")
    }

    func test64MiBStreamUnderBackpressureKeepsTheQueueBounded() throws {
        let chunkSize = 64 * 1024
        let chunks = 1024  // 64 MiB
        let (connection, client) = try connected()
        let configuration = connection.configuration
        let peak = LockedValue(0)
        let finished = EventLog<String>()
        let writer = try connection.makeMessageWriter(.binary)
        // A generator: chunk i is filled with i's low byte, its first 4 bytes are i.
        final class Pump: @unchecked Sendable {  // loop-confined
            var next = 0
        }
        let pump = Pump()
        let step: @Sendable () -> Void = {
            while pump.next < chunks {
                var chunk = [UInt8](repeating: UInt8(truncatingIfNeeded: pump.next), count: chunkSize)
                withUnsafeBytes(of: UInt32(pump.next).bigEndian) { chunk.replaceSubrange(0..<4, with: $0) }
                pump.next += 1
                let status =
                    pump.next == chunks
                    ? writer.end(with: chunk) { finished.append($0 == nil ? "sent" : "\($0!)") } : writer.write(chunk)
                let queued = connection.channel.bufferedAmount
                peak.withLock { $0 = max($0, queued) }
                XCTAssertNotEqual(status, .dropped)
                if status == .backpressure { return }  // onDrain resumes
            }
        }
        connection.onDrain = step
        connection.loop.execute { connection.loop.runEvent(step) }

        var received = 0
        var expected = 0
        var sawFin = false
        var frames = 0
        while !sawFin {
            let frame = try frame(client)
            XCTAssertEqual(frame.opcode, frames == 0 ? .binary : .continuation)
            frames += 1
            // Sampled (a debug build checking every byte would be slow): each frame's last byte
            // and each chunk's index, in order.
            if let byte = frame.payload.last {
                let position = received + frame.payload.count - 1
                XCTAssertEqual(byte, UInt8(truncatingIfNeeded: position / chunkSize), "byte \(position)")
            }
            if received % chunkSize == 0, frame.payload.count >= 4 {
                let index = frame.payload[0..<4].reduce(0) { $0 << 8 | Int($1) }
                XCTAssertEqual(index, received / chunkSize)
            }
            received += frame.payload.count
            sawFin = frame.fin
            expected = chunks * chunkSize
        }
        XCTAssertEqual(received, expected)
        XCTAssertEqual(finished.waitForCount(1), ["sent"])
        // The queue never held more than the high-water mark plus the write that crossed it.
        let bound =
            configuration.highWaterMark + chunkSize + (chunkSize / configuration.fragmentationThreshold + 1)
            * FrameHeader.maxSize
        XCTAssertLessThanOrEqual(peak.withLock { $0 }, bound)
        XCTAssertGreaterThan(peak.withLock { $0 }, configuration.highWaterMark)  // backpressure was really met
    }

    func testAWriteBeyondMaxQueuedBytesIsReportedAndCanBeRetried() throws {
        let outcomes = EventLog<String>()
        let writerBox = LockedValue<WebSocketMessageWriter?>(nil)
        let (_, client) = try connected(
            configure: {
                $0.connection.maxQueuedBytes = 64 * 1024
                $0.connection.highWaterMark = 16 * 1024
                $0.connection.sendQueueOverflow = .dropMessage
            },
            onMessage: { connection, message in
                guard case .text(let step) = message else { return }
                if step == "fill" {  // one loop event: nothing is written before it ends
                    let writer = try! connection.makeMessageWriter(.binary)
                    writerBox.withLock { $0 = writer }
                    outcomes.append("\(writer.write([UInt8](repeating: 1, count: 40 * 1024)))")
                    outcomes.append(
                        "\(writer.write([UInt8](repeating: 2, count: 40 * 1024)) { outcomes.append("completion:\($0?.code.description ?? "sent")") })"
                    )
                    outcomes.append("waiting:\(connection.sendUTF(String(repeating: "x", count: 40 * 1024)))")
                } else {
                    let writer = writerBox.withLock { $0 }!
                    writer.end(with: [UInt8](repeating: 2, count: 40 * 1024))  // the refused piece, again
                }
            })
        try client.sendText("fill")
        XCTAssertEqual(
            outcomes.waitForCount(4), ["backpressure", "completion:sendQueueFull", "dropped", "waiting:dropped"])
        var payload: [UInt8] = []
        while payload.count < 40 * 1024 { payload += try frame(client).payload }
        XCTAssertEqual(payload, [UInt8](repeating: 1, count: 40 * 1024))
        try client.sendText("retry")
        var rest: [UInt8] = []
        var fin = false
        while !fin {
            let frame = try frame(client)
            rest += frame.payload
            fin = frame.fin
        }
        XCTAssertEqual(rest, [UInt8](repeating: 2, count: 40 * 1024))  // nothing lost, nothing doubled
    }

    func testAClientWriterIsMaskedAndArrivesAsOneMessage() throws {
        let fixture = try startEchoServer(self)
        let client = WebSocketClient()
        let connections = EventLog<WebSocketConnection>()
        let messages = EventLog<WebSocketMessage>()
        client.onConnect = { connection in
            connection.onMessage = { messages.append($0) }
            connections.append(connection)
        }
        client.connect(url: "ws://127.0.0.1:\(fixture.port)/")
        let connection = connections.waitForCount(1)[0]
        let writer = try connection.makeMessageWriter(.text)
        connection.sendUTF("after")  // waits behind the writer
        let parts = ["Grüße, ", "Welt", " — ", String(repeating: "ß", count: 20_000)]
        for part in parts.dropLast() { writer.write(part) }
        writer.end(with: parts.last!)
        let received = messages.waitForCount(2)
        XCTAssertEqual(received.count, 2)
        guard case .text(let text) = received[0], case .text(let after) = received[1] else {
            return XCTFail("expected two text messages, got \(received)")
        }
        XCTAssertEqual(text, parts.joined())
        XCTAssertEqual(after, "after")
        XCTAssertEqual(fixture.errors.all, [])
    }

    func testWithPermessageDeflateTheFragmentsGoUncompressedAndSendsAfterThemCompressed() throws {
        let (connection, client) = try connected(
            configure: { $0.perMessageDeflate = PerMessageDeflateOptions() },
            extraHeaders: "Sec-WebSocket-Extensions: permessage-deflate\r\n")
        XCTAssertTrue(connection.extensions.hasPrefix("permessage-deflate"))
        let text = String(repeating: "compressible ", count: 200)
        let writer = try connection.makeMessageWriter(.text)
        connection.sendUTF(text)  // waits, then leaves compressed as usual
        writer.write(text)
        writer.end()
        let first = try frame(client)
        XCTAssertEqual(first.opcode, .text)
        XCTAssertFalse(first.rsv1)  // RFC 7692: a message without RSV1 is not compressed
        XCTAssertEqual(String(decoding: first.payload, as: UTF8.self), text)
        let last = try frame(client)
        XCTAssertTrue(last.fin)
        XCTAssertFalse(last.rsv1)
        let after = try frame(client)
        XCTAssertEqual(after.opcode, .text)
        XCTAssertTrue(after.rsv1)
        XCTAssertLessThan(after.payload.count, text.utf8.count)
    }
}
