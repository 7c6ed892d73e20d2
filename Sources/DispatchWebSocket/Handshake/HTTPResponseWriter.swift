/// Serializes HTTP/1.1 response heads and small plain-text responses.
///
/// Header names and values often come from the application (or from a request it echoes), so
/// a line that could break out of its place is dropped rather than written: a name that is not
/// a token, or a value with CR, LF or NUL, would otherwise let a value add headers of its own
/// or end the head early (response splitting). Dropping, rather than a precondition, keeps a
/// bad value from taking the server down. Likewise a reason phrase with control characters
/// is replaced by the standard one.
enum HTTPResponseWriter {
    /// The status line and header lines, ending with the blank line.
    ///
    /// - Precondition: `status` has three digits (100...999), a programmer error otherwise.
    static func head(status: Int, reason: String? = nil, headers: HTTPHeaders) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(64 + headers.count * 48)
        appendStatusLine(status: status, reason: reason, to: &out)
        appendHeaders(headers, to: &out)
        out.append(contentsOf: [0x0D, 0x0A])
        return out
    }

    /// A complete response with a `text/plain; charset=utf-8` body and its `Content-Length`,
    /// plus `Connection: close` when `close` is set. `headers` are written first; they must not
    /// carry `Content-Type`, `Content-Length` or `Connection`, which this function sets.
    static func simpleResponse(status: Int, body: String, close: Bool, headers: HTTPHeaders = [:]) -> [UInt8] {
        var all = headers
        all.replaceOrAdd(name: "Content-Type", value: "text/plain; charset=utf-8")
        all.replaceOrAdd(name: "Content-Length", value: String(body.utf8.count))
        if close { all.replaceOrAdd(name: "Connection", value: "close") }
        var out = head(status: status, headers: all)
        out.append(contentsOf: body.utf8)
        return out
    }

    /// Writes `Name: value` CRLF for every writable line of `headers` (see the type's comment).
    static func appendHeaders(_ headers: HTTPHeaders, to out: inout [UInt8]) {
        for (name, value) in headers where HTTPHeaders.isWritable(name: name, value: value) {
            out.append(contentsOf: name.utf8)
            out.append(contentsOf: [UInt8(ascii: ":"), UInt8(ascii: " ")])
            out.append(contentsOf: value.utf8)
            out.append(contentsOf: [0x0D, 0x0A])
        }
    }

    private static func appendStatusLine(status: Int, reason: String?, to out: inout [UInt8]) {
        precondition((100...999).contains(status), "an HTTP status has three digits")
        out.append(contentsOf: "HTTP/1.1 ".utf8)
        out.append(contentsOf: String(status).utf8)
        out.append(UInt8(ascii: " "))
        // reason-phrase = *( HTAB / SP / VCHAR / obs-text ) (RFC 9112 §4).
        if let reason, reason.utf8.allSatisfy({ $0 == 0x09 || ($0 >= 0x20 && $0 != 0x7F) }) {
            out.append(contentsOf: reason.utf8)
        } else {
            out.append(contentsOf: reasonPhrase(for: status).utf8)
        }
        out.append(contentsOf: [0x0D, 0x0A])
    }

    /// The standard reason phrase (RFC 9110 §15) for the codes this library and typical apps
    /// send; other codes get their class's name.
    static func reasonPhrase(for status: Int) -> String {
        switch status {
        case 100: return "Continue"
        case 101: return "Switching Protocols"
        case 200: return "OK"
        case 201: return "Created"
        case 202: return "Accepted"
        case 204: return "No Content"
        case 206: return "Partial Content"
        case 301: return "Moved Permanently"
        case 302: return "Found"
        case 303: return "See Other"
        case 304: return "Not Modified"
        case 307: return "Temporary Redirect"
        case 308: return "Permanent Redirect"
        case 400: return "Bad Request"
        case 401: return "Unauthorized"
        case 403: return "Forbidden"
        case 404: return "Not Found"
        case 405: return "Method Not Allowed"
        case 406: return "Not Acceptable"
        case 408: return "Request Timeout"
        case 409: return "Conflict"
        case 410: return "Gone"
        case 411: return "Length Required"
        case 413: return "Content Too Large"
        case 414: return "URI Too Long"
        case 415: return "Unsupported Media Type"
        case 426: return "Upgrade Required"
        case 429: return "Too Many Requests"
        case 431: return "Request Header Fields Too Large"
        case 500: return "Internal Server Error"
        case 501: return "Not Implemented"
        case 502: return "Bad Gateway"
        case 503: return "Service Unavailable"
        case 504: return "Gateway Timeout"
        case 505: return "HTTP Version Not Supported"
        case 100..<200: return "Informational"
        case 200..<300: return "Success"
        case 300..<400: return "Redirection"
        case 400..<500: return "Client Error"
        case 500..<600: return "Server Error"
        default: return "Unknown"
        }
    }
}
