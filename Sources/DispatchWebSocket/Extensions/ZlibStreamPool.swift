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
    // Flat lists searched linearly (a handful of settings in practice): unlike a dictionary of
    // arrays, taking and giving back mutate in place and allocate nothing.
    private var deflaters: [ZlibDeflater] = []
    private var inflaters: [ZlibInflater] = []

    /// A reset compressor for `key` (idle or new); `nil` when zlib cannot allocate one.
    func takeDeflater(_ key: ZlibDeflater.Key) -> ZlibDeflater? {
        let idle = lock.withLock { () -> ZlibDeflater? in
            guard let index = deflaters.lastIndex(where: { $0.key == key }) else { return nil }
            return deflaters.remove(at: index)
        }
        return idle ?? ZlibDeflater(key)
    }

    /// Gives a compressor back; it is reset here.
    func give(_ deflater: ZlibDeflater) {
        deflater.reset()
        lock.withLock {
            if deflaters.count(where: { $0.key == deflater.key }) < Self.maxIdlePerKey { deflaters.append(deflater) }
        }
    }

    /// A reset decompressor with `windowBits` (idle or new); `nil` when zlib cannot allocate one.
    func takeInflater(windowBits: Int) -> ZlibInflater? {
        let idle = lock.withLock { () -> ZlibInflater? in
            guard let index = inflaters.lastIndex(where: { $0.windowBits == windowBits }) else { return nil }
            return inflaters.remove(at: index)
        }
        return idle ?? ZlibInflater(windowBits: windowBits)
    }

    /// Gives a decompressor back; it is reset and its output buffer freed here.
    func give(_ inflater: ZlibInflater) {
        inflater.reset()
        inflater.releaseBuffer()
        lock.withLock {
            if inflaters.count(where: { $0.windowBits == inflater.windowBits }) < Self.maxIdlePerKey {
                inflaters.append(inflater)
            }
        }
    }
}
