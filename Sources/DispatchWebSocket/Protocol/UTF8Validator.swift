/// Incremental UTF-8 validation (RFC 3629) that carries state across fragments and fails at the
/// first invalid byte.
///
/// A text message must be valid UTF-8 (RFC 6455 §8.1), and an endpoint should fail the
/// connection as soon as it sees bytes that cannot become valid, even in the middle of a
/// fragmented message. So the validator keeps the state of an unfinished multi-byte sequence
/// between calls and rejects overlong forms, surrogates (U+D800–DFFF) and code points above
/// U+10FFFF at their first distinguishing byte (RFC 3629 §4: E0 needs A0–BF, ED 80–9F,
/// F0 90–BF and F4 80–8F as second byte; C0, C1 and F5–FF never occur).
///
/// How it is fast:
/// - While no sequence is open, ASCII is skipped 32 and then 8 bytes at a time by testing the
///   high bit of whole words.
/// - Everything else runs through a 9-state DFA in the "shift" layout: the table row for a byte
///   is a 64-bit word holding, for each state, the next state in a 6-bit field at the bit offset
///   that *is* that state. One step is `state = row[byte] &>> state`: a load that does not depend
///   on the state and a single shift (the CPU masks the shift count to 6 bits by itself, so the
///   garbage above bit 5 never matters). That is one cycle of latency per byte.
struct UTF8Validator {
    /// The DFA state as a bit offset (only the low 6 bits count); ``State/accept`` between scalars.
    private var state: UInt64 = State.accept

    /// Creates a validator at the start of a message.
    init() {}

    /// `true` when no multi-byte sequence is left incomplete (and nothing invalid was seen), so
    /// the bytes so far are complete UTF-8. Check it at the end of a message.
    var isAtBoundary: Bool { state == State.accept }

    /// Forgets everything, including a failure, to start the next message.
    mutating func reset() { state = State.accept }

    /// Validates the next bytes of a message.
    ///
    /// - Returns: `false` as soon as the bytes so far can no longer be a prefix of valid UTF-8:
    ///   overlong forms, surrogates, code points above U+10FFFF, stray continuation bytes, a
    ///   truncated sequence followed by a non-continuation byte, or the bytes C0, C1 and F5–FF.
    ///   Once `false`, it stays `false` until ``reset()``. A sequence cut off at the end of
    ///   `bytes` is not an error: it may continue in the next call (see ``isAtBoundary``).
    mutating func validate(_ bytes: UnsafeRawBufferPointer) -> Bool {
        if state == State.reject { return false }
        guard let base = bytes.baseAddress else { return true }
        let count = bytes.count
        let highBits: UInt64 = 0x8080_8080_8080_8080
        var s = state
        var i = 0
        Self.table.withUnsafeBufferPointer { table in
            let row = table.baseAddress.unsafelyUnwrapped
            while i < count {
                if s & 63 == State.accept {
                    // ASCII fast path, only valid between scalars.
                    while count &- i >= 32 {
                        let a = base.loadUnaligned(fromByteOffset: i, as: UInt64.self)
                        let b = base.loadUnaligned(fromByteOffset: i &+ 8, as: UInt64.self)
                        let c = base.loadUnaligned(fromByteOffset: i &+ 16, as: UInt64.self)
                        let d = base.loadUnaligned(fromByteOffset: i &+ 24, as: UInt64.self)
                        if (a | b | c | d) & highBits != 0 { break }
                        i &+= 32
                    }
                    while count &- i >= 8 {
                        if base.loadUnaligned(fromByteOffset: i, as: UInt64.self) & highBits != 0 { break }
                        i &+= 8
                    }
                }
                // A block through the DFA. The reject state is absorbing, so it is enough to
                // look for it once per block; the block is short so ASCII runs get back to the
                // fast path soon.
                let blockEnd = min(count, i &+ Self.blockSize)
                while i < blockEnd {
                    s = row[Int(base.load(fromByteOffset: i, as: UInt8.self))] &>> s
                    i &+= 1
                }
                if s & 63 == State.reject { break }
            }
        }
        state = s & 63
        return state != State.reject
    }

    /// Whether `bytes` are complete, valid UTF-8 on their own (e.g. a close reason).
    static func isValid(_ bytes: UnsafeRawBufferPointer) -> Bool {
        var validator = UTF8Validator()
        return validator.validate(bytes) && validator.isAtBoundary
    }

    /// Bytes run through the DFA before the validator looks for an error or an ASCII run again.
    private static let blockSize = 16

    /// DFA states, each the bit offset of its 6-bit field in a table row.
    private enum State {
        /// Between scalars.
        static let accept: UInt64 = 0
        /// Invalid; absorbing.
        static let reject: UInt64 = 6
        /// One continuation byte (80–BF) left.
        static let tail1: UInt64 = 12
        /// Two continuation bytes left, the first unrestricted.
        static let tail2: UInt64 = 18
        /// Three continuation bytes left, the first unrestricted.
        static let tail3: UInt64 = 24
        /// After E0: A0–BF, then one more (excludes overlong 3-byte forms).
        static let afterE0: UInt64 = 30
        /// After ED: 80–9F, then one more (excludes surrogates).
        static let afterED: UInt64 = 36
        /// After F0: 90–BF, then two more (excludes overlong 4-byte forms).
        static let afterF0: UInt64 = 42
        /// After F4: 80–8F, then two more (excludes code points above U+10FFFF).
        static let afterF4: UInt64 = 48

        static let all: [UInt64] = [accept, reject, tail1, tail2, tail3, afterE0, afterED, afterF0, afterF4]

        /// The transition function, straight from the RFC 3629 §4 grammar.
        static func next(_ state: UInt64, _ byte: UInt8) -> UInt64 {
            let isTail = byte >= 0x80 && byte <= 0xBF
            switch state {
            case accept:
                switch byte {
                case 0x00...0x7F: return accept
                case 0xC2...0xDF: return tail1
                case 0xE0: return afterE0
                case 0xE1...0xEC, 0xEE...0xEF: return tail2
                case 0xED: return afterED
                case 0xF0: return afterF0
                case 0xF1...0xF3: return tail3
                case 0xF4: return afterF4
                default: return reject  // 80–BF (stray continuation), C0, C1, F5–FF
                }
            case tail1: return isTail ? accept : reject
            case tail2: return isTail ? tail1 : reject
            case tail3: return isTail ? tail2 : reject
            case afterE0: return byte >= 0xA0 && byte <= 0xBF ? tail1 : reject
            case afterED: return byte >= 0x80 && byte <= 0x9F ? tail1 : reject
            case afterF0: return byte >= 0x90 && byte <= 0xBF ? tail2 : reject
            case afterF4: return byte >= 0x80 && byte <= 0x8F ? tail2 : reject
            default: return reject
            }
        }
    }

    /// 256 rows (2 KiB, stays in L1): row `b` holds `State.next(s, b)` at bit offset `s` for every state `s`.
    private static let table: [UInt64] = (0...255).map { byte in
        State.all.reduce(0) { row, s in row | State.next(s, UInt8(byte)) &<< s }
    }
}
