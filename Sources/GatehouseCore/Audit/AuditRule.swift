/// A kind of finding: a stable id, its severity, a one-line title and the fix. The closed set
/// of rules is `AuditRule.all`; the README's table and SARIF's `rules` are made from it.
public struct AuditRule: Sendable, Hashable {
    public let id: String
    public let severity: AuditSeverity
    public let title: String
    public let fix: String

    public static let configInvalid = AuditRule(
        id: "config.invalid", severity: .high, title: "The configuration does not load",
        fix: "Fix the loader's error (`gatehouse check --config FILE` prints the same).")
    public static let secretInline = AuditRule(
        id: "secret.inline", severity: .high, title: "A secret is written inline in the file",
        fix: "Move the secret to a file or environment variable and reference it as `file:/path` or `env:NAME`; rotate it, it has been in the file.")
    public static let routeNoIdentity = AuditRule(
        id: "route.no_identity", severity: .high, title: "Route without any identity requirement on a listener reachable beyond loopback",
        fix: "Add `peers`, `token` or `webhook` to the route, or bind the listeners to loopback.")
    public static let routeAllShadowInProd = AuditRule(
        id: "route.all_shadow_in_prod", severity: .high, title: "Every identity requirement (peers, token, webhook) of a prod route is in shadow mode",
        fix: "Set `mode: enforce` (or drop `mode`) on at least one identity requirement of the route.")
    public static let peerWholeTrustDomain = AuditRule(
        id: "peer.whole_trust_domain", severity: .medium, title: "A peer pattern admits every workload of a trust domain",
        fix: "List the workloads (`spiffe://td/ns/NAME/sa/NAME`) or a namespace (`spiffe://td/ns/NAME/*`).")
    public static let peerForeignTrustDomain = AuditRule(
        id: "peer.foreign_trust_domain", severity: .high, title: "A peer pattern admits a trust domain that is not this environment's own",
        fix: "Admit only the environment's own trust domain (one whose name has the environment as a label, e.g. `prod.example` for `prod`).")
    public static let issuerNoAudience = AuditRule(
        id: "issuer.no_audience", severity: .high, title: "Token issuer without an audience",
        fix: "Set `audiences` to the values that name this gateway or service.")
    public static let issuerNoMaxLifetime = AuditRule(
        id: "issuer.no_max_lifetime", severity: .medium, title: "Token issuer without `max_lifetime`",
        fix: "Set `max_lifetime` (e.g. `15m`) so that a long-lived token is refused.")
    public static let issuerLongMaxLifetime = AuditRule(
        id: "issuer.long_max_lifetime", severity: .medium, title: "Token issuer with a `max_lifetime` above 1 hour",
        fix: "Lower `max_lifetime` to 1h or less (e.g. `15m`).")
    public static let issuerHMAC = AuditRule(
        id: "issuer.hmac", severity: .medium, title: "Token issuer accepts an HMAC algorithm (shared secret)",
        fix: "Use an asymmetric algorithm (ES256, EdDSA, RS256) with a JWKS, so that verifiers cannot mint tokens.")
    public static let issuerNoEnvironmentBinding = AuditRule(
        id: "issuer.no_environment_binding", severity: .medium, title: "Token issuer has no `required_claims` binding tokens to this environment",
        fix: "Add a required claim whose value is the environment, e.g. `required_claims: { env: prod }`.")
    public static let webhookNoReplay = AuditRule(
        id: "webhook.no_replay", severity: .high, title: "Webhook route without replay protection",
        fix: "Remove `replay: none` (replay protection is on by default).")
    public static let webhookLongTolerance = AuditRule(
        id: "webhook.long_tolerance", severity: .medium, title: "Webhook timestamp tolerance above 10 minutes",
        fix: "Set `tolerance` to 10m or less (5m is the default).")
    public static let secretSharedAcrossEnvironments = AuditRule(
        id: "secret.shared_across_environments", severity: .high, title: "The same secret is used by configs of different environments",
        fix: "Give each environment its own secret (and rotate the shared one).")
    public static let trustBundleSharedAcrossEnvironments = AuditRule(
        id: "trust.bundle_shared_across_environments", severity: .high, title: "The same trust-domain bundle is trusted by two environments",
        fix: "Give each environment its own trust domain and CA, so that one environment's workloads cannot call the other's.")
    public static let jwksSharedAcrossEnvironments = AuditRule(
        id: "issuer.jwks_shared_across_environments", severity: .high, title: "The same JWKS (file or URI) is trusted by two environments",
        fix: "Use a key set per environment, or bind tokens to the environment with `required_claims`.")
    public static let listenerPublicTrustedProxies = AuditRule(
        id: "listener.trusted_proxies_public", severity: .high, title: "`trusted_proxies` includes 0.0.0.0/0 or a public range",
        fix: "List only the private addresses of the load balancers in front of the gateway.")
    public static let adminOffLoopback = AuditRule(
        id: "admin.off_loopback", severity: .high, title: "The admin listener is reachable beyond loopback",
        fix: "Bind `admin.address` to 127.0.0.1 or ::1 (or `enabled: false`).")
    public static let adminNoToken = AuditRule(
        id: "admin.no_token", severity: .medium, title: "Mutating admin endpoints (rollout promote/rollback) without `admin.token`",
        fix: "Set `admin.token: env:NAME` (or file:) so that only an operator holding it can promote or roll back.")
    public static let upstreamPlaintextRemote = AuditRule(
        id: "upstream.plaintext_remote", severity: .high, title: "Plaintext hop to a non-loopback upstream",
        fix: "Add `tls` to the upstream (with `spiffe_id` for mTLS), or keep plaintext upstreams on loopback.")
    public static let upstreamTLSNoIdentity = AuditRule(
        id: "upstream.tls_no_identity", severity: .low, title: "Upstream TLS without a pinned identity (`spiffe_id`)",
        fix: "Add `spiffe_id` so that the upstream must prove it is the workload you meant.")
    public static let exceptionExpired = AuditRule(
        id: "exception.expired", severity: .medium, title: "An accepted-risk exception has expired",
        fix: "Fix the finding, or renew the exception with a new `expires` after review.")
    public static let exceptionNoOwner = AuditRule(
        id: "exception.no_owner", severity: .medium, title: "An accepted-risk exception has no owner",
        fix: "Set `owner` to the person who accepted the risk.")

    /// Every rule, in the order of the README's table.
    public static let all: [AuditRule] = [
        configInvalid, secretInline, routeNoIdentity, routeAllShadowInProd, peerWholeTrustDomain, peerForeignTrustDomain,
        issuerNoAudience, issuerNoMaxLifetime, issuerLongMaxLifetime, issuerHMAC, issuerNoEnvironmentBinding,
        webhookNoReplay, webhookLongTolerance, secretSharedAcrossEnvironments, trustBundleSharedAcrossEnvironments,
        jwksSharedAcrossEnvironments, listenerPublicTrustedProxies, adminOffLoopback, adminNoToken,
        upstreamPlaintextRemote, upstreamTLSNoIdentity, exceptionExpired, exceptionNoOwner,
    ]
}
