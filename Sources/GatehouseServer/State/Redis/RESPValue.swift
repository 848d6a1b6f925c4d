import NIOCore

/// One RESP2 reply from a Redis server. The client speaks RESP2 only (no `HELLO 3`): every
/// command the state store sends has a RESP2 reply, and one protocol means one parser to trust.
enum RESPValue: Sendable, Equatable {
    case simpleString(String)
    /// An error reply (`-ERR ...`, `-NOSCRIPT ...`): the server's answer, not a broken connection.
    case error(String)
    case integer(Int64)
    /// A bulk string; nil is the null bulk string (`$-1`), e.g. `SET NX` on an existing key.
    case bulkString(ByteBuffer?)
    /// An array; nil is the null array (`*-1`).
    case array([RESPValue]?)

    /// The error reply's first word (`NOSCRIPT`, `WRONGPASS`, `ERR`), for matching.
    var errorCode: Substring? {
        guard case .error(let message) = self else { return nil }
        return message.split(separator: " ", maxSplits: 1).first ?? ""
    }

    /// A simple or bulk string as text (bulk strings are UTF-8 decoded leniently).
    var string: String? {
        switch self {
        case .simpleString(let text): return text
        case .bulkString(let buffer?): return String(buffer: buffer)
        default: return nil
        }
    }
}

extension RESPValue: CustomStringConvertible {
    /// For tests and error messages: bulk strings show their length, never their bytes.
    var description: String {
        switch self {
        case .simpleString(let text): return "+\(text)"
        case .error(let message): return "-\(message)"
        case .integer(let value): return ":\(value)"
        case .bulkString(nil): return "$nil"
        case .bulkString(let buffer?): return "$<\(buffer.readableBytes) bytes>"
        case .array(nil): return "*nil"
        case .array(let values?): return "[" + values.map(\.description).joined(separator: ", ") + "]"
        }
    }
}
