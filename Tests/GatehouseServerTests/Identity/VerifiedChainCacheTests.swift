import Foundation
import GatehouseCore
import XCTest

@testable import GatehouseServer

final class VerifiedChainCacheTests: XCTestCase {
    private let now = Date(timeIntervalSince1970: 1_800_000_000)

    private func peer(_ path: String, validFor seconds: TimeInterval) throws -> VerifiedPeer {
        VerifiedPeer(
            spiffeID: try SPIFFEID(parsing: "spiffe://prod.example/\(path)"), certificateSHA256: path,
            validUntil: now + seconds)
    }

    func testKeysDependOnEveryCertificateAndItsBoundary() {
        let a = VerifiedChainCache.Key(chainDER: [[1, 2], [3]])
        XCTAssertEqual(a, VerifiedChainCache.Key(chainDER: [[1, 2], [3]]))
        XCTAssertNotEqual(a, VerifiedChainCache.Key(chainDER: [[1], [2, 3]]), "lengths are part of the key")
        XCTAssertNotEqual(a, VerifiedChainCache.Key(chainDER: [[1, 2]]), "a chain without the intermediate is another chain")
    }

    func testAnEntryServesUntilItsChainExpires() throws {
        let cache = VerifiedChainCache()
        let key = VerifiedChainCache.Key(chainDER: [[1]])
        XCTAssertNil(cache.lookup(key, now: now))
        cache.insert(key, try peer("a", validFor: 60))
        XCTAssertEqual(cache.lookup(key, now: now + 59)?.certificateSHA256, "a")
        XCTAssertNil(cache.lookup(key, now: now + 60), "expired at validUntil")
        XCTAssertEqual(cache.count, 0, "an expired entry is dropped when found")
    }

    func testTheOldestEntryGoesFirstAtCapacity() throws {
        let cache = VerifiedChainCache(capacity: 3)
        let keys = (0..<5).map { VerifiedChainCache.Key(chainDER: [[UInt8($0)]]) }
        for (index, key) in keys.enumerated() { cache.insert(key, try peer("p\(index)", validFor: 600)) }
        XCTAssertEqual(cache.count, 3)
        XCTAssertNil(cache.lookup(keys[0], now: now))
        XCTAssertNil(cache.lookup(keys[1], now: now))
        XCTAssertEqual(keys[2...].map { cache.lookup($0, now: now)?.certificateSHA256 }, ["p2", "p3", "p4"])
        // Churn far beyond the capacity stays bounded.
        for round in 0..<1000 { cache.insert(VerifiedChainCache.Key(chainDER: [[9, UInt8(round % 256), UInt8(round / 256)]]), try peer("x", validFor: 600)) }
        XCTAssertEqual(cache.count, 3)
    }
}
