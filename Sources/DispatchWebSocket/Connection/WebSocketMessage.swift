/// A complete message: text (validated UTF-8) or binary.
public enum WebSocketMessage: Sendable, Hashable {
    case text(String)
    case binary([UInt8])
}
