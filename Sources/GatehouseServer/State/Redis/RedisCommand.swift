import NIOCore

/// One command, sent as a RESP array of bulk strings (binary safe).
struct RedisCommand: Sendable {
    enum Argument: Sendable, ExpressibleByStringLiteral {
        case string(String)
        case bytes([UInt8])

        init(stringLiteral value: String) { self = .string(value) }
    }

    let arguments: [Argument]

    init(_ arguments: [Argument]) {
        precondition(!arguments.isEmpty, "a command has a name")
        self.arguments = arguments
    }

    init(_ arguments: Argument...) {
        self.init(arguments)
    }

    /// The command's name, for error messages (arguments may be secret: never logged).
    var name: String {
        switch arguments[0] {
        case .string(let name): return name.uppercased()
        case .bytes: return "?"
        }
    }

    func encode(into buffer: inout ByteBuffer) {
        buffer.writeStaticString("*")
        buffer.writeString(String(arguments.count))
        buffer.writeStaticString("\r\n")
        for argument in arguments {
            switch argument {
            case .string(let text):
                buffer.writeStaticString("$")
                buffer.writeString(String(text.utf8.count))
                buffer.writeStaticString("\r\n")
                buffer.writeString(text)
            case .bytes(let bytes):
                buffer.writeStaticString("$")
                buffer.writeString(String(bytes.count))
                buffer.writeStaticString("\r\n")
                buffer.writeBytes(bytes)
            }
            buffer.writeStaticString("\r\n")
        }
    }
}

/// A command on its way to the connection handler, with where its reply goes.
struct RedisRequest: Sendable {
    let command: RedisCommand
    let promise: EventLoopPromise<RESPValue>
    /// How long the reply may take (from when the handler writes the command).
    let timeout: TimeAmount
}

extension Channel {
    /// Writes `request` to this connection. A write that never reaches the connection
    /// handler (the channel closed meanwhile) fails the reply too, so no caller waits forever.
    func sendRedisRequest(_ request: RedisRequest) {
        let written = eventLoop.makePromise(of: Void.self)
        written.futureResult.whenFailure { error in
            request.promise.fail(RedisClientError(kind: .connectionClosed, message: "cannot send \(request.command.name) (\(error))"))
        }
        // The connection handler flushes once per event-loop pass.
        write(request, promise: written)
    }
}
