import Foundation
import XCTest

/// The `gatehouse` executable as an operator runs it: exit codes, error output, signals.
final class CommandLineTests: XCTestCase {
    /// The binary `swift build` put next to the test bundle.
    private var binary: String {
        // On Linux the bundle URL is the products directory itself; on macOS it is the .xctest inside it.
        let bundle = Bundle(for: Self.self).bundleURL
        let candidates = [bundle.appendingPathComponent("gatehouse"), bundle.deletingLastPathComponent().appendingPathComponent("gatehouse")]
        return (candidates.first { FileManager.default.isExecutableFile(atPath: $0.path) } ?? candidates[0]).path
    }

    private func temporaryDirectory() throws -> String {
        let path = NSTemporaryDirectory() + "gatehouse-cli-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    func testCheckPrintsEveryProblemWithFileLineAndKeyAndExits1() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let file = directory + "/bad.yaml"
        try """
            environment: prod
            listeners:
              - name: public
                adress: 127.0.0.1:8443
                insecure_plaintext: true
            upstreams: {}
            routes:
              - name: r
                match: { path_prefix: /x }
                upstream: missing
            """.write(toFile: file, atomically: true, encoding: .utf8)
        let result = try Shell.run(binary, ["check", "--config", file])
        XCTAssertEqual(result.status, 1)
        let lines = result.stderr.split(separator: "\n").map(String.init)
        XCTAssertTrue(lines.contains { $0.hasPrefix("\(file):4:5: listeners[0].adress: unknown key") }, result.stderr)
        XCTAssertTrue(lines.contains { $0.hasPrefix("\(file):10:15: routes[0].upstream:") }, result.stderr)
    }

    func testCheckLoadsTrustBundlesAndNamesTheKeyOfOneThatFails() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let file = directory + "/bundle.yaml"
        try "not a certificate\n".write(toFile: directory + "/garbage.pem", atomically: true, encoding: .utf8)
        try """
            environment: prod
            trust_domains:
              prod.example:
                bundle: \(directory)/garbage.pem
            listeners:
              - name: local
                address: 127.0.0.1:0
                insecure_plaintext: true
            upstreams:
              app: { endpoints: ["127.0.0.1:9"] }
            routes:
              - name: all
                match: { path_prefix: / }
                upstream: app
                peers: ["spiffe://prod.example/*"]
            """.write(toFile: file, atomically: true, encoding: .utf8)
        let result = try Shell.run(binary, ["check", "--config", file])
        XCTAssertEqual(result.status, 1)
        XCTAssertTrue(
            result.stderr.hasPrefix("\(file):4:13: trust_domains.prod.example.bundle: \(directory)/garbage.pem: no CERTIFICATE block"),
            result.stderr)
    }

    func testTokenVerifyRunsTheRoutesRequirementOnAStdinToken() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let file = directory + "/tokens.yaml"
        try """
            environment: prod
            issuers:
              idp:
                issuer: https://idp.test
                jwks_file: \(try TestTokens.jwksFile(for: self))
                audiences: [billing]
            listeners:
              - name: local
                address: 127.0.0.1:0
                insecure_plaintext: true
            upstreams:
              app: { endpoints: ["127.0.0.1:9"] }
            routes:
              - name: invoices
                match: { path_prefix: / }
                upstream: app
                token: { issuer: idp, scopes: [invoices.read] }
            """.write(toFile: file, atomically: true, encoding: .utf8)
        let good = try Shell.run(binary, ["token", "verify", "--config", file, "--route", "invoices"], stdin: Data(try TestTokens.token().utf8))
        XCTAssertEqual(good.status, 0, good.stdout + good.stderr)
        XCTAssertTrue(good.stdout.hasPrefix("accepted: issuer idp (iss https://idp.test)"), good.stdout)
        XCTAssertTrue(good.stdout.contains("sub: alice"), good.stdout)

        let wrongAudience = try TestTokens.token(["aud": #""payroll""#])
        let bad = try Shell.run(binary, ["token", "verify", "--config", file, "--route", "invoices"], stdin: Data(wrongAudience.utf8))
        XCTAssertEqual(bad.status, 1)
        XCTAssertTrue(bad.stdout.hasPrefix("refused: token.audience_mismatch (401)"), bad.stdout)
        XCTAssertFalse(bad.stdout.contains(wrongAudience), "never echoes the token")

        // --at: the same good token, an hour later, has expired.
        let later = Int(Date().timeIntervalSince1970) + 3600
        let expired = try Shell.run(
            binary, ["token", "verify", "--config", file, "--route", "invoices", "--at", String(later)],
            stdin: Data(try TestTokens.token().utf8))
        XCTAssertEqual(expired.status, 1)
        XCTAssertTrue(expired.stdout.hasPrefix("refused: token.expired"), expired.stdout)

        let noRoute = try Shell.run(binary, ["token", "verify", "--config", file, "--route", "nope"], stdin: Data())
        XCTAssertEqual(noRoute.status, 2)
        XCTAssertTrue(noRoute.stderr.contains("no route named `nope`"), noRoute.stderr)
    }

    func testWebhookVerifyChecksACapturedDeliveryAsTheRouteWould() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let file = directory + "/hooks.yaml"
        // GitHub's published test secret, kept in a file the way operators do (with a newline).
        try "It's a Secret to Everybody\n".write(toFile: directory + "/github-secret", atomically: true, encoding: .utf8)
        try "an older secret\n".write(toFile: directory + "/github-old", atomically: true, encoding: .utf8)
        try """
            environment: prod
            listeners:
              - name: local
                address: 127.0.0.1:0
                insecure_plaintext: true
            upstreams:
              app: { endpoints: ["127.0.0.1:9"] }
            routes:
              - name: github
                match: { path: /hooks/github, methods: [POST] }
                upstream: app
                webhook:
                  scheme: github
                  secrets: [file:\(directory)/github-old, file:\(directory)/github-secret]
            """.write(toFile: file, atomically: true, encoding: .utf8)
        let headers = directory + "/headers.txt"
        try """
            POST /hooks/github HTTP/1.1\r
            Host: hooks.example\r
            X-GitHub-Delivery: 72d3162e-cc78-11e3-81ab-4c9367dc0958\r
            X-Hub-Signature-256: sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17\r
            \r

            """.write(toFile: headers, atomically: true, encoding: .utf8)
        let body = directory + "/body"
        try "Hello, World!".write(toFile: body, atomically: true, encoding: .utf8)

        let arguments = ["webhook", "verify", "--config", file, "--route", "github", "--headers", headers, "--body", body]
        let good = try Shell.run(binary, arguments)
        XCTAssertEqual(good.status, 0, good.stdout + good.stderr)
        XCTAssertEqual(good.stdout, "valid (secret 1)\n")

        try "Hello, World?".write(toFile: body, atomically: true, encoding: .utf8)
        let tampered = try Shell.run(binary, arguments)
        XCTAssertEqual(tampered.status, 1, tampered.stdout + tampered.stderr)
        XCTAssertTrue(tampered.stdout.hasPrefix("refused: webhook.bad_signature (401): "), tampered.stdout)
        XCTAssertFalse(tampered.stdout.contains("757107ea"), "never echoes the signature")
        XCTAssertFalse(tampered.stdout.contains("Secret to Everybody"), "never echoes the secret")

        let noRoute = try Shell.run(binary, ["webhook", "verify", "--config", file, "--route", "nope", "--headers", headers, "--body", body])
        XCTAssertEqual(noRoute.status, 2)
        XCTAssertTrue(noRoute.stderr.contains("no route named `nope`"), noRoute.stderr)
    }

    func testCheckAcceptsAValidFile() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let file = directory + "/ok.yaml"
        try """
            environment: dev
            listeners:
              - name: local
                address: 127.0.0.1:0
                insecure_plaintext: true
            upstreams:
              app: { endpoints: ["127.0.0.1:9"] }
            routes:
              - name: all
                match: { path_prefix: / }
                upstream: app
            """.write(toFile: file, atomically: true, encoding: .utf8)
        let result = try Shell.run(binary, ["check", "--config", file])
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertTrue(result.stdout.contains("ok"))
    }

    func testServeDrainsOnSIGTERMFlushesTheLogAndReopensItOnSIGHUP() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let log = directory + "/decisions.jsonl"
        let port = try Self.freePort()
        let adminPort = try Self.freePort()
        let file = directory + "/serve.yaml"
        try """
            environment: dev
            listeners:
              - name: local
                address: 127.0.0.1:\(port)
                insecure_plaintext: true
            admin:
              address: 127.0.0.1:\(adminPort)
            upstreams:
              app: { endpoints: ["127.0.0.1:9"] }
            routes:
              - name: only
                match: { path: /only }
                upstream: app
            decision_log:
              path: \(log)
            """.write(toFile: file, atomically: true, encoding: .utf8)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = ["serve", "--config", file, "--log-level", "error"]
        try process.run()
        defer { if process.isRunning { process.terminate() } }

        XCTAssertTrue(waitUntil { (try? Shell.run("/usr/bin/curl", ["-sf", "http://127.0.0.1:\(adminPort)/readyz"]).status) == 0 })
        XCTAssertEqual(try Shell.run("/usr/bin/curl", ["-s", "-o", "/dev/null", "-w", "%{http_code}", "http://127.0.0.1:\(port)/nope"]).stdout, "404")

        // Rotation: move the file away, SIGHUP, and the next record lands in a new file.
        XCTAssertTrue(waitUntil { ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").contains("route.not_found") })
        try FileManager.default.moveItem(atPath: log, toPath: log + ".1")
        kill(process.processIdentifier, SIGHUP)
        usleep(200_000)
        XCTAssertEqual(try Shell.run("/usr/bin/curl", ["-s", "-o", "/dev/null", "-w", "%{http_code}", "http://127.0.0.1:\(port)/again"]).stdout, "404")

        kill(process.processIdentifier, SIGTERM)
        process.waitUntilExit()
        XCTAssertEqual(process.terminationReason, .exit)
        XCTAssertEqual(process.terminationStatus, 0)
        let rotated = try String(contentsOfFile: log + ".1", encoding: .utf8)
        let fresh = try String(contentsOfFile: log, encoding: .utf8)
        XCTAssertTrue(rotated.contains(#""path":"/nope""#))
        XCTAssertTrue(fresh.contains(#""path":"/again""#), "the record written after SIGHUP went to the reopened file")
    }

    private func waitUntil(timeout: TimeInterval = 10, _ condition: () -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if condition() { return true }
            usleep(50_000)
        }
        return false
    }

    static func freePort() throws -> Int {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(descriptor) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, length) } }
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) } }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}
