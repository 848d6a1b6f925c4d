import Foundation
import GatehouseCore
import Logging
import Metrics
import NIOConcurrencyHelpers

/// Keeps one issuer's fetched key set (`jwks_uri`) current, in the background.
///
/// - Refreshes every `refresh_interval`, sooner when the response's `Cache-Control: max-age`
///   says so (never sooner than ``minimumRefresh``), conditionally with the last `ETag`.
/// - A token naming an unknown `kid` asks for an early refetch (``requestRefetch()``): the
///   issuer may have rotated. At most one such refetch per ``kidRefetchFloor``, so a client
///   sending random `kid`s cannot turn the gateway into a load generator against the issuer.
///   The request that asked is refused (`token.unknown_kid`); the refetch serves the next one.
/// - A failed fetch is retried with exponential backoff (1 s doubling, capped at the
///   interval); the last good set keeps serving until `stale_for` after the last successful
///   fetch, then the issuer's fetched keys become unavailable and its tokens are refused with
///   `token.keys_unavailable` (503): fail closed rather than trust keys nobody vouches for.
final class JWKSRefresher: Sendable {
    static let minimumRefresh: Duration = .seconds(30)
    static let kidRefetchFloor: Duration = .seconds(10)

    let issuer: String
    private let endpoint: JWKSEndpointConfig
    private let client: JWKSClient
    private let store: TokenVerifierStore
    private let logger: Logger
    private let metricsFactory: any MetricsFactory
    private let failureLog = RateLimitedLog(interval: .seconds(60))
    private let state = NIOLockedValueBox(State())

    private struct State {
        var etag: String?
        var lastSuccess: ContinuousClock.Instant?
        var nextRefresh: ContinuousClock.Instant = .now
        var failures = 0
        var markedStale = false
        var refetchRequested = false
        var lastKidRefetch: ContinuousClock.Instant?
        /// The sleep in progress; cancelled to wake the loop early.
        var sleeper: Task<Void, Never>?
    }

    init(
        issuer: String, endpoint: JWKSEndpointConfig, client: JWKSClient, store: TokenVerifierStore, logger: Logger,
        metricsFactory: any MetricsFactory = NOOPMetricsHandler.instance
    ) {
        self.metricsFactory = metricsFactory
        self.issuer = issuer
        self.endpoint = endpoint
        self.client = client
        self.store = store
        self.logger = logger
    }

    /// A token named a `kid` this issuer's set lacks: refetch soon (rate-limited).
    func requestRefetch() {
        let sleeper: Task<Void, Never>? = state.withLockedValue { state in
            guard !state.refetchRequested else { return nil }
            state.refetchRequested = true
            return state.sleeper
        }
        sleeper?.cancel()
    }

    /// One fetch now; at start-up, so the gateway normally begins with keys.
    func refreshNow() async {
        await fetch(now: .now)
    }

    /// Refreshes until the task is cancelled.
    func run() async {
        while !Task.isCancelled {
            let now = ContinuousClock.now
            let (wake, requested) = state.withLockedValue { state in
                var wake = state.nextRefresh
                if !state.markedStale, let last = state.lastSuccess { wake = min(wake, last + endpoint.staleFor) }
                if state.refetchRequested { wake = min(wake, state.lastKidRefetch.map { $0 + Self.kidRefetchFloor } ?? now) }
                return (wake, state.refetchRequested)
            }
            if wake > now {
                let sleeper = Task<Void, Never> { try? await Task.sleep(until: wake, clock: .continuous) }
                let asleep = state.withLockedValue { state in
                    // A refetch asked for since `wake` was computed: compute it again instead.
                    guard state.refetchRequested == requested else { return false }
                    state.sleeper = sleeper
                    return true
                }
                if asleep {
                    await withTaskCancellationHandler { await sleeper.value } onCancel: { sleeper.cancel() }
                } else {
                    sleeper.cancel()
                }
                state.withLockedValue { $0.sleeper = nil }
            }
            if Task.isCancelled { return }
            await step(now: .now)
        }
    }

    private func step(now: ContinuousClock.Instant) async {
        let (stale, kidRefetch, due) = state.withLockedValue { state in
            let stale = !state.markedStale && state.lastSuccess.map { $0 + endpoint.staleFor <= now } == true
            if stale { state.markedStale = true }
            let kidRefetch = state.refetchRequested && state.lastKidRefetch.map { $0 + Self.kidRefetchFloor <= now } != false
            if kidRefetch {
                state.refetchRequested = false
                state.lastKidRefetch = now
            }
            return (stale, kidRefetch, state.nextRefresh <= now)
        }
        if stale {
            // Cannot fail: an issuer without keys falls back to refusing with keys_unavailable.
            _ = try? store.installFetchedKeys(.unavailable, issuer: issuer)
            logger.error("issuer key set stale beyond stale_for: its tokens are refused (token.keys_unavailable)", metadata: [
                "issuer": .string(issuer), "jwks_uri": .stringConvertible(endpoint.url),
                "stale_for_seconds": .stringConvertible(endpoint.staleFor.components.seconds),
            ])
        }
        if kidRefetch || due { await fetch(now: now) }
    }

    private func fetch(now: ContinuousClock.Instant) async {
        let etag = state.withLockedValue { $0.etag }
        do {
            let response = try await client.fetch(etag: etag)
            switch response.content {
            case .notModified:
                // Still current: vouched for again, and nothing else changes.
                if state.withLockedValue({ $0.markedStale }) { try await install(nil) }
                fetchCounter(issuer, "not_modified").increment()
            case .document(let body, let newETag):
                try await install(body)
                state.withLockedValue { $0.etag = newETag }
                fetchCounter(issuer, "updated").increment()
            }
            let interval = Self.nextInterval(maxAge: response.maxAge, configured: endpoint.refreshInterval)
            state.withLockedValue { state in
                state.lastSuccess = now
                state.markedStale = false
                state.failures = 0
                state.nextRefresh = now + interval
            }
        } catch {
            fetchCounter(issuer, "failed").increment()
            let backoff: Duration = state.withLockedValue { state in
                state.failures += 1
                let backoff = min(Duration.seconds(1 << min(state.failures - 1, 16)), endpoint.refreshInterval)
                state.nextRefresh = now + backoff
                return backoff
            }
            failureLog.warning(logger, "issuer key set fetch failed; the last good set keeps serving until stale_for", metadata: [
                "issuer": .string(issuer), "error": .string("\(error)"),
                "retry_in": .stringConvertible(backoff),
            ])
        }
    }

    /// Parses and installs a fetched document (nil: re-install the last one after a 304 that
    /// ended a stale spell). A document that is not a usable JWKS counts as a failed fetch.
    private func install(_ body: [UInt8]?) async throws {
        guard let body = body ?? store.lastFetchedDocument(issuer: issuer) else {
            throw JWKSFetchError(message: "304 without a document held")
        }
        let keys: TokenKeySet
        do {
            keys = try await TokenKeySet.load(jwksJSON: body)
        } catch {
            throw JWKSFetchError(message: "\(endpoint.url): not a usable key set (\(error))")
        }
        let changed: Bool
        do {
            changed = try store.installFetchedKeys(keys, issuer: issuer, document: body)
        } catch {
            throw JWKSFetchError(message: "\(endpoint.url): \(error)")
        }
        if changed {
            logger.info("issuer key set updated", metadata: [
                "issuer": .string(issuer), "keys": .stringConvertible(keys.keys.count),
                "kids": .string(Set(keys.keys.compactMap(\.kid)).sorted().joined(separator: ",")),
                "skipped": .stringConvertible(keys.skipped.count),
            ])
        }
    }

    /// `max-age` when the issuer gives one, within [``minimumRefresh``, `refresh_interval`];
    /// an interval below the floor (tests, aggressive operators) is honoured as configured.
    static func nextInterval(maxAge: Duration?, configured: Duration) -> Duration {
        guard let maxAge else { return configured }
        return max(min(maxAge, configured), min(minimumRefresh, configured))
    }

    private func fetchCounter(_ issuer: String, _ result: String) -> Counter {
        Counter(label: "gatehouse_jwks_fetches_total", dimensions: [("issuer", issuer), ("result", result)], factory: metricsFactory)
    }
}
