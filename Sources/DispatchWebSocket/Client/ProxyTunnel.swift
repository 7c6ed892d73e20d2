/// The I/O of the `CONNECT` exchange (``ProxyConnect``) on a socket connected to the proxy: writes
/// the request, reads the answer, and hands the socket back once the tunnel is open, for the
/// WebSocket handshake (and TLS) inside it.
///
/// It adds no timer: ``ClientHandshakeSession``'s `handshakeTimeout` covers the exchange and calls
/// ``cancel()`` when it runs out. Owns the socket until it completes: on failure or cancel it
/// closes it (through its registration); on success it hands it over only once its registration
/// is fully cancelled, so that the next owner's registration is a fresh one that reports bytes
/// or an end of input already waiting (Dispatch sources sharing a descriptor with a cancelling
/// one can miss them). `completion` runs once, on the loop, inside a loop event. Confined to
/// `loop` (hence `@unchecked Sendable`).
final class ProxyTunnel: @unchecked Sendable {
    private let socket: Socket
    private let loop: EventLoop
    private let request: [UInt8]
    private var written = 0
    private var exchange: ProxyConnect
    private var readiness: Readiness?
    private var completion: ((Result<Socket, WebSocketError>) -> Void)?
    /// The socket was handed back or closed: nothing left to release.
    private var released = false
    /// The tunnel is open and the registration is cancelling: the completion waiting for it.
    private var handoff: ((Result<Socket, WebSocketError>) -> Void)?

    init(
        socket: Socket, loop: EventLoop, request: [UInt8], maxHeadBytes: Int,
        completion: @escaping (Result<Socket, WebSocketError>) -> Void
    ) {
        self.socket = socket
        self.loop = loop
        self.request = request
        self.exchange = ProxyConnect(maxHeadBytes: maxHeadBytes)
        self.completion = completion
    }

    /// Registers the socket and sends the request. On the loop, inside an event.
    func start(transport: WebSocketTransport) {
        do throws(WebSocketError) {
            readiness = try loop.register(socket.fd, self, transport: transport)
        } catch {
            return finish(.failure(error))
        }
        writeRequest()
    }

    /// Abandons the exchange without calling `completion`, closing the socket.
    func cancel() {
        completion = nil
        if handoff != nil {
            handoff = nil  // `handedOver` closes the socket instead
        } else {
            release(closing: true)
        }
    }

    private func writeRequest() {
        while completion != nil && written < request.count {
            let result = request.withUnsafeBytes { socket.write(UnsafeRawBufferPointer(rebasing: $0[written...])) }
            switch result {
            case .bytes(let count):
                written += count
            case .wouldBlock:
                do throws(WebSocketError) {
                    try readiness?.watchWrites()
                } catch {
                    finish(.failure(error))
                }
                return
            case .endOfFile:
                return finish(
                    .failure(WebSocketError(.proxyFailed, "the proxy closed the connection before reading CONNECT")))
            case .error(let code):
                return finish(
                    .failure(WebSocketError(.socketError, "writing CONNECT to the proxy failed", errno: code)))
            }
        }
    }

    /// Reads to `EAGAIN` (edge-triggered backends report readiness once) or to a verdict.
    private func readAnswer() {
        let buffer = loop.readBuffer
        while completion != nil {
            switch socket.read(into: buffer) {
            case .bytes(let count):
                guard let verdict = exchange.receive(UnsafeRawBufferPointer(rebasing: buffer[..<count])) else {
                    continue
                }
                switch verdict {
                case .success: return finish(.success(socket))
                case .failure(let error): return finish(.failure(error))
                }
            case .wouldBlock:
                return
            case .endOfFile:
                return finish(
                    .failure(WebSocketError(.proxyFailed, "the proxy closed the connection before answering CONNECT")))
            case .error(let code):
                return finish(.failure(WebSocketError(.socketError, "reading the proxy's answer failed", errno: code)))
            }
        }
    }

    private func finish(_ result: Result<Socket, WebSocketError>) {
        guard let completion else { return }
        self.completion = nil
        guard case .success = result, let readiness, !released else {
            release(closing: true)
            return completion(result)
        }
        released = true
        self.readiness = nil
        handoff = completion
        readiness.cancel(closingFD: false) { [self] in handedOver() }
    }

    /// The registration let go of the descriptor: give the socket to the session, or close it
    /// when the session gave up meanwhile.
    private func handedOver() {
        guard let handoff else { return socket.close() }
        self.handoff = nil
        let socket = socket
        loop.runEvent { handoff(.success(socket)) }
    }

    /// Ends the registration (which closes the descriptor when asked), or closes the socket
    /// directly when it was never registered.
    private func release(closing: Bool) {
        guard !released else { return }
        released = true
        if let readiness {
            readiness.cancel(closingFD: closing)
        } else if closing {
            socket.close()
        }
        readiness = nil
    }
}

extension ProxyTunnel: PollerClient {
    func pollerReady(_ events: PollEvents) {
        loop.runEvent {
            if events.contains(.writable) { writeRequest() }
            if !events.isDisjoint(with: [.readable, .hangUp]) { readAnswer() }
        }
    }
}
