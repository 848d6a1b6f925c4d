import Foundation
import GatehouseCore
import XCTest

@testable import GatehouseServer

final class ShutdownTests: XCTestCase {
    /// Every listener stops accepting on shutdown, not only the first one bound.
    func testShutdownClosesEveryListener() async throws {
        let fixture = try await GatewayFixture(tls: false) { config in
            var second = config.listeners[0]
            second.name = "second"
            config.listeners.append(second)
        }
        let ports = [fixture.port, fixture.gateway.listenerAddresses["second"]!.port!]
        for port in ports {
            XCTAssertNoThrow(try RawHTTPClient(port: port), "listening on \(port) before shutdown")
        }
        await fixture.gateway.shutdown(drain: .seconds(2))
        for port in ports {
            XCTAssertThrowsError(try RawHTTPClient(port: port), "port \(port) must be closed after shutdown")
        }
        await fixture.shutdown()
    }

    /// A request in flight on the second listener is allowed to finish during the drain.
    func testShutdownDrainsConnectionsOfEveryListener() async throws {
        let fixture = try await GatewayFixture(tls: false) { config in
            var second = config.listeners[0]
            second.name = "second"
            config.listeners.append(second)
            config.upstreams[0].responseTimeout = .seconds(5)
        }
        let port = fixture.gateway.listenerAddresses["second"]!.port!
        let client = try RawHTTPClient(port: port)
        client.send("GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")  // the upstream answers after 2 s
        _ = fixture.upstream.waitForRequests(1)
        let started = Date()
        await fixture.gateway.shutdown(drain: .seconds(4))
        let responses = client.readResponses(1)
        XCTAssertEqual(responses.first?.status, 200, "the in-flight exchange finished")
        XCTAssertLessThan(Date().timeIntervalSince(started), 3.9, "shutdown returned once drained, not at the drain timeout")
        await fixture.shutdown()
    }
}
