import CZlib

/// One raw-deflate stream (zlib) that compresses whole messages for permessage-deflate
/// (RFC 7692 §7.2.1): each message ends with a sync flush whose `00 00 ff ff` tail is removed.
///
/// The output is written by zlib straight into the array that becomes the frame payload, sized
/// with `deflateBound` so one call fills it. Not thread-safe; used on one loop at a time.
final class ZlibDeflater {
    struct Key: Hashable {
        var windowBits: Int
        var memoryLevel: Int
        var level: Int
    }

    let key: Key
    private let stream: UnsafeMutablePointer<z_stream>

    /// A stream for `key`, or `nil` when zlib cannot allocate one.
    init?(_ key: Key) {
        self.key = key
        stream = .allocate(capacity: 1)
        stream.initialize(to: z_stream())
        guard dws_deflateInit2(stream, Int32(key.level), -Int32(max(9, key.windowBits)), Int32(key.memoryLevel)) == Z_OK
        else {
            stream.deallocate()
            return nil
        }
    }

    deinit {
        deflateEnd(stream)
        stream.deallocate()
    }

    /// Forgets the history (no context takeover), keeping the memory.
    func reset() {
        deflateReset(stream)
    }

    /// Compresses one message, sync-flushed, with the trailing `00 00 ff ff` removed. `nil` on
    /// a zlib error (the stream is then unusable).
    func compress(_ input: UnsafeRawBufferPointer) -> [UInt8]? {
        // deflateBound covers a whole stream; the sync flush adds an empty stored block.
        let bound = Int(deflateBound(stream, uLong(input.count))) + 16
        pendingInput = input.baseAddress.map { UnsafeMutablePointer(mutating: $0.assumingMemoryBound(to: UInt8.self)) }
        pendingCount = input.count
        var progress = Progress.more
        var output = [UInt8](unsafeUninitializedCapacity: bound) { buffer, initialized in
            (initialized, progress) = run(into: buffer.baseAddress!, capacity: bound)
        }
        while progress == .more {
            // Not reached with deflateBound's size; kept so a wrong bound costs a copy, not data.
            let more = [UInt8](unsafeUninitializedCapacity: 64 * 1024) { buffer, initialized in
                (initialized, progress) = run(into: buffer.baseAddress!, capacity: 64 * 1024)
            }
            output.append(contentsOf: more)
        }
        pendingInput = nil
        if progress == .failed { return nil }
        // An empty message right after a flush makes zlib write nothing; the receiver appends
        // 00 00 ff ff, so the payload must be the header byte of an empty stored block.
        if output.isEmpty { return [0x00] }
        let count = output.count
        if count >= 4 && output[count - 4] == 0 && output[count - 3] == 0 && output[count - 2] == 0xFF
            && output[count - 1] == 0xFF
        {
            output.removeLast(4)
        }
        return output
    }

    private enum Progress {
        case more, done, failed
    }

    /// The input of the `compress` call in progress (stored properties rather than captured
    /// locals, so that the call allocates nothing but its output).
    private var pendingInput: UnsafeMutablePointer<UInt8>?
    private var pendingCount = 0

    /// Runs deflate into `out` until the input is consumed and flushed or `out` is full.
    private func run(into out: UnsafeMutablePointer<UInt8>, capacity: Int) -> (Int, Progress) {
        stream.pointee.next_out = out
        stream.pointee.avail_out = uInt(min(capacity, Int(UInt32.max >> 1)))
        let start = Int(stream.pointee.avail_out)
        var progress = Progress.more
        while true {
            let take = min(pendingCount, Int(UInt32.max >> 1))
            stream.pointee.next_in = pendingInput
            stream.pointee.avail_in = uInt(take)
            let flush = take == pendingCount ? Z_SYNC_FLUSH : Z_NO_FLUSH
            let status = deflate(stream, flush)
            let consumed = take - Int(stream.pointee.avail_in)
            pendingCount -= consumed
            pendingInput = pendingInput.map { $0 + consumed }
            if status != Z_OK && status != Z_BUF_ERROR {
                progress = .failed
                break
            }
            if stream.pointee.avail_out == 0 { break }  // full: the caller adds room
            if pendingCount == 0 && flush == Z_SYNC_FLUSH {
                progress = .done
                break
            }
        }
        return (start - Int(stream.pointee.avail_out), progress)
    }
}
