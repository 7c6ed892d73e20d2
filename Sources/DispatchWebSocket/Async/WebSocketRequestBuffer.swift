/// The queue behind ``WebSocketServer/requests``: the loops push upgrade requests, accept-loop
/// tasks take them in order. Each waiting task's continuation is taken out under the lock before
/// it is resumed, so it is resumed exactly once (by a request, shutdown or cancellation).
final class WebSocketRequestBuffer: @unchecked Sendable {
    // @unchecked Sendable: every mutable field is guarded by `lock`.
    typealias Continuation = UnsafeContinuation<WebSocketRequest?, Never>

    private let lock = Lock()
    private var queue: [WebSocketRequest] = []
    private var waiters: [(id: Int, continuation: Continuation)] = []
    private var cancelledIDs: Set<Int> = []
    private var nextID = 0
    private var isFinished = false
    /// Requests waiting beyond this many are refused with 503: nobody is taking them.
    private let limit: Int

    init(limit: Int) {
        self.limit = max(1, limit)
    }

    /// A request arrived (on its loop). Refused with 503 when the buffer is full or finished.
    func push(_ request: WebSocketRequest) {
        lock.lock()
        if !waiters.isEmpty {
            let waiter = waiters.removeFirst()
            lock.unlock()
            waiter.continuation.resume(returning: request)
            return
        }
        let refuse = isFinished || queue.count >= limit
        if !refuse { queue.append(request) }
        lock.unlock()
        if refuse { request.reject(status: 503, reason: "the server is not taking connections now") }
    }

    /// The server shuts down: waiting tasks get `nil`, queued requests are left to the shutdown.
    func finish() {
        lock.lock()
        isFinished = true
        queue = []
        let waiters = self.waiters
        self.waiters = []
        lock.unlock()
        for waiter in waiters { waiter.continuation.resume(returning: nil) }
    }

    /// The next request; `nil` once the server shuts down or the task is cancelled. Runs on the
    /// caller's executor.
    nonisolated(nonsending) func next() async -> WebSocketRequest? {
        lock.lock()
        let id = nextID
        nextID += 1
        if let request = takeAvailable() {
            lock.unlock()
            return request
        }
        let finished = isFinished
        lock.unlock()
        if finished { return nil }
        return await withTaskCancellationHandler {
            await withUnsafeContinuation { (continuation: Continuation) in
                lock.lock()
                if let request = takeAvailable() {
                    lock.unlock()
                    return continuation.resume(returning: request)
                }
                if isFinished || cancelledIDs.remove(id) != nil {
                    lock.unlock()
                    return continuation.resume(returning: nil)
                }
                waiters.append((id, continuation))
                lock.unlock()
            }
        } onCancel: {
            cancel(id)
        }
    }

    /// Under `lock`.
    private func takeAvailable() -> WebSocketRequest? {
        queue.isEmpty ? nil : queue.removeFirst()
    }

    private func cancel(_ id: Int) {
        lock.lock()
        guard let index = waiters.firstIndex(where: { $0.id == id }) else {
            cancelledIDs.insert(id)  // not suspended yet: it will see this and return nil
            lock.unlock()
            return
        }
        let waiter = waiters.remove(at: index)
        lock.unlock()
        waiter.continuation.resume(returning: nil)
    }
}
