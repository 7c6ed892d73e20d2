/// The one error type of DispatchWebSocket: a stable ``Code`` to switch on and a readable message.
///
/// ```swift
/// connection.onError = { error in
///     if error.code == .messageTooBig { log("peer sent too much: \(error)") }
/// }
/// ```
public struct WebSocketError: Error, Sendable, Hashable, CustomStringConvertible {
    /// A stable category. New codes may be added; switch with a `default`.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private let name: String
        private init(_ name: String) { self.name = name }
        /// The code's name, e.g. `protocolError`.
        public var description: String { name }

        /// The peer broke RFC 6455 (bad framing, opcode, masking, close payload…). Close code 1002.
        public static let protocolError = Code("protocolError")
        /// A text message or close reason was not valid UTF-8. Close code 1007.
        public static let invalidUTF8 = Code("invalidUTF8")
        /// A frame or message exceeded a configured limit. Close code 1009.
        public static let messageTooBig = Code("messageTooBig")
        /// The connection is closing or closed, so the operation could not happen.
        public static let notConnected = Code("notConnected")
        /// A system call failed; ``WebSocketError/errno`` tells which error.
        public static let socketError = Code("socketError")
        /// A timeout fired (handshake, close handshake, keepalive, connect).
        public static let timeout = Code("timeout")
        /// An HTTP or WebSocket opening handshake failed.
        public static let handshakeFailed = Code("handshakeFailed")
        /// An argument was outside what the API or the RFC allows.
        public static let invalidArgument = Code("invalidArgument")
        /// More bytes were queued for sending than ``WebSocketConfiguration/maxQueuedBytes``.
        public static let sendQueueFull = Code("sendQueueFull")

        // TLS (wss://). The message carries OpenSSL's own reason.

        /// The TLS handshake failed: no common version or cipher, bytes that are not TLS (e.g.
        /// plain HTTP sent to a TLS port), or another protocol error.
        public static let tlsHandshakeFailed = Code("tlsHandshakeFailed")
        /// The peer ended the TLS handshake with an alert (the message names it, e.g.
        /// "certificate required", "unknown ca", "bad certificate").
        public static let tlsAlertReceived = Code("tlsAlertReceived")
        /// A TLS error after the handshake (a corrupt record, a renegotiation attempt).
        public static let tlsError = Code("tlsError")
        /// The peer's certificate does not chain to a trusted CA (unknown or self-signed issuer).
        public static let certificateUntrusted = Code("certificateUntrusted")
        /// The peer's certificate has expired.
        public static let certificateExpired = Code("certificateExpired")
        /// The peer's certificate is not valid yet.
        public static let certificateNotYetValid = Code("certificateNotYetValid")
        /// The peer's certificate is not valid for the host name or IP address we connected to.
        public static let certificateHostnameMismatch = Code("certificateHostnameMismatch")
        /// The peer sent no certificate although one is required.
        public static let certificateRequired = Code("certificateRequired")
        /// The peer's certificate failed verification for another reason (the message says which:
        /// revoked, bad signature, wrong purpose…).
        public static let certificateInvalid = Code("certificateInvalid")
        /// A TLS setting could not be used: a missing or malformed certificate, key or CA file, a
        /// wrong key password, a key that does not match its certificate.
        public static let tlsConfigurationInvalid = Code("tlsConfigurationInvalid")
        /// A compressed message (permessage-deflate) was not valid deflate data. Close code 1007.
        public static let invalidCompressedData = Code("invalidCompressedData")
        /// The HTTP proxy (``WebSocketProxy``) did not open a tunnel: it refused (its status is in
        /// ``WebSocketError/httpStatus``, e.g. 407 or 403), closed the connection, or answered
        /// something that is not HTTP or too large.
        public static let proxyFailed = Code("proxyFailed")

        // The async API.

        /// The connection closed with a code other than 1000, 1001 or 1005, ending
        /// ``WebSocketConnection/messages``: ``WebSocketError/closeCode`` and
        /// ``WebSocketError/closeReason`` say how.
        public static let connectionClosed = Code("connectionClosed")
        /// The task awaiting the operation was cancelled (a connection it used closes with 1001).
        public static let cancelled = Code("cancelled")
    }

    /// What kind of failure this is.
    public var code: Code
    /// A short human-readable explanation.
    public var message: String
    /// The `errno` value for ``Code/socketError``.
    public var errno: Int32?
    /// The HTTP status a proxy refused the tunnel with, for ``Code/proxyFailed``.
    public var httpStatus: Int?
    /// For ``Code/connectionClosed``: the close code the connection ended with.
    public var closeCode: WebSocketCloseCode?
    /// For ``Code/connectionClosed``: the close reason the connection ended with.
    public var closeReason: String?

    /// Creates an error (apps rarely need to; the library reports them).
    public init(_ code: Code, _ message: String, errno: Int32? = nil, httpStatus: Int? = nil) {
        self.code = code
        self.message = message
        self.errno = errno
        self.httpStatus = httpStatus
    }

    /// `code: message`, with the errno when there is one.
    public var description: String {
        if let errno { return "\(code): \(message) (errno \(errno))" }
        return "\(code): \(message)"
    }
}
