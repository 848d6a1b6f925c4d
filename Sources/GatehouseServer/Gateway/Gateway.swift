import Atomics
import Foundation
import GatehouseCore
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOExtras
import NIOHTTP1
import NIOPosix
import NIOSSL

/// The running gateway: listeners, admin listener, upstream pools and the decision log.
///
/// Everything expensive (TLS contexts, DNS for endpoints, route compilation) happens in
/// `init`, off the event loops; `start` only binds.
public final class Gateway: Sendable {
    public let decisionLog: DecisionLog
    private let group: MultiThreadedEventLoopGroup
    private let ownsGroup: Bool
    private let snapshots: SnapshotStore
    private let pools: UpstreamPools
    private let listeners: [(runtime: ListenerRuntime, tls: NIOSSLContext?)]
    private let logger: Logger
    private let quiesce: ServerQuiescingHelper
    private let ready = ManagedAtomic(false)
    private let state = NIOLockedValueBox<BoundState>(.init())

    struct BoundState {
        var serverChannels: [Channel] = []
        var adminChannel: Channel?
        var addresses: [String: SocketAddress] = [:]
        var adminAddress: SocketAddress?
    }

    public init(
        config: GatewayConfig, logger: Logger, eventLoopGroup: MultiThreadedEventLoopGroup? = nil,
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws {
        self.logger = logger
        if let eventLoopGroup {
            self.group = eventLoopGroup
            self.ownsGroup = false
        } else {
            self.group = MultiThreadedEventLoopGroup(numberOfThreads: System.coreCount)
            self.ownsGroup = true
        }
        self.snapshots = SnapshotStore(try GatewaySnapshot(config: config))
        self.pools = UpstreamPools(group: group)
        self.listeners = try config.listeners.enumerated().map { index, listener in
            do {
                let context = try listener.tls.map { try TLSContextFactory.serverContext(for: $0, environment: environment) }
                return (ListenerRuntime(config: listener), context)
            } catch GatewayStartError.tls(let key, let message) {
                // Report it like any config error: file, line, key path, what is wrong.
                throw ConfigErrors([
                    ConfigIssue(location: listener.location, keyPath: "listeners[\(index)].tls.\(key)", message: message)
                ])
            }
        }
        self.decisionLog = DecisionLog(config: config.decisionLog)
        self.quiesce = ServerQuiescingHelper(group: group)
    }

    /// Bound addresses by listener name (useful with port 0).
    public var listenerAddresses: [String: SocketAddress] { state.withLockedValue { $0.addresses } }
    public var adminAddress: SocketAddress? { state.withLockedValue { $0.adminAddress } }
    public var isReady: Bool { ready.load(ordering: .relaxed) }

    public func start() async throws {
        try decisionLog.start()
        for listener in listeners {
            let channel = try await bind(listener.runtime, tls: listener.tls)
            state.withLockedValue {
                $0.serverChannels.append(channel)
                $0.addresses[listener.runtime.name] = channel.localAddress
            }
            logger.info("listening", metadata: [
                "listener": .string(listener.runtime.name),
                "address": .string(channel.localAddress?.description ?? "?"),
                "tls": .stringConvertible(listener.tls != nil),
            ])
        }
        if let admin = snapshots.snapshot.config.admin.address {
            let channel = try await bindAdmin(admin)
            state.withLockedValue {
                $0.adminChannel = channel
                $0.adminAddress = channel.localAddress
            }
        }
        ready.store(true, ordering: .relaxed)
    }

    /// Stops accepting, lets in-flight exchanges finish for up to `drain`, flushes the
    /// decision log, then releases the event loops.
    public func shutdown(drain: Duration? = nil) async {
        ready.store(false, ordering: .relaxed)
        let drainTime = drain ?? listeners.map(\.runtime.config.timeouts.drain).max() ?? .seconds(15)
        let promise = group.next().makePromise(of: Void.self)
        quiesce.initiateShutdown(promise: promise)
        let drained = await withTaskGroup(of: Bool.self) { tasks in
            tasks.addTask { (try? await promise.futureResult.get()) != nil }
            tasks.addTask {
                try? await Task.sleep(for: drainTime)
                return false
            }
            let first = await tasks.next() ?? false
            tasks.cancelAll()
            return first
        }
        if !drained { logger.warning("drain timeout reached; closing remaining connections") }
        pools.closeIdleConnections()
        let admin = state.withLockedValue { $0.adminChannel }
        try? await admin?.close()
        decisionLog.shutdown()
        if ownsGroup { try? await group.shutdownGracefully() }
    }

    private func bind(_ listener: ListenerRuntime, tls: NIOSSLContext?) async throws -> Channel {
        let dependencies = GatewayHandler.Dependencies(
            snapshots: snapshots, listener: listener, decisionLog: decisionLog, pools: pools
        )
        let quiesce = self.quiesce
        let config = listener.config
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(quiesce.makeServerChannelHandler(channel: channel))
                    try channel.pipeline.syncOperations.addHandler(ConnectionLimitHandler(maxConnections: config.maxConnections))
                }
            }
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelOption(.writeBufferWaterMark, value: .init(low: 32 * 1024, high: 64 * 1024))
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try Self.configureConnection(channel, dependencies: dependencies, tls: tls)
                }
            }
        do {
            return try await bootstrap.bind(host: config.address.host, port: config.address.port).get()
        } catch {
            throw GatewayStartError.bind(listener: config.name, address: config.address.description, underlying: "\(error)")
        }
    }

    private static func configureConnection(
        _ channel: Channel, dependencies: GatewayHandler.Dependencies, tls: NIOSSLContext?
    ) throws {
        let listener = dependencies.listener
        let client = ClientAddress(channel.remoteAddress)
        let pipeline = channel.pipeline.syncOperations
        let recordRefusal = { @Sendable (reason: ReasonCode, status: Int) in
            dependencies.decisionLog.record(
                DecisionRecord(
                    timestampMillis: WallClock.nowMillis(), requestID: RequestIdentifiers.newRequestID(),
                    listener: listener.name, clientIP: client.text, decision: .deny, reason: reason,
                    status: status, durationMillis: 0, policyVersion: dependencies.snapshots.snapshot.version
                )
            )
        }
        if let tls {
            try pipeline.addHandler(NIOSSLServerHandler(context: tls))
            try pipeline.addHandler(
                TLSHandshakeGuardHandler(timeout: .init(listener.config.timeouts.handshake)) { recordRefusal($0, 0) }
            )
        }
        if tls != nil { try pipeline.addHandler(WriteCoalescingHandler()) }
        let timeouts = ConnectionTimeoutHandler(timeouts: listener.config.timeouts) {
            recordRefusal(.requestTimeout, 408)
        }
        try pipeline.addHandler(timeouts)
        let limits = listener.config.limits
        var decoderLimits = NIOHTTPDecoderLimitConfiguration()
        // NIO counts the request line as a field; the gateway's own checks give the precise status.
        decoderLimits.maxHeaderFieldSize = max(limits.maxHeaderBytes, limits.maxURIBytes)
        decoderLimits.maxHeaderListSize = limits.maxHeaderBytes + limits.maxURIBytes
        decoderLimits.maxHeaderFieldCount = limits.maxHeaderCount + 1
        var encoder = HTTPResponseEncoder.Configuration()
        encoder.automaticallySetFramingHeaders = false  // the gateway frames responses explicitly
        // GatewayHandler queues pipelined requests and answers protocol errors itself. NIO's
        // outbound header validation is off: every header the gateway writes was either parsed
        // (and so validated) by llhttp on the way in, or is the gateway's own fixed text.
        try pipeline.configureHTTPServerPipeline(
            withPipeliningAssistance: false, withErrorHandling: false, withOutboundHeaderValidation: false,
            withEncoderConfiguration: encoder, withDecoderLimitConfiguration: decoderLimits
        )
        try pipeline.addHandler(GatewayHandler(dependencies: dependencies, client: client, timeouts: timeouts))
    }

    private func bindAdmin(_ address: HostPort) async throws -> Channel {
        let ready = self.ready
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(
                        AdminHandler(isReady: { ready.load(ordering: .relaxed) })
                    )
                }
            }
        do {
            return try await bootstrap.bind(host: address.host, port: address.port).get()
        } catch {
            throw GatewayStartError.bind(listener: "admin", address: address.description, underlying: "\(error)")
        }
    }
}
