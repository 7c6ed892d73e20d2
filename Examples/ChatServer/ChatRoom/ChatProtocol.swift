import Foundation

/// The JSON messages between the chat page and the server, one per WebSocket text message.
///
/// Page → server: `{"type":"join","name":"Ada"}`, `{"type":"message","text":"hi"}`.
/// Server → page: `welcome` (your name, who is online, the last messages), `message`,
/// `joined` / `left` (with the new list of users), and `error` (a human-readable reason).
/// Times are milliseconds since 1970, taken by the server.
enum ChatProtocol {
    struct Incoming: Decodable {
        var type: String
        var name: String?
        var text: String?
    }

    struct ChatLine: Codable, Equatable, Sendable {
        var from: String
        var text: String
        var time: Int64
    }

    struct Outgoing: Encodable {
        var type: String
        var name: String? = nil
        var text: String? = nil
        var from: String? = nil
        var time: Int64? = nil
        var users: [String]? = nil
        var history: [ChatLine]? = nil
        var message: String? = nil
    }

    static func encode(_ message: Outgoing) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        return String(decoding: (try? encoder.encode(message)) ?? Data("{}".utf8), as: UTF8.self)
    }

    static func decode(_ text: String) -> Incoming? {
        try? JSONDecoder().decode(Incoming.self, from: Data(text.utf8))
    }

    static func now() -> Int64 { Int64(Date().timeIntervalSince1970 * 1000) }
}
