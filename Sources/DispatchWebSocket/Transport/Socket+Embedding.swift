#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Unix domain listening sockets and descriptors the app hands over (socket activation,
/// `handleUpgrade`): the checks that turn a wrong descriptor or path into a typed error.
extension Socket {
    /// Binds and listens on a Unix domain socket path.
    ///
    /// An existing file at `path` makes `bind` fail with `EADDRINUSE` unless `removingStale` is
    /// set; even then only a socket nobody accepts on is removed (never a regular file, never a
    /// live server's socket). `permissions` is applied between `bind` and `listen`, so no client
    /// can connect before it holds.
    static func listen(
        unixPath path: String, backlog: Int32, removingStale: Bool, permissions: Int?
    ) throws(WebSocketError) -> (Socket, SocketAddress) {
        let address = try SocketAddress(unixPath: path)
        if let permissions, !(0...0o7777).contains(permissions) {
            throw WebSocketError(.invalidArgument, "permissions \(String(permissions, radix: 8)) are not a file mode")
        }
        var info = stat()
        if lstat(path, &info) == 0 {
            guard (info.st_mode & S_IFMT) == S_IFSOCK else {
                throw WebSocketError(
                    .socketError, "\(path) exists and is not a socket; not removing it", errno: EADDRINUSE)
            }
            guard removingStale else {
                throw WebSocketError(
                    .socketError, "\(path) exists (pass removingStaleSocket: true to replace a stale one)",
                    errno: EADDRINUSE)
            }
            guard !isAccepting(address) else {
                throw WebSocketError(.socketError, "a server is listening on \(path)", errno: EADDRINUSE)
            }
            guard unlink(path) == 0 || errno == ENOENT else {
                throw WebSocketError(.socketError, "cannot remove the stale socket \(path)", errno: errno)
            }
        }
        let fd = socket(AF_UNIX, unixStreamType, 0)
        guard fd >= 0 else { throw WebSocketError(.socketError, "socket() failed", errno: errno) }
        guard address.withSockAddr({ bind(fd, $0, $1) }) == 0 else {
            let code = errno
            _ = closeDescriptor(fd)
            throw WebSocketError(.socketError, "cannot bind \(path)", errno: code)
        }
        if let permissions, chmod(path, mode_t(permissions)) != 0 {
            let code = errno
            _ = closeDescriptor(fd)
            unlink(path)
            throw WebSocketError(.socketError, "cannot set the permissions of \(path)", errno: code)
        }
        guard listenDescriptor(fd, backlog) == 0 else {
            let code = errno
            _ = closeDescriptor(fd)
            unlink(path)
            throw WebSocketError(.socketError, "cannot listen on \(path)", errno: code)
        }
        let socket = Socket(fd: fd)
        socket.setNonBlocking()
        return (socket, address)
    }

    /// Whether a server still listens on `address`: a non-blocking connect to a Unix socket
    /// answers at once, `ECONNREFUSED` when nobody listens (a full backlog, `EAGAIN`, is alive).
    private static func isAccepting(_ address: SocketAddress) -> Bool {
        let fd = socket(AF_UNIX, unixStreamType, 0)
        guard fd >= 0 else { return true }
        defer { _ = closeDescriptor(fd) }
        _ = fcntl(fd, F_SETFL, O_NONBLOCK)
        if address.withSockAddr({ connectDescriptor(fd, $0, $1) }) == 0 { return true }
        return errno != ECONNREFUSED && errno != ENOENT
    }

    /// Checks that `fd` is a stream socket the app hands over and makes it non-blocking.
    /// `listening` asks for a listening socket (`listen(fileDescriptor:)`), otherwise a connected one.
    /// Nothing changes (and the descriptor stays the caller's) when it throws.
    static func adopt(_ fd: Int32, listening: Bool) throws(WebSocketError) -> Socket {
        var info = stat()
        guard fd >= 0, fstat(fd, &info) == 0 else {
            throw WebSocketError(.invalidArgument, "\(fd) is not an open file descriptor", errno: EBADF)
        }
        guard (info.st_mode & S_IFMT) == S_IFSOCK else {
            throw WebSocketError(.invalidArgument, "file descriptor \(fd) is not a socket", errno: ENOTSOCK)
        }
        guard intOption(fd, SO_TYPE) == unixStreamType else {
            throw WebSocketError(.invalidArgument, "socket \(fd) is not a stream (SOCK_STREAM) socket")
        }
        let socket = Socket(fd: fd)
        guard let local = socket.localAddress(), [AF_INET, AF_INET6, AF_UNIX].contains(Int32(local.family)) else {
            throw WebSocketError(.invalidArgument, "socket \(fd) is not an IPv4, IPv6 or Unix domain socket")
        }
        let accepting = intOption(fd, SO_ACCEPTCONN) == 1
        if listening {
            guard accepting else { throw WebSocketError(.invalidArgument, "socket \(fd) is not listening") }
        } else {
            guard !accepting else {
                throw WebSocketError(.invalidArgument, "socket \(fd) is a listening socket, not a connection")
            }
        }
        let flags = fcntl(fd, F_GETFL)
        _ = fcntl(fd, F_SETFL, flags | O_NONBLOCK)
        _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        #if canImport(Darwin)
        var yes: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_NOSIGPIPE, &yes, socklen_t(MemoryLayout<Int32>.size))
        #endif
        return socket
    }

    /// The connected peer (`getpeername`), `nil` when not connected.
    func peerAddress() -> SocketAddress? {
        SocketAddress { getpeername(fd, $0, $1) }
    }

    private static func intOption(_ fd: Int32, _ name: Int32) -> Int32? {
        var value: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        guard getsockopt(fd, SOL_SOCKET, name, &value, &length) == 0 else { return nil }
        return value
    }
}

#if canImport(Glibc) || canImport(Musl)
private let unixStreamType = Int32(SOCK_STREAM.rawValue)
#else
private let unixStreamType = SOCK_STREAM
#endif
// Socket's methods shadow these inside the extension.
private func closeDescriptor(_ fd: Int32) -> Int32 { close(fd) }
private func listenDescriptor(_ fd: Int32, _ backlog: Int32) -> Int32 { listen(fd, backlog) }
private func connectDescriptor(_ fd: Int32, _ a: UnsafePointer<sockaddr>, _ l: socklen_t) -> Int32 { connect(fd, a, l) }

/// The file a Unix listening socket was bound to, removed when the listener stops (as Node's
/// `net.Server` does), unless another server has replaced it meanwhile.
struct UnixSocketFile: Sendable {
    let path: String
    private let device: UInt64
    private let inode: UInt64

    init?(path: String) {
        var info = stat()
        guard lstat(path, &info) == 0 else { return nil }
        self.path = path
        device = UInt64(info.st_dev)
        inode = UInt64(info.st_ino)
    }

    func removeIfUnchanged() {
        guard let now = UnixSocketFile(path: path), now.device == device, now.inode == inode else { return }
        unlink(path)
    }
}
