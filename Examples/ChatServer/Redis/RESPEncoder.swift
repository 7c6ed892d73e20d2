/// Encodes commands the way every Redis client sends them: an array of bulk strings
/// (`*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n`). Binary-safe; works with RESP2 and RESP3 servers.
public enum RESPEncoder {
    /// Appends one command to `buffer` (several appended commands form a pipeline).
    public static func encode(command arguments: [String], into buffer: inout [UInt8]) {
        buffer.append(UInt8(ascii: "*"))
        appendDecimal(arguments.count, to: &buffer)
        for argument in arguments {
            var argument = argument
            argument.withUTF8 { bytes in
                buffer.append(UInt8(ascii: "$"))
                appendDecimal(bytes.count, to: &buffer)
                buffer.append(contentsOf: bytes)
                buffer.append(13)
                buffer.append(10)
            }
        }
    }

    /// One command as bytes.
    public static func encode(command arguments: [String]) -> [UInt8] {
        var buffer: [UInt8] = []
        encode(command: arguments, into: &buffer)
        return buffer
    }

    private static func appendDecimal(_ value: Int, to buffer: inout [UInt8]) {
        buffer.append(contentsOf: String(value).utf8)
        buffer.append(13)
        buffer.append(10)
    }
}
