// libFuzzer target: arbitrary bytes into the bounded HTTP head parser (fed in fuzzer-chosen
// chunks) and, for every head it accepts, the server handshake validation.

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzHTTP(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    guard size > 1 else { return 0 }
    let stride = max(1, Int(data[0]))
    let limit = 2048
    var parser = HTTPHeadParser(maxHeadBytes: limit)
    let input = UnsafeRawBufferPointer(start: data + 1, count: size - 1)
    var offset = 0
    while offset < input.count {
        let end = min(input.count, offset + stride)
        let chunk = UnsafeRawBufferPointer(rebasing: input[offset..<end])
        do {
            if let (head, consumed) = try parser.parseRequest(chunk) {
                precondition(consumed >= 0 && consumed <= chunk.count, "consumed out of range")
                if ServerHandshake.isUpgradeRequest(head), case .success(let upgrade) = ServerHandshake.validate(head) {
                    precondition(Base64.decode(upgrade.key)?.count == 16, "accepted a bad key")
                    _ = ServerHandshake.acceptResponse(key: upgrade.key, protocol: upgrade.requestedProtocols.first, extraHeaders: [:])
                }
                offset += consumed
                continue
            }
        } catch {
            return 0
        }
        offset = end
    }
    return 0
}
