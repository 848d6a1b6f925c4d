import Foundation
import GatehouseCore
import NIOConcurrencyHelpers
import X509

/// The configured trust domains' bundles, as one `SVIDVerifier` that is swapped whole when
/// a bundle file changes. Handshakes read the current verifier; one in flight keeps the one
/// it started with.
final class TrustDomainStore: Sendable {
    let domains: [TrustDomainConfig]
    private let current: NIOLockedValueBox<(bundles: [String: [Certificate]], verifier: SVIDVerifier)>

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
                        location: domain.location, keyPath: "trust_domains.\(domain.name).bundle",
                        message: "cannot load \(domain.bundlePath): \(error)", expected: "a PEM file of CA certificates")
                ])
            }
        }
        self.current = NIOLockedValueBox((bundles, SVIDVerifier(bundles: TrustBundles(bundles))))
    }

    var verifier: SVIDVerifier { current.withLockedValue { $0.verifier } }

    /// The CA certificates of one trust domain (for upstream verification).
    func roots(of domain: String) -> [Certificate] {
        current.withLockedValue { $0.bundles[domain] ?? [] }
    }

    /// Re-reads one trust domain's bundle. On failure the last good bundle stays in use.
    func reload(domain name: String) throws {
        guard let domain = domains.first(where: { $0.name == name }) else { return }
        let certificates = try TrustBundles.loadPEM(path: domain.bundlePath)
        current.withLockedValue { state in
            state.bundles[name] = certificates
            state.verifier = SVIDVerifier(bundles: TrustBundles(state.bundles))
        }
    }
}
