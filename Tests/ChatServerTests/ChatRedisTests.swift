import ChatRedis
import Foundation
import TestSupport
import XCTest

@testable import ChatRoom

/// Several ChatServer instances sharing one room on a real `redis-server` (skipped where it is
/// not installed). Users are the library's own WebSocket clients (``ChatUser``).
final class ChatRedisTests: XCTestCase {
    private func startInstance(_ redis: RedisServerProcess, _ name: String) throws -> (ChatServer, Int) {
        var configuration = ChatServer.Configuration()
        configuration.port = 0
        configuration.rateLimit = 1000
        configuration.redis = try RedisURL(parsing: redis.url)
        configuration.instanceID = name
        configuration.presenceHeartbeat = .milliseconds(200)
        configuration.presenceTTL = .seconds(1)
        let chat = ChatServer(configuration: configuration)
        let port = try chat.start().port
        addTeardownBlock {
            let done = DispatchSemaphore(value: 0)
            chat.shutDown { done.signal() }
            _ = done.wait(timeout: .now() + 15)
        }
        return (chat, port)
    }

    /// Waits until `count` instances have sent a heartbeat and subscribed (both seen in Redis).
    /// Instances A and B on `redis`, both registered there; returns their ports.
    private func startTwoInstances(_ redis: RedisServerProcess) throws -> (Int, Int) {
        let (_, portA) = try startInstance(redis, "A")
        let (_, portB) = try startInstance(redis, "B")
        waitForInstances(redis, 2)
        return (portA, portB)
    }

    private func waitForInstances(
        _ redis: RedisServerProcess, _ count: Int, file: StaticString = #filePath, line: UInt = #line
    ) {
        let deadline = Date() + 20
        while Date() < deadline {
            let registered = (try? redis.command(["ZCARD", "chat:instances"])) == ":\(count)"
            let subscribed =
                (try? redis.command(["PUBSUB", "NUMSUB", "chat:events"], wholeReply: true))?
                .hasSuffix(":\(count)\r\n") == true
            if registered && subscribed { return }
            usleep(20_000)
        }
        XCTFail("\(count) instances did not register on Redis", file: file, line: line)
    }

    /// The list of users in the last welcome, joined or left `user` got. Another instance's
    /// users may reach the list a little after one's own welcome (by their join event or the next
    /// heartbeat), which then announces them: tests wait on this rather than on the welcome alone.
    private func latestUsers(_ user: ChatUser) -> [String]? {
        user.messages.last { $0["users"] != nil }?["users"] as? [String]
    }

    private func texts(_ user: ChatUser) -> [String] {
        user.messages(ofType: "message").compactMap { $0["text"] as? String }
    }

    func testMessagesReachEveryInstanceOnceInTheSameOrder() throws {
        let redis = try RedisServerProcess(self)
        let (portA, portB) = try startTwoInstances(redis)
        let ada = ChatUser(port: portA)
        let ann = ChatUser(port: portA)
        let bob = ChatUser(port: portB)
        ada.join("Ada")
        ann.join("Ann")
        bob.join("Bob")
        // A burst from one sender, then replies alternating between the instances.
        var sent: [String] = []
        for i in 0..<30 {
            ada.send(["type": "message", "text": "burst \(i)"])
            sent.append("burst \(i)")
        }
        for user in [ada, ann, bob] { user.wait { self.texts($0).count == sent.count } }
        for i in 0..<6 {
            let (sender, text) = i % 2 == 0 ? (bob, "bob \(i)") : (ann, "ann \(i)")
            sender.send(["type": "message", "text": text])
            sent.append(text)
            for user in [ada, ann, bob] { user.wait { self.texts($0).count == sent.count } }
        }
        usleep(300_000)  // room for a duplicate to show up, were one on its way
        for user in [ada, ann, bob] {
            XCTAssertEqual(texts(user), sent, "every message exactly once, in the same order")
        }
        let senders = bob.messages(ofType: "message").compactMap { $0["from"] as? String }
        XCTAssertEqual(senders.prefix(31), ArraySlice(Array(repeating: "Ada", count: 30) + ["Bob"]))
    }

    func testPresenceAndHistoryAreSharedAndALateJoinerOnANewInstanceGetsTheHistory() throws {
        let redis = try RedisServerProcess(self)
        let (portA, portB) = try startTwoInstances(redis)
        let cat = ChatUser(port: portB)
        cat.join("Cat")
        let ada = ChatUser(port: portA)
        ada.join("Ada")
        ada.wait { self.latestUsers($0) == ["Ada", "Cat"] }
        cat.wait {
            $0.messages(ofType: "joined").contains {
                ($0["name"] as? String) == "Ada" && ($0["users"] as? [String]) == ["Ada", "Cat"]
            }
        }
        for i in 1...3 { ada.send(["type": "message", "text": "line \(i)"]) }
        cat.wait { self.texts($0).count == 3 }

        // A third instance, started after the messages: the history can only come from Redis.
        let (_, portC) = try startInstance(redis, "C")
        waitForInstances(redis, 3)
        let dan = ChatUser(port: portC)
        dan.join("Dan")
        let welcome = try XCTUnwrap(dan.messages(ofType: "welcome").first)
        dan.wait { self.latestUsers($0) == ["Ada", "Cat", "Dan"] }
        let history = (welcome["history"] as? [[String: Any]] ?? []).compactMap { $0["text"] as? String }
        XCTAssertEqual(history, ["line 1", "line 2", "line 3"])

        // Dan's join and Ada's leave come from two instances: let the first arrive before the second.
        cat.wait { $0.messages(ofType: "joined").contains { ($0["name"] as? String) == "Dan" } }
        ada.close()
        for user in [cat, dan] {
            user.wait {
                $0.messages(ofType: "left").contains {
                    ($0["name"] as? String) == "Ada" && ($0["users"] as? [String]) == ["Cat", "Dan"]
                }
            }
        }
    }

    /// An instance that stops its heartbeat (a crash) takes its users with it within the TTL.
    func testACrashedInstancesUsersDisappearWhenItsPresenceExpires() throws {
        let redis = try RedisServerProcess(self)
        let (_, portA) = try startInstance(redis, "A")
        waitForInstances(redis, 1)
        let ada = ChatUser(port: portA)
        ada.join("Ada")
        // What a crashed instance leaves behind: its presence set and registration, never refreshed.
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        try redis.command(["SADD", "chat:presence:ghost", "Gus"])
        try redis.command(["PEXPIRE", "chat:presence:ghost", "1000"])
        try redis.command(["ZADD", "chat:instances", String(now), "ghost"])
        ada.wait {
            $0.messages(ofType: "joined").contains {
                ($0["name"] as? String) == "Gus" && ($0["users"] as? [String]) == ["Ada", "Gus"]
            }
        }
        ada.wait {
            $0.messages(ofType: "left").contains {
                ($0["name"] as? String) == "Gus" && ($0["users"] as? [String]) == ["Ada"]
            }
        }
        XCTAssertEqual(
            try redis.command(["ZSCORE", "chat:instances", "ghost"]), "$-1", "the stale instance is dropped")
    }

    func testANicknameTakenOnOneInstanceIsRefusedOnAnother() throws {
        let redis = try RedisServerProcess(self)
        let (portA, portB) = try startTwoInstances(redis)
        let ada = ChatUser(port: portA)
        ada.join("Ada")
        XCTAssertEqual(try redis.command(["GET", "chat:nick:ada"], wholeReply: true), "$1\r\nA\r\n")
        let impostor = ChatUser(port: portB)
        impostor.join("ADA")
        XCTAssertEqual(impostor.messages(ofType: "error").last?["message"] as? String, "the nickname \"ADA\" is taken")
        XCTAssertTrue(impostor.messages(ofType: "welcome").isEmpty)
        ada.close()
        ada.wait { $0.closeCode != nil }
        // Released on leaving: now B may give it out (once it has heard that Ada left).
        let deadline = Date() + 10
        while (try? redis.command(["EXISTS", "chat:nick:ada"])) != ":0" && Date() < deadline { usleep(20_000) }
        XCTAssertEqual(try redis.command(["EXISTS", "chat:nick:ada"]), ":0")
        for _ in 0..<50 where impostor.messages(ofType: "welcome").isEmpty {
            impostor.join("ADA")
            usleep(50_000)
        }
        XCTAssertEqual(impostor.messages(ofType: "welcome").first?["name"] as? String, "ADA")
    }

    /// Redis killed: each instance keeps chatting locally; restarted: the instances reconnect,
    /// resubscribe, and chat across instances again — nobody ever sees a message twice.
    func testRedisRestartKeepsLocalChatAndResumesCrossInstanceChatWithoutDuplicates() throws {
        let redis = try RedisServerProcess(self)
        let (portA, portB) = try startTwoInstances(redis)
        let ada = ChatUser(port: portA)
        let ann = ChatUser(port: portA)
        let bob = ChatUser(port: portB)
        ada.join("Ada")
        ann.join("Ann")
        bob.join("Bob")
        ada.send(["type": "message", "text": "before"])
        bob.wait { self.texts($0) == ["before"] }

        redis.stop()
        ada.send(["type": "message", "text": "during"])
        ann.wait { self.texts($0) == ["before", "during"] }  // local chat goes on
        bob.send(["type": "message", "text": "bob alone"])
        bob.wait { self.texts($0) == ["before", "bob alone"] }

        try redis.start()  // empty: a restarted Redis without persistence
        waitForInstances(redis, 2)
        var sent = ["before", "during"]
        var attempt = 0
        repeat {  // the first messages may leave before B has resubscribed: pub/sub keeps nothing
            attempt += 1
            ada.send(["type": "message", "text": "after \(attempt)"])
            sent.append("after \(attempt)")
            ann.wait { self.texts($0) == sent }
            let deadline = Date() + 1
            while !texts(bob).contains("after \(attempt)") && Date() < deadline { usleep(10_000) }
        } while !texts(bob).contains("after \(attempt)") && attempt < 20
        bob.send(["type": "message", "text": "bob back"])
        sent.append("bob back")
        for user in [ada, ann] { user.wait { self.texts($0) == sent } }
        bob.wait { self.texts($0).last == "bob back" }
        usleep(300_000)
        for user in [ada, ann, bob] {
            let received = texts(user)
            XCTAssertEqual(Set(received).count, received.count, "no duplicates: \(received)")
        }
        XCTAssertEqual(texts(ada), sent)
        XCTAssertFalse(texts(bob).contains("during"), "what was said while Redis was down stays local")
        XCTAssertFalse(texts(ada).contains("bob alone"))
        // Presence is re-registered by the heartbeat after the restart.
        let deadline = Date() + 10
        while (try? redis.command(["SISMEMBER", "chat:presence:B", "Bob"])) != ":1" && Date() < deadline {
            usleep(20_000)
        }
        XCTAssertEqual(try redis.command(["SISMEMBER", "chat:presence:B", "Bob"]), ":1")
        XCTAssertEqual(try redis.command(["GET", "chat:nick:bob"], wholeReply: true), "$1\r\nB\r\n")
    }
}

/// A member that never reads is the library's problem (its queue, then 1008), not Redis's: the
/// other members on its instance get every message and the instance's subscriber is never cut.
final class ChatRedisSlowMemberTests: XCTestCase {
    func testAMemberThatStopsReadingDoesNotHoldUpTheSubscriber() throws {
        let redis = try RedisServerProcess(self)
        var instances: [Int] = []
        for name in ["A", "B"] {
            var configuration = ChatServer.Configuration()
            configuration.port = 0
            configuration.rateLimit = 100_000
            configuration.redis = try RedisURL(parsing: redis.url)
            configuration.instanceID = name
            let chat = ChatServer(configuration: configuration)
            instances.append(try chat.start().port)
            addTeardownBlock {
                let done = DispatchSemaphore(value: 0)
                chat.shutDown { done.signal() }
                _ = done.wait(timeout: .now() + 15)
            }
        }
        let deadline = Date() + 20
        while (try? redis.command(["PUBSUB", "NUMSUB", "chat:events"], wholeReply: true))?.hasSuffix(":2\r\n") != true
            && Date() < deadline
        { usleep(20_000) }
        let stalled = try StalledChatMember(port: instances[1], name: "Sid")
        let ada = ChatUser(port: instances[0])
        let bob = ChatUser(port: instances[1])
        ada.join("Ada")
        bob.join("Bob")
        let line = String(repeating: "x", count: 990)
        for i in 0..<1500 { ada.send(["type": "message", "text": "\(i) \(line)"]) }  // 1.5 MB, past Sid's 1 MiB queue
        bob.wait { $0.messages(ofType: "message").count == 1500 }
        let numbers = bob.messages(ofType: "message").compactMap {
            ($0["text"] as? String)?.split(separator: " ").first
        }
        XCTAssertEqual(numbers.map(String.init), (0..<1500).map(String.init))
        // Both instances' subscribers are still the same connections.
        let clients = try redis.command(["CLIENT", "LIST", "TYPE", "pubsub"], wholeReply: true)
        XCTAssertEqual(clients.components(separatedBy: "cmd=subscribe").count - 1, 2, clients)
        withExtendedLifetime(stalled) {}
    }
}

/// A chat member on a raw socket with a tiny receive buffer that joins and then never reads.
final class StalledChatMember {
    private let fd: Int32

    init(port: Int, name: String) throws {
        fd = try Loopback.connect(port: port, timeoutSeconds: 10, receiveBuffer: 4096)
        try write(
            Array(
                ("GET /chat HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                    + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: chat\r\n\r\n")
                    .utf8))
        var head: [UInt8] = []
        var byte: UInt8 = 0
        while !head.suffix(4).elementsEqual([13, 10, 13, 10]) {
            guard recv(fd, &byte, 1, 0) == 1 else {
                close(fd)
                throw POSIXError(.ECONNRESET)
            }
            head.append(byte)
        }
        guard String(decoding: head, as: UTF8.self).hasPrefix("HTTP/1.1 101") else {
            close(fd)
            throw POSIXError(.EPROTO)
        }
        // One masked text frame (mask 0: the payload goes as is) with the join.
        let join = Array(#"{"type":"join","name":"\#(name)"}"#.utf8)
        try write([0x81, 0x80 | UInt8(join.count), 0, 0, 0, 0] + join)
    }

    private func write(_ bytes: [UInt8]) throws {
        let sent = bytes.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, 0) }
        guard sent == bytes.count else { throw POSIXError(.EPIPE) }
    }

    deinit { close(fd) }
}
