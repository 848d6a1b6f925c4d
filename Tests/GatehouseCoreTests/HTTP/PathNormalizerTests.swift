import GatehouseCore
import XCTest

final class PathNormalizerTests: XCTestCase {
    private enum Expect {
        case ok(String, query: String? = nil)
        case reject(PathRejection)
    }

    private struct Case {
        var input: String
        var expect: Expect
        var mergeSlashes = false
        var line: UInt
    }

    private func ok(_ input: String, _ path: String, query: String? = nil, merge: Bool = false, line: UInt = #line) -> Case {
        Case(input: input, expect: .ok(path, query: query), mergeSlashes: merge, line: line)
    }

    private func no(_ input: String, _ rejection: PathRejection, merge: Bool = false, line: UInt = #line) -> Case {
        Case(input: input, expect: .reject(rejection), mergeSlashes: merge, line: line)
    }

    private var table: [Case] {
        [
            // Already normal.
            ok("/", "/"),
            ok("/a", "/a"),
            ok("/a/b/c", "/a/b/c"),
            ok("/a/b/", "/a/b/"),
            ok("/a.b/c..d/...", "/a.b/c..d/..."),  // only exact "." / ".." are dot-segments
            ok("/.well-known/acme", "/.well-known/acme"),
            ok("/a:b@c!$&'()*+,;=", "/a:b@c!$&'()*+,;="),
            // Query: raw, untouched, split at the first "?".
            ok("/a?b=../..", "/a", query: "b=../.."),
            ok("/a?", "/a", query: ""),
            ok("/?x=1", "/", query: "x=1"),
            ok("/a/./b?q=%2F%zz?again", "/a/b", query: "q=%2F%zz?again"),
            ok("/a%2e?%2e", "/a.", query: "%2e"),
            // Percent-decoding of unreserved characters only.
            ok("/%7Euser", "/~user"),
            ok("/%7euser", "/~user"),
            ok("/a%2Db", "/a-b"),
            ok("/%41%62%5F%30", "/Ab_0"),
            ok("/a%20b", "/a%20b"),
            ok("/a%c3%a9", "/a%C3%A9"),
            ok("/a%3f", "/a%3F"),  // an encoded "?" stays encoded and stays in the path
            ok("/a%25", "/a%25"),  // an encoded "%" is not decoded (no double decoding)
            ok("/a%252F", "/a%252F"),
            // Dot-segments.
            ok("/a/./b/../c", "/a/c"),
            ok("/a/..", "/"),
            ok("/a/../", "/"),
            ok("/a/b/.", "/a/b/"),
            ok("/a/b/..", "/a/"),
            ok("/.", "/"),
            ok("/./", "/"),
            ok("/a/b/../../c", "/c"),
            ok("/a/%2e%2e/b", "/b"),
            ok("/a/%2E/b", "/a/b"),
            ok("/a/.%2e/b", "/b"),
            ok("/a//..", "/a/"),
            ok("/a/b/c/../../../", "/"),
            // Slashes.
            ok("/a//b", "/a//b"),
            ok("/a//b", "/a/b", merge: true),
            ok("//", "//"),
            ok("//", "/", merge: true),
            ok("///a///b///", "/a/b/", merge: true),
            ok("/a/", "/a/", merge: true),
            ok("/a/.//b", "/a//b"),
            ok("/a/.//b", "/a/b", merge: true),
            // Not origin-form.
            no("", .notOriginForm),
            no("*", .notOriginForm),
            no("http://x/a", .notOriginForm),
            no("example.com:443", .notOriginForm),
            no("a/b", .notOriginForm),
            no("?x", .notOriginForm),
            // Bad bytes.
            no("/a b", .controlCharacter),
            no("/a\tb", .controlCharacter),
            no("/a\u{7F}", .controlCharacter),
            no("/a\r\n", .controlCharacter),
            no("/a\u{0}", .controlCharacter),
            no("/a?b c", .controlCharacter),
            no("/é", .nonASCII),
            no("/a?é", .nonASCII),
            no(" /a", .controlCharacter),
            no("/a#frag", .fragment),
            no("/a?b#c", .fragment),
            // Escapes.
            no("/a%zz", .invalidPercentEncoding),
            no("/a%", .invalidPercentEncoding),
            no("/a%2", .invalidPercentEncoding),
            no("/a%2?x", .invalidPercentEncoding),
            no("/a%%41", .invalidPercentEncoding),
            no("/a/%2fb", .encodedSlash),
            no("/a/%2Fb", .encodedSlash),
            no("/a/..%2F..", .encodedSlash),
            no("/a%5cb", .encodedBackslash),
            no("/a/%00", .encodedNul),
            no("/a\\b", .rawBackslash),
            // Climbing above the root.
            no("/..", .climbsAboveRoot),
            no("/../a", .climbsAboveRoot),
            no("/%2e%2e/x", .climbsAboveRoot),
            no("/a/../..", .climbsAboveRoot),
            no("/a/b/../../../c", .climbsAboveRoot),
            no("/./..", .climbsAboveRoot),
            no("//..//..//..", .climbsAboveRoot, merge: true),
        ]
    }

    func testTable() {
        let cases = self.table
        XCTAssertGreaterThanOrEqual(cases.count, 40)
        for testCase in cases {
            let result = PathNormalizer(mergeSlashes: testCase.mergeSlashes).normalize(testCase.input)
            switch (testCase.expect, result) {
            case (.ok(let path, let query), .success(let target)):
                XCTAssertEqual(target, NormalizedTarget(path: path, query: query), "input \(testCase.input.debugDescription)", line: testCase.line)
            case (.reject(let expected), .failure(let rejection)):
                XCTAssertEqual(rejection, expected, "input \(testCase.input.debugDescription)", line: testCase.line)
            default:
                XCTFail("input \(testCase.input.debugDescription): expected \(testCase.expect), got \(result)", line: testCase.line)
            }
        }
    }

    func testSegmentLimit() {
        let atLimit = String(repeating: "/a", count: PathNormalizer.maxSegments)
        XCTAssertEqual(PathNormalizer().normalize(atLimit), .success(NormalizedTarget(path: atLimit)))
        let overLimit = atLimit + "/a"
        XCTAssertEqual(PathNormalizer().normalize(overLimit), .failure(.tooManySegments))
        // Slashes count whether or not they are merged later, so work stays bounded.
        let manySlashes = "/" + String(repeating: "/", count: PathNormalizer.maxSegments)
        XCTAssertEqual(PathNormalizer(mergeSlashes: true).normalize(manySlashes), .failure(.tooManySegments))
        // Slashes in the query are not segments.
        let longQuery = "/a?" + String(repeating: "/", count: 2000)
        XCTAssertEqual(PathNormalizer().normalize(longQuery).map(\.path), .success("/a"))
    }

    func testNormalizingIsIdempotent() {
        let inputs = ["/a/./b/../c", "/%7Euser/%c3%a9", "/a//b/", "/x/%2e/y/..", "/a%2Db%20c"]
        for merge in [false, true] {
            let normalizer = PathNormalizer(mergeSlashes: merge)
            for input in inputs {
                guard case .success(let once) = normalizer.normalize(input) else {
                    XCTFail("\(input) rejected")
                    continue
                }
                XCTAssertEqual(normalizer.normalize(once.path), .success(once), input)
            }
        }
    }

    func testEveryDecodedEscapeIsUnreservedAndEveryKeptEscapeIsUppercase() {
        for value in 1...0x7F where value != 0x2F && value != 0x5C {
            let hex = String(value, radix: 16)
            let escape = "%" + (hex.count == 1 ? "0" + hex : hex)
            guard case .success(let target) = PathNormalizer().normalize("/x" + escape) else {
                XCTFail("\(escape) rejected")
                continue
            }
            let scalar = Unicode.Scalar(UInt8(value))
            let unreserved = scalar.properties.isASCIIHexDigit || ("a"..."z").contains(scalar) || ("A"..."Z").contains(scalar)
                || ("0"..."9").contains(scalar) || "-._~".unicodeScalars.contains(scalar)
            if unreserved {
                XCTAssertEqual(target.path, "/x" + String(Character(scalar)), escape)
            } else {
                XCTAssertEqual(target.path, "/x" + escape.uppercased(), escape)
            }
        }
    }

    func testLongNormalPathIsReturnedUnchanged() {
        let path = "/" + (0..<100).map { "segment\($0)" }.joined(separator: "/")
        let result = PathNormalizer().normalize(path)
        XCTAssertEqual(result, .success(NormalizedTarget(path: path)))
        // Without a query, an already-normal target is returned as is: same storage, no copy.
        func baseAddress(_ string: String) -> UnsafeRawPointer? {
            string.utf8.withContiguousStorageIfAvailable { UnsafeRawPointer($0.baseAddress) } ?? nil
        }
        if case .success(let target) = result {
            XCTAssertNotNil(baseAddress(path))
            XCTAssertEqual(baseAddress(target.path), baseAddress(path))
        }
    }
}
