import Dispatch

/// What a ``TCPStream`` reports to its owner. Every call arrives on the stream's loop queue.
package protocol TCPStreamDelegate: AnyObject {
    /// The connection is established; bytes written before this are already queued.
    func streamConnected(_ stream: TCPStream)
    /// Bytes just read. They live in the loop's shared read buffer: use or copy them now.
    func stream(_ stream: TCPStream, read bytes: UnsafeRawBufferPointer)
    /// The stream ended: connecting failed, the peer closed, or ``TCPStream/close()`` was
    /// called. The last call the delegate gets (`nil` for a clean end).
    func streamClosed(_ stream: TCPStream, error: WebSocketError?)
}

/// A plain TCP client connection on one of the library's loops, for protocol clients other than
/// WebSocket inside this package (the chat example's Redis client): the same non-blocking
/// socket, readiness backend and corked, gathered writes as a WebSocket connection, without
/// exposing ``SocketChannel`` itself.
///
/// `write` and `close` may be called from any thread; everything else happens on ``queue``.
package final class TCPStream: @unchecked Sendable {
    // @unchecked Sendable: the mutable state below is confined to `loop`.
    private let loop: EventLoop
    private let transport: WebSocketTransport
    private weak var delegate: TCPStreamDelegate?
    private var channel: SocketChannel?
    private var pendingSocket: Socket?
    private var connectWatch: Readiness?
    /// Bytes written before the connection was up.
    private var early: [[UInt8]] = []
    private var finished = false

    /// The loop queue that runs every delegate call.
    package var queue: DispatchQueue { loop.queue }

    /// Starts connecting to `host:port` (resolved off the loop, each address in turn) on one
    /// of the process's shared loops; gives up after `timeout`.
    package init(host: String, port: Int, timeout: Duration, delegate: TCPStreamDelegate) {
        loop = EventLoopGroup.shared.next()
        transport = .default
        self.delegate = delegate
        DispatchQueue.global().async { [self] in
            let result: Result<[SocketAddress], WebSocketError>
            do throws(WebSocketError) {
                result = .success(try Socket.resolve(host: host, port: port, passive: false))
            } catch {
                result = .failure(error)
            }
            loop.async { [self] in
                switch result {
                case .failure(let error): finish(error)
                case .success(let addresses): connect(addresses, lastError: nil)
                }
            }
        }
        loop.asyncAfter(.nanoseconds(Int(clamping: timeout.nanoseconds))) { [self] in
            if channel == nil && !finished {
                finish(WebSocketError(.timeout, "connect to \(host):\(port) timed out"))
            }
        }
    }

    /// Queues bytes; they are written at the end of the current loop event together with
    /// everything else written in it (pipelined commands leave in one `sendmsg`).
    package func write(_ bytes: [UInt8]) {
        loop.execute { [self] in
            guard !finished else { return }
            guard let channel else { return early.append(bytes) }
            loop.runEvent {
                channel.enqueue(OutboundChunk(header: nil, payload: .bytes(bytes), range: 0..<bytes.count))
            }
        }
    }

    /// Closes the connection (or abandons connecting); `streamClosed` follows.
    package func close() {
        loop.execute { [self] in
            if let channel { return channel.close() }
            finish(nil)
        }
    }

    private func connect(_ addresses: [SocketAddress], lastError: WebSocketError?) {
        guard !finished else { return }
        guard let address = addresses.first else {
            return finish(lastError ?? WebSocketError(.socketError, "no address to connect to"))
        }
        let rest = Array(addresses.dropFirst())
        do throws(WebSocketError) {
            let (socket, connected) = try Socket.connect(to: address)
            if connected { return established(socket, address) }
            pendingSocket = socket
            let watch = try loop.register(
                socket.fd,
                ConnectWatcher { [weak self] in
                    self?.connectFinished(address, rest)
                }, transport: transport)
            connectWatch = watch
            try watch.watchWrites()
        } catch {
            cancelConnectWatch(closingSocket: true)
            connect(rest, lastError: error)
        }
    }

    private func connectFinished(_ address: SocketAddress, _ rest: [SocketAddress]) {
        guard let socket = pendingSocket else { return }
        let code = socket.pendingError()
        cancelConnectWatch(closingSocket: code != 0 || finished)
        guard !finished else { return }
        if code == 0 { return established(socket, address) }
        connect(rest, lastError: WebSocketError(.socketError, "connect to \(address) failed", errno: code))
    }

    private func cancelConnectWatch(closingSocket: Bool) {
        if let connectWatch {
            connectWatch.cancel(closingFD: closingSocket)
        } else if closingSocket, let pendingSocket {
            pendingSocket.close()
        }
        connectWatch = nil
        pendingSocket = nil
    }

    private func established(_ socket: Socket, _ address: SocketAddress) {
        socket.setNoDelay(true)
        let channel = SocketChannel(socket: socket, loop: loop, peerAddress: address, transport: transport)
        self.channel = channel
        channel.handler = ChannelAdapter(stream: self)
        channel.start()
        loop.runEvent {
            for bytes in early {
                channel.enqueue(OutboundChunk(header: nil, payload: .bytes(bytes), range: 0..<bytes.count))
            }
            early = []
            delegate?.streamConnected(self)
        }
    }

    fileprivate func finish(_ error: WebSocketError?) {
        guard !finished else { return }
        finished = true
        cancelConnectWatch(closingSocket: true)
        early = []
        channel = nil
        delegate?.streamClosed(self, error: error)
    }

    fileprivate func read(_ bytes: UnsafeMutableRawBufferPointer) {
        delegate?.stream(self, read: UnsafeRawBufferPointer(bytes))
    }
}

/// Hands the connecting socket's writability to the stream.
private final class ConnectWatcher: PollerClient {
    let ready: () -> Void
    init(_ ready: @escaping () -> Void) { self.ready = ready }
    func pollerReady(_ events: PollEvents) { ready() }
}

/// The channel's handler; the channel holds it strongly while open, and it holds the stream.
private final class ChannelAdapter: ChannelHandler {
    let stream: TCPStream
    init(stream: TCPStream) { self.stream = stream }
    func channelRead(_ bytes: UnsafeMutableRawBufferPointer) { stream.read(bytes) }
    func channelEndOfInput() {}
    func channelWritable() {}
    func channelClosed(_ error: WebSocketError?) { stream.finish(error) }
}
