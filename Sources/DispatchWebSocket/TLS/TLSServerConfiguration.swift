/// TLS settings of a ``WebSocketServer``: with them set in ``WebSocketServer/Configuration/tls``
/// the server speaks only `wss://` (and `https://` for ``WebSocketServer/onHTTPRequest``) on its
/// port.
///
/// ```swift
/// var configuration = WebSocketServer.Configuration()
/// configuration.tls = TLSServerConfiguration(
///     identity: .pemFiles(certificateChain: "cert.pem", privateKey: "key.pem"))
/// let server = WebSocketServer(configuration: configuration)
/// ```
///
/// The defaults follow current practice for a public server: TLS 1.2 and 1.3 only, forward-secret
/// AEAD ciphers (ECDHE with AES-GCM or ChaCha20-Poly1305), no renegotiation, no TLS compression,
/// ALPN `http/1.1`.
public struct TLSServerConfiguration: Sendable {
    /// Whether and how the server asks clients for a certificate.
    public enum ClientCertificateMode: Sendable, Hashable {
        /// Never ask (the usual case for browsers).
        case none
        /// Ask; a client may send none, but one it sends must verify against
        /// ``TLSServerConfiguration/clientCertificateTrustRoots``.
        case request
        /// Ask and refuse a client that sends none or one that does not verify
        /// (the handshake fails with the `certificate_required` or `unknown_ca` alert).
        case require
    }

    /// The certificate chain and key presented when no ``certificateSelector`` answers.
    public var identity: TLSIdentity
    /// The oldest version accepted. Default: ``TLSVersion/v1_2``.
    public var minimumVersion: TLSVersion = .v1_2
    /// OpenSSL cipher list for TLS 1.2. Default: ECDHE with AES-GCM or ChaCha20-Poly1305
    /// (ECDSA or RSA certificates), the server's order.
    public var cipherList =
        "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"
    /// OpenSSL cipher suites for TLS 1.3. Default: all three AEAD suites.
    public var cipherSuites = "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"
    /// Client certificates. Default: ``ClientCertificateMode/none``.
    public var clientCertificates: ClientCertificateMode = .none
    /// The CAs client certificates must chain to (used unless ``clientCertificates`` is
    /// ``ClientCertificateMode/none``). Default: ``TLSTrustRoots/system``.
    public var clientCertificateTrustRoots: TLSTrustRoots = .system
    /// Chooses the certificate by the name the client asked for (SNI), or `nil` to keep
    /// ``identity``. Called on a loop queue during the handshake, once per connection that sends
    /// SNI; each distinct identity is loaded once and then cached. Default: `nil`.
    public var certificateSelector: (@Sendable (_ serverName: String) -> TLSIdentity?)? = nil
    /// TLS handshakes in progress at once, over the whole server. Connections beyond it wait,
    /// unread, for a slot (still bounded by ``WebSocketServer/Configuration/handshakeTimeout``),
    /// so a flood of handshakes cannot take all the CPU from open connections. Default: 128.
    public var maxHandshakesInProgress = 128
    /// Session tickets sent after each full handshake (stateless: the server keeps nothing). A
    /// client that comes back with one resumes without a certificate signature, which costs
    /// the server less than a full handshake; issuing one costs a little on every full handshake.
    /// `0` turns resumption off (TLS 1.2 tickets too). At most 8. Default: 1.
    public var sessionTickets = 1

    /// A configuration presenting `identity`, with the defaults above.
    public init(identity: TLSIdentity) {
        self.identity = identity
    }
}
