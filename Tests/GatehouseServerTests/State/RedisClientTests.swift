import NIOCore
import NIOPosix
import NIOSSL
import XCTest

@testable import GatehouseServer

/// The RESP client against a real `redis-server`.
final class RedisClientTests: RedisTestCase {
    /// 1,000 commands in flight at once from two event loops, on two pipelined connections
    /// (one per loop) and on one shared connection (half the commands cross to the other
    /// loop): every reply reaches its own command, on the caller's loop.
    func testPipelinedCommandsFromTwoEventLoopsAreAllAnsweredCorrectly() throws {
        server = try RedisServer.start()
        let loops = [group.next(), group.next()]
        XCTAssertFalse(loops[0] === loops[1])
        for connections in [2, 1] {
            let client = try makeClient(settings(timeout: .seconds(5), connections: connections))
            XCTAssertTrue(waitUntilConnected(client))
            let batches = loops.enumerated().map { index, loop in
                loop.flatSubmit {
                    let futures = (0..<500).map { number in
                        let payload = "loop\(index)-\(number)-" + String(repeating: "x", count: number % 50)
                        return client.send(RedisCommand("ECHO", .string(payload)), on: loop).map { reply in
                            (reply.string == payload && loop.inEventLoop) ? 1 : 0
                        }
                    }
                    return EventLoopFuture.whenAllSucceed(futures, on: loop).map { $0.reduce(0, +) }
                }
            }
            let correct = try batches.map { try value($0, timeout: 20) }
            XCTAssertEqual(correct, [500, 500], "\(connections) connection(s): every reply matched its command, on its caller's loop")
        }
    }

    /// A server that stops answering (paused for 0.3 s) trips the 50 ms timeout, not the event
    /// loop; the connection is re-dialled and later commands succeed.
    func testSlowServerTripsTheTimeoutAndTheClientRecovers() throws {
        server = try RedisServer.start()
        let admin = try makeAdminClient()
        let client = try makeClient(settings(timeout: .milliseconds(50), connections: 1))
        XCTAssertTrue(waitUntilConnected(client))
        let loop = group.next()
        XCTAssertEqual(try value(client.send(RedisCommand("PING"), on: loop)), .simpleString("PONG"))

        try pauseServer(milliseconds: 300, using: admin)
        let started = NIODeadline.now()
        let outcome = try result(client.send(RedisCommand("PING"), on: loop))
        let elapsed = NIODeadline.now() - started
        XCTAssertThrowsError(try outcome.get()) { error in
            XCTAssertEqual((error as? RedisClientError)?.kind, .timeout, "\(error)")
        }
        XCTAssertGreaterThanOrEqual(elapsed, .milliseconds(45))
        XCTAssertLessThan(elapsed, .milliseconds(200), "fails at about the timeout, not when the server wakes")

        let recovered = RedisServer.waitUntil(timeout: 3) {
            (try? self.result(client.send(RedisCommand("PING"), on: loop)).get()) == .simpleString("PONG")
        }
        XCTAssertTrue(recovered, "a later command succeeds on a fresh connection")
    }

    /// With the server gone, commands fail at once (nothing queues or hangs); once it is back
    /// on the same port the client reconnects by itself.
    func testStoppedServerFailsFastAndTheClientReconnectsAfterRestart() throws {
        server = try RedisServer.start()
        let client = try makeClient(settings(connections: 2))
        XCTAssertTrue(waitUntilConnected(client))
        let loop = group.next()

        server.stop()
        XCTAssertTrue(RedisServer.waitUntil(timeout: 2) { !client.isConnected }, "the loss is noticed")
        for _ in 0..<20 {
            let started = NIODeadline.now()
            XCTAssertThrowsError(try value(client.send(RedisCommand("PING"), on: loop))) { error in
                XCTAssertEqual((error as? RedisClientError)?.kind, .unavailable, "\(error)")
            }
            XCTAssertLessThan(NIODeadline.now() - started, .milliseconds(20), "fails fast while down")
            usleep(25_000)
        }

        try server.restart()
        let restarted = NIODeadline.now()
        let back = RedisServer.waitUntil(timeout: 3) {
            (try? self.result(client.send(RedisCommand("PING"), on: loop)).get()) == .simpleString("PONG")
        }
        let recovery = NIODeadline.now() - restarted
        XCTAssertTrue(back, "reconnected by itself")
        XCTAssertLessThan(recovery, .milliseconds(1_500), "back within the 1 s backoff cap (took \(recovery.nanoseconds / 1_000_000) ms)")
    }

    /// The FIFO of a connection is bounded: with the server asleep, commands beyond the bound
    /// fail at once instead of queueing.
    func testCommandsBeyondTheInFlightBoundFailAtOnce() throws {
        server = try RedisServer.start()
        let admin = try makeAdminClient()
        var settings = settings(timeout: .seconds(2), connections: 1)
        settings.maxPendingCommandsPerConnection = 10
        let client = try makeClient(settings)
        XCTAssertTrue(waitUntilConnected(client))
        let loop = group.next()
        try pauseServer(milliseconds: 300, using: admin)
        let held = (0..<10).map { _ in client.send(RedisCommand("PING"), on: loop) }
        XCTAssertThrowsError(try value(client.send(RedisCommand("PING"), on: loop), timeout: 0.1)) { error in
            XCTAssertEqual((error as? RedisClientError)?.kind, .backlogFull, "\(error)")
        }
        for future in held { XCTAssertEqual(try value(future), .simpleString("PONG"), "the ten in flight are answered") }
        XCTAssertEqual(try value(client.send(RedisCommand("PING"), on: loop)), .simpleString("PONG"), "room again")
    }

    /// A server that announces a 2 MB bulk string (over the 1 MiB bound) gets a protocol
    /// error and a closed connection, not a 2 MB buffer.
    func testHostileServerReplyIsAProtocolError() throws {
        let hostile = try ServerBootstrap(group: group)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(HostileRedisHandler())
                }
            }
            .bind(host: "127.0.0.1", port: 0).wait()
        defer { try? hostile.close().wait() }
        let client = try makeClient(settings(port: hostile.localAddress!.port!))
        let message = try firstSettledFailure(client)
        XCTAssertTrue(message.contains("protocol") && message.contains("exceeds the limit"), message)
        XCTAssertFalse(client.isConnected)
    }

    func testAuthenticationWithTheRightPassword() throws {
        server = try RedisServer.start(password: "s3cret-pass")
        var settings = settings()
        settings.password = Array("s3cret-pass".utf8)
        let client = try makeClient(settings)
        XCTAssertTrue(waitUntilConnected(client))
        XCTAssertEqual(try value(client.send(RedisCommand("PING"), on: group.next())), .simpleString("PONG"))
    }

    /// Redis 6 ACLs: `AUTH username password`.
    func testAuthenticationAsANamedUser() throws {
        server = try RedisServer.start(extraArguments: ["--user", "default", "off", "--user", "gatehouse", "on", ">user-pass", "~*", "&*", "+@all"])
        var settings = settings()
        settings.username = "gatehouse"
        settings.password = Array("user-pass".utf8)
        let client = try makeClient(settings)
        XCTAssertTrue(waitUntilConnected(client))
        XCTAssertEqual(try value(client.send(RedisCommand("ACL", "WHOAMI"), on: group.next())).string, "gatehouse")

        settings.username = nil  // `AUTH user-pass` is the disabled default user's
        let wrong = try makeClient(settings)
        let message = try firstSettledFailure(wrong)
        XCTAssertTrue(message.contains("WRONGPASS"), message)
    }

    func testMissingPasswordIsAClearError() throws {
        server = try RedisServer.start(password: "s3cret-pass")
        let client = try makeClient(settings())
        let message = try firstSettledFailure(client)
        XCTAssertTrue(message.contains("NOAUTH"), message)
        XCTAssertFalse(client.isConnected, "a connection that failed its set-up is never used")
    }

    func testWrongPasswordIsAClearErrorThatDoesNotCarryThePassword() throws {
        server = try RedisServer.start(password: "s3cret-pass")
        var settings = settings()
        settings.password = Array("wrong-pass-123".utf8)
        let client = try makeClient(settings)
        let message = try firstSettledFailure(client)
        XCTAssertTrue(message.contains("AUTH") && message.contains("WRONGPASS"), message)
        XCTAssertFalse(message.contains("wrong-pass-123"), "never shows the password")
    }

    /// TLS with the CA of the server's certificate, the name it carries, and a client
    /// certificate (the server requires one).
    func testTLSWithAClientCertificate() throws {
        let pki = try TestPKI.files()
        server = try RedisServer.start(tls: .init(certificate: pki.serverCertificate, key: pki.serverKey, caCertificate: pki.caCertificate, requireClientCertificate: true))
        var settings = settings(port: server.tlsPort!)
        var tls = RedisTLSSettings(roots: .certificates(try NIOSSLCertificate.fromPEMFile(pki.caCertificate)), serverName: "localhost")
        let client = pki.client(.prodCheckout)
        tls.certificateChain = try NIOSSLCertificate.fromPEMFile(client.certificate)
        tls.privateKey = try NIOSSLPrivateKey(file: client.key, format: .pem)
        settings.tls = tls
        let redis = try makeClient(settings)
        XCTAssertTrue(waitUntilConnected(redis), "TLS connection up")
        XCTAssertEqual(try value(redis.send(RedisCommand("ECHO", "over tls"), on: group.next())).string, "over tls")
    }

    func testTLSRefusesAServerItDoesNotTrust() throws {
        let pki = try TestPKI.files()
        server = try RedisServer.start(tls: .init(certificate: pki.serverCertificate, key: pki.serverKey, caCertificate: pki.caCertificate))
        var settings = settings(port: server.tlsPort!)
        settings.tls = RedisTLSSettings(roots: .certificates(try NIOSSLCertificate.fromPEMFile(pki.otherCACertificate)), serverName: "localhost")
        let client = try makeClient(settings)
        let message = try firstSettledFailure(client)
        XCTAssertFalse(client.isConnected)
        XCTAssertTrue(message.contains("unavailable") && message.contains("TLS handshake failed"), message)
    }

    func testTLSRefusesTheWrongServerName() throws {
        let pki = try TestPKI.files()
        server = try RedisServer.start(tls: .init(certificate: pki.serverCertificate, key: pki.serverKey, caCertificate: pki.caCertificate))
        var settings = settings(port: server.tlsPort!)
        settings.tls = RedisTLSSettings(roots: .certificates(try NIOSSLCertificate.fromPEMFile(pki.caCertificate)), serverName: "redis.example")
        let client = try makeClient(settings)
        let message = try firstSettledFailure(client)
        XCTAssertTrue(message.contains("not valid for redis.example"), message)
        XCTAssertFalse(client.isConnected, "the certificate's IP SAN matching the socket is not enough")
    }

    /// The error of a command once the first dial has finished (bounded), for set-up failures.
    private func firstSettledFailure(_ client: RedisClient) throws -> String {
        let loop = group.next()
        var message = ""
        let settled = RedisServer.waitUntil(timeout: 3) {
            guard case .failure(let error) = try? self.result(client.send(RedisCommand("PING"), on: loop)) else { return false }
            message = "\(error)"
            return !message.contains("not connected yet")
        }
        XCTAssertTrue(settled, "the first dial finishes: \(message)")
        return message
    }
}

/// Answers anything with the start of a bulk string too long to accept.
private final class HostileRedisHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: "$2000000\r\n" + String(repeating: "x", count: 1000))), promise: nil)
    }
}
