import COpenSSL

/// Turns OpenSSL's failure reports — certificate verification results and the thread-local
/// error queue — into ``WebSocketError``s with a stable code and OpenSSL's own words.
enum TLSErrorMapping {
    /// The error for a failed certificate verification, from `SSL_get_verify_result`'s `result`.
    ///
    /// - Parameters:
    ///   - result: an `X509_V_ERR_*` code (not `X509_V_OK`).
    ///   - expectedHost: the host name or IP address the certificate was checked against, named
    ///     in a hostname-mismatch message.
    /// - Returns: `.certificateUntrusted` for an unknown or self-signed issuer,
    ///   `.certificateExpired`, `.certificateNotYetValid`, `.certificateHostnameMismatch`, or
    ///   `.certificateInvalid` for anything else; the message always carries
    ///   `X509_verify_cert_error_string`.
    static func verificationFailure(_ result: Int, expectedHost: String?) -> WebSocketError {
        let reason = verifyErrorString(result)
        let detail = "\(reason) (X509 verify error \(result))"
        switch Int32(truncatingIfNeeded: result) {
        case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT, X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY,
            X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN, X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT,
            X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE, X509_V_ERR_CERT_UNTRUSTED:
            return WebSocketError(.certificateUntrusted, "peer certificate is not trusted: \(detail)")
        case X509_V_ERR_CERT_HAS_EXPIRED:
            return WebSocketError(.certificateExpired, "peer certificate has expired: \(detail)")
        case X509_V_ERR_CERT_NOT_YET_VALID:
            return WebSocketError(.certificateNotYetValid, "peer certificate is not valid yet: \(detail)")
        case X509_V_ERR_HOSTNAME_MISMATCH, X509_V_ERR_IP_ADDRESS_MISMATCH:
            let host = expectedHost.map { "\"\($0)\"" } ?? "the expected host"
            return WebSocketError(
                .certificateHostnameMismatch, "peer certificate is not valid for \(host): \(detail)")
        default:
            return WebSocketError(.certificateInvalid, "peer certificate verification failed: \(detail)")
        }
    }

    /// Empties the calling thread's OpenSSL error queue and describes its first error.
    ///
    /// - Parameter context: what was being done, e.g. `"TLS handshake"`; the message starts with it.
    /// - Returns: `.tlsAlertReceived` (naming the alert) when the peer sent an alert,
    ///   `.certificateRequired` when it sent none or alerted "certificate required",
    ///   `.certificateInvalid` for a failed verification (refine it with
    ///   ``verificationFailure(_:expectedHost:)``), otherwise `.tlsHandshakeFailed`.
    static func drainErrorQueue(context: String) -> WebSocketError {
        error(forCodes: drainErrorCodes(), context: context)
    }

    /// Empties the calling thread's OpenSSL error queue and returns the library and reason of
    /// its first (oldest) error, or nil if it was empty.
    static func drainFirstReason() -> (lib: Int32, reason: Int32)? {
        guard let first = drainErrorCodes().first else { return nil }
        return (ERR_GET_LIB(first), ERR_GET_REASON(first))
    }

    /// Empties the calling thread's OpenSSL error queue, returning every packed error code,
    /// oldest first.
    static func drainErrorCodes() -> [UInt] {
        var codes: [UInt] = []
        while true {
            let code = ERR_get_error()
            if code == 0 { return codes }
            codes.append(code)
        }
    }

    /// The error for packed OpenSSL error codes (oldest first), as ``drainErrorQueue(context:)``
    /// maps them; the queue itself is not touched.
    static func error(forCodes codes: [UInt], context: String) -> WebSocketError {
        guard let first = codes.first else {
            return WebSocketError(.tlsHandshakeFailed, "\(context): unknown TLS error")
        }
        // The TLS layer's own reason is the telling one; a lower library's (a provider, a
        // decoder) is queued first and only explains it.
        let primary = codes.first { ERR_GET_LIB($0) == ERR_LIB_SSL } ?? first
        let text = "\(context): \(errorString(primary))"
        guard ERR_GET_LIB(primary) == ERR_LIB_SSL else { return WebSocketError(.tlsHandshakeFailed, text) }
        let reason = ERR_GET_REASON(primary)
        if let alert = alertNumber(reason: reason) {
            if alert == 116 {
                return WebSocketError(.certificateRequired, "\(text) (peer alert: certificate required)")
            }
            return WebSocketError(.tlsAlertReceived, "\(text) (peer alert: \(alertName(alert)))")
        }
        switch reason {
        case SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE:
            return WebSocketError(.certificateRequired, text)
        case SSL_R_CERTIFICATE_VERIFY_FAILED:
            return WebSocketError(.certificateInvalid, text)
        case SSL_R_HTTP_REQUEST:
            return WebSocketError(.tlsHandshakeFailed, "\(text) (the peer spoke plain HTTP to a TLS port)")
        default:
            return WebSocketError(.tlsHandshakeFailed, text)
        }
    }

    /// The TLS alert number for an `SSL_R_SSLV3_ALERT_*` / `SSL_R_TLSV1_ALERT_*` /
    /// `SSL_R_TLSV13_ALERT_*` reason (reason − `SSL_AD_REASON_OFFSET`), or nil for other reasons.
    static func alertNumber(reason: Int32) -> Int32? {
        let alert = reason - SSL_AD_REASON_OFFSET
        return (0...255).contains(alert) ? alert : nil
    }

    /// OpenSSL's long name for a TLS alert, e.g. `"unknown CA"`; `"certificate required"` for 116,
    /// which OpenSSL 3.0 has no name for.
    static func alertName(_ alert: Int32) -> String {
        let name = String(cString: SSL_alert_desc_string_long(alert))
        if name == "unknown", alert == 116 { return "certificate required" }
        return name == "unknown" ? "alert \(alert)" : name
    }

    /// `X509_verify_cert_error_string` for a verify result.
    static func verifyErrorString(_ result: Int) -> String {
        String(cString: X509_verify_cert_error_string(result))
    }

    /// `ERR_error_string_n` for a packed error code, e.g.
    /// `error:0A000086:SSL routines::certificate verify failed`.
    static func errorString(_ code: UInt) -> String {
        // libssl's reason strings are loaded by its initialisation (SSL_CTX_new does it); make
        // sure of it, so a message never reads "reason(134)". Run-once inside OpenSSL.
        _ = OPENSSL_init_ssl(UInt64(OPENSSL_INIT_LOAD_SSL_STRINGS | OPENSSL_INIT_LOAD_CRYPTO_STRINGS), nil)
        var buffer = [CChar](repeating: 0, count: 256)
        ERR_error_string_n(code, &buffer, buffer.count)
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
