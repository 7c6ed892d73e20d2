/// The bounded buffer behind ``WebSocketConnection/messages``: the loop pushes each message as
/// it is parsed, one consumer task takes them in order.
///
/// Backpressure: when the buffer holds ``WebSocketConfiguration/maxBufferedMessages`` messages or
/// ``WebSocketConfiguration/maxBufferedMessageBytes`` bytes, the connection stops reading
/// (``WebSocketConnection/pause()``, on the loop, at once); when the consumer has taken it down to
/// half of both, a hop to the loop re-checks and resumes. Pause and resume are both decided on the
/// loop, so a stale resume cannot undo a newer pause. Messages already in the read being parsed
/// when reading stops are still buffered, so the bound is the limit plus one read (256 KiB).
///
/// At most one continuation waits (the single iterator), always taken out under the lock before
/// it is resumed: it cannot be resumed twice, and close or cancellation always resumes it.
final class WebSocketInboundBuffer: @unchecked Sendable {
    // @unchecked Sendable: every mutable field is guarded by `lock`; `connection` and the limits
    // are immutable. The connection holds this buffer until it closes (its handlers are released
    // then), which ends the reference cycle.

    typealias Continuation = UnsafeContinuation<Result<WebSocketMessage?, WebSocketError>, Never>

    let connection: WebSocketConnection
    private let maxMessages: Int
    private let maxBytes: Int

    private let lock = Lock()
    private var queue: [WebSocketMessage] = []
    private var head = 0
    private var bufferedBytes = 0
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

    /// A message arrived. On the loop.
    func push(_ message: WebSocketMessage) {
        lock.lock()
        if let waiter {
            // The consumer is waiting, so the buffer is empty: hand the message over directly.
            self.waiter = nil
            lock.unlock()
            waiter.resume(returning: .success(message))
            return
        }
        queue.append(message)
        bufferedBytes += message.byteCount
        let count = queue.count - head
        if count > highestCount { highestCount = count }
        let pause = !isPausedByBuffer && (count >= maxMessages || bufferedBytes >= maxBytes)
        if pause {
            isPausedByBuffer = true
            pauseCount += 1
        }
        lock.unlock()
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
        if end == nil { end = result }
        let waiter = self.waiter
        self.waiter = nil
        let outcome = waiter == nil ? nil : takeEnd()
        lock.unlock()
        if let waiter, let outcome { waiter.resume(returning: outcome) }
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

    /// The next message without suspending, or `nil` when the consumer must wait. Under `lock`.
    private func takeAvailable() -> Result<WebSocketMessage?, WebSocketError>? {
        if isCancelled { return .success(nil) }
        if head < queue.count {
            let message = queue[head]
            head += 1
            bufferedBytes -= message.byteCount
            if head == queue.count {
                queue.removeAll(keepingCapacity: queue.count <= 1024)
                head = 0
            } else if head >= 256 && head * 2 >= queue.count {
                queue.removeFirst(head)
                head = 0
            }
            return .success(message)
        }
        return end == nil ? nil : takeEnd()
    }

    /// The end, reported once: a failure is thrown once, then the sequence returns `nil`. Under `lock`.
    private func takeEnd() -> Result<WebSocketMessage?, WebSocketError> {
        guard case .failure(let error) = end else { return .success(nil) }
        end = .success(())
        return .failure(error)
    }

    private var isCaughtUp: Bool {
        queue.count - head <= maxMessages / 2 && bufferedBytes <= maxBytes / 2
    }

    /// Under `lock`: whether a hop to the loop should resume reading. The caller makes the hop
    /// after unlocking.
    private func needsResumeHop() -> Bool {
        guard isPausedByBuffer && !resumeScheduled && isCaughtUp else { return false }
        resumeScheduled = true
        return true
    }

    private func scheduleResume() {
        let loop = connection.loop
        loop.async { [self] in loop.runEvent { resumeIfCaughtUp() } }
    }

    func next(isolation actor: isolated (any Actor)? = #isolation) async -> Result<WebSocketMessage?, WebSocketError> {
        if Task.isCancelled {
            cancel()
            return .success(nil)
        }
        // Fast path: a buffered message (or the end) is returned without suspending.
        lock.lock()
        if let available = takeAvailable() {
            let hop = needsResumeHop()
            lock.unlock()
            if hop { scheduleResume() }
            return available
        }
        lock.unlock()
        return await withTaskCancellationHandler {
            await withUnsafeContinuation { (continuation: Continuation) in
                lock.lock()
                if let available = takeAvailable() {
                    let hop = needsResumeHop()
                    lock.unlock()
                    if hop { scheduleResume() }
                    continuation.resume(returning: available)
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
        waiter?.resume(returning: .success(nil))
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
