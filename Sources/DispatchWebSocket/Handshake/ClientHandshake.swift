/// Why a server's handshake response was refused, naming the check that failed.
public struct ClientHandshakeError: Error, Equatable, CustomStringConvertible {
    /// The check that failed.
    public enum Check: Sendable, Equatable {
        /// The status was not 101.
        case status(Int)
        /// `Upgrade` does not contain `websocket`.
        case upgradeHeader
        /// `Connection` does not contain `Upgrade`.
        case connectionHeader
        /// `Sec-WebSocket-Accept` is missing or does not match our key.
        case acceptKey
        /// The server chose a subprotocol we did not offer.
        case unofferedProtocol(String)
        /// The server enabled an extension we did not offer (we offer none).
        case unofferedExtension(String)
    }

    /// Which check failed.
    public var check: Check

    /// A sentence naming the failed check.
    public var description: String {
        switch check {
        case .status(let status): return "the server answered \(status) instead of 101"
        case .upgradeHeader: return "the response's Upgrade header does not contain websocket"
        case .connectionHeader: return "the response's Connection header does not contain Upgrade"
        case .acceptKey: return "Sec-WebSocket-Accept does not match the key we sent"
        case .unofferedProtocol(let name): return "the server chose subprotocol \"\(name)\", which we did not offer"
        case .unofferedExtension(let name): return "the server enabled extension \"\(name)\", which we did not offer"
        }
    }
}

/// The client side of the opening handshake (RFC 6455 §4.1).
enum ClientHandshake {
    static func request(
        host: String, port: Int, defaultPort: Int, resource: String, key: String, protocols: [String], origin: String?,
        extraHeaders: HTTPHeaders
    ) -> [UInt8] {
        let shownHost = host.contains(":") ? "[\(host)]" : host
        var headers: HTTPHeaders = [
            "Host": port == defaultPort ? shownHost : "\(shownHost):\(port)",
            "Upgrade": "websocket",
            "Connection": "Upgrade",
            "Sec-WebSocket-Key": key,
            "Sec-WebSocket-Version": "13",
        ]
        if !protocols.isEmpty { headers.add(name: "Sec-WebSocket-Protocol", value: protocols.joined(separator: ", ")) }
        if let origin { headers.add(name: "Origin", value: origin) }
        for (name, value) in extraHeaders { headers.add(name: name, value: value) }
        var text = "GET \(resource) HTTP/1.1\r\n"
        for (name, value) in headers where !(name + value).utf8.contains(where: { $0 == 0x0D || $0 == 0x0A }) {
            text += "\(name): \(value)\r\n"
        }
        text += "\r\n"
        return Array(text.utf8)
    }

    /// Checks the response strictly and returns the negotiated subprotocol.
    static func validate(_ head: HTTPResponseHead, key: String, offeredProtocols: [String]) -> Result<String?, ClientHandshakeError> {
        guard head.status == 101 else { return .failure(ClientHandshakeError(check: .status(head.status))) }
        guard head.headers.containsToken("websocket", in: "Upgrade") else { return .failure(ClientHandshakeError(check: .upgradeHeader)) }
        guard head.headers.containsToken("upgrade", in: "Connection") else {
            return .failure(ClientHandshakeError(check: .connectionHeader))
        }
        let accepts = head.headers.values(for: "Sec-WebSocket-Accept")
        guard accepts.count == 1, accepts[0] == WebSocketAccept.value(forKey: key) else {
            return .failure(ClientHandshakeError(check: .acceptKey))
        }
        if let offered = head.headers.tokens(for: "Sec-WebSocket-Extensions").first {
            let name = offered.split(separator: ";").first.map { String($0.trimmingOWS) } ?? String(offered)
            return .failure(ClientHandshakeError(check: .unofferedExtension(name)))
        }
        let chosen = head.headers.tokens(for: "Sec-WebSocket-Protocol").map(String.init)
        guard let first = chosen.first else { return .success(nil) }
        guard chosen.count == 1, offeredProtocols.contains(first) else {
            return .failure(ClientHandshakeError(check: .unofferedProtocol(chosen.joined(separator: ", "))))
        }
        return .success(first)
    }
}
