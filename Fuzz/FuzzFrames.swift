// libFuzzer target: arbitrary bytes into the server-side protocol state machine (frame parser,
// UTF-8 validator, message assembly, close handling), split into reads at fuzzer-chosen points.
// Built together with the library sources by Fuzz/run (one module, so internals are visible).

/// Accepts every action; asserts invariants the state machine must keep.
final class FuzzOutput: ConnectionStateMachineOutput {
    var closed = false
    var bytesDelivered = 0
    func sendControlFrame(_ opcode: WebSocketOpcode, payload: [UInt8]) {
        precondition(opcode.isControl && payload.count <= 125, "control frame too large")
    }
    func deliverMessage(_ message: WebSocketMessage) {
        precondition(!closed, "message after the transport closed")
        switch message {
        case .text(let text): bytesDelivered += text.utf8.count
        case .binary(let bytes): bytesDelivered += bytes.count
        }
    }
    func deliverFrame(_ frame: WebSocketFrame) { bytesDelivered += frame.payload.count }
    func deliverPing(_ payload: [UInt8]) { precondition(payload.count <= 125) }
    func deliverPong(_ payload: [UInt8]) { precondition(payload.count <= 125) }
    func reportError(_ error: WebSocketError) {}
    func closeTransport(_ mode: TransportCloseMode) { closed = true }
    func startCloseTimer() {}
}

#if FUZZ_DEFLATE
// Deflate mode (Fuzz/run frame-deflate): permessage-deflate negotiated, parameters from the first
// byte. With bit 0x10 the rest is compressed by our deflater and sent as one (fragmented) message,
// optionally with one byte corrupted, so that inflation, the size limit and UTF-8 validation of
// inflated bytes are reached with valid streams too; otherwise the bytes are frames as they are.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzDeflateFrames(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    guard size > 3 else { return 0 }
    let flags = data[0]
    var configuration = WebSocketConfiguration()
    configuration.assembleFragments = flags & 1 == 0
    configuration.maxReceivedMessageSize = flags & 4 == 0 ? 1 << 16 : 200
    let role: WebSocketRole = flags & 8 == 0 ? .server : .client
    let windowBits = 8 + Int(data[2] & 7)
    let parameters = PerMessageDeflateParameters(
        outboundWindowBits: windowBits, inboundWindowBits: windowBits, outboundNoContextTakeover: flags & 0x80 != 0,
        inboundNoContextTakeover: flags & 0x80 != 0, memoryLevel: 1 + Int(data[2] >> 4 & 7), compressionLevel: Int(data[2] >> 3 & 1) * 6,
        threshold: 0, header: "permessage-deflate")
    let output = FuzzOutput()
    let machine = ConnectionStateMachine(
        role: role, configuration: configuration, output: output, deflate: PerMessageDeflate(parameters))
    let body = UnsafeRawBufferPointer(start: data + 3, count: size - 3)
    var bytes: [UInt8]
    if flags & 0x10 != 0, parameters.canCompress {
        let compressed = PerMessageDeflate(parameters).compress(body) ?? []
        let fragment = max(1, Int(data[1]))
        bytes = []
        var start = 0
        repeat {
            let end = min(compressed.count, start + fragment)
            let frame = WebSocketFrame(
                fin: end == compressed.count, rsv1: start == 0, opcode: start == 0 ? (flags & 0x20 == 0 ? .text : .binary) : .continuation,
                maskingKey: role == .server ? WebSocketMaskingKey(1, 2, 3, 4) : nil, payload: Array(compressed[start..<end]))
            bytes += frame.encoded()
            start = end
        } while start < compressed.count
        if flags & 0x40 != 0, !bytes.isEmpty { bytes[Int(data[1]) % bytes.count] ^= data[2] | 1 }
    } else {
        bytes = Array(body)
    }
    let stride = max(1, Int(data[1]))
    bytes.withUnsafeMutableBytes { buffer in
        var offset = 0
        while offset < buffer.count {
            let end = min(buffer.count, offset + stride)
            machine.receive(UnsafeMutableRawBufferPointer(rebasing: buffer[offset..<end]))
            offset = end
        }
    }
    _ = machine.transportClosed()
    return 0
}
#else
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzFrames(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    guard size > 2 else { return 0 }
    // First byte: configuration; second: split stride.
    var configuration = WebSocketConfiguration()
    configuration.assembleFragments = data[0] & 1 == 0
    configuration.maxReceivedFrameSize = data[0] & 2 == 0 ? 1 << 20 : 300
    configuration.maxReceivedMessageSize = data[0] & 4 == 0 ? 1 << 20 : 500
    let role: WebSocketRole = data[0] & 8 == 0 ? .server : .client
    let stride = max(1, Int(data[1]))
    let output = FuzzOutput()
    let machine = ConnectionStateMachine(role: role, configuration: configuration, output: output)
    var bytes = Array(UnsafeBufferPointer(start: data + 2, count: size - 2))
    bytes.withUnsafeMutableBytes { buffer in
        var offset = 0
        while offset < buffer.count {
            let end = min(buffer.count, offset + stride)
            machine.receive(UnsafeMutableRawBufferPointer(rebasing: buffer[offset..<end]))
            offset = end
        }
    }
    precondition(output.bytesDelivered <= size, "delivered more bytes than received")
    _ = machine.transportClosed()
    // The public decoder must agree on whether framing alone is valid.
    var decoder = WebSocketFrameDecoder(maxFrameSize: 1 << 20)
    _ = try? decoder.decode(UnsafeBufferPointer(start: data + 2, count: size - 2))
    return 0
}
#endif
