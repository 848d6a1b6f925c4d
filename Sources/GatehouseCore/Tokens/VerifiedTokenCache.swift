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

        init(token: UnsafeBufferPointer<UInt8>) {
            var hasher = SHA256()
            hasher.update(bufferPointer: UnsafeRawBufferPointer(token))
            self.digest = hasher.finalize()
        }
    }

    public let capacity: Int
    /// Unique per cache in this process, so a ``RecentToken`` can tell which cache it was
    /// verified for (an object address can be reused).
    let id: Int
    private static let nextID = Atomic<Int>(1)
    private let entries: ExpiringCache<Key, AuthenticatedToken>

    public init(capacity: Int = 10_000) {
        self.capacity = capacity
        self.id = Self.nextID.add(1, ordering: .relaxed).oldValue
        self.entries = ExpiringCache(capacity: capacity)
    }

    func lookup(_ key: Key, now: Date) -> AuthenticatedToken? {
        entries.lookup(key, now: now)
    }

    func insert(_ key: Key, _ token: AuthenticatedToken) {
        entries.insert(key, token, validUntil: token.validUntil)
    }

    public var count: Int { entries.count }
}
