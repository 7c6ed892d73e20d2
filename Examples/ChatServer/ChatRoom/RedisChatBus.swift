import ChatRedis
import Dispatch
import Foundation

/// The chat across instances on one Redis: every event is published on one channel, nicknames
/// are keys with an expiry, presence is a set per instance refreshed by a heartbeat, the history
/// is a capped list. Two connections: one for commands, one subscriber that only reads.
///
/// Redis going away never stops the room: commands fail at once, the room serves its own
/// members, the connections reconnect (with backoff, forever) and the subscriber resubscribes;
/// the next heartbeat re-registers this instance's presence and nicknames.
final class RedisChatBus: ChatBus, @unchecked Sendable {
    // @unchecked Sendable: `localNames`, `timer` and the callbacks are only touched on `room`.

    struct Settings: Sendable {
        var url: RedisURL
        var instance: String
        var keyPrefix: String
        var heartbeat: Duration
        var presenceTTL: Duration
        var historySize: Int
    }

    private let settings: Settings
    private let room: DispatchQueue
    private let commands: RedisConnection
    private let subscriber: RedisConnection
    private let log: @Sendable (String) -> Void
    private var localNames: [String] = []
    private var timer: DispatchSourceTimer?
    private var presence: (@Sendable ([String: Set<String>], Bool) -> Void)?
    /// Until then (one TTL after connecting) a presence snapshot may lack instances that have not
    /// re-registered yet after a Redis restart, so it must not make users disappear.
    private var settledAfter = DispatchTime.now()

    private var channel: String { "\(settings.keyPrefix):events" }
    private var historyKey: String { "\(settings.keyPrefix):history" }
    private var instancesKey: String { "\(settings.keyPrefix):instances" }
    private func presenceKey(_ instance: String) -> String { "\(settings.keyPrefix):presence:\(instance)" }
    private func nickKey(_ name: String) -> String { "\(settings.keyPrefix):nick:\(name.lowercased())" }
    private var ttlMilliseconds: String { String(Self.milliseconds(settings.presenceTTL)) }

    /// Claims a free nickname or refreshes this instance's own claim (1), or finds it taken (0).
    private static let claimScript = """
        if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
        if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]) return 1 end
        return 0
        """
    /// Deletes a nickname only if this instance still holds it.
    private static let releaseScript = """
        if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
        return 0
        """

    init(settings: Settings, room: DispatchQueue, log: @escaping @Sendable (String) -> Void) {
        self.settings = settings
        self.room = room
        self.log = log
        let configuration = RedisConnection.Configuration(url: settings.url)
        commands = RedisConnection(configuration: configuration, role: .commands, label: "chat.redis.commands")
        subscriber = RedisConnection(configuration: configuration, role: .subscriber, label: "chat.redis.subscriber")
    }

    func start(
        deliver: @escaping @Sendable (ChatEvent) -> Void,
        presence: @escaping @Sendable ([String: Set<String>], Bool) -> Void
    ) {
        self.presence = presence
        let instance = settings.instance
        let room = self.room
        let url = "\(settings.url.host):\(settings.url.port)"
        let log = self.log
        // On the loop that read it: decode, drop our own echo, hop to the room. Never waits.
        subscriber.onMessage = { _, payload in
            guard let event = try? JSONDecoder().decode(ChatEvent.self, from: Data(payload)) else {
                return log("redis: ignored a malformed event on the channel")
            }
            guard event.instance != instance else { return }
            room.async { deliver(event) }
        }
        subscriber.onStateChange = { connected, reason in
            log(
                connected
                    ? "redis: subscribed at \(url)"
                    : "redis: subscriber lost (\(reason ?? "")); reconnecting, local chat goes on")
        }
        commands.onStateChange = { [weak self] connected, reason in
            log(
                connected
                    ? "redis: connected to \(url)"
                    : "redis: connection lost (\(reason ?? "")); reconnecting, local chat goes on")
            guard connected, let self else { return }
            room.async {
                self.settledAfter = .now() + .milliseconds(Int(Self.milliseconds(self.settings.presenceTTL)))
                self.heartbeat()
            }
        }
        subscriber.subscribe([channel])
        subscriber.start()
        commands.start()
        let timer = DispatchSource.makeTimerSource(queue: room)
        let interval = DispatchTimeInterval.milliseconds(Int(Self.milliseconds(settings.heartbeat)))
        timer.schedule(deadline: .now() + interval, repeating: interval, leeway: .milliseconds(50))
        timer.setEventHandler { [weak self] in self?.heartbeat() }
        timer.resume()
        self.timer = timer
    }

    func stop() {
        timer?.cancel()
        timer = nil
        // Leave no trace: the names and presence of this instance go now, not at their expiry.
        for name in localNames { release(name) }
        commands.send(["DEL", presenceKey(settings.instance)])
        commands.send(["ZREM", instancesKey, settings.instance])
        commands.send(["PING"]) { [commands, subscriber] _ in
            commands.close()
            subscriber.close()
        }
    }

    func claim(_ name: String, completion: @escaping @Sendable (Bool, [ChatProtocol.Line]?) -> Void) {
        let room = self.room
        let size = settings.historySize
        // Pipelined: the claim and the history in one round trip.
        let claimed = LockedBox<Bool?>(nil)
        commands.send(["EVAL", Self.claimScript, "1", nickKey(name), settings.instance, ttlMilliseconds]) { result in
            if case .success(.integer(let won)) = result { claimed.value = won == 1 }
        }
        commands.send(["LRANGE", historyKey, String(-size), "-1"]) { result in
            let history: [ChatProtocol.Line]? = (try? result.get())?.elements?.compactMap { item in
                item.string.flatMap { try? JSONDecoder().decode(ChatProtocol.Line.self, from: Data($0.utf8)) }
            }
            // Redis down (no answer to the claim): the room's own checks are all there is.
            let taken = claimed.value == false
            room.async { completion(taken, claimed.value == nil ? nil : history) }
        }
    }

    func release(_ name: String) {
        commands.send(["EVAL", Self.releaseScript, "1", nickKey(name), settings.instance])
    }

    func publish(_ event: ChatEvent) {
        guard let json = try? JSONEncoder().encode(event) else { return }
        if event.kind == .message, let text = event.text {
            let line = ChatProtocol.Line(from: event.name, text: text, time: event.time)
            if let lineJSON = try? JSONEncoder().encode(line) {
                commands.send(["RPUSH", historyKey, String(decoding: lineJSON, as: UTF8.self)])
                commands.send(["LTRIM", historyKey, String(-settings.historySize), "-1"])
            }
        }
        commands.send(["PUBLISH", channel, String(decoding: json, as: UTF8.self)])
    }

    func localUsersChanged(_ names: [String]) {
        localNames = names
    }

    // MARK: Presence (on `room`)

    /// Re-registers this instance's users (and refreshes its nicknames), drops instances whose
    /// heartbeat stopped, then reads every other instance's users.
    private func heartbeat() {
        let now = ChatProtocol.now()
        let ttl = Self.milliseconds(settings.presenceTTL)
        let me = settings.instance
        let key = presenceKey(me)
        commands.send(["MULTI"])
        commands.send(["DEL", key])
        if !localNames.isEmpty { commands.send(["SADD", key] + localNames) }
        commands.send(["PEXPIRE", key, String(ttl)])
        commands.send(["ZADD", instancesKey, String(now), me])
        commands.send(["EXEC"])
        for name in localNames {
            commands.send(["EVAL", Self.claimScript, "1", nickKey(name), me, String(ttl)]) { [log] result in
                if case .success(.integer(0)) = result {
                    log("redis: the nickname \(name) is also held by another instance")
                }
            }
        }
        commands.send(["ZREMRANGEBYSCORE", instancesKey, "-inf", "(\(now - ttl)"])
        commands.send(["ZRANGE", instancesKey, "0", "-1"]) { [weak self] result in
            guard let self, let others = (try? result.get())?.elements?.compactMap(\.string).filter({ $0 != me }) else {
                return
            }
            self.readPresence(of: others)
        }
    }

    private func readPresence(of instances: [String]) {
        let found = LockedBox<[String: Set<String>]>([:])
        let room = self.room
        guard !instances.isEmpty else {
            return room.async { [weak self] in
                guard let self else { return }
                presence?([:], DispatchTime.now() >= settledAfter)
            }
        }
        for (index, instance) in instances.enumerated() {
            commands.send(["SMEMBERS", presenceKey(instance)]) { [weak self] result in
                if let names = (try? result.get())?.elements?.compactMap(\.string) {
                    found.value[instance] = Set(names)
                }
                guard index == instances.count - 1 else { return }
                // Every reply of the pipeline is in: the snapshot is complete only if all were read.
                guard case .success = result else { return }
                let snapshot = found.value
                guard let self else { return }
                room.async { self.presence?(snapshot, DispatchTime.now() >= self.settledAfter) }
            }
        }
    }

    static func milliseconds(_ duration: Duration) -> Int64 {
        duration.components.seconds * 1000 + duration.components.attoseconds / 1_000_000_000_000_000
    }
}
