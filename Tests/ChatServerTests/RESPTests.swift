import XCTest

@testable import ChatRedis

/// The RESP2/RESP3 encoder and incremental decoder, on bytes alone.
final class RESPTests: XCTestCase {
    private func decodeAll(_ text: String, limits: RESPDecoder.Limits = RESPDecoder.Limits()) throws -> [RESPValue] {
        var decoder = RESPDecoder(limits: limits)
        decoder.append(Array(text.utf8))
        return try decoder.all()
    }

    func testCommandIsAnArrayOfBinarySafeBulkStrings() {
        XCTAssertEqual(
            String(decoding: RESPEncoder.encode(command: ["SET", "k", "a\r\nb"]), as: UTF8.self),
            "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$4\r\na\r\nb\r\n")
        XCTAssertEqual(
            String(decoding: RESPEncoder.encode(command: ["ECHO", "é"]), as: UTF8.self),
            "*2\r\n$4\r\nECHO\r\n$2\r\né\r\n")
    }

    func testRESP2Types() throws {
        XCTAssertEqual(
            try decodeAll("+OK\r\n-ERR no\r\n:-42\r\n$5\r\nhello\r\n$0\r\n\r\n$-1\r\n*-1\r\n"),
            [
                .simpleString("OK"), .error("ERR no"), .integer(-42), .bulkString(Array("hello".utf8)),
                .bulkString([]), .null, .null,
            ])
        XCTAssertEqual(
            try decodeAll("*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n*1\r\n:1\r\n"),
            [.array([.bulkString(Array("message".utf8)), .bulkString(Array("ch".utf8)), .array([.integer(1)])])])
    }

    func testRESP3Types() throws {
        let values = try decodeAll(
            "_\r\n#t\r\n#f\r\n,3.5\r\n,inf\r\n(3492890328409238509324850943850943825024385\r\n=15\r\ntxt:Some string\r\n"
                + "!9\r\nSYNTAX no\r\n%1\r\n+a\r\n:1\r\n~2\r\n:1\r\n:2\r\n>3\r\n+message\r\n+ch\r\n+hi\r\n"
                + "|1\r\n+ttl\r\n:3600\r\n+annotated\r\n")
        XCTAssertEqual(
            values,
            [
                .null, .boolean(true), .boolean(false), .double(3.5), .double(.infinity),
                .bigNumber("3492890328409238509324850943850943825024385"), .bulkString(Array("Some string".utf8)),
                .error("SYNTAX no"), .map([RESPPair(key: .simpleString("a"), value: .integer(1))]),
                .set([.integer(1), .integer(2)]),
                .push([.simpleString("message"), .simpleString("ch"), .simpleString("hi")]),
                .simpleString("annotated"),
            ])
    }

    /// Split anywhere, the same values come out, each exactly once.
    func testEveryByteSplitDecodesTheSameValues() throws {
        let text = "*2\r\n$5\r\nhel\r\n\r\n%1\r\n+k\r\n*2\r\n:7\r\n$-1\r\n+OK\r\n"
        let expected = try decodeAll(text)
        XCTAssertEqual(expected.count, 2)  // the array (a string with CRLF inside, and a map), then +OK
        let bytes = Array(text.utf8)
        for split in 0...bytes.count {
            var decoder = RESPDecoder()
            decoder.append(Array(bytes[..<split]))
            var values = try decoder.all()
            decoder.append(Array(bytes[split...]))
            values += try decoder.all()
            XCTAssertEqual(values, expected, "split at \(split)")
            XCTAssertEqual(decoder.bufferedCount, 0)
        }
    }

    func testIncompleteValueWaitsForMoreBytes() throws {
        var decoder = RESPDecoder()
        decoder.append(Array("$10\r\nhello".utf8))
        XCTAssertNil(try decoder.next())
        decoder.append(Array("world\r\n".utf8))
        XCTAssertEqual(try decoder.next(), .bulkString(Array("helloworld".utf8)))
    }

    func testMalformedInputIsAProtocolViolation() {
        for bad in [
            "?x\r\n", ":12a\r\n", "$3\r\nabcd\r\n", "+OK\rX", "$-2\r\n", "#x\r\n", ",nope\r\n", "=3\r\nabc\r\n",
        ] {
            XCTAssertThrowsError(try decodeAll(bad), bad) { error in
                guard case .protocolViolation = error as? RedisError else { return XCTFail("\(bad): \(error)") }
            }
        }
    }

    func testLimitsAreEnforcedBeforeBuffering() {
        var limits = RESPDecoder.Limits()
        limits.maxBulkLength = 10
        limits.maxElements = 3
        limits.maxDepth = 2
        limits.maxLineLength = 16
        for bad in ["$11\r\n", "*4\r\n", "*1\r\n*1\r\n*1\r\n*1\r\n:1\r\n", "+" + String(repeating: "a", count: 40)] {
            XCTAssertThrowsError(try decodeAll(bad, limits: limits), bad) { error in
                guard case .protocolViolation = error as? RedisError else { return XCTFail("\(bad): \(error)") }
            }
        }
        XCTAssertEqual(try decodeAll("$10\r\n0123456789\r\n", limits: limits), [.bulkString(Array("0123456789".utf8))])
    }

    func testRedisURLs() throws {
        XCTAssertEqual(try RedisURL(parsing: "redis://example.com"), RedisURL(host: "example.com"))
        XCTAssertEqual(
            try RedisURL(parsing: "redis://127.0.0.1:6380/2"), RedisURL(host: "127.0.0.1", port: 6380, database: 2))
        XCTAssertEqual(
            try RedisURL(parsing: "redis://:secret@[::1]:7000"), RedisURL(host: "::1", port: 7000, password: "secret"))
        XCTAssertEqual(try RedisURL(parsing: "redis://ada:pw@h/"), RedisURL(host: "h", username: "ada", password: "pw"))
        for bad in ["http://h", "redis://", "redis://h:0", "redis://h:x", "redis://h/db", "redis://[::1"] {
            XCTAssertThrowsError(try RedisURL(parsing: bad), bad)
        }
    }
}
