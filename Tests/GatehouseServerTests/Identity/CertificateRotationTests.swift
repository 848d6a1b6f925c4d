import Foundation
import GatehouseCore
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import XCTest

@testable import GatehouseServer

/// Rotation of the listener's certificate and key and of a trust bundle while the gateway
/// runs: files replaced atomically (as spiffe-helper and Kubernetes do), picked up by the
/// watcher or by `reloadTLSMaterial()` (SIGHUP), with one keep-alive connection held open
/// across the swap.
final class CertificateRotationTests: XCTestCase {
    /// The files the gateway's config points at, in a directory of their own.
    private struct Rotated {
        let directory: String
        var certificate: String { directory + "/server.pem" }
        var key: String { directory + "/server.key" }
        var prodBundle: String { directory + "/prod-bundle.pem" }

        /// Replaces `path` with the contents of `source` by rename, as rotation tools do.
        func replace(_ path: String, withContentsOf source: String) throws {
            try replace(path, with: try Data(contentsOf: URL(fileURLWithPath: source)))
        }

        func replace(_ path: String, with data: Data) throws {
            let temporary = directory + "/.incoming-\(UUID().uuidString)"
            try data.write(to: URL(fileURLWithPath: temporary))
            guard rename(temporary, path) == 0 else { throw POSIXError(.init(rawValue: errno) ?? .EIO) }
        }
    }

    private var pki: TestPKI.Files { try! TestPKI.files() }
    private var dev: DevPKIManifest { try! DevPKIFiles.files() }

    /// A gateway whose listener serves copies of TestPKI's server certificate and key and
    /// whose prod.example bundle is a copy of TestPKI's ca.pem; client certificates required.
    private func rotatingFixture() async throws -> (GatewayFixture, Rotated) {
        let rotated = Rotated(directory: temporaryPath("gatehouse-rotation-"))
        try FileManager.default.createDirectory(atPath: rotated.directory, withIntermediateDirectories: true)
        let pki = self.pki
        try rotated.replace(rotated.certificate, withContentsOf: pki.serverCertificate)
        try rotated.replace(rotated.key, withContentsOf: pki.serverKey)
        try rotated.replace(rotated.prodBundle, withContentsOf: pki.caCertificate)
        let fixture = try await GatewayFixture { config in
            config.listeners[0].tls = ListenerTLSConfig(
                certificatePath: rotated.certificate, privateKey: .file(rotated.key), clientCertificates: .required)
            config.listeners[0].timeouts.idle = .seconds(30)  // the held connection must outlive the test
            config.trustDomains = [
                TrustDomainConfig(name: "prod.example", bundlePath: rotated.prodBundle, location: MutualTLS.here),
                TrustDomainConfig(name: "staging.example", bundlePath: pki.stagingCACertificate, location: MutualTLS.here),
            ]
        }
        return (fixture, rotated)
    }

    /// Swaps in DevPKI's server certificate and key (another CA) and makes other-ca.pem the
    /// prod.example bundle.
    private func rotate(_ rotated: Rotated) throws {
        try rotated.replace(rotated.key, withContentsOf: dev[.serverKey])
        try rotated.replace(rotated.certificate, withContentsOf: dev[.serverCertificate])
        try rotated.replace(rotated.prodBundle, withContentsOf: pki.otherCACertificate)
    }

    /// Polls (bounded) until `condition` holds.
    private func eventually(timeout: TimeInterval = 5, _ condition: () -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if condition() { return true }
            usleep(20_000)
        }
        return condition()
    }

    /// After `rotate`: new handshakes get the new material, the held connection keeps working.
    private func assertRotated(_ fixture: GatewayFixture, held: KeepAliveTLSClient, file: StaticString = #filePath, line: UInt = #line) async throws {
        let newCA = dev[.caCertificate]
        // The client signed by other-ca.pem with a prod ID is now a prod.example workload...
        let otherCAClient = fixture.pki.client(.untrusted)
        let accepted = try MutualTLS.curl(fixture, "/new", client: otherCAClient, ca: newCA)
        XCTAssertEqual(accepted.response?.status, 200, "new CA, new bundle: \(accepted.stderr)", file: file, line: line)
        // ...the new server certificate no longer verifies with the old CA...
        let oldCA = try MutualTLS.curl(fixture, "/old-ca", client: otherCAClient)
        XCTAssertNotEqual(oldCA.exit, 0, "the old CA must not verify the new server certificate", file: file, line: line)
        // ...and the client from the old prod CA is refused.
        let oldClient = try MutualTLS.curl(fixture, "/old-client", client: fixture.pki.client(.prodCheckout), ca: newCA)
        XCTAssertNotEqual(oldClient.exit, 0, "the old prod client must be refused", file: file, line: line)

        // The connection opened before the swap keeps its handshake and its verified peer.
        let response = try await held.get("/held-after")
        XCTAssertEqual(response.status, 200, file: file, line: line)

        let seen = fixture.upstream.waitForRequests(3).map(\.head)
        XCTAssertEqual(seen.map(\.uri), ["/held-before", "/new", "/held-after"], file: file, line: line)
        XCTAssertEqual(seen.map { $0.headers["x-gatehouse-peer-id"] }, Array(repeating: [TestPKI.checkoutID], count: 3), file: file, line: line)
        // The gateway's own ID (XFCC's `By=`) comes from the server certificate of the
        // connection's handshake: TestPKI's has none, DevPKI's has one.
        let by = seen.map { $0.headers["x-forwarded-client-cert"].first?.hasPrefix("By=\(DevPKI.gatewaySPIFFEID);") }
        XCTAssertEqual(by, [false, true, false], file: file, line: line)
        let records = fixture.records(atLeast: 5)
        let refusal = records.first { $0.reason == "tls.untrusted_chain" }
        XCTAssertEqual(refusal?.peerID, TestPKI.checkoutID, "the old prod client's refusal: \(records.map(\.reason))", file: file, line: line)
        XCTAssertEqual(records.filter { $0.reason == "allowed" }.count, 3, file: file, line: line)
    }

    func testWatcherRotatesCertificateAndBundleUnderAHeldConnection() async throws {
        let (fixture, rotated) = try await rotatingFixture()
        defer { Task { await fixture.shutdown() } }
        let held = try await KeepAliveTLSClient.connect(
            group: fixture.group, port: fixture.port, ca: pki.caCertificate, client: pki.client(.prodCheckout))
        defer { Task { await held.close() } }
        let before = try await held.get("/held-before")
        XCTAssertEqual(before.status, 200)
        let heldServerCertificate = try await held.serverCertificateDER()
        let testPKIServer = try NIOSSLCertificate.fromPEMFile(pki.serverCertificate).first?.toDERBytes()
        XCTAssertEqual(heldServerCertificate, testPKIServer)

        let watcher = fixture.gateway.tlsWatcher
        let reloads = watcher.reloads.load(ordering: .relaxed)
        try rotate(rotated)
        // The listener and the prod.example bundle each reload once the watcher sees them.
        XCTAssertTrue(eventually { watcher.reloads.load(ordering: .relaxed) >= reloads + 2 }, "watcher did not reload within 5 s")

        try await assertRotated(fixture, held: held)
        let stillHeld = try await held.serverCertificateDER()
        XCTAssertEqual(stillHeld, heldServerCertificate, "the held connection is the one from before the swap")
    }

    func testReloadTLSMaterialAppliesAtOnce() async throws {
        let (fixture, rotated) = try await rotatingFixture()
        defer { Task { await fixture.shutdown() } }
        let held = try await KeepAliveTLSClient.connect(
            group: fixture.group, port: fixture.port, ca: pki.caCertificate, client: pki.client(.prodCheckout))
        defer { Task { await held.close() } }
        let before = try await held.get("/held-before")
        XCTAssertEqual(before.status, 200)

        let watcher = fixture.gateway.tlsWatcher
        let reloads = watcher.reloads.load(ordering: .relaxed)
        try rotate(rotated)
        await fixture.gateway.reloadTLSMaterial()  // as on SIGHUP: no waiting for the next poll
        // (Not asserting zero failures: a watcher poll landing between the key's and the
        // certificate's rename fails once on the mismatched pair, as it should.)
        XCTAssertGreaterThanOrEqual(watcher.reloads.load(ordering: .relaxed), reloads + 2)
        try await assertRotated(fixture, held: held)
    }

    func testBrokenMaterialKeepsTheLastGoodOne() async throws {
        let (fixture, rotated) = try await rotatingFixture()
        defer { Task { await fixture.shutdown() } }
        let client = pki.client(.prodCheckout)
        XCTAssertEqual(try MutualTLS.curl(fixture, "/before", client: client).response?.status, 200)

        let watcher = fixture.gateway.tlsWatcher
        let failures = watcher.failures.load(ordering: .relaxed)
        try rotated.replace(rotated.certificate, with: Data("not a certificate\n".utf8))
        XCTAssertTrue(eventually { watcher.failures.load(ordering: .relaxed) >= failures + 1 }, "watcher did not report the failure within 5 s")
        let afterWatcher = try MutualTLS.curl(fixture, "/after-watcher", client: client)
        XCTAssertEqual(afterWatcher.response?.status, 200, "the last good certificate stays in use: \(afterWatcher.stderr)")

        // A forced reload fails the same way and changes nothing either.
        let failuresBeforeForce = watcher.failures.load(ordering: .relaxed)
        await fixture.gateway.reloadTLSMaterial()
        XCTAssertGreaterThan(watcher.failures.load(ordering: .relaxed), failuresBeforeForce)
        let afterForce = try MutualTLS.curl(fixture, "/after-force", client: client)
        XCTAssertEqual(afterForce.response?.status, 200, afterForce.stderr)

        // Half a rotation: a valid certificate whose key is not the configured one. (The
        // forced reload also takes note of the change, so the watcher will not retry it.)
        let failuresBeforeMismatch = watcher.failures.load(ordering: .relaxed)
        try rotated.replace(rotated.certificate, withContentsOf: dev[.serverCertificate])
        await fixture.gateway.reloadTLSMaterial()
        XCTAssertGreaterThan(watcher.failures.load(ordering: .relaxed), failuresBeforeMismatch, "certificate and key do not match")
        let afterMismatch = try MutualTLS.curl(fixture, "/after-mismatch", client: client)
        XCTAssertEqual(afterMismatch.response?.status, 200, afterMismatch.stderr)

        // A broken bundle keeps the last good bundle too.
        let failuresBeforeBundle = watcher.failures.load(ordering: .relaxed)
        try rotated.replace(rotated.prodBundle, with: Data("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n".utf8))
        XCTAssertTrue(eventually { watcher.failures.load(ordering: .relaxed) > failuresBeforeBundle }, "bundle failure not reported within 5 s")
        let afterBundle = try MutualTLS.curl(fixture, "/after-bundle", client: client)
        XCTAssertEqual(afterBundle.response?.status, 200, afterBundle.stderr)

        // Once the files are good again, the next change is picked up.
        let reloads = watcher.reloads.load(ordering: .relaxed)
        try rotate(rotated)
        XCTAssertTrue(eventually { watcher.reloads.load(ordering: .relaxed) >= reloads + 2 }, "recovery not picked up within 5 s")
        let recovered = try MutualTLS.curl(fixture, "/recovered", client: pki.client(.untrusted), ca: dev[.caCertificate])
        XCTAssertEqual(recovered.response?.status, 200, recovered.stderr)
        XCTAssertEqual(fixture.upstream.waitForRequests(6).map(\.head.uri), ["/before", "/after-watcher", "/after-force", "/after-mismatch", "/after-bundle", "/recovered"])
    }

    /// Upstreams verified against a trust domain's bundle follow its rotation, every one of
    /// them even when another's own material is broken at the time.
    func testBundleRotationReachesEveryUpstreamVerifyingWithIt() async throws {
        let dev = self.dev
        let rotated = Rotated(directory: temporaryPath("gatehouse-rotation-"))
        try FileManager.default.createDirectory(atPath: rotated.directory, withIntermediateDirectories: true)
        try rotated.replace(rotated.prodBundle, withContentsOf: dev[.caCertificate])
        // Upstream `a-billing`'s client certificate lives in the rotated directory; `app`'s does not.
        try rotated.replace(rotated.certificate, withContentsOf: dev[.serverCertificate])
        try rotated.replace(rotated.key, withContentsOf: dev[.serverKey])
        let upstreamTLS = try DevPKIFiles.upstreamContext(
            certificate: dev[.upstreamCertificate], key: dev[.upstreamKey], clientCA: dev[.caCertificate])
        let fixture = try await GatewayFixture(upstreamTLS: upstreamTLS) { config in
            config.trustDomains = [TrustDomainConfig(name: "prod.example", bundlePath: rotated.prodBundle, location: MutualTLS.here)]
            let billing = try! SPIFFEID(parsing: DevPKI.upstreamSPIFFEID)
            var other = config.upstreams[0]
            other.name = "a-billing"
            other.tls = UpstreamTLSConfig(
                roots: .trustDomain("prod.example"), certificatePath: rotated.certificate, privateKey: .file(rotated.key),
                spiffeIDs: [billing])
            config.upstreams[0].tls = UpstreamTLSConfig(
                roots: .trustDomain("prod.example"), certificatePath: dev[.serverCertificate], privateKey: .file(dev[.serverKey]),
                spiffeIDs: [billing])
            config.upstreams.append(other)
            for index in config.upstreams.indices {
                config.upstreams[index].pool.maxIdlePerLoop = 0  // every request verifies a fresh handshake
                config.upstreams[index].connectTimeout = .seconds(3)
            }
            config.routes.insert(
                RouteConfig(name: "a", match: RouteMatch(path: .prefix("/a/")), upstream: "a-billing", location: MutualTLS.here), at: 0)
        }
        defer { Task { await fixture.shutdown() } }
        XCTAssertEqual(try fixture.curl("/a/before").status, 200)
        XCTAssertEqual(try fixture.curl("/before").status, 200)

        let watcher = fixture.gateway.tlsWatcher
        let failures = watcher.failures.load(ordering: .relaxed)
        try rotated.replace(rotated.certificate, with: Data("not a certificate\n".utf8))
        XCTAssertTrue(eventually { watcher.failures.load(ordering: .relaxed) >= failures + 1 }, "a-billing's broken certificate not reported")

        // The bundle no longer holds the CA that signed the upstream's SVID.
        let reloads = watcher.reloads.load(ordering: .relaxed)
        let failuresBeforeBundle = watcher.failures.load(ordering: .relaxed)
        try rotated.replace(rotated.prodBundle, withContentsOf: pki.otherCACertificate)
        XCTAssertTrue(
            eventually {
                watcher.reloads.load(ordering: .relaxed) > reloads || watcher.failures.load(ordering: .relaxed) > failuresBeforeBundle
            }, "bundle change not picked up")
        let after = try fixture.curl("/after")
        XCTAssertEqual(after.status, 502, "app must verify with the new bundle: \(after.body)")
        XCTAssertEqual(fixture.records(atLeast: 3).last?.reason, "upstream.tls_failed")
        XCTAssertEqual(fixture.upstream.waitForRequests(2, timeout: 1).map(\.head.uri), ["/a/before", "/before"])
    }
}

/// One HTTP/1.1 connection over TLS, held open for as many requests as the test sends:
/// NIOSSL's client handler, NIO's HTTP client handlers and a collector of responses.
final class KeepAliveTLSClient: Sendable {
    struct Response: Sendable {
        var status: Int
        var body: String
    }

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    let channel: Channel
    private let collector: NIOLoopBound<ResponseCollector>

    private init(channel: Channel, collector: NIOLoopBound<ResponseCollector>) {
        self.channel = channel
        self.collector = collector
    }

    static func connect(
        group: EventLoopGroup, port: Int, ca: String, client: (certificate: String, key: String)
    ) async throws -> KeepAliveTLSClient {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.trustRoots = .file(ca)
        configuration.certificateChain = try NIOSSLCertificate.fromPEMFile(client.certificate).map { .certificate($0) }
        configuration.privateKey = .privateKey(try NIOSSLPrivateKey(file: client.key, format: .pem))
        configuration.applicationProtocols = ["http/1.1"]
        let context = try NIOSSLContext(configuration: configuration)
        let channel = try await ClientBootstrap(group: group)
            .connectTimeout(.seconds(5))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(NIOSSLClientHandler(context: context, serverHostname: "localhost"))
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    try channel.pipeline.syncOperations.addHandler(ResponseCollector())
                }
            }
            .connect(host: "127.0.0.1", port: port).get()
        let collector = try await channel.eventLoop.submit {
            NIOLoopBound(try channel.pipeline.syncOperations.handler(type: ResponseCollector.self), eventLoop: channel.eventLoop)
        }.get()
        return KeepAliveTLSClient(channel: channel, collector: collector)
    }

    /// GET `path` on this connection; fails after `timeout` without an answer.
    func get(_ path: String, timeout: TimeAmount = .seconds(5)) async throws -> Response {
        let channel = self.channel
        let collector = self.collector
        let promise = channel.eventLoop.makePromise(of: Response.self)
        channel.eventLoop.execute {
            guard channel.isActive else {
                promise.fail(Failure(description: "the held connection was closed"))
                return
            }
            collector.value.waiting.append(promise)
            var head = HTTPRequestHead(version: .http1_1, method: .GET, uri: path)
            head.headers.add(name: "host", value: "localhost")
            channel.write(HTTPClientRequestPart.head(head), promise: nil)
            channel.writeAndFlush(HTTPClientRequestPart.end(nil)).whenFailure { promise.fail($0) }
        }
        let timer = channel.eventLoop.scheduleTask(in: timeout) {
            promise.fail(Failure(description: "no response to \(path) within \(timeout)"))
        }
        defer { timer.cancel() }
        return try await promise.futureResult.get()
    }

    /// DER of the certificate the gateway presented on this connection.
    func serverCertificateDER() async throws -> [UInt8]? {
        try await channel.nioSSL_peerCertificate().get()?.toDERBytes()
    }

    func close() async {
        try? await channel.close()
    }
}

/// Completes the oldest waiting request's promise with each full response.
final class ResponseCollector: ChannelInboundHandler {
    typealias InboundIn = HTTPClientResponsePart

    var waiting = CircularBuffer<EventLoopPromise<KeepAliveTLSClient.Response>>()
    private var status = 0
    private var body = ""

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            status = Int(head.status.code)
            body = ""
        case .body(let buffer):
            body += String(buffer: buffer)
        case .end:
            waiting.popFirst()?.succeed(.init(status: status, body: body))
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        while let promise = waiting.popFirst() {
            promise.fail(KeepAliveTLSClient.Failure(description: "connection closed"))
        }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        while let promise = waiting.popFirst() { promise.fail(error) }
        context.close(promise: nil)
    }
}

@available(*, unavailable)
extension ResponseCollector: Sendable {}
