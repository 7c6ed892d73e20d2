import Dispatch
import DispatchWebSocket

/// One connection to Redis on the library's own transport (``TCPStream``): non-blocking,
/// pipelined (commands issued in one turn of ``queue`` leave in one write, replies are matched
/// in order), and it never gives up: when the connection drops it fails the commands in flight,
/// reports the loss once, and reconnects with capped exponential backoff and jitter, forever,
/// until ``close()``.
///
/// A connection has one ``Role``. A `.subscriber` sends `SUBSCRIBE` for every channel it was
/// given on each (re)connect — the resubscription many clients forget — and hands every message
/// to ``onMessage``, from the loop that read it, without waiting on anything: Redis drops a
/// subscriber whose output buffer grows (32 MiB, or 8 MiB for 60 s, by default).
///
/// Threading: state lives on ``queue``; `onStateChange` and command completions run there;
/// `onMessage` runs on the reading loop's queue, in the order Redis sent the messages. Every
/// method may be called from any thread. Set the handlers before ``start()``.
public final class RedisConnection: @unchecked Sendable {
    // @unchecked Sendable: mutable state is confined to `queue`.

    /// What the connection is for.
    public enum Role: Sendable {
        /// Commands and their replies.
        case commands
        /// Pub/sub only: `SUBSCRIBE` to ``RedisConnection/subscribe(_:)``'s channels.
        case subscriber
    }

    /// Connection settings; every limit and delay has a default.
    public struct Configuration: Sendable {
        /// Where Redis is, and the credentials and database to use.
        public var url: RedisURL
        /// 2 speaks RESP2; 3 sends `HELLO 3` first (Redis 6 and later) and gets RESP3 replies,
        /// pub/sub messages arriving as push values. Default: 2.
        public var protocolVersion = 2
        /// Time to establish TCP. Default: 5 seconds.
        public var connectTimeout: Duration = .seconds(5)
        /// The first reconnect delay; it doubles on each failed attempt. Default: 100 ms.
        public var initialBackoff: Duration = .milliseconds(100)
        /// The longest reconnect delay. Default: 5 seconds.
        public var maxBackoff: Duration = .seconds(5)
        /// Commands in flight (sent, reply not yet read) at most; more fail with `notConnected`
        /// rather than queue without bound. Default: 100,000.
        public var maxPendingCommands = 100_000
        /// Bounds on what the server may send. See ``RESPDecoder/Limits``.
        public var limits = RESPDecoder.Limits()
        /// The defaults, for `url`.
        public init(url: RedisURL) { self.url = url }
    }

    /// Receives a command's reply, on ``RedisConnection/queue``.
    public typealias Completion = @Sendable (Result<RESPValue, RedisError>) -> Void

    /// The settings it was made with.
    public let configuration: Configuration
    /// Commands or pub/sub.
    public let role: Role
    /// Runs `onStateChange` and command completions.
    public let queue: DispatchQueue

    /// `true` once (re)connected (for a subscriber: once every channel is subscribed), `false`
    /// with the reason when a connection or an attempt is lost. Repeated failures while
    /// down are reported once. On ``queue``.
    public var onStateChange: (@Sendable (_ connected: Bool, _ reason: String?) -> Void)?
    /// A pub/sub message: channel and payload. On the reading loop's queue, in order.
    public var onMessage: (@Sendable (_ channel: String, _ payload: [UInt8]) -> Void)?

    private enum State { case idle, connecting, handshaking, ready, closed }
    private var state = State.idle
    private var stream: TCPStream?
    private var session: StreamSession?
    private var pending: [Completion?] = []
    private var pendingHead = 0
    private var outgoing: [UInt8] = []
    private var flushScheduled = false
    private var channels: [String] = []
    private var confirmed = Set<String>()
    private var attempt = 0
    private var reportedDown = false
    private var isUp = false

    /// A connection that does nothing until ``start()``; `label` names its queue.
    public init(configuration: Configuration, role: Role = .commands, label: String = "redis") {
        self.configuration = configuration
        self.role = role
        queue = DispatchQueue(label: label)
    }

    /// Connects (and keeps reconnecting).
    public func start() {
        queue.async { [self] in
            guard state == .idle else { return }
            connect()
        }
    }

    /// Sends a command; `completion` gets its reply (an error reply as ``RedisError/server(_:)``).
    /// Fails at once with ``RedisError/notConnected(_:)`` while the connection is down:
    /// commands are never queued across an outage.
    public func send(_ command: [String], completion: Completion? = nil) {
        queue.async { [self] in
            guard role == .commands else {
                completion?(.failure(.notConnected("a subscriber connection takes no commands")))
                return
            }
            guard state == .ready else {
                completion?(.failure(.notConnected(state == .closed ? "closed" : "reconnecting")))
                return
            }
            guard pending.count - pendingHead < configuration.maxPendingCommands else {
                completion?(.failure(.notConnected("more than \(configuration.maxPendingCommands) commands in flight")))
                return
            }
            write(command, completion: completion)
        }
    }

    /// Subscribes to channels now if connected and again after every reconnect (subscriber role).
    public func subscribe(_ names: [String]) {
        queue.async { [self] in
            let new = names.filter { !channels.contains($0) }
            channels += new
            // While handshaking, the handshake's end subscribes to every channel, these included.
            if state == .ready && !new.isEmpty {
                RESPEncoder.encode(command: ["SUBSCRIBE"] + new, into: &outgoing)
                scheduleFlush()
            }
        }
    }

    /// Closes for good; commands in flight fail.
    public func close() {
        queue.async { [self] in
            state = .closed
            stream?.close()
            stream = nil
            session = nil
            failPending("closed")
        }
    }

    // MARK: Connecting (on `queue`)

    private func connect() {
        state = .connecting
        let session = StreamSession(connection: self, limits: configuration.limits)
        self.session = session
        stream = TCPStream(
            host: configuration.url.host, port: configuration.url.port, timeout: configuration.connectTimeout,
            delegate: session)
    }

    /// TCP is up: authenticate, select, then (subscriber) subscribe.
    fileprivate func streamConnected(_ session: StreamSession) {
        guard session === self.session, state == .connecting else { return }
        state = .handshaking
        let url = configuration.url
        if configuration.protocolVersion == 3 {
            var hello = ["HELLO", "3"]
            if let password = url.password { hello += ["AUTH", url.username ?? "default", password] }
            write(hello, completion: handshakeStep)
        } else if let password = url.password {
            write(url.username.map { ["AUTH", $0, password] } ?? ["AUTH", password], completion: handshakeStep)
        }
        if url.database != 0 { write(["SELECT", String(url.database)], completion: handshakeStep) }
        write(["PING"]) { [self] result in
            guard case .success = result, state == .handshaking else { return }
            state = .ready
            attempt = 0
            reportedDown = false
            if role == .subscriber && !channels.isEmpty {
                confirmed = []
                RESPEncoder.encode(command: ["SUBSCRIBE"] + channels, into: &outgoing)
                scheduleFlush()
            } else {
                becameUp()
            }
        }
    }

    private func handshakeStep(_ result: Result<RESPValue, RedisError>) {
        if case .failure(let error) = result {
            // A wrong password or database: reconnecting will not help quickly, but it is retried
            // with backoff so that fixing the server side is enough.
            session.map { lost($0, reason: "\(error)") }
        }
    }

    private func becameUp() {
        guard !isUp else { return }
        isUp = true
        onStateChange?(true, nil)
    }

    fileprivate func streamClosed(_ session: StreamSession, reason: String) {
        lost(session, reason: reason)
    }

    private func lost(_ session: StreamSession, reason: String) {
        guard session === self.session, state != .closed else { return }
        stream?.close()
        stream = nil
        self.session = nil
        state = .connecting
        outgoing = []
        isUp = false
        failPending(reason)
        if !reportedDown {
            reportedDown = true
            onStateChange?(false, reason)
        }
        let delay = backoff()
        attempt += 1
        queue.asyncAfter(deadline: .now() + .nanoseconds(delay)) { [self] in
            guard state == .connecting, self.session == nil else { return }
            connect()
        }
    }

    /// Capped exponential backoff with "equal jitter": half the delay fixed, half random, so
    /// that many instances cut off together do not reconnect in lockstep.
    private func backoff() -> Int {
        let initial =
            Double(configuration.initialBackoff.components.seconds) * 1e9
            + Double(configuration.initialBackoff.components.attoseconds) / 1e9
        let cap =
            Double(configuration.maxBackoff.components.seconds) * 1e9
            + Double(configuration.maxBackoff.components.attoseconds) / 1e9
        let delay = min(cap, initial * Double(1 << min(attempt, 30)))
        return Int(delay / 2 + Double.random(in: 0...(delay / 2)))
    }

    // MARK: Writing and reading (on `queue`)

    private func write(_ command: [String], completion: Completion?) {
        RESPEncoder.encode(command: command, into: &outgoing)
        pending.append(completion)
        scheduleFlush()
    }

    private func scheduleFlush() {
        guard !flushScheduled else { return }
        flushScheduled = true
        queue.async { [self] in
            flushScheduled = false
            guard !outgoing.isEmpty, let stream else { return }
            stream.write(outgoing)
            outgoing = []
        }
    }

    /// Replies, in order, decoded on the loop.
    fileprivate func received(_ values: [RESPValue], from session: StreamSession) {
        guard session === self.session else { return }
        for value in values {
            if role == .subscriber, let kind = pubSubKind(value) {
                if kind == "subscribe", let elements = value.elements, elements.count >= 2,
                    let channel = elements[1].string
                {
                    confirmed.insert(channel)
                    if state == .ready && confirmed.isSuperset(of: channels) { becameUp() }
                }
                continue
            }
            if case .push = value { continue }  // RESP3 out-of-band data for a command connection
            guard pendingHead < pending.count else {
                return lost(session, reason: "a reply to no command")
            }
            let completion = pending[pendingHead]
            pending[pendingHead] = nil
            pendingHead += 1
            if pendingHead == pending.count {
                pending.removeAll(keepingCapacity: true)
                pendingHead = 0
            }
            if case .error(let message) = value {
                completion?(.failure(.server(message)))
            } else {
                completion?(.success(value))
            }
        }
    }

    private func failPending(_ reason: String) {
        let waiting = pending[pendingHead...]
        pending = []
        pendingHead = 0
        for completion in waiting { completion?(.failure(.notConnected(reason))) }
    }
}

/// The pub/sub kind of a subscriber's value (`message`, `subscribe`, …), `nil` for a reply.
func pubSubKind(_ value: RESPValue) -> String? {
    guard let elements = value.elements, let first = elements.first?.string else { return nil }
    switch value {
    case .push, .array:
        let kind = first.lowercased()
        return [
            "message", "pmessage", "subscribe", "unsubscribe", "psubscribe", "punsubscribe", "smessage", "ssubscribe",
        ]
        .contains(kind) ? kind : nil
    default: return nil
    }
}

/// One TCP connection attempt's reader, confined to its stream's loop: it decodes there, hands
/// pub/sub messages straight to `onMessage` and everything else to the connection's queue.
private final class StreamSession: TCPStreamDelegate, @unchecked Sendable {
    // @unchecked Sendable: `decoder` is touched only on the stream's loop.
    weak var connection: RedisConnection?
    private var decoder: RESPDecoder
    private var failed = false

    init(connection: RedisConnection, limits: RESPDecoder.Limits) {
        self.connection = connection
        decoder = RESPDecoder(limits: limits)
    }

    func streamConnected(_ stream: TCPStream) {
        guard let connection else { return }
        connection.queue.async { connection.streamConnected(self) }
    }

    func stream(_ stream: TCPStream, read bytes: UnsafeRawBufferPointer) {
        guard let connection, !failed else { return }
        decoder.append(bytes)
        var replies: [RESPValue] = []
        do throws(RedisError) {
            while let value = try decoder.next() {
                if connection.role == .subscriber, pubSubKind(value) == "message", let elements = value.elements,
                    elements.count == 3, let channel = elements[1].string, case .bulkString(let payload) = elements[2]
                {
                    connection.onMessage?(channel, payload)
                } else {
                    replies.append(value)
                }
            }
        } catch {
            failed = true
            stream.close()
            connection.queue.async { connection.streamClosed(self, reason: "\(error)") }
        }
        if !replies.isEmpty {
            let values = replies
            connection.queue.async { connection.received(values, from: self) }
        }
    }

    func streamClosed(_ stream: TCPStream, error: WebSocketError?) {
        guard let connection else { return }
        let reason = error.map { "\($0)" } ?? "the server closed the connection"
        connection.queue.async { connection.streamClosed(self, reason: reason) }
    }
}
