import XCTest

@testable import DispatchWebSocket

final class ServerOpeningHandshakeTests: XCTestCase {
    private let key = "dGhlIHNhbXBsZSBub25jZQ=="

    /// The client handshake of RFC 6455 §1.2, as pairs so tests can vary one field.
    private var valid: [(String, String)] {
        [
            ("Host", "server.example.com"), ("Upgrade", "websocket"), ("Connection", "Upgrade"),
            ("Sec-WebSocket-Key", key),
            ("Origin", "http://example.com"), ("Sec-WebSocket-Protocol", "chat, superchat"),
            ("Sec-WebSocket-Version", "13"),
        ]
    }

    private func request(
        _ fields: [(String, String)], method: String = "GET", target: String = "/chat", version: HTTPVersion = .http1_1
    ) -> HTTPRequestHead {
        var headers = HTTPHeaders()
        for (name, value) in fields { headers.add(name: name, value: value) }
        return HTTPRequestHead(method: method, target: target, version: version, headers: headers)
    }

    /// `valid` with `name` replaced by `value`, or removed when `value` is nil.
    private func replacing(_ name: String, with value: String?) -> [(String, String)] {
        var fields = valid.filter { $0.0 != name }
        if let value { fields.append((name, value)) }
        return fields
    }

    private func rejection(_ head: HTTPRequestHead) -> HandshakeRejection? {
        if case .failure(let rejection) = ServerHandshake.validate(head) { return rejection }
        return nil
    }

    private func upgrade(_ head: HTTPRequestHead, file: StaticString = #filePath, line: UInt = #line)
        -> ValidatedUpgrade?
    {
        switch ServerHandshake.validate(head) {
        case .success(let upgrade): return upgrade
        case .failure(let rejection):
            XCTFail("rejected: \(rejection.status) \(rejection.reason)", file: file, line: line)
            return nil
        }
    }

    private func text(_ bytes: [UInt8]) -> String {
        String(decoding: bytes, as: UTF8.self)
    }

    // MARK: Accept value

    func testAcceptValueMatchesTheRFCExample() {
        // RFC 6455 §1.3 (the brief's "s3pPLMBiTxaK9kO10zo2HYxBhRo=" is not what the RFC or `sha1sum` give).
        XCTAssertEqual(WebSocketAccept.value(forKey: key), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
        XCTAssertEqual(WebSocketAccept.guid, "258EAFA5-E914-47DA-95CA-C5AB0DC85B11")
    }

    // MARK: Upgrade detection

    func testUpgradeRequestsAreRecognisedByTheUpgradeTokenList() {
        XCTAssertTrue(ServerHandshake.isUpgradeRequest(request(valid)))
        XCTAssertTrue(ServerHandshake.isUpgradeRequest(request([("upgrade", "h2c, WebSocket")])))
        XCTAssertFalse(ServerHandshake.isUpgradeRequest(request([("Upgrade", "h2c")])))
        XCTAssertFalse(ServerHandshake.isUpgradeRequest(request([("Host", "a"), ("Connection", "Upgrade")])))
    }

    // MARK: Valid handshakes

    func testTheRFCExampleIsValid() throws {
        let upgrade = try XCTUnwrap(upgrade(request(valid)))
        XCTAssertEqual(upgrade.key, key)
        XCTAssertEqual(upgrade.host, "server.example.com")
        XCTAssertEqual(upgrade.version, 13)
        XCTAssertEqual(upgrade.requestedProtocols, ["chat", "superchat"])
        XCTAssertEqual(upgrade.requestedExtensions, [])
        XCTAssertEqual(upgrade.origin, "http://example.com")
    }

    func testHeaderNamesAndTokensAreCaseInsensitive() {
        let fields = [
            ("HOST", "a"), ("upgrade", "WebSocket"), ("connection", "UPGRADE"), ("sec-websocket-key", key),
            ("SEC-WEBSOCKET-VERSION", "13"),
        ]
        XCTAssertNotNil(upgrade(request(fields)))
    }

    func testLaterHTTPVersionsAndAbsoluteTargetsAreAccepted() {
        XCTAssertNotNil(upgrade(request(valid, version: HTTPVersion(major: 2, minor: 0))))
        XCTAssertNotNil(upgrade(request(valid, target: "http://server.example.com/chat")))
    }

    // MARK: Request line

    func testTheMethodMustBeGET() {
        for method in ["POST", "get", "HEAD", "CONNECT"] {
            XCTAssertEqual(
                rejection(request(valid, method: method)),
                HandshakeRejection(status: 400, reason: "the WebSocket handshake must use GET"), method)
        }
    }

    func testHTTP10IsRejected() {
        XCTAssertEqual(rejection(request(valid, version: .http1_0))?.status, 400)
    }

    func testTheAsteriskTargetIsRejected() {
        XCTAssertEqual(rejection(request(valid, target: "*"))?.status, 400)
    }

    // MARK: Required fields

    func testHostIsRequiredExactlyOnce() {
        XCTAssertEqual(rejection(request(replacing("Host", with: nil)))?.status, 400)
        XCTAssertEqual(rejection(request(replacing("Host", with: "")))?.status, 400)
        XCTAssertEqual(rejection(request(valid + [("host", "other.example.com")]))?.status, 400)
    }

    func testUpgradeMustListWebsocket() {
        XCTAssertEqual(rejection(request(replacing("Upgrade", with: nil)))?.status, 400)
        XCTAssertEqual(rejection(request(replacing("Upgrade", with: "websocket2")))?.status, 400)
        XCTAssertNotNil(upgrade(request(replacing("Upgrade", with: "h2c, websocket"))))
    }

    func testConnectionHeaderIsATokenList() {
        XCTAssertNotNil(upgrade(request(replacing("Connection", with: "keep-alive, Upgrade"))))
        XCTAssertNotNil(upgrade(request(replacing("Connection", with: "keep-alive") + [("Connection", "upgrade")])))
        for value in ["keep-alive", "Upgrades", "close", "keep-alive Upgrade"] {
            XCTAssertEqual(
                rejection(request(replacing("Connection", with: value))),
                HandshakeRejection(status: 400, reason: "the Connection header must contain \"Upgrade\""), value)
        }
        XCTAssertEqual(rejection(request(replacing("Connection", with: nil)))?.status, 400)
    }

    func testAMissingOrOtherVersionGets426NamingVersion13() {
        let expected = HandshakeRejection(
            status: 426, reason: "unsupported WebSocket version; this server speaks 13",
            headers: ["Sec-WebSocket-Version": "13"])
        XCTAssertEqual(rejection(request(replacing("Sec-WebSocket-Version", with: nil))), expected)
        for version in ["8", "12", "14", "13, 8", "", "013"] {
            XCTAssertEqual(rejection(request(replacing("Sec-WebSocket-Version", with: version))), expected, version)
        }
        XCTAssertEqual(rejection(request(valid + [("Sec-WebSocket-Version", "13")])), expected)
    }

    func testAnOldClientWithoutAKeyLearnsTheVersionFirst() {
        let hixie =
            replacing("Sec-WebSocket-Key", with: nil).filter { $0.0 != "Sec-WebSocket-Version" }
            + [("Sec-WebSocket-Key1", "4 @1  46546xW%0l 1 5"), ("Sec-WebSocket-Key2", "12998 5 Y3 1  .P00")]
        XCTAssertEqual(rejection(request(hixie))?.status, 426)
    }

    func testTheKeyMustBeBase64OfSixteenBytes() {
        XCTAssertEqual(
            rejection(request(replacing("Sec-WebSocket-Key", with: nil)))?.reason, "missing Sec-WebSocket-Key")
        XCTAssertEqual(rejection(request(valid + [("Sec-WebSocket-Key", key)]))?.reason, "repeated Sec-WebSocket-Key")
        let seventeen = Base64.encode([UInt8](repeating: 7, count: 17))
        let fifteen = Base64.encode([UInt8](repeating: 7, count: 15))
        for bad in [
            "c2hvcnQ=", seventeen, fifteen, "dGhlIHNhbXBsZSBub25jZQ", "dGhlIHNhbXBsZSBub25jZR==",
            "dGhlIHNhbXBsZSBub25jZQ==x", "",
        ] {
            XCTAssertEqual(
                rejection(request(replacing("Sec-WebSocket-Key", with: bad))),
                HandshakeRejection(status: 400, reason: "Sec-WebSocket-Key must be the base64 encoding of 16 bytes"),
                bad)
        }
        XCTAssertNotNil(
            upgrade(request(replacing("Sec-WebSocket-Key", with: Base64.encode([UInt8](repeating: 0xFF, count: 16))))))
    }

    // MARK: Subprotocols, extensions, origin

    func testSubprotocolsAreATokenListAcrossLines() {
        let fields = replacing("Sec-WebSocket-Protocol", with: "a, ,b") + [("sec-websocket-protocol", "c.v2")]
        XCTAssertEqual(upgrade(request(fields))?.requestedProtocols, ["a", "b", "c.v2"])
        XCTAssertEqual(upgrade(request(replacing("Sec-WebSocket-Protocol", with: nil)))?.requestedProtocols, [])
    }

    func testRepeatedSubprotocolsAreRejected() {
        XCTAssertEqual(rejection(request(replacing("Sec-WebSocket-Protocol", with: "chat, chat")))?.status, 400)
        XCTAssertEqual(rejection(request(valid + [("Sec-WebSocket-Protocol", "superchat")]))?.status, 400)
        // Subprotocol names are case-sensitive, so these are two different protocols.
        XCTAssertEqual(
            upgrade(request(replacing("Sec-WebSocket-Protocol", with: "chat, Chat")))?.requestedProtocols,
            ["chat", "Chat"])
    }

    func testSubprotocolsMustBeTokens() {
        for value in ["a b", "chat/1", "\"chat\"", "ch@t"] {
            XCTAssertEqual(
                rejection(request(replacing("Sec-WebSocket-Protocol", with: value))),
                HandshakeRejection(status: 400, reason: "Sec-WebSocket-Protocol must list tokens"), value)
        }
    }

    func testExtensionOffersAreParsedWithTheirParameters() throws {
        let fields =
            valid + [
                (
                    "Sec-WebSocket-Extensions",
                    "permessage-deflate; client_max_window_bits, x-foo ;a=1; b = \"q,\\\"r\\\";\""
                ),
                ("sec-websocket-extensions", ", x-bar"),
            ]
        let offers = try XCTUnwrap(upgrade(request(fields))?.requestedExtensions)
        XCTAssertEqual(
            offers,
            [
                WebSocketExtensionOffer(name: "permessage-deflate", parameters: [("client_max_window_bits", nil)]),
                WebSocketExtensionOffer(name: "x-foo", parameters: [("a", "1"), ("b", "q,\"r\";")]),
                WebSocketExtensionOffer(name: "x-bar"),
            ])
        XCTAssertEqual(offers[1].parameters.map(\.name), ["a", "b"])
    }

    func testExtensionOfferEqualityComparesParameters() {
        let a = WebSocketExtensionOffer(name: "x", parameters: [("p", "1")])
        XCTAssertEqual(a, WebSocketExtensionOffer(name: "x", parameters: [("p", "1")]))
        XCTAssertNotEqual(a, WebSocketExtensionOffer(name: "x", parameters: [("p", nil)]))
        XCTAssertNotEqual(a, WebSocketExtensionOffer(name: "x", parameters: [("q", "1")]))
        XCTAssertNotEqual(a, WebSocketExtensionOffer(name: "x", parameters: [("p", "1"), ("p", "1")]))
        XCTAssertNotEqual(a, WebSocketExtensionOffer(name: "y", parameters: [("p", "1")]))
    }

    func testMalformedExtensionOffersAreRejected() {
        for value in [
            ";a", "ext;", "ext; a=", "ext; a=\"open", "ext x", "ext; a=b c", "ext; =1", "ext; a=\"\\", "e(x)t",
        ] {
            XCTAssertEqual(
                rejection(request(valid + [("Sec-WebSocket-Extensions", value)])),
                HandshakeRejection(status: 400, reason: "malformed Sec-WebSocket-Extensions"), value)
        }
    }

    func testOriginFallsBackToTheOldSecWebSocketOrigin() {
        let old = replacing("Origin", with: nil) + [("Sec-WebSocket-Origin", "http://old.example")]
        XCTAssertEqual(upgrade(request(old))?.origin, "http://old.example")
        XCTAssertEqual(upgrade(request(old + [("Origin", "http://new.example")]))?.origin, "http://new.example")
        XCTAssertNil(upgrade(request(replacing("Origin", with: nil)))?.origin)
    }

    // MARK: Responses

    func testAcceptResponseIsTheExact101() {
        let bytes = ServerHandshake.acceptResponse(key: key, protocol: "chat", extraHeaders: ["X-A": "b"])
        XCTAssertEqual(
            text(bytes),
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                + "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nSec-WebSocket-Protocol: chat\r\nX-A: b\r\n\r\n"
        )
        let plain = text(ServerHandshake.acceptResponse(key: key, protocol: nil, extraHeaders: [:]))
        XCTAssertFalse(plain.contains("Sec-WebSocket-Protocol"))
        XCTAssertTrue(plain.hasSuffix("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n"))
    }

    func testAcceptResponseDropsExtraHeadersThatWouldSplitTheResponse() {
        let bytes = ServerHandshake.acceptResponse(
            key: key, protocol: nil, extraHeaders: ["X-Evil": "a\r\nSet-Cookie: x=1", "X-Good": "ok", "Bad Name": "v"])
        let response = text(bytes)
        XCTAssertFalse(response.contains("Set-Cookie"))
        XCTAssertFalse(response.contains("X-Evil"))
        XCTAssertFalse(response.contains("Bad Name"))
        XCTAssertTrue(response.hasSuffix("X-Good: ok\r\n\r\n"))
    }

    func testRejectResponseCarriesTheStatusHeadersReasonAndClose() {
        let rejection = HandshakeRejection(status: 426, reason: "use 13", headers: ["Sec-WebSocket-Version": "13"])
        XCTAssertEqual(
            text(ServerHandshake.rejectResponse(rejection)),
            "HTTP/1.1 426 Upgrade Required\r\nSec-WebSocket-Version: 13\r\nContent-Type: text/plain; charset=utf-8\r\n"
                + "Content-Length: 7\r\nConnection: close\r\n\r\nuse 13\n")
    }
}

final class HTTPResponseWriterTests: XCTestCase {
    private func text(_ bytes: [UInt8]) -> String {
        String(decoding: bytes, as: UTF8.self)
    }

    func testHeadWritesTheStatusLineHeadersAndBlankLine() {
        XCTAssertEqual(
            text(HTTPResponseWriter.head(status: 404, headers: ["A": "1", "b": "two words"])),
            "HTTP/1.1 404 Not Found\r\nA: 1\r\nb: two words\r\n\r\n")
        XCTAssertEqual(
            text(HTTPResponseWriter.head(status: 200, reason: "Fine", headers: [:])), "HTTP/1.1 200 Fine\r\n\r\n")
    }

    func testLinesWithLineBreaksOrBadNamesAreDropped() {
        let head = text(
            HTTPResponseWriter.head(
                status: 200, headers: ["X-Evil": "a\r\nSet-Cookie: x=1", "X-LF": "a\nb", "X:Colon": "v", "X-Ok": "1"]))
        XCTAssertEqual(head, "HTTP/1.1 200 OK\r\nX-Ok: 1\r\n\r\n")
    }

    func testAReasonWithControlCharactersIsReplacedByTheStandardOne() {
        XCTAssertEqual(
            text(HTTPResponseWriter.head(status: 403, reason: "no\r\nX: y", headers: [:])),
            "HTTP/1.1 403 Forbidden\r\n\r\n")
    }

    func testSimpleResponseCountsBodyBytesAndClosesOnRequest() {
        let closing = text(HTTPResponseWriter.simpleResponse(status: 400, body: "caf\u{00E9}\n", close: true))
        XCTAssertEqual(
            closing,
            "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 6\r\n"
                + "Connection: close\r\n\r\ncaf\u{00E9}\n")
        let open = text(HTTPResponseWriter.simpleResponse(status: 200, body: "", close: false))
        XCTAssertEqual(open, "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 0\r\n\r\n")
    }

    func testReasonPhrasesForKnownAndUnknownCodes() {
        XCTAssertEqual(HTTPResponseWriter.reasonPhrase(for: 101), "Switching Protocols")
        XCTAssertEqual(HTTPResponseWriter.reasonPhrase(for: 426), "Upgrade Required")
        XCTAssertEqual(HTTPResponseWriter.reasonPhrase(for: 431), "Request Header Fields Too Large")
        XCTAssertEqual(HTTPResponseWriter.reasonPhrase(for: 299), "Success")
        XCTAssertEqual(HTTPResponseWriter.reasonPhrase(for: 499), "Client Error")
        XCTAssertEqual(HTTPResponseWriter.reasonPhrase(for: 799), "Unknown")
    }
}
