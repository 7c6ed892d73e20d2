import Foundation

/// A token bucket: up to `messages` at once, refilled evenly over `period` seconds.
/// Not thread-safe: the room owns one per connection and uses it on its queue.
struct RateLimiter {
    private let capacity: Double
    private let refillPerSecond: Double
    private var tokens: Double
    private var last = ContinuousClock.now

    init(messages: Int, per period: TimeInterval) {
        capacity = Double(max(messages, 1))
        refillPerSecond = capacity / max(period, 0.001)
        tokens = capacity
    }

    /// Takes a token if one is left.
    mutating func allow(now: ContinuousClock.Instant = .now) -> Bool {
        let elapsed = now - last
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        tokens = min(capacity, tokens + seconds * refillPerSecond)
        last = now
        guard tokens >= 1 else { return false }
        tokens -= 1
        return true
    }
}
