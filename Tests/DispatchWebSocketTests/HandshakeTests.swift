import XCTest
@testable import DispatchWebSocket

final class SHA1Tests: XCTestCase {
    private func hex(_ bytes: [UInt8]) -> String { bytes.map { String(format2: $0) }.joined() }

    func testFIPSVectors() {
        XCTAssertEqual(hex(SHA1.hash(Array("abc".utf8))), "a9993e364706816aba3e25717850c26c9cd0d89d")
        XCTAssertEqual(hex(SHA1.hash([])), "da39a3ee5e6b4b0d3255bfef95601890afd80709")
        XCTAssertEqual(
            hex(SHA1.hash(Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8))),
            "84983e441c3bd26ebaae4aa1f95129e5e54670f1")
        XCTAssertEqual(hex(SHA1.hash([UInt8](repeating: UInt8(ascii: "a"), count: 1_000_000))),
                       "34aa973cd4c4daa4f61eeb2bdbad27316534016f")
    }

    func testPaddingBoundaryLengths() {
        // Digests of "a" repeated n times, from `sha1sum`.
        let expected = [
            55: "c1c8bbdc22796e28c0e15163d20899b65621d65a",
            56: "c2db330f6083854c99d4b5bfb6e8f29f201be699",
            63: "03f09f5b158a7a8cdad920bddc29b81c18a551f5",
            64: "0098ba824b5c16427bd7a1122a5a442a25ec644d",
            65: "11655326c708d70319be2610e8a57d9a5b959d3b",
        ]
        for (length, digest) in expected {
            XCTAssertEqual(hex(SHA1.hash([UInt8](repeating: UInt8(ascii: "a"), count: length))), digest, "length \(length)")
        }
    }
}

final class Base64Tests: XCTestCase {
    func testRFC4648Vectors() {
        let vectors = ["": "", "f": "Zg==", "fo": "Zm8=", "foo": "Zm9v", "foob": "Zm9vYg==", "fooba": "Zm9vYmE=", "foobar": "Zm9vYmFy"]
        for (plain, encoded) in vectors {
            XCTAssertEqual(Base64.encode(Array(plain.utf8)), encoded)
            XCTAssertEqual(Base64.decode(encoded), Array(plain.utf8))
        }
    }

    func testAllByteValuesRoundTrip() {
        let bytes = (0...255).map { UInt8($0) }
        XCTAssertEqual(Base64.decode(Base64.encode(bytes)), bytes)
    }

    func testDecodingIsStrict() {
        for invalid in ["Zg=", "Zg", "Z===", "Zm9v!", "Zg==Zg==", "Zh==", "Zm9=", "=Zm9", "Zm 9v"] {
            XCTAssertNil(Base64.decode(invalid), invalid)
        }
    }
}

final class AcceptKeyTests: XCTestCase {
    func testRFCExample() {
        // RFC 6455 §1.3.
        XCTAssertEqual(WebSocketAccept.value(forKey: "dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
    }
}

final class HTTPHeadParserTests: XCTestCase {
    private let request = "GET /chat?x=1 HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\n"
        + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nX-Spaces:   padded value \t\r\n\r\n"

    private func parse(_ text: String, max: Int = 16384) throws -> HTTPRequestHead? {
        var parser = HTTPHeadParser(maxHeadBytes: max)
        return try Array(text.utf8).withUnsafeBytes { try parser.parseRequest($0)?.head }
    }

    private func assertMalformed(_ text: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try parse(text), file: file, line: line) { error in
            guard case .malformed = error as? HTTPParseError else { return XCTFail("\(error)", file: file, line: line) }
        }
    }

    func testParsesARequestHead() throws {
        let head = try XCTUnwrap(parse(request))
        XCTAssertEqual(head.method, "GET")
        XCTAssertEqual(head.target, "/chat?x=1")
        XCTAssertEqual(head.version, HTTPVersion(major: 1, minor: 1))
        XCTAssertEqual(head.headers["host"], "server.example.com")
        XCTAssertEqual(head.headers["X-SPACES"], "padded value")
        XCTAssertEqual(head.headers.tokens(for: "connection"), ["keep-alive", "Upgrade"])
        XCTAssertTrue(head.headers.containsToken("upgrade", in: "Connection"))
    }

    func testSplitAtEveryByteGivesTheSameHeadAndConsumedCount() throws {
        let trailing: [UInt8] = [0x81, 0x80, 1, 2, 3, 4]  // a WebSocket frame after the head
        let bytes = Array(request.utf8) + trailing
        for split in 0...bytes.count {
            var parser = HTTPHeadParser(maxHeadBytes: 16384)
            var result = try bytes[..<split].withUnsafeBytes { try parser.parseRequest($0) }
            var offset = 0
            if result == nil {
                offset = split
                result = try bytes[split...].withUnsafeBytes { try parser.parseRequest($0) }
            }
            let (head, consumed) = try XCTUnwrap(result, "split \(split)")
            XCTAssertEqual(head.target, "/chat?x=1")
            XCTAssertEqual(offset + consumed, request.utf8.count, "split \(split)")
        }
    }

    func testByteByByte() throws {
        var parser = HTTPHeadParser(maxHeadBytes: 16384)
        var head: HTTPRequestHead?
        for (index, byte) in request.utf8.enumerated() {
            let result = try [byte].withUnsafeBytes { try parser.parseRequest($0) }
            if let result {
                XCTAssertEqual(index, request.utf8.count - 1)
                head = result.head
            }
        }
        XCTAssertEqual(head?.headers["sec-websocket-version"], "13")
    }

    func testBareLineFeedsAreAccepted() throws {
        XCTAssertEqual(try parse("GET / HTTP/1.1\nHost: a\n\n")?.headers["Host"], "a")
    }

    func testMalformedRequests() {
        assertMalformed("GET /\r\n\r\n")
        assertMalformed("GET / HTTP/1.1 extra\r\n\r\n")
        assertMalformed("G(T / HTTP/1.1\r\n\r\n")
        assertMalformed("GET chat HTTP/1.1\r\n\r\n")
        assertMalformed("GET / HTTX/1.1\r\n\r\n")
        assertMalformed("GET / HTTP/11\r\n\r\n")
        assertMalformed("GET / HTTP/1.1\r\nNoColon\r\n\r\n")
        assertMalformed("GET / HTTP/1.1\r\nHost : a\r\n\r\n")
        assertMalformed("GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n")
        assertMalformed("GET / HTTP/1.1\r\nHost: a\u{01}b\r\n\r\n")
        assertMalformed("GET / HTTP/1.1\r\nHost: a\0\r\n\r\n")
    }

    func testHeadSizeLimit() throws {
        let head = "GET / HTTP/1.1\r\nHost: a\r\n\r\n"
        XCTAssertNotNil(try parse(head, max: head.utf8.count))
        XCTAssertThrowsError(try parse(head, max: head.utf8.count - 1)) { XCTAssertEqual($0 as? HTTPParseError, .headTooLarge) }
        // A head that never ends fails once it crosses the limit, however it is fed.
        var parser = HTTPHeadParser(maxHeadBytes: 1000)
        var failed = false
        for _ in 0..<200 {
            do {
                _ = try Array("X-A: bbbbbbbbbb\r\n".utf8).withUnsafeBytes { try parser.parseRequest($0) }
            } catch {
                XCTAssertEqual(error as? HTTPParseError, .headTooLarge)
                failed = true
                break
            }
        }
        XCTAssertTrue(failed)
    }

    func testParsesAResponseHead() throws {
        var parser = HTTPHeadParser(maxHeadBytes: 1000)
        let text = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\nrest"
        let (head, consumed) = try XCTUnwrap(Array(text.utf8).withUnsafeBytes { try parser.parseResponse($0) })
        XCTAssertEqual(head.status, 101)
        XCTAssertEqual(head.reason, "Switching Protocols")
        XCTAssertEqual(head.headers["upgrade"], "websocket")
        XCTAssertEqual(consumed, text.utf8.count - 4)
    }
}

final class ServerHandshakeTests: XCTestCase {
    private func head(_ headers: HTTPHeaders, method: String = "GET", version: HTTPVersion = HTTPVersion(major: 1, minor: 1)) -> HTTPRequestHead {
        HTTPRequestHead(method: method, target: "/", version: version, headers: headers)
    }

    private let valid: HTTPHeaders = [
        "Host": "a", "Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
        "Sec-WebSocket-Version": "13",
    ]

    private func status(_ headers: HTTPHeaders, method: String = "GET", version: HTTPVersion = HTTPVersion(major: 1, minor: 1)) -> Int? {
        if case .failure(let rejection) = ServerHandshake.validate(head(headers, method: method, version: version)) { return rejection.status }
        return nil
    }

    private func with(_ name: String, _ value: String?) -> HTTPHeaders {
        var headers = valid
        headers.remove(name: name)
        if let value { headers.add(name: name, value: value) }
        return headers
    }

    func testValidHandshake() throws {
        var headers = valid
        headers.add(name: "Sec-WebSocket-Protocol", value: "chat, superchat")
        headers.add(name: "Sec-WebSocket-Extensions", value: "permessage-deflate; client_max_window_bits; server_max_window_bits=\"10\", x-foo")
        headers.add(name: "Origin", value: "http://example.com")
        guard case .success(let upgrade) = ServerHandshake.validate(head(headers)) else { return XCTFail() }
        XCTAssertEqual(upgrade.requestedProtocols, ["chat", "superchat"])
        XCTAssertEqual(upgrade.requestedExtensions.map(\.name), ["permessage-deflate", "x-foo"])
        XCTAssertEqual(upgrade.requestedExtensions[0].parameters.map(\.name), ["client_max_window_bits", "server_max_window_bits"])
        XCTAssertEqual(upgrade.requestedExtensions[0].parameters[1].value, "10")
        XCTAssertEqual(upgrade.origin, "http://example.com")
    }

    func testUpgradeAndConnectionAreCaseInsensitiveTokenLists() {
        XCTAssertNil(status(with("Connection", "keep-alive, Upgrade")))
        XCTAssertNil(status(with("Upgrade", "WebSocket")))
        XCTAssertNil(status(with("Connection", "UPGRADE")))
        XCTAssertEqual(status(with("Connection", "keep-alive")), 400)
        XCTAssertEqual(status(with("Connection", "Upgraded")), 400)
    }

    func testEachInvalidCase() {
        XCTAssertEqual(status(valid, method: "POST"), 400)
        XCTAssertEqual(status(valid, version: HTTPVersion(major: 1, minor: 0)), 400)
        XCTAssertEqual(status(with("Host", nil)), 400)
        XCTAssertEqual(status(with("Sec-WebSocket-Key", nil)), 400)
        XCTAssertEqual(status(with("Sec-WebSocket-Key", "c2hvcnQ=")), 400)  // 5 bytes
        XCTAssertEqual(status(with("Sec-WebSocket-Key", "not base64!")), 400)
        XCTAssertEqual(status(with("Sec-WebSocket-Version", "8")), 426)
        XCTAssertEqual(status(with("Sec-WebSocket-Version", nil)), 426)
        XCTAssertEqual(status(with("Sec-WebSocket-Protocol", "a b")), 400)
        XCTAssertEqual(status(with("Sec-WebSocket-Protocol", "a, a")), 400)
        if case .failure(let rejection) = ServerHandshake.validate(head(with("Sec-WebSocket-Version", "8"))) {
            XCTAssertEqual(rejection.headers["Sec-WebSocket-Version"], "13")
        }
    }

    func testAcceptResponse() {
        let text = String(decoding: ServerHandshake.acceptResponse(key: "dGhlIHNhbXBsZSBub25jZQ==", protocol: "chat", extraHeaders: ["X-A": "b"]), as: UTF8.self)
        XCTAssertTrue(text.hasPrefix("HTTP/1.1 101 Switching Protocols\r\n"))
        XCTAssertTrue(text.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"))
        XCTAssertTrue(text.contains("Sec-WebSocket-Protocol: chat\r\n"))
        XCTAssertTrue(text.hasSuffix("X-A: b\r\n\r\n"))
    }

    func testResponseHeadersCannotInjectLines() {
        let text = String(decoding: HTTPResponseWriter.head(status: 200, headers: ["X-Evil": "a\r\nSet-Cookie: x=1"]), as: UTF8.self)
        XCTAssertFalse(text.contains("Set-Cookie"))
    }
}

final class ClientHandshakeTests: XCTestCase {
    private let key = "dGhlIHNhbXBsZSBub25jZQ=="

    private func response(_ headers: HTTPHeaders, status: Int = 101) -> HTTPResponseHead {
        HTTPResponseHead(version: HTTPVersion(major: 1, minor: 1), status: status, reason: "", headers: headers)
    }

    private var good: HTTPHeaders { ["Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Accept": "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="] }

    func testEachCheck() {
        XCTAssertEqual(try ClientHandshake.validate(response(good), key: key, offeredProtocols: []).get(), nil)
        var headers = good
        headers.add(name: "Sec-WebSocket-Protocol", value: "chat")
        XCTAssertEqual(try ClientHandshake.validate(response(headers), key: key, offeredProtocols: ["chat"]).get(), "chat")
        func check(_ head: HTTPResponseHead, offered: [String] = []) -> ClientHandshakeError.Check? {
            if case .failure(let error) = ClientHandshake.validate(head, key: key, offeredProtocols: offered) { return error.check }
            return nil
        }
        XCTAssertEqual(check(response(good, status: 200)), .status(200))
        var h = good; h.replaceOrAdd(name: "Upgrade", value: "h2c")
        XCTAssertEqual(check(response(h)), .upgradeHeader)
        h = good; h.replaceOrAdd(name: "Connection", value: "close")
        XCTAssertEqual(check(response(h)), .connectionHeader)
        h = good; h.replaceOrAdd(name: "Sec-WebSocket-Accept", value: "wrong")
        XCTAssertEqual(check(response(h)), .acceptKey)
        XCTAssertEqual(check(response(headers), offered: ["other"]), .unofferedProtocol("chat"))
        h = good; h.add(name: "Sec-WebSocket-Extensions", value: "permessage-deflate; x=1")
        XCTAssertEqual(check(response(h)), .unofferedExtension("permessage-deflate"))
    }

    func testRequestBytes() {
        let text = String(decoding: ClientHandshake.request(
            host: "::1", port: 9001, defaultPort: 80, resource: "/a?b=c", key: key, protocols: ["x", "y"], origin: "http://o",
            extraHeaders: ["X-T": "1"]), as: UTF8.self)
        XCTAssertTrue(text.hasPrefix("GET /a?b=c HTTP/1.1\r\nHost: [::1]:9001\r\n"), text)
        XCTAssertTrue(text.contains("Sec-WebSocket-Protocol: x, y\r\n"))
        XCTAssertTrue(text.contains("Origin: http://o\r\n"))
        XCTAssertTrue(text.hasSuffix("X-T: 1\r\n\r\n"))
    }
}

extension String {
    /// Two lowercase hex digits.
    init(format2 byte: UInt8) {
        self = (byte < 16 ? "0" : "") + String(byte, radix: 16)
    }
}
