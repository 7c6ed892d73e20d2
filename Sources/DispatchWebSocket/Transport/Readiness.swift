/// What a backend saw on a descriptor.
struct PollEvents: OptionSet {
    let rawValue: UInt8
    static let readable = PollEvents(rawValue: 1)
    static let writable = PollEvents(rawValue: 2)
    /// Hang-up or error: reading will tell which (the client reads to `EAGAIN`).
    static let hangUp = PollEvents(rawValue: 4)
}

/// A descriptor's owner, told when it becomes ready. Called on the registration's loop, outside
/// `runEvent` (the client opens its own event, as it does for any other wake-up).
protocol PollerClient: AnyObject {
    func pollerReady(_ events: PollEvents)
}

/// The transport seam: one descriptor's registration on a loop, made by
/// ``EventLoop/register(_:_:transport:)``. Everything above it (``SocketChannel``, ``Listener``,
/// ``ClientHandshakeSession``) is the same for every backend.
///
/// The registration holds its client strongly until ``cancel(closingFD:completion:)``, and owns
/// closing the descriptor: a Dispatch source's descriptor may be closed only once the source's
/// cancellation is complete, so callers never call `close` themselves on a registered descriptor.
/// Confined to its loop's queue.
protocol Readiness: AnyObject {
    /// Also report the descriptor becoming writable, once; call again after it fired to wait
    /// again. For a socket whose write returned `EAGAIN` (or that is connecting). Idempotent.
    func watchWrites() throws(WebSocketError)
    /// Stop reporting readability until ``resumeReads()`` (a level-triggered source would
    /// otherwise fire on every pass while the owner does not read). Idempotent.
    func pauseReads()
    func resumeReads()
    /// Stops reporting for good and releases the client; with `closingFD` the descriptor is closed
    /// (now, or once the backend has let go of it). `completion` runs on the loop after that.
    /// Idempotent: only the first call acts.
    func cancel(closingFD: Bool, completion: (@Sendable () -> Void)?)
}

extension Readiness {
    func cancel(closingFD: Bool) { cancel(closingFD: closingFD, completion: nil) }
}
