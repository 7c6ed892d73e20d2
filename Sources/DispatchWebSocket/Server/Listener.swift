import Dispatch
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The accept loop: a `DispatchSourceRead` on the listening socket that accepts until `EAGAIN`.
///
/// When the process runs out of descriptors (`EMFILE`/`ENFILE`) it stops accepting for
/// ``backoff`` instead of spinning on a socket that stays readable, and resumes by itself.
final class Listener: @unchecked Sendable {
    // @unchecked Sendable: confined to `queue`.
    let socket: Socket
    let address: SocketAddress
    private let queue: DispatchQueue
    private var source: DispatchSourceRead?
    private var suspended = false
    static let backoff: DispatchTimeInterval = .milliseconds(100)

    init(host: String, port: Int, backlog: Int32, queue: DispatchQueue) throws(WebSocketError) {
        (socket, address) = try Socket.listen(host: host, port: port, backlog: backlog)
        self.queue = queue
    }

    /// Starts accepting; `onAccept` runs on `queue` for each new socket, `onError` for failures
    /// other than running out of descriptors.
    func start(onAccept: @escaping (Socket, SocketAddress?) -> Void, onError: @escaping (WebSocketError) -> Void) {
        let source = DispatchSource.makeReadSource(fileDescriptor: socket.fd, queue: queue)
        let socket = self.socket
        source.setEventHandler { [unowned self] in
            while let result = socket.accept() {
                switch result {
                case .success(let (client, peer)):
                    onAccept(client, peer)
                case .failure(let error) where error.errno == EMFILE || error.errno == ENFILE:
                    onError(error)
                    pause()
                    return
                case .failure(let error):
                    onError(error)
                    return
                }
            }
        }
        source.setCancelHandler { socket.close() }
        self.source = source
        source.resume()
    }

    private func pause() {
        guard let source, !suspended else { return }
        suspended = true
        source.suspend()
        queue.asyncAfter(deadline: .now() + Self.backoff) { [self] in
            guard suspended, let source = self.source else { return }
            suspended = false
            source.resume()
        }
    }

    /// Stops accepting and closes the listening socket. On `queue`.
    func stop() {
        guard let source else { return }
        self.source = nil
        if suspended {
            suspended = false
            source.resume()
        }
        source.cancel()
    }
}
