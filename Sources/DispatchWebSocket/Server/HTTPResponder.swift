import Synchronization

/// Answers one plain HTTP request later, from any thread, exactly once; given to
/// ``WebSocketServer/onDeferredHTTPRequest``.
///
/// The response is sent as with ``WebSocketServer/onHTTPRequest``: the server sets
/// `Content-Length` and `Connection`, keeps the connection alive when the client asked for it
/// (a pipelined next request waits, unread, until this one is answered), and sends no body to
/// `HEAD`. The answer must come within ``WebSocketServer/Configuration/handshakeTimeout``, or the
/// connection is closed. A responder released unanswered answers 500; calls after the first
/// answer are ignored (and return `false`); an answer to a client that has left is discarded.
///
/// ```swift
/// server.onDeferredHTTPRequest = { request, responder in
///     database.async {
///         let page = database.render(request.path)
///         responder.respond(HTTPResponse(status: 200, contentType: "text/html; charset=utf-8", body: page))
///     }
/// }
/// ```
public final class HTTPResponder: Sendable {
    private let session: HTTPServerSession
    private let answered = Atomic<Bool>(false)

    init(session: HTTPServerSession) {
        self.session = session
    }

    deinit {
        guard !answered.load(ordering: .acquiring) else { return }
        let session = session
        session.loop.execute {
            session.loop.runEvent {
                session.deliver(.whole(HTTPResponse(status: 500, body: "the server gave no response\n")))
            }
        }
    }

    /// Sends `response`. Returns `false` if this request was answered already.
    @discardableResult
    public func respond(_ response: HTTPResponse) -> Bool {
        answer(.whole(response))
    }

    /// Sends a response whose body is pulled from `body` a chunk at a time as the socket takes
    /// it, so a large file is never held in memory. `Content-Length` is `body.contentLength`.
    /// Returns `false` if this request was answered already.
    @discardableResult
    public func respond(status: Int, headers: HTTPHeaders = [:], body: HTTPResponseBody) -> Bool {
        answer(.streamed(status: status, headers: headers, body: body))
    }

    enum Answer {
        case whole(HTTPResponse)
        case streamed(status: Int, headers: HTTPHeaders, body: HTTPResponseBody)
    }

    private func answer(_ answer: Answer) -> Bool {
        guard !answered.exchange(true, ordering: .acquiringAndReleasing) else { return false }
        let session = session
        session.loop.execute { session.loop.runEvent { session.deliver(answer) } }
        return true
    }
}

extension HTTPServerSession {
    /// Hands a plain request to the app with a responder; reading pauses until the answer.
    func answerLater(
        _ head: HTTPRequestHead, body: [UInt8], keepAlive: Bool, handler: @Sendable (HTTPRequest, HTTPResponder) -> Void
    ) {
        var request = HTTPRequest(head: head, body: body, remoteAddress: channel.peerAddress)
        request.isSecure = channel.tls != nil
        state = .awaitingResponse(keepAlive: keepAlive, isHead: head.method == "HEAD")
        channel.pauseReading()
        handler(request, HTTPResponder(session: self))
    }

    /// The app's answer, on the loop.
    func deliver(_ answer: HTTPResponder.Answer) {
        guard case .awaitingResponse(let keepAlive, let isHead) = state, !channel.isClosed else { return }
        let (status, headers, length): (Int, HTTPHeaders, Int)
        switch answer {
        case .whole(let response): (status, headers, length) = (response.status, response.headers, response.body.count)
        case .streamed(let status2, let headers2, let body):
            (status, headers, length) = (status2, headers2, body.contentLength)
        }
        var all = headers
        all.replaceOrAdd(name: "Content-Length", value: String(length))
        all.replaceOrAdd(name: "Connection", value: keepAlive ? "keep-alive" : "close")
        write(HTTPResponseWriter.head(status: status, headers: all))
        switch answer {
        case .whole(let response):
            if !isHead && !response.body.isEmpty { write(response.body) }
        case .streamed(_, _, let body):
            if !isHead && body.contentLength > 0 {
                state = .streamingBody(body, remaining: body.contentLength, keepAlive: keepAlive)
                return pumpBody()
            }
        }
        finishDeferredResponse(keepAlive: keepAlive)
    }

    /// Queues body chunks while fewer than two wait to be written; the channel's drain
    /// notification calls again.
    func pumpBody() {
        guard case .streamingBody(let body, var remaining, let keepAlive) = state else { return }
        let chunkSize = max(1, body.chunkSize)
        while remaining > 0 && channel.bufferedAmount < 2 * chunkSize {
            let chunk: [UInt8]
            do {
                chunk = try body.read(min(chunkSize, remaining))
            } catch {
                return abandonBody()
            }
            guard !chunk.isEmpty else { return abandonBody() }
            let piece = chunk.count > remaining ? Array(chunk.prefix(remaining)) : chunk
            write(piece)
            remaining -= piece.count
        }
        armDeadline()  // progress: the timeout bounds a stalled reader, not a long body
        if remaining == 0 {
            finishDeferredResponse(keepAlive: keepAlive)
        } else {
            state = .streamingBody(body, remaining: remaining, keepAlive: keepAlive)
            channel.wantsDrainNotification = true
        }
    }

    /// The source failed or ended early: the promised length cannot be kept, so the client
    /// gets a short body and the connection closes.
    private func abandonBody() {
        closeAfterResponse()
    }

    private func finishDeferredResponse(keepAlive: Bool) {
        responseWritten(keepAlive: keepAlive)
        guard case .readingHead = state else { return }
        channel.resumeReading()
        let pending = leftover
        leftover = []
        if !pending.isEmpty { pending.withUnsafeBytes { handle($0) } }
    }
}
