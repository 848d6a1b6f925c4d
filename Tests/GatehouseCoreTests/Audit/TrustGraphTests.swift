import XCTest
@testable import GatehouseCore

final class TrustGraphTests: XCTestCase {
    private func graph() throws -> TrustGraph {
        TrustGraph(try ConfigLoader.load(path: AuditFixtures.directory.appendingPathComponent("clean.yaml").path))
    }

    func testCallersRoutesAndHopIdentities() throws {
        let graph = try graph()
        XCTAssertEqual(graph.callers.map(\.label), [
            "spiffe://prod.example/ns/shop/*", "token corp (https://idp.prod.example)", "webhook github sender (1 key(s), route hook)",
        ])
        XCTAssertEqual(graph.routes.map(\.name), ["orders", "ledger", "hook"])
        XCTAssertEqual(graph.upstreams.map(\.hop), [.plaintext, .mtlsSPIFFE])
        XCTAssertTrue(graph.edges.contains(.init(from: "c1", to: "r1", label: "scopes: ledger.write")))
        XCTAssertTrue(graph.edges.contains(.init(from: "r1", to: "u1", label: "")))
    }

    /// The same config always renders the same bytes, in every format.
    func testRenderingIsDeterministic() throws {
        let (a, b) = (try graph(), try graph())
        XCTAssertEqual(a.mermaid(), b.mermaid())
        XCTAssertEqual(a.dot(), b.dot())
        XCTAssertEqual(a.json(), b.json())
        XCTAssertTrue(a.mermaid().hasPrefix("flowchart LR\n"))
        XCTAssertTrue(a.mermaid().contains("  c1 -- \"scopes: ledger.write\" --> r1\n"), a.mermaid())
        XCTAssertTrue(a.dot().contains("u1 [label=\"ledger\\nmTLS+SPIFFE\"];"), a.dot())
    }
}
