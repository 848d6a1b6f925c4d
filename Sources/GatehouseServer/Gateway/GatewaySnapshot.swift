import GatehouseCore
import NIOConcurrencyHelpers

/// A route compiled for the data path. A class: a request copies its route several times
/// (router, verdict, exchange), and a struct of this many reference-counted fields would
/// retain and release each of them on every copy, on objects both event loops share.
final class CompiledRoute: Sendable {
    let name: String
    let cluster: UpstreamCluster
    let maxBodyBytes: Int?
    /// nil when the route does not look at peers.
    let peerCheck: PeerCheck?
    /// `peers` in `mode: shadow`.
    let peersShadowed: Bool
    /// nil when the route does not look at bearer tokens.
    let tokenCheck: RouteTokenCheck?
    /// nil when the route takes no webhook deliveries.
    let webhook: WebhookVerifier?
    /// nil when the route is not rate-limited.
    let rateLimit: RateLimitConfig?
    let forwardClientCert: ForwardClientCertMode

    init(
        name: String, cluster: UpstreamCluster, maxBodyBytes: Int?, peerCheck: PeerCheck?, peersShadowed: Bool,
        tokenCheck: RouteTokenCheck?, webhook: WebhookVerifier?, rateLimit: RateLimitConfig?, forwardClientCert: ForwardClientCertMode
    ) {
        self.name = name
        self.cluster = cluster
        self.maxBodyBytes = maxBodyBytes
        self.peerCheck = peerCheck
        self.peersShadowed = peersShadowed
        self.tokenCheck = tokenCheck
        self.webhook = webhook
        self.rateLimit = rateLimit
        self.forwardClientCert = forwardClientCert
    }
}

/// The immutable, compiled form of one configuration. Built once, off the event loop; a
/// request keeps the snapshot it started with.
final class GatewaySnapshot: Sendable {
    let config: GatewayConfig
    let router: Router<CompiledRoute>
    let clusters: [String: UpstreamCluster]
    /// Verifies bearer tokens for routes with `token`; nil without `issuers`.
    let tokens: TokenVerifierStore?
    /// Mints next-hop tokens for routes with `token.upstream: mint`.
    let minter: TokenMinter?

    /// The candidate policy and its runtime state, during a rollout.
    let rollout: RolloutRuntime?

    /// - Parameter previous: the running snapshot, on reload: its upstream clusters and token
    ///   minter are kept where the new file configures them the same way (warm connections,
    ///   endpoint health, the previous minting key still published).
    init(
        config: GatewayConfig, trust: TrustDomainStore? = nil, tokens: TokenVerifierStore? = nil,
        environment: [String: String] = [:], reusing previous: GatewaySnapshot? = nil,
        rolloutHooks: RolloutHooks = RolloutHooks()
    ) throws {
        self.tokens = tokens
        if let minter = previous?.minter, let minting = config.tokenMinting, minter.config.sameSettings(as: minting) {
            self.minter = minter
        } else {
            self.minter = try config.tokenMinting.map { try TokenMinter(config: $0, environment: environment) }
        }
        self.config = config
        self.version = config.policyVersion
        var clusters: [String: UpstreamCluster] = [:]
        for upstream in config.upstreams {
            do {
                let cluster = try UpstreamCluster(config: upstream, trust: trust, environment: environment)
                if let running = previous?.clusters[upstream.name], running.canStandIn(for: cluster) {
                    clusters[upstream.name] = running
                } else {
                    clusters[upstream.name] = cluster
                }
            } catch GatewayStartError.tls(let key, let message) {
                throw ConfigErrors([
                    ConfigIssue(location: upstream.location, keyPath: "upstreams.\(upstream.name).tls.\(key)", message: message)
                ])
            } catch {
                throw ConfigErrors([
                    ConfigIssue(
                        location: upstream.location, keyPath: "upstreams.\(upstream.name).endpoints",
                        message: "cannot resolve an endpoint address (\(error))", expected: "a resolvable host:port"
                    )
                ])
            }
        }
        self.clusters = clusters
        self.router = try Self.compile(config.routes, clusters: clusters, environment: environment)
        self.rollout = try config.rollout.map { rollout in
            RolloutRuntime(
                config: rollout, stableVersion: config.policyVersion,
                router: try Self.compile(rollout.candidate.routes, clusters: clusters, environment: environment),
                hooks: rolloutHooks)
        }
    }

    /// The same gateway with the candidate as its only policy (`POST /rollout/promote`).
    private init(promoting snapshot: GatewaySnapshot, _ rollout: RolloutRuntime) {
        var config = snapshot.config
        config.routes = rollout.config.candidate.routes
        config.declaredVersion = rollout.candidateVersion
        config.rollout = nil
        self.config = config
        self.version = rollout.candidateVersion
        self.router = rollout.router
        self.clusters = snapshot.clusters
        self.tokens = snapshot.tokens
        self.minter = snapshot.minter
        self.rollout = nil
    }

    /// nil without a rollout.
    func promoted() -> GatewaySnapshot? {
        rollout.map { GatewaySnapshot(promoting: self, $0) }
    }

    /// Routes for the data path: one prefix tree, upstreams resolved, webhook secrets loaded.
    static func compile(
        _ routes: [RouteConfig], clusters: [String: UpstreamCluster], environment: [String: String]
    ) throws -> Router<CompiledRoute> {
        Router(
            entries: try routes.enumerated().map { index, route in
                (
                    host: route.match.host, path: route.match.path, methods: route.match.methods,
                    payload: CompiledRoute(
                        name: route.name, cluster: clusters[route.upstream]!,
                        // A webhook route buffers its body to verify it: `max_body` bounds it.
                        maxBodyBytes: route.webhook?.maxBodyBytes ?? route.maxBodyBytes,
                        peerCheck: route.peers.map(PeerCheck.init), peersShadowed: route.peersMode == .shadow,
                        tokenCheck: route.token.map(RouteTokenCheck.init),
                        webhook: try route.webhook.map { try Self.webhookVerifier(route, index: index, $0, environment: environment) },
                        rateLimit: route.rateLimit,
                        forwardClientCert: route.forwardClientCert
                    )
                )
            }
        )
    }

    /// Resolves the route's webhook secrets; a problem names the route's key, never a value.
    private static func webhookVerifier(
        _ route: RouteConfig, index: Int, _ config: RouteWebhookConfig, environment: [String: String]
    ) throws -> WebhookVerifier {
        func failure(_ key: String, _ message: String) -> ConfigErrors {
            ConfigErrors([ConfigIssue(location: config.location, keyPath: "routes[\(index)].webhook.\(key)", message: message)])
        }
        do {
            return try WebhookVerifier(route: route.name, config: config, environment: environment)
        } catch let error as SecretResolutionError {
            let key = config.secrets.firstIndex(of: error.reference).map { "secrets[\($0)]" }
                ?? config.publicKeys.firstIndex(of: error.reference).map { "public_keys[\($0)]" } ?? "secrets"
            throw failure(key, error.description)
        } catch let error as WebhookKeyError {
            throw failure(error.key, error.reason)
        }
    }

    /// The policy version for decision records: the first 12 hex digits of the file's SHA-256.
    let version: String
}

/// Holds the running snapshot; swapped atomically on reload. The data path reads it through
/// a connection's ``ReadMostly/Reading`` (no lock per request).
final class SnapshotStore: Sendable {
    private let current: ReadMostly<GatewaySnapshot>

    init(_ snapshot: GatewaySnapshot) {
        self.current = ReadMostly(snapshot)
    }

    var snapshot: GatewaySnapshot { current.value }

    /// The running snapshot, reusing the caller's reading while no reload replaced it.
    func snapshot(reusing reading: inout ReadMostly<GatewaySnapshot>.Reading?) -> GatewaySnapshot {
        current.read(reusing: &reading)
    }

    func replace(with snapshot: GatewaySnapshot) {
        current.replace(with: snapshot)
    }

    /// Replaces `expected` only if it is still the running snapshot (a reload may have won).
    func replace(_ expected: GatewaySnapshot, with snapshot: GatewaySnapshot) -> Bool {
        current.replace(with: snapshot, ifCurrent: { $0 === expected })
    }
}
