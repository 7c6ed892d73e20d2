/// What a completed TLS handshake established, kept by the channel once it is known.
struct TLSSessionInfo: Sendable {
    var serverName: String?
    var peerCertificate: WebSocketPeerCertificate?
    var protocolVersion: String
    var cipherSuite: String?
}
