#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A descriptor in its loop's ``Poller`` (the ``WebSocketTransport/poller`` backend): nothing but
/// the `epoll_ctl`/`kevent` calls the poller already made, and nothing allocated per event.
///
/// Pausing is a no-op: the set is edge-triggered, so a socket the owner stops reading brings no
/// further events until new bytes arrive, and the owner ignores those while paused (it reads to
/// `EAGAIN` when it resumes).
final class PollerRegistration: Readiness {
    private let poller: Poller
    private let fd: Int32
    private var cancelled = false

    init(poller: Poller, fd: Int32) {
        self.poller = poller
        self.fd = fd
    }

    func watchWrites() throws(WebSocketError) {
        guard !cancelled else { return }
        try poller.watchWrites(fd)
    }

    func pauseReads() {}
    func resumeReads() {}

    func cancel(closingFD: Bool, completion: (@Sendable () -> Void)?) {
        guard !cancelled else { return }
        cancelled = true
        poller.unregister(fd)
        if closingFD { _ = close(fd) }
        completion?()
    }
}
