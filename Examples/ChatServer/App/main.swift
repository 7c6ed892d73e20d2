// ChatServer: a small chat room in the browser, built on DispatchWebSocket.
//
//   swift run ChatServer [--host 127.0.0.1] [--port 8080] [--allow-origin ORIGIN]... [--any-origin]
//
// The PORT environment variable sets the port too (the flag wins). Open the printed URL.
import ChatRoom
import Dispatch
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

func fail(_ message: String) -> Never {
    var line = "ChatServer: \(message)\n"
    line.withUTF8 { _ = write(2, $0.baseAddress, $0.count) }
    exit(2)
}

func parseConfiguration() -> ChatServer.Configuration {
    var configuration = ChatServer.Configuration()
    if let port = getenv("PORT").flatMap({ Int(String(cString: $0)) }) { configuration.port = port }
    var arguments = CommandLine.arguments.dropFirst()
    while let argument = arguments.popFirst() {
        switch argument {
        case "--host":
            guard let host = arguments.popFirst() else { fail("--host needs a value") }
            configuration.host = host
        case "--port":
            guard let port = arguments.popFirst().flatMap({ Int($0) }) else { fail("--port needs a number") }
            configuration.port = port
        case "--allow-origin":
            guard let origin = arguments.popFirst() else { fail("--allow-origin needs a value") }
            configuration.allowedOrigins.insert(origin)
        case "--any-origin": configuration.allowAnyOrigin = true
        default: fail("usage: ChatServer [--host HOST] [--port PORT] [--allow-origin ORIGIN]... [--any-origin]")
        }
    }
    guard (0...65535).contains(configuration.port) else { fail("the port must be 0–65535") }
    return configuration
}

let chat = ChatServer(configuration: parseConfiguration())
do {
    let address = try chat.start()
    let host = address.host.contains(":") ? "[\(address.host)]" : address.host
    print("Chat server running: open http://\(host):\(address.port)/ in your browser (Ctrl-C to stop)")
    fflush(nil)
} catch {
    fail("\(error)")
}

signal(SIGINT, SIG_IGN)
signal(SIGTERM, SIG_IGN)
let signals = [SIGINT, SIGTERM].map { DispatchSource.makeSignalSource(signal: $0, queue: .main) }
for source in signals {
    source.setEventHandler { chat.shutDown { exit(0) } }
    source.resume()
}
dispatchMain()
