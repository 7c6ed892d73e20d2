import Dispatch
import Synchronization

/// What a ``SocketChannel`` reports to whoever speaks the protocol on it (the HTTP session
/// before the upgrade, the WebSocket connection after). All calls arrive on the channel's loop.
protocol ChannelHandler: AnyObject {
    /// Bytes just read. They live in the loop's shared read buffer: use or copy them now.
    func channelRead(_ bytes: UnsafeMutableRawBufferPointer)
    /// The peer closed or reset the connection. The channel closes right after this call.
    func channelEndOfInput()
    /// The outbound queue emptied after the kernel buffer had been full (or after the owner
    /// asked with `wantsDrainNotification`).
    func channelWritable()
    /// The descriptor is closed; the last call the handler gets.
    func channelClosed(_ error: WebSocketError?)
}

/// A connected socket on a loop: readiness comes from the loop's ``Poller`` (edge-triggered:
/// a wake-up reads until a short read, or until `EAGAIN` after a hang-up), output is gathered
/// writes made at the end of the loop event, and writability is watched only once a write
/// returned `EAGAIN`.
///
/// The descriptor is unregistered from the poller before it is closed, in one place (`close`),
/// so no event can ever reach a closed (and possibly reused) descriptor.
///
/// Confined to ``loop``: every method must be called on its queue (hence `@unchecked Sendable`).
final class SocketChannel: PollerClient, @unchecked Sendable {
    let socket: Socket
    let loop: EventLoop
    /// Strong while the socket is open, so a connection the app does not hold stays alive;
    /// released after `channelClosed`.
    var handler: ChannelHandler?

    private enum State { case idle, open, closingAfterFlush, shuttingDown, halfClosed, closed }
    private var state = State.idle
    private var registered = false
    /// A write returned `EAGAIN`: the poller's writable event flushes next, and the owner hears
    /// `channelWritable` once the queue has drained.
    private var waitingForWritable = false
    private var readPaused = false
    private var flushQueued = false
    /// Set by the owner when its queue went above its high-water mark: `channelWritable` then
    /// follows as soon as the queue is empty, even if the kernel never pushed back.
    var wantsDrainNotification = false
    private var outbound = OutboundQueue() {
        didSet { bufferedMirror.store(outbound.bufferedAmount, ordering: .relaxed) }
    }
    /// `bufferedAmount` for other threads.
    private let bufferedMirror = Atomic<Int>(0)

    /// The peer, as `accept` or `connect` knew it (no `getpeername` needed).
    let peerAddress: SocketAddress?

    init(socket: Socket, loop: EventLoop, peerAddress: SocketAddress?) {
        self.socket = socket
        self.loop = loop
        self.peerAddress = peerAddress
    }

    /// Bytes queued and not yet taken by the kernel, framing included.
    var bufferedAmount: Int { outbound.bufferedAmount }
    var publishedBufferedAmount: Int { bufferedMirror.load(ordering: .relaxed) }
    var isClosed: Bool { state == .closed }

    /// Starts reading. Call once, on the loop. `readNow` tries a read at once, for a socket
    /// whose first bytes have probably arrived already (a client's request right after accept):
    /// it saves a wake-up of the event thread per connection.
    func start(readNow: Bool = false) {
        guard state == .idle else { return }
        state = .open
        loop.runEvent {
            // Read before registering: registration reports bytes already waiting, which would
            // cost another wake-up and a read that finds nothing.
            if readNow { read(untilWouldBlock: false) }
            guard state != .closed else { return }
            do throws(WebSocketError) {
                try loop.register(socket.fd, self)
                registered = true
            } catch {
                close(error: error)
            }
        }
    }

    func pollerReady(_ events: PollEvents) {
        if events.contains(.writable) && waitingForWritable {
            loop.runEvent { flush() }
        }
        if events.contains(.hangUp) {
            read(untilWouldBlock: true)  // the EOF or error may sit behind the data
        } else if events.contains(.readable) {
            read(untilWouldBlock: false)
        }
    }

    // MARK: Reading

    /// Stops reading from the socket until `resumeReading`: the kernel buffer fills and TCP
    /// flow control slows the peer.
    func pauseReading() {
        guard state != .closed else { return }
        readPaused = true
    }

    func resumeReading() {
        guard readPaused else { return }
        readPaused = false
        // Edge-triggered: what arrived while paused brings no new event, so look now.
        loop.async { [self] in read(untilWouldBlock: true) }
    }

    /// Reads what the socket holds. A short read emptied the socket, and anything arriving later
    /// brings a new edge, so without `untilWouldBlock` it stops there and saves a `read` that
    /// would find nothing; after a hang-up, a resume or a used-up budget it reads to `EAGAIN`.
    private func read(untilWouldBlock: Bool) {
        loop.runEvent {
            let buffer = loop.readBuffer
            // A few reads per wake-up, so a fast sender cannot starve the loop's other sockets.
            for _ in 0..<8 {
                guard state != .closed, !readPaused else { return }
                switch socket.read(into: buffer) {
                case .bytes(let n):
                    handler?.channelRead(UnsafeMutableRawBufferPointer(rebasing: buffer[0..<n]))
                    if n < buffer.count && !untilWouldBlock { return }
                case .wouldBlock:
                    return
                case .endOfFile:
                    handler?.channelEndOfInput()
                    close()
                    return
                case .error(let code):
                    close(error: WebSocketError(.socketError, "read failed", errno: code))
                    return
                }
            }
            // Read budget used up with data still coming: continue after the loop's other work
            // (an edge-triggered poller reports nothing new for bytes already waiting).
            loop.async { [self] in read(untilWouldBlock: true) }
        }
    }

    // MARK: Writing

    /// Queues a chunk; it is written when the current loop event ends, together with
    /// everything else queued in that event.
    func enqueue(_ chunk: OutboundChunk) {
        guard state == .open || state == .idle else {
            chunk.completion?(WebSocketError(.notConnected, "the connection is closing"))
            return
        }
        outbound.append(chunk)
        if !flushQueued {
            flushQueued = true
            loop.scheduleFlush(self)
        }
    }

    /// Called by the loop at the end of an event.
    func flushIfPending() {
        guard flushQueued else { return }
        flushQueued = false
        if !waitingForWritable { flush() }  // otherwise the writable event will call us
    }

    private func flush() {
        guard state != .closed, state != .halfClosed else { return }
        var completed: [WebSocketSendCompletion] = []
        let outcome = outbound.write(to: socket, loop: loop, completed: &completed)
        for completion in completed { completion(nil) }
        switch outcome {
        case .drained:
            let wasBlocked = waitingForWritable
            waitingForWritable = false
            if state == .shuttingDown {
                socket.shutdownWrite()
                state = .halfClosed
            } else if state == .closingAfterFlush {
                return close()
            }
            if wasBlocked || wantsDrainNotification {
                wantsDrainNotification = false
                handler?.channelWritable()
            }
        case .blocked:
            if !waitingForWritable {
                waitingForWritable = true
                do throws(WebSocketError) {
                    try loop.watchWrites(socket.fd)
                } catch {
                    close(error: error)
                }
            }
        case .closed(let error):
            close(error: error)
        }
    }

    // MARK: Closing

    /// Writes what is queued, then half-closes (the peer reads EOF) and keeps reading until the
    /// peer closes too, so our last frames are not lost to a reset. The owner bounds the wait
    /// with its own timer and then calls `close`.
    func closeGracefully() {
        guard state == .open || state == .idle else { return }
        state = .shuttingDown
        if outbound.isEmpty && !waitingForWritable {
            socket.shutdownWrite()
            state = .halfClosed
        }
    }

    /// Closes as soon as everything queued is written (the owner bounds the wait with its own
    /// timer and then calls `close`).
    func closeAfterFlush() {
        guard state == .open || state == .idle else { return }
        if outbound.isEmpty && !waitingForWritable { return close() }
        state = .closingAfterFlush
    }

    /// Closes now: one last attempt to write what is queued, then the descriptor is closed and
    /// `channelClosed` is delivered.
    func close(error: WebSocketError? = nil) {
        guard state != .closed else { return }
        if state == .open || state == .shuttingDown || state == .closingAfterFlush, !outbound.isEmpty {
            var completed: [WebSocketSendCompletion] = []
            _ = outbound.write(to: socket, loop: loop, completed: &completed)
            for completion in completed { completion(nil) }
        }
        state = .closed
        waitingForWritable = false
        if registered {
            registered = false
            loop.unregister(socket.fd)
        }
        socket.close()
        // Reported once the current event is over, not from inside the caller's own code.
        loop.executeAfterCurrentEvent { [self] in closed(error) }
    }

    private func closed(_ error: WebSocketError?) {
        let pending = outbound.removeAll()
        let handler = self.handler
        self.handler = nil
        for completion in pending {
            completion(WebSocketError(.notConnected, "the connection closed before the data was sent"))
        }
        handler?.channelClosed(error)
    }
}
