/// A plain (non-WebSocket) HTTP request received on the server's port, for
/// ``WebSocketServer/onHTTPRequest``. Its body is complete (`Content-Length` bodies only).
public struct HTTPRequest: Sendable {
    /// The request method, e.g. `GET`.
    public var method: String
    /// The request target as sent, e.g. `/chat?room=1`.
    public var target: String
    /// The target's path, percent-decoded.
    public var path: String
    /// The target's query items, percent-decoded.
    public var queryItems: [WebSocketQueryItem]
    /// The request headers (case-insensitive lookup).
    public var headers: HTTPHeaders
    /// The request body (`Content-Length` bytes; empty without one).
    public var body: [UInt8]
    /// The TCP peer.
    public var remoteAddress: SocketAddress?
    /// Whether the request came over TLS (`https://`).
    public var isSecure = false

    init(head: HTTPRequestHead, body: [UInt8], remoteAddress: SocketAddress?) {
        method = head.method
        target = head.target
        (path, queryItems) = Self.split(target: head.target)
        headers = head.headers
        self.body = body
        self.remoteAddress = remoteAddress
    }

    static func split(target: String) -> (path: String, queryItems: [WebSocketQueryItem]) {
        let substring = target[...]
        guard let mark = substring.firstIndex(of: "?") else { return (PercentDecoding.decode(substring), []) }
        return (
            PercentDecoding.decode(substring[..<mark]),
            PercentDecoding.queryItems(substring[substring.index(after: mark)...])
        )
    }
}

/// The answer to an ``HTTPRequest``. `Content-Length` and `Connection` are set by the server.
///
/// ```swift
/// server.onHTTPRequest = { request in
///     request.path == "/" ? HTTPResponse(status: 200, contentType: "text/html; charset=utf-8", body: page)
///                         : HTTPResponse(status: 404, body: "not found")
/// }
/// ```
public struct HTTPResponse: Sendable {
    /// The HTTP status code.
    public var status: Int
    /// Response headers; `Content-Length` and `Connection` are set by the server.
    public var headers: HTTPHeaders
    /// The response body (not sent for `HEAD`).
    public var body: [UInt8]

    /// A response with raw bytes as its body.
    public init(status: Int, headers: HTTPHeaders = [:], body: [UInt8] = []) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    /// A text response; `Content-Type` defaults to plain UTF-8 text.
    public init(status: Int, contentType: String = "text/plain; charset=utf-8", body: String) {
        self.init(status: status, headers: ["Content-Type": contentType], body: Array(body.utf8))
    }
}
