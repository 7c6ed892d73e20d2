import Dispatch

/// One attempt of ``WebSocketClient/connect(url:protocols:origin:headers:)``: resolve, connect
/// (each address in turn, bounded by `connectTimeout`), open a `CONNECT` tunnel when a proxy is
/// used (``ProxyTunnel``), send the upgrade request, read and validate the response (bounded by
/// `handshakeTimeout` from TCP established, tunnel included, and `maxHeaderBytes`), then hand
/// the socket to a client-role ``WebSocketConnection``.
///
/// Confined to `loop` after `start`.
final class ClientHandshakeSession: @unchecked Sendable {
    // @unchecked Sendable: all mutable state is touched on `loop.queue` only.
    let client: WebSocketClient
    let url: WebSocketURL
    let protocols: [String]
    let origin: String?
    let headers: HTTPHeaders
    let loop: EventLoop
    let redirectsLeft: Int
    /// The proxy to tunnel through (`nil`: connect directly), or why the configured one is unusable.
    let proxyChoice: Result<WebSocketProxy?, WebSocketError>
    private var proxy: WebSocketProxy? { try? proxyChoice.get() }
    /// Where TCP goes: the proxy, or the server itself.
    private var dialHost: String { proxy?.host ?? url.host }
    private var dialPort: Int { proxy?.port ?? url.port }

    private enum State {
        case resolving
        case connecting
        case tunneling
        case awaitingHead
        case readingBody(HTTPResponseHead, remaining: Int?, body: [UInt8])
        case done
    }
    private var state = State.resolving
    private var addresses: [SocketAddress] = []
    private var lastConnectError: WebSocketError?
    private var pendingSocket: Socket?
    /// The connecting socket's registration, until the connect completes.
    private var connectWatch: Readiness?
    private var connectingTo: SocketAddress?
    private var channel: SocketChannel?
    private var tunnel: ProxyTunnel?
    private var parser: HTTPHeadParser
    private var deadline: UInt64 = 0
    private let key: String

    init(
        client: WebSocketClient, url: WebSocketURL, protocols: [String], origin: String?, headers: HTTPHeaders,
        loop: EventLoop, redirectsLeft: Int
    ) {
        self.client = client
        self.url = url
        self.protocols = protocols
        self.origin = origin
        self.headers = headers
        self.loop = loop
        self.redirectsLeft = redirectsLeft
        // A Unix-socket URL is dialled directly: a proxy cannot reach a local socket path.
        proxyChoice =
            url.unixSocketPath != nil
            ? .success(nil) : Result { () throws(WebSocketError) in try client.configuration.proxy(for: url) }
        self.parser = HTTPHeadParser(maxHeadBytes: client.configuration.maxHeaderBytes)
        var generator = SystemRandomNumberGenerator()
        let nonce = (generator.next(), generator.next())  // 16 bytes from the secure source
        key = Base64.encode(withUnsafeBytes(of: nonce) { Array($0) })
    }

    func start() {
        let host = dialHost
        let port = dialPort
        let proxyChoice = proxyChoice
        let unixSocketPath = url.unixSocketPath
        // getaddrinfo blocks: resolve off the loop.
        DispatchQueue.global().async { [self] in
            let result: Result<[SocketAddress], WebSocketError>
            do throws(WebSocketError) {
                _ = try proxyChoice.get()
                if let unixSocketPath {
                    result = .success([try SocketAddress(unixPath: unixSocketPath)])
                } else {
                    result = .success(try Socket.resolve(host: host, port: port, passive: false))
                }
            } catch {
                result = .failure(error)
            }
            loop.async { [self] in
                loop.runEvent {
                    guard case .resolving = state else { return }
                    switch result {
                    case .failure(let error): fail(error)
                    case .success(let found):
                        addresses = found
                        state = .connecting
                        deadline = EventLoop.now() + client.configuration.connectTimeout.nanoseconds
                        loop.addTickHandler(self)
                        connectNext()
                    }
                }
            }
        }
    }

    // MARK: Connecting

    private func connectNext() {
        guard !addresses.isEmpty else {
            return fail(lastConnectError ?? WebSocketError(.socketError, "no address for \(dialHost)"))
        }
        let address = addresses.removeFirst()
        do throws(WebSocketError) {
            let (socket, connected) = try Socket.connect(to: address)
            connectingTo = address
            if connected { return established(socket) }
            // The connect completes (or fails) when the socket becomes writable.
            pendingSocket = socket
            let watch = try loop.register(socket.fd, self, transport: client.configuration.transport)
            connectWatch = watch
            try watch.watchWrites()
        } catch {
            cancelConnectWatch(closingSocket: true)
            lastConnectError = error
            connectNext()
        }
    }

    private func connectFinished() {
        guard let socket = pendingSocket else { return }
        let code = socket.pendingError()
        cancelConnectWatch(closingSocket: code != 0)
        if code == 0 { return established(socket) }
        lastConnectError = WebSocketError(.socketError, "connect to \(dialDescription) failed", errno: code)
        connectNext()
    }

    /// Stops watching the connecting socket, and closes it when it is abandoned.
    private func cancelConnectWatch(closingSocket: Bool) {
        if let connectWatch {
            connectWatch.cancel(closingFD: closingSocket)
        } else if closingSocket, let socket = pendingSocket {
            socket.close()
        }
        connectWatch = nil
        pendingSocket = nil
    }

    private var dialDescription: String { proxy == nil ? "\(url.host):\(url.port)" : "proxy \(dialHost):\(dialPort)" }

    /// TCP is up: the handshake timeout starts, and covers the tunnel too.
    private func established(_ socket: Socket) {
        deadline = EventLoop.now() + client.configuration.handshakeTimeout.nanoseconds
        guard let proxy else { return handshake(on: socket) }
        state = .tunneling
        let request: [UInt8]
        do throws(WebSocketError) {
            request = try ProxyConnect.request(host: url.host, port: url.port, proxy: proxy)
        } catch {
            socket.close()
            return fail(error)
        }
        let opening = ProxyTunnel(
            socket: socket, loop: loop, request: request, maxHeadBytes: client.configuration.maxProxyHeaderBytes
        ) { [self] result in
            tunnel = nil
            switch result {
            case .success(let socket): handshake(on: socket)
            case .failure(let error): fail(error)
            }
        }
        tunnel = opening
        opening.start(transport: client.configuration.transport)
    }

    // MARK: Handshake

    private func handshake(on socket: Socket) {
        state = .awaitingHead
        var tls: TLSStream?
        if url.secure {
            do throws(WebSocketError) {
                let host = client.configuration.tls.serverName ?? url.host
                tls = try TLSStream(
                    context: try client.makeTLSContext(), socket: socket, loop: loop, expectedHost: host)
            } catch {
                socket.close()
                return fail(error)
            }
        }
        let channel = SocketChannel(
            socket: socket, loop: loop, peerAddress: connectingTo, tls: tls, transport: client.configuration.transport)
        self.channel = channel
        channel.handler = self
        channel.socket.setNoDelay(client.configuration.connection.disableNagleAlgorithm)
        channel.start()
        let request = ClientHandshake.request(
            host: url.host, port: url.port, defaultPort: url.defaultPort, resource: url.resource, key: key,
            protocols: protocols, origin: origin, extraHeaders: headers)
        channel.enqueue(OutboundChunk(header: nil, payload: .bytes(request), range: 0..<request.count))
    }

    private func handle(_ input: UnsafeRawBufferPointer) {
        switch state {
        case .awaitingHead:
            let parsed: (head: HTTPResponseHead, consumed: Int)?
            do throws(HTTPParseError) {
                parsed = try parser.parseResponse(input)
            } catch {
                switch error {
                case .headTooLarge:
                    return fail(WebSocketError(.handshakeFailed, "the response head exceeds maxHeaderBytes"))
                case .malformed(let reason):
                    return fail(WebSocketError(.handshakeFailed, "malformed response: \(reason)"))
                }
            }
            guard let parsed else { return }
            let head = parsed.head
            let rest = UnsafeRawBufferPointer(rebasing: input[parsed.consumed...])
            if head.status == 101 {
                upgrade(head, leftover: Array(rest))
            } else {
                var remaining: Int?
                if let length = head.headers["Content-Length"].flatMap({ Int($0) }) { remaining = length }
                state = .readingBody(head, remaining: remaining, body: [])
                handle(rest)
                if case .readingBody(_, let left?, _) = state, left == 0 { finishBody() }
            }
        case .readingBody(let head, let remaining, var body):
            let limit = client.configuration.maxResponseBodyBytes
            let take = min(input.count, remaining ?? input.count, limit - body.count)
            body.append(contentsOf: input.prefix(take))
            let left = remaining.map { $0 - take }
            state = .readingBody(head, remaining: left, body: body)
            if left == 0 || body.count >= limit { finishBody() }
        case .resolving, .connecting, .tunneling, .done:
            return
        }
    }

    private func upgrade(_ head: HTTPResponseHead, leftover: [UInt8]) {
        let offeredDeflate = client.configuration.perMessageDeflate
        switch ClientHandshake.validate(head, key: key, offeredProtocols: protocols, offeredDeflate: offeredDeflate) {
        case .failure(let error):
            fail(WebSocketError(.handshakeFailed, error.description))
        case .success(let negotiated):
            guard let channel else { return }
            state = .done
            loop.removeTickHandler(self)
            let connection = WebSocketConnection(
                channel: channel, role: .client, protocol: negotiated.protocol,
                configuration: client.configuration.connection,
                deflate: negotiated.deflate, upgradeResponseHeaders: head.headers)
            client.sessionSucceeded(self, connection)
            connection.start(initialBytes: leftover)
        }
    }

    /// A non-101 answer is complete: report it, then follow a redirect or fail.
    private func finishBody() {
        guard case .readingBody(let head, _, let body) = state else { return }
        state = .done
        loop.removeTickHandler(self)
        channel?.close()
        client.httpResponse(status: head.status, headers: head.headers, body: body)
        if [301, 302, 303, 307, 308].contains(head.status), redirectsLeft > 0, let location = head.headers["Location"] {
            do throws(WebSocketError) {
                let next = ClientHandshakeSession(
                    client: client, url: try url.resolving(location: location), protocols: protocols, origin: origin,
                    headers: headers, loop: loop, redirectsLeft: redirectsLeft - 1)
                if url.secure && !next.url.secure {
                    throw WebSocketError(
                        .handshakeFailed, "refusing a redirect from wss:// to \(next.url): it would drop TLS")
                }
                client.sessionRedirected(self, to: next)
            } catch {
                client.sessionFailed(self, error)
            }
            return
        }
        let error = ClientHandshakeError(check: .status(head.status))
        client.sessionFailed(self, WebSocketError(.handshakeFailed, error.description))
    }

    /// Ends the attempt with `error` (once), closing whatever socket it holds.
    func fail(_ error: WebSocketError) {
        switch state {
        case .done: return
        case .readingBody where error.code != .timeout && error.code != .notConnected:
            // The server closed after its non-101 response without Content-Length: it is complete.
            return finishBody()
        default: break
        }
        state = .done
        loop.removeTickHandler(self)
        cancelConnectWatch(closingSocket: true)
        tunnel?.cancel()
        tunnel = nil
        channel?.close()
        client.sessionFailed(self, error)
    }
}

extension ClientHandshakeSession: PollerClient {
    func pollerReady(_ events: PollEvents) {
        guard !events.isDisjoint(with: [.writable, .hangUp]) else { return }
        loop.runEvent { connectFinished() }
    }
}

extension ClientHandshakeSession: ChannelHandler {
    func channelRead(_ bytes: UnsafeMutableRawBufferPointer) { handle(UnsafeRawBufferPointer(bytes)) }
    func channelEndOfInput() {
        fail(WebSocketError(.handshakeFailed, "the server closed the connection during the handshake"))
    }
    func channelWritable() {}
    func channelClosed(_ error: WebSocketError?) {
        fail(error ?? WebSocketError(.handshakeFailed, "the connection closed during the handshake"))
    }
}

extension ClientHandshakeSession: LoopTickHandler {
    func loopTick(now: UInt64) {
        guard now >= deadline else { return }
        switch state {
        case .connecting:
            fail(WebSocketError(.timeout, "connect to \(dialDescription) timed out"))
        case .tunneling:
            fail(WebSocketError(.timeout, "the proxy did not open a tunnel within handshakeTimeout"))
        case .awaitingHead, .readingBody:
            fail(WebSocketError(.timeout, "no complete handshake response within handshakeTimeout"))
        case .resolving, .done:
            break
        }
    }
}
