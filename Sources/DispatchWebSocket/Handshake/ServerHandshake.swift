/// What a valid opening handshake asked for (RFC 6455 §4.2.1), for the application to decide on.
struct ValidatedUpgrade: Sendable {
    /// `Sec-WebSocket-Key` as sent; the accept value is derived from it.
    var key: String
    var host: String
    /// Always 13: other versions are refused.
    var version: Int
    /// `Sec-WebSocket-Protocol` in the client's order of preference.
    var requestedProtocols: [String]
    /// `Sec-WebSocket-Extensions` in the client's order of preference.
    var requestedExtensions: [WebSocketExtensionOffer]
    /// `Origin`, or `Sec-WebSocket-Origin` from pre-RFC clients; `nil` for non-browser clients.
    var origin: String?
}

/// Why an opening handshake was refused: the status to answer with, a short reason for the
/// body, and headers the answer must carry (a 426 names the version we speak).
struct HandshakeRejection: Error, Equatable {
    var status: Int
    var reason: String
    var headers: HTTPHeaders = [:]
}

/// The server side of the opening handshake (RFC 6455 §4.2): telling upgrade requests from
/// plain HTTP, validating them, and writing the answer.
///
/// Every violation is refused with 400 and a short reason, except a missing or unsupported
/// `Sec-WebSocket-Version`, which gets 426 and `Sec-WebSocket-Version: 13` so that the client
/// can retry with a version we speak (§4.2.2). A method other than GET is a 400 too, not a 405:
/// the request is a malformed handshake rather than a valid request for a resource that
/// lacks that method.
enum ServerHandshake {
    /// Whether the request asks for a WebSocket (an `Upgrade` token list containing
    /// `websocket`, case-insensitively). Other requests are plain HTTP.
    static func isUpgradeRequest(_ head: HTTPRequestHead) -> Bool {
        head.headers.containsToken("websocket", in: "Upgrade")
    }

    /// Checks the request against RFC 6455 §4.2.1, in the order the RFC lists the fields,
    /// except that the version comes before the key: an old client (hixie-76 sends no
    /// `Sec-WebSocket-Key`) should learn that it needs version 13, not that its key is bad.
    static func validate(_ head: HTTPRequestHead) -> Result<ValidatedUpgrade, HandshakeRejection> {
        func reject(_ reason: String) -> Result<ValidatedUpgrade, HandshakeRejection> {
            .failure(HandshakeRejection(status: 400, reason: reason))
        }
        let headers = head.headers
        guard head.method == "GET" else { return reject("the WebSocket handshake must use GET") }
        guard head.version >= .http1_1 else { return reject("the WebSocket handshake needs HTTP/1.1") }
        // The parser admits only origin-form, absolute-form and `*`; the last names no resource.
        guard head.target != "*" else { return reject("the request target must be a path or an absolute URI") }
        let hosts = headers.values(for: "Host")
        guard hosts.count == 1, !hosts[0].isEmpty else { return reject("missing or repeated Host header") }
        guard headers.containsToken("websocket", in: "Upgrade") else {
            return reject("the Upgrade header must contain \"websocket\"")
        }
        guard headers.containsToken("upgrade", in: "Connection") else {
            return reject("the Connection header must contain \"Upgrade\"")
        }
        let versions = headers.values(for: "Sec-WebSocket-Version")
        guard versions.count == 1, versions[0] == "13" else {
            return .failure(
                HandshakeRejection(
                    status: 426, reason: "unsupported WebSocket version; this server speaks 13",
                    headers: ["Sec-WebSocket-Version": "13"]))
        }
        let keys = headers.values(for: "Sec-WebSocket-Key")
        guard keys.count == 1 else {
            return reject(keys.isEmpty ? "missing Sec-WebSocket-Key" : "repeated Sec-WebSocket-Key")
        }
        guard let nonce = Base64.decode(keys[0]), nonce.count == 16 else {
            return reject("Sec-WebSocket-Key must be the base64 encoding of 16 bytes")
        }

        var protocols: [String] = []
        var seen = Set<Substring>()
        for name in headers.tokens(for: "Sec-WebSocket-Protocol") {
            guard HTTPHeaders.isToken(name) else { return reject("Sec-WebSocket-Protocol must list tokens") }
            guard seen.insert(name).inserted else { return reject("repeated subprotocol \"\(name)\"") }
            protocols.append(String(name))
        }
        guard let extensions = WebSocketExtensionOffer.parse(headers.values(for: "Sec-WebSocket-Extensions")) else {
            return reject("malformed Sec-WebSocket-Extensions")
        }
        return .success(
            ValidatedUpgrade(
                key: keys[0], host: hosts[0], version: 13, requestedProtocols: protocols,
                requestedExtensions: extensions,
                origin: headers["Origin"] ?? headers["Sec-WebSocket-Origin"]))
    }

    /// The 101 Switching Protocols response: `Upgrade`, `Connection`, `Sec-WebSocket-Accept`,
    /// then `Sec-WebSocket-Protocol` when one was chosen, then `extraHeaders` in order.
    static func acceptResponse(key: String, protocol: String?, extraHeaders: HTTPHeaders) -> [UInt8] {
        var headers: HTTPHeaders = [
            "Upgrade": "websocket",
            "Connection": "Upgrade",
            "Sec-WebSocket-Accept": WebSocketAccept.value(forKey: key),
        ]
        if let `protocol` { headers.add(name: "Sec-WebSocket-Protocol", value: `protocol`) }
        for (name, value) in extraHeaders { headers.add(name: name, value: value) }
        return HTTPResponseWriter.head(status: 101, headers: headers)
    }

    /// The answer to a refused handshake: its status and headers, the reason as a plain-text
    /// body, and `Connection: close`, since the client cannot go on after a failed upgrade.
    static func rejectResponse(_ rejection: HandshakeRejection) -> [UInt8] {
        HTTPResponseWriter.simpleResponse(
            status: rejection.status, body: rejection.reason + "\n", close: true, headers: rejection.headers)
    }
}

/// One extension a client offered in `Sec-WebSocket-Extensions`, with its parameters, such as
/// `permessage-deflate; client_max_window_bits`.
///
/// Offers are parsed so an application can see them and so a malformed header is refused during
/// the handshake; the library itself negotiates `permessage-deflate` (RFC 7692) among them.
public struct WebSocketExtensionOffer: Sendable, Equatable {
    /// The extension's registered name, e.g. `permessage-deflate`.
    public var name: String
    /// The parameters in order; `value` is `nil` for a bare name, and quoted-string values
    /// arrive unquoted and unescaped.
    public var parameters: [(name: String, value: String?)]

    /// Creates an offer; the name and parameter names should be HTTP tokens.
    public init(name: String, parameters: [(name: String, value: String?)] = []) {
        self.name = name
        self.parameters = parameters
    }

    /// Equal when the names and the parameters, in order, are equal (exactly, as sent).
    public static func == (lhs: WebSocketExtensionOffer, rhs: WebSocketExtensionOffer) -> Bool {
        lhs.name == rhs.name && lhs.parameters.count == rhs.parameters.count
            && zip(lhs.parameters, rhs.parameters).allSatisfy { $0.name == $1.name && $0.value == $1.value }
    }

    /// Parses every `Sec-WebSocket-Extensions` line (RFC 6455 §9.1):
    /// `extension *( ";" name [ "=" ( token / quoted-string ) ] )`, comma-separated, empty list
    /// elements ignored (RFC 9110 §5.6.1). Returns `nil` for anything else. Quoted values are
    /// not further required to be tokens once unquoted; an extension that cares checks them.
    static func parse(_ values: [String]) -> [WebSocketExtensionOffer]? {
        var offers: [WebSocketExtensionOffer] = []
        for var value in values {
            let parsed = value.withUTF8 { bytes in
                var scanner = Scanner(bytes: bytes)
                return scanner.parseList(into: &offers)
            }
            guard parsed else { return nil }
        }
        return offers
    }

    /// A cursor over one header value.
    private struct Scanner {
        let bytes: UnsafeBufferPointer<UInt8>
        var index = 0

        init(bytes: UnsafeBufferPointer<UInt8>) {
            self.bytes = bytes
        }

        private var current: UInt8? { index < bytes.count ? bytes[index] : nil }

        private mutating func skipOWS() {
            while let byte = current, byte == 0x20 || byte == 0x09 { index += 1 }
        }

        private mutating func token() -> String? {
            let start = index
            while let byte = current, HTTPHeaders.isTokenByte(byte) { index += 1 }
            guard index > start else { return nil }
            return String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<index]), as: UTF8.self)
        }

        /// quoted-string (RFC 9110 §5.6.4), returning its content with quoted-pairs unescaped.
        private mutating func quotedString() -> String? {
            index += 1  // the opening quote
            var content: [UInt8] = []
            while let byte = current {
                index += 1
                switch byte {
                case UInt8(ascii: "\""):
                    return String(decoding: content, as: UTF8.self)
                case UInt8(ascii: "\\"):
                    guard let escaped = current, escaped == 0x09 || (escaped >= 0x20 && escaped != 0x7F) else {
                        return nil
                    }
                    content.append(escaped)
                    index += 1
                case 0x09, 0x20...0x7E, 0x80...0xFF:
                    content.append(byte)
                default:
                    return nil
                }
            }
            return nil  // unterminated
        }

        mutating func parseList(into offers: inout [WebSocketExtensionOffer]) -> Bool {
            while true {
                skipOWS()
                guard let byte = current else { return true }
                if byte == UInt8(ascii: ",") {  // an empty element
                    index += 1
                    continue
                }
                guard let name = token() else { return false }
                var offer = WebSocketExtensionOffer(name: name)
                skipOWS()
                while current == UInt8(ascii: ";") {
                    index += 1
                    skipOWS()
                    guard let parameter = token() else { return false }
                    skipOWS()
                    var value: String?
                    if current == UInt8(ascii: "=") {
                        index += 1
                        skipOWS()
                        value = current == UInt8(ascii: "\"") ? quotedString() : token()
                        guard value != nil else { return false }
                        skipOWS()
                    }
                    offer.parameters.append((parameter, value))
                }
                offers.append(offer)
                guard let next = current else { return true }
                guard next == UInt8(ascii: ",") else { return false }
                index += 1
            }
        }
    }
}
