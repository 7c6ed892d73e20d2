import XCTest

@testable import DispatchWebSocket

final class FrameCodingTests: XCTestCase {
    private func sampleFrames() -> [WebSocketFrame] {
        [
            WebSocketFrame(opcode: .text, payload: Array("Hello".utf8)),
            WebSocketFrame(
                fin: false, opcode: .binary, maskingKey: WebSocketMaskingKey(1, 2, 3, 4), payload: [0, 1, 2]),
            WebSocketFrame(opcode: .continuation, payload: []),
            WebSocketFrame(
                opcode: .ping, maskingKey: WebSocketMaskingKey(0xFF, 0, 0x80, 7),
                payload: Array(repeating: 9, count: 125)),
            WebSocketFrame(opcode: .binary, payload: (0..<126).map { UInt8($0 & 0xFF) }),
            WebSocketFrame(
                rsv1: true, rsv3: true, opcode: .binary, maskingKey: .random(),
                payload: (0..<65535).map { UInt8($0 % 251) }),
            WebSocketFrame(opcode: .binary, payload: (0..<65536).map { UInt8($0 % 253) }),
            WebSocketFrame(opcode: .close, payload: [0x03, 0xE8]),
        ]
    }

    func testLengthUsesTheMinimalEncoding() {
        XCTAssertEqual(FrameHeader(opcode: .text, payloadLength: 125).bytes, [0x81, 125])
        XCTAssertEqual(FrameHeader(opcode: .text, payloadLength: 126).bytes, [0x81, 126, 0, 126])
        XCTAssertEqual(FrameHeader(opcode: .binary, payloadLength: 65535).bytes, [0x82, 126, 0xFF, 0xFF])
        XCTAssertEqual(FrameHeader(opcode: .binary, payloadLength: 65536).bytes, [0x82, 127, 0, 0, 0, 0, 0, 1, 0, 0])
        XCTAssertEqual(
            FrameHeader(fin: false, opcode: .ping, maskingKey: WebSocketMaskingKey(1, 2, 3, 4), payloadLength: 0).bytes,
            [0x09, 0x80, 1, 2, 3, 4])
    }

    func testRFCExampleMaskedHelloDecodes() throws {
        // RFC 6455 §5.7: a masked "Hello".
        var decoder = WebSocketFrameDecoder()
        let frames = try decoder.decode([0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58])
        XCTAssertEqual(frames.count, 1)
        XCTAssertEqual(frames[0].payload, Array("Hello".utf8))
        XCTAssertEqual(frames[0].maskingKey, WebSocketMaskingKey(0x37, 0xfa, 0x21, 0x3d))
        XCTAssertTrue(frames[0].fin)
    }

    func testEncodeThenDecodeRoundTripsEveryLengthClass() throws {
        let frames = sampleFrames()
        var decoder = WebSocketFrameDecoder()
        let decoded = try decoder.decode(frames.flatMap { $0.encoded() })
        XCTAssertEqual(decoded, frames)
    }

    func testDecodingSurvivesASplitAtEveryByte() throws {
        let frames = Array(sampleFrames().prefix(5)) + [WebSocketFrame(opcode: .text, payload: Array("tail".utf8))]
        let wire = frames.flatMap { $0.encoded() }
        for split in 0...wire.count {
            var decoder = WebSocketFrameDecoder()
            var decoded = try decoder.decode(wire[..<split])
            decoded += try decoder.decode(wire[split...])
            XCTAssertEqual(decoded, frames, "split at \(split)")
        }
    }

    func testDecodingByteByByte() throws {
        let frames = sampleFrames().prefix(5)
        var decoder = WebSocketFrameDecoder()
        var decoded: [WebSocketFrame] = []
        for byte in frames.flatMap({ $0.encoded() }) {
            decoded += try decoder.decode([byte])
        }
        XCTAssertEqual(decoded, Array(frames))
    }

    func testLengthWithMostSignificantBitSetIsAProtocolError() {
        var decoder = WebSocketFrameDecoder()
        XCTAssertThrowsError(try decoder.decode([0x82, 127, 0x80, 0, 0, 0, 0, 0, 0, 1])) { error in
            XCTAssertEqual((error as? WebSocketError)?.code, .protocolError)
        }
    }

    func testOversizedFrameFailsBeforeItsPayloadArrives() {
        var decoder = WebSocketFrameDecoder(maxFrameSize: 1000)
        XCTAssertThrowsError(try decoder.decode(FrameHeader(opcode: .binary, payloadLength: 1001).bytes)) { error in
            XCTAssertEqual((error as? WebSocketError)?.code, .messageTooBig)
        }
    }

    func testOpcodeClassification() {
        XCTAssertTrue(WebSocketOpcode.close.isControl)
        XCTAssertFalse(WebSocketOpcode.binary.isControl)
        for raw in UInt8(0)...15 {
            let opcode = WebSocketOpcode(rawValue: raw)!
            XCTAssertEqual(opcode.isDefined, [0, 1, 2, 8, 9, 10].contains(raw), "opcode \(raw)")
            XCTAssertEqual(opcode.isControl, raw >= 8)
        }
        XCTAssertNil(WebSocketOpcode(rawValue: 16))
    }
}
