/// Intended versus observed trust: the grants of a config compared with the decision records
/// of a window. Fed one record at a time (`add`), in bounded memory: per-grant counters are
/// sized by the config, callers by `BoundedCounter`.
public struct TrustReport: Sendable {
    /// Distinct callers (and caller/reason pairs) tracked exactly before the counter prunes.
    public static let trackedCallers = 5_000
    /// Distinct foreign trust domains / issuers tracked (more are counted under `other`).
    public static let trackedForeign = 256

    public struct RouteGrants: Sendable {
        public var name: String
        public var allowed = 0
        public var denied = 0
        /// Peer patterns, with the allowed requests each matched.
        public var patterns: [(pattern: SPIFFEIDPattern, allowed: Int)]
        /// Issuer names, their `iss`, and the allowed requests with a token of theirs.
        public var issuers: [(name: String, iss: String, allowed: Int)]
        /// Allowed deliveries per webhook secret index and public-key index.
        public var secretMatches: [Int]
        public var publicKeyMatches: [Int]
        /// Denials that suggest tokens minted for another audience/environment or too long-lived.
        public var audienceMismatches = 0
        public var claimMismatches = 0
        public var lifetimeTooLong = 0
    }

    public let environment: String
    public let policyVersion: String
    public let sinceMillis: Int64?
    public let ownTrustDomains: Set<String>
    public private(set) var routes: [RouteGrants]
    private let routeIndex: [String: Int]
    private let issuerNames: [String: String]
    private let audiences: Set<String>

    public private(set) var records = 0
    public private(set) var outsideWindow = 0
    public private(set) var unreadable = 0
    /// The gateway's own lines (`rollout.rolled_back`, `rollout.promoted`): not requests.
    public private(set) var gatewayEvents = 0
    public private(set) var unknownRoute = 0
    public private(set) var otherPolicyVersion = 0
    public private(set) var deniedCallers = BoundedCounter<String>(capacity: TrustReport.trackedCallers)
    public private(set) var denialReasons = BoundedCounter<String>(capacity: TrustReport.trackedCallers)
    /// SPIFFE trust domain -> requests, for IDs outside this environment's own trust domains.
    public private(set) var foreignTrustDomains = BoundedCounter<String>(capacity: TrustReport.trackedForeign)
    /// `iss` values seen on records that no issuer of this config has.
    public private(set) var foreignIssuers = BoundedCounter<String>(capacity: TrustReport.trackedForeign)
    /// Tokens whose `env`/`aud` (when a record carries them) belong elsewhere.
    public private(set) var foreignTokenClaims = 0
    public private(set) var recordsWithTokenAudienceOrEnv = 0

    public init(config: GatewayConfig, sinceMillis: Int64?) {
        environment = config.environment
        policyVersion = config.policyVersion
        self.sinceMillis = sinceMillis
        let own = RouteAudit.ownTrustDomains(config)
        // Without a trust domain named for the environment, every configured one counts as own.
        ownTrustDomains = own.isEmpty ? Set(config.trustDomains.map(\.name)) : own
        let issuers = Dictionary(config.issuers.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        issuerNames = Dictionary(config.issuers.map { ($0.issuer, $0.name) }, uniquingKeysWith: { first, _ in first })
        audiences = Set(config.issuers.flatMap(\.audiences))
        routes = config.routes.map { route in
            RouteGrants(
                name: route.name,
                patterns: (route.peers?.patterns ?? []).map { ($0, 0) },
                issuers: (route.token?.issuers ?? []).map { ($0, issuers[$0]?.issuer ?? "?", 0) },
                secretMatches: Array(repeating: 0, count: route.webhook?.secrets.count ?? 0),
                publicKeyMatches: Array(repeating: 0, count: route.webhook?.publicKeys.count ?? 0))
        }
        routeIndex = Dictionary(config.routes.enumerated().map { ($1.name, $0) }, uniquingKeysWith: { first, _ in first })
    }

    /// Reads one line of the log.
    public mutating func add(line: ArraySlice<UInt8>) {
        guard !line.isEmpty else { return }
        guard let entry = DecisionLogEntry(jsonLine: line) else {
            if DecisionLogEntry.isGatewayEvent(jsonLine: line) { gatewayEvents += 1 } else { unreadable += 1 }
            return
        }
        add(entry)
    }

    public mutating func add(_ entry: DecisionLogEntry) {
        if let sinceMillis, entry.timestampMillis < sinceMillis {
            outsideWindow += 1
            return
        }
        records += 1
        if entry.policyVersion != policyVersion { otherPolicyVersion += 1 }
        let peer = entry.peerSPIFFEID.flatMap { try? SPIFFEID(parsing: $0) }
        if let peer, !ownTrustDomains.contains(peer.trustDomain) { foreignTrustDomains.add(peer.trustDomain) }
        if let iss = entry.tokenIssuer, issuerNames[iss] == nil { foreignIssuers.add(iss) }
        if entry.tokenAudience != nil || entry.tokenEnvironment != nil {
            recordsWithTokenAudienceOrEnv += 1
            if entry.tokenEnvironment.map({ $0 != environment }) == true || entry.tokenAudience.map({ !audiences.contains($0) }) == true {
                foreignTokenClaims += 1
            }
        }
        if !entry.allowed {
            let caller = Self.caller(entry)
            deniedCallers.add(caller)
            denialReasons.add(caller + Self.separator + entry.reason)
        }
        guard let name = entry.route, let index = routeIndex[name] else {
            if entry.route != nil { unknownRoute += 1 }
            return
        }
        guard entry.allowed else {
            switch entry.reason {
            case "token.audience_mismatch": routes[index].audienceMismatches += 1
            case "token.claim_mismatch": routes[index].claimMismatches += 1
            case "token.lifetime_too_long": routes[index].lifetimeTooLong += 1
            default: break
            }
            routes[index].denied += 1
            return
        }
        routes[index].allowed += 1
        if let peer {
            for patternIndex in routes[index].patterns.indices where routes[index].patterns[patternIndex].pattern.matches(peer) {
                routes[index].patterns[patternIndex].allowed += 1
            }
        }
        if let iss = entry.tokenIssuer, let issuer = issuerNames[iss],
            let issuerIndex = routes[index].issuers.firstIndex(where: { $0.name == issuer })
        {
            routes[index].issuers[issuerIndex].allowed += 1
        }
        if let secret = entry.webhookSecretIndex, routes[index].secretMatches.indices.contains(secret) {
            routes[index].secretMatches[secret] += 1
        }
        if let key = entry.webhookPublicKeyIndex, routes[index].publicKeyMatches.indices.contains(key) {
            routes[index].publicKeyMatches[key] += 1
        }
    }

    /// Between caller and reason in `denialReasons` keys (a unit separator: in no ID or reason).
    static let separator = "\u{1F}"

    /// Who was denied: the verified SPIFFE ID, else the token's subject and issuer, else the
    /// client address (what the record says about the caller, best first).
    static func caller(_ entry: DecisionLogEntry) -> String {
        if let id = entry.peerSPIFFEID { return id }
        if let subject = entry.tokenSubject { return "sub:\(subject)@\(entry.tokenIssuer ?? "?")" }
        return "ip:\(entry.clientIP ?? "?")"
    }
}
