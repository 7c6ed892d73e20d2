/// Which side of the connection we are: it decides who masks and who closes TCP first.
enum WebSocketRole: Sendable {
    case server
    case client
}

/// How to end the TCP connection.
enum TransportCloseMode: Equatable {
    /// Now, writing only what the kernel takes at once (timeouts).
    case immediately
    /// Once everything queued is written (after a completed closing handshake, or `drop`).
    case afterFlush
    /// Write what is queued, half-close, and read until the peer closes too, so the peer gets
    /// our close frame even if it is still sending (after a protocol failure).
    case halfCloseAndDrain
}

/// What the state machine asks its connection to do. The connection implements it with
/// sockets and callbacks; tests implement it with a recorder.
protocol ConnectionStateMachineOutput: AnyObject {
    /// Queue a control frame the protocol requires (a close reply or a close after a failure).
    func sendControlFrame(_ opcode: WebSocketOpcode, payload: [UInt8])
    func deliverMessage(_ message: consuming WebSocketMessage)
    /// A data frame, when fragments are not assembled.
    func deliverFrame(_ frame: WebSocketFrame)
    /// A ping arrived while open; the connection runs the app's handler and answers it.
    func deliverPing(_ payload: [UInt8])
    func deliverPong(_ payload: [UInt8])
    /// The peer broke a rule; the connection is failing with the matching close code.
    func reportError(_ error: WebSocketError)
    /// Close the TCP connection in the given way.
    func closeTransport(_ mode: TransportCloseMode)
    /// Start the timer that ends a closing handshake the peer does not finish.
    func startCloseTimer()
}

/// The protocol logic of one connection (RFC 6455 §5–§7) with no sockets and no Dispatch:
/// bytes and local requests go in, actions come out through ``ConnectionStateMachineOutput``.
///
/// It validates every received frame (masking by role, RSV bits, opcodes, control-frame rules,
/// fragmentation order, sizes, UTF-8 incrementally so invalid text fails at the first bad byte),
/// assembles messages without buffering a single-frame message that arrived whole, and runs the
/// closing handshake: echo the peer's close, the server closes TCP, the client waits for it.
///
/// With permessage-deflate negotiated (RFC 7692) a message whose first frame has RSV1 set goes
/// through ``PerMessageDeflate``: each chunk is inflated as it arrives, the inflated size counts
/// against `maxReceivedMessageSize` while inflating, and UTF-8 is validated on the inflated
/// bytes. RSV1 elsewhere (a continuation or control frame, or without the extension) is 1002.
/// With `assembleFragments` off, each frame of a compressed message is delivered with its
/// inflated bytes (the part of the message it carried) and `rsv1` clear.
///
/// Confined to its connection's queue; not thread-safe by itself.
final class ConnectionStateMachine<Output: ConnectionStateMachineOutput>: FrameParserDelegate {
    enum State: Equatable {
        /// Data flows both ways.
        case open
        /// We sent a close frame and wait for the peer's. Received data is still delivered.
        case closeSent
        /// The closing handshake is over (or the connection failed); nothing more is parsed or sent.
        case closed
    }

    private(set) var state: State = .open
    let role: WebSocketRole
    private let maxFrameSize: Int
    private let maxMessageSize: Int
    private let assembleFragments: Bool
    /// The connection owns this machine, so it outlives it; `unowned(unsafe)` avoids a retain
    /// cycle and refcounting on every event.
    unowned(unsafe) let output: Output

    private var parser = FrameParser()
    private var header = FrameHeader(opcode: .continuation, payloadLength: 0)
    /// The opcode of the message in progress (text or binary), `nil` between messages.
    private var messageOpcode: WebSocketOpcode?
    private var messageLength = 0
    private var messageBuffer: [UInt8] = []
    private var frameBuffer: [UInt8] = []
    private var controlBuffer: [UInt8] = []
    private var utf8 = UTF8Validator()
    /// The negotiated permessage-deflate transform, `nil` without the extension.
    private let deflate: PerMessageDeflate?
    /// Whether the message in progress is compressed (its first frame had RSV1).
    private var messageCompressed = false

    /// The close code to report when the connection ends; `nil` while nothing has decided it.
    private(set) var closeCode: WebSocketCloseCode?
    private(set) var closeReason: String = ""
    /// The peer's close frame arrived (valid or not, nothing more will be read).
    private(set) var receivedClose = false

    init(role: WebSocketRole, configuration: WebSocketConfiguration, output: Output, deflate: PerMessageDeflate? = nil)
    {
        self.role = role
        self.deflate = deflate
        self.maxFrameSize = configuration.maxReceivedFrameSize
        self.maxMessageSize = configuration.maxReceivedMessageSize
        self.assembleFragments = configuration.assembleFragments
        self.output = output
    }

    /// Whether data messages may still be sent.
    var canSendData: Bool { state == .open }

    /// Whether a message (or a frame) has begun to arrive and is not complete yet.
    var isReceivingMessage: Bool { messageOpcode != nil || !parser.isAtFrameBoundary }

    // MARK: Inputs

    /// Feeds received bytes. The buffer is unmasked in place. Bytes after a close frame or a
    /// protocol failure are ignored.
    func receive(_ buffer: UnsafeMutableRawBufferPointer) {
        guard state != .closed else { return }
        var delegate = self
        _ = parser.parse(buffer, delegate: &delegate)
    }

    /// Starts the closing handshake. Returns `false` when it had already started.
    /// A code that may not appear on the wire sends a close frame without a status code.
    @discardableResult
    func close(code: WebSocketCloseCode, reason: String) -> Bool {
        guard state == .open else { return false }
        state = .closeSent
        output.sendControlFrame(.close, payload: Self.closePayload(code: code, reason: reason))
        output.startCloseTimer()
        return true
    }

    /// Ends the connection at once, sending a close frame first if none was sent yet.
    func drop(code: WebSocketCloseCode, reason: String, sendCloseFrame: Bool = true) {
        if state == .open && sendCloseFrame {
            output.sendControlFrame(.close, payload: Self.closePayload(code: code, reason: reason))
        }
        if state != .closed { recordClose(code, reason) }
        state = .closed
        output.closeTransport(.afterFlush)
    }

    /// The close timer fired: the peer did not finish the closing handshake (or, for a client,
    /// the server did not close TCP) in time.
    func closeTimerFired() {
        if state != .closed {
            recordClose(.abnormalClosure, "the peer did not answer the close frame in time")
            state = .closed
        }
        output.closeTransport(.immediately)
    }

    /// The TCP connection is gone. Returns the code and reason to report: the peer's close, our
    /// failure, or 1006 when no closing handshake decided them.
    func transportClosed() -> (code: WebSocketCloseCode, reason: String) {
        if state != .closed || closeCode == nil {
            recordClose(.abnormalClosure, "the connection closed without a closing handshake")
        }
        state = .closed
        return (closeCode ?? .abnormalClosure, closeReason)
    }

    /// Fails the connection for a local reason (e.g. a send queue over its limit).
    func fail(code: WebSocketCloseCode, reason: String) {
        if state == .open {
            output.sendControlFrame(.close, payload: Self.closePayload(code: code, reason: reason))
        }
        if state != .closed { recordClose(code, reason) }
        state = .closed
        output.closeTransport(.halfCloseAndDrain)
    }

    // MARK: FrameParserDelegate

    func frameHeader(_ header: FrameHeader) -> Bool {
        if header.rsv != 0 {
            guard deflate != nil, header.rsv == 0x40 else {
                return protocolFailure(.protocolError, "reserved bits set without a negotiated extension")
            }
            guard !header.opcode.isControl else { return protocolFailure(.protocolError, "compressed control frame") }
            guard header.opcode != .continuation else {
                return protocolFailure(.protocolError, "RSV1 set on a continuation frame")
            }
        }
        switch role {
        case .server where header.maskingKey == nil:
            return protocolFailure(.protocolError, "client frames must be masked")
        case .client where header.maskingKey != nil:
            return protocolFailure(.protocolError, "server frames must not be masked")
        default:
            break
        }
        let opcode = header.opcode
        guard opcode.isDefined else {
            return protocolFailure(.protocolError, "reserved opcode 0x\(String(opcode.rawValue, radix: 16))")
        }
        self.header = header
        if opcode.isControl {
            guard header.fin else { return protocolFailure(.protocolError, "fragmented control frame") }
            guard header.payloadLength <= 125 else {
                return protocolFailure(.protocolError, "control frame payload longer than 125 bytes")
            }
            controlBuffer.removeAll(keepingCapacity: true)
            return true
        }
        if opcode == .continuation {
            guard messageOpcode != nil else {
                return protocolFailure(.protocolError, "continuation frame without a message to continue")
            }
        } else {
            guard messageOpcode == nil else {
                return protocolFailure(.protocolError, "new data frame inside a fragmented message")
            }
            messageOpcode = opcode
            messageLength = 0
            messageCompressed = header.rsv != 0
            utf8.reset()
        }
        guard header.payloadLength <= maxFrameSize else {
            return protocolFailure(
                .messageTooBig, "frame of \(header.payloadLength) bytes exceeds maxReceivedFrameSize \(maxFrameSize)")
        }
        if messageCompressed { return true }  // the inflated size is counted while inflating
        guard header.payloadLength <= maxMessageSize - messageLength else {
            return protocolFailure(.messageTooBig, "message exceeds maxReceivedMessageSize \(maxMessageSize)")
        }
        messageLength += header.payloadLength
        return true
    }

    func framePayload(_ chunk: UnsafeMutableRawBufferPointer, isEnd: Bool) -> Bool {
        let header = self.header
        if header.opcode.isControl {
            controlBuffer.append(contentsOf: chunk)
            return isEnd ? handleControlFrame(header.opcode) : true
        }
        let isText = messageOpcode == .text
        let endsMessage = isEnd && header.fin
        if messageCompressed, let deflate {
            return compressedPayload(chunk, deflate, isEnd: isEnd, endsMessage: endsMessage, isText: isText)
        }
        if isText {
            guard utf8.validate(UnsafeRawBufferPointer(chunk)) else {
                return protocolFailure(.invalidUTF8, "text message is not valid UTF-8")
            }
            if endsMessage && !utf8.isAtBoundary {
                return protocolFailure(.invalidUTF8, "text message ends inside a UTF-8 sequence")
            }
        }
        if assembleFragments {
            if endsMessage && messageBuffer.isEmpty && chunk.count == messageLength {
                // The whole message arrived in this read: deliver it without an intermediate copy.
                output.deliverMessage(Self.message(isText: isText, bytes: UnsafeRawBufferPointer(chunk)))
            } else {
                if messageBuffer.isEmpty { messageBuffer.reserveCapacity(header.payloadLength) }
                messageBuffer.append(contentsOf: chunk)
                if endsMessage {
                    let bytes = messageBuffer
                    messageBuffer = []
                    output.deliverMessage(
                        isText ? .text(String(decoding: bytes, as: UTF8.self)) : .binary(bytes))
                }
            }
        } else {
            if frameBuffer.isEmpty { frameBuffer.reserveCapacity(header.payloadLength) }
            frameBuffer.append(contentsOf: chunk)
            if isEnd {
                let frame = WebSocketFrame(fin: header.fin, opcode: header.opcode, payload: frameBuffer)
                frameBuffer = []
                output.deliverFrame(frame)
            }
        }
        if endsMessage { messageOpcode = nil }
        return state != .closed
    }

    func frameError(_ reason: String) {
        _ = protocolFailure(.protocolError, reason)
    }

    // MARK: Helpers

    /// A chunk of a compressed message: inflate it (and at the message's end the tail), validate
    /// the new bytes, deliver at the frame's end (frames) or the message's end (messages).
    private func compressedPayload(
        _ chunk: UnsafeMutableRawBufferPointer, _ deflate: PerMessageDeflate, isEnd: Bool, endsMessage: Bool,
        isText: Bool
    ) -> Bool {
        if chunk.count > 0 {
            guard
                inflated(
                    deflate.inflate(UnsafeRawBufferPointer(chunk), limit: maxMessageSize - messageLength), deflate,
                    isText)
            else {
                return false
            }
        }
        if endsMessage {
            guard inflated(deflate.finishMessage(limit: maxMessageSize - messageLength), deflate, isText) else {
                return false
            }
            if isText && !utf8.isAtBoundary {
                return protocolFailure(.invalidUTF8, "text message ends inside a UTF-8 sequence")
            }
        }
        if assembleFragments {
            if endsMessage {
                let message = Self.message(isText: isText, bytes: deflate.output)
                deflate.endMessage()
                messageOpcode = nil
                output.deliverMessage(message)
            }
        } else if isEnd {
            let frame = WebSocketFrame(fin: header.fin, opcode: header.opcode, payload: Array(deflate.output))
            if endsMessage {
                deflate.endMessage()
                messageOpcode = nil
            } else {
                deflate.clearOutput()
            }
            output.deliverFrame(frame)
        }
        return state != .closed
    }

    /// Checks what one inflate call did: size, errors, UTF-8 of the new bytes.
    private func inflated(_ outcome: ZlibInflater.Outcome, _ deflate: PerMessageDeflate, _ isText: Bool) -> Bool {
        switch outcome {
        case .inflated(let count):
            messageLength += count
            if isText && count > 0 {
                let all = deflate.output
                guard utf8.validate(UnsafeRawBufferPointer(rebasing: all[(all.count - count)...])) else {
                    return protocolFailure(.invalidUTF8, "text message is not valid UTF-8")
                }
            }
            return true
        case .tooBig:
            return protocolFailure(.messageTooBig, "message inflates beyond maxReceivedMessageSize \(maxMessageSize)")
        case .invalid(let reason):
            return protocolFailure(.invalidCompressedData, "compressed message: \(reason)")
        }
    }

    private func handleControlFrame(_ opcode: WebSocketOpcode) -> Bool {
        switch opcode {
        case .ping:
            if state == .open { output.deliverPing(controlBuffer) }
            return true
        case .pong:
            output.deliverPong(controlBuffer)
            return true
        default:
            return handleClose()
        }
    }

    private func handleClose() -> Bool {
        receivedClose = true
        let parsed = controlBuffer.withUnsafeBytes { ClosePayload.parse($0) }
        switch parsed {
        case .failure(.invalidUTF8Reason):
            // The reason is text data that failed validation: 1007, as for a text message.
            return protocolFailure(.invalidUTF8, "invalid close frame: \(ClosePayloadError.invalidUTF8Reason)")
        case .failure(let error):
            return protocolFailure(.protocolError, "invalid close frame: \(error)")
        case .success(let (code, reason)):
            recordClose(code ?? .noStatusReceived, reason)
            if state == .open {
                // Echo the peer's status code (RFC 6455 §5.5.1); an empty close gets an empty reply.
                output.sendControlFrame(.close, payload: code.map { Self.closePayload(code: $0, reason: "") } ?? [])
            }
            state = .closed
            switch role {
            case .server: output.closeTransport(.afterFlush)
            case .client: output.startCloseTimer()  // the server closes TCP first (§7.1.1)
            }
            return false
        }
    }

    /// Fails the connection (§7.1.7): report, send a close with the matching code, close TCP.
    private func protocolFailure(_ code: WebSocketError.Code, _ reason: String) -> Bool {
        let closeCode: WebSocketCloseCode =
            code == .invalidUTF8 || code == .invalidCompressedData
            ? .invalidFramePayloadData : (code == .messageTooBig ? .messageTooBig : .protocolError)
        output.reportError(WebSocketError(code, reason))
        fail(code: closeCode, reason: reason)
        return false
    }

    private func recordClose(_ code: WebSocketCloseCode, _ reason: String) {
        closeCode = code
        closeReason = reason
    }

    static func closePayload(code: WebSocketCloseCode, reason: String) -> [UInt8] {
        code.isValidOnWire ? ClosePayload.encode(code: code, reason: reason) : []
    }

    static func message(isText: Bool, bytes: UnsafeRawBufferPointer) -> WebSocketMessage {
        isText
            ? .text(String(decoding: bytes.assumingMemoryBound(to: UInt8.self), as: UTF8.self)) : .binary(Array(bytes))
    }
}
