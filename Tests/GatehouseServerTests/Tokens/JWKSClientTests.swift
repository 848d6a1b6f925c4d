import Foundation
import GatehouseCore
import NIOHTTP1
import NIOPosix
import XCTest

@testable import GatehouseServer

/// The fetch of one `jwks_uri` against a real HTTPS test server, and the refresh schedule.
final class JWKSClientTests: XCTestCase {
    func testCacheControlMaxAge() {
        func maxAge(_ values: String...) -> Duration? {
            JWKSResponse.maxAge(HTTPHeaders(values.map { ("Cache-Control", $0) }))
        }
        XCTAssertNil(maxAge())
        XCTAssertEqual(maxAge("public, max-age=600"), .seconds(600))
        XCTAssertEqual(maxAge("max-age=600, no-cache"), .zero)
        XCTAssertEqual(maxAge("no-store"), .zero)
        XCTAssertEqual(maxAge("max-age=999999999"), .seconds(86_400), "bounded to a day")
        XCTAssertNil(maxAge("max-age=-5"))
        XCTAssertNil(maxAge("max-age=soon"))
    }

    func testTheRefreshIntervalFollowsMaxAgeWithinBounds() {
        let configured = Duration.seconds(300)
        XCTAssertEqual(JWKSRefresher.nextInterval(maxAge: nil, configured: configured), .seconds(300))
        XCTAssertEqual(JWKSRefresher.nextInterval(maxAge: .seconds(120), configured: configured), .seconds(120))
        XCTAssertEqual(JWKSRefresher.nextInterval(maxAge: .seconds(3600), configured: configured), .seconds(300), "never beyond the interval")
        XCTAssertEqual(JWKSRefresher.nextInterval(maxAge: .zero, configured: configured), .seconds(30), "never below 30 s")
        XCTAssertEqual(JWKSRefresher.nextInterval(maxAge: .zero, configured: .seconds(2)), .seconds(2), "unless configured below it")
    }

    func testFetchesConditionallyAndRefusesWhatIsNotAKeySet() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let pki = try TestPKI.files()
        let server = try TestJWKSServer(group: group, pki: pki, document: TestTokens.jwks(TestTokens.key, kid: "k1"))
        addTeardownBlock {
            server.stop()
            try? await group.shutdownGracefully()
        }
        server.update {
            $0.etag = "\"abc\""
            $0.cacheControl = "max-age=120"
        }
        let client = try JWKSClient(
            endpoint: JWKSEndpointConfig(url: HTTPSURL(host: "127.0.0.1", port: server.port, target: "/jwks?x=1"), caFile: pki.caCertificate),
            group: group)
        let first = try await client.fetch(etag: nil)
        XCTAssertEqual(first.content, .document(Array(TestTokens.jwks(TestTokens.key, kid: "k1").utf8), etag: "\"abc\""))
        XCTAssertEqual(first.maxAge, .seconds(120))
        let second = try await client.fetch(etag: "\"abc\"")
        XCTAssertEqual(second.content, .notModified)
        XCTAssertEqual(server.requests.map(\.uri), ["/jwks?x=1", "/jwks?x=1"])
        XCTAssertEqual(server.requests.map(\.ifNoneMatch), [nil, "\"abc\""])

        server.update { $0.failWith = .found }
        do {
            _ = try await client.fetch(etag: nil)
            XCTFail("a redirect is not followed")
        } catch {
            XCTAssertTrue("\(error)".hasSuffix("HTTP 302"), "\(error)")
        }
        server.update {
            $0.failWith = nil
            $0.document = String(repeating: " ", count: JWKSClient.maxBodyBytes + 1)
        }
        do {
            _ = try await client.fetch(etag: nil)
            XCTFail("an oversized body is refused")
        } catch {
            XCTAssertTrue("\(error)".contains("over \(JWKSClient.maxBodyBytes)"), "\(error)")
        }
    }

    func testAServerThatNeverAnswersTimesOut() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        addTeardownBlock { try? await group.shutdownGracefully() }
        // A TCP listener that accepts and never speaks TLS.
        let silent = try ServerBootstrap(group: group).bind(host: "127.0.0.1", port: 0).wait()
        addTeardownBlock { try? await silent.close() }
        let client = try JWKSClient(
            endpoint: JWKSEndpointConfig(url: HTTPSURL(host: "127.0.0.1", port: silent.localAddress!.port!, target: "/"), caFile: try TestPKI.files().caCertificate),
            group: group, timeout: .milliseconds(300))
        let started = Date()
        do {
            _ = try await client.fetch(etag: nil)
            XCTFail("no answer is not a key set")
        } catch {
            XCTAssertTrue("\(error)".contains("no answer within 300 ms"), "\(error)")
        }
        XCTAssertLessThan(Date().timeIntervalSince(started), 5)
    }
}
