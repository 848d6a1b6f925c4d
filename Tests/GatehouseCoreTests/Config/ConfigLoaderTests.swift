import Foundation
import XCTest

@testable import GatehouseCore

/// Every error test asserts the exact rendered line, so that line/column (1-based, like
/// editors) and key paths are pinned down.
final class ConfigLoaderTests: XCTestCase {
    private func errors(_ yaml: String, file: StaticString = #filePath, line: UInt = #line) -> [String] {
        configErrors(yaml, file: file, line: line)
    }

    /// A small valid file; tests append or replace lines to break it.
    private let minimal = """
        environment: prod
        listeners:
          - name: public
            address: 127.0.0.1:0
            insecure_plaintext: true
        upstreams:
          app:
            endpoints: ["127.0.0.1:9000"]
        routes:
          - name: all
            match: { path_prefix: / }
            upstream: app

        """

    // MARK: Valid files

    func testFullConfigRoundTrips() throws {
        let yaml = """
            environment: prod
            listeners:
              - name: public
                address: 0.0.0.0:8443
                tls:
                  certificate: /etc/gatehouse/server.pem
                  private_key: file:/etc/gatehouse/server.key
                  min_version: "1.3"
                trusted_proxies: [10.0.0.0/8, "::1/128", 192.168.1.1]
                max_connections: 5_000
                merge_slashes: true
                expose_reason: true
                limits:
                  max_header_bytes: 16KiB
                  max_header_count: 50
                  max_uri_bytes: 4096
                  max_body_bytes: 2MiB
                timeouts:
                  handshake: 5s
                  header_read: 500ms
                  idle: 2m
                  drain: 1h
              - name: internal
                address: "[::1]:0"
                insecure_plaintext: true
            admin:
              address: 127.0.0.1:9902
            upstreams:
              search:
                endpoints: ["search.internal:80"]
              billing:
                endpoints: ["127.0.0.1:9000", "10.0.0.2:9000"]
                connect_timeout: 1s
                response_timeout: 45s
                pool: { max_idle_per_loop: 8, max_connections_per_loop: 16, max_pending_per_loop: 0, idle_timeout: 90s }
                ejection: { consecutive_failures: 3, duration: 10s }
            routes:
              - name: billing-read
                match:
                  host: API.Example.com
                  path_prefix: /billing
                  methods: [GET, HEAD]
                upstream: billing
                max_body_bytes: 1KiB
              - name: billing.write
                match:
                  host: api.example.com
                  path_prefix: /billing
                  methods: [POST]
                upstream: billing
              - name: health
                match: { path: /healthz }
                upstream: search
            decision_log:
              path: /var/log/gatehouse/decisions.jsonl
              queue_capacity: 1024

            """
        let config = try ConfigLoader.parse(yaml: yaml, file: "gatehouse.yaml")

        XCTAssertEqual(config.environment, "prod")
        XCTAssertEqual(config.sourceFile, "gatehouse.yaml")
        XCTAssertEqual(config.version, ConfigLoader.sha256Hex(Data(yaml.utf8)))
        XCTAssertEqual(config.version.count, 64)

        var limits = RequestLimits()
        limits.maxHeaderBytes = 16 * 1024
        limits.maxHeaderCount = 50
        limits.maxURIBytes = 4096
        limits.maxBodyBytes = 2 * 1024 * 1024
        var timeouts = ListenerTimeouts()
        timeouts.handshake = .seconds(5)
        timeouts.headerRead = .milliseconds(500)
        timeouts.idle = .seconds(120)
        timeouts.drain = .seconds(3600)
        let publicListener = ListenerConfig(
            name: "public", address: HostPort(host: "0.0.0.0", port: 8443),
            tls: ListenerTLSConfig(
                certificatePath: "/etc/gatehouse/server.pem", privateKey: .file("/etc/gatehouse/server.key"),
                minimumVersion: .v1_3),
            insecurePlaintext: false,
            trustedProxies: [
                CIDR(address: [10, 0, 0, 0], prefixLength: 8),
                CIDR(address: [UInt8](repeating: 0, count: 15) + [1], prefixLength: 128),
                CIDR(address: [192, 168, 1, 1], prefixLength: 32),
            ],
            limits: limits, timeouts: timeouts, maxConnections: 5000, mergeSlashes: true, exposeReason: true,
            location: SourceLocation(file: "gatehouse.yaml", line: 3, column: 5))
        let internalListener = ListenerConfig(
            name: "internal", address: HostPort(host: "::1", port: 0), tls: nil, insecurePlaintext: true,
            location: SourceLocation(file: "gatehouse.yaml", line: 23, column: 5))
        XCTAssertEqual(config.listeners, [publicListener, internalListener])

        XCTAssertEqual(config.admin, AdminConfig(address: HostPort(host: "127.0.0.1", port: 9902)))

        let search = UpstreamConfig(
            name: "search", endpoints: [HostPort(host: "search.internal", port: 80)],
            location: SourceLocation(file: "gatehouse.yaml", line: 29, column: 3))
        var billing = UpstreamConfig(
            name: "billing",
            endpoints: [HostPort(host: "127.0.0.1", port: 9000), HostPort(host: "10.0.0.2", port: 9000)],
            location: SourceLocation(file: "gatehouse.yaml", line: 31, column: 3))
        billing.connectTimeout = .seconds(1)
        billing.responseTimeout = .seconds(45)
        billing.pool.maxIdlePerLoop = 8
        billing.pool.maxConnectionsPerLoop = 16
        billing.pool.maxPendingPerLoop = 0
        billing.pool.idleTimeout = .seconds(90)
        billing.ejection.consecutiveFailures = 3
        billing.ejection.duration = .seconds(10)
        XCTAssertEqual(config.upstreams, [search, billing])

        XCTAssertEqual(config.routes, [
            RouteConfig(
                name: "billing-read",
                match: RouteMatch(host: "api.example.com", path: .prefix("/billing"), methods: ["GET", "HEAD"]),
                upstream: "billing", maxBodyBytes: 1024,
                location: SourceLocation(file: "gatehouse.yaml", line: 38, column: 5)),
            RouteConfig(
                name: "billing.write",
                match: RouteMatch(host: "api.example.com", path: .prefix("/billing"), methods: ["POST"]),
                upstream: "billing",
                location: SourceLocation(file: "gatehouse.yaml", line: 45, column: 5)),
            RouteConfig(
                name: "health", match: RouteMatch(path: .exact("/healthz")), upstream: "search",
                location: SourceLocation(file: "gatehouse.yaml", line: 51, column: 5)),
        ])

        var decisionLog = DecisionLogConfig(path: "/var/log/gatehouse/decisions.jsonl")
        decisionLog.queueCapacity = 1024
        XCTAssertEqual(config.decisionLog, decisionLog)
    }

    func testDefaultsApplied() throws {
        let config = try ConfigLoader.parse(yaml: minimal, file: "t.yaml")
        let listener = try XCTUnwrap(config.listeners.first)
        XCTAssertNil(listener.tls)
        XCTAssertTrue(listener.insecurePlaintext)
        XCTAssertEqual(listener.trustedProxies, [])
        XCTAssertEqual(listener.maxConnections, 10_000)
        XCTAssertFalse(listener.mergeSlashes)
        XCTAssertFalse(listener.exposeReason)
        XCTAssertEqual(listener.limits, RequestLimits())
        XCTAssertEqual(listener.limits.maxHeaderBytes, 32 * 1024)
        XCTAssertEqual(listener.timeouts, ListenerTimeouts())
        XCTAssertEqual(config.admin.address, HostPort(host: "127.0.0.1", port: 9901))
        XCTAssertEqual(config.upstreams.first?.connectTimeout, .seconds(2))
        XCTAssertEqual(config.upstreams.first?.pool, UpstreamPoolConfig())
        XCTAssertEqual(config.upstreams.first?.ejection, EjectionConfig())
        XCTAssertEqual(config.routes.first?.match, RouteMatch(host: nil, path: .prefix("/"), methods: nil))
        XCTAssertNil(config.routes.first?.maxBodyBytes)
        XCTAssertEqual(config.decisionLog.path, "-")
        XCTAssertEqual(config.decisionLog.queueCapacity, 65_536)
    }

    func testTLSDefaultsAndAdminDisabled() throws {
        let yaml = """
            environment: staging
            listeners:
              - name: public
                address: "[::]:8443"
                tls:
                  certificate: server.pem
                  private_key: env:GATEHOUSE_TLS_KEY
                  min_version: 1.2
            admin:
              enabled: false
            upstreams: {}
            routes: []

            """
        let config = try ConfigLoader.parse(yaml: yaml, file: "t.yaml")
        XCTAssertEqual(config.listeners.first?.tls,
                       ListenerTLSConfig(certificatePath: "server.pem", privateKey: .environment("GATEHOUSE_TLS_KEY")))
        XCTAssertEqual(config.listeners.first?.address, HostPort(host: "::", port: 8443))
        XCTAssertNil(config.admin.address)
    }

    func testLoadFromFileHashesTheBytes() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("gatehouse-\(UUID().uuidString).yaml").path
        try Data(minimal.utf8).write(to: URL(fileURLWithPath: path))
        defer { try? FileManager.default.removeItem(atPath: path) }
        let config = try ConfigLoader.load(path: path)
        XCTAssertEqual(config.sourceFile, path)
        // sha256 of the same bytes, computed independently of the loader's helper.
        XCTAssertEqual(config.version, try ConfigLoader.parse(yaml: minimal, file: "other").version)
        XCTAssertTrue(config.version.allSatisfy { "0123456789abcdef".contains($0) })
        XCTAssertEqual(ConfigLoader.sha256Hex(Data("abc".utf8)),
                       "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    }

    // MARK: File-level errors

    func testUnreadableFileIsReportedAtLineZero() {
        XCTAssertThrowsError(try ConfigLoader.load(path: "/nonexistent/gatehouse.yaml")) { error in
            XCTAssertEqual((error as? ConfigErrors)?.issues.map(\.description),
                           ["/nonexistent/gatehouse.yaml:0:0: <root>: cannot read the configuration file (no such file)"])
        }
    }

    func testYAMLSyntaxError() {
        XCTAssertEqual(errors("""
            environment: prod
            listeners:
              - name: "public
            """), [
                "t.yaml:3:18: <root>: invalid YAML: found unexpected end of stream (while scanning a quoted scalar started at line 3, column 11)",
            ])
        XCTAssertEqual(errors("environment: prod\n  bad: indentation\n"), [
            "t.yaml:2:6: <root>: invalid YAML: mapping values are not allowed in this context",
        ])
    }

    func testEmptyFile() {
        XCTAssertEqual(errors("# nothing here\n"), [
            "t.yaml:1:1: <root>: the configuration is empty (expected a mapping with `environment`, `listeners`, `upstreams` and `routes`)",
        ])
        XCTAssertEqual(errors("- a\n- b\n"), ["t.yaml:1:1: <root>: wrong type: found a list (expected a mapping)"])
    }

    // MARK: Keys

    func testUnknownKeyWithSuggestionAndMissingRequiredKey() {
        XCTAssertEqual(errors("""
            environment: prod
            listeners:
              - name: public
                adress: 0.0.0.0:8443
                insecure_plaintext: true
            upstreams: {}
            routes: []
            """), [
                "t.yaml:3:5: listeners[0].address: required key is missing",
                "t.yaml:4:5: listeners[0].adress: unknown key (did you mean `address`?)",
            ])
    }

    func testUnknownKeyWithoutSuggestionListsKnownKeys() {
        XCTAssertEqual(errors(minimal + "colour: blue\n"), [
            "t.yaml:13:1: colour: unknown key (expected one of `environment`, `version`, `listeners`, `admin`, `trust_domains`, `issuers`, `token_minting`, `upstreams`, `routes`, `decision_log`, `state`, `rate_limits`, `rollout`)",
        ])
    }

    func testMissingRequiredKeysAreReportedAtTheParentMapping() {
        XCTAssertEqual(errors("""
            listeners:
              - name: public
                insecure_plaintext: true
            routes:
              - match: { path: /x }
            """), [
                "t.yaml:1:1: environment: required key is missing (expected a name such as `prod`)",
                "t.yaml:1:1: upstreams: required key is missing (expected a mapping of upstream names to upstreams)",
                "t.yaml:2:5: listeners[0].address: required key is missing",
                "t.yaml:5:5: routes[0].name: required key is missing",
                "t.yaml:5:5: routes[0].upstream: required key is missing (expected the name of an entry of `upstreams`)",
            ])
    }

    func testAnEmptyRolloutNamesWhatItNeeds() {
        let yaml = minimal + "rollout: {}\n"
        XCTAssertEqual(errors(yaml), [
            "t.yaml:13:10: rollout.candidate: required key is missing (expected the path of the candidate policy file)",
            "t.yaml:13:10: rollout.mode: required key is missing (expected `shadow` or `canary`)",
        ])
    }

    func testDuplicateKeysAreAllReportedWithKeyPaths() {
        XCTAssertEqual(errors("""
            environment: prod
            listeners:
              - name: public
                address: 127.0.0.1:0
                address: 127.0.0.1:1
                insecure_plaintext: true
            environment: staging
            upstreams: { app: { endpoints: ["127.0.0.1:1"], endpoints: [] } }
            routes: []
            colour: blue
            """), [
                "t.yaml:5:5: listeners[0].address: duplicate key (first defined on line 4)",
                "t.yaml:7:1: environment: duplicate key (first defined on line 1)",
                "t.yaml:8:49: upstreams.app.endpoints: duplicate key (first defined on line 8)",
                "t.yaml:10:1: colour: unknown key (expected one of `environment`, `version`, `listeners`, `admin`, `trust_domains`, `issuers`, `token_minting`, `upstreams`, `routes`, `decision_log`, `state`, `rate_limits`, `rollout`)",
            ])
    }

    func testMergeKeysAreRejected() {
        XCTAssertEqual(errors(minimal + "decision_log:\n  <<: { path: x }\n"), [
            "t.yaml:14:3: decision_log: merge keys (`<<`) are not supported (expected keys written out)",
        ])
    }

    // MARK: Types and values

    func testWrongTypesNameTheExpectedType() {
        XCTAssertEqual(errors("""
            environment: [prod]
            listeners:
              - name: public
                address: 127.0.0.1:0
                insecure_plaintext: "yes"
                max_connections: lots
                merge_slashes: 1
                trusted_proxies: 10.0.0.0/8
                limits: 1MiB
            upstreams: []
            routes: {}
            """), [
                "t.yaml:1:14: environment: wrong type: found a list (expected a string)",
                "t.yaml:5:25: listeners[0].insecure_plaintext: wrong type: found a string (expected `true` or `false`)",
                "t.yaml:6:22: listeners[0].max_connections: wrong type: found a string (expected an integer)",
                "t.yaml:7:20: listeners[0].merge_slashes: wrong type: found an integer (expected `true` or `false`)",
                "t.yaml:8:22: listeners[0].trusted_proxies: wrong type: found a string (expected a list)",
                "t.yaml:9:13: listeners[0].limits: wrong type: found a string (expected a mapping)",
                "t.yaml:10:12: upstreams: wrong type: found a list (expected a mapping)",
                "t.yaml:11:9: routes: wrong type: found a mapping (expected a list)",
            ])
    }

    func testBadScalarValues() {
        XCTAssertEqual(errors("""
            environment: Prod
            listeners:
              - name: public
                address: 127.0.0.1:70000
                insecure_plaintext: true
                max_connections: 0
                trusted_proxies: [10.0.0.0/8, 10.0.0.0/40, "fe80::1%eth0"]
                limits: { max_header_bytes: 32KB, max_body_bytes: 0 }
                timeouts: { idle: 60, drain: 2d, handshake: 48h }
            upstreams:
              app:
                endpoints: ["::1:80", "app:80", "app:80"]
            routes: []
            """), [
                "t.yaml:1:14: environment: `Prod` is not a valid name (expected lowercase letters, digits, `_` and `-` ([a-z0-9_-]+))",
                "t.yaml:4:14: listeners[0].address: port 70000 is out of range (expected 0-65535)",
                "t.yaml:6:22: listeners[0].max_connections: 0 is out of range (expected 1-1000000)",
                "t.yaml:7:35: listeners[0].trusted_proxies[1]: `/40` is not a valid prefix length (expected 0-32)",
                "t.yaml:7:48: listeners[0].trusted_proxies[2]: `fe80::1%eth0` is not an IP address (expected an IP address or CIDR block, e.g. `10.0.0.0/8` or `::1/128`)",
                "t.yaml:8:33: listeners[0].limits.max_header_bytes: `32KB` has an unknown unit `KB` (expected B, KiB, MiB or GiB (binary units only))",
                "t.yaml:8:55: listeners[0].limits.max_body_bytes: size must be greater than zero (expected a byte count, optionally with a unit B, KiB, MiB or GiB, e.g. `32KiB`)",
                "t.yaml:9:23: listeners[0].timeouts.idle: `60` has no unit (expected an integer with a unit ms, s, m or h, e.g. `500ms`, `10s`, `5m`)",
                "t.yaml:9:34: listeners[0].timeouts.drain: `2d` has an unknown unit `d` (expected ms, s, m or h)",
                "t.yaml:9:49: listeners[0].timeouts.handshake: `48h` is longer than 24h (expected at most 24h)",
                "t.yaml:12:17: upstreams.app.endpoints[0]: IPv6 addresses must be in brackets (expected e.g. `[::1]:8443`)",
                "t.yaml:12:37: upstreams.app.endpoints[2]: duplicate endpoint `app:80` (already listed as upstreams.app.endpoints[1])",
            ])
    }

    func testInlinePrivateKeyIsRefusedWithoutEchoingIt() {
        let issues = errors("""
            environment: prod
            listeners:
              - name: public
                address: 127.0.0.1:0
                tls:
                  certificate: server.pem
                  private_key: |
                    -----BEGIN PRIVATE KEY-----
                    MIIEvQIBADANBgkqhkiG9w0BAQEFAASC
                    -----END PRIVATE KEY-----
              - name: second
                address: 127.0.0.1:0
                tls: { certificate: "", private_key: hunter2 }
            upstreams: {}
            routes: []
            """)
        XCTAssertEqual(issues, [
            "t.yaml:7:20: listeners[0].tls.private_key: secrets are never inline; write the key to a file and reference it (expected `env:NAME` or `file:/path/to/key.pem`)",
            "t.yaml:13:25: listeners[1].tls.certificate: must not be empty (expected a non-empty string)",
            "t.yaml:13:42: listeners[1].tls.private_key: not a secret reference; secrets are never inline (expected `env:NAME` or `file:/path/to/key.pem`)",
        ])
        XCTAssertFalse(issues.joined().contains("MIIE"))
        XCTAssertFalse(issues.joined().contains("hunter2"))
    }

    func testTLSAndPlaintextRules() {
        XCTAssertEqual(errors("""
            environment: prod
            listeners:
              - name: a
                address: 127.0.0.1:0
              - name: b
                address: 127.0.0.1:0
                insecure_plaintext: true
                tls: { certificate: c.pem, private_key: "file:k.pem", min_version: "1.1" }
            upstreams: {}
            routes: []
            """), [
                "t.yaml:3:5: listeners[0].tls: required key is missing (expected a `tls` section, or `insecure_plaintext: true` for a plaintext listener)",
                "t.yaml:7:25: listeners[1].insecure_plaintext: cannot be combined with `tls` (expected either a `tls` section or `insecure_plaintext: true`)",
                "t.yaml:8:72: listeners[1].tls.min_version: unsupported TLS version (expected \"1.2\" or \"1.3\")",
            ])
    }

    func testListenerNamesAndAddressesAreUnique() {
        XCTAssertEqual(errors("""
            environment: prod
            listeners:
              - { name: a, address: "127.0.0.1:8080", insecure_plaintext: true }
              - { name: a, address: "127.0.0.1:8080", insecure_plaintext: true }
            admin: { address: "127.0.0.1:8080" }
            upstreams: {}
            routes: []
            """), [
                "t.yaml:4:13: listeners[1].name: duplicate listener name `a` (already used by listeners[0])",
                "t.yaml:4:25: listeners[1].address: duplicate listener address `127.0.0.1:8080` (already used by listeners[0])",
                "t.yaml:5:19: admin.address: address `127.0.0.1:8080` is already used by listener `a`",
            ])
    }

    func testAdminAddressNullPointsAtEnabledFalse() {
        XCTAssertEqual(errors(minimal + "admin:\n  address: null\n"), [
            "t.yaml:14:12: admin.address: wrong type: found null (expected `host:port`; to turn the admin listener off, write `enabled: false`)",
        ])
    }

    // MARK: Routes

    func testUnknownUpstreamReference() {
        XCTAssertEqual(errors(minimal.replacingOccurrences(of: "upstream: app", with: "upstream: ap")), [
            "t.yaml:12:15: routes[0].upstream: unknown upstream `ap` (did you mean `app`?) (expected one of `app`)",
        ])
    }

    func testRouteMatchValidation() {
        XCTAssertEqual(errors("""
            environment: prod
            listeners: [{ name: a, address: "127.0.0.1:0", insecure_plaintext: true }]
            upstreams: { app: { endpoints: ["127.0.0.1:1"] } }
            routes:
              - name: Bad Name
                match: { host: "api.example.com:443", path_prefix: billing, methods: [get, POST, POST] }
                upstream: app
              - name: both
                match: { path: /a, path_prefix: /a }
                upstream: app
              - name: neither
                match: { methods: [] }
                upstream: app
                max_body_bytes: 1MB
            """), [
                "t.yaml:5:11: routes[0].name: `Bad Name` is not a valid name (expected lowercase letters, digits, `_`, `-` and `.` ([a-z0-9_.-]+))",
                "t.yaml:6:20: routes[0].match.host: `api.example.com:443` contains a port (expected a host name or IP address without port, e.g. `api.example.com`)",
                "t.yaml:6:56: routes[0].match.path_prefix: path must start with `/` (expected a normalised, decoded path starting with `/`, e.g. `/billing`)",
                "t.yaml:6:75: routes[0].match.methods[0]: methods are case-sensitive; did you mean `GET`? (expected an uppercase method such as `GET`)",
                "t.yaml:6:86: routes[0].match.methods[2]: duplicate method `POST`",
                "t.yaml:9:20: routes[1].match.path: `path` and `path_prefix` cannot both be set (expected exactly one of them)",
                "t.yaml:12:12: routes[2].match: no path to match (expected exactly one of `path_prefix` or `path`)",
                "t.yaml:12:23: routes[2].match.methods: must not be empty (expected at least one entry)",
                "t.yaml:14:21: routes[2].max_body_bytes: `1MB` has an unknown unit `MB` (expected B, KiB, MiB or GiB (binary units only))",
            ])
    }

    func testRouteNamesUniqueAndMatchesUnambiguous() {
        XCTAssertEqual(errors("""
            environment: prod
            listeners: [{ name: a, address: "127.0.0.1:0", insecure_plaintext: true }]
            upstreams: { app: { endpoints: ["127.0.0.1:1"] } }
            routes:
              - { name: r1, match: { host: x.com, path_prefix: /a, methods: [GET, POST] }, upstream: app }
              - { name: r2, match: { host: X.com, path_prefix: /a, methods: [POST] }, upstream: app }
              - { name: r3, match: { host: x.com, path_prefix: /a, methods: [PUT] }, upstream: app }
              - { name: r3, match: { path: /a }, upstream: app }
              - { name: r5, match: { path: /a }, upstream: app }
            """), [
                "t.yaml:6:24: routes[1].match: ambiguous: matches the same host, path and methods as route `r1` (routes[0], line 5)",
                "t.yaml:8:13: routes[3].name: duplicate route name `r3` (already used by routes[2])",
                "t.yaml:9:24: routes[4].match: ambiguous: matches the same host, path and methods as route `r3` (routes[3], line 8)",
            ])
    }

    // MARK: Collecting

    func testEveryProblemIsReportedInOneRun() {
        let issues = errors("""
            environment: prod
            listeners:
              - name: public
                address: localhost
                insecure_plaintext: true
                timeouts: { idel: 10s }
            upstreams:
              app:
                endpoints: []
                pool: { max_idle_per_loop: 10, max_connections_per_loop: 5 }
            routes:
              - name: r
                match: { path: /x }
                upstream: nope
                rate_limit: { rps: 10 }
            state: { backend: redis }
            """)
        XCTAssertEqual(issues, [
            "t.yaml:4:14: listeners[0].address: `localhost` has no port (expected `host:port`, e.g. `127.0.0.1:8443`, `example.com:443` or `[::1]:8443`)",
            "t.yaml:6:17: listeners[0].timeouts.idel: unknown key (did you mean `idle`?)",
            "t.yaml:9:16: upstreams.app.endpoints: must not be empty (expected at least one entry)",
            "t.yaml:10:32: upstreams.app.pool.max_idle_per_loop: 10 idle connections exceed max_connections_per_loop (5) (expected at most max_connections_per_loop)",
            // The route is refused for its bad limit, so its upstream is not looked up.
            "t.yaml:15:17: routes[0].rate_limit.key: required key is missing (expected `peer`, `subject`, `client_id`, `ip`, `header:NAME`, `route`, or a list of them)",
            "t.yaml:15:17: routes[0].rate_limit.rate: required key is missing (expected a rate such as `100/s` or `6000/m`)",
            "t.yaml:15:17: routes[0].rate_limit.burst: required key is missing (expected the requests a caller may send at once, e.g. `20`)",
            "t.yaml:15:19: routes[0].rate_limit.rps: unknown key (expected one of `key`, `rate`, `burst`, `on_full`, `on_store_error`, `mode`)",
            "t.yaml:16:8: state.address: required key is missing (expected `host:port` of the Redis server)",
        ])
    }
}

extension ConfigLoaderTests {
    func testDuplicateUpstreamNamesAndRepeatedDuplicates() {
        XCTAssertEqual(errors("""
            environment: prod
            listeners: [{ name: a, address: "127.0.0.1:0", insecure_plaintext: true }]
            upstreams:
              app:
                endpoints: ["127.0.0.1:1"]
              app:
                endpoints: ["127.0.0.1:2"]
            routes: []
            decision_log:
              path: a
              path: b
              path: c
            """), [
                "t.yaml:6:3: upstreams.app: duplicate key (first defined on line 4)",
                "t.yaml:11:3: decision_log.path: duplicate key (first defined on line 10)",
                "t.yaml:12:3: decision_log.path: duplicate key (first defined on line 10)",
            ])
    }

    func testAnchorsAndAliasesWork() throws {
        let config = try ConfigLoader.parse(yaml: """
            environment: prod
            listeners:
              - name: a
                address: 127.0.0.1:0
                insecure_plaintext: true
                timeouts: &timeouts { idle: 5s }
              - name: b
                address: 127.0.0.1:0
                insecure_plaintext: true
                timeouts: *timeouts
            upstreams: {}
            routes: []
            """, file: "t.yaml")
        XCTAssertEqual(config.listeners.map(\.timeouts.idle), [.seconds(5), .seconds(5)])
    }

    /// `-` must be quoted; unquoted it is YAML syntax, and the loader says where.
    func testUnquotedDashIsASyntaxError() {
        XCTAssertEqual(errors(minimal + "decision_log:\n  path: -\n"), [
            "t.yaml:14:9: <root>: invalid YAML: block sequence entries are not allowed in this context",
        ])
    }
}

extension ConfigLoaderTests {
    func testStateSection() throws {
        let base = """
            environment: prod
            listeners:
              - { name: public, address: "127.0.0.1:0", insecure_plaintext: true }
            upstreams:
              app: { endpoints: ["127.0.0.1:9"] }
            routes:
              - { name: r, match: { path: /x }, upstream: app }

            """
        XCTAssertEqual(try ConfigLoader.parse(yaml: base, file: "t.yaml").state.maxEntries, 1_000_000)
        XCTAssertEqual(try ConfigLoader.parse(yaml: base + "state: { backend: memory, max_entries: 5000 }", file: "t.yaml").state.maxEntries, 5000)
        let redis = try ConfigLoader.parse(yaml: base + """
            state:
              backend: redis
              address: "127.0.0.1:6379"
              password: env:REDIS_PASSWORD
              key_prefix: "gh:"
              timeout: 20ms
              connections: 4
              tls: { ca: redis-ca.pem, server_name: redis.internal }
            """, file: "t.yaml").state.redis
        XCTAssertEqual(redis?.address, HostPort(host: "127.0.0.1", port: 6379))
        XCTAssertEqual(redis?.password, .environment("REDIS_PASSWORD"))
        XCTAssertEqual(redis?.keyPrefix, "gh:")
        XCTAssertEqual(redis?.timeout, .milliseconds(20))
        XCTAssertEqual(redis?.connections, 4)
        XCTAssertEqual(redis?.tls?.caFile, "redis-ca.pem")
        XCTAssertEqual(redis?.tls?.serverName, "redis.internal")
        XCTAssertEqual(errors(base + "state: { backend: redis, address: \"127.0.0.1:6379\", max_entries: 5, password: hunter2, key_prefix: \"a{b}\" }"), [
            "t.yaml:8:66: state.max_entries: `max_entries` bounds the in-memory store (expected no `max_entries` with `backend: redis`)",
            "t.yaml:8:79: state.password: not a secret reference; secrets are never inline (expected `env:NAME` or `file:/path/to/key.pem`)",
            "t.yaml:8:100: state.key_prefix: not a key prefix (expected up to 64 printable characters without spaces or braces, e.g. `gatehouse:`)",
        ])
        XCTAssertEqual(errors(base + "state: { max_entries: 0, address: \"127.0.0.1:6379\" }"), [
            "t.yaml:8:23: state.max_entries: 0 is out of range (expected 1-100000000)",
            "t.yaml:8:35: state.address: `address` applies to `backend: redis` (expected `backend: redis`, or no `address`)",
        ])
    }
}
