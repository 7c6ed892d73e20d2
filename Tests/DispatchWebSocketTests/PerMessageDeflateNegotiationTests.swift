import XCTest

@testable import DispatchWebSocket

/// RFC 7692 §5–§7 negotiation tables, both roles, with no zlib and no sockets.
final class PerMessageDeflateNegotiationTests: XCTestCase {
    private func offers(_ headers: String...) -> [WebSocketExtensionOffer] {
        WebSocketExtensionOffer.parse(headers)!
    }

    /// The server's answer header for the given offer headers, `nil` when declined.
    private func answer(_ headers: [String], _ options: PerMessageDeflateOptions = .init()) -> String? {
        PerMessageDeflateNegotiation.serverAccept(offers: WebSocketExtensionOffer.parse(headers)!, options: options)?
            .header
    }

    private let takeoverBoth = PerMessageDeflateOptions(
        serverMaxWindowBits: 15, clientMaxWindowBits: 15, serverNoContextTakeover: false, clientNoContextTakeover: false
    )

    func testServerAnswersEachParameter() {
        let table: [(offer: String, options: PerMessageDeflateOptions, answer: String?)] = [
            ("permessage-deflate", takeoverBoth, "permessage-deflate"),
            ("permessage-deflate", .init(), "permessage-deflate; server_no_context_takeover"),
            (
                "permessage-deflate; server_no_context_takeover", takeoverBoth,
                "permessage-deflate; server_no_context_takeover"
            ),
            (
                "permessage-deflate; client_no_context_takeover", takeoverBoth,
                "permessage-deflate; client_no_context_takeover"
            ),
            (
                "permessage-deflate",
                PerMessageDeflateOptions(serverNoContextTakeover: false, clientNoContextTakeover: true),
                "permessage-deflate; client_no_context_takeover"
            ),
            (
                "permessage-deflate; server_max_window_bits=10", takeoverBoth,
                "permessage-deflate; server_max_window_bits=10"
            ),
            (
                "permessage-deflate; server_max_window_bits=15", takeoverBoth,
                "permessage-deflate; server_max_window_bits=15"
            ),
            (
                "permessage-deflate", PerMessageDeflateOptions(serverMaxWindowBits: 11, serverNoContextTakeover: false),
                "permessage-deflate; server_max_window_bits=11"
            ),
            (
                "permessage-deflate; server_max_window_bits=13",
                PerMessageDeflateOptions(serverMaxWindowBits: 11, serverNoContextTakeover: false),
                "permessage-deflate; server_max_window_bits=11"
            ),
            // client_max_window_bits bare: we pick; with a value: at most that.
            ("permessage-deflate; client_max_window_bits", takeoverBoth, "permessage-deflate"),
            (
                "permessage-deflate; client_max_window_bits", PerMessageDeflateOptions(serverNoContextTakeover: false),
                "permessage-deflate; client_max_window_bits=12"
            ),
            (
                "permessage-deflate; client_max_window_bits=10", takeoverBoth,
                "permessage-deflate; client_max_window_bits=10"
            ),
            (
                "permessage-deflate; client_max_window_bits=8", takeoverBoth,
                "permessage-deflate; client_max_window_bits=8"
            ),
            // Without client_max_window_bits in the offer we may not limit the client.
            (
                "permessage-deflate", PerMessageDeflateOptions(clientMaxWindowBits: 9, serverNoContextTakeover: false),
                "permessage-deflate"
            ),
            // Case-insensitive names.
            (
                "Permessage-Deflate; Server_No_Context_Takeover", takeoverBoth,
                "permessage-deflate; server_no_context_takeover"
            ),
            // Another extension alone: nothing.
            ("x-webkit-deflate-frame", .init(), nil),
        ]
        for row in table {
            XCTAssertEqual(answer([row.offer], row.options), row.answer, row.offer)
        }
    }

    func testServerDeclinesBadOffers() {
        let bad = [
            "permessage-deflate; foo",
            "permessage-deflate; foo=1",
            "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
            "permessage-deflate; client_max_window_bits; client_max_window_bits=10",
            "permessage-deflate; server_no_context_takeover=1",
            "permessage-deflate; client_no_context_takeover=true",
            "permessage-deflate; server_max_window_bits",
            "permessage-deflate; server_max_window_bits=7",
            "permessage-deflate; server_max_window_bits=16",
            "permessage-deflate; server_max_window_bits=010",
            "permessage-deflate; server_max_window_bits=1a",
            "permessage-deflate; server_max_window_bits=\"\"",
            "permessage-deflate; client_max_window_bits=0",
            "permessage-deflate; client_max_window_bits=-9",
            // zlib cannot compress with an 8-bit window: declined rather than broken.
            "permessage-deflate; server_max_window_bits=8",
        ]
        for offer in bad {
            XCTAssertNil(answer([offer]), offer)
        }
        // A quoted value is unquoted first and is fine when it is a valid number.
        XCTAssertEqual(
            answer(["permessage-deflate; server_max_window_bits=\"10\""], takeoverBoth),
            "permessage-deflate; server_max_window_bits=10")
    }

    func testServerTakesTheFirstAcceptableOfferInOrderWithinAndAcrossHeaders() {
        XCTAssertEqual(
            answer(
                [
                    "permessage-deflate; server_max_window_bits=8, permessage-deflate; client_no_context_takeover, permessage-deflate"
                ], takeoverBoth),
            "permessage-deflate; client_no_context_takeover")
        XCTAssertEqual(
            answer(["permessage-deflate; bogus", "x-foo, permessage-deflate; server_max_window_bits=9"], takeoverBoth),
            "permessage-deflate; server_max_window_bits=9")
        XCTAssertEqual(
            answer(["permessage-deflate; server_no_context_takeover", "permessage-deflate"], takeoverBoth),
            "permessage-deflate; server_no_context_takeover")
        XCTAssertNil(answer(["permessage-deflate; a", "permessage-deflate; b"]))
    }

    func testServerParametersSayWhatEachSideDoes() throws {
        let agreed = try XCTUnwrap(
            PerMessageDeflateNegotiation.serverAccept(
                offers: offers(
                    "permessage-deflate; client_no_context_takeover; server_max_window_bits=10; client_max_window_bits"),
                options: .init()))
        XCTAssertEqual(agreed.outboundWindowBits, 10)
        XCTAssertEqual(agreed.inboundWindowBits, 12)
        XCTAssertTrue(agreed.outboundNoContextTakeover)
        XCTAssertTrue(agreed.inboundNoContextTakeover)
        XCTAssertEqual(
            agreed.header,
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=10; client_max_window_bits=12"
        )
        // A client's 8-bit window is agreed and inflated with 9.
        let eight = try XCTUnwrap(
            PerMessageDeflateNegotiation.serverAccept(
                offers: offers("permessage-deflate; client_max_window_bits=8"), options: .init()))
        XCTAssertEqual(eight.inboundWindowBits, 8)
        XCTAssertEqual(eight.inflateWindowBits, 9)
    }

    // MARK: Client

    func testClientOffer() {
        XCTAssertEqual(
            PerMessageDeflateNegotiation.clientOffer(.init()),
            "permessage-deflate; server_no_context_takeover; client_max_window_bits")
        XCTAssertEqual(
            PerMessageDeflateNegotiation.clientOffer(takeoverBoth), "permessage-deflate; client_max_window_bits")
        XCTAssertEqual(
            PerMessageDeflateNegotiation.clientOffer(
                PerMessageDeflateOptions(
                    serverMaxWindowBits: 10, serverNoContextTakeover: false, clientNoContextTakeover: true)),
            "permessage-deflate; client_no_context_takeover; server_max_window_bits=10; client_max_window_bits")
    }

    private func clientAccept(
        _ headers: [String],
        _ options: PerMessageDeflateOptions? = PerMessageDeflateOptions(
            serverMaxWindowBits: 15, clientMaxWindowBits: 15, serverNoContextTakeover: false,
            clientNoContextTakeover: false)
    ) -> Result<PerMessageDeflateParameters?, ClientHandshakeError> {
        PerMessageDeflateNegotiation.clientAccept(responseHeaders: headers, options: options)
    }

    func testClientAcceptsAllowedAnswers() throws {
        XCTAssertNil(try clientAccept([]).get())
        let plain = try XCTUnwrap(clientAccept(["permessage-deflate"]).get())
        XCTAssertEqual([plain.outboundWindowBits, plain.inboundWindowBits], [15, 15])
        XCTAssertFalse(plain.outboundNoContextTakeover || plain.inboundNoContextTakeover)

        let all = try XCTUnwrap(
            clientAccept([
                "permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=9; client_max_window_bits=10"
            ]).get())
        XCTAssertEqual(all.outboundWindowBits, 10)
        XCTAssertEqual(all.inboundWindowBits, 9)
        XCTAssertTrue(all.outboundNoContextTakeover)
        XCTAssertTrue(all.inboundNoContextTakeover)
        XCTAssertEqual(
            all.header,
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=9; client_max_window_bits=10"
        )

        // The server may limit our window to 8: the RFC allows it, zlib cannot: we then send uncompressed.
        let eight = try XCTUnwrap(clientAccept(["permessage-deflate; client_max_window_bits=8"]).get())
        XCTAssertFalse(eight.canCompress)
        // The server's own 8-bit window is fine for us to inflate.
        XCTAssertEqual(
            try XCTUnwrap(clientAccept(["permessage-deflate; server_max_window_bits=8"]).get()).inflateWindowBits, 9)
    }

    func testClientFailsAnswersItDidNotAllow() {
        let table: [(answer: [String], options: PerMessageDeflateOptions?)] = [
            (["x-webkit-deflate-frame"], .init()),
            (["permessage-deflate"], nil),  // we offered nothing
            (["permessage-deflate, permessage-deflate"], .init()),  // two agreements
            (["permessage-deflate", "permessage-deflate"], .init()),
            (["permessage-deflate; foo"], .init()),
            (["permessage-deflate; server_no_context_takeover; server_no_context_takeover"], .init()),
            (["permessage-deflate; client_max_window_bits"], .init()),  // needs a value in an answer
            (["permessage-deflate; client_max_window_bits=16"], .init()),
            (["permessage-deflate; server_max_window_bits=7"], .init()),
            (["permessage-deflate; server_max_window_bits"], .init()),
            (["permessage-deflate; client_no_context_takeover=1"], .init()),
            (["permessage-deflate"], .init()),  // ignored our server_no_context_takeover
            (
                ["permessage-deflate; server_max_window_bits=12"],
                PerMessageDeflateOptions(serverMaxWindowBits: 10, serverNoContextTakeover: false)
            ),
            (["permessage-deflate"], PerMessageDeflateOptions(serverMaxWindowBits: 10, serverNoContextTakeover: false)),
            (["permessage-deflate;"], .init()),  // malformed
        ]
        for row in table {
            if case .success(let agreed) = clientAccept(row.answer, row.options) {
                XCTFail("accepted \(row.answer) with \(String(describing: row.options)): \(String(describing: agreed))")
            }
        }
    }

    func testClientHandshakeValidationCarriesTheAgreement() throws {
        let key = "dGhlIHNhbXBsZSBub25jZQ=="
        var headers: HTTPHeaders = [
            "Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Accept": WebSocketAccept.value(forKey: key),
        ]
        headers.add(name: "Sec-WebSocket-Extensions", value: "permessage-deflate; server_no_context_takeover")
        let head = HTTPResponseHead(version: .http1_1, status: 101, reason: "Switching Protocols", headers: headers)
        // Without an offer the answer is refused, as before.
        XCTAssertThrowsError(try ClientHandshake.validate(head, key: key, offeredProtocols: []).get())
        let agreed = try ClientHandshake.validate(head, key: key, offeredProtocols: [], offeredDeflate: .init()).get()
        XCTAssertNil(agreed.protocol)
        XCTAssertEqual(agreed.deflate?.header, "permessage-deflate; server_no_context_takeover")
    }
}
