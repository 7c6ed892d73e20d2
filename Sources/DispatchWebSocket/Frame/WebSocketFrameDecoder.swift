/// An incremental decoder that turns bytes into whole ``WebSocketFrame`` values.
///
/// Feed it bytes as they arrive, split anywhere; it returns every frame completed so far. It checks
/// only framing (a sane length, at most ``maxFrameSize``); protocol rules such as masking
/// requirements, reserved opcodes and control-frame limits belong to the connection.
///
/// ```swift
/// var decoder = WebSocketFrameDecoder()
/// for frame in try decoder.decode(bytesFromSocket) { print(frame.opcode, frame.payload.count) }
/// ```
public struct WebSocketFrameDecoder: Sendable {
    /// The largest payload accepted; a bigger frame is an error before any of it is buffered.
    public var maxFrameSize: Int

    private var parser = FrameParser()
    private var collector = Collector()

    /// Creates a decoder. `maxFrameSize` defaults to 16 MiB, the connection's default.
    public init(maxFrameSize: Int = 16 * 1024 * 1024) {
        self.maxFrameSize = maxFrameSize
    }

    /// Decodes as much of `bytes` as possible and returns the frames it completed.
    /// - Throws: ``WebSocketError`` with code `.protocolError` or `.messageTooBig`; the decoder
    ///   must not be used after an error.
    public mutating func decode(_ bytes: some Sequence<UInt8>) throws(WebSocketError) -> [WebSocketFrame] {
        var copy = Array(bytes)
        collector.maxFrameSize = maxFrameSize
        copy.withUnsafeMutableBytes { buffer in
            _ = parser.parse(buffer, delegate: &collector)
        }
        if let error = collector.error { throw error }
        defer { collector.frames.removeAll(keepingCapacity: true) }
        return collector.frames
    }

    private struct Collector: FrameParserDelegate, Sendable {
        var maxFrameSize = 0
        var current: WebSocketFrame?
        var frames: [WebSocketFrame] = []
        var error: WebSocketError?

        mutating func frameHeader(_ header: FrameHeader) -> Bool {
            guard header.payloadLength <= maxFrameSize else {
                error = WebSocketError(
                    .messageTooBig, "frame of \(header.payloadLength) bytes exceeds the limit of \(maxFrameSize)")
                return false
            }
            var frame = WebSocketFrame(
                fin: header.fin, rsv1: header.rsv & 0x40 != 0, rsv2: header.rsv & 0x20 != 0,
                rsv3: header.rsv & 0x10 != 0,
                opcode: header.opcode, maskingKey: header.maskingKey)
            frame.payload.reserveCapacity(header.payloadLength)
            current = frame
            return true
        }

        mutating func framePayload(_ chunk: UnsafeMutableRawBufferPointer, isEnd: Bool) -> Bool {
            current!.payload.append(contentsOf: chunk)
            if isEnd {
                frames.append(current!)
                current = nil
            }
            return true
        }

        mutating func frameError(_ reason: String) {
            error = WebSocketError(.protocolError, reason)
        }
    }
}
