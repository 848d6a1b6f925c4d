import GatehouseCore
import XCTest

final class RouterTests: XCTestCase {
    private typealias R = Router<String>

    private func router(_ entries: [R.Entry]) -> R { R(entries) }

    private func entry(
        _ name: String,
        host: String? = nil,
        prefix: String? = nil,
        exact: String? = nil,
        methods: Set<String>? = nil
    ) -> R.Entry {
        let path: PathMatch = exact.map { .exact($0) } ?? .prefix(prefix ?? "/")
        return R.Entry(host: host, path: path, methods: methods, payload: name)
    }

    func testNoRoutesMatchNothing() {
        let router = self.router([])
        XCTAssertNil(router.match(host: "x", path: "/", method: "GET"))
        XCTAssertNil(router.match(host: nil, path: "/a", method: "GET"))
    }

    func testNoMatchIsNil() {
        let router = self.router([entry("billing", prefix: "/billing"), entry("exact", exact: "/health")])
        XCTAssertNil(router.match(host: nil, path: "/", method: "GET"))
        XCTAssertNil(router.match(host: nil, path: "/other", method: "GET"))
        XCTAssertNil(router.match(host: nil, path: "/health/x", method: "GET"))
        XCTAssertNil(router.match(host: nil, path: "/healthz", method: "GET"))
    }

    func testPrefixMatchesAtSegmentBoundaries() {
        for prefix in ["/billing", "/billing/"] {
            let router = self.router([entry("billing", prefix: prefix)])
            for path in ["/billing", "/billing/", "/billing/x", "/billing/x/y/z", "/billing//x"] {
                XCTAssertEqual(router.match(host: nil, path: path, method: "GET"), "billing", "\(prefix) vs \(path)")
            }
            for path in ["/billingx", "/billin", "/", "/x/billing", "//billing", ""] {
                XCTAssertNil(router.match(host: nil, path: path, method: "GET"), "\(prefix) vs \(path)")
            }
        }
    }

    func testMultiSegmentPrefix() {
        let router = self.router([entry("ab", prefix: "/a/b")])
        XCTAssertEqual(router.match(host: nil, path: "/a/b", method: "GET"), "ab")
        XCTAssertEqual(router.match(host: nil, path: "/a/b/c", method: "GET"), "ab")
        XCTAssertNil(router.match(host: nil, path: "/a", method: "GET"))
        XCTAssertNil(router.match(host: nil, path: "/a/", method: "GET"))
        XCTAssertNil(router.match(host: nil, path: "/a/bc", method: "GET"))
    }

    func testEmptySegmentsInPrefixesAreKept() {
        // A doubled slash is not the root: it matches only paths with the same empty segment.
        let router = self.router([entry("double", prefix: "//"), entry("inner", prefix: "/a//b")])
        XCTAssertEqual(router.match(host: nil, path: "//x", method: "GET"), "double")
        XCTAssertEqual(router.match(host: nil, path: "//", method: "GET"), "double")
        XCTAssertNil(router.match(host: nil, path: "/x", method: "GET"))
        XCTAssertEqual(router.match(host: nil, path: "/a//b/c", method: "GET"), "inner")
        XCTAssertNil(router.match(host: nil, path: "/a/b/c", method: "GET"))
    }

    func testRootRouteMatchesEverything() {
        let router = self.router([entry("root", prefix: "/"), entry("api", prefix: "/api")])
        XCTAssertEqual(router.match(host: nil, path: "/", method: "GET"), "root")
        XCTAssertEqual(router.match(host: nil, path: "/anything/at/all", method: "DELETE"), "root")
        XCTAssertEqual(router.match(host: nil, path: "/apix", method: "GET"), "root")
        XCTAssertEqual(router.match(host: nil, path: "/api/v1", method: "GET"), "api")
        // An empty prefix behaves like "/".
        XCTAssertEqual(self.router([entry("empty", prefix: "")]).match(host: nil, path: "/q", method: "GET"), "empty")
    }

    func testLongestPrefixWinsRegardlessOfOrder() {
        let entries = [entry("a", prefix: "/a"), entry("abc", prefix: "/a/b/c"), entry("ab", prefix: "/a/b")]
        for ordering in [entries, entries.reversed()] {
            let router = self.router(ordering)
            XCTAssertEqual(router.match(host: nil, path: "/a/b/c/d", method: "GET"), "abc")
            XCTAssertEqual(router.match(host: nil, path: "/a/b/c", method: "GET"), "abc")
            XCTAssertEqual(router.match(host: nil, path: "/a/b/x", method: "GET"), "ab")
            XCTAssertEqual(router.match(host: nil, path: "/a/bc", method: "GET"), "a")
            XCTAssertEqual(router.match(host: nil, path: "/a", method: "GET"), "a")
        }
    }

    func testExactBeatsPrefix() {
        let router = self.router([
            entry("deep-prefix", prefix: "/a/b/c"),
            entry("exact", exact: "/a/b/c"),
            entry("prefix", prefix: "/a"),
        ])
        XCTAssertEqual(router.match(host: nil, path: "/a/b/c", method: "GET"), "exact")
        XCTAssertEqual(router.match(host: nil, path: "/a/b/c/", method: "GET"), "deep-prefix")  // exact is literal
        XCTAssertEqual(router.match(host: nil, path: "/a/b/c/d", method: "GET"), "deep-prefix")
        XCTAssertEqual(router.match(host: nil, path: "/a/b", method: "GET"), "prefix")
    }

    func testExactWithTrailingSlashIsLiteral() {
        let router = self.router([entry("slash", exact: "/a/")])
        XCTAssertEqual(router.match(host: nil, path: "/a/", method: "GET"), "slash")
        XCTAssertNil(router.match(host: nil, path: "/a", method: "GET"))
    }

    func testMethodMismatchFallsThroughToShorterPrefix() {
        let router = self.router([
            entry("get-ab", prefix: "/a/b", methods: ["GET"]),
            entry("any-a", prefix: "/a"),
        ])
        XCTAssertEqual(router.match(host: nil, path: "/a/b/c", method: "GET"), "get-ab")
        XCTAssertEqual(router.match(host: nil, path: "/a/b/c", method: "POST"), "any-a")
        XCTAssertEqual(router.match(host: nil, path: "/a/b", method: "POST"), "any-a")
    }

    func testMethodMismatchEverywhereIsNil() {
        let router = self.router([
            entry("get-ab", prefix: "/a/b", methods: ["GET"]),
            entry("head-a", prefix: "/a", methods: ["HEAD"]),
            entry("get-exact", exact: "/a/b", methods: ["GET"]),
        ])
        XCTAssertNil(router.match(host: nil, path: "/a/b", method: "POST"))
        XCTAssertEqual(router.match(host: nil, path: "/a/b", method: "HEAD"), "head-a")
        XCTAssertEqual(router.match(host: nil, path: "/a/b", method: "GET"), "get-exact")
    }

    func testExactMethodMismatchFallsBackToPrefix() {
        let router = self.router([
            entry("exact-post", exact: "/hook", methods: ["POST"]),
            entry("root", prefix: "/"),
        ])
        XCTAssertEqual(router.match(host: nil, path: "/hook", method: "POST"), "exact-post")
        XCTAssertEqual(router.match(host: nil, path: "/hook", method: "GET"), "root")
    }

    func testSamePathDifferentMethodsAndDeclarationOrder() {
        let router = self.router([
            entry("read", prefix: "/items", methods: ["GET", "HEAD"]),
            entry("write", prefix: "/items", methods: ["POST", "PUT"]),
            entry("shadowed", prefix: "/items", methods: ["GET"]),
            entry("any", prefix: "/items/"),
        ])
        XCTAssertEqual(router.match(host: nil, path: "/items/1", method: "GET"), "read")
        XCTAssertEqual(router.match(host: nil, path: "/items/1", method: "PUT"), "write")
        XCTAssertEqual(router.match(host: nil, path: "/items/1", method: "DELETE"), "any")
        // Methods are compared exactly: the loader uppercases them.
        XCTAssertEqual(router.match(host: nil, path: "/items/1", method: "get"), "any")
    }

    func testHostSpecificRoutesFirstThenFallback() {
        let router = self.router([
            entry("api-billing", host: "api.example.com", prefix: "/billing"),
            entry("api-admin-get", host: "api.example.com", prefix: "/admin", methods: ["GET"]),
            entry("any-billing", prefix: "/billing"),
            entry("any-root", prefix: "/"),
            entry("other-host", host: "other.example.com", prefix: "/"),
        ])
        XCTAssertEqual(router.match(host: "api.example.com", path: "/billing/x", method: "GET"), "api-billing")
        XCTAssertEqual(router.match(host: "API.Example.COM:8443", path: "/billing/x", method: "GET"), "api-billing")
        XCTAssertEqual(router.match(host: "api.example.com.", path: "/billing", method: "GET"), "api-billing")
        // Nothing in the host's set: host-less routes.
        XCTAssertEqual(router.match(host: "api.example.com", path: "/other", method: "GET"), "any-root")
        // Method mismatch in the host's set also falls back to host-less routes.
        XCTAssertEqual(router.match(host: "api.example.com", path: "/admin", method: "GET"), "api-admin-get")
        XCTAssertEqual(router.match(host: "api.example.com", path: "/admin", method: "POST"), "any-root")
        // Unknown host or no host: host-less routes only.
        XCTAssertEqual(router.match(host: "unknown.example.com", path: "/billing", method: "GET"), "any-billing")
        XCTAssertEqual(router.match(host: nil, path: "/billing", method: "GET"), "any-billing")
        XCTAssertEqual(router.match(host: "other.example.com", path: "/billing", method: "GET"), "other-host")
        // A host-specific route never serves a different host, even one with it as suffix.
        XCTAssertEqual(router.match(host: "evil-api.example.com", path: "/billing", method: "GET"), "any-billing")
    }

    func testHostOnlyRoutesWithoutFallback() {
        let router = self.router([entry("api", host: "Api.Example.com:443", prefix: "/")])
        XCTAssertEqual(router.match(host: "api.example.com", path: "/x", method: "GET"), "api")
        XCTAssertNil(router.match(host: "www.example.com", path: "/x", method: "GET"))
        XCTAssertNil(router.match(host: nil, path: "/x", method: "GET"))
    }

    func testCanonicalHost() {
        XCTAssertEqual(R.canonicalHost("example.com"), "example.com")
        XCTAssertEqual(R.canonicalHost("Example.COM"), "example.com")
        XCTAssertEqual(R.canonicalHost("example.com:8080"), "example.com")
        XCTAssertEqual(R.canonicalHost("EXAMPLE.com:8080"), "example.com")
        XCTAssertEqual(R.canonicalHost("example.com."), "example.com")
        XCTAssertEqual(R.canonicalHost("example.com.:443"), "example.com")
        XCTAssertEqual(R.canonicalHost("127.0.0.1:443"), "127.0.0.1")
        XCTAssertEqual(R.canonicalHost("[::1]:8443"), "[::1]")
        XCTAssertEqual(R.canonicalHost("[::1]"), "[::1]")
        XCTAssertEqual(R.canonicalHost("[FE80::1]"), "[fe80::1]")
        XCTAssertEqual(R.canonicalHost(""), "")
        XCTAssertEqual(R.canonicalHost(":80"), "")
    }

    func testTenThousandRoutes() {
        var entries: [R.Entry] = []
        for i in 0..<10_000 {
            let service = i % 100
            let version = i / 100
            entries.append(entry("svc\(service)-v\(version)", prefix: "/svc\(service)/v\(version)"))
        }
        for service in 0..<100 {
            entries.append(entry("svc\(service)", prefix: "/svc\(service)"))
            entries.append(entry("svc\(service)-health", exact: "/svc\(service)/health"))
        }
        entries.append(entry("root", prefix: "/"))
        let router = self.router(entries)

        for i in stride(from: 0, to: 10_000, by: 7) {
            let service = i % 100
            let version = i / 100
            XCTAssertEqual(router.match(host: nil, path: "/svc\(service)/v\(version)/items/\(i)", method: "GET"), "svc\(service)-v\(version)")
            XCTAssertEqual(router.match(host: nil, path: "/svc\(service)/v\(version)", method: "GET"), "svc\(service)-v\(version)")
            XCTAssertEqual(router.match(host: nil, path: "/svc\(service)/v\(version)x", method: "GET"), "svc\(service)")
        }
        for service in 0..<100 {
            XCTAssertEqual(router.match(host: nil, path: "/svc\(service)/health", method: "GET"), "svc\(service)-health")
            XCTAssertEqual(router.match(host: nil, path: "/svc\(service)/v100", method: "GET"), "svc\(service)")
        }
        XCTAssertEqual(router.match(host: nil, path: "/svc100/v0", method: "GET"), "root")
        XCTAssertEqual(router.match(host: nil, path: "/", method: "GET"), "root")
    }

    func testTupleInitializer() {
        let router = Router<Int>(entries: [
            (host: nil, path: .prefix("/a"), methods: nil, payload: 1),
            (host: "h", path: .exact("/a"), methods: ["GET"], payload: 2),
        ])
        XCTAssertEqual(router.match(host: "h", path: "/a", method: "GET"), 2)
        XCTAssertEqual(router.match(host: "h", path: "/a", method: "PUT"), 1)
    }

    func testRouterIsSendable() {
        let router = self.router([entry("a", prefix: "/a")])
        let check: @Sendable () -> String? = { router.match(host: nil, path: "/a", method: "GET") }
        XCTAssertEqual(check(), "a")
    }
}
