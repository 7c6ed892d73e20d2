import COpenSSL

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// An OpenSSL `SSL_CTX` built once from a ``TLSServerConfiguration`` or ``TLSClientConfiguration``
/// and shared by every connection of that server or client (OpenSSL allows `SSL_new` on one
/// context from any thread).
///
/// Certificates, keys and CA bundles are read here, so every configuration problem surfaces
/// when the server starts listening or the client connects, as
/// ``WebSocketError/Code/tlsConfigurationInvalid``.
final class TLSContext: @unchecked Sendable {
    // @unchecked Sendable: `context` is immutable after init (OpenSSL locks its own state);
    // the SNI cache is guarded by `lock`.
    let context: OpaquePointer
    let isServer: Bool
    let client: TLSClientConfiguration?
    private let server: TLSServerConfiguration?
    private let lock = Lock()
    /// Contexts for the identities the SNI selector chose, each built once.
    private var selected: [TLSIdentity: TLSContext] = [:]

    /// The most a certificate, key or CA file may hold.
    static let maxPEMFileBytes = 1024 * 1024

    private init(context: OpaquePointer, server: TLSServerConfiguration?, client: TLSClientConfiguration?) {
        self.context = context
        self.isServer = server != nil
        self.server = server
        self.client = client
    }

    deinit {
        SSL_CTX_free(context)
    }

    static func server(_ configuration: TLSServerConfiguration) throws(WebSocketError) -> TLSContext {
        try server(configuration, identity: configuration.identity)
    }

    private static func server(_ configuration: TLSServerConfiguration, identity: TLSIdentity) throws(WebSocketError)
        -> TLSContext
    {
        let ctx = try makeContext(TLS_server_method(), minimumVersion: configuration.minimumVersion)
        let tls = TLSContext(context: ctx, server: configuration, client: nil)
        try check(SSL_CTX_set_cipher_list(ctx, configuration.cipherList), "invalid cipherList")
        try check(SSL_CTX_set_ciphersuites(ctx, configuration.cipherSuites), "invalid cipherSuites")
        try use(identity, in: ctx)
        // Stateless tickets still allow resumption; a server-side cache would hold every
        // session in memory.
        _ = dws_SSL_CTX_set_session_cache_mode(ctx, Int(SSL_SESS_CACHE_OFF))
        guard (0...8).contains(configuration.sessionTickets) else {
            throw WebSocketError(
                .tlsConfigurationInvalid, "sessionTickets must be 0...8, not \(configuration.sessionTickets)")
        }
        _ = dws_SSL_CTX_set_num_tickets(ctx, configuration.sessionTickets)
        if configuration.sessionTickets == 0 { _ = dws_SSL_CTX_set_options(ctx, dws_ssl_no_ticket_option()) }
        let sessionContext: [UInt8] = Array("DispatchWebSocket".utf8)
        _ = dws_SSL_CTX_set_session_id_context(ctx, sessionContext, UInt32(sessionContext.count))
        SSL_CTX_set_alpn_select_cb(ctx, selectHTTP11, nil)
        switch configuration.clientCertificates {
        case .none:
            break
        case .request, .require:
            try trust(configuration.clientCertificateTrustRoots, in: ctx, announceToClients: true)
            let require = configuration.clientCertificates == .require ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0
            SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | require, nil)
        }
        if configuration.certificateSelector != nil {
            _ = dws_SSL_CTX_set_tlsext_servername_callback(ctx, chooseBySNI)
            _ = dws_SSL_CTX_set_tlsext_servername_arg(ctx, Unmanaged.passUnretained(tls).toOpaque())
        }
        return tls
    }

    static func client(_ configuration: TLSClientConfiguration) throws(WebSocketError) -> TLSContext {
        let ctx = try makeContext(TLS_client_method(), minimumVersion: configuration.minimumVersion)
        let tls = TLSContext(context: ctx, server: nil, client: configuration)
        _ = dws_SSL_CTX_set_session_cache_mode(ctx, Int(SSL_SESS_CACHE_OFF))
        let alpn: [UInt8] = [8] + Array("http/1.1".utf8)
        guard SSL_CTX_set_alpn_protos(ctx, alpn, UInt32(alpn.count)) == 0 else {
            throw TLSErrorMapping.drainErrorQueue(context: "cannot set ALPN")
        }
        switch configuration.verification {
        case .full:
            try trust(configuration.trustRoots, in: ctx, announceToClients: false)
            SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nil)
        case .insecureNoVerification:
            SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nil)
        }
        if let identity = configuration.identity { try use(identity, in: ctx) }
        return tls
    }

    /// A new `SSL` for one connection, or `nil` when OpenSSL is out of memory.
    func makeSSL() -> OpaquePointer? {
        SSL_new(context)
    }

    /// The context for an identity the SNI selector chose (built on first use).
    fileprivate func context(for identity: TLSIdentity) throws(WebSocketError) -> TLSContext {
        if let cached = lock.withLock({ selected[identity] }) { return cached }
        guard let server else { throw WebSocketError(.tlsConfigurationInvalid, "no server configuration") }
        let made = try Self.server(server, identity: identity)
        return lock.withLock {
            if let raced = selected[identity] { return raced }
            selected[identity] = made
            return made
        }
    }

    fileprivate func select(serverName: String) -> TLSIdentity? {
        guard let identity = server?.certificateSelector?(serverName), identity != server?.identity else { return nil }
        return identity
    }

    // MARK: Building

    private static func makeContext(_ method: OpaquePointer?, minimumVersion: TLSVersion) throws(WebSocketError)
        -> OpaquePointer
    {
        ERR_clear_error()
        guard let ctx = SSL_CTX_new(method) else {
            throw TLSErrorMapping.drainErrorQueue(context: "cannot create an SSL_CTX")
        }
        _ = dws_SSL_CTX_set_options(ctx, dws_ssl_default_options())
        _ = dws_SSL_CTX_set_min_proto_version(ctx, minimumVersion.openSSLValue)
        // Records the socket did not take are kept by TLSStream, not OpenSSL. Idle connections
        // give their 16-34 KiB record buffers back from the end of the handshake on
        // (`SSL_MODE_RELEASE_BUFFERS`, set by TLSStream then): during the handshake it would free
        // and take them again for every flight.
        _ = dws_SSL_CTX_set_mode(ctx, Int(SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER))
        _ = dws_SSL_CTX_set1_groups_list(ctx, "X25519:P-256:P-384")
        return ctx
    }

    private static func check(_ result: Int32, _ what: String) throws(WebSocketError) {
        guard result == 1 else {
            let error = TLSErrorMapping.drainErrorQueue(context: what)
            throw WebSocketError(.tlsConfigurationInvalid, error.message)
        }
    }

    /// Loads the chain (leaf first) and the key, and checks that they belong together.
    private static func use(_ identity: TLSIdentity, in ctx: OpaquePointer) throws(WebSocketError) {
        let chain: [UInt8]
        let key: [UInt8]
        let chainName: String
        let keyName: String
        switch identity.source {
        case .files(let chainPath, let keyPath):
            chain = try readFile(chainPath)
            key = try readFile(keyPath)
            (chainName, keyName) = (chainPath, keyPath)
        case .pem(let chainBytes, let keyBytes):
            (chain, key) = (chainBytes, keyBytes)
            (chainName, keyName) = ("the certificate chain", "the private key")
        }
        let certificates = try readCertificates(chain, from: chainName)
        defer { for certificate in certificates { X509_free(certificate) } }
        ERR_clear_error()
        guard SSL_CTX_use_certificate(ctx, certificates[0]) == 1 else {
            throw invalid("\(chainName): the certificate cannot be used", draining: true)
        }
        for intermediate in certificates.dropFirst() {
            guard dws_SSL_CTX_add1_chain_cert(ctx, intermediate) == 1 else {
                throw invalid("\(chainName): an intermediate certificate cannot be used", draining: true)
            }
        }
        let privateKey = key.withUnsafeBytes { bytes -> OpaquePointer? in
            let bio = BIO_new_mem_buf(bytes.baseAddress, Int32(bytes.count))
            defer { BIO_free(bio) }
            return withPassword(identity.password) { PEM_read_bio_PrivateKey(bio, nil, passwordCallback, $0) }
        }
        guard let privateKey else {
            throw invalid(
                "\(keyName): no private key could be read (malformed, or encrypted and the password is missing or wrong)",
                draining: true)
        }
        defer { EVP_PKEY_free(privateKey) }
        guard SSL_CTX_use_PrivateKey(ctx, privateKey) == 1, SSL_CTX_check_private_key(ctx) == 1 else {
            throw invalid("\(keyName) does not belong to the certificate in \(chainName)", draining: true)
        }
    }

    /// Adds CA certificates to the context's store (and, for a server asking for client
    /// certificates, names them in its CertificateRequest).
    private static func trust(_ roots: TLSTrustRoots, in ctx: OpaquePointer, announceToClients: Bool)
        throws(WebSocketError)
    {
        let bundle: [UInt8]
        let name: String
        switch roots {
        case .system:
            guard SSL_CTX_set_default_verify_paths(ctx) == 1 else {
                throw invalid("the system trust store cannot be loaded", draining: true)
            }
            return
        case .pemFile(let path):
            bundle = try readFile(path)
            name = path
        case .pem(let bytes):
            bundle = bytes
            name = "the CA bundle"
        }
        let certificates = try readCertificates(bundle, from: name)
        defer { for certificate in certificates { X509_free(certificate) } }
        let store = SSL_CTX_get_cert_store(ctx)
        for certificate in certificates {
            guard X509_STORE_add_cert(store, certificate) == 1 else {
                throw invalid("\(name): a CA certificate cannot be added", draining: true)
            }
            if announceToClients { _ = SSL_CTX_add_client_CA(ctx, certificate) }
        }
    }

    /// Every certificate in a PEM bundle, at least one; the caller frees them.
    private static func readCertificates(_ pem: [UInt8], from name: String) throws(WebSocketError) -> [OpaquePointer] {
        ERR_clear_error()
        let certificates = pem.withUnsafeBytes { bytes -> [OpaquePointer] in
            let bio = BIO_new_mem_buf(bytes.baseAddress, Int32(bytes.count))
            defer { BIO_free(bio) }
            var found: [OpaquePointer] = []
            while let certificate = PEM_read_bio_X509(bio, nil, nil, nil) { found.append(certificate) }
            return found
        }
        ERR_clear_error()  // the read that ended the loop left "no start line"
        guard !certificates.isEmpty else { throw invalid("\(name) holds no PEM certificate", draining: false) }
        return certificates
    }

    private static func invalid(_ message: String, draining: Bool) -> WebSocketError {
        guard draining else { return WebSocketError(.tlsConfigurationInvalid, message) }
        let detail = TLSErrorMapping.drainErrorQueue(context: "").message
        return WebSocketError(.tlsConfigurationInvalid, detail.isEmpty ? message : "\(message): \(detail)")
    }

    /// Reads a PEM file (bounded by ``maxPEMFileBytes``).
    static func readFile(_ path: String) throws(WebSocketError) -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw WebSocketError(.tlsConfigurationInvalid, "cannot open \(path)", errno: errno) }
        defer { _ = close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 16 * 1024)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            guard n >= 0 else { throw WebSocketError(.tlsConfigurationInvalid, "cannot read \(path)", errno: errno) }
            if n == 0 { return bytes }
            bytes.append(contentsOf: chunk[0..<n])
            guard bytes.count <= maxPEMFileBytes else {
                throw WebSocketError(.tlsConfigurationInvalid, "\(path) is larger than \(maxPEMFileBytes) bytes")
            }
        }
    }
}

/// Hands OpenSSL the key's password (`userdata` is a C string, or nil for none). Without this
/// callback OpenSSL would prompt on the terminal for an encrypted key.
private func passwordCallback(
    _ buffer: UnsafeMutablePointer<CChar>?, _ size: Int32, _ rwflag: Int32, _ userdata: UnsafeMutableRawPointer?
) -> Int32 {
    guard let buffer, let userdata else { return 0 }
    let password = userdata.assumingMemoryBound(to: CChar.self)
    let length = min(Int(strlen(password)), Int(size))
    buffer.update(from: password, count: length)
    return Int32(length)
}

private func withPassword<R>(_ password: String?, _ body: (UnsafeMutableRawPointer?) -> R) -> R {
    guard let password else { return body(nil) }
    var cString = Array(password.utf8CString)
    defer { for i in cString.indices { cString[i] = 0 } }  // do not leave the password in freed memory
    return cString.withUnsafeMutableBytes { body($0.baseAddress) }
}

/// ALPN: choose `http/1.1` when the client offers it; otherwise go on without ALPN (a WebSocket
/// upgrade is HTTP/1.1 whatever the client hoped for).
private func selectHTTP11(
    _ ssl: OpaquePointer?, _ out: UnsafeMutablePointer<UnsafePointer<UInt8>?>?,
    _ outLength: UnsafeMutablePointer<UInt8>?,
    _ offered: UnsafePointer<UInt8>?, _ offeredLength: UInt32, _ arg: UnsafeMutableRawPointer?
) -> Int32 {
    guard let offered, let out, let outLength else { return SSL_TLSEXT_ERR_NOACK }
    let wanted: [UInt8] = Array("http/1.1".utf8)
    var index = 0
    while index < Int(offeredLength) {
        let length = Int(offered[index])
        let start = index + 1
        guard start + length <= Int(offeredLength) else { break }
        if length == wanted.count && (0..<length).allSatisfy({ offered[start + $0] == wanted[$0] }) {
            out.pointee = offered + start
            outLength.pointee = UInt8(length)
            return SSL_TLSEXT_ERR_OK
        }
        index = start + length
    }
    return SSL_TLSEXT_ERR_NOACK
}

/// SNI: switch the connection to the identity the app's selector picked for the name.
private func chooseBySNI(_ ssl: OpaquePointer?, _ alert: UnsafeMutablePointer<Int32>?, _ arg: UnsafeMutableRawPointer?)
    -> Int32
{
    guard let ssl, let arg, let name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name) else {
        return SSL_TLSEXT_ERR_OK
    }
    let tls = Unmanaged<TLSContext>.fromOpaque(arg).takeUnretainedValue()
    guard let identity = tls.select(serverName: String(cString: name)) else { return SSL_TLSEXT_ERR_OK }
    do throws(WebSocketError) {
        let chosen = try tls.context(for: identity)
        guard SSL_set_SSL_CTX(ssl, chosen.context) != nil else { throw WebSocketError(.tlsConfigurationInvalid, "") }
        return SSL_TLSEXT_ERR_OK
    } catch {
        alert?.pointee = SSL_AD_INTERNAL_ERROR
        return SSL_TLSEXT_ERR_ALERT_FATAL
    }
}
