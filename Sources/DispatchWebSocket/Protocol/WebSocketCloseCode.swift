/// A close status code (RFC 6455 §7.4). Unknown codes stay representable.
public struct WebSocketCloseCode: RawRepresentable, Hashable, Sendable, CustomStringConvertible, ExpressibleByIntegerLiteral {
    public var rawValue: UInt16

    public init(rawValue: UInt16) { self.rawValue = rawValue }
    public init(integerLiteral value: UInt16) { self.rawValue = value }

    public static let normalClosure: WebSocketCloseCode = 1000
    public static let goingAway: WebSocketCloseCode = 1001
    public static let protocolError: WebSocketCloseCode = 1002
    public static let unsupportedData: WebSocketCloseCode = 1003
    /// Reported when a close frame carried no code; never sent.
    public static let noStatusReceived: WebSocketCloseCode = 1005
    /// Reported when the connection ended without a closing handshake; never sent.
    public static let abnormalClosure: WebSocketCloseCode = 1006
    public static let invalidFramePayloadData: WebSocketCloseCode = 1007
    public static let policyViolation: WebSocketCloseCode = 1008
    public static let messageTooBig: WebSocketCloseCode = 1009
    public static let mandatoryExtension: WebSocketCloseCode = 1010
    public static let internalServerError: WebSocketCloseCode = 1011
    public static let serviceRestart: WebSocketCloseCode = 1012
    public static let tryAgainLater: WebSocketCloseCode = 1013
    public static let badGateway: WebSocketCloseCode = 1014
    /// Reported when a TLS handshake failed; never sent.
    public static let tlsHandshakeFailure: WebSocketCloseCode = 1015

    /// Whether the code may appear in a close frame: 1000–1003, 1007–1014, 3000–4999.
    public var isValidOnWire: Bool {
        switch rawValue {
        case 1000...1003, 1007...1014, 3000...4999: return true
        default: return false
        }
    }

    /// 1005, 1006 and 1015 are reported locally and never sent.
    public var isReservedForLocalUse: Bool {
        rawValue == 1005 || rawValue == 1006 || rawValue == 1015
    }

    public var description: String {
        let name: String
        switch rawValue {
        case 1000: name = "normal closure"
        case 1001: name = "going away"
        case 1002: name = "protocol error"
        case 1003: name = "unsupported data"
        case 1005: name = "no status received"
        case 1006: name = "abnormal closure"
        case 1007: name = "invalid frame payload data"
        case 1008: name = "policy violation"
        case 1009: name = "message too big"
        case 1010: name = "mandatory extension"
        case 1011: name = "internal server error"
        case 1012: name = "service restart"
        case 1013: name = "try again later"
        case 1014: name = "bad gateway"
        case 1015: name = "TLS handshake failure"
        case 3000...3999: name = "registered"
        case 4000...4999: name = "private use"
        default: name = "unknown"
        }
        return "\(rawValue) (\(name))"
    }
}
