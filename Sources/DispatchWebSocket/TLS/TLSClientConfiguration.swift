/// TLS settings of a ``WebSocketClient`` for `wss://` URLs.
///
/// By default the server's certificate must chain to the system's trust store and be valid for
/// the URL's host (a DNS name, or an IP address against the certificate's IP SANs); SNI carries
/// the host name.
///
/// ```swift
/// var configuration = WebSocketClient.Configuration()
/// configuration.tls.trustRoots = .pemFile("test-ca.pem")   // a private CA
/// ```
public struct TLSClientConfiguration: Sendable {
    /// How the server's certificate is checked.
    public enum Verification: Sendable, Hashable {
        /// Chain to ``TLSClientConfiguration/trustRoots``, validity dates, and the host name.
        case full
        /// No check at all: anyone on the path can read and change the traffic. Only for tests
        /// against throwaway certificates.
        case insecureNoVerification
    }

    /// The CAs the server's certificate must chain to. Default: ``TLSTrustRoots/system``.
    public var trustRoots: TLSTrustRoots = .system
    /// Default: ``Verification/full``.
    public var verification: Verification = .full
    /// A client certificate, for servers that ask for one. Default: `nil`.
    public var identity: TLSIdentity? = nil
    /// The name checked against the certificate and sent as SNI, when it differs from the URL's
    /// host. Default: `nil` (the URL's host).
    public var serverName: String? = nil
    /// The oldest version accepted. Default: ``TLSVersion/v1_2``.
    public var minimumVersion: TLSVersion = .v1_2

    /// The defaults above.
    public init() {}
}
