import XCTest

@testable import DispatchWebSocket

final class WebSocketCloseCodeTests: XCTestCase {
    /// RFC 6455 §7.4.1/§7.4.2 and the IANA registry, as plain lists.
    private let sendable: Set<UInt16> = Set(1000...1003).union(1007...1014).union(3000...4999)
    private let localOnly: Set<UInt16> = [1005, 1006, 1015]

    func testEveryCodeIsClassified() {
        for raw in Array(UInt16(0)...5000) + [5001, 9999, 65534, 65535] {
            let code = WebSocketCloseCode(rawValue: raw)
            XCTAssertEqual(code.isValidOnWire, sendable.contains(raw), "isValidOnWire \(raw)")
            XCTAssertEqual(code.isReservedForLocalUse, localOnly.contains(raw), "isReservedForLocalUse \(raw)")
            XCTAssertFalse(code.isValidOnWire && code.isReservedForLocalUse, "\(raw)")
            XCTAssertTrue(code.description.hasPrefix("\(raw) ("), code.description)
            XCTAssertTrue(code.description.hasSuffix(")"), code.description)
        }
    }

    func testNamedCodes() {
        let named: [(WebSocketCloseCode, UInt16, String)] = [
            (.normalClosure, 1000, "normal closure"), (.goingAway, 1001, "going away"),
            (.protocolError, 1002, "protocol error"), (.unsupportedData, 1003, "unsupported data"),
            (.noStatusReceived, 1005, "no status received"), (.abnormalClosure, 1006, "abnormal closure"),
            (.invalidFramePayloadData, 1007, "invalid frame payload data"),
            (.policyViolation, 1008, "policy violation"),
            (.messageTooBig, 1009, "message too big"), (.mandatoryExtension, 1010, "mandatory extension"),
            (.internalServerError, 1011, "internal server error"), (.serviceRestart, 1012, "service restart"),
            (.tryAgainLater, 1013, "try again later"), (.badGateway, 1014, "bad gateway"),
            (.tlsHandshakeFailure, 1015, "TLS handshake failure"),
        ]
        for (code, raw, meaning) in named {
            XCTAssertEqual(code.rawValue, raw)
            XCTAssertEqual(code, WebSocketCloseCode(rawValue: raw))
            XCTAssertEqual(code.description, "\(raw) (\(meaning))")
        }
        XCTAssertEqual(Set(named.map(\.0)).count, named.count)
        XCTAssertEqual(WebSocketCloseCode.normalClosure.description, "1000 (normal closure)")
        XCTAssertEqual(WebSocketCloseCode(rawValue: 4001).description, "4001 (private use)")
        XCTAssertEqual(WebSocketCloseCode(rawValue: 3000).description, "3000 (registered)")
        XCTAssertEqual(WebSocketCloseCode(rawValue: 1004).description, "1004 (reserved)")
    }

    func testIntegerLiteralsAndRawValues() {
        let code: WebSocketCloseCode = 4242
        XCTAssertEqual(code.rawValue, 4242)
        XCTAssertEqual(WebSocketCloseCode(rawValue: 1000), .normalClosure)
        var mutable = code
        mutable.rawValue = 1001
        XCTAssertEqual(mutable, .goingAway)
    }
}

final class ClosePayloadTests: XCTestCase {
    private func parse(_ bytes: [UInt8]) -> Result<(code: WebSocketCloseCode?, reason: String), ClosePayloadError> {
        bytes.withUnsafeBytes { ClosePayload.parse($0) }
    }

    private func parsed(_ bytes: [UInt8], file: StaticString = #filePath, line: UInt = #line) -> (
        code: WebSocketCloseCode?, reason: String
    )? {
        switch parse(bytes) {
        case .success(let value): return value
        case .failure(let error):
            XCTFail("unexpected \(error)", file: file, line: line)
            return nil
        }
    }

    private func failure(_ bytes: [UInt8]) -> ClosePayloadError? {
        if case .failure(let error) = parse(bytes) { return error }
        return nil
    }

    private func big(_ code: UInt16) -> [UInt8] { [UInt8(code >> 8), UInt8(code & 0xFF)] }

    func testEmptyPayloadHasNoCode() {
        let value = parsed([])
        XCTAssertNil(value?.code)
        XCTAssertEqual(value?.reason, "")
    }

    func testOneBytePayloadIsTruncated() {
        for byte in [UInt8(0x00), 0x03, 0xE8, 0xFF] {
            XCTAssertEqual(failure([byte]), .truncatedCode)
        }
    }

    func testCodesNotAllowedOnTheWireAreRejected() {
        for raw in Array(UInt16(0)...5000) + [5001, 65535] {
            let result = parse(big(raw) + Array("why".utf8))
            if WebSocketCloseCode(rawValue: raw).isValidOnWire {
                guard case .success(let value) = result else { return XCTFail("\(raw) should parse") }
                XCTAssertEqual(value.code?.rawValue, raw)
                XCTAssertEqual(value.reason, "why")
            } else {
                guard case .failure(let error) = result else { return XCTFail("\(raw) should fail") }
                XCTAssertEqual(error, .invalidCode(raw))
            }
        }
        // Codes are read big-endian: 0xE8 0x03 would be 1000 little-endian.
        XCTAssertEqual(failure([0xE8, 0x03]), .invalidCode(0xE803))
    }

    func testCodeWithoutReason() {
        let value = parsed(big(1001))
        XCTAssertEqual(value?.code, .goingAway)
        XCTAssertEqual(value?.reason, "")
    }

    func testReasonMustBeValidUTF8() {
        let bad: [[UInt8]] = [
            [0xC0, 0x80], [0xFF], [0x80], [0xED, 0xA0, 0x80], [0xF4, 0x90, 0x80, 0x80], [0xCE],
            Array("ok".utf8) + [0xE2, 0x82],
        ]
        for reason in bad {
            XCTAssertEqual(failure(big(1000) + reason), .invalidUTF8Reason, "\(reason)")
        }
        XCTAssertEqual(parsed(big(1000) + Array("κόσμε 😀".utf8))?.reason, "κόσμε 😀")
        // The code is checked before the reason.
        XCTAssertEqual(failure(big(1005) + [0xFF]), .invalidCode(1005))
    }

    func testEncoding() {
        XCTAssertEqual(ClosePayload.encode(code: .normalClosure, reason: ""), [0x03, 0xE8])
        XCTAssertEqual(ClosePayload.encode(code: .goingAway, reason: "bye"), [0x03, 0xE9] + Array("bye".utf8))
        XCTAssertEqual(ClosePayload.encode(code: 4999, reason: "é"), [0x13, 0x87, 0xC3, 0xA9])
    }

    func testReasonIsTruncatedAtAScalarBoundary() {
        let ascii122 = String(repeating: "a", count: 122)
        // 122 + 2 bytes does not fit in 123: the whole "é" goes.
        XCTAssertEqual(
            ClosePayload.encode(code: .normalClosure, reason: ascii122 + "é"), big(1000) + Array(ascii122.utf8))
        // 121 + 2 fits exactly.
        let ascii121 = String(repeating: "a", count: 121)
        XCTAssertEqual(ClosePayload.encode(code: .normalClosure, reason: ascii121 + "é").count, 125)
        // Exactly 123 and one more.
        XCTAssertEqual(ClosePayload.encode(code: .normalClosure, reason: String(repeating: "b", count: 123)).count, 125)
        XCTAssertEqual(ClosePayload.encode(code: .normalClosure, reason: String(repeating: "b", count: 124)).count, 125)

        // Scalars of every width at every phase relative to the limit.
        for scalar in ["é", "€", "😀"] {
            for fill in 100...123 {
                let reason = String(repeating: "x", count: fill) + String(repeating: scalar, count: 10)
                let payload = ClosePayload.encode(code: .policyViolation, reason: reason)
                let kept = Array(payload.dropFirst(2))
                let width = scalar.utf8.count
                let expectedCount = fill + min(10, (123 - fill) / width) * width
                XCTAssertEqual(kept.count, expectedCount, "\(scalar) after \(fill)")
                XCTAssertEqual(kept, Array(reason.utf8.prefix(expectedCount)), "\(scalar) after \(fill)")
                XCTAssertEqual(parsed(payload)?.reason, String(decoding: kept, as: UTF8.self))
            }
        }
    }

    func testRoundTrip() {
        let reasons = [
            "", "bye", "κόσμε", "😀😀😀", String(repeating: "ünïcödé ", count: 3), String(repeating: "z", count: 123),
        ]
        for code: WebSocketCloseCode in [
            .normalClosure, .goingAway, .protocolError, .messageTooBig, .badGateway, 3000, 4999,
        ] {
            for reason in reasons {
                let value = parsed(ClosePayload.encode(code: code, reason: reason))
                XCTAssertEqual(value?.code, code)
                XCTAssertEqual(value?.reason, reason)
            }
        }
    }

    func testErrorDescriptions() {
        XCTAssertFalse(ClosePayloadError.truncatedCode.description.isEmpty)
        XCTAssertTrue(ClosePayloadError.invalidCode(1005).description.contains("1005"))
        XCTAssertFalse(ClosePayloadError.invalidUTF8Reason.description.isEmpty)
    }
}
