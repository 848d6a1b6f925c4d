import Foundation
import GatehouseCore
import NIOPosix
import NIOSSL

/// `gatehouse token verify`: runs exactly one route's token requirement on one token,
/// outside the gateway, for an operator asking "why was this refused?". Keys come from
/// `jwks_file`, and from one fetch of `jwks_uri` (with the issuer's `ca`) made now.
public enum OfflineTokenCheck {
    public enum Failure: Error, CustomStringConvertible {
        case unknownRoute(String, known: [String])
        case routeHasNoToken(String)
        case clientCertificate(String)

        public var description: String {
            switch self {
            case .unknownRoute(let name, let known): return "no route named `\(name)` (routes: \(known.joined(separator: ", ")))"
            case .routeHasNoToken(let name): return "route `\(name)` has no `token` requirement"
            case .clientCertificate(let message): return "--client-cert: \(message)"
            }
        }
    }

    public static func verify(
        config: GatewayConfig, route name: String, token: String, at now: Date, clientCertificatePEM: String?,
        environment: [String: String] = ProcessInfo.processInfo.environment,
        report: (String) -> Void = { _ in }
    ) async throws -> Result<VerifiedToken, TokenRefusal> {
        guard let route = config.routes.first(where: { $0.name == name }) else {
            throw Failure.unknownRoute(name, known: config.routes.map(\.name))
        }
        guard let tokenConfig = route.token else { throw Failure.routeHasNoToken(name) }
        guard let store = try await TokenSetup.store(for: config, environment: environment) else {
            throw Failure.routeHasNoToken(name)
        }
        for issuer in store.configs where tokenConfig.issuers.contains(issuer.name) {
            guard let endpoint = issuer.jwksEndpoint else { continue }
            do {
                let client = try JWKSClient(endpoint: endpoint, group: MultiThreadedEventLoopGroup.singleton)
                guard case .document(let body, _) = try await client.fetch(etag: nil).content else { continue }
                try store.installFetchedKeys(try await TokenKeySet.load(jwksJSON: body), issuer: issuer.name, document: body)
            } catch {
                // Verification then refuses with token.keys_unavailable; say why.
                report("issuer \(issuer.name): cannot fetch \(endpoint.url): \(error)")
            }
        }
        var certificateDER: [UInt8]?
        if let path = clientCertificatePEM {
            do {
                guard let leaf = try NIOSSLCertificate.fromPEMFile(path).first else {
                    throw Failure.clientCertificate("\(path) holds no certificate")
                }
                certificateDER = try leaf.toDERBytes()
            } catch let failure as Failure {
                throw failure
            } catch {
                throw Failure.clientCertificate("cannot read \(path) (\(error))")
            }
        }
        let check = RouteTokenCheck(tokenConfig)
        return store.verifier.verify(
            token: token.trimmingCharacters(in: .whitespacesAndNewlines), requirement: check.requirement,
            clientCertificateDER: certificateDER, now: now)
    }
}
