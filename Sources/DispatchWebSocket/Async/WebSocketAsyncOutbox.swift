/// Async sends on their way to the loop. Sends from a task are collected here and queued on the
/// loop by one hop for the whole batch, inside one loop event, so that a task echoing a burst
/// of messages gets one gathered write for all of them, as an `onMessage` handler does (a hop
/// per send would cost a wake-up and a `sendmsg` per message).
final class WebSocketAsyncOutbox: @unchecked Sendable {
    // @unchecked Sendable: `pending`, `bytes` and `isScheduled` are guarded by `lock`; `spare` is
    // only touched on the loop (in `drain`).
    typealias Send = (message: WebSocketMessage, completion: WebSocketSendCompletion?)

    private let lock = Lock()
    private var pending: [Send] = []
    private var spare: [Send] = []
    private var bytes = 0
    private var isScheduled = false

    /// Whether a batch is on its way to the loop.
    var isBusy: Bool { lock.withLock { isScheduled } }

    /// Payload bytes submitted and not yet queued on the loop (`send`'s pacing counts them).
    var bytesInFlight: Int { lock.withLock { bytes } }

    /// Queues `message` for the loop; the first send of a batch schedules the hop.
    func submit(
        _ message: WebSocketMessage, count: Int, completion: WebSocketSendCompletion?,
        to connection: WebSocketConnection
    ) {
        lock.lock()
        pending.append((message, completion))
        bytes += count
        let schedule = !isScheduled
        isScheduled = true
        lock.unlock()
        guard schedule else { return }
        let loop = connection.loop
        loop.async { [self] in loop.runEvent { drain(into: connection) } }
    }

    /// On the loop: queues the whole batch, in submission order, within the current event.
    private func drain(into connection: WebSocketConnection) {
        lock.lock()
        swap(&pending, &spare)
        bytes = 0
        isScheduled = false
        lock.unlock()
        for send in spare { _ = connection.send(send.message, completion: send.completion) }
        spare.removeAll(keepingCapacity: spare.count <= 1024)
    }
}
