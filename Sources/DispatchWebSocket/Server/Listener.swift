import Dispatch

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The accept loop: the listening socket registered on a loop, accepting until `EAGAIN` on each
/// wake-up, so a new connection that lands on the same loop starts without a queue hop.
///
/// When the process runs out of descriptors (`EMFILE`/`ENFILE`) it pauses its registration for
/// ``backoff`` instead of spinning on a socket that stays readable, and resumes by itself.
final class Listener: PollerClient, @unchecked Sendable {
    // @unchecked Sendable: confined to `loop`.
    let socket: Socket
    let address: SocketAddress
    private let loop: EventLoop
    private let transport: WebSocketTransport
    private var readiness: Readiness?
    private var onAccept: ((Socket, SocketAddress?) -> Void)?
    private var onError: ((WebSocketError) -> Void)?
    private var backingOff = false
    static let backoff: DispatchTimeInterval = .milliseconds(100)

    init(
        host: String, port: Int, backlog: Int32, deferAcceptSeconds: Int32, reusePort: Bool = false, loop: EventLoop,
        transport: WebSocketTransport = .default
    ) throws(WebSocketError) {
        (socket, address) = try Socket.listen(
            host: host, port: port, backlog: backlog, deferAcceptSeconds: deferAcceptSeconds, reusePort: reusePort)
        self.loop = loop
        self.transport = transport
        socketFile = nil
    }

    /// A listener on a socket that already listens: a Unix domain socket (its file removed when
    /// the listener stops) or a descriptor the app handed over.
    init(
        socket: Socket, address: SocketAddress, socketFile: UnixSocketFile?, loop: EventLoop,
        transport: WebSocketTransport
    ) {
        self.socket = socket
        self.address = address
        self.socketFile = socketFile
        self.loop = loop
        self.transport = transport
    }

    private let socketFile: UnixSocketFile?

    /// Starts accepting, on the loop; `onAccept` runs there for each new socket, `onError` for
    /// failures (running out of descriptors included).
    func start(onAccept: @escaping (Socket, SocketAddress?) -> Void, onError: @escaping (WebSocketError) -> Void) {
        self.onAccept = onAccept
        self.onError = onError
        do throws(WebSocketError) {
            readiness = try loop.register(socket.fd, self, transport: transport)
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
                readiness?.pauseReads()  // a level-triggered source would fire all through the backoff
                loop.asyncAfter(Self.backoff) { [self] in
                    backingOff = false
                    readiness?.resumeReads()
                    acceptAll()  // edge-triggered: the connections still waiting bring no new event
                }
                return
            case .failure(let error):
                onError?(error)
                return
            }
        }
    }

    /// Stops accepting and closes the listening socket; `closed` runs on the loop once it is
    /// closed (with the Dispatch-source backend, after the source's cancellation). On the loop.
    func stop(closed: (@Sendable () -> Void)? = nil) {
        onAccept = nil
        onError = nil
        let socketFile = socketFile
        guard let readiness else {
            socket.close()
            socketFile?.removeIfUnchanged()
            closed?()
            return
        }
        self.readiness = nil
        readiness.cancel(closingFD: true) {
            socketFile?.removeIfUnchanged()
            closed?()
        }
    }
}
