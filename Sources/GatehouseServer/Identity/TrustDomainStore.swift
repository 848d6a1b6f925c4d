import Foundation
import GatehouseCore
import NIOConcurrencyHelpers
import X509

/// The configured trust domains' bundles, as one `SVIDVerifier` that is swapped whole when
/// a bundle file changes. Handshakes read the current verifier; one in flight keeps the one
/// it started with.
final class TrustDomainStore: Sendable {
    let domains: [TrustDomainConfig]
    private let current: NIOLockedValueBox<State>

    struct State {
        var bundles: [String: [Certificate]]
        var verifier: SVIDVerifier
        /// Verdicts reached with exactly these bundles; replaced with them.
        var cache: VerifiedChainCache

        init(bundles: [String: [Certificate]]) {
            self.bundles = bundles
            self.verifier = SVIDVerifier(bundles: TrustBundles(bundles))
            self.cache = VerifiedChainCache()
        }
    }

    /// Loads every bundle; a missing or unreadable one is a start-up error naming its key.
    init(domains: [TrustDomainConfig]) throws {
        self.domains = domains
        var bundles: [String: [Certificate]] = [:]
        for domain in domains {
            do {
                bundles[domain.name] = try TrustBundles.loadPEM(path: domain.bundlePath)
            } catch {
                throw ConfigErrors([
                    ConfigIssue(
                        location: domain.bundleLocation, keyPath: "trust_domains.\(domain.name).bundle",
                        message: "\(error)", expected: "a PEM file of CA certificates")
                ])
            }
        }
        self.current = NIOLockedValueBox(State(bundles: bundles))
    }

    var verifier: SVIDVerifier { current.withLockedValue { $0.verifier } }

    /// The verifier and its cache, read together so they always match.
    var verification: (verifier: SVIDVerifier, cache: VerifiedChainCache) {
        current.withLockedValue { ($0.verifier, $0.cache) }
    }

    /// The CA certificates of one trust domain (for upstream verification).
    func roots(of domain: String) -> [Certificate] {
        current.withLockedValue { $0.bundles[domain] ?? [] }
    }

    /// Re-reads one trust domain's bundle. On failure the last good bundle stays in use.
    func reload(domain name: String) throws {
        guard let domain = domains.first(where: { $0.name == name }) else { return }
        let certificates = try TrustBundles.loadPEM(path: domain.bundlePath)
        current.withLockedValue { state in
            var bundles = state.bundles
            bundles[name] = certificates
            state = State(bundles: bundles)
        }
    }
}
