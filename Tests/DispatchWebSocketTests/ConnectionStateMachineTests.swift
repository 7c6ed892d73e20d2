import XCTest

@testable import DispatchWebSocket

/// Records what the state machine asks for, so every protocol rule is tested without sockets.
final class RecordingOutput: ConnectionStateMachineOutput {
    enum Action: Equatable {
        case send(WebSocketOpcode, [UInt8])
        case message(WebSocketMessage)
        case frame(WebSocketFrame)
        case ping([UInt8])
        case pong([UInt8])
        case error(WebSocketError.Code)
        case closeTransport(TransportCloseMode)
        case startCloseTimer
    }
    var actions: [Action] = []

    func sendControlFrame(_ opcode: WebSocketOpcode, payload: [UInt8]) { actions.append(.send(opcode, payload)) }
    func deliverMessage(_ message: WebSocketMessage) { actions.append(.message(message)) }
    func deliverFrame(_ frame: WebSocketFrame) { actions.append(.frame(frame)) }
    func deliverPing(_ payload: [UInt8]) { actions.append(.ping(payload)) }
    func deliverPong(_ payload: [UInt8]) { actions.append(.pong(payload)) }
    func reportError(_ error: WebSocketError) { actions.append(.error(error.code)) }
    func closeTransport(_ mode: TransportCloseMode) { actions.append(.closeTransport(mode)) }
    func startCloseTimer() { actions.append(.startCloseTimer) }

    /// The close code of the first close frame sent.
    var sentCloseCode: UInt16? {
        for case .send(.close, let payload) in actions where payload.count >= 2 {
            return UInt16(payload[0]) << 8 | UInt16(payload[1])
        }
        return nil
    }
    var messages: [WebSocketMessage] {
        actions.compactMap { if case .message(let m) = $0 { return m } else { return nil } }
    }
}

final class ConnectionStateMachineTests: XCTestCase {
    private var output = RecordingOutput()

    private func machine(
        role: WebSocketRole = .server, configure: (inout WebSocketConfiguration) -> Void = { _ in }
    ) -> ConnectionStateMachine<RecordingOutput> {
        var configuration = WebSocketConfiguration()
        configure(&configuration)
        return ConnectionStateMachine(role: role, configuration: configuration, output: output)
    }

    private func frame(
        _ opcode: WebSocketOpcode, _ payload: [UInt8], fin: Bool = true, masked: Bool = true, rsv1: Bool = false
    ) -> [UInt8] {
        WebSocketFrame(fin: fin, rsv1: rsv1, opcode: opcode, maskingKey: masked ? .random() : nil, payload: payload)
            .encoded()
    }

    private func feed(_ machine: ConnectionStateMachine<RecordingOutput>, _ bytes: [UInt8]) {
        var bytes = bytes
        bytes.withUnsafeMutableBytes { machine.receive($0) }
    }

    private func assertFails(
        with code: UInt16, _ bytes: [UInt8], role: WebSocketRole = .server, file: StaticString = #filePath,
        line: UInt = #line,
        configure: (inout WebSocketConfiguration) -> Void = { _ in }
    ) {
        output = RecordingOutput()
        let machine = machine(role: role, configure: configure)
        feed(machine, bytes)
        XCTAssertEqual(output.sentCloseCode, code, "actions: \(output.actions)", file: file, line: line)
        XCTAssertEqual(output.actions.last, .closeTransport(.halfCloseAndDrain), file: file, line: line)
        XCTAssertEqual(machine.state, .closed, file: file, line: line)
        XCTAssertEqual(machine.transportClosed().code.rawValue, code, file: file, line: line)
    }

    func testDeliversATextMessage() {
        let machine = machine()
        feed(machine, frame(.text, Array("héllo".utf8)))
        XCTAssertEqual(output.actions, [.message(.text("héllo"))])
    }

    func testAssemblesFragmentsWithAPingBetweenThem() {
        let machine = machine()
        feed(
            machine,
            frame(.binary, [1, 2], fin: false) + frame(.ping, [7]) + frame(.continuation, [3], fin: false)
                + frame(.continuation, [4]))
        XCTAssertEqual(output.actions, [.ping([7]), .message(.binary([1, 2, 3, 4]))])
    }

    func testAssemblesAMessageSplitAcrossReadsAtEveryByte() {
        let wire = frame(.text, Array("ab".utf8), fin: false) + frame(.continuation, Array("cdé".utf8))
        for split in 0...wire.count {
            output = RecordingOutput()
            let machine = machine()
            feed(machine, Array(wire[..<split]))
            feed(machine, Array(wire[split...]))
            XCTAssertEqual(output.actions, [.message(.text("abcdé"))], "split at \(split)")
        }
    }

    func testUnmaskedClientFrameIsAProtocolError() {
        assertFails(with: 1002, frame(.text, [0x41], masked: false))
    }

    func testMaskedServerFrameIsAProtocolErrorForAClient() {
        assertFails(with: 1002, frame(.text, [0x41], masked: true), role: .client)
    }

    func testReservedBitsWithoutAnExtensionAreAProtocolError() {
        assertFails(with: 1002, frame(.text, [0x41], rsv1: true))
    }

    func testReservedOpcodesAreAProtocolError() {
        for raw: UInt8 in [3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF] {
            assertFails(with: 1002, frame(WebSocketOpcode(rawValue: raw)!, []))
        }
    }

    func testFragmentedControlFrameIsAProtocolError() {
        assertFails(with: 1002, frame(.ping, [1], fin: false))
    }

    func testControlFrameOver125BytesIsAProtocolError() {
        assertFails(with: 1002, frame(.ping, Array(repeating: 0, count: 126)))
    }

    func testContinuationWithoutAMessageIsAProtocolError() {
        assertFails(with: 1002, frame(.continuation, [1]))
    }

    func testNewDataFrameInsideAFragmentedMessageIsAProtocolError() {
        assertFails(with: 1002, frame(.text, [0x41], fin: false) + frame(.text, [0x42]))
    }

    func testInvalidUTF8FailsAtTheFirstBadByteBeforeTheMessageEnds() {
        // The first fragment already holds an impossible byte; the message never finishes.
        assertFails(with: 1007, frame(.text, Array("ok".utf8) + [0xC0, 0x80], fin: false))
    }

    func testTextEndingInsideASequenceIsInvalid() {
        assertFails(with: 1007, frame(.text, [0xE2, 0x82]))
    }

    func testUTF8SequenceSplitAcrossFragmentsIsValid() {
        let machine = machine()
        feed(
            machine,
            frame(.text, [0xE2], fin: false) + frame(.continuation, [0x82], fin: false) + frame(.continuation, [0xAC]))
        XCTAssertEqual(output.actions, [.message(.text("€"))])
    }

    func testOversizedFrameIsRejectedWithoutBufferingIt() {
        // Only the header is fed: the verdict cannot depend on having buffered the payload.
        assertFails(with: 1009, FrameHeader(opcode: .binary, maskingKey: .random(), payloadLength: 2000).bytes) {
            $0.maxReceivedFrameSize = 1000
        }
    }

    func testOversizedMessageIsRejectedAtTheFrameThatExceedsIt() {
        assertFails(
            with: 1009,
            frame(.binary, Array(repeating: 1, count: 600), fin: false)
                + FrameHeader(opcode: .continuation, maskingKey: .random(), payloadLength: 600).bytes
        ) {
            $0.maxReceivedMessageSize = 1000
        }
    }

    func testCloseIsEchoedAndTheServerClosesTCP() {
        let machine = machine()
        feed(machine, frame(.close, [0x0B, 0xB8] + Array("bye".utf8)))  // 3000
        XCTAssertEqual(output.actions, [.send(.close, [0x0B, 0xB8]), .closeTransport(.afterFlush)])
        XCTAssertEqual(machine.transportClosed().code, WebSocketCloseCode(rawValue: 3000))
        XCTAssertFalse(machine.canSendData)
    }

    func testEmptyCloseGetsAnEmptyReplyAndReports1005() {
        let machine = machine()
        feed(machine, frame(.close, []))
        XCTAssertEqual(output.actions, [.send(.close, []), .closeTransport(.afterFlush)])
        XCTAssertEqual(machine.transportClosed().code, .noStatusReceived)
    }

    func testClientWaitsForTheServerToCloseTCP() {
        let machine = machine(role: .client)
        feed(machine, frame(.close, [0x03, 0xE8], masked: false))
        XCTAssertEqual(output.actions, [.send(.close, [0x03, 0xE8]), .startCloseTimer])
        machine.closeTimerFired()
        XCTAssertEqual(output.actions.last, .closeTransport(.immediately))
        XCTAssertEqual(machine.transportClosed().code, .normalClosure)
    }

    func testInvalidClosePayloadsAreProtocolErrors() {
        assertFails(with: 1002, frame(.close, [0x03]))  // one byte
        for code: UInt16 in [0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535] {
            assertFails(with: 1002, frame(.close, [UInt8(code >> 8), UInt8(code & 0xFF)]))
        }
    }

    func testACloseReasonThatIsNotUTF8Is1007() {
        // The reason is data that failed UTF-8 validation, like a text message (RFC 6455 §7.4.1).
        assertFails(with: 1007, frame(.close, [0x03, 0xE8, 0xFF]))
        assertFails(with: 1007, frame(.close, [0x03, 0xE8] + Array("ok".utf8) + [0xC3]))  // truncated sequence
        assertFails(with: 1007, frame(.close, [0x03, 0xE8, 0xED, 0xA0, 0x80]))  // a surrogate
    }

    func testLocalCloseWaitsForThePeersClose() {
        let machine = machine()
        machine.close(code: .goingAway, reason: "bye")
        XCTAssertEqual(output.actions, [.send(.close, [0x03, 0xE9] + Array("bye".utf8)), .startCloseTimer])
        XCTAssertFalse(machine.close(code: .normalClosure, reason: ""), "a second close does nothing")
        feed(machine, frame(.text, Array("late".utf8)) + frame(.close, [0x03, 0xE9]))
        XCTAssertEqual(output.actions.suffix(2), [.message(.text("late")), .closeTransport(.afterFlush)])
        XCTAssertEqual(machine.transportClosed().code, .goingAway)
    }

    func testCloseTimeoutReportsAbnormalClosure() {
        let machine = machine()
        machine.close(code: .normalClosure, reason: "")
        machine.closeTimerFired()
        XCTAssertEqual(output.actions.last, .closeTransport(.immediately))
        XCTAssertEqual(machine.transportClosed().code, .abnormalClosure)
    }

    func testTransportLossWithoutHandshakeReports1006() {
        let machine = machine()
        XCTAssertEqual(machine.transportClosed().code, .abnormalClosure)
    }

    func testBytesAfterCloseAreIgnored() {
        let machine = machine()
        feed(machine, frame(.close, [0x03, 0xE8]) + frame(.text, Array("x".utf8)))
        feed(machine, frame(.text, Array("y".utf8)))
        XCTAssertTrue(output.messages.isEmpty)
    }

    func testFrameModeDeliversEachDataFrameWithItsFinBit() {
        let machine = machine { $0.assembleFragments = false }
        feed(machine, frame(.text, Array("a".utf8), fin: false) + frame(.continuation, Array("b".utf8)))
        XCTAssertEqual(
            output.actions,
            [
                .frame(WebSocketFrame(fin: false, opcode: .text, payload: Array("a".utf8))),
                .frame(WebSocketFrame(fin: true, opcode: .continuation, payload: Array("b".utf8))),
            ])
    }

    func testFrameModeStillChecksOrderAndUTF8() {
        assertFails(with: 1002, frame(.continuation, [1])) { $0.assembleFragments = false }
        assertFails(with: 1007, frame(.text, [0xFF], fin: false)) { $0.assembleFragments = false }
    }

    func testPingsAfterOurCloseAreNotDelivered() {
        let machine = machine()
        machine.close(code: .normalClosure, reason: "")
        feed(machine, frame(.ping, [1]))
        XCTAssertFalse(output.actions.contains(.ping([1])))
    }
}
