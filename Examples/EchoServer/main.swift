import Dispatch
// EchoServer: echoes every message with its type, or with --broadcast sends every message to all
// connected clients. Driven by the Autobahn conformance runner and the benchmarks:
//
//   swift run -c release EchoServer [--host 127.0.0.1] [--port 9001] [--broadcast]
//                                   [--tls-cert CHAIN.pem --tls-key KEY.pem] [--deflate | --deflate-takeover]
//                                   [--deflate-threshold BYTES] [--transport dispatch|poller] [--async]
//
// --async serves the echo with the async/await API instead of callbacks: an accept loop over
// `server.requests` in a task group, each connection `for try await message in connection.messages
// { try await connection.send(message) }` (not combinable with --broadcast).
//
// --deflate negotiates permessage-deflate with the library's defaults (the server resets its
// compressor after each message); --deflate-takeover also lets the server keep its context.
//
// --transport picks the socket backend (WebSocketTransport); without it the platform's default,
// or DISPATCHWEBSOCKET_TRANSPORT's.
// With --tls-cert and --tls-key it serves wss:// (TLS 1.2/1.3) instead of ws://.
// It prints `listening on HOST:PORT` once it accepts connections.
import DispatchWebSocket

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// SIGTERM and SIGINT are blocked in every thread from here on (threads inherit the mask; none
// exists yet) and taken with `sigwait` by the main thread once the server listens, so a signal
// sent at any moment, even before `listening` is printed, waits instead of being lost. (A
// `DispatchSourceSignal` is registered later by libdispatch's manager thread; a signal that came
// in between was ignored, and the server never stopped.)
var stopSignals = sigset_t()
sigemptyset(&stopSignals)
sigaddset(&stopSignals, SIGTERM)
sigaddset(&stopSignals, SIGINT)
pthread_sigmask(SIG_BLOCK, &stopSignals, nil)

/// Writes a line to standard error (`stderr` itself is not concurrency-safe to reference).
func printError(_ message: String) {
    var line = message + "\n"
    line.withUTF8 { _ = write(2, $0.baseAddress, $0.count) }
}

struct Options {
    var host = "127.0.0.1"
    var port = 9001
    var broadcast = false
    var tlsCertificate: String?
    var tlsKey: String?
    var deflate: PerMessageDeflateOptions?
    var transport = WebSocketTransport.default
    var async = false
}

func parseOptions() -> Options {
    var options = Options()
    var arguments = CommandLine.arguments.dropFirst()
    while let argument = arguments.popFirst() {
        switch argument {
        case "--host": options.host = arguments.popFirst() ?? options.host
        case "--port": options.port = arguments.popFirst().flatMap { Int($0) } ?? -1
        case "--broadcast": options.broadcast = true
        case "--async": options.async = true
        case "--tls-cert": options.tlsCertificate = arguments.popFirst()
        case "--tls-key": options.tlsKey = arguments.popFirst()
        case "--deflate": options.deflate = PerMessageDeflateOptions()
        case "--deflate-takeover":
            options.deflate = PerMessageDeflateOptions(serverNoContextTakeover: false)
        case "--deflate-threshold":
            // Messages below this many bytes go uncompressed (default 1 KiB, as ws); 0 compresses all.
            guard let bytes = arguments.popFirst().flatMap({ Int($0) }), bytes >= 0 else {
                printError("EchoServer: --deflate-threshold needs a byte count")
                exit(2)
            }
            if options.deflate == nil { options.deflate = PerMessageDeflateOptions() }
            options.deflate?.threshold = bytes
        case "--transport":
            switch arguments.popFirst() {
            case "dispatch", "dispatchSources": options.transport = .dispatchSources
            case "poller": options.transport = .poller
            default:
                printError("EchoServer: --transport is dispatch or poller")
                exit(2)
            }
        default:
            printError(
                "usage: EchoServer [--host HOST] [--port PORT] [--broadcast] [--tls-cert FILE --tls-key FILE] [--deflate | --deflate-takeover] [--deflate-threshold BYTES] [--transport dispatch|poller] [--async]"
            )
            exit(2)
        }
    }
    guard (0...65535).contains(options.port) else {
        printError("EchoServer: --port needs a number from 0 to 65535")
        exit(2)
    }
    guard !(options.async && options.broadcast) else {
        printError("EchoServer: --async echoes; --broadcast is callback-only")
        exit(2)
    }
    guard (options.tlsCertificate == nil) == (options.tlsKey == nil) else {
        printError("EchoServer: --tls-cert and --tls-key go together")
        exit(2)
    }
    return options
}

let options = parseOptions()
var configuration = WebSocketServer.Configuration()
configuration.connection.keepalive = false  // peers under test answer on their own schedule
configuration.transport = options.transport
if let certificate = options.tlsCertificate, let key = options.tlsKey {
    configuration.tls = TLSServerConfiguration(identity: .pemFiles(certificateChain: certificate, privateKey: key))
}
configuration.perMessageDeflate = options.deflate
let server = WebSocketServer(configuration: configuration)

/// The echo with async/await: one child task per connection, one message at a time, in order,
/// each on its connection's loop (so a message and its echo need no thread hop).
func serveAsync(_ requests: WebSocketServerRequests) async {
    await withDiscardingTaskGroup { group in
        for await request in requests {
            group.addTask(executorPreference: request.taskExecutor) {
                guard let connection = try? request.accept(protocol: request.requestedProtocols.first) else { return }
                do {
                    for try await message in connection.messages { try await connection.send(message) }
                } catch {
                    // The connection closed abnormally (reported by the sequence) or a send failed: nothing to add.
                }
            }
        }
    }
}

if options.async {
    let requests = server.requests
    Task.detached { await serveAsync(requests) }  // the main thread stays in sigwait
} else {
    server.onRequest = { request in
        guard let connection = try? request.accept(protocol: request.requestedProtocols.first) else { return }
        connection.onMessage = { message in
            if options.broadcast {
                switch message {
                case .text(let text): server.broadcastUTF(text)
                case .binary(let bytes): server.broadcastBytes(bytes)
                }
            } else {
                // No flow-control code needed: while the echoes queue above highWaterMark the
                // connection stops reading (pauseReadingWhileBackpressured), so a client that never
                // reads is slowed by TCP instead of filling this process's memory.
                connection.send(message)
            }
        }
    }
}

do {
    let address = try server.listen(host: options.host, port: options.port)
    print("listening on \(address)")
    fflush(nil)
} catch {
    printError("EchoServer: \(error)")
    exit(1)
}
var signalNumber: Int32 = 0
sigwait(&stopSignals, &signalNumber)
server.shutDown { exit(0) }
while true { sigwait(&stopSignals, &signalNumber) }  // further signals wait for the shutdown
