import Crypto
import Foundation
import Synchronization

/// Tokens whose signature verified recently, so a client that repeats its token does not pay
/// for an RSA or ECDSA check on every request.
///
/// It holds only what does not depend on the route: the issuer whose key verified the token
/// and its claims. Time, audience, the issuer's required claims, the route's claims, scopes
/// and binding are checked again on every hit. Only authenticated tokens are inserted (a
/// flood of forged tokens cannot fill it), each until its `exp` plus the issuer's skew.
/// Bounded: at `capacity` the oldest entry goes first. One cache belongs to one set of
/// issuers and keys; when keys change, start a new cache.
public final class VerifiedTokenCache: Sendable {
    /// SHA-256 of the token bytes: the cache never holds a token.
    struct Key: Hashable, Sendable {
        let digest: SHA256.Digest

        init(token: [UInt8]) {
            self.digest = SHA256.hash(data: token)
        }
    }

    private struct State {
        var entries: [Key: AuthenticatedToken] = [:]
        /// Insertion order, for eviction.
        var order: [Key] = []
        var orderStart = 0
    }

    public let capacity: Int
    private let state = Mutex(State())

    public init(capacity: Int = 10_000) {
        precondition(capacity > 0, "a cache needs room for one entry")
        self.capacity = capacity
    }

    func lookup(_ key: Key, now: Date) -> AuthenticatedToken? {
        state.withLock { state in
            guard let token = state.entries[key] else { return nil }
            guard now < token.validUntil else {
                state.entries[key] = nil  // its slot in `order` is skipped at eviction
                return nil
            }
            return token
        }
    }

    func insert(_ key: Key, _ token: AuthenticatedToken) {
        state.withLock { state in
            if state.entries.updateValue(token, forKey: key) != nil { return }
            state.order.append(key)
            while state.entries.count > capacity, state.orderStart < state.order.count {
                let oldest = state.order[state.orderStart]
                state.orderStart += 1
                state.entries[oldest] = nil
            }
            // Compact the order list once its consumed head dominates it.
            if state.orderStart > capacity {
                state.order.removeFirst(state.orderStart)
                state.orderStart = 0
            }
            if state.order.count > 2 * capacity {
                state.order = state.order.filter { state.entries[$0] != nil }
                state.orderStart = 0
            }
        }
    }

    public var count: Int { state.withLock { $0.entries.count } }
}
