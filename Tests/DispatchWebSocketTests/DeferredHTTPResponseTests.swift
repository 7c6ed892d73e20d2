import XCTest

@testable import DispatchWebSocket

/// `onDeferredHTTPRequest`: an answer given later from another queue (keep-alive and pipelining
/// as for `onHTTPRequest`), exactly once, 500 when the responder is dropped, and bodies pulled
/// from a file or a generator as the socket takes them.
final class DeferredHTTPResponseTests: XCTestCase {
    private func server(_ handler: @escaping @Sendable (HTTPRequest, HTTPResponder) -> Void) throws -> Int {
        let (_, port) = try startServer(self) { server in
            server.onHTTPRequest = { _ in HTTPResponse(status: 418, body: "the synchronous handler must not run") }
            server.onDeferredHTTPRequest = handler
        }
        return port
    }

    /// How many of the process's descriptors are open on `path`.
    private static func descriptors(openOn path: String) -> Int {
        let target = URL(fileURLWithPath: path).resolvingSymlinksInPath().path
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []
        return entries.filter {
            (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/\($0)")) == target
        }.count
    }

    /// Reads exactly `count` bytes after a head.
    private func readBody(_ client: RawClient, count: Int) throws -> [UInt8] {
        var body: [UInt8] = []
        while body.count < count {
            guard let chunk = try client.readSome(max: count - body.count) else { break }
            body += chunk
        }
        return body
    }

    func testAnAnswerFromAnotherQueueKeepsPipelinedRequestsInOrder() throws {
        let port = try server { request, responder in
            let path = request.path
            // Later, from elsewhere; the first request waits longest, yet answers come in order.
            DispatchQueue.global().asyncAfter(deadline: .now() + (path == "/first" ? 0.2 : 0.0)) {
                XCTAssertTrue(responder.respond(HTTPResponse(status: 200, body: "answer to \(path)")))
                XCTAssertFalse(responder.respond(HTTPResponse(status: 500, body: "twice")))
            }
        }
        let client = try RawClient(port: port)
        try client.write(
            "GET /first HTTP/1.1\r\nHost: x\r\n\r\nPOST /second HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc")
        let first = try client.readHTTPResponse()
        XCTAssertTrue(first.head.hasPrefix("HTTP/1.1 200"), first.head)
        XCTAssertTrue(first.head.lowercased().contains("connection: keep-alive"))
        XCTAssertEqual(first.body, "answer to /first")
        let second = try client.readHTTPResponse()
        XCTAssertEqual(second.body, "answer to /second")
        try client.write("GET /third HTTP/1.0\r\n\r\n")  // HTTP/1.0 without keep-alive: closed after
        let third = try client.readHTTPResponse()
        XCTAssertEqual(third.body, "answer to /third")
        XCTAssertTrue(third.head.lowercased().contains("connection: close"))
        try client.readUntilEOF()
    }

    func testADroppedResponderAnswers500AndHEADGetsNoBody() throws {
        let port = try server { request, responder in
            if request.path == "/forgotten" { return }  // the responder is released unanswered
            responder.respond(HTTPResponse(status: 200, body: "some body"))
        }
        let client = try RawClient(port: port)
        try client.write("GET /forgotten HTTP/1.1\r\nHost: x\r\n\r\n")
        let forgotten = try client.readHTTPResponse()
        XCTAssertTrue(forgotten.head.hasPrefix("HTTP/1.1 500"), forgotten.head)
        try client.write("HEAD /page HTTP/1.1\r\nHost: x\r\n\r\nGET /page HTTP/1.1\r\nHost: x\r\n\r\n")
        let head = try client.readHTTPHead()
        XCTAssertTrue(head.lowercased().contains("content-length: 9"), head)
        let get = try client.readHTTPResponse()  // the HEAD had no body: this is the next response
        XCTAssertTrue(get.head.hasPrefix("HTTP/1.1 200"))
        XCTAssertEqual(get.body, "some body")
    }

    func testAFileBodyIsStreamedAndItsDescriptorClosed() throws {
        let path = NSTemporaryDirectory() + "DeferredHTTPResponseTests-\(getpid()).bin"
        var generator = SplitMix64(seed: 7)
        let contents = (0..<(3 << 20) + 12_345).map { _ in UInt8.random(in: 0...255, using: &generator) }
        XCTAssertTrue(FileManager.default.createFile(atPath: path, contents: Data(contents)))
        defer { try? FileManager.default.removeItem(atPath: path) }
        let probe = open(path, O_RDONLY)  // the helper below sees a descriptor on the file
        XCTAssertEqual(Self.descriptors(openOn: path), 1)
        close(probe)
        let port = try server { _, responder in
            do {
                responder.respond(
                    status: 200, headers: ["Content-Type": "application/octet-stream"], body: try .file(atPath: path))
            } catch {
                responder.respond(HTTPResponse(status: 500, body: "\(error)"))
            }
        }
        let client = try RawClient(port: port)
        try client.write("GET /file HTTP/1.1\r\nHost: x\r\n\r\n")
        let head = try client.readHTTPHead()
        XCTAssertTrue(head.lowercased().contains("content-length: \(contents.count)"), head)
        XCTAssertEqual(try readBody(client, count: contents.count), contents)
        // Keep-alive still works after a streamed body, and the file is closed.
        try client.write("GET /file HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        _ = try client.readHTTPHead()
        XCTAssertEqual(try readBody(client, count: contents.count).count, contents.count)
        try client.readUntilEOF()
        waitUntil({ Self.descriptors(openOn: path) }, equals: 0)  // the file is closed after each response
        XCTAssertThrowsError(try HTTPResponseBody.file(atPath: path + ".missing")) { error in
            XCTAssertEqual((error as? WebSocketError)?.code, .invalidArgument)
        }
    }

    func testAGeneratedBodyIsPulledOnlyAsTheClientReads() throws {
        let total = 64 << 20
        let pulled = LockedValue(0)
        let port = try server { _, responder in
            responder.respond(
                status: 200,
                body: HTTPResponseBody(contentLength: total) { maxBytes in
                    let offset = pulled.withLock { value in
                        defer { value += maxBytes }
                        return value
                    }
                    return [UInt8](repeating: UInt8(truncatingIfNeeded: offset >> 16), count: maxBytes)
                })
        }
        let client = try RawClient(port: port, timeoutSeconds: 30)
        try client.write("GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
        _ = try client.readHTTPHead()
        // Whatever the timing, the server never gets further ahead of the reader than the two
        // kernel buffers and its two queued chunks (16 MiB is generous for both kernels).
        let bound = 16 << 20
        var received = 0
        while received < total {
            guard let chunk = try client.readSome(max: 1 << 16) else { break }
            if received % (1 << 16) == 0, let first = chunk.first {
                XCTAssertEqual(first, UInt8(truncatingIfNeeded: received >> 16))
            }
            received += chunk.count
            XCTAssertLessThanOrEqual(pulled.withLock { $0 } - received, bound)
        }
        XCTAssertEqual(received, total)
        XCTAssertEqual(pulled.withLock { $0 }, total)
    }

    func testAPipelinedRequestWaitsForAStreamedBodyAnsweredAtOnce() throws {
        let port = try server { request, responder in
            let byte: UInt8 = request.path == "/a" ? 0x61 : 0x62
            let left = LockedValue(300_000)  // several chunks: the stream outlives the handler
            responder.respond(
                status: 200,
                body: HTTPResponseBody(contentLength: 300_000) { maxBytes in
                    left.withLock { left in
                        let count = min(maxBytes, left)
                        left -= count
                        return [UInt8](repeating: byte, count: count)
                    }
                })
        }
        let client = try RawClient(port: port)
        try client.write("GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n")
        for byte: UInt8 in [0x61, 0x62] {
            let head = try client.readHTTPHead()
            XCTAssertTrue(head.lowercased().contains("content-length: 300000"), head)
            XCTAssertEqual(try readBody(client, count: 300_000), [UInt8](repeating: byte, count: 300_000))
        }
    }

    func testAnAppThatNeverAnswersIsBoundedByTheHandshakeTimeout() throws {
        let kept = LockedValue<[HTTPResponder]>([])
        let (_, port) = try startServer(self, configure: { $0.handshakeTimeout = .seconds(1) }) { server in
            server.onDeferredHTTPRequest = { _, responder in kept.withLock { $0.append(responder) } }
        }
        let client = try RawClient(port: port)
        try client.write("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        XCTAssertNil(try client.readSome(max: 1))  // closed without an answer
        let responder = try XCTUnwrap(kept.withLock { $0.first })
        XCTAssertTrue(responder.respond(HTTPResponse(status: 200)))  // first answer: accepted, then discarded
        XCTAssertFalse(responder.respond(HTTPResponse(status: 200)))
    }

    func testASourceThatEndsEarlyClosesTheConnection() throws {
        let port = try server { _, responder in
            let given = LockedValue(0)
            responder.respond(
                status: 200,
                body: HTTPResponseBody(contentLength: 1000) { _ in
                    given.withLock { count in
                        defer { count += 1 }
                        return count == 0 ? Array(repeating: 1, count: 100) : []  // 100 of 1000, then nothing
                    }
                })
        }
        let client = try RawClient(port: port)
        try client.write("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        _ = try client.readHTTPHead()
        XCTAssertEqual(try readBody(client, count: 1000).count, 100)  // then EOF: a short body
    }
}
