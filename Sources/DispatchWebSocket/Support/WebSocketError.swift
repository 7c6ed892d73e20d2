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
        /// A compressed message (permessage-deflate) was not valid deflate data. Close code 1007.
        public static let invalidCompressedData = Code("invalidCompressedData")
    }

    /// What kind of failure this is.
    public var code: Code
    /// A short human-readable explanation.
    public var message: String
    /// The `errno` value for ``Code/socketError``.
    public var errno: Int32?

    /// Creates an error (apps rarely need to; the library reports them).
    public init(_ code: Code, _ message: String, errno: Int32? = nil) {
        self.code = code
        self.message = message
        self.errno = errno
    }

    /// `code: message`, with the errno when there is one.
    public var description: String {
        if let errno { return "\(code): \(message) (errno \(errno))" }
        return "\(code): \(message)"
    }
}
