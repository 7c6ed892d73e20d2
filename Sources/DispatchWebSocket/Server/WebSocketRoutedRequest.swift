/// A request a ``WebSocketRouter`` matched: the ``WebSocketRequest`` and the subprotocol the
/// mount matched (WebSocket-Node's `WebSocketRouterRequest`). Accept or reject it exactly once.
///
/// ```swift
/// try router.mount(path: "/echo", protocol: "*") { routed in
///     guard routed.request.origin == "https://example.com" else { return routed.reject(status: 403) }
///     let connection = try? routed.accept()
///     connection?.onMessage = { connection?.send($0) }
/// }
/// ```
public struct WebSocketRoutedRequest: Sendable {
    /// The request, with everything the client asked for.
    public let request: WebSocketRequest
    /// The offered subprotocol the mount matched, which ``accept(cookies:headers:configure:)``
    /// agrees on; `nil` when the client offered none.
    public let `protocol`: String?

    /// Accepts with ``protocol``; see ``WebSocketRequest/accept(protocol:cookies:headers:configure:)``.
    /// - Throws: ``WebSocketError`` `.invalidArgument` for an invalid cookie, `.notConnected`
    ///   when the request was already decided or the client left.
    @discardableResult
    public func accept(
        cookies: [WebSocketCookie] = [], headers: HTTPHeaders = [:], configure: ((WebSocketConnection) -> Void)? = nil
    ) throws(WebSocketError) -> WebSocketConnection {
        try request.accept(protocol: `protocol`, cookies: cookies, headers: headers, configure: configure)
    }

    /// Refuses the connection; see ``WebSocketRequest/reject(status:reason:headers:)``.
    public func reject(status: Int = 403, reason: String? = nil, headers: HTTPHeaders = [:]) {
        request.reject(status: status, reason: reason, headers: headers)
    }
}
