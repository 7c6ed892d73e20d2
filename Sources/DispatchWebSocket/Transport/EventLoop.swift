import Dispatch

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Something that wants a coarse periodic tick on its loop (timeouts, keepalive).
protocol LoopTickHandler: AnyObject {
    func loopTick(now: UInt64)
}

/// One serial queue that runs every callback of the connections assigned to it, plus the
/// scratch memory those callbacks share: the read buffer, the iovec array and the frame-header
/// arena. Sharing them per loop (uWebSockets-style) keeps an idle connection free of buffers.
///
/// Everything here is touched only on ``queue``, which is why it is `@unchecked Sendable`.
final class EventLoop: @unchecked Sendable {
    /// Work deferred to the end of the current event.
    private enum Deferred {
        case body(() -> Void)
        case job(UnownedJob)
    }

    let queue: DispatchQueue
    /// How often timeouts and keepalive are checked. Timeouts are accurate to this.
    static let tickInterval: UInt64 = 100_000_000

    /// Bytes read per `read` call; large enough for one 64 KiB TCP segment burst.
    static let readBufferSize = 256 * 1024
    /// Chunks gathered into one `sendmsg`.
    static let maxGather = 64

    nonisolated(unsafe) private static let key = DispatchSpecificKey<UnsafeMutableRawPointer>()

    private(set) lazy var readBuffer = UnsafeMutableRawBufferPointer.allocate(
        byteCount: Self.readBufferSize, alignment: 16)
    /// Decrypted bytes of the loop's TLS connections, handed up like `readBuffer`.
    private(set) lazy var tlsPlaintextBuffer = UnsafeMutableRawBufferPointer.allocate(
        byteCount: 64 * 1024, alignment: 16)
    /// Small frames copied together into one TLS record.
    private(set) lazy var tlsStagingBuffer = UnsafeMutableRawBufferPointer.allocate(
        byteCount: TLSStream.recordSize, alignment: 16)
    /// Ciphertext of one OpenSSL call, before it is written (see ``TLSStream``).
    var tlsOutput = TLSOutputBuffer()
    let iovecs = UnsafeMutablePointer<iovec>.allocate(capacity: 2 * EventLoop.maxGather)
    let headerArena = UnsafeMutableRawPointer.allocate(
        byteCount: EventLoop.maxGather * FrameHeader.maxSize, alignment: 8)

    /// The loop's `.poller` sockets; created with the first one, so an unused loop holds no descriptor.
    private var poller: Poller?
    /// Cuts a lingering poller short when work is queued (nil if its pipe could not be made:
    /// the poller then does not linger).
    let waker = try? LoopWaker()

    /// Masking keys for the client connections on this loop.
    var randomPool = SecureRandomPool()

    /// Channels with queued bytes, written when the current event ends (corking).
    private var pendingFlush: [SocketChannel] = []
    /// Work to run when the current event ends, before its writes go out, in order: closures
    /// and the jobs of tasks that prefer this loop (stored as they are, so resuming a task
    /// allocates nothing). `running` is the batch being run, kept to reuse its storage.
    private var deferred: [Deferred] = []
    private var running: [Deferred] = []
    private var eventDepth = 0
    private var flushScheduled = false

    /// The time of the last tick: cheap to read on every event, accurate to `tickInterval`.
    private(set) var coarseNow: UInt64 = EventLoop.now()

    private var tickHandlers: [ObjectIdentifier: LoopTickHandler] = [:]
    private var tickTimer: DispatchSourceTimer?

    init(label: String) {
        queue = DispatchQueue(label: label)
        queue.setSpecific(key: Self.key, value: Unmanaged.passUnretained(self).toOpaque())
    }

    deinit {
        tickTimer?.cancel()
        iovecs.deallocate()
        headerArena.deallocate()
    }

    /// The loop whose event (``runEvent(_:)``) runs on this thread, if any: inside an event
    /// ``inLoop`` is one thread-local read (about 4 ns) instead of `DispatchQueue.getSpecific`
    /// (about 20 ns), and every send asks it. Outside events (a timer, an app's own
    /// `queue.async`) the queue-specific check still answers. Set and restored by the outermost
    /// event only; the library never blocks an event on another queue, so it cannot go stale.
    private static let currentEventLoop: pthread_key_t = {
        var key = pthread_key_t()
        precondition(pthread_key_create(&key, nil) == 0, "pthread_key_create failed")
        return key
    }()

    /// Whether the caller runs on this loop's queue.
    var inLoop: Bool {
        let me = Unmanaged.passUnretained(self).toOpaque()
        return pthread_getspecific(Self.currentEventLoop) == me || DispatchQueue.getSpecific(key: Self.key) == me
    }

    /// Runs `body` on the loop: inline when already there, otherwise asynchronously.
    func execute(_ body: @escaping @Sendable () -> Void) {
        if inLoop { body() } else { async(body) }
    }

    /// Queues `body` on the loop. Every block the library queues goes through here, so that a
    /// poller lingering in its wait (see ``Poller/lingerMilliseconds``) returns to let it run.
    func async(_ body: @escaping @Sendable () -> Void) {
        guard let waker else { return queue.async(execute: body) }
        waker.pending.add(1, ordering: .sequentiallyConsistent)
        queue.async {
            waker.pending.subtract(1, ordering: .sequentiallyConsistent)
            body()
        }
        waker.wakeIfParked()
    }

    /// Like ``async(_:)``, after `delay`.
    func asyncAfter(_ delay: DispatchTimeInterval, _ body: @escaping @Sendable () -> Void) {
        // The timer fires off the loop, so that it can wake a lingering poller.
        DispatchQueue.global().asyncAfter(deadline: .now() + delay) { [self] in async(body) }
    }

    // MARK: Sockets

    /// Reports `fd`'s readiness to `client` on this loop, through `transport`, until the returned
    /// registration is cancelled (which also closes the descriptor, when asked). On the loop.
    func register(_ fd: Int32, _ client: PollerClient, transport: WebSocketTransport) throws(WebSocketError)
        -> Readiness
    {
        switch transport {
        case .poller:
            if self.poller == nil { self.poller = try Poller(queue: queue, waker: waker) }
            let poller = self.poller!
            try poller.register(fd, client)
            return PollerRegistration(poller: poller, fd: fd)
        case .dispatchSources:
            return DispatchSourceRegistration(fd: fd, queue: queue, client: client)
        }
    }

    // MARK: Corked writes

    /// Runs one event (a read, a tick, a hop from another thread): sends made inside it are
    /// written together when it ends.
    func runEvent<R>(_ body: () -> R) -> R {
        let outer = eventDepth == 0
        let previous = outer ? pthread_getspecific(Self.currentEventLoop) : nil
        if outer { pthread_setspecific(Self.currentEventLoop, Unmanaged.passUnretained(self).toOpaque()) }
        eventDepth += 1
        let result = body()
        eventDepth -= 1
        if outer {
            runDeferred()
            flushPending()
            pthread_setspecific(Self.currentEventLoop, previous)
        }
        return result
    }

    /// Runs `body` on the loop once the current event is over (its handlers have returned), or
    /// asynchronously when called outside an event or from another thread. This is how a
    /// connection accepted inside `onRequest` starts only after the handler has set its events.
    func executeAfterCurrentEvent(_ body: @escaping @Sendable () -> Void) {
        if inLoop && eventDepth > 0 {
            deferred.append(.body(body))
        } else {
            async { [self] in runEvent(body) }
        }
    }

    /// Runs `job` like ``executeAfterCurrentEvent(_:)`` runs a closure (the task executor's `enqueue`).
    func runAfterCurrentEvent(_ job: UnownedJob) {
        if inLoop && eventDepth > 0 {
            deferred.append(.job(job))
        } else {
            async { [self] in runEvent { job.runSynchronously(on: asUnownedTaskExecutor()) } }
        }
    }

    private func runDeferred() {
        while !deferred.isEmpty {
            swap(&deferred, &running)  // what runs now may defer more, into the emptied array
            eventDepth += 1
            for item in running {
                switch item {
                case .body(let body): body()
                case .job(let job): job.runSynchronously(on: asUnownedTaskExecutor())
                }
            }
            eventDepth -= 1
            running.removeAll(keepingCapacity: true)
        }
    }

    /// Asks for `channel` to be written at the end of the current event (or soon, when there is
    /// no event running, e.g. an app's own `queue.async`).
    func scheduleFlush(_ channel: SocketChannel) {
        pendingFlush.append(channel)
        if eventDepth == 0 && !flushScheduled {
            flushScheduled = true
            async { [self] in
                flushScheduled = false
                runEvent {}
            }
        }
    }

    private func flushPending() {
        var i = 0
        while i < pendingFlush.count {  // a flush may schedule more
            pendingFlush[i].flushIfPending()
            i += 1
        }
        pendingFlush.removeAll(keepingCapacity: true)
    }

    // MARK: Ticks

    static func now() -> UInt64 { DispatchTime.now().uptimeNanoseconds }

    func addTickHandler(_ handler: LoopTickHandler) {
        tickHandlers[ObjectIdentifier(handler)] = handler
        if tickTimer == nil {
            coarseNow = Self.now()
            let timer = DispatchSource.makeTimerSource(queue: queue)
            timer.schedule(
                deadline: .now() + .nanoseconds(Int(Self.tickInterval)),
                repeating: .nanoseconds(Int(Self.tickInterval)),
                leeway: .milliseconds(10))
            timer.setEventHandler { [unowned self] in tick() }
            timer.resume()
            tickTimer = timer
        }
    }

    func removeTickHandler(_ handler: LoopTickHandler) {
        tickHandlers.removeValue(forKey: ObjectIdentifier(handler))
        if tickHandlers.isEmpty, let timer = tickTimer {
            timer.cancel()
            tickTimer = nil
        }
    }

    private func tick() {
        let now = Self.now()
        coarseNow = now
        runEvent {
            for handler in Array(tickHandlers.values) {
                handler.loopTick(now: now)
            }
        }
    }
}
