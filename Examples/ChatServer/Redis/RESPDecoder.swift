/// An incremental RESP2/RESP3 parser: feed it bytes as they arrive, take whole values out.
///
/// Pure (no sockets, no Dispatch). Every size it accepts is bounded by ``Limits``: a value
/// beyond them, or bytes that are not RESP, throw ``RedisError/protocolViolation(_:)`` and the
/// decoder must not be used again (the connection is dropped). RESP3 attribute maps (`|`) are
/// parsed and dropped: they annotate the value that follows.
public struct RESPDecoder: Sendable {
    /// Bounds on what a server may send; each has a default far above what a chat needs.
    public struct Limits: Sendable {
        /// The longest bulk, verbatim or blob-error string. Default: 64 MiB (Redis itself allows
        /// up to 512 MiB; a chat never sends that much).
        public var maxBulkLength = 64 * 1024 * 1024
        /// The most elements in one array, set, map or push. Default: 1,048,576.
        public var maxElements = 1 << 20
        /// The deepest nesting of aggregates. Default: 32.
        public var maxDepth = 32
        /// The longest line (simple string, error, number, length header). Default: 64 KiB.
        public var maxLineLength = 64 * 1024
        /// The defaults.
        public init() {}
    }

    /// The bounds this decoder enforces.
    public let limits: Limits
    private var buffer: [UInt8] = []
    private var start = 0

    /// A decoder with nothing buffered.
    public init(limits: Limits = Limits()) {
        self.limits = limits
    }

    /// Bytes received and not yet consumed as values.
    public var bufferedCount: Int { buffer.count - start }

    /// Buffers bytes read from the server (copied: the caller's buffer may be reused).
    public mutating func append(_ bytes: UnsafeRawBufferPointer) {
        buffer.append(contentsOf: bytes)
    }

    /// Buffers bytes read from the server.
    public mutating func append(_ bytes: [UInt8]) {
        buffer.append(contentsOf: bytes)
    }

    /// The next complete value, or `nil` when more bytes are needed.
    public mutating func next() throws(RedisError) -> RESPValue? {
        var index = start
        guard let value = try parse(at: &index, depth: 0) else {
            try checkIncompleteLine()
            return nil
        }
        start = index
        if start == buffer.count {
            buffer.removeAll(keepingCapacity: buffer.count <= 64 * 1024)
            start = 0
        } else if start >= 64 * 1024 && start * 2 >= buffer.count {
            buffer.removeFirst(start)
            start = 0
        }
        return value
    }

    /// Everything decodable now.
    public mutating func all() throws(RedisError) -> [RESPValue] {
        var values: [RESPValue] = []
        while let value = try next() { values.append(value) }
        return values
    }

    /// A line that has grown past the limit without its CRLF will never be valid.
    private func checkIncompleteLine() throws(RedisError) {
        if buffer.count - start > limits.maxLineLength, !buffer[start...].contains(10) {
            throw .protocolViolation("a line longer than \(limits.maxLineLength) bytes")
        }
    }

    // MARK: Parsing

    private func parse(at index: inout Int, depth: Int) throws(RedisError) -> RESPValue? {
        guard depth <= limits.maxDepth else { throw .protocolViolation("nesting deeper than \(limits.maxDepth)") }
        guard index < buffer.count else { return nil }
        let type = buffer[index]
        var cursor = index + 1
        guard let line = try readLine(at: &cursor) else { return nil }
        let value: RESPValue
        switch type {
        case UInt8(ascii: "+"): value = .simpleString(text(line))
        case UInt8(ascii: "-"): value = .error(text(line))
        case UInt8(ascii: ":"): value = .integer(try integer(line))
        case UInt8(ascii: "("):
            let digits = text(line)
            guard !digits.isEmpty, digits.drop(while: { $0 == "-" || $0 == "+" }).allSatisfy(\.isNumber),
                digits.count <= 1024
            else {
                throw .protocolViolation("bad big number")
            }
            value = .bigNumber(digits)
        case UInt8(ascii: ","):
            let textValue = text(line)
            guard
                let double = Double(
                    textValue.lowercased() == "-inf"
                        ? "-infinity" : textValue.lowercased() == "inf" ? "infinity" : textValue)
            else {
                throw .protocolViolation("bad double \(textValue.prefix(40))")
            }
            value = .double(double)
        case UInt8(ascii: "#"):
            switch text(line) {
            case "t": value = .boolean(true)
            case "f": value = .boolean(false)
            default: throw .protocolViolation("bad boolean")
            }
        case UInt8(ascii: "_"):
            guard line.isEmpty else { throw .protocolViolation("bad null") }
            value = .null
        case UInt8(ascii: "$"), UInt8(ascii: "="), UInt8(ascii: "!"):
            let length = try integer(line)
            if length == -1 && type == UInt8(ascii: "$") {
                value = .null
                break
            }
            guard length >= 0 else { throw .protocolViolation("negative length \(length)") }
            guard length <= limits.maxBulkLength else {
                throw .protocolViolation("a string of \(length) bytes (limit \(limits.maxBulkLength))")
            }
            let count = Int(length)
            guard buffer.count - cursor >= count + 2 else { return nil }
            guard buffer[cursor + count] == 13, buffer[cursor + count + 1] == 10 else {
                throw .protocolViolation("a string not followed by CRLF")
            }
            var bytes = Array(buffer[cursor..<(cursor + count)])
            cursor += count + 2
            if type == UInt8(ascii: "!") {
                value = .error(String(decoding: bytes, as: UTF8.self))
            } else {
                if type == UInt8(ascii: "=") {  // "txt:" or "mkd:" then the text
                    guard bytes.count >= 4, bytes[3] == UInt8(ascii: ":") else {
                        throw .protocolViolation("bad verbatim string")
                    }
                    bytes.removeFirst(4)
                }
                value = .bulkString(bytes)
            }
        case UInt8(ascii: "*"), UInt8(ascii: "~"), UInt8(ascii: ">"), UInt8(ascii: "%"), UInt8(ascii: "|"):
            let count = try integer(line)
            if count == -1 && type == UInt8(ascii: "*") {
                value = .null
                break
            }
            guard count >= 0 else { throw .protocolViolation("negative count \(count)") }
            guard count <= limits.maxElements else {
                throw .protocolViolation("an aggregate of \(count) elements (limit \(limits.maxElements))")
            }
            let isMap = type == UInt8(ascii: "%") || type == UInt8(ascii: "|")
            var items: [RESPValue] = []
            for _ in 0..<(Int(count) * (isMap ? 2 : 1)) {
                guard let item = try parse(at: &cursor, depth: depth + 1) else { return nil }
                items.append(item)
            }
            switch type {
            case UInt8(ascii: "*"): value = .array(items)
            case UInt8(ascii: "~"): value = .set(items)
            case UInt8(ascii: ">"): value = .push(items)
            case UInt8(ascii: "%"):
                value = .map(
                    stride(from: 0, to: items.count, by: 2).map { RESPPair(key: items[$0], value: items[$0 + 1]) })
            default:  // an attribute: drop it, the value it annotates follows
                guard let annotated = try parse(at: &cursor, depth: depth) else { return nil }
                value = annotated
            }
        default:
            throw .protocolViolation("unknown type byte 0x\(String(type, radix: 16))")
        }
        index = cursor
        return value
    }

    /// The bytes up to the next CRLF (advancing past it), or `nil` when it has not arrived.
    private func readLine(at cursor: inout Int) throws(RedisError) -> ArraySlice<UInt8>? {
        var end = cursor
        let limit = min(buffer.count, cursor + limits.maxLineLength + 1)
        while end < limit && buffer[end] != 13 { end += 1 }
        if end == limit {
            if limit - cursor > limits.maxLineLength {
                throw .protocolViolation("a line longer than \(limits.maxLineLength) bytes")
            }
            return nil
        }
        guard end + 1 < buffer.count else { return nil }
        guard buffer[end + 1] == 10 else { throw .protocolViolation("CR not followed by LF") }
        let line = buffer[cursor..<end]
        cursor = end + 2
        return line
    }

    private func text(_ line: ArraySlice<UInt8>) -> String { String(decoding: line, as: UTF8.self) }

    private func integer(_ line: ArraySlice<UInt8>) throws(RedisError) -> Int64 {
        guard let value = Int64(text(line)) else { throw .protocolViolation("bad integer \(text(line).prefix(40))") }
        return value
    }
}
