import Foundation
import GatehouseCore
import NIOConcurrencyHelpers

/// Builds the token verifier from `issuers` at load time: reads each JWKS file and HMAC
/// secret, and turns the config's names into the verifier's types. Errors name the key.
enum TokenSetup {
    static func store(for config: GatewayConfig, environment: [String: String]) async throws -> TokenVerifierStore? {
        guard !config.issuers.isEmpty else { return nil }
        var issuers: [TokenIssuer] = []
        var revocations: [String: RevocationList] = [:]
        for issuer in config.issuers {
            issuers.append(try await load(issuer, environment: environment))
            revocations[issuer.name] = try revocationList(issuer)
        }
        return TokenVerifierStore(configs: config.issuers, issuers: issuers, revocations: revocations, environment: environment)
    }

    static func revocationList(_ issuer: IssuerConfig) throws -> RevocationList {
        guard let path = issuer.revokedFile else { return .empty }
        func failure(_ message: String) -> ConfigErrors {
            ConfigErrors([ConfigIssue(location: issuer.location, keyPath: "issuers.\(issuer.name).revoked", message: message)])
        }
        guard let data = FileManager.default.contents(atPath: path) else { throw failure("cannot read \(path)") }
        do {
            return try RevocationList(parsing: String(decoding: data, as: UTF8.self))
        } catch {
            throw failure("\(path): \(error)")
        }
    }

    static func load(_ issuer: IssuerConfig, environment: [String: String]) async throws -> TokenIssuer {
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
    /// Headers the client may not send upstream on this route (lowercased): the token with
    /// `upstream: strip`, and every `claims_to_headers` target, which only the gateway sets.
    let stripHeaders: [String]
    /// `claims_to_headers`, in a fixed order: (claim, header).
    let claimHeaders: [(claim: String, header: String)]
    /// `replay: jti`.
    let rejectReplay: Bool
    /// `upstream: mint`.
    let mintUpstream: Bool

    init(_ config: RouteTokenConfig) {
        self.requirement = TokenRequirement(
            issuers: config.issuers, scopes: Set(config.scopes), claims: config.claims.mapValues(\.jsonValue),
            bind: config.bindToClientCertificate ? .mtls : .none)
        self.source = config.source
        let claimHeaders = config.claimsToHeaders.sorted { $0.key < $1.key }.map { (claim: $0.key, header: $0.value) }
        self.claimHeaders = claimHeaders
        // Minting replaces the inbound token, which never goes further; `authorization` is
        // then set by the gateway, so a client's copy must not pass either.
        var strip = claimHeaders.map(\.header)
        if config.stripUpstream || config.mintUpstream { strip.append(BearerToken.headerName(config.source)) }
        if config.mintUpstream && !strip.contains("authorization") { strip.append("authorization") }
        self.stripHeaders = strip
        self.rejectReplay = config.rejectReplay
        self.mintUpstream = config.mintUpstream
    }
}

/// The running token verifier, swapped whole when an issuer's key set changes on disk (the
/// issuer rotated its signing key). Each verifier has its own cache, so no verdict outlives
/// the keys it was reached with.
final class TokenVerifierStore: Sendable {
    let configs: [IssuerConfig]
    private let environment: [String: String]
    private let state: NIOLockedValueBox<State>

    struct State {
        var issuers: [TokenIssuer]
        var verifier: TokenVerifier
        /// Checked on every request, cache hit or not.
        var revocations: [String: RevocationList]
    }

    init(configs: [IssuerConfig], issuers: [TokenIssuer], revocations: [String: RevocationList], environment: [String: String]) {
        self.configs = configs
        self.environment = environment
        self.state = NIOLockedValueBox(
            State(issuers: issuers, verifier: TokenVerifier(issuers: issuers, cache: VerifiedTokenCache()), revocations: revocations))
    }

    /// The verifier and the revocation lists, read together.
    var current: (verifier: TokenVerifier, revocations: [String: RevocationList]) {
        state.withLockedValue { ($0.verifier, $0.revocations) }
    }

    var verifier: TokenVerifier { state.withLockedValue { $0.verifier } }

    /// Files whose change reloads `issuer`.
    static func watchedFiles(_ issuer: IssuerConfig) -> [String] {
        [issuer.jwksFile, TLSMaterial.watchedPath(issuer.hmacSecret), issuer.revokedFile].compactMap { $0 }
    }

    /// Re-reads one issuer's keys. On failure the last good keys stay in use.
    func reload(issuer name: String) async throws {
        guard let config = configs.first(where: { $0.name == name }) else { return }
        let issuer = try await TokenSetup.load(config, environment: environment)
        let revocations = try TokenSetup.revocationList(config)
        state.withLockedValue { state in
            if let index = state.issuers.firstIndex(where: { $0.name == name }) { state.issuers[index] = issuer }
            state.verifier = TokenVerifier(issuers: state.issuers, cache: VerifiedTokenCache())
            state.revocations[name] = revocations
        }
    }
}
