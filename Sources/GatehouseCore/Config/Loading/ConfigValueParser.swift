/// Why a scalar could not be read. The loader adds file, line, column and key path.
public struct ConfigValueError: Error, Sendable, Equatable, CustomStringConvertible {
    public var message: String
    public var expected: String?

    public init(_ message: String, expected: String? = nil) {
        self.message = message
        self.expected = expected
    }

    public var description: String {
        expected.map { "\(message) (expected \($0))" } ?? message
    }
}

/// Parsers for the scalar formats of the configuration file: durations, sizes, `host:port`,
/// IP addresses, CIDR blocks, secret references, hostnames, paths and HTTP methods.
///
/// They are strict on purpose: a value that could be read two ways (`10` seconds or
/// milliseconds? `1KB` = 1000 or 1024?) is rejected rather than guessed, because this file
/// is a security policy. They work on plain strings, so the CLI can reuse them for flags.
public enum ConfigValueParser {
    /// The longest duration any setting accepts: longer values are almost certainly typos.
    public static let maximumDuration: Duration = .seconds(24 * 3600)

    static let durationExpectation = "an integer with a unit ms, s, m or h, e.g. `500ms`, `10s`, `5m`"
    static let sizeExpectation = "a byte count, optionally with a unit B, KiB, MiB or GiB, e.g. `32KiB`"

    // MARK: Durations

    /// `500ms`, `10s`, `5m`, `1h`: a positive integer and a unit, at most 24h.
    /// A bare number is rejected because its unit would be a guess.
    public static func duration(_ text: String) throws(ConfigValueError) -> Duration {
        let digits = text.prefix { $0.isASCII && $0.isNumber }
        let unit = text.dropFirst(digits.count)
        guard !digits.isEmpty else {
            throw ConfigValueError("`\(text)` is not a duration", expected: durationExpectation)
        }
        guard !unit.isEmpty else {
            throw ConfigValueError("`\(text)` has no unit", expected: durationExpectation)
        }
        let millisecondsPerUnit: Int64
        switch unit {
        case "ms": millisecondsPerUnit = 1
        case "s": millisecondsPerUnit = 1000
        case "m": millisecondsPerUnit = 60_000
        case "h": millisecondsPerUnit = 3_600_000
        default:
            throw ConfigValueError("`\(text)` has an unknown unit `\(unit)`", expected: "ms, s, m or h")
        }
        // More than 12 digits cannot be within 24h in any unit, and keeps the product in range.
        guard digits.count <= 12, let count = Int64(digits) else {
            throw ConfigValueError("`\(text)` is longer than 24h", expected: "at most 24h")
        }
        let milliseconds = count * millisecondsPerUnit
        guard milliseconds > 0 else {
            throw ConfigValueError("duration must be greater than zero", expected: durationExpectation)
        }
        let duration = Duration.milliseconds(milliseconds)
        guard duration <= maximumDuration else {
            throw ConfigValueError("`\(text)` is longer than 24h", expected: "at most 24h")
        }
        return duration
    }

    // MARK: Sizes

    /// `1048576`, `512B`, `32KiB`, `10MiB`, `1GiB`: binary units only. `KB`/`MB` are rejected
    /// because half of all operators read them as 1000 and the other half as 1024.
    /// Zero is rejected: no limit in this file means "nothing allowed".
    public static func size(_ text: String) throws(ConfigValueError) -> Int {
        let digits = text.prefix { $0.isASCII && $0.isNumber }
        let unit = text.dropFirst(digits.count)
        guard !digits.isEmpty else {
            throw ConfigValueError("`\(text)` is not a size", expected: sizeExpectation)
        }
        let multiplier: Int
        switch unit {
        case "", "B": multiplier = 1
        case "KiB": multiplier = 1 << 10
        case "MiB": multiplier = 1 << 20
        case "GiB": multiplier = 1 << 30
        default:
            throw ConfigValueError("`\(text)` has an unknown unit `\(unit)`", expected: "B, KiB, MiB or GiB (binary units only)")
        }
        guard let count = Int(digits) else {
            throw ConfigValueError("`\(text)` is too large", expected: sizeExpectation)
        }
        let (bytes, overflow) = count.multipliedReportingOverflow(by: multiplier)
        guard !overflow else {
            throw ConfigValueError("`\(text)` is too large", expected: sizeExpectation)
        }
        guard bytes > 0 else {
            throw ConfigValueError("size must be greater than zero", expected: sizeExpectation)
        }
        return bytes
    }

    // MARK: Addresses

    /// `host:port`. IPv6 literals are bracketed (`[::1]:8443`); the brackets are not part of
    /// `HostPort.host`. The host is an IPv4/IPv6 literal or a DNS name. `:8443` (no host) is
    /// rejected: write `0.0.0.0:8443` or `[::]:8443` so the bind address is explicit.
    public static func hostPort(_ text: String, ports: ClosedRange<Int> = 1...65535) throws(ConfigValueError) -> HostPort {
        let expected = "`host:port`, e.g. `127.0.0.1:8443`, `example.com:443` or `[::1]:8443`"
        let host: Substring
        let portText: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else {
                throw ConfigValueError("`\(text)` has no closing `]`", expected: expected)
            }
            host = text[text.index(after: text.startIndex)..<close]
            let rest = text[text.index(after: close)...]
            guard rest.hasPrefix(":") else {
                throw ConfigValueError("`\(text)` has no port", expected: expected)
            }
            portText = rest.dropFirst()
            guard ipv6(String(host)) != nil else {
                throw ConfigValueError("`\(host)` is not an IPv6 address", expected: expected)
            }
        } else {
            guard let colon = text.lastIndex(of: ":") else {
                throw ConfigValueError("`\(text)` has no port", expected: expected)
            }
            host = text[..<colon]
            portText = text[text.index(after: colon)...]
            if host.contains(":") {
                throw ConfigValueError("IPv6 addresses must be in brackets", expected: "e.g. `[::1]:8443`")
            }
            guard !host.isEmpty else {
                throw ConfigValueError("`\(text)` has no host", expected: "an explicit host, e.g. `0.0.0.0\(text)`")
            }
            guard ipv4(String(host)) != nil || isHostname(String(host)) else {
                throw ConfigValueError("`\(host)` is not a valid host name or IP address", expected: expected)
            }
        }
        guard !portText.isEmpty, portText.count <= 5, portText.allSatisfy({ $0.isASCII && $0.isNumber }),
              let port = Int(portText)
        else {
            throw ConfigValueError("`\(portText)` is not a port number", expected: "\(ports.lowerBound)-\(ports.upperBound)")
        }
        guard ports.contains(port) else {
            throw ConfigValueError("port \(port) is out of range", expected: "\(ports.lowerBound)-\(ports.upperBound)")
        }
        return HostPort(host: String(host), port: port)
    }

    /// Dotted-quad IPv4 (`10.0.0.1`). Leading zeros are rejected: some parsers read `010` as octal.
    public static func ipv4(_ text: String) -> [UInt8]? {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var bytes: [UInt8] = []
        for part in parts {
            guard !part.isEmpty, part.count <= 3, part.allSatisfy({ $0.isASCII && $0.isNumber }),
                  !(part.count > 1 && part.hasPrefix("0")),
                  let value = UInt8(part)
            else { return nil }
            bytes.append(value)
        }
        return bytes
    }

    /// RFC 4291 text form: eight groups, `::` compression, optional trailing dotted quad.
    /// Zone identifiers (`%eth0`) are rejected: they mean nothing off the host that wrote them.
    public static func ipv6(_ text: String) -> [UInt8]? {
        guard text.contains(":"), text.count <= 45 else { return nil }
        let halves = text.components(separatedBy: "::")
        guard halves.count <= 2 else { return nil }

        func groups(_ part: String, allowIPv4Tail: Bool) -> [UInt8]? {
            if part.isEmpty { return [] }
            var bytes: [UInt8] = []
            let pieces = part.split(separator: ":", omittingEmptySubsequences: false)
            for (index, piece) in pieces.enumerated() {
                if allowIPv4Tail, index == pieces.count - 1, piece.contains(".") {
                    guard let v4 = ipv4(String(piece)) else { return nil }
                    bytes += v4
                    continue
                }
                guard (1...4).contains(piece.count), piece.allSatisfy(\.isHexDigit), piece.allSatisfy(\.isASCII),
                      let value = UInt16(piece, radix: 16)
                else { return nil }
                bytes += [UInt8(value >> 8), UInt8(value & 0xFF)]
            }
            return bytes
        }

        if halves.count == 1 {
            guard let bytes = groups(halves[0], allowIPv4Tail: true), bytes.count == 16 else { return nil }
            return bytes
        }
        guard let head = groups(halves[0], allowIPv4Tail: false),
              let tail = groups(halves[1], allowIPv4Tail: true),
              head.count + tail.count <= 14
        else { return nil }
        return head + [UInt8](repeating: 0, count: 16 - head.count - tail.count) + tail
    }

    /// An IPv4 or IPv6 literal (IPv6 without brackets): 4 or 16 bytes.
    public static func ipAddress(_ text: String) -> [UInt8]? {
        ipv4(text) ?? ipv6(text)
    }

    /// `10.0.0.0/8`, `2001:db8::/32`; a bare address means a single host (/32 or /128).
    /// Host bits need not be zero: membership masks both sides, so `10.1.2.3/8` means `10.0.0.0/8`.
    public static func cidr(_ text: String) throws(ConfigValueError) -> CIDR {
        let expected = "an IP address or CIDR block, e.g. `10.0.0.0/8` or `::1/128`"
        let parts = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        guard let address = ipAddress(String(parts[0])) else {
            throw ConfigValueError("`\(parts[0])` is not an IP address", expected: expected)
        }
        let maximum = address.count * 8
        guard parts.count == 2 else { return CIDR(address: address, prefixLength: maximum) }
        let prefixText = parts[1]
        guard !prefixText.isEmpty, prefixText.count <= 3, prefixText.allSatisfy({ $0.isASCII && $0.isNumber }),
              let prefix = Int(prefixText), prefix <= maximum
        else {
            throw ConfigValueError("`/\(prefixText)` is not a valid prefix length", expected: "0-\(maximum)")
        }
        return CIDR(address: address, prefixLength: prefix)
    }

    /// A DNS name: dot-separated labels of letters, digits and `-` (not at either end), each
    /// 1-63 characters, 253 in all. No trailing dot, no wildcard, no underscore.
    /// An HTTP field name (RFC 9110 token characters).
    public static func isHeaderName(_ text: String) -> Bool {
        !text.isEmpty && text.utf8.allSatisfy { byte in
            (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A)
                || "!#$%&'*+-.^_`|~".utf8.contains(byte)
        }
    }

    public static func isHostname(_ text: String) -> Bool {
        guard !text.isEmpty, text.utf8.count <= 253 else { return false }
        let labels = text.split(separator: ".", omittingEmptySubsequences: false)
        for label in labels {
            guard (1...63).contains(label.count),
                  label.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") }),
                  label.first != "-", label.last != "-"
            else { return false }
        }
        // A name made only of digits and dots would read as an (invalid) IPv4 address.
        return !text.allSatisfy { $0.isNumber || $0 == "." }
    }

    /// A duration as the config writes it: `1h`, `10m`, `30s`, `500ms` (the largest exact unit).
    public static func text(_ duration: Duration) -> String {
        let milliseconds = duration.components.seconds * 1000 + duration.components.attoseconds / 1_000_000_000_000_000
        for (unit, size) in [("h", Int64(3_600_000)), ("m", 60_000), ("s", 1000)] where milliseconds % size == 0 && milliseconds > 0 {
            return "\(milliseconds / size)\(unit)"
        }
        return "\(milliseconds)ms"
    }

    // MARK: Rates

    /// `100/s`, `6000/m`, `10/h`: a positive count per second, minute or hour.
    public static func rate(_ text: String) throws(ConfigValueError) -> (count: Int, period: Duration) {
        let expected = "a count per `s`, `m` or `h`, e.g. `100/s` or `6000/m`"
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, !parts[0].isEmpty, parts[0].count <= 9, parts[0].allSatisfy({ $0.isASCII && $0.isNumber }),
            let count = Int(parts[0])
        else { throw ConfigValueError("`\(text)` is not a rate", expected: expected) }
        guard count > 0 else { throw ConfigValueError("a rate of 0 admits nothing", expected: expected) }
        switch parts[1] {
        case "s": return (count, .seconds(1))
        case "m": return (count, .seconds(60))
        case "h": return (count, .seconds(3600))
        default: throw ConfigValueError("`\(text)` has an unknown unit `\(parts[1])`", expected: expected)
        }
    }

    // MARK: URLs

    /// `https://host[:port][/path][?query]`: the only kind of URL the gateway fetches from.
    /// No user info (credentials do not belong in a URL in a config file), no fragment, no
    /// whitespace or control characters; the host is a DNS name or an IP literal.
    public static func httpsURL(_ text: String) throws(ConfigValueError) -> HTTPSURL {
        let expected = "an `https://` URL, e.g. `https://idp.example/.well-known/jwks.json`"
        guard text.utf8.count <= 2048 else { throw ConfigValueError("URL longer than 2048 bytes", expected: expected) }
        guard text.hasPrefix("https://") else {
            throw ConfigValueError("`\(text)` is not an https URL", expected: expected)
        }
        guard text.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else {
            throw ConfigValueError("URL contains whitespace or non-ASCII characters", expected: expected)
        }
        guard !text.contains("#") else { throw ConfigValueError("URL has a fragment", expected: expected) }
        let rest = text.dropFirst("https://".count)
        let authorityEnd = rest.firstIndex(where: { $0 == "/" || $0 == "?" }) ?? rest.endIndex
        let authority = String(rest[..<authorityEnd])
        guard !authority.contains("@") else {
            throw ConfigValueError("URL has user info", expected: "no credentials in the URL")
        }
        var target = String(rest[authorityEnd...])
        if target.isEmpty || target.hasPrefix("?") { target = "/" + target }
        let hasPort = authority.hasPrefix("[") ? authority.contains("]:") : authority.contains(":")
        let hostPort = try Self.hostPort(hasPort ? authority : authority + ":443")
        return HTTPSURL(host: hostPort.host, port: hostPort.port, target: target)
    }

    // MARK: Secrets

    /// `env:NAME` or `file:/path`. Anything else is refused, and the refusal never repeats the
    /// value: what was written there may well be the secret itself.
    public static func secretReference(_ text: String) throws(ConfigValueError) -> SecretReference {
        let expected = "`env:NAME` or `file:/path/to/key.pem`"
        if text.contains("-----BEGIN") {
            throw ConfigValueError(
                "secrets are never inline; write the key to a file and reference it", expected: expected)
        }
        if text.hasPrefix("env:") {
            let name = text.dropFirst(4)
            guard let first = name.first, first == "_" || (first.isASCII && first.isLetter),
                  name.allSatisfy({ $0 == "_" || ($0.isASCII && ($0.isLetter || $0.isNumber)) })
            else {
                throw ConfigValueError("not a valid environment variable name", expected: "`env:NAME` with NAME matching [A-Za-z_][A-Za-z0-9_]*")
            }
            return .environment(String(name))
        }
        if text.hasPrefix("file:") {
            let path = text.dropFirst(5)
            guard !path.isEmpty, !path.contains("\0") else {
                throw ConfigValueError("`file:` needs a path", expected: expected)
            }
            return .file(String(path))
        }
        throw ConfigValueError("not a secret reference; secrets are never inline", expected: expected)
    }

    // MARK: Routes

    /// A route's `host`: a DNS name, an IPv4 literal or a bracketed IPv6 literal, lowercased
    /// (as hosts compare case-insensitively). Ports are rejected: a route matches a host, not a
    /// listener; bind the port with `listeners`.
    public static func routeHost(_ text: String) throws(ConfigValueError) -> String {
        let expected = "a host name or IP address without port, e.g. `api.example.com`"
        let host = text.lowercased()
        if host.hasPrefix("[") {
            guard host.hasSuffix("]"), ipv6(String(host.dropFirst().dropLast())) != nil else {
                throw ConfigValueError("`\(text)` is not a valid host", expected: "an IPv6 literal in brackets, e.g. `[::1]`, without port")
            }
            return host
        }
        if ipv6(host) != nil {
            throw ConfigValueError("IPv6 hosts must be in brackets", expected: "e.g. `[\(host)]`")
        }
        if host.contains(":") {
            throw ConfigValueError("`\(text)` contains a port", expected: expected)
        }
        guard ipv4(host) != nil || isHostname(host) else {
            throw ConfigValueError("`\(text)` is not a valid host", expected: expected)
        }
        return host
    }

    /// A route's `path` or `path_prefix`, written decoded and normalised, because that is what
    /// requests are compared against after normalisation: a pattern that no normalised path can
    /// equal (`/a/../b`, `/a//b`, `/%2e`) would silently never match.
    public static func routePath(_ text: String) throws(ConfigValueError) -> String {
        let expected = "a normalised, decoded path starting with `/`, e.g. `/billing`"
        guard text.hasPrefix("/") else {
            throw ConfigValueError("path must start with `/`", expected: expected)
        }
        if text.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) {
            throw ConfigValueError("path contains a control character", expected: expected)
        }
        for (character, why) in [("?", "a query"), ("#", "a fragment"), ("%", "percent-encoding (write paths decoded)"),
                                 ("\\", "a backslash")] where text.contains(character) {
            throw ConfigValueError("path contains \(why)", expected: expected)
        }
        if text.contains("//") {
            throw ConfigValueError("path contains an empty segment `//`", expected: expected)
        }
        let segments = text.split(separator: "/", omittingEmptySubsequences: true)
        if segments.contains(where: { $0 == "." || $0 == ".." }) {
            throw ConfigValueError("path contains a `.` or `..` segment", expected: expected)
        }
        return text
    }

    /// An HTTP method: an RFC 9110 token. Methods are case-sensitive, so `get` is not `GET`;
    /// lowercase letters are rejected rather than silently uppercased.
    public static func method(_ text: String) throws(ConfigValueError) -> String {
        let tokenSymbols = Set("!#$%&'*+-.^_`|~")
        guard !text.isEmpty, text.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || tokenSymbols.contains($0)) })
        else {
            throw ConfigValueError("`\(text)` is not an HTTP method", expected: "a method token such as `GET` or `POST`")
        }
        if text.contains(where: \.isLowercase) {
            throw ConfigValueError(
                "methods are case-sensitive; did you mean `\(text.uppercased())`?", expected: "an uppercase method such as `GET`")
        }
        return text
    }
}
