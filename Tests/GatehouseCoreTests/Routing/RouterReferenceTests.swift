import GatehouseCore
import XCTest

/// Compares the trie router with a linear scan that states the rules directly, over many
/// generated route tables and requests.
final class RouterReferenceTests: XCTestCase {
    private struct Route {
        var host: String?
        var path: PathMatch
        var methods: Set<String>?
        var id: Int
    }

    func testMatchesLinearScanOnGeneratedTables() {
        var rng = SplitMix64(seed: 0x726f_7574_6572)
        let segments = ["a", "b", "ab", "c", ""]
        let hosts: [String?] = [nil, nil, "x.example", "y.example"]
        let methodSets: [Set<String>?] = [nil, nil, ["GET"], ["POST"], ["GET", "PUT"]]
        func randomPath(maxSegments: Int) -> String {
            let count = Int.random(in: 0...maxSegments, using: &rng)
            var path = "/" + (0..<count).map { _ in segments.randomElement(using: &rng)! }.joined(separator: "/")
            if count > 0, Bool.random(using: &rng), Int.random(in: 0..<4, using: &rng) == 0 { path += "/" }
            return path
        }

        var matched = 0
        for _ in 0..<300 {
            let routes = (0..<Int.random(in: 0...12, using: &rng)).map { id in
                Route(
                    host: hosts.randomElement(using: &rng)!,
                    path: Bool.random(using: &rng)
                        ? .prefix(randomPath(maxSegments: 3)) : .exact(randomPath(maxSegments: 3)),
                    methods: methodSets.randomElement(using: &rng)!,
                    id: id
                )
            }
            let router = Router<Int>(routes.map { .init(host: $0.host, path: $0.path, methods: $0.methods, payload: $0.id) })
            for _ in 0..<50 {
                let host = ["x.example", "X.Example:443", "y.example", "z.example", nil].randomElement(using: &rng)!
                let path = randomPath(maxSegments: 4)
                let method = ["GET", "POST", "PUT", "DELETE"].randomElement(using: &rng)!
                let expected = Self.linearMatch(routes, host: host, path: path, method: method)
                let actual = router.match(host: host, path: path, method: method)
                if actual != expected {
                    XCTFail("\(host ?? "nil") \(method) \(path): got \(String(describing: actual)), expected \(String(describing: expected)) from \(routes)")
                    return
                }
                if actual != nil { matched += 1 }
            }
        }
        XCTAssertGreaterThan(matched, 1_000, "the generator should produce plenty of matches")
    }

    /// The rules, stated directly: host set first, then host-less; exact beats prefix; the
    /// longest segment-boundary prefix wins; method mismatches are skipped; ties go to the
    /// route declared first.
    private static func linearMatch(_ routes: [Route], host: String?, path: String, method: String) -> Int? {
        func allows(_ route: Route) -> Bool { route.methods?.contains(method) ?? true }
        func prefixLength(_ prefix: String) -> Int? {
            var trimmed = prefix
            if trimmed.hasSuffix("/") { trimmed.removeLast() }
            if trimmed.isEmpty { return 0 }
            guard path.hasPrefix(trimmed) else { return nil }
            let rest = path.dropFirst(trimmed.count)
            guard rest.isEmpty || rest.hasPrefix("/") else { return nil }
            return trimmed.split(separator: "/", omittingEmptySubsequences: false).count
        }
        func search(_ set: [Route]) -> Int? {
            if let exact = set.first(where: { if case .exact(path) = $0.path { return allows($0) } else { return false } }) {
                return exact.id
            }
            var best: (length: Int, id: Int)? = nil
            for route in set where allows(route) {
                guard case .prefix(let prefix) = route.path, let length = prefixLength(prefix) else { continue }
                if best == nil || length > best!.length { best = (length, route.id) }
            }
            return best?.id
        }
        if let host {
            let canonical = Router<Int>.canonicalHost(host)
            if let id = search(routes.filter { $0.host.map(Router<Int>.canonicalHost) == canonical }) { return id }
        }
        return search(routes.filter { $0.host == nil })
    }
}
