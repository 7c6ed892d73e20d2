/// A close status code (RFC 6455 §7.4). Unknown codes stay representable.
///
/// A struct rather than an enum so that any code a peer sends (registered 3000–3999, private
/// 4000–4999, or codes defined after this library) can be received, reported and echoed.
/// Integer literals work: `let code: WebSocketCloseCode = 4001`.
public struct WebSocketCloseCode: RawRepresentable, Hashable, Sendable, CustomStringConvertible,
    ExpressibleByIntegerLiteral
{
    /// The code as it appears on the wire (big-endian in the first two bytes of a close payload).
    public var rawValue: UInt16

    /// Wraps any 16-bit value; check ``isValidOnWire`` before sending one.
    public init(rawValue: UInt16) { self.rawValue = rawValue }

    /// Lets a code be written as a number literal.
    public init(integerLiteral value: UInt16) { self.rawValue = value }

    /// 1000: the purpose of the connection has been fulfilled.
    public static let normalClosure: WebSocketCloseCode = 1000
    /// 1001: the endpoint is going away (server shutting down, page navigated away).
    public static let goingAway: WebSocketCloseCode = 1001
    /// 1002: the peer violated the protocol.
    public static let protocolError: WebSocketCloseCode = 1002
    /// 1003: a kind of data the endpoint cannot accept (e.g. binary for a text-only endpoint).
    public static let unsupportedData: WebSocketCloseCode = 1003
    /// 1005: reported locally when a close frame carried no code; never sent.
    public static let noStatusReceived: WebSocketCloseCode = 1005
    /// 1006: reported locally when the connection ended without a closing handshake; never sent.
    public static let abnormalClosure: WebSocketCloseCode = 1006
    /// 1007: message data inconsistent with its type, such as invalid UTF-8 in a text message.
    public static let invalidFramePayloadData: WebSocketCloseCode = 1007
    /// 1008: a message violated the endpoint's policy (generic refusal).
    public static let policyViolation: WebSocketCloseCode = 1008
    /// 1009: a message too big to process.
    public static let messageTooBig: WebSocketCloseCode = 1009
    /// 1010: sent by a client when the server did not negotiate an extension it requires.
    public static let mandatoryExtension: WebSocketCloseCode = 1010
    /// 1011: the server hit an unexpected condition.
    public static let internalServerError: WebSocketCloseCode = 1011
    /// 1012: the server is restarting (IANA registry).
    public static let serviceRestart: WebSocketCloseCode = 1012
    /// 1013: temporary overload; try again later (IANA registry).
    public static let tryAgainLater: WebSocketCloseCode = 1013
    /// 1014: a gateway got an invalid response upstream (IANA registry).
    public static let badGateway: WebSocketCloseCode = 1014
    /// 1015: reported locally when the TLS handshake failed; never sent.
    public static let tlsHandshakeFailure: WebSocketCloseCode = 1015

    /// Whether the code may appear in a close frame on the wire: 1000–1003, 1007–1014 and
    /// 3000–4999. Everything else (0–999, 1004–1006, 1015–2999, 5000 and up) is a protocol
    /// error when received and must not be sent.
    public var isValidOnWire: Bool {
        switch rawValue {
        case 1000...1003, 1007...1014, 3000...4999: return true
        default: return false
        }
    }

    /// Whether the code only reports a local condition and is never sent: 1005, 1006 and 1015.
    public var isReservedForLocalUse: Bool {
        switch rawValue {
        case 1005, 1006, 1015: return true
        default: return false
        }
    }

    /// The number and its meaning, e.g. `1000 (normal closure)` or `4001 (private use)`.
    public var description: String {
        let meaning: String
        switch rawValue {
        case 1000: meaning = "normal closure"
        case 1001: meaning = "going away"
        case 1002: meaning = "protocol error"
        case 1003: meaning = "unsupported data"
        case 1005: meaning = "no status received"
        case 1006: meaning = "abnormal closure"
        case 1007: meaning = "invalid frame payload data"
        case 1008: meaning = "policy violation"
        case 1009: meaning = "message too big"
        case 1010: meaning = "mandatory extension"
        case 1011: meaning = "internal server error"
        case 1012: meaning = "service restart"
        case 1013: meaning = "try again later"
        case 1014: meaning = "bad gateway"
        case 1015: meaning = "TLS handshake failure"
        case 0...999: meaning = "unused"
        case 1004, 1016...2999: meaning = "reserved"
        case 3000...3999: meaning = "registered"
        case 4000...4999: meaning = "private use"
        default: meaning = "undefined"
        }
        return "\(rawValue) (\(meaning))"
    }
}
