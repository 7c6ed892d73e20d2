import XCTest

@testable import DispatchWebSocket

/// WebSocketRouter on a loopback server: matching by exact path, prefix, predicate and
/// subprotocol, 404 and the fallback, unmounting and chained routers.
final class RouterTests: XCTestCase {
    /// What a raw client got for one upgrade: the status line, the agreed protocol and the
    /// first message, which names the mount that took the request.
    private struct Outcome: Equatable {
        var status: String
        var `protocol`: String?
        var greeting: String?
    }

    private func request(_ port: Int, _ path: String, protocols: [String] = []) throws -> Outcome {
        let client = try RawClient(port: port)
        var text = "GET \(path) HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        text += "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
        if !protocols.isEmpty { text += "Sec-WebSocket-Protocol: \(protocols.joined(separator: ", "))\r\n" }
        try client.write(text + "\r\n")
        let head = try client.readHTTPHead()
        let status = head.split(separator: "\r\n").first.map(String.init) ?? ""
        let agreed = head.split(separator: "\r\n")
            .first { $0.lowercased().hasPrefix("sec-websocket-protocol:") }
            .map { String($0.split(separator: ":")[1].trimmingCharacters()) }
        guard status.hasPrefix("HTTP/1.1 101") else { return Outcome(status: status, protocol: agreed, greeting: nil) }
        let greeting = try client.readFrame().map { String(decoding: $0.payload, as: UTF8.self) }
        return Outcome(status: status, protocol: agreed, greeting: greeting)
    }

    /// A handler that accepts with the matched protocol and greets with `name`.
    private func greeter(_ name: String) -> @Sendable (WebSocketRoutedRequest) -> Void {
        { routed in
            let connection = try? routed.accept()
            connection?.sendUTF(name)
        }
    }

    private let accepted = "HTTP/1.1 101 Switching Protocols"
    private let notFound = "HTTP/1.1 404 Not Found"

    func testMatchesByPathPrefixPredicateAndProtocol() throws {
        let router = WebSocketRouter()
        try router.mount(path: "/chat", protocol: "chat", handler: greeter("chat"))
        try router.mount(pathPrefix: "/rooms/", protocol: "*", handler: greeter("rooms"))
        try router.mount(path: "/plain", handler: greeter("plain"))
        try router.mount(
            where: { $0.queryItems.contains { $0.name == "v" && $0.value == "2" } }, protocol: "*",
            handler: greeter("v2"))
        // For one path, the client's order of preference wins over the order of mounting.
        try router.mount(path: "/multi", protocol: "b", handler: greeter("multi-b"))
        try router.mount(path: "/multi", protocol: "a", handler: greeter("multi-a"))
        let (_, port) = try startServer(self) { router.attach(to: $0) }

        XCTAssertEqual(
            try request(port, "/chat", protocols: ["chat"]),
            Outcome(status: accepted, protocol: "chat", greeting: "chat"))
        XCTAssertEqual(
            try request(port, "/chat", protocols: ["other", "chat"]),
            Outcome(status: accepted, protocol: "chat", greeting: "chat"))
        XCTAssertEqual(
            try request(port, "/chat", protocols: ["CHAT"]).status, notFound, "protocols match case-sensitively")
        XCTAssertEqual(
            try request(port, "/chat").status, notFound, "a client offering no protocol needs a nil or * mount")
        XCTAssertEqual(try request(port, "/chat/x", protocols: ["chat"]).status, notFound, "exact paths match exactly")

        XCTAssertEqual(
            try request(port, "/rooms", protocols: ["x", "y"]),
            Outcome(status: accepted, protocol: "x", greeting: "rooms"))
        XCTAssertEqual(
            try request(port, "/rooms/7/members?q=1"), Outcome(status: accepted, protocol: nil, greeting: "rooms"))
        XCTAssertEqual(try request(port, "/roomservice").status, notFound, "prefixes match whole segments")

        XCTAssertEqual(try request(port, "/plain"), Outcome(status: accepted, protocol: nil, greeting: "plain"))
        XCTAssertEqual(
            try request(port, "/plain", protocols: ["chat"]).status, notFound,
            "a nil-protocol mount does not take a client that offered protocols")

        XCTAssertEqual(
            try request(port, "/anything?v=2", protocols: ["p"]),
            Outcome(status: accepted, protocol: "p", greeting: "v2"))
        XCTAssertEqual(try request(port, "/anything?v=3").status, notFound)

        XCTAssertEqual(
            try request(port, "/multi", protocols: ["a", "b"]),
            Outcome(status: accepted, protocol: "a", greeting: "multi-a"))
        XCTAssertEqual(
            try request(port, "/multi", protocols: ["c", "b"]),
            Outcome(status: accepted, protocol: "b", greeting: "multi-b"))
    }

    func testUnmatchedRequestsGoToTheFallbackOr404() throws {
        let router = WebSocketRouter()
        try router.mount(path: "/routed", protocol: "*", handler: greeter("routed"))
        let (_, port) = try startServer(self) { server in
            server.onRequest = { request in
                let connection = try? request.accept()
                connection?.sendUTF("fallback:\(request.path)")
            }
            router.attach(to: server)
        }
        XCTAssertEqual(try request(port, "/routed").greeting, "routed")
        XCTAssertEqual(try request(port, "/elsewhere").greeting, "fallback:/elsewhere")

        let bare = WebSocketRouter()
        try bare.mount(path: "/only", handler: greeter("only"))
        let (_, barePort) = try startServer(self) { bare.attach(to: $0) }
        let client = try RawClient(port: barePort)
        try client.write(
            "GET /missing HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
        let (head, body) = try client.readHTTPResponse()
        XCTAssertTrue(head.hasPrefix(notFound), head)
        XCTAssertTrue(body.contains("/missing"), body)
    }

    func testUnmountAndChainedRouters() throws {
        let first = WebSocketRouter()
        let second = WebSocketRouter()
        let a = try first.mount(path: "/a", protocol: "*", handler: greeter("first-a"))
        try first.mount(path: "/b", protocol: "*", handler: greeter("first-b"))
        try second.mount(path: "/b", protocol: "*", handler: greeter("second-b"))
        try second.mount(path: "/c", protocol: "x", handler: greeter("second-c"))
        try second.mount(path: "/c", protocol: "y", handler: greeter("second-c-y"))
        let (_, port) = try startServer(self) { server in
            first.attach(to: server)
            second.attach(to: server)  // asked first; falls back to `first`
        }
        XCTAssertEqual(try request(port, "/a").greeting, "first-a")
        XCTAssertEqual(try request(port, "/b").greeting, "second-b")
        XCTAssertEqual(try request(port, "/c", protocols: ["x"]).greeting, "second-c")

        XCTAssertTrue(first.unmount(a))
        XCTAssertFalse(first.unmount(a), "already unmounted")
        XCTAssertEqual(try request(port, "/a").status, notFound)

        XCTAssertEqual(second.unmount(path: "/b", protocol: "*"), 1)
        XCTAssertEqual(try request(port, "/b").greeting, "first-b", "falls through to the first router now")
        XCTAssertEqual(second.unmount(path: "/c", protocol: "x"), 1, "only the mount with that protocol")
        XCTAssertEqual(try request(port, "/c", protocols: ["x", "y"]).greeting, "second-c-y")
        second.unmountAll()
        XCTAssertEqual(try request(port, "/c", protocols: ["y"]).status, notFound)
    }

    func testInvalidMountsThrow() {
        let router = WebSocketRouter()
        XCTAssertThrowsError(try router.mount(path: "chat", handler: { _ in })) {
            XCTAssertEqual(($0 as? WebSocketError)?.code, .invalidArgument)
        }
        XCTAssertThrowsError(try router.mount(pathPrefix: "", handler: { _ in })) {
            XCTAssertEqual(($0 as? WebSocketError)?.code, .invalidArgument)
        }
        for bad in ["", "two words", "a,b", "x\u{7F}"] {
            XCTAssertThrowsError(try router.mount(path: "/p", protocol: bad, handler: { _ in }), bad) {
                XCTAssertEqual(($0 as? WebSocketError)?.code, .invalidArgument)
            }
        }
    }
}
