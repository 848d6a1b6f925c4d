import Foundation
import XCTest
@testable import GatehouseServer

/// Bodies stream through with backpressure: a slow upstream slows the client down instead of
/// the gateway buffering the difference.
final class StreamingTests: XCTestCase {
    func testUploadToAStalledUpstreamIsHeldBackAtTheClient() async throws {
        let total = 96 << 20
        let fixture = try await GatewayFixture(tls: false) { config in
            config.routes[0].maxBodyBytes = 1 << 30
            config.upstreams[0].responseTimeout = .seconds(30)
        }
        defer { Task { await fixture.shutdown() } }
        let client = try RawHTTPClient(port: fixture.port, receiveTimeout: 30)
        client.send("POST /hold HTTP/1.1\r\nHost: a\r\nContent-Length: \(total)\r\n\r\n")
        let body = [UInt8](repeating: 0x61, count: total)

        // The upstream reads nothing: only socket buffers (kernel) and the gateway's bounded
        // write buffers can take bytes. Without backpressure the gateway would swallow it all.
        let accepted = client.sendUntilBlocked(body, timeout: 1.5)
        print("StreamingTests: \(accepted) bytes accepted before the client blocked (of \(total))")
        XCTAssertLessThan(accepted, 48 << 20, "the gateway buffered \(accepted) bytes for a stalled upstream")
        XCTAssertGreaterThan(accepted, 0)

        fixture.upstream.releaseHeld()
        XCTAssertEqual(client.sendUntilBlocked(Array(body[accepted...]), timeout: 20), total - accepted)
        let response = client.readResponses(1)
        XCTAssertEqual(response.first?.status, 200)
        let seen = try XCTUnwrap(fixture.upstream.waitForRequests(1).first)
        XCTAssertEqual(seen.bodyBytes, total)
        XCTAssertEqual(seen.bodySHA256, SHA256Hex.of(Data(body)))
    }
}
