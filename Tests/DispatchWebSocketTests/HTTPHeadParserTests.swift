import XCTest

@testable import DispatchWebSocket

final class HTTPHeadParsingTests: XCTestCase {
    private let upgradeRequest =
        "GET /chat?room=1 HTTP/1.1\r\n" + "Host: server.example.com\r\n" + "Upgrade: websocket\r\n"
        + "Connection: keep-alive, Upgrade\r\n" + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        + "X-Spaces: \t padded value \t\r\n" + "Sec-WebSocket-Version: 13\r\n\r\n"

    /// The first bytes of a masked WebSocket frame that a client sent right behind its head.
    private let frameBytes: [UInt8] = [0x81, 0x85, 0x37, 0xFA, 0x21, 0x3D, 0x7F, 0x9F, 0x4D, 0x51, 0x58]

    // MARK: Helpers

    private struct Parsed<Head> {
        var head: Head
        var consumed: Int
    }

    /// Feeds `chunks` to a request parser; returns the head and the consumed count of the
    /// chunk that completed it, and fails the test if a head completes before the last chunk.
    private func parseRequest(
        _ chunks: [[UInt8]], max: Int = 16384, file: StaticString = #filePath, line: UInt = #line
    ) throws -> Parsed<HTTPRequestHead>? {
        var parser = HTTPHeadParser(maxHeadBytes: max)
        for (index, chunk) in chunks.enumerated() {
            if let result = try chunk.withUnsafeBytes({ try parser.parseRequest($0) }) {
                XCTAssertEqual(index, chunks.count - 1, "the head completed early", file: file, line: line)
                return Parsed(head: result.head, consumed: result.consumed)
            }
        }
        return nil
    }

    private func parseRequest(_ text: String, max: Int = 16384) throws -> HTTPRequestHead? {
        try parseRequest([Array(text.utf8)], max: max)?.head
    }

    private func parseResponse(_ text: String) throws -> HTTPResponseHead? {
        var parser = HTTPHeadParser(maxHeadBytes: 16384)
        return try Array(text.utf8).withUnsafeBytes { try parser.parseResponse($0) }?.head
    }

    private func assertMalformed(_ text: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try parseRequest(text), text.debugDescription, file: file, line: line) { error in
            guard case .malformed(let reason) = error as? HTTPParseError else {
                return XCTFail("\(error)", file: file, line: line)
            }
            XCTAssertFalse(reason.isEmpty, file: file, line: line)
        }
    }

    private func assertMalformedResponse(_ text: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try parseResponse(text), text.debugDescription, file: file, line: line) { error in
            guard case .malformed = error as? HTTPParseError else { return XCTFail("\(error)", file: file, line: line) }
        }
    }

    private func reason(_ text: String) -> String? {
        do {
            _ = try parseRequest(text)
            return nil
        } catch {
            guard case .malformed(let reason) = error as? HTTPParseError else { return nil }
            return reason
        }
    }

    // MARK: Valid requests

    func testParsesTheRequestLineAndHeaders() throws {
        let head = try XCTUnwrap(try parseRequest(upgradeRequest))
        XCTAssertEqual(head.method, "GET")
        XCTAssertEqual(head.target, "/chat?room=1")
        XCTAssertEqual(head.version, HTTPVersion(major: 1, minor: 1))
        XCTAssertEqual(head.headers.count, 6)
        XCTAssertEqual(head.headers["host"], "server.example.com")
        XCTAssertEqual(head.headers.tokens(for: "CONNECTION"), ["keep-alive", "Upgrade"])
        XCTAssertEqual(
            Array(head.headers).map(\.name),
            [
                "Host", "Upgrade", "Connection", "Sec-WebSocket-Key", "X-Spaces", "Sec-WebSocket-Version",
            ])
    }

    func testHeaderValuesAreTrimmedOfSurroundingWhitespaceOnly() throws {
        let head = try XCTUnwrap(
            try parseRequest(
                "GET / HTTP/1.1\r\nA: \t padded  value \t\r\nB:tight\r\nEmpty:\r\nBlank: \t \r\n\r\n"))
        XCTAssertEqual(head.headers["A"], "padded  value")
        XCTAssertEqual(head.headers["B"], "tight")
        XCTAssertEqual(head.headers["Empty"], "")
        XCTAssertEqual(head.headers["Blank"], "")
    }

    func testRepeatedHeadersKeepTheirOrderAndSpelling() throws {
        let head = try XCTUnwrap(try parseRequest("GET / HTTP/1.1\r\nx-a: 1\r\nX-B: 2\r\nX-A: 3\r\n\r\n"))
        XCTAssertEqual(head.headers.values(for: "x-A"), ["1", "3"])
        XCTAssertEqual(Array(head.headers).map(\.name), ["x-a", "X-B", "X-A"])
    }

    func testValuesMayCarryTabsAndNonASCIIBytes() throws {
        let head = try XCTUnwrap(try parseRequest("GET / HTTP/1.1\r\nX-Name: Fran\u{00E7}ois\tM\r\n\r\n"))
        XCTAssertEqual(head.headers["X-Name"], "Fran\u{00E7}ois\tM")
    }

    func testOneChunkWithFramesBehindTheHeadReportsWhereTheHeadEnds() throws {
        let head = Array(upgradeRequest.utf8)
        let parsed = try XCTUnwrap(try parseRequest([head + frameBytes]))
        XCTAssertEqual(parsed.consumed, head.count)
        XCTAssertEqual(parsed.head.headers["Sec-WebSocket-Version"], "13")
    }

    func testEverySplitPointGivesTheSameHeadAndConsumedCount() throws {
        let head = Array(upgradeRequest.utf8)
        let bytes = head + frameBytes
        for split in 1..<head.count {
            let parsed = try XCTUnwrap(
                try parseRequest([Array(bytes[..<split]), Array(bytes[split...])]), "split \(split)")
            XCTAssertEqual(parsed.consumed, head.count - split, "split \(split)")
            XCTAssertEqual(parsed.head.target, "/chat?room=1")
            XCTAssertEqual(parsed.head.headers["x-spaces"], "padded value", "split \(split)")
            XCTAssertEqual(parsed.head.headers.count, 6, "split \(split)")
        }
        // Split exactly after the head: the second chunk is all frame bytes, never reached.
        var parser = HTTPHeadParser(maxHeadBytes: 16384)
        let result = try head.withUnsafeBytes { try parser.parseRequest($0) }
        XCTAssertEqual(result?.consumed, head.count)
    }

    func testByteByByteFeedingCompletesOnTheFinalLineFeed() throws {
        let head = Array(upgradeRequest.utf8)
        var parser = HTTPHeadParser(maxHeadBytes: 16384)
        for (index, byte) in head.enumerated() {
            let result = try [byte].withUnsafeBytes { try parser.parseRequest($0) }
            if index < head.count - 1 {
                XCTAssertNil(result, "completed early at \(index)")
            } else {
                XCTAssertEqual(result?.consumed, 1)
                XCTAssertEqual(result?.head.headers["Upgrade"], "websocket")
            }
        }
    }

    func testBareLineFeedsEndLinesAndTheHead() throws {
        let head = try XCTUnwrap(try parseRequest("GET / HTTP/1.1\nHost: a\nX: b\n\n"))
        XCTAssertEqual(head.headers["Host"], "a")
        XCTAssertEqual(head.headers["X"], "b")
        let mixed = try XCTUnwrap(try parseRequest("GET / HTTP/1.1\r\nHost: a\nX: b\r\n\n"))
        XCTAssertEqual(mixed.headers["X"], "b")
        let bytes = Array("GET / HTTP/1.1\nHost: a\n\n".utf8)
        let parsed = try XCTUnwrap(try parseRequest([bytes + frameBytes]))
        XCTAssertEqual(parsed.consumed, bytes.count)
    }

    func testEmptyLinesBeforeTheRequestLineAreSkipped() throws {
        let bytes = Array("\r\n\r\n\nGET / HTTP/1.1\r\nHost: a\r\n\r\n".utf8)
        let parsed = try XCTUnwrap(try parseRequest([bytes + frameBytes]))
        XCTAssertEqual(parsed.head.method, "GET")
        XCTAssertEqual(parsed.consumed, bytes.count)
        let split = try XCTUnwrap(try parseRequest([[0x0D], [0x0A], Array("GET / HTTP/1.1\r\n\r\n".utf8)]))
        XCTAssertEqual(split.head.target, "/")
        XCTAssertEqual(split.head.headers.count, 0)
    }

    func testParserIsReadyForThePipelinedNextRequest() throws {
        let bytes = Array("GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: y\r\n\r\n".utf8)
        var parser = HTTPHeadParser(maxHeadBytes: 64)
        let first = try XCTUnwrap(try bytes.withUnsafeBytes { try parser.parseRequest($0) })
        XCTAssertEqual(first.head.target, "/a")
        let rest = Array(bytes[first.consumed...])
        let second = try XCTUnwrap(try rest.withUnsafeBytes { try parser.parseRequest($0) })
        XCTAssertEqual(second.head.target, "/b")
        XCTAssertEqual(second.head.headers["Host"], "y")
        XCTAssertEqual(second.consumed, rest.count)
    }

    func testResetDiscardsAPartialHead() throws {
        var parser = HTTPHeadParser(maxHeadBytes: 64)
        XCTAssertNil(
            try Array("POST /old HTTP/1.1\r\nX-Partial: ".utf8).withUnsafeBytes { try parser.parseRequest($0) })
        parser.reset()
        let head = try XCTUnwrap(
            try Array("GET /new HTTP/1.1\r\n\r\n".utf8).withUnsafeBytes { try parser.parseRequest($0) })
        XCTAssertEqual(head.head.method, "GET")
        XCTAssertEqual(head.head.target, "/new")
        XCTAssertFalse(head.head.headers.contains("X-Partial"))
    }

    func testParserRecoversAfterAnError() throws {
        var parser = HTTPHeadParser(maxHeadBytes: 64)
        XCTAssertThrowsError(try Array("BAD\r\n\r\n".utf8).withUnsafeBytes { try parser.parseRequest($0) })
        let head = try Array("GET / HTTP/1.1\r\n\r\n".utf8).withUnsafeBytes { try parser.parseRequest($0) }
        XCTAssertEqual(head?.head.target, "/")
    }

    func testAcceptsAsteriskAndAbsoluteFormTargets() throws {
        XCTAssertEqual(try parseRequest("OPTIONS * HTTP/1.1\r\n\r\n")?.target, "*")
        XCTAssertEqual(
            try parseRequest("GET http://example.com/chat HTTP/1.1\r\n\r\n")?.target, "http://example.com/chat")
        XCTAssertEqual(try parseRequest("GET HTTPS://example.com HTTP/1.1\r\n\r\n")?.target, "HTTPS://example.com")
        XCTAssertEqual(try parseRequest("M-SEARCH /%20a HTTP/1.0\r\n\r\n")?.version, HTTPVersion(major: 1, minor: 0))
    }

    // MARK: Malformed requests

    func testRejectsARequestLineWithMissingParts() {
        for line in ["GET /", "GET", "GET HTTP/1.1", "/ HTTP/1.1", " / HTTP/1.1", "GET / ", "GET  HTTP/1.1"] {
            assertMalformed(line + "\r\nHost: a\r\n\r\n")
        }
    }

    func testRejectsARequestLineWithExtraParts() {
        for line in [
            "GET / HTTP/1.1 extra", "GET /a b HTTP/1.1", "GET  / HTTP/1.1", "GET / HTTP/1.1 ", "GET\t/ HTTP/1.1",
        ] {
            assertMalformed(line + "\r\nHost: a\r\n\r\n")
        }
    }

    func testRejectsAMethodThatIsNotAToken() {
        XCTAssertEqual(reason("G(T / HTTP/1.1\r\n\r\n"), "invalid method")
        assertMalformed("GE\u{00C9}T / HTTP/1.1\r\n\r\n")
        assertMalformed("GET\u{0001} / HTTP/1.1\r\n\r\n")
    }

    func testRejectsTargetsOutsideOriginAsteriskAndAbsoluteForm() {
        for target in [
            "chat", "example.com:443", "ftp://example.com/", "ws://example.com/", "*x", "http://", "/a\u{007F}b",
        ] {
            XCTAssertEqual(reason("GET \(target) HTTP/1.1\r\n\r\n"), "invalid request target", target)
        }
    }

    func testRejectsVersionsOtherThanHTTPDigitDotDigit() {
        for version in ["HTTP/1.10", "http/1.1", "HTTP/1", "HTTP/a.b", "HTTP/1.1x", "HTTP/11", "HTTPS/1.1", "HTTP/1,1"]
        {
            XCTAssertEqual(reason("GET / \(version)\r\n\r\n"), "invalid HTTP version", version)
        }
    }

    func testRejectsAHeaderLineWithoutAColon() {
        XCTAssertEqual(reason("GET / HTTP/1.1\r\nHost a\r\n\r\n"), "header line without a colon")
        XCTAssertEqual(reason("GET / HTTP/1.1\r\nHost\r\n\r\n"), "header line without a colon")
    }

    func testRejectsWhitespaceBeforeTheColon() {
        XCTAssertEqual(reason("GET / HTTP/1.1\r\nHost : a\r\n\r\n"), "whitespace before the colon in a header")
        XCTAssertEqual(reason("GET / HTTP/1.1\r\nHost\t: a\r\n\r\n"), "whitespace before the colon in a header")
    }

    func testRejectsObsoleteLineFolding() {
        XCTAssertEqual(reason("GET / HTTP/1.1\r\nX-A: one\r\n two\r\n\r\n"), "obsolete line folding in the header")
        XCTAssertEqual(reason("GET / HTTP/1.1\r\nX-A: one\r\n\ttwo\r\n\r\n"), "obsolete line folding in the header")
        // Whitespace between the request line and the first header is refused the same way.
        assertMalformed("GET / HTTP/1.1\r\n Host: a\r\n\r\n")
    }

    func testRejectsAnEmptyOrInvalidHeaderName() {
        XCTAssertEqual(reason("GET / HTTP/1.1\r\n: a\r\n\r\n"), "empty header name")
        XCTAssertEqual(reason("GET / HTTP/1.1\r\nX(A): a\r\n\r\n"), "invalid character in a header name")
        XCTAssertEqual(reason("GET / HTTP/1.1\r\nX\u{00C4}: a\r\n\r\n"), "invalid character in a header name")
    }

    func testRejectsControlCharactersInValues() {
        for control in ["\u{0001}", "\u{001B}", "\u{007F}", "\r", "\u{000B}"] {
            XCTAssertEqual(
                reason("GET / HTTP/1.1\r\nX-A: a\(control)b\r\n\r\n"), "control character in a header value",
                control.debugDescription)
        }
    }

    func testRejectsNULAnywhere() {
        for text in [
            "G\0ET / HTTP/1.1\r\n\r\n", "GET /\0 HTTP/1.1\r\n\r\n", "GET / HTTP/1.1\0\r\n\r\n",
            "GET / HTTP/1.1\r\nX\0: a\r\n\r\n",
            "GET / HTTP/1.1\r\nX: a\0b\r\n\r\n", "GET / HTTP/1.1\r\nX: \0\r\n\r\n",
        ] {
            guard let reason = reason(text) else {
                XCTFail("accepted \(text.debugDescription)")
                continue
            }
            XCTAssertTrue(reason.contains("NUL"), "\(text.debugDescription): \(reason)")
        }
    }

    func testRejectsABareCarriageReturnLine() {
        assertMalformed("GET / HTTP/1.1\r\n\r\r\n\r\n")
    }

    // MARK: Size limit

    func testAHeadOfExactlyTheLimitIsAccepted() throws {
        let head = Array(upgradeRequest.utf8)
        let parsed = try XCTUnwrap(try parseRequest([head + frameBytes], max: head.count))
        XCTAssertEqual(parsed.consumed, head.count)
        // Fed byte by byte, the last byte lands exactly on the limit.
        let bytes = head.map { [$0] }
        XCTAssertEqual(try parseRequest(bytes, max: head.count)?.consumed, 1)
    }

    func testAHeadOneByteOverTheLimitIsRejected() {
        let head = Array(upgradeRequest.utf8)
        XCTAssertThrowsError(try parseRequest([head], max: head.count - 1)) {
            XCTAssertEqual($0 as? HTTPParseError, .headTooLarge)
        }
        XCTAssertThrowsError(try parseRequest(head.map { [$0] }, max: head.count - 1)) {
            XCTAssertEqual($0 as? HTTPParseError, .headTooLarge)
        }
    }

    func testAnEndlessHeaderFailsAsSoonAsItPassesTheLimit() throws {
        let limit = 1000
        var parser = HTTPHeadParser(maxHeadBytes: limit)
        let start = Array("GET / HTTP/1.1\r\nX-Endless: ".utf8)
        XCTAssertNil(try start.withUnsafeBytes { try parser.parseRequest($0) })
        var sent = start.count
        var failedAt: Int?
        while sent < 10 * limit {
            do {
                let result = try [UInt8(ascii: "a")].withUnsafeBytes { try parser.parseRequest($0) }
                XCTAssertNil(result)
                sent += 1
            } catch {
                XCTAssertEqual(error as? HTTPParseError, .headTooLarge)
                failedAt = sent + 1
                break
            }
        }
        XCTAssertEqual(failedAt, limit + 1)
    }

    func testAnEndlessHeaderInLargeChunksFailsOnTheChunkThatCrossesTheLimit() throws {
        var parser = HTTPHeadParser(maxHeadBytes: 1000)
        let chunk = [UInt8](repeating: UInt8(ascii: "a"), count: 400)
        XCTAssertNil(try Array("GET / HTTP/1.1\r\nX: ".utf8).withUnsafeBytes { try parser.parseRequest($0) })
        XCTAssertNil(try chunk.withUnsafeBytes { try parser.parseRequest($0) })
        XCTAssertNil(try chunk.withUnsafeBytes { try parser.parseRequest($0) })
        XCTAssertThrowsError(try chunk.withUnsafeBytes { try parser.parseRequest($0) }) {
            XCTAssertEqual($0 as? HTTPParseError, .headTooLarge)
        }
    }

    /// A chunk much larger than the limit is fine when the head inside it is within the limit:
    /// the rest is body or frames, not head.
    func testBytesAfterTheHeadDoNotCountTowardsTheLimit() throws {
        let head = Array(upgradeRequest.utf8)
        let frames = [UInt8](repeating: 0x82, count: 10 * head.count)
        let parsed = try XCTUnwrap(try parseRequest([head + frames], max: head.count))
        XCTAssertEqual(parsed.consumed, head.count)
    }

    func testEmptyLinesBeforeTheRequestLineCountTowardsTheLimit() {
        let padding = [UInt8](repeating: 0x0A, count: 2000)
        XCTAssertThrowsError(try parseRequest([padding], max: 1000)) {
            XCTAssertEqual($0 as? HTTPParseError, .headTooLarge)
        }
    }

    // MARK: Chunking independence

    private enum Outcome: Equatable {
        case head(method: String, target: String, version: HTTPVersion, headers: HTTPHeaders, end: Int)
        case failed(HTTPParseError)
        case incomplete
    }

    /// Feeds `bytes` in chunks of the given sizes; `end` is the head's end in `bytes`.
    private func outcome(_ bytes: [UInt8], chunkSizes: [Int], max: Int) -> Outcome {
        var parser = HTTPHeadParser(maxHeadBytes: max)
        var offset = 0
        var sizes = chunkSizes.makeIterator()
        while offset < bytes.count {
            let end = min(bytes.count, offset + (sizes.next() ?? bytes.count))
            do {
                if let (head, consumed) = try Array(bytes[offset..<end]).withUnsafeBytes({ try parser.parseRequest($0) }
                ) {
                    XCTAssertTrue((1...(end - offset)).contains(consumed))
                    return .head(
                        method: head.method, target: head.target, version: head.version, headers: head.headers,
                        end: offset + consumed)
                }
            } catch {
                return .failed(error as! HTTPParseError)
            }
            offset = end
        }
        return .incomplete
    }

    /// Generated heads (valid and broken) give the same outcome in one chunk and in random
    /// chunks: the carried scan state must not depend on where the chunks split.
    func testTheOutcomeDoesNotDependOnChunking() {
        let pieces = [
            "GET", " ", "/chat", " HTTP/1.1", "\r\n", "\n", "\r", "Host", ":", " a ", "\t", "X-Y", ": v", "\0", "\u{1}",
            "\u{00E9}",
            "\r\n\r\n", "HTTP/1.0", "*", "http://h/", ",",
        ].map { Array($0.utf8) }
        var generator = SplitMix64(seed: 0x5EED)
        var outcomes: [String: Int] = [:]
        for _ in 0..<3000 {
            var bytes = Array("GET / HTTP/1.1\r\n".utf8)
            if generator.next() % 4 == 0 { bytes = [] }
            for _ in 0..<Int(generator.next() % 24) { bytes += pieces[Int(generator.next() % UInt64(pieces.count))] }
            if generator.next() % 2 == 0 { bytes += Array("\r\n\r\n".utf8) }
            bytes += [0x81, 0x80]
            let max = 16 + Int(generator.next() % 200)
            let sizes = (0..<bytes.count).map { _ in 1 + Int(generator.next() % 7) }
            let whole = outcome(bytes, chunkSizes: [bytes.count], max: max)
            XCTAssertEqual(
                outcome(bytes, chunkSizes: sizes, max: max), whole,
                String(decoding: bytes, as: UTF8.self).debugDescription)
            switch whole {
            case .head: outcomes["head", default: 0] += 1
            case .failed(.headTooLarge): outcomes["tooLarge", default: 0] += 1
            case .failed(.malformed): outcomes["malformed", default: 0] += 1
            case .incomplete: outcomes["incomplete", default: 0] += 1
            }
        }
        // Every kind of outcome was exercised, so the comparison above meant something.
        XCTAssertEqual(outcomes.keys.sorted(), ["head", "incomplete", "malformed", "tooLarge"], "\(outcomes)")
    }

    // MARK: Responses

    func testParsesAResponseHeadAndLeavesTheFrames() throws {
        let text =
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            + "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n"
        let head = Array(text.utf8)
        var parser = HTTPHeadParser(maxHeadBytes: 1024)
        let bytes = head + frameBytes
        XCTAssertNil(try Array(bytes[..<40]).withUnsafeBytes { try parser.parseResponse($0) })
        let rest = Array(bytes[40...])
        let result = try XCTUnwrap(try rest.withUnsafeBytes { try parser.parseResponse($0) })
        XCTAssertEqual(result.consumed, head.count - 40)
        XCTAssertEqual(result.head.status, 101)
        XCTAssertEqual(result.head.reason, "Switching Protocols")
        XCTAssertEqual(result.head.version, HTTPVersion(major: 1, minor: 1))
        XCTAssertEqual(result.head.headers["sec-websocket-accept"], "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
    }

    func testAResponseMayHaveAnEmptyOrMissingReasonPhrase() throws {
        XCTAssertEqual(try parseResponse("HTTP/1.1 101\r\n\r\n")?.reason, "")
        XCTAssertEqual(try parseResponse("HTTP/1.1 404 \r\n\r\n")?.status, 404)
        XCTAssertEqual(try parseResponse("HTTP/1.0 200 OK, fine\r\nX: y\n\n")?.reason, "OK, fine")
    }

    func testRejectsMalformedStatusLines() {
        for line in [
            "HTTP/1.1 10 OK", "HTTP/1.1 1011 OK", "HTTP/1.1 abc OK", "HTTP/1.1  101 OK", "HTTP/1.1 099 OK",
            "ICY 200 OK",
            "HTTP/1.1", "HTTP/1.1 101 Bad\u{0001}Reason", "http/1.1 101 OK",
        ] {
            assertMalformedResponse(line + "\r\n\r\n")
        }
        assertMalformedResponse("HTTP/1.1 101 OK\r\nUpgrade websocket\r\n\r\n")
    }

    func testVersionsCompareByMajorThenMinor() {
        XCTAssertLessThan(HTTPVersion(major: 1, minor: 0), HTTPVersion(major: 1, minor: 1))
        XCTAssertLessThan(HTTPVersion(major: 1, minor: 9), HTTPVersion(major: 2, minor: 0))
        XCTAssertGreaterThanOrEqual(HTTPVersion.http1_1, HTTPVersion(major: 1, minor: 1))
        XCTAssertEqual(HTTPVersion.http1_1.description, "HTTP/1.1")
    }
}

final class HTTPHeadersTests: XCTestCase {
    func testLookupFoldsASCIICaseOnly() {
        let headers: HTTPHeaders = ["Content-Type": "text/plain", "\u{00C4}rger": "x"]
        XCTAssertEqual(headers["content-type"], "text/plain")
        XCTAssertEqual(headers["CONTENT-TYPE"], "text/plain")
        XCTAssertNil(headers["content-typ"])
        XCTAssertNil(headers["\u{00E4}rger"])
        XCTAssertTrue(headers.contains("\u{00C4}RGER"))
        XCTAssertFalse(headers.contains("Content-Length"))
    }

    func testAddKeepsEarlierLinesOfTheSameName() {
        var headers = HTTPHeaders()
        headers.add(name: "Set-Cookie", value: "a=1")
        headers.add(name: "X", value: "y")
        headers.add(name: "set-cookie", value: "b=2")
        XCTAssertEqual(headers.count, 3)
        XCTAssertEqual(headers["Set-Cookie"], "a=1")
        XCTAssertEqual(headers.values(for: "SET-COOKIE"), ["a=1", "b=2"])
    }

    func testReplaceOrAddLeavesOneLineWhereTheFirstWas() {
        var headers: HTTPHeaders = ["A": "1", "b": "2", "C": "3", "B": "4"]
        headers.replaceOrAdd(name: "B", value: "5")
        XCTAssertEqual(Array(headers).map { "\($0.name)=\($0.value)" }, ["A=1", "B=5", "C=3"])
        headers.replaceOrAdd(name: "D", value: "6")
        XCTAssertEqual(headers.count, 4)
        XCTAssertEqual(headers["d"], "6")
    }

    func testRemoveDropsEveryLineOfTheName() {
        var headers: HTTPHeaders = ["A": "1", "b": "2", "B": "3"]
        headers.remove(name: "B")
        XCTAssertEqual(headers.count, 1)
        XCTAssertFalse(headers.contains("b"))
        XCTAssertFalse(headers.isEmpty)
        headers.remove(name: "a")
        XCTAssertTrue(headers.isEmpty)
    }

    func testTokensJoinEveryLineAndDropEmptyElements() {
        var headers = HTTPHeaders()
        headers.add(name: "Connection", value: " keep-alive ,, \tUpgrade,")
        headers.add(name: "X", value: "ignored")
        headers.add(name: "connection", value: "close")
        XCTAssertEqual(headers.tokens(for: "CONNECTION"), ["keep-alive", "Upgrade", "close"])
        XCTAssertEqual(headers.tokens(for: "Missing"), [])
    }

    func testContainsTokenMatchesWholeTokensCaseInsensitively() {
        let headers: HTTPHeaders = ["Connection": "keep-alive, UPGRADE", "Upgrade": "websocket2, h2c"]
        XCTAssertTrue(headers.containsToken("upgrade", in: "connection"))
        XCTAssertFalse(headers.containsToken("keep", in: "Connection"))
        XCTAssertFalse(headers.containsToken("websocket", in: "Upgrade"))
        XCTAssertFalse(headers.containsToken("upgrade", in: "Missing"))
    }

    func testEqualityIsOrderedAndFoldsNameCase() {
        let a: HTTPHeaders = ["A": "1", "B": "2"]
        XCTAssertEqual(a, ["a": "1", "b": "2"])
        XCTAssertNotEqual(a, ["B": "2", "A": "1"])
        XCTAssertNotEqual(a, ["A": "1", "B": "x"])
        XCTAssertNotEqual(a, ["A": "1"])
    }

    func testDescriptionListsEveryLine() {
        let headers: HTTPHeaders = ["A": "1", "B": "2"]
        XCTAssertEqual(headers.description, "A: 1\nB: 2")
    }

    func testOnlyTokenNamesAndValuesWithoutLineBreaksAreWritable() {
        XCTAssertTrue(HTTPHeaders.isWritable(name: "X-Ok", value: "any value; with \"quotes\""))
        XCTAssertFalse(HTTPHeaders.isWritable(name: "X-Bad", value: "a\r\nSet-Cookie: x=1"))
        XCTAssertFalse(HTTPHeaders.isWritable(name: "X-Bad", value: "a\nb"))
        XCTAssertFalse(HTTPHeaders.isWritable(name: "X-Bad", value: "a\0b"))
        XCTAssertFalse(HTTPHeaders.isWritable(name: "X Bad", value: "a"))
        XCTAssertFalse(HTTPHeaders.isWritable(name: "X:Bad", value: "a"))
        XCTAssertFalse(HTTPHeaders.isWritable(name: "", value: "a"))
    }
}
