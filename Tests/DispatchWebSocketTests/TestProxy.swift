import XCTest

@testable import DispatchWebSocket

#if canImport(Glibc)
import Glibc
#endif

/// An HTTP CONNECT proxy on 127.0.0.1 for the tests, on blocking sockets and threads of its own:
/// it records every request head, answers as `behaviour` says and, when it opens a tunnel,
/// copies bytes both ways until each side has closed its half.
final class TestProxy: @unchecked Sendable {
    enum Behaviour: Sendable {
        /// Open the tunnel (`200 Connection established`).
        case tunnel
        /// Answer with this status (and `Proxy-Authenticate` for 407), then close.
        case refuse(Int)
        /// Send the first bytes of an answer, then close: a proxy dying mid-handshake.
        case closeMidAnswer
        /// Read the request and never answer.
        case silent
        /// Answer 200 as if the tunnel were open, then close before any byte of the server's.
        case closeAfterTunnel
    }

    var port: Int { listener.port }
    /// Request heads in arrival order.
    let requests = EventLog<String>()
    /// Accepted connections not closed yet (tests wait for 0 before counting descriptors).
    var activeConnections: Int { active.withLock { $0 } }
    private let active = LockedValue(0)
    private let listener: BlockingListener
    private let behaviour: Behaviour
    /// `user:password` the proxy demands in `Proxy-Authorization: Basic`, or `nil`.
    private let credentials: String?
    /// Host names the proxy resolves itself (`CONNECT wrong.example:443` → 127.0.0.1).
    private let hosts: [String: String]

    init(behaviour: Behaviour = .tunnel, credentials: String? = nil, hosts: [String: String] = [:]) throws {
        listener = try BlockingListener()
        self.behaviour = behaviour
        self.credentials = credentials
        self.hosts = hosts
        Thread { [self] in acceptLoop() }.start()
    }

    /// Stops accepting (see ``BlockingListener`` for why the accept loop closes the listener).
    func stop() { listener.stop() }

    private func acceptLoop() {
        while let client = listener.nextConnection() {
            active.withLock { $0 += 1 }
            Thread { [self] in serve(client) }.start()
        }
    }

    private func serve(_ client: Int32) {
        var head: [UInt8] = []
        var byte: UInt8 = 0
        while read(client, &byte, 1) == 1 {
            head.append(byte)
            if head.suffix(4) == [13, 10, 13, 10] { break }
        }
        let text = String(decoding: head, as: UTF8.self)
        requests.append(text)
        let lines = text.split(separator: "\r\n")
        let parts = lines.first?.split(separator: " ") ?? []
        guard parts.count == 3, parts[0] == "CONNECT" else { return answer(client, 400, close: true) }
        if let credentials {
            let expected = "proxy-authorization: basic " + Base64.encode(Array(credentials.utf8)).lowercased()
            guard lines.contains(where: { $0.lowercased() == expected }) else {
                return answer(client, 407, close: true)
            }
        }
        switch behaviour {
        case .refuse(let status):
            return answer(client, status, close: true)
        case .closeMidAnswer:
            write(client, "HTTP/1.1 200 Conn")
            return finished(client)
        case .silent:
            var sink = [UInt8](repeating: 0, count: 256)
            while read(client, &sink, sink.count) > 0 {}
            return finished(client)
        case .closeAfterTunnel:
            write(client, "HTTP/1.1 200 Connection established\r\n\r\n")
            return finished(client)
        case .tunnel:
            break
        }
        let target = parts[1]
        guard let colon = target.lastIndex(of: ":"), let port = Int(target[target.index(after: colon)...]) else {
            return answer(client, 400, close: true)
        }
        var host = String(target[..<colon])
        if host.hasPrefix("[") { host = String(host.dropFirst().dropLast()) }
        guard let address = try? Socket.resolve(host: hosts[host] ?? host, port: port, passive: false).first else {
            return answer(client, 502, close: true)
        }
        let upstream = socket(Int32(address.family), Int32(SOCK_STREAM.rawValue), 0)
        guard address.withSockAddr({ connect(upstream, $0, $1) }) == 0 else {
            close(upstream)
            return answer(client, 502, close: true)
        }
        write(client, "HTTP/1.1 200 Connection established\r\n\r\n")
        // Each direction copies until EOF, then half-closes; the last one to finish closes both.
        let remaining = LockedValue(2)
        for (from, to) in [(client, upstream), (upstream, client)] {
            Thread {
                var buffer = [UInt8](repeating: 0, count: 16 * 1024)
                while true {
                    let count = read(from, &buffer, buffer.count)
                    guard count > 0, buffer.withUnsafeBytes({ Self.sendAll(to, $0.baseAddress!, count) }) else { break }
                }
                shutdown(to, Int32(SHUT_WR))
                if remaining.withLock({
                    $0 -= 1
                    return $0
                }) == 0 {
                    close(upstream)
                    self.finished(client)
                }
            }.start()
        }
    }

    private func answer(_ client: Int32, _ status: Int, close shouldClose: Bool) {
        let extra = status == 407 ? "Proxy-Authenticate: Basic realm=\"test\"\r\n" : ""
        write(client, "HTTP/1.1 \(status) Refused\r\n\(extra)Content-Length: 0\r\nConnection: close\r\n\r\n")
        if shouldClose { finished(client) }
    }

    private func finished(_ client: Int32) {
        close(client)
        active.withLock { $0 -= 1 }
    }

    private func write(_ client: Int32, _ text: String) {
        let bytes = Array(text.utf8)
        _ = bytes.withUnsafeBytes { Self.sendAll(client, $0.baseAddress!, $0.count) }
    }

    private static func sendAll(_ fd: Int32, _ base: UnsafeRawPointer, _ count: Int) -> Bool {
        var sent = 0
        while sent < count {
            let n = send(fd, base + sent, count - sent, Int32(MSG_NOSIGNAL))
            guard n > 0 else { return false }
            sent += n
        }
        return true
    }
}
