/// A server's WebSocket upgrade requests as an `AsyncSequence`: ``WebSocketServer/requests``.
///
/// It ends (`nil`) when the server shuts down. Cancelling a task that waits in it ends that
/// task's iteration only; the server keeps running. Several tasks may iterate it: each request
/// goes to one of them, in arrival order.
public struct WebSocketServerRequests: AsyncSequence, Sendable {
    /// Each element is a WebSocketRequest.
    public typealias Element = WebSocketRequest
    /// The sequence never throws: it ends with `nil`.
    public typealias Failure = Never

    let buffer: WebSocketRequestBuffer

    /// Starts an iteration.
    public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(buffer: buffer) }

    /// Iterates the requests; see ``WebSocketServerRequests``.
    public struct AsyncIterator: AsyncIteratorProtocol {
        /// Each element is a WebSocketRequest.
        public typealias Element = WebSocketRequest
        /// The sequence never throws: it ends with `nil`.
        public typealias Failure = Never

        let buffer: WebSocketRequestBuffer

        /// The next request, or `nil` once the server shuts down or the task is cancelled.
        public mutating func next() async -> WebSocketRequest? {
            await buffer.next()
        }

        /// ``next()``, staying on the caller's actor or executor (`nonisolated(nonsending)`, like
        /// ``WebSocketInboundMessages/AsyncIterator/next(isolation:)``).
        public nonisolated(nonsending) mutating func next(isolation actor: (any Actor)?) async -> WebSocketRequest? {
            await buffer.next()
        }
    }
}
