/// permessage-deflate negotiation (RFC 7692 §5, §7.1) for both roles: pure functions of the
/// offers, the answer and our ``PerMessageDeflateOptions``; no zlib.
enum PerMessageDeflateNegotiation {
    static let name = "permessage-deflate"

    /// One offer's or answer's parameters, checked for the RFC's syntax: known names, no
    /// duplicates, no value where none belongs, window bits 8…15 written without leading zeros.
    struct Parameters: Equatable {
        var serverNoContextTakeover = false
        var clientNoContextTakeover = false
        /// `server_max_window_bits`, which must have a value.
        var serverMaxWindowBits: Int?
        /// `client_max_window_bits`: absent (`nil`), bare (`.some(nil)`) or with a value.
        var clientMaxWindowBits: Int??

        /// Parses the parameters; `nil` with the reason when they break a rule.
        static func parse(_ parameters: [(name: String, value: String?)]) -> Result<Parameters, Problem> {
            var result = Parameters()
            var seen = Set<String>()
            for (name, value) in parameters {
                let key = name.lowercased()
                guard seen.insert(key).inserted else { return .failure(Problem("duplicate parameter \(name)")) }
                switch key {
                case "server_no_context_takeover", "client_no_context_takeover":
                    guard value == nil else { return .failure(Problem("\(name) takes no value")) }
                    if key == "server_no_context_takeover" {
                        result.serverNoContextTakeover = true
                    } else {
                        result.clientNoContextTakeover = true
                    }
                case "server_max_window_bits":
                    guard let bits = value.flatMap(windowBits) else {
                        return .failure(Problem("server_max_window_bits needs a value from 8 to 15"))
                    }
                    result.serverMaxWindowBits = bits
                case "client_max_window_bits":
                    if let value {
                        guard let bits = windowBits(value) else {
                            return .failure(Problem("client_max_window_bits must be from 8 to 15"))
                        }
                        result.clientMaxWindowBits = .some(bits)
                    } else {
                        result.clientMaxWindowBits = .some(nil)
                    }
                default:
                    return .failure(Problem("unknown parameter \(name)"))
                }
            }
            return .success(result)
        }

        /// `8`…`15` exactly (RFC 7692 §7.1.2: 1*DIGIT, no leading zeros).
        static func windowBits(_ text: String) -> Int? {
            guard let first = text.utf8.first, first != UInt8(ascii: "0"), text.utf8.count <= 2,
                text.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }),
                let bits = Int(text), (8...15).contains(bits)
            else { return nil }
            return bits
        }
    }

    /// Why an offer was declined or an answer refused.
    struct Problem: Error, Equatable {
        var reason: String
        init(_ reason: String) { self.reason = reason }
    }

    // MARK: Server

    /// The server's choice: the first permessage-deflate offer we can accept, in the client's
    /// order, across all its `Sec-WebSocket-Extensions` headers. Offers with an unknown
    /// parameter, a duplicate or a bad value are skipped, as is one asking for an 8-bit server
    /// window (zlib cannot honour it). `nil` when none is acceptable: the connection then opens
    /// without compression and no `Sec-WebSocket-Extensions` header is sent.
    static func serverAccept(offers: [WebSocketExtensionOffer], options: PerMessageDeflateOptions)
        -> PerMessageDeflateParameters?
    {
        for offer in offers where offer.name.lowercased() == name {
            guard case .success(let offered) = Parameters.parse(offer.parameters) else { continue }
            if let bits = offered.serverMaxWindowBits, bits < 9 { continue }

            let serverNoContext = offered.serverNoContextTakeover || options.serverNoContextTakeover
            let clientNoContext = offered.clientNoContextTakeover || options.clientNoContextTakeover
            let serverBits = min(options.clampedServerWindowBits, offered.serverMaxWindowBits ?? 15)
            // We may limit the client's window only when it offered client_max_window_bits.
            var clientBits = 15
            var answerClientBits = false
            if case .some(let value) = offered.clientMaxWindowBits {
                clientBits = min(options.clampedClientWindowBits, value ?? 15)
                answerClientBits = clientBits < 15 || value != nil
            }
            var header = name
            if serverNoContext { header += "; server_no_context_takeover" }
            if clientNoContext { header += "; client_no_context_takeover" }
            if serverBits < 15 || offered.serverMaxWindowBits != nil {
                header += "; server_max_window_bits=\(serverBits)"
            }
            if answerClientBits { header += "; client_max_window_bits=\(clientBits)" }
            return PerMessageDeflateParameters(
                outboundWindowBits: serverBits, inboundWindowBits: clientBits,
                outboundNoContextTakeover: serverNoContext, inboundNoContextTakeover: clientNoContext,
                memoryLevel: options.clampedMemoryLevel, compressionLevel: options.clampedCompressionLevel,
                threshold: options.threshold, header: header)
        }
        return nil
    }

    /// An extension as a header value: `name; parameter; parameter=value`.
    static func canonical(_ offer: WebSocketExtensionOffer) -> String {
        var text = offer.name
        for (parameter, value) in offer.parameters {
            text += "; " + parameter
            if let value { text += "=" + (HTTPHeaders.isToken(Substring(value)) ? value : "\"\(value)\"") }
        }
        return text
    }

    // MARK: Client

    /// The client's offer: `client_max_window_bits` (bare: the server may pick any window for
    /// us), and the context-takeover and server-window requests of `options`.
    static func clientOffer(_ options: PerMessageDeflateOptions) -> String {
        var offer = name
        if options.serverNoContextTakeover { offer += "; server_no_context_takeover" }
        if options.clientNoContextTakeover { offer += "; client_no_context_takeover" }
        if options.clampedServerWindowBits < 15 {
            offer += "; server_max_window_bits=\(options.clampedServerWindowBits)"
        }
        offer += "; client_max_window_bits"
        return offer
    }

    /// Checks the server's `Sec-WebSocket-Extensions` answer to ``clientOffer(_:)``: `nil`
    /// when it agreed to nothing, the agreement, or why the connection must fail (an extension
    /// we did not offer, a parameter we did not allow or a value out of range, or a request we
    /// made that the answer ignores).
    static func clientAccept(
        responseHeaders: [String], options: PerMessageDeflateOptions?
    ) -> Result<PerMessageDeflateParameters?, ClientHandshakeError> {
        guard !responseHeaders.isEmpty else { return .success(nil) }
        func fail(_ reason: String) -> Result<PerMessageDeflateParameters?, ClientHandshakeError> {
            .failure(ClientHandshakeError(check: .extensionParameters(reason)))
        }
        guard let answers = WebSocketExtensionOffer.parse(responseHeaders) else {
            return fail("malformed Sec-WebSocket-Extensions")
        }
        guard !answers.isEmpty else { return .success(nil) }  // only empty list elements
        guard let options, answers[0].name.lowercased() == name else {
            return .failure(ClientHandshakeError(check: .unofferedExtension(answers[0].name)))
        }
        guard answers.count == 1 else {
            return .failure(ClientHandshakeError(check: .unofferedExtension(answers[1].name)))
        }
        let answered: Parameters
        switch Parameters.parse(answers[0].parameters) {
        case .failure(let problem): return fail(problem.reason)
        case .success(let parameters): answered = parameters
        }
        if options.serverNoContextTakeover && !answered.serverNoContextTakeover {
            return fail("the server ignored server_no_context_takeover")
        }
        let offeredServerBits = options.clampedServerWindowBits
        if offeredServerBits < 15 {
            guard let bits = answered.serverMaxWindowBits else {
                return fail("the server ignored server_max_window_bits")
            }
            if bits > offeredServerBits {
                return fail("server_max_window_bits=\(bits) exceeds the \(offeredServerBits) offered")
            }
        }
        var clientBits = options.clampedClientWindowBits
        if case .some(let value) = answered.clientMaxWindowBits {
            guard let value else { return fail("client_max_window_bits needs a value in a response") }
            clientBits = min(clientBits, value)
        }
        return .success(
            PerMessageDeflateParameters(
                outboundWindowBits: clientBits, inboundWindowBits: answered.serverMaxWindowBits ?? 15,
                outboundNoContextTakeover: answered.clientNoContextTakeover || options.clientNoContextTakeover,
                inboundNoContextTakeover: answered.serverNoContextTakeover,
                memoryLevel: options.clampedMemoryLevel, compressionLevel: options.clampedCompressionLevel,
                threshold: options.threshold, header: canonical(answers[0])))
    }
}
