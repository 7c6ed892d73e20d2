import Foundation
import TestSupport
import XCTest

/// A throw-away `redis-server` on a free loopback port (nothing saved to disk), started by a
/// test and stopped at its end. Tests that need it skip, saying why, where it is not installed
/// (Debian: `apt-get install redis-server`; `.ci/run` installs it).
final class RedisServerProcess: @unchecked Sendable {
    let port: Int
    private let executable: String
    private var process: Process?

    static func executablePath() -> String? {
        let candidates = ["/usr/bin/redis-server", "/usr/local/bin/redis-server", "/opt/homebrew/bin/redis-server"]
        let fromPath = (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":").map {
            "\($0)/redis-server"
        }
        return (candidates + fromPath).first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    /// Starts one, or throws `XCTSkip` when `redis-server` is absent.
    init(_ test: XCTestCase) throws {
        guard let executable = Self.executablePath() else {
            throw XCTSkip("redis-server is not installed (apt-get install redis-server): skipping the Redis tests")
        }
        self.executable = executable
        port = try Loopback.freePort()
        try start()
        test.addTeardownBlock { [self] in stop() }
    }

    var url: String { "redis://127.0.0.1:\(port)" }

    /// Starts the server (again, after ``stop()``: same port, empty data) and waits until it answers.
    func start() throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = [
            "--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
            "--protected-mode", "no", "--loglevel", "warning",
        ]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        self.process = process
        let deadline = Date() + 10
        while Date() < deadline {
            if (try? command(["PING"])) == "+PONG" { return }
            usleep(20_000)
        }
        stop()
        throw XCTSkip("redis-server did not start on port \(port)")
    }

    /// Kills the server (SIGKILL: no goodbye to its clients) and waits for it to exit.
    func stop() {
        guard let process else { return }
        self.process = nil
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    /// One command over a fresh blocking socket, independent of the client under test; returns
    /// the reply's raw first line (`+PONG`, `:3`, `$5`…) or the whole reply for `wholeReply`.
    @discardableResult
    func command(_ arguments: [String], wholeReply: Bool = false) throws -> String {
        let fd = try Loopback.connect(port: port, timeoutSeconds: 5)
        defer { close(fd) }
        var request = "*\(arguments.count)\r\n"
        for argument in arguments { request += "$\(argument.utf8.count)\r\n\(argument)\r\n" }
        let bytes = Array(request.utf8)
        _ = bytes.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, 0) }
        var reply: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        // A blocking read until the first line is complete (and for whole replies, until idle).
        if wholeReply { Loopback.setTimeout(fd, seconds: 0, microseconds: 200_000) }
        while true {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n <= 0 { break }
            reply += buffer[0..<n]
            if !wholeReply, let end = reply.firstIndex(of: 13) { return String(decoding: reply[..<end], as: UTF8.self) }
        }
        return String(decoding: reply, as: UTF8.self)
    }
}
