/// Where a Redis server is: `redis://[[USER]:PASSWORD@]HOST[:PORT][/DB]` (port 6379, database 0
/// by default; IPv6 hosts in brackets).
public struct RedisURL: Sendable, Equatable {
    /// A host name or numeric address.
    public var host: String
    /// The TCP port (default 6379).
    public var port: Int
    /// The database `SELECT`ed after connecting (default 0).
    public var database: Int
    /// The ACL user for `AUTH` (Redis 6+); `nil` authenticates as `default`.
    public var username: String?
    /// The password for `AUTH`; `nil` sends no `AUTH`.
    public var password: String?

    /// A location from its parts.
    public init(host: String, port: Int = 6379, database: Int = 0, username: String? = nil, password: String? = nil) {
        (self.host, self.port, self.database, self.username, self.password) = (host, port, database, username, password)
    }

    /// Parses `redis://[[USER]:PASSWORD@]HOST[:PORT][/DB]`; anything else throws
    /// ``RedisError/invalidURL(_:)``.
    public init(parsing text: String) throws(RedisError) {
        guard text.hasPrefix("redis://") else { throw .invalidURL("\(text): only redis:// is supported") }
        var rest = Substring(text.dropFirst("redis://".count))
        var database = 0
        if let slash = rest.firstIndex(of: "/") {
            let path = rest[rest.index(after: slash)...]
            rest = rest[..<slash]
            if !path.isEmpty {
                guard let number = Int(path), number >= 0 else {
                    throw .invalidURL("\(text): the database must be a number")
                }
                database = number
            }
        }
        var username: String?
        var password: String?
        if let at = rest.lastIndex(of: "@") {
            let credentials = rest[..<at]
            rest = rest[rest.index(after: at)...]
            if let colon = credentials.firstIndex(of: ":") {
                let user = credentials[..<colon]
                username = user.isEmpty ? nil : String(user)
                password = String(credentials[credentials.index(after: colon)...])
            } else {
                password = String(credentials)
            }
        }
        var host = String(rest)
        var port = 6379
        if rest.hasPrefix("[") {
            guard let close = rest.firstIndex(of: "]") else { throw .invalidURL("\(text): unclosed [") }
            host = String(rest[rest.index(after: rest.startIndex)..<close])
            let after = rest[rest.index(after: close)...]
            if after.hasPrefix(":") {
                guard let number = Int(after.dropFirst()) else { throw .invalidURL("\(text): bad port") }
                port = number
            } else if !after.isEmpty {
                throw .invalidURL("\(text): unexpected \(after)")
            }
        } else if let colon = rest.lastIndex(of: ":") {
            host = String(rest[..<colon])
            guard let number = Int(rest[rest.index(after: colon)...]) else { throw .invalidURL("\(text): bad port") }
            port = number
        }
        guard !host.isEmpty else { throw .invalidURL("\(text): no host") }
        guard (1...65535).contains(port) else { throw .invalidURL("\(text): the port must be 1–65535") }
        self.init(host: host, port: port, database: database, username: username, password: password)
    }
}
