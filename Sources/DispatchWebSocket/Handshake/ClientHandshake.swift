/// Why a server's answer to our opening handshake was refused, naming the check that failed.
public struct ClientHandshakeError: Error, Equatable, CustomStringConvertible {
    /// The requirement of RFC 6455 §4.1 that the response broke.
    public enum Check: Sendable, Equatable {
        /// The status was not 101 Switching Protocols.
        case status(Int)
        /// `Upgrade` is missing or does not list `websocket`.
        case upgradeHeader
        /// `Connection` is missing or does not list `Upgrade`.
        case connectionHeader
        /// `Sec-WebSocket-Accept` is missing, repeated, or not derived from our key.
        case acceptKey
        /// The server chose a subprotocol we did not offer (or more than one).
        case unofferedProtocol(String)
        /// The server enabled an extension we did not offer.
        case unofferedExtension(String)
        /// The server's permessage-deflate answer breaks RFC 7692 or what we offered (an unknown
        /// or repeated parameter, a value out of range or above ours, a request it ignored).
        case extensionParameters(String)
    }

    /// The check that failed.
    public var check: Check

    /// A sentence naming the failed check, for logs.
    public var description: String {
        switch check {
        case .status(let status): return "the server answered \(status) instead of 101"
        case .upgradeHeader: return "the response's Upgrade header does not contain websocket"
        case .connectionHeader: return "the response's Connection header does not contain Upgrade"
        case .acceptKey: return "Sec-WebSocket-Accept does not match the key we sent"
        case .unofferedProtocol(let name): return "the server chose subprotocol \"\(name)\", which we did not offer"
        case .unofferedExtension(let name): return "the server enabled extension \"\(name)\", which we did not offer"
        case .extensionParameters(let reason):
            return "the server's permessage-deflate answer is not acceptable: \(reason)"
        }
    }
}

/// The client side of the opening handshake (RFC 6455 §4.1): writing the request and checking
/// the response.
///
/// The response is checked strictly, because the checks are what prove the peer is a WebSocket
/// server that read this request, rather than an HTTP server or cache that echoed or replayed
/// something: any failure means the connection must not be used (§4.1, "Fail the WebSocket
/// Connection").
enum ClientHandshake {
    /// The GET request that asks for the upgrade.
    ///
    /// `Host` omits the port when it is the scheme's default and brackets an IPv6 literal.
    /// `resource` is the path and query (`/chat?room=1`); a space, control character or
    /// non-ASCII byte in it is percent-encoded so it cannot break the request line. `extraHeaders` follow the
    /// WebSocket ones; a line that cannot be written safely is dropped (see `HTTPResponseWriter`).
    static func request(
        host: String, port: Int, defaultPort: Int, resource: String, key: String, protocols: [String], origin: String?,
        extraHeaders: HTTPHeaders
    ) -> [UInt8] {
        let bracketed = host.utf8.contains(UInt8(ascii: ":")) && !host.hasPrefix("[") ? "[\(host)]" : host
        var headers: HTTPHeaders = [
            "Host": port == defaultPort ? bracketed : "\(bracketed):\(port)",
            "Upgrade": "websocket",
            "Connection": "Upgrade",
            "Sec-WebSocket-Key": key,
            "Sec-WebSocket-Version": "13",
        ]
        if !protocols.isEmpty { headers.add(name: "Sec-WebSocket-Protocol", value: protocols.joined(separator: ", ")) }
        if let origin { headers.add(name: "Origin", value: origin) }
        for (name, value) in extraHeaders { headers.add(name: name, value: value) }

        var out: [UInt8] = []
        out.reserveCapacity(160 + resource.utf8.count + headers.count * 32)
        out.append(contentsOf: "GET ".utf8)
        appendTarget(resource.isEmpty ? "/" : resource, to: &out)
        out.append(contentsOf: " HTTP/1.1\r\n".utf8)
        HTTPResponseWriter.appendHeaders(headers, to: &out)
        out.append(contentsOf: [0x0D, 0x0A])
        return out
    }

    /// Checks the response (RFC 6455 §4.1, the client's checks of the server's handshake) and
    /// returns the subprotocol the server chose, `nil` when it chose none.
    ///
    /// `Sec-WebSocket-Accept` must occur once and match exactly. A `Sec-WebSocket-Protocol`
    /// header must name exactly one of `offeredProtocols` (compared exactly: subprotocol names
    /// are case-sensitive); an empty one counts as an unoffered protocol. Any
    /// `Sec-WebSocket-Extensions` header fails: this form is for a request that offered none.
    static func validate(_ head: HTTPResponseHead, key: String, offeredProtocols: [String]) -> Result<
        String?, ClientHandshakeError
    > {
        validate(head, key: key, offeredProtocols: offeredProtocols, offeredDeflate: nil).map(\.protocol)
    }

    /// ``validate(_:key:offeredProtocols:)`` after offering permessage-deflate with
    /// `offeredDeflate` (`nil`: no offer): also returns what the server agreed to, and fails on
    /// an answer we did not allow (RFC 7692 §5: the client fails the connection).
    static func validate(
        _ head: HTTPResponseHead, key: String, offeredProtocols: [String], offeredDeflate: PerMessageDeflateOptions?
    ) -> Result<(protocol: String?, deflate: PerMessageDeflateParameters?), ClientHandshakeError> {
        func fail(_ check: ClientHandshakeError.Check) -> Result<
            (protocol: String?, deflate: PerMessageDeflateParameters?), ClientHandshakeError
        > {
            .failure(ClientHandshakeError(check: check))
        }
        let headers = head.headers
        guard head.status == 101 else { return fail(.status(head.status)) }
        guard headers.containsToken("websocket", in: "Upgrade") else { return fail(.upgradeHeader) }
        guard headers.containsToken("upgrade", in: "Connection") else { return fail(.connectionHeader) }
        let accepts = headers.values(for: "Sec-WebSocket-Accept")
        guard accepts.count == 1, accepts[0] == WebSocketAccept.value(forKey: key) else { return fail(.acceptKey) }

        let extensions = headers.values(for: "Sec-WebSocket-Extensions")
        let deflate: PerMessageDeflateParameters?
        if offeredDeflate == nil && !extensions.isEmpty {
            let name = WebSocketExtensionOffer.parse(extensions)?.first?.name ?? extensions.joined(separator: ", ")
            return fail(.unofferedExtension(name))
        }
        switch PerMessageDeflateNegotiation.clientAccept(responseHeaders: extensions, options: offeredDeflate) {
        case .failure(let error): return .failure(error)
        case .success(let agreed): deflate = agreed
        }
        guard headers.contains("Sec-WebSocket-Protocol") else { return .success((nil, deflate)) }
        let chosen = headers.tokens(for: "Sec-WebSocket-Protocol")
        guard chosen.count == 1, let name = chosen.first, offeredProtocols.contains(where: { $0 == name }) else {
            return fail(.unofferedProtocol(chosen.joined(separator: ", ")))
        }
        return .success((String(name), deflate))
    }

    /// Appends `resource`, percent-encoding bytes that may not appear in a request-target.
    private static func appendTarget(_ resource: String, to out: inout [UInt8]) {
        let hex = Array("0123456789ABCDEF".utf8)
        for byte in resource.utf8 {
            if byte > 0x20 && byte < 0x7F {
                out.append(byte)
            } else {
                out.append(contentsOf: [UInt8(ascii: "%"), hex[Int(byte >> 4)], hex[Int(byte & 0x0F)]])
            }
        }
    }
}
