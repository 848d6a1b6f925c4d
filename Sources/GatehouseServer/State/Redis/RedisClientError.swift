/// Why the Redis client has no reply for a command. `kind` is a closed set (a metric label);
/// `message` is safe to log: it never carries a key, an argument or the password.
struct RedisClientError: Error, Sendable, CustomStringConvertible {
    enum Kind: String, Sendable {
        /// No reply within the command timeout; the connection was reset.
        case timeout
        /// No connection is up (dialling, backing off, authentication failed).
        case unavailable
        /// The connection closed with the command in flight.
        case connectionClosed = "connection_closed"
        /// The server sent bytes the client will not read.
        case protocolViolation = "protocol"
        /// Too many commands in flight on the connection.
        case backlogFull = "backlog_full"
        /// The client was closed.
        case shutdown
    }

    let kind: Kind
    let message: String

    var description: String { "redis \(kind.rawValue): \(message)" }
}
