/// What a valid opening handshake asked for (RFC 6455 §4.2.1).
struct ValidatedUpgrade: Sendable {
    var key: String
    var host: String
    var version: Int
    var requestedProtocols: [String]
    var requestedExtensions: [WebSocketExtensionOffer]
    var origin: String?
}

/// Why an opening handshake is refused: the HTTP status, a short reason for the body, and
/// headers to add (426 carries `Sec-WebSocket-Version: 13`).
struct HandshakeRejection: Error, Equatable {
    var status: Int
    var reason: String
    var headers: HTTPHeaders = [:]
}

/// The server side of the opening handshake: deciding whether a request is an upgrade,
/// validating it, and writing the 101 response.
enum ServerHandshake {
    /// Whether the request asks for a WebSocket (an `Upgrade` token list containing
    /// `websocket`); other requests are plain HTTP.
    static func isUpgradeRequest(_ head: HTTPRequestHead) -> Bool {
        head.headers.containsToken("websocket", in: "Upgrade")
    }

    static func validate(_ head: HTTPRequestHead) -> Result<ValidatedUpgrade, HandshakeRejection> {
        func reject(_ reason: String) -> Result<ValidatedUpgrade, HandshakeRejection> {
            .failure(HandshakeRejection(status: 400, reason: reason))
        }
        guard head.method == "GET" else { return reject("the WebSocket handshake must use GET") }
        guard head.version >= HTTPVersion(major: 1, minor: 1) else { return reject("the WebSocket handshake needs HTTP/1.1") }
        let hosts = head.headers.values(for: "Host")
        guard hosts.count == 1, !hosts[0].isEmpty else { return reject("missing or repeated Host header") }
        guard head.headers.containsToken("upgrade", in: "Connection") else {
            return reject("the Connection header must contain \"Upgrade\"")
        }
        let versions = head.headers.values(for: "Sec-WebSocket-Version")
        guard versions.count == 1, versions[0] == "13" else {
            return .failure(HandshakeRejection(
                status: 426, reason: "unsupported WebSocket version; this server speaks 13",
                headers: ["Sec-WebSocket-Version": "13"]))
        }
        let keys = head.headers.values(for: "Sec-WebSocket-Key")
        guard keys.count == 1, let decoded = Base64.decode(keys[0]), decoded.count == 16 else {
            return reject("Sec-WebSocket-Key must be the base64 encoding of 16 bytes")
        }
        let protocols = head.headers.tokens(for: "Sec-WebSocket-Protocol").map(String.init)
        guard protocols.allSatisfy({ $0.utf8.allSatisfy(WebSocketCookie.isTokenByte) }) else {
            return reject("Sec-WebSocket-Protocol must list HTTP tokens")
        }
        guard Set(protocols).count == protocols.count else { return reject("duplicate subprotocols") }
        let extensions: [WebSocketExtensionOffer]
        switch WebSocketExtensionOffer.parse(head.headers.values(for: "Sec-WebSocket-Extensions")) {
        case .success(let offers): extensions = offers
        case .failure: return reject("malformed Sec-WebSocket-Extensions")
        }
        return .success(ValidatedUpgrade(
            key: keys[0], host: hosts[0], version: 13, requestedProtocols: protocols, requestedExtensions: extensions,
            origin: head.headers["Origin"] ?? head.headers["Sec-WebSocket-Origin"]))
    }

    /// The 101 Switching Protocols response.
    static func acceptResponse(key: String, protocol: String?, extraHeaders: HTTPHeaders) -> [UInt8] {
        var headers: HTTPHeaders = [
            "Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Accept": WebSocketAccept.value(forKey: key),
        ]
        if let `protocol` { headers.add(name: "Sec-WebSocket-Protocol", value: `protocol`) }
        for (name, value) in extraHeaders { headers.add(name: name, value: value) }
        return HTTPResponseWriter.head(status: 101, headers: headers)
    }
}

/// One extension a client offered in `Sec-WebSocket-Extensions`, with its parameters
/// (e.g. `permessage-deflate; client_max_window_bits`).
public struct WebSocketExtensionOffer: Sendable, Equatable {
    /// One `name[=value]` parameter of an extension offer.
    public struct Parameter: Sendable, Equatable {
        /// The parameter name.
        public var name: String
        /// `nil` for a parameter without `=value`; quoted strings are unquoted.
        public var value: String?
    }

    /// The extension name, e.g. `permessage-deflate`.
    public var name: String
    /// The parameters, in order.
    public var parameters: [Parameter]

    /// Parses header values (RFC 6455 §9.1); fails on an empty name or a malformed parameter.
    static func parse(_ values: [String]) -> Result<[WebSocketExtensionOffer], HandshakeRejection> {
        var offers: [WebSocketExtensionOffer] = []
        for value in values {
            for element in splitOutsideQuotes(Substring(value), separator: ",") {
                let parts = splitOutsideQuotes(element, separator: ";").map { $0.trimmingOWS }
                guard let name = parts.first, !name.isEmpty, name.utf8.allSatisfy(WebSocketCookie.isTokenByte) else {
                    if parts.allSatisfy({ $0.isEmpty }) { continue }
                    return .failure(HandshakeRejection(status: 400, reason: "malformed extension"))
                }
                var parameters: [Parameter] = []
                for part in parts.dropFirst() where !part.isEmpty {
                    if let equals = part.firstIndex(of: "=") {
                        var parameterValue = part[part.index(after: equals)...].trimmingOWS
                        if parameterValue.count >= 2, parameterValue.first == "\"", parameterValue.last == "\"" {
                            parameterValue = parameterValue.dropFirst().dropLast()
                        }
                        parameters.append(Parameter(name: String(part[..<equals].trimmingOWS), value: String(parameterValue)))
                    } else {
                        parameters.append(Parameter(name: String(part), value: nil))
                    }
                }
                offers.append(WebSocketExtensionOffer(name: String(name), parameters: parameters))
            }
        }
        return .success(offers)
    }

    private static func splitOutsideQuotes(_ text: Substring, separator: Character) -> [Substring] {
        var result: [Substring] = []
        var start = text.startIndex
        var quoted = false
        var index = text.startIndex
        while index < text.endIndex {
            let character = text[index]
            if character == "\"" { quoted.toggle() }
            if character == separator && !quoted {
                result.append(text[start..<index])
                start = text.index(after: index)
            }
            index = text.index(after: index)
        }
        result.append(text[start...])
        return result
    }
}
