/// Bounds the TLS handshakes a server runs at once (``TLSServerConfiguration/maxHandshakesInProgress``):
/// sessions beyond the bound wait unread, first come first served, until a handshake ends.
/// Their own `handshakeTimeout` still runs, so the wait is bounded.
final class TLSHandshakeLimiter: @unchecked Sendable {
    // @unchecked Sendable: all state is guarded by `lock`.
    private let lock = Lock()
    private let limit: Int
    private var inProgress = 0
    private var waiting: [HTTPServerSession] = []
    private var waitingHead = 0

    init(limit: Int) {
        self.limit = max(1, limit)
    }

    /// Takes a slot, or queues `session` (which then hears ``HTTPServerSession/handshakeSlotGranted()``).
    func acquire(_ session: HTTPServerSession) -> Bool {
        lock.withLock {
            if inProgress < limit {
                inProgress += 1
                return true
            }
            waiting.append(session)
            return false
        }
    }

    /// Gives a slot back, handing it to the longest-waiting session.
    func release() {
        let next = lock.withLock { () -> HTTPServerSession? in
            guard waitingHead < waiting.count else {
                inProgress -= 1
                return nil
            }
            let next = waiting[waitingHead]
            waitingHead += 1
            if waitingHead == waiting.count {
                waiting.removeAll(keepingCapacity: true)
                waitingHead = 0
            }
            return next  // the slot passes on: inProgress unchanged
        }
        next?.handshakeSlotGranted()
    }

    /// A waiting session closed before its turn.
    func remove(_ session: HTTPServerSession) {
        lock.withLock {
            guard let index = waiting[waitingHead...].firstIndex(where: { $0 === session }) else { return }
            waiting.remove(at: index)
        }
    }

    var handshakesInProgress: Int { lock.withLock { inProgress } }
    var sessionsWaiting: Int { lock.withLock { waiting.count - waitingHead } }
}
