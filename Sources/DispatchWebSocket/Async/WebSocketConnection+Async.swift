extension WebSocketConnection {
    /// The messages this connection receives, as a bounded `AsyncSequence` that ends with the
    /// connection (see ``WebSocketInboundMessages`` for the end, backpressure and cancellation).
    ///
    /// ```swift
    /// for try await message in connection.messages {
    ///     try await connection.send(message)
    /// }
    /// ```
    ///
    /// From the first read on, messages go to the sequence and ``onMessage`` is no longer called.
    public var messages: WebSocketInboundMessages {
        WebSocketInboundMessages(buffer: inboundBuffer())
    }

    /// Sends a text message; see the `WebSocketMessage` overload of `send(_:)`.
    @inlinable
    public nonisolated(nonsending) func send(_ text: String) async throws(WebSocketError) {
        try await send(.text(text))
    }

    /// Sends a binary message; see the `WebSocketMessage` overload of `send(_:)`.
    @inlinable
    public nonisolated(nonsending) func send(_ bytes: [UInt8]) async throws(WebSocketError) {
        try await send(.binary(bytes))
    }

    /// Sends a message, pacing the caller by the peer.
    ///
    /// - While the send queue (``bufferedAmount`` plus async sends on their way to the loop) stays
    ///   within ``WebSocketConfiguration/highWaterMark``, it returns as soon as the message is
    ///   *queued*, without suspending: the bytes go to the kernel in the loop event that takes the
    ///   batch (a task's consecutive sends leave in one gathered write), and a per-message wait
    ///   would cost a continuation and a task switch for nothing. Should the connection close
    ///   before they are written, the close is reported by ``messages`` and ``onClose``.
    /// - Above it, it resumes only once this message's bytes have been handed to the kernel
    ///   (`sendmsg` took them), which means the queue ahead of it has drained: a producer loop is
    ///   paced by the peer and memory stays bounded. It throws if the connection ends first.
    ///
    /// Messages leave in the order of their `send` calls. Mixed with the callback methods
    /// (``sendUTF(_:compress:completion:)``…) called from outside the loop, the order between the
    /// two kinds is not guaranteed: use one style per connection.
    ///
    /// Cancelling the task while it waits closes the connection with 1001 and throws
    /// ``WebSocketError/Code-swift.struct/cancelled``; so does calling it from a cancelled task.
    ///
    /// - Throws: ``WebSocketError`` `.notConnected` when the connection is closing or closed,
    ///   `.sendQueueFull` when ``WebSocketConfiguration/maxQueuedBytes`` would be exceeded,
    ///   `.cancelled`.
    @inlinable
    public nonisolated(nonsending) func send(_ message: WebSocketMessage) async throws(WebSocketError) {
        // Inlinable with a synchronous fast path: a send that need not wait makes no async call.
        if try queueWithoutWaiting(message) { return }
        try await sendWhenDrained(message)
    }

    /// The send's fast path: queues `message` and returns `true` while the queue stays within
    /// ``WebSocketConfiguration/highWaterMark``; `false` when the caller has to wait.
    @usableFromInline
    func queueWithoutWaiting(_ message: WebSocketMessage) throws(WebSocketError) -> Bool {
        if Task.isCancelled {
            close(code: .goingAway, description: "the task sending was cancelled")
            throw Self.cancelledError
        }
        let count = message.byteCount
        // A task on the connection's loop (`taskExecutor`) queues directly, in this loop event,
        // unless sends it made off the loop are still on their way.
        if loop.inLoop && !hasAsyncSendsInFlight() {
            guard machine.canSendData else {
                throw WebSocketError(.notConnected, "the connection is closing or closed")
            }
            if channel.bufferedAmount + count <= configuration.highWaterMark {
                enqueueOnLoop(message)
                return true
            }
        }
        guard isConnected else { throw WebSocketError(.notConnected, "the connection is closing or closed") }
        let outbox = asyncOutbox()
        if bufferedAmount + outbox.bytesInFlight + count <= configuration.highWaterMark {
            outbox.submit(message, count: count, completion: nil, to: self)
            return true
        }
        return false
    }

    /// The send's slow path: the queue is above its high-water mark, so it resumes once this
    /// message's bytes went to the kernel.
    @usableFromInline
    nonisolated(nonsending) func sendWhenDrained(_ message: WebSocketMessage) async throws(WebSocketError) {
        let count = message.byteCount
        let outbox = asyncOutbox()
        let once = AsyncResumeOnce<WebSocketError?>()
        let error = await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<WebSocketError?, Never>) in
                guard once.set(continuation) else { return }
                outbox.submit(message, count: count, completion: { error in once.resume(error) }, to: self)
            }
        } onCancel: {
            if once.resume(Self.cancelledError) {
                close(code: .goingAway, description: "the task sending was cancelled")
            }
        }
        if let error { throw error }
    }

    private static var cancelledError: WebSocketError {
        WebSocketError(.cancelled, "the task was cancelled; the connection closes with 1001")
    }

    /// Closes the connection and returns once the closing handshake completed or timed out
    /// (``WebSocketConfiguration/closeTimeout``), with the code the connection closed with: the
    /// peer's echo of `code` normally, 1006 when it did not answer in time. On a connection that
    /// had already closed it returns that close's code at once.
    ///
    /// Cancelling the task while it waits drops the connection (no more waiting for the peer);
    /// the call still returns the code once the socket is closed.
    ///
    /// ```swift
    /// let code = try await connection.close(code: .normalClosure, reason: "bye")
    /// ```
    ///
    /// - Throws: ``WebSocketError`` `.invalidArgument` for a code that may not be sent
    ///   (``WebSocketCloseCode/isValidOnWire``, e.g. 1005 or 1006) or a reason over 123 UTF-8 bytes.
    @discardableResult
    public func close(code: WebSocketCloseCode = .normalClosure, reason: String = "") async throws(WebSocketError)
        -> WebSocketCloseCode
    {
        guard code.isValidOnWire else { throw WebSocketError(.invalidArgument, "close code \(code) cannot be sent") }
        guard reason.utf8.count <= 123 else {
            throw WebSocketError(
                .invalidArgument, "close reason is \(reason.utf8.count) UTF-8 bytes; at most 123 are allowed")
        }
        let loop = self.loop
        return await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<WebSocketCloseCode, Never>) in
                loop.execute { [self] in
                    loop.runEvent {
                        if let closed = closeReasonCode { return continuation.resume(returning: closed) }
                        // Close observers run once, after onClose, when the socket is closed.
                        closeObservers.append { connection in
                            continuation.resume(returning: connection.closeReasonCode ?? .abnormalClosure)
                        }
                        close(code: code, description: reason)
                    }
                }
            }
        } onCancel: {
            drop(code: .goingAway, description: "the task closing the connection was cancelled")
        }
    }
}
