import Foundation

/// A token bucket: `capacity` messages, refilled evenly over `period`. Not thread-safe: each
/// connection owns one and uses it on its loop queue.
struct RateLimiter {
    let capacity: Double
    let perSecond: Double
    private var tokens: Double
    private var last: Date

    init(messages: Int, per period: TimeInterval) {
        capacity = Double(messages)
        perSecond = Double(messages) / max(period, 0.001)
        tokens = capacity
        last = Date()
    }

    /// Takes a token if one is left.
    mutating func allow(now: Date = Date()) -> Bool {
        tokens = min(capacity, tokens + now.timeIntervalSince(last) * perSecond)
        last = now
        guard tokens >= 1 else { return false }
        tokens -= 1
        return true
    }
}
