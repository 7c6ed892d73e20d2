/// The permessage-deflate transform of one connection (RFC 7692 §6–§7.2): compresses outgoing
/// messages and inflates incoming ones, frame by frame. The state machine calls it for messages
/// with RSV1 set, the connection for messages it sends.
///
/// zlib streams are created on first use and freed on ``release()`` (the connection closed).
/// Without context takeover in a direction the connection holds no stream for it between
/// messages: it borrows one from ``ZlibStreamPool`` for one message. Everything runs
/// synchronously on the connection's loop queue. Not thread-safe by itself.
final class PerMessageDeflate {
    let parameters: PerMessageDeflateParameters
    private var deflater: ZlibDeflater?
    private var inflater: ZlibInflater?
    private var released = false
    /// Whether the message now arriving had any compressed bytes yet.
    private var messageHasData = false

    init(_ parameters: PerMessageDeflateParameters) {
        self.parameters = parameters
    }

    /// The settings of our compressor; connections with the same key and no context takeover
    /// produce identical bytes for identical messages (broadcast compresses once per key).
    var deflaterKey: ZlibDeflater.Key {
        ZlibDeflater.Key(
            windowBits: parameters.outboundWindowBits, memoryLevel: parameters.memoryLevel,
            level: parameters.compressionLevel)
    }

    /// Whether a message of `count` bytes should be compressed.
    func shouldCompress(count: Int) -> Bool {
        !released && parameters.canCompress && count >= parameters.threshold
    }

    // MARK: Outbound

    /// One message compressed, tail removed; `nil` when zlib failed (send it uncompressed).
    func compress(_ bytes: UnsafeRawBufferPointer) -> [UInt8]? {
        if parameters.outboundNoContextTakeover {
            return Self.compressOnce(bytes, key: deflaterKey)
        }
        if deflater == nil { deflater = ZlibDeflater(deflaterKey) }
        guard let deflater else { return nil }
        let result = deflater.compress(bytes)
        if result == nil { self.deflater = nil }
        return result
    }

    /// Compresses one message with a pooled stream and no context (also used by broadcast).
    static func compressOnce(_ bytes: UnsafeRawBufferPointer, key: ZlibDeflater.Key) -> [UInt8]? {
        guard let deflater = ZlibStreamPool.shared.takeDeflater(key) else { return nil }
        guard let result = deflater.compress(bytes) else { return nil }  // a broken stream is dropped
        ZlibStreamPool.shared.give(deflater)
        return result
    }

    // MARK: Inbound

    /// Inflated bytes not yet taken (since the message or, with `assembleFragments` off, the
    /// frame began).
    var output: UnsafeRawBufferPointer { inflater?.output ?? UnsafeRawBufferPointer(start: nil, count: 0) }

    /// Inflates a chunk of a compressed message's payload, producing at most `limit` bytes.
    func inflate(_ chunk: UnsafeRawBufferPointer, limit: Int) -> ZlibInflater.Outcome {
        if inflater == nil {
            inflater =
                parameters.inboundNoContextTakeover
                ? ZlibStreamPool.shared.takeInflater(windowBits: parameters.inflateWindowBits)
                : ZlibInflater(windowBits: parameters.inflateWindowBits)
        }
        guard let inflater else { return .invalid("out of memory: no zlib stream") }
        messageHasData = messageHasData || chunk.count > 0
        return inflater.inflate(chunk, limit: limit)
    }

    /// The message's last frame ended: appends the `00 00 ff ff` the sender removed (RFC 7692
    /// §7.2.2), which flushes what zlib still holds.
    func finishMessage(limit: Int) -> ZlibInflater.Outcome {
        // An empty payload is an empty message (some peers send one; the tail alone would
        // begin a stored block and leave the stream mid-block).
        guard messageHasData else { return .inflated(0) }
        if let inflater, inflater.streamEnded { return .inflated(0) }
        return withUnsafeBytes(of: UInt32(0xFFFF_0000).littleEndian) { inflate($0, limit: limit) }
    }

    /// Empties ``output`` after it was delivered.
    func clearOutput() {
        inflater?.clearOutput()
    }

    /// The message was delivered: without context takeover (or after the peer ended its
    /// stream) the stream is reset and, pooled, given back.
    func endMessage() {
        messageHasData = false
        guard let inflater else { return }
        if parameters.inboundNoContextTakeover {
            self.inflater = nil
            ZlibStreamPool.shared.give(inflater)
        } else {
            if inflater.streamEnded { inflater.reset() }
            inflater.releaseBuffer()  // an idle connection keeps only zlib's own state
        }
    }

    /// Frees the zlib streams (the connection closed); nothing is compressed after this.
    func release() {
        released = true
        deflater = nil
        inflater = nil
    }
}
