import XCTest

@testable import GatehouseCore

final class ConfigValueParserTests: XCTestCase {
    private func error<T>(_ body: () throws -> T) -> String? {
        do {
            _ = try body()
            return nil
        } catch {
            XCTAssertTrue(error is ConfigValueError)
            return "\(error)"
        }
    }

    func testDurations() throws {
        XCTAssertEqual(try ConfigValueParser.duration("500ms"), .milliseconds(500))
        XCTAssertEqual(try ConfigValueParser.duration("10s"), .seconds(10))
        XCTAssertEqual(try ConfigValueParser.duration("5m"), .seconds(300))
        XCTAssertEqual(try ConfigValueParser.duration("24h"), .seconds(86_400))
        XCTAssertEqual(error { try ConfigValueParser.duration("10") },
                       "`10` has no unit (expected an integer with a unit ms, s, m or h, e.g. `500ms`, `10s`, `5m`)")
        XCTAssertEqual(error { try ConfigValueParser.duration("10sec") },
                       "`10sec` has an unknown unit `sec` (expected ms, s, m or h)")
        XCTAssertEqual(error { try ConfigValueParser.duration("0s") },
                       "duration must be greater than zero (expected an integer with a unit ms, s, m or h, e.g. `500ms`, `10s`, `5m`)")
        XCTAssertEqual(error { try ConfigValueParser.duration("25h") }, "`25h` is longer than 24h (expected at most 24h)")
        XCTAssertEqual(error { try ConfigValueParser.duration("99999999999999999999ms") },
                       "`99999999999999999999ms` is longer than 24h (expected at most 24h)")
        for bad in ["", "s", "-1s", "1.5s", " 1s", "1 s", "1S"] {
            XCTAssertNotNil(error { try ConfigValueParser.duration(bad) }, bad)
        }
    }

    func testSizes() throws {
        XCTAssertEqual(try ConfigValueParser.size("1"), 1)
        XCTAssertEqual(try ConfigValueParser.size("512B"), 512)
        XCTAssertEqual(try ConfigValueParser.size("32KiB"), 32_768)
        XCTAssertEqual(try ConfigValueParser.size("10MiB"), 10_485_760)
        XCTAssertEqual(try ConfigValueParser.size("2GiB"), 2_147_483_648)
        XCTAssertEqual(error { try ConfigValueParser.size("32KB") },
                       "`32KB` has an unknown unit `KB` (expected B, KiB, MiB or GiB (binary units only))")
        XCTAssertEqual(error { try ConfigValueParser.size("0KiB") },
                       "size must be greater than zero (expected a byte count, optionally with a unit B, KiB, MiB or GiB, e.g. `32KiB`)")
        XCTAssertEqual(error { try ConfigValueParser.size("99999999999999999GiB") },
                       "`99999999999999999GiB` is too large (expected a byte count, optionally with a unit B, KiB, MiB or GiB, e.g. `32KiB`)")
        for bad in ["", "KiB", "1kib", "1.5MiB", "-1", "1 KiB"] {
            XCTAssertNotNil(error { try ConfigValueParser.size(bad) }, bad)
        }
    }

    func testHostPort() throws {
        XCTAssertEqual(try ConfigValueParser.hostPort("127.0.0.1:9000"), HostPort(host: "127.0.0.1", port: 9000))
        XCTAssertEqual(try ConfigValueParser.hostPort("api.example.com:443"), HostPort(host: "api.example.com", port: 443))
        XCTAssertEqual(try ConfigValueParser.hostPort("[::1]:8443"), HostPort(host: "::1", port: 8443))
        XCTAssertEqual(try ConfigValueParser.hostPort("[::1]:8443").description, "[::1]:8443")
        XCTAssertEqual(try ConfigValueParser.hostPort("0.0.0.0:0", ports: 0...65535).port, 0)
        XCTAssertEqual(error { try ConfigValueParser.hostPort("0.0.0.0:0") }, "port 0 is out of range (expected 1-65535)")
        XCTAssertEqual(error { try ConfigValueParser.hostPort("::1:8443") },
                       "IPv6 addresses must be in brackets (expected e.g. `[::1]:8443`)")
        XCTAssertEqual(error { try ConfigValueParser.hostPort(":8443") },
                       "`:8443` has no host (expected an explicit host, e.g. `0.0.0.0:8443`)")
        XCTAssertEqual(error { try ConfigValueParser.hostPort("10.0.0.1:99999") }, "port 99999 is out of range (expected 1-65535)")
        for bad in ["10.0.0.1", "10.0.0.1:", "10.0.0.1:http", "10.0.0.1:123456", "256.0.0.1:80", "bad_host:80", "[::1]", "[::1:80", "[x]:80",
                    "-a.com:80", "a..b:80", "10.0.0.01:80"] {
            XCTAssertNotNil(error { try ConfigValueParser.hostPort(bad) }, bad)
        }
    }

    func testIPAddresses() {
        XCTAssertEqual(ConfigValueParser.ipv4("10.1.2.3"), [10, 1, 2, 3])
        XCTAssertNil(ConfigValueParser.ipv4("10.1.2"))
        XCTAssertNil(ConfigValueParser.ipv4("010.1.2.3"))
        XCTAssertEqual(ConfigValueParser.ipv6("::1"), [UInt8](repeating: 0, count: 15) + [1])
        XCTAssertEqual(ConfigValueParser.ipv6("::"), [UInt8](repeating: 0, count: 16))
        XCTAssertEqual(ConfigValueParser.ipv6("2001:db8::8:800:200c:417a"),
                       [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0x08, 0x08, 0, 0x20, 0x0c, 0x41, 0x7a])
        XCTAssertEqual(ConfigValueParser.ipv6("::ffff:10.0.0.1"), [UInt8](repeating: 0, count: 10) + [0xff, 0xff, 10, 0, 0, 1])
        XCTAssertEqual(ConfigValueParser.ipv6("1:2:3:4:5:6:7:8")?.count, 16)
        for bad in ["1:2:3:4:5:6:7:8:9", "1::2::3", "12345::", "fe80::1%eth0", "1:2:3:4:5:6:7", ":1", "g::1"] {
            XCTAssertNil(ConfigValueParser.ipv6(bad), bad)
        }
    }

    func testCIDR() throws {
        let eight = try ConfigValueParser.cidr("10.0.0.0/8")
        XCTAssertEqual(eight, CIDR(address: [10, 0, 0, 0], prefixLength: 8))
        XCTAssertTrue(eight.contains([10, 200, 1, 1]))
        XCTAssertFalse(eight.contains([11, 0, 0, 1]))
        XCTAssertEqual(try ConfigValueParser.cidr("192.168.1.1").prefixLength, 32)
        XCTAssertEqual(try ConfigValueParser.cidr("::1").prefixLength, 128)
        XCTAssertEqual(try ConfigValueParser.cidr("::1/128").description, "0:0:0:0:0:0:0:1/128")
        // Host bits may be set; membership masks both sides.
        XCTAssertTrue(try ConfigValueParser.cidr("10.1.2.3/8").contains([10, 9, 9, 9]))
        XCTAssertEqual(error { try ConfigValueParser.cidr("10.0.0.0/33") }, "`/33` is not a valid prefix length (expected 0-32)")
        XCTAssertEqual(error { try ConfigValueParser.cidr("10.0.0/8") },
                       "`10.0.0` is not an IP address (expected an IP address or CIDR block, e.g. `10.0.0.0/8` or `::1/128`)")
        for bad in ["10.0.0.0/", "10.0.0.0/-1", "::/129", "10.0.0.0/8/8", "example.com/8"] {
            XCTAssertNotNil(error { try ConfigValueParser.cidr(bad) }, bad)
        }
    }

    func testSecretReferences() throws {
        XCTAssertEqual(try ConfigValueParser.secretReference("env:TLS_KEY"), .environment("TLS_KEY"))
        XCTAssertEqual(try ConfigValueParser.secretReference("file:/etc/key.pem"), .file("/etc/key.pem"))
        XCTAssertEqual(try ConfigValueParser.secretReference("file:keys/key.pem"), .file("keys/key.pem"))
        let pem = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBg\n-----END PRIVATE KEY-----"
        let inline = error { try ConfigValueParser.secretReference(pem) }
        XCTAssertEqual(inline, "secrets are never inline; write the key to a file and reference it (expected `env:NAME` or `file:/path/to/key.pem`)")
        XCTAssertEqual(error { try ConfigValueParser.secretReference("hunter2") },
                       "not a secret reference; secrets are never inline (expected `env:NAME` or `file:/path/to/key.pem`)")
        for bad in ["env:", "env:1KEY", "env:A-B", "file:", "ENV:KEY"] {
            let message = error { try ConfigValueParser.secretReference(bad) }
            XCTAssertNotNil(message, bad)
        }
    }

    func testRouteHostPathAndMethod() throws {
        XCTAssertEqual(try ConfigValueParser.routeHost("API.Example.com"), "api.example.com")
        XCTAssertEqual(try ConfigValueParser.routeHost("10.0.0.1"), "10.0.0.1")
        XCTAssertEqual(try ConfigValueParser.routeHost("[::1]"), "[::1]")
        XCTAssertEqual(error { try ConfigValueParser.routeHost("api.example.com:443") },
                       "`api.example.com:443` contains a port (expected a host name or IP address without port, e.g. `api.example.com`)")
        for bad in ["", "a b.com", "*.example.com", "[::1]:80", "::1", "exa_mple.com"] {
            XCTAssertNotNil(error { try ConfigValueParser.routeHost(bad) }, bad)
        }

        XCTAssertEqual(try ConfigValueParser.routePath("/"), "/")
        XCTAssertEqual(try ConfigValueParser.routePath("/billing/v1"), "/billing/v1")
        XCTAssertEqual(try ConfigValueParser.routePath("/a.b/..c"), "/a.b/..c")
        let pathErrors: [String: String] = [
            "billing": "path must start with `/`",
            "/a?b": "path contains a query",
            "/a#b": "path contains a fragment",
            "/a%2f": "path contains percent-encoding (write paths decoded)",
            "/a\\b": "path contains a backslash",
            "/a//b": "path contains an empty segment `//`",
            "/a/../b": "path contains a `.` or `..` segment",
            "/a/.": "path contains a `.` or `..` segment",
            "/a\u{1}": "path contains a control character",
        ]
        for (path, message) in pathErrors {
            XCTAssertEqual(error { try ConfigValueParser.routePath(path) },
                           "\(message) (expected a normalised, decoded path starting with `/`, e.g. `/billing`)", path)
        }

        XCTAssertEqual(try ConfigValueParser.method("GET"), "GET")
        XCTAssertEqual(try ConfigValueParser.method("M-SEARCH"), "M-SEARCH")
        XCTAssertEqual(error { try ConfigValueParser.method("get") },
                       "methods are case-sensitive; did you mean `GET`? (expected an uppercase method such as `GET`)")
        XCTAssertEqual(error { try ConfigValueParser.method("GE T") },
                       "`GE T` is not an HTTP method (expected a method token such as `GET` or `POST`)")
    }

    func testEditDistanceSuggestions() {
        XCTAssertEqual(MappingReader.editDistance("adress", "address"), 1)
        XCTAssertEqual(MappingReader.editDistance("", "abc"), 3)
        XCTAssertEqual(MappingReader.suggestion(for: "adress", among: ["name", "address"]), "address")
        XCTAssertEqual(MappingReader.suggestion(for: "trust_domain", among: ["environment", "trust_domains"]), "trust_domains")
        XCTAssertNil(MappingReader.suggestion(for: "colour", among: ["name", "address"]))
    }
}
