import Dispatch
// AutobahnClient: runs the Autobahn fuzzing server's client cases with DispatchWebSocket's client.
//
//   swift run -c release AutobahnClient --url ws://127.0.0.1:9001 [--agent NAME]
//   swift run -c release AutobahnClient --url wss://127.0.0.1:9443 --ca CA.pem
//   swift run -c release AutobahnClient --url ws://127.0.0.1:9001 --transport dispatch|poller
//
// Protocol: GET /getCaseCount, then for each case /runCase?case=N&agent=A (echo every message
// back), then /updateReports?agent=A.
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

let usage =
    "usage: AutobahnClient [--url ws[s]://127.0.0.1:9001] [--agent NAME] [--ca CA.pem] [--deflate] [--transport dispatch|poller]"

struct Options {
    var url = "ws://127.0.0.1:9001"
    var agent = "DispatchWebSocket"
    var caFile: String?
    var deflate = false
    var transport = WebSocketTransport.default
}

func parseOptions() -> Options {
    var options = Options()
    var arguments = CommandLine.arguments.dropFirst()
    while let argument = arguments.popFirst() {
        switch argument {
        case "--url": options.url = arguments.popFirst() ?? options.url
        case "--agent": options.agent = arguments.popFirst() ?? options.agent
        case "--ca": options.caFile = arguments.popFirst()
        case "--deflate": options.deflate = true
        case "--transport":
            switch arguments.popFirst() {
            case "dispatch", "dispatchSources": options.transport = .dispatchSources
            case "poller": options.transport = .poller
            default:
                printError("AutobahnClient: --transport is dispatch or poller")
                exit(2)
            }
        case "-h", "--help":
            print(usage)
            exit(0)
        default:
            printError(usage)
            exit(2)
        }
    }
    return options
}

let options = parseOptions()

/// Opens one WebSocket to `path`, runs `configure` on it, and waits until it closes.
/// Returns the first text message received (for /getCaseCount).
func run(_ path: String, echo: Bool) -> String? {
    let done = DispatchSemaphore(value: 0)
    let firstText = Mutexed<String?>(nil)
    var configuration = WebSocketClient.Configuration()
    configuration.connection.maxReceivedFrameSize = 64 * 1024 * 1024
    configuration.connection.maxReceivedMessageSize = 64 * 1024 * 1024
    configuration.connection.fragmentOutgoingMessages = false
    configuration.transport = options.transport
    if let caFile = options.caFile { configuration.tls.trustRoots = .pemFile(caFile) }
    // With --deflate: offer client_no_context_takeover (the 13.x cases that request it accept only
    // offers that allow it) and let the server keep its context, so both inflate modes are run.
    configuration.perMessageDeflate =
        options.deflate
        ? PerMessageDeflateOptions(serverNoContextTakeover: false, clientNoContextTakeover: true) : nil
    let client = WebSocketClient(configuration: configuration)
    client.onConnect = { connection in
        connection.onMessage = { message in
            if case .text(let text) = message { firstText.setIfNil(text) }
            if echo { connection.send(message) }
        }
        connection.onClose = { _, _ in done.signal() }
    }
    client.onConnectFailed = { error in
        printError("AutobahnClient: \(path): \(error)")
        done.signal()
    }
    client.connect(url: options.url + path)
    done.wait()
    return firstText.value
}

/// A tiny lock-protected box for values set on a loop queue and read here.
final class Mutexed<Value: Sendable>: @unchecked Sendable {
    private let semaphore = DispatchSemaphore(value: 1)
    private var stored: Value
    init(_ value: Value) { stored = value }
    var value: Value {
        semaphore.wait()
        defer { semaphore.signal() }
        return stored
    }
    func setIfNil<T>(_ newValue: T) where Value == T? {
        semaphore.wait()
        if stored == nil { stored = newValue }
        semaphore.signal()
    }
}

guard let countText = run("/getCaseCount", echo: false), let count = Int(countText) else {
    printError("AutobahnClient: could not read the case count from \(options.url)")
    exit(1)
}
print("AutobahnClient: \(count) cases")
for index in 1...max(count, 1) where count > 0 {
    _ = run("/runCase?case=\(index)&agent=\(options.agent)", echo: true)
}
_ = run("/updateReports?agent=\(options.agent)", echo: false)
print("AutobahnClient: done")
