/// Incremental UTF-8 validation (RFC 3629) that carries its state across fragments and fails at
/// the first byte that cannot continue a valid sequence.
///
/// ASCII runs are skipped 8 bytes at a time; everything else goes through a small state machine
/// that knows the restricted second-byte ranges (E0: A0–BF, ED: 80–9F, F0: 90–BF, F4: 80–8F), so
/// overlong forms, surrogates and code points above U+10FFFF are rejected as early as possible.
struct UTF8Validator {
    /// Continuation bytes still expected for the current sequence.
    private var needed: UInt8 = 0
    /// The allowed range of the next byte (only the first continuation byte is restricted).
    private var lower: UInt8 = 0x80
    private var upper: UInt8 = 0xBF
    private var failed = false

    init() {}

    /// True when no multi-byte sequence is left incomplete.
    var isAtBoundary: Bool { needed == 0 && !failed }

    mutating func reset() { self = UTF8Validator() }

    /// Validates the next bytes; false as soon as they cannot continue valid UTF-8 (and forever after).
    mutating func validate(_ bytes: UnsafeRawBufferPointer) -> Bool {
        guard !failed else { return false }
        guard let base = bytes.baseAddress else { return true }
        let count = bytes.count
        var i = 0
        while i < count {
            if needed == 0 {
                // ASCII fast path: 16, then 8 bytes at a time.
                while i + 16 <= count {
                    let a = base.loadUnaligned(fromByteOffset: i, as: UInt64.self)
                    let b = base.loadUnaligned(fromByteOffset: i + 8, as: UInt64.self)
                    if (a | b) & 0x8080_8080_8080_8080 != 0 { break }
                    i += 16
                }
                while i + 8 <= count {
                    if base.loadUnaligned(fromByteOffset: i, as: UInt64.self) & 0x8080_8080_8080_8080 != 0 { break }
                    i += 8
                }
                guard i < count else { return true }
                let byte = base.load(fromByteOffset: i, as: UInt8.self)
                i += 1
                switch byte {
                case 0x00...0x7F:
                    continue
                case 0xC2...0xDF:
                    needed = 1; lower = 0x80; upper = 0xBF
                case 0xE0:
                    needed = 2; lower = 0xA0; upper = 0xBF
                case 0xE1...0xEC, 0xEE...0xEF:
                    needed = 2; lower = 0x80; upper = 0xBF
                case 0xED:
                    needed = 2; lower = 0x80; upper = 0x9F
                case 0xF0:
                    needed = 3; lower = 0x90; upper = 0xBF
                case 0xF1...0xF3:
                    needed = 3; lower = 0x80; upper = 0xBF
                case 0xF4:
                    needed = 3; lower = 0x80; upper = 0x8F
                default:  // 0x80–0xC1 (stray continuation, overlong lead), 0xF5–0xFF
                    failed = true
                    return false
                }
            } else {
                let byte = base.load(fromByteOffset: i, as: UInt8.self)
                guard byte >= lower && byte <= upper else {
                    failed = true
                    return false
                }
                i += 1
                needed -= 1
                lower = 0x80
                upper = 0xBF
            }
        }
        return true
    }

    /// Whether `bytes` are complete, valid UTF-8.
    static func isValid(_ bytes: UnsafeRawBufferPointer) -> Bool {
        var validator = UTF8Validator()
        return validator.validate(bytes) && validator.isAtBoundary
    }
}
