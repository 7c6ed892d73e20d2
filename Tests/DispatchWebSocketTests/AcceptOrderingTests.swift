import XCTest

@testable import DispatchWebSocket

/// What the app sends right after accepting reaches the client after the 101 response.
final class AcceptOrderingTests: XCTestCase {
    func testAMessageSentRightAfterAcceptInsideOnRequestFollowsThe101() throws {
        let (_, port) = try startServer(self) { server in
            server.onRequest = { request in
                let connection = try? request.accept()
                connection?.sendUTF("welcome")  // before the handler returns, on the loop
            }
        }
        for _ in 0..<20 {
            let client = try RawClient(port: port)
            try client.upgrade()  // throws when the bytes before the head are a frame
            XCTAssertEqual(try client.readFrame().map { String(decoding: $0.payload, as: UTF8.self) }, "welcome")
        }
    }

    func testAMessageSentRightAfterAcceptFromAnotherThreadFollowsThe101() throws {
        let (_, port) = try startServer(self) { server in
            server.onRequest = { request in
                DispatchQueue.global().async {
                    let connection = try? request.accept()
                    connection?.sendUTF("later welcome")
                }
            }
        }
        for _ in 0..<20 {
            let client = try RawClient(port: port)
            try client.upgrade()
            XCTAssertEqual(try client.readFrame().map { String(decoding: $0.payload, as: UTF8.self) }, "later welcome")
        }
    }
}
