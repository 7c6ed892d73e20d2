/// Sends one message in pieces, each written as a frame as soon as it is given: a file or a
/// generator can be streamed without holding the message whole. Made by
/// ``WebSocketConnection/makeMessageWriter(_:)``.
///
/// The first `write(_:)` sends a text or binary frame without FIN, later ones continuation
/// frames, ``end(completion:)`` (or `end(with:)`) the final one. ``abort(code:reason:)``
/// closes the connection, since a half-sent message cannot be taken back.
///
/// - **Ordering.** While a writer is open, other data messages of its connection (`sendUTF`,
///   `sendBytes`, `send`, data frames of `sendFrame`, broadcasts) wait in order behind it and
///   leave when it ends; they count against ``WebSocketConfiguration/maxQueuedBytes`` and in
///   ``WebSocketConnection/bufferedAmount`` while they wait. Ping, pong and close still go out
///   between its fragments. One writer at a time.
/// - **Backpressure.** Every write returns a ``WebSocketSendStatus`` like every send: on
///   ``WebSocketSendStatus/backpressure`` wait for ``WebSocketConnection/onDrain`` before the
///   next write. A write that would exceed `maxQueuedBytes` is handled by
///   ``WebSocketConfiguration/sendQueueOverflow`` (reported, never silently lost).
/// - **Text.** A text writer takes `String`s and raw UTF-8 bytes; bytes that end inside a
///   character keep that character's first bytes back until the next write, so every frame is
///   valid UTF-8 on its own. Invalid UTF-8 is refused (``WebSocketError/Code/invalidArgument``)
///   and the writer stays open.
/// - **Compression.** Fragments are sent uncompressed (RSV1 clear) even with permessage-deflate
///   negotiated, which RFC 7692 allows for any message.
/// - **Threading.** Methods are safe from any thread; completions run on the loop queue. A
///   writer that is never ended holds the sends behind it until the connection closes.
///
/// ```swift
/// let writer = try connection.makeMessageWriter(.binary)
/// func pump() {
///     while let chunk = try? file.read(upToCount: 64 * 1024), !chunk.isEmpty {
///         if writer.write([UInt8](chunk)) == .backpressure { return }  // onDrain calls pump again
///     }
///     writer.end()
/// }
/// connection.onDrain = { pump() }
/// pump()
/// ```
public final class WebSocketMessageWriter: @unchecked Sendable {
    // @unchecked Sendable: the mutable state below is confined to the connection's loop queue;
    // public methods hop there.

    /// The kind of message a writer sends.
    public enum Kind: Sendable, Equatable {
        /// A text message (opcode 1): UTF-8, checked as it is written.
        case text
        /// A binary message (opcode 2).
        case binary
    }

    /// The kind of message this writer sends.
    public let kind: Kind
    /// The connection the message goes out on.
    public let connection: WebSocketConnection

    /// A frame has been queued (later frames are continuations).
    private var started = false
    /// `end` or `abort` ran, or the connection ended.
    private var ended = false
    private var utf8 = UTF8Validator()
    /// The first bytes of a UTF-8 character that the last write split (at most 3).
    private var carry: [UInt8] = []
    /// Completions of writes whose bytes are all in `carry`: they complete with the next frame.
    private var carriedCompletions: [WebSocketSendCompletion] = []

    init(kind: Kind, connection: WebSocketConnection) {
        self.kind = kind
        self.connection = connection
    }

    /// Sends `bytes` as the next fragment. On a text writer they must be UTF-8 (a character may
    /// be split between writes). `completion` runs on the loop queue once the bytes are handed
    /// to the kernel, or with an error.
    ///
    /// - Returns: as for ``WebSocketConnection/sendBytes(_:compress:completion:)``; also
    ///   ``WebSocketSendStatus/dropped`` once the writer has ended.
    @discardableResult
    public func write(_ bytes: [UInt8], completion: WebSocketSendCompletion? = nil) -> WebSocketSendStatus {
        submit(.bytes(bytes), count: bytes.count, fin: false, completion)
    }

    /// Sends the UTF-8 of `text` as the next fragment.
    @discardableResult
    public func write(_ text: String, completion: WebSocketSendCompletion? = nil) -> WebSocketSendStatus {
        var text = text
        text.makeContiguousUTF8()
        return submit(.text(text), count: text.utf8.count, fin: false, completion)
    }

    /// Ends the message with an empty final frame (or, when nothing was written, sends an empty
    /// message). On a text writer holding a split character it fails with
    /// ``WebSocketError/Code/invalidArgument`` and the writer stays open.
    @discardableResult
    public func end(completion: WebSocketSendCompletion? = nil) -> WebSocketSendStatus {
        submit(.none, count: 0, fin: true, completion)
    }

    /// Ends the message with `bytes` as its final fragment.
    @discardableResult
    public func end(with bytes: [UInt8], completion: WebSocketSendCompletion? = nil) -> WebSocketSendStatus {
        submit(.bytes(bytes), count: bytes.count, fin: true, completion)
    }

    /// Ends the message with the UTF-8 of `text` as its final fragment.
    @discardableResult
    public func end(with text: String, completion: WebSocketSendCompletion? = nil) -> WebSocketSendStatus {
        var text = text
        text.makeContiguousUTF8()
        return submit(.text(text), count: text.utf8.count, fin: true, completion)
    }

    /// Gives up on the message: the peer cannot be told to discard the fragments it already has,
    /// so the connection starts its closing handshake with `code` (default 1011). Sends waiting
    /// behind the writer fail with ``WebSocketError/Code/notConnected``.
    public func abort(code: WebSocketCloseCode = .internalServerError, reason: String = "message aborted") {
        connection.onLoop { [self] in
            guard !ended else { return }
            connection.messageWriterEnded(self, flushWaiting: false)
            connection.machine.close(code: code, reason: reason)
        }
    }

    // MARK: Internals

    private func submit(_ payload: OutboundPayload, count: Int, fin: Bool, _ completion: WebSocketSendCompletion?)
        -> WebSocketSendStatus
    {
        guard connection.loop.inLoop else {
            connection.loop.async { [self, connection] in
                connection.loop.runEvent { _ = send(payload, count: count, fin: fin, completion) }
            }
            return connection.estimatedStatus(adding: count)
        }
        return send(payload, count: count, fin: fin, completion)
    }

    /// Called by the connection when it ends with the writer open.
    func connectionEnded() {
        ended = true
        let waiting = carriedCompletions
        carriedCompletions = []
        for completion in waiting { connection.notConnected(completion) }
    }

    /// On the loop: validates, frames and queues one piece.
    private func send(_ payload: OutboundPayload, count: Int, fin: Bool, _ completion: WebSocketSendCompletion?)
        -> WebSocketSendStatus
    {
        guard !ended else {
            completion?(WebSocketError(.invalidArgument, "the message writer has already ended"))
            return .dropped
        }
        guard connection.machine.canSendData else {
            connection.notConnected(completion)
            return .dropped
        }
        var payload = payload
        var range = 0..<count
        var held: [UInt8] = []
        var validator = utf8
        if kind == .text, case .bytes(let bytes) = payload {
            switch splitText(bytes, fin: fin) {
            case .invalid(let problem):
                completion?(WebSocketError(.invalidArgument, problem))
                return .dropped
            case .send(let newPayload, let newRange, let tail, let newValidator):
                (payload, range, held, validator) = (newPayload, newRange, tail, newValidator)
            }
        } else if kind == .text, !carry.isEmpty {
            // A string after a split character: the character must complete first.
            if case .text(let text) = payload {
                return send(.bytes(Array(text.utf8)), count: count, fin: fin, completion)
            }
            if fin {
                completion?(WebSocketError(.invalidArgument, "the text message would end inside a UTF-8 character"))
                return .dropped
            }
        }
        if range.isEmpty && !fin {
            // Nothing to frame yet (an empty write, or only part of a character).
            if let completion {
                if held.isEmpty && carry.isEmpty { completion(nil) } else { carriedCompletions.append(completion) }
            }
            (utf8, carry) = (validator, held)
            return connection.channel.bufferedAmount > connection.configuration.highWaterMark ? .backpressure : .queued
        }
        let configuration = connection.configuration
        let queued = connection.channel.bufferedAmount + connection.streaming.waitingBytes
        let threshold = configuration.fragmentOutgoingMessages ? max(1, configuration.fragmentationThreshold) : Int.max
        let frames = range.isEmpty ? 1 : 1 + (range.count - 1) / threshold
        guard queued == 0 || queued + range.count + frames * FrameHeader.maxSize <= configuration.maxQueuedBytes else {
            return connection.overflow(completion)
        }
        let completions = carriedCompletions + (completion.map { [$0] } ?? [])
        carriedCompletions = []
        var frameCompletion: WebSocketSendCompletion?
        if completions.count == 1 {
            frameCompletion = completions[0]
        } else if !completions.isEmpty {
            frameCompletion = { @Sendable error in for each in completions { each(error) } }
        }
        (utf8, carry) = (validator, held)
        var start = range.lowerBound
        repeat {
            let end = range.upperBound - start > threshold ? start + threshold : range.upperBound
            let isLast = end == range.upperBound
            let opcode: WebSocketOpcode = started ? .continuation : (kind == .text ? .text : .binary)
            started = true
            connection.enqueueFrame(
                FrameHeader(fin: fin && isLast, opcode: opcode, payloadLength: end - start),
                payload, start..<end, priority: false, isLast ? frameCompletion : nil)
            start = end
        } while start < range.upperBound
        if fin { connection.messageWriterEnded(self, flushWaiting: true) }
        return connection.channel.bufferedAmount > configuration.highWaterMark ? .backpressure : .queued
    }

    private enum TextPiece {
        case invalid(String)
        /// Frame `payload[range]` now, hold `tail` (a split character's first bytes) back;
        /// `validator` is the state after the piece.
        case send(OutboundPayload, Range<Int>, tail: [UInt8], validator: UTF8Validator)
    }

    /// Validates `bytes` after the carried bytes; what is framed now ends at a character
    /// boundary. Changes nothing: the caller commits once the piece is queued.
    private func splitText(_ bytes: [UInt8], fin: Bool) -> TextPiece {
        var validator = utf8
        guard bytes.withUnsafeBytes({ validator.validate($0) }) else {
            return .invalid("the bytes written to a text message are not valid UTF-8")
        }
        if fin && !validator.isAtBoundary {
            return .invalid("the text message would end inside a UTF-8 character")
        }
        if validator.isAtBoundary && carry.isEmpty {
            return .send(.bytes(bytes), 0..<bytes.count, tail: [], validator: validator)  // the common case: no copy
        }
        // Where the incomplete last character starts: its lead byte, or -1 when that is carried.
        var boundary = bytes.count
        if !validator.isAtBoundary {
            boundary -= 1
            while boundary >= 0 && bytes[boundary] & 0xC0 == 0x80 { boundary -= 1 }
        }
        if boundary < 0 {
            return .send(.none, 0..<0, tail: carry + bytes, validator: validator)
        }
        if carry.isEmpty {
            return .send(.bytes(bytes), 0..<boundary, tail: Array(bytes[boundary...]), validator: validator)
        }
        let joined = carry + bytes[..<boundary]  // a copy only when a write split a character
        return .send(.bytes(joined), 0..<joined.count, tail: Array(bytes[boundary...]), validator: validator)
    }
}

/// A send that waits behind an open ``WebSocketMessageWriter``.
enum WaitingSend {
    case message(
        WebSocketOpcode, OutboundPayload, count: Int, compress: Bool, precompressed: [UInt8]?, WebSocketSendCompletion?)
    case frame(WebSocketFrame, WebSocketSendCompletion?)

    var count: Int {
        switch self {
        case .message(_, _, let count, _, let precompressed, _): return precompressed?.count ?? count
        case .frame(let frame, _): return frame.payload.count
        }
    }
}

/// A connection's open writer and the sends waiting behind it. Loop-confined.
struct MessageStreaming {
    var writer: WebSocketMessageWriter?
    var waiting: [WaitingSend] = []
    /// Payload and framing bytes of `waiting`, counted against `maxQueuedBytes`.
    var waitingBytes = 0
}

extension WebSocketConnection {
    /// Opens a writer that sends one message in pieces (see ``WebSocketMessageWriter``). Any
    /// thread.
    ///
    /// - Throws: ``WebSocketError/Code/notConnected`` when the connection is closing or closed;
    ///   ``WebSocketError/Code/invalidArgument`` while another writer of this connection is open.
    public func makeMessageWriter(_ kind: WebSocketMessageWriter.Kind) throws(WebSocketError) -> WebSocketMessageWriter
    {
        let claimed = shared.withLock { state -> WebSocketError? in
            guard state.isOpen else { return WebSocketError(.notConnected, "the connection is closing or closed") }
            guard !state.writerOpen else {
                return WebSocketError(
                    .invalidArgument, "a message writer is already open on this connection: end it first")
            }
            state.writerOpen = true
            return nil
        }
        if let claimed { throw claimed }
        let writer = WebSocketMessageWriter(kind: kind, connection: self)
        // Through the loop, so sends made earlier from this thread leave before the message.
        onLoop { [self] in
            guard machine.canSendData, streaming.writer == nil else {
                shared.withLock { $0.writerOpen = false }
                return writer.connectionEnded()
            }
            streaming.writer = writer
        }
        return writer
    }

    /// A data send arrived while a writer is open: it waits, counted against `maxQueuedBytes`.
    func deferBehindWriter(_ send: WaitingSend) -> WebSocketSendStatus {
        let size = send.count + FrameHeader.maxSize
        let queued = channel.bufferedAmount + streaming.waitingBytes
        guard queued + size <= configuration.maxQueuedBytes else {
            switch send {
            case .message(_, _, _, _, _, let completion), .frame(_, let completion): return overflow(completion)
            }
        }
        streaming.waiting.append(send)
        streaming.waitingBytes += size
        waitingBytesMirror.store(streaming.waitingBytes, ordering: .relaxed)
        return queued + size > configuration.highWaterMark ? .backpressure : .queued
    }

    /// The writer ended (`end`: the waiting sends leave now, in order) or was aborted.
    func messageWriterEnded(_ writer: WebSocketMessageWriter, flushWaiting: Bool) {
        writer.connectionEnded()
        guard streaming.writer === writer else { return }
        streaming.writer = nil
        shared.withLock { $0.writerOpen = false }
        let waiting = streaming.waiting
        streaming.waiting = []
        streaming.waitingBytes = 0
        waitingBytesMirror.store(0, ordering: .relaxed)
        for send in waiting {
            switch send {
            case .message(let opcode, let payload, let count, let compress, let precompressed, let completion):
                if flushWaiting {
                    _ = enqueueMessage(
                        opcode, payload, count: count, compress: compress, precompressed: precompressed, admitted: true,
                        completion)
                } else {
                    notConnected(completion)
                }
            case .frame(let frame, let completion):
                guard flushWaiting, machine.canSendData else {
                    notConnected(completion)
                    continue
                }
                enqueueFrame(
                    FrameHeader(
                        fin: frame.fin, rsv: frame.rsvBits, opcode: frame.opcode, payloadLength: frame.payload.count),
                    .bytes(frame.payload), 0..<frame.payload.count, priority: false, completion)
            }
        }
    }

    /// The connection ended: an open writer and the sends behind it fail.
    func failStreaming() {
        if let writer = streaming.writer {
            messageWriterEnded(writer, flushWaiting: false)
        }
    }
}
