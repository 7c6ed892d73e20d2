import XCTest

@testable import DispatchWebSocket

/// A thread-safe list that event handlers (on loop queues) append to and tests wait on.
final class EventLog<Element: Sendable>: Sendable {
    private let items = LockedValue<[Element]>([])
    private let condition = Condition()

    func append(_ item: Element) {
        items.withLock { $0.append(item) }
        condition.signal()
    }

    var all: [Element] { items.withLock { $0 } }

    /// Waits (up to `seconds`, a hang guard rather than a timing assertion) until `predicate` holds.
    @discardableResult
    func wait(
        seconds: Double = 10, file: StaticString = #filePath, line: UInt = #line,
        until predicate: ([Element]) -> Bool
    ) -> [Element] {
        let deadline = DispatchTime.now() + seconds
        while true {
            let snapshot = all
            if predicate(snapshot) { return snapshot }
            if DispatchTime.now() >= deadline {
                XCTFail("condition not met; events: \(snapshot)", file: file, line: line)
                return snapshot
            }
            condition.wait(milliseconds: 20)
        }
    }

    @discardableResult
    func waitForCount(_ count: Int, file: StaticString = #filePath, line: UInt = #line) -> [Element] {
        wait(file: file, line: line) { $0.count >= count }
    }
}

/// A tiny condition variable so waiting does not spin.
final class Condition: @unchecked Sendable {
    private let semaphore = DispatchSemaphore(value: 0)
    func signal() { semaphore.signal() }
    func wait(milliseconds: Int) { _ = semaphore.wait(timeout: .now() + .milliseconds(milliseconds)) }
}

/// Starts a server on 127.0.0.1, port 0, and shuts it down at the end of the test.
func startServer(
    _ test: XCTestCase, configure: (inout WebSocketServer.Configuration) -> Void = { _ in },
    setUp: (WebSocketServer) -> Void
) throws -> (WebSocketServer, Int) {
    var configuration = WebSocketServer.Configuration()
    configuration.connection.keepalive = false
    configure(&configuration)
    let server = WebSocketServer(configuration: configuration)
    setUp(server)
    let address = try server.listen(host: "127.0.0.1", port: 0)
    test.addTeardownBlock {
        let done = DispatchSemaphore(value: 0)
        server.shutDown { done.signal() }
        _ = done.wait(timeout: .now() + 15)
    }
    return (server, address.port)
}

/// A server that echoes every message and records connection events.
struct EchoFixture {
    let server: WebSocketServer
    let port: Int
    let closes: EventLog<(WebSocketCloseCode, String)>
    let errors: EventLog<WebSocketError.Code>
}

func startEchoServer(
    _ test: XCTestCase, configure: (inout WebSocketServer.Configuration) -> Void = { _ in }
) throws -> EchoFixture {
    let closes = EventLog<(WebSocketCloseCode, String)>()
    let errors = EventLog<WebSocketError.Code>()
    let (server, port) = try startServer(test, configure: configure) { server in
        server.onRequest = { request in
            guard let connection = try? request.accept(protocol: request.requestedProtocols.first) else { return }
            connection.onMessage = { connection.send($0) }
            connection.onFrame = { frame in connection.sendFrame(frame) }
            connection.onClose = { closes.append(($0, $1)) }
            connection.onError = { errors.append($0.code) }
        }
    }
    return EchoFixture(server: server, port: port, closes: closes, errors: errors)
}

/// SplitMix64: a small deterministic generator, so generated test inputs are the same on every run.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// The process's open descriptors (entries of /proc/self/fd, counting the directory's own).
func openDescriptors() -> Int {
    guard let dir = opendir("/proc/self/fd") else { return -1 }
    defer { closedir(dir) }
    var count = 0
    while readdir(dir) != nil { count += 1 }
    return count
}

/// Waits (bounded) until `value()` is back to `baseline`, then asserts it is.
func waitUntil(_ value: () -> Int, equals baseline: Int, file: StaticString = #filePath, line: UInt = #line) {
    let deadline = DispatchTime.now() + 10
    while value() != baseline && DispatchTime.now() < deadline { usleep(10_000) }
    XCTAssertEqual(value(), baseline, file: file, line: line)
}
