import Foundation

/// `rollout:` — a candidate policy (its own file) run beside the main file's routes.
enum RolloutSection {
    static let keys = ["candidate", "mode", "percent", "cohort", "auto_rollback"]
    static let candidateKeys = ["version", "routes", "rate_limits"]

    /// nil when anything is wrong, in this section or in the candidate file (every problem is logged).
    static func read(_ node: ConfigNode, upstreams: [UpstreamConfig], context: RouteSection.Context) -> RolloutConfig? {
        guard let map = node.mapping(keys: keys) else { return nil }
        let fileNode = map.required("candidate", expected: "the path of the candidate policy file")
        let path = fileNode?.nonEmptyString()
        let mode = map.required("mode", expected: "`shadow` or `canary`")?.oneOf(RolloutConfig.Mode.self)
        var percent: Double? = 0
        if let percentNode = map.optional("percent") {
            percent = percentNode.parse("a percentage from 0 to 100, e.g. `10`", { (text) throws(ConfigValueError) in
                guard let value = Double(text), value.isFinite, (0...100).contains(value) else {
                    throw ConfigValueError("`\(text)` is not a percentage", expected: "a number from 0 to 100, e.g. `10`")
                }
                return value
            })
            if mode == .shadow, percent != nil {
                percentNode.report("`percent` is the canary's share; in shadow mode the stable policy decides every request",
                    expected: "`mode: canary`, or no `percent`")
                percent = nil
            }
        } else if mode == .canary {
            node.report("a canary needs its share of callers", expected: "`percent: N` (0 to 100)")
            percent = nil
        }
        let cohortNode = map.optional("cohort")
        let cohort = cohortNode.flatMap { $0.oneOf(RolloutConfig.Cohort.self) }
        let autoRollbackNode = map.optional("auto_rollback")
        let autoRollback = autoRollbackNode.flatMap(readAutoRollback)
        let candidate = fileNode.flatMap { fileNode in path.flatMap { readCandidate(path: $0, at: fileNode, upstreams: upstreams, context: context) } }
        guard let path, let mode, let percent, let candidate, cohortNode == nil || cohort != nil,
            autoRollbackNode == nil || autoRollback != nil
        else { return nil }
        return RolloutConfig(
            candidateFile: path, candidate: candidate, mode: mode, percent: percent, cohort: cohort ?? .peer,
            autoRollback: autoRollback, location: node.location)
    }

    static func readAutoRollback(_ node: ConfigNode) -> AutoRollbackConfig? {
        guard let map = node.mapping(keys: ["window", "min_requests", "max_extra_deny_rate", "max_error_rate"]) else { return nil }
        let window = map.required("window", expected: "a duration such as `5m`")?.duration()
        let minRequests = map.required("min_requests", expected: "the requests a window needs before it is judged, e.g. `200`")?
            .int(in: 1...100_000_000)
        let extra = map.required("max_extra_deny_rate", expected: "a fraction such as `0.02`").flatMap(fraction)
        let errorNode = map.optional("max_error_rate")
        let errorRate = errorNode.flatMap(fraction)
        if let window, window < .seconds(1) {
            map.optional("window")?.report("too short to judge a policy", expected: "at least `1s`, e.g. `5m`")
            return nil
        }
        guard let window, let minRequests, let extra, errorNode == nil || errorRate != nil else { return nil }
        return AutoRollbackConfig(window: window, minRequests: minRequests, maxExtraDenyRate: extra, maxErrorRate: errorRate)
    }

    static func fraction(_ node: ConfigNode) -> Double? {
        node.parse("a fraction from 0 to 1, e.g. `0.02`") { (text) throws(ConfigValueError) in
            guard let value = Double(text), value.isFinite, (0...1).contains(value) else {
                throw ConfigValueError("`\(text)` is not a fraction", expected: "a number from 0 to 1, e.g. `0.02` for 2%")
            }
            return value
        }
    }

    /// The candidate file: `version`, `routes` and its own `rate_limits`, read with the main
    /// file's upstreams, issuers and trust domains. Its problems name the candidate file.
    static func readCandidate(
        path: String, at fileNode: ConfigNode, upstreams: [UpstreamConfig], context: RouteSection.Context
    ) -> CandidatePolicy? {
        let data: Data
        switch ConfigLoader.readFile(path) {
        case .success(let bytes): data = bytes
        case .failure(let failure):
            fileNode.report("cannot read the candidate policy `\(path)` (\(failure.reason))", expected: "a readable YAML file")
            return nil
        }
        guard let text = String(data: data, encoding: .utf8) else {
            fileNode.report("the candidate policy `\(path)` is not valid UTF-8")
            return nil
        }
        let log = IssueLog(file: path)
        defer { for issue in log.sortedIssues { fileNode.log.report(issue) } }
        guard let root = YAMLDocument.compose(text, log: log) else { return nil }
        let node = ConfigNode(node: root, path: "", log: log)
        guard let map = node.mapping(keys: candidateKeys) else { return nil }
        let version = map.required("version", expected: "the candidate's policy version, e.g. `v42`").flatMap(RootSection.readVersion)
        var routeContext = context
        if let limitsNode = map.optional("rate_limits") {
            routeContext.rateLimits = RateLimitSection.readAll(limitsNode)
            routeContext.rateLimitNames = RateLimitSection.names(limitsNode)
        } else {
            routeContext.rateLimits = []
            routeContext.rateLimitNames = []
        }
        let routes = map.required("routes", expected: "a list of routes").map { RouteSection.readAll($0, upstreams: upstreams, context: routeContext) }
        guard let version, let routes, log.issues.isEmpty else { return nil }
        return CandidatePolicy(version: version, routes: routes, sha256: ConfigLoader.sha256Hex(data))
    }
}
