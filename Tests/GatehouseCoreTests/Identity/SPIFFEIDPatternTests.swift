import GatehouseCore
import XCTest

final class SPIFFEIDPatternTests: XCTestCase {
    private func id(_ text: String) -> SPIFFEID {
        try! SPIFFEID(parsing: text)
    }

    private func pattern(_ text: String) -> SPIFFEIDPattern {
        try! SPIFFEIDPattern(parsing: text)
    }

    private func assertRefused(_ text: String, _ expected: SPIFFEIDError, line: UInt = #line) {
        do {
            let pattern = try SPIFFEIDPattern(parsing: text)
            XCTFail("\(text.debugDescription) accepted as \(pattern)", line: line)
        } catch {
            XCTAssertEqual(error, expected, text, line: line)
        }
    }

    // MARK: - Parsing

    func testParsesTheThreeShapes() {
        XCTAssertEqual(pattern("spiffe://td/a/b"), .exact(id("spiffe://td/a/b")))
        XCTAssertEqual(pattern("spiffe://td"), .exact(id("spiffe://td")))
        XCTAssertEqual(pattern("spiffe://td/a/*"), .below(id("spiffe://td/a")))
        XCTAssertEqual(pattern("spiffe://td/a/b/*"), .below(id("spiffe://td/a/b")))
        XCTAssertEqual(pattern("spiffe://td/*"), .trustDomain("td"))
    }

    func testDescriptionRoundTrips() {
        for text in ["spiffe://td/a/b", "spiffe://td", "spiffe://td/a/*", "spiffe://prod.example/*"] {
            XCTAssertEqual(pattern(text).description, text)
            XCTAssertEqual(pattern(pattern(text).description), pattern(text))
        }
    }

    func testTrustDomainOfEachShape() {
        XCTAssertEqual(pattern("spiffe://a.example/x").trustDomain, "a.example")
        XCTAssertEqual(pattern("spiffe://b.example/x/*").trustDomain, "b.example")
        XCTAssertEqual(pattern("spiffe://c.example/*").trustDomain, "c.example")
    }

    func testWildcardOnlyAsTheWholeLastSegment() {
        for text in [
            "spiffe://td/a*", "spiffe://td/*a", "spiffe://*/x", "spiffe://*", "spiffe://td/*/x", "spiffe://td/**",
            "spiffe://td/a/*/*", "spiffe://td*", "spiffe://t*d/x", "spiffe://td/a/b*", "*", "/*", "spiffe://td/*?x",
            "spiffe://td/a*/b",
        ] {
            assertRefused(text, .misplacedWildcard)
        }
    }

    func testTheRestOfThePatternFollowsTheSPIFFEIDRules() {
        assertRefused("", .empty)
        assertRefused("http://td/*", .wrongScheme)
        assertRefused("SPIFFE://td/*", .wrongScheme)
        assertRefused("spiffe:///*", .missingTrustDomain)
        assertRefused("spiffe://TD/*", .uppercaseTrustDomain)
        assertRefused("spiffe://td:443/*", .port)
        assertRefused("spiffe://td/../*", .dotSegment)
        assertRefused("spiffe://td//*", .trailingSlash)
        assertRefused("spiffe://td/a//*", .trailingSlash)
        assertRefused("spiffe://td/a%2f/*", .percentEncoded)
        assertRefused("spiffe://td/a/", .trailingSlash)
    }

    // MARK: - Matching

    func testExactMatchesOnlyThatID() {
        let exact = pattern("spiffe://td/a/b")
        XCTAssertTrue(exact.matches(id("spiffe://td/a/b")))
        for other in ["spiffe://td/a", "spiffe://td/a/b/c", "spiffe://td/a/bc", "spiffe://td/a/B", "spiffe://td2/a/b", "spiffe://td"] {
            XCTAssertFalse(exact.matches(id(other)), other)
        }
    }

    func testBelowMatchesDescendantsOnly() {
        let below = pattern("spiffe://td/a/*")
        for match in ["spiffe://td/a/x", "spiffe://td/a/x/y", "spiffe://td/a/a", "spiffe://td/a/..x"] {
            XCTAssertTrue(below.matches(id(match)), match)
        }
        for other in [
            "spiffe://td/a", "spiffe://td/ab", "spiffe://td/ab/x", "spiffe://td/A/x", "spiffe://td", "spiffe://td/b/a/x",
            "spiffe://other/a/x", "spiffe://td2/a/x", "spiffe://xtd/a/x",
        ] {
            XCTAssertFalse(below.matches(id(other)), other)
        }
    }

    func testTrustDomainMatchesEveryIDInItAndNoOther() {
        let domain = pattern("spiffe://prod.example/*")
        for match in ["spiffe://prod.example", "spiffe://prod.example/x", "spiffe://prod.example/a/b/c"] {
            XCTAssertTrue(domain.matches(id(match)), match)
        }
        for other in ["spiffe://evilprod.example/x", "spiffe://prod.example.evil/x", "spiffe://prod.exampl/x", "spiffe://staging.example"] {
            XCTAssertFalse(domain.matches(id(other)), other)
        }
    }

    // MARK: - PeerPolicy

    func testEmptyPolicyAllowsNobody() {
        let policy = PeerPolicy(patterns: [])
        for text in ["spiffe://td", "spiffe://td/a", "spiffe://prod.example/ns/default/sa/x"] {
            XCTAssertFalse(policy.allows(id(text)), text)
        }
    }

    func testPolicyAllowsWhatAnyPatternMatches() {
        let policy = PeerPolicy(patterns: [
            pattern("spiffe://prod.example/ns/default/sa/billing"),
            pattern("spiffe://prod.example/ns/batch/*"),
            pattern("spiffe://prod.example/ns/jobs/sa/*"),
            pattern("spiffe://partner.example/*"),
        ])
        for allowed in [
            "spiffe://prod.example/ns/default/sa/billing", "spiffe://prod.example/ns/batch/sa/x",
            "spiffe://prod.example/ns/jobs/sa/y", "spiffe://partner.example", "spiffe://partner.example/any/thing",
        ] {
            XCTAssertTrue(policy.allows(id(allowed)), allowed)
        }
        for denied in [
            "spiffe://prod.example", "spiffe://prod.example/ns/default/sa/billing2", "spiffe://prod.example/ns/batch",
            "spiffe://prod.example/ns/batchx/sa/x", "spiffe://prod.example/ns/jobs/sa", "spiffe://staging.example/ns/batch/sa/x",
            "spiffe://partner.example.evil/x",
        ] {
            XCTAssertFalse(policy.allows(id(denied)), denied)
        }
    }

    func testPolicyEqualityFollowsThePatterns() {
        let a = PeerPolicy(patterns: [pattern("spiffe://td/*"), pattern("spiffe://td2/a")])
        let b = PeerPolicy(patterns: [pattern("spiffe://td/*"), pattern("spiffe://td2/a")])
        let c = PeerPolicy(patterns: [pattern("spiffe://td2/a")])
        XCTAssertEqual(a, b)
        XCTAssertEqual(a.hashValue, b.hashValue)
        XCTAssertNotEqual(a, c)
        XCTAssertEqual(a.patterns.count, 2)
    }

    /// The compiled lookup agrees with "any pattern matches" over generated lists and IDs.
    func testPolicyAgreesWithALinearScan() {
        var rng = SplitMix64(seed: 0x7370_6966_6665)
        let domains = ["a.example", "b.example", "ab.example"]
        let segments = ["a", "b", "ab", "x"]
        func randomID() -> SPIFFEID {
            let depth = Int.random(in: 0...3, using: &rng)
            let path = (0..<depth).map { _ in "/" + segments.randomElement(using: &rng)! }.joined()
            return id("spiffe://" + domains.randomElement(using: &rng)! + path)
        }
        func randomPattern() -> SPIFFEIDPattern {
            let base = randomID()
            switch Int.random(in: 0..<3, using: &rng) {
            case 0: return .exact(base)
            case 1: return base.path.isEmpty ? .trustDomain(base.trustDomain) : .below(base)
            default: return .trustDomain(base.trustDomain)
            }
        }
        var allowedCount = 0
        for _ in 0..<300 {
            let patterns = (0..<Int.random(in: 0...6, using: &rng)).map { _ in randomPattern() }
            let policy = PeerPolicy(patterns: patterns)
            for _ in 0..<40 {
                let candidate = randomID()
                let expected = patterns.contains { $0.matches(candidate) }
                XCTAssertEqual(policy.allows(candidate), expected, "\(patterns) vs \(candidate)")
                if expected { allowedCount += 1 }
            }
        }
        XCTAssertGreaterThan(allowedCount, 500, "the generator exercises the allow side too")
    }
}
