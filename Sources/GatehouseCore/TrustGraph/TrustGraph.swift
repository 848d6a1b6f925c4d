/// Who can call what, and how the gateway reaches what it forwards to: callers (SPIFFE ID
/// patterns, token issuers, webhook senders, or anyone) → routes (method, path) → upstreams
/// (with the identity of the hop). Built from a config; deterministic (file order, stable ids).
public struct TrustGraph: Sendable, Equatable, Encodable {
    public enum CallerKind: String, Sendable, Hashable, Encodable {
        case peer
        case token
        case webhook
        /// A route without identity requirements: whoever reaches the listener.
        case anyone
    }

    public struct Caller: Sendable, Equatable, Encodable {
        public var id: String
        public var kind: CallerKind
        public var label: String
    }

    public struct Route: Sendable, Equatable, Encodable {
        public var id: String
        public var name: String
        public var methods: String
        public var path: String
        public var host: String?
    }

    /// The hop from the gateway to an upstream.
    public enum Hop: String, Sendable, Hashable, Encodable {
        case plaintext
        case tls = "TLS"
        case tlsSPIFFE = "TLS+SPIFFE"
        case mtls = "mTLS"
        case mtlsSPIFFE = "mTLS+SPIFFE"
    }

    public struct Upstream: Sendable, Equatable, Encodable {
        public var id: String
        public var name: String
        public var hop: Hop
        public var endpoints: [String]
    }

    public struct Edge: Sendable, Equatable, Encodable {
        public var from: String
        public var to: String
        /// Required scopes, `shadow`, `minted token`; empty when there is nothing to say.
        public var label: String
    }

    public var environment: String
    public var callers: [Caller] = []
    public var routes: [Route] = []
    public var upstreams: [Upstream] = []
    public var edges: [Edge] = []

    public init(_ config: GatewayConfig) {
        environment = config.environment
        var callerIDs: [String: String] = [:]
        func caller(_ kind: CallerKind, _ label: String) -> String {
            let key = "\(kind.rawValue) \(label)"
            if let id = callerIDs[key] { return id }
            let id = "c\(callers.count)"
            callerIDs[key] = id
            callers.append(Caller(id: id, kind: kind, label: label))
            return id
        }
        var upstreamIDs: [String: String] = [:]
        for (index, upstream) in config.upstreams.enumerated() {
            let id = "u\(index)"
            upstreamIDs[upstream.name] = id
            upstreams.append(Upstream(id: id, name: upstream.name, hop: Self.hop(upstream.tls), endpoints: upstream.endpoints.map(\.description)))
        }
        let issuers = Dictionary(config.issuers.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        for (index, route) in config.routes.enumerated() {
            let id = "r\(index)"
            let methods = route.match.methods.map { $0.sorted().joined(separator: ",") } ?? "*"
            let path: String
            switch route.match.path {
            case .prefix(let prefix): path = prefix == "/" ? "/*" : prefix + "/*"
            case .exact(let exact): path = exact
            }
            routes.append(Route(id: id, name: route.name, methods: methods, path: path, host: route.match.host))
            func shadowed(_ check: RouteCheck, _ label: String) -> String {
                let mode = route.mode(of: check) == .shadow ? "shadow" : ""
                return [label, mode].filter { !$0.isEmpty }.joined(separator: ", ")
            }
            for pattern in route.peers?.patterns ?? [] {
                edges.append(Edge(from: caller(.peer, pattern.description), to: id, label: shadowed(.peers, "")))
            }
            if let token = route.token {
                let scopes = token.scopes.isEmpty ? "" : "scopes: " + token.scopes.joined(separator: " ")
                for name in token.issuers {
                    let iss = issuers[name].map { " (\($0.issuer))" } ?? ""
                    edges.append(Edge(from: caller(.token, "token \(name)\(iss)"), to: id, label: shadowed(.token, scopes)))
                }
            }
            if let webhook = route.webhook {
                let keys = webhook.secrets.count + webhook.publicKeys.count
                edges.append(Edge(from: caller(.webhook, "webhook \(webhook.scheme.rawValue) sender (\(keys) key(s), route \(route.name))"),
                    to: id, label: shadowed(.webhook, "")))
            }
            if route.peers == nil, route.token == nil, route.webhook == nil {
                edges.append(Edge(from: caller(.anyone, "anyone"), to: id, label: ""))
            }
            if let upstream = upstreamIDs[route.upstream] {
                edges.append(Edge(from: id, to: upstream, label: route.token?.mintUpstream == true ? "minted token" : ""))
            }
        }
    }

    static func hop(_ tls: UpstreamTLSConfig?) -> Hop {
        guard let tls else { return .plaintext }
        switch (tls.certificatePath != nil, !tls.spiffeIDs.isEmpty) {
        case (true, true): return .mtlsSPIFFE
        case (true, false): return .mtls
        case (false, true): return .tlsSPIFFE
        case (false, false): return .tls
        }
    }
}
