/// A cookie set with the handshake response (`Set-Cookie`), as WebSocket-Node's `accept` allows.
public struct WebSocketCookie: Sendable, Hashable {
    /// The cookie name (an HTTP token).
    public var name: String
    /// The value (RFC 6265 cookie-octets).
    public var value: String
    /// The `Path` attribute.
    public var path: String?
    /// The `Domain` attribute.
    public var domain: String?
    /// Seconds until the cookie expires.
    public var maxAge: Int?
    /// The `Secure` attribute: sent over HTTPS only.
    public var secure: Bool
    /// The `HttpOnly` attribute: hidden from page scripts.
    public var httpOnly: Bool

    /// Creates a cookie; it is validated when the response is written (`accept` throws on bad syntax).
    public init(
        name: String, value: String, path: String? = nil, domain: String? = nil, maxAge: Int? = nil,
        secure: Bool = false, httpOnly: Bool = false
    ) {
        self.name = name
        self.value = value
        self.path = path
        self.domain = domain
        self.maxAge = maxAge
        self.secure = secure
        self.httpOnly = httpOnly
    }

    /// The `Set-Cookie` value, or why the cookie cannot be sent (RFC 6265 §4.1.1 syntax).
    func headerValue() throws(WebSocketError) -> String {
        guard HTTPHeaders.isToken(name) else {
            throw WebSocketError(.invalidArgument, "cookie name \"\(name)\" is not an HTTP token")
        }
        guard value.utf8.allSatisfy(Self.isCookieValueByte) else {
            throw WebSocketError(.invalidArgument, "cookie value for \(name) has characters a cookie cannot carry")
        }
        for attribute in [path, domain].compactMap({ $0 })
        where !attribute.utf8.allSatisfy({ $0 >= 0x20 && $0 < 0x7F && $0 != UInt8(ascii: ";") }) {
            throw WebSocketError(.invalidArgument, "cookie attribute \"\(attribute)\" has invalid characters")
        }
        var result = "\(name)=\(value)"
        if let path { result += "; Path=\(path)" }
        if let domain { result += "; Domain=\(domain)" }
        if let maxAge { result += "; Max-Age=\(maxAge)" }
        if secure { result += "; Secure" }
        if httpOnly { result += "; HttpOnly" }
        return result
    }

    private static func isCookieValueByte(_ byte: UInt8) -> Bool {
        byte == 0x21 || (0x23...0x2B).contains(byte) || (0x2D...0x3A).contains(byte) || (0x3C...0x5B).contains(byte)
            || (0x5D...0x7E).contains(byte)
    }
}
