import Foundation
import XCTest
@testable import GatehouseCore

/// `ConfigDocument`: the validated config together with the exact text it came from.
final class ConfigDocumentTests: XCTestCase {
    private func directory() throws -> String {
        let path = NSTemporaryDirectory() + "gatehouse-document-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(atPath: path) }
        return path
    }

    private func file(_ dir: String, candidate: String? = nil, secret: String? = nil) -> String {
        """
        environment: dev
        version: v1
        listeners:
          - { name: local, address: "127.0.0.1:8080", insecure_plaintext: true }
        admin: { token: "file:\(dir)/admin-token" }
        upstreams:
          app: { endpoints: ["127.0.0.1:9000"] }
        routes:
          - name: hook
            match: { path: /hook }
            upstream: app
            webhook: { scheme: github, secrets: [env:A, "file:\(secret ?? dir + "/hook")"] }
        \(candidate.map { "rollout: { candidate: \($0), mode: shadow }" } ?? "")
        """
    }

    func testLoadKeepsTheTextsThatWereValidatedAndNamesEveryReferencedFile() throws {
        let dir = try directory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let candidate = dir + "/candidate.yaml"
        let candidateText = "version: c1\nroutes:\n  - { name: a, match: { path: /a }, upstream: app }\n"
        try candidateText.write(toFile: candidate, atomically: true, encoding: .utf8)
        let text = file(dir, candidate: candidate)
        try text.write(toFile: dir + "/g.yaml", atomically: true, encoding: .utf8)

        let document = try ConfigDocument.load(path: dir + "/g.yaml")
        XCTAssertEqual(document.text, text)
        XCTAssertEqual(document.candidateText, candidateText)
        XCTAssertEqual(document.config.version, ConfigDocument.fileSHA256(dir + "/g.yaml"))
        XCTAssertEqual(document.config.rollout?.candidate.sha256, ConfigDocument.fileSHA256(candidate))
        XCTAssertEqual(document.config.referencedFiles, [dir + "/g.yaml", candidate, dir + "/hook", dir + "/admin-token"])
        XCTAssertEqual(document.location(ofSection: "routes"), SourceLocation(file: dir + "/g.yaml", line: 8, column: 1))

        // The same file recovers its document; once it changes, it does not.
        XCTAssertEqual(ConfigDocument(recovering: document.config)?.text, text)
        try (text + "\n# edited\n").write(toFile: dir + "/g.yaml", atomically: true, encoding: .utf8)
        XCTAssertNil(ConfigDocument(recovering: document.config))
    }

    func testAnUnreadableFileIsOneIssueAtLineZero() throws {
        XCTAssertThrowsError(try ConfigDocument.load(path: "/nonexistent/gatehouse.yaml")) { error in
            XCTAssertEqual((error as? ConfigErrors)?.issues.map(\.description),
                ["/nonexistent/gatehouse.yaml:0:0: <root>: cannot read the configuration file (no such file)"])
        }
    }
}
