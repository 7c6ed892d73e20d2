import CZlib

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// One raw-inflate stream (zlib) for permessage-deflate, fed frame payloads as they arrive and
/// writing into its own growable buffer, which never grows past the limit it is given: a
/// message that would inflate beyond it is stopped after at most `limit + 1` bytes.
///
/// Not thread-safe; used on one loop at a time.
final class ZlibInflater {
    enum Outcome: Equatable {
        /// Bytes appended to ``output``.
        case inflated(Int)
        /// The output would exceed the limit.
        case tooBig
        /// The data is not a valid deflate stream.
        case invalid(String)
    }

    let windowBits: Int
    private let stream: UnsafeMutablePointer<z_stream>
    private var buffer: UnsafeMutableRawPointer?
    private var capacity = 0
    /// Bytes in ``output``.
    private(set) var count = 0
    /// The peer ended the deflate stream (a block with BFINAL set): the rest of the message is
    /// ignored and the stream must be reset before the next.
    private(set) var streamEnded = false

    /// A stream with a `windowBits` window (9…15), or `nil` when zlib cannot allocate one.
    init?(windowBits: Int) {
        self.windowBits = windowBits
        stream = .allocate(capacity: 1)
        stream.initialize(to: z_stream())
        guard dws_inflateInit2(stream, -Int32(windowBits)) == Z_OK else {
            stream.deallocate()
            return nil
        }
    }

    deinit {
        inflateEnd(stream)
        stream.deallocate()
        free(buffer)
    }

    /// The inflated bytes since the last ``clearOutput()``.
    var output: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: buffer, count: count) }

    /// Empties ``output``; its memory is kept only when small.
    func clearOutput() {
        count = 0
        if capacity > 16 * 1024 { releaseBuffer() }
    }

    /// Frees ``output``'s memory.
    func releaseBuffer() {
        free(buffer)
        buffer = nil
        capacity = 0
        count = 0
    }

    /// Forgets the history (the peer does not use context takeover, or ended its stream).
    func reset() {
        inflateReset(stream)
        streamEnded = false
    }

    /// Inflates `input`, appending to ``output`` at most `limit` bytes.
    func inflate(_ input: UnsafeRawBufferPointer, limit: Int) -> Outcome {
        let start = count
        let maxCount = limit >= Int.max - start - 1 ? Int.max - 1 : start + limit
        var next = input.baseAddress.map { UnsafeMutablePointer(mutating: $0.assumingMemoryBound(to: UInt8.self)) }
        var remaining = input.count
        while true {
            // After a final block (RFC 7692 §7.2.3.4) the rest of the message is ignored: the
            // example there itself carries a byte after it.
            if streamEnded { return .inflated(count - start) }
            if count == capacity {
                guard count <= maxCount else { return .tooBig }
                // One allocation for most messages (32 KiB is below malloc's mmap threshold),
                // then doubling; never past the limit.
                let wanted = max(capacity * 2, min(max(input.count * 8, 32 * 1024), 1 << 20))
                let newCapacity = min(wanted, maxCount + 1)
                guard let grown = realloc(buffer, newCapacity) else { return .invalid("out of memory inflating") }
                buffer = grown
                capacity = newCapacity
            }
            let take = min(remaining, Int(UInt32.max >> 1))
            let space = min(capacity - count, Int(UInt32.max >> 1))
            stream.pointee.next_in = next
            stream.pointee.avail_in = uInt(take)
            stream.pointee.next_out = buffer!.advanced(by: count).assumingMemoryBound(to: UInt8.self)
            stream.pointee.avail_out = uInt(space)
            let status = CZlib.inflate(stream, Z_SYNC_FLUSH)
            let consumed = take - Int(stream.pointee.avail_in)
            count += space - Int(stream.pointee.avail_out)
            remaining -= consumed
            next = next.map { $0 + consumed }
            if count > maxCount { return .tooBig }
            switch status {
            case Z_OK, Z_BUF_ERROR:
                // Done when all input is in and zlib had room left (nothing more is pending).
                if stream.pointee.avail_out != 0 && remaining == 0 { return .inflated(count - start) }
                if status == Z_BUF_ERROR && stream.pointee.avail_out != 0 {
                    return .invalid("inflate made no progress")
                }
            case Z_STREAM_END:
                streamEnded = true
            case Z_NEED_DICT:
                return .invalid("the deflate stream asks for a preset dictionary")
            case Z_MEM_ERROR:
                return .invalid("out of memory inflating")
            default:
                let message = stream.pointee.msg.map { String(cString: $0) } ?? "error \(status)"
                return .invalid("invalid deflate data: \(message)")
            }
        }
    }
}
