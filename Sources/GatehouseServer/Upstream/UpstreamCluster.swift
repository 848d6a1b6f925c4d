import Atomics
import GatehouseCore
import NIOCore

/// Connection figures of one upstream across every event loop's pool, for `/metrics`.
final class UpstreamCounts: Sendable {
    let open = ManagedAtomic(0)
    let idle = ManagedAtomic(0)
    /// Endpoints taken out of rotation after consecutive connect failures.
    let ejections = ManagedAtomic(0)
}

/// One configured upstream, shared by all event loops: its settings, resolved endpoints and
/// endpoint health. Each event loop keeps its own `UpstreamPool` of connections to it.
final class UpstreamCluster: Sendable {
    let name: String
    let config: UpstreamConfig
    let selector: EndpointSelector
    /// Read on every request: kept as a `TimeAmount` rather than reached through `config`.
    let responseTimeout: TimeAmount
    /// nil: plaintext to the upstream.
    let tls: UpstreamTLS?
    /// Why handshakes with this upstream fail (wrong identity, untrusted chain), logged at
    /// most every 10 s however many requests hit it.
    let handshakeFailureLog = RateLimitedLog()
    /// `aud` of tokens minted for this upstream: its SPIFFE ID when it must present exactly
    /// one, else its name.
    let tokenAudience: String
    let counts = UpstreamCounts()

    /// Resolves endpoints once, at load time, off the event loop: a DNS lookup on the data
    /// path would block it. Endpoint names are therefore not re-resolved until reload.
    init(config: UpstreamConfig, trust: TrustDomainStore? = nil, environment: [String: String] = [:]) throws {
        self.name = config.name
        self.config = config
        let endpoints = try config.endpoints.map { endpoint in
            EndpointSelector.Endpoint(
                address: try SocketAddress.makeAddressResolvingHost(endpoint.host, port: endpoint.port),
                label: endpoint.description
            )
        }
        self.selector = EndpointSelector(endpoints: endpoints, ejection: config.ejection)
        self.responseTimeout = TimeAmount(config.responseTimeout)
        if let ids = config.tls?.spiffeIDs, ids.count == 1 {
            self.tokenAudience = ids[0].description
        } else {
            self.tokenAudience = config.name
        }
        self.tls = try config.tls.map {
            try UpstreamTLS(config: $0, upstreamName: config.name, trust: trust, environment: environment)
        }
    }
}
