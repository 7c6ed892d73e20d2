/// What we ask for and accept when negotiating permessage-deflate (RFC 7692), server or client.
///
/// "Server" and "client" name the *direction* a setting applies to, as in the RFC's parameter
/// names: ``serverMaxWindowBits`` is the window of the messages the server sends, whichever end
/// we are. The same value therefore means the same agreement on both ends.
///
/// ## Memory per connection
/// zlib needs about `(1 << (windowBits + 2)) + (1 << (memoryLevel + 9))` bytes to compress and
/// `1 << windowBits` to decompress, plus about 7 KiB of state per stream: 316 KiB per
/// connection at 15/8, which is how servers with context takeover reach gigabytes with a few
/// thousand connections. The defaults therefore
///
/// - reset the server's compressor after every message (``serverNoContextTakeover``): a server
///   holds no compression state between messages at all, borrows a compressor from a small
///   process-wide pool for the length of one `deflate` call, and a broadcast to many
///   connections is compressed once. The cost is a worse ratio for series of small, similar
///   messages, which are mostly below ``threshold`` anyway;
/// - let clients keep their context (browsers do) but with a 4 KiB window when the client lets
///   us choose (``clientMaxWindowBits`` = 12, as python websockets): about 11 KiB per connection
///   that has received a compressed message, instead of 39 KiB at 15;
/// - compress with the full 32 KiB window and memory level 8 (the best ratio and speed zlib
///   has), since that memory is held only during a `deflate` call.
///
/// ```swift
/// var configuration = WebSocketServer.Configuration()
/// configuration.perMessageDeflate = PerMessageDeflateOptions()      // off by default
/// configuration.perMessageDeflate?.compressionLevel = 1              // faster, less compression
/// ```
public struct PerMessageDeflateOptions: Sendable, Equatable {
    /// The largest LZ77 window (as a power of two, 9…15) of messages the server sends. A server
    /// compresses with at most this, and with less when the client asks for less; a client
    /// offering less than 15 asks the server for it (`server_max_window_bits`). A client that asks
    /// for 8 is declined: zlib cannot compress with an 8-bit window (it uses 9,
    /// madler/zlib#171), so the next offer is tried. Default: 15.
    public var serverMaxWindowBits: Int = 15

    /// The largest LZ77 window (9…15) of messages the client sends. A server answers a client
    /// that offers `client_max_window_bits` with this value (or the client's, if smaller), and
    /// decompresses with that window; a client compresses with at most this. Default: 12.
    public var clientMaxWindowBits: Int = 12

    /// Reset the server's compressor after every message (`server_no_context_takeover`).
    /// Always agreed when the client asks for it. Default: `true` (see the type's notes).
    public var serverNoContextTakeover: Bool = true

    /// Ask the client to reset its compressor after every message
    /// (`client_no_context_takeover`); the receiving end then frees its decompressor after each
    /// message too. Default: `false`.
    public var clientNoContextTakeover: Bool = false

    /// zlib's `memLevel` (1…9) for our compressor: more is faster and compresses a little better,
    /// at `1 << (memoryLevel + 9)` bytes. Default: 8.
    public var memoryLevel: Int = 8

    /// zlib's compression level, 0 (store) to 9 (best, slowest). Default: 6 (zlib's default).
    public var compressionLevel: Int = 6

    /// Messages smaller than this many bytes are sent uncompressed (RSV1 clear): compressing
    /// them costs more CPU than the few bytes it saves. Default: 1024, as ws.
    public var threshold: Int = 1024

    /// The defaults described above.
    public init() {}

    /// Settings with every value given; each is clamped to its valid range when used.
    public init(
        serverMaxWindowBits: Int = 15, clientMaxWindowBits: Int = 12, serverNoContextTakeover: Bool = true,
        clientNoContextTakeover: Bool = false, memoryLevel: Int = 8, compressionLevel: Int = 6, threshold: Int = 1024
    ) {
        self.serverMaxWindowBits = serverMaxWindowBits
        self.clientMaxWindowBits = clientMaxWindowBits
        self.serverNoContextTakeover = serverNoContextTakeover
        self.clientNoContextTakeover = clientNoContextTakeover
        self.memoryLevel = memoryLevel
        self.compressionLevel = compressionLevel
        self.threshold = threshold
    }

    var clampedServerWindowBits: Int { min(15, max(9, serverMaxWindowBits)) }
    var clampedClientWindowBits: Int { min(15, max(9, clientMaxWindowBits)) }
    var clampedMemoryLevel: Int { min(9, max(1, memoryLevel)) }
    var clampedCompressionLevel: Int { min(9, max(0, compressionLevel)) }
}
