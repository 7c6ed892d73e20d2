/// A small process-wide pool of reset zlib streams for connections without context takeover.
///
/// Such a connection needs a compressor only during one `deflate` call and a decompressor only
/// while one message arrives, so it borrows them here instead of holding ~7–300 KiB of zlib
/// state per connection between messages, and no stream is set up (allocated, its hash table
/// cleared) per message. At most ``maxIdlePerKey`` idle streams are kept per setting.
final class ZlibStreamPool: @unchecked Sendable {
    // @unchecked Sendable: the idle lists are guarded by `lock`; a borrowed stream is used by
    // one loop only until it is returned.
    static let shared = ZlibStreamPool()
    static let maxIdlePerKey = 4

    private let lock = Lock()
    private var deflaters: [ZlibDeflater.Key: [ZlibDeflater]] = [:]
    private var inflaters: [Int: [ZlibInflater]] = [:]

    /// A reset compressor for `key` (idle or new); `nil` when zlib cannot allocate one.
    func takeDeflater(_ key: ZlibDeflater.Key) -> ZlibDeflater? {
        lock.withLock { deflaters[key]?.popLast() } ?? ZlibDeflater(key)
    }

    /// Gives a compressor back; it is reset here.
    func give(_ deflater: ZlibDeflater) {
        deflater.reset()
        lock.withLock {
            if deflaters[deflater.key, default: []].count < Self.maxIdlePerKey { deflaters[deflater.key, default: []].append(deflater) }
        }
    }

    /// A reset decompressor with `windowBits` (idle or new); `nil` when zlib cannot allocate one.
    func takeInflater(windowBits: Int) -> ZlibInflater? {
        lock.withLock { inflaters[windowBits]?.popLast() } ?? ZlibInflater(windowBits: windowBits)
    }

    /// Gives a decompressor back; it is reset and its output buffer freed here.
    func give(_ inflater: ZlibInflater) {
        inflater.reset()
        inflater.releaseBuffer()
        lock.withLock {
            if inflaters[inflater.windowBits, default: []].count < Self.maxIdlePerKey {
                inflaters[inflater.windowBits, default: []].append(inflater)
            }
        }
    }
}
