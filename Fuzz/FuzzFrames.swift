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
