/// The `--url` argument, parsed without Foundation: scheme, host, port, path.
struct Target: Sendable, Equatable {
    var tls: Bool
    var host: String          // without brackets for IPv6
    var port: Int
    var path: String          // origin-form request target, starts with "/"

    /// The Host header value.
    var hostHeader: String {
        let h = host.contains(":") ? "[\(host)]" : host
        let defaultPort = tls ? 443 : 80
        return port == defaultPort ? h : "\(h):\(port)"
    }

    /// True when the host is an IP literal (no SNI may be sent; the certificate
    /// is then checked against the address itself).
    var hostIsIPLiteral: Bool {
        if host.contains(":") { return true }
        let parts = host.split(separator: ".", omittingEmptySubsequences: false)
        return parts.count == 4 && parts.allSatisfy { p in
            !p.isEmpty && p.count <= 3 && p.allSatisfy(\.isNumber) && (Int(p) ?? 256) <= 255
        }
    }

    /// 127.0.0.0/8, ::1 or localhost: the only targets gh-load accepts.
    var isLoopback: Bool {
        let h = host.lowercased()
        if h == "localhost" || h == "::1" || h == "0:0:0:0:0:0:0:1" { return true }
        return hostIsIPLiteral && !h.contains(":") && h.hasPrefix("127.")
    }

    enum ParseError: Error, CustomStringConvertible {
        case invalid(String)
        var description: String {
            switch self { case .invalid(let why): return "invalid --url: \(why)" }
        }
    }

    init(tls: Bool, host: String, port: Int, path: String) {
        self.tls = tls; self.host = host; self.port = port; self.path = path
    }

    init(parsing url: String) throws {
        let rest: Substring
        if url.hasPrefix("https://") {
            tls = true; rest = url.dropFirst("https://".count)
        } else if url.hasPrefix("http://") {
            tls = false; rest = url.dropFirst("http://".count)
        } else {
            throw ParseError.invalid("scheme must be http:// or https://")
        }
        let slash = rest.firstIndex(of: "/") ?? rest.endIndex
        let authority = rest[..<slash]
        path = slash == rest.endIndex ? "/" : String(rest[slash...])
        if authority.contains("@") { throw ParseError.invalid("userinfo is not supported") }
        var hostPart: Substring
        var portPart: Substring? = nil
        if authority.hasPrefix("[") {
            guard let close = authority.firstIndex(of: "]") else { throw ParseError.invalid("unclosed [") }
            hostPart = authority[authority.index(after: authority.startIndex)..<close]
            let after = authority[authority.index(after: close)...]
            if after.hasPrefix(":") { portPart = after.dropFirst() } else if !after.isEmpty {
                throw ParseError.invalid("junk after ]")
            }
        } else if let colon = authority.lastIndex(of: ":") {
            hostPart = authority[..<colon]
            portPart = authority[authority.index(after: colon)...]
        } else {
            hostPart = authority
        }
        if hostPart.isEmpty { throw ParseError.invalid("empty host") }
        host = String(hostPart)
        if let p = portPart {
            guard let n = Int(p), (1...65535).contains(n) else { throw ParseError.invalid("bad port \(p)") }
            port = n
        } else {
            port = tls ? 443 : 80
        }
    }
}
