import Foundation
import GatehouseCore
import XCTest

@testable import GatehouseServer

/// A rollout across live reloads: a reload starts the rollout afresh (a rollback lasts until
/// promoted or reloaded), and a changed candidate file is reloaded like the main file.
final class RolloutReloadTests: XCTestCase {
    private func candidate(version: String, methods: String) -> String {
        """
        version: \(version)
        routes:
          - name: a
            match: { path_prefix: /a, methods: [\(methods)] }
            upstream: app
        """
    }

    func testAReloadStartsTheRolloutAfreshAndPicksUpAChangedCandidate() async throws {
        let fixture = try ReloadFixture()
        let candidatePath = fixture.directory + "/candidate.yaml"
        // The candidate takes GET away from /a: every request is its (canary 100%, per request).
        try fixture.write(candidate(version: "v2", methods: "POST"), to: candidatePath)
        try fixture.write(fixture.config(version: "v1", routes: ReloadFixture.route("a", prefix: "/a"), extra: """
            rollout: { candidate: \(candidatePath), mode: canary, percent: 100, cohort: request }
            """))
        try await fixture.start()
        defer { Task { await fixture.shutdown() } }
        XCTAssertEqual(try fixture.get("/a/1").status, 404, "the candidate decides")

        XCTAssertTrue(fixture.gateway.rollBackRollout())
        XCTAssertEqual(try fixture.get("/a/2").status, 200, "rolled back: the stable policy decides")

        guard case .applied = await fixture.gateway.reloadConfig() else { return XCTFail("the same file must reload") }
        XCTAssertEqual(try fixture.get("/a/3").status, 404, "a reload starts the rollout again")

        try fixture.write(candidate(version: "v3", methods: "GET, POST"), to: candidatePath)
        guard case .applied = await fixture.gateway.reloadConfig() else { return XCTFail("the new candidate must load") }
        XCTAssertEqual(try fixture.get("/a/4").status, 200)

        // A broken candidate is a failed reload: the running pair stays.
        try fixture.write("version: v4\nroutes: [ { name: a } ]\n", to: candidatePath)
        guard case .failed(let issues) = await fixture.gateway.reloadConfig() else { return XCTFail("a broken candidate was applied") }
        XCTAssertTrue(issues.allSatisfy { $0.location.file == candidatePath }, issues.description)
        XCTAssertEqual(try fixture.get("/a/5").status, 200)

        let records = fixture.records().filter { $0["decision"] != nil }
        XCTAssertEqual(records.map(\.policyVersion), ["v2", "v1", "v2", "v3", "v3"])
        XCTAssertEqual(records.map { ($0["policy"] as? [String: Any])?["cohort"] as? String }, [
            "candidate", "stable", "candidate", "candidate", "candidate",
        ])
    }
}
