/// A complete message: text (validated UTF-8) or binary.
public enum WebSocketMessage: Sendable, Hashable {
    /// A text message (opcode 0x1), its UTF-8 already validated.
    case text(String)
    /// A binary message (opcode 0x2).
    case binary([UInt8])
}
