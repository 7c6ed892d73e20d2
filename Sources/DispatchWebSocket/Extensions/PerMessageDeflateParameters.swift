/// What a permessage-deflate negotiation agreed, seen from our end: "outbound" is what we send,
/// "inbound" what the peer sends.
struct PerMessageDeflateParameters: Sendable, Equatable {
    /// The window we may compress with (8…15). 8 is agreed only where the RFC leaves us no
    /// choice (a server answering `client_max_window_bits=8`); zlib cannot produce such a stream,
    /// so we then send every message uncompressed, which the RFC always allows.
    var outboundWindowBits: Int
    /// The peer's window (8…15). We decompress with at least 9: zlib's raw inflate rejects 8, and
    /// a larger window always decodes a stream made with a smaller one.
    var inboundWindowBits: Int
    /// Reset our compressor after each message.
    var outboundNoContextTakeover: Bool
    /// The peer resets its compressor after each message, so ours may be freed after each one.
    var inboundNoContextTakeover: Bool
    var memoryLevel: Int
    var compressionLevel: Int
    var threshold: Int
    /// The agreed extension as in the server's `Sec-WebSocket-Extensions` response.
    var header: String

    /// Whether we can compress at all (zlib has no 8-bit window).
    var canCompress: Bool { outboundWindowBits >= 9 }
    /// The window to inflate with.
    var inflateWindowBits: Int { max(9, inboundWindowBits) }
}
