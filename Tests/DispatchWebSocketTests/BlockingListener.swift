import XCTest

@testable import DispatchWebSocket

#if canImport(Glibc)
import Glibc
#endif

/// A blocking TCP listener on 127.0.0.1 for the test servers that accept on threads of their own
/// (``FakeServer``, ``TestProxy``).
///
/// Its descriptor is closed by whoever lets go last: ``stop()`` only shuts it down while a thread
/// is inside ``nextConnection()`` (which wakes that thread), and the thread closes it on its way out.
/// Closing it under a thread that goes on to call `accept` would let that thread take a
/// connection meant for a later test's listener on the reused descriptor number.
final class BlockingListener: @unchecked Sendable {
    let port: Int
    private let fd: Int32
    private let state = LockedValue((stopped: false, accepting: 0))

    init(backlog: Int32 = 16) throws {
        let (socket, address) = try Socket.listen(host: "127.0.0.1", port: 0, backlog: backlog)
        fd = socket.fd
        port = address.port
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL, 0) & ~O_NONBLOCK)
    }

    /// The next connection, or `nil` once ``stop()`` was called. Retries failed accepts (`EMFILE`
    /// from a test that exhausts descriptors, an aborted connection) until then.
    func nextConnection() -> Int32? {
        while true {
            let entered = state.withLock { state -> Bool in
                if state.stopped { return false }
                state.accepting += 1
                return true
            }
            guard entered else { return nil }
            let client = accept(fd, nil, nil)
            let stopped = state.withLock { state in
                state.accepting -= 1
                if state.stopped && state.accepting == 0 { close(fd) }
                return state.stopped
            }
            if stopped {
                if client >= 0 { close(client) }
                return nil
            }
            if client >= 0 { return client }
            usleep(1_000)
        }
    }

    /// Stops accepting; idempotent. A thread blocked in ``nextConnection()`` returns `nil`.
    func stop() {
        state.withLock { state in
            guard !state.stopped else { return }
            state.stopped = true
            if state.accepting > 0 {
                shutdown(fd, Int32(SHUT_RDWR))
            } else {
                close(fd)
            }
        }
    }

    deinit { stop() }
}
