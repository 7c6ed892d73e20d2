import XCTest

@testable import DispatchWebSocket

/// Compressed messages through the pure state machine: RSV1 rules, limits while inflating,
/// UTF-8 on inflated bytes, split reads, frame delivery.
final class PerMessageDeflateStateMachineTests: XCTestCase {
    typealias Example = PerMessageDeflateRFCExampleTests

    private func compress(_ bytes: [UInt8], level: Int = 6) -> [UInt8] {
        let deflater = ZlibDeflater(.init(windowBits: 15, memoryLevel: 8, level: level))!
        return bytes.withUnsafeBytes { deflater.compress($0)! }
    }

    /// Unmasked server frames for a client-role machine.
    private func frame(_ opcode: WebSocketOpcode, _ payload: [UInt8], fin: Bool = true, rsv1: Bool = false) -> [UInt8] {
        WebSocketFrame(fin: fin, rsv1: rsv1, opcode: opcode, payload: payload).encoded()
    }

    private func assertFails(
        _ code: UInt16, _ bytes: [UInt8], deflate: Bool = true, file: StaticString = #filePath, line: UInt = #line,
        configure: (inout WebSocketConfiguration) -> Void = { _ in }
    ) {
        let output = RecordingOutput()
        var configuration = WebSocketConfiguration()
        configure(&configuration)
        let machine = ConnectionStateMachine(
            role: .client, configuration: configuration, output: output,
            deflate: deflate ? PerMessageDeflate(Example.parameters()) : nil)
        Example.feed(machine, bytes)
        XCTAssertEqual(output.sentCloseCode, code, "actions: \(output.actions)", file: file, line: line)
        XCTAssertEqual(machine.state, .closed, file: file, line: line)
        XCTAssertTrue(output.messages.isEmpty, file: file, line: line)
    }

    func testRSV1RulesAreProtocolErrors() {
        let hello = compress(Example.hello)
        assertFails(1002, frame(.text, hello, rsv1: true), deflate: false)  // not negotiated
        assertFails(1002, frame(.text, [0x61], fin: false) + frame(.continuation, hello, rsv1: true))
        assertFails(1002, frame(.ping, [], rsv1: true))  // control frames never
        assertFails(1002, frame(.close, [0x03, 0xe8], rsv1: true))
        var rsv2 = frame(.text, hello, rsv1: true)
        rsv2[0] |= 0x20
        assertFails(1002, rsv2)
    }

    func testInvalidDeflateDataIs1007() {
        assertFails(1007, frame(.binary, [0xff, 0xff, 0xff, 0xff, 0x00], rsv1: true))
    }

    func testInvalidUTF8InsideACompressedTextMessageIs1007() {
        assertFails(1007, frame(.text, compress([0x48, 0xc3, 0x28, 0x48]), rsv1: true))
        assertFails(1007, frame(.text, compress([0x48, 0xe2, 0x82]), rsv1: true))  // ends inside a sequence
    }

    /// A 64 MiB run of zeros compresses to ~65 KiB; with a 1 MiB limit it must close with 1009
    /// after inflating at most the limit, never allocating the whole message.
    func testZipBombClosesWith1009AtTheLimit() {
        let bomb = compress([UInt8](repeating: 0, count: 64 << 20), level: 9)
        XCTAssertLessThan(bomb.count, 100_000)
        let output = RecordingOutput()
        var configuration = WebSocketConfiguration()
        configuration.maxReceivedMessageSize = 1 << 20
        let deflate = PerMessageDeflate(Example.parameters())
        let machine = ConnectionStateMachine(
            role: .client, configuration: configuration, output: output, deflate: deflate)
        Example.feed(machine, frame(.binary, bomb, rsv1: true))
        XCTAssertEqual(output.sentCloseCode, 1009)
        XCTAssertLessThanOrEqual(deflate.output.count, (1 << 20) + 1)
        // Exactly at the limit is fine.
        let output2 = RecordingOutput()
        let machine2 = ConnectionStateMachine(
            role: .client, configuration: configuration, output: output2,
            deflate: PerMessageDeflate(Example.parameters()))
        Example.feed(machine2, frame(.binary, compress([UInt8](repeating: 7, count: 1 << 20)), rsv1: true))
        XCTAssertEqual(output2.messages, [.binary([UInt8](repeating: 7, count: 1 << 20))])
    }

    func testCompressedMessageSplitAtEveryByte() {
        var generator = SplitMix64(seed: 12)
        let text = (0..<600).map { _ in ["alpha ", "beta ", "gamma ", "δέλτα ", "😀 "].randomElement(using: &generator)!
        }.joined()
        let compressed = compress(Array(text.utf8))
        let cut = compressed.count / 2
        // Fragmented: first frame RSV1, second a continuation; a ping between them.
        let wire =
            frame(.text, Array(compressed[..<cut]), fin: false, rsv1: true) + frame(.ping, [1])
            + frame(.continuation, Array(compressed[cut...]))
        for split in 0...wire.count {
            let output = RecordingOutput()
            let machine = Example.machine(output)
            Example.feed(machine, Array(wire[..<split]))
            Example.feed(machine, Array(wire[split...]))
            XCTAssertEqual(output.messages, [.text(text)], "split at \(split)")
        }
        // Byte by byte.
        let output = RecordingOutput()
        let machine = Example.machine(output)
        for byte in wire { Example.feed(machine, [byte]) }
        XCTAssertEqual(output.actions, [.ping([1]), .message(.text(text))])
    }

    func testUncompressedMessagesStillWorkWhenNegotiated() {
        let output = RecordingOutput()
        let machine = Example.machine(output)
        Example.feed(
            machine,
            frame(.text, Array("plain".utf8)) + frame(.binary, compress([1, 2, 3]), rsv1: true) + frame(.binary, [9]))
        XCTAssertEqual(output.messages, [.text("plain"), .binary([1, 2, 3]), .binary([9])])
    }

    /// With assembleFragments off, each frame of a compressed message arrives with the bytes it
    /// inflated to and rsv1 clear.
    func testFramesOfACompressedMessageAreDeliveredInflated() {
        let text = String(repeating: "frames of a compressed message ", count: 40)
        let compressed = compress(Array(text.utf8))
        let cut = compressed.count / 2
        let output = RecordingOutput()
        let machine = Example.machine(output) { $0.assembleFragments = false }
        Example.feed(
            machine,
            frame(.text, Array(compressed[..<cut]), fin: false, rsv1: true)
                + frame(.continuation, Array(compressed[cut...])))
        let frames = output.actions.compactMap { action -> WebSocketFrame? in
            if case .frame(let frame) = action { return frame } else { return nil }
        }
        XCTAssertEqual(frames.count, 2)
        XCTAssertEqual(frames.map(\.opcode), [.text, .continuation])
        XCTAssertEqual(frames.map(\.fin), [false, true])
        XCTAssertFalse(frames.contains { $0.rsv1 })
        XCTAssertEqual(String(decoding: frames.flatMap(\.payload), as: UTF8.self), text)
    }

    func testNoContextTakeoverInflatesEachMessageAlone() {
        let output = RecordingOutput()
        let machine = Example.machine(output, takeover: false)
        let hello: [UInt8] = [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]
        Example.feed(machine, frame(.text, hello, rsv1: true) + frame(.text, hello, rsv1: true))
        XCTAssertEqual(output.messages, [.text("Hello"), .text("Hello")])
    }
}
