#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A non-blocking socket file descriptor and the few system calls the library makes on it.
///
/// This is the only place with syscalls: `EINTR` is retried here, `EAGAIN` becomes
/// ``IOResult/wouldBlock`` and every other failure becomes a ``WebSocketError`` carrying `errno`.
/// It does not own the descriptor: once registered, the registration (``Readiness``) closes it
/// exactly once, when ``SocketChannel`` or ``Listener`` cancels it.
struct Socket: Sendable {
    let fd: Int32

    enum IOResult: Equatable {
        case bytes(Int)
        case wouldBlock
        case endOfFile
        case error(Int32)
    }

    // MARK: Creating

    /// Opens a listening socket. Port 0 picks a free port; the bound address is returned.
    /// `deferAcceptSeconds` > 0 sets `TCP_DEFER_ACCEPT` on Linux (ignored elsewhere);
    /// `reusePort` sets `SO_REUSEPORT`, so that other sockets may bind the same port.
    static func listen(
        host: String, port: Int, backlog: Int32, deferAcceptSeconds: Int32 = 0, reusePort: Bool = false
    ) throws(WebSocketError) -> (Socket, SocketAddress) {
        var lastError = WebSocketError(.socketError, "no address for host \(host)")
        for address in try resolve(host: host, port: port, passive: true) {
            let fd = socket(Int32(address.family), socketStreamType, 0)
            guard fd >= 0 else {
                lastError = WebSocketError(.socketError, "socket() failed", errno: errno)
                continue
            }
            var yes: Int32 = 1
            setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
            if reusePort && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &yes, socklen_t(MemoryLayout<Int32>.size)) != 0 {
                lastError = WebSocketError(.socketError, "cannot set SO_REUSEPORT", errno: errno)
                _ = systemClose(fd)
                continue
            }
            #if os(Linux)
            if deferAcceptSeconds > 0 {
                var seconds = deferAcceptSeconds
                setsockopt(fd, Int32(IPPROTO_TCP), TCP_DEFER_ACCEPT, &seconds, socklen_t(MemoryLayout<Int32>.size))
            }
            #endif
            let bound = address.withSockAddr { bind(fd, $0, $1) }
            guard bound == 0, Glibc_listen(fd, backlog) == 0 else {
                lastError = WebSocketError(.socketError, "cannot listen on \(address)", errno: errno)
                _ = systemClose(fd)
                continue
            }
            let socket = Socket(fd: fd)
            socket.setNonBlocking()
            return (socket, socket.localAddress() ?? address)
        }
        throw lastError
    }

    /// Resolves a host name or numeric address with getaddrinfo (IPv4 and IPv6).
    static func resolve(host: String, port: Int, passive: Bool) throws(WebSocketError) -> [SocketAddress] {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = socketStreamType
        hints.ai_flags = AI_NUMERICSERV | (passive ? AI_PASSIVE : 0)
        var result: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(host.isEmpty ? nil : host, String(port), &hints, &result)
        guard status == 0, let first = result else {
            throw WebSocketError(.socketError, "cannot resolve \(host): \(String(cString: gai_strerror(status)))")
        }
        defer { freeaddrinfo(first) }
        var addresses: [SocketAddress] = []
        var cursor: UnsafeMutablePointer<addrinfo>? = first
        while let info = cursor {
            if let address = SocketAddress(info.pointee.ai_addr, length: info.pointee.ai_addrlen) {
                addresses.append(address)
            }
            cursor = info.pointee.ai_next
        }
        return addresses
    }

    /// Starts a non-blocking connect. `true` when connected at once, `false` when in progress.
    static func connect(to address: SocketAddress) throws(WebSocketError) -> (Socket, connected: Bool) {
        let fd = socket(Int32(address.family), socketStreamType, 0)
        guard fd >= 0 else { throw WebSocketError(.socketError, "socket() failed", errno: errno) }
        let socket = Socket(fd: fd)
        socket.setNonBlocking()
        let status = address.withSockAddr { systemConnect(fd, $0, $1) }
        if status == 0 { return (socket, true) }
        let code = errno
        if code == EINPROGRESS || code == EINTR { return (socket, false) }
        _ = systemClose(fd)
        throw WebSocketError(.socketError, "connect to \(address) failed", errno: code)
    }

    /// The pending error of a non-blocking connect (0 when it succeeded).
    func pendingError() -> Int32 {
        var value: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        guard getsockopt(fd, SOL_SOCKET, SO_ERROR, &value, &length) == 0 else { return errno }
        return value
    }

    /// Accepts one connection and returns it with the peer's address. `nil` when none is
    /// pending (`EAGAIN`).
    func accept() -> Result<(Socket, SocketAddress?), WebSocketError>? {
        while true {
            var client: Int32 = -1
            let peer = SocketAddress { address, length in
                client = systemAccept(fd, address, length)
                return client
            }
            if client >= 0 {
                let socket = Socket(fd: client)
                socket.setNonBlocking()
                #if canImport(Darwin)
                var yes: Int32 = 1
                setsockopt(client, SOL_SOCKET, SO_NOSIGPIPE, &yes, socklen_t(MemoryLayout<Int32>.size))
                #endif
                return .success((socket, peer))
            }
            switch errno {
            case EINTR, ECONNABORTED: continue
            case EAGAIN, EWOULDBLOCK: return nil
            case let code: return .failure(WebSocketError(.socketError, "accept() failed", errno: code))
            }
        }
    }

    // MARK: Options

    /// Non-blocking and close-on-exec. A new socket has no other status flags, so there is no
    /// need to read them first (one syscall fewer per accepted connection).
    func setNonBlocking() {
        _ = fcntl(fd, F_SETFL, O_NONBLOCK)
        _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
    }

    func setNoDelay(_ on: Bool) {
        var value: Int32 = on ? 1 : 0
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &value, socklen_t(MemoryLayout<Int32>.size))
    }

    // MARK: I/O

    func read(into buffer: UnsafeMutableRawBufferPointer) -> IOResult {
        while true {
            let n = systemRead(fd, buffer.baseAddress, buffer.count)
            if n > 0 { return .bytes(n) }
            if n == 0 { return .endOfFile }
            switch errno {
            case EINTR: continue
            case EAGAIN, EWOULDBLOCK: return .wouldBlock
            case ECONNRESET, ENOTCONN, ETIMEDOUT, EPIPE: return .endOfFile
            case let code: return .error(code)
            }
        }
    }

    /// Gathers `count` iovecs into one `sendmsg` (a `writev` that cannot raise SIGPIPE).
    func write(iovecs: UnsafeMutablePointer<iovec>, count: Int) -> IOResult {
        var message = msghdr()
        message.msg_iov = iovecs
        message.msg_iovlen = .init(count)
        while true {
            let n = sendmsg(fd, &message, sendFlags)
            if n >= 0 { return .bytes(n) }
            switch errno {
            case EINTR: continue
            case EAGAIN, EWOULDBLOCK: return .wouldBlock
            case EPIPE, ECONNRESET, ENOTCONN: return .endOfFile
            case let code: return .error(code)
            }
        }
    }

    /// Writes one buffer (TLS records).
    func write(_ bytes: UnsafeRawBufferPointer) -> IOResult {
        while true {
            let n = send(fd, bytes.baseAddress, bytes.count, sendFlags)
            if n >= 0 { return .bytes(n) }
            switch errno {
            case EINTR: continue
            case EAGAIN, EWOULDBLOCK: return .wouldBlock
            case EPIPE, ECONNRESET, ENOTCONN: return .endOfFile
            case let code: return .error(code)
            }
        }
    }

    /// Half-closes: the peer reads EOF after everything already written.
    func shutdownWrite() {
        _ = shutdown(fd, Int32(SHUT_WR))
    }

    func close() {
        _ = systemClose(fd)
    }

    // MARK: Addresses

    func localAddress() -> SocketAddress? {
        SocketAddress { getsockname(fd, $0, $1) }
    }
}

// The module-level functions shadowed by Socket's methods, under names that cannot clash.
#if canImport(Glibc) || canImport(Musl)
private let socketStreamType = Int32(SOCK_STREAM.rawValue)
private let sendFlags = Int32(MSG_NOSIGNAL)
#else
private let socketStreamType = SOCK_STREAM
private let sendFlags: Int32 = 0
#endif
// `recv`, not `read`: on a socket it goes straight to the socket layer, where `read` first passes
// through the VFS (`vfs_read` and its checks), which cost about a microsecond per wake-up here.
private func systemRead(_ fd: Int32, _ p: UnsafeMutableRawPointer?, _ n: Int) -> Int { recv(fd, p, n, 0) }
private func systemClose(_ fd: Int32) -> Int32 { close(fd) }
private func systemAccept(_ fd: Int32, _ a: UnsafeMutablePointer<sockaddr>?, _ l: UnsafeMutablePointer<socklen_t>?)
    -> Int32
{
    accept(fd, a, l)
}
private func systemConnect(_ fd: Int32, _ a: UnsafePointer<sockaddr>, _ l: socklen_t) -> Int32 { connect(fd, a, l) }
private func Glibc_listen(_ fd: Int32, _ backlog: Int32) -> Int32 { listen(fd, backlog) }
