#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
/// A response body produced a chunk at a time (a file, a generator), for
/// ``HTTPResponder/respond(status:headers:body:)``.
///
/// `read` is called on the loop queue each time the socket has taken the previous chunks; it
/// returns up to `maxBytes` bytes and must be quick (a local file read is). Returning `[]` or
/// throwing before `contentLength` bytes were given closes the connection (the client sees a
/// short body); bytes beyond `contentLength` are not sent. The source is released once the
/// response is over or the client has left.
///
/// ```swift
/// responder.respond(status: 200, headers: ["Content-Type": "video/mp4"], body: try .file(atPath: path))
/// ```
public struct HTTPResponseBody: Sendable {
    /// The body's size in bytes, sent as `Content-Length`.
    public let contentLength: Int
    /// The most bytes asked of `read` at once; two chunks at most wait in the send queue.
    /// Default: 64 KiB.
    public var chunkSize: Int = 64 * 1024
    let read: @Sendable (_ maxBytes: Int) throws -> [UInt8]

    /// A body of `contentLength` bytes that `read` hands out in order.
    public init(contentLength: Int, read: @escaping @Sendable (_ maxBytes: Int) throws -> [UInt8]) {
        self.contentLength = max(0, contentLength)
        self.read = read
    }

    /// The contents of a regular file, read as the socket takes them. The descriptor is
    /// closed when the response ends or the client leaves.
    ///
    /// - Throws: ``WebSocketError/Code/invalidArgument`` (with `errno`) when the file cannot be
    ///   opened or is not a regular file.
    public static func file(atPath path: String) throws(WebSocketError) -> HTTPResponseBody {
        let reader = try FileReader(path: path)
        return HTTPResponseBody(contentLength: reader.size) { maxBytes in try reader.read(maxBytes) }
    }
}

/// An open file descriptor read sequentially, closed when the last reference goes.
private final class FileReader: Sendable {
    let fd: Int32
    let size: Int

    init(path: String) throws(WebSocketError) {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw WebSocketError(.invalidArgument, "cannot open \(path)", errno: errno) }
        var info = stat()
        guard fstat(fd, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else {
            let code = errno
            close(fd)
            throw WebSocketError(.invalidArgument, "\(path) is not a regular file", errno: code)
        }
        self.fd = fd
        self.size = Int(info.st_size)
    }

    deinit { close(fd) }

    func read(_ maxBytes: Int) throws -> [UInt8] {
        let count = max(0, maxBytes)
        var failure: Int32 = 0
        let bytes = [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
            var n: Int
            repeat {
                n = systemRead(fd, buffer.baseAddress, count)
            } while n < 0 && errno == EINTR
            if n < 0 { failure = errno }
            initialized = max(0, n)
        }
        if failure != 0 { throw WebSocketError(.socketError, "reading the response body failed", errno: failure) }
        return bytes
    }
}

/// `read(2)`, named apart from `FileReader.read`.
private func systemRead(_ fd: Int32, _ buffer: UnsafeMutableRawPointer?, _ count: Int) -> Int {
    #if canImport(Darwin)
    Darwin.read(fd, buffer, count)
    #elseif canImport(Musl)
    Musl.read(fd, buffer, count)
    #else
    Glibc.read(fd, buffer, count)
    #endif
}
