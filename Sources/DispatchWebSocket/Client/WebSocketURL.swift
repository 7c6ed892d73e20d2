/// A parsed `ws://` or `wss://` URL: host, port and the request target (path and query); or a
/// `ws+unix:` / `wss+unix:` URL, which connects to a Unix domain socket instead.
struct WebSocketURL: Sendable, Equatable {
    var secure: Bool
    var host: String
    var port: Int
    /// Path and query as sent in the request line, e.g. `/chat?room=1`.
    var resource: String
    /// The Unix domain socket to connect to (`ws+unix:`), `nil` for TCP.
    var unixSocketPath: String?

    var defaultPort: Int { secure ? 443 : 80 }

    /// Parses `ws://host[:port][/path][?query]` (IPv6 hosts in brackets). Fragments are dropped, as browsers do.
    init(_ string: String) throws(WebSocketError) {
        var rest = Substring(string)
        if let hash = rest.firstIndex(of: "#") { rest = rest[..<hash] }
        let lower = rest.lowercased()
        if lower.hasPrefix("ws+unix:") || lower.hasPrefix("wss+unix:") {
            self = try Self.parse(unix: rest, secure: lower.hasPrefix("wss"), whole: string)
            return
        }
        if lower.hasPrefix("ws://") {
            secure = false
            rest = rest.dropFirst(5)
        } else if lower.hasPrefix("wss://") {
            secure = true
            rest = rest.dropFirst(6)
        } else {
            throw WebSocketError(.invalidArgument, "\(string) is not a ws:// or wss:// URL")
        }
        let authorityEnd = rest.firstIndex { $0 == "/" || $0 == "?" } ?? rest.endIndex
        var authority = rest[..<authorityEnd]
        let target = rest[authorityEnd...]
        resource = target.isEmpty ? "/" : (target.first == "?" ? "/" + target : String(target))
        if let at = authority.lastIndex(of: "@") { authority = authority[authority.index(after: at)...] }
        var portText: Substring?
        if authority.first == "[" {
            guard let close = authority.firstIndex(of: "]") else {
                throw WebSocketError(.invalidArgument, "unterminated IPv6 address in \(string)")
            }
            host = String(authority[authority.index(after: authority.startIndex)..<close])
            let after = authority[authority.index(after: close)...]
            if after.first == ":" {
                portText = after.dropFirst()
            } else if !after.isEmpty {
                throw WebSocketError(.invalidArgument, "unexpected characters after the host in \(string)")
            }
        } else if let colon = authority.lastIndex(of: ":") {
            host = String(authority[..<colon])
            portText = authority[authority.index(after: colon)...]
        } else {
            host = String(authority)
        }
        guard !host.isEmpty else { throw WebSocketError(.invalidArgument, "no host in \(string)") }
        if let portText {
            guard let value = Int(portText), (1...65535).contains(value) else {
                throw WebSocketError(.invalidArgument, "invalid port in \(string)")
            }
            port = value
        } else {
            port = secure ? 443 : 80
        }
        guard resource.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else {
            throw WebSocketError(
                .invalidArgument, "the path of \(string) has spaces or characters that need percent-encoding")
        }
    }

    /// Parses ws's spelling `ws+unix:/path/to.sock:/request/path?query` (also with `//` or
    /// `//host` before the socket path; the host, `localhost` by default, is only the `Host`
    /// header). The socket path ends at the first `:`; without one the request path is `/`.
    private static func parse(unix string: Substring, secure: Bool, whole: String) throws(WebSocketError)
        -> WebSocketURL
    {
        var rest = string[string.index(after: string.firstIndex(of: ":")!)...]
        var authority: Substring = ""
        if rest.hasPrefix("//") {
            rest = rest.dropFirst(2)
            let slash = rest.firstIndex(of: "/") ?? rest.endIndex
            authority = rest[..<slash]
            rest = rest[slash...]
        }
        let socketEnd = rest.firstIndex { $0 == ":" || $0 == "?" } ?? rest.endIndex
        let socketPath = String(rest[..<socketEnd])
        guard !socketPath.isEmpty else {
            throw WebSocketError(.invalidArgument, "no socket path in \(whole)")
        }
        _ = try SocketAddress(unixPath: socketPath)  // too long for sun_path fails here, not at connect
        var target = rest[socketEnd...]
        if target.first == ":" { target = target.dropFirst() }
        let resource = target.isEmpty ? "/" : (target.first == "/" ? String(target) : "/" + target)
        guard resource.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else {
            throw WebSocketError(
                .invalidArgument, "the path of \(whole) has spaces or characters that need percent-encoding")
        }
        return WebSocketURL(
            secure: secure, host: authority.isEmpty ? "localhost" : String(authority), port: secure ? 443 : 80,
            resource: resource, unixSocketPath: socketPath)
    }

    private init(secure: Bool, host: String, port: Int, resource: String, unixSocketPath: String?) {
        self.secure = secure
        self.host = host
        self.port = port
        self.resource = resource
        self.unixSocketPath = unixSocketPath
    }

    /// Resolves a redirect's `Location` against this URL (absolute `ws`/`http` URLs, or paths).
    func resolving(location: String) throws(WebSocketError) -> WebSocketURL {
        let lower = location.lowercased()
        if lower.hasPrefix("ws://") || lower.hasPrefix("wss://") { return try WebSocketURL(location) }
        if lower.hasPrefix("http://") { return try WebSocketURL("ws://" + location.dropFirst(7)) }
        if lower.hasPrefix("https://") { return try WebSocketURL("wss://" + location.dropFirst(8)) }
        var copy = self
        if location.hasPrefix("/") {
            copy.resource = location
        } else {
            let base = resource[..<(resource.firstIndex(of: "?") ?? resource.endIndex)]
            let directory = base[...(base.lastIndex(of: "/") ?? base.startIndex)]
            copy.resource = String(directory) + location
        }
        return copy
    }

    var description: String {
        if let unixSocketPath { return "\(secure ? "wss" : "ws")+unix:\(unixSocketPath):\(resource)" }
        let shownHost = host.contains(":") ? "[\(host)]" : host
        let shownPort = port == defaultPort ? "" : ":\(port)"
        return "\(secure ? "wss" : "ws")://\(shownHost)\(shownPort)\(resource)"
    }
}
