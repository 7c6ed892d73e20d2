import Dispatch

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Opens WebSocket connections to servers (`ws://` and `wss://`), WebSocket-Node style.
///
/// ```swift
/// let client = WebSocketClient()
/// client.onConnect = { connection in
///     connection.onMessage = { print("got", $0) }
///     connection.sendUTF("hello")
/// }
/// client.onConnectFailed = { error in print("failed:", error) }
/// client.connect(url: "ws://127.0.0.1:9001/chat", protocols: ["chat"])
/// ```
///
/// Exactly one of `onConnect` and `onConnectFailed` follows each `connect`; `onHTTPResponse`
/// comes first when the server answered with something other than 101. They run on the
/// connection's loop queue; set them before calling `connect`.
public final class WebSocketClient: @unchecked Sendable {
    // @unchecked Sendable: handlers and the current attempt are guarded by `lock`.

    /// Client settings. Every limit has a documented default.
    public struct Configuration: Sendable {
        /// Settings of the connection once open. Keepalive is off by default for clients.
        public var connection: WebSocketConfiguration = {
            var configuration = WebSocketConfiguration()
            configuration.keepalive = false
            return configuration
        }()
        /// Time to establish TCP (over all addresses of the host). Default: 10 seconds.
        public var connectTimeout: Duration = .seconds(10)
        /// Time from TCP established to the server's complete response head. Default: 10 seconds.
        public var handshakeTimeout: Duration = .seconds(10)
        /// The largest response head accepted. Default: 16 KiB.
        public var maxHeaderBytes = 16 * 1024
        /// The largest body of a non-101 response read for `onHTTPResponse`. Default: 1 MiB.
        public var maxResponseBodyBytes = 1024 * 1024
        /// Follow 301, 302, 303, 307 and 308 responses. Default: `false`.
        public var followRedirects = false
        /// The most redirects followed for one `connect`. Default: 5.
        public var maxRedirects = 5
        /// An HTTP proxy to reach servers through with a `CONNECT` tunnel (``WebSocketProxy``);
        /// its ``WebSocketProxy/noProxy`` hosts are reached directly. Default: `nil` (direct).
        public var proxy: WebSocketProxy? = nil
        /// When ``proxy`` is `nil`, take the proxy from `https_proxy`/`http_proxy`/`all_proxy` and
        /// `no_proxy` (see ``WebSocketProxy/fromEnvironment(secure:)``). Default: `false`, so a
        /// process's environment never reroutes connections it did not ask to reroute.
        public var proxyFromEnvironment = false
        /// The largest head of a proxy's answer to `CONNECT`. Default: 8 KiB.
        public var maxProxyHeaderBytes = 8 * 1024
        /// Loop queues to use; `nil` shares the process's loops. Default: `nil`.
        public var loopCount: Int? = nil
        /// TLS for `wss://` URLs: by default the server's certificate must chain to the system's
        /// trust store and match the host. See ``TLSClientConfiguration``.
        public var tls = TLSClientConfiguration()
        /// permessage-deflate (RFC 7692) to offer, or `nil` to offer no extension. The offer is
        /// `permessage-deflate` with `client_max_window_bits` and the requests the options make;
        /// a server answer outside it fails the connection. Default: on with
        /// ``PerMessageDeflateOptions/init()``, as browsers offer it.
        public var perMessageDeflate: PerMessageDeflateOptions? = PerMessageDeflateOptions()
        /// How sockets learn they are readable or writable: ``WebSocketTransport/poller`` (one
        /// epoll set per loop) or ``WebSocketTransport/dispatchSources`` (Dispatch sources per
        /// socket). Callbacks, ordering and the threading contract are the same for both.
        /// Default: ``WebSocketTransport/default`` — `.poller` on Linux, `.dispatchSources` on
        /// Darwin, or what the environment variable `DISPATCHWEBSOCKET_TRANSPORT` says.
        public var transport: WebSocketTransport = .default

        /// The defaults given for each setting.
        public init() {}
    }

    /// The settings the client was created with.
    public let configuration: Configuration
    let group: EventLoopGroup

    private struct Handlers {
        var connect: (@Sendable (WebSocketConnection) -> Void)?
        var connectFailed: (@Sendable (WebSocketError) -> Void)?
        var httpResponse: (@Sendable (Int, HTTPHeaders, [UInt8]) -> Void)?
    }
    private let lock = Lock()
    private var handlers = Handlers()
    private var attempt: ClientHandshakeSession?
    /// Built on the first `wss://` connect and shared by the client's later connections.
    private var tlsContext: TLSContext?

    /// The client's TLS context (built once; a configuration problem is thrown each time).
    func makeTLSContext() throws(WebSocketError) -> TLSContext {
        if let context = lock.withLock({ tlsContext }) { return context }
        let context = try TLSContext.client(configuration.tls)
        lock.withLock { tlsContext = tlsContext ?? context }
        return context
    }

    /// Creates a client; nothing happens until `connect`.
    public init(configuration: Configuration = Configuration()) {
        self.configuration = configuration
        group = configuration.loopCount.map { EventLoopGroup(count: $0) } ?? .shared
    }

    /// The connection is open.
    public var onConnect: (@Sendable (WebSocketConnection) -> Void)? {
        get { lock.withLock { handlers.connect } }
        set { lock.withLock { handlers.connect = newValue } }
    }

    /// The connection could not be opened; the error names the step that failed
    /// (`.handshakeFailed` errors wrap a ``ClientHandshakeError`` description).
    public var onConnectFailed: (@Sendable (WebSocketError) -> Void)? {
        get { lock.withLock { handlers.connectFailed } }
        set { lock.withLock { handlers.connectFailed = newValue } }
    }

    /// The server answered the upgrade with another status (e.g. 401 or a redirect): status,
    /// headers and body (at most `maxResponseBodyBytes`). `onConnectFailed` follows unless a
    /// redirect is followed.
    public var onHTTPResponse: (@Sendable (Int, HTTPHeaders, [UInt8]) -> Void)? {
        get { lock.withLock { handlers.httpResponse } }
        set { lock.withLock { handlers.httpResponse = newValue } }
    }

    /// Connects to a `ws://` or `wss://` URL.
    ///
    /// - Parameters:
    ///   - url: `ws[s]://host[:port][/path][?query]` (port 80 or 443 by default); host names are resolved (IPv4 and IPv6, each
    ///     address tried in turn). Or, for a server on a Unix domain socket, ws's
    ///     `ws+unix:///path/to.sock:/request/path` (`wss+unix:` with TLS; `Host` is `localhost`).
    ///   - protocols: subprotocols to offer; the server may pick one of them.
    ///   - origin: an `Origin` header, as browsers send.
    ///   - headers: extra request headers.
    public func connect(url: String, protocols: [String] = [], origin: String? = nil, headers: HTTPHeaders = [:]) {
        let parsed: WebSocketURL
        do throws(WebSocketError) {
            parsed = try WebSocketURL(url)
        } catch {
            let failed = lock.withLock { handlers.connectFailed }
            group.next().async { failed?(error) }
            return
        }
        var headers = headers
        if let deflate = configuration.perMessageDeflate {
            headers.add(name: "Sec-WebSocket-Extensions", value: PerMessageDeflateNegotiation.clientOffer(deflate))
        }
        let session = ClientHandshakeSession(
            client: self, url: parsed, protocols: protocols, origin: origin, headers: headers, loop: group.next(),
            redirectsLeft: configuration.followRedirects ? configuration.maxRedirects : 0)
        lock.withLock { attempt = session }
        session.start()
    }

    /// Cancels a connect in progress; `onConnectFailed` reports `.notConnected` ("aborted").
    public func abort() {
        guard let session = lock.withLock({ attempt }) else { return }
        session.loop.execute { session.fail(WebSocketError(.notConnected, "aborted")) }
    }

    // MARK: From the session

    func sessionSucceeded(_ session: ClientHandshakeSession, _ connection: WebSocketConnection) {
        let handler = lock.withLock { () -> (@Sendable (WebSocketConnection) -> Void)? in
            if attempt === session { attempt = nil }
            return handlers.connect
        }
        handler?(connection)
    }

    func sessionFailed(_ session: ClientHandshakeSession, _ error: WebSocketError) {
        let handler = lock.withLock { () -> (@Sendable (WebSocketError) -> Void)? in
            if attempt === session { attempt = nil }
            return handlers.connectFailed
        }
        handler?(error)
    }

    func sessionRedirected(_ session: ClientHandshakeSession, to next: ClientHandshakeSession) {
        lock.withLock { if attempt === session { attempt = next } }
        next.start()
    }

    func httpResponse(status: Int, headers: HTTPHeaders, body: [UInt8]) {
        lock.withLock { handlers.httpResponse }?(status, headers, body)
    }
}
