import Foundation

/// A value shared by the completions of one pipeline (they run one after another on the
/// connection's queue; the lock makes that a checked fact rather than an assumption).
final class LockedBox<Value: Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: Value
    init(_ value: Value) { stored = value }
    var value: Value {
        get { lock.withLock { stored } }
        set { lock.withLock { stored = newValue } }
    }
}
