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

/// A connected socket driven by Dispatch: a `DispatchSourceRead` for input, direct gathered
/// writes for output, and a `DispatchSourceWrite` created lazily and resumed only while the
/// kernel buffer is full (a resumed write source on a writable socket fires continuously).
///
/// The descriptor is closed in exactly one place, the read source's cancel handler, so no event
/// can ever run on a closed (and possibly reused) descriptor.
///
/// Confined to ``loop``: every method must be called on its queue (hence `@unchecked Sendable`).
final class SocketChannel: @unchecked Sendable {
    let socket: Socket
    let loop: EventLoop
    /// Strong while the socket is open, so a connection the app does not hold stays alive;
    /// released after `channelClosed`.
    var handler: ChannelHandler?

    private enum State { case idle, open, closingAfterFlush, shuttingDown, halfClosed, closed }
    private var state = State.idle
    private var readSource: DispatchSourceRead?
    private var writeSource: DispatchSourceWrite?
    private var writeSourceResumed = false
    private var readPaused = false
    private var flushQueued = false
    private var wasBlocked = false
    /// Set by the owner when its queue went above its high-water mark: `channelWritable` then
    /// follows as soon as the queue is empty, even if the kernel never pushed back.
    var wantsDrainNotification = false
    private var closeError: WebSocketError?
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
        let source = DispatchSource.makeReadSource(fileDescriptor: socket.fd, queue: loop.queue)
        source.setEventHandler { [self] in readable() }
        source.setCancelHandler { [self] in cancelled() }
        readSource = source
        source.resume()
        if readNow { readable() }
    }

    // MARK: Reading

    /// Stops reading from the socket (the read source is suspended) until `resumeReading`.
    func pauseReading() {
        guard !readPaused, let source = readSource, state != .closed else { return }
        readPaused = true
        source.suspend()
    }

    func resumeReading() {
        guard readPaused, let source = readSource else { return }
        readPaused = false
        source.resume()
        // Bytes (or a hang-up) that arrived while paused may bring no new event: look now.
        loop.queue.async { [self] in readable() }
    }

    private func readable() {
        loop.runEvent {
            let buffer = loop.readBuffer
            // A few reads per wake-up, so a fast sender cannot starve the loop's other sockets.
            for _ in 0..<8 {
                guard state != .closed, !readPaused else { return }
                switch socket.read(into: buffer) {
                case .bytes(let n):
                    handler?.channelRead(UnsafeMutableRawBufferPointer(rebasing: buffer[0..<n]))
                    // Keep reading until EAGAIN even after a short read: libdispatch stops watching
                    // a descriptor once epoll reports EPOLLHUP or EPOLLRDHUP, so when the peer's
                    // FIN or RST came with this data, this wake-up is the last chance to see it.
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
            // rather than rely on another event, which never comes after a hang-up.
            loop.queue.async { [self] in readable() }
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
        if !writeSourceResumed { flush() }  // otherwise the write source will call us
    }

    private func flush() {
        guard state != .closed, state != .halfClosed else { return }
        var completed: [WebSocketSendCompletion] = []
        let outcome = outbound.write(to: socket, loop: loop, completed: &completed)
        for completion in completed { completion(nil) }
        switch outcome {
        case .drained:
            if writeSourceResumed {
                writeSourceResumed = false
                writeSource?.suspend()
            }
            if state == .shuttingDown {
                socket.shutdownWrite()
                state = .halfClosed
            } else if state == .closingAfterFlush {
                return close()
            }
            if wasBlocked || wantsDrainNotification {
                wasBlocked = false
                wantsDrainNotification = false
                handler?.channelWritable()
            }
        case .blocked:
            wasBlocked = true
            if !writeSourceResumed {
                writeSourceResumed = true
                if writeSource == nil {
                    let source = DispatchSource.makeWriteSource(fileDescriptor: socket.fd, queue: loop.queue)
                    source.setEventHandler { [self] in loop.runEvent { flush() } }
                    writeSource = source
                }
                writeSource!.resume()
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
        if outbound.isEmpty && !writeSourceResumed {
            socket.shutdownWrite()
            state = .halfClosed
        }
    }

    /// Closes as soon as everything queued is written (the owner bounds the wait with its own
    /// timer and then calls `close`).
    func closeAfterFlush() {
        guard state == .open || state == .idle else { return }
        if outbound.isEmpty && !writeSourceResumed { return close() }
        state = .closingAfterFlush
    }

    /// Closes now: one last attempt to write what is queued, then the descriptor is closed
    /// (in the read source's cancel handler) and `channelClosed` is delivered.
    func close(error: WebSocketError? = nil) {
        guard state != .closed else { return }
        if state == .open || state == .shuttingDown || state == .closingAfterFlush, !outbound.isEmpty {
            var completed: [WebSocketSendCompletion] = []
            _ = outbound.write(to: socket, loop: loop, completed: &completed)
            for completion in completed { completion(nil) }
        }
        let wasStarted = readSource != nil
        state = .closed
        closeError = error
        if let source = writeSource {
            if !writeSourceResumed { source.resume() }  // a suspended source must be resumed to be released
            writeSourceResumed = false
            source.cancel()
            writeSource = nil
        }
        if let source = readSource {
            if readPaused {
                readPaused = false
                source.resume()
            }
            source.cancel()
        }
        if !wasStarted { cancelled() }
    }

    private func cancelled() {
        socket.close()
        readSource = nil
        let pending = outbound.removeAll()
        let handler = self.handler
        self.handler = nil
        for completion in pending {
            completion(WebSocketError(.notConnected, "the connection closed before the data was sent"))
        }
        handler?.channelClosed(closeError)
    }
}
