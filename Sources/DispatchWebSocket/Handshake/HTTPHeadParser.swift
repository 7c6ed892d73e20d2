/// An HTTP version such as 1.1, from `HTTP/1.1`.
struct HTTPVersion: Sendable, Equatable, Comparable, CustomStringConvertible {
    var major: Int
    var minor: Int

    static let http1_0 = HTTPVersion(major: 1, minor: 0)
    static let http1_1 = HTTPVersion(major: 1, minor: 1)

    static func < (lhs: HTTPVersion, rhs: HTTPVersion) -> Bool {
        (lhs.major, lhs.minor) < (rhs.major, rhs.minor)
    }

    var description: String { "HTTP/\(major).\(minor)" }
}

/// The request line and header fields of an HTTP/1.x request.
struct HTTPRequestHead: Sendable {
    var method: String
    /// The request-target as sent: origin-form (`/chat?x=1`), `*`, or absolute-form
    /// (`http://host/chat`). Not percent-decoded.
    var target: String
    var version: HTTPVersion
    var headers: HTTPHeaders
}

/// The status line and header fields of an HTTP/1.x response.
struct HTTPResponseHead: Sendable {
    var version: HTTPVersion
    var status: Int
    /// The reason phrase, possibly empty; informational only (RFC 9112 §4).
    var reason: String
    var headers: HTTPHeaders
}

/// Why a head was refused. A server answers `headTooLarge` with 431 and `malformed` with 400.
enum HTTPParseError: Error, Equatable {
    /// The head did not end within `maxHeadBytes`.
    case headTooLarge
    /// The head broke the HTTP/1.1 grammar; the string is a short reason fit for a 400 body.
    case malformed(String)
}

/// An incremental, bounded parser for one HTTP/1.1 request or response head (RFC 9112 §2–§5).
///
/// Bytes arrive in whatever chunks the socket delivers. The parser looks at each byte once: it
/// carries the state of the end-of-head search (CRLFCRLF, or bare LFs per RFC 9112 §2.2) from
/// one chunk to the next instead of rescanning what it already holds, and it copies at most
/// `maxHeadBytes`, so a peer that sends an endless head costs bounded memory and fails as soon
/// as it crosses the limit. Only once the blank line is seen is the head split into lines and
/// validated.
///
/// Empty lines before the start line are skipped (RFC 9112 §2.2) but count towards the limit,
/// so a peer cannot keep the parser busy with an endless run of them either.
///
/// Bytes after the head (a body, or the first WebSocket frames) are the caller's: the result
/// says how many bytes of the last chunk belonged to the head. After a head is returned, or
/// an error thrown, the parser is ready for the next head; `reset()` also does that explicitly.
struct HTTPHeadParser {
    /// The most bytes a head may take, including its line ends and the final blank line.
    let maxHeadBytes: Int

    /// The head so far, from the first byte of the start line.
    private var buffer: [UInt8] = []
    /// Bytes counted against `maxHeadBytes`: the buffer plus skipped leading empty lines.
    private var counted = 0
    /// Whether the first byte of the start line has arrived (until then CR and LF are skipped).
    private var startLineBegun = false
    /// Where the end-of-head search stands, carried between chunks.
    private var line: LineState = .empty

    private enum LineState {
        /// At the start of a line: an LF here ends the head.
        case empty
        /// The line so far is a single CR: an LF here ends the head too.
        case carriageReturn
        /// The line has content: an LF here only ends the line.
        case text
    }

    init(maxHeadBytes: Int) {
        precondition(maxHeadBytes > 0, "maxHeadBytes must be positive")
        self.maxHeadBytes = maxHeadBytes
    }

    /// Forgets any partial head, for the next request on a keep-alive connection.
    mutating func reset() {
        buffer.removeAll(keepingCapacity: true)
        counted = 0
        startLineBegun = false
        line = .empty
    }

    /// Feeds bytes of a request. Returns `nil` while the head is incomplete, or the head and
    /// how many bytes of `chunk` it took; the rest of `chunk` follows the head.
    mutating func parseRequest(_ chunk: UnsafeRawBufferPointer) throws(HTTPParseError) -> (
        head: HTTPRequestHead, consumed: Int
    )? {
        guard let consumed = try findEnd(in: chunk) else { return nil }
        defer { reset() }
        let head = try buffer.withUnsafeBufferPointer { bytes throws(HTTPParseError) in try Self.requestHead(bytes) }
        return (head, consumed)
    }

    /// Feeds bytes of a response. Returns `nil` while the head is incomplete, or the head and
    /// how many bytes of `chunk` it took; the rest of `chunk` follows the head.
    mutating func parseResponse(_ chunk: UnsafeRawBufferPointer) throws(HTTPParseError) -> (
        head: HTTPResponseHead, consumed: Int
    )? {
        guard let consumed = try findEnd(in: chunk) else { return nil }
        defer { reset() }
        let head = try buffer.withUnsafeBufferPointer { bytes throws(HTTPParseError) in try Self.responseHead(bytes) }
        return (head, consumed)
    }

    // MARK: Finding the end of the head

    /// Copies the head's bytes from `chunk` and returns how many it took once the blank line
    /// that ends the head has arrived, `nil` while more are needed.
    private mutating func findEnd(in chunk: UnsafeRawBufferPointer) throws(HTTPParseError) -> Int? {
        let room = maxHeadBytes - counted
        let scanEnd = min(chunk.count, room)
        var index = 0
        var copyStart = 0
        if !startLineBegun {
            while index < scanEnd && (chunk[index] == .cr || chunk[index] == .lf) { index += 1 }
            copyStart = index
            startLineBegun = index < scanEnd
        }
        var state = line
        while index < scanEnd {
            let byte = chunk[index]
            index += 1
            switch byte {
            case .lf:
                if state != .text {
                    buffer.append(contentsOf: UnsafeRawBufferPointer(rebasing: chunk[copyStart..<index]))
                    counted += index
                    return index
                }
                state = .empty
            case .cr:
                state = state == .empty ? .carriageReturn : .text
            default:
                state = .text
            }
        }
        line = state
        buffer.append(contentsOf: UnsafeRawBufferPointer(rebasing: chunk[copyStart..<scanEnd]))
        counted += scanEnd
        if chunk.count > room {
            reset()
            throw .headTooLarge
        }
        return nil
    }

    // MARK: Validating a complete head

    private static func requestHead(_ bytes: UnsafeBufferPointer<UInt8>) throws(HTTPParseError) -> HTTPRequestHead {
        var position = 0
        let line = nextLine(bytes, &position)
        guard !bytes[line].contains(0) else { throw .malformed("NUL byte in the request line") }
        // request-line = method SP request-target SP HTTP-version, single spaces (RFC 9112 §3).
        guard let firstSpace = bytes[line].firstIndex(of: .space),
            let secondSpace = bytes[(firstSpace + 1)..<line.upperBound].firstIndex(of: .space),
            !bytes[(secondSpace + 1)..<line.upperBound].contains(.space),
            firstSpace > line.lowerBound, secondSpace > firstSpace + 1, secondSpace + 1 < line.upperBound
        else { throw .malformed("malformed request line") }
        let method = line.lowerBound..<firstSpace
        let target = (firstSpace + 1)..<secondSpace
        guard bytes[method].allSatisfy(HTTPHeaders.isTokenByte) else { throw .malformed("invalid method") }
        guard isValidTarget(bytes[target]) else { throw .malformed("invalid request target") }
        let version = try version(bytes[(secondSpace + 1)..<line.upperBound])
        return HTTPRequestHead(
            method: string(bytes, method), target: string(bytes, target), version: version,
            headers: try headers(bytes, from: position))
    }

    private static func responseHead(_ bytes: UnsafeBufferPointer<UInt8>) throws(HTTPParseError) -> HTTPResponseHead {
        var position = 0
        let line = nextLine(bytes, &position)
        // status-line = HTTP-version SP status-code SP [reason-phrase] (RFC 9112 §4); the
        // second space is often missing when the reason is empty, and that is accepted.
        let start = line.lowerBound
        guard line.count >= 12, bytes[start + 8] == .space, line.count == 12 || bytes[start + 12] == .space else {
            throw .malformed("malformed status line")
        }
        let version = try version(bytes[start..<(start + 8)])
        var status = 0
        for byte in bytes[(start + 9)..<(start + 12)] {
            guard let digit = digit(byte) else { throw .malformed("invalid status code") }
            status = status * 10 + digit
        }
        guard status >= 100 else { throw .malformed("invalid status code") }
        let reason = line.count > 13 ? (start + 13)..<line.upperBound : line.upperBound..<line.upperBound
        guard bytes[reason].allSatisfy(isFieldValueByte) else { throw .malformed("invalid reason phrase") }
        return HTTPResponseHead(
            version: version, status: status, reason: string(bytes, reason), headers: try headers(bytes, from: position)
        )
    }

    /// The header fields, from `position` to the blank line (RFC 9112 §5).
    private static func headers(_ bytes: UnsafeBufferPointer<UInt8>, from position: Int) throws(HTTPParseError)
        -> HTTPHeaders
    {
        var position = position
        var headers = HTTPHeaders()
        while true {
            let line = nextLine(bytes, &position)
            if line.isEmpty { return headers }
            if bytes[line.lowerBound] == .space || bytes[line.lowerBound] == .tab {
                // A continuation of the previous field (obs-fold, RFC 9112 §5.2), or whitespace
                // between the start line and the first field (§2.2): both are refused.
                throw .malformed("obsolete line folding in the header")
            }
            var colon = line.lowerBound
            while colon < line.upperBound && HTTPHeaders.isTokenByte(bytes[colon]) { colon += 1 }
            guard colon < line.upperBound, bytes[colon] == .colon else {
                throw .malformed(nameError(bytes[colon..<line.upperBound]))
            }
            guard colon > line.lowerBound else { throw .malformed("empty header name") }

            // field-value with OWS around it; find the trimmed bounds while checking each byte.
            var valueStart = line.upperBound
            var valueEnd = line.upperBound
            var index = colon + 1
            while index < line.upperBound {
                let byte = bytes[index]
                guard isFieldValueByte(byte) else {
                    throw .malformed(byte == 0 ? "NUL byte in a header value" : "control character in a header value")
                }
                if byte != .space && byte != .tab {
                    if valueStart == line.upperBound { valueStart = index }
                    valueEnd = index + 1
                }
                index += 1
            }
            if valueStart == line.upperBound { valueEnd = valueStart }
            headers.add(name: string(bytes, line.lowerBound..<colon), value: string(bytes, valueStart..<valueEnd))
        }
    }

    // MARK: Pieces

    /// Why a header line's name did not end in a colon, given the line from the first
    /// byte that is not a token character.
    private static func nameError(_ rest: Slice<UnsafeBufferPointer<UInt8>>) -> String {
        guard rest.contains(.colon) else { return "header line without a colon" }
        switch rest.first {
        case .space?, .tab?: return "whitespace before the colon in a header"
        case 0?: return "NUL byte in a header name"
        default: return "invalid character in a header name"
        }
    }

    /// The line starting at `position` without its LF or CRLF; moves `position` past the LF.
    /// The buffer always ends with an LF, so every line has one.
    @inline(__always)
    private static func nextLine(_ bytes: UnsafeBufferPointer<UInt8>, _ position: inout Int) -> Range<Int> {
        let start = position
        var end = start
        while bytes[end] != .lf { end += 1 }
        position = end + 1
        if end > start && bytes[end - 1] == .cr { end -= 1 }
        return start..<end
    }

    /// `HTTP/` DIGIT `.` DIGIT, case-sensitively (RFC 9112 §2.3).
    private static func version(_ text: Slice<UnsafeBufferPointer<UInt8>>) throws(HTTPParseError) -> HTTPVersion {
        let s = text.startIndex
        guard text.count == 8, text[s] == UInt8(ascii: "H"), text[s + 1] == UInt8(ascii: "T"),
            text[s + 2] == UInt8(ascii: "T"),
            text[s + 3] == UInt8(ascii: "P"), text[s + 4] == UInt8(ascii: "/"), text[s + 6] == UInt8(ascii: "."),
            let major = digit(text[s + 5]), let minor = digit(text[s + 7])
        else { throw .malformed("invalid HTTP version") }
        return HTTPVersion(major: major, minor: minor)
    }

    /// origin-form (`/…`), asterisk-form (`*`) or an http(s) absolute-form (RFC 9112 §3.2),
    /// without spaces or control characters. Bytes above 0x7F are let through, as most servers
    /// do, for clients that send raw UTF-8 paths. authority-form (CONNECT) is refused.
    private static func isValidTarget(_ target: Slice<UnsafeBufferPointer<UInt8>>) -> Bool {
        guard let first = target.first, target.allSatisfy({ $0 > 0x20 && $0 != 0x7F }) else { return false }
        if first == UInt8(ascii: "/") { return true }
        if target.count == 1 { return first == UInt8(ascii: "*") }
        for scheme in ["http://", "https://"] where target.count > scheme.utf8.count {
            if zip(target, scheme.utf8).allSatisfy({ HTTPHeaders.lowercase($0) == $1 }) { return true }
        }
        return false
    }

    /// HTAB, SP, visible ASCII and obs-text (RFC 9110 §5.5); every other control byte is refused.
    @inline(__always)
    private static func isFieldValueByte(_ byte: UInt8) -> Bool {
        byte == .tab || (byte >= 0x20 && byte != 0x7F)
    }

    @inline(__always)
    private static func digit(_ byte: UInt8) -> Int? {
        let value = byte &- UInt8(ascii: "0")
        return value < 10 ? Int(value) : nil
    }

    @inline(__always)
    private static func string(_ bytes: UnsafeBufferPointer<UInt8>, _ range: Range<Int>) -> String {
        String(decoding: UnsafeBufferPointer(rebasing: bytes[range]), as: UTF8.self)
    }
}

extension UInt8 {
    fileprivate static var cr: UInt8 { 0x0D }
    fileprivate static var lf: UInt8 { 0x0A }
    fileprivate static var space: UInt8 { 0x20 }
    fileprivate static var tab: UInt8 { 0x09 }
    fileprivate static var colon: UInt8 { 0x3A }
}
