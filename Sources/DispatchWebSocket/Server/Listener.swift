import Dispatch
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The accept loop: the listening socket on a loop's poller, accepting until `EAGAIN` on each
/// wake-up, so a new connection that lands on the same loop starts without a queue hop.
///
/// When the process runs out of descriptors (`EMFILE`/`ENFILE`) it stops accepting for
/// ``backoff`` instead of spinning on a socket that stays readable, and resumes by itself.
final class Listener: PollerClient, @unchecked Sendable {
    // @unchecked Sendable: confined to `loop`.
    let socket: Socket
    let address: SocketAddress
    private let loop: EventLoop
    private var onAccept: ((Socket, SocketAddress?) -> Void)?
    private var onError: ((WebSocketError) -> Void)?
    private var backingOff = false
    static let backoff: DispatchTimeInterval = .milliseconds(100)

    init(host: String, port: Int, backlog: Int32, deferAcceptSeconds: Int32, loop: EventLoop) throws(WebSocketError) {
        (socket, address) = try Socket.listen(
            host: host, port: port, backlog: backlog, deferAcceptSeconds: deferAcceptSeconds)
        self.loop = loop
    }

    /// Starts accepting, on the loop; `onAccept` runs there for each new socket, `onError` for
    /// failures (running out of descriptors included).
    func start(onAccept: @escaping (Socket, SocketAddress?) -> Void, onError: @escaping (WebSocketError) -> Void) {
        self.onAccept = onAccept
        self.onError = onError
        do throws(WebSocketError) {
            try loop.register(socket.fd, self)
        } catch {
            onError(error)
        }
    }

    func pollerReady(_ events: PollEvents) {
        acceptAll()
    }

    private func acceptAll() {
        guard !backingOff else { return }
        while let onAccept, let result = socket.accept() {
            switch result {
            case .success(let (client, peer)):
                onAccept(client, peer)
            case .failure(let error) where error.errno == EMFILE || error.errno == ENFILE:
                onError?(error)
                backingOff = true
                loop.asyncAfter(Self.backoff) { [self] in
                    backingOff = false
                    acceptAll()  // edge-triggered: the connections still waiting bring no new event
                }
                return
            case .failure(let error):
                onError?(error)
                return
            }
        }
    }

    /// Stops accepting and closes the listening socket. On the loop.
    func stop() {
        guard onAccept != nil else { return socket.close() }
        onAccept = nil
        onError = nil
        loop.unregister(socket.fd)
        socket.close()
    }
}
