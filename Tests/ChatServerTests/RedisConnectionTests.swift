import TestSupport
import XCTest

@testable import ChatRedis

/// The Redis client against a real `redis-server` (skipped where it is not installed).
final class RedisConnectionTests: XCTestCase {
    private func connection(_ redis: RedisServerProcess, role: RedisConnection.Role = .commands, version: Int = 2)
        throws -> (RedisConnection, Events)
    {
        var configuration = RedisConnection.Configuration(url: try RedisURL(parsing: redis.url))
        configuration.protocolVersion = version
        configuration.initialBackoff = .milliseconds(20)
        configuration.maxBackoff = .milliseconds(200)
        let connection = RedisConnection(configuration: configuration, role: role)
        let events = Events()
        connection.onStateChange = { connected, _ in events.append(connected ? "up" : "down") }
        connection.onMessage = { channel, payload in
            events.append("\(channel):\(String(decoding: payload, as: UTF8.self))")
        }
        addTeardownBlock { connection.close() }
        return (connection, events)
    }

    private func run(_ connection: RedisConnection, _ command: [String]) -> Result<RESPValue, RedisError> {
        let box = Events.Box()
        connection.send(command) { box.set($0) }
        return box.wait()
    }

    func testPipelinedRepliesComeBackInOrderInBothProtocolVersions() throws {
        let redis = try RedisServerProcess(self)
        for version in [2, 3] {
            let (connection, events) = try connection(redis, version: version)
            connection.start()
            events.wait { $0.contains("up") }
            let replies = Events()
            for i in 0..<500 {
                connection.send(["INCR", "counter\(version)"]) { replies.append("\(i)=\((try? $0.get()) ?? .null)") }
            }
            replies.wait { $0.count == 500 }
            XCTAssertEqual(replies.all, (0..<500).map { "\($0)=\(RESPValue.integer(Int64($0 + 1)))" })
            XCTAssertEqual(try run(connection, ["SET", "k", "a\r\nb"]).get(), .simpleString("OK"))
            XCTAssertEqual(try run(connection, ["GET", "k"]).get(), .bulkString(Array("a\r\nb".utf8)))
            XCTAssertEqual(try run(connection, ["GET", "missing"]).get(), .null)
            guard case .failure(.server(let message)) = run(connection, ["NOSUCHCOMMAND"]) else {
                return XCTFail("no error reply")
            }
            XCTAssertTrue(message.contains("unknown command"), message)
            if version == 3 {
                guard case .map = try run(connection, ["HGETALL", "nope"]).get() else {
                    return XCTFail("RESP3 map expected")
                }
            }
        }
    }

    func testSubscriberGetsMessagesAndResubscribesAfterRedisRestarts() throws {
        let redis = try RedisServerProcess(self)
        let (subscriber, events) = try connection(redis, role: .subscriber)
        subscriber.subscribe(["a", "b"])
        subscriber.start()
        events.wait { $0.contains("up") }
        XCTAssertEqual(try redis.command(["PUBLISH", "a", "one"]), ":1")
        XCTAssertEqual(try redis.command(["PUBLISH", "b", "two"]), ":1")
        events.wait { $0.contains("b:two") }

        redis.stop()
        events.wait { $0.contains("down") }
        try redis.start()
        events.wait { $0.filter { $0 == "up" }.count == 2 }
        // Both channels again, without anyone asking: PUBLISH counts one receiver each.
        XCTAssertEqual(try redis.command(["PUBLISH", "a", "three"]), ":1")
        XCTAssertEqual(try redis.command(["PUBLISH", "b", "four"]), ":1")
        events.wait { $0.contains("b:four") }
        XCTAssertEqual(events.all.filter { $0.contains(":") }, ["a:one", "b:two", "a:three", "b:four"])
        XCTAssertEqual(events.all.filter { $0 == "down" }.count, 1, "an outage is reported once")
    }

    func testCommandsFailFastWhileDownAndWorkAfterReconnect() throws {
        let redis = try RedisServerProcess(self)
        let (connection, events) = try connection(redis)
        connection.start()
        events.wait { $0.contains("up") }
        redis.stop()
        events.wait { $0.contains("down") }
        guard case .failure(.notConnected) = run(connection, ["PING"]) else {
            return XCTFail("a command while down must fail")
        }
        try redis.start()
        events.wait { $0.filter { $0 == "up" }.count == 2 }
        XCTAssertEqual(try run(connection, ["PING"]).get(), .simpleString("PONG"))
    }

    func testSelectsTheDatabaseOfTheURL() throws {
        let redis = try RedisServerProcess(self)
        var configuration = RedisConnection.Configuration(url: try RedisURL(parsing: redis.url + "/3"))
        configuration.initialBackoff = .milliseconds(20)
        let connection = RedisConnection(configuration: configuration)
        let events = Events()
        connection.onStateChange = { connected, _ in events.append(connected ? "up" : "down") }
        addTeardownBlock { connection.close() }
        connection.start()
        events.wait { $0.contains("up") }
        XCTAssertEqual(try run(connection, ["SET", "in3", "x"]).get(), .simpleString("OK"))
        XCTAssertEqual(try redis.command(["EXISTS", "in3"]), ":0")  // database 0
        XCTAssertEqual(try run(connection, ["CLIENT", "INFO"]).get().string?.contains("db=3"), true)
    }
}

/// Bytes that are not RESP, from a fake server: a typed error, the connection dropped and retried.
final class RedisConnectionGarbageTests: XCTestCase {
    func testGarbageFromTheServerIsAProtocolErrorAndTheConnectionIsRetried() throws {
        let (listener, port) = try Loopback.bind(listeningWithBacklog: 8)
        let accepted = Events()
        let serving = DispatchGroup()
        serving.enter()
        DispatchQueue.global().async {
            defer { serving.leave() }
            for _ in 0..<2 {  // two connections: the first attempt and the retry
                let client = accept(listener, nil, nil)
                guard client >= 0 else { return }
                accepted.append("connection")
                var buffer = [UInt8](repeating: 0, count: 4096)
                _ = buffer.withUnsafeMutableBytes { recv(client, $0.baseAddress, $0.count, 0) }  // the PING
                let garbage = Array("@not resp\r\n".utf8)
                _ = garbage.withUnsafeBytes { send(client, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                usleep(100_000)
                close(client)
            }
        }
        var configuration = RedisConnection.Configuration(url: RedisURL(host: "127.0.0.1", port: port))
        configuration.initialBackoff = .milliseconds(20)
        let connection = RedisConnection(configuration: configuration)
        let events = Events()
        connection.onStateChange = { connected, reason in events.append(connected ? "up" : "down: \(reason ?? "")") }
        connection.start()
        accepted.wait { $0.count == 2 }
        events.wait { !$0.isEmpty }
        connection.close()
        serving.wait()
        close(listener)
        XCTAssertEqual(events.all.count, 1, "reported once: \(events.all)")
        XCTAssertTrue(
            events.all.first?.hasPrefix("down: redis protocol error: unknown type byte 0x40") == true, "\(events.all)")
    }
}

/// A thread-safe list of strings that tests wait on (bounded waits: hang guards, not timings).
final class Events: @unchecked Sendable {
    private let lock = NSLock()
    private var items: [String] = []
    func append(_ item: String) { lock.withLock { items.append(item) } }
    var all: [String] { lock.withLock { items } }

    func wait(file: StaticString = #filePath, line: UInt = #line, _ predicate: ([String]) -> Bool) {
        let deadline = Date() + 20
        while !predicate(all) {
            if Date() > deadline { return XCTFail("timed out; events: \(all)", file: file, line: line) }
            usleep(10_000)
        }
    }

    /// One command's result.
    final class Box: @unchecked Sendable {
        private let semaphore = DispatchSemaphore(value: 0)
        private var result: Result<RESPValue, RedisError> = .failure(.notConnected("no reply"))
        func set(_ value: Result<RESPValue, RedisError>) {
            result = value
            semaphore.signal()
        }
        func wait() -> Result<RESPValue, RedisError> {
            _ = semaphore.wait(timeout: .now() + 20)
            return result
        }
    }
}
