/// One accepted socket until it becomes a WebSocket: reads HTTP request heads (bounded), answers
/// plain requests through the app's handler (keep-alive aware), validates upgrade requests and
/// waits for the app's accept or reject. Bounded in time by `handshakeTimeout`, so a client that
/// dribbles bytes forever is dropped.
///
/// Confined to the channel's loop.
final class HTTPServerSession: @unchecked Sendable {
    // @unchecked Sendable: confined to `channel.loop`; `WebSocketRequest` only calls
    // `completeUpgrade`/`rejectUpgrade`, which hop to the loop.
    let channel: SocketChannel
    let server: WebSocketServer

    enum State {
        case readingHead
        case readingBody(HTTPRequestHead, remaining: Int, body: [UInt8])
        /// The app answers a plain request later (`onDeferredHTTPRequest`); reading is paused.
        case awaitingResponse(keepAlive: Bool, isHead: Bool)
        /// A response body is pulled from its source as the socket takes it.
        case streamingBody(HTTPResponseBody, remaining: Int, keepAlive: Bool)
        case awaitingDecision
        case upgraded
        case closing
    }

    var state = State.readingHead
    private var parser: HTTPHeadParser
    private var deadline: UInt64 = 0
    /// Bytes that arrived after the upgrade request's head (the first WebSocket frames), or
    /// after a plain request answered later (the next pipelined request).
    var leftover: [UInt8] = []
    /// Request bytes the app read before handing the socket over (`handleUpgrade`), given to the
    /// channel when it starts.
    var initialBytes: [UInt8] = []

    init(channel: SocketChannel, server: WebSocketServer) {
        self.channel = channel
        self.server = server
        self.parser = HTTPHeadParser(maxHeadBytes: server.configuration.maxHeaderBytes)
    }

    var loop: EventLoop { channel.loop }

    /// Holds a slot of ``TLSServerConfiguration/maxHandshakesInProgress`` until the TLS
    /// handshake ends.
    private var holdsHandshakeSlot = false

    func start() {
        channel.handler = self
        channel.socket.setNoDelay(server.configuration.connection.disableNagleAlgorithm)
        armDeadline()
        loop.addTickHandler(self)
        if channel.tls != nil, let limiter = server.handshakeLimiter {
            // Beyond the limit the socket waits unread (its deadline still runs).
            guard limiter.acquire(self) else { return }
            holdsHandshakeSlot = true
        }
        startChannel()
    }

    /// A handshake slot came free for this waiting session (from ``TLSHandshakeLimiter``).
    func handshakeSlotGranted() {
        loop.execute { [self] in
            guard case .readingHead = state, !channel.isClosed else { return releaseHandshakeSlot(granted: true) }
            holdsHandshakeSlot = true
            startChannel()
        }
    }

    private func startChannel() {
        let bytes = initialBytes
        initialBytes = []
        channel.start(readNow: true, initialBytes: bytes)
    }

    private func releaseHandshakeSlot(granted: Bool = false) {
        guard holdsHandshakeSlot || granted, let limiter = server.handshakeLimiter else { return }
        holdsHandshakeSlot = false
        limiter.release()
    }

    func armDeadline() {
        deadline = EventLoop.now() + server.configuration.handshakeTimeout.nanoseconds
    }

    /// Closes the socket, e.g. on server shutdown (a session that is not a WebSocket yet).
    func shutDown() {
        switch state {
        case .upgraded: return
        default:
            state = .closing
            channel.close()
        }
    }

    // MARK: Requests

    func handle(_ input: UnsafeRawBufferPointer) {
        var input = input
        while !input.isEmpty {
            switch state {
            case .readingHead:
                let parsed: (head: HTTPRequestHead, consumed: Int)?
                do throws(HTTPParseError) {
                    parsed = try parser.parseRequest(input)
                } catch {
                    switch error {
                    case .headTooLarge: return respondAndClose(status: 431, reason: "request header fields too large")
                    case .malformed(let reason): return respondAndClose(status: 400, reason: reason)
                    }
                }
                guard let parsed else { return }
                input = UnsafeRawBufferPointer(rebasing: input[parsed.consumed...])
                handleHead(parsed.head, rest: input)
                if case .awaitingDecision = state { return }
                if case .awaitingResponse = state {
                    leftover.append(contentsOf: input)
                    return
                }
            case .readingBody(let head, let remaining, var body):
                let n = min(remaining, input.count)
                body.append(contentsOf: input.prefix(n))
                input = UnsafeRawBufferPointer(rebasing: input[n...])
                if n == remaining {
                    respondToHTTP(head, body: body)
                    if case .awaitingResponse = state {
                        leftover.append(contentsOf: input)
                        return
                    }
                } else {
                    state = .readingBody(head, remaining: remaining - n, body: body)
                }
            case .awaitingDecision, .upgraded, .awaitingResponse, .streamingBody:
                leftover.append(contentsOf: input)
                return
            case .closing:
                return
            }
        }
    }

    private func handleHead(_ head: HTTPRequestHead, rest: UnsafeRawBufferPointer) {
        guard ServerHandshake.isUpgradeRequest(head) else {
            return startBody(head)
        }
        switch ServerHandshake.validate(head) {
        case .failure(let rejection):
            respondAndClose(status: rejection.status, reason: rejection.reason, headers: rejection.headers)
        case .success(let upgrade):
            if let limit = server.configuration.maxConnections, server.connectionCount >= limit {
                return respondAndClose(status: 503, reason: "too many connections")
            }
            state = .awaitingDecision
            leftover = Array(rest)
            channel.pauseReading()
            let request = WebSocketRequest(
                head: head, upgrade: upgrade, session: self, trustXForwardedFor: server.configuration.trustXForwardedFor
            )
            server.dispatch(request)
        }
    }

    private func startBody(_ head: HTTPRequestHead) {
        if head.headers.contains("Transfer-Encoding") {
            return respondAndClose(status: 501, reason: "chunked request bodies are not supported")
        }
        var length = 0
        let lengths = head.headers.values(for: "Content-Length")
        if let first = lengths.first {
            guard lengths.allSatisfy({ $0 == first }), let value = Int(first), value >= 0 else {
                return respondAndClose(status: 400, reason: "invalid Content-Length")
            }
            length = value
        }
        guard length <= server.configuration.maxHTTPBodyBytes else {
            return respondAndClose(status: 413, reason: "request body too large")
        }
        if length == 0 {
            respondToHTTP(head, body: [])
        } else {
            state = .readingBody(head, remaining: length, body: [])
        }
    }

    private func respondToHTTP(_ head: HTTPRequestHead, body: [UInt8]) {
        let keepAlive = Self.wantsKeepAlive(head)
        if let deferred = server.deferredHTTPHandler {
            return answerLater(head, body: body, keepAlive: keepAlive, handler: deferred)
        }
        let response: HTTPResponse
        if let handler = server.httpHandler {
            var request = HTTPRequest(head: head, body: body, remoteAddress: channel.peerAddress)
            request.isSecure = channel.tls != nil
            response = handler(request)
        } else {
            response = HTTPResponse(
                status: 426, headers: ["Upgrade": "websocket", "Sec-WebSocket-Version": "13"],
                body: Array("this server speaks WebSocket only\n".utf8))
        }
        var headers = response.headers
        headers.replaceOrAdd(name: "Content-Length", value: String(response.body.count))
        headers.replaceOrAdd(name: "Connection", value: keepAlive ? "keep-alive" : "close")
        write(HTTPResponseWriter.head(status: response.status, headers: headers))
        if head.method != "HEAD" && !response.body.isEmpty { write(response.body) }
        responseWritten(keepAlive: keepAlive)
    }

    /// A response is queued whole: read the next request, or close.
    func responseWritten(keepAlive: Bool) {
        if keepAlive {
            state = .readingHead
            parser.reset()
            armDeadline()
        } else {
            closeAfterResponse()
        }
    }

    static func wantsKeepAlive(_ head: HTTPRequestHead) -> Bool {
        if head.headers.containsToken("close", in: "Connection") { return false }
        if head.version >= HTTPVersion(major: 1, minor: 1) { return true }
        return head.headers.containsToken("keep-alive", in: "Connection")
    }

    private func respondAndClose(status: Int, reason: String, headers: HTTPHeaders = [:]) {
        var headers = headers
        headers.replaceOrAdd(name: "Content-Type", value: "text/plain; charset=utf-8")
        let body = Array((reason + "\n").utf8)
        headers.replaceOrAdd(name: "Content-Length", value: String(body.count))
        headers.replaceOrAdd(name: "Connection", value: "close")
        write(HTTPResponseWriter.head(status: status, headers: headers))
        write(body)
        closeAfterResponse()
    }

    func closeAfterResponse() {
        state = .closing
        channel.closeGracefully()
        deadline = EventLoop.now() + server.configuration.connection.closeTimeout.nanoseconds
    }

    func write(_ bytes: [UInt8]) {
        channel.enqueue(OutboundChunk(header: nil, payload: .bytes(bytes), range: 0..<bytes.count))
    }

    // MARK: The app's decision (from WebSocketRequest, any thread)

    func completeUpgrade(_ connection: WebSocketConnection, response: [UInt8]) {
        // On the loop the 101 is queued at once: a message the app sends right after `accept`
        // goes straight to the channel and must follow it on the wire.
        let queuedNow = loop.inLoop && isAwaitingDecision && !channel.isClosed
        if queuedNow { write(response) }
        // Never inline: when `accept` runs inside `onRequest`, the app sets the connection's
        // handlers right after it returns, before any event may fire.
        loop.executeAfterCurrentEvent { [self] in
            guard case .awaitingDecision = state, !channel.isClosed else {
                return connection.abandon(reason: "the client left before the connection was accepted")
            }
            state = .upgraded
            loop.removeTickHandler(self)
            if !queuedNow { write(response) }
            server.sessionEnded(self)
            server.register(connection)
            connection.start(initialBytes: leftover)
            leftover = []
        }
    }

    private var isAwaitingDecision: Bool {
        if case .awaitingDecision = state { return true }
        return false
    }

    func rejectUpgrade(status: Int, reason: String?, headers: HTTPHeaders) {
        loop.execute { [self] in
            loop.runEvent {
                guard case .awaitingDecision = state else { return }
                respondAndClose(
                    status: status, reason: reason ?? HTTPResponseWriter.reasonPhrase(for: status), headers: headers)
            }
        }
    }
}

extension HTTPServerSession: ChannelHandler {
    func channelRead(_ bytes: UnsafeMutableRawBufferPointer) {
        handle(UnsafeRawBufferPointer(bytes))
    }

    func channelSecured() {
        releaseHandshakeSlot()
    }

    func channelEndOfInput() {}

    func channelWritable() {
        if case .streamingBody = state { pumpBody() }
    }

    func channelClosed(_ error: WebSocketError?) {
        loop.removeTickHandler(self)
        releaseHandshakeSlot()
        server.handshakeLimiter?.remove(self)
        if let error, error.code != .timeout { server.reportHandshakeError(error, from: self) }
        if case .upgraded = state { return }
        state = .closing
        server.sessionEnded(self)
    }
}

extension HTTPServerSession: LoopTickHandler {
    func loopTick(now: UInt64) {
        guard now >= deadline else { return }
        switch state {
        case .closing, .upgraded:
            channel.close()
        case .readingHead, .readingBody, .awaitingDecision, .awaitingResponse, .streamingBody:
            // A client that never completes its request (or an app that never decides).
            state = .closing
            channel.close(error: WebSocketError(.timeout, "handshake not completed within handshakeTimeout"))
        }
    }
}
