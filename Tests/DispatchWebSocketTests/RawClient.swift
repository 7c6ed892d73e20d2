import COpenSSL
import TestSupport

@testable import DispatchWebSocket

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A blocking raw-socket client for integration tests: it writes exactly the bytes a test wants
/// (valid or not) and reads what the server answers. Every read has a receive timeout, so a
/// server that never answers fails the test instead of hanging it.
final class RawClient {
    let fd: Int32
    private var buffer: [UInt8] = []
    var decoder = WebSocketFrameDecoder()

    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    init(port: Int, host: String = "127.0.0.1", timeoutSeconds: Int = 10) throws {
        let address = try Socket.resolve(host: host, port: port, passive: false)[0]
        fd = socket(Int32(address.family), Int32(SOCK_STREAM.rawValue), 0)
        Loopback.setTimeout(fd, seconds: timeoutSeconds)
        let status = address.withSockAddr { connect(fd, $0, $1) }
        guard status == 0 else {
            close(fd)
            throw Failure(description: "connect failed: errno \(errno)")
        }
    }

    /// Wraps a socket that is already connected (one end of a `socketpair`, a Unix socket); it
    /// is closed on deinit.
    init(connectedFD: Int32, timeoutSeconds: Int = 10) {
        fd = connectedFD
        Loopback.setTimeout(fd, seconds: timeoutSeconds)
    }

    /// Connects to a Unix domain socket.
    convenience init(unixPath: String, timeoutSeconds: Int = 10) throws {
        let address = try SocketAddress(unixPath: unixPath)
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard address.withSockAddr({ connect(fd, $0, $1) }) == 0 else {
            let code = errno
            close(fd)
            throw Failure(description: "connect to \(unixPath) failed: errno \(code)")
        }
        self.init(connectedFD: fd, timeoutSeconds: timeoutSeconds)
    }

    deinit {
        if let ssl { SSL_free(ssl) }
        if let tlsContext { SSL_CTX_free(tlsContext) }
        close(fd)
    }

    // MARK: TLS (blocking, straight on OpenSSL, independent of the library's TLS code)

    private var ssl: OpaquePointer?
    private var tlsContext: OpaquePointer?
    /// The server ended TLS with `close_notify` (rather than a bare FIN).
    private(set) var receivedCloseNotify = false
    /// The negotiated ALPN protocol.
    private(set) var alpn: String?

    /// Runs a TLS handshake on the connected socket; reads and writes go through it afterwards.
    func startTLS(caFile: String?, serverName: String? = nil, certificate: String? = nil, key: String? = nil) throws {
        let context = SSL_CTX_new(TLS_client_method())!
        tlsContext = context
        if let caFile {
            guard SSL_CTX_load_verify_locations(context, caFile, nil) == 1 else {
                throw Failure(description: "bad CA file")
            }
            SSL_CTX_set_verify(context, SSL_VERIFY_PEER, nil)
        }
        if let certificate, let key {
            SSL_CTX_use_certificate_chain_file(context, certificate)
            SSL_CTX_use_PrivateKey_file(context, key, SSL_FILETYPE_PEM)
        }
        let alpnList: [UInt8] = [8] + Array("http/1.1".utf8)
        SSL_CTX_set_alpn_protos(context, alpnList, UInt32(alpnList.count))
        let ssl = SSL_new(context)!
        self.ssl = ssl
        if let serverName { _ = dws_SSL_set_tlsext_host_name(ssl, serverName) }
        SSL_set_fd(ssl, fd)
        guard SSL_connect(ssl) == 1 else {
            ERR_clear_error()
            throw Failure(description: "TLS handshake failed")
        }
        var protocolName: UnsafePointer<UInt8>?
        var length: UInt32 = 0
        SSL_get0_alpn_selected(ssl, &protocolName, &length)
        if let protocolName, length > 0 {
            alpn = String(decoding: UnsafeBufferPointer(start: protocolName, count: Int(length)), as: UTF8.self)
        }
    }

    func write(_ bytes: [UInt8]) throws {
        if let ssl {
            var written = 0
            guard bytes.isEmpty || SSL_write_ex(ssl, bytes, bytes.count, &written) == 1 else {
                ERR_clear_error()
                throw Failure(description: "SSL_write failed")
            }
            return
        }
        var offset = 0
        while offset < bytes.count {
            let n = bytes[offset...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard n > 0 else { throw Failure(description: "send failed: errno \(errno)") }
            offset += n
        }
    }

    func write(_ text: String) throws { try write(Array(text.utf8)) }

    /// Reads more bytes into the buffer; false on EOF.
    @discardableResult
    private func fill() throws -> Bool {
        var chunk = [UInt8](repeating: 0, count: 65536)
        if let ssl {
            var count = 0
            if SSL_read_ex(ssl, &chunk, chunk.count, &count) == 1 {
                buffer.append(contentsOf: chunk[0..<count])
                return true
            }
            let error = SSL_get_error(ssl, 0)
            ERR_clear_error()
            if error == SSL_ERROR_ZERO_RETURN { receivedCloseNotify = true }
            if error == SSL_ERROR_ZERO_RETURN || error == SSL_ERROR_SSL || errno == ECONNRESET { return false }
            throw Failure(description: "SSL_read failed or timed out (SSL error \(error), errno \(errno))")
        }
        let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        if n == 0 { return false }
        guard n > 0 else {
            if errno == ECONNRESET { return false }
            throw Failure(description: "recv failed or timed out: errno \(errno)")
        }
        buffer.append(contentsOf: chunk[0..<n])
        return true
    }

    /// Up to `max` raw bytes (what is buffered, else one read); nil on EOF.
    func readSome(max: Int) throws -> [UInt8]? {
        if buffer.isEmpty {
            guard try fill() else { return nil }
        }
        let count = min(max, buffer.count)
        let bytes = Array(buffer.prefix(count))
        buffer.removeFirst(count)
        return bytes
    }

    /// Reads an HTTP response head (up to the blank line) and returns it as text.
    func readHTTPHead() throws -> String {
        while true {
            if let end = buffer.firstRange(of: Array("\r\n\r\n".utf8)) {
                let head = String(decoding: buffer[..<end.upperBound], as: UTF8.self)
                buffer.removeSubrange(..<end.upperBound)
                return head
            }
            guard try fill() else {
                throw Failure(
                    description: "EOF before the end of the HTTP head: \(String(decoding: buffer, as: UTF8.self))")
            }
        }
    }

    /// Reads a whole HTTP response with a Content-Length body.
    func readHTTPResponse() throws -> (head: String, body: String) {
        let head = try readHTTPHead()
        var length = 0
        for line in head.split(separator: "\r\n") where line.lowercased().hasPrefix("content-length:") {
            length = Int(line.split(separator: ":")[1].trimmingCharacters()) ?? 0
        }
        while buffer.count < length {
            guard try fill() else { break }
        }
        let body = String(decoding: buffer.prefix(length), as: UTF8.self)
        buffer.removeFirst(min(length, buffer.count))
        return (head, body)
    }

    /// Performs the opening handshake and returns the 101 response head.
    @discardableResult
    func upgrade(path: String = "/", protocols: [String] = [], extraHeaders: String = "") throws -> String {
        var request = "GET \(path) HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        request += "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
        if !protocols.isEmpty { request += "Sec-WebSocket-Protocol: \(protocols.joined(separator: ", "))\r\n" }
        request += extraHeaders + "\r\n"
        try write(request)
        let head = try readHTTPHead()
        guard head.hasPrefix("HTTP/1.1 101") else { throw Failure(description: "upgrade refused: \(head)") }
        guard head.contains("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=") else {
            throw Failure(description: "wrong accept key: \(head)")
        }
        return head
    }

    /// Sends one masked frame.
    func send(_ opcode: WebSocketOpcode, _ payload: [UInt8], fin: Bool = true, rsv1: Bool = false) throws {
        try write(
            WebSocketFrame(fin: fin, rsv1: rsv1, opcode: opcode, maskingKey: .random(), payload: payload).encoded())
    }

    func sendText(_ text: String, fin: Bool = true) throws { try send(.text, Array(text.utf8), fin: fin) }

    func sendClose(code: UInt16?, reason: String = "") throws {
        var payload: [UInt8] = []
        if let code { payload = [UInt8(code >> 8), UInt8(code & 0xFF)] + Array(reason.utf8) }
        try send(.close, payload)
    }

    /// Reads and discards until the server closes the connection.
    func readUntilEOF() throws {
        while try fill() { buffer.removeAll() }
    }

    /// Reads the next frame; nil on EOF.
    func readFrame() throws -> WebSocketFrame? {
        while true {
            if !pending.isEmpty { return pending.removeFirst() }
            pending = try decoder.decode(buffer)
            buffer.removeAll()
            if !pending.isEmpty { continue }
            guard try fill() else { return nil }
        }
    }
    private var pending: [WebSocketFrame] = []

    /// Reads frames until a data or close frame (answering nothing), returning it.
    func readFrame(skippingPings: Bool) throws -> WebSocketFrame? {
        while let frame = try readFrame() {
            if skippingPings && (frame.opcode == .ping || frame.opcode == .pong) { continue }
            return frame
        }
        return nil
    }

    /// Reads until EOF, returning the frames seen; throws if the server does not close in time.
    func readUntilClosed() throws -> [WebSocketFrame] {
        var frames: [WebSocketFrame] = []
        while let frame = try readFrame() { frames.append(frame) }
        shutdown(fd, Int32(SHUT_WR))  // as a well-behaved client: close our side too
        return frames
    }

    /// The close code in a close frame.
    static func closeCode(_ frame: WebSocketFrame) -> UInt16? {
        guard frame.opcode == .close, frame.payload.count >= 2 else { return nil }
        return UInt16(frame.payload[0]) << 8 | UInt16(frame.payload[1])
    }
}

extension Substring {
    func trimmingCharacters() -> String {
        String(drop { $0 == " " }.reversed().drop { $0 == " " }.reversed())
    }
}
