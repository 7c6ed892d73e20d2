/// Routes WebSocket requests to handlers by path and subprotocol, like WebSocket-Node's
/// `WebSocketRouter` (and ws's `path` / `shouldHandle`).
///
/// ```swift
/// let router = WebSocketRouter()
/// try router.mount(path: "/chat", protocol: "chat") { request in
///     let connection = try? request.accept()          // agrees on "chat"
///     connection?.onMessage = { connection?.send($0) }
/// }
/// try router.mount(pathPrefix: "/rooms", protocol: "*") { request in
///     _ = try? request.accept()                     // the client's first offer, or none
/// }
/// router.attach(to: server)
/// ```
///
/// ## Matching
/// The client's offered subprotocols are tried in its order of preference; for each, the mounts
/// are tried in the order they were mounted. The first mount whose path matches and whose
/// protocol is the offered one (exactly, case-sensitively) or `"*"` gets the request, with that
/// protocol to accept. A client that offers no protocol matches mounts with protocol `nil` or
/// `"*"`, and is accepted without one. A mount with protocol `nil` never takes a client that
/// offered protocols. Paths are compared with ``WebSocketRequest/path`` (percent-decoded, no
/// query).
///
/// Without a match the request goes to the fallback: the server's `onRequest` as it was when the
/// router was attached, or a 404 rejection when there was none.
///
/// ## Threading
/// Mounting and unmounting are safe from any thread, also while requests are routed; a request
/// sees the mounts as they were when it arrived. Handlers run where ``WebSocketServer/onRequest``
/// runs: on the loop queue of the connection.
public final class WebSocketRouter: @unchecked Sendable {
    // @unchecked Sendable: `routes` and `nextID` are guarded by `lock`.

    /// Identifies one mount, for ``unmount(_:)``.
    public struct MountID: Hashable, Sendable {
        fileprivate let value: Int
    }

    /// What a mount matches the request path against.
    private enum PathPattern {
        case exact(String)
        case prefix(String)
        case predicate(@Sendable (WebSocketRequest) -> Bool)

        func matches(_ request: WebSocketRequest) -> Bool {
            switch self {
            case .exact(let path): return request.path == path
            case .prefix(let base): return request.path == base || request.path.hasPrefix(base + "/")
            case .predicate(let predicate): return predicate(request)
            }
        }
    }

    private struct Route {
        let id: MountID
        let pattern: PathPattern
        /// `nil`: clients that offer no protocol; `"*"`: any.
        let `protocol`: String?
        let handler: @Sendable (WebSocketRoutedRequest) -> Void
    }

    private let lock = Lock()
    private var routes: [Route] = []
    private var nextID = 0

    /// Creates a router with no mounts.
    public init() {}

    // MARK: Mounting

    /// Routes requests for exactly `path` (e.g. `"/chat"`) offering `protocol`.
    ///
    /// - Parameters:
    ///   - path: the path, starting with `/`, compared with ``WebSocketRequest/path``.
    ///   - protocol: the subprotocol to agree on, `"*"` for whatever the client offers first (or
    ///     none), `nil` for clients that offer none. Default `nil`.
    ///   - handler: gets the request with the matched protocol; it must accept or reject it.
    /// - Throws: ``WebSocketError`` `.invalidArgument` for a path not starting with `/` or a
    ///   protocol that is not an HTTP token.
    @discardableResult
    public func mount(
        path: String, protocol: String? = nil, handler: @escaping @Sendable (WebSocketRoutedRequest) -> Void
    ) throws(WebSocketError) -> MountID {
        guard path.hasPrefix("/") else {
            throw WebSocketError(.invalidArgument, "mount path \"\(path)\" must start with /")
        }
        return try add(.exact(path), protocol: `protocol`, handler: handler)
    }

    /// Routes requests for `pathPrefix` and everything below it, by whole segments: `"/rooms"`
    /// matches `/rooms` and `/rooms/7` but not `/roomservice`; `"/"` matches every path.
    ///
    /// - Parameters:
    ///   - pathPrefix: the prefix, starting with `/` (a trailing `/` changes nothing).
    ///   - protocol: as for ``mount(path:protocol:handler:)``.
    ///   - handler: gets the request with the matched protocol; it must accept or reject it.
    /// - Throws: ``WebSocketError`` `.invalidArgument` for a prefix not starting with `/` or a
    ///   protocol that is not an HTTP token.
    @discardableResult
    public func mount(
        pathPrefix: String, protocol: String? = nil, handler: @escaping @Sendable (WebSocketRoutedRequest) -> Void
    ) throws(WebSocketError) -> MountID {
        guard pathPrefix.hasPrefix("/") else {
            throw WebSocketError(.invalidArgument, "mount prefix \"\(pathPrefix)\" must start with /")
        }
        var base = Substring(pathPrefix)
        while base.hasSuffix("/") { base = base.dropLast() }
        return try add(.prefix(String(base)), protocol: `protocol`, handler: handler)
    }

    /// Routes requests for which `predicate` holds (ws's `shouldHandle`), e.g. by query item or
    /// header. The predicate runs on the loop queue for each request routed: keep it quick.
    ///
    /// - Parameters:
    ///   - predicate: whether this mount takes the request (its protocol is checked after).
    ///   - protocol: as for ``mount(path:protocol:handler:)``.
    ///   - handler: gets the request with the matched protocol; it must accept or reject it.
    /// - Throws: ``WebSocketError`` `.invalidArgument` for a protocol that is not an HTTP token.
    @discardableResult
    public func mount(
        where predicate: @escaping @Sendable (WebSocketRequest) -> Bool, protocol: String? = nil,
        handler: @escaping @Sendable (WebSocketRoutedRequest) -> Void
    ) throws(WebSocketError) -> MountID {
        try add(.predicate(predicate), protocol: `protocol`, handler: handler)
    }

    private func add(
        _ pattern: PathPattern, protocol: String?, handler: @escaping @Sendable (WebSocketRoutedRequest) -> Void
    ) throws(WebSocketError) -> MountID {
        if let `protocol`, `protocol` != "*", !HTTPHeaders.isToken(Substring(`protocol`)) {
            throw WebSocketError(.invalidArgument, "protocol \"\(`protocol`)\" is not a valid subprotocol token")
        }
        return lock.withLock {
            let id = MountID(value: nextID)
            nextID += 1
            routes.append(Route(id: id, pattern: pattern, protocol: `protocol`, handler: handler))
            return id
        }
    }

    /// Removes one mount. Returns whether it was still mounted.
    @discardableResult
    public func unmount(_ id: MountID) -> Bool {
        lock.withLock {
            let before = routes.count
            routes.removeAll { $0.id == id }
            return routes.count != before
        }
    }

    /// Removes the mounts of exactly `path` with `protocol` (WebSocket-Node's `unmount`); prefix
    /// and predicate mounts stay. Returns how many were removed.
    @discardableResult
    public func unmount(path: String, protocol: String? = nil) -> Int {
        lock.withLock {
            let before = routes.count
            routes.removeAll { route in
                guard case .exact(let mounted) = route.pattern else { return false }
                return mounted == path && route.protocol == `protocol`
            }
            return before - routes.count
        }
    }

    /// Removes every mount.
    public func unmountAll() {
        lock.withLock { routes.removeAll() }
    }

    // MARK: Routing

    /// Hands `request` to the first matching mount's handler and returns `true`, or returns
    /// `false` without touching the request when nothing matches.
    @discardableResult
    public func route(_ request: WebSocketRequest) -> Bool {
        let routes = lock.withLock { self.routes }
        let offers: [String?] = request.requestedProtocols.isEmpty ? [nil] : request.requestedProtocols
        for offer in offers {
            for route in routes where route.protocol == "*" || route.protocol == offer {
                guard route.pattern.matches(request) else { continue }
                route.handler(WebSocketRoutedRequest(request: request, protocol: offer))
                return true
            }
        }
        return false
    }

    /// Makes the router the server's request handler, falling back to the server's current
    /// ``WebSocketServer/onRequest`` (another router, say) when nothing matches, or rejecting
    /// with 404 when there is none.
    ///
    /// Attach before ``WebSocketServer/listen(host:port:)``; setting `onRequest` afterwards
    /// replaces the router. Several routers attached in turn form a chain (the last attached is
    /// asked first), and one router can be attached to several servers. Not used when the
    /// server has ``WebSocketServer/Configuration/autoAcceptConnections``.
    public func attach(to server: WebSocketServer) {
        let fallback = server.onRequest
        server.onRequest = { [self] request in
            guard !route(request) else { return }
            if let fallback { return fallback(request) }
            request.reject(status: 404, reason: "no WebSocket handler for \(request.path) with the offered protocols")
        }
    }
}
