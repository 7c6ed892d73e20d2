#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

// Listening on Unix domain sockets and on descriptors the app hands over, and taking over
// connections the app accepted itself (ws's `noServer` + `handleUpgrade`).
extension WebSocketServer {
    /// Starts listening on a Unix domain socket and returns its address.
    ///
    /// Everything else is as on TCP: the handshake, ``Configuration/tls``, the limits and
    /// timeouts. Clients connect with `ws+unix:///path/to.sock:/request/path`. Shutting the
    /// server down removes the socket file (unless another server has replaced it meanwhile).
    ///
    /// ```swift
    /// try server.listen(unixPath: "/run/app/ws.sock", removingStaleSocket: true, permissions: 0o660)
    /// ```
    ///
    /// - Parameters:
    ///   - unixPath: the socket file's path; at most 107 bytes on Linux (103 on Darwin).
    ///   - removingStaleSocket: replace a socket file left behind by a server that is gone. Only
    ///     a socket nobody accepts on is removed: never a live server's, never a non-socket file.
    ///     Default `false`: an existing file fails with `EADDRINUSE`.
    ///   - permissions: the file mode of the socket file, e.g. `0o660`, set before anyone can
    ///     connect; `nil` leaves what the umask gives.
    /// - Throws: ``WebSocketError`` `.invalidArgument` for a path that is empty or too long for
    ///   `sun_path`, a mode outside `0...0o7777`, or a server that already listens; `.socketError` with `errno` `EADDRINUSE` when
    ///   the file exists and may not be removed, or another `errno` from `bind`/`listen`.
    @discardableResult
    public func listen(
        unixPath: String, removingStaleSocket: Bool = false, permissions: Int? = nil
    ) throws(WebSocketError) -> SocketAddress {
        // Checked first, so that a server that listens already removes no stale file.
        guard localAddress == nil else { throw WebSocketError(.invalidArgument, "the server is already listening") }
        let tls = try serverTLSContext()
        let (socket, address) = try Socket.listen(
            unixPath: unixPath, backlog: configuration.backlog, removingStale: removingStaleSocket,
            permissions: permissions)
        let listener = Listener(
            socket: socket, address: address, socketFile: UnixSocketFile(path: unixPath), loop: group.loops[0],
            transport: configuration.transport)
        return try start(listener, tls: tls)
    }

    /// Starts accepting on a socket that already listens (systemd socket activation, a listener
    /// made before `fork`) and returns its address.
    ///
    /// The server takes ownership of the descriptor once this returns: it makes it non-blocking
    /// and closes it on ``shutDown(completion:)`` (a Unix socket's file is left alone). When it throws, the descriptor is untouched and
    /// still the caller's. TCP (IPv4, IPv6) and Unix domain sockets work; options already set on
    /// the socket (backlog, `SO_REUSEPORT`, `TCP_DEFER_ACCEPT`) are kept as they are.
    ///
    /// ```swift
    /// for fd in WebSocketServer.socketActivationFileDescriptors() {
    ///     try server.listen(fileDescriptor: fd)   // one server per descriptor
    /// }
    /// ```
    ///
    /// - Throws: ``WebSocketError`` `.invalidArgument` when `fileDescriptor` is not open, not a
    ///   socket (`errno` `ENOTSOCK`), not a stream socket or not listening; also when the server
    ///   already listens.
    @discardableResult
    public func listen(fileDescriptor: Int32) throws(WebSocketError) -> SocketAddress {
        // Checked before taking the descriptor, so that this error leaves it the caller's.
        guard localAddress == nil else { throw WebSocketError(.invalidArgument, "the server is already listening") }
        let tls = try serverTLSContext()
        let socket = try Socket.adopt(fileDescriptor, listening: true)
        guard let address = socket.localAddress() else {
            throw WebSocketError(.socketError, "getsockname failed on \(fileDescriptor)", errno: errno)
        }
        let listener = Listener(
            socket: socket, address: address, socketFile: nil, loop: group.loops[0], transport: configuration.transport)
        return try start(listener, tls: tls)
    }

    /// Takes over a connection the app accepted itself (its own HTTP server, a pre-fork
    /// listener) and continues its handshake as if the server had accepted it: the request goes
    /// through the same checks, limits and timeouts, then to ``onRequest`` (or ``onHTTPRequest``
    /// for a plain HTTP request). The server need not listen.
    ///
    /// `initialBytes` are the bytes the app already read from the socket, in order: any part of
    /// the request (possibly all of it and the first frames), or nothing. They are handled first,
    /// exactly as if the server had read them; the rest is read from the socket.
    ///
    /// With ``Configuration/tls`` the socket carries TLS: the server runs the TLS handshake, and
    /// `initialBytes` are the first bytes of the client's TLS stream (the start of its
    /// ClientHello, e.g. what the app peeked to route by SNI), decrypted like everything after.
    ///
    /// The server owns the descriptor once this returns and closes it when the connection ends
    /// (or on ``shutDown(completion:)``). When it throws, the descriptor is untouched and still
    /// the caller's.
    ///
    /// ```swift
    /// // In the app's own HTTP server, on a request with `Upgrade: websocket`:
    /// try webSocketServer.handleUpgrade(socket: clientFD, initialBytes: bytesReadSoFar)
    /// ```
    ///
    /// - Throws: ``WebSocketError`` `.invalidArgument` when `socket` is not open, not a socket
    ///   (`errno` `ENOTSOCK`), not a stream socket, or a listening socket rather than a
    ///   connection; `.notConnected` when it is not connected; TLS configuration errors.
    public func handleUpgrade(socket fileDescriptor: Int32, initialBytes: [UInt8] = []) throws(WebSocketError) {
        let tls = try serverTLSContext()
        let socket = try Socket.adopt(fileDescriptor, listening: false)
        guard let peer = socket.peerAddress() else {
            throw WebSocketError(.notConnected, "socket \(fileDescriptor) is not connected", errno: ENOTCONN)
        }
        accepted(socket, peer: peer, tls: tls, initialBytes: initialBytes)
    }

    /// The listening descriptors systemd passed this process (socket activation: `LISTEN_PID`
    /// is this process and `LISTEN_FDS` counts descriptors from 3 on), or `[]`. Give each to
    /// ``listen(fileDescriptor:)``.
    public static func socketActivationFileDescriptors() -> [Int32] {
        func variable(_ name: String) -> String? { getenv(name).map { String(cString: $0) } }
        return socketActivationFileDescriptors(
            listenPID: variable("LISTEN_PID"), listenFDs: variable("LISTEN_FDS"), pid: getpid())
    }

    static func socketActivationFileDescriptors(listenPID: String?, listenFDs: String?, pid: pid_t) -> [Int32] {
        guard let listenPID, let owner = pid_t(listenPID), owner == pid,
            let listenFDs, let count = Int32(listenFDs), count > 0, count < 1 << 16
        else { return [] }
        return Array(3..<(3 + count))
    }
}
