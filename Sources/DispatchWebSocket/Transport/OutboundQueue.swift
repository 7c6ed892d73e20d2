#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Called once when a send's bytes have been handed to the kernel (`nil`) or can no longer be
/// (an error, e.g. the connection ended first). Runs on the connection's loop queue.
public typealias WebSocketSendCompletion = @Sendable (WebSocketError?) -> Void

/// Bytes that stay alive, unchanged, until they are written. Strings and arrays are kept as the
/// caller passed them, so a message is never copied to be sent (broadcast shares one buffer).
enum OutboundPayload: Sendable {
    case none
    case bytes([UInt8])
    /// Native UTF-8 storage (made contiguous when queued).
    case text(String)

    func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) -> R) -> R {
        switch self {
        case .none:
            return body(UnsafeRawBufferPointer(start: nil, count: 0))
        case .bytes(let bytes):
            return bytes.withUnsafeBytes(body)
        case .text(let string):
            return string.utf8.withContiguousStorageIfAvailable { body(UnsafeRawBufferPointer($0)) }!
        }
    }
}

/// Where a flush's gathered iovecs go: the socket itself, or a ``TLSStream`` that seals them
/// into records. Returns the bytes taken (of the plaintext, for TLS).
protocol OutboundSink {
    func write(iovecs: UnsafeMutablePointer<iovec>, count: Int) -> Socket.IOResult
}

extension Socket: OutboundSink {}

/// One frame (or raw bytes, before the upgrade) waiting to be written.
struct OutboundChunk {
    /// Encoded into the loop's header arena at write time; `nil` for raw bytes (HTTP).
    var header: FrameHeader?
    var payload: OutboundPayload
    var range: Range<Int>
    var completion: WebSocketSendCompletion?
    /// Bytes of this chunk already written (header first, then payload).
    var written = 0
    /// Ping and pong may overtake queued data frames (but never a frame already begun).
    var isPriority = false

    var headerSize: Int { header?.encodedSize ?? 0 }
    var size: Int { headerSize + range.count }
}

/// A FIFO of chunks written with one gathered `sendmsg` per flush: header and payload as
/// separate iovecs, never concatenated, partial writes resumed where they stopped.
struct OutboundQueue {
    private var chunks: [OutboundChunk] = []
    private var head = 0
    /// Bytes queued and not yet written, framing included.
    private(set) var bufferedAmount = 0

    var isEmpty: Bool { head == chunks.count }

    mutating func append(_ chunk: OutboundChunk) {
        bufferedAmount += chunk.size - chunk.written
        guard chunk.isPriority else {
            chunks.append(chunk)
            return
        }
        // After a chunk already partly written and after earlier priority chunks.
        var position = head
        if position < chunks.count && chunks[position].written > 0 { position += 1 }
        while position < chunks.count && chunks[position].isPriority { position += 1 }
        chunks.insert(chunk, at: position)
    }

    enum WriteOutcome {
        case drained
        case blocked
        case closed(WebSocketError?)
    }

    /// Writes as much as the kernel takes. Completions of written chunks are collected in
    /// `completed` (to be called once the queue is consistent again).
    mutating func write<Sink: OutboundSink>(
        to socket: Sink, loop: EventLoop, completed: inout [WebSocketSendCompletion]
    ) -> WriteOutcome {
        while !isEmpty {
            let count = min(chunks.count - head, EventLoop.maxGather)
            let result = gather(head, end: head + count, iovecCount: 0, socket: socket, loop: loop)
            switch result {
            case .bytes(let n):
                consume(n, completed: &completed)
                if n == 0 { return .blocked }
            case .wouldBlock:
                return .blocked
            case .endOfFile:
                return .closed(nil)
            case .error(let code):
                return .closed(WebSocketError(.socketError, "write failed", errno: code))
            }
        }
        return .drained
    }

    /// Recursion keeps every payload's storage pinned (`withUnsafeBytes`) while the iovecs that
    /// point into it are in use; depth is bounded by `EventLoop.maxGather`.
    private func gather<Sink: OutboundSink>(_ index: Int, end: Int, iovecCount: Int, socket: Sink, loop: EventLoop)
        -> Socket.IOResult
    {
        if index == end {
            return socket.write(iovecs: loop.iovecs, count: iovecCount)
        }
        let chunk = chunks[index]
        var iovecCount = iovecCount
        var skip = chunk.written
        if let header = chunk.header {
            let slot = loop.headerArena + (index - head) * FrameHeader.maxSize
            let size = header.write(to: slot)
            if skip < size {
                loop.iovecs[iovecCount] = iovec(iov_base: slot + skip, iov_len: size - skip)
                iovecCount += 1
                skip = 0
            } else {
                skip -= size
            }
        }
        return chunk.payload.withUnsafeBytes { bytes in
            var iovecCount = iovecCount
            let length = chunk.range.count - skip
            if length > 0 {
                let start = UnsafeMutableRawPointer(mutating: bytes.baseAddress!) + chunk.range.lowerBound + skip
                loop.iovecs[iovecCount] = iovec(iov_base: start, iov_len: length)
                iovecCount += 1
            }
            return gather(index + 1, end: end, iovecCount: iovecCount, socket: socket, loop: loop)
        }
    }

    private mutating func consume(_ written: Int, completed: inout [WebSocketSendCompletion]) {
        var remaining = written
        bufferedAmount -= written
        while remaining > 0 {
            let left = chunks[head].size - chunks[head].written
            if remaining >= left {
                remaining -= left
                if let completion = chunks[head].completion { completed.append(completion) }
                chunks[head] = OutboundChunk(header: nil, payload: .none, range: 0..<0)  // release the payload now
                head += 1
            } else {
                chunks[head].written += remaining
                remaining = 0
            }
        }
        compact()
    }

    private mutating func compact() {
        if head == chunks.count {
            chunks.removeAll(keepingCapacity: chunks.count <= 1024)
            head = 0
        } else if head >= 256 && head * 2 >= chunks.count {
            chunks.removeFirst(head)
            head = 0
        }
    }

    /// Empties the queue, returning the completions of everything that will never be written.
    mutating func removeAll() -> [WebSocketSendCompletion] {
        let pending = chunks[head...].compactMap(\.completion)
        chunks = []
        head = 0
        bufferedAmount = 0
        return pending
    }
}
