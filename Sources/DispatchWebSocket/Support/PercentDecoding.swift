/// Decoding of the path and query of a request target (RFC 3986 §2.1), without Foundation.
enum PercentDecoding {
    /// Decodes `%XX` escapes (and `+` as space when `plusIsSpace`, as in form-encoded queries).
    /// Invalid escapes are kept literally; bytes that do not form UTF-8 are repaired with U+FFFD.
    static func decode(_ text: Substring, plusIsSpace: Bool = false) -> String {
        guard text.utf8.contains(where: { $0 == UInt8(ascii: "%") || (plusIsSpace && $0 == UInt8(ascii: "+")) }) else {
            return String(text)
        }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(text.utf8.count)
        var iterator = Array(text.utf8)[...]
        while let byte = iterator.popFirst() {
            if byte == UInt8(ascii: "%"), iterator.count >= 2,
                let high = hexValue(iterator[iterator.startIndex]),
                let low = hexValue(iterator[iterator.startIndex + 1])
            {
                bytes.append(high << 4 | low)
                iterator.removeFirst(2)
            } else if plusIsSpace && byte == UInt8(ascii: "+") {
                bytes.append(UInt8(ascii: " "))
            } else {
                bytes.append(byte)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Splits a query (`a=1&b=two%20words&flag`) into decoded items, in order.
    static func queryItems(_ query: Substring) -> [WebSocketQueryItem] {
        query.split(separator: "&", omittingEmptySubsequences: true).map { pair in
            if let equals = pair.firstIndex(of: "=") {
                return WebSocketQueryItem(
                    name: decode(pair[..<equals], plusIsSpace: true),
                    value: decode(pair[pair.index(after: equals)...], plusIsSpace: true))
            }
            return WebSocketQueryItem(name: decode(pair, plusIsSpace: true), value: nil)
        }
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return byte - UInt8(ascii: "A") + 10
        default: return nil
        }
    }
}

/// One `name=value` pair of a request's query string, percent-decoded.
public struct WebSocketQueryItem: Sendable, Hashable {
    /// The decoded name.
    public var name: String
    /// `nil` for a bare `name` without `=`.
    public var value: String?

    /// Creates an item from decoded text.
    public init(name: String, value: String?) {
        self.name = name
        self.value = value
    }
}
