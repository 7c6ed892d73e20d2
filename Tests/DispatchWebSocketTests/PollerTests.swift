import Dispatch
import XCTest

@testable import DispatchWebSocket

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The loop's poller (the `.poller` backend, through its registrations): edge-triggered readiness, registration and unregistration, write watching.
///
/// "Not reported" is checked without sleeping: a second, sentinel descriptor is made ready after
/// the one under test, and one wait collects every ready descriptor, so by the time the
/// sentinel's event arrives an event for the other would have arrived too.
final class PollerTests: XCTestCase {
    private final class Recorder: PollerClient {
        let name: String
        let log: EventLog<String>
        init(_ name: String, _ log: EventLog<String>) {
            self.name = name
            self.log = log
        }
        func pollerReady(_ events: PollEvents) {
            var parts: [String] = []
            if events.contains(.readable) { parts.append("r") }
            if events.contains(.writable) { parts.append("w") }
            if events.contains(.hangUp) { parts.append("h") }
            log.append("\(name):\(parts.joined())")
        }
    }

    private struct Pipe {
        let readEnd: Int32
        let writeEnd: Int32
        init() {
            var fds: [Int32] = [0, 0]
            precondition(pipe(&fds) == 0)
            (readEnd, writeEnd) = (fds[0], fds[1])
            for fd in fds { _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) }
        }
        func put() {
            var byte: UInt8 = 1
            _ = write(writeEnd, &byte, 1)
        }
        func closeBoth() {
            _ = close(readEnd)
            _ = close(writeEnd)
        }
    }

    /// Waits until the loop has finished the event it is running: every descriptor of one
    /// wake-up is reported within one event.
    private func settle(_ loop: EventLoop) { loop.queue.sync {} }

    /// Runs `body` on the loop's queue and rethrows its error here.
    private func onLoop(_ loop: EventLoop, _ body: @escaping () throws(WebSocketError) -> Void) throws {
        let error = loop.queue.sync { () -> WebSocketError? in
            do throws(WebSocketError) {
                try body()
                return nil
            } catch {
                return error
            }
        }
        if let error { throw error }
    }

    /// Registrations by descriptor (the poller backend's), touched on the test thread only.
    private var registrations: [Int32: Readiness] = [:]

    private func register(_ loop: EventLoop, _ fd: Int32, _ client: PollerClient) throws {
        let result = loop.queue.sync { () -> Result<Readiness, WebSocketError> in
            do throws(WebSocketError) {
                return .success(try loop.register(fd, client, transport: .poller))
            } catch {
                return .failure(error)
            }
        }
        registrations[fd] = try result.get()
    }

    private func unregister(_ loop: EventLoop, _ fd: Int32) {
        guard let registration = registrations.removeValue(forKey: fd) else { return }
        loop.queue.sync { registration.cancel(closingFD: false) }
    }

    /// Everything reported once `count` events arrived and the loop finished that wake-up.
    private func events(_ log: EventLog<String>, atLeast count: Int, on loop: EventLoop) -> [String] {
        log.waitForCount(count)
        settle(loop)
        return log.all
    }

    func testReportsReadinessThatExistedBeforeRegistration() throws {
        let loop = EventLoop(label: "test.poller")
        let log = EventLog<String>()
        let a = Pipe()
        defer { a.closeBoth() }
        a.put()
        try register(loop, a.readEnd, Recorder("a", log))
        XCTAssertEqual(log.waitForCount(1), ["a:r"])
        unregister(loop, a.readEnd)
    }

    func testUnreadBytesAreNotReportedAgain() throws {
        let loop = EventLoop(label: "test.poller")
        let log = EventLog<String>()
        let (a, sentinel) = (Pipe(), Pipe())
        defer {
            a.closeBoth()
            sentinel.closeBoth()
        }
        try register(loop, a.readEnd, Recorder("a", log))
        try register(loop, sentinel.readEnd, Recorder("s", log))
        a.put()
        XCTAssertEqual(log.waitForCount(1), ["a:r"])
        // The byte stays unread: edge-triggered, so only new arrivals are reported.
        sentinel.put()
        XCTAssertEqual(events(log, atLeast: 2, on: loop), ["a:r", "s:r"])
        a.put()
        XCTAssertEqual(log.waitForCount(3), ["a:r", "s:r", "a:r"])
        unregister(loop, a.readEnd)
        unregister(loop, sentinel.readEnd)
    }

    func testUnregisteredDescriptorIsNotReported() throws {
        let loop = EventLoop(label: "test.poller")
        let log = EventLog<String>()
        let (a, sentinel) = (Pipe(), Pipe())
        defer {
            a.closeBoth()
            sentinel.closeBoth()
        }
        try register(loop, a.readEnd, Recorder("a", log))
        try register(loop, sentinel.readEnd, Recorder("s", log))
        unregister(loop, a.readEnd)
        a.put()
        sentinel.put()
        XCTAssertEqual(events(log, atLeast: 1, on: loop), ["s:r"])
        unregister(loop, sentinel.readEnd)
    }

    func testReusedDescriptorReachesOnlyItsNewClient() throws {
        let loop = EventLoop(label: "test.poller")
        let log = EventLog<String>()
        let first = Pipe()
        try register(loop, first.readEnd, Recorder("old", log))
        unregister(loop, first.readEnd)
        first.closeBoth()
        let second = Pipe()  // the kernel hands out the lowest free descriptors: the same numbers
        defer { second.closeBoth() }
        try register(loop, second.readEnd, Recorder("new", log))
        second.put()
        XCTAssertEqual(events(log, atLeast: 1, on: loop), ["new:r"])
        unregister(loop, second.readEnd)
    }

    func testWritableIsReportedOnceWatchedAfterTheBufferFilled() throws {
        let loop = EventLoop(label: "test.poller")
        let log = EventLog<String>()
        let a = Pipe()
        defer { a.closeBoth() }
        try register(loop, a.writeEnd, Recorder("a", log))
        var chunk = [UInt8](repeating: 0, count: 4096)
        while write(a.writeEnd, &chunk, chunk.count) > 0 {}
        XCTAssertEqual(errno, EAGAIN)
        let registration = registrations[a.writeEnd]!
        try onLoop(loop) { () throws(WebSocketError) in try registration.watchWrites() }
        while read(a.readEnd, &chunk, chunk.count) > 0 {}
        XCTAssertEqual(log.waitForCount(1), ["a:w"])
        unregister(loop, a.writeEnd)
    }

    func testPeerHangUpIsReported() throws {
        let loop = EventLoop(label: "test.poller")
        let log = EventLog<String>()
        let a = Pipe()
        defer { _ = close(a.readEnd) }
        try register(loop, a.readEnd, Recorder("a", log))
        _ = close(a.writeEnd)
        XCTAssertEqual(log.waitForCount(1), ["a:h"])
        unregister(loop, a.readEnd)
    }
}

/// A poller whose sockets never go quiet keeps the loop's thread for up to `Poller.maxHold` at a
/// time; the loop's tick (timeouts, keepalive) must still run meanwhile.
final class PollerHoldTests: XCTestCase {
    /// Reads its pipe and answers on the other one, so two of them keep the poller busy forever.
    private final class PingPong: PollerClient, LoopTickHandler {
        let readEnd: Int32
        var peerWriteEnd: Int32 = -1
        var running = true
        let ticks: EventLog<Int>
        init(readEnd: Int32, ticks: EventLog<Int>) {
            self.readEnd = readEnd
            self.ticks = ticks
        }
        func pollerReady(_ events: PollEvents) {
            var byte: UInt8 = 0
            while read(readEnd, &byte, 1) == 1 {}
            if running { _ = write(peerWriteEnd, &byte, 1) }
        }
        func loopTick(now: UInt64) { ticks.append(1) }
    }

    func testTicksRunWhileSocketsKeepTheLoopBusy() throws {
        let loop = EventLoop(label: "test.poller.hold")
        let ticks = EventLog<Int>()
        var a: [Int32] = [0, 0]
        var b: [Int32] = [0, 0]
        XCTAssertEqual(pipe(&a), 0)
        XCTAssertEqual(pipe(&b), 0)
        for fd in a + b { _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) }
        let left = PingPong(readEnd: a[0], ticks: ticks)
        let right = PingPong(readEnd: b[0], ticks: EventLog<Int>())
        left.peerWriteEnd = b[1]
        right.peerWriteEnd = a[1]
        let registrations = try loop.queue.sync { () throws -> [Readiness] in
            loop.addTickHandler(left)
            return [
                try loop.register(a[0], left, transport: .poller), try loop.register(b[0], right, transport: .poller),
            ]
        }
        var byte: UInt8 = 1
        XCTAssertEqual(write(a[1], &byte, 1), 1)  // the ball is in play: the loop never idles from here
        // Five ticks are half a second of a loop that never waits 1 ms for its next event.
        XCTAssertGreaterThanOrEqual(ticks.waitForCount(5).count, 5)
        loop.queue.sync {
            left.running = false
            right.running = false
            loop.removeTickHandler(left)
            for registration in registrations { registration.cancel(closingFD: false) }
        }
        for fd in a + b { _ = close(fd) }
    }
}
