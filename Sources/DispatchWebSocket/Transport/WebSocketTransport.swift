#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// How a server's or client's sockets learn that they can be read or written.
///
/// Both transports run every callback on the connection's loop queue, with the same ordering
/// and the same corking (sends made inside one event leave in one gathered write); they differ
/// only in the kernel interface behind them and what it costs.
public enum WebSocketTransport: String, Sendable, CaseIterable {
    /// One edge-triggered kernel poll set per loop (epoll; kqueue on Darwin), watched by a
    /// single `DispatchSourceRead`. The default on Linux, where libdispatch re-arms every
    /// per-socket source through its manager thread (about 4 context switches per echoed message).
    case poller
    /// A `DispatchSourceRead` per socket, and a `DispatchSourceWrite` resumed only while the
    /// kernel's send buffer is full: plain GCD, as on Darwin, where it is the default.
    case dispatchSources

    /// The platform's default (``poller`` on Linux, ``dispatchSources`` on Darwin), unless the
    /// environment variable `DISPATCHWEBSOCKET_TRANSPORT` is `poller` or `dispatchSources`: it
    /// sets the default for the whole process (that is how the test suite and CI run both).
    /// A transport set explicitly in a configuration wins over it.
    public static let `default`: WebSocketTransport = {
        if let value = getenv("DISPATCHWEBSOCKET_TRANSPORT"),
            let transport = WebSocketTransport(rawValue: String(cString: value))
        {
            return transport
        }
        #if canImport(Darwin)
        return .dispatchSources
        #else
        return .poller
        #endif
    }()
}
