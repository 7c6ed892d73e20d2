import XCTest

@testable import DispatchWebSocket

/// The examples of RFC 7692 §7.2.3, byte for byte, through our zlib wrappers and through the
/// state machine.
final class PerMessageDeflateRFCExampleTests: XCTestCase {
    static let hello = Array("Hello".utf8)

    static func parameters(takeover: Bool = true, windowBits: Int = 15) -> PerMessageDeflateParameters {
        PerMessageDeflateParameters(
            outboundWindowBits: windowBits, inboundWindowBits: windowBits, outboundNoContextTakeover: !takeover,
            inboundNoContextTakeover: !takeover, memoryLevel: 8, compressionLevel: 6, threshold: 0,
            header: "permessage-deflate")
    }

    /// A client-role machine (frames from a server are unmasked) with permessage-deflate.
    static func machine(
        _ output: RecordingOutput, takeover: Bool = true, configure: (inout WebSocketConfiguration) -> Void = { _ in }
    ) -> ConnectionStateMachine<RecordingOutput> {
        var configuration = WebSocketConfiguration()
        configure(&configuration)
        return ConnectionStateMachine(
            role: .client, configuration: configuration, output: output,
            deflate: PerMessageDeflate(parameters(takeover: takeover)))
    }

    static func feed(_ machine: ConnectionStateMachine<RecordingOutput>, _ bytes: [UInt8]) {
        var bytes = bytes
        bytes.withUnsafeMutableBytes { machine.receive($0) }
    }

    func testHelloCompressesToTheRFCBytes() throws {
        let deflater = try XCTUnwrap(ZlibDeflater(.init(windowBits: 15, memoryLevel: 8, level: 6)))
        let first = Self.hello.withUnsafeBytes { deflater.compress($0) }
        XCTAssertEqual(first, [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00])
        // §7.2.3.2: the same message again, with context takeover, refers back to the first.
        let second = Self.hello.withUnsafeBytes { deflater.compress($0) }
        XCTAssertEqual(second, [0xf2, 0x00, 0x11, 0x00, 0x00])
        // Without context takeover every message compresses alike.
        deflater.reset()
        XCTAssertEqual(
            Self.hello.withUnsafeBytes { deflater.compress($0) }, [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00])
    }

    func testTransformCompressesWithAndWithoutContextTakeover() {
        let takeover = PerMessageDeflate(Self.parameters(takeover: true))
        XCTAssertEqual(
            Self.hello.withUnsafeBytes { takeover.compress($0) }, [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00])
        XCTAssertEqual(Self.hello.withUnsafeBytes { takeover.compress($0) }, [0xf2, 0x00, 0x11, 0x00, 0x00])
        let none = PerMessageDeflate(Self.parameters(takeover: false))
        for _ in 0..<3 {
            XCTAssertEqual(
                Self.hello.withUnsafeBytes { none.compress($0) }, [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00])
        }
    }

    /// §7.2.3.1: one compressed message in one frame.
    func testSingleFrameMessageInflates() {
        let output = RecordingOutput()
        let machine = Self.machine(output)
        Self.feed(machine, [0xc1, 0x07, 0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00])
        XCTAssertEqual(output.actions, [.message(.text("Hello"))])
    }

    /// §7.2.3.1: the same compressed data fragmented, RSV1 on the first frame only.
    func testFragmentedMessageInflates() {
        let output = RecordingOutput()
        let machine = Self.machine(output)
        Self.feed(machine, [0x41, 0x03, 0xf2, 0x48, 0xcd, 0x80, 0x04, 0xc9, 0xc9, 0x07, 0x00])
        XCTAssertEqual(output.actions, [.message(.text("Hello"))])
    }

    /// §7.2.3.2: the second "Hello" refers to the first (context takeover).
    func testSecondMessageUsesTheFirstOnesContext() {
        let output = RecordingOutput()
        let machine = Self.machine(output)
        Self.feed(
            machine, [0xc1, 0x07, 0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0xc1, 0x05, 0xf2, 0x00, 0x11, 0x00, 0x00])
        XCTAssertEqual(output.actions, [.message(.text("Hello")), .message(.text("Hello"))])
    }

    /// §7.2.3.3: a stored (uncompressed) DEFLATE block.
    func testUncompressedBlockInflates() {
        let output = RecordingOutput()
        let machine = Self.machine(output)
        Self.feed(machine, [0xc1, 0x0b, 0x00, 0x05, 0x00, 0xfa, 0xff, 0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x00])
        XCTAssertEqual(output.actions, [.message(.text("Hello"))])
    }

    /// §7.2.3.4: a message ending in a block with BFINAL set; the next message starts anew.
    func testFinalBlockEndsTheStreamAndTheNextMessageStartsAfresh() {
        let output = RecordingOutput()
        let machine = Self.machine(output)
        let bfinal: [UInt8] = [0xc1, 0x08, 0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00]
        Self.feed(machine, bfinal + bfinal)
        XCTAssertEqual(output.actions, [.message(.text("Hello")), .message(.text("Hello"))])
    }

    /// §7.2.3.5: two DEFLATE blocks in one message.
    func testTwoBlocksInOneMessageInflate() {
        let output = RecordingOutput()
        let machine = Self.machine(output)
        let payload: [UInt8] = [0xf2, 0x48, 0x05, 0x00, 0x00, 0x00, 0xff, 0xff, 0xca, 0xc9, 0xc9, 0x07, 0x00]
        Self.feed(machine, [0xc1, UInt8(payload.count)] + payload)
        XCTAssertEqual(output.actions, [.message(.text("Hello"))])
    }

    /// An 8-bit window is honoured when inflating (zlib is given 9, which decodes it).
    func testInflatesAPeersEightBitWindowStream() throws {
        var parameters = Self.parameters()
        parameters.inboundWindowBits = 8
        XCTAssertEqual(parameters.inflateWindowBits, 9)
        let transform = PerMessageDeflate(parameters)
        let compressed: [UInt8] = [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]
        let first = compressed.withUnsafeBytes { transform.inflate($0, limit: 100) }
        let tail = transform.finishMessage(limit: 100)
        guard case .inflated(let a) = first, case .inflated(let b) = tail else {
            return XCTFail("inflate failed: \(first) \(tail)")
        }
        XCTAssertEqual(a + b, 5)
        XCTAssertEqual(Array(transform.output), Self.hello)
        XCTAssertNotNil(ZlibInflater(windowBits: 9))
    }
}
