import DispatchWebSocket
import Foundation
import TestSupport
import XCTest

@testable import ChatRoom

/// A chat participant driven by the library's own client; records every JSON message received.
final class ChatUser: @unchecked Sendable {
    private let lock = NSLock()
    private var received: [[String: Any]] = []
    private var connection: WebSocketConnection?
    private var storedCloseCode: WebSocketCloseCode?
    private var storedHTTPStatus: Int?
    private var storedFailed = false
    private var storedCloseReason: String?
    var closeCode: WebSocketCloseCode? { lock.withLock { storedCloseCode } }
    var httpStatus: Int? { lock.withLock { storedHTTPStatus } }
    var failed: Bool { lock.withLock { storedFailed } }
    var closeReason: String? { lock.withLock { storedCloseReason } }
    var negotiatedProtocol: String? { lock.withLock { connection?.protocol } }
    private let signal = DispatchSemaphore(value: 0)
    let client = WebSocketClient()

    init(port: Int, origin: String? = nil, protocols: [String] = ["chat"]) {
        client.onConnect = { [self] connection in
            connection.onMessage = { [self] message in
                guard case .text(let text) = message,
                    let object = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any]
                else { return }
                lock.withLock { received.append(object) }
                signal.signal()
            }
            connection.onClose = { [self] code, reason in
                lock.withLock { (storedCloseCode, storedCloseReason) = (code, reason) }
                signal.signal()
            }
            lock.withLock { self.connection = connection }
            signal.signal()
        }
        client.onHTTPResponse = { [self] status, _, _ in lock.withLock { storedHTTPStatus = status } }
        client.onConnectFailed = { [self] _ in
            lock.withLock { storedFailed = true }
            signal.signal()
        }
        client.connect(url: "ws://127.0.0.1:\(port)/chat", protocols: protocols, origin: origin)
    }

    /// Waits (bounded, a hang guard) until `predicate` holds.
    func wait(file: StaticString = #filePath, line: UInt = #line, _ predicate: (ChatUser) -> Bool) {
        let deadline = DispatchTime.now() + 10
        while !predicate(self) {
            if DispatchTime.now() >= deadline { return XCTFail("timed out waiting", file: file, line: line) }
            _ = signal.wait(timeout: .now() + .milliseconds(50))
        }
    }

    var messages: [[String: Any]] { lock.withLock { received } }
    func messages(ofType type: String) -> [[String: Any]] { messages.filter { $0["type"] as? String == type } }
    var isConnected: Bool { lock.withLock { connection != nil } }

    func send(_ object: [String: Any]) {
        let data = try! JSONSerialization.data(withJSONObject: object)
        lock.withLock { connection }?.sendUTF(String(decoding: data, as: UTF8.self))
    }

    func sendRaw(_ text: String) { lock.withLock { connection }?.sendUTF(text) }
    func sendBinary(_ bytes: [UInt8]) { lock.withLock { connection }?.sendBytes(bytes) }
    func close() { lock.withLock { connection }?.close() }

    func join(_ name: String) {
        wait { $0.isConnected }
        let errors = messages(ofType: "error").count
        send(["type": "join", "name": name])
        wait { !$0.messages(ofType: "welcome").isEmpty || $0.messages(ofType: "error").count > errors }
    }
}

final class ChatServerTests: XCTestCase {
    private func startChat(_ configure: (inout ChatServer.Configuration) -> Void = { _ in }) throws -> (ChatServer, Int)
    {
        var configuration = ChatServer.Configuration()
        configuration.port = 0
        configure(&configuration)
        let chat = ChatServer(configuration: configuration)
        let port = try chat.start().port
        addTeardownBlock {
            let done = DispatchSemaphore(value: 0)
            chat.shutDown { done.signal() }
            _ = done.wait(timeout: .now() + 15)
        }
        return (chat, port)
    }

    func testTwoUsersJoinAndBothReceiveAMessageWithTheRightSender() throws {
        let (_, port) = try startChat()
        let ada = ChatUser(port: port)
        let bob = ChatUser(port: port)
        ada.join("Ada")
        bob.join("Bob")
        XCTAssertEqual(bob.messages(ofType: "welcome").first?["users"] as? [String], ["Ada", "Bob"])
        ada.send(["type": "message", "text": "  hello, Bob  "])
        for user in [ada, bob] {
            user.wait { !$0.messages(ofType: "message").isEmpty }
            let message = user.messages(ofType: "message")[0]
            XCTAssertEqual(message["from"] as? String, "Ada")
            XCTAssertEqual(message["text"] as? String, "hello, Bob")
            XCTAssertNotNil(message["time"] as? Int)
        }
        ada.wait { $0.messages(ofType: "joined").contains { ($0["users"] as? [String]) == ["Ada", "Bob"] } }
    }

    func testLeavingIsAnnouncedWithTheNewListOfUsers() throws {
        let (_, port) = try startChat()
        let ada = ChatUser(port: port)
        let bob = ChatUser(port: port)
        ada.join("Ada")
        bob.join("Bob")
        bob.close()
        ada.wait { !$0.messages(ofType: "left").isEmpty }
        let left = ada.messages(ofType: "left")[0]
        XCTAssertEqual(left["name"] as? String, "Bob")
        XCTAssertEqual(left["users"] as? [String], ["Ada"])
        // The nickname is free again.
        let again = ChatUser(port: port)
        again.join("bob")
        XCTAssertEqual(again.messages(ofType: "welcome").first?["name"] as? String, "bob")
    }

    func testHistoryReachesALateJoiner() throws {
        let (_, port) = try startChat { $0.historySize = 3 }
        let ada = ChatUser(port: port)
        ada.join("Ada")
        for index in 1...5 { ada.send(["type": "message", "text": "m\(index)"]) }
        ada.wait { $0.messages(ofType: "message").count == 5 }
        let late = ChatUser(port: port)
        late.join("Late")
        let welcome = try XCTUnwrap(late.messages(ofType: "welcome").first)
        let history = try XCTUnwrap(welcome["history"] as? [[String: Any]])
        XCTAssertEqual(history.compactMap { $0["text"] as? String }, ["m3", "m4", "m5"])
        XCTAssertEqual(history.compactMap { $0["from"] as? String }, ["Ada", "Ada", "Ada"])
        XCTAssertEqual(welcome["users"] as? [String], ["Ada", "Late"])
    }

    func testBadAndDuplicateNicknamesGetErrorsAndDoNotCountAsAbuse() throws {
        let (_, port) = try startChat { $0.maxErrors = 2 }
        let ada = ChatUser(port: port)
        ada.join("Ada")
        let user = ChatUser(port: port)
        user.wait { $0.isConnected }
        for (index, name) in ["<script>", "", String(repeating: "x", count: 25), "ada", " ADA "].enumerated() {
            user.send(["type": "join", "name": name])
            user.wait { $0.messages(ofType: "error").count == index + 1 }
        }
        let errors = user.messages(ofType: "error").compactMap { $0["message"] as? String }
        guard errors.count == 5 else { return XCTFail("errors: \(errors)") }
        XCTAssertTrue(errors[0].contains("nicknames are 1–24"), errors[0])
        XCTAssertTrue(errors[3].contains("taken"), errors[3])
        XCTAssertTrue(errors[4].contains("taken"), errors[4])
        XCTAssertTrue(user.messages(ofType: "welcome").isEmpty)
        user.join("Bob-2_ Ü")
        XCTAssertEqual(user.messages(ofType: "welcome").first?["name"] as? String, "Bob-2_ Ü")
        XCTAssertNil(user.closeCode)
    }

    func testMalformedAndOutOfOrderMessagesGetErrors() throws {
        let (_, port) = try startChat { $0.maxErrors = 100 }
        let user = ChatUser(port: port)
        user.wait { $0.isConnected }
        let bad = [
            "this is not JSON", "{", "[]", #"{"type":42}"#, #"{"type":"dance"}"#, #"{"type":"message","text":"hi"}"#,
        ]
        for (index, text) in bad.enumerated() {
            user.sendRaw(text)
            user.wait { $0.messages(ofType: "error").count == index + 1 }
        }
        user.sendBinary([1, 2, 3])
        user.wait { $0.messages(ofType: "error").count == bad.count + 1 }
        let errors = user.messages(ofType: "error").compactMap { $0["message"] as? String }
        guard errors.count == 7 else { return XCTFail("errors: \(errors)") }
        XCTAssertTrue(errors[0].contains("malformed"), errors[0])
        XCTAssertTrue(errors[4].contains("unknown message type"), errors[4])
        XCTAssertTrue(errors[5].contains("join"), errors[5])
        XCTAssertTrue(errors[6].contains("malformed"), errors[6])
        XCTAssertNil(user.closeCode)
    }

    func testRepeatedAbuseClosesWith1008() throws {
        let (_, port) = try startChat { $0.maxErrors = 3 }
        let user = ChatUser(port: port)
        user.wait { $0.isConnected }
        for _ in 0..<3 { user.sendRaw("{") }
        user.wait { $0.closeCode != nil }
        XCTAssertEqual(user.closeCode, .policyViolation)
        XCTAssertEqual(user.messages(ofType: "error").count, 3)
    }

    func testRateLimitTrips() throws {
        // Every client message takes a token, the join too: 1 + 3 get through.
        let (_, port) = try startChat {
            $0.rateLimit = 4
            $0.ratePeriod = 3600
            $0.maxErrors = 100
        }
        let ada = ChatUser(port: port)
        ada.join("Ada")
        for index in 0..<5 { ada.send(["type": "message", "text": "spam \(index)"]) }
        ada.wait { $0.messages(ofType: "message").count + $0.messages(ofType: "error").count == 5 }
        XCTAssertEqual(ada.messages(ofType: "message").count, 3)
        XCTAssertEqual(ada.messages(ofType: "error").count, 2)
        XCTAssertTrue((ada.messages(ofType: "error").first?["message"] as? String ?? "").contains("slow down"))
    }

    func testTooLongMessagesAreRefused() throws {
        let (_, port) = try startChat { $0.maxMessageLength = 10 }
        let ada = ChatUser(port: port)
        ada.join("Ada")
        ada.send(["type": "message", "text": String(repeating: "é", count: 11)])
        ada.wait { !$0.messages(ofType: "error").isEmpty }
        XCTAssertTrue((ada.messages(ofType: "error")[0]["message"] as? String ?? "").contains("too long"))
        ada.send(["type": "message", "text": String(repeating: "é", count: 10)])
        ada.wait { !$0.messages(ofType: "message").isEmpty }
        XCTAssertEqual(ada.messages(ofType: "message").count, 1)
        // Beyond the connection's 16 KiB message limit the library itself closes with 1009.
        ada.sendRaw(String(repeating: "x", count: 17 * 1024))
        ada.wait { $0.closeCode != nil }
        XCTAssertEqual(ada.closeCode, .messageTooBig)
    }

    func testForeignOriginIsRejectedWith403AndTheOwnOriginIsAccepted() throws {
        let (_, port) = try startChat { $0.allowedOrigins = ["http://friend.example"] }
        let evil = ChatUser(port: port, origin: "http://evil.example")
        evil.wait { $0.failed }
        XCTAssertEqual(evil.httpStatus, 403)
        let otherPort = ChatUser(port: port, origin: "http://127.0.0.1:\(port + 1)")
        otherPort.wait { $0.failed }
        XCTAssertEqual(otherPort.httpStatus, 403)
        for origin in ["http://127.0.0.1:\(port)", "http://friend.example"] {
            let user = ChatUser(port: port, origin: origin)
            user.wait { $0.isConnected }
            XCTAssertFalse(user.failed)
        }
    }

    func testAnyOriginAllowsEveryPage() throws {
        let (_, port) = try startChat { $0.allowAnyOrigin = true }
        let user = ChatUser(port: port, origin: "http://evil.example")
        user.wait { $0.isConnected || $0.failed }
        XCTAssertTrue(user.isConnected)
    }

    func testTheChatSubprotocolIsRequired() throws {
        let (_, port) = try startChat()
        let user = ChatUser(port: port, protocols: ["superchat"])
        user.wait { $0.failed }
        XCTAssertEqual(user.httpStatus, 400)
        let chat = ChatUser(port: port, protocols: ["superchat", "chat"])
        chat.wait { $0.isConnected }
        XCTAssertEqual(chat.negotiatedProtocol, "chat")
    }

    func testShutDownClosesClientsWith1001() throws {
        var configuration = ChatServer.Configuration()
        configuration.port = 0
        let chat = ChatServer(configuration: configuration)
        let port = try chat.start().port
        let ada = ChatUser(port: port)
        let bob = ChatUser(port: port)
        ada.join("Ada")
        bob.wait { $0.isConnected }
        let done = DispatchSemaphore(value: 0)
        chat.shutDown { done.signal() }
        for user in [ada, bob] {
            user.wait { $0.closeCode != nil }
            XCTAssertEqual(user.closeCode, .goingAway)
            XCTAssertEqual(user.closeReason, "server shutting down")
        }
        XCTAssertEqual(done.wait(timeout: .now() + 10), .success)
    }

    func testThePageIsServedOnTheSamePort() throws {
        let (_, port) = try startChat()
        let page = try Loopback.httpGet(port: port, path: "/")
        XCTAssertTrue(page.hasPrefix("HTTP/1.1 200"), page)
        XCTAssertTrue(page.lowercased().contains("content-type: text/html; charset=utf-8"))
        XCTAssertTrue(page.contains("new WebSocket("))
        XCTAssertTrue(page.contains("<title>DispatchWebSocket Chat</title>"))
        XCTAssertFalse(page.contains("http://") || page.contains("https://"), "the page loads nothing from the network")
        XCTAssertTrue(try Loopback.httpGet(port: port, path: "/nope").hasPrefix("HTTP/1.1 404"))
    }

    func testNicknameRules() {
        for name in ["a", "Ada Lovelace", "bob_2-x", "Zoë", "山田", String(repeating: "x", count: 24)] {
            XCTAssertTrue(ChatProtocol.isValid(nickname: name), name)
        }
        for name in ["", String(repeating: "x", count: 25), "a.b", "<b>", "tab\there", "e\u{301}", "🙂"] {
            XCTAssertFalse(ChatProtocol.isValid(nickname: name), name)
        }
    }

    func testRateLimiterRefillsOverTime() {
        var limiter = RateLimiter(messages: 2, per: 10)
        let start = ContinuousClock.now
        XCTAssertTrue(limiter.allow(now: start))
        XCTAssertTrue(limiter.allow(now: start))
        XCTAssertFalse(limiter.allow(now: start + .seconds(1)))
        XCTAssertTrue(limiter.allow(now: start + .seconds(6)))
        XCTAssertFalse(limiter.allow(now: start + .seconds(6)))
    }
}
