import GatehouseCore
import NIOCore
import NIOHTTP1

/// Builds the headers the upstream sees and the headers the client gets back.
///
/// Order matters and is the point of this type: first every hop-by-hop header and every
/// client-sent copy of a header the gateway owns is removed, then the gateway adds its own.
/// A client can therefore never smuggle a forwarding or identity header past the gateway.
enum HeaderRewriter {
    /// What the gateway knows about the direct client and the request.
    struct Context {
        var clientIP: String
        var clientIsTrustedProxy: Bool
        var scheme: String
        var host: String?
        /// The request's framing after validation; the upstream gets exactly this framing.
        var framing: RequestValidator.BodyFraming
        /// The connection's verified client certificate, if any.
        var peer: ConnectionPeer?
        /// What the route tells the upstream about `peer`.
        var forwardClientCert: ForwardClientCertMode = .set
        /// Headers the route keeps from the upstream (lowercased): the bearer token with
        /// `upstream: strip`, and the client's copies of headers the gateway sets from claims.
        var stripHeaders: [String] = []
        /// Headers the gateway adds (verified token claims).
        var addHeaders: [(String, String)] = []
        /// false when the request has no `Connection` field (the validator saw every field):
        /// then no field is listed in one, and the fields need not be searched for it.
        var hasConnectionField = true
    }

    /// Where the rewritten fields go, in order: straight into the upstream request's bytes on
    /// the data path (``UpstreamRequestHead``), into a list in tests. Fields are handed over
    /// borrowed: building a list of them retained every name and value, and releasing the
    /// list released them all again.
    protocol FieldSink {
        mutating func add(_ name: String, _ value: String)
    }

    /// Names a `Connection` header may never remove: removing them would change framing or routing.
    private static let connectionProtected: Set<String> = ["host", "content-length"]

    /// Tokens named by `Connection` headers, lowercased, other than the common `close` and
    /// `keep-alive` (hop-by-hop anyway). Empty for almost every request.
    static func connectionTokens(_ headers: HTTPHeaders) -> Set<String> {
        var tokens = Set<String>()
        for value in headers["connection"] {
            for token in value.split(separator: ",") {
                let name = String(token).trimmingASCIIWhitespace().lowercased()
                if name.isEmpty || name == "close" || name == "keep-alive" || connectionProtected.contains(name) { continue }
                tokens.insert(name)
            }
        }
        return tokens
    }

    /// Writes the fields the upstream gets into `headers`; returns the request id it gets.
    /// - Parameters:
    ///   - requestID: the gateway's id for this request, used unless a trusted proxy sent one.
    ///   - random: source for a new `traceparent` when the request carries no valid one.
    static func upstreamRequestHeaders<G: RandomNumberGenerator, Sink: FieldSink>(
        from incoming: HTTPHeaders, context: Context, requestID generatedID: String, random: inout G, into headers: inout Sink
    ) -> String {
        let listed = context.hasConnectionField ? connectionTokens(incoming) : []
        var priorForwardedFor: [String] = []
        var trustedRequestID: String?
        var traceparent: String?
        var tracestate: [String] = []
        var trustedProto: String?
        var trustedHost: String?
        var trustedForwarded: [String] = []
        var trustedRealIP: String?
        var trustedClientCertificates: [String] = []

        for (name, value) in incoming {
            let kind = HeaderName.classify(name)
            switch kind {
            case .ordinary:
                if !listed.isEmpty && listed.contains(name.lowercased()) { continue }
                if !context.stripHeaders.isEmpty && context.stripHeaders.contains(name.lowercased()) { continue }
                headers.add(name, value)
            case .hopByHop, .connection, .gatehousePrivate, .forwardedPort:
                continue  // never forwarded; the gateway sets its own where it has one
            case .clientCertificate:
                // Only `append` keeps a proxy's XFCC, and only from a trusted proxy; a copy from
                // anyone else is a forgery attempt and is dropped.
                if context.forwardClientCert == .append && context.clientIsTrustedProxy {
                    trustedClientCertificates.append(value)
                }
            case .traceparent:
                // Trace context is not a trust signal: pass a valid one through from anyone.
                if traceparent == nil, RequestIdentifiers.isValidTraceparent(value) { traceparent = value }
            case .tracestate:
                if tracestate.count < 4 { tracestate.append(value) }
            case .forwardedFor, .requestID, .forwardedProto, .forwardedHost, .forwarded, .realIP:
                // Kept only from a trusted proxy; any other client's copy is dropped.
                guard context.clientIsTrustedProxy else { continue }
                switch kind {
                case .forwardedFor: priorForwardedFor.append(value)
                case .requestID:
                    if trustedRequestID == nil, RequestIdentifiers.isAcceptableRequestID(value) { trustedRequestID = value }
                case .forwardedProto: if value == "https" || value == "http" { trustedProto = value }
                case .forwardedHost: if RequestValidator.isValidHost(value) { trustedHost = value }
                case .forwarded: trustedForwarded.append(value)
                default: trustedRealIP = value
                }
            }
        }

        if case .chunked = context.framing { headers.add("transfer-encoding", "chunked") }

        // Joined only when a trusted proxy sent a chain: the common case allocates nothing.
        let forwardedFor = priorForwardedFor.isEmpty
            ? context.clientIP : (priorForwardedFor + [context.clientIP]).joined(separator: ", ")
        headers.add("x-forwarded-for", forwardedFor)
        headers.add("x-forwarded-proto", trustedProto ?? context.scheme)
        if let host = trustedHost ?? context.host { headers.add("x-forwarded-host", host) }
        for value in trustedForwarded { headers.add("forwarded", value) }
        if let trustedRealIP { headers.add("x-real-ip", trustedRealIP) }
        for (name, value) in context.addHeaders { headers.add(name, value) }
        if context.forwardClientCert != .sanitize {
            if let peer = context.peer {
                headers.add("x-gatehouse-peer-id", peer.spiffeID)
                let own = peer.forwardedClientCertElement
                let chain = trustedClientCertificates.isEmpty ? own : (trustedClientCertificates + [own]).joined(separator: ",")
                headers.add("x-forwarded-client-cert", chain)
            } else if !trustedClientCertificates.isEmpty {
                headers.add("x-forwarded-client-cert", trustedClientCertificates.joined(separator: ","))
            }
        }
        let requestID = trustedRequestID ?? generatedID
        headers.add("x-request-id", requestID)
        if let traceparent {
            headers.add("traceparent", traceparent)
            for value in tracestate { headers.add("tracestate", value) }
        } else {
            headers.add("traceparent", RequestIdentifiers.newTraceparent(using: &random))
        }
        return requestID
    }

    /// How the response body is delimited toward the client.
    enum ResponseFraming: Equatable {
        case noBody
        case contentLength
        /// Re-chunked toward an HTTP/1.1 client (upstream sent chunked or close-delimited).
        case chunked
        /// HTTP/1.0 client and no length: the body ends when the connection closes.
        case closeDelimited
    }

    /// How the client gets the body of `upstream`'s response.
    static func clientResponseFraming(_ upstream: UpstreamResponseHead, clientVersionMinor: Int) -> ResponseFraming {
        switch upstream.framing {
        case .none: return .noBody
        case .contentLength: return .contentLength
        case .chunked, .untilClose: return clientVersionMinor >= 1 ? .chunked : .closeDelimited
        }
    }

    /// The client's response head, written from the upstream's bytes: hop-by-hop fields, the
    /// fields its `Connection` header lists and any `X-Request-Id` are dropped; the gateway's
    /// `X-Request-Id`, framing, `Connection` and `extra` fields (which replace the upstream's
    /// fields of the same name) are added. The parser already refused control bytes in fields,
    /// so nothing can split the response.
    static func writeClientResponseHead(
        _ upstream: UpstreamResponseHead, framing: ResponseFraming, clientVersionMinor: Int, requestID: String,
        connection: StaticString?, extra: [(String, String)], into out: inout ByteBuffer
    ) {
        upstream.withReason { reason in
            let standardReason = reason.isEmpty ? HTTPResponseStatus(statusCode: upstream.status).reasonPhrase : ""
            let count = ResponseBytes.statusLineCount(reasonCount: reason.isEmpty ? standardReason.utf8.count : reason.count)
            HeadWriter.write(into: &out, count: count) { line in
                ResponseBytes.writeStatusLine(versionMinor: clientVersionMinor, status: upstream.status, into: &line) { line in
                    if reason.isEmpty { line.append(standardReason) } else { line.append(reason) }
                }
            }
        }
        let listed = upstream.connectionListed
        upstream.forEachKeptRun(keep: { name in
            switch HeaderName.classify(name) {
            case .hopByHop, .connection, .requestID: return false
            default:
                guard !listed.isEmpty || !extra.isEmpty else { return true }
                let lowercased = String(decoding: name, as: UTF8.self).lowercased()
                return !listed.contains(lowercased) && !extra.contains(where: { $0.0 == lowercased })
            }
        }) { lines in
            out.writeBytes(lines)
        }

        let chunked: StaticString = "transfer-encoding: chunked\r\n"
        var count = HeadWriter.fieldCount("x-request-id", requestID) + 2
        if framing == .chunked { count += chunked.utf8CodeUnitCount }
        if let connection { count += 12 + connection.utf8CodeUnitCount + 2 }
        for (name, value) in extra { count += HeadWriter.fieldCount(name, value) }
        HeadWriter.write(into: &out, count: count) { tail in
            tail.appendField("x-request-id", requestID)
            if framing == .chunked { tail.append(chunked) }
            if let connection {
                tail.append("connection: ")
                tail.append(connection)
                tail.append("\r\n")
            }
            for (name, value) in extra { tail.appendField(name, value) }
            tail.append("\r\n")
        }
    }
}
