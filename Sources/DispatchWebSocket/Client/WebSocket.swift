/// A WebSocket shaped like the browser API (WHATWG), built on ``WebSocketClient``.
///
/// ```swift
/// let socket = try WebSocket(url: "ws://127.0.0.1:8080/chat", protocols: ["chat"]) { socket in
///     socket.onopen = { try? socket.send("hello") }
///     socket.onmessage = { message in print(message) }
///     socket.onclose = { event in print("closed", event.code, event.reason, event.wasClean) }
/// }
/// ```
///
/// Handlers and listeners run on the connection's loop queue. An event that fires while its
/// handler is not set is not delivered, as in browsers; but where a page's script cannot be
/// interrupted before it sets its handlers, a thread can: set them in `configure`, which runs
/// before the socket starts connecting, so that they see every event from the open on.
public final class WebSocket: @unchecked Sendable {
    // @unchecked Sendable: mutable state is guarded by `lock`.

    /// The connection's state, as `WebSocket.readyState` in browsers.
    public enum ReadyState: Int, Sendable {
        /// Connecting: the handshake is not complete yet.
        case connecting = 0
        /// Open: messages can be sent and received.
        case open = 1
        /// The closing handshake has started.
        case closing = 2
        /// Closed, or the connection could not be opened.
        case closed = 3
    }

    /// What `onclose` receives.
    public struct CloseEvent: Sendable, Equatable {
        /// The close code the server sent (1005 when none, 1006 when the connection just ended).
        public var code: Int
        /// The close reason the server sent.
        public var reason: String
        /// Whether the closing handshake completed.
        public var wasClean: Bool
    }

    /// The event kinds of `addEventListener`.
    public enum EventType: Sendable, Hashable {
        /// ``WebSocket/Event/open``.
        case open
        /// ``WebSocket/Event/message(_:)``.
        case message
        /// ``WebSocket/Event/error(_:)``.
        case error
        /// ``WebSocket/Event/close(_:)``.
        case close
    }

    /// What a listener receives.
    public enum Event: Sendable {
        /// The connection opened (as `onopen`).
        case open
        /// A message arrived (as `onmessage`).
        case message(WebSocketMessage)
        /// The connection failed (as `onerror`); a close event follows.
        case error(WebSocketError)
        /// The connection closed (as `onclose`).
        case close(CloseEvent)

        var type: EventType {
            switch self {
            case .open: return .open
            case .message: return .message
            case .error: return .error
            case .close: return .close
            }
        }
    }

    /// Identifies a listener for `removeEventListener`.
    public struct ListenerID: Sendable, Hashable {
        let value: Int
    }

    /// The URL passed to `init`.
    public let url: String

    private let lock = Lock()
    private let client: WebSocketClient
    private var state = ReadyState.connecting
    private var connection: WebSocketConnection?
    private var negotiatedProtocol = ""
    private var closeSent = false
    private var handlers:
        (
            open: (@Sendable () -> Void)?, message: (@Sendable (WebSocketMessage) -> Void)?,
            error: (@Sendable (WebSocketError) -> Void)?, close: (@Sendable (CloseEvent) -> Void)?
        ) =
            (nil, nil, nil, nil)
    private var listeners: [(id: Int, type: EventType, listener: @Sendable (Event) -> Void)] = []
    private var nextListenerID = 0

    /// Starts connecting at once, after `configure`.
    /// - Parameters:
    ///   - url: a `ws://` or `wss://` URL.
    ///   - protocols: the subprotocols to offer, in order of preference.
    ///   - configuration: the client's settings.
    ///   - configure: sets handlers and listeners before the socket starts connecting (on the
    ///     calling thread, inside `init`), so none of its events can be missed.
    /// - Throws: ``WebSocketError`` `.invalidArgument` for a URL that is not `ws://` or `wss://` (a
    ///   `SyntaxError` in browsers) or duplicate protocols.
    public init(
        url: String, protocols: [String] = [], configuration: WebSocketClient.Configuration = .init(),
        configure: (WebSocket) -> Void = { _ in }
    ) throws(WebSocketError) {
        _ = try WebSocketURL(url)
        guard Set(protocols).count == protocols.count else {
            throw WebSocketError(.invalidArgument, "duplicate protocols in \(protocols)")
        }
        self.url = url
        client = WebSocketClient(configuration: configuration)
        client.onConnect = { [self] connection in opened(connection) }
        client.onConnectFailed = { [self] error in
            dispatch(.error(error))
            finish(CloseEvent(code: 1006, reason: "", wasClean: false))
        }
        configure(self)
        client.connect(url: url, protocols: protocols)
    }

    // MARK: Attributes

    /// Where the connection is in its life.
    public var readyState: ReadyState { lock.withLock { state } }
    /// The subprotocol the server chose, `""` until open or when none.
    public var `protocol`: String { lock.withLock { negotiatedProtocol } }
    /// The extensions the server agreed to (e.g. `permessage-deflate`), `""` until open or when none.
    public var extensions: String { lock.withLock { connection }?.extensions ?? "" }
    /// Bytes queued by `send` and not yet written.
    public var bufferedAmount: Int { lock.withLock { connection }?.bufferedAmount ?? 0 }

    /// The connection opened.
    public var onopen: (@Sendable () -> Void)? {
        get { lock.withLock { handlers.open } }
        set { lock.withLock { handlers.open = newValue } }
    }
    /// A message arrived.
    public var onmessage: (@Sendable (WebSocketMessage) -> Void)? {
        get { lock.withLock { handlers.message } }
        set { lock.withLock { handlers.message = newValue } }
    }
    /// Something failed (the connection did not open, or the server broke the protocol).
    public var onerror: (@Sendable (WebSocketError) -> Void)? {
        get { lock.withLock { handlers.error } }
        set { lock.withLock { handlers.error = newValue } }
    }
    /// The connection closed; called once, last.
    public var onclose: (@Sendable (CloseEvent) -> Void)? {
        get { lock.withLock { handlers.close } }
        set { lock.withLock { handlers.close = newValue } }
    }

    /// Adds a listener for one event type; returns an id for `removeEventListener`.
    @discardableResult
    public func addEventListener(_ type: EventType, _ listener: @escaping @Sendable (Event) -> Void) -> ListenerID {
        lock.withLock {
            nextListenerID += 1
            listeners.append((nextListenerID, type, listener))
            return ListenerID(value: nextListenerID)
        }
    }

    /// Removes a listener added with `addEventListener`.
    public func removeEventListener(_ id: ListenerID) {
        lock.withLock { listeners.removeAll { $0.id == id.value } }
    }

    // MARK: Methods

    /// Sends a text message. Throws `.notConnected` before the connection is open (an
    /// `InvalidStateError` in browsers); after close, the data is discarded, as in browsers.
    public func send(_ text: String) throws(WebSocketError) {
        try openConnection()?.sendUTF(text)
    }

    /// Sends a binary message.
    public func send(_ bytes: [UInt8]) throws(WebSocketError) {
        try openConnection()?.sendBytes(bytes)
    }

    private func openConnection() throws(WebSocketError) -> WebSocketConnection? {
        let (state, connection) = lock.withLock { (self.state, self.connection) }
        if state == .connecting { throw WebSocketError(.notConnected, "the WebSocket is still connecting") }
        return state == .open ? connection : nil
    }

    /// Starts the closing handshake. `code` must be 1000 or 3000–4999 and `reason` at most 123
    /// UTF-8 bytes (an `InvalidAccessError` / `SyntaxError` in browsers). Closing while
    /// connecting aborts the connection.
    public func close(code: Int? = nil, reason: String = "") throws(WebSocketError) {
        if let code, code != 1000 && !(3000...4999).contains(code) {
            throw WebSocketError(.invalidArgument, "close code must be 1000 or 3000–4999, not \(code)")
        }
        guard reason.utf8.count <= 123 else {
            throw WebSocketError(
                .invalidArgument, "close reason is \(reason.utf8.count) UTF-8 bytes; at most 123 are allowed")
        }
        let (previous, connection) = lock.withLock { () -> (ReadyState, WebSocketConnection?) in
            let previous = state
            if state == .connecting || state == .open { state = .closing }
            return (previous, self.connection)
        }
        switch previous {
        case .connecting:
            client.abort()
        case .open:
            connection?.close(
                code: code.map { WebSocketCloseCode(rawValue: UInt16($0)) } ?? .noStatusReceived, description: reason)
        case .closing, .closed:
            break
        }
    }

    // MARK: Events

    private func opened(_ connection: WebSocketConnection) {
        connection.onMessage = { [self] message in dispatch(.message(message)) }
        connection.onClose = { [self] code, reason in
            finish(CloseEvent(code: Int(code.rawValue), reason: reason, wasClean: code != .abnormalClosure))
        }
        connection.onError = { [self] error in dispatch(.error(error)) }
        let abortedMeanwhile = lock.withLock { () -> Bool in
            self.connection = connection
            negotiatedProtocol = connection.protocol ?? ""
            if state == .closing { return true }
            state = .open
            return false
        }
        if abortedMeanwhile {
            connection.close()
        } else {
            dispatch(.open)
        }
    }

    private func finish(_ event: CloseEvent) {
        let wasClosed = lock.withLock { () -> Bool in
            defer {
                state = .closed
                connection = nil
            }
            return state == .closed
        }
        if !wasClosed { dispatch(.close(event)) }
    }

    private func dispatch(_ event: Event) {
        let (handlers, listeners) = lock.withLock { (self.handlers, self.listeners.filter { $0.type == event.type }) }
        switch event {
        case .open: handlers.open?()
        case .message(let message): handlers.message?(message)
        case .error(let error): handlers.error?(error)
        case .close(let close): handlers.close?(close)
        }
        for entry in listeners { entry.listener(event) }
    }
}
