import Atomics
import GatehouseCore
import NIOCore

/// Round-robin endpoint choice with passive ejection, shared by every event loop.
/// Lock-free: one atomic counter for the rotation, two atomics per endpoint for health.
final class EndpointSelector: Sendable {
    struct Endpoint: Sendable {
        let address: SocketAddress
        let label: String
    }

    let endpoints: [Endpoint]
    private let rotation = ManagedAtomic<Int>(0)
    private let consecutiveFailures: [ManagedAtomic<Int>]
    /// Uptime nanoseconds until which the endpoint is skipped; 0 when healthy.
    private let ejectedUntil: [ManagedAtomic<UInt64>]
    private let failuresToEject: Int
    private let ejectionNanoseconds: UInt64

    init(endpoints: [Endpoint], ejection: EjectionConfig) {
        self.endpoints = endpoints
        self.consecutiveFailures = endpoints.map { _ in ManagedAtomic(0) }
        self.ejectedUntil = endpoints.map { _ in ManagedAtomic(0) }
        self.failuresToEject = ejection.consecutiveFailures
        self.ejectionNanoseconds = UInt64(ejection.duration.components.seconds) * 1_000_000_000
            + UInt64(ejection.duration.components.attoseconds / 1_000_000_000)
    }

    /// The next healthy endpoint after `excluding`. When every endpoint is ejected the one
    /// whose ejection ends first is tried anyway: failing every request is worse than
    /// probing a maybe-recovered endpoint (Envoy's panic mode makes the same trade).
    func next(excluding excluded: Int? = nil, now: NIODeadline = .now()) -> Int {
        let count = endpoints.count
        let start = rotation.loadThenWrappingIncrement(ordering: .relaxed)
        let nowNanos = now.uptimeNanoseconds
        var fallback = -1
        var fallbackUntil = UInt64.max
        for offset in 0..<count {
            let index = (start &+ offset) % count
            let candidate = index < 0 ? index + count : index
            if candidate == excluded && count > 1 { continue }
            let until = ejectedUntil[candidate].load(ordering: .relaxed)
            if until <= nowNanos { return candidate }
            if until < fallbackUntil {
                fallbackUntil = until
                fallback = candidate
            }
        }
        return fallback >= 0 ? fallback : ((start % count) + count) % count
    }

    func recordConnectSuccess(_ index: Int) {
        consecutiveFailures[index].store(0, ordering: .relaxed)
        ejectedUntil[index].store(0, ordering: .relaxed)
    }

    /// Returns true when this failure ejected the endpoint.
    @discardableResult
    func recordConnectFailure(_ index: Int, now: NIODeadline = .now()) -> Bool {
        let failures = consecutiveFailures[index].wrappingIncrementThenLoad(ordering: .relaxed)
        guard failures >= failuresToEject else { return false }
        consecutiveFailures[index].store(0, ordering: .relaxed)
        ejectedUntil[index].store(now.uptimeNanoseconds + ejectionNanoseconds, ordering: .relaxed)
        return true
    }

    func isEjected(_ index: Int, now: NIODeadline = .now()) -> Bool {
        ejectedUntil[index].load(ordering: .relaxed) > now.uptimeNanoseconds
    }
}
