/// The HTTP `CONNECT` exchange that opens a tunnel through a proxy (RFC 9110 §9.3.6): the request
/// naming the WebSocket server, and the reading and checking of the proxy's answer. Pure: bytes
/// in, bytes and verdicts out, no sockets (``ProxyTunnel`` does the I/O).
struct ProxyConnect {
    private var parser: HTTPHeadParser

    /// Reads an answer whose head may be at most `maxHeadBytes` long.
    init(maxHeadBytes: Int) {
        parser = HTTPHeadParser(maxHeadBytes: maxHeadBytes)
    }

    /// `CONNECT host:port HTTP/1.1`, `Host`, `Proxy-Authorization: Basic` when the proxy has a
    /// user name, then the proxy's extra headers.
    ///
    /// - Throws: ``WebSocketError/Code/invalidArgument`` for a host that cannot be written in a
    ///   request line (empty, spaces, control or non-ASCII characters: an internationalized name
    ///   must be given in its ASCII form).
    static func request(host: String, port: Int, proxy: WebSocketProxy) throws(WebSocketError) -> [UInt8] {
        guard !host.isEmpty,
            host.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F && $0 != UInt8(ascii: "/") && $0 != UInt8(ascii: "@") })
        else {
            throw WebSocketError(.invalidArgument, "the host \"\(host)\" cannot be sent in a CONNECT request")
        }
        let bracketed = host.utf8.contains(UInt8(ascii: ":")) && !host.hasPrefix("[") ? "[\(host)]" : host
        let authority = "\(bracketed):\(port)"
        var headers: HTTPHeaders = ["Host": authority]
        if let username = proxy.username {
            let credentials = Base64.encode(Array("\(username):\(proxy.password ?? "")".utf8))
            headers.add(name: "Proxy-Authorization", value: "Basic \(credentials)")
        }
        for (name, value) in proxy.headers { headers.add(name: name, value: value) }
        var out: [UInt8] = []
        out.reserveCapacity(64 + 2 * authority.utf8.count + proxy.headers.count * 32)
        out.append(contentsOf: "CONNECT \(authority) HTTP/1.1\r\n".utf8)
        HTTPResponseWriter.appendHeaders(headers, to: &out)
        out.append(contentsOf: [0x0D, 0x0A])
        return out
    }

    /// Feeds bytes the proxy sent: `nil` while its answer's head is incomplete, then success
    /// when it opened the tunnel (a 2xx status) or the error that ends the attempt
    /// (``WebSocketError/Code/proxyFailed``; with ``WebSocketError/httpStatus`` when the proxy
    /// answered with another status).
    ///
    /// Bytes after a 2xx head are refused: the server behind the tunnel has nothing to say before
    /// we speak, so they can only come from a proxy that does not tunnel.
    mutating func receive(_ bytes: UnsafeRawBufferPointer) -> Result<Void, WebSocketError>? {
        let parsed: (head: HTTPResponseHead, consumed: Int)?
        do throws(HTTPParseError) {
            parsed = try parser.parseResponse(bytes)
        } catch {
            switch error {
            case .headTooLarge:
                return .failure(
                    WebSocketError(.proxyFailed, "the proxy's answer to CONNECT exceeds maxProxyHeaderBytes"))
            case .malformed(let reason):
                return .failure(WebSocketError(.proxyFailed, "malformed answer from the proxy: \(reason)"))
            }
        }
        guard let (head, consumed) = parsed else { return nil }
        guard (200...299).contains(head.status) else {
            let reason = head.reason.isEmpty ? "" : " \(head.reason)"
            return .failure(
                WebSocketError(
                    .proxyFailed, "the proxy refused the tunnel: \(head.status)\(reason)", httpStatus: head.status))
        }
        guard consumed == bytes.count else {
            return .failure(
                WebSocketError(.proxyFailed, "the proxy sent bytes after its \(head.status) answer to CONNECT"))
        }
        return .success(())
    }
}
