/// Whether a route's check decides (`enforce`) or is only evaluated and recorded (`shadow`).
public enum CheckMode: String, Sendable, Hashable, CaseIterable {
    case enforce
    case shadow
}

/// The checks a route can require, by their key in the file.
public enum RouteCheck: String, Sendable, Hashable, CaseIterable {
    case peers
    case token
    case webhook
    case rateLimit = "rate_limit"
}

extension RouteConfig {
    /// The checks this route requires, in the order the data path runs them.
    public var checks: [RouteCheck] {
        var checks: [RouteCheck] = []
        if peers != nil { checks.append(.peers) }
        if token != nil { checks.append(.token) }
        if rateLimit != nil { checks.append(.rateLimit) }
        if webhook != nil { checks.append(.webhook) }
        return checks
    }

    public func mode(of check: RouteCheck) -> CheckMode {
        switch check {
        case .peers: return peersMode
        case .token: return token?.mode ?? .enforce
        case .webhook: return webhook?.mode ?? .enforce
        case .rateLimit: return rateLimit?.mode ?? .enforce
        }
    }

    /// The checks that are evaluated and recorded but do not deny.
    public var shadowedChecks: Set<RouteCheck> { Set(checks.filter { mode(of: $0) == .shadow }) }
}

/// `rollout`: a candidate policy beside the running (stable) one.
public struct RolloutConfig: Sendable, Equatable {
    public enum Mode: String, Sendable, Hashable, CaseIterable {
        /// The stable policy decides every request; the candidate is evaluated beside it.
        case shadow
        /// The cohort's policy decides; the other one is evaluated beside it.
        case canary
    }

    /// What puts a caller in or out of the canary (a stable hash of it).
    public enum Cohort: String, Sendable, Hashable, CaseIterable {
        /// The verified SPIFFE ID (callers without one stay on the stable policy).
        case peer
        /// The verified token's `sub` (callers without one stay on the stable policy).
        case subject
        /// The client address.
        case ip
        /// Each request on its own: no caller affinity.
        case request
    }

    /// The candidate file as written (`rollout.candidate`).
    public var candidateFile: String
    public var candidate: CandidatePolicy
    public var mode: Mode
    /// Share of cohorts the candidate decides for, 0...100 (canary).
    public var percent: Double
    public var cohort: Cohort
    public var autoRollback: AutoRollbackConfig?
    public var location: SourceLocation

    public init(
        candidateFile: String, candidate: CandidatePolicy, mode: Mode, percent: Double, cohort: Cohort,
        autoRollback: AutoRollbackConfig?, location: SourceLocation
    ) {
        self.candidateFile = candidateFile
        self.candidate = candidate
        self.mode = mode
        self.percent = percent
        self.cohort = cohort
        self.autoRollback = autoRollback
        self.location = location
    }
}

/// The second policy: routes and their requirements, with their own version. Listeners,
/// upstreams, issuers and trust domains are the main file's.
public struct CandidatePolicy: Sendable, Equatable {
    public var version: String
    public var routes: [RouteConfig]
    /// Hex SHA-256 of the candidate file's bytes.
    public var sha256: String
    public init(version: String, routes: [RouteConfig], sha256: String) {
        self.version = version
        self.routes = routes
        self.sha256 = sha256
    }
}

/// `rollout.auto_rollback`: when the candidate denies (or fails) too much more than the
/// stable policy over `window`, it stops enforcing.
public struct AutoRollbackConfig: Sendable, Equatable {
    public var window: Duration
    /// Requests the candidate must have seen in the window before it can be judged.
    public var minRequests: Int
    /// Candidate deny rate minus stable deny rate (0...1).
    public var maxExtraDenyRate: Double
    /// Upstream failures (5xx the gateway answers) among the candidate's own decisions (0...1).
    public var maxErrorRate: Double?
    public init(window: Duration, minRequests: Int, maxExtraDenyRate: Double, maxErrorRate: Double? = nil) {
        self.window = window
        self.minRequests = minRequests
        self.maxExtraDenyRate = maxExtraDenyRate
        self.maxErrorRate = maxErrorRate
    }
}
