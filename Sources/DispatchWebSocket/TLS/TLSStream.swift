import COpenSSL

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// TLS for one connection: an OpenSSL `SSL` over a BIO of our own (uSockets' design), so OpenSSL
/// never touches the socket and never blocks.
///
/// - Ciphertext read from the socket (into the loop's shared read buffer) is offered to the BIO
///   for the length of one ``receive(_:deliver:)`` call; `SSL_read` runs until it wants more, so
///   nothing is left inside OpenSSL between reads (no `SSL_pending` stall after a pause), and
///   decrypted bytes go to the caller in the loop's plaintext buffer.
/// - Ciphertext OpenSSL produces goes to the loop's shared ``TLSOutputBuffer`` and is written to
///   the socket when the operation ends; only what the kernel did not take is copied into
///   ``pendingOutput``, so an idle connection holds no buffer of ours.
/// - ``write(iovecs:count:)`` seals everything one flush sends into as few records as possible:
///   small frames are copied together into 16 KiB records, large payloads are sealed in place.
///
/// Confined to the channel's loop (hence `@unchecked Sendable`). The OpenSSL error queue is
/// thread-local and loop queues move between threads, so it is cleared before every call.
final class TLSStream: OutboundSink, @unchecked Sendable {
    private let tls: TLSContext  // keeps the SSL_CTX (and its SNI callback's object) alive
    private let ssl: OpaquePointer
    private let socket: Socket
    private unowned let loop: EventLoop
    /// The host name or address the certificate must match (client role).
    private let expectedHost: String?

    private(set) var isHandshakeComplete = false
    /// The handshake completed during the last ``receive(_:deliver:)``; read once.
    private var handshakeJustCompleted = false
    private(set) var closeNotifySent = false
    private var failed = false
    /// The first socket error met while writing.
    private(set) var writeError: Socket.IOResult?

    /// Ciphertext the socket has not taken yet; empty (no storage) while the socket keeps up.
    private var pendingOutput: [UInt8] = []
    private var pendingStart = 0

    /// The ciphertext offered to OpenSSL during ``receive(_:deliver:)``.
    private var input = UnsafeRawBufferPointer(start: nil, count: 0)
    private var inputOffset = 0

    /// Bytes sealed per flush before they are written: bounds the loop's output buffer.
    static let maxSealPerWrite = 256 * 1024
    /// TLS's largest record payload.
    static let recordSize = 16 * 1024

    enum ReceiveOutcome {
        case ok
        /// The peer's `close_notify` (or an EOF OpenSSL was told to accept as one).
        case endOfStream
        case failed(WebSocketError)
    }

    init(context: TLSContext, socket: Socket, loop: EventLoop, expectedHost: String?) throws(WebSocketError) {
        ERR_clear_error()
        guard let ssl = context.makeSSL(), let bio = BIO_new(TLSStream.bioMethod) else {
            throw TLSErrorMapping.drainErrorQueue(context: "cannot create a TLS session")
        }
        self.tls = context
        self.ssl = ssl
        self.socket = socket
        self.loop = loop
        self.expectedHost = expectedHost
        BIO_set_data(bio, Unmanaged.passUnretained(self).toOpaque())
        BIO_set_init(bio, 1)
        SSL_set_bio(ssl, bio, bio)  // one BIO both ways; the SSL owns it
        if context.isServer {
            SSL_set_accept_state(ssl)
        } else {
            SSL_set_connect_state(ssl)
            if let host = expectedHost, context.client?.verification == .full {
                try configureVerification(host: host)
            } else if let host = expectedHost, !Self.isIPAddress(host) {
                _ = dws_SSL_set_tlsext_host_name(ssl, host)
            }
        }
    }

    deinit {
        SSL_free(ssl)
    }

    private func configureVerification(host: String) throws(WebSocketError) {
        let ok: Bool
        if Self.isIPAddress(host) {
            // No SNI for addresses (RFC 6066 §3); match the certificate's IP SANs.
            ok = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host) == 1
        } else {
            SSL_set_hostflags(ssl, UInt32(X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS))
            ok = SSL_set1_host(ssl, host) == 1 && dws_SSL_set_tlsext_host_name(ssl, host) == 1
        }
        guard ok else { throw TLSErrorMapping.drainErrorQueue(context: "cannot verify host \(host)") }
    }

    static func isIPAddress(_ host: String) -> Bool {
        var v4 = in_addr()
        var v6 = in6_addr()
        return inet_pton(AF_INET, host, &v4) == 1 || inet_pton(AF_INET6, host, &v6) == 1
    }

    // MARK: What the handshake established

    /// True once, after the receive that completed the handshake.
    func takeHandshakeCompleted() -> Bool {
        defer { handshakeJustCompleted = false }
        return handshakeJustCompleted
    }

    /// Whether OpenSSL gives the record buffers back whenever they are empty: from the end of the
    /// handshake on, so that an idle connection holds none.
    var releasesIdleBuffers: Bool { dws_SSL_get_mode(ssl) & Int(SSL_MODE_RELEASE_BUFFERS) != 0 }

    /// Whether the session could be resumed by a later connection (client role: the server
    /// sent a ticket that has arrived).
    var hasResumableSession: Bool {
        guard let session = SSL_get_session(ssl) else { return false }
        return SSL_SESSION_is_resumable(session) == 1
    }

    /// The name the client asked for with SNI (server role).
    var serverName: String? {
        SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name).map { String(cString: $0) }
    }

    /// The certificate the peer presented, if any (verified unless verification is off).
    var peerCertificate: WebSocketPeerCertificate? {
        guard let certificate = SSL_get1_peer_certificate(ssl) else { return nil }
        defer { X509_free(certificate) }
        return WebSocketPeerCertificate(x509: certificate)
    }

    /// "TLSv1.3" or "TLSv1.2".
    var protocolVersion: String { String(cString: SSL_get_version(ssl)) }

    /// The cipher suite in use, e.g. "TLS_AES_128_GCM_SHA256".
    var cipherSuite: String? { SSL_CIPHER_get_name(SSL_get_current_cipher(ssl)).map { String(cString: $0) } }

    // MARK: Reading

    /// Decrypts `ciphertext` (driving the handshake first). Plaintext goes to `deliver` in the
    /// loop's plaintext buffer; `deliver` returns false to stop (the channel closed).
    func receive(_ ciphertext: UnsafeRawBufferPointer, deliver: (UnsafeMutableRawBufferPointer) -> Bool)
        -> ReceiveOutcome
    {
        guard !failed else { return .failed(WebSocketError(.tlsError, "the TLS session has failed")) }
        input = ciphertext
        inputOffset = 0
        defer { input = UnsafeRawBufferPointer(start: nil, count: 0) }
        beginOutput()
        if !isHandshakeComplete {
            ERR_clear_error()
            let result = SSL_do_handshake(ssl)
            if result == 1 {
                isHandshakeComplete = true
                handshakeJustCompleted = true
                _ = dws_SSL_set_mode(ssl, Int(SSL_MODE_RELEASE_BUFFERS))  // see TLSContext
            } else {
                let error = SSL_get_error(ssl, result)
                if error == SSL_ERROR_WANT_READ {
                    endOutput()
                    return .ok
                }
                let failure = handshakeFailure(error)
                endOutput()  // the alert, if OpenSSL wrote one
                return .failed(failure)
            }
        }
        let plaintext = loop.tlsPlaintextBuffer
        var filled = 0
        var outcome = ReceiveOutcome.ok
        reading: while true {
            // Everything offered is consumed and OpenSSL holds nothing decrypted or unprocessed:
            // the SSL_read that would say WANT_READ is saved (one call, its error-queue work).
            if inputOffset == input.count && SSL_has_pending(ssl) == 0 { break }
            ERR_clear_error()
            var count = 0
            if SSL_read_ex(ssl, plaintext.baseAddress! + filled, plaintext.count - filled, &count) == 1 {
                filled += count
                // Gather several records before handing them up: fewer, larger parses.
                if plaintext.count - filled >= Self.recordSize { continue }
            } else {
                switch SSL_get_error(ssl, 0) {
                case SSL_ERROR_WANT_READ:
                    break reading
                case SSL_ERROR_ZERO_RETURN:
                    outcome = .endOfStream
                    break reading
                case let error:
                    failed = true
                    outcome = .failed(failure(error, during: "reading"))
                    break reading
                }
            }
            endOutput()
            guard deliver(UnsafeMutableRawBufferPointer(rebasing: plaintext[0..<filled])) else { return .ok }
            filled = 0
            beginOutput()
        }
        endOutput()
        if filled > 0 && !deliver(UnsafeMutableRawBufferPointer(rebasing: plaintext[0..<filled])) { return .ok }
        return outcome
    }

    private func handshakeFailure(_ error: Int32) -> WebSocketError {
        failed = true
        if error == SSL_ERROR_SSL, SSL_get_verify_result(ssl) != X509_V_OK {
            let verify = SSL_get_verify_result(ssl)
            ERR_clear_error()
            return TLSErrorMapping.verificationFailure(Int(verify), expectedHost: expectedHost)
        }
        return failure(error, during: "the TLS handshake")
    }

    private func failure(_ error: Int32, during step: String) -> WebSocketError {
        if ERR_peek_error() == 0 {
            return WebSocketError(.tlsHandshakeFailed, "\(step) failed (SSL_get_error \(error))")
        }
        let mapped = TLSErrorMapping.drainErrorQueue(context: step)
        if isHandshakeComplete && mapped.code == .tlsHandshakeFailed {
            return WebSocketError(.tlsError, mapped.message)
        }
        return mapped
    }

    /// The socket reached EOF: a clean end after the handshake, a failure during it.
    func endOfInputError() -> WebSocketError? {
        guard !isHandshakeComplete else { return nil }
        return WebSocketError(.tlsHandshakeFailed, "the peer closed the connection during the TLS handshake")
    }

    // MARK: Writing

    /// Seals plaintext iovecs (up to ``maxSealPerWrite`` bytes) and writes the records; returns
    /// the plaintext bytes taken. ``Socket/IOResult/wouldBlock`` while earlier records wait.
    func write(iovecs: UnsafeMutablePointer<iovec>, count: Int) -> Socket.IOResult {
        if let writeError { return writeError }
        switch writePending() {
        case .drained: break
        case .blocked: return .wouldBlock
        case .closed: return writeError ?? .endOfFile
        }
        beginOutput()
        let staging = loop.tlsStagingBuffer
        var staged = 0
        var taken = 0
        func seal(_ pointer: UnsafeRawPointer, _ length: Int) -> Bool {
            ERR_clear_error()
            var written = 0
            guard SSL_write_ex(ssl, pointer, length, &written) == 1 else {
                failed = true
                _ = TLSErrorMapping.drainErrorQueue(context: "writing")
                return false
            }
            return true
        }
        var ok = true
        sealing: for index in 0..<count where ok {
            var base = UnsafeRawPointer(iovecs[index].iov_base!)
            var length = min(Int(iovecs[index].iov_len), Self.maxSealPerWrite - taken)
            while length > 0 {
                if staged == 0 && length >= Self.recordSize {
                    // Whole records straight from the payload, no staging copy.
                    let direct = length - length % Self.recordSize
                    guard seal(base, direct) else {
                        ok = false
                        break sealing
                    }
                    base += direct
                    length -= direct
                    taken += direct
                    continue
                }
                let n = min(length, Self.recordSize - staged)
                (staging.baseAddress! + staged).copyMemory(from: base, byteCount: n)
                staged += n
                base += n
                length -= n
                taken += n
                if staged == Self.recordSize {
                    guard seal(staging.baseAddress!, staged) else {
                        ok = false
                        break sealing
                    }
                    staged = 0
                }
            }
            if taken >= Self.maxSealPerWrite { break }
        }
        if ok && staged > 0 { ok = seal(staging.baseAddress!, staged) }
        endOutput()
        guard ok else {
            writeError = .error(EPROTO)
            return .error(EPROTO)
        }
        return writeError ?? .bytes(taken)
    }

    /// Sends `close_notify` (once, after a completed handshake) and writes it if the socket takes it.
    func sendCloseNotify() {
        guard isHandshakeComplete, !closeNotifySent, !failed else { return }
        closeNotifySent = true
        beginOutput()
        ERR_clear_error()
        _ = SSL_shutdown(ssl)
        ERR_clear_error()
        endOutput()
    }

    var hasPendingOutput: Bool { pendingStart < pendingOutput.count }
    var pendingOutputCount: Int { pendingOutput.count - pendingStart }

    /// Writes the records the socket did not take earlier.
    func writePending() -> OutboundQueue.WriteOutcome {
        while hasPendingOutput {
            let result = pendingOutput.withUnsafeBytes { bytes in
                socket.write(UnsafeRawBufferPointer(rebasing: bytes[pendingStart...]))
            }
            switch result {
            case .bytes(let n):
                pendingStart += n
            case .wouldBlock:
                return .blocked
            case .endOfFile, .error:
                writeError = result
                pendingOutput = []
                pendingStart = 0
                return .closed(Self.error(result))
            }
        }
        if !pendingOutput.isEmpty {
            pendingOutput = []  // give the storage back
            pendingStart = 0
        }
        return .drained
    }

    static func error(_ result: Socket.IOResult) -> WebSocketError? {
        if case .error(let code) = result { return WebSocketError(.socketError, "write failed", errno: code) }
        return nil
    }

    // MARK: Output

    /// Makes the loop's output buffer this stream's for one OpenSSL call (or, when another
    /// stream's operation is under way on this loop, sends output to ``pendingOutput``).
    private func beginOutput() {
        if loop.tlsOutput.owner == nil { loop.tlsOutput.owner = ObjectIdentifier(self) }
    }

    /// Writes what the operation produced; what the socket does not take waits in ``pendingOutput``.
    private func endOutput() {
        guard loop.tlsOutput.owner == ObjectIdentifier(self) else { return }
        defer {
            loop.tlsOutput.count = 0
            loop.tlsOutput.owner = nil
        }
        let produced = loop.tlsOutput.bytes
        guard !produced.isEmpty else { return }
        var offset = 0
        if !hasPendingOutput && writeError == nil {
            while offset < produced.count {
                let result = socket.write(UnsafeRawBufferPointer(rebasing: produced[offset...]))
                guard case .bytes(let n) = result else {
                    if result != .wouldBlock { writeError = result }
                    break
                }
                offset += n
            }
        }
        if offset < produced.count && writeError == nil {
            pendingOutput.append(contentsOf: produced[offset...])
        }
    }

    /// Called by the BIO with ciphertext OpenSSL produced.
    fileprivate func produce(_ bytes: UnsafeRawBufferPointer) {
        if loop.tlsOutput.owner == ObjectIdentifier(self) && !hasPendingOutput {
            loop.tlsOutput.append(bytes)
        } else {
            pendingOutput.append(contentsOf: bytes)
        }
    }

    /// Called by the BIO when OpenSSL wants ciphertext.
    fileprivate func consume(into buffer: UnsafeMutableRawPointer, _ length: Int) -> Int {
        let n = min(length, input.count - inputOffset)
        guard n > 0 else { return 0 }
        buffer.copyMemory(from: input.baseAddress! + inputOffset, byteCount: n)
        inputOffset += n
        return n
    }

    // MARK: The BIO

    /// Made once, never changed after (OpenSSL only reads a BIO_METHOD): safe to share.
    nonisolated(unsafe) private static let bioMethod: OpaquePointer = {
        let method = BIO_meth_new(BIO_TYPE_SOURCE_SINK | BIO_get_new_index(), "DispatchWebSocket")!
        _ = BIO_meth_set_write(method) { bio, data, length in
            guard let bio, let data, length > 0, let stream = BIO_get_data(bio) else { return 0 }
            dws_BIO_clear_retry_flags(bio)
            Unmanaged<TLSStream>.fromOpaque(stream).takeUnretainedValue()
                .produce(UnsafeRawBufferPointer(start: data, count: Int(length)))
            return length
        }
        _ = BIO_meth_set_read(method) { bio, buffer, length in
            guard let bio, let buffer, length > 0, let stream = BIO_get_data(bio) else { return 0 }
            dws_BIO_clear_retry_flags(bio)
            let n = Unmanaged<TLSStream>.fromOpaque(stream).takeUnretainedValue().consume(into: buffer, Int(length))
            if n == 0 {
                dws_BIO_set_retry_read(bio)  // more when the socket has it
                return -1
            }
            return Int32(n)
        }
        _ = BIO_meth_set_ctrl(method) { _, command, _, _ in
            command == BIO_CTRL_FLUSH ? 1 : 0
        }
        _ = BIO_meth_set_create(method) { _ in 1 }
        _ = BIO_meth_set_destroy(method) { _ in 1 }
        return method
    }()
}

/// Ciphertext produced during one OpenSSL call on a loop, before it is written: shared by the
/// loop's TLS connections so that none keeps a write buffer of its own.
struct TLSOutputBuffer {
    private(set) var storage = UnsafeMutableRawBufferPointer(start: nil, count: 0)
    var count = 0
    /// The stream whose operation is filling it.
    var owner: ObjectIdentifier?

    var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(rebasing: storage[0..<count]) }

    mutating func append(_ bytes: UnsafeRawBufferPointer) {
        if count + bytes.count > storage.count {
            let grown = UnsafeMutableRawBufferPointer.allocate(
                byteCount: max(count + bytes.count, storage.count * 2, TLSStream.maxSealPerWrite + 64 * 1024),
                alignment: 16)
            if count > 0 { grown.baseAddress!.copyMemory(from: storage.baseAddress!, byteCount: count) }
            storage.deallocate()
            storage = grown
        }
        (storage.baseAddress! + count).copyMemory(from: bytes.baseAddress!, byteCount: bytes.count)
        count += bytes.count
    }
}
