import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Lets work submitted to a loop's queue cut short a ``Poller`` that lingers in its wait.
///
/// A poller that has just served sockets waits a little longer for more before it hands its
/// thread back to libdispatch (see ``Poller/lingerMilliseconds``). Meanwhile the queue is busy, so a
/// block submitted with ``EventLoop/async(_:)`` would wait for the linger to end: it counts
/// itself in ``pending`` and, when the poller is ``parked``, writes a byte to a pipe that is in
/// the poller's set. The poller sets `parked` and then checks `pending`; the submitter counts
/// itself and then checks `parked`; so one of the two always sees the other.
final class LoopWaker: Sendable {
    let pending = Atomic<Int>(0)
    let parked = Atomic<Bool>(false)
    /// The pipe's ends; the read end sits in the poller's set.
    let readFD: Int32
    private let writeFD: Int32

    init() throws(WebSocketError) {
        var fds: [Int32] = [-1, -1]
        guard pipe(&fds) == 0 else { throw WebSocketError(.socketError, "pipe failed", errno: errno) }
        for fd in fds { Socket(fd: fd).setNonBlocking() }
        (readFD, writeFD) = (fds[0], fds[1])
    }

    deinit {
        close(readFD)
        close(writeFD)
    }

    /// Called after a block was queued: wakes a lingering poller.
    func wakeIfParked() {
        guard parked.load(ordering: .sequentiallyConsistent) else { return }
        var byte: UInt8 = 1
        _ = write(writeFD, &byte, 1)  // a full pipe already holds a wake-up
    }

    /// Empties the pipe; on the loop.
    func drain() {
        var bytes = (UInt64(0), UInt64(0), UInt64(0), UInt64(0))
        while withUnsafeMutableBytes(of: &bytes, { read(readFD, $0.baseAddress, $0.count) }) > 0 {}
    }
}
