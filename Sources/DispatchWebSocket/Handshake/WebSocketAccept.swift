/// The `Sec-WebSocket-Accept` value (RFC 6455 §4.2.2 step 5.4): base64(SHA-1(key + GUID)).
///
/// Proves to the client that the server read its key, so a plain HTTP server or a cache that
/// replays an old response cannot be mistaken for a WebSocket endpoint.
enum WebSocketAccept {
    /// The fixed GUID of RFC 6455 §1.3, appended to the client's key before hashing.
    static let guid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

    /// The accept value for `key`, used as sent (the header parser already trimmed it).
    static func value(forKey key: String) -> String {
        var input: [UInt8] = []
        input.reserveCapacity(key.utf8.count + guid.utf8.count)
        input.append(contentsOf: key.utf8)
        input.append(contentsOf: guid.utf8)
        return Base64.encode(SHA1.hash(input))
    }
}
