import Foundation

/// The token a connection presented last, and what verifying it established.
///
/// A client on a kept-alive connection sends the same token with every request, so comparing
/// its bytes with the previous request's (tens of nanoseconds) stands in for the cache key's
/// SHA-256 and the shared cache's lock (together about 0.8 µs for an 800-byte token, the
/// lock's cache line bouncing between event loops). It stands for exactly what a cache hit
/// stands for, and only with the cache it was verified for: keys that change come with a new
/// cache, which makes it stale. Time, the issuer's rules, the route's claims, scopes and
/// binding are checked on every request, as on a hit; revocation by the caller.
///
/// One per connection, on its event loop: it holds the one token that connection sent (no
/// more than ``TokenVerifier/maxTokenLength`` bytes), for as long as the connection holds the
/// request it came in.
public struct RecentToken: Sendable {
    private var bytes: [UInt8] = []
    private var token: AuthenticatedToken?
    private var cacheID = 0

    public init() {}

    /// The authenticated token if `bytes` are the remembered token's, verified for `cache`
    /// and not past its cache lifetime.
    func authenticated(_ bytes: UnsafeBufferPointer<UInt8>, cache: VerifiedTokenCache, now: Date) -> AuthenticatedToken? {
        guard let token, cacheID == cache.id, now < token.validUntil, !bytes.isEmpty, self.bytes.count == bytes.count else {
            return nil
        }
        let same = self.bytes.withUnsafeBufferPointer { remembered in
            memcmp(remembered.baseAddress!, bytes.baseAddress!, bytes.count) == 0
        }
        return same ? token : nil
    }

    mutating func remember(_ bytes: UnsafeBufferPointer<UInt8>, _ token: AuthenticatedToken, cache: VerifiedTokenCache) {
        if self.bytes.count == bytes.count {
            // The same length (a refreshed token usually is): reuse the storage.
            self.bytes.withUnsafeMutableBufferPointer { $0.update(fromContentsOf: bytes) }
        } else {
            self.bytes = Array(bytes)
        }
        self.token = token
        self.cacheID = cache.id
    }
}
