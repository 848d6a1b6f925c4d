import Foundation
import GatehouseCore

/// Builds the token verifier from `issuers` at load time: reads each JWKS file and HMAC
/// secret, and turns the config's names into the verifier's types. Errors name the key.
enum TokenSetup {
    static func verifier(for config: GatewayConfig, environment: [String: String]) async throws -> TokenVerifier? {
        guard !config.issuers.isEmpty else { return nil }
        var issuers: [TokenIssuer] = []
        for issuer in config.issuers {
            issuers.append(try await load(issuer, environment: environment))
        }
        return TokenVerifier(issuers: issuers, cache: VerifiedTokenCache())
    }

    private static func load(_ issuer: IssuerConfig, environment: [String: String]) async throws -> TokenIssuer {
        func failure(_ key: String, _ message: String, expected: String? = nil) -> ConfigErrors {
            ConfigErrors([
                ConfigIssue(location: issuer.location, keyPath: "issuers.\(issuer.name).\(key)", message: message, expected: expected)
            ])
        }
        var jwks: [UInt8]?
        if let path = issuer.jwksFile {
            guard let data = FileManager.default.contents(atPath: path) else {
                throw failure("jwks_file", "cannot read \(path)", expected: "a JWKS document")
            }
            jwks = Array(data)
        }
        var secret: [UInt8]?
        if let reference = issuer.hmacSecret {
            do {
                secret = try SecretResolver.resolve(reference, environment: environment)
            } catch {
                throw failure("hmac_secret", "\(error)")
            }
        }
        let keys: TokenKeySet
        do {
            keys = try await TokenKeySet.load(jwksJSON: jwks, hmacSecret: secret)
        } catch {
            throw failure(issuer.jwksFile != nil ? "jwks_file" : "hmac_secret", "\(error)")
        }
        let algorithms: Set<TokenAlgorithm>
        if let names = issuer.algorithms {
            algorithms = Set(names.compactMap(TokenAlgorithm.init(rawValue:)))
        } else {
            algorithms = TokenIssuer.defaultAlgorithms(for: keys).union(secret == nil ? [] : [.hs256])
        }
        do {
            return try TokenIssuer(
                name: issuer.name, issuer: issuer.issuer, audiences: Set(issuer.audiences), algorithms: algorithms, keys: keys,
                clockSkew: TimeInterval(issuer.clockSkew.components.seconds),
                maxLifetime: issuer.maxLifetime.map { TimeInterval($0.components.seconds) },
                requiredClaims: issuer.requiredClaims.mapValues(\.jsonValue))
        } catch {
            throw failure("algorithms", "\(error)")
        }
    }
}

extension ClaimValue {
    var jsonValue: JSONValue {
        switch self {
        case .string(let value): return .string(value)
        case .int(let value): return .integer(Int64(value))
        case .bool(let value): return .bool(value)
        }
    }
}

/// A route's token requirement, compiled for the data path.
struct RouteTokenCheck: Sendable {
    let requirement: TokenRequirement
    let source: TokenSource
    /// The header to keep from the upstream (`upstream: strip`), lowercased.
    let stripHeader: String?

    init(_ config: RouteTokenConfig) {
        self.requirement = TokenRequirement(
            issuers: config.issuers, scopes: Set(config.scopes), claims: config.claims.mapValues(\.jsonValue),
            bind: config.bindToClientCertificate ? .mtls : .none)
        self.source = config.source
        self.stripHeader = config.stripUpstream ? BearerToken.headerName(config.source) : nil
    }
}
