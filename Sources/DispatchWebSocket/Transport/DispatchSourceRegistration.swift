import Dispatch

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A descriptor watched by Dispatch sources of its own (the ``WebSocketTransport/dispatchSources``
/// backend): a `DispatchSourceRead` for its lifetime, and a `DispatchSourceWrite` made on the first
/// ``watchWrites()``, resumed only while the owner waits for writability and suspended again as
/// soon as it fires (a resumed write source on a writable socket would fire on every pass).
///
/// Read sources are level-triggered and, on Linux, a hang-up may come without `EPOLLIN`; so every
/// read event is reported as `[.readable, .hangUp]`, which makes the owner read to `EAGAIN` — the
/// one place that handles both (``SocketChannel/pollerReady(_:)``).
///
/// Suspensions are balanced: each source is suspended at most once at a time, and resumed before
/// it is cancelled (a suspended or inactive source must not be released). The descriptor is closed
/// from the cancel handler of the last of the sources to finish cancelling, never while Dispatch
/// still watches it. The sources' handlers hold the registration, and so the client, until then.
///
/// Confined to its loop's queue, where every handler runs (hence `@unchecked Sendable`).
final class DispatchSourceRegistration: Readiness, @unchecked Sendable {
    private let fd: Int32
    private let queue: DispatchQueue
    private var client: PollerClient?
    private let readSource: DispatchSourceRead
    private var writeSource: DispatchSourceWrite?
    private var readsPaused = false
    /// The write source is active and not suspended: the owner waits for writability.
    private var writeResumed = false
    private var cancelled = false
    private var closeOnCancel = false
    private var completion: (@Sendable () -> Void)?
    /// Sources whose cancel handler has not run yet.
    private var sourcesCancelling = 0

    init(fd: Int32, queue: DispatchQueue, client: PollerClient) {
        self.fd = fd
        self.queue = queue
        self.client = client
        readSource = DispatchSource.makeReadSource(fileDescriptor: fd, queue: queue)
        readSource.setEventHandler { [self] in
            guard !cancelled else { return }
            self.client?.pollerReady([.readable, .hangUp])
        }
        readSource.setCancelHandler { [self] in sourceCancelled() }
        readSource.resume()
    }

    func watchWrites() throws(WebSocketError) {
        guard !cancelled, !writeResumed else { return }
        if writeSource == nil {
            let source = DispatchSource.makeWriteSource(fileDescriptor: fd, queue: queue)
            source.setEventHandler { [self] in
                guard !cancelled, writeResumed else { return }
                writeSource?.suspend()
                writeResumed = false
                self.client?.pollerReady(.writable)
            }
            source.setCancelHandler { [self] in sourceCancelled() }
            writeSource = source
        }
        writeResumed = true
        writeSource?.resume()  // activates a new source, or undoes the suspension of the last fire
    }

    func pauseReads() {
        guard !cancelled, !readsPaused else { return }
        readsPaused = true
        readSource.suspend()
    }

    func resumeReads() {
        guard !cancelled, readsPaused else { return }
        readsPaused = false
        readSource.resume()
    }

    func cancel(closingFD: Bool, completion: (@Sendable () -> Void)?) {
        guard !cancelled else { return }
        cancelled = true
        closeOnCancel = closingFD
        self.completion = completion
        client = nil
        // The handlers check `cancelled`, so resuming here (in this same block on the loop) lets
        // nothing through; it only makes the sources cancellable and releasable.
        if let writeSource {
            sourcesCancelling += 1
            if !writeResumed { writeSource.resume() }
            writeResumed = false
            writeSource.cancel()
        }
        sourcesCancelling += 1
        if readsPaused { readSource.resume() }
        readsPaused = false
        readSource.cancel()
    }

    private func sourceCancelled() {
        sourcesCancelling -= 1
        guard sourcesCancelling == 0 else { return }
        if closeOnCancel { _ = close(fd) }
        let completion = self.completion
        self.completion = nil
        writeSource = nil
        completion?()
    }
}
