import XCTest

@testable import DispatchWebSocket

final class ClientOpeningHandshakeTests: XCTestCase {
    private let key = "dGhlIHNhbXBsZSBub25jZQ=="
    private let accept = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="

    private func response(_ fields: [(String, String)], status: Int = 101) -> HTTPResponseHead {
        var headers = HTTPHeaders()
        for (name, value) in fields { headers.add(name: name, value: value) }
        return HTTPResponseHead(version: .http1_1, status: status, reason: "", headers: headers)
    }

    private var good: [(String, String)] {
        [("Upgrade", "websocket"), ("Connection", "Upgrade"), ("Sec-WebSocket-Accept", accept)]
    }

    private func check(_ head: HTTPResponseHead, offered: [String] = []) -> ClientHandshakeError.Check? {
        if case .failure(let error) = ClientHandshake.validate(head, key: key, offeredProtocols: offered) {
            return error.check
        }
        return nil
    }

    private func request(
        host: String = "example.com", port: Int = 80, resource: String = "/chat", protocols: [String] = [],
        origin: String? = nil, extraHeaders: HTTPHeaders = [:]
    ) -> String {
        String(
            decoding: ClientHandshake.request(
                host: host, port: port, defaultPort: 80, resource: resource, key: key, protocols: protocols,
                origin: origin,
                extraHeaders: extraHeaders),
            as: UTF8.self)
    }

    // MARK: Request

    func testRequestIsTheExactUpgradeRequest() {
        XCTAssertEqual(
            request(protocols: ["chat", "superchat"], origin: "http://example.com", extraHeaders: ["X-T": "1"]),
            "GET /chat HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
                + "Sec-WebSocket-Protocol: chat, superchat\r\nOrigin: http://example.com\r\nX-T: 1\r\n\r\n")
    }

    func testRequestOmitsProtocolAndOriginWhenThereAreNone() {
        let text = request()
        XCTAssertFalse(text.contains("Sec-WebSocket-Protocol"))
        XCTAssertFalse(text.contains("Origin"))
        XCTAssertTrue(text.hasSuffix("Sec-WebSocket-Version: 13\r\n\r\n"))
    }

    func testHostOmitsTheDefaultPortAndBracketsIPv6Literals() {
        XCTAssertTrue(request(port: 80).contains("\r\nHost: example.com\r\n"))
        XCTAssertTrue(request(port: 8080).contains("\r\nHost: example.com:8080\r\n"))
        XCTAssertTrue(request(host: "::1", port: 9001).contains("\r\nHost: [::1]:9001\r\n"))
        XCTAssertTrue(request(host: "::1").contains("\r\nHost: [::1]\r\n"))
        XCTAssertTrue(request(host: "[fe80::1]", port: 81).contains("\r\nHost: [fe80::1]:81\r\n"))
    }

    func testResourceBytesThatCouldBreakTheRequestLineArePercentEncoded() {
        XCTAssertTrue(request(resource: "/a b\r\nX: y").hasPrefix("GET /a%20b%0D%0AX:%20y HTTP/1.1\r\n"))
        XCTAssertTrue(request(resource: "/caf\u{00E9}?q=1").hasPrefix("GET /caf%C3%A9?q=1 HTTP/1.1\r\n"))
        XCTAssertTrue(request(resource: "").hasPrefix("GET / HTTP/1.1\r\n"))
    }

    func testExtraHeadersThatCouldSplitTheRequestAreDropped() {
        let text = request(extraHeaders: ["X-Evil": "a\r\nX-Injected: 1", "X-Good": "2"])
        XCTAssertFalse(text.contains("X-Injected"))
        XCTAssertTrue(text.hasSuffix("X-Good: 2\r\n\r\n"))
    }

    // MARK: Response

    func testAValidResponseWithoutAProtocolNegotiatesNone() {
        XCTAssertEqual(try ClientHandshake.validate(response(good), key: key, offeredProtocols: ["chat"]).get(), nil)
    }

    func testTheChosenProtocolIsReturned() {
        let head = response(good + [("Sec-WebSocket-Protocol", "superchat")])
        XCTAssertEqual(
            try ClientHandshake.validate(head, key: key, offeredProtocols: ["chat", "superchat"]).get(), "superchat")
    }

    func testAnyStatusOtherThan101Fails() {
        for status in [200, 301, 400, 426, 500] {
            XCTAssertEqual(check(response(good, status: status)), .status(status))
        }
    }

    func testUpgradeAndConnectionAreCaseInsensitiveTokenLists() {
        let relaxed = response([
            ("upgrade", "WebSocket"), ("CONNECTION", "keep-alive, upgrade"), ("Sec-WebSocket-Accept", accept),
        ])
        XCTAssertNil(check(relaxed))
        XCTAssertEqual(check(response(good.filter { $0.0 != "Upgrade" })), .upgradeHeader)
        XCTAssertEqual(check(response(good.filter { $0.0 != "Upgrade" } + [("Upgrade", "h2c")])), .upgradeHeader)
        XCTAssertEqual(check(response(good.filter { $0.0 != "Connection" })), .connectionHeader)
        XCTAssertEqual(
            check(response(good.filter { $0.0 != "Connection" } + [("Connection", "close")])), .connectionHeader)
    }

    func testTheAcceptValueMustBePresentOnceAndMatchOurKey() {
        let withoutAccept = good.filter { $0.0 != "Sec-WebSocket-Accept" }
        XCTAssertEqual(check(response(withoutAccept)), .acceptKey)
        XCTAssertEqual(
            check(response(withoutAccept + [("Sec-WebSocket-Accept", "s3pPLMBiTxaQ9kYGzzhZRbK+xOo")])), .acceptKey)
        XCTAssertEqual(check(response(withoutAccept + [("Sec-WebSocket-Accept", accept.lowercased())])), .acceptKey)
        XCTAssertEqual(
            check(
                response(
                    withoutAccept + [
                        ("Sec-WebSocket-Accept", WebSocketAccept.value(forKey: "AAAAAAAAAAAAAAAAAAAAAA=="))
                    ])), .acceptKey)
        XCTAssertEqual(check(response(good + [("Sec-WebSocket-Accept", accept)])), .acceptKey)
    }

    func testAProtocolWeDidNotOfferFails() {
        XCTAssertEqual(check(response(good + [("Sec-WebSocket-Protocol", "chat")])), .unofferedProtocol("chat"))
        XCTAssertEqual(
            check(response(good + [("Sec-WebSocket-Protocol", "other")]), offered: ["chat"]),
            .unofferedProtocol("other"))
        XCTAssertEqual(
            check(response(good + [("Sec-WebSocket-Protocol", "Chat")]), offered: ["chat"]), .unofferedProtocol("Chat"))
        XCTAssertEqual(
            check(response(good + [("Sec-WebSocket-Protocol", "chat, superchat")]), offered: ["chat", "superchat"]),
            .unofferedProtocol("chat, superchat"))
        XCTAssertEqual(
            check(response(good + [("Sec-WebSocket-Protocol", "")]), offered: ["chat"]), .unofferedProtocol(""))
    }

    func testAnyExtensionFailsBecauseWeOfferNone() {
        XCTAssertEqual(
            check(response(good + [("Sec-WebSocket-Extensions", "permessage-deflate; server_no_context_takeover")])),
            .unofferedExtension("permessage-deflate"))
        XCTAssertEqual(check(response(good + [("Sec-WebSocket-Extensions", "bad;;")])), .unofferedExtension("bad;;"))
    }

    func testErrorDescriptionsNameTheFailedCheck() {
        XCTAssertEqual(ClientHandshakeError(check: .status(404)).description, "the server answered 404 instead of 101")
        XCTAssertTrue(ClientHandshakeError(check: .acceptKey).description.contains("Sec-WebSocket-Accept"))
        XCTAssertTrue(ClientHandshakeError(check: .unofferedProtocol("x")).description.contains("\"x\""))
        XCTAssertTrue(ClientHandshakeError(check: .unofferedExtension("y")).description.contains("\"y\""))
        XCTAssertTrue(ClientHandshakeError(check: .upgradeHeader).description.contains("Upgrade"))
        XCTAssertTrue(ClientHandshakeError(check: .connectionHeader).description.contains("Connection"))
    }

    // MARK: Both sides together

    /// The client's request goes through the server's parser and validation, the server's
    /// answer through the client's parser and validation, each split in two chunks.
    func testBothSidesAgreeOnTheWire() throws {
        let requestBytes = ClientHandshake.request(
            host: "::1", port: 9001, defaultPort: 80, resource: "/chat?x=1", key: key, protocols: ["v1", "v2"],
            origin: "http://example.com", extraHeaders: [:])
        var serverParser = HTTPHeadParser(maxHeadBytes: 4096)
        XCTAssertNil(try Array(requestBytes[..<50]).withUnsafeBytes { try serverParser.parseRequest($0) })
        let parsedRequest = try XCTUnwrap(
            try Array(requestBytes[50...]).withUnsafeBytes { try serverParser.parseRequest($0) })
        XCTAssertEqual(parsedRequest.consumed, requestBytes.count - 50)
        XCTAssertTrue(ServerHandshake.isUpgradeRequest(parsedRequest.head))
        XCTAssertEqual(parsedRequest.head.target, "/chat?x=1")
        let upgrade = try ServerHandshake.validate(parsedRequest.head).get()
        XCTAssertEqual(upgrade.host, "[::1]:9001")
        XCTAssertEqual(upgrade.requestedProtocols, ["v1", "v2"])
        XCTAssertEqual(upgrade.origin, "http://example.com")

        let responseBytes = ServerHandshake.acceptResponse(key: upgrade.key, protocol: "v2", extraHeaders: [:])
        var clientParser = HTTPHeadParser(maxHeadBytes: 4096)
        XCTAssertNil(try Array(responseBytes[..<30]).withUnsafeBytes { try clientParser.parseResponse($0) })
        let parsedResponse = try XCTUnwrap(
            try Array(responseBytes[30...] + [0x81, 0x00]).withUnsafeBytes {
                try clientParser.parseResponse($0)
            })
        XCTAssertEqual(parsedResponse.consumed, responseBytes.count - 30)
        XCTAssertEqual(
            try ClientHandshake.validate(parsedResponse.head, key: key, offeredProtocols: ["v1", "v2"]).get(), "v2")
    }

    func testAServerRejectionParsesAsANon101Response() throws {
        let rejection = HandshakeRejection(status: 426, reason: "speak 13", headers: ["Sec-WebSocket-Version": "13"])
        let bytes = ServerHandshake.rejectResponse(rejection)
        var parser = HTTPHeadParser(maxHeadBytes: 4096)
        let parsed = try XCTUnwrap(try bytes.withUnsafeBytes { try parser.parseResponse($0) })
        XCTAssertEqual(parsed.head.status, 426)
        XCTAssertEqual(Array(bytes[parsed.consumed...]), Array("speak 13\n".utf8))
        XCTAssertEqual(parsed.head.headers["Content-Length"], "9")
        XCTAssertEqual(check(parsed.head), .status(426))
    }
}
