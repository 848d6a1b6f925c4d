import Foundation
import GatehouseCore
import NIOConcurrencyHelpers

/// Builds the token verifier from `issuers` at load time: reads each JWKS file and HMAC
/// secret, and turns the config's names into the verifier's types. Errors name the key.
enum TokenSetup {
    static func store(for config: GatewayConfig, environment: [String: String]) async throws -> TokenVerifierStore? {
        guard !config.issuers.isEmpty else { return nil }
        var local: [String: TokenKeySet] = [:]
        var revocations: [String: RevocationList] = [:]
        for issuer in config.issuers {
            local[issuer.name] = try await localKeys(issuer, environment: environment)
            revocations[issuer.name] = try revocationList(issuer)
        }
        return try TokenVerifierStore(configs: config.issuers, localKeys: local, revocations: revocations, environment: environment)
    }

    static func revocationList(_ issuer: IssuerConfig) throws -> RevocationList {
        guard let path = issuer.revokedFile else { return .empty }
        guard let data = FileManager.default.contents(atPath: path) else { throw failure(issuer, "revoked", "cannot read \(path)") }
        do {
            return try RevocationList(parsing: String(decoding: data, as: UTF8.self))
        } catch {
            throw failure(issuer, "revoked", "\(path): \(error)")
        }
    }

    /// The keys the issuer's config names on this machine: `jwks_file` and `hmac_secret`.
    /// Empty (and complete) for an issuer whose keys are only fetched.
    static func localKeys(_ issuer: IssuerConfig, environment: [String: String]) async throws -> TokenKeySet {
        var jwks: [UInt8]?
        if let path = issuer.jwksFile {
            guard let data = FileManager.default.contents(atPath: path) else {
                throw failure(issuer, "jwks_file", "cannot read \(path)", expected: "a JWKS document")
            }
            jwks = Array(data)
        }
        var secret: [UInt8]?
        if let reference = issuer.hmacSecret {
            do {
                secret = try SecretResolver.resolve(reference, environment: environment)
            } catch {
                throw failure(issuer, "hmac_secret", "\(error)")
            }
        }
        do {
            return try await TokenKeySet.load(jwksJSON: jwks, hmacSecret: secret)
        } catch {
            throw failure(issuer, issuer.jwksFile != nil ? "jwks_file" : "hmac_secret", "\(error)")
        }
    }

    /// The verifier's view of one issuer with `keys` (local, merged with fetched ones).
    static func issuer(_ issuer: IssuerConfig, keys: TokenKeySet) throws -> TokenIssuer {
        var algorithms: Set<TokenAlgorithm>
        if let names = issuer.algorithms {
            algorithms = Set(names.compactMap(TokenAlgorithm.init(rawValue:)))
        } else {
            algorithms = TokenIssuer.defaultAlgorithms(for: keys).union(issuer.hmacSecret == nil ? [] : [.hs256])
            if algorithms.isEmpty && !keys.isComplete {
                // Keys not fetched yet: let tokens reach key selection, which answers
                // `token.keys_unavailable`, instead of `token.algorithm_not_allowed`.
                algorithms = Set(TokenAlgorithm.allCases.filter { !$0.isHMAC })
            }
        }
        do {
            return try TokenIssuer(
                name: issuer.name, issuer: issuer.issuer, audiences: Set(issuer.audiences), algorithms: algorithms, keys: keys,
                clockSkew: TimeInterval(issuer.clockSkew.components.seconds),
                maxLifetime: issuer.maxLifetime.map { TimeInterval($0.components.seconds) },
                requiredClaims: issuer.requiredClaims.mapValues(\.jsonValue))
        } catch {
            throw failure(issuer, "algorithms", "\(error)")
        }
    }

    private static func failure(_ issuer: IssuerConfig, _ key: String, _ message: String, expected: String? = nil) -> ConfigErrors {
        ConfigErrors([ConfigIssue(location: issuer.location, keyPath: "issuers.\(issuer.name).\(key)", message: message, expected: expected)])
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
/// A class, not a struct: the data path reads it from the shared route on every request, and
/// a copy of a struct this size retains and releases each of its arrays and strings.
final class RouteTokenCheck: Sendable {
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
    /// `mode: shadow`: evaluated and recorded, never denies.
    let shadowed: Bool

    init(_ config: RouteTokenConfig) {
        self.requirement = TokenRequirement(
            issuers: config.issuers, scopes: Set(config.scopes), claims: config.claims.mapValues(\.jsonValue),
            bind: config.bindToClientCertificate ? .mtls : .none)
        self.source = config.source
        self.shadowed = config.mode == .shadow
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

/// The running token verifier, swapped whole when an issuer's keys change: its JWKS file
/// changed on disk, or a fetch of its `jwks_uri` brought a new set (or the fetched set went
/// stale). Each verifier has its own cache, so no verdict outlives the keys it was reached with.
final class TokenVerifierStore: Sendable {
    let configs: [IssuerConfig]
    private let environment: [String: String]
    private let state: NIOLockedValueBox<State>

    struct State {
        var issuers: [String: TokenIssuer]
        /// Checked on every request, cache hit or not.
        var revocations: [String: RevocationList]
        /// From `jwks_file`/`hmac_secret`.
        var localKeys: [String: TokenKeySet]
        /// From `jwks_uri`, with the document they were parsed from; `.unavailable` until the
        /// first fetch and after `stale_for`.
        var fetchedKeys: [String: (keys: TokenKeySet, document: [UInt8]?)]
        /// Issuers with a `jwks_uri`, by name: told when a token names a kid their set lacks.
        var refreshers: [String: JWKSRefresher] = [:]
    }

    init(configs: [IssuerConfig], localKeys: [String: TokenKeySet], revocations: [String: RevocationList], environment: [String: String]) throws {
        self.configs = configs
        self.environment = environment
        var fetched: [String: (keys: TokenKeySet, document: [UInt8]?)] = [:]
        for config in configs where config.jwksEndpoint != nil { fetched[config.name] = (.unavailable, nil) }
        var issuers: [String: TokenIssuer] = [:]
        for config in configs {
            issuers[config.name] = try TokenSetup.issuer(config, keys: Self.combined(localKeys[config.name], fetched[config.name]?.keys))
        }
        let state = State(issuers: issuers, revocations: revocations, localKeys: localKeys, fetchedKeys: fetched)
        self.state = NIOLockedValueBox(state)
        self.published = ReadMostly(Self.current(state))
    }

    /// The verifier and the revocation lists, read together.
    struct Current: Sendable {
        let verifier: TokenVerifier
        let revocations: [String: RevocationList]
    }

    /// What the data path reads: published whenever `state`'s issuers or revocations change,
    /// with a new verifier (and so a new cache).
    private let published: ReadMostly<Current>

    /// The data path's read: no lock while the caller's reading is current.
    func current(reusing reading: inout ReadMostly<Current>.Reading?) -> Current {
        published.read(reusing: &reading)
    }

    var verifier: TokenVerifier { published.value.verifier }

    /// Files whose change reloads `issuer`.
    static func watchedFiles(_ issuer: IssuerConfig) -> [String] {
        [issuer.jwksFile, TLSMaterial.watchedPath(issuer.hmacSecret), issuer.revokedFile].compactMap { $0 }
    }

    func attach(_ refresher: JWKSRefresher) {
        state.withLockedValue { $0.refreshers[refresher.issuer] = refresher }
    }

    /// A token was refused because `issuer`'s set lacks its key: perhaps the issuer rotated.
    func keyMissing(issuer: String) {
        state.withLockedValue { $0.refreshers[issuer] }?.requestRefetch()
    }

    /// Re-reads one issuer's local keys and revocation list. On failure the last good ones stay in use.
    func reload(issuer name: String) async throws {
        guard let config = configs.first(where: { $0.name == name }) else { return }
        let keys = try await TokenSetup.localKeys(config, environment: environment)
        let revocations = try TokenSetup.revocationList(config)
        try state.withLockedValue { state in
            state.issuers[name] = try TokenSetup.issuer(config, keys: Self.combined(keys, state.fetchedKeys[name]?.keys))
            state.localKeys[name] = keys
            state.revocations[name] = revocations
            published.replace(with: Self.current(state))
        }
    }

    /// Installs a fetched key set (or `.unavailable`). Returns whether anything changed; an
    /// identical document keeps the verifier and its cache.
    /// Throws (keeping the last good set) when the fetched keys leave the issuer unusable,
    /// e.g. none of them verifies an algorithm of its `algorithms`.
    @discardableResult
    func installFetchedKeys(_ keys: TokenKeySet, issuer name: String, document: [UInt8]? = nil) throws -> Bool {
        guard let config = configs.first(where: { $0.name == name }) else { return false }
        return try state.withLockedValue { state in
            let held = state.fetchedKeys[name]
            if let document, held?.document == document, held?.keys.isComplete == true { return false }
            let issuer = try TokenSetup.issuer(config, keys: Self.combined(state.localKeys[name], keys))
            state.fetchedKeys[name] = (keys, document ?? held?.document)
            state.issuers[name] = issuer
            published.replace(with: Self.current(state))
            return true
        }
    }

    /// The last fetched document, to re-install after a 304 ends a stale spell.
    func lastFetchedDocument(issuer name: String) -> [UInt8]? {
        state.withLockedValue { $0.fetchedKeys[name]?.document }
    }

    private static func combined(_ local: TokenKeySet?, _ fetched: TokenKeySet?) -> TokenKeySet {
        let local = local ?? .empty
        return fetched.map { local.merged(with: $0) } ?? local
    }

    private static func current(_ state: State) -> Current {
        Current(verifier: verifier(state.issuers), revocations: state.revocations)
    }

    private static func verifier(_ issuers: [String: TokenIssuer]) -> TokenVerifier {
        TokenVerifier(issuers: issuers.keys.sorted().compactMap { issuers[$0] }, cache: VerifiedTokenCache())
    }
}
