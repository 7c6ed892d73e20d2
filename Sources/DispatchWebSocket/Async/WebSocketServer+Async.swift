extension WebSocketServer {
    /// The upgrade requests, for an accept loop written with `async`/`await`.
    ///
    /// Reading this property installs ``onRequest`` (requests go to the sequence) and wraps
    /// ``onConnect`` so that every connection accepted from then on buffers its
    /// ``WebSocketConnection/messages`` from the moment it opens: nothing is lost between the
    /// upgrade and the first iteration, however late the task gets to it. Read it once, before
    /// ``listen(host:port:)``. A request nobody takes is answered by the server's
    /// `handshakeTimeout`; beyond ``Configuration/backlog`` waiting requests, new ones get 503.
    ///
    /// A task group per connection; each connection handles one message at a time, in order:
    ///
    /// ```swift
    /// let server = WebSocketServer()
    /// let requests = server.requests
    /// try server.listen(port: 8080)
    /// await withDiscardingTaskGroup { group in
    ///     for await request in requests {                  // ends after shutDown()
    ///         group.addTask(executorPreference: request.taskExecutor) {   // on its loop: no thread hop
    ///             guard let connection = try? request.accept() else { return }
    ///             do {
    ///                 for try await message in connection.messages { try await connection.send(message) }
    ///             } catch {}
    ///         }
    ///     }
    /// }
    /// ```
    public var requests: WebSocketServerRequests {
        let buffer = WebSocketRequestBuffer(limit: Int(configuration.backlog))
        onRequest = { request in buffer.push(request) }
        let previous = onConnect
        onConnect = { connection in
            _ = connection.inboundBuffer()  // on the loop, before the connection's first event
            previous?(connection)
        }
        onShutDownStarted { buffer.finish() }
        return WebSocketServerRequests(buffer: buffer)
    }

    /// Serves every upgrade request until ``shutDown()``: accepts it (with the first protocol the
    /// client offered), runs `handler` for the connection in its own child task, and closes the
    /// connection (1000) when the handler returns, or with 1011 when it throws. Returns after
    /// shutdown, once every handler has returned (shutdown closes the connections with 1001, which
    /// ends their ``WebSocketConnection/messages``).
    ///
    /// ```swift
    /// let server = WebSocketServer()
    /// try server.listen(port: 8080)
    /// try await server.run { connection in
    ///     for try await message in connection.messages { try await connection.send(message) }
    /// }
    /// ```
    ///
    /// Each handler runs on its connection's loop (``WebSocketConnection/taskExecutor``): messages
    /// and replies need no thread hop, and the handler must not block.
    ///
    /// Call ``listen(host:port:)`` first. For a choice per request (protocol, origin, rejection)
    /// iterate ``requests`` instead.
    ///
    /// - Throws: ``WebSocketError`` `.invalidArgument` when the server is not listening.
    public func run(_ handler: @escaping @Sendable (WebSocketConnection) async throws -> Void)
        async throws(WebSocketError)
    {
        guard localAddress != nil else { throw WebSocketError(.invalidArgument, "call listen(host:port:) before run") }
        let requests = self.requests
        await withDiscardingTaskGroup { group in
            for await request in requests {
                group.addTask(executorPreference: request.taskExecutor) {
                    guard let connection = try? request.accept(protocol: request.requestedProtocols.first) else {
                        return
                    }
                    do {
                        try await handler(connection)
                        _ = try? await connection.close()
                    } catch {
                        _ = try? await connection.close(code: .internalServerError, reason: "the handler failed")
                    }
                }
            }
        }
    }
}
