import Atomics
import GatehouseCore
import NIOCore
import NIOHTTP1
import NIOPosix

/// Keep-alive connections to one upstream, owned by one event loop. Never touched from
/// another thread, so it needs no locks. Bounded: at most `maxIdlePerLoop` idle and
/// `maxConnectionsPerLoop` open connections; at most `maxPendingPerLoop` requests wait for
/// a connection, each no longer than the connect timeout. Past those bounds a request
/// fails fast with `poolExhausted` instead of queueing without limit.
final class UpstreamPool {
    /// A failed connect, naming the endpoint so a retry can go elsewhere.
    struct ConnectError: Error {
        let endpoint: Int
        /// `upstream.unavailable` for TCP failures; TLS failures name their own reason.
        let reason: ReasonCode
        let detail: String?
    }

    enum Acquisition {
        case ready(UpstreamConnection)
        case pending(EventLoopFuture<UpstreamConnection>)
    }

    private struct Waiter {
        let promise: EventLoopPromise<UpstreamConnection>
        let timeout: Scheduled<Void>
        let id: UInt64
    }

    let cluster: UpstreamCluster
    let eventLoop: EventLoop
    private var idle: [[UpstreamConnection]]
    private var idleCount = 0 {
        didSet { cluster.counts.idle.wrappingIncrement(by: idleCount - oldValue, ordering: .relaxed) }
    }
    private(set) var openCount = 0 {
        didSet { cluster.counts.open.wrappingIncrement(by: openCount - oldValue, ordering: .relaxed) }
    }
    private var waiters = CircularBuffer<Waiter>()
    private var nextWaiterID: UInt64 = 0
    /// Set when a reload replaced this pool's cluster: connections are closed on release
    /// instead of kept, so the old endpoints and TLS settings stop being used.
    private(set) var isRetired = false
    /// One sweeper per pool closes connections idle longer than `idle_timeout`, instead of a
    /// timer per connection scheduled and cancelled on every request.
    private var sweeper: DeadlineTimer?

    init(cluster: UpstreamCluster, eventLoop: EventLoop) {
        self.cluster = cluster
        self.limits = cluster.config.pool
        self.eventLoop = eventLoop
        self.idle = Array(repeating: [], count: cluster.selector.endpoints.count)
        self.sweeper = DeadlineTimer(eventLoop: eventLoop) { [weak self] in self?.sweepIdle() }
    }

    private let limits: UpstreamPoolConfig
    private var config: UpstreamConfig { cluster.config }

    /// A connection to the next endpoint in rotation (other than `excluding`, used for the
    /// retry after a connect failure): an idle one when there is one, else a new one.
    func acquire(excluding: Int? = nil) -> Acquisition {
        eventLoop.preconditionInEventLoop()
        let endpoint = cluster.selector.next(excluding: excluding)
        while let connection = idle[endpoint].popLast() {
            idleCount -= 1
            if connection.isUsable { return .ready(connection) }
        }
        if openCount < limits.maxConnectionsPerLoop {
            return .pending(connect(endpoint: endpoint))
        }
        guard waiters.count < limits.maxPendingPerLoop else {
            return .pending(eventLoop.makeFailedFuture(UpstreamFailure.poolExhausted))
        }
        let promise = eventLoop.makePromise(of: UpstreamConnection.self)
        nextWaiterID &+= 1
        let id = nextWaiterID
        let loopBound = NIOLoopBound(self, eventLoop: eventLoop)
        let timeout = eventLoop.scheduleTask(in: .init(config.connectTimeout)) {
            loopBound.value.waiterTimedOut(id: id)
        }
        waiters.append(Waiter(promise: promise, timeout: timeout, id: id))
        return .pending(promise.futureResult)
    }

    private func waiterTimedOut(id: UInt64) {
        if let index = waiters.firstIndex(where: { $0.id == id }) {
            waiters.remove(at: index).promise.fail(UpstreamFailure.poolExhausted)
        }
    }

    /// Gives a connection back after an exchange. Only a connection whose last exchange
    /// completed cleanly on both sides may be reused; anything else is closed.
    func release(_ connection: UpstreamConnection, reusable: Bool) {
        eventLoop.preconditionInEventLoop()
        connection.handler.receiver = nil
        connection.handler.resumeReads()
        connection.requestsServed += 1
        guard reusable, connection.isUsable, !isRetired else {
            connection.channel.close(promise: nil)
            return
        }
        if let waiter = waiters.popFirst() {
            waiter.timeout.cancel()
            waiter.promise.succeed(connection)
            return
        }
        guard idleCount < limits.maxIdlePerLoop else {
            connection.channel.close(promise: nil)
            return
        }
        connection.idleSince = .now()
        idle[connection.endpointIndex].append(connection)
        idleCount += 1
        if sweeper?.isArmed == false { sweeper?.arm(in: .init(limits.idleTimeout)) }
    }

    private func sweepIdle() {
        let timeout = TimeAmount(limits.idleTimeout)
        let now = NIODeadline.now()
        var oldestRemaining = NIODeadline.distantFuture
        for endpoint in idle.indices {
            // Stacks are LIFO, so the stale connections are at the bottom.
            while let oldest = idle[endpoint].first, oldest.idleSince + timeout <= now {
                idle[endpoint].removeFirst()
                idleCount -= 1
                oldest.channel.close(promise: nil)
            }
            if let oldest = idle[endpoint].first { oldestRemaining = min(oldestRemaining, oldest.idleSince) }
        }
        if idleCount > 0 { sweeper?.arm(in: oldestRemaining + timeout - now) }
    }

    /// Stops pooling (a reload replaced the cluster): idle connections close now, busy ones
    /// when their exchange ends; requests already waiting are still served.
    func retire() {
        isRetired = true
        closeIdle()
    }

    /// Closes every idle connection (shutdown).
    func closeIdle() {
        for endpoint in idle.indices {
            for connection in idle[endpoint] { connection.channel.close(promise: nil) }
            idle[endpoint].removeAll()
        }
        idleCount = 0
    }

    private func connect(endpoint: Int) -> EventLoopFuture<UpstreamConnection> {
        openCount += 1
        let selector = cluster.selector
        let address = selector.endpoints[endpoint].address
        let endpointHost = config.endpoints[endpoint].host
        let loop = eventLoop
        let tls = cluster.tls
        let connectTimeout = TimeAmount(config.connectTimeout)
        return ClientBootstrap(group: eventLoop)
            .connectTimeout(.init(config.connectTimeout))
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelOption(.writeBufferWaterMark, value: .init(low: 32 * 1024, high: 64 * 1024))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tls {
                        let (handler, slot) = try tls.makeClientHandler(endpointHost: endpointHost, eventLoop: channel.eventLoop)
                        try channel.pipeline.syncOperations.addHandler(handler)
                        // The connection is only handed out once the upstream proved who it is.
                        let handshake = channel.eventLoop.makePromise(of: Void.self)
                        try channel.pipeline.syncOperations.addHandler(
                            UpstreamHandshakeHandler(promise: handshake, slot: slot, timeout: connectTimeout))
                    }
                    try channel.pipeline.syncOperations.addHandler(UpstreamClientHandler())
                }
            }
            .connect(to: address)
            .flatMap { channel -> EventLoopFuture<Channel> in
                guard tls != nil else { return channel.eventLoop.makeSucceededFuture(channel) }
                return channel.pipeline.handler(type: UpstreamHandshakeHandler.self).flatMap { handshake in
                    handshake.completed.map { channel }
                }
            }
            .hop(to: loop)
            .assumeIsolated()
            .flatMapThrowing { channel -> UpstreamConnection in
                let handler = try channel.pipeline.syncOperations.handler(type: UpstreamClientHandler.self)
                let connection = UpstreamConnection(
                    channel: channel, endpointIndex: endpoint, endpointLabel: selector.endpoints[endpoint].label, handler: handler
                )
                handler.onClose = { [weak self] in self?.connectionClosed(connection) }
                selector.recordConnectSuccess(endpoint)
                return connection
            }
            .flatMapErrorThrowing { [self] error in
                openCount -= 1
                if selector.recordConnectFailure(endpoint) {
                    cluster.counts.ejections.wrappingIncrement(ordering: .relaxed)
                }
                serveWaiterAfterClose()
                // Refused or timed out: both mean 502 `upstream.unavailable`, so one case serves.
                // A TLS failure (untrusted chain, wrong identity) names its own reason.
                if let failure = error as? UpstreamTLS.HandshakeFailure {
                    throw ConnectError(endpoint: endpoint, reason: failure.reason, detail: failure.detail)
                }
                throw ConnectError(endpoint: endpoint, reason: .upstreamUnavailable, detail: nil)
            }
            .nonisolated()
    }

    private func connectionClosed(_ connection: UpstreamConnection) {
        openCount -= 1
        if let position = idle[connection.endpointIndex].firstIndex(where: { $0 === connection }) {
            idle[connection.endpointIndex].remove(at: position)
            idleCount -= 1
        }
        serveWaiterAfterClose()
    }

    /// A slot freed up: open a connection for the longest-waiting request.
    private func serveWaiterAfterClose() {
        guard let waiter = waiters.popFirst() else { return }
        waiter.timeout.cancel()
        connect(endpoint: cluster.selector.next()).cascade(to: waiter.promise)
    }
}

@available(*, unavailable)
extension UpstreamPool: Sendable {}

/// Every upstream's pool for one event loop. Created lazily on first use and reached only
/// from its own loop (looked up by the loop's identity).
///
/// A pool belongs to one `UpstreamCluster` object: a reload that changes an upstream builds
/// a new cluster (new endpoints, new TLS), and `adopt` retires the old pool on every loop.
/// A request that started on the old snapshot and forwards after that gets a pool of its
/// own, not kept: it must not replace the current one, and its connection closes after use.
final class UpstreamPools: Sendable {
    private let perLoop: [ObjectIdentifier: NIOLoopBoundBox<LoopPools>]

    final class LoopPools {
        var pools: [String: UpstreamPool] = [:]
        /// The clusters of the running snapshot, by name, as this loop last heard of them.
        var current: [String: UpstreamCluster]

        init(current: [String: UpstreamCluster]) {
            self.current = current
        }
    }

    init(group: EventLoopGroup, clusters: [String: UpstreamCluster]) {
        var map: [ObjectIdentifier: NIOLoopBoundBox<LoopPools>] = [:]
        for loop in group.makeIterator() {
            map[ObjectIdentifier(loop)] = NIOLoopBoundBox.makeBoxSendingValue(LoopPools(current: clusters), eventLoop: loop)
        }
        self.perLoop = map
    }

    /// The pool for `cluster` on `eventLoop`; must be called on that loop.
    func pool(for cluster: UpstreamCluster, on eventLoop: EventLoop) -> UpstreamPool {
        guard let box = perLoop[ObjectIdentifier(eventLoop)] else {
            preconditionFailure("event loop not part of the gateway's group")
        }
        let loopPools = box.value
        if let pool = loopPools.pools[cluster.name], pool.cluster === cluster { return pool }
        guard loopPools.current[cluster.name] === cluster else {
            // A cluster from another snapshot than the one this loop runs (an older one, or a
            // newer one whose `adopt` has not reached this loop yet): serve without pooling.
            let pool = UpstreamPool(cluster: cluster, eventLoop: eventLoop)
            pool.retire()
            return pool
        }
        let pool = UpstreamPool(cluster: cluster, eventLoop: eventLoop)
        loopPools.pools[cluster.name] = pool
        return pool
    }

    /// Makes `clusters` (the new snapshot's) the current ones on every loop; a pool whose
    /// cluster was replaced or removed is retired.
    func adopt(_ clusters: [String: UpstreamCluster]) {
        for box in perLoop.values {
            box.eventLoop.execute {
                let loopPools = box.value
                loopPools.current = clusters
                for (name, pool) in loopPools.pools where clusters[name] !== pool.cluster {
                    pool.retire()
                    loopPools.pools[name] = nil
                }
            }
        }
    }

    func closeIdleConnections() {
        for box in perLoop.values {
            let loop = box.eventLoop
            loop.execute {
                for pool in box.value.pools.values { pool.closeIdle() }
            }
        }
    }
}
