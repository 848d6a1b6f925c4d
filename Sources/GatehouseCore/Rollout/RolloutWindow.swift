import Synchronization

/// What one request says about the two policies of a rollout.
public struct RolloutSample: Sendable, Equatable {
    public var stableDenied: Bool
    public var candidateDenied: Bool
    /// The candidate's reason, when it denied and the stable policy did not.
    public var candidateReason: ReasonCode?
    /// The candidate decided this request (canary cohort).
    public var candidateDecided: Bool
    /// ...and the upstream failed or answered 5xx.
    public var candidateFailed: Bool

    public init(stableDenied: Bool, candidateDenied: Bool, candidateReason: ReasonCode? = nil, candidateDecided: Bool, candidateFailed: Bool = false) {
        self.stableDenied = stableDenied
        self.candidateDenied = candidateDenied
        self.candidateReason = candidateReason
        self.candidateDecided = candidateDecided
        self.candidateFailed = candidateFailed
    }
}

/// Both policies' figures over the window.
public struct RolloutFigures: Sendable, Equatable {
    public var requests = 0
    public var stableDenies = 0
    public var candidateDenies = 0
    public var candidateDecided = 0
    public var candidateFailures = 0
    /// Denials the candidate adds (the stable policy allowed), by reason.
    public var addedReasons: [ReasonCode: Int] = [:]

    public init() {}

    public var stableDenyRate: Double { requests == 0 ? 0 : Double(stableDenies) / Double(requests) }
    public var candidateDenyRate: Double { requests == 0 ? 0 : Double(candidateDenies) / Double(requests) }
    public var extraDenyRate: Double { candidateDenyRate - stableDenyRate }
    public var candidateErrorRate: Double { candidateDecided == 0 ? 0 : Double(candidateFailures) / Double(candidateDecided) }

    /// The reasons the candidate adds, most frequent first (ties by name, for stable output).
    public func topAddedReasons(_ limit: Int) -> [(reason: ReasonCode, count: Int)] {
        addedReasons.sorted { ($0.value, $1.key.rawValue) > ($1.value, $0.key.rawValue) }.prefix(limit).map { ($0.key, $0.value) }
    }

    mutating func add(_ sample: RolloutSample) {
        requests += 1
        if sample.stableDenied { stableDenies += 1 }
        if sample.candidateDenied { candidateDenies += 1 }
        if sample.candidateDecided { candidateDecided += 1 }
        if sample.candidateFailed { candidateFailures += 1 }
        if let reason = sample.candidateReason { addedReasons[reason, default: 0] += 1 }
    }

    mutating func add(_ other: RolloutFigures) {
        addCounts(other)
        for (reason, count) in other.addedReasons { addedReasons[reason, default: 0] += count }
    }

    mutating func addCounts(_ other: RolloutFigures) {
        requests += other.requests
        stableDenies += other.stableDenies
        candidateDenies += other.candidateDenies
        candidateDecided += other.candidateDecided
        candidateFailures += other.candidateFailures
    }
}

/// Why auto-rollback tripped, with the figures that tripped it.
public struct RollbackTrip: Sendable, Equatable {
    public enum Cause: String, Sendable {
        case denyRate = "max_extra_deny_rate"
        case errorRate = "max_error_rate"
    }
    public var cause: Cause
    public var figures: RolloutFigures
}

/// Sliding-window counters for auto-rollback: `slots` buckets of `window / slots` each, on a
/// monotonic clock that tests inject. Bounded: the buckets, plus at most one counter per
/// reason code in each.
public final class RolloutWindow: Sendable {
    public typealias Clock = @Sendable () -> Duration

    private struct Slot {
        var epoch: Int64 = .min
        var figures = RolloutFigures()
    }

    private let slotWidth: Duration
    private let slotCount: Int
    private let clock: Clock
    private let slots: Mutex<[Slot]>

    public init(window: Duration, slots: Int = 10, clock: @escaping Clock) {
        self.slotCount = max(1, slots)
        self.slotWidth = window / self.slotCount
        self.clock = clock
        self.slots = Mutex(Array(repeating: Slot(), count: self.slotCount))
    }

    private func epoch() -> Int64 {
        Int64(clock() / slotWidth)
    }

    public func add(_ sample: RolloutSample) {
        _ = addAndCount(sample)
    }

    /// Adds a request and returns the window's counts, in one lock: run per request, so it
    /// sums the slots' counters only (the reasons are merged when someone asks, in `figures`).
    public func addAndCount(_ sample: RolloutSample) -> RolloutFigures {
        let now = epoch()
        let index = Int(now % Int64(slotCount))
        return slots.withLock { slots in
            if slots[index].epoch != now { slots[index] = Slot(epoch: now) }
            slots[index].figures.add(sample)
            var total = RolloutFigures()
            for slot in slots where slot.epoch > now - Int64(slotCount) && slot.epoch <= now { total.addCounts(slot.figures) }
            return total
        }
    }

    /// The figures of the last `window`.
    public func figures() -> RolloutFigures {
        let now = epoch()
        return slots.withLock { slots in
            var total = RolloutFigures()
            for slot in slots where slot.epoch > now - Int64(slotCount) && slot.epoch <= now { total.add(slot.figures) }
            return total
        }
    }

    /// Whether the window's figures break `limits`. Nothing is judged before `min_requests`;
    /// the error rate only once the candidate itself decided `minCandidateRequests`.
    public static func judge(_ figures: RolloutFigures, _ limits: AutoRollbackConfig, minCandidateRequests: Int) -> RollbackTrip? {
        guard figures.requests >= limits.minRequests else { return nil }
        if figures.extraDenyRate > limits.maxExtraDenyRate { return RollbackTrip(cause: .denyRate, figures: figures) }
        if let maxErrorRate = limits.maxErrorRate, figures.candidateDecided >= max(1, minCandidateRequests),
            figures.candidateErrorRate > maxErrorRate
        {
            return RollbackTrip(cause: .errorRate, figures: figures)
        }
        return nil
    }
}
