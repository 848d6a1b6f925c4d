import Foundation
import GatehouseCore
import NIOCore
import XCTest
@testable import GatehouseServer

/// How upstream responses of each framing reach a real client (curl): the gateway parses the
/// upstream's bytes itself and writes the client's response from them.
final class UpstreamResponseRelayTests: XCTestCase {
    private func relay(_ response: String, _ curlArguments: [String] = [], closing: Bool = false) async throws
        -> (CurlResponse, [String: Any])
    {
        let upstream = try BrokenUpstream(response: response, closeAfterResponse: closing)
        defer { upstream.stop() }
        let fixture = try await GatewayFixture.fronting(upstream)
        defer { Task { await fixture.shutdown() } }
        let answer = try fixture.curl("/x", curlArguments)
        let record = try XCTUnwrap(fixture.records(atLeast: 1).first)
        return (answer, record)
    }

    func testAChunkedBodyArrivesWholeAndItsTrailersAreDropped() async throws {
        let (answer, record) = try await relay(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-App: yes\r\n\r\n"
                + "5;ext=1\r\nhello\r\n7\r\n, world\r\n0\r\nX-Trailer: secret\r\n\r\n")
        XCTAssertEqual(answer.status, 200)
        XCTAssertEqual(answer.body, "hello, world")
        XCTAssertEqual(answer.header("x-app"), "yes")
        XCTAssertEqual(answer.header("transfer-encoding"), "chunked")
        XCTAssertNil(answer.header("x-trailer"))
        XCTAssertEqual(record["reason"] as? String, "allowed")
    }

    func testABodyDelimitedByTheUpstreamsCloseIsRechunkedForTheClient() async throws {
        let (answer, record) = try await relay("HTTP/1.1 200 OK\r\nX-App: yes\r\n\r\nuntil the close", closing: true)
        XCTAssertEqual(answer.status, 200)
        XCTAssertEqual(answer.body, "until the close")
        XCTAssertEqual(answer.header("transfer-encoding"), "chunked")
        XCTAssertEqual(record["reason"] as? String, "allowed")
    }

    func testAnHTTP10ClientGetsAChunkedBodyDecodedAndDelimitedByTheClose() async throws {
        let (answer, record) = try await relay(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n3\r\ndef\r\n0\r\n\r\n", ["--http1.0"])
        XCTAssertEqual(answer.status, 200)
        XCTAssertEqual(answer.body, "abcdef", "no chunk framing toward an HTTP/1.0 client")
        XCTAssertNil(answer.header("transfer-encoding"))
        XCTAssertEqual(answer.header("connection"), "close")
        XCTAssertEqual(record["reason"] as? String, "allowed")
    }

    func testInterimResponsesAreConsumedAndTheFinalOneRelayed() async throws {
        let (answer, _) = try await relay(
            "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n"
                + "HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok")
        XCTAssertEqual(answer.status, 201)
        XCTAssertEqual(answer.body, "ok")
        XCTAssertNil(answer.header("link"))
    }

    func testAReasonPhraseAndRepeatedFieldsPassVerbatim() async throws {
        let (answer, _) = try await relay(
            "HTTP/1.1 418 Short And Stout\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\nX-Request-Id: upstream\r\nContent-Length: 3\r\n\r\ntea")
        XCTAssertEqual(answer.status, 418)
        XCTAssertEqual(answer.body, "tea")
        XCTAssertEqual(answer.headers.filter { $0.0.lowercased() == "set-cookie" }.map(\.1), ["a=1", "b=2"])
        XCTAssertNotEqual(answer.header("x-request-id"), "upstream", "the gateway's request id replaces the upstream's")
    }

    func testAResponseToHEADCarriesNoBody() async throws {
        let (answer, record) = try await relay("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", ["-I"])
        XCTAssertEqual(answer.status, 200)
        XCTAssertEqual(answer.header("content-length"), "5")
        XCTAssertEqual(answer.body, "")
        XCTAssertEqual(record["status"] as? Int, 200)
    }
}
