#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// An IPv4 or IPv6 address and port, or a Unix domain socket path.
///
/// Stored as the raw `sockaddr`; the text form is made only when asked for, so accepting a
/// connection costs no string formatting.
public struct SocketAddress: Sendable, Hashable, CustomStringConvertible {
    private let storage: [UInt8]
    let family: sa_family_t

    /// The numeric host, e.g. `127.0.0.1` or `::1`; for a Unix domain socket its path (empty for
    /// an unnamed socket, as a connecting client's usually is).
    public var host: String {
        if family == sa_family_t(AF_UNIX) { return unixPath ?? "" }
        var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN) + 1)
        let ok = storage.withUnsafeBytes { raw -> Bool in
            if family == sa_family_t(AF_INET6) {
                return withUnsafeBytes(of: raw.loadUnaligned(as: sockaddr_in6.self).sin6_addr) {
                    inet_ntop(AF_INET6, $0.baseAddress, &buffer, socklen_t(buffer.count)) != nil
                }
            }
            return withUnsafeBytes(of: raw.loadUnaligned(as: sockaddr_in.self).sin_addr) {
                inet_ntop(AF_INET, $0.baseAddress, &buffer, socklen_t(buffer.count)) != nil
            }
        }
        guard ok else { return "" }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// The port; 0 for a Unix domain socket.
    public var port: Int {
        if family == sa_family_t(AF_UNIX) { return 0 }
        return storage.withUnsafeBytes { raw in
            family == sa_family_t(AF_INET6)
                ? Int(UInt16(bigEndian: raw.loadUnaligned(as: sockaddr_in6.self).sin6_port))
                : Int(UInt16(bigEndian: raw.loadUnaligned(as: sockaddr_in.self).sin_port))
        }
    }

    /// The path of a Unix domain socket address, `nil` for IP addresses (and `""` for an
    /// unnamed Unix socket).
    public var unixPath: String? {
        guard family == sa_family_t(AF_UNIX) else { return nil }
        let offset = MemoryLayout<sockaddr_un>.offset(of: \sockaddr_un.sun_path)!
        let path = storage.dropFirst(offset).prefix { $0 != 0 }
        return String(decoding: path, as: UTF8.self)
    }

    /// `host:port`, with IPv6 hosts in brackets; `unix:` and the path for a Unix domain socket.
    public var description: String {
        if family == sa_family_t(AF_UNIX) { return "unix:" + host }
        return family == sa_family_t(AF_INET6) ? "[\(host)]:\(port)" : "\(host):\(port)"
    }

    /// The address of a Unix domain socket.
    ///
    /// - Throws: ``WebSocketError`` `.invalidArgument` when `path` is empty, contains a NUL byte
    ///   or does not fit in `sun_path` (107 bytes on Linux, 103 on Darwin).
    public init(unixPath path: String) throws(WebSocketError) {
        var address = sockaddr_un()
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        let bytes = Array(path.utf8)
        guard !bytes.isEmpty, !bytes.contains(0) else {
            throw WebSocketError(.invalidArgument, "invalid Unix socket path \"\(path)\"")
        }
        guard bytes.count < capacity else {
            throw WebSocketError(
                .invalidArgument,
                "Unix socket path is \(bytes.count) bytes; at most \(capacity - 1) fit in sun_path: \(path)")
        }
        address.sun_family = sa_family_t(AF_UNIX)
        #if canImport(Darwin)
        address.sun_len = UInt8(MemoryLayout<sockaddr_un>.size)
        #endif
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: bytes) }
        let offset = MemoryLayout<sockaddr_un>.offset(of: \sockaddr_un.sun_path)!
        family = sa_family_t(AF_UNIX)
        storage = withUnsafeBytes(of: &address) { Array($0.prefix(offset + bytes.count + 1)) }
    }

    init?(_ address: UnsafePointer<sockaddr>?, length: socklen_t) {
        guard let address else { return nil }
        let family = address.pointee.sa_family
        if family == sa_family_t(AF_UNIX) {
            // Unix addresses vary in length (an unnamed peer is just the family).
            let limit = min(Int(length), MemoryLayout<sockaddr_un>.size)
            guard limit >= MemoryLayout<sa_family_t>.size else { return nil }
            self.family = family
            self.storage = Array(UnsafeRawBufferPointer(start: address, count: limit))
            return
        }
        let size = family == sa_family_t(AF_INET6) ? MemoryLayout<sockaddr_in6>.size : MemoryLayout<sockaddr_in>.size
        guard family == sa_family_t(AF_INET) || family == sa_family_t(AF_INET6), Int(length) >= size else { return nil }
        self.family = family
        self.storage = Array(UnsafeRawBufferPointer(start: address, count: size))
    }

    /// Reads an address with `getsockname`/`getpeername`/`accept`-shaped calls.
    init?(_ fill: (UnsafeMutablePointer<sockaddr>, UnsafeMutablePointer<socklen_t>) -> Int32) {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let result: SocketAddress? = withUnsafeMutablePointer(to: &storage) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { address in
                guard fill(address, &length) >= 0 else { return nil }
                return SocketAddress(address, length: length)
            }
        }
        guard let result else { return nil }
        self = result
    }

    func withSockAddr<R>(_ body: (UnsafePointer<sockaddr>, socklen_t) -> R) -> R {
        storage.withUnsafeBytes { raw in
            body(raw.baseAddress!.assumingMemoryBound(to: sockaddr.self), socklen_t(raw.count))
        }
    }

    /// Whether both are the same address and port (byte for byte).
    public static func == (lhs: SocketAddress, rhs: SocketAddress) -> Bool { lhs.storage == rhs.storage }
    /// Hashes the address and port.
    public func hash(into hasher: inout Hasher) { hasher.combine(storage) }
}
