/// A parsed `ws://` or `wss://` URL: host, port and the request target (path and query).
struct WebSocketURL: Sendable, Equatable {
    var secure: Bool
    var host: String
    var port: Int
    /// Path and query as sent in the request line, e.g. `/chat?room=1`.
    var resource: String

    var defaultPort: Int { secure ? 443 : 80 }

    /// Parses `ws://host[:port][/path][?query]` (IPv6 hosts in brackets). Fragments are dropped, as browsers do.
    init(_ string: String) throws(WebSocketError) {
        var rest = Substring(string)
        if let hash = rest.firstIndex(of: "#") { rest = rest[..<hash] }
        let lower = rest.lowercased()
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
            if after.first == ":" { portText = after.dropFirst() } else if !after.isEmpty {
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
            throw WebSocketError(.invalidArgument, "the path of \(string) has spaces or characters that need percent-encoding")
        }
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
        let shownHost = host.contains(":") ? "[\(host)]" : host
        let shownPort = port == defaultPort ? "" : ":\(port)"
        return "\(secure ? "wss" : "ws")://\(shownHost)\(shownPort)\(resource)"
    }
}
