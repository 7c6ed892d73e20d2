extension WebSocketClient {
    /// Connects to a `ws://` or `wss://` URL and returns the open connection, its
    /// ``WebSocketConnection/messages`` buffering from the moment it opened.
    ///
    /// ```swift
    /// let connection = try await WebSocketClient.connect(url: "ws://127.0.0.1:8080/chat")
    /// try await connection.send("hello")
    /// for try await message in connection.messages { print(message) }
    /// ```
    ///
    /// Cancelling the awaiting task aborts the attempt (TCP, TLS or the handshake) and throws
    /// ``WebSocketError/Code-swift.struct/cancelled``; a connection that opened meanwhile is closed.
    ///
    /// - Parameters: as ``connect(url:protocols:origin:headers:)``, and the client `configuration`.
    /// - Throws: the ``WebSocketError`` `onConnectFailed` would report: `.invalidArgument` for a
    ///   URL that is not `ws://`/`wss://`, `.socketError` when TCP fails (e.g. refused, with its
    ///   `errno`), `.timeout`, `.handshakeFailed` (e.g. the server answered 403), TLS and
    ///   certificate codes; `.cancelled`.
    public static func connect(
        url: String, protocols: [String] = [], origin: String? = nil, headers: HTTPHeaders = [:],
        configuration: Configuration = Configuration()
    ) async throws(WebSocketError) -> WebSocketConnection {
        let client = WebSocketClient(configuration: configuration)
        return try await client.connectOnce(url: url, protocols: protocols, origin: origin, headers: headers)
    }

    /// One connect attempt of this client, awaited.
    func connectOnce(url: String, protocols: [String], origin: String?, headers: HTTPHeaders)
        async throws(WebSocketError) -> WebSocketConnection
    {
        let once = AsyncResumeOnce<Result<WebSocketConnection, WebSocketError>>()
        onConnect = { connection in
            _ = connection.inboundBuffer()  // on the loop, before the connection's first event
            if !once.resume(.success(connection)) {
                connection.drop(code: .goingAway, description: "the task connecting was cancelled")
            }
        }
        onConnectFailed = { error in once.resume(.failure(error)) }
        let result = await withTaskCancellationHandler {
            await withCheckedContinuation {
                (continuation: CheckedContinuation<Result<WebSocketConnection, WebSocketError>, Never>) in
                guard once.set(continuation) else { return }
                connect(url: url, protocols: protocols, origin: origin, headers: headers)
            }
        } onCancel: {
            if once.resume(.failure(WebSocketError(.cancelled, "the task connecting was cancelled"))) { abort() }
        }
        return try result.get()
    }
}
