/// Limits and behaviour of one WebSocket connection, server or client side.
///
/// The names follow WebSocket-Node; the size limits do not: its 64 KiB frame limit surprises
/// users, so the defaults here are 16 MiB per frame and 64 MiB per message.
///
/// ```swift
/// var config = WebSocketConfiguration()
/// config.maxReceivedMessageSize = 1 << 20     // 1 MiB is plenty for a chat
/// config.keepaliveInterval = .seconds(30)
/// ```
public struct WebSocketConfiguration: Sendable {
    /// The largest frame payload accepted. A bigger frame closes the connection with 1009 before
    /// any of it is buffered. Default: 16 MiB.
    public var maxReceivedFrameSize: Int = 16 * 1024 * 1024

    /// The largest message accepted (the sum of its frames). A message that would exceed it
    /// closes the connection with 1009 before the excess is buffered. Default: 64 MiB.
    public var maxReceivedMessageSize: Int = 64 * 1024 * 1024

    /// Whether outgoing messages larger than ``fragmentationThreshold`` are split into frames,
    /// which lets pings and pongs go out between the fragments. Default: `true`.
    public var fragmentOutgoingMessages: Bool = true

    /// The largest frame payload sent when ``fragmentOutgoingMessages`` is on. Default: 16 KiB.
    public var fragmentationThreshold: Int = 16 * 1024

    /// `true`: `onMessage` gets whole messages. `false`: `onFrame` gets each data frame as it
    /// arrives (still checked for order, UTF-8 and size) and `onMessage` is not called. Default: `true`.
    public var assembleFragments: Bool = true

    /// How long to wait for the peer's close frame (and, as a client, for the server to close
    /// TCP) after a close was sent, before the socket is closed anyway. Default: 5 seconds.
    public var closeTimeout: Duration = .seconds(5)

    /// Send a ping after ``keepaliveInterval`` without any inbound byte. Default: `true` for
    /// servers (as in WebSocket-Node), `false` for clients.
    public var keepalive: Bool = true

    /// How long the connection may be silent before a keepalive ping is sent. Default: 20 seconds.
    public var keepaliveInterval: Duration = .seconds(20)

    /// Whether a peer that stays silent for ``keepaliveGracePeriod`` after the keepalive ping is
    /// dropped (reported as close code 1006). Default: `true`.
    public var dropConnectionOnKeepaliveTimeout: Bool = true

    /// How long to wait for any byte after a keepalive ping before dropping. Default: 10 seconds.
    public var keepaliveGracePeriod: Duration = .seconds(10)

    /// Sets `TCP_NODELAY`, so small messages leave at once. Default: `true`.
    public var disableNagleAlgorithm: Bool = true

    /// Queued outgoing bytes (framing included) above which sends report backpressure and, with
    /// ``pauseReadingWhileBackpressured``, reading stops; when the queue empties again, `onDrain`
    /// fires (and reading resumes). Default: 1 MiB.
    public var highWaterMark: Int = 1024 * 1024

    /// While more than ``highWaterMark`` bytes wait to be sent and the kernel takes no more, stop
    /// reading from the socket, and read again once the queue has drained: a handler that answers every message (an echo,
    /// request/response) then slows a fast sender through TCP instead of queueing without end.
    /// It composes with ``WebSocketConnection/pause()``: reading resumes only when neither holds
    /// it. Keepalive is suspended meanwhile, as during `pause()` (the pong could not be read).
    /// Turn it off for connections whose reads must never wait on their own writes (a sender that
    /// only ever streams to a slow peer and reads nothing important is unaffected either way).
    /// Default: `true`.
    public var pauseReadingWhileBackpressured: Bool = true

    /// The most outgoing bytes that may wait in the queue. A send that would go beyond it while
    /// the queue is not empty fails with ``WebSocketError/Code-swift.struct/sendQueueFull`` and,
    /// with the default ``sendQueueOverflow``, the connection is closed with 1008, so one slow
    /// reader cannot take the process's memory. A single message on an empty queue is always
    /// taken, however large (the app holds it already), so echoing a message of up to
    /// ``maxReceivedMessageSize`` works. Default: 4 MiB.
    public var maxQueuedBytes: Int = 4 * 1024 * 1024

    /// What a send that would exceed ``maxQueuedBytes`` does. Default: ``SendQueueOverflow/closeConnection``.
    public var sendQueueOverflow: SendQueueOverflow = .closeConnection

    /// What to do when the send queue would exceed ``WebSocketConfiguration/maxQueuedBytes``.
    public enum SendQueueOverflow: Sendable, Equatable {
        /// Report `sendQueueFull` and close the connection with 1008 (nothing is silently lost).
        case closeConnection
        /// Drop only this message: its completion and the send's status say so.
        case dropMessage
    }

    /// The longest an incoming message may take, from its first byte to its last. A peer that
    /// dribbles a frame byte by byte keeps a connection "live" for keepalive and the idle
    /// timeout; this bounds it: the connection is closed with 1008 (policy violation).
    /// Default: `nil` (no limit; a 64 MiB message over a slow link can take minutes).
    public var maxMessageDuration: Duration? = nil

    /// Close a connection with no traffic in either direction for this long (code 1001, reason
    /// "idle timeout", after an `onError` with code `.timeout`). Default: `nil` (no idle timeout).
    public var idleTimeout: Duration? = nil

    /// How many received messages ``WebSocketConnection/messages`` holds for a consumer that is
    /// behind before the connection stops reading from its socket (``WebSocketConnection/pause()``);
    /// reading resumes once the consumer has taken half of them. Default: 64.
    public var maxBufferedMessages: Int = 64

    /// How many bytes of received messages ``WebSocketConnection/messages`` holds before the
    /// connection stops reading, as ``maxBufferedMessages`` (a message is taken whatever its size
    /// when the buffer is empty). With the rest of the read in progress (at most 256 KiB of
    /// frames) this bounds a slow consumer's memory. Default: 1 MiB.
    public var maxBufferedMessageBytes: Int = 1024 * 1024

    /// The defaults given for each setting.
    public init() {}
}

extension Duration {
    /// Whole nanoseconds, saturating; negative durations count as zero.
    var nanoseconds: UInt64 {
        let (seconds, attoseconds) = components
        if seconds < 0 { return 0 }
        let (ns, overflow) = UInt64(seconds).multipliedReportingOverflow(by: 1_000_000_000)
        if overflow { return .max }
        return ns &+ UInt64(attoseconds / 1_000_000_000)
    }
}
