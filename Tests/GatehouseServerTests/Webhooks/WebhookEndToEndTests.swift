import Crypto
import Foundation
import GatehouseCore
import XCTest

@testable import GatehouseServer

/// Webhook deliveries over real TLS with curl, signed as each sender signs, through the
/// gateway to a test upstream that records the exact bytes it received.
final class WebhookEndToEndTests: XCTestCase {
    private static let secrets: [WebhookScheme: String] = [
        .github: "It's a Secret to Everybody", .stripe: "whsec_stripe_test_secret", .slack: "8f742231b10e8888abcd99yyyzzz85a5",
        .shopify: "shopify-app-secret", .standard: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", .generic: "generic-sender-secret",
    ]
    private static let rotated = "the-new-github-secret"

    private func secretFile(_ value: String) throws -> SecretReference {
        let path = temporaryPath("gatehouse-webhook-secret-")
        try value.write(toFile: path, atomically: true, encoding: .utf8)
        return .file(path)
    }

    /// One route per scheme at `/hooks/<scheme>`, plus `/plain` without a webhook requirement.
    private func fixture(replayCapacity: Int = 100_000, maxBody: Int = 1 << 20) async throws -> GatewayFixture {
        var routes: [RouteConfig] = []
        for scheme in WebhookScheme.allCases {
            var secrets = [try secretFile(Self.secrets[scheme]!)]
            if scheme == .github { secrets.append(try secretFile(Self.rotated)) }
            var webhook = RouteWebhookConfig(scheme: scheme, secrets: secrets, location: MutualTLS.here)
            webhook.maxBodyBytes = maxBody
            if scheme == .generic { webhook.generic = WebhookSender.genericFormat }
            var route = MutualTLS.route(scheme.rawValue, .exact("/hooks/\(scheme.rawValue)"), methods: ["POST"], peers: nil)
            route.webhook = webhook
            routes.append(route)
        }
        routes.append(MutualTLS.route("plain", .prefix("/plain"), peers: nil))
        // The test upstream closes `/close` without answering.
        var failing = MutualTLS.route("failing", .exact("/close"), methods: ["POST"], peers: nil)
        failing.webhook = RouteWebhookConfig(scheme: .github, secrets: [try secretFile(Self.secrets[.github]!)], location: MutualTLS.here)
        routes.append(failing)
        return try await GatewayFixture(replayCapacity: replayCapacity) { config in
            config.routes = routes
        }
    }

    private func bodyFile(_ bytes: [UInt8]) throws -> String {
        let path = temporaryPath("gatehouse-webhook-body-")
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return path
    }

    private func post(_ fixture: GatewayFixture, _ path: String, body: [UInt8], headers: [String], chunked: Bool = false) throws -> CurlResponse {
        var arguments = ["-X", "POST", "--data-binary", "@" + (try bodyFile(body))]
        for header in headers + ["Content-Type: application/json"] + (chunked ? ["Transfer-Encoding: chunked"] : []) {
            arguments += ["-H", header]
        }
        return try fixture.curl(path, arguments)
    }

    private static func sha256(_ bytes: [UInt8]) -> String { WebhookSender.hex(SHA256.hash(data: bytes)) }

    func testEverySchemeIsVerifiedAndItsExactBytesForwarded() async throws {
        let fixture = try await fixture()
        defer { Task { await fixture.shutdown() } }
        for (index, scheme) in WebhookScheme.allCases.enumerated() {
            // Not valid UTF-8 and full of CRLFs: forwarded unchanged, byte for byte.
            let body = Array(#"{"event":"\#(scheme.rawValue)","n":\#(index)}"#.utf8) + [0xFF, 0x0D, 0x0A, 0x00, 0x7B]
            let headers = WebhookSender.headers(scheme, secret: Self.secrets[scheme]!, body: body, id: "delivery-\(index)")
            let response = try post(fixture, "/hooks/\(scheme.rawValue)", body: body, headers: headers)
            XCTAssertEqual(response.status, 200, "\(scheme): \(response.body)")
            let received = try XCTUnwrap(fixture.upstream.waitForRequests(index + 1).last, "\(scheme)")
            XCTAssertEqual(received.bodySHA256, Self.sha256(body), "\(scheme): the upstream got the exact bytes")
            XCTAssertEqual(received.bodyBytes, body.count)
            XCTAssertEqual(received.head.uri, "/hooks/\(scheme.rawValue)")
        }
        let records = fixture.records(atLeast: WebhookScheme.allCases.count)
        XCTAssertEqual(records.map(\.reason), Array(repeating: "allowed", count: WebhookScheme.allCases.count))
        let github = try XCTUnwrap(records.first?["webhook"] as? [String: Any])
        XCTAssertEqual(github["scheme"] as? String, "github")
        XCTAssertEqual(github["secret_index"] as? Int, 0)
        XCTAssertEqual(github["delivery_id"] as? String, "delivery-0")
        let log = try String(contentsOfFile: fixture.logPath, encoding: .utf8)
        XCTAssertFalse(log.contains(Self.secrets[.github]!), "never the secret")
        XCTAssertFalse(log.contains(#""event""#), "never the body")
    }

    func testRefusalsGetTheirReasonAndNothingReachesTheUpstream() async throws {
        let fixture = try await fixture()
        defer { Task { await fixture.shutdown() } }
        let body = Array(#"{"ok":true}"#.utf8)
        let now = Int(Date().timeIntervalSince1970)
        let stripe = WebhookSender.headers(.stripe, secret: Self.secrets[.stripe]!, body: body)
        let cases: [(String, [UInt8], [String], Int, String)] = [
            ("/hooks/github", body, [], 401, "webhook.missing_signature"),
            ("/hooks/github", body, ["X-Hub-Signature-256: sha256=zz"], 401, "webhook.malformed_signature"),
            ("/hooks/github", body + [0x20], WebhookSender.headers(.github, secret: Self.secrets[.github]!, body: body), 401, "webhook.bad_signature"),
            ("/hooks/github", body, WebhookSender.headers(.github, secret: "wrong secret", body: body), 401, "webhook.bad_signature"),
            ("/hooks/stripe", body, WebhookSender.headers(.stripe, secret: Self.secrets[.stripe]!, body: body, timestamp: now - 301), 401, "webhook.stale_timestamp"),
            ("/hooks/slack", body, WebhookSender.headers(.slack, secret: Self.secrets[.slack]!, body: body, timestamp: now + 400), 401, "webhook.stale_timestamp"),
            ("/hooks/stripe", body, stripe + stripe, 401, "webhook.malformed_signature"),
            ("/hooks/standard", body, ["webhook-id: x", "webhook-timestamp: \(now)", "webhook-signature: " + String(repeating: "v1,AAAA ", count: 600)], 401, "webhook.malformed_signature"),
        ]
        for (path, sent, headers, status, reason) in cases {
            XCTAssertEqual(try post(fixture, path, body: sent, headers: headers).status, status, reason)
        }
        XCTAssertEqual(fixture.records(atLeast: cases.count).map(\.reason), cases.map(\.4))
        XCTAssertTrue(fixture.upstream.requests.isEmpty, "no unverified delivery reached the upstream")
        XCTAssertEqual(try fixture.curl("/plain/x").status, 200, "the gateway keeps serving everyone else")
    }

    func testAReplayedDeliveryIsRefusedEvenWithAFreshUnsignedID() async throws {
        let fixture = try await fixture()
        defer { Task { await fixture.shutdown() } }
        let body = Array(#"{"action":"opened"}"#.utf8)
        let github = WebhookSender.headers(.github, secret: Self.secrets[.github]!, body: body, id: "d-1")
        XCTAssertEqual(try post(fixture, "/hooks/github", body: body, headers: github).status, 200)
        XCTAssertEqual(try post(fixture, "/hooks/github", body: body, headers: github).status, 409)
        // X-GitHub-Delivery is not signed: an attacker replaying the capture simply changes it.
        let renamed = github.map { $0.hasPrefix("X-GitHub-Delivery") ? "X-GitHub-Delivery: d-forged" : $0 }
        XCTAssertEqual(try post(fixture, "/hooks/github", body: body, headers: renamed).status, 409)

        let standard = WebhookSender.headers(.standard, secret: Self.secrets[.standard]!, body: body, id: "msg_1")
        XCTAssertEqual(try post(fixture, "/hooks/standard", body: body, headers: standard).status, 200)
        XCTAssertEqual(try post(fixture, "/hooks/standard", body: body, headers: standard).status, 409)
        XCTAssertEqual(
            fixture.records(atLeast: 5).map(\.reason),
            ["allowed", "replay.detected", "replay.detected", "allowed", "replay.detected"])
        XCTAssertEqual(fixture.upstream.requests.count, 2)
    }

    func testADeliveryTheUpstreamNeverTookCanBeRetried() async throws {
        let fixture = try await fixture()
        defer { Task { await fixture.shutdown() } }
        let body = Array(#"{"retry":true}"#.utf8)
        let headers = WebhookSender.headers(.github, secret: Self.secrets[.github]!, body: body, id: "d-retry")
        XCTAssertEqual(try post(fixture, "/close", body: body, headers: headers).status, 502)
        XCTAssertEqual(try post(fixture, "/close", body: body, headers: headers).status, 502, "the sender's retry is not a replay")
        XCTAssertEqual(fixture.records(atLeast: 2).map(\.reason), ["upstream.unavailable", "upstream.unavailable"])
    }

    /// A refused delivery's body must not stay behind in front of the next delivery on the
    /// same keep-alive connection (found by the benchmark harness).
    func testARefusedDeliveryDoesNotSpoilTheNextOneOnTheConnection() async throws {
        let fixture = try await fixture()
        defer { Task { await fixture.shutdown() } }
        let bad = Array(#"{"n":1}"#.utf8)
        let good = Array(#"{"n":2}"#.utf8)
        func request(_ body: [UInt8], secret: String) throws -> [String] {
            var arguments = ["-X", "POST", "--data-binary", "@" + (try bodyFile(body)), "-o", "/dev/null", "-w", "%{http_code} %{num_connects}\\n"]
            for header in WebhookSender.headers(.github, secret: secret, body: body) { arguments += ["-H", header] }
            return arguments + [fixture.baseURL + "/hooks/github"]
        }
        let result = try Shell.run("/usr/bin/curl", ["-sS", "--cacert", fixture.pki.caCertificate]
            + (try request(bad, secret: "wrong")) + ["--next", "--cacert", fixture.pki.caCertificate]
            + (try request(good, secret: Self.secrets[.github]!)))
        XCTAssertEqual(result.stdout.split(separator: "\n"), ["401 1", "200 0"], "one connection, the second delivery accepted: \(result.stderr)")
        XCTAssertEqual(fixture.upstream.waitForRequests(1).first?.bodySHA256, Self.sha256(good))
    }

    func testASenderRotatingItsSecretIsAcceptedAndTheIndexRecorded() async throws {
        let fixture = try await fixture()
        defer { Task { await fixture.shutdown() } }
        let body = Array(#"{"rotated":true}"#.utf8)
        let headers = WebhookSender.headers(.github, secret: Self.rotated, body: body)
        XCTAssertEqual(try post(fixture, "/hooks/github", body: body, headers: headers).status, 200)
        let webhook = try XCTUnwrap(fixture.records(atLeast: 1).first?["webhook"] as? [String: Any])
        XCTAssertEqual(webhook["secret_index"] as? Int, 1)
    }

    func testBodyLimitAndChunkedBodies() async throws {
        let fixture = try await fixture(maxBody: 256 * 1024)
        defer { Task { await fixture.shutdown() } }
        var generator = SystemRandomNumberGenerator()
        let body = (0..<(256 * 1024)).map { _ in UInt8.random(in: 0...255, using: &generator) }
        let headers = WebhookSender.headers(.shopify, secret: Self.secrets[.shopify]!, body: body)
        XCTAssertEqual(try post(fixture, "/hooks/shopify", body: body, headers: headers, chunked: true).status, 200, "exactly max_body, chunked")
        XCTAssertEqual(fixture.upstream.waitForRequests(1).first?.bodySHA256, Self.sha256(body))
        // Verified off the event loop (over 64 KiB), refused all the same when it does not match.
        var tampered = body
        tampered[1000] ^= 0x01
        XCTAssertEqual(try post(fixture, "/hooks/shopify", body: tampered, headers: headers).status, 401)

        let over = body + [0x41]
        let overHeaders = WebhookSender.headers(.shopify, secret: Self.secrets[.shopify]!, body: over)
        XCTAssertEqual(try post(fixture, "/hooks/shopify", body: over, headers: overHeaders).status, 413, "one byte over, with content-length")
        XCTAssertEqual(try post(fixture, "/hooks/shopify", body: over, headers: overHeaders, chunked: true).status, 413, "one byte over, chunked")
        XCTAssertEqual(fixture.records(atLeast: 4).map(\.reason), ["allowed", "webhook.bad_signature", "request.too_large", "request.too_large"])
        XCTAssertEqual(fixture.upstream.requests.count, 1)
    }

    func testAFullReplayStoreRefusesNewDeliveriesWith503() async throws {
        let fixture = try await fixture(replayCapacity: 1)
        defer { Task { await fixture.shutdown() } }
        func deliver(_ n: Int) throws -> Int {
            let body = Array(#"{"n":\#(n)}"#.utf8)
            return try post(fixture, "/hooks/stripe", body: body, headers: WebhookSender.headers(.stripe, secret: Self.secrets[.stripe]!, body: body)).status
        }
        XCTAssertEqual(try deliver(1), 200)
        XCTAssertEqual(try deliver(2), 503, "full: refuse rather than forget a live delivery")
        XCTAssertEqual(fixture.records(atLeast: 2).last?.reason, "state.unavailable")
    }

    func testABodyThatStopsArrivingTimesOut() async throws {
        let fixture = try await fixture()
        defer { Task { await fixture.shutdown() } }
        // Head and part of the body, then silence (the fixture's header_read is 1 s).
        let script = "(printf 'POST /hooks/github HTTP/1.1\\r\\nHost: localhost\\r\\nContent-Length: 100\\r\\n\\r\\n0123456789'; sleep 3) | "
            + "openssl s_client -quiet -connect 127.0.0.1:\(fixture.port) -CAfile \(fixture.pki.caCertificate) 2>/dev/null | head -1"
        let started = Date()
        let result = try Shell.run("/bin/sh", ["-c", script])
        XCTAssertTrue(result.stdout.hasPrefix("HTTP/1.1 408"), result.stdout)
        XCTAssertLessThan(Date().timeIntervalSince(started), 3.5)
        XCTAssertEqual(fixture.records(atLeast: 1).first?.reason, "request.timeout")
        XCTAssertTrue(fixture.upstream.requests.isEmpty)
    }
}
