import XCTest

@testable import DispatchWebSocket

#if canImport(Glibc)
import Glibc
#endif

/// ``TLSStream`` without a channel: two streams over a socketpair, the ciphertext between them
/// carried by the test, one byte per `receive` — every record and frame split at every byte.
final class TLSStreamTests: XCTestCase {
    private struct Pair {
        let loop: EventLoop  // the streams hold it unowned
        let fds: [Int32]
        let server: TLSStream
        let client: TLSStream
    }

    private func makePair(_ configure: (inout TLSServerConfiguration) -> Void = { _ in }) throws -> Pair {
        let pki = try TestPKI.require()
        var serverConfiguration = TLSServerConfiguration(
            identity: .pemFiles(
                certificateChain: pki.serverChainPath, privateKey: pki.serverKeyPath))
        configure(&serverConfiguration)
        let serverContext = try TLSContext.server(serverConfiguration)
        var clientConfiguration = TLSClientConfiguration()
        clientConfiguration.trustRoots = .pemFile(pki.caPath)
        let clientContext = try TLSContext.client(clientConfiguration)
        var fds: [Int32] = [0, 0]
        XCTAssertEqual(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds), 0)
        for fd in fds { Socket(fd: fd).setNonBlocking() }
        let loop = EventLoop(label: "tls-stream-test")
        addTeardownBlock { for fd in fds { close(fd) } }
        return Pair(
            loop: loop, fds: fds,
            server: try TLSStream(context: serverContext, socket: Socket(fd: fds[0]), loop: loop, expectedHost: nil),
            client: try TLSStream(
                context: clientContext, socket: Socket(fd: fds[1]), loop: loop, expectedHost: "localhost"))
    }

    /// Everything waiting on `fd` (what the stream at the other end wrote).
    private func drain(_ fd: Int32) -> [UInt8] {
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            guard n > 0 else { return bytes }
            bytes.append(contentsOf: chunk[0..<n])
        }
    }

    /// Feeds `ciphertext` one byte per call; returns the plaintext and the last outcome.
    private func feedByteByByte(_ ciphertext: [UInt8], to stream: TLSStream) -> ([UInt8], TLSStream.ReceiveOutcome) {
        var plaintext: [UInt8] = []
        var outcome = TLSStream.ReceiveOutcome.ok
        for byte in ciphertext {
            outcome = withUnsafeBytes(of: byte) { one in
                stream.receive(one) {
                    plaintext.append(contentsOf: $0)
                    return true
                }
            }
            if case .ok = outcome { continue }
            break
        }
        return (plaintext, outcome)
    }

    private func handshake(_ pair: Pair) {
        _ = pair.client.receive(UnsafeRawBufferPointer(start: nil, count: 0)) { _ in true }  // ClientHello
        for _ in 0..<6 where !(pair.server.isHandshakeComplete && pair.client.isHandshakeComplete) {
            _ = feedByteByByte(drain(pair.fds[0]), to: pair.server)
            _ = feedByteByByte(drain(pair.fds[1]), to: pair.client)
        }
    }

    func testRecordBuffersAreReleasedWhenIdleOnlyOnceTheHandshakeIsDone() throws {
        let pair = try makePair()
        XCTAssertFalse(pair.server.releasesIdleBuffers)
        XCTAssertFalse(pair.client.releasesIdleBuffers)
        handshake(pair)
        XCTAssertTrue(pair.server.isHandshakeComplete && pair.client.isHandshakeComplete)
        XCTAssertTrue(pair.server.releasesIdleBuffers)
        XCTAssertTrue(pair.client.releasesIdleBuffers)
    }

    func testSessionTicketsDecideWhetherTheClientCanResume() throws {
        for (tickets, resumable) in [(1, true), (0, false)] {
            let pair = try makePair { $0.sessionTickets = tickets }
            handshake(pair)
            // TLS 1.3 tickets follow the handshake: the client reads them with the next records.
            _ = feedByteByByte(drain(pair.fds[1]), to: pair.client)
            XCTAssertEqual(pair.client.hasResumableSession, resumable, "sessionTickets = \(tickets)")
        }
        XCTAssertThrowsError(try makePair { $0.sessionTickets = -1 }) {
            XCTAssertEqual(($0 as? WebSocketError)?.code, .tlsConfigurationInvalid)
        }
    }

    func testHandshakeRecordsAndCloseNotifySplitAtEveryByte() throws {
        let pair = try makePair()
        handshake(pair)
        XCTAssertTrue(pair.server.isHandshakeComplete)
        XCTAssertTrue(pair.client.isHandshakeComplete)
        XCTAssertTrue(pair.client.takeHandshakeCompleted())
        XCTAssertFalse(pair.client.takeHandshakeCompleted())
        XCTAssertEqual(pair.server.serverName, "localhost")

        // A masked frame whose payload spans three records, sent as two iovecs (header, payload).
        var payload = [UInt8](repeating: 0, count: 40_000)
        var generator = SplitMix64(seed: 3)
        for i in payload.indices { payload[i] = UInt8(ascii: "a") + UInt8(generator.next() % 26) }
        let frame = WebSocketFrame(fin: true, opcode: .text, maskingKey: .random(), payload: payload).encoded()
        let headerSize = frame.count - payload.count
        let taken = frame.withUnsafeBytes { bytes -> Socket.IOResult in
            var iovecs = [
                iovec(iov_base: UnsafeMutableRawPointer(mutating: bytes.baseAddress!), iov_len: headerSize),
                iovec(
                    iov_base: UnsafeMutableRawPointer(mutating: bytes.baseAddress! + headerSize), iov_len: payload.count
                ),
            ]
            return pair.client.write(iovecs: &iovecs, count: 2)
        }
        XCTAssertEqual(taken, .bytes(frame.count))
        let ciphertext = drain(pair.fds[0])
        // Staged into full records: 40,0xx bytes need 3 records (~22 bytes of overhead each in TLS 1.3).
        XCTAssertLessThan(ciphertext.count, frame.count + 4 * 30)
        let (plaintext, outcome) = feedByteByByte(ciphertext, to: pair.server)
        guard case .ok = outcome else { return XCTFail("\(outcome)") }
        XCTAssertEqual(plaintext, frame)
        var decoder = WebSocketFrameDecoder()
        XCTAssertEqual(try decoder.decode(plaintext).map(\.payload), [payload])

        pair.client.sendCloseNotify()
        XCTAssertTrue(pair.client.closeNotifySent)
        let (_, end) = feedByteByByte(drain(pair.fds[0]), to: pair.server)
        guard case .endOfStream = end else { return XCTFail("close_notify not seen: \(end)") }
    }

    func testGarbageAfterTheHandshakeIsATLSError() throws {
        let pair = try makePair()
        handshake(pair)
        let garbage: [UInt8] = [0x17, 0x03, 0x03, 0x00, 0x20] + [UInt8](repeating: 0xAB, count: 32)
        let outcome = garbage.withUnsafeBytes { pair.server.receive($0) { _ in true } }
        guard case .failed(let error) = outcome else { return XCTFail("\(outcome)") }
        XCTAssertEqual(error.code, .tlsError, error.description)
        // A failed session stays failed.
        guard case .failed = pair.server.receive(UnsafeRawBufferPointer(start: nil, count: 0), deliver: { _ in true })
        else {
            return XCTFail("a failed stream accepted more input")
        }
    }

    func testUnsentRecordsWaitAndCountAsBuffered() throws {
        let pair = try makePair()
        handshake(pair)
        // Fill the socketpair until the kernel refuses, without the peer reading.
        let chunk = [UInt8](repeating: 7, count: 64 * 1024)
        var pendingSeen = false
        for _ in 0..<64 {
            let result = chunk.withUnsafeBytes { bytes -> Socket.IOResult in
                var vector = iovec(
                    iov_base: UnsafeMutableRawPointer(mutating: bytes.baseAddress!), iov_len: bytes.count)
                return pair.client.write(iovecs: &vector, count: 1)
            }
            if pair.client.hasPendingOutput { pendingSeen = true }
            if result == .wouldBlock { break }
        }
        XCTAssertTrue(pendingSeen)
        XCTAssertGreaterThan(pair.client.pendingOutputCount, 0)
        // Reading at the far end lets the pending records go out, in order.
        var received: [UInt8] = []
        while true {
            received += drain(pair.fds[0])
            if case .drained = pair.client.writePending() {
                received += drain(pair.fds[0])
                break
            }
        }
        XCTAssertFalse(pair.client.hasPendingOutput)
        var plaintext: [UInt8] = []
        let outcome = received.withUnsafeBytes {
            pair.server.receive($0) {
                plaintext.append(contentsOf: $0)
                return true
            }
        }
        guard case .ok = outcome else { return XCTFail("\(outcome)") }
        XCTAssertEqual(plaintext.count % chunk.count, 0)
        XCTAssertTrue(plaintext.allSatisfy { $0 == 7 })
    }
}
