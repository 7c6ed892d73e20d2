/// A loop runs Swift tasks too: a task that prefers it (``WebSocketConnection/taskExecutor``)
/// runs on the connection's loop queue, so a message handed to it and the reply it sends need no
/// thread hop. A job made ready inside a loop event (the message that resumes the task arrived
/// in this read) runs when that event's handlers have returned and before its writes go out, so
/// the replies of a whole read leave in the one gathered write, as `onMessage` replies do.
extension EventLoop: TaskExecutor {
    func enqueue(_ job: consuming ExecutorJob) {
        runAfterCurrentEvent(UnownedJob(job))
    }
}

extension WebSocketConnection {
    /// The connection's loop as a task executor. A task that handles this connection with
    /// `async`/`await` and prefers it runs on the loop queue that delivers the connection's
    /// messages: each message reaches the task and each reply reaches the socket without a
    /// thread switch (about half of the echo's cost otherwise).
    ///
    /// ```swift
    /// group.addTask(executorPreference: connection.taskExecutor) {
    ///     for try await message in connection.messages { try await connection.send(message) }
    /// }
    /// ```
    ///
    /// Code on it shares the loop with every connection of that loop, like a callback: it must
    /// not block (no synchronous file or database work, no `sleep`); await such work on another
    /// executor instead. ``WebSocketServer/run(_:)`` runs its handlers here.
    public var taskExecutor: any TaskExecutor { loop }
}

extension WebSocketRequest {
    /// The loop the connection will run on once accepted, as a task executor; see
    /// ``WebSocketConnection/taskExecutor``. Lets an accept loop start the connection's task on
    /// it before calling ``accept(protocol:cookies:headers:configure:)``.
    public var taskExecutor: any TaskExecutor { session.channel.loop }
}
