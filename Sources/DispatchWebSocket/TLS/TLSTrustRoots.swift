/// The certificate authorities a peer's certificate must chain to.
public enum TLSTrustRoots: Sendable, Hashable {
    /// The system's trust store (OpenSSL's default paths; `SSL_CERT_FILE` and `SSL_CERT_DIR`
    /// override them, as for every OpenSSL program).
    case system
    /// The CA certificates in a PEM file (one or more).
    case pemFile(String)
    /// The CA certificates in PEM bytes in memory.
    case pem([UInt8])
}
