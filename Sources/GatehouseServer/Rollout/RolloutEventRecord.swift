import GatehouseCore

/// The decision-log line and admin-API JSON that describe a rollout.
enum RolloutEventRecord {
    /// `{"ts":...,"event":"rollout.rolled_back","cause":...,"policy":{...},"figures":{...}}`.
    static func rolledBack(_ rollout: RolloutRuntime, cause: String, figures: RolloutFigures?) -> [UInt8] {
        var json = JSONObjectWriter()
        json.field("ts", timestampMillis: WallClock.nowMillis())
        json.field("event", "rollout.rolled_back")
        json.field("cause", cause)
        json.object("policy") { policy in
            policy.field("stable", rollout.stableVersion)
            policy.field("candidate", rollout.candidateVersion)
            policy.field("mode", rollout.config.mode.rawValue)
        }
        if let figures { json.object("figures") { writeFigures(figures, into: &$0) } }
        return json.finish()
    }

    /// `{"ts":...,"event":"rollout.promoted","policy":{...}}`.
    static func promoted(_ rollout: RolloutRuntime) -> [UInt8] {
        var json = JSONObjectWriter()
        json.field("ts", timestampMillis: WallClock.nowMillis())
        json.field("event", "rollout.promoted")
        json.object("policy") { policy in
            policy.field("stable", rollout.stableVersion)
            policy.field("candidate", rollout.candidateVersion)
            policy.field("mode", rollout.config.mode.rawValue)
        }
        return json.finish()
    }

    /// `GET /rollout`: state, both versions, the window's counts and rates, and the reasons
    /// the candidate adds.
    static func status(_ rollout: RolloutRuntime?, stableVersion: String) -> [UInt8] {
        var json = JSONObjectWriter()
        guard let rollout else {
            json.field("state", "none")
            json.object("policy") { $0.field("stable", stableVersion) }
            return json.finish()
        }
        switch rollout.currentPhase {
        case .active:
            json.field("state", rollout.config.mode.rawValue)
        case .rolledBack(let cause, _):
            json.field("state", "rolled_back")
            json.field("cause", cause)
        }
        json.object("policy") { policy in
            policy.field("stable", rollout.stableVersion)
            policy.field("candidate", rollout.candidateVersion)
            policy.field("mode", rollout.config.mode.rawValue)
            policy.field("cohort", rollout.config.cohort.rawValue)
            policy.field("percent", number: rollout.config.percent)
        }
        if let limits = rollout.config.autoRollback, let window = rollout.window {
            json.object("auto_rollback") { inner in
                inner.field("window_seconds", Int(limits.window.components.seconds))
                inner.field("min_requests", limits.minRequests)
                inner.field("max_extra_deny_rate", number: limits.maxExtraDenyRate)
                inner.field("max_error_rate", number: limits.maxErrorRate)
            }
            json.object("window") { writeFigures(window.figures(), into: &$0) }
        } else {
            json.field("window", nil)
        }
        return json.finish()
    }

    static func writeFigures(_ figures: RolloutFigures, into json: inout JSONObjectWriter) {
        json.field("requests", figures.requests)
        json.field("stable_denies", figures.stableDenies)
        json.field("candidate_denies", figures.candidateDenies)
        json.field("stable_deny_rate", number: figures.stableDenyRate)
        json.field("candidate_deny_rate", number: figures.candidateDenyRate)
        json.field("extra_deny_rate", number: figures.extraDenyRate)
        json.field("candidate_decided", figures.candidateDecided)
        json.field("candidate_failures", figures.candidateFailures)
        json.field("candidate_error_rate", number: figures.candidateErrorRate)
        json.objects("candidate_adds", figures.topAddedReasons(5)) { inner, entry in
            inner.field("reason", entry.reason.rawValue)
            inner.field("count", entry.count)
        }
    }
}
