/// What a send did, in the spirit of uWebSockets' SUCCESS / BACKPRESSURE / DROPPED. Small apps
/// can ignore it (the send methods are `@discardableResult`).
public enum WebSocketSendStatus: Sendable, Equatable {
    /// Queued; the send queue is below the high-water mark.
    case queued
    /// Queued, but the send queue is above ``WebSocketConfiguration/highWaterMark``: stop sending
    /// until ``WebSocketConnection/onDrain`` fires.
    case backpressure
    /// Not sent: the connection is closing or closed, or ``WebSocketConfiguration/maxQueuedBytes``
    /// would be exceeded. The completion, if any, got the error.
    case dropped
}
