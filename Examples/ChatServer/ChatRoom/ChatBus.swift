import Foundation

/// A chat event as it travels between instances: who sent it (``instance``, so that an instance
/// drops its own echo), what happened, and when.
struct ChatEvent: Codable, Sendable, Equatable {
    enum Kind: String, Codable, Sendable { case message, joined, left }
    var instance: String
    var kind: Kind
    var name: String
    var text: String?
    var time: Int64
}

/// Where a chat room's events go beyond its own members, and where nicknames, presence and
/// history live. ``ChatServer`` calls it on its `room` queue and it calls back on `room` too.
protocol ChatBus: AnyObject, Sendable {
    /// Starts; `deliver` gets other instances' events, in the order the bus delivers them,
    /// and `presence` the set of other instances' users whenever it is re-read, with `settled`
    /// `false` while it may still be incomplete (just after Redis came back, before every
    /// instance has re-registered): then it may add users but must not remove any.
    func start(
        deliver: @escaping @Sendable (ChatEvent) -> Void,
        presence: @escaping @Sendable (_ users: [String: Set<String>], _ settled: Bool) -> Void)
    /// Reserves `name` (already checked against this instance's members) and fetches the
    /// history for the newcomer: `taken` when another instance holds it, `history` `nil` when
    /// the bus has none to offer (the room's own is used).
    func claim(_ name: String, completion: @escaping @Sendable (_ taken: Bool, _ history: [ChatProtocol.Line]?) -> Void)
    /// This instance's member `name` left.
    func release(_ name: String)
    /// Publishes an event this instance has already delivered to its own members.
    func publish(_ event: ChatEvent)
    /// The names of this instance's members changed (kept for the presence heartbeat).
    func localUsersChanged(_ names: [String])
    func stop()
}

/// No bus: one instance on its own, exactly as before Redis support.
final class LocalChatBus: ChatBus {
    func start(
        deliver: @escaping @Sendable (ChatEvent) -> Void,
        presence: @escaping @Sendable ([String: Set<String>], Bool) -> Void
    ) {}
    func claim(_ name: String, completion: @escaping @Sendable (Bool, [ChatProtocol.Line]?) -> Void) {
        completion(false, nil)
    }
    func release(_ name: String) {}
    func publish(_ event: ChatEvent) {}
    func localUsersChanged(_ names: [String]) {}
    func stop() {}
}
