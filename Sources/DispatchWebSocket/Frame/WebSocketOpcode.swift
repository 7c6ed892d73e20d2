/// A frame's opcode (RFC 6455 §5.2). Reserved values stay representable so a decoder can report them.
public struct WebSocketOpcode: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    /// The 4-bit wire value.
    public let rawValue: UInt8

    /// Creates an opcode from its 4-bit wire value; `nil` above 15.
    public init?(rawValue: UInt8) {
        guard rawValue < 16 else { return nil }
        self.rawValue = rawValue
    }

    init(uncheckedRawValue: UInt8) { self.rawValue = uncheckedRawValue }

    /// A later fragment of a message.
    public static let continuation = WebSocketOpcode(uncheckedRawValue: 0x0)
    /// The first frame of a UTF-8 text message.
    public static let text = WebSocketOpcode(uncheckedRawValue: 0x1)
    /// The first frame of a binary message.
    public static let binary = WebSocketOpcode(uncheckedRawValue: 0x2)
    /// Starts or answers the closing handshake.
    public static let close = WebSocketOpcode(uncheckedRawValue: 0x8)
    /// Asks for a pong.
    public static let ping = WebSocketOpcode(uncheckedRawValue: 0x9)
    /// Answers a ping, or a one-way heartbeat.
    public static let pong = WebSocketOpcode(uncheckedRawValue: 0xA)

    /// Control frames (close, ping, pong and the reserved 0xB–0xF) have the high bit of the opcode set.
    public var isControl: Bool { rawValue & 0x8 != 0 }

    /// Whether RFC 6455 defines this opcode (0x3–0x7 and 0xB–0xF are reserved).
    public var isDefined: Bool {
        switch rawValue {
        case 0x0, 0x1, 0x2, 0x8, 0x9, 0xA: return true
        default: return false
        }
    }

    /// The opcode's name, e.g. `text` or `reserved(0x3)`.
    public var description: String {
        switch rawValue {
        case 0x0: return "continuation"
        case 0x1: return "text"
        case 0x2: return "binary"
        case 0x8: return "close"
        case 0x9: return "ping"
        case 0xA: return "pong"
        default: return "reserved(0x\(String(rawValue, radix: 16)))"
        }
    }
}
