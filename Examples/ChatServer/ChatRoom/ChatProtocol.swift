import Foundation

/// The JSON messages between the chat page and the server, one per WebSocket text message.
///
/// Page → server:
///
///     {"type":"join","name":"Ada"}
///     {"type":"message","text":"Hello!"}
///
/// Server → page:
///
///     {"type":"welcome","name":"Ada","users":["Ada","Bob"],"history":[{"from":"Bob","text":"Hi","time":1732431000000}]}
///     {"type":"message","from":"Bob","text":"Hi","time":1732431000000}
///     {"type":"joined","name":"Ada","users":["Ada","Bob"],"time":1732431000000}
///     {"type":"left","name":"Bob","users":["Ada"],"time":1732431000000}
///     {"type":"error","message":"the nickname \"Ada\" is taken"}
///
/// Times are the server's clock, in milliseconds since 1970.
enum ChatProtocol {
    struct Incoming: Decodable {
        var type: String
        var name: String?
        var text: String?
    }

    /// One chat message, as broadcast and as kept in the history.
    struct Line: Codable, Sendable {
        var from: String
        var text: String
        var time: Int64
    }

    /// Every server message: `type` says which of the optional fields are set.
    struct Outgoing: Encodable {
        var type: String
        var name: String?
        var from: String?
        var text: String?
        var time: Int64?
        var users: [String]?
        var history: [Line]?
        var message: String?

        static func welcome(name: String, users: [String], history: [Line]) -> Outgoing {
            Outgoing(type: "welcome", name: name, users: users, history: history)
        }
        static func message(_ line: Line) -> Outgoing {
            Outgoing(type: "message", from: line.from, text: line.text, time: line.time)
        }
        static func joined(name: String, users: [String]) -> Outgoing {
            Outgoing(type: "joined", name: name, time: now(), users: users)
        }
        static func left(name: String, users: [String]) -> Outgoing {
            Outgoing(type: "left", name: name, time: now(), users: users)
        }
        static func error(_ message: String) -> Outgoing {
            Outgoing(type: "error", message: message)
        }
    }

    /// 1–24 letters, digits, spaces, `_` or `-`.
    static func isValid(nickname: String) -> Bool {
        let scalars = nickname.unicodeScalars
        return (1...24).contains(scalars.count)
            && scalars.allSatisfy { scalar in
                switch scalar.properties.generalCategory {
                case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter,
                    .decimalNumber:
                    return true
                default:
                    return scalar == " " || scalar == "_" || scalar == "-"
                }
            }
    }

    static func encode(_ message: Outgoing) -> String {
        let data = (try? JSONEncoder().encode(message)) ?? Data(#"{"type":"error","message":"internal error"}"#.utf8)
        return String(decoding: data, as: UTF8.self)
    }

    static func decode(_ text: String) -> Incoming? {
        try? JSONDecoder().decode(Incoming.self, from: Data(text.utf8))
    }

    static func now() -> Int64 { Int64(Date().timeIntervalSince1970 * 1000) }
}
