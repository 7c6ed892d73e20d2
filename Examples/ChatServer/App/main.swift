// ChatServer: a chat room in the browser, built on DispatchWebSocket.
//
//   swift run ChatServer [--host 127.0.0.1] [--port 8080] [--allow-origin ORIGIN]... [--any-origin]
//                        [--tls-cert CHAIN.pem --tls-key KEY.pem]      # https:// and wss://
//                        [--redis redis://HOST:PORT[/DB]]              # one room across instances
//
// The PORT and REDIS_URL environment variables set the port and Redis too (the flags win).
// Open the printed URL.
import ChatRedis
import ChatRoom
import Dispatch
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

let usage = """
    usage: ChatServer [--host HOST] [--port PORT] [--allow-origin ORIGIN]... [--any-origin] [--tls-cert FILE --tls-key FILE]
                      [--redis URL] [--reuse-port] [--rate-limit N]
      --host HOST            address to listen on (default 127.0.0.1; 0.0.0.0 for all interfaces)
      --port PORT            port to listen on (default 8080, or $PORT; 0 picks a free one)
      --allow-origin ORIGIN  also accept pages from ORIGIN, e.g. http://localhost:3000 (repeatable)
      --any-origin           accept pages from any origin
      --tls-cert FILE        PEM certificate chain: serve https:// and wss:// (needs --tls-key)
      --tls-key FILE         PEM private key of that certificate
      --redis URL            share the room with every instance on this Redis: redis://HOST:PORT[/DB]
                             (or $REDIS_URL); without it the instance is on its own
      --reuse-port           let other instances listen on the same port (Linux SO_REUSEPORT)
      --rate-limit N         messages a connection may send per 10 s (default 10; load tests raise it)
    """

func fail(_ message: String) -> Never {
    var line = "ChatServer: \(message)\n"
    line.withUTF8 { _ = write(2, $0.baseAddress, $0.count) }
    exit(2)
}

func port(_ text: String?) -> Int {
    guard let text, let port = Int(text), (0...65535).contains(port) else { fail("the port must be 0–65535\n\(usage)") }
    return port
}

func parseConfiguration() -> ChatServer.Configuration {
    var configuration = ChatServer.Configuration()
    var certificate: String?
    var key: String?
    if let value = getenv("PORT") { configuration.port = port(String(cString: value)) }
    var redis = getenv("REDIS_URL").map { String(cString: $0) }
    var arguments = CommandLine.arguments.dropFirst()
    while let argument = arguments.popFirst() {
        switch argument {
        case "--host":
            guard let host = arguments.popFirst() else { fail("--host needs a value") }
            configuration.host = host
        case "--port":
            configuration.port = port(arguments.popFirst())
        case "--allow-origin":
            guard let origin = arguments.popFirst() else { fail("--allow-origin needs a value") }
            configuration.allowedOrigins.insert(origin)
        case "--any-origin":
            configuration.allowAnyOrigin = true
        case "--redis":
            guard let url = arguments.popFirst() else { fail("--redis needs a URL") }
            redis = url
        case "--reuse-port":
            configuration.reusePort = true
        case "--rate-limit":
            guard let text = arguments.popFirst(), let limit = Int(text), limit > 0 else {
                fail("--rate-limit needs a positive number")
            }
            configuration.rateLimit = limit
        case "--tls-cert":
            guard let path = arguments.popFirst() else { fail("--tls-cert needs a file") }
            certificate = path
        case "--tls-key":
            guard let path = arguments.popFirst() else { fail("--tls-key needs a file") }
            key = path
        case "-h", "--help":
            print(usage)
            exit(0)
        default:
            fail("unknown argument \(argument)\n\(usage)")
        }
    }
    if let redis, !redis.isEmpty {
        do throws(RedisError) {
            configuration.redis = try RedisURL(parsing: redis)
        } catch {
            fail("\(error)")
        }
    }
    switch (certificate, key) {
    case (let certificate?, let key?):
        configuration.tls = TLSServerConfiguration(identity: .pemFiles(certificateChain: certificate, privateKey: key))
    case (nil, nil):
        break
    default:
        fail("--tls-cert and --tls-key go together")
    }
    return configuration
}

let chat = ChatServer(configuration: parseConfiguration())
do {
    let address = try chat.start()
    // Listening on every interface: this machine is still reachable as localhost.
    let host =
        ["0.0.0.0", "::"].contains(address.host)
        ? "localhost"
        : address.host.contains(":") ? "[\(address.host)]" : address.host
    let scheme = chat.configuration.tls == nil ? "http" : "https"
    print("Chat server running: open \(scheme)://\(host):\(address.port)/ in your browser (Ctrl-C to stop)")
    fflush(nil)
} catch {
    fail("cannot listen on \(chat.configuration.host):\(chat.configuration.port): \(error)")
}

// Ctrl-C or SIGTERM: every client gets a close frame with 1001 "server shutting down", then we exit.
var signalNumber: Int32 = 0
sigwait(&stopSignals, &signalNumber)
print("\nShutting down…")
fflush(nil)
chat.shutDown { exit(0) }
while true { sigwait(&stopSignals, &signalNumber) }  // further signals wait for the shutdown
