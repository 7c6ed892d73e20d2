import DispatchWebSocket
import Foundation

/// A small chat room: serves its page at `GET /` and speaks a JSON protocol (``ChatProtocol``)
/// over WebSocket at `/chat` with the `chat` subprotocol, on the same port.
///
/// Shared state (who is online, the history) lives on one serial queue; every connection's
/// events arrive on its own loop queue and hop there. Sending is safe from any queue.
public final class ChatServer: @unchecked Sendable {
    // @unchecked Sendable: `members` and `history` are only touched on `room`.

    public struct Configuration: Sendable {
        public var host = "127.0.0.1"
        public var port = 8080
        /// Origins besides this server's own page that may connect (e.g. a dev server).
        public var allowedOrigins: Set<String> = []
        /// Accept any origin (for testing with other pages).
        public var allowAnyOrigin = false
        /// Messages a user may send per `ratePeriod`.
        public var rateLimit = 10
        public var ratePeriod: TimeInterval = 10
        /// Longest chat message, in characters.
        public var maxMessageLength = 1000
        /// Messages a late joiner gets.
        public var historySize = 50
        /// Errors (malformed, too long, too fast…) before the connection is closed with 1008.
        public var maxErrors = 5
        public init() {}
    }

    public let configuration: Configuration
    private let server: WebSocketServer
    private let room = DispatchQueue(label: "chat.room")
    private var members: [ObjectIdentifier: Member] = [:]
    private var history: [ChatProtocol.ChatLine] = []

    private final class Member: @unchecked Sendable {
        // Touched on the connection's loop queue (limiter, errors) or on `room` (name).
        let connection: WebSocketConnection
        var name: String?
        var limiter: RateLimiter
        var errors = 0
        init(_ connection: WebSocketConnection, limiter: RateLimiter) {
            self.connection = connection
            self.limiter = limiter
        }
    }

    public init(configuration: Configuration = Configuration()) {
        self.configuration = configuration
        var serverConfiguration = WebSocketServer.Configuration()
        serverConfiguration.connection.maxReceivedMessageSize = 16 * 1024
        serverConfiguration.connection.maxReceivedFrameSize = 16 * 1024
        server = WebSocketServer(configuration: serverConfiguration)
    }

    /// Starts listening; returns the bound address (tests pass port 0).
    @discardableResult
    public func start() throws -> SocketAddress {
        server.onHTTPRequest = { request in
            switch request.path {
            case "/": return HTTPResponse(status: 200, contentType: "text/html; charset=utf-8", body: ChatPage.html)
            case "/favicon.ico": return HTTPResponse(status: 204)
            default: return HTTPResponse(status: 404, body: "not found\n")
            }
        }
        server.onRequest = { [self] request in handle(request) }
        return try server.listen(host: configuration.host, port: configuration.port)
    }

    /// Closes every connection with 1001 "server shutting down", then calls `completion`.
    public func shutDown(completion: @escaping @Sendable () -> Void) {
        server.closeAllConnections(code: .goingAway, description: "server shutting down")
        server.shutDown(completion: completion)
    }

    // MARK: Connections

    private func handle(_ request: WebSocketRequest) {
        guard request.path == "/chat" else { return request.reject(status: 404, reason: "the chat lives at /chat") }
        guard request.requestedProtocols.contains("chat") else {
            return request.reject(status: 400, reason: "the chat subprotocol is required")
        }
        if let origin = request.origin, !isAllowed(origin: origin, host: request.host) {
            log("rejected origin \(origin) from \(request.remoteAddress)")
            return request.reject(status: 403, reason: "origin not allowed")
        }
        guard let connection = try? request.accept(protocol: "chat") else { return }
        let member = Member(connection, limiter: RateLimiter(messages: configuration.rateLimit, per: configuration.ratePeriod))
        let id = ObjectIdentifier(connection)
        room.sync { members[id] = member }
        log("connect \(request.remoteAddress)")
        connection.onMessage = { [self] message in
            guard case .text(let text) = message else { return reject(member, "send JSON text messages") }
            receive(text, from: member)
        }
        connection.onError = { [self] error in log("error \(request.remoteAddress): \(error)") }
        connection.onClose = { [self] code, _ in
            let name = room.sync { members.removeValue(forKey: id)?.name }
            log("disconnect \(name ?? request.remoteAddress) (\(code))")
            if let name { broadcast(ChatProtocol.Outgoing(type: "left", name: name, time: ChatProtocol.now(), users: users())) }
        }
    }

    private func isAllowed(origin: String, host: String) -> Bool {
        configuration.allowAnyOrigin || origin == "http://\(host)" || configuration.allowedOrigins.contains(origin)
    }

    private func receive(_ text: String, from member: Member) {
        guard let incoming = ChatProtocol.decode(text) else { return reject(member, "malformed message: expected JSON") }
        switch incoming.type {
        case "join":
            join(member, name: incoming.name ?? "")
        case "message":
            guard let name = room.sync(execute: { member.name }) else { return reject(member, "join with a nickname first") }
            let body = (incoming.text ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
            guard !body.isEmpty else { return reject(member, "empty message") }
            guard body.count <= configuration.maxMessageLength else {
                return reject(member, "message too long (at most \(configuration.maxMessageLength) characters)")
            }
            guard member.limiter.allow() else { return reject(member, "slow down: at most \(configuration.rateLimit) messages per \(Int(configuration.ratePeriod)) s") }
            let line = ChatProtocol.ChatLine(from: name, text: body, time: ChatProtocol.now())
            room.sync {
                history.append(line)
                if history.count > configuration.historySize { history.removeFirst(history.count - configuration.historySize) }
            }
            broadcast(ChatProtocol.Outgoing(type: "message", text: line.text, from: line.from, time: line.time))
        default:
            reject(member, "unknown message type \"\(incoming.type)\"")
        }
    }

    private func join(_ member: Member, name raw: String) {
        let name = raw.trimmingCharacters(in: .whitespaces)
        guard (1...24).contains(name.count), name.unicodeScalars.allSatisfy({
            CharacterSet.alphanumerics.contains($0) || $0 == " " || $0 == "_" || $0 == "-"
        }) else {
            return reject(member, "nicknames are 1–24 letters, digits, spaces, _ or -")
        }
        enum Outcome { case taken, renamed, joined([String], [ChatProtocol.ChatLine]) }
        let outcome: Outcome = room.sync {
            if members.values.contains(where: { $0 !== member && $0.name?.lowercased() == name.lowercased() }) { return .taken }
            if member.name != nil { return .renamed }
            member.name = name
            return .joined(members.values.compactMap(\.name).sorted(), history)
        }
        switch outcome {
        case .taken:
            reject(member, "the nickname \(name) is taken")
        case .renamed:
            reject(member, "you have already joined")
        case .joined(let users, let history):
            log("join \(name)")
            member.connection.sendUTF(ChatProtocol.encode(.init(type: "welcome", name: name, users: users, history: history)))
            broadcast(ChatProtocol.Outgoing(type: "joined", name: name, time: ChatProtocol.now(), users: users))
        }
    }

    /// Sends an error; too many of them close the connection with 1008 (policy violation).
    private func reject(_ member: Member, _ reason: String) {
        member.errors += 1
        member.connection.sendUTF(ChatProtocol.encode(.init(type: "error", message: reason)))
        if member.errors >= configuration.maxErrors {
            log("closing \(member.name ?? "a client") after \(member.errors) errors")
            member.connection.close(code: .policyViolation, description: "too many invalid messages")
        }
    }

    private func users() -> [String] {
        room.sync { members.values.compactMap(\.name).sorted() }
    }

    /// Encodes once and sends the same text to every member who has joined.
    private func broadcast(_ message: ChatProtocol.Outgoing) {
        let text = ChatProtocol.encode(message)
        let targets = room.sync { members.values.filter { $0.name != nil }.map(\.connection) }
        for connection in targets { connection.sendUTF(text) }
    }

    private func log(_ line: String) {
        var text = "[chat] \(line)\n"
        text.withUTF8 { _ = write(2, $0.baseAddress, $0.count) }
    }
}
