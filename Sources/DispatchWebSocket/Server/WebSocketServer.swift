import Dispatch
import Synchronization

/// A WebSocket server (RFC 6455) on POSIX sockets and Dispatch, in the style of WebSocket-Node.
///
/// ```swift
/// let server = WebSocketServer()
/// server.onRequest = { request in
///     guard let connection = try? request.accept(protocol: request.requestedProtocols.first) else { return }
///     connection.onMessage = { message in connection.send(message) }   // echo
/// }
/// let address = try server.listen(host: "127.0.0.1", port: 8080)
/// print("listening on \(address)")
/// dispatchMain()
/// ```
///
/// ## Threading
/// Connections are spread over a few serial *loop* queues (one per CPU the process may use).
/// `onRequest`, `onConnect`, `onClose` and `onHTTPRequest` run on the loop queue of the
/// connection concerned; every connection's own events run on its loop queue too. All methods are
/// safe to call from any thread. Set the event handlers before calling ``listen(host:port:)``.
public final class WebSocketServer: @unchecked Sendable {
    // @unchecked Sendable: mutable state is guarded by `lock` (handlers, tracked connections and
    // sessions, the listener) and is never touched on the per-message path.

    /// Server settings. Every limit has a documented default.
    public struct Configuration: Sendable {
        /// Settings of each accepted connection (limits, fragmentation, timeouts, keepalive).
        public var connection = WebSocketConfiguration()
        /// The largest HTTP request head (request line and headers) accepted; larger gets 431.
        /// Default: 16 KiB.
        public var maxHeaderBytes = 16 * 1024
        /// Time for a client to send a complete request (and for the app to accept or reject an
        /// upgrade); also the idle limit of a keep-alive HTTP connection. Default: 10 seconds.
        public var handshakeTimeout: Duration = .seconds(10)
        /// The largest plain-HTTP request body accepted; larger gets 413. Default: 1 MiB.
        public var maxHTTPBodyBytes = 1024 * 1024
        /// Accept every valid upgrade without an `onRequest` decision (no subprotocol).
        /// Default: `false`.
        public var autoAcceptConnections = false
        /// Take the client address from `X-Forwarded-For`. Only for servers behind a proxy that
        /// sets it: otherwise clients could claim any address. Default: `false`.
        public var trustXForwardedFor = false
        /// Upgrades beyond this many open connections get 503. Default: `nil` (no limit).
        public var maxConnections: Int? = nil
        /// The listen backlog. Default: 1024.
        public var backlog: Int32 = 1024
        /// On Linux, how long the kernel may hold a new connection back until its first bytes
        /// arrive (`TCP_DEFER_ACCEPT`), so that accepting it and reading its request take one
        /// wake-up instead of two. A client that stays silent reaches the server after about this
        /// long and then has `handshakeTimeout`. Whole seconds; `.zero` turns it off. Ignored on
        /// other systems. Default: 5 seconds.
        public var deferAccept: Duration = .seconds(5)
        /// How many loop queues to use; `nil` means one per CPU the process may run on
        /// (shared by all servers and clients of the process). Default: `nil`.
        public var loopCount: Int? = nil
        /// Let several sockets listen on the same port (`SO_REUSEPORT`): other processes, or other
        /// servers in this one, that set it too (and run as the same user). On Linux the kernel
        /// spreads new connections over all of them, and a listener closing (``shutDown()``, a
        /// rolling restart) leaves the others accepting; macOS and the BSDs accept the shared bind
        /// but hand every connection to one socket. Off by default because on it hides an
        /// accidental second server on the same port, which then silently takes half the clients.
        /// Default: `false`.
        public var reusePort = false
        /// TLS: with it set the server speaks only `wss://` (and `https://`) on its port; see
        /// ``TLSServerConfiguration``. The TLS handshake counts against ``handshakeTimeout``.
        /// Default: `nil` (plain `ws://`).
        public var tls: TLSServerConfiguration? = nil
        /// permessage-deflate (RFC 7692): the settings to negotiate with clients that offer it, or
        /// `nil` to decline every offer. Each request can change it before it is accepted
        /// (``WebSocketRequest/perMessageDeflate``). Default: `nil` (off).
        public var perMessageDeflate: PerMessageDeflateOptions? = nil
        /// How sockets learn they are readable or writable: ``WebSocketTransport/poller`` (one
        /// epoll set per loop) or ``WebSocketTransport/dispatchSources`` (Dispatch sources per
        /// socket). Callbacks, ordering and the threading contract are the same for both.
        /// Default: ``WebSocketTransport/default`` — `.poller` on Linux, `.dispatchSources` on
        /// Darwin, or what the environment variable `DISPATCHWEBSOCKET_TRANSPORT` says.
        public var transport: WebSocketTransport = .default

        /// The defaults given for each setting.
        public init() {}
    }

    /// The settings the server was created with.
    public let configuration: Configuration
    let group: EventLoopGroup

    private struct Handlers {
        var request: (@Sendable (WebSocketRequest) -> Void)?
        var connect: (@Sendable (WebSocketConnection) -> Void)?
        var close: (@Sendable (WebSocketConnection, WebSocketCloseCode, String) -> Void)?
        var http: (@Sendable (HTTPRequest) -> HTTPResponse)?
        var deferredHTTP: (@Sendable (HTTPRequest, HTTPResponder) -> Void)?
        var error: (@Sendable (WebSocketError) -> Void)?
        var tlsError: (@Sendable (WebSocketError, SocketAddress?) -> Void)?
    }

    private let lock = Lock()
    private var handlers = Handlers()
    private var listener: Listener?
    private var liveConnections: [ObjectIdentifier: WebSocketConnection] = [:]
    private var sessions: [ObjectIdentifier: HTTPServerSession] = [:]
    private var shutDownWaiters: [@Sendable () -> Void] = []
    /// A shut-down listener closes on its loop; the waiters wait for that too, so that the port
    /// is free when they run.
    private var stoppingListener = false
    private var tlsContext: TLSContext?
    /// Called once when ``shutDown(completion:)`` starts (the async ``requests`` finish then).
    private var shutDownObservers: [@Sendable () -> Void] = []

    /// Registers `observer` for the start of shutdown; runs it at once when shutdown has begun.
    func onShutDownStarted(_ observer: @escaping @Sendable () -> Void) {
        let runNow = lock.withLock { () -> Bool in
            if isShutDown { return true }
            shutDownObservers.append(observer)
            return false
        }
        if runNow { observer() }
    }
    private var isShutDown = false

    /// Creates a server; nothing happens until ``listen(host:port:)``.
    public init(configuration: Configuration = Configuration()) {
        self.configuration = configuration
        self.group = configuration.loopCount.map { EventLoopGroup(count: $0) } ?? .shared
        self.handshakeLimiter = configuration.tls.map { TLSHandshakeLimiter(limit: $0.maxHandshakesInProgress) }
    }

    // MARK: Events

    /// A client asks to open a WebSocket: accept or reject it (see ``WebSocketRequest``).
    /// Not called when ``Configuration/autoAcceptConnections`` is set. Without a handler,
    /// requests are rejected with 403.
    public var onRequest: (@Sendable (WebSocketRequest) -> Void)? {
        get { lock.withLock { handlers.request } }
        set { lock.withLock { handlers.request = newValue } }
    }

    /// A connection was accepted; runs before its first event, so handlers set here miss nothing.
    public var onConnect: (@Sendable (WebSocketConnection) -> Void)? {
        get { lock.withLock { handlers.connect } }
        set { lock.withLock { handlers.connect = newValue } }
    }

    /// An accepted connection closed (after its own `onClose`).
    public var onClose: (@Sendable (WebSocketConnection, WebSocketCloseCode, String) -> Void)? {
        get { lock.withLock { handlers.close } }
        set { lock.withLock { handlers.close = newValue } }
    }

    /// Answers plain HTTP requests on the same port (e.g. the page that opens the WebSocket).
    /// Runs on a loop queue: return quickly (an answer that needs I/O first belongs in
    /// ``onDeferredHTTPRequest``). Without a handler such requests get 426.
    public var onHTTPRequest: (@Sendable (HTTPRequest) -> HTTPResponse)? {
        get { lock.withLock { handlers.http } }
        set { lock.withLock { handlers.http = newValue } }
    }

    /// The accept loop failed, e.g. the process ran out of file descriptors (accepting pauses
    /// briefly and resumes by itself).
    public var onError: (@Sendable (WebSocketError) -> Void)? {
        get { lock.withLock { handlers.error } }
        set { lock.withLock { handlers.error = newValue } }
    }

    /// A client's TLS handshake failed (no common version, plain bytes on the TLS port, a client
    /// certificate that is missing or does not verify…): the error and the client's address.
    /// Runs on a loop queue. Handshakes that merely time out are not reported.
    public var onTLSError: (@Sendable (WebSocketError, SocketAddress?) -> Void)? {
        get { lock.withLock { handlers.tlsError } }
        set { lock.withLock { handlers.tlsError = newValue } }
    }

    var httpHandler: (@Sendable (HTTPRequest) -> HTTPResponse)? { lock.withLock { handlers.http } }

    /// Answers plain HTTP requests later, from any thread, through the ``HTTPResponder``
    /// (exactly once): for answers that need a database or a file first. Runs on a loop queue;
    /// takes precedence over ``onHTTPRequest``. See ``HTTPResponder`` for the limits.
    public var onDeferredHTTPRequest: (@Sendable (HTTPRequest, HTTPResponder) -> Void)? {
        get { lock.withLock { handlers.deferredHTTP } }
        set { lock.withLock { handlers.deferredHTTP = newValue } }
    }

    var deferredHTTPHandler: (@Sendable (HTTPRequest, HTTPResponder) -> Void)? {
        lock.withLock { handlers.deferredHTTP }
    }

    /// Set with ``Configuration/tls``; bounds the handshakes in progress.
    let handshakeLimiter: TLSHandshakeLimiter?

    func reportHandshakeError(_ error: WebSocketError, from session: HTTPServerSession) {
        guard session.channel.tls != nil else { return }
        lock.withLock { handlers.tlsError }?(error, session.channel.peerAddress)
    }

    // MARK: Listening

    /// Starts listening and returns the bound address (with the real port when `port` is 0).
    ///
    /// - Parameters:
    ///   - host: a numeric IPv4/IPv6 address or a host name; `"0.0.0.0"` or `"::"` for all interfaces.
    ///   - port: the TCP port; 0 picks a free one.
    @discardableResult
    public func listen(host: String = "127.0.0.1", port: Int) throws(WebSocketError) -> SocketAddress {
        let tls = try serverTLSContext()
        let deferSeconds = Int32(clamping: configuration.deferAccept.components.seconds)
        let listener = try Listener(
            host: host, port: port, backlog: configuration.backlog, deferAcceptSeconds: deferSeconds,
            reusePort: configuration.reusePort, loop: group.loops[0], transport: configuration.transport)
        return try start(listener, tls: tls)
    }

    /// The TLS context of ``Configuration/tls`` (`nil` without TLS), built once and shared by
    /// every listener and handed-over socket; a configuration problem is thrown each time.
    func serverTLSContext() throws(WebSocketError) -> TLSContext? {
        guard let settings = configuration.tls else { return nil }
        if let context = lock.withLock({ tlsContext }) { return context }
        let context = try TLSContext.server(settings)
        return lock.withLock { () -> TLSContext in
            if tlsContext == nil { tlsContext = context }
            return tlsContext!
        }
    }

    /// Makes `listener` the server's and starts accepting; stops it when the server already listens.
    func start(_ listener: Listener, tls: TLSContext?) throws(WebSocketError) -> SocketAddress {
        let acceptLoop = group.loops[0]
        let alreadyListening = lock.withLock { () -> Bool in
            if self.listener != nil { return true }
            self.listener = listener
            isShutDown = false
            return false
        }
        if alreadyListening {
            listener.stop()
            throw WebSocketError(.invalidArgument, "the server is already listening")
        }
        acceptLoop.async { [self] in
            listener.start(
                onAccept: { [self] socket, peer in accepted(socket, peer: peer, tls: tls) },
                onError: { [self] error in lock.withLock { handlers.error }?(error) })
        }
        return listener.address
    }

    /// The address the server listens on, `nil` before ``listen(host:port:)`` and after shutdown.
    public var localAddress: SocketAddress? { lock.withLock { listener?.address } }

    /// Starts the HTTP session of a new socket; `initialBytes` were read by the app (`handleUpgrade`).
    func accepted(_ socket: Socket, peer: SocketAddress?, tls: TLSContext?, initialBytes: [UInt8] = []) {
        let loop = group.next()
        var stream: TLSStream?
        if let tls {
            do throws(WebSocketError) {
                stream = try TLSStream(context: tls, socket: socket, loop: loop, expectedHost: nil)
            } catch {
                socket.close()
                lock.withLock { handlers.error }?(error)
                return
            }
        }
        let channel = SocketChannel(
            socket: socket, loop: loop, peerAddress: peer, tls: stream, transport: configuration.transport)
        let session = HTTPServerSession(channel: channel, server: self)
        session.initialBytes = initialBytes
        lock.withLock { sessions[ObjectIdentifier(session)] = session }
        loop.execute { session.start() }
    }

    // MARK: Connections

    /// The open connections.
    public var connections: [WebSocketConnection] { lock.withLock { Array(liveConnections.values) } }

    var connectionCount: Int { lock.withLock { liveConnections.count } }

    func dispatch(_ request: WebSocketRequest) {
        if configuration.autoAcceptConnections {
            _ = try? request.accept()
            return
        }
        guard let handler = lock.withLock({ handlers.request }) else {
            return request.reject(status: 403, reason: "this server accepts no WebSocket connections")
        }
        handler(request)
    }

    func register(_ connection: WebSocketConnection) {
        let id = ObjectIdentifier(connection)
        lock.withLock { liveConnections[id] = connection }
        connection.closeObservers.append { [self] connection in
            let (closeHandler, waiters) = lock.withLock {
                () -> ((@Sendable (WebSocketConnection, WebSocketCloseCode, String) -> Void)?, [@Sendable () -> Void])
                in
                liveConnections.removeValue(forKey: id)
                return (handlers.close, waitersIfFinished())
            }
            closeHandler?(connection, connection.closeReasonCode ?? .abnormalClosure, connection.closeDescription ?? "")
            for waiter in waiters { waiter() }
        }
        lock.withLock { handlers.connect }?(connection)
    }

    func sessionEnded(_ session: HTTPServerSession) {
        runShutDownWaitersIfFinished { sessions.removeValue(forKey: ObjectIdentifier(session)) }
    }

    /// Applies `change` under `lock`, then runs the shut-down waiters if nothing is left to wait for.
    private func runShutDownWaitersIfFinished(after change: () -> Void = {}) {
        let waiters = lock.withLock { () -> [@Sendable () -> Void] in
            change()
            return waitersIfFinished()
        }
        for waiter in waiters { waiter() }
    }

    /// The shut-down waiters, taken, once nothing is left to wait for. Under `lock`.
    private func waitersIfFinished() -> [@Sendable () -> Void] {
        guard liveConnections.isEmpty && sessions.isEmpty && !stoppingListener else { return [] }
        defer { shutDownWaiters = [] }
        return shutDownWaiters
    }

    /// Sends a text message to every open connection. The payload is shared, not copied, and a
    /// slow receiver does not hold up the others. Connections with permessage-deflate and no
    /// server context takeover share one compressed copy per compressor setting.
    public func broadcastUTF(_ text: String) {
        var text = text
        text.makeContiguousUTF8()
        broadcast(.text(text))
    }

    /// Sends a binary message to every open connection, sharing one payload buffer.
    public func broadcastBytes(_ bytes: [UInt8]) {
        broadcast(.binary(bytes))
    }

    /// `cache` is a parameter so that tests can count its compressions.
    func broadcast(_ message: WebSocketMessage, cache: BroadcastDeflateCache = BroadcastDeflateCache()) {
        let targets = connections
        // One hop per loop, not per connection.
        var byLoop: [ObjectIdentifier: (EventLoop, [WebSocketConnection])] = [:]
        for connection in targets {
            byLoop[ObjectIdentifier(connection.loop), default: (connection.loop, [])].1.append(connection)
        }
        for (loop, members) in byLoop.values {
            let members = members
            loop.execute {
                loop.runEvent {
                    for connection in members { connection.sendBroadcast(message, cache: cache) }
                }
            }
        }
    }

    /// Starts the closing handshake on every open connection.
    public func closeAllConnections(code: WebSocketCloseCode = .normalClosure, description: String = "") {
        for connection in connections { connection.close(code: code, description: description) }
    }

    /// Stops listening, closes every connection with 1001 ("going away"), waits for them to
    /// close (each is bounded by its `closeTimeout`), then calls `completion` (on an arbitrary
    /// queue). By then the listening socket is closed and the port is free.
    public func shutDown(completion: (@Sendable () -> Void)? = nil) {
        let (listener, sessions, connections, observers) = lock.withLock {
            () -> (Listener?, [HTTPServerSession], [WebSocketConnection], [@Sendable () -> Void]) in
            isShutDown = true
            defer { shutDownObservers = [] }
            let listener = self.listener
            self.listener = nil
            if listener != nil { stoppingListener = true }
            if let completion { shutDownWaiters.append(completion) }
            return (listener, Array(self.sessions.values), Array(liveConnections.values), shutDownObservers)
        }
        for observer in observers { observer() }
        if let listener {
            group.loops[0].async { [self] in
                listener.stop { [self] in runShutDownWaitersIfFinished { stoppingListener = false } }
            }
        }
        for session in sessions {
            session.channel.loop.execute { session.shutDown() }
        }
        for connection in connections {
            connection.close(code: .goingAway, description: "server shutting down")
        }
        runShutDownWaitersIfFinished()
    }

    /// Async form of ``shutDown(completion:)``.
    public func shutDown() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            shutDown { continuation.resume() }
        }
    }
}
