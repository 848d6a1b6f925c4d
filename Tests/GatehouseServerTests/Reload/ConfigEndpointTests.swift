import Foundation
@testable import GatehouseCore
import XCTest
@testable import GatehouseServer

/// `GET /config` on the admin listener: the running configuration, redacted, with its version and hash.
final class ConfigEndpointTests: XCTestCase {
    func testConfigShowsTheRunningFileWithEverySecretRedacted() async throws {
        let fixture = try ReloadFixture()
        let secretFile = fixture.directory + "/hook-secret"
        try fixture.write("old-secret-value", to: secretFile)
        let candidate = fixture.directory + "/candidate.yaml"
        try fixture.write("""
            version: cand-1
            routes:
              - name: hook
                match: { path: /hook }
                upstream: app
                webhook: { scheme: github, secrets: [env:CANDIDATE_HOOK_SECRET] }
            """, to: candidate)
        let routes = ReloadFixture.route("a", prefix: "/a") + """

              - name: hook
                match: { path: /hook }
                upstream: app
                webhook: { scheme: github, secrets: [env:RELOAD_HOOK_SECRET, "file:\(secretFile)"] }
            """
        try fixture.write(fixture.config(version: "v1", routes: routes, extra: """
            rollout:
              candidate: \(candidate)
              mode: shadow
            """).replacingOccurrences(of: "admin:\n  address: 127.0.0.1:0", with: "admin:\n  address: 127.0.0.1:0\n  token: env:RELOAD_ADMIN_TOKEN"))
        let environment = [
            "RELOAD_HOOK_SECRET": "hook-secret-value", "CANDIDATE_HOOK_SECRET": "candidate-secret-value",
            "RELOAD_ADMIN_TOKEN": "admin-token-value",
        ]
        try await fixture.start(environment: environment)
        defer { Task { await fixture.shutdown() } }

        let response = try fixture.admin("/config")
        XCTAssertEqual(response.status, 200)
        XCTAssertEqual(response.header("content-type"), "application/json")
        XCTAssertEqual(response.header("cache-control"), "no-store")
        let body = response.body
        for secret in [
            "RELOAD_HOOK_SECRET", "CANDIDATE_HOOK_SECRET", "RELOAD_ADMIN_TOKEN", "hook-secret", "env:", "file:",
            "hook-secret-value", "candidate-secret-value", "admin-token-value", "old-secret-value",
        ] {
            XCTAssertFalse(body.contains(secret), "`\(secret)` appears in /config: \(body)")
        }
        let json = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any])
        XCTAssertEqual(json["version"] as? String, "v1")
        XCTAssertEqual(json["sha256"] as? String, ConfigDocument.fileSHA256(fixture.configPath))
        XCTAssertEqual(json["source"] as? String, fixture.configPath)
        XCTAssertEqual(json["environment"] as? String, "test")
        let config = try XCTUnwrap(json["config"] as? [String: Any])
        XCTAssertEqual((config["admin"] as? [String: Any])?["token"] as? String, "<redacted>")
        let hook = try XCTUnwrap((config["routes"] as? [[String: Any]])?.last)
        XCTAssertEqual((hook["webhook"] as? [String: Any])?["secrets"] as? [String], ["<redacted>", "<redacted>"])
        XCTAssertEqual((hook["webhook"] as? [String: Any])?["scheme"] as? String, "github")
        let listener = try XCTUnwrap((config["listeners"] as? [[String: Any]])?.first)
        XCTAssertEqual(listener["max_connections"] as? Int, 10_000)
        XCTAssertEqual(listener["insecure_plaintext"] as? Bool, true)
        let rollout = try XCTUnwrap(json["candidate"] as? [String: Any])
        XCTAssertEqual(rollout["version"] as? String, "cand-1")
        XCTAssertEqual(rollout["sha256"] as? String, ConfigDocument.fileSHA256(candidate))
        XCTAssertEqual(rollout["source"] as? String, candidate)
        let candidateHook = try XCTUnwrap(((rollout["config"] as? [String: Any])?["routes"] as? [[String: Any]])?.first)
        XCTAssertEqual((candidateHook["webhook"] as? [String: Any])?["secrets"] as? [String], ["<redacted>"])

        // After a reload it shows the new file; a failed reload leaves it on the running one.
        try fixture.write(fixture.config(version: "v2", routes: ReloadFixture.route("a", prefix: "/a")))
        let reload1 = await fixture.gateway.reloadConfig()
        XCTAssertEqual(reload1.succeeded, false, "the admin token section changed")
        XCTAssertTrue(try fixture.admin("/config").body.contains(#""version":"v1""#))
        try fixture.write(fixture.config(version: "v2", routes: ReloadFixture.route("a", prefix: "/a"))
            .replacingOccurrences(of: "admin:\n  address: 127.0.0.1:0", with: "admin:\n  address: 127.0.0.1:0\n  token: env:RELOAD_ADMIN_TOKEN"))
        let reload2 = await fixture.gateway.reloadConfig()
        XCTAssertEqual(reload2.succeeded, true)
        let reloaded = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(fixture.admin("/config").body.utf8)) as? [String: Any])
        XCTAssertEqual(reloaded["version"] as? String, "v2")
        XCTAssertEqual(reloaded["sha256"] as? String, ConfigDocument.fileSHA256(fixture.configPath))
        XCTAssertTrue(reloaded["candidate"] is NSNull)
    }

    func testRedactionCoversEverySecretKeyAndAnyReferenceWherever() throws {
        let yaml = """
            listeners: [{ name: p, tls: { certificate: /c.pem, private_key: "file:/k.pem" } }]
            state: { backend: redis, password: env:REDIS_PASSWORD, tls: { private_key: env:REDIS_KEY } }
            issuers: { hs: { hmac_secret: env:HS, revoked: /r.txt } }
            token_minting: { private_key: "file:/mint.pem" }
            upstreams: { u: { tls: { private_key: env:UPSTREAM_KEY, server_name: &ref env:ALIASED } } }
            routes:
              - token: { issuers: [hs], scopes: [read] }
                webhook: { public_keys: ["file:/pub"], secrets: [env:S] }
                note: *ref
                size: 1_000
            """
        var out: [UInt8] = []
        ConfigRedaction.appendTree(yaml: yaml, to: &out)
        let text = String(decoding: out, as: UTF8.self)
        for leak in ["k.pem", "REDIS", "HS\"", "mint.pem", "UPSTREAM_KEY", "ALIASED", "/pub", "env:", "file:"] {
            XCTAssertFalse(text.contains(leak), "`\(leak)` in \(text)")
        }
        let json = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(out)) as? [String: Any])
        let route = try XCTUnwrap((json["routes"] as? [[String: Any]])?.first)
        // A route's `token:` requirements are not secrets: only references are.
        XCTAssertEqual((route["token"] as? [String: Any])?["scopes"] as? [String], ["read"])
        XCTAssertEqual(route["size"] as? Int, 1000)
        XCTAssertEqual(route["note"] as? String, "<redacted>")
        XCTAssertEqual(((json["issuers"] as? [String: Any])?["hs"] as? [String: Any])?["revoked"] as? String, "/r.txt")
    }
}
