/// A client's request to open a WebSocket: everything it asked for, and the decision.
///
/// Delivered to ``WebSocketServer/onRequest``. Call ``accept(protocol:cookies:headers:configure:)`` or
/// ``reject(status:reason:headers:)`` exactly once, from any thread, during the event or later
/// (an app may look something up first). Until then the socket is not read; the server's
/// `handshakeTimeout` still bounds the wait.
///
/// ```swift
/// server.onRequest = { request in
///     guard request.origin == "https://example.com" else { return request.reject(status: 403) }
///     let connection = try? request.accept(protocol: request.requestedProtocols.first)
///     connection?.onMessage = { print($0) }
/// }
/// ```
public final class WebSocketRequest: @unchecked Sendable {
    // @unchecked Sendable: everything is immutable except `decided`, which is guarded by `lock`.

    /// The `Host` header.
    public let host: String
    /// The request target as sent, e.g. `/chat?room=lobby`.
    public let resource: String
    /// The target's path, percent-decoded.
    public let path: String
    /// The target's query items, percent-decoded, in order.
    public let queryItems: [WebSocketQueryItem]
    /// The `Origin` header (browsers always send it).
    public let origin: String?
    /// The subprotocols the client offered, in its order of preference.
    public let requestedProtocols: [String]
    /// The extensions the client offered, with their parameters, in its order. The server
    /// negotiates `permessage-deflate` among them when ``perMessageDeflate`` is set.
    public let requestedExtensions: [WebSocketExtensionOffer]
    /// All request headers (case-insensitive lookup).
    public let headers: HTTPHeaders
    /// The cookies the client sent (`Cookie` header), by name; the first of duplicates wins.
    public let cookies: [String: String]
    /// The client's address: the TCP peer, or the first `X-Forwarded-For` entry when the server
    /// trusts that header (``WebSocketServer/Configuration/trustXForwardedFor``).
    public let remoteAddress: String
    /// Every address on the way: the `X-Forwarded-For` entries (when trusted) and the TCP peer last.
    public let remoteAddresses: [String]
    /// The TCP peer's address and port.
    public let socketAddress: SocketAddress?
    /// `Sec-WebSocket-Version` (always 13: other versions are rejected with 426 before this).
    public let webSocketVersion: Int
    /// Whether the request came over TLS (`wss://`).
    public let isSecure: Bool
    /// The host name the client asked for with TLS SNI; `nil` without TLS or SNI.
    public let serverName: String?
    /// The client's certificate, verified, when the server asks for one
    /// (``TLSServerConfiguration/clientCertificates``) and the client sent one.
    public let peerCertificate: WebSocketPeerCertificate?

    private let key: String
    let session: HTTPServerSession
    private let lock = Lock()
    private var decided = false
    private var deflateOptions: PerMessageDeflateOptions?

    /// The permessage-deflate settings ``accept(protocol:cookies:headers:configure:)`` will
    /// negotiate with, `nil` to decline the client's offers. Starts as the server's
    /// ``WebSocketServer/Configuration/perMessageDeflate``; set it before accepting, e.g. to
    /// compress only for some paths. The client must have offered the extension for it to apply.
    public var perMessageDeflate: PerMessageDeflateOptions? {
        get { lock.withLock { deflateOptions } }
        set { lock.withLock { deflateOptions = newValue } }
    }

    init(head: HTTPRequestHead, upgrade: ValidatedUpgrade, session: HTTPServerSession, trustXForwardedFor: Bool) {
        host = upgrade.host
        resource = head.target
        (path, queryItems) = HTTPRequest.split(target: head.target)
        origin = upgrade.origin
        requestedProtocols = upgrade.requestedProtocols
        requestedExtensions = upgrade.requestedExtensions
        headers = head.headers
        webSocketVersion = upgrade.version
        key = upgrade.key
        self.session = session
        deflateOptions = session.server.configuration.perMessageDeflate
        socketAddress = session.channel.peerAddress
        isSecure = session.channel.tls != nil
        serverName = session.channel.tlsSession?.serverName
        peerCertificate = session.channel.tlsSession?.peerCertificate

        var cookies: [String: String] = [:]
        for line in head.headers.values(for: "Cookie") {
            for pair in line.split(separator: ";") {
                guard let equals = pair.firstIndex(of: "=") else { continue }
                let name = String(pair[..<equals].trimmingOWS)
                if !name.isEmpty && cookies[name] == nil {
                    cookies[name] = String(pair[pair.index(after: equals)...].trimmingOWS)
                }
            }
        }
        self.cookies = cookies

        let peer = socketAddress?.host ?? ""
        if trustXForwardedFor {
            let forwarded = head.headers.tokens(for: "X-Forwarded-For").map(String.init)
            remoteAddresses = forwarded + [peer]
        } else {
            remoteAddresses = [peer]
        }
        remoteAddress = remoteAddresses[0]
    }

    /// Accepts the connection and returns it.
    ///
    /// Called inside ``WebSocketServer/onRequest`` (on the loop queue), events start only after
    /// the handler returns, so handlers set on the returned connection miss nothing. Called later
    /// from another thread, the first message may race with code after `accept` returns: set the
    /// handlers in `configure`, which runs before the connection can deliver anything (or in
    /// ``WebSocketServer/onConnect``).
    ///
    /// ```swift
    /// try request.accept(protocol: "chat") { connection in
    ///     connection.onMessage = { connection.send($0) }
    /// }
    /// ```
    ///
    /// - Parameters:
    ///   - protocol: the subprotocol to agree on; must be one of ``requestedProtocols``.
    ///   - cookies: cookies to set with the response.
    ///   - headers: extra response headers.
    ///   - configure: sets up the connection (its event handlers) before it starts.
    /// - Throws: ``WebSocketError`` `.invalidArgument` for a protocol the client did not offer or
    ///   an invalid cookie, `.notConnected` when the request was already decided or the client left.
    @discardableResult
    public func accept(
        protocol: String? = nil, cookies: [WebSocketCookie] = [], headers: HTTPHeaders = [:],
        configure: ((WebSocketConnection) -> Void)? = nil
    ) throws(WebSocketError) -> WebSocketConnection {
        if let `protocol`, !requestedProtocols.contains(`protocol`) {
            throw WebSocketError(
                .invalidArgument,
                "protocol \"\(`protocol`)\" was not offered by the client (offered: \(requestedProtocols))")
        }
        var extra = headers
        for cookie in cookies {
            extra.add(name: "Set-Cookie", value: try cookie.headerValue())
        }
        try decide()
        let deflate = perMessageDeflate.flatMap {
            PerMessageDeflateNegotiation.serverAccept(offers: requestedExtensions, options: $0)
        }
        if let deflate { extra.add(name: "Sec-WebSocket-Extensions", value: deflate.header) }
        let response = ServerHandshake.acceptResponse(key: key, protocol: `protocol`, extraHeaders: extra)
        let connection = WebSocketConnection(
            channel: session.channel, role: .server, protocol: `protocol`,
            configuration: session.server.configuration.connection, deflate: deflate)
        configure?(connection)
        session.completeUpgrade(connection, response: response)
        return connection
    }

    /// Refuses the connection with an HTTP error response and closes the socket.
    /// - Parameters:
    ///   - status: the HTTP status, 403 by default.
    ///   - reason: the response body (plain text); the status's reason phrase when `nil`.
    ///   - headers: extra response headers (e.g. `WWW-Authenticate` with a 401).
    public func reject(status: Int = 403, reason: String? = nil, headers: HTTPHeaders = [:]) {
        guard (try? decide()) != nil else { return }
        session.rejectUpgrade(status: status, reason: reason, headers: headers)
    }

    private func decide() throws(WebSocketError) {
        let first = lock.withLock { () -> Bool in
            defer { decided = true }
            return !decided
        }
        guard first else { throw WebSocketError(.notConnected, "the request was already accepted or rejected") }
    }
}
