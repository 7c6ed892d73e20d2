import Dispatch

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The sockets of one loop in one edge-triggered kernel poll set (epoll; kqueue on Darwin),
/// itself watched by a single `DispatchSourceRead`: the ``WebSocketTransport/poller`` backend,
/// reached through ``PollerRegistration``.
///
/// Why not one `DispatchSourceRead` per socket (``DispatchSourceRegistration``) on Linux: libdispatch on Linux registers each source
/// one-shot, so every event costs the manager thread an `epoll_ctl` re-arm and an `ioctl`, and
/// creating or cancelling a source is a round trip through the manager thread. With one source
/// per loop, a wake-up delivers every ready socket of the loop at once, registration is one
/// `epoll_ctl` made on the loop itself, and an edge-triggered socket needs no re-arming.
/// The callbacks still run on the loop's `DispatchQueue`, as before.
///
/// Confined to its loop's queue (hence `@unchecked Sendable`).
final class Poller: @unchecked Sendable {
    /// Descriptors reported per wake-up; more wait for the next (the source fires again).
    static let maxEvents = 256
    /// How long a poller that has just served sockets waits for more before it hands its thread
    /// back to libdispatch. While traffic flows, the next event then reaches this thread directly
    /// instead of going through libdispatch's manager thread and a thread switch (and a re-arm
    /// through the manager afterwards). Work queued with ``EventLoop/async(_:)`` cuts it short.
    static let lingerMilliseconds: Int32 = 1
    /// The longest one wake-up keeps the thread while sockets keep being ready, so the queue's
    /// timers and other blocks run at least this often.
    static let maxHold: UInt64 = 5_000_000

    private let pollFD: Int32
    private let source: DispatchSourceRead
    private let events: UnsafeMutableRawPointer
    /// Indexed by descriptor. A registration's generation travels in the event's user data, so an
    /// event collected for a descriptor that was closed (and reused) in the same batch is dropped.
    private var clients: [PollerClient?] = []
    private var generations: [UInt32] = []
    private var watchingWrites: [Bool] = []
    private var nextGeneration: UInt32 = 0
    private let waker: LoopWaker?

    init(queue: DispatchQueue, waker: LoopWaker?) throws(WebSocketError) {
        pollFD = try Kernel.create()
        self.waker = waker
        if let waker {
            do throws(WebSocketError) {
                try Kernel.add(pollFD, waker.readFD, token: Self.token(waker.readFD, 0))
            } catch {
                close(pollFD)
                throw error
            }
        }
        events = UnsafeMutableRawPointer.allocate(byteCount: Self.maxEvents * Kernel.eventSize, alignment: 8)
        source = DispatchSource.makeReadSource(fileDescriptor: pollFD, queue: queue)
        source.setEventHandler { [weak self] in self?.poll() }
        source.setCancelHandler { [pollFD] in _ = close(pollFD) }
        source.resume()
    }

    deinit {
        source.cancel()
        events.deallocate()
    }

    /// Starts reporting `fd`'s input (and hang-up) to `client`, which is held strongly until
    /// ``unregister(_:)``. Readiness that exists already is reported too.
    func register(_ fd: Int32, _ client: PollerClient) throws(WebSocketError) {
        let index = Int(fd)
        if index >= clients.count {
            let count = max(index + 1, clients.count * 2, 64)
            clients.append(contentsOf: repeatElement(nil, count: count - clients.count))
            generations.append(contentsOf: repeatElement(0, count: count - generations.count))
            watchingWrites.append(contentsOf: repeatElement(false, count: count - watchingWrites.count))
        }
        nextGeneration &+= 1
        try Kernel.add(pollFD, fd, token: Self.token(fd, nextGeneration))
        clients[index] = client
        generations[index] = nextGeneration
        watchingWrites[index] = false
    }

    /// Also reports `fd` becoming writable (edge-triggered, so a writable socket does not fire
    /// again until it was full). Call after a write returned `EAGAIN`; idempotent.
    func watchWrites(_ fd: Int32) throws(WebSocketError) {
        let index = Int(fd)
        guard index < clients.count, clients[index] != nil, !watchingWrites[index] else { return }
        try Kernel.watchWrites(pollFD, fd, token: Self.token(fd, generations[index]))
        watchingWrites[index] = true
    }

    /// Stops watching `fd` and releases its client. Call before closing the descriptor.
    func unregister(_ fd: Int32) {
        let index = Int(fd)
        guard index < clients.count, clients[index] != nil else { return }
        Kernel.remove(pollFD, fd)
        clients[index] = nil
        watchingWrites[index] = false
    }

    private static func token(_ fd: Int32, _ generation: UInt32) -> UInt64 {
        UInt64(generation) << 32 | UInt64(UInt32(bitPattern: fd))
    }

    private func poll() {
        var (served, woken) = serve(Kernel.wait(pollFD, events, Int32(Self.maxEvents), timeout: 0))
        guard let waker, served > 0 else { return }
        let deadline = EventLoop.now() + Self.maxHold
        while served > 0 && !woken && EventLoop.now() < deadline {
            waker.parked.store(true, ordering: .sequentiallyConsistent)
            if waker.pending.load(ordering: .sequentiallyConsistent) > 0 {
                waker.parked.store(false, ordering: .sequentiallyConsistent)
                return
            }
            let count = Kernel.wait(pollFD, events, Int32(Self.maxEvents), timeout: Self.lingerMilliseconds)
            waker.parked.store(false, ordering: .sequentiallyConsistent)
            (served, woken) = serve(count)
        }
    }

    /// Reports `count` collected events; returns how many were sockets, and whether the waker's
    /// pipe was among them.
    private func serve(_ count: Int) -> (sockets: Int, woken: Bool) {
        var woken = false
        for i in 0..<count {
            let (token, ready) = Kernel.event(events, i)
            let index = Int(Int32(bitPattern: UInt32(truncatingIfNeeded: token)))
            if let waker, index == Int(waker.readFD) {
                waker.drain()
                woken = true
                continue
            }
            guard index < clients.count, let client = clients[index],
                generations[index] == UInt32(truncatingIfNeeded: token >> 32)
            else { continue }
            client.pollerReady(ready)
        }
        return (woken ? count - 1 : count, woken)
    }
}

#if os(Linux)
/// epoll, reached through `dlsym` because Glibc's Swift module does not export `<sys/epoll.h>`
/// (a C shim target would be the alternative).
private enum Kernel {
    private typealias CreateFunction = @convention(c) (Int32) -> Int32
    private typealias ControlFunction = @convention(c) (Int32, Int32, Int32, UnsafeMutableRawPointer?) -> Int32
    private typealias WaitFunction = @convention(c) (Int32, UnsafeMutableRawPointer?, Int32, Int32) -> Int32

    private static let epollCreate: CreateFunction? = symbol("epoll_create1")
    private static let epollControl: ControlFunction? = symbol("epoll_ctl")
    private static let epollWait: WaitFunction? = symbol("epoll_wait")

    private static func symbol<F>(_ name: String) -> F? {
        guard let handle = dlopen(nil, RTLD_NOW), let address = dlsym(handle, name) else { return nil }
        return unsafeBitCast(address, to: F.self)
    }

    // From <sys/epoll.h>; part of the kernel ABI.
    private static let inEvent: UInt32 = 0x001
    private static let outEvent: UInt32 = 0x004
    private static let errorEvent: UInt32 = 0x008
    private static let hangUpEvent: UInt32 = 0x010
    private static let readHangUpEvent: UInt32 = 0x2000
    private static let edgeTriggered: UInt32 = 0x8000_0000
    private static let controlAdd: Int32 = 1
    private static let controlDelete: Int32 = 2
    private static let controlModify: Int32 = 3
    private static let closeOnExec: Int32 = 0o2000000

    /// `struct epoll_event` is packed on x86-64 (12 bytes), naturally aligned elsewhere.
    #if arch(x86_64) || arch(i386)
    static let eventSize = 12
    private static let dataOffset = 4
    #else
    static let eventSize = 16
    private static let dataOffset = 8
    #endif

    static func create() throws(WebSocketError) -> Int32 {
        guard let epollCreate else { throw WebSocketError(.socketError, "epoll is unavailable") }
        let fd = epollCreate(closeOnExec)
        if fd < 0 { throw WebSocketError(.socketError, "epoll_create1 failed", errno: errno) }
        return fd
    }

    private static func control(_ pollFD: Int32, _ operation: Int32, _ fd: Int32, _ mask: UInt32, _ token: UInt64)
        -> Int32
    {
        withUnsafeTemporaryAllocation(byteCount: eventSize, alignment: 8) { event in
            event.storeBytes(of: mask, as: UInt32.self)
            event.storeBytes(of: token, toByteOffset: dataOffset, as: UInt64.self)
            return epollControl!(pollFD, operation, fd, event.baseAddress)
        }
    }

    static func add(_ pollFD: Int32, _ fd: Int32, token: UInt64) throws(WebSocketError) {
        if control(pollFD, controlAdd, fd, inEvent | readHangUpEvent | edgeTriggered, token) != 0 {
            throw WebSocketError(.socketError, "epoll_ctl(ADD) failed", errno: errno)
        }
    }

    static func watchWrites(_ pollFD: Int32, _ fd: Int32, token: UInt64) throws(WebSocketError) {
        let mask = inEvent | outEvent | readHangUpEvent | edgeTriggered
        if control(pollFD, controlModify, fd, mask, token) != 0 {
            throw WebSocketError(.socketError, "epoll_ctl(MOD) failed", errno: errno)
        }
    }

    static func remove(_ pollFD: Int32, _ fd: Int32) {
        _ = control(pollFD, controlDelete, fd, 0, 0)
    }

    static func wait(_ pollFD: Int32, _ events: UnsafeMutableRawPointer, _ capacity: Int32, timeout: Int32) -> Int {
        max(0, Int(epollWait!(pollFD, events, capacity, timeout)))
    }

    static func event(_ events: UnsafeMutableRawPointer, _ i: Int) -> (token: UInt64, events: PollEvents) {
        let base = events + i * eventSize
        let mask = base.loadUnaligned(as: UInt32.self)
        var ready: PollEvents = []
        if mask & inEvent != 0 { ready.insert(.readable) }
        if mask & outEvent != 0 { ready.insert(.writable) }
        if mask & (errorEvent | hangUpEvent | readHangUpEvent) != 0 { ready.insert(.hangUp) }
        return (base.loadUnaligned(fromByteOffset: dataOffset, as: UInt64.self), ready)
    }
}
#else
/// kqueue, with `EV_CLEAR` for the same edge-triggered behaviour.
private enum Kernel {
    static let eventSize = MemoryLayout<kevent>.stride

    static func create() throws(WebSocketError) -> Int32 {
        let fd = kqueue()
        if fd < 0 { throw WebSocketError(.socketError, "kqueue failed", errno: errno) }
        _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        return fd
    }

    private static func change(_ pollFD: Int32, _ fd: Int32, _ filter: Int32, _ flags: Int32, _ token: UInt64) -> Int32
    {
        var change = kevent(
            ident: UInt(fd), filter: Int16(filter), flags: UInt16(flags), fflags: 0, data: 0,
            udata: UnsafeMutableRawPointer(bitPattern: UInt(token)))
        return kevent(pollFD, &change, 1, nil, 0, nil)
    }

    static func add(_ pollFD: Int32, _ fd: Int32, token: UInt64) throws(WebSocketError) {
        if change(pollFD, fd, Int32(EVFILT_READ), Int32(EV_ADD | EV_CLEAR), token) != 0 {
            throw WebSocketError(.socketError, "kevent(EV_ADD) failed", errno: errno)
        }
    }

    static func watchWrites(_ pollFD: Int32, _ fd: Int32, token: UInt64) throws(WebSocketError) {
        if change(pollFD, fd, Int32(EVFILT_WRITE), Int32(EV_ADD | EV_CLEAR), token) != 0 {
            throw WebSocketError(.socketError, "kevent(EV_ADD) failed", errno: errno)
        }
    }

    static func remove(_ pollFD: Int32, _ fd: Int32) {
        _ = change(pollFD, fd, Int32(EVFILT_READ), Int32(EV_DELETE), 0)
        _ = change(pollFD, fd, Int32(EVFILT_WRITE), Int32(EV_DELETE), 0)
    }

    static func wait(_ pollFD: Int32, _ events: UnsafeMutableRawPointer, _ capacity: Int32, timeout: Int32) -> Int {
        var limit = timespec(tv_sec: 0, tv_nsec: Int(timeout) * 1_000_000)
        let list = events.assumingMemoryBound(to: kevent.self)
        return max(0, Int(kevent(pollFD, nil, 0, list, capacity, &limit)))
    }

    static func event(_ events: UnsafeMutableRawPointer, _ i: Int) -> (token: UInt64, events: PollEvents) {
        let event = events.assumingMemoryBound(to: kevent.self)[i]
        var ready: PollEvents = event.filter == Int16(EVFILT_WRITE) ? .writable : .readable
        if event.flags & UInt16(EV_EOF | EV_ERROR) != 0 { ready.insert(.hangUp) }
        return (UInt64(UInt(bitPattern: event.udata)), ready)
    }
}
#endif
