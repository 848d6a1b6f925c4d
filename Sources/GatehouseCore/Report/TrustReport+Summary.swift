/// What `gatehouse report` prints, computed once from the counters.
public struct TrustReportSummary: Sendable, Encodable {
    public struct Window: Sendable, Encodable {
        var since: String?
        var records: Int
        var outsideWindow: Int
        var unreadableLines: Int
        var gatewayEvents: Int
        var oversizeLines: Int
        var recordsForUnknownRoutes: Int
        var recordsFromOtherPolicyVersions: Int
    }

    public struct UnusedGrant: Sendable, Encodable, Equatable {
        public var route: String
        /// `route`, `peer`, `issuer`, `webhook_secret` or `webhook_public_key`.
        public var kind: String
        public var grant: String
    }

    public struct DeniedCaller: Sendable, Encodable {
        public var caller: String
        public var denied: Int
        public var reasons: [String: Int]
    }

    public struct Count: Sendable, Encodable {
        public var name: String
        public var count: Int
    }

    public struct Foreign: Sendable, Encodable {
        var spiffeTrustDomains: [Count]
        var tokenIssuersNotConfigured: [Count]
        var tokenAudienceMismatches: [Count]
        var tokenClaimMismatches: [Count]
        var tokensWithForeignAudOrEnv: Int
        var recordsCarryingAudOrEnv: Int
    }

    public struct RouteCount: Sendable, Encodable, Equatable {
        public var route: String
        public var allowed: Int
        public var denied: Int
    }

    public var environment: String
    public var policyVersion: String
    public var window: Window
    /// Allowed and denied requests per route of the config, in file order.
    public var routes: [RouteCount]
    public var unusedGrants: [UnusedGrant]
    public var topDeniedCallers: [DeniedCaller]
    public var foreignCredentials: Foreign
    public var tokensDeniedForLifetime: [Count]
    public var notJudgeable: [String]
    public var bounds: [String]

    public static let topCallers = 10

    public init(_ report: TrustReport, since: String?, oversizeLines: Int) {
        environment = report.environment
        policyVersion = report.policyVersion
        window = Window(since: since, records: report.records, outsideWindow: report.outsideWindow, unreadableLines: report.unreadable,
            gatewayEvents: report.gatewayEvents, oversizeLines: oversizeLines, recordsForUnknownRoutes: report.unknownRoute, recordsFromOtherPolicyVersions: report.otherPolicyVersion)
        routes = report.routes.map { RouteCount(route: $0.name, allowed: $0.allowed, denied: $0.denied) }
        var unused: [UnusedGrant] = []
        for route in report.routes {
            if route.allowed == 0 { unused.append(UnusedGrant(route: route.name, kind: "route", grant: "no allowed request")) }
            for pattern in route.patterns where pattern.allowed == 0 {
                unused.append(UnusedGrant(route: route.name, kind: "peer", grant: pattern.pattern.description))
            }
            for issuer in route.issuers where issuer.allowed == 0 {
                unused.append(UnusedGrant(route: route.name, kind: "issuer", grant: "\(issuer.name) (\(issuer.iss))"))
            }
            for (index, matches) in route.secretMatches.enumerated() where matches == 0 {
                unused.append(UnusedGrant(route: route.name, kind: "webhook_secret", grant: "webhook.secrets[\(index)]"))
            }
            for (index, matches) in route.publicKeyMatches.enumerated() where matches == 0 {
                unused.append(UnusedGrant(route: route.name, kind: "webhook_public_key", grant: "webhook.public_keys[\(index)]"))
            }
        }
        unusedGrants = unused
        let reasons = report.denialReasons.counts
        topDeniedCallers = report.deniedCallers.top(Self.topCallers).map { caller in
            let prefix = caller.key + TrustReport.separator
            var byReason: [String: Int] = [:]
            for (key, count) in reasons where key.hasPrefix(prefix) { byReason[String(key.dropFirst(prefix.count))] = count }
            return DeniedCaller(caller: caller.key, denied: caller.count, reasons: byReason)
        }
        func counts(_ pairs: [(key: String, count: Int)]) -> [Count] { pairs.map { Count(name: $0.key, count: $0.count) } }
        let routeCounts = { (value: (TrustReport.RouteGrants) -> Int) in
            report.routes.filter { value($0) > 0 }.map { Count(name: $0.name, count: value($0)) }
        }
        foreignCredentials = Foreign(
            spiffeTrustDomains: counts(report.foreignTrustDomains.top(TrustReport.trackedForeign)),
            tokenIssuersNotConfigured: counts(report.foreignIssuers.top(TrustReport.trackedForeign)),
            tokenAudienceMismatches: routeCounts(\.audienceMismatches), tokenClaimMismatches: routeCounts(\.claimMismatches),
            tokensWithForeignAudOrEnv: report.foreignTokenClaims, recordsCarryingAudOrEnv: report.recordsWithTokenAudienceOrEnv)
        tokensDeniedForLifetime = routeCounts(\.lifetimeTooLong)
        var notJudgeable: [String] = []
        if report.recordsWithTokenAudienceOrEnv == 0 {
            notJudgeable.append("token `aud`/`env`: decision records carry a token's iss, sub and jti only, so a token for another environment "
                + "shows only as token.audience_mismatch / token.claim_mismatch denials or as an issuer this config does not have")
        }
        notJudgeable.append("token lifetimes: records carry no iat/exp, so the lifetime of accepted tokens cannot be judged; "
            + "tokens refused for it appear as token.lifetime_too_long")
        notJudgeable.append("grants are judged against this config's routes and patterns; records from other policy versions are counted in, "
            + "routes unknown to this config are counted apart")
        self.notJudgeable = notJudgeable
        bounds = [
            "denied callers: up to \(TrustReport.trackedCallers * 2) distinct tracked, then pruned to the \(TrustReport.trackedCallers) most denied "
                + "(\(report.deniedCallers.evicted) pruned; counts are exact when none were pruned, lower bounds otherwise)",
            "foreign trust domains and issuers: the \(TrustReport.trackedForeign) most frequent kept the same way "
                + "(\(report.foreignTrustDomains.evicted + report.foreignIssuers.evicted) pruned)",
            "the log is read in \(DecisionLogReader.chunkBytes / 1024) KiB chunks; lines over \(DecisionLogReader.maxLineBytes / 1024) KiB are skipped",
        ]
    }
}

extension TrustReportSummary {
    public func json() -> String { JSONText.encode(self, snakeCase: true) }

    public func text() -> String {
        var lines = ["gatehouse report: environment `\(environment)`, policy \(policyVersion)"]
        lines.append("window: \(window.since.map { "since \($0)" } ?? "whole log"); \(window.records) record(s) in the window, "
            + "\(window.outsideWindow) before it, \(window.unreadableLines) unreadable line(s), "
            + "\(window.gatewayEvents) gateway event(s) (rollouts), \(window.oversizeLines) oversize line(s), "
            + "\(window.recordsForUnknownRoutes) for routes not in this config, \(window.recordsFromOtherPolicyVersions) from other policy versions")
        lines.append("")
        lines.append("requests by route (allowed / denied):")
        lines += routes.map { "  \($0.route): \($0.allowed) / \($0.denied)" }
        lines.append("")
        lines.append("grants never exercised in the window (candidates to revoke): \(unusedGrants.count)")
        for grant in unusedGrants {
            lines.append("  route \(grant.route): \(grant.kind) \(grant.grant)")
        }
        lines.append("")
        lines.append("callers denied most often (top \(Self.topCallers)):")
        for caller in topDeniedCallers {
            let reasons = caller.reasons.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }
                .map { "\($0.key) \($0.value)" }.joined(separator: ", ")
            lines.append("  \(caller.denied)  \(caller.caller)  (\(reasons))")
        }
        lines.append("")
        lines.append("credentials from another environment:")
        func list(_ title: String, _ counts: [Count]) {
            lines.append("  \(title): " + (counts.isEmpty ? "none" : counts.map { "\($0.name) \($0.count)" }.joined(separator: ", ")))
        }
        list("SPIFFE IDs from foreign trust domains", foreignCredentials.spiffeTrustDomains)
        list("tokens from issuers this config does not have", foreignCredentials.tokenIssuersNotConfigured)
        list("token.audience_mismatch denials by route", foreignCredentials.tokenAudienceMismatches)
        list("token.claim_mismatch denials by route", foreignCredentials.tokenClaimMismatches)
        lines.append("  tokens whose aud/env belong elsewhere: \(foreignCredentials.tokensWithForeignAudOrEnv) "
            + "(of \(foreignCredentials.recordsCarryingAudOrEnv) records that carry aud/env)")
        list("tokens refused for their lifetime (token.lifetime_too_long) by route", tokensDeniedForLifetime)
        lines.append("")
        lines.append("not judgeable from the records:")
        lines += notJudgeable.map { "  - \($0)" }
        lines.append("bounds:")
        lines += bounds.map { "  - \($0)" }
        return lines.joined(separator: "\n") + "\n"
    }
}
