/// The bounded buffer behind ``WebSocketConnection/messages``: the loop pushes each message as
/// it is parsed (without a lock) and publishes a read's messages at once at the end of that read
/// (one lock); one consumer task takes them in order, a whole batch (everything published since
/// it last took) under one lock, then one by one from the iterator without any lock.
///
/// Backpressure: when the buffer holds ``WebSocketConfiguration/maxBufferedMessages`` messages or
/// ``WebSocketConfiguration/maxBufferedMessageBytes`` bytes at the end of a read, the connection
/// stops reading (``WebSocketConnection/pause()``, on the loop, before the next read); when the
/// consumer comes back for a batch and what is left is at most half of both, a hop to the loop
/// re-checks and resumes. Pause and resume are both decided on the loop, so a stale resume cannot
/// undo a newer pause. The batch in the consumer's hands counts until the consumer comes back for
/// the next one (it has then used it up). The read that crosses the limit is buffered whole, so
/// the bound is the limit plus one read (256 KiB).
///
/// At most one continuation waits (the single iterator), always taken out under the lock before
/// it is resumed: it cannot be resumed twice, and close or cancellation always resumes it.
@usableFromInline
final class WebSocketInboundBuffer: @unchecked Sendable {
    // @unchecked Sendable: every mutable field is guarded by `lock`; `connection` and the limits
    // are immutable. The connection holds this buffer until it closes (its handlers are released
    // then), which ends the reference cycle.

    typealias Continuation = UnsafeContinuation<Void, Never>

    /// What ``take(into:)`` found.
    enum Taken {
        /// Messages were moved into the batch.
        case messages
        /// Nothing yet: ``wait()``, then take again.
        case empty
        /// The sequence ends: `nil` (normal close, cancellation) or the close error, once.
        case end(Result<WebSocketMessage?, WebSocketError>)
    }

    let connection: WebSocketConnection
    private let maxMessages: Int
    private let maxBytes: Int

    /// Pushed during the current read and not published yet, and their payload bytes. Only
    /// touched on the loop.
    private var staged: [WebSocketMessage?] = []
    private var stagedBytes = 0

    private let lock = Lock()
    /// Published and not taken yet, and their payload bytes.
    private var queue: [WebSocketMessage?] = []
    private var queuedBytes = 0
    /// The batch the consumer took last: still counted against the limits until it takes again.
    private var takenCount = 0
    private var takenBytes = 0
    private var waiter: Continuation?
    /// How the sequence ends once the buffered messages are taken: `nil` while open, `.success`
    /// for a normal close, `.failure` for any other.
    private var end: Result<Void, WebSocketError>?
    private var isCancelled = false
    private var isIterated = false
    private var isPausedByBuffer = false
    private var resumeScheduled = false

    /// Statistics for tests: the most messages buffered at once, and how often reading paused.
    private(set) var highestCount = 0
    private(set) var pauseCount = 0

    init(connection: WebSocketConnection) {
        self.connection = connection
        maxMessages = max(1, connection.configuration.maxBufferedMessages)
        maxBytes = max(1, connection.configuration.maxBufferedMessageBytes)
    }

    /// Hears about the close (on the loop; at once when the connection has already closed).
    func attach() {
        let loop = connection.loop
        loop.execute { [self] in
            if let code = connection.closeReasonCode {
                closed(code: code, reason: connection.closeDescription ?? "")
            } else {
                connection.closeObservers.append { [self] connection in
                    closed(
                        code: connection.closeReasonCode ?? .abnormalClosure, reason: connection.closeDescription ?? "")
                }
            }
        }
    }

    var statistics: (highestCount: Int, pauseCount: Int) { lock.withLock { (highestCount, pauseCount) } }

    // MARK: From the loop

    /// A message arrived. On the loop, inside a read that ends with ``publish()``.
    func push(_ message: consuming WebSocketMessage) {
        stagedBytes += message.byteCount
        staged.append(message)
    }

    /// Moves the staged messages behind the published ones. On the loop, under `lock`.
    private func publishStaged() {
        if queue.isEmpty {
            swap(&queue, &staged)  // keeps both allocations
        } else {
            for index in staged.indices { queue.append(staged[index].take()) }
            staged.removeAll(keepingCapacity: true)
        }
        queuedBytes += stagedBytes
        stagedBytes = 0
    }

    /// The read is over: its messages go to the consumer at once, and reading pauses if they
    /// filled the buffer. On the loop.
    func publish() {
        guard !staged.isEmpty else { return }
        lock.lock()
        publishStaged()
        let count = queue.count + takenCount
        if count > highestCount { highestCount = count }
        let pause =
            !isPausedByBuffer && (count >= maxMessages || queuedBytes + takenBytes >= maxBytes)
        if pause {
            isPausedByBuffer = true
            pauseCount += 1
        }
        let waiter = self.waiter
        self.waiter = nil
        lock.unlock()
        // The consumer resumes after this loop event, so it takes the whole read's messages at once.
        waiter?.resume()
        if pause { connection.pause() }  // on the loop: reading stops before the next read
    }

    /// The connection closed. On the loop, once.
    private func closed(code: WebSocketCloseCode, reason: String) {
        let result: Result<Void, WebSocketError>
        switch code {
        case .normalClosure, .goingAway, .noStatusReceived:
            result = .success(())
        default:
            var error = WebSocketError(
                .connectionClosed, reason.isEmpty ? "closed with \(code)" : "closed with \(code): \(reason)")
            error.closeCode = code
            error.closeReason = reason
            result = .failure(error)
        }
        lock.lock()
        publishStaged()  // messages of the read that closed it come first
        if end == nil { end = result }
        let waiter = self.waiter
        self.waiter = nil
        lock.unlock()
        waiter?.resume()
    }

    /// Resumes reading if the consumer caught up meanwhile. On the loop.
    private func resumeIfCaughtUp() {
        lock.lock()
        resumeScheduled = false
        let resume = isPausedByBuffer && isCaughtUp
        if resume { isPausedByBuffer = false }
        lock.unlock()
        if resume { connection.resume() }
    }

    // MARK: From the consumer

    /// Marks the one iteration the sequence allows; `false` when it was already claimed.
    func claimIteration() -> Bool {
        lock.withLock {
            defer { isIterated = true }
            return !isIterated
        }
    }

    /// The end, reported once: a failure is thrown once, then the sequence returns `nil`. Under `lock`.
    private func takeEnd() -> Result<WebSocketMessage?, WebSocketError> {
        guard case .failure(let error) = end else { return .success(nil) }
        end = .success(())
        return .failure(error)
    }

    private var isCaughtUp: Bool {
        queue.count + takenCount <= maxMessages / 2 && queuedBytes + takenBytes <= maxBytes / 2
    }

    private func scheduleResume() {
        let loop = connection.loop
        loop.async { [self] in loop.runEvent { resumeIfCaughtUp() } }
    }

    /// Moves everything pushed since the last take into `batch` (emptied first: the consumer has
    /// used the previous batch up, moving each message out and leaving `nil`). Swapping the
    /// arrays keeps both allocations, so a steady stream costs no allocation here.
    func take(into batch: inout [WebSocketMessage?]) -> Taken {
        batch.removeAll(keepingCapacity: batch.capacity <= 1024)
        lock.lock()
        takenCount = 0
        takenBytes = 0
        let taken: Taken
        if isCancelled {
            taken = .end(.success(nil))
        } else if !queue.isEmpty {
            swap(&queue, &batch)
            takenCount = batch.count
            takenBytes = queuedBytes
            queuedBytes = 0
            taken = .messages
        } else if end != nil {
            taken = .end(takeEnd())
        } else {
            taken = .empty
        }
        // Whether a hop to the loop should resume reading (the caught-up test is redone there).
        let hop = isPausedByBuffer && !resumeScheduled && isCaughtUp
        if hop { resumeScheduled = true }
        lock.unlock()
        if hop { scheduleResume() }
        return taken
    }

    /// Returns once something can be taken: a message, the end, or a cancellation.
    /// `nonisolated(nonsending)`: it resumes on the caller's executor.
    nonisolated(nonsending) func wait() async {
        await withTaskCancellationHandler {
            await withUnsafeContinuation { (continuation: Continuation) in
                lock.lock()
                if !queue.isEmpty || end != nil || isCancelled {
                    lock.unlock()
                    continuation.resume()
                    return
                }
                precondition(waiter == nil, "WebSocketConnection.messages is iterated by two tasks at once")
                waiter = continuation
                lock.unlock()
            }
        } onCancel: {
            cancel()
        }
    }

    /// The consuming task was cancelled: the iteration ends (`nil`) and the connection closes with 1001.
    func cancel() {
        lock.lock()
        let alreadyCancelled = isCancelled
        isCancelled = true
        let waiter = self.waiter
        self.waiter = nil
        lock.unlock()
        waiter?.resume()
        if !alreadyCancelled {
            connection.close(code: .goingAway, description: "the task reading messages was cancelled")
        }
    }
}

extension WebSocketMessage {
    /// The payload size: UTF-8 bytes of text, bytes of binary.
    var byteCount: Int {
        switch self {
        case .text(let text): return text.utf8.count
        case .binary(let bytes): return bytes.count
        }
    }
}
