import GatehouseCore
import NIOConcurrencyHelpers

/// A route compiled for the data path.
struct CompiledRoute: Sendable {
    let name: String
    let cluster: UpstreamCluster
    let maxBodyBytes: Int?
    /// nil when the route does not look at peers.
    let peerCheck: PeerCheck?
    /// nil when the route does not look at bearer tokens.
    let tokenCheck: RouteTokenCheck?
    /// nil when the route takes no webhook deliveries.
    let webhook: WebhookVerifier?
    /// nil when the route is not rate-limited.
    let rateLimit: RateLimitConfig?
    let forwardClientCert: ForwardClientCertMode
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

    /// - Parameter previous: the running snapshot, on reload: its upstream clusters and token
    ///   minter are kept where the new file configures them the same way (warm connections,
    ///   endpoint health, the previous minting key still published).
    init(
        config: GatewayConfig, trust: TrustDomainStore? = nil, tokens: TokenVerifierStore? = nil,
        environment: [String: String] = [:], reusing previous: GatewaySnapshot? = nil
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
        self.router = Router(
            entries: try config.routes.enumerated().map { index, route in
                (
                    host: route.match.host, path: route.match.path, methods: route.match.methods,
                    payload: CompiledRoute(
                        name: route.name, cluster: clusters[route.upstream]!,
                        // A webhook route buffers its body to verify it: `max_body` bounds it.
                        maxBodyBytes: route.webhook?.maxBodyBytes ?? route.maxBodyBytes,
                        peerCheck: route.peers.map(PeerCheck.init), tokenCheck: route.token.map(RouteTokenCheck.init),
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

/// Holds the running snapshot; swapped atomically on reload.
final class SnapshotStore: Sendable {
    private let current: NIOLockedValueBox<GatewaySnapshot>

    init(_ snapshot: GatewaySnapshot) {
        self.current = NIOLockedValueBox(snapshot)
    }

    var snapshot: GatewaySnapshot { current.withLockedValue { $0 } }

    func replace(with snapshot: GatewaySnapshot) {
        current.withLockedValue { $0 = snapshot }
    }
}
