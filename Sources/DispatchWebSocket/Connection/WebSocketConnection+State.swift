/// The two halves of a closing connection, named as in litert (`isWritable`, `hasEnded`,
/// `hasFinished`). Readable from any thread; exact on the loop queue.
///
/// | moment                                  | isConnected | isWritable | hasFinished | hasEnded |
/// |-----------------------------------------|-------------|------------|-------------|----------|
/// | open                                    | true        | true       | false       | false    |
/// | we called `close()`, peer still sending | false       | false      | true        | false    |
/// | the peer's close arrived (answered)     | false       | false      | true        | true     |
/// | `onClose` ran                           | false       | false      | true        | true     |
///
/// A received close is answered at once, so ``WebSocketConnection/hasEnded`` without
/// ``WebSocketConnection/hasFinished`` is never observed.
extension WebSocketConnection {
    /// Whether data may still be sent: no close frame sent or received and the socket is open.
    /// Messages sent while a ``WebSocketMessageWriter`` is open still count as writable (they
    /// wait behind it).
    public var isWritable: Bool { shared.withLock { $0.isOpen && !$0.closeSent } }

    /// Whether the peer's close frame has arrived, or the connection is gone: nothing more will
    /// be read. Data received before it was delivered.
    public var hasEnded: Bool { shared.withLock { $0.peerClosed } }

    /// Whether our close frame has been queued (by ``close(code:description:)``, ``drop(code:description:)``,
    /// an answer to the peer's close or a protocol failure), or the connection is gone: nothing
    /// more may be written.
    public var hasFinished: Bool { shared.withLock { $0.closeSent } }
}
