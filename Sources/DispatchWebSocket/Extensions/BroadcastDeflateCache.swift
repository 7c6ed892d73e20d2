/// The compressed forms of one broadcast message, one per compressor setting, so that a
/// broadcast to many connections without context takeover compresses the message once per
/// setting rather than once per connection. Shared by the loops the broadcast reaches; the
/// first loop to need a setting compresses, under the lock, and the others reuse its bytes.
final class BroadcastDeflateCache: @unchecked Sendable {
    // @unchecked Sendable: `entries` is guarded by `lock`.
    private let lock = Lock()
    private var entries: [ZlibDeflater.Key: [UInt8]?] = [:]
    private var compressionCount = 0

    /// How many times the message was compressed (once per setting that reached it).
    var compressions: Int { lock.withLock { compressionCount } }

    init() {}

    /// The message compressed with `key` (and no context), `nil` when zlib failed.
    func compressed(_ payload: OutboundPayload, key: ZlibDeflater.Key) -> [UInt8]? {
        lock.withLock {
            if let entry = entries[key] { return entry }
            let result = payload.withUnsafeBytes { PerMessageDeflate.compressOnce($0, key: key) }
            compressionCount += 1
            entries[key] = .some(result)
            return result
        }
    }
}
