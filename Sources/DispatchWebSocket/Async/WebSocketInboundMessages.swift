/// The messages a connection receives, as an `AsyncSequence`: ``WebSocketConnection/messages``.
///
/// ```swift
/// for try await message in connection.messages {
///     try await connection.send(message)      // echo, one message at a time, in order
/// }
/// // here the connection closed normally (1000, 1001, or 1005: a close frame without a code)
/// ```
///
/// - **Ends**: `nil` after a close with 1000, 1001 or 1005; otherwise it throws a
///   ``WebSocketError`` with code ``WebSocketError/Code-swift.struct/connectionClosed`` and the
///   ``WebSocketError/closeCode`` and ``WebSocketError/closeReason`` (e.g. 1006 when TCP ended
///   without a closing handshake, 1009 for a message over the limit). Messages received before
///   the close are all delivered first.
/// - **Bounded**: while the consumer is behind by ``WebSocketConfiguration/maxBufferedMessages``
///   messages or ``WebSocketConfiguration/maxBufferedMessageBytes`` bytes, the connection stops
///   reading its socket, so the peer is slowed by TCP and memory stays bounded however slow the
///   consumer is; reading resumes when it has caught up by half (checked each time it has used
///   up the messages it took from the buffer at once).
/// - **From the start**: connections from ``WebSocketClient/connect(url:protocols:origin:headers:configuration:)``
///   and ``WebSocketServer/requests`` buffer from the moment they open, so no message is lost
///   before the first iteration. On another connection the buffer starts when `messages` is first
///   read: do that in ``WebSocketRequest/accept(protocol:cookies:headers:configure:)``'s `configure`.
/// - **Takes over `onMessage`**: once `messages` has been read, messages go to the sequence and
///   ``WebSocketConnection/onMessage`` is never called again for that connection (setting it has
///   no effect on delivery). The other events (`onClose`, `onPing`, …) still fire.
/// - **Iterate once**: a second iterator throws ``WebSocketError/Code-swift.struct/invalidArgument``.
/// - **Cancellation**: cancelling the iterating task ends the iteration (`nil`) and closes the
///   connection with 1001 (going away): at once while it waits, otherwise once it has been
///   handed the messages already taken from the buffer with the last one (those of one read at
///   most; an async `send` in between throws at once).
///
/// Not available with ``WebSocketConfiguration/assembleFragments`` off (frames go to `onFrame`).
public struct WebSocketInboundMessages: AsyncSequence, Sendable {
    /// Each element is a WebSocketMessage.
    public typealias Element = WebSocketMessage
    /// What ends the sequence with an error: a close other than 1000/1001/1005.
    public typealias Failure = WebSocketError

    @usableFromInline let buffer: WebSocketInboundBuffer

    /// Starts the one iteration the sequence allows.
    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(buffer: buffer, isFirst: buffer.claimIteration())
    }

    /// Iterates the messages; see ``WebSocketInboundMessages``.
    public struct AsyncIterator: AsyncIteratorProtocol {
        /// Each element is a WebSocketMessage.
        public typealias Element = WebSocketMessage
        /// What ends the sequence with an error: a close other than 1000/1001/1005.
        public typealias Failure = WebSocketError

        @usableFromInline let buffer: WebSocketInboundBuffer
        @usableFromInline let isFirst: Bool
        /// The messages taken from the buffer at its last take, handed out (moved out, leaving
        /// `nil`) from `index` on.
        @usableFromInline var batch: [WebSocketMessage?] = []
        @usableFromInline var index = 0

        init(buffer: WebSocketInboundBuffer, isFirst: Bool) {
            self.buffer = buffer
            self.isFirst = isFirst
        }

        /// The next message, in order; `nil` after a normal close or cancellation.
        /// - Throws: ``WebSocketError`` `.connectionClosed` after another close, `.invalidArgument`
        ///   from a second iterator.
        public mutating func next() async throws(WebSocketError) -> WebSocketMessage? {
            try await next(isolation: nil)
        }

        /// ``next()``, staying on the caller's actor or executor.
        ///
        /// Inlinable, with a synchronous fast path, so that `for try await` takes a message of
        /// the current batch without a lock, an async call or an executor hop (each hop is a call
        /// into the concurrency runtime that takes the task's status lock when the task has a
        /// task executor). `nonisolated(nonsending)` rather than an `isolated` parameter for the
        /// same reason: it runs on the caller's actor or executor either way (`for try await`
        /// passes `#isolation`), but a function with an `isolated` parameter hops to it on entry,
        /// once per message, while a `nonsending` one is already there.
        @inlinable
        public nonisolated(nonsending) mutating func next(isolation actor: (any Actor)?) async throws(WebSocketError)
            -> WebSocketMessage?
        {
            guard isFirst else { throw Self.secondIteration }
            if index < batch.count {
                index += 1
                return batch[index - 1].take()
            }
            return try await takeNext()
        }

        /// The batch is used up (or the task was cancelled): takes the next one, waiting for it
        /// if need be.
        @usableFromInline
        nonisolated(nonsending) mutating func takeNext() async throws(WebSocketError) -> WebSocketMessage? {
            if Task.isCancelled { buffer.cancel() }
            while true {
                switch buffer.take(into: &batch) {
                case .messages:
                    index = 1
                    return batch[0].take()
                case .end(let end):
                    index = 0
                    return try end.get()
                case .empty:
                    await buffer.wait()
                }
            }
        }

        @usableFromInline static var secondIteration: WebSocketError {
            WebSocketError(.invalidArgument, "WebSocketConnection.messages can be iterated only once")
        }
    }
}
