#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Masking keys from the system's secure random source, fetched 4 KiB (1,024 keys) at a time,
/// so a client pays one system call per thousand frames instead of one per frame
/// (`SystemRandomNumberGenerator` calls `getrandom` for every 8 bytes). Loop-confined.
struct SecureRandomPool {
    private var buffer: [UInt8] = []
    private var index = 0
    static let refillSize = 4096

    mutating func nextMaskingKey() -> WebSocketMaskingKey {
        if index + 4 > buffer.count { refill() }
        defer { index += 4 }
        return WebSocketMaskingKey(buffer[index], buffer[index + 1], buffer[index + 2], buffer[index + 3])
    }

    private mutating func refill() {
        buffer = [UInt8](repeating: 0, count: Self.refillSize)
        index = 0
        #if canImport(Darwin)
        buffer.withUnsafeMutableBytes { arc4random_buf($0.baseAddress, $0.count) }
        #else
        var filled = 0
        let fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC)
        if fd >= 0 {
            while filled < buffer.count {
                let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress! + filled, $0.count - filled) }
                if n > 0 { filled += n } else if n < 0 && errno == EINTR { continue } else { break }
            }
            close(fd)
        }
        if filled < buffer.count {
            // No /dev/urandom (a chroot, say): the standard library's generator is secure too, only slower.
            var generator = SystemRandomNumberGenerator()
            for i in filled..<buffer.count { buffer[i] = UInt8.random(in: .min ... .max, using: &generator) }
        }
        #endif
    }
}
