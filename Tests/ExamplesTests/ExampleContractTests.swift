import Dispatch
import Foundation
import TestSupport
import XCTest

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Each example's command-line contract, run against the built executables (as
/// swift-argument-parser tests its examples), so an example cannot rot unnoticed:
/// EchoServer prints `listening on HOST:PORT`, EchoClient against it exits 0 only when every
/// echo matched, AutobahnClient answers `--help`, ChatServer serves its page. Each test skips,
/// naming the missing binary, when the example is not built.
final class ExampleContractTests: XCTestCase {
    /// Generous hang guard for one example process; none of these takes more than a second or two.
    static let processTimeout: TimeInterval = 60

    func testEchoServerPrintsListeningWithTheBoundPortAndExitsCleanlyOnSIGTERM() throws {
        let server = try ExampleProcess.start(try executable("EchoServer"), ["--port", "0"])
        defer { server.kill() }
        let line = try XCTUnwrap(server.readLine(timeout: Self.processTimeout), "EchoServer printed nothing")
        XCTAssertTrue(line.hasPrefix("listening on 127.0.0.1:"), line)
        let port = try XCTUnwrap(Int(line.split(separator: ":").last ?? ""), line)
        XCTAssertGreaterThan(port, 0, "port 0 asks for any free port; the line must name the bound one")
        server.signal(SIGTERM)
        XCTAssertEqual(server.waitForExit(timeout: Self.processTimeout), 0, "SIGTERM shuts the server down, status 0")
    }

    /// A supervisor may stop a server the moment it says it listens. Until the servers blocked
    /// SIGTERM and SIGINT from their first line, about one such signal in eight was lost (the
    /// Dispatch signal source was not registered yet) and the server ran on: repeated, so that a
    /// window like that cannot pass unnoticed.
    func testServersStopOnASignalSentTheMomentTheyListen() throws {
        let servers: [(name: String, arguments: [String], signal: Int32)] = [
            ("EchoServer", ["--port", "0"], SIGTERM), ("EchoServer", ["--port", "0"], SIGINT),
            ("EchoServer", ["--port", "0", "--async"], SIGTERM), ("ChatServer", ["--port", "0"], SIGTERM),
        ]
        for (name, arguments, signal) in servers {
            for attempt in 0..<10 {
                let server = try ExampleProcess.start(try executable(name), arguments)
                defer { server.kill() }
                XCTAssertNotNil(server.readLine(timeout: Self.processTimeout), "\(name) printed nothing")
                server.signal(signal)
                XCTAssertEqual(
                    server.waitForExit(timeout: 10), 0, "\(name) \(arguments) attempt \(attempt): signal \(signal)")
            }
        }
    }

    func testEchoClientAgainstEchoServerExitsZeroForTextAndBinary() throws {
        let (server, port) = try startEchoServer()
        defer { server.kill() }
        let client = try executable("EchoClient")
        for extra in [[], ["--binary"], ["--deflate"]] {
            let run = try ExampleProcess.run(
                client, ["ws://127.0.0.1:\(port)/", "--count", "50", "--size", "3000"] + extra,
                timeout: Self.processTimeout)
            XCTAssertEqual(run.status, 0, "EchoClient \(extra): \(run.output)")
        }
    }

    func testEchoClientExitsNonZeroWhenNoServerListens() throws {
        // A port that was just free: bind it, read its number, close it.
        let port = try Loopback.freePort()
        let run = try ExampleProcess.run(
            try executable("EchoClient"), ["ws://127.0.0.1:\(port)/", "--count", "1"], timeout: Self.processTimeout)
        XCTAssertNotEqual(run.status, 0, "EchoClient must fail when it cannot connect: \(run.output)")
    }

    func testAutobahnClientHelpPrintsUsageAndExitsZero() throws {
        let run = try ExampleProcess.run(try executable("AutobahnClient"), ["--help"], timeout: Self.processTimeout)
        XCTAssertEqual(run.status, 0, run.output)
        XCTAssertTrue(run.output.contains("usage: AutobahnClient"), run.output)
        XCTAssertTrue(run.output.contains("--url"), run.output)
    }

    func testAutobahnClientRejectsAnUnknownOptionWithStatusTwo() throws {
        let run = try ExampleProcess.run(
            try executable("AutobahnClient"), ["--no-such-option"], timeout: Self.processTimeout)
        XCTAssertEqual(run.status, 2, run.output)
        XCTAssertTrue(run.output.contains("usage: AutobahnClient"), run.output)
    }

    func testChatServerServesItsPageOnTheURLItPrints() throws {
        let server = try ExampleProcess.start(try executable("ChatServer"), ["--port", "0"])
        defer { server.kill() }
        let line = try XCTUnwrap(server.readLine(timeout: Self.processTimeout), "ChatServer printed nothing")
        let url = try XCTUnwrap(
            line.split(separator: " ").first { $0.hasPrefix("http://") }.flatMap { URL(string: String($0)) }, line)
        let port = try XCTUnwrap(url.port, line)
        XCTAssertGreaterThan(port, 0, line)
        let page = try Loopback.httpGet(port: port, path: "/", timeoutSeconds: 30)
        XCTAssertTrue(page.hasPrefix("HTTP/1.1 200"), String(page.prefix(200)))
        XCTAssertTrue(page.contains("<title>DispatchWebSocket Chat</title>"), String(page.prefix(400)))
        // Its Ctrl-C shutdown (status 0, pages reconnect) is docs/browser-check.py's to check.
    }

    // MARK: - Helpers

    /// The built example, next to the test bundle (`.build/<configuration>/`), or a skip naming it.
    private func executable(_ name: String) throws -> URL {
        let url = Self.productsDirectory.appendingPathComponent(name)
        guard FileManager.default.isExecutableFile(atPath: url.path) else {
            throw XCTSkip("\(name) is not built at \(url.path); run `swift build --product \(name)` first")
        }
        return url
    }

    /// Where SwiftPM puts the products: beside the `.xctest` bundle (the way swift-argument-parser's
    /// `AssertExecuteCommand` finds its example executables).
    static var productsDirectory: URL {
        #if os(macOS)
        for bundle in Bundle.allBundles where bundle.bundlePath.hasSuffix(".xctest") {
            return bundle.bundleURL.deletingLastPathComponent()
        }
        #endif
        return Bundle.main.bundleURL
    }

    private func startEchoServer() throws -> (ExampleProcess, Int) {
        let server = try ExampleProcess.start(try executable("EchoServer"), ["--port", "0"])
        guard let line = server.readLine(timeout: Self.processTimeout),
            let port = Int(line.split(separator: ":").last ?? "")
        else {
            server.kill()
            throw ExampleContractFailure(description: "EchoServer did not print its port: \(server.output)")
        }
        return (server, port)
    }
}

/// A child process with its standard output and error in one pipe, read on a queue of its own.
final class ExampleProcess: @unchecked Sendable {
    private let process = Process()
    private let lock = NSLock()
    private var buffer: [UInt8] = []
    private var ended = false
    private let arrived = DispatchSemaphore(value: 0)

    static func start(_ executable: URL, _ arguments: [String]) throws -> ExampleProcess {
        let child = ExampleProcess()
        let pipe = Pipe()
        child.process.executableURL = executable
        child.process.arguments = arguments
        child.process.standardOutput = pipe
        child.process.standardError = pipe
        child.process.standardInput = FileHandle.nullDevice
        try child.process.run()
        let reader = pipe.fileHandleForReading
        DispatchQueue.global().async {
            while true {
                let data = reader.availableData
                child.lock.lock()
                if data.isEmpty { child.ended = true } else { child.buffer += data }
                child.lock.unlock()
                child.arrived.signal()
                if data.isEmpty { return }
            }
        }
        return child
    }

    /// Runs to the end (killed after `timeout`); the exit status (-1 when killed) and all output.
    static func run(_ executable: URL, _ arguments: [String], timeout: TimeInterval) throws -> (
        status: Int32, output: String
    ) {
        let child = try start(executable, arguments)
        let status = child.waitForExit(timeout: timeout) ?? -1
        if status == -1 { child.kill() }
        return (status, child.output)
    }

    var output: String { lock.withLock { String(decoding: buffer, as: UTF8.self) } }

    /// The first line of output, or nil if none arrived within `timeout`.
    func readLine(timeout: TimeInterval) -> String? {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            let (line, done): (String?, Bool) = lock.withLock {
                if let newline = buffer.firstIndex(of: UInt8(ascii: "\n")) {
                    return (String(decoding: buffer[..<newline], as: UTF8.self), true)
                }
                return (nil, ended)
            }
            if let line { return line }
            if done || arrived.wait(timeout: .now() + deadline.timeIntervalSinceNow) == .timedOut { return nil }
        }
    }

    func signal(_ number: Int32) { deliverSignal(number, to: process.processIdentifier) }

    /// The exit status, or nil if the process still runs after `timeout`.
    func waitForExit(timeout: TimeInterval) -> Int32? {
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning {
            if Date() > deadline { return nil }
            usleep(20_000)
        }
        return process.terminationStatus
    }

    func kill() {
        if process.isRunning {
            deliverSignal(SIGKILL, to: process.processIdentifier)
            process.waitUntilExit()
        }
    }
}

/// `kill(2)`, out of reach inside `ExampleProcess` whose `kill()` shadows it.
private func deliverSignal(_ number: Int32, to pid: Int32) {
    _ = kill(pid, number)
}

/// An example that broke its contract in a way that stops the test.
struct ExampleContractFailure: Error, CustomStringConvertible {
    var description: String
}
