import GatehouseCore
import XCTest

/// The SPIFFE-ID standard's rules, with the examples of the standard and of go-spiffe's
/// `spiffeid` tests (the strict parser's, plus the older URL-based ones, several of which the
/// standard now refuses).
final class SPIFFEIDTests: XCTestCase {
    private static let trustDomainBytes = Set(Array("abcdefghijklmnopqrstuvwxyz0123456789.-_".utf8))
    private static let pathBytes = Set(Array("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_".utf8))

    private func assertValid(
        _ text: String,
        trustDomain: String,
        path: String,
        file: StaticString = #filePath,
        line: UInt = #line
    ) {
        do {
            let id = try SPIFFEID(parsing: text)
            XCTAssertEqual(id.trustDomain, trustDomain, text, file: file, line: line)
            XCTAssertEqual(id.path, path, text, file: file, line: line)
            XCTAssertEqual(id.description, text, file: file, line: line)
        } catch {
            XCTFail("\(text.debugDescription) refused: \(error)", file: file, line: line)
        }
    }

    private func assertInvalid(
        _ text: String,
        _ expected: SPIFFEIDError,
        file: StaticString = #filePath,
        line: UInt = #line
    ) {
        do {
            let id = try SPIFFEID(parsing: text)
            XCTFail("\(text.debugDescription) accepted as \(id)", file: file, line: line)
        } catch {
            XCTAssertEqual(error, expected, text.debugDescription, file: file, line: line)
        }
    }

    // MARK: - Valid

    func testSplitsTrustDomainAndPath() {
        assertValid("spiffe://prod.example/ns/default/sa/x", trustDomain: "prod.example", path: "/ns/default/sa/x")
        assertValid("spiffe://domain.test/path/element", trustDomain: "domain.test", path: "/path/element")
        assertValid("spiffe://staging.example.com/payments/mysql", trustDomain: "staging.example.com", path: "/payments/mysql")
        assertValid("spiffe://staging.example.com/payments/web-fe", trustDomain: "staging.example.com", path: "/payments/web-fe")
        assertValid("spiffe://k8s-west.example.com/ns/staging/sa/default", trustDomain: "k8s-west.example.com", path: "/ns/staging/sa/default")
        assertValid(
            "spiffe://example.com/9eebccd2-12bf-40a6-b262-65fe0487d453",
            trustDomain: "example.com",
            path: "/9eebccd2-12bf-40a6-b262-65fe0487d453"
        )
        assertValid("spiffe://a_b-c.9/A_z-0.9", trustDomain: "a_b-c.9", path: "/A_z-0.9")
    }

    func testPathIsOptional() {
        assertValid("spiffe://trustdomain", trustDomain: "trustdomain", path: "")
    }

    func testSegmentsWithDotsThatAreNotDotSegments() {
        assertValid("spiffe://trustdomain/.path", trustDomain: "trustdomain", path: "/.path")
        assertValid("spiffe://trustdomain/..path", trustDomain: "trustdomain", path: "/..path")
        assertValid("spiffe://trustdomain/...", trustDomain: "trustdomain", path: "/...")
        assertValid("spiffe://trustdomain/a./.b", trustDomain: "trustdomain", path: "/a./.b")
    }

    // MARK: - Every byte (go-spiffe walks 0...255 the same way; above 127 it is UTF-8)

    func testEveryCharacterInTheTrustDomain() {
        for value in 0..<256 where value != Int(UInt8(ascii: "/")) {
            let character = String(Character(Unicode.Scalar(UInt8(value))))
            let text = "spiffe://trustdomain" + character + "/path"
            if value < 128, Self.trustDomainBytes.contains(UInt8(value)) {
                assertValid(text, trustDomain: "trustdomain" + character, path: "/path")
                continue
            }
            let expected: SPIFFEIDError
            switch character {
            case "@": expected = .userInfo
            case ":": expected = .port
            case "%": expected = .percentEncoded
            case "?": expected = .query
            case "#": expected = .fragment
            case "A"..."Z": expected = .uppercaseTrustDomain
            default: expected = .badTrustDomainCharacter
            }
            assertInvalid(text, expected)
        }
    }

    func testEveryCharacterInThePath() {
        for value in 0..<256 where value != Int(UInt8(ascii: "/")) {
            let character = String(Character(Unicode.Scalar(UInt8(value))))
            let text = "spiffe://trustdomain/path" + character
            if value < 128, Self.pathBytes.contains(UInt8(value)) {
                assertValid(text, trustDomain: "trustdomain", path: "/path" + character)
                continue
            }
            let expected: SPIFFEIDError
            switch character {
            case "%": expected = .percentEncoded
            case "?": expected = .query
            case "#": expected = .fragment
            default: expected = .badPathCharacter
            }
            assertInvalid(text, expected)
        }
    }

    // MARK: - Invalid, one rule at a time

    func testEmpty() {
        assertInvalid("", .empty)
    }

    func testSchemeMustBeExactlyLowercaseSpiffe() {
        for text in [
            "s", "spiffe", "spiffe:", "spiffe:/", "Spiffe://", "SPIFFE://domain.test/path/element",
            "http://domain.test/path/element", "spiffe:path/element", "spiffe:/path/element",
            "192.168.2.2:6688", " spiffe://domain.test", "spiffe ://domain.test", "//domain.test/path",
            "domain.test/path",
        ] {
            assertInvalid(text, .wrongScheme)
        }
    }

    func testTrustDomainIsRequired() {
        assertInvalid("spiffe://", .missingTrustDomain)
        assertInvalid("spiffe:///", .missingTrustDomain)
        assertInvalid("spiffe:///path/element", .missingTrustDomain)
        assertInvalid("spiffe://?query", .missingTrustDomain)
    }

    func testTrustDomainMustBeLowercase() {
        assertInvalid("spiffe://TrustDomain", .uppercaseTrustDomain)
        assertInvalid("spiffe://PROD.EXAMPLE/x", .uppercaseTrustDomain)
    }

    func testTrustDomainCharacters() {
        assertInvalid("spiffe://trust$domain", .badTrustDomainCharacter)
        assertInvalid("spiffe://tést/x", .badTrustDomainCharacter)
        assertInvalid("spiffe://trust domain/x", .badTrustDomainCharacter)
        assertInvalid("spiffe://[::1]/x", .port)
        assertInvalid("spiffe://td\n", .badTrustDomainCharacter)
    }

    func testNoUserInfoPortQueryOrFragment() {
        assertInvalid("spiffe://user:password@test.org/path/element", .userInfo)
        assertInvalid("spiffe://user@test.org", .userInfo)
        assertInvalid("spiffe://domain.test:8080/path/element", .port)
        assertInvalid("spiffe://domain.test:/path/element", .port)
        assertInvalid("spiffe://domain.test/path/element?query=1", .query)
        assertInvalid("spiffe://domain.test/path/element?#fragment-1", .query)
        assertInvalid("spiffe://domain.test?query=1", .query)
        assertInvalid("spiffe://domain.test/path/element#fragment-1", .fragment)
        assertInvalid("spiffe://domain.test#fragment-1", .fragment)
        assertInvalid("spiffe://domain.test/?", .query)
    }

    func testNoPercentEncoding() {
        assertInvalid("spiffe://%F0%9F%A4%AF/path", .percentEncoded)
        assertInvalid("spiffe://trustdomain/%F0%9F%A4%AF", .percentEncoded)
        assertInvalid("spiffe://%62%61%64/path", .percentEncoded)
        assertInvalid("spiffe://trustdomain/%62%61%64", .percentEncoded)
        assertInvalid("spiffe://domain.test/path/elem%5uent", .percentEncoded)
        assertInvalid("spiffe://domain.test/path/element%5", .percentEncoded)
    }

    func testEmptySegmentsAndTrailingSlash() {
        assertInvalid("spiffe://trustdomain/", .trailingSlash)
        assertInvalid("spiffe://trustdomain//", .emptySegment)
        assertInvalid("spiffe://trustdomain//path", .emptySegment)
        assertInvalid("spiffe://trustdomain/path/", .trailingSlash)
        assertInvalid("spiffe://trustdomain/path//other", .emptySegment)
        assertInvalid("spiffe://domain.test//path/element", .emptySegment)
    }

    func testDotSegments() {
        for text in [
            "spiffe://trustdomain/.", "spiffe://trustdomain/./path", "spiffe://trustdomain/path/./other",
            "spiffe://trustdomain/path/..", "spiffe://trustdomain/..", "spiffe://trustdomain/../path",
            "spiffe://trustdomain/path/../other",
        ] {
            assertInvalid(text, .dotSegment)
        }
    }

    /// URI characters the standard now refuses in a path, though go-spiffe's older URL-based
    /// parser accepted them.
    func testURICharactersOutsideTheSPIFFEPathAlphabet() {
        for text in [
            "spiffe://domain.test/pa:th/element:", "spiffe://domain.test/pa@th/element:",
            "spiffe://domain.test/p!a$t&h'/(e)l*e+m,e;n=t", "spiffe://domain.test/path/elem[ent",
            "spiffe://domain.test/path/elem]ent", "spiffe://domain.test/spiffe://domain.test/path/element",
            "spiffe://domain.test/path/elem~ent", "spiffe://domain.test/a b", "spiffe://domain.test/pathé",
            "spiffe://domain.test/a\\b",
        ] {
            assertInvalid(text, .badPathCharacter)
        }
    }

    func testLengthLimits() {
        let prefix = "spiffe://td/"
        let longest = prefix + String(repeating: "a", count: SPIFFEID.maxLength - prefix.utf8.count)
        XCTAssertEqual(longest.utf8.count, 2048)
        assertValid(longest, trustDomain: "td", path: String(longest.dropFirst("spiffe://td".count)))
        assertInvalid(longest + "a", .tooLong)
        assertInvalid(prefix + String(repeating: "a/", count: 1100) + "a", .tooLong)

        let longestDomain = String(repeating: "a", count: 255)
        assertValid("spiffe://" + longestDomain + "/x", trustDomain: longestDomain, path: "/x")
        assertInvalid("spiffe://" + longestDomain + "a/x", .trustDomainTooLong)
    }

    // MARK: - Identity

    func testEqualityAndHashingFollowTheText() throws {
        let a = try SPIFFEID(parsing: "spiffe://prod.example/ns/a")
        let b = try SPIFFEID(parsing: "spiffe://prod.example/ns/a")
        let c = try SPIFFEID(parsing: "spiffe://prod.example/ns/A")
        XCTAssertEqual(a, b)
        XCTAssertNotEqual(a, c)
        XCTAssertEqual(Set([a, b, c]).count, 2)
        XCTAssertEqual("\(a)", "spiffe://prod.example/ns/a")
    }

    // MARK: - Bare trust domain names

    func testValidateTrustDomain() {
        func assertRefused(_ name: String, _ expected: SPIFFEIDError, line: UInt = #line) {
            do {
                try SPIFFEID.validateTrustDomain(name)
                XCTFail("\(name.debugDescription) accepted", line: line)
            } catch {
                XCTAssertEqual(error, expected, name, line: line)
            }
        }
        for name in ["prod.example", "trustdomain", "a", "a-b_c.0", String(repeating: "x", count: 255)] {
            XCTAssertNoThrow(try SPIFFEID.validateTrustDomain(name), name)
        }
        assertRefused("", .missingTrustDomain)
        assertRefused("Prod.example", .uppercaseTrustDomain)
        assertRefused("prod.example:443", .port)
        assertRefused("user@prod.example", .userInfo)
        assertRefused("prod%2eexample", .percentEncoded)
        assertRefused("prod.example/x", .badTrustDomainCharacter)
        assertRefused("prod.example?x", .badTrustDomainCharacter)
        assertRefused("spiffe://prod.example", .notABareTrustDomain)
        assertRefused(String(repeating: "x", count: 256), .trustDomainTooLong)
    }

    func testEveryErrorHasItsOwnSentence() {
        let sentences = SPIFFEIDError.allCases.map(\.description)
        XCTAssertEqual(Set(sentences).count, SPIFFEIDError.allCases.count)
        for sentence in sentences {
            XCTAssertFalse(sentence.isEmpty)
            XCTAssertEqual(sentence.first?.isUppercase, false, "a sentence fragment for logs: \(sentence)")
        }
        XCTAssertEqual(SPIFFEIDError.uppercaseTrustDomain.description, "the trust domain must be lowercase")
    }
}
