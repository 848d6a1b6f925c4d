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
        let fixture = try await GatewayFixture.fronting(broken)
        defer { Task { await fixture.shutdown() } }
        XCTAssertEqual(try fixture.curl("/x").status, 502)
        let record = try XCTUnwrap(fixture.records(atLeast: 1).first)
        XCTAssertEqual(record["reason"] as? String, "upstream.protocol_error")
        XCTAssertEqual(record["status"] as? Int, 502)
        XCTAssertEqual(try fixture.curl("/still-serving").status, 502, "each request gets a fresh verdict")
    }

    /// Responses that could desync the upstream connection (or split the client's response):
    /// each is refused whole, never relayed in part.
    func testEveryAmbiguousOrHostileUpstreamResponseIs502ProtocolError() async throws {
        let hostile = [
            "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
            "HTTP/1.1 200 OK\nContent-Length: 5\n\nhello",
            "HTTP/1.1 200 OK\r\nX-A: 1\r\n folded\r\nContent-Length: 5\r\n\r\nhello",
            "HTTP/1.1 200 OK\r\nX-Split: a\rSet-Cookie: evil\r\nContent-Length: 5\r\n\r\nhello",
            "HTTP/1.1 200 OK\r\nContent-Length: -5\r\n\r\nhello",
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n",
            "HTTP/2 200\r\n\r\n",
        ]
        for response in hostile {
            let broken = try BrokenUpstream(response: response)
            defer { broken.stop() }
            let fixture = try await GatewayFixture.fronting(broken)
            let answer = try fixture.curl("/x")
            XCTAssertEqual(answer.status, 502, response)
            XCTAssertNil(answer.header("set-cookie"), response)
            let record = try XCTUnwrap(fixture.records(atLeast: 1).first, response)
            XCTAssertEqual(record["reason"] as? String, "upstream.protocol_error", response)
            await fixture.shutdown()
        }
    }

    /// A body that breaks its framing after the head was relayed: the client connection is cut,
    /// so the client sees a failed response, never a complete-looking one.
    func testABrokenChunkAfterTheHeadCutsTheClientConnection() async throws {
        let broken = try BrokenUpstream(response: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5 6\r\nhello\r\n0\r\n\r\n")
        defer { broken.stop() }
        let fixture = try await GatewayFixture.fronting(broken)
        defer { Task { await fixture.shutdown() } }
        XCTAssertThrowsError(try fixture.curl("/x"), "curl reports an empty or truncated reply")
        let record = try XCTUnwrap(fixture.records(atLeast: 1).first)
        XCTAssertEqual(record["reason"] as? String, "upstream.protocol_error")
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
extension GatewayFixture {
    /// The default fixture with its one upstream pointed at `upstream`.
    static func fronting(_ upstream: BrokenUpstream) async throws -> GatewayFixture {
        try await GatewayFixture { config in
            config.upstreams[0].endpoints = [HostPort(host: "127.0.0.1", port: upstream.port)]
        }
    }
}

final class BrokenUpstream: @unchecked Sendable {
    private let channel: Channel
    var port: Int { channel.localAddress!.port! }

    /// Answers every read with `response`; with `closeAfterResponse`, then closes (a body
    /// delimited by the close).
    init(response: String, closeAfterResponse: Bool = false) throws {
        channel = try ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(RawResponder(response: response, close: closeAfterResponse))
                }
            }
            .bind(host: "127.0.0.1", port: 0).wait()
    }

    func stop() { try? channel.close().wait() }

    private final class RawResponder: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = ByteBuffer
        typealias OutboundOut = ByteBuffer
        let response: String
        let close: Bool
        init(response: String, close: Bool) {
            self.response = response
            self.close = close
        }
        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let written = context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: response)))
            if close {
                let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
                written.whenComplete { _ in loopBound.value.close(promise: nil) }
            }
        }
    }
}
