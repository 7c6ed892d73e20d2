import ChatRedis
import DispatchWebSocket
import Foundation

/// A small chat room: serves its page at `GET /` and speaks a JSON protocol (``ChatProtocol``)
/// over WebSocket at `/chat` with the `chat` subprotocol, on the same port.
///
/// Threading: each connection's events arrive on its own loop queue (there may be several), so
/// they hop onto one serial queue, `room`, which owns all shared state — who is online, the
/// history, each member's rate limiter. Sends are safe from any queue; made from `room`, they
/// reach every client in the same order.
public final class ChatServer: @unchecked Sendable {
    // @unchecked Sendable: `members` and `history` are only touched on `room`.

    public struct Configuration: Sendable {
        public var host = "127.0.0.1"
        public var port = 8080
        /// Origins besides this server's own page that may connect, e.g. `http://localhost:3000`.
        public var allowedOrigins: Set<String> = []
        /// Accept pages from any origin.
        public var allowAnyOrigin = false
        /// Serve the page over https and the chat over wss with this certificate and key.
        public var tls: TLSServerConfiguration? = nil
        /// Messages a connection may send per `ratePeriod` seconds.
        public var rateLimit = 10
        public var ratePeriod: TimeInterval = 10
        /// The longest chat message, in characters.
        public var maxMessageLength = 1000
        /// How many recent messages a newcomer gets.
        public var historySize = 50
        /// Invalid messages (malformed, too long, too fast…) before the connection is closed with 1008.
        public var maxErrors = 5
        /// Share the room with every other instance on this Redis (see README, "ChatServer on
        /// Redis"). Default: `nil` — this instance on its own.
        public var redis: RedisURL? = nil
        /// Listen with `SO_REUSEPORT`, so that several instances share one port (Linux spreads
        /// the connections over them). Default: `false`.
        public var reusePort = false
        /// This instance's name on Redis: its events carry it (so it drops its own echo) and its
        /// presence is kept under it. Default: a random UUID.
        public var instanceID = UUID().uuidString
        /// The prefix of every Redis key and channel, so that several rooms can share a server.
        /// Default: `chat`.
        public var redisKeyPrefix = "chat"
        /// How often an instance re-registers its users and nicknames on Redis. Default: 5 s.
        public var presenceHeartbeat: Duration = .seconds(5)
        /// How long an instance's presence and nicknames outlive its last heartbeat: a crashed
        /// instance's users disappear from the others' lists within this plus one heartbeat.
        /// Default: 15 s.
        public var presenceTTL: Duration = .seconds(15)
        public init() {}
    }

    /// A connection and what the room knows of it. Only used on `room`.
    private final class Member {
        let connection: WebSocketConnection
        let address: String
        var name: String?
        var limiter: RateLimiter
        var errors = 0
        init(connection: WebSocketConnection, address: String, limiter: RateLimiter) {
            (self.connection, self.address, self.limiter) = (connection, address, limiter)
        }
    }

    public let configuration: Configuration
    private let server: WebSocketServer
    private let room = DispatchQueue(label: "chat.room")
    private var members: [ObjectIdentifier: Member] = [:]
    private var history: [ChatProtocol.Line] = []
    /// Other instances' users, by instance (always empty without Redis).
    private var remoteUsers: [String: Set<String>] = [:]
    /// Other instances' joins and leaves heard in the last few heartbeats, by instance and name:
    /// newer than a presence snapshot that may have been read before them.
    private var recentEvents: [RemoteUser: (joined: Bool, at: DispatchTime)] = [:]
    private struct RemoteUser: Hashable { var instance: String, name: String }
    /// Members whose nickname claim is on its way to Redis.
    private var claiming: Set<ObjectIdentifier> = []
    private let bus: ChatBus

    public init(configuration: Configuration = Configuration()) {
        self.configuration = configuration
        var settings = WebSocketServer.Configuration()
        settings.connection.maxReceivedMessageSize = 16 * 1024  // a chat message is small: refuse big ones early
        // A broadcast never waits for its slowest member: one that stops reading fills its own
        // queue to 1 MiB and is closed with 1008, while everyone else keeps chatting. (Reading
        // from that member pauses meanwhile too, the library's default flow control.)
        settings.connection.maxQueuedBytes = 1024 * 1024
        settings.tls = configuration.tls
        settings.reusePort = configuration.reusePort
        // Browsers offer permessage-deflate: accept it. The default options hold no compressor
        // between messages and a broadcast is compressed once for all connections.
        settings.perMessageDeflate = PerMessageDeflateOptions()
        server = WebSocketServer(configuration: settings)
        if let url = configuration.redis {
            let busSettings = RedisChatBus.Settings(
                url: url, instance: configuration.instanceID, keyPrefix: configuration.redisKeyPrefix,
                heartbeat: configuration.presenceHeartbeat, presenceTTL: configuration.presenceTTL,
                historySize: configuration.historySize)
            bus = RedisChatBus(settings: busSettings, room: room, log: { Self.log($0) })
        } else {
            bus = LocalChatBus()
        }
    }

    /// Starts listening; returns the bound address (tests pass port 0).
    @discardableResult
    public func start() throws -> SocketAddress {
        server.onHTTPRequest = { request in
            switch (request.method, request.path) {
            case ("GET", "/"), ("HEAD", "/"):
                return HTTPResponse(status: 200, contentType: "text/html; charset=utf-8", body: ChatPage.html)
            case (_, "/favicon.ico"): return HTTPResponse(status: 204)
            default: return HTTPResponse(status: 404, body: "not found\n")
            }
        }
        server.onRequest = { [self] request in handle(request) }
        server.onError = { [self] error in log("server error: \(error)") }
        room.async { [self] in
            bus.start(
                deliver: { [self] event in deliver(event) },
                presence: { [self] snapshot, settled in presenceChanged(snapshot, settled: settled) })
        }
        return try server.listen(host: configuration.host, port: configuration.port)
    }

    /// Stops listening, closes every connection with 1001 "server shutting down", then calls
    /// `completion`. Listening stops first, so that with `reusePort` new clients (and the ones
    /// closed here, reconnecting) reach the other instances on the port: a rolling restart.
    public func shutDown(completion: @escaping @Sendable () -> Void) {
        room.async { [self] in bus.stop() }
        server.shutDown(completion: completion)
    }

    // MARK: Connections (on a loop queue)

    private func handle(_ request: WebSocketRequest) {
        guard request.path == "/chat" else { return request.reject(status: 404, reason: "the chat is at /chat") }
        guard request.requestedProtocols.contains("chat") else {
            return request.reject(status: 400, reason: "the chat subprotocol is required")
        }
        if let origin = request.origin, !isAllowed(origin: origin, host: request.host, secure: request.isSecure) {
            log("rejected \(request.remoteAddress): origin \(origin) not allowed")
            return request.reject(status: 403, reason: "origin not allowed")
        }
        guard let connection = try? request.accept(protocol: "chat") else { return }
        let id = ObjectIdentifier(connection)
        let address = connection.remoteAddress.map { "\($0)" } ?? request.remoteAddress
        let limiter = RateLimiter(messages: configuration.rateLimit, per: configuration.ratePeriod)
        log("connect \(address)")
        // Queued on `room` before any event of the connection can be.
        room.async { [self] in members[id] = Member(connection: connection, address: address, limiter: limiter) }
        connection.onMessage = { [self] message in room.async { [self] in receive(message, from: id) } }
        connection.onClose = { [self] code, reason in room.async { [self] in leave(id, code: code, reason: reason) } }
        connection.onError = { [self] error in log("error \(address): \(error)") }
    }

    /// Pages served by this server come from `http://<the Host they asked for>`.
    private func isAllowed(origin: String, host: String, secure: Bool) -> Bool {
        configuration.allowAnyOrigin || origin.lowercased() == "\(secure ? "https" : "http")://\(host.lowercased())"
            || configuration.allowedOrigins.contains(origin)
    }

    // MARK: The room (on `room`)

    private func receive(_ message: WebSocketMessage, from id: ObjectIdentifier) {
        guard let member = members[id] else { return }
        guard member.limiter.allow() else {
            return fail(
                member, "slow down: at most \(configuration.rateLimit) messages per \(Int(configuration.ratePeriod)) s")
        }
        guard case .text(let json) = message, let incoming = ChatProtocol.decode(json) else {
            return fail(member, #"malformed message: expected JSON such as {"type":"message","text":"hi"}"#)
        }
        switch incoming.type {
        case "join": join(member, name: incoming.name ?? "")
        case "message": say(member, text: incoming.text ?? "")
        default: fail(member, "unknown message type \"\(incoming.type)\"")
        }
    }

    private func join(_ member: Member, name raw: String) {
        let id = ObjectIdentifier(member.connection)
        guard member.name == nil, !claiming.contains(id) else { return fail(member, "you have already joined") }
        let name = raw.precomposedStringWithCanonicalMapping.trimmingCharacters(in: .whitespaces)
        // A refused nickname is a typo, not abuse: it does not count towards `maxErrors`.
        guard ChatProtocol.isValid(nickname: name) else {
            return send(.error("nicknames are 1–24 letters, digits, spaces, _ or -"), to: member)
        }
        guard !users.contains(where: { $0.lowercased() == name.lowercased() }) else {
            return send(.error("the nickname \"\(name)\" is taken"), to: member)
        }
        // Across instances the nickname is reserved on the bus (at once without one).
        claiming.insert(id)
        bus.claim(name) { [self] taken, sharedHistory in
            claiming.remove(id)
            let heldHere = localUsers.contains { $0.lowercased() == name.lowercased() }
            guard let member = members[id] else {  // left meanwhile
                if !taken && !heldHere { bus.release(name) }
                return
            }
            // Two members of this instance asking at once: the claim is this instance's for both.
            guard !taken, !heldHere else { return send(.error("the nickname \"\(name)\" is taken"), to: member) }
            member.name = name
            log("join \(member.address) \(name)")
            bus.localUsersChanged(localUsers)
            send(.welcome(name: name, users: users, history: sharedHistory ?? history), to: member)
            let joined = ChatProtocol.Outgoing.joined(name: name, users: users)
            broadcast(joined)
            bus.publish(
                ChatEvent(
                    instance: configuration.instanceID, kind: .joined, name: name,
                    time: joined.time ?? ChatProtocol.now()))
        }
    }

    private func say(_ member: Member, text raw: String) {
        guard let name = member.name else { return fail(member, "join with a nickname first") }
        let text = raw.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !text.isEmpty else { return fail(member, "empty message") }
        guard text.count <= configuration.maxMessageLength else {
            return fail(member, "message too long: at most \(configuration.maxMessageLength) characters")
        }
        let line = ChatProtocol.Line(from: name, text: text, time: ChatProtocol.now())
        record(line)
        broadcast(.message(line))
        bus.publish(
            ChatEvent(instance: configuration.instanceID, kind: .message, name: name, text: text, time: line.time))
    }

    private func record(_ line: ChatProtocol.Line) {
        history.append(line)
        history.removeFirst(max(0, history.count - configuration.historySize))
    }

    private func leave(_ id: ObjectIdentifier, code: WebSocketCloseCode, reason: String) {
        guard let member = members.removeValue(forKey: id) else { return }
        log(
            "disconnect \(member.address) \(member.name ?? "(not joined)"): \(code.rawValue)\(reason.isEmpty ? "" : " \(reason)")"
        )
        if let name = member.name {
            bus.localUsersChanged(localUsers)
            bus.release(name)
            let left = ChatProtocol.Outgoing.left(name: name, users: users)
            broadcast(left)
            bus.publish(
                ChatEvent(
                    instance: configuration.instanceID, kind: .left, name: name, time: left.time ?? ChatProtocol.now()))
        }
    }

    // MARK: Other instances (on `room`)

    /// An event another instance published (its own members have it already).
    private func deliver(_ event: ChatEvent) {
        switch event.kind {
        case .message:
            let line = ChatProtocol.Line(from: event.name, text: event.text ?? "", time: event.time)
            record(line)
            broadcast(.message(line))
        case .joined:
            remoteUsers[event.instance, default: []].insert(event.name)
            recentEvents[RemoteUser(instance: event.instance, name: event.name)] = (true, .now())
            broadcast(.joined(name: event.name, users: users))
        case .left:
            remoteUsers[event.instance]?.remove(event.name)
            recentEvents[RemoteUser(instance: event.instance, name: event.name)] = (false, .now())
            broadcast(.left(name: event.name, users: users))
        }
    }

    /// The presence heartbeat re-read every other instance's users: announce the differences
    /// (an instance that crashed, users who came or went while Redis was unreachable).
    private func presenceChanged(_ snapshot: [String: Set<String>], settled: Bool) {
        let before = Set(remoteUsers.values.joined())
        var merged = snapshot
        if !settled {
            for (instance, names) in remoteUsers { merged[instance, default: []].formUnion(names) }
        }
        // The snapshot may have been read just before a join or leave that has reached us already.
        let horizon =
            DispatchTime.now() - .milliseconds(3 * Int(RedisChatBus.milliseconds(configuration.presenceHeartbeat)))
        recentEvents = recentEvents.filter { $0.value.at > horizon }
        for (user, event) in recentEvents {
            if event.joined {
                merged[user.instance, default: []].insert(user.name)
            } else {
                merged[user.instance]?.remove(user.name)
            }
        }
        remoteUsers = merged.filter { !$0.value.isEmpty }
        let after = Set(remoteUsers.values.joined())
        let local = Set(localUsers)
        for name in before.subtracting(after).subtracting(local).sorted() { broadcast(.left(name: name, users: users)) }
        for name in after.subtracting(before).subtracting(local).sorted() {
            broadcast(.joined(name: name, users: users))
        }
    }

    /// Answers an invalid message with an error; after `maxErrors` of them, closes with 1008.
    private func fail(_ member: Member, _ reason: String) {
        member.errors += 1
        send(.error(reason), to: member)
        if member.errors == configuration.maxErrors {
            log("closing \(member.address): too many invalid messages")
            member.connection.close(code: .policyViolation, description: "too many invalid messages")
        }
    }

    private var localUsers: [String] { members.values.compactMap(\.name).sorted() }
    /// Everyone online: this instance's members and the other instances' users.
    private var users: [String] { Set(localUsers).union(remoteUsers.values.joined()).sorted() }

    private func send(_ message: ChatProtocol.Outgoing, to member: Member) {
        member.connection.sendUTF(ChatProtocol.encode(message))
    }

    /// Encodes once and sends the same text to everyone who has joined.
    private func broadcast(_ message: ChatProtocol.Outgoing) {
        let text = ChatProtocol.encode(message)
        for member in members.values where member.name != nil { member.connection.sendUTF(text) }
    }

    private func log(_ line: String) { Self.log(line) }

    private static func log(_ line: String) {
        var text = "[chat] \(line)\n"
        text.withUTF8 { _ = write(2, $0.baseAddress, $0.count) }
    }
}
