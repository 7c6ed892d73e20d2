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
    /// The TLS handshake completed (TLS channels only), before the first decrypted byte.
    func channelSecured()
    /// A flush left bytes the kernel would not take: the peer reads slower than we send.
    func channelWriteBlocked()
}

extension ChannelHandler {
    func channelSecured() {}
    func channelWriteBlocked() {}
}

/// A connected socket on a loop: readiness comes from its ``Readiness`` registration (either
/// backend of ``WebSocketTransport``; a wake-up reads until a short read, or until `EAGAIN` after
/// a hang-up, which the Dispatch-source backend reports on every read event), output is gathered
/// writes made at the end of the loop event, and writability is watched only once a write
/// returned `EAGAIN`.
///
/// Once registered, the descriptor is closed by cancelling the registration, in one place
/// (`close`), so no event can ever reach a closed (and possibly reused) descriptor.
///
/// With ``tls`` the channel carries TLS: ciphertext is read and written here, plaintext goes
/// to and from the handler and the queue exactly as on a plain channel. Queued bytes wait for
/// the handshake; every graceful end sends `close_notify` before the FIN.
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
    let transport: WebSocketTransport
    /// Set while the socket is registered; cancelling it closes the descriptor.
    private var readiness: Readiness?
    /// A write returned `EAGAIN`: the poller's writable event flushes next, and the owner hears
    /// `channelWritable` once the queue has drained.
    private var waitingForWritable = false
    private var readPaused = false
    /// Bytes read from the socket (ciphertext with TLS), for flow-control tests and stats.
    private(set) var bytesRead = 0
    var isReadingPaused: Bool { readPaused }
    /// The kernel refused bytes at the last flush; writable readiness is awaited.
    var isWriteBlocked: Bool { waitingForWritable }
    private var flushQueued = false
    /// Set by the owner when its queue went above its high-water mark: `channelWritable` then
    /// follows as soon as the queue is empty, even if the kernel never pushed back.
    var wantsDrainNotification = false
    private var outbound = OutboundQueue() {
        didSet { bufferedMirror.store(bufferedAmount, ordering: .relaxed) }
    }
    /// TLS on this connection, or `nil` for plain TCP.
    let tls: TLSStream?
    /// What the TLS handshake established; set once on the loop when it completes, before any
    /// decrypted byte is handed up (so readers that learned of the request or connection from
    /// the loop see it).
    private(set) var tlsSession: TLSSessionInfo?
    /// `bufferedAmount` for other threads.
    private let bufferedMirror = Atomic<Int>(0)

    /// The peer, as `accept` or `connect` knew it (no `getpeername` needed).
    let peerAddress: SocketAddress?

    init(
        socket: Socket, loop: EventLoop, peerAddress: SocketAddress?, tls: TLSStream? = nil,
        transport: WebSocketTransport = .default
    ) {
        self.socket = socket
        self.loop = loop
        self.transport = transport
        self.peerAddress = peerAddress
        self.tls = tls
    }

    /// Bytes queued and not yet taken by the kernel, framing included; with TLS, plus sealed
    /// records the kernel has not taken yet.
    var bufferedAmount: Int { outbound.bufferedAmount + (tls?.pendingOutputCount ?? 0) }
    var publishedBufferedAmount: Int { bufferedMirror.load(ordering: .relaxed) }
    var isClosed: Bool { state == .closed }

    /// Starts reading. Call once, on the loop. `readNow` tries a read at once, for a socket
    /// whose first bytes have probably arrived already (a client's request right after accept):
    /// it saves a wake-up of the event thread per connection. `initialBytes` were read from the
    /// socket before the library had it (``WebSocketServer/handleUpgrade(socket:initialBytes:)``):
    /// they go first, exactly as if read here (through TLS on a TLS channel).
    func start(readNow: Bool = false, initialBytes: [UInt8] = []) {
        guard state == .idle else { return }
        state = .open
        loop.runEvent {
            if !initialBytes.isEmpty {
                var bytes = initialBytes
                bytes.withUnsafeMutableBytes { buffer in
                    if let tls {
                        receiveTLS(tls, UnsafeRawBufferPointer(buffer))
                    } else {
                        handler?.channelRead(buffer)
                    }
                }
            }
            // Read before registering: registration reports bytes already waiting, which would
            // cost another wake-up and a read that finds nothing.
            if let tls, !tls.isHandshakeComplete, !readNow {
                // A client starts the handshake (its ClientHello).
                receiveTLS(tls, UnsafeRawBufferPointer(start: nil, count: 0))
            }
            if readNow { read(untilWouldBlock: false) }
            guard state != .closed else { return }
            do throws(WebSocketError) {
                readiness = try loop.register(socket.fd, self, transport: transport)
                if readPaused { readiness?.pauseReads() }
                if waitingForWritable { try readiness?.watchWrites() }  // TLS records written before
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
        guard state != .closed, !readPaused else { return }
        readPaused = true
        readiness?.pauseReads()
    }

    func resumeReading() {
        guard readPaused else { return }
        readPaused = false
        readiness?.resumeReads()
        // With the edge-triggered poller what arrived while paused brings no new event, so look now.
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
                    bytesRead &+= n
                    if let tls {
                        receiveTLS(tls, UnsafeRawBufferPointer(rebasing: buffer[0..<n]))
                    } else {
                        handler?.channelRead(UnsafeMutableRawBufferPointer(rebasing: buffer[0..<n]))
                    }
                    if n < buffer.count && !untilWouldBlock { return }
                case .wouldBlock:
                    return
                case .endOfFile:
                    if let error = tls?.endOfInputError() { return close(error: error) }
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

    /// Decrypts what was read; reports the handshake's end, the peer's `close_notify` (as an
    /// end of input) and TLS failures (closing the channel with them).
    private func receiveTLS(_ tls: TLSStream, _ ciphertext: UnsafeRawBufferPointer) {
        let outcome = tls.receive(ciphertext) { plaintext in
            if tls.takeHandshakeCompleted() { secured() }
            guard state != .closed else { return false }
            handler?.channelRead(plaintext)
            return state != .closed
        }
        if tls.takeHandshakeCompleted() { secured() }
        guard state != .closed else { return }
        switch outcome {
        case .ok:
            if tls.hasPendingOutput { waitForWritable() }  // handshake records the socket did not take
        case .endOfStream:
            handler?.channelEndOfInput()
            close()
        case .failed(let error):
            close(error: error)
        }
    }

    private func secured() {
        if let tls {
            tlsSession = TLSSessionInfo(
                serverName: tls.serverName, peerCertificate: tls.peerCertificate,
                protocolVersion: tls.protocolVersion, cipherSuite: tls.cipherSuite)
        }
        handler?.channelSecured()
        // Bytes queued before the handshake ended (a client's upgrade request) go out now.
        if !outbound.isEmpty && !flushQueued && state != .closed {
            flushQueued = true
            loop.scheduleFlush(self)
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
        var outcome = writeQueued(completed: &completed)
        for completion in completed { completion(nil) }
        if case .drained = outcome, state == .shuttingDown || state == .closingAfterFlush, let tls {
            tls.sendCloseNotify()
            outcome = tls.writePending()
        }
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
            waitForWritable()
            handler?.channelWriteBlocked()
        case .closed(let error):
            close(error: error)
        }
    }

    /// Writes the queue: straight to the socket, or sealed into TLS records (which wait for the
    /// handshake; until then only the handshake's own records are written).
    private func writeQueued(completed: inout [WebSocketSendCompletion]) -> OutboundQueue.WriteOutcome {
        guard let tls else { return outbound.write(to: socket, loop: loop, completed: &completed) }
        defer { bufferedMirror.store(bufferedAmount, ordering: .relaxed) }
        guard tls.isHandshakeComplete else { return tls.writePending() }
        let outcome = outbound.write(to: tls, loop: loop, completed: &completed)
        guard case .drained = outcome else {
            if case .closed(nil) = outcome, let error = TLSStream.error(tls.writeError ?? .endOfFile) {
                return .closed(error)
            }
            return outcome
        }
        return tls.writePending()
    }

    /// Called on every `EAGAIN`, also while already waiting: a Dispatch write source fires once
    /// and has to be asked again (the registration makes a repeated ask free).
    private func waitForWritable() {
        waitingForWritable = true
        do throws(WebSocketError) {
            try readiness?.watchWrites()
        } catch {
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
            if tls != nil { return flush() }  // close_notify first
            socket.shutdownWrite()
            state = .halfClosed
        }
    }

    /// Closes as soon as everything queued is written (the owner bounds the wait with its own
    /// timer and then calls `close`).
    func closeAfterFlush() {
        guard state == .open || state == .idle else { return }
        state = .closingAfterFlush
        if outbound.isEmpty && !waitingForWritable { flush() }
    }

    /// Closes now: one last attempt to write what is queued, then the descriptor is closed and
    /// `channelClosed` is delivered.
    func close(error: WebSocketError? = nil) {
        guard state != .closed else { return }
        if state == .open || state == .shuttingDown || state == .closingAfterFlush {
            if !outbound.isEmpty {
                var completed: [WebSocketSendCompletion] = []
                _ = writeQueued(completed: &completed)
                for completion in completed { completion(nil) }
            }
            if let tls, error == nil {
                // What the socket takes now; a peer that stopped reading gets a bare FIN.
                tls.sendCloseNotify()
                _ = tls.writePending()
            }
        }
        state = .closed
        waitingForWritable = false
        // Reported once the descriptor is closed (a Dispatch source's cancellation completes
        // later, on the loop) and the current event is over, not from inside the caller's code.
        guard let readiness else {
            socket.close()
            return loop.executeAfterCurrentEvent { [self] in closed(error) }
        }
        self.readiness = nil
        readiness.cancel(closingFD: true) { [self] in
            loop.executeAfterCurrentEvent { [self] in closed(error) }
        }
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
