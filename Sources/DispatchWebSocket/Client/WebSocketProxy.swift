#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// An HTTP proxy that the client reaches the server through, with an HTTP `CONNECT` tunnel
/// (RFC 9110 §9.3.6), as `ws` users do with an agent and corporate networks require.
///
/// The client connects to the proxy, asks it for a tunnel to the WebSocket server's host and
/// port, and then runs the `wss://` TLS handshake (certificate and host name checked against the
/// server, not the proxy) or the `ws://` upgrade inside the tunnel. The proxy itself is spoken
/// to in plain HTTP (`http://` proxy URLs; TLS to the proxy is not supported). The connection's
/// ``WebSocketConnection/remoteAddress`` is then the proxy's address: it is the socket's peer.
///
/// ```swift
/// var configuration = WebSocketClient.Configuration()
/// configuration.proxy = try WebSocketProxy(url: "http://alice:secret@proxy.example:3128")
/// configuration.proxy?.noProxy = ["localhost", ".internal.example"]
/// let client = WebSocketClient(configuration: configuration)
/// ```
///
/// A proxy that refuses the tunnel fails the connect with ``WebSocketError/Code/proxyFailed``
/// and its status in ``WebSocketError/httpStatus`` (e.g. 407 for missing or wrong credentials).
public struct WebSocketProxy: Sendable, Equatable {
    /// The proxy's host name or IP address (an IPv6 address without brackets).
    public var host: String
    /// The proxy's port.
    public var port: Int
    /// The user name for `Proxy-Authorization: Basic` (RFC 7617), or `nil` to send none. It
    /// must not contain `:`.
    public var username: String?
    /// The password for `Proxy-Authorization: Basic`; used only with a ``username``.
    public var password: String?
    /// Extra headers of the `CONNECT` request (e.g. another `Proxy-Authorization` scheme);
    /// a line that cannot be written safely is dropped.
    public var headers: HTTPHeaders
    /// Hosts reached directly, `no_proxy` style: `"*"` (every host), a host name or IP address
    /// (`"localhost"`, `"10.0.0.7"`), or a domain that also covers its subdomains
    /// (`"example.com"` or `".example.com"`), each optionally with `:port`. Compared without
    /// case; IP ranges (CIDR) are not supported.
    public var noProxy: [String]

    /// A proxy at `host:port`.
    public init(
        host: String, port: Int, username: String? = nil, password: String? = nil, headers: HTTPHeaders = [:],
        noProxy: [String] = []
    ) {
        self.host = host
        self.port = port
        self.username = username
        self.password = password
        self.headers = headers
        self.noProxy = noProxy
    }

    /// Parses `http://[user[:password]@]host[:port][/]` (also without `http://`, as `curl`
    /// allows; port 80 by default; percent-escapes in the user and password are decoded).
    ///
    /// - Throws: ``WebSocketError/Code/invalidArgument`` for another scheme (such as
    ///   `https://` or `socks5://`), a missing host, a bad port, or a user name with `:`.
    public init(url: String, noProxy: [String] = []) throws(WebSocketError) {
        var rest = Substring(url)
        if let colon = rest.firstIndex(of: ":"), rest[colon...].hasPrefix("://") {
            guard rest[..<colon].lowercased() == "http" else {
                throw WebSocketError(.invalidArgument, "proxy URL \(url): only http:// proxies are supported")
            }
            rest = rest[colon...].dropFirst(3)
        }
        if let slash = rest.firstIndex(of: "/") {
            guard rest[slash...].allSatisfy({ $0 == "/" }) else {
                throw WebSocketError(.invalidArgument, "proxy URL \(url) has a path")
            }
            rest = rest[..<slash]
        }
        var username: String?
        var password: String?
        if let at = rest.lastIndex(of: "@") {
            let userinfo = rest[..<at]
            rest = rest[rest.index(after: at)...]
            if let colon = userinfo.firstIndex(of: ":") {
                username = PercentDecoding.decode(userinfo[..<colon])
                password = PercentDecoding.decode(userinfo[userinfo.index(after: colon)...])
            } else {
                username = PercentDecoding.decode(userinfo)
            }
        }
        // The authority has the same shape as a ws:// URL's; reuse that parser.
        let authority: WebSocketURL
        do throws(WebSocketError) {
            authority = try WebSocketURL("ws://" + rest)
        } catch {
            throw WebSocketError(.invalidArgument, "proxy URL \(url): \(error.message)")
        }
        guard authority.resource == "/" else {
            throw WebSocketError(.invalidArgument, "proxy URL \(url) has a query")
        }
        self.init(host: authority.host, port: authority.port, username: username, password: password, noProxy: noProxy)
        if let username, username.contains(":") {
            throw WebSocketError(.invalidArgument, "proxy URL \(url): a Basic user name cannot contain \":\"")
        }
    }

    /// The proxy the environment names for a `ws://` (`secure == false`) or `wss://` URL, `nil`
    /// when it names none, as `curl` reads it: `https_proxy` or `HTTPS_PROXY` for `wss://`,
    /// `http_proxy` for `ws://` (never `HTTP_PROXY`, which CGI servers set from a request's
    /// `Proxy` header), then `all_proxy` or `ALL_PROXY`; ``noProxy`` comes from `no_proxy` or
    /// `NO_PROXY` (comma-separated). Lowercase names win. Empty values count as unset.
    ///
    /// The client reads the environment only when
    /// ``WebSocketClient/Configuration/proxyFromEnvironment`` is on.
    ///
    /// - Throws: ``WebSocketError/Code/invalidArgument`` when the variable is not a proxy URL
    ///   ``init(url:noProxy:)`` accepts.
    public static func fromEnvironment(secure: Bool) throws(WebSocketError) -> WebSocketProxy? {
        try fromEnvironment(secure: secure) { name in getenv(name).map { String(cString: $0) } }
    }

    /// ``fromEnvironment(secure:)`` with `lookup` in place of `getenv` (for tests).
    static func fromEnvironment(secure: Bool, lookup: (String) -> String?) throws(WebSocketError) -> WebSocketProxy? {
        func first(_ names: [String]) -> String? {
            for name in names { if let value = lookup(name), !value.isEmpty { return value } }
            return nil
        }
        let names = (secure ? ["https_proxy", "HTTPS_PROXY"] : ["http_proxy"]) + ["all_proxy", "ALL_PROXY"]
        guard let value = first(names) else { return nil }
        let exclusions =
            first(["no_proxy", "NO_PROXY"])?
            .split(separator: ",")
            .map { String($0.trimmingWhitespace()) }
            .filter { !$0.isEmpty } ?? []
        return try WebSocketProxy(url: value, noProxy: exclusions)
    }

    /// Whether ``noProxy`` says to reach `host:port` directly.
    public func bypasses(host: String, port: Int) -> Bool {
        let host = host.lowercased()
        return noProxy.contains { entry in
            var pattern = Substring(entry.lowercased())
            if pattern == "*" { return true }
            // "host:port" (an IPv6 address has colons of its own: only "[addr]:port" has a port).
            if pattern.first == "[" {
                guard let close = pattern.firstIndex(of: "]") else { return false }
                let after = pattern[pattern.index(after: close)...]
                if after.first == ":" {
                    guard Int(after.dropFirst()) == port else { return false }
                }
                pattern = pattern[pattern.index(after: pattern.startIndex)..<close]
            } else if pattern.filter({ $0 == ":" }).count == 1, let colon = pattern.firstIndex(of: ":") {
                guard Int(pattern[pattern.index(after: colon)...]) == port else { return false }
                pattern = pattern[..<colon]
            }
            if pattern.hasPrefix("*.") { pattern = pattern.dropFirst() }
            if pattern.hasPrefix(".") { pattern = pattern.dropFirst() }
            guard !pattern.isEmpty else { return false }
            return host == pattern || host.hasSuffix("." + pattern)
        }
    }
}

extension WebSocketClient.Configuration {
    /// The proxy for a connection to `url`: ``proxy`` (or the environment's, when
    /// ``proxyFromEnvironment``), `nil` when there is none or `url`'s host bypasses it.
    func proxy(for url: WebSocketURL) throws(WebSocketError) -> WebSocketProxy? {
        var chosen = proxy
        if chosen == nil && proxyFromEnvironment { chosen = try WebSocketProxy.fromEnvironment(secure: url.secure) }
        guard let chosen, !chosen.bypasses(host: url.host, port: url.port) else { return nil }
        return chosen
    }
}

extension Substring {
    fileprivate func trimmingWhitespace() -> Substring {
        var text = self
        while text.first == " " || text.first == "\t" { text = text.dropFirst() }
        while text.last == " " || text.last == "\t" { text = text.dropLast() }
        return text
    }
}
