import CoreMetrics
import Foundation
import GatehouseCore
import Logging
import Synchronization

/// What a rollout needs from the gateway around it. Tests inject the clock.
struct RolloutHooks: Sendable {
    var clock: RolloutWindow.Clock = { ContinuousClock.now - RolloutHooks.origin }
    var logger = Logger(label: "gatehouse.rollout")
    /// Writes a gateway event (one JSON object) into the decision log.
    var recordEvent: @Sendable ([UInt8]) -> Void = { _ in }
    var metricsFactory: (any MetricsFactory)?

    private static let origin = ContinuousClock.now
}

/// A running rollout: the candidate's compiled routes, who decides for whom, and the
/// auto-rollback window. One per configuration snapshot, so a reload starts it afresh.
final class RolloutRuntime: Sendable {
    enum Phase: Sendable, Equatable {
        case active
        /// The candidate stops deciding (it is still evaluated and recorded in shadow).
        case rolledBack(cause: String, figures: RolloutFigures?)
    }

    let config: RolloutConfig
    let stableVersion: String
    var candidateVersion: String { config.candidate.version }
    let router: Router<CompiledRoute>
    /// Counts both policies' outcomes; nil without `auto_rollback` (nothing to judge, no cost).
    let window: RolloutWindow?
    private let phase = Mutex(Phase.active)
    /// The candidate's expected share of `min_requests`: its error rate is judged from there.
    private let minCandidateRequests: Int
    private let hooks: RolloutHooks
    private let enforcingGauge: Gauge?
    private let rolledBackGauge: Gauge?

    init(config: RolloutConfig, stableVersion: String, router: Router<CompiledRoute>, hooks: RolloutHooks) {
        self.config = config
        self.stableVersion = stableVersion
        self.router = router
        self.hooks = hooks
        self.window = config.autoRollback.map { RolloutWindow(window: $0.window, clock: hooks.clock) }
        let expectedShare = config.mode == .canary ? config.percent / 100 : 0
        self.minCandidateRequests = Int((Double(config.autoRollback?.minRequests ?? 0) * expectedShare).rounded(.up))
        if let factory = hooks.metricsFactory {
            let labels = [("stable", stableVersion), ("candidate", config.candidate.version), ("mode", config.mode.rawValue)]
            enforcingGauge = Gauge(label: "gatehouse_rollout_candidate_enforcing", dimensions: labels, factory: factory)
            rolledBackGauge = Gauge(label: "gatehouse_rollout_rolled_back", dimensions: labels, factory: factory)
        } else {
            enforcingGauge = nil
            rolledBackGauge = nil
        }
        publishPhase(.active)
    }

    var currentPhase: Phase { phase.withLock { $0 } }

    var isRolledBack: Bool {
        if case .rolledBack = currentPhase { return true }
        return false
    }

    /// Whether the candidate decides for this caller: a canary that has not been rolled back,
    /// and a cohort key that hashes into its share. No key (e.g. no verified peer) stays stable.
    func candidateDecides(cohortKey: String?) -> Bool {
        guard config.mode == .canary, let cohortKey, !isRolledBack else { return false }
        return CohortHash.inCanary(cohortKey, salt: config.candidate.version, percent: config.percent)
    }

    /// Counts one request; trips auto-rollback when the window breaks its limits.
    func record(_ sample: RolloutSample) {
        guard let window, let limits = config.autoRollback else { return }
        let counts = window.addAndCount(sample)
        guard !isRolledBack, RolloutWindow.judge(counts, limits, minCandidateRequests: minCandidateRequests) != nil else { return }
        // Tripped: judge again on the full figures (with the reasons) for the record.
        guard let trip = RolloutWindow.judge(window.figures(), limits, minCandidateRequests: minCandidateRequests) else { return }
        rollBack(cause: "auto: \(trip.cause.rawValue)", figures: trip.figures)
    }

    /// Stops the candidate enforcing; a no-op when it already stopped. Returns whether this call did it.
    @discardableResult
    func rollBack(cause: String, figures: RolloutFigures?) -> Bool {
        let changed = phase.withLock { phase -> Bool in
            guard phase == .active else { return false }
            phase = .rolledBack(cause: cause, figures: figures)
            return true
        }
        guard changed else { return false }
        publishPhase(currentPhase)
        let figures = figures ?? window?.figures()
        var metadata: Logger.Metadata = [
            "stable": .string(stableVersion), "candidate": .string(candidateVersion), "cause": .string(cause),
        ]
        if let figures {
            metadata["requests"] = .stringConvertible(figures.requests)
            metadata["stable_deny_rate"] = .string(Self.rate(figures.stableDenyRate))
            metadata["candidate_deny_rate"] = .string(Self.rate(figures.candidateDenyRate))
            metadata["candidate_error_rate"] = .string(Self.rate(figures.candidateErrorRate))
        }
        hooks.logger.warning("rollout.rolled_back: the candidate policy stopped enforcing", metadata: metadata)
        hooks.recordEvent(RolloutEventRecord.rolledBack(self, cause: cause, figures: figures))
        return true
    }

    private func publishPhase(_ phase: Phase) {
        let enforcing = phase == .active && config.mode == .canary && config.percent > 0
        enforcingGauge?.record(enforcing ? 1 : 0)
        rolledBackGauge?.record(phase == .active ? 0 : 1)
    }

    static func rate(_ value: Double) -> String {
        String(format: "%.4f", value)
    }
}
