import XCTest

@testable import DispatchWebSocket

/// The pure parts of proxy support: the CONNECT request, the reading of the proxy's answer,
/// proxy URLs, the environment and `noProxy` matching.
final class ProxyConnectTests: XCTestCase {
    private func feed(_ exchange: inout ProxyConnect, _ text: String) -> Result<Void, WebSocketError>? {
        Array(text.utf8).withUnsafeBytes { exchange.receive($0) }
    }

    // MARK: The request

    func testRequestNamesTheTargetAndSendsBasicCredentials() throws {
        var proxy = WebSocketProxy(host: "proxy", port: 3128, username: "Aladdin", password: "open sesame")
        proxy.headers = ["X-Trace": "1"]
        let request = String(
            decoding: try ProxyConnect.request(host: "example.com", port: 443, proxy: proxy), as: UTF8.self)
        // RFC 7617's own example credentials.
        XCTAssertEqual(
            request,
            "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n"
                + "Proxy-Authorization: Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==\r\nX-Trace: 1\r\n\r\n")
    }

    func testRequestBracketsIPv6AndOmitsCredentialsWithoutAUser() throws {
        let proxy = WebSocketProxy(host: "proxy", port: 8080, password: "ignored without a user")
        let request = String(decoding: try ProxyConnect.request(host: "::1", port: 9001, proxy: proxy), as: UTF8.self)
        XCTAssertEqual(request, "CONNECT [::1]:9001 HTTP/1.1\r\nHost: [::1]:9001\r\n\r\n")
    }

    func testHostsThatCouldBreakTheRequestLineAreRefused() {
        let proxy = WebSocketProxy(host: "proxy", port: 8080)
        for host in ["", "a b", "evil\r\nX-Injected: 1", "bücher.example", "user@host", "a/b"] {
            XCTAssertThrowsError(try ProxyConnect.request(host: host, port: 80, proxy: proxy), host) { error in
                XCTAssertEqual((error as? WebSocketError)?.code, .invalidArgument)
            }
        }
    }

    func testUnsafeExtraHeaderLinesAreDropped() throws {
        var proxy = WebSocketProxy(host: "proxy", port: 8080)
        proxy.headers = ["X-Bad": "a\r\nInjected: yes", "X-Good": "ok"]
        let request = String(decoding: try ProxyConnect.request(host: "h", port: 80, proxy: proxy), as: UTF8.self)
        XCTAssertFalse(request.contains("Injected"), request)
        XCTAssertTrue(request.contains("\r\nX-Good: ok\r\n"), request)
    }

    // MARK: The answer

    func testA2xxAnswerSplitAcrossReadsOpensTheTunnel() {
        var exchange = ProxyConnect(maxHeadBytes: 1024)
        XCTAssertNil(feed(&exchange, "HTTP/1.0 200 Connection"))
        XCTAssertNil(feed(&exchange, " established\r\nProxy-Agent: x\r\n"))
        guard case .success = feed(&exchange, "\r\n") else { return XCTFail("tunnel not opened") }
    }

    func testRefusalsCarryTheirStatus() {
        for status in [407, 403, 502] {
            var exchange = ProxyConnect(maxHeadBytes: 1024)
            let result = feed(&exchange, "HTTP/1.1 \(status) No\r\nContent-Length: 0\r\n\r\n")
            guard case .failure(let error) = result else { return XCTFail("\(status) accepted") }
            XCTAssertEqual(error.code, .proxyFailed)
            XCTAssertEqual(error.httpStatus, status)
            XCTAssertTrue(error.message.contains("\(status)"), error.message)
        }
    }

    func testBytesAfterThe200AreRefused() {
        var exchange = ProxyConnect(maxHeadBytes: 1024)
        guard case .failure(let error) = feed(&exchange, "HTTP/1.1 200 OK\r\n\r\nHTTP/1.1 101 Switching") else {
            return XCTFail("accepted bytes no server could have sent yet")
        }
        XCTAssertEqual(error.code, .proxyFailed)
        XCTAssertNil(error.httpStatus)
    }

    func testAnOversizedOrMalformedAnswerFails() {
        var small = ProxyConnect(maxHeadBytes: 64)
        let long = "HTTP/1.1 200 OK\r\nX-Padding: \(String(repeating: "p", count: 100))\r\n\r\n"
        guard case .failure(let tooLarge) = feed(&small, long) else { return XCTFail("oversized head accepted") }
        XCTAssertEqual(tooLarge.code, .proxyFailed)
        XCTAssertTrue(tooLarge.message.contains("maxProxyHeaderBytes"), tooLarge.message)

        var exchange = ProxyConnect(maxHeadBytes: 1024)
        guard case .failure(let malformed) = feed(&exchange, "SSH-2.0-OpenSSH_9.6\r\n\r\n") else {
            return XCTFail("non-HTTP answer accepted")
        }
        XCTAssertEqual(malformed.code, .proxyFailed)
    }

    // MARK: Proxy URLs and the environment

    func testProxyURLs() throws {
        let full = try WebSocketProxy(url: "http://us%40er:p%3Ass@proxy.example:3128/")
        XCTAssertEqual(full, WebSocketProxy(host: "proxy.example", port: 3128, username: "us@er", password: "p:ss"))
        XCTAssertEqual(try WebSocketProxy(url: "HTTP://[::1]"), WebSocketProxy(host: "::1", port: 80))
        XCTAssertEqual(try WebSocketProxy(url: "10.0.0.1:8080"), WebSocketProxy(host: "10.0.0.1", port: 8080))
        XCTAssertEqual(try WebSocketProxy(url: "http://tom@p:1").username, "tom")
        XCTAssertNil(try WebSocketProxy(url: "http://tom@p:1").password)
        for bad in [
            "https://p:443", "socks5://p:1080", "http://", "http://p:0", "http://p:99999", "http://p/path",
            "http://p?x=1",
        ] {
            XCTAssertThrowsError(try WebSocketProxy(url: bad), bad) { error in
                XCTAssertEqual((error as? WebSocketError)?.code, .invalidArgument, bad)
            }
        }
    }

    func testEnvironmentVariablesAreReadAsCurlReadsThem() throws {
        func proxy(secure: Bool, _ environment: [String: String]) throws -> WebSocketProxy? {
            try WebSocketProxy.fromEnvironment(secure: secure) { environment[$0] }
        }
        let all = [
            "http_proxy": "http://plain:1", "HTTPS_PROXY": "http://secure:2", "ALL_PROXY": "http://all:3",
            "NO_PROXY": " localhost, .corp.example ,,",
        ]
        XCTAssertEqual(try proxy(secure: false, all)?.host, "plain")
        XCTAssertEqual(try proxy(secure: true, all)?.host, "secure")
        XCTAssertEqual(try proxy(secure: true, all)?.noProxy, ["localhost", ".corp.example"])
        XCTAssertEqual(
            try proxy(secure: true, ["https_proxy": "http://lower:1", "HTTPS_PROXY": "http://upper:2"])?.host, "lower")
        // HTTP_PROXY may come from a CGI request's Proxy header: never used.
        XCTAssertNil(try proxy(secure: false, ["HTTP_PROXY": "http://attacker:1"]))
        XCTAssertEqual(
            try proxy(secure: false, ["HTTP_PROXY": "http://attacker:1", "all_proxy": "http://all:3"])?.host, "all")
        XCTAssertNil(try proxy(secure: true, ["https_proxy": ""]))
        XCTAssertThrowsError(try proxy(secure: false, ["http_proxy": "socks5://h:1"]))
    }

    func testTheEnvironmentIsUsedOnlyWhenOptedIn() throws {
        var configuration = WebSocketClient.Configuration()
        let url = try WebSocketURL("ws://example.com/")
        configuration.proxy = WebSocketProxy(host: "explicit", port: 1, noProxy: ["example.org"])
        XCTAssertEqual(try configuration.proxy(for: url)?.host, "explicit")
        XCTAssertNil(try configuration.proxy(for: WebSocketURL("wss://api.example.org/")))
        configuration.proxy = nil
        XCTAssertNil(try configuration.proxy(for: url))
    }

    func testNoProxyMatching() {
        let proxy = WebSocketProxy(
            host: "p", port: 1,
            noProxy: ["localhost", ".corp.example", "*.dev.example", "Example.NET", "10.0.0.7:9000", "[::1]:8080"])
        XCTAssertTrue(proxy.bypasses(host: "localhost", port: 80))
        XCTAssertTrue(proxy.bypasses(host: "a.b.corp.example", port: 443))
        XCTAssertTrue(proxy.bypasses(host: "corp.example", port: 443))
        XCTAssertFalse(proxy.bypasses(host: "notcorp.example", port: 443))
        XCTAssertTrue(proxy.bypasses(host: "x.dev.example", port: 80))
        XCTAssertTrue(proxy.bypasses(host: "www.example.net", port: 80))
        XCTAssertTrue(proxy.bypasses(host: "10.0.0.7", port: 9000))
        XCTAssertFalse(proxy.bypasses(host: "10.0.0.7", port: 9001))
        XCTAssertTrue(proxy.bypasses(host: "::1", port: 8080))
        XCTAssertFalse(proxy.bypasses(host: "::1", port: 80))
        XCTAssertFalse(proxy.bypasses(host: "example.com", port: 80))
        XCTAssertTrue(WebSocketProxy(host: "p", port: 1, noProxy: ["*"]).bypasses(host: "anything", port: 1))
        XCTAssertFalse(WebSocketProxy(host: "p", port: 1, noProxy: ["."]).bypasses(host: "anything", port: 1))
    }
}
