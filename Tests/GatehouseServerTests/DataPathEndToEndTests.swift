import Foundation
import GatehouseCore
import NIOPosix
import XCTest
@testable import GatehouseServer

/// The product end to end: curl over real TLS on loopback, through the gateway, to an
/// in-process upstream; asserting status, what the upstream saw, and the decision record.
final class DataPathEndToEndTests: XCTestCase {
    func testAllowedRequestIsForwardedWithGatewayHeadersAndRecorded() async throws {
        let fixture = try await GatewayFixture()
        defer { Task { await fixture.shutdown() } }

        let response = try fixture.curl("/api/items?id=7&sort=asc")
        XCTAssertEqual(response.status, 200)
        XCTAssertEqual(response.header("x-upstream"), "test")
        let requestID = try XCTUnwrap(response.header("x-request-id"))

        let seen = try XCTUnwrap(fixture.upstream.waitForRequests(1).first)
        XCTAssertEqual(seen.head.uri, "/api/items?id=7&sort=asc")
        XCTAssertEqual(seen.head.headers["x-forwarded-for"], ["127.0.0.1"])
        XCTAssertEqual(seen.head.headers["x-forwarded-proto"], ["https"])
        XCTAssertEqual(seen.head.headers["x-forwarded-host"], ["localhost:\(fixture.port)"])
        XCTAssertEqual(seen.head.headers["x-request-id"], [requestID])
        XCTAssertEqual(seen.head.headers["host"], ["localhost:\(fixture.port)"])
        let traceparent = try XCTUnwrap(seen.head.headers["traceparent"].first)
        XCTAssertTrue(RequestIdentifiers.isValidTraceparent(traceparent), traceparent)

        let record = try XCTUnwrap(fixture.records(atLeast: 1).first)
        XCTAssertEqual(record["decision"] as? String, "allow")
        XCTAssertEqual(record["reason"] as? String, "allowed")
        XCTAssertEqual(record["status"] as? Int, 200)
        XCTAssertEqual(record["request_id"] as? String, requestID)
        XCTAssertEqual(record["route"] as? String, "app")
        XCTAssertEqual(record["method"] as? String, "GET")
        XCTAssertEqual(record["path"] as? String, "/api/items")
        XCTAssertEqual(record["client_ip"] as? String, "127.0.0.1")
        XCTAssertEqual(record["listener"] as? String, "public")
        let upstream = try XCTUnwrap(record["upstream"] as? [String: Any])
        XCTAssertEqual(upstream["name"] as? String, "app")
        XCTAssertEqual(upstream["status"] as? Int, 200)
        XCTAssertEqual(upstream["endpoint"] as? String, "127.0.0.1:\(fixture.upstream.port)")
        let policy = try XCTUnwrap(record["policy"] as? [String: Any])
        XCTAssertEqual(policy["version"] as? String, "abababababab")
        XCTAssertNotNil(record["duration_ms"] as? Double)
        let timestamp = try XCTUnwrap(record["ts"] as? String)
        XCTAssertNotNil(timestamp.range(of: #"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$"#, options: .regularExpression), timestamp)
    }

    func testClientSentCopiesOfGatewayHeadersAreStripped() async throws {
        let fixture = try await GatewayFixture()
        defer { Task { await fixture.shutdown() } }

        let response = try fixture.curl("/x", [
            "-H", "X-Forwarded-For: 6.6.6.6", "-H", "X-Forwarded-Proto: http", "-H", "X-Forwarded-Host: evil.example",
            "-H", "X-Request-Id: chosen-by-attacker", "-H", "Forwarded: for=6.6.6.6", "-H", "X-Real-IP: 6.6.6.6",
            "-H", "X-Gatehouse-Peer-Id: spiffe://prod.example/admin", "-H", "X-Forwarded-Client-Cert: By=spiffe://x;URI=spiffe://y",
            "-H", "traceparent: not-a-trace",
        ])
        XCTAssertEqual(response.status, 200)
        let headers = try XCTUnwrap(fixture.upstream.waitForRequests(1).first).head.headers
        XCTAssertEqual(headers["x-forwarded-for"], ["127.0.0.1"])
        XCTAssertEqual(headers["x-forwarded-proto"], ["https"])
        XCTAssertEqual(headers["x-forwarded-host"], ["localhost:\(fixture.port)"])
        XCTAssertEqual(headers["x-request-id"].count, 1)
        XCTAssertNotEqual(headers["x-request-id"], ["chosen-by-attacker"])
        XCTAssertTrue(headers["forwarded"].isEmpty)
        XCTAssertTrue(headers["x-real-ip"].isEmpty)
        XCTAssertTrue(headers["x-gatehouse-peer-id"].isEmpty)
        XCTAssertTrue(headers["x-forwarded-client-cert"].isEmpty)
        XCTAssertEqual(headers["traceparent"].count, 1)
        XCTAssertTrue(RequestIdentifiers.isValidTraceparent(headers["traceparent"][0]))
    }

    func testTrustedProxyForwardingHeadersAreKeptAndAppended() async throws {
        let fixture = try await GatewayFixture { config in
            config.listeners[0].trustedProxies = [CIDR(address: [127, 0, 0, 0], prefixLength: 8)]
        }
        defer { Task { await fixture.shutdown() } }
        let trace = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        _ = try fixture.curl("/x", [
            "-H", "X-Forwarded-For: 203.0.113.9", "-H", "X-Request-Id: lb-req-42", "-H", "X-Forwarded-Proto: https",
            "-H", "traceparent: \(trace)",
        ])
        let headers = try XCTUnwrap(fixture.upstream.waitForRequests(1).first).head.headers
        XCTAssertEqual(headers["x-forwarded-for"], ["203.0.113.9, 127.0.0.1"])
        XCTAssertEqual(headers["x-request-id"], ["lb-req-42"])
        XCTAssertEqual(headers["traceparent"], [trace])
        XCTAssertEqual(fixture.records(atLeast: 1).first?["request_id"] as? String, "lb-req-42")
    }

    func testHopByHopHeadersAreNotForwarded() async throws {
        let fixture = try await GatewayFixture()
        defer { Task { await fixture.shutdown() } }
        _ = try fixture.curl("/x", [
            "-H", "Connection: keep-alive, X-Hop-Secret", "-H", "X-Hop-Secret: 1", "-H", "Keep-Alive: timeout=5",
            "-H", "TE: trailers", "-H", "Upgrade: websocket", "-H", "Proxy-Authorization: Basic Zm9vOmJhcg==",
            "-H", "Proxy-Connection: keep-alive", "-H", "X-End-To-End: kept",
        ])
        let headers = try XCTUnwrap(fixture.upstream.waitForRequests(1).first).head.headers
        for name in ["x-hop-secret", "keep-alive", "te", "upgrade", "proxy-authorization", "proxy-connection"] {
            XCTAssertTrue(headers[name].isEmpty, "\(name) was forwarded")
        }
        XCTAssertEqual(headers["x-end-to-end"], ["kept"])
    }

    func testUnroutedRequestsAreDeniedWithRouteNotFound() async throws {
        let fixture = try await GatewayFixture { config in
            let here = SourceLocation(file: "t", line: 1, column: 1)
            config.routes = [
                RouteConfig(name: "status", match: RouteMatch(path: .exact("/status"), methods: ["GET"]), upstream: "app", location: here),
                RouteConfig(name: "charge", match: RouteMatch(path: .prefix("/charge"), methods: ["POST"]), upstream: "app", location: here),
            ]
        }
        defer { Task { await fixture.shutdown() } }

        XCTAssertEqual(try fixture.curl("/status").status, 200)
        XCTAssertEqual(try fixture.curl("/status/x").status, 404)
        XCTAssertEqual(try fixture.curl("/charge", ["-X", "GET"]).status, 404)
        XCTAssertEqual(try fixture.curl("/charge/1", ["-X", "POST", "-d", "x"]).status, 200)
        let denied = try fixture.curl("/nowhere")
        XCTAssertEqual(denied.status, 404)
        XCTAssertTrue(denied.body.contains(#""request_id""#))
        XCTAssertFalse(denied.body.contains("route.not_found"), "the reason is not exposed unless enabled")

        let records = fixture.records(atLeast: 5)
        XCTAssertEqual(records.map { $0["reason"] as? String }, ["allowed", "route.not_found", "route.not_found", "allowed", "route.not_found"])
        XCTAssertEqual(records.map { $0["decision"] as? String }, ["allow", "deny", "deny", "allow", "deny"])
        XCTAssertEqual(records.map { $0["status"] as? Int }, [200, 404, 404, 200, 404])
        XCTAssertEqual(fixture.upstream.requests.count, 2, "denied requests never reach the upstream")
    }

    func testExposeReasonPutsTheReasonInTheErrorBody() async throws {
        let fixture = try await GatewayFixture { $0.listeners[0].exposeReason = true; $0.routes = [] }
        defer { Task { await fixture.shutdown() } }
        let denied = try fixture.curl("/x")
        XCTAssertEqual(denied.status, 404)
        XCTAssertTrue(denied.body.contains(#""reason":"route.not_found""#), denied.body)
    }

    func testUpstreamSeesTheNormalisedPath() async throws {
        let fixture = try await GatewayFixture()
        defer { Task { await fixture.shutdown() } }
        let response = try fixture.curl("/api/./v1/../v2/%7Euser/x%2Dy?a=../b", ["--path-as-is"])
        XCTAssertEqual(response.status, 200)
        XCTAssertEqual(fixture.upstream.waitForRequests(1).first?.head.uri, "/api/v2/~user/x-y?a=../b")
        XCTAssertEqual(fixture.records(atLeast: 1).first?["path"] as? String, "/api/v2/~user/x-y")
    }

    func testUpstreamFailuresMapTo502And504() async throws {
        let fixture = try await GatewayFixture()
        defer { Task { await fixture.shutdown() } }
        XCTAssertEqual(try fixture.curl("/slow").status, 504)
        XCTAssertEqual(try fixture.curl("/close").status, 502)
        let records = fixture.records(atLeast: 2)
        XCTAssertEqual(records.map { $0["reason"] as? String }, ["upstream.timeout", "upstream.unavailable"])
        XCTAssertEqual(records.map { $0["status"] as? Int }, [504, 502])
        // The gateway keeps serving.
        XCTAssertEqual(try fixture.curl("/ok").status, 200)
    }

    func testUnreachableUpstreamIs502() async throws {
        let deadPort = try Self.closedPort()
        let fixture = try await GatewayFixture { config in
            config.upstreams[0].endpoints = [HostPort(host: "127.0.0.1", port: deadPort)]
        }
        defer { Task { await fixture.shutdown() } }
        XCTAssertEqual(try fixture.curl("/x").status, 502)
        XCTAssertEqual(fixture.records(atLeast: 1).first?["reason"] as? String, "upstream.unavailable")
    }

    func testIdempotentRequestsRetryOnAnotherEndpointAndDeadEndpointsAreEjected() async throws {
        let deadPort = try Self.closedPort()
        let fixture = try await GatewayFixture { config in
            config.upstreams[0].endpoints.insert(HostPort(host: "127.0.0.1", port: deadPort), at: 0)
            config.upstreams[0].ejection.consecutiveFailures = 3
        }
        defer { Task { await fixture.shutdown() } }
        for _ in 0..<6 {
            XCTAssertEqual(try fixture.curl("/get").status, 200, "GET is retried on the live endpoint")
        }
        // Three GETs hit the dead endpoint first, so it is now ejected: POSTs (never retried) go to the live one.
        for _ in 0..<4 {
            XCTAssertEqual(try fixture.curl("/post", ["-X", "POST", "-d", "x"]).status, 200)
        }
    }

    func testPostIsNotRetriedAfterAConnectFailure() async throws {
        let deadPort = try Self.closedPort()
        let fixture = try await GatewayFixture { config in
            config.upstreams[0].endpoints.insert(HostPort(host: "127.0.0.1", port: deadPort), at: 0)
        }
        defer { Task { await fixture.shutdown() } }
        let statuses = try (0..<4).map { _ in try fixture.curl("/post", ["-X", "POST", "-d", "x"]).status }
        XCTAssertTrue(statuses.contains(502), "\(statuses)")
        XCTAssertTrue(statuses.contains(200), "\(statuses)")
    }

    func testUpstreamConnectionsAreReused() async throws {
        let fixture = try await GatewayFixture()
        defer { Task { await fixture.shutdown() } }
        // One curl with five URLs: one client connection, so one event loop and its pool.
        let urls = (0..<5).map { fixture.baseURL + "/r\($0)" }
        let result = try Shell.run("/usr/bin/curl", ["-sS", "--cacert", fixture.pki.caCertificate, "-o", "/dev/null", "-o", "/dev/null", "-o", "/dev/null", "-o", "/dev/null", "-o", "/dev/null", "-w", "%{http_code} "] + urls)
        XCTAssertEqual(result.stdout, "200 200 200 200 200 ")
        XCTAssertEqual(fixture.upstream.connectionsAccepted.withLockedValue { $0 }, 1)
    }

    func testLargeResponseStreamsThrough() async throws {
        let fixture = try await GatewayFixture()
        defer { Task { await fixture.shutdown() } }
        let result = try Shell.run("/usr/bin/curl", [
            "-sS", "--cacert", fixture.pki.caCertificate, "-o", "/dev/null", "-w", "%{http_code} %{size_download}",
            fixture.baseURL + "/bytes/50000000",
        ])
        XCTAssertEqual(result.stdout, "200 50000000")
    }

    func testChunkedUploadIsForwardedByteForByte() async throws {
        let fixture = try await GatewayFixture()
        defer { Task { await fixture.shutdown() } }
        let file = NSTemporaryDirectory() + "upload-\(UUID().uuidString)"
        let payload = Data((0..<3_000_000).map { UInt8(truncatingIfNeeded: $0 &* 31) })
        try payload.write(to: URL(fileURLWithPath: file))
        defer { try? FileManager.default.removeItem(atPath: file) }
        let response = try fixture.curl("/upload", ["-X", "POST", "-H", "Transfer-Encoding: chunked", "--data-binary", "@" + file])
        XCTAssertEqual(response.status, 200)
        let seen = try XCTUnwrap(fixture.upstream.waitForRequests(1).first)
        XCTAssertEqual(seen.bodyBytes, payload.count)
        XCTAssertEqual(seen.head.headers["transfer-encoding"], ["chunked"])
        let expected = SHA256Hex.of(payload)
        XCTAssertEqual(seen.bodySHA256, expected)
    }

    func testBodyOverTheRouteLimitIs413() async throws {
        let fixture = try await GatewayFixture { $0.routes[0].maxBodyBytes = 1000 }
        defer { Task { await fixture.shutdown() } }
        let tooBig = String(repeating: "a", count: 1001)
        XCTAssertEqual(try fixture.curl("/x", ["-X", "POST", "--data-binary", tooBig]).status, 413)
        XCTAssertEqual(try fixture.curl("/x", ["-X", "POST", "-H", "Transfer-Encoding: chunked", "--data-binary", tooBig]).status, 413)
        XCTAssertEqual(try fixture.curl("/x", ["-X", "POST", "--data-binary", String(tooBig.dropLast())]).status, 200)
        let records = fixture.records(atLeast: 3)
        XCTAssertEqual(records.map { $0["reason"] as? String }, ["request.too_large", "request.too_large", "allowed"])
        XCTAssertEqual(fixture.upstream.requests.count, 1)
    }

    func testAnUpstreamAnsweringBeforeTheBodyEndsClosesTheClientConnection() async throws {
        let fixture = try await GatewayFixture { $0.routes[0].maxBodyBytes = 128 << 20 }
        defer { Task { await fixture.shutdown() } }
        let file = NSTemporaryDirectory() + "early-\(UUID().uuidString)"
        // Large enough that the upstream's answer comes long before the body could have been relayed.
        try Data(repeating: 0x62, count: 64 << 20).write(to: URL(fileURLWithPath: file))
        defer { try? FileManager.default.removeItem(atPath: file) }
        let response = try fixture.curl("/early-413", ["-X", "POST", "--data-binary", "@" + file])
        XCTAssertEqual(response.status, 413)
        XCTAssertEqual(response.header("connection"), "close")
        let record = try XCTUnwrap(fixture.records(atLeast: 1).first)
        XCTAssertEqual(record["decision"] as? String, "allow")
        XCTAssertEqual(record["status"] as? Int, 413)
    }

    func testALargeUploadToADeniedRouteGetsItsAnswerOverTLS() async throws {
        let fixture = try await GatewayFixture { $0.routes[0].match.methods = ["GET"] }
        defer { Task { await fixture.shutdown() } }
        let file = NSTemporaryDirectory() + "denied-\(UUID().uuidString)"
        try Data(repeating: 0x63, count: 8 << 20).write(to: URL(fileURLWithPath: file))
        defer { try? FileManager.default.removeItem(atPath: file) }
        for expect in ["Expect:", "Expect: 100-continue"] {
            let response = try fixture.curl("/upload", ["-X", "POST", "-H", expect, "--data-binary", "@" + file])
            XCTAssertEqual(response.status, 404, expect)
        }
        XCTAssertEqual(fixture.records(atLeast: 2).map { $0["reason"] as? String }, ["route.not_found", "route.not_found"])
    }

    func testHeadRequestGetsNoBody() async throws {
        let fixture = try await GatewayFixture()
        defer { Task { await fixture.shutdown() } }
        let response = try fixture.curl("/bytes/1000", ["-I"])
        XCTAssertEqual(response.status, 200)
        XCTAssertEqual(response.header("content-length"), "1000")
        XCTAssertEqual(response.body, "")
    }

    func testAdminHealthAndReadiness() async throws {
        let fixture = try await GatewayFixture()
        defer { Task { await fixture.shutdown() } }
        let health = try CurlResponse.run(["http://127.0.0.1:\(fixture.adminPort)/healthz"], caFile: nil)
        XCTAssertEqual(health.status, 200)
        let ready = try CurlResponse.run(["http://127.0.0.1:\(fixture.adminPort)/readyz"], caFile: nil)
        XCTAssertEqual(ready.status, 200)
        XCTAssertEqual(try CurlResponse.run(["http://127.0.0.1:\(fixture.adminPort)/nope"], caFile: nil).status, 404)
        // `/config` names the running version; secrets never appear (see ConfigEndpointTests).
        let config = try CurlResponse.run(["http://127.0.0.1:\(fixture.adminPort)/config"], caFile: nil)
        XCTAssertEqual(config.status, 200)
        XCTAssertTrue(config.body.contains(#""version":"abababababab""#), config.body)
        XCTAssertFalse(config.body.contains(fixture.pki.serverKey))
    }

    func testRefusedTLSHandshakeIsRecorded() async throws {
        let fixture = try await GatewayFixture()
        defer { Task { await fixture.shutdown() } }
        let client = try RawHTTPClient(port: fixture.port, receiveTimeout: 2)
        client.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n")  // plaintext to a TLS port
        _ = client.readAll()
        let record = try XCTUnwrap(fixture.records(atLeast: 1).first)
        XCTAssertEqual(record["reason"] as? String, "tls.handshake_failed")
        XCTAssertEqual(record["decision"] as? String, "deny")
        XCTAssertEqual(record["status"] as? Int, 0)
        XCTAssertEqual(record["client_ip"] as? String, "127.0.0.1")
        XCTAssertEqual(try fixture.curl("/still-serving").status, 200)
    }

    func testMinimumTLSVersionIsEnforcedAndALPNIsHTTP1() async throws {
        let fixture = try await GatewayFixture { $0.listeners[0].tls?.minimumVersion = .v1_3 }
        defer { Task { await fixture.shutdown() } }
        let old = try Shell.run("/usr/bin/curl", ["-sS", "--cacert", fixture.pki.caCertificate, "--tls-max", "1.2", fixture.baseURL + "/x"])
        XCTAssertNotEqual(old.status, 0, "a TLS 1.2 client must be refused")
        XCTAssertEqual(fixture.records(atLeast: 1).first?["reason"] as? String, "tls.handshake_failed")
        let modern = try Shell.run("/usr/bin/curl", ["-sS", "-v", "--cacert", fixture.pki.caCertificate, "-o", "/dev/null", fixture.baseURL + "/x"])
        XCTAssertEqual(modern.status, 0)
        XCTAssertTrue(modern.stderr.contains("TLSv1.3"), modern.stderr)
        XCTAssertTrue(modern.stderr.contains("ALPN: server accepted http/1.1") || modern.stderr.contains("ALPN, server accepted to use http/1.1"), modern.stderr)
    }

    func testAClientThatNeverFinishesTheHandshakeIsCutOffAndRecorded() async throws {
        let fixture = try await GatewayFixture { $0.listeners[0].timeouts.handshake = .milliseconds(500) }
        defer { Task { await fixture.shutdown() } }
        let client = try RawHTTPClient(port: fixture.port, receiveTimeout: 3)
        let start = Date()
        XCTAssertTrue(client.isClosedByPeer())
        XCTAssertLessThan(Date().timeIntervalSince(start), 2.5)
        let record = try XCTUnwrap(fixture.records(atLeast: 1).first)
        XCTAssertEqual(record["reason"] as? String, "tls.handshake_timeout")
        XCTAssertEqual(record["decision"] as? String, "deny")
    }

    func testGracefulShutdownFinishesInFlightExchanges() async throws {
        let fixture = try await GatewayFixture { $0.upstreams[0].responseTimeout = .seconds(5) }
        let url = fixture.baseURL + "/slow"
        let ca = fixture.pki.caCertificate
        let inFlight = Task.detached { try CurlResponse.run([url], caFile: ca) }
        _ = fixture.upstream.waitForRequests(1)
        await fixture.gateway.shutdown(drain: .seconds(5))
        let response = try await inFlight.value
        XCTAssertEqual(response.status, 200)
        XCTAssertEqual(response.body, "late")
        XCTAssertThrowsError(try RawHTTPClient(port: fixture.port), "no longer accepting")
        fixture.upstream.stop()
        try? await fixture.group.shutdownGracefully()
    }

    /// A port with nothing listening (bound, then closed).
    static func closedPort() throws -> Int {
        let group = MultiThreadedEventLoopGroupHolder.shared
        let channel = try ServerBootstrap(group: group).bind(host: "127.0.0.1", port: 0).wait()
        let port = channel.localAddress!.port!
        try channel.close().wait()
        return port
    }
}
