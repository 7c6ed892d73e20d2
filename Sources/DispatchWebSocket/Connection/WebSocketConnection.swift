import Dispatch
import Synchronization

/// An open WebSocket connection, server or client side.
///
/// ## Threading
/// Every event closure runs on the connection's *loop queue*, a serial queue shared with other
/// connections: keep handlers short and never block in them. All methods are safe to call from
/// any thread; called on the loop queue (e.g. from an event handler) they act at once, elsewhere
/// they hop to it. Everything sent during one event leaves in one gathered write.
///
/// Events stop after ``onClose``, which fires exactly once; the closures are released after it.
///
/// ```swift
/// connection.onMessage = { message in
///     if case .text(let text) = message { connection.sendUTF("echo: \(text)") }
/// }
/// connection.onClose = { code, reason in print("closed: \(code) \(reason)") }
/// ```
public final class WebSocketConnection: @unchecked Sendable {
    // @unchecked Sendable: mutable state is confined to `loop.queue`; the few values readable
    // from any thread live in `shared` and the handlers in `handlerStore` (both locked).

    /// Whether this is the server end of the connection.
    public let isServer: Bool
    /// The subprotocol agreed in the handshake, if any.
    public let `protocol`: String?
    /// The peer's address and port.
    public let remoteAddress: SocketAddress?
    /// Our own address and port.
    public var localAddress: SocketAddress? { channel.socket.localAddress() }
    /// The configuration the connection was opened with.
    public let configuration: WebSocketConfiguration
    /// Whether the connection runs over TLS (`wss://`).
    public let isSecure: Bool
    /// The peer's certificate: the server's (verified unless verification was turned off) on a
    /// client connection, the client's on a server connection that asked for one. `nil` on a
    /// plain connection or when the peer sent none.
    public let peerCertificate: WebSocketPeerCertificate?
    /// The TLS version in use ("TLSv1.3", "TLSv1.2"); `nil` on a plain connection.
    public let tlsProtocolVersion: String?
    /// The TLS cipher suite in use, e.g. "TLS_AES_128_GCM_SHA256"; `nil` on a plain connection.
    public let tlsCipherSuite: String?
    /// The extensions agreed in the handshake, as the server's `Sec-WebSocket-Extensions`
    /// header named them (e.g. `permessage-deflate; server_no_context_takeover`); `""` for none.
    public let extensions: String
    /// On a client connection, the headers of the server's 101 response (what `ws` passes to its
    /// `upgrade` event), e.g. to read a `Set-Cookie`; `nil` on a server connection.
    public let upgradeResponseHeaders: HTTPHeaders?
    /// The permessage-deflate transform, when it was negotiated.
    let deflate: PerMessageDeflate?

    let loop: EventLoop
    let channel: SocketChannel
    private(set) var machine: ConnectionStateMachine<WebSocketConnection>!
    /// The open message writer and the sends waiting behind it (`WebSocketMessageWriter.swift`).
    var streaming = MessageStreaming()
    /// `streaming.waitingBytes` for other threads (part of `bufferedAmount`).
    let waitingBytesMirror = Atomic<Int>(0)

    // MARK: Events

    /// Handlers, set from any thread. Each runs on the loop queue.
    struct Handlers {
        var message: (@Sendable (WebSocketMessage) -> Void)?
        var frame: (@Sendable (WebSocketFrame) -> Void)?
        var close: (@Sendable (WebSocketCloseCode, String) -> Void)?
        var error: (@Sendable (WebSocketError) -> Void)?
        var ping: (@Sendable ([UInt8], WebSocketPingEvent) -> Void)?
        var pong: (@Sendable ([UInt8]) -> Void)?
        var drain: (@Sendable () -> Void)?
        /// The async API's buffer (``messages``): once set, messages go to it, not to `message`.
        var inbound: WebSocketInboundBuffer?
        /// The async `send`'s batch on its way to the loop, created on the first async send.
        var outbox: WebSocketAsyncOutbox?
    }

    private let handlerStore = LockedValue(Handlers())
    private let handlersChanged = Atomic<Bool>(false)
    /// The loop's copy of `handlerStore`, refreshed when `handlersChanged` says so: events read
    /// handlers without taking a lock.
    private var handlers = Handlers()

    struct Shared {
        var closeReasonCode: WebSocketCloseCode?
        var closeDescription: String?
        var isOpen = true
        /// After `onClose`: handlers are released and no longer stored.
        var isFinished = false
        /// A ``WebSocketMessageWriter`` is open (claimed by `makeMessageWriter`, any thread).
        var writerOpen = false
        /// Our close frame is queued (`hasFinished`).
        var closeSent = false
        /// The peer's close frame arrived (`hasEnded`).
        var peerClosed = false
    }
    let shared = LockedValue(Shared())

    /// Internal observers (the server's connection tracking), called after `onClose`.
    var closeObservers: [(WebSocketConnection) -> Void] = []

    // Timers, in loop-uptime nanoseconds; 0 = not armed.
    private var closeDeadline: UInt64 = 0
    private var lingerDeadline: UInt64 = 0
    private var lastInbound: UInt64 = 0
    private var keepalivePingSentAt: UInt64 = 0
    private var lastOutbound: UInt64 = 0
    /// When the message now arriving began (coarse loop time); 0 between messages.
    private var messageStartedAt: UInt64 = 0
    /// The app's `pause()`.
    private var isPaused = false
    /// Reading stopped because the send queue is above `highWaterMark` (`pauseReadingWhileBackpressured`).
    private(set) var isPausedByBackpressure = false
    private var readingHeld: Bool { isPaused || isPausedByBackpressure }

    init(
        channel: SocketChannel, role: WebSocketRole, protocol: String?, configuration: WebSocketConfiguration,
        deflate: PerMessageDeflateParameters? = nil, upgradeResponseHeaders: HTTPHeaders? = nil
    ) {
        self.upgradeResponseHeaders = upgradeResponseHeaders
        self.channel = channel
        self.loop = channel.loop
        self.isServer = role == .server
        self.protocol = `protocol`
        self.configuration = configuration
        self.remoteAddress = channel.peerAddress
        self.isSecure = channel.tls != nil
        self.peerCertificate = channel.tlsSession?.peerCertificate
        self.tlsProtocolVersion = channel.tlsSession?.protocolVersion
        self.tlsCipherSuite = channel.tlsSession?.cipherSuite
        self.extensions = deflate?.header ?? ""
        let transform = deflate.map(PerMessageDeflate.init)
        self.deflate = transform
        self.machine = ConnectionStateMachine(
            role: role, configuration: configuration, output: self, deflate: transform)
        Self.liveCount.add(1, ordering: .relaxed)
    }

    deinit {
        Self.liveCount.subtract(1, ordering: .relaxed)
    }

    /// Connection objects alive in the process (tests use it to show that none leak).
    static let liveCount = Atomic<Int>(0)

    /// Takes over the channel and processes bytes that arrived with the handshake. On the loop.
    func start(initialBytes: [UInt8]) {
        channel.handler = self
        lastInbound = EventLoop.now()
        lastOutbound = lastInbound
        loop.addTickHandler(self)
        if !initialBytes.isEmpty {
            var bytes = initialBytes
            loop.runEvent {
                bytes.withUnsafeMutableBytes { channelRead($0) }  // as if just read
            }
        }
        channel.start()
        if !readingHeld { channel.resumeReading() }  // the app may have paused it in onRequest
    }

    /// Ends a connection that never started (its handshake could not be completed).
    func abandon(reason: String) {
        finish(code: .abnormalClosure, reason: reason, error: nil)
    }

    /// A whole message arrived (``WebSocketConfiguration/assembleFragments`` on).
    public var onMessage: (@Sendable (WebSocketMessage) -> Void)? {
        get { handlerStore.withLock { $0.message } }
        set { setHandler { $0.message = newValue } }
    }

    /// A data frame arrived (``WebSocketConfiguration/assembleFragments`` off): text, binary or
    /// continuation, with its `fin` bit. Order, UTF-8 and sizes are still checked.
    public var onFrame: (@Sendable (WebSocketFrame) -> Void)? {
        get { handlerStore.withLock { $0.frame } }
        set { setHandler { $0.frame = newValue } }
    }

    /// The connection closed: the close code and reason the peer sent, the code of a failure we
    /// detected, or 1006 when the TCP connection ended without a closing handshake. Exactly once.
    public var onClose: (@Sendable (WebSocketCloseCode, String) -> Void)? {
        get { handlerStore.withLock { $0.close } }
        set { setHandler { $0.close = newValue } }
    }

    /// Something went wrong: the peer broke the protocol (the connection then closes with the
    /// matching code) or a socket call failed. ``onClose`` follows.
    public var onError: (@Sendable (WebSocketError) -> Void)? {
        get { handlerStore.withLock { $0.error } }
        set { setHandler { $0.error = newValue } }
    }

    /// A ping arrived. A pong with the same data is sent after the handler returns, unless the
    /// handler calls ``WebSocketPingEvent/cancelAutoPong()``.
    public var onPing: (@Sendable ([UInt8], WebSocketPingEvent) -> Void)? {
        get { handlerStore.withLock { $0.ping } }
        set { setHandler { $0.ping = newValue } }
    }

    /// A pong arrived.
    public var onPong: (@Sendable ([UInt8]) -> Void)? {
        get { handlerStore.withLock { $0.pong } }
        set { setHandler { $0.pong = newValue } }
    }

    /// The send queue emptied after it had exceeded ``WebSocketConfiguration/highWaterMark`` or
    /// filled the kernel's buffer: a good moment to send more.
    public var onDrain: (@Sendable () -> Void)? {
        get { handlerStore.withLock { $0.drain } }
        set { setHandler { $0.drain = newValue } }
    }

    /// The buffer behind ``messages``, created (and attached, so that no message is missed from
    /// then on) on first use. On a closed connection, a new buffer that is already finished.
    func inboundBuffer() -> WebSocketInboundBuffer {
        let (buffer, created) = handlerStore.withLock { handlers -> (WebSocketInboundBuffer, Bool) in
            if let buffer = handlers.inbound { return (buffer, false) }
            let buffer = WebSocketInboundBuffer(connection: self)
            if !shared.withLock({ $0.isFinished }) { handlers.inbound = buffer }
            return (buffer, true)
        }
        if created {
            handlersChanged.store(true, ordering: .releasing)
            buffer.attach()
        }
        return buffer
    }

    /// The async `send`'s outbox, created on first use (kept after close: sends then fail on the loop).
    func asyncOutbox() -> WebSocketAsyncOutbox {
        let (outbox, created) = handlerStore.withLock { handlers -> (WebSocketAsyncOutbox, Bool) in
            if let outbox = handlers.outbox { return (outbox, false) }
            let outbox = WebSocketAsyncOutbox()
            if !shared.withLock({ $0.isFinished }) { handlers.outbox = outbox }
            return (outbox, true)
        }
        if created { handlersChanged.store(true, ordering: .releasing) }
        return outbox
    }

    /// On the loop: whether async sends made off the loop are still on their way to it (a send
    /// made on the loop must then queue behind them to keep the order).
    func hasAsyncSendsInFlight() -> Bool {
        refreshHandlers()
        return handlers.outbox?.isBusy ?? false
    }

    private func setHandler(_ update: (inout Handlers) -> Void) {
        let stored = handlerStore.withLock { handlers -> Bool in
            guard !shared.withLock({ $0.isFinished }) else { return false }
            update(&handlers)
            return true
        }
        if stored { handlersChanged.store(true, ordering: .releasing) }
    }

    /// Brings the loop's copy of the handlers up to date when a setter changed them; events then
    /// read single fields of `handlers` (copying the whole struct would retain every closure).
    @inline(__always)
    private func refreshHandlers() {
        if handlersChanged.load(ordering: .acquiring) {
            handlersChanged.store(false, ordering: .relaxed)
            handlers = handlerStore.withLock { $0 }
        }
    }

    // MARK: State

    /// Whether the connection is open (no close started or received, socket not closed).
    public var isConnected: Bool { shared.withLock { $0.isOpen } }

    /// The close code, once the connection has closed (`nil` while open). 1005 and 1006 are
    /// reported here but never sent.
    public var closeReasonCode: WebSocketCloseCode? { shared.withLock { $0.closeReasonCode } }

    /// The close reason, once the connection has closed.
    public var closeDescription: String? { shared.withLock { $0.closeDescription } }

    // MARK: Sending

    /// Sends a text message. `completion` runs on the loop queue once the bytes are handed to
    /// the kernel, or with an error if the connection ends first.
    ///
    /// - Returns: ``WebSocketSendStatus/queued``, ``WebSocketSendStatus/backpressure`` (the send
    ///   queue is above ``WebSocketConfiguration/highWaterMark``: wait for ``onDrain``), or
    ///   ``WebSocketSendStatus/dropped`` (closing, or ``WebSocketConfiguration/maxQueuedBytes``
    ///   reached). Exact on the loop queue; from other threads an estimate from a recent queue size.
    ///
    /// With permessage-deflate negotiated, a message of at least the threshold
    /// (``PerMessageDeflateOptions/threshold``) is compressed on the loop queue before it is
    /// queued, unless `compress` is `false` (e.g. for data that is already compressed).
    @discardableResult
    public func sendUTF(_ text: String, compress: Bool = true, completion: WebSocketSendCompletion? = nil)
        -> WebSocketSendStatus
    {
        send(.text(text), compress: compress, completion: completion)
    }

    /// Sends a binary message. See ``sendUTF(_:compress:completion:)`` for `compress`, the
    /// completion and the status.
    @discardableResult
    public func sendBytes(_ bytes: [UInt8], compress: Bool = true, completion: WebSocketSendCompletion? = nil)
        -> WebSocketSendStatus
    {
        send(.binary(bytes), compress: compress, completion: completion)
    }

    /// Sends a message of either kind. See ``sendUTF(_:compress:completion:)``.
    @discardableResult
    public func send(_ message: WebSocketMessage, compress: Bool = true, completion: WebSocketSendCompletion? = nil)
        -> WebSocketSendStatus
    {
        let (opcode, payload, count) = Self.framing(message)
        return submitMessage(opcode, payload, count: count, compress: compress, completion)
    }

    /// ``send(_:compress:completion:)`` for a caller known to be on the loop (the async `send`
    /// from a task on ``taskExecutor``), without asking the queue again.
    func enqueueOnLoop(_ message: WebSocketMessage) {
        let (opcode, payload, count) = Self.framing(message)
        _ = enqueueMessage(opcode, payload, count: count, compress: true, nil)
    }

    /// A message's opcode and payload as every send queues them (text made contiguous UTF-8, so
    /// the frame can point into it), and its payload size.
    private static func framing(_ message: WebSocketMessage) -> (WebSocketOpcode, OutboundPayload, count: Int) {
        switch message {
        case .text(var text):
            text.makeContiguousUTF8()
            return (.text, .text(text), text.utf8.count)
        case .binary(let bytes):
            return (.binary, .bytes(bytes), bytes.count)
        }
    }

    /// Sends one message of a broadcast, on the loop: without context takeover its compressed
    /// form is shared through `cache` by every connection with the same compressor settings.
    func sendBroadcast(_ message: WebSocketMessage, cache: BroadcastDeflateCache) {
        let (opcode, payload, count) = Self.framing(message)  // broadcastUTF made the text contiguous already
        var compressed: [UInt8]?
        if let deflate, deflate.parameters.outboundNoContextTakeover, deflate.shouldCompress(count: count) {
            compressed = cache.compressed(payload, key: deflate.deflaterKey)
        }
        _ = enqueueMessage(opcode, payload, count: count, compress: true, precompressed: compressed, nil)
    }

    /// Sends a ping (at most 125 bytes). It overtakes queued data frames, never a frame already begun.
    public func ping(_ data: [UInt8] = [], completion: WebSocketSendCompletion? = nil) {
        submitControl(.ping, data, completion)
    }

    /// Sends an unsolicited pong (at most 125 bytes), e.g. as a unidirectional heartbeat.
    public func pong(_ data: [UInt8] = [], completion: WebSocketSendCompletion? = nil) {
        submitControl(.pong, data, completion)
    }

    /// Sends one frame exactly as given (fin, RSV bits, opcode, payload), for apps that fragment
    /// messages themselves. A client masks it with a fresh key. Close frames go through ``close(code:description:)``.
    @discardableResult
    public func sendFrame(_ frame: WebSocketFrame, completion: WebSocketSendCompletion? = nil) -> WebSocketSendStatus {
        if let problem = Self.problem(sending: frame) {
            completion?(WebSocketError(.invalidArgument, problem))
            return .dropped
        }
        let status = estimatedStatus(adding: frame.payload.count)
        onLoop { [self] in
            guard machine.canSendData else { return notConnected(completion) }
            if !frame.opcode.isControl && streaming.writer != nil {
                _ = deferBehindWriter(.frame(frame, completion))
                return
            }
            guard
                frame.opcode.isControl || channel.bufferedAmount == 0
                    || channel.bufferedAmount + frame.payload.count <= configuration.maxQueuedBytes
            else {
                _ = overflow(completion)
                return
            }
            enqueueFrame(
                FrameHeader(
                    fin: frame.fin, rsv: frame.rsvBits, opcode: frame.opcode, payloadLength: frame.payload.count),
                .bytes(frame.payload), 0..<frame.payload.count, priority: frame.opcode.isControl, completion)
        }
        return status
    }

    /// Starts the closing handshake: sends a close frame and waits up to
    /// ``WebSocketConfiguration/closeTimeout`` for the peer's, then closes the socket. A code
    /// that may not be sent (1005, 1006, 1015, or outside 1000–4999) sends a close frame
    /// without a status code. Does nothing when closing has already begun.
    public func close(code: WebSocketCloseCode = .normalClosure, description: String = "") {
        onLoop { [self] in machine.close(code: code, reason: description) }
    }

    /// Sends a close frame and closes the socket at once, without waiting for the peer.
    public func drop(code: WebSocketCloseCode = .normalClosure, description: String = "") {
        onLoop { [self] in machine.drop(code: code, reason: description) }
    }

    /// Stops reading from the socket until ``resume()``: no events arrive and the peer, once its
    /// and our kernel buffers are full, is slowed down by TCP itself. Keepalive is suspended
    /// meanwhile (a paused connection cannot see the pong); the idle timeout is not.
    public func pause() {
        onLoop { [self] in
            isPaused = true
            channel.pauseReading()
        }
    }

    /// Starts reading again after ``pause()``.
    public func resume() {
        onLoop { [self] in
            isPaused = false
            lastInbound = loop.coarseNow
            keepalivePingSentAt = 0
            if !isPausedByBackpressure { channel.resumeReading() }
        }
    }

    /// Bytes queued for sending and not yet taken by the kernel, framing included, with the
    /// sends waiting behind a ``WebSocketMessageWriter``. Exact on the loop queue; from other
    /// threads, a recent value.
    public var bufferedAmount: Int { channel.publishedBufferedAmount + waitingBytesMirror.load(ordering: .relaxed) }

    // MARK: Internals

    func onLoop(_ body: @escaping @Sendable () -> Void) {
        if loop.inLoop {
            body()
        } else {
            loop.async { [loop] in loop.runEvent(body) }
        }
    }

    func notConnected(_ completion: WebSocketSendCompletion?) {
        completion?(WebSocketError(.notConnected, "the connection is closing or closed"))
    }

    private func submitMessage(
        _ opcode: WebSocketOpcode, _ payload: OutboundPayload, count: Int, compress: Bool,
        _ completion: WebSocketSendCompletion?
    ) -> WebSocketSendStatus {
        // On the loop (the common case: replying from an event handler) no closure is allocated.
        guard loop.inLoop else {
            loop.async { [self, loop] in
                loop.runEvent { _ = enqueueMessage(opcode, payload, count: count, compress: compress, completion) }
            }
            return estimatedStatus(adding: count)
        }
        return enqueueMessage(opcode, payload, count: count, compress: compress, completion)
    }

    /// What a send from another thread will most likely meet on the loop.
    func estimatedStatus(adding count: Int) -> WebSocketSendStatus {
        guard isConnected else { return .dropped }
        let queued = bufferedAmount + count
        if queued > configuration.maxQueuedBytes { return .dropped }
        return queued > configuration.highWaterMark ? .backpressure : .queued
    }

    /// Frames a message (fragmenting it when configured) and queues it whole, or not at all.
    /// With permessage-deflate the compressed bytes (`precompressed`, or compressed here) are
    /// what is framed, counted and queued; RSV1 is set on the first frame only.
    /// `admitted`: a send that waited behind a message writer and was counted against
    /// `maxQueuedBytes` when it arrived.
    func enqueueMessage(
        _ opcode: WebSocketOpcode, _ payload: OutboundPayload, count: Int, compress: Bool,
        precompressed: [UInt8]? = nil, admitted: Bool = false, _ completion: WebSocketSendCompletion?
    ) -> WebSocketSendStatus {
        guard machine.canSendData else {
            notConnected(completion)
            return .dropped
        }
        if streaming.writer != nil {
            return deferBehindWriter(
                .message(opcode, payload, count: count, compress: compress, precompressed: precompressed, completion))
        }
        var payload = payload
        var count = count
        var rsv: UInt8 = 0
        if compress, let deflate, deflate.shouldCompress(count: count),
            let compressed = precompressed ?? payload.withUnsafeBytes({ deflate.compress($0) })
        {
            payload = .bytes(compressed)
            count = compressed.count
            rsv = 0x40
        }
        let threshold = configuration.fragmentOutgoingMessages ? max(1, configuration.fragmentationThreshold) : Int.max
        let frames = count == 0 ? 1 : 1 + (count - 1) / threshold  // no overflow when threshold is Int.max
        // An empty queue takes any single message (the app already holds it): memory stays
        // bounded by maxQueuedBytes plus that one message.
        guard
            admitted || channel.bufferedAmount == 0
                || channel.bufferedAmount + count + frames * FrameHeader.maxSize <= configuration.maxQueuedBytes
        else {
            return overflow(completion)
        }
        var start = 0
        var frameOpcode = opcode
        repeat {
            let end = count - start > threshold ? start + threshold : count
            let isLast = end == count
            enqueueFrame(
                FrameHeader(fin: isLast, rsv: start == 0 ? rsv : 0, opcode: frameOpcode, payloadLength: end - start),
                payload, start..<end, priority: false, isLast ? completion : nil)
            frameOpcode = .continuation
            start = end
        } while start < count
        return channel.bufferedAmount > configuration.highWaterMark ? .backpressure : .queued
    }

    /// The send queue would exceed `maxQueuedBytes`: drop the message or the connection.
    func overflow(_ completion: WebSocketSendCompletion?) -> WebSocketSendStatus {
        let error = WebSocketError(
            .sendQueueFull,
            "more than maxQueuedBytes (\(configuration.maxQueuedBytes)) would be queued: the peer reads too slowly")
        completion?(error)
        if configuration.sendQueueOverflow == .closeConnection {
            reportError(error)
            machine.drop(code: .policyViolation, reason: "send queue limit exceeded")
        }
        return .dropped
    }

    private func submitControl(_ opcode: WebSocketOpcode, _ data: [UInt8], _ completion: WebSocketSendCompletion?) {
        guard data.count <= 125 else {
            completion?(WebSocketError(.invalidArgument, "control frame payloads are limited to 125 bytes"))
            return
        }
        onLoop { [self] in
            guard machine.canSendData else { return notConnected(completion) }
            enqueueFrame(
                FrameHeader(opcode: opcode, payloadLength: data.count), .bytes(data), 0..<data.count, priority: true,
                completion)
        }
    }

    func enqueueFrame(
        _ header: FrameHeader, _ payload: OutboundPayload, _ range: Range<Int>, priority: Bool,
        _ completion: WebSocketSendCompletion?
    ) {
        var header = header
        var payload = payload
        var range = range
        if !isServer {
            // Clients mask every frame with a fresh key (RFC 6455 §5.3); the masked copy is the payload.
            let key = loop.randomPool.nextMaskingKey()
            header.maskingKey = key
            let masked = payload.withUnsafeBytes { source in
                [UInt8](unsafeUninitializedCapacity: range.count) { buffer, initialized in
                    if range.count > 0 {
                        key.mask(
                            UnsafeRawBufferPointer(rebasing: source[range]), into: UnsafeMutableRawBufferPointer(buffer)
                        )
                    }
                    initialized = range.count
                }
            }
            payload = .bytes(masked)
            range = 0..<masked.count
        }
        channel.enqueue(
            OutboundChunk(header: header, payload: payload, range: range, completion: completion, isPriority: priority))
        lastOutbound = loop.coarseNow
        if channel.bufferedAmount > configuration.highWaterMark {
            channel.wantsDrainNotification = true
            if channel.isWriteBlocked { pauseForBackpressure() }
        }
    }

    static func problem(sending frame: WebSocketFrame) -> String? {
        if !frame.opcode.isDefined { return "opcode \(frame.opcode) is reserved" }
        if frame.opcode == .close { return "use close(code:description:) to send a close frame" }
        if frame.opcode.isControl && (frame.payload.count > 125 || !frame.fin) {
            return "control frames must be final and at most 125 bytes"
        }
        return nil
    }

    private func finish(code: WebSocketCloseCode, reason: String, error: WebSocketError?) {
        loop.removeTickHandler(self)
        deflate?.release()
        refreshHandlers()
        let handlers = self.handlers
        handlerStore.withLock { stored in
            shared.withLock {
                $0.isOpen = false
                $0.isFinished = true
                $0.closeReasonCode = code
                $0.closeDescription = reason
                $0.closeSent = true  // nothing more is written or read
                $0.peerClosed = true
                $0.writerOpen = false
            }
            stored = Handlers()
        }
        self.handlers = Handlers()
        failStreaming()
        if let error { handlers.error?(error) }
        handlers.close?(code, reason)
        let observers = closeObservers
        closeObservers = []
        for observer in observers { observer(self) }
    }
}

// MARK: - ConnectionStateMachineOutput

extension WebSocketConnection: ConnectionStateMachineOutput {
    func sendControlFrame(_ opcode: WebSocketOpcode, payload: [UInt8]) {
        if opcode == .close { shared.withLock { $0.closeSent = true } }
        enqueueFrame(
            FrameHeader(opcode: opcode, payloadLength: payload.count), .bytes(payload), 0..<payload.count,
            priority: opcode != .close, nil)
    }

    func deliverMessage(_ message: consuming WebSocketMessage) {
        refreshHandlers()
        if let inbound = handlers.inbound { return inbound.push(message) }  // moved into the buffer
        handlers.message?(message)
    }

    func deliverFrame(_ frame: WebSocketFrame) {
        refreshHandlers()
        handlers.frame?(frame)
    }

    func deliverPing(_ payload: [UInt8]) {
        let event = WebSocketPingEvent()
        refreshHandlers()
        handlers.ping?(payload, event)
        if !event.isCancelled && machine.canSendData {
            enqueueFrame(
                FrameHeader(opcode: .pong, payloadLength: payload.count), .bytes(payload), 0..<payload.count,
                priority: true, nil)
        }
    }

    func deliverPong(_ payload: [UInt8]) {
        refreshHandlers()
        handlers.pong?(payload)
    }

    func reportError(_ error: WebSocketError) {
        refreshHandlers()
        handlers.error?(error)
    }

    func closeTransport(_ mode: TransportCloseMode) {
        shared.withLock {
            $0.isOpen = false
            $0.peerClosed = $0.peerClosed || machine.receivedClose
        }
        switch mode {
        case .immediately:
            channel.close()
        case .afterFlush:
            channel.closeAfterFlush()
            lingerDeadline = EventLoop.now() + configuration.closeTimeout.nanoseconds
        case .halfCloseAndDrain:
            channel.closeGracefully()
            lingerDeadline = EventLoop.now() + configuration.closeTimeout.nanoseconds
        }
    }

    func startCloseTimer() {
        shared.withLock {
            $0.isOpen = false
            $0.peerClosed = $0.peerClosed || machine.receivedClose
        }
        closeDeadline = EventLoop.now() + configuration.closeTimeout.nanoseconds
    }
}

// MARK: - ChannelHandler

extension WebSocketConnection: ChannelHandler {
    func channelRead(_ bytes: UnsafeMutableRawBufferPointer) {
        lastInbound = loop.coarseNow
        machine.receive(bytes)
        handlers.inbound?.publish()  // the messages of this read reach `messages` at once
        if configuration.maxMessageDuration != nil {
            if !machine.isReceivingMessage {
                messageStartedAt = 0
            } else if messageStartedAt == 0 {
                messageStartedAt = lastInbound
            }
        }
    }

    func channelEndOfInput() {}

    /// Reading stops while the queue is above `highWaterMark` *and* the kernel refuses bytes: a
    /// large echo the kernel is about to take whole at the end of the event is no reason to stop
    /// reading the next message (that would serialise a pipelined sender).
    private func pauseForBackpressure() {
        guard configuration.pauseReadingWhileBackpressured, !isPausedByBackpressure else { return }
        isPausedByBackpressure = true
        channel.pauseReading()
    }

    func channelWriteBlocked() {
        if channel.bufferedAmount > configuration.highWaterMark {
            channel.wantsDrainNotification = true
            pauseForBackpressure()
        }
    }

    func channelWritable() {
        if isPausedByBackpressure {
            isPausedByBackpressure = false
            if !isPaused {
                lastInbound = loop.coarseNow  // nothing could be read meanwhile
                keepalivePingSentAt = 0
                channel.resumeReading()
            }
        }
        refreshHandlers()
        handlers.drain?()
    }

    func channelClosed(_ error: WebSocketError?) {
        let (code, reason) = machine.transportClosed()
        finish(code: code, reason: reason, error: error)
    }
}

// MARK: - Timers

extension WebSocketConnection: LoopTickHandler {
    func loopTick(now: UInt64) {
        if lingerDeadline != 0 && now >= lingerDeadline {
            lingerDeadline = 0
            channel.close()
            return
        }
        if closeDeadline != 0 && now >= closeDeadline {
            closeDeadline = 0
            machine.closeTimerFired()
            return
        }
        if let idle = configuration.idleTimeout, machine.state == .open,
            now - min(now, max(lastInbound, lastOutbound)) >= idle.nanoseconds
        {
            reportError(WebSocketError(.timeout, "no traffic for idleTimeout (\(idle))"))
            machine.drop(code: .goingAway, reason: "idle timeout")
            return
        }
        if let limit = configuration.maxMessageDuration, messageStartedAt != 0, machine.state != .closed,
            now - min(now, messageStartedAt) >= limit.nanoseconds
        {
            messageStartedAt = 0
            reportError(WebSocketError(.timeout, "a message took longer than maxMessageDuration (\(limit))"))
            machine.drop(code: .policyViolation, reason: "message not completed within maxMessageDuration")
            return
        }
        guard configuration.keepalive, machine.state == .open, !readingHeld else { return }
        if keepalivePingSentAt != 0 {
            if lastInbound >= keepalivePingSentAt {
                keepalivePingSentAt = 0
            } else if now - keepalivePingSentAt >= configuration.keepaliveGracePeriod.nanoseconds {
                if configuration.dropConnectionOnKeepaliveTimeout {
                    machine.drop(
                        code: .abnormalClosure, reason: "keepalive timeout: the peer did not respond",
                        sendCloseFrame: false)
                } else {
                    keepalivePingSentAt = 0
                    lastInbound = now
                }
                return
            }
        }
        if keepalivePingSentAt == 0 && now - min(now, lastInbound) >= configuration.keepaliveInterval.nanoseconds {
            keepalivePingSentAt = now
            enqueueFrame(FrameHeader(opcode: .ping, payloadLength: 0), .none, 0..<0, priority: true, nil)
        }
    }
}

/// Passed to ``WebSocketConnection/onPing``: lets the handler stop the automatic pong.
public final class WebSocketPingEvent: @unchecked Sendable {
    // @unchecked: used only on the loop queue during the handler call.
    private(set) var isCancelled = false
    init() {}
    /// Do not answer this ping automatically (the app may send its own pong).
    public func cancelAutoPong() { isCancelled = true }
}
