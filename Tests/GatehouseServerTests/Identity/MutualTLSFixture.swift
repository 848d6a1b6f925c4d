import Foundation
import GatehouseCore
@testable import GatehouseServer

/// Config building blocks and client helpers for the mTLS end-to-end tests.
enum MutualTLS {
    static let here = SourceLocation(file: "test.yaml", line: 1, column: 1)

    /// Trust domains prod.example (TestPKI's ca.pem) and staging.example, a listener asking
    /// for client certificates in `mode`, and `routes` in place of the default catch-all.
    static func configure(
        _ config: inout GatewayConfig, pki: TestPKI.Files, mode: ClientCertificateMode, routes: [RouteConfig]
    ) {
        config.trustDomains = [
            TrustDomainConfig(name: "prod.example", bundlePath: pki.caCertificate, location: here),
            TrustDomainConfig(name: "staging.example", bundlePath: pki.stagingCACertificate, location: here),
        ]
        config.listeners[0].tls?.clientCertificates = mode
        config.routes = routes
    }

    static func route(
        _ name: String, _ path: PathMatch, methods: Set<String>? = nil, peers: [String]?,
        forward: ForwardClientCertMode = .set
    ) -> RouteConfig {
        RouteConfig(
            name: name, match: RouteMatch(path: path, methods: methods), upstream: "app",
            peers: peers.map { PeerPolicy(patterns: $0.map { try! SPIFFEIDPattern(parsing: $0) }) },
            forwardClientCert: forward, location: here)
    }

    /// curl with an optional client certificate; returns curl's exit status and the response
    /// (nil when the handshake or connection failed). `ca` verifies the gateway (default: TestPKI's).
    static func curl(
        _ fixture: GatewayFixture, _ path: String, client: (certificate: String, key: String)?, _ extra: [String] = [],
        ca: String? = nil
    ) throws -> (exit: Int32, response: CurlResponse?, stderr: String) {
        var arguments = ["-sS", "-i", "--max-time", "10", "--cacert", ca ?? fixture.pki.caCertificate]
        if let client { arguments += ["--cert", client.certificate, "--key", client.key] }
        let result = try Shell.run("/usr/bin/curl", arguments + extra + [fixture.baseURL + path])
        guard result.status == 0 else { return (result.status, nil, result.stderr) }
        return (0, CurlResponse.parse(result.stdout), "")
    }

    /// Lowercase hex SHA-256 of a PEM certificate's DER, computed by openssl (not by us).
    static func fingerprint(_ pemPath: String) throws -> String {
        let result = try Shell.run("/bin/sh", ["-c", "openssl x509 -in '\(pemPath)' -outform der | sha256sum"])
        return String(result.stdout.prefix(64))
    }
}

extension Dictionary where Key == String, Value == Any {
    var peerID: String? { (self["peer"] as? [String: Any])?["spiffe_id"] as? String }
    var peerHash: String? { (self["peer"] as? [String: Any])?["cert_sha256"] as? String }
    var reason: String? { self["reason"] as? String }
    var decision: String? { self["decision"] as? String }
}
