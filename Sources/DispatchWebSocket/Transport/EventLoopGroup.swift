import Dispatch

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The loops a server or client spreads its connections over, round robin.
final class EventLoopGroup: @unchecked Sendable {
    let loops: [EventLoop]
    // Only read and written under `lock`: `next()` may be called from any thread.
    private let lock = Lock()
    private var index = 0

    /// The loops shared by every server and client that does not ask for its own.
    static let shared = EventLoopGroup(count: EventLoopGroup.usableCPUCount)

    init(count: Int) {
        loops = (0..<max(1, count)).map { EventLoop(label: "DispatchWebSocket.loop\($0)") }
    }

    func next() -> EventLoop {
        if loops.count == 1 { return loops[0] }
        return lock.withLock {
            index = (index + 1) % loops.count
            return loops[index]
        }
    }

    /// CPUs this process may run on (its affinity mask), not the machine's core count: a
    /// server pinned to one core gets one loop and never pays for a queue hop.
    static var usableCPUCount: Int {
        #if os(Linux)
        if let allowed = allowedCPUsFromProcStatus(), allowed > 0 { return allowed }
        #endif
        return max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))
    }

    #if os(Linux)
    /// Counts the bits of `Cpus_allowed` in /proc/self/status (the affinity mask that
    /// `taskset` sets), without Foundation and without `sched_getaffinity`, which Glibc's module
    /// does not export.
    private static func allowedCPUsFromProcStatus() -> Int? {
        guard let file = fopen("/proc/self/status", "r") else { return nil }
        defer { fclose(file) }
        var line = [CChar](repeating: 0, count: 4096)
        while fgets(&line, Int32(line.count), file) != nil {
            let text = String(decoding: line.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            guard text.hasPrefix("Cpus_allowed:") else { continue }
            return text.dropFirst("Cpus_allowed:".count).reduce(0) { count, character in
                count + (character.hexDigitValue.map { $0.nonzeroBitCount } ?? 0)
            }
        }
        return nil
    }
    #endif
}
