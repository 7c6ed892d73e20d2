/// An HTTP version such as 1.1.
struct HTTPVersion: Sendable, Equatable, Comparable, CustomStringConvertible {
    var major: Int
    var minor: Int
    static func < (a: HTTPVersion, b: HTTPVersion) -> Bool { (a.major, a.minor) < (b.major, b.minor) }
    var description: String { "HTTP/\(major).\(minor)" }
}

/// The request line and headers of an HTTP request.
struct HTTPRequestHead: Sendable {
    var method: String
    var target: String
    var version: HTTPVersion
    var headers: HTTPHeaders
}

/// The status line and headers of an HTTP response.
struct HTTPResponseHead: Sendable {
    var version: HTTPVersion
    var status: Int
    var reason: String
    var headers: HTTPHeaders
}

/// Why a head could not be parsed.
enum HTTPParseError: Error, Equatable {
    /// No end of the head within `maxHeadBytes` (431 for a request).
    case headTooLarge
    /// A short, human-readable reason (400 for a request).
    case malformed(String)
}

/// An incremental, bounded parser for one HTTP/1.1 request or response head (RFC 9112 §2–§5).
///
/// It copies at most `maxHeadBytes`, so a client that sends an endless header costs a bounded
/// amount of memory and fails as soon as it crosses the limit. Bytes after the head (a body or
/// the first WebSocket frames) are left to the caller: the result says how many bytes of the
/// last chunk belonged to the head.
struct HTTPHeadParser {
    let maxHeadBytes: Int
    private var buffer: [UInt8] = []

    init(maxHeadBytes: Int) {
        self.maxHeadBytes = maxHeadBytes
    }

    /// Forgets everything, for the next request on a keep-alive connection.
    mutating func reset() {
        buffer.removeAll(keepingCapacity: true)
    }

    mutating func parseRequest(_ chunk: UnsafeRawBufferPointer) throws(HTTPParseError) -> (head: HTTPRequestHead, consumed: Int)? {
        guard let consumed = try accumulate(chunk) else { return nil }
        defer { reset() }
        let lines = try Self.lines(buffer)
        let parts = lines[0].split(separator: UInt8(ascii: " "), omittingEmptySubsequences: false)
        guard parts.count == 3 else { throw .malformed("malformed request line") }
        guard !parts[0].isEmpty, parts[0].allSatisfy(WebSocketCookie.isTokenByte) else { throw .malformed("invalid method") }
        let target = parts[1]
        guard let first = target.first,
              first == UInt8(ascii: "/") || (target.count == 1 && first == UInt8(ascii: "*"))
                || Self.hasPrefix(target, "http://") || Self.hasPrefix(target, "https://"),
              target.allSatisfy({ $0 > 0x20 && $0 != 0x7F })
        else { throw .malformed("invalid request target") }
        let head = HTTPRequestHead(
            method: String(decoding: parts[0], as: UTF8.self), target: String(decoding: target, as: UTF8.self),
            version: try Self.version(parts[2]), headers: try Self.headers(lines.dropFirst()))
        return (head, consumed)
    }

    mutating func parseResponse(_ chunk: UnsafeRawBufferPointer) throws(HTTPParseError) -> (head: HTTPResponseHead, consumed: Int)? {
        guard let consumed = try accumulate(chunk) else { return nil }
        defer { reset() }
        let lines = try Self.lines(buffer)
        let parts = lines[0].split(separator: UInt8(ascii: " "), maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count >= 2, parts[1].count == 3, parts[1].allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }),
              let status = Int(String(decoding: parts[1], as: UTF8.self))
        else { throw .malformed("malformed status line") }
        let head = HTTPResponseHead(
            version: try Self.version(parts[0]), status: status,
            reason: parts.count == 3 ? String(decoding: parts[2], as: UTF8.self) : "",
            headers: try Self.headers(lines.dropFirst()))
        return (head, consumed)
    }

    /// Copies bytes until the blank line that ends the head. Returns how many bytes of `chunk`
    /// were taken once the head is complete, nil while more are needed.
    private mutating func accumulate(_ chunk: UnsafeRawBufferPointer) throws(HTTPParseError) -> Int? {
        var index = 0
        while index < chunk.count {
            let byte = chunk[index]
            index += 1
            // Empty lines before the start line are ignored (RFC 9112 §2.2).
            if buffer.isEmpty && (byte == UInt8(ascii: "\r") || byte == UInt8(ascii: "\n")) { continue }
            guard buffer.count < maxHeadBytes else { throw .headTooLarge }
            buffer.append(byte)
            if byte == UInt8(ascii: "\n") && Self.endsWithBlankLine(buffer) { return index }
        }
        return nil
    }

    private static func endsWithBlankLine(_ buffer: [UInt8]) -> Bool {
        let n = buffer.count
        if n >= 2 && buffer[n - 2] == UInt8(ascii: "\n") { return true }
        return n >= 3 && buffer[n - 2] == UInt8(ascii: "\r") && buffer[n - 3] == UInt8(ascii: "\n")
    }

    /// The head's lines without their CRLF (or bare LF), the final blank line dropped.
    private static func lines(_ buffer: [UInt8]) throws(HTTPParseError) -> [ArraySlice<UInt8>] {
        guard !buffer.contains(0) else { throw .malformed("NUL byte in the head") }
        var lines = buffer.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).map { line in
            line.last == UInt8(ascii: "\r") ? line.dropLast() : line
        }
        while lines.last?.isEmpty == true { lines.removeLast() }
        guard !lines.isEmpty else { throw .malformed("empty head") }
        return lines
    }

    private static func version(_ text: ArraySlice<UInt8>) throws(HTTPParseError) -> HTTPVersion {
        let bytes = Array(text)
        guard bytes.count == 8, Self.hasPrefix(text, "HTTP/"), bytes[6] == UInt8(ascii: "."),
              let major = digit(bytes[5]), let minor = digit(bytes[7])
        else { throw .malformed("invalid HTTP version") }
        return HTTPVersion(major: major, minor: minor)
    }

    private static func headers(_ lines: ArraySlice<ArraySlice<UInt8>>) throws(HTTPParseError) -> HTTPHeaders {
        var headers = HTTPHeaders()
        for line in lines {
            guard let first = line.first else { throw .malformed("empty header line") }
            if first == UInt8(ascii: " ") || first == UInt8(ascii: "\t") {
                throw .malformed("obsolete line folding in headers")
            }
            guard let colon = line.firstIndex(of: UInt8(ascii: ":")) else { throw .malformed("header line without a colon") }
            let name = line[..<colon]
            guard !name.isEmpty, name.allSatisfy(WebSocketCookie.isTokenByte) else {
                throw .malformed("invalid header name")
            }
            let value = line[(colon + 1)...]
            guard value.allSatisfy({ $0 == UInt8(ascii: "\t") || ($0 >= 0x20 && $0 != 0x7F) }) else {
                throw .malformed("control character in a header value")
            }
            let trimmed = value.drop { $0 == 0x20 || $0 == 0x09 }.reversed().drop { $0 == 0x20 || $0 == 0x09 }.reversed()
            headers.add(name: String(decoding: name, as: UTF8.self), value: String(decoding: trimmed, as: UTF8.self))
        }
        return headers
    }

    private static func digit(_ byte: UInt8) -> Int? {
        byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") ? Int(byte - UInt8(ascii: "0")) : nil
    }

    private static func hasPrefix(_ bytes: ArraySlice<UInt8>, _ prefix: String) -> Bool {
        bytes.count >= prefix.utf8.count && zip(bytes, prefix.utf8).allSatisfy { HTTPHeaders.lowercase($0) == HTTPHeaders.lowercase($1) }
    }
}
