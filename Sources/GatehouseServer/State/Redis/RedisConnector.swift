import GatehouseCore
import NIOCore
import NIOPosix
import NIOSSL

/// Dials one Redis connection and makes it ready: TCP (and TLS), then `AUTH` when a password
/// is configured, then the caller's set-up commands (e.g. `SCRIPT LOAD`). A connection is
/// handed out only when every set-up command succeeded.
struct RedisConnector: Sendable {
    let host: String
    let port: Int
    let username: String?
    let password: [UInt8]?
    let tlsContext: NIOSSLContext?
    let tlsServerName: String?
    /// The name the server's certificate must carry.
    let tlsExpectedName: String
    let connectTimeout: TimeAmount
    let setupCommands: [RedisCommand]
    let limits: RESPParser.Limits

    init(settings: RedisStoreSettings, setupCommands: [RedisCommand], limits: RESPParser.Limits = RESPParser.Limits()) throws {
        self.host = settings.host
        self.port = settings.port
        self.username = settings.username
        self.password = settings.password
        self.tlsContext = try settings.tls?.makeContext()
        let name = settings.tls?.serverName ?? settings.host
        self.tlsExpectedName = name
        // SNI carries names only; for an IP, NIOSSL checks the certificate's IP SANs.
        self.tlsServerName = ConfigValueParser.ipAddress(name) == nil ? name : nil
        self.connectTimeout = TimeAmount(settings.connectTimeout)
        self.setupCommands = setupCommands
        self.limits = limits
    }

    /// The address for log lines (never the password).
    var address: String { "\(host):\(port)" }

    func connect(on eventLoop: any EventLoop) -> EventLoopFuture<any Channel> {
        let tlsContext = self.tlsContext
        let serverName = self.tlsServerName
        let expectedName = self.tlsExpectedName
        let limits = self.limits
        let handshake = eventLoop.makePromise(of: Void.self)
        if tlsContext == nil {
            handshake.succeed(())
        } else {
            // Bounds the TLS handshake (the set-up commands have their own timeouts).
            let handshakeTimeout = eventLoop.scheduleTask(in: connectTimeout) {
                handshake.fail(RedisClientError(kind: .unavailable, message: "TLS handshake with \(self.address) timed out"))
            }
            handshake.futureResult.whenComplete { _ in handshakeTimeout.cancel() }
        }
        return ClientBootstrap(group: eventLoop)
            .connectTimeout(connectTimeout)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let sync = channel.pipeline.syncOperations
                    if let tlsContext {
                        try sync.addHandler(NIOSSLClientHandler(context: tlsContext, serverHostname: serverName))
                        try sync.addHandler(RedisTLSHandshakeHandler(expectedName: expectedName, verified: handshake))
                    }
                    try sync.addHandler(ByteToMessageHandler(RESPReplyDecoder(limits: limits)))
                    try sync.addHandler(RedisConnectionHandler())
                }
            }
            .connect(host: host, port: port)
            .flatMapError { error in
                handshake.fail(error)
                return eventLoop.makeFailedFuture(RedisClientError(kind: .unavailable, message: "cannot connect to \(self.address) (\(error))"))
            }
            .flatMap { channel in
                handshake.futureResult
                    .flatMap { runSetup(on: channel) }
                    .flatMapError { error in
                        channel.close(promise: nil)
                        return eventLoop.makeFailedFuture(error)
                    }
                    .map { channel }
            }
    }

    /// The set-up commands in order; the first error reply or failure fails the connection.
    /// Without any, a `PING` proves the server (and the TLS handshake) answers.
    private func runSetup(on channel: any Channel) -> EventLoopFuture<Void> {
        var commands: [RedisCommand] = []
        if let password {
            commands.append(username.map { RedisCommand(["AUTH", .string($0), .bytes(password)]) } ?? RedisCommand(["AUTH", .bytes(password)]))
        }
        commands += setupCommands.isEmpty ? [RedisCommand("PING")] : setupCommands
        var future = channel.eventLoop.makeSucceededVoidFuture()
        for command in commands {
            future = future.flatMap {
                let promise = channel.eventLoop.makePromise(of: RESPValue.self)
                channel.sendRedisRequest(RedisRequest(command: command, promise: promise, timeout: connectTimeout))
                return promise.futureResult.flatMapThrowing { reply in
                    if case .error(let message) = reply {
                        // The server's message names the problem (WRONGPASS, NOAUTH), never the password.
                        throw RedisClientError(kind: .unavailable, message: "\(command.name) at \(address) failed: \(message)")
                    }
                }
                .flatMapErrorThrowing { error in
                    if let error = error as? RedisClientError, error.kind == .unavailable { throw error }
                    throw RedisClientError(kind: .unavailable, message: "\(command.name) at \(address) failed: \(error)")
                }
            }
        }
        return future
    }
}
