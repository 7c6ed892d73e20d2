import Dispatch
import XCTest

@testable import DispatchWebSocket

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The transport seam (``Readiness``), every test against both backends: reads reported, a write
/// watch that fires once per ask, pausing without a spinning source, and cancellation that closes
/// the descriptor exactly once and leaves a reused descriptor number alone.
///
/// The few short sleeps below give a misbehaving backend time to show itself (a resumed source
/// on a ready descriptor fires continuously); nothing asserts how long anything takes.
final class TransportSeamTests: XCTestCase {
    /// Logs "r" and "w" and, unless paused, reads what arrived (as a channel does), so a
    /// level-triggered source is not kept firing by bytes nobody reads.
    private final class Recorder: PollerClient, @unchecked Sendable {
        // @unchecked Sendable: `paused` is touched on the loop only; `log` is thread-safe.
        let fd: Int32
        let log = EventLog<String>()
        var paused = false
        init(fd: Int32) { self.fd = fd }

        func pollerReady(_ events: PollEvents) {
            if events.contains(.readable) {
                if !paused { drain(fd) }
                log.append("r")  // after reading, so a byte the test sends next is a new arrival
            }
            if events.contains(.writable) { log.append("w") }
        }

        func count(_ kind: String) -> Int { log.all.filter { $0 == kind }.count }
    }

    private struct Pair {
        let ours: Int32
        let peer: Int32
        init() {
            var fds: [Int32] = [0, 0]
            #if canImport(Glibc)
            let type = Int32(SOCK_STREAM.rawValue)
            #else
            let type = SOCK_STREAM
            #endif
            precondition(socketpair(AF_UNIX, type, 0, &fds) == 0)
            (ours, peer) = (fds[0], fds[1])
            for fd in fds { _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) }
        }
    }

    private static func put(_ fd: Int32) {
        var byte: UInt8 = 1
        _ = write(fd, &byte, 1)
    }

    private static func drain(_ fd: Int32) {
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        while read(fd, &chunk, chunk.count) > 0 {}
    }

    private static func fill(_ fd: Int32) {
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        while write(fd, &chunk, chunk.count) > 0 {}
    }

    private static func isOpen(_ fd: Int32) -> Bool { fcntl(fd, F_GETFD) != -1 }

    private func register(_ loop: EventLoop, _ fd: Int32, _ client: PollerClient, _ transport: WebSocketTransport)
        throws
        -> Readiness
    {
        let result = loop.queue.sync { () -> Result<Readiness, WebSocketError> in
            do throws(WebSocketError) {
                return .success(try loop.register(fd, client, transport: transport))
            } catch {
                return .failure(error)
            }
        }
        return try result.get()
    }

    private func watchWrites(_ registration: Readiness, on loop: EventLoop) throws {
        let error = loop.queue.sync { () -> WebSocketError? in
            do throws(WebSocketError) {
                try registration.watchWrites()
                return nil
            } catch {
                return error
            }
        }
        if let error { throw error }
    }

    /// Cancels on the loop and waits for the completion (the descriptor is closed by then).
    private func cancel(_ registration: Readiness, on loop: EventLoop, closingFD: Bool) {
        let done = DispatchSemaphore(value: 0)
        loop.queue.sync { registration.cancel(closingFD: closingFD) { done.signal() } }
        XCTAssertEqual(done.wait(timeout: .now() + 10), .success, "cancellation never completed")
    }

    private func forEachTransport(_ body: (WebSocketTransport) throws -> Void) rethrows {
        for transport in WebSocketTransport.allCases {
            try body(transport)
        }
    }

    func testReadsAreReportedIncludingBytesThatArrivedBefore() throws {
        try forEachTransport { transport in
            let loop = EventLoop(label: "test.seam")
            let pair = Pair()
            defer { _ = close(pair.peer) }
            Self.put(pair.peer)
            let client = Recorder(fd: pair.ours)
            let registration = try register(loop, pair.ours, client, transport)
            client.log.waitForCount(1)
            Self.put(pair.peer)
            client.log.waitForCount(2)
            cancel(registration, on: loop, closingFD: true)
            XCTAssertFalse(Self.isOpen(pair.ours))
        }
    }

    func testWriteWatchFiresOncePerAsk() throws {
        try forEachTransport { transport in
            let loop = EventLoop(label: "test.seam")
            let pair = Pair()
            defer { _ = close(pair.peer) }
            let client = Recorder(fd: pair.ours)
            let registration = try register(loop, pair.ours, client, transport)
            for round in 1...2 {
                let before = client.count("w")
                Self.fill(pair.ours)
                try watchWrites(registration, on: loop)
                try watchWrites(registration, on: loop)  // idempotent
                Self.drain(pair.peer)
                client.log.wait { $0.filter { $0 == "w" }.count > before }
                // The socket stays writable: a source left resumed would keep reporting it. (The
                // edge-triggered poller may report the drain in several steps, but then stops.)
                usleep(50_000)
                loop.queue.sync {}
                let settled = client.count("w")
                if transport == .dispatchSources { XCTAssertEqual(settled, round) }
                usleep(50_000)
                loop.queue.sync {}
                XCTAssertEqual(client.count("w"), settled, "\(transport)")
            }
            cancel(registration, on: loop, closingFD: true)
        }
    }

    func testPausedReadsDoNotSpinAndResumeDelivers() throws {
        try forEachTransport { transport in
            let loop = EventLoop(label: "test.seam")
            let pair = Pair()
            defer { _ = close(pair.peer) }
            let client = Recorder(fd: pair.ours)
            let registration = try register(loop, pair.ours, client, transport)
            loop.queue.sync {
                client.paused = true
                registration.pauseReads()
                registration.pauseReads()  // idempotent: one resume undoes it
            }
            Self.put(pair.peer)
            usleep(100_000)  // data pending and unread all along
            loop.queue.sync {}
            // The edge-triggered poller reports the arrival once; a paused source not at all.
            XCTAssertLessThanOrEqual(client.count("r"), 1, "\(transport)")
            let before = client.count("r")
            loop.queue.sync {
                client.paused = false
                registration.resumeReads()
            }
            Self.put(pair.peer)
            client.log.wait { $0.filter { $0 == "r" }.count > before }
            // Pausing again just before cancelling: the suspended source is resumed to be released.
            loop.queue.sync { registration.pauseReads() }
            cancel(registration, on: loop, closingFD: true)
            XCTAssertFalse(Self.isOpen(pair.ours))
        }
    }

    func testCancelClosesOnceAndAReusedDescriptorGetsNoStaleEvents() throws {
        try forEachTransport { transport in
            let loop = EventLoop(label: "test.seam")
            let first = Pair()
            let old = Recorder(fd: first.ours)
            let registration = try register(loop, first.ours, old, transport)
            Self.fill(first.ours)
            try watchWrites(registration, on: loop)  // a write source exists and is resumed
            cancel(registration, on: loop, closingFD: true)
            XCTAssertFalse(Self.isOpen(first.ours))
            let oldEvents = old.log.all.count
            _ = close(first.peer)

            let second = Pair()  // the lowest free numbers: the same ones
            defer {
                _ = close(second.ours)
                _ = close(second.peer)
            }
            XCTAssertEqual(second.ours, first.ours, "the kernel did not reuse the descriptor number")
            // A second cancel of the old registration must not close the reused number.
            loop.queue.sync { registration.cancel(closingFD: true) }
            let new = Recorder(fd: second.ours)
            let newRegistration = try register(loop, second.ours, new, transport)
            Self.put(second.peer)
            new.log.waitForCount(1)
            usleep(50_000)
            loop.queue.sync {}
            XCTAssertEqual(old.log.all.count, oldEvents, "\(transport): an event reached the cancelled client")
            XCTAssertTrue(Self.isOpen(second.ours), "\(transport): the reused descriptor was closed")
            cancel(newRegistration, on: loop, closingFD: false)
            XCTAssertTrue(Self.isOpen(second.ours), "\(transport): cancel without closingFD closed it")
        }
    }
}
