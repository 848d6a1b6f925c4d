import Foundation
import GatehouseCore
import NIOCore
import NIOHTTP1

/// What one policy says about a request from its head alone: the route, then `peers` and
/// `token` (checks in `mode: shadow` are recorded, never deny). The data path runs it for the
/// deciding policy and, during a rollout, for the other one too; it has no side effects
/// beyond the token cache.
struct HeadVerdict {
    /// nil: no route matches (`route.not_found`).
    var route: CompiledRoute?
    /// The first enforced check that denied; nil when the head passes.
    var denial: ReasonCode?
    /// Shadowed checks, in the order they ran.
    var shadow: [DecisionRecord.ShadowCheck] = []
    /// The verified token (enforced, or shadowed and valid).
    var token: VerifiedToken?
    /// `replay: jti`: the key to insert once, and whether that check is shadowed.
    var replayKey: (key: String, expiresAt: Date, shadowed: Bool)?

    var decision: DecisionRecord.Decision { denial == nil ? .allow : .deny }
    var reason: ReasonCode { denial ?? .allowed }
}

enum HeadChecks {
    /// What a connection keeps between its requests so that checking the next one reads no
    /// state shared with the other event loops: the token verifier it last read, and its last
    /// token (``RecentToken``).
    struct ConnectionMemory {
        var tokenStore: ReadMostly<TokenVerifierStore.Current>.Reading?
        var recentToken = RecentToken()
    }

    struct Request {
        /// As the client sent it: the router canonicalises it when some route names a host.
        let host: String?
        let path: String
        let method: String
        let headers: HTTPHeaders
        /// The `Authorization` field, as the validator found it.
        let authorization: FieldOccurrence
        let peer: ConnectionPeer?
        let tokens: TokenVerifierStore?
        var durations: CheckDurations.Recorder? = nil
    }

    static func evaluate(_ router: Router<CompiledRoute>, _ request: Request, memory: inout ConnectionMemory) -> HeadVerdict {
        guard let route = router.match(host: request.host, path: request.path, method: request.method) else {
            return HeadVerdict(route: nil, denial: .routeNotFound)
        }
        var verdict = HeadVerdict(route: route)
        if let peerCheck = route.peerCheck {
            let started = NIODeadline.now()
            let outcome = peerCheck.evaluate(peer: request.peer?.id)
            request.durations?.observe(.peers, since: started)
            if case .deny(let reason) = outcome {
                guard verdict.judge(.peers, reason, shadowed: route.peersShadowed) else { return verdict }
            } else if route.peersShadowed {
                verdict.shadow.append(.init(check: .peers, decision: .allow, reason: .allowed))
            }
        }
        guard let tokenCheck = route.tokenCheck else { return verdict }
        let shadowed = tokenCheck.shadowed
        let started = NIODeadline.now()
        let result = verify(tokenCheck, request, memory: &memory)
        request.durations?.observe(.token, since: started)
        switch result {
        case .failure(let refusal):
            _ = verdict.judge(.token, refusal.reason, shadowed: shadowed)
        case .success(let token):
            if tokenCheck.rejectReplay {
                guard let jti = token.jti, !jti.isEmpty else {
                    _ = verdict.judge(.token, .tokenMalformed, shadowed: shadowed)
                    return verdict
                }
                // Keyed per issuer: two issuers may use the same ids.
                verdict.replayKey = (token.issuerName + "\u{0}" + jti, token.exp, shadowed)
            } else if shadowed {
                verdict.shadow.append(.init(check: .token, decision: .allow, reason: .allowed))
            }
            verdict.token = token
        }
        return verdict
    }

    /// The route's bearer-token requirement, synchronously: verified tokens are cached, and a
    /// signature check (20-40 µs) is cheaper than a hop off the event loop.
    static func verify(_ check: RouteTokenCheck, _ request: Request, memory: inout ConnectionMemory) -> Result<VerifiedToken, TokenRefusal> {
        let tokens = request.tokens
        let peer = request.peer
        switch BearerToken.extract(from: request.headers, authorization: request.authorization, source: check.source) {
        case .missing: return .failure(TokenRefusal(.tokenMissing, "no token"))
        case .malformed: return .failure(TokenRefusal(.tokenMalformed, "not a single bearer token"))
        case .token(let token):
            guard let tokens else { return .failure(TokenRefusal(.tokenUnknownIssuer, "no issuers configured")) }
            let current = tokens.current(reusing: &memory.tokenStore)
            let result = current.verifier.verify(
                token: token, requirement: check.requirement, clientCertificateSHA256: peer?.certificateDigest,
                now: Date(), recent: &memory.recentToken)
            if case .failure(let refusal) = result, let issuer = refusal.issuerName {
                // The issuer may have rotated its keys since the last fetch.
                tokens.keyMissing(issuer: issuer)
            }
            // Revocation is checked on every request, cached verdict or not.
            guard case .success(let verified) = result else { return result }
            if current.revocations[verified.issuerName]?.revokes(verified) == true {
                return .failure(TokenRefusal(.tokenRevoked, "revoked"))
            }
            return result
        }
    }
}

extension HeadVerdict {
    /// A check denied: a shadowed one is recorded and the evaluation goes on (true); an
    /// enforced one decides (false).
    mutating func judge(_ check: RouteCheck, _ reason: ReasonCode, shadowed: Bool) -> Bool {
        guard shadowed else {
            denial = reason
            return false
        }
        shadow.append(.init(check: check, decision: .deny, reason: reason))
        return true
    }
}
