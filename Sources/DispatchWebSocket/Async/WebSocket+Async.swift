extension WebSocket {
    /// Opens a browser-style ``WebSocket`` and returns it once it is open, or throws the typed
    /// error its `onerror` would get.
    ///
    /// `configure` runs before the connection can open: set `onmessage`, `onclose` or listeners
    /// there, so that no message arriving right after the open is missed.
    ///
    /// ```swift
    /// let socket = try await WebSocket.connect(url: "ws://127.0.0.1:8080/chat") { socket in
    ///     socket.onmessage = { print($0) }
    /// }
    /// try socket.send("hello")
    /// ```
    ///
    /// Cancelling the awaiting task aborts the attempt (or closes a socket that opened meanwhile)
    /// and throws ``WebSocketError/Code-swift.struct/cancelled``.
    ///
    /// - Throws: ``WebSocketError``: as ``WebSocket/init(url:protocols:configuration:configure:)`` for a bad
    ///   URL or protocols, as ``WebSocketClient/connect(url:protocols:origin:headers:configuration:)``
    ///   when the connection does not open.
    public static func connect(
        url: String, protocols: [String] = [], configuration: WebSocketClient.Configuration = .init(),
        configure: (WebSocket) -> Void = { _ in }
    ) async throws(WebSocketError) -> WebSocket {
        let once = AsyncResumeOnce<Result<WebSocket, WebSocketError>>()
        var listeners: [WebSocket.ListenerID] = []
        // The listeners are in place before the socket starts connecting: none of its outcomes
        // can slip past them.
        let socket = try WebSocket(url: url, protocols: protocols, configuration: configuration) { socket in
            configure(socket)
            listeners = [
                socket.addEventListener(.open) { _ in once.resume(.success(socket)) },
                socket.addEventListener(.error) { event in
                    if case .error(let error) = event { once.resume(.failure(error)) }
                },
                socket.addEventListener(.close) { _ in
                    once.resume(.failure(WebSocketError(.notConnected, "the WebSocket closed before it opened")))
                },
            ]
        }
        let result = await withTaskCancellationHandler {
            await withCheckedContinuation {
                (continuation: CheckedContinuation<Result<WebSocket, WebSocketError>, Never>) in
                once.set(continuation)
            }
        } onCancel: {
            if once.resume(.failure(WebSocketError(.cancelled, "the task connecting was cancelled"))) {
                try? socket.close()
            }
        }
        for listener in listeners { socket.removeEventListener(listener) }
        return try result.get()
    }
}
