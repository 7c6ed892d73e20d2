/// A certificate chain and its private key: what a TLS server presents (and a client, when the
/// server asks for a client certificate).
///
/// ```swift
/// let identity = TLSIdentity.pemFiles(certificateChain: "/etc/ssl/example.pem", privateKey: "/etc/ssl/example.key")
/// ```
///
/// Files are read when the server starts listening (or the client connects), so a missing or
/// malformed file is reported there as ``WebSocketError/Code/tlsConfigurationInvalid``.
public struct TLSIdentity: Sendable, Hashable {
    enum Source: Sendable, Hashable {
        case files(certificateChain: String, privateKey: String)
        case pem(certificateChain: [UInt8], privateKey: [UInt8])
    }

    let source: Source
    let password: String?

    /// A PEM certificate chain (leaf first, then intermediates) and a PEM private key (RSA, EC or
    /// Ed25519; PKCS#8 or traditional), read from files.
    /// - Parameters:
    ///   - certificateChain: the path of the PEM certificate chain.
    ///   - privateKey: the path of the PEM private key.
    ///   - password: the key's password, when the key is encrypted.
    public static func pemFiles(certificateChain: String, privateKey: String, password: String? = nil) -> TLSIdentity {
        TLSIdentity(source: .files(certificateChain: certificateChain, privateKey: privateKey), password: password)
    }

    /// The same, from PEM bytes in memory (e.g. from a secret store).
    public static func pem(certificateChain: [UInt8], privateKey: [UInt8], password: String? = nil) -> TLSIdentity {
        TLSIdentity(source: .pem(certificateChain: certificateChain, privateKey: privateKey), password: password)
    }

    /// The same, from PEM text in memory.
    public static func pem(certificateChain: String, privateKey: String, password: String? = nil) -> TLSIdentity {
        pem(certificateChain: Array(certificateChain.utf8), privateKey: Array(privateKey.utf8), password: password)
    }
}
