import XCTest
import Foundation
import DispatchWebSocket
@testable import ChatRoom

/// A chat participant driven by the library's own client; records every JSON message received.
final class ChatUser: @unchecked Sendable {
    private let lock = NSLock()
    private var received: [[String: Any]] = []
    private var connection: WebSocketConnection?
    private var storedCloseCode: WebSocketCloseCode?
    private var storedHTTPStatus: Int?
    private var storedFailed = false
    var closeCode: WebSocketCloseCode? { lock.withLock { storedCloseCode } }
    var httpStatus: Int? { lock.withLock { storedHTTPStatus } }
    var failed: Bool { lock.withLock { storedFailed } }
    private let signal = DispatchSemaphore(value: 0)
    let client = WebSocketClient()

    init(port: Int, origin: String? = nil, protocols: [String] = ["chat"]) {
        client.onConnect = { [self] connection in
            connection.onMessage = { [self] message in
                guard case .text(let text) = message,
                      let object = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] else { return }
                lock.withLock { received.append(object) }
                signal.signal()
            }
            connection.onClose = { [self] code, _ in
                lock.withLock { storedCloseCode = code }
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

    func join(_ name: String) {
        wait { $0.isConnected }
        send(["type": "join", "name": name])
        wait { !$0.messages(ofType: "welcome").isEmpty || !$0.messages(ofType: "error").isEmpty }
    }
}

/// A minimal blocking HTTP/1.1 GET over a raw socket (Foundation on Linux has no http: loader
/// without FoundationNetworking).
func httpGet(port: Int, path: String) throws -> String {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = UInt16(port).bigEndian
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    var timeout = timeval(tv_sec: 10, tv_usec: 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    let connected = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard connected == 0 else { throw POSIXError(.ECONNREFUSED) }
    let request = Array("GET \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nConnection: close\r\n\r\n".utf8)
    _ = request.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, 0) }
    var response: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 65536)
    while true {
        let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        if n <= 0 { break }
        response += buffer[0..<n]
    }
    return String(decoding: response, as: UTF8.self)
}

final class ChatServerTests: XCTestCase {
    private func startChat(_ configure: (inout ChatServer.Configuration) -> Void = { _ in }) throws -> (ChatServer, Int) {
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
        let ada = ChatUser(port: port), bob = ChatUser(port: port)
        ada.join("Ada")
        bob.join("Bob")
        ada.send(["type": "message", "text": "hello, Bob"])
        for user in [ada, bob] {
            user.wait { !$0.messages(ofType: "message").isEmpty }
            let message = user.messages(ofType: "message")[0]
            XCTAssertEqual(message["from"] as? String, "Ada")
            XCTAssertEqual(message["text"] as? String, "hello, Bob")
            XCTAssertNotNil(message["time"] as? Int)
        }
        ada.wait { $0.messages(ofType: "joined").contains { ($0["users"] as? [String]) == ["Ada", "Bob"] } }
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
        XCTAssertEqual(welcome["users"] as? [String], ["Ada", "Late"])
    }

    func testBadAndDuplicateNicknamesAndMalformedMessagesGetErrors() throws {
        let (_, port) = try startChat()
        let ada = ChatUser(port: port)
        ada.join("Ada")
        let user = ChatUser(port: port)
        user.join("<script>")
        XCTAssertTrue((user.messages(ofType: "error").first?["message"] as? String ?? "").contains("nicknames"))
        user.send(["type": "join", "name": "ada"])
        user.wait { $0.messages(ofType: "error").count == 2 }
        XCTAssertTrue((user.messages(ofType: "error").last?["message"] as? String ?? "").contains("taken"))
        user.sendRaw("this is not JSON")
        user.wait { $0.messages(ofType: "error").count == 3 }
        XCTAssertTrue((user.messages(ofType: "error").last?["message"] as? String ?? "").contains("malformed"))
        XCTAssertTrue(user.messages(ofType: "welcome").isEmpty)
    }

    func testRepeatedAbuseClosesWith1008() throws {
        let (_, port) = try startChat { $0.maxErrors = 3 }
        let user = ChatUser(port: port)
        user.wait { $0.isConnected }
        for _ in 0..<3 { user.sendRaw("{") }
        user.wait { $0.closeCode != nil }
        XCTAssertEqual(user.closeCode, .policyViolation)
    }

    func testRateLimitTrips() throws {
        let (_, port) = try startChat { $0.rateLimit = 3; $0.ratePeriod = 60; $0.maxErrors = 100 }
        let ada = ChatUser(port: port)
        ada.join("Ada")
        for index in 0..<5 { ada.send(["type": "message", "text": "spam \(index)"]) }
        ada.wait { $0.messages(ofType: "message").count + $0.messages(ofType: "error").count == 5 }
        XCTAssertEqual(ada.messages(ofType: "message").count, 3)
        XCTAssertTrue((ada.messages(ofType: "error").first?["message"] as? String ?? "").contains("slow down"))
    }

    func testTooLongMessageIsRefused() throws {
        let (_, port) = try startChat { $0.maxMessageLength = 10 }
        let ada = ChatUser(port: port)
        ada.join("Ada")
        ada.send(["type": "message", "text": String(repeating: "x", count: 11)])
        ada.wait { !$0.messages(ofType: "error").isEmpty }
        XCTAssertTrue(ada.messages(ofType: "message").isEmpty)
    }

    func testForeignOriginIsRejectedWith403AndTheOwnOriginIsAccepted() throws {
        let (_, port) = try startChat()
        let evil = ChatUser(port: port, origin: "http://evil.example")
        evil.wait { $0.failed }
        XCTAssertEqual(evil.httpStatus, 403)
        let own = ChatUser(port: port, origin: "http://127.0.0.1:\(port)")
        own.wait { $0.isConnected }
    }

    func testTheChatSubprotocolIsRequired() throws {
        let (_, port) = try startChat()
        let user = ChatUser(port: port, protocols: [])
        user.wait { $0.failed }
        XCTAssertEqual(user.httpStatus, 400)
    }

    func testShutDownClosesClientsWith1001() throws {
        var configuration = ChatServer.Configuration()
        configuration.port = 0
        let chat = ChatServer(configuration: configuration)
        let port = try chat.start().port
        let ada = ChatUser(port: port)
        ada.join("Ada")
        let done = DispatchSemaphore(value: 0)
        chat.shutDown { done.signal() }
        ada.wait { $0.closeCode != nil }
        XCTAssertEqual(ada.closeCode, .goingAway)
        XCTAssertEqual(done.wait(timeout: .now() + 10), .success)
    }

    func testThePageIsServedOnTheSamePort() throws {
        let (_, port) = try startChat()
        let page = try httpGet(port: port, path: "/")
        XCTAssertTrue(page.hasPrefix("HTTP/1.1 200"))
        XCTAssertTrue(page.contains("new WebSocket("))
        XCTAssertTrue(page.contains("<title>DispatchWebSocket Chat</title>"))
    }
}
