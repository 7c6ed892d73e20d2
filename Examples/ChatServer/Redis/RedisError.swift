/// What can go wrong talking to Redis.
public enum RedisError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The server's reply was not valid RESP, or exceeded ``RESPDecoder/Limits`` (the connection
    /// is closed and reconnected).
    case protocolViolation(String)
    /// The server answered the command with an error reply (`-ERR …`).
    case server(String)
    /// There is no connection to Redis now (commands are not queued while it is down).
    case notConnected(String)
    /// A `redis://` URL that cannot be used.
    case invalidURL(String)

    /// A readable message.
    public var description: String {
        switch self {
        case .protocolViolation(let text): return "redis protocol error: \(text)"
        case .server(let text): return "redis: \(text)"
        case .notConnected(let text): return "redis not connected: \(text)"
        case .invalidURL(let text): return "invalid redis URL: \(text)"
        }
    }
}
