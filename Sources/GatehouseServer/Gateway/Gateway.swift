import Atomics
import Foundation
import GatehouseCore
import Logging
import Metrics
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
    /// What `/metrics` on the admin listener serves. One gateway per instance: the
    /// scrape-time figures (decision log, replay store) are registered by the gateway.
    public let metrics: GatewayMetrics
    private let group: MultiThreadedEventLoopGroup
    private let ownsGroup: Bool
    let snapshots: SnapshotStore
    let pools: UpstreamPools
    /// Replay keys and rate cells, kept across configuration snapshots.
    let stateStore: any StateStore
    let listeners: [(runtime: ListenerRuntime, tls: ListenerTLS?)]
    /// Trust-domain bundles, when any are configured.
    let trust: TrustDomainStore?
    let logger: Logger
    /// Where `env:` secrets are looked up, on reload too.
    let environment: [String: String]
    /// The configuration that runs (its text, for `GET /config`) and reload bookkeeping.
    let running: NIOLockedValueBox<RunningConfig>
    let reloadMetrics: ConfigReloadMetrics
    let reloadQueue = ReloadQueue<ConfigReloadResult>()
    /// Set when `shutdown` starts: no reload applies after it (it would schedule on loops that are going away).
    let stopping = ManagedAtomic(false)
    /// The files of the last configuration that parsed but failed to apply (watched too).
    let attemptedFiles = NIOLockedValueBox<[String]>([])
    /// Reloads when the configuration's files change; nil when polling is off.
    let configWatcher: ConfigFileWatcher?
    private let ready = ManagedAtomic(false)
    private let state = NIOLockedValueBox<BoundState>(.init())

    /// Watches certificate, key and bundle files for rotation.
    let tlsWatcher: TLSMaterialWatcher
    /// One per issuer with a `jwks_uri`.
    let jwksRefreshers: [JWKSRefresher]
    /// What every snapshot's rollout reports to (log, decision log, metrics, clock).
    let rolloutHooks: RolloutHooks
    /// `admin.token`, for the mutating admin endpoints.
    let adminAuthorization: AdminAuthorization

    struct BoundState {
        var watcherTask: Task<Void, Never>?
        var configWatcherTask: Task<Void, Never>?
        var refresherTasks: [Task<Void, Never>] = []
        var serverChannels: [Channel] = []
        /// One per bound listener: a helper tracks the connections of a single server channel.
        var quiescers: [ServerQuiescingHelper] = []
        var adminChannel: Channel?
        var addresses: [String: SocketAddress] = [:]
        var adminAddress: SocketAddress?
    }

    public init(
        config: GatewayConfig, logger: Logger, eventLoopGroup: MultiThreadedEventLoopGroup? = nil,
        environment: [String: String] = ProcessInfo.processInfo.environment, replayCapacity: Int? = nil,
        metrics: GatewayMetrics? = nil, rolloutClock: RolloutWindow.Clock? = nil, configPollInterval: Duration? = .seconds(1)
    ) async throws {
        self.logger = logger
        self.environment = environment
        // Not bootstrapped into `MetricsSystem` unless the caller did: see `GatewayMetrics`.
        let metrics = metrics ?? GatewayMetrics()
        self.metrics = metrics
        if let eventLoopGroup {
            self.group = eventLoopGroup
            self.ownsGroup = false
        } else {
            self.group = MultiThreadedEventLoopGroup(numberOfThreads: System.coreCount)
            self.ownsGroup = true
        }
        let trust = config.trustDomains.isEmpty ? nil : try TrustDomainStore(domains: config.trustDomains)
        self.trust = trust
        let tokens = try await TokenSetup.store(for: config, environment: environment)
        let decisionLog = DecisionLog(config: config.decisionLog)
        self.decisionLog = decisionLog
        var rolloutHooks = RolloutHooks(logger: logger, recordEvent: { decisionLog.recordEvent($0) }, metricsFactory: metrics.factory)
        if let rolloutClock { rolloutHooks.clock = rolloutClock }
        self.rolloutHooks = rolloutHooks
        try Self.checkAdminToken(config, environment: environment)
        self.adminAuthorization = AdminAuthorization(reference: config.admin.token, environment: environment)
        let snapshot = try ConfigCompiler.compile(
            config, trust: trust, tokens: tokens, environment: environment, rolloutHooks: rolloutHooks)
        self.snapshots = SnapshotStore(snapshot)
        self.pools = UpstreamPools(group: group, clusters: snapshot.clusters)
        self.stateStore = try StateStoreSetup.make(
            config, replayCapacity: replayCapacity, group: group, logger: logger, environment: environment,
            metricsFactory: metrics.factory)
        let listeners: [(runtime: ListenerRuntime, tls: ListenerTLS?)] = try config.listeners.enumerated().map { index, listener in
            do {
                let tls = try listener.tls.map { try ListenerTLS(config: $0, trust: trust, environment: environment) }
                return (ListenerRuntime(config: listener), tls)
            } catch GatewayStartError.tls(let key, let message) {
                // Report it like any config error: file, line, key path, what is wrong.
                throw ConfigErrors([
                    ConfigIssue(location: listener.location, keyPath: "listeners[\(index)].tls.\(key)", message: message)
                ])
            }
        }
        self.listeners = listeners
        self.tlsWatcher = TLSMaterialWatcher(
            targets: Self.materialTargets(listeners: listeners, trust: trust, snapshot: snapshot),
            logger: logger, metricsFactory: metrics.factory)
        self.jwksRefreshers = try Self.jwksRefreshers(tokens, group: group, logger: logger, metricsFactory: metrics.factory)
        let snapshots = self.snapshots
        Self.exportAtScrape(
            metrics, decisionLog: decisionLog, stateStore: stateStore, clusters: { Array(snapshots.snapshot.clusters.values) })
        // What `GET /config` shows: the text that was loaded, when the file still holds it.
        let document = ConfigDocument(recovering: config)
        self.running = NIOLockedValueBox(RunningConfig(config: config, document: document))
        self.reloadMetrics = ConfigReloadMetrics(registry: metrics.registry)
        reloadMetrics.setRunning(version: config.policyVersion, sha256: config.version)
        let attemptedFiles = self.attemptedFiles
        self.configWatcher = configPollInterval.map { interval in
            Self.makeConfigWatcher(config: config, interval: interval, snapshots: snapshots, attemptedFiles: attemptedFiles)
        }
    }

    /// `admin.token` must resolve at start-up; a problem names the key, never the value.
    private static func checkAdminToken(_ config: GatewayConfig, environment: [String: String]) throws {
        guard let reference = config.admin.token else { return }
        do {
            _ = try SecretResolver.resolve(reference, environment: environment)
        } catch let error as SecretResolutionError {
            let location = config.admin.tokenLocation ?? .wholeFile(config.sourceFile)
            throw ConfigErrors([ConfigIssue(location: location, keyPath: "admin.token", message: error.description)])
        }
    }

    // MARK: Rollout

    /// `GET /rollout` as JSON.
    public func rolloutStatus() -> [UInt8] {
        let snapshot = snapshots.snapshot
        return RolloutEventRecord.status(snapshot.rollout, stableVersion: snapshot.version)
    }

    /// The candidate becomes the only policy until the next reload (the file is not changed:
    /// make it permanent by moving the candidate's routes into the main file).
    @discardableResult
    public func promoteRollout() -> String? {
        guard case .changed(let version) = changeRollout(promote: true) else { return nil }
        return version
    }

    /// The candidate stops deciding (it is still evaluated and recorded) until promoted or reloaded.
    @discardableResult
    public func rollBackRollout() -> Bool {
        if case .changed = changeRollout(promote: false) { return true }
        return false
    }

    private func changeRollout(promote: Bool) -> AdminRolloutAPI.ChangeResult {
        let snapshot = snapshots.snapshot
        guard let rollout = snapshot.rollout else { return .noRollout }
        if !promote {
            let changed = rollout.rollBack(cause: "manual", figures: nil)
            return changed ? .changed(version: rollout.stableVersion) : .unchanged(version: rollout.stableVersion)
        }
        guard let promoted = snapshot.promoted() else { return .noRollout }
        guard snapshots.replace(snapshot, with: promoted) else { return .unchanged(version: snapshots.snapshot.version) }
        logger.notice("rollout.promoted: the candidate policy is now the only policy", metadata: [
            "stable": .string(rollout.stableVersion), "candidate": .string(rollout.candidateVersion),
        ])
        decisionLog.recordEvent(RolloutEventRecord.promoted(rollout))
        reloadMetrics.setRunning(version: rollout.candidateVersion, sha256: rollout.config.candidate.sha256)
        return .changed(version: rollout.candidateVersion)
    }

    private var adminRolloutAPI: AdminRolloutAPI {
        AdminRolloutAPI(
            authorization: adminAuthorization, status: { [self] in rolloutStatus() },
            promote: { [self] in changeRollout(promote: true) }, rollBack: { [self] in changeRollout(promote: false) })
    }

    private static func jwksRefreshers(
        _ tokens: TokenVerifierStore?, group: any EventLoopGroup, logger: Logger, metricsFactory: any MetricsFactory
    ) throws -> [JWKSRefresher] {
        guard let tokens else { return [] }
        return try tokens.configs.compactMap { issuer in
            guard let endpoint = issuer.jwksEndpoint else { return nil }
            let client: JWKSClient
            do {
                client = try JWKSClient(endpoint: endpoint, group: group)
            } catch GatewayStartError.tls(_, let message) {
                throw ConfigErrors([ConfigIssue(location: issuer.location, keyPath: "issuers.\(issuer.name).ca", message: message)])
            }
            let refresher = JWKSRefresher(
                issuer: issuer.name, endpoint: endpoint, client: client, store: tokens, logger: logger, metricsFactory: metricsFactory)
            tokens.attach(refresher)
            return refresher
        }
    }

    /// Bound addresses by listener name (useful with port 0).
    public var listenerAddresses: [String: SocketAddress] { state.withLockedValue { $0.addresses } }
    public var adminAddress: SocketAddress? { state.withLockedValue { $0.adminAddress } }
    public var isReady: Bool { ready.load(ordering: .relaxed) }

    public func start() async throws {
        try decisionLog.start()
        // Fetch every `jwks_uri` once before serving, so the gateway normally starts with keys;
        // an issuer that is down is retried in the background (its tokens get 503 meanwhile).
        let refreshers = jwksRefreshers
        await withTaskGroup(of: Void.self) { tasks in
            for refresher in refreshers { tasks.addTask { await refresher.refreshNow() } }
        }
        state.withLockedValue { state in
            state.refresherTasks = refreshers.map { refresher in Task { await refresher.run() } }
        }
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
        // Always watched, even with no files yet: a reload can add upstreams with TLS.
        let watcher = tlsWatcher
        state.withLockedValue { $0.watcherTask = Task { await watcher.run() } }
        if let configWatcher {
            // Holds the gateway until `shutdown` cancels it, like the listeners do.
            let task = Task { await configWatcher.run { _ = await self.reloadConfig() } }
            state.withLockedValue { $0.configWatcherTask = task }
        }
        ready.store(true, ordering: .relaxed)
    }

    /// Re-reads every certificate, key, trust bundle and issuer key set now (SIGHUP).
    public func reloadTLSMaterial() async {
        await tlsWatcher.check(force: true)
    }

    /// Every file the rotation watcher re-reads for this snapshot (its upstreams and minter).
    static func materialTargets(
        listeners: [(runtime: ListenerRuntime, tls: ListenerTLS?)], trust: TrustDomainStore?, snapshot: GatewaySnapshot
    ) -> [TLSMaterialWatcher.Target] {
        rotationTargets(listeners: listeners, trust: trust, clusters: Array(snapshot.clusters.values))
            + issuerTargets(snapshot.tokens) + mintingTargets(snapshot.minter)
    }

    /// Each issuer's JWKS file (and HMAC secret file): an issuer rotating its key is picked up.
    private static func issuerTargets(_ tokens: TokenVerifierStore?) -> [TLSMaterialWatcher.Target] {
        guard let tokens else { return [] }
        return tokens.configs.map { issuer in
            .init(name: "issuer \(issuer.name)", files: TokenVerifierStore.watchedFiles(issuer)) {
                try await tokens.reload(issuer: issuer.name)
            }
        }
    }

    /// The gateway's own signing key (`token_minting.private_key` as a file).
    private static func mintingTargets(_ minter: TokenMinter?) -> [TLSMaterialWatcher.Target] {
        guard let minter, !TokenMinter.watchedFiles(minter.config).isEmpty else { return [] }
        return [.init(name: "token_minting", files: TokenMinter.watchedFiles(minter.config)) { try minter.reload() }]
    }

    /// What rotation watches: each listener's certificate and key, each trust bundle (and the
    /// upstream contexts built from it), each upstream's CA, certificate and key.
    private static func rotationTargets(
        listeners: [(runtime: ListenerRuntime, tls: ListenerTLS?)], trust: TrustDomainStore?, clusters: [UpstreamCluster]
    ) -> [TLSMaterialWatcher.Target] {
        var targets: [TLSMaterialWatcher.Target] = []
        for (runtime, tls) in listeners {
            guard let tls else { continue }
            targets.append(.init(name: "listener \(runtime.name)", files: tls.watchedFiles, reload: tls.reload))
        }
        let upstreamTLS = clusters.sorted { $0.name < $1.name }.compactMap { cluster in cluster.tls.map { (cluster.name, $0) } }
        for domain in trust?.domains ?? [] {
            guard let trust else { break }
            let dependents = upstreamTLS.filter { $0.1.trustDomain == domain.name }.map(\.1)
            targets.append(.init(name: "trust domain \(domain.name)", files: [domain.bundlePath]) {
                try trust.reload(domain: domain.name)
                // Every dependent gets the new bundle, even when one of them fails to load
                // (e.g. its own certificate is mid-rotation); the first failure is reported.
                var failure: Error?
                for upstream in dependents {
                    do { try upstream.reload() } catch { failure = failure ?? error }
                }
                if let failure { throw failure }
            })
        }
        for (name, tls) in upstreamTLS where !tls.watchedFiles.isEmpty {
            targets.append(.init(name: "upstream \(name)", files: tls.watchedFiles, reload: tls.reload))
        }
        return targets
    }

    /// Stops accepting, lets in-flight exchanges finish for up to `drain`, flushes the
    /// decision log, then releases the event loops.
    public func shutdown(drain: Duration? = nil) async {
        ready.store(false, ordering: .relaxed)
        stopping.store(true, ordering: .sequentiallyConsistent)
        // Reloads run one at a time: once this one is through, none is applying or will apply.
        _ = await reloadQueue.run { .failed([]) }
        let drainTime = drain ?? listeners.map(\.runtime.config.timeouts.drain).max() ?? .seconds(15)
        // The helpers stay referenced only by `state`, so that dropping them below deinits them.
        let group = self.group
        let promises = state.withLockedValue { state in
            state.quiescers.map { quiescer in
                let promise = group.next().makePromise(of: Void.self)
                quiescer.initiateShutdown(promise: promise)
                return promise.futureResult
            }
        }
        let allDrained = EventLoopFuture.andAllComplete(promises, on: group.next())
        let drained = await withTaskGroup(of: Bool.self) { tasks in
            tasks.addTask { (try? await allDrained.get()) != nil }
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
        let configWatcherTask = state.withLockedValue { state in
            state.watcherTask?.cancel()
            state.configWatcherTask?.cancel()
            return state.configWatcherTask
        }
        // A reload it started finishes first (it runs on its own thread, not on the loops).
        await configWatcherTask?.value
        // Their fetches use the event loops: let them end before the loops do.
        let refresherTasks = state.withLockedValue { $0.refresherTasks }
        for task in refresherTasks { task.cancel() }
        for task in refresherTasks { await task.value }
        // Its connections live on the event loops too.
        if let redis = stateStore as? RedisStateStore { await redis.shutdown() }
        decisionLog.shutdown()
        // A quiescing helper fails a promise on its loop when it goes away: let that happen
        // now, while the loops still run.
        state.withLockedValue { $0.quiescers.removeAll() }
        if ownsGroup { try? await group.shutdownGracefully() }
    }

    private func bind(_ listener: ListenerRuntime, tls: ListenerTLS?) async throws -> Channel {
        let dependencies = GatewayHandler.Dependencies(
            snapshots: snapshots, listener: listener, decisionLog: decisionLog, pools: pools, logger: logger,
            state: stateStore, metrics: metrics.decisions, checks: metrics.checks,
            handshakes: TLSHandshakeCounters(registry: metrics.registry, listener: listener.name)
        )
        let quiesce = ServerQuiescingHelper(group: group)
        state.withLockedValue { $0.quiescers.append(quiesce) }
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
        _ channel: Channel, dependencies: GatewayHandler.Dependencies, tls: ListenerTLS?
    ) throws {
        let listener = dependencies.listener
        let client = ClientAddress(channel.remoteAddress)
        let pipeline = channel.pipeline.syncOperations
        let recordRefusal = { @Sendable (reason: ReasonCode, status: Int, peer: DecisionRecord.Peer?) in
            let record = DecisionRecord(
                timestampMillis: WallClock.nowMillis(), requestID: RequestIdentifiers.newRequestID(),
                listener: listener.name, clientIP: client.text, peer: peer, decision: .deny, reason: reason,
                status: status, durationMillis: 0, policyVersion: dependencies.snapshots.snapshot.version
            )
            dependencies.metrics.recordRefusal(record)
            if reason.rawValue.hasPrefix("tls.") { dependencies.handshakes?.recordRefused(reason) }
            dependencies.decisionLog.record(record)
        }
        let peerSlot = PeerSlot()
        if let tls {
            try pipeline.addHandler(tls.makeServerHandler(slot: peerSlot, eventLoop: channel.eventLoop))
            let boundSlot = NIOLoopBound(peerSlot, eventLoop: channel.eventLoop)
            try pipeline.addHandler(
                TLSHandshakeGuardHandler(
                    timeout: .init(listener.config.timeouts.handshake), onCompleted: { dependencies.handshakes?.recordCompleted() }
                ) { error in
                    guard let error else { return recordRefusal(.tlsHandshakeTimeout, 0, nil) }
                    let slot = boundSlot.value
                    // The claimed ID, where one could be read, says who tried; it is not verified.
                    let claimed = slot.refusal?.claimedID.map { DecisionRecord.Peer(spiffeID: $0, certificateSHA256: nil) }
                    recordRefusal(ListenerTLS.refusalReason(error, slot: slot), 0, claimed)
                }
            )
        }
        let timeouts = ConnectionTimeouts(timeouts: listener.config.timeouts) {
            recordRefusal(.requestTimeout, 408, nil)
        }
        // No HTTP codec: GatewayHandler parses requests (`HTTP1RequestParser`) and writes
        // responses as bytes (`ResponseBytes`) itself.
        try pipeline.addHandler(GatewayHandler(dependencies: dependencies, client: client, peerSlot: peerSlot, timeouts: timeouts))
    }

    private func bindAdmin(_ address: HostPort) async throws -> Channel {
        let ready = self.ready
        let snapshots = self.snapshots
        let metrics = self.metrics
        let rolloutAPI = adminRolloutAPI
        let running = self.running
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(
                        AdminHandler(
                            isReady: { ready.load(ordering: .relaxed) }, jwks: { snapshots.snapshot.minter?.jwks },
                            metrics: { metrics.exposition() }, config: { running.withLockedValue { $0.json } },
                            rollout: rolloutAPI)
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
