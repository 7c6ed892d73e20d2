/// One value of the Redis serialization protocol, RESP2 and RESP3
/// (https://redis.io/docs/latest/develop/reference/protocol-spec/).
public enum RESPValue: Sendable, Hashable {
    /// `+OK`
    case simpleString(String)
    /// `-ERR …` (and RESP3 blob errors `!`)
    case error(String)
    /// `:42`
    case integer(Int64)
    /// `$5\r\nhello`; RESP3 verbatim strings `=` arrive here without their format prefix.
    case bulkString([UInt8])
    /// `*2\r\n…`
    case array([RESPValue])
    /// RESP2's `$-1` and `*-1`, RESP3's `_`
    case null
    /// RESP3 `#t` / `#f`
    case boolean(Bool)
    /// RESP3 `,3.14` (also `inf`, `-inf`, `nan`)
    case double(Double)
    /// RESP3 `(` big number, kept as its decimal text
    case bigNumber(String)
    /// RESP3 `%` map, as key-value pairs in the server's order
    case map([RESPPair])
    /// RESP3 `~` set
    case set([RESPValue])
    /// RESP3 `>` push (pub/sub messages, invalidations): not a reply to a command
    case push([RESPValue])

    /// The text of a simple, bulk or verbatim string.
    public var string: String? {
        switch self {
        case .simpleString(let text): return text
        case .bulkString(let bytes): return String(decoding: bytes, as: UTF8.self)
        default: return nil
        }
    }

    /// The elements of an array, set or push.
    public var elements: [RESPValue]? {
        switch self {
        case .array(let items), .set(let items), .push(let items): return items
        default: return nil
        }
    }
}

/// A key and its value in a RESP3 map.
public struct RESPPair: Sendable, Hashable {
    /// The key.
    public var key: RESPValue
    /// Its value.
    public var value: RESPValue
}
