/// A continuation that is resumed exactly once, by whichever of several racing events comes first
/// (a send completion, a cancellation, a connect result…); later values are ignored. This is how
/// a continuation is never resumed twice (livekit/client-sdk-swift#528) nor leaked: every path
/// that can end the wait goes through ``resume(_:)``.
///
/// The value may arrive before the continuation is set (a task cancelled before it suspended):
/// ``set(_:)`` then resumes at once.
final class AsyncResumeOnce<Value: Sendable>: @unchecked Sendable {
    // @unchecked Sendable: `state` is only read and written under `lock`.
    private enum State {
        case idle
        case suspended(CheckedContinuation<Value, Never>)
        case resolved(Value)
        case finished
    }

    private let lock = Lock()
    private var state = State.idle

    /// Installs the continuation. Returns `false` when a value had already arrived: the
    /// continuation has then been resumed with it, and the operation should not start.
    @discardableResult
    func set(_ continuation: CheckedContinuation<Value, Never>) -> Bool {
        let early = lock.withLock { () -> Value? in
            switch state {
            case .idle:
                state = .suspended(continuation)
                return nil
            case .resolved(let value):
                state = .finished
                return value
            case .suspended, .finished:
                preconditionFailure("AsyncResumeOnce.set called twice")
            }
        }
        guard let early else { return true }
        continuation.resume(returning: early)
        return false
    }

    /// Delivers `value` if nothing was delivered before; returns whether this call did.
    @discardableResult
    func resume(_ value: Value) -> Bool {
        let continuation = lock.withLock { () -> CheckedContinuation<Value, Never>?? in
            switch state {
            case .idle:
                state = .resolved(value)
                return .some(nil)
            case .suspended(let continuation):
                state = .finished
                return .some(continuation)
            case .resolved, .finished:
                return nil
            }
        }
        guard let continuation else { return false }
        continuation?.resume(returning: value)
        return true
    }
}
