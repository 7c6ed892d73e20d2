import Dispatch
// EchoClient: connects, sends N messages of a given size, verifies each echo, closes with 1000.
//
//   swift run EchoClient ws://127.0.0.1:9001 [--count N] [--size BYTES] [--binary] [--deflate]
//   swift run EchoClient ws://127.0.0.1:9001 --interactive     # lines from stdin, replies printed
//   swift run EchoClient wss://127.0.0.1:9443 [--ca CA.pem | --insecure]
//   swift run EchoClient ws://127.0.0.1:9001 --transport dispatch|poller   # socket backend
//
// Exits 0 only if every echo matched.
import DispatchWebSocket

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Writes a line to standard error (`stderr` itself is not concurrency-safe to reference).
func printError(_ message: String) {
    var line = message + "\n"
    line.withUTF8 { _ = write(2, $0.baseAddress, $0.count) }
}

struct Options {
    var url = ""
    var count = 10
    var size = 32
    var binary = false
    var interactive = false
    var caFile: String?
    var insecure = false
    var deflate = false
    var transport = WebSocketTransport.default
}

func fail(_ message: String, code: Int32 = 1) -> Never {
    printError("EchoClient: \(message)")
    exit(code)
}

let usage =
    "usage: EchoClient URL [--count N] [--size BYTES] [--binary] [--interactive] [--ca CA.pem | --insecure] [--deflate] [--transport dispatch|poller]"

func parseOptions() -> Options {
    var options = Options()
    var arguments = CommandLine.arguments.dropFirst()
    while let argument = arguments.popFirst() {
        switch argument {
        case "--count": options.count = arguments.popFirst().flatMap { Int($0) } ?? -1
        case "--size": options.size = arguments.popFirst().flatMap { Int($0) } ?? -1
        case "--binary": options.binary = true
        case "--interactive": options.interactive = true
        case "--ca": options.caFile = arguments.popFirst()
        case "--insecure": options.insecure = true
        case "--deflate": options.deflate = true
        case "--transport":
            switch arguments.popFirst() {
            case "dispatch", "dispatchSources": options.transport = .dispatchSources
            case "poller": options.transport = .poller
            default: fail(usage, code: 2)
            }
        case let url where !url.hasPrefix("--") && options.url.isEmpty: options.url = url
        default: fail(usage, code: 2)
        }
    }
    if options.url.isEmpty || options.count < 1 || options.size < 0 {
        fail(usage, code: 2)
    }
    return options
}

let options = parseOptions()

/// The payload of message `index`: different for every message, so a stale echo is caught.
func payload(_ index: Int) -> [UInt8] {
    (0..<options.size).map { UInt8(ascii: "a") + UInt8((index &* 7 &+ $0) % 26) }
}

final class Run: @unchecked Sendable {
    // Touched only on the connection's loop queue, in its event handlers.
    var received = 0
    var mismatches = 0
}

let run = Run()
var configuration = WebSocketClient.Configuration()
configuration.connection.maxReceivedMessageSize = max(options.size * 2, 1 << 20)
configuration.connection.maxReceivedFrameSize = max(options.size * 2, 1 << 20)
if let caFile = options.caFile { configuration.tls.trustRoots = .pemFile(caFile) }
if options.insecure { configuration.tls.verification = .insecureNoVerification }
configuration.perMessageDeflate = options.deflate ? PerMessageDeflateOptions() : nil
configuration.transport = options.transport
let client = WebSocketClient(configuration: configuration)
let start = DispatchTime.now()

client.onConnectFailed = { error in fail("connect failed: \(error)") }
client.onHTTPResponse = { status, _, body in
    printError("EchoClient: server answered HTTP \(status): \(String(decoding: body.prefix(200), as: UTF8.self))")
}
client.onConnect = { connection in
    if options.deflate {
        print("EchoClient: extensions: \(connection.extensions.isEmpty ? "(none)" : connection.extensions)")
    }
    connection.onClose = { code, reason in
        if options.interactive { exit(0) }
        let milliseconds = (DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1_000_000
        print(
            "EchoClient: \(run.received)/\(options.count) echoes, \(run.mismatches) mismatched, closed \(code) \(reason), \(milliseconds) ms"
        )
        exit(run.received == options.count && run.mismatches == 0 && code == .normalClosure ? 0 : 1)
    }
    connection.onError = { error in printError("EchoClient: \(error)") }
    if options.interactive {
        connection.onMessage = { message in
            switch message {
            case .text(let text): print("< \(text)")
            case .binary(let bytes): print("< [\(bytes.count) bytes]")
            }
            fflush(nil)
        }
        DispatchQueue.global().async {
            while let line = readLine() { connection.sendUTF(line) }
            connection.close()
        }
        return
    }
    connection.onMessage = { message in
        let expected = payload(run.received)
        switch message {
        case .text(let text) where !options.binary: if Array(text.utf8) != expected { run.mismatches += 1 }
        case .binary(let bytes) where options.binary: if bytes != expected { run.mismatches += 1 }
        default: run.mismatches += 1
        }
        run.received += 1
        if run.received == options.count { connection.close(code: .normalClosure) }
    }
    for index in 0..<options.count {
        let bytes = payload(index)
        if options.binary {
            connection.sendBytes(bytes)
        } else {
            connection.sendUTF(String(decoding: bytes, as: UTF8.self))
        }
    }
}
client.connect(url: options.url)
dispatchMain()
