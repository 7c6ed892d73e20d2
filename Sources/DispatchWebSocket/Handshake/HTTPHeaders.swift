/// HTTP header fields in their original order and spelling, looked up case-insensitively.
///
/// Field names are compared with ASCII case folding only (RFC 9110 §5.1), so `Content-Type`
/// and `content-type` are the same field while non-ASCII bytes are compared exactly. A field
/// may occur several times; the lines are kept as received rather than merged, because some
/// fields (`Set-Cookie`) cannot be merged with commas.
///
/// ```swift
/// var headers: HTTPHeaders = ["Content-Type": "text/plain"]
/// headers.add(name: "Set-Cookie", value: "a=1")
/// headers["content-type"]  // "text/plain"
/// ```
public struct HTTPHeaders: Sendable, Sequence, ExpressibleByDictionaryLiteral, Equatable, CustomStringConvertible {
    /// One header line: the name as spelled by its sender and the value without surrounding
    /// whitespace.
    public typealias Element = (name: String, value: String)

    private var fields: [Element] = []

    /// Creates an empty set of headers.
    public init() {}

    /// Creates headers from literal pairs, in order; repeated names are kept as separate lines.
    public init(dictionaryLiteral elements: (String, String)...) {
        fields.reserveCapacity(elements.count)
        for (name, value) in elements { fields.append((name, value)) }
    }

    /// The number of header lines (a name that occurs twice counts twice).
    public var count: Int { fields.count }

    /// Whether there are no header lines.
    public var isEmpty: Bool { fields.isEmpty }

    /// The value of the first line named `name` (case-insensitively), or `nil` if there is none.
    public subscript(name: String) -> String? {
        for field in fields where Self.equalsIgnoringCase(field.name, name) { return field.value }
        return nil
    }

    /// The values of every line named `name` (case-insensitively), in order.
    public func values(for name: String) -> [String] {
        var result: [String] = []
        for field in fields where Self.equalsIgnoringCase(field.name, name) { result.append(field.value) }
        return result
    }

    /// Whether at least one line is named `name` (case-insensitively).
    public func contains(_ name: String) -> Bool {
        fields.contains { Self.equalsIgnoringCase($0.name, name) }
    }

    /// Appends a line, keeping any existing lines of the same name.
    public mutating func add(name: String, value: String) {
        fields.append((name, value))
    }

    /// Replaces every line named `name` with a single line, at the position of the first one
    /// (or at the end if there was none).
    public mutating func replaceOrAdd(name: String, value: String) {
        guard let first = fields.firstIndex(where: { Self.equalsIgnoringCase($0.name, name) }) else {
            return add(name: name, value: value)
        }
        fields[first] = (name, value)
        var index = fields.index(after: first)
        while index < fields.endIndex {
            if Self.equalsIgnoringCase(fields[index].name, name) { fields.remove(at: index) } else { index += 1 }
        }
    }

    /// Removes every line named `name` (case-insensitively).
    public mutating func remove(name: String) {
        fields.removeAll { Self.equalsIgnoringCase($0.name, name) }
    }

    /// Iterates the lines in order.
    public func makeIterator() -> IndexingIterator<[Element]> {
        fields.makeIterator()
    }

    /// Equal when both hold the same lines in the same order; names compare case-insensitively,
    /// values exactly.
    public static func == (lhs: HTTPHeaders, rhs: HTTPHeaders) -> Bool {
        guard lhs.fields.count == rhs.fields.count else { return false }
        for (a, b) in zip(lhs.fields, rhs.fields) where a.value != b.value || !equalsIgnoringCase(a.name, b.name) {
            return false
        }
        return true
    }

    /// The lines as `Name: value`, one per line, for logging.
    public var description: String {
        fields.map { "\($0.name): \($0.value)" }.joined(separator: "\n")
    }

    // MARK: Token lists

    /// The elements of the comma-separated list formed by every line of `name` (RFC 9110
    /// §5.3, §5.6.1), trimmed of spaces and tabs, with empty elements dropped:
    /// `Connection: keep-alive, Upgrade` gives `["keep-alive", "Upgrade"]`.
    ///
    /// Commas are not special inside quoted strings in some fields; callers that need that
    /// (`Sec-WebSocket-Extensions`) parse the values themselves.
    func tokens(for name: String) -> [Substring] {
        var result: [Substring] = []
        forEachToken(of: name) { token in
            result.append(token)
            return true
        }
        return result
    }

    /// Whether the token list of `name` contains `token`, compared case-insensitively
    /// (`Connection: keep-alive, Upgrade` contains `upgrade`).
    func containsToken(_ token: String, in name: String) -> Bool {
        var found = false
        forEachToken(of: name) { element in
            found = Self.equalsIgnoringCase(element, token)
            return !found
        }
        return found
    }

    /// Calls `body` with each element of the token list of `name` until it returns false,
    /// without collecting them (the handshake asks several such questions per request).
    private func forEachToken(of name: String, _ body: (Substring) -> Bool) {
        for field in fields where Self.equalsIgnoringCase(field.name, name) {
            // Split on bytes, not Characters: a comma followed by a combining mark is still a comma.
            let utf8 = field.value.utf8
            var start = utf8.startIndex
            while start < utf8.endIndex {
                let end = utf8[start...].firstIndex(of: UInt8(ascii: ",")) ?? utf8.endIndex
                let element = Substring(utf8[start..<end]).trimmingOWS
                if !element.isEmpty && !body(element) { return }
                start = end < utf8.endIndex ? utf8.index(after: end) : end
            }
        }
    }
}

// MARK: - Character classes shared by the parser and the handshakes

extension HTTPHeaders {
    /// ASCII case-insensitive equality: only `A`–`Z` fold, so no locale or Unicode rules apply.
    static func equalsIgnoringCase(_ a: some StringProtocol, _ b: some StringProtocol) -> Bool {
        let x = a.utf8
        let y = b.utf8
        guard x.count == y.count else { return false }
        // Native strings are contiguous UTF-8: compare the bytes directly, not through iterators.
        let contiguous = x.withContiguousStorageIfAvailable { x in
            y.withContiguousStorageIfAvailable { y in equalsIgnoringCase(x, y) }
        }
        if let contiguous, let result = contiguous { return result }
        for (p, q) in zip(x, y) where p != q && lowercase(p) != lowercase(q) { return false }
        return true
    }

    private static func equalsIgnoringCase(_ x: UnsafeBufferPointer<UInt8>, _ y: UnsafeBufferPointer<UInt8>) -> Bool {
        for i in 0..<x.count where x[i] != y[i] && lowercase(x[i]) != lowercase(y[i]) { return false }
        return true
    }

    /// Lowercases an ASCII letter and leaves every other byte alone.
    @inline(__always)
    static func lowercase(_ byte: UInt8) -> UInt8 {
        byte &- UInt8(ascii: "A") < 26 ? byte | 0x20 : byte
    }

    /// Whether `byte` is a `tchar` (RFC 9110 §5.6.2), the characters of methods, header names
    /// and the WebSocket subprotocol and extension names.
    @inline(__always)
    static func isTokenByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"):
            return true
        case UInt8(ascii: "!"), UInt8(ascii: "#"), UInt8(ascii: "$"), UInt8(ascii: "%"), UInt8(ascii: "&"),
            UInt8(ascii: "'"),
            UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "^"),
            UInt8(ascii: "_"),
            UInt8(ascii: "`"), UInt8(ascii: "|"), UInt8(ascii: "~"):
            return true
        default:
            return false
        }
    }

    /// Whether `text` is a non-empty token.
    static func isToken(_ text: some StringProtocol) -> Bool {
        !text.isEmpty && text.utf8.allSatisfy(isTokenByte)
    }

    /// Whether a name and value can be written as one header line without letting the value
    /// start another line or end the head: the name must be a token, the value free of
    /// CR, LF and NUL.
    static func isWritable(name: String, value: String) -> Bool {
        isToken(name) && !value.utf8.contains { $0 == 0x0D || $0 == 0x0A || $0 == 0x00 }
    }
}

extension Substring {
    /// Without surrounding spaces and tabs (HTTP's optional whitespace, RFC 9110 §5.6.3).
    var trimmingOWS: Substring {
        let utf8 = self.utf8
        guard let start = utf8.firstIndex(where: { $0 != 0x20 && $0 != 0x09 }),
            let last = utf8.lastIndex(where: { $0 != 0x20 && $0 != 0x09 })
        else { return self[endIndex...] }
        return Substring(utf8[start...last])
    }
}
