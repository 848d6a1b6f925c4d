import Foundation
import GatehouseCore
import NIOCore
import NIOPosix
import XCTest
@testable import GatehouseServer

/// The upstream failure reasons that need an upstream misbehaving on purpose.
final class UpstreamFailureTests: XCTestCase {
    func testAnUnparseableUpstreamResponseIs502ProtocolError() async throws {
        let broken = try BrokenUpstream(response: "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 7\r\n\r\nhello")
        defer { broken.stop() }
        let fixture = try await GatewayFixture { config in
            config.upstreams[0].endpoints = [HostPort(host: "127.0.0.1", port: broken.port)]
        }
        defer { Task { await fixture.shutdown() } }
        XCTAssertEqual(try fixture.curl("/x").status, 502)
        let record = try XCTUnwrap(fixture.records(atLeast: 1).first)
        XCTAssertEqual(record["reason"] as? String, "upstream.protocol_error")
        XCTAssertEqual(record["status"] as? Int, 502)
        XCTAssertEqual(try fixture.curl("/still-serving").status, 502, "each request gets a fresh verdict")
    }

    func testAFullPoolAndWaitQueueAnswer503PoolExhausted() async throws {
        // One event loop, one upstream connection, no waiting room.
        let fixture = try await GatewayFixture(eventLoops: 1) { config in
            config.upstreams[0].pool.maxConnectionsPerLoop = 1
            config.upstreams[0].pool.maxIdlePerLoop = 1
            config.upstreams[0].pool.maxPendingPerLoop = 0
            config.upstreams[0].responseTimeout = .seconds(5)
        }
        defer { Task { await fixture.shutdown() } }
        let url = fixture.baseURL + "/slow"
        let ca = fixture.pki.caCertificate
        let holder = Task.detached { try CurlResponse.run([url], caFile: ca) }
        _ = fixture.upstream.waitForRequests(1)
        let refused = try fixture.curl("/x")
        XCTAssertEqual(refused.status, 503)
        let held = try await holder.value
        XCTAssertEqual(held.status, 200)
        let reasons = fixture.records(atLeast: 2).compactMap { $0["reason"] as? String }
        XCTAssertEqual(reasons.sorted(), ["allowed", "upstream.pool_exhausted"])
    }
}

/// An upstream that answers every request with fixed raw bytes.
final class BrokenUpstream: @unchecked Sendable {
    private let channel: Channel
    var port: Int { channel.localAddress!.port! }

    init(response: String) throws {
        channel = try ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(RawResponder(response: response))
                }
            }
            .bind(host: "127.0.0.1", port: 0).wait()
    }

    func stop() { try? channel.close().wait() }

    private final class RawResponder: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = ByteBuffer
        typealias OutboundOut = ByteBuffer
        let response: String
        init(response: String) { self.response = response }
        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: response)), promise: nil)
        }
    }
}
