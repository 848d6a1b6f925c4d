/// What a header name means to the gateway, decided without allocating: this runs for every
/// header of every request and response.
enum HeaderName: Equatable {
    case ordinary
    /// Hop-by-hop (RFC 9110 §7.6.1) or a legacy proxy header: never forwarded.
    case hopByHop
    /// `X-Gatehouse-*`: only the gateway may set these, always stripped from clients.
    case gatehousePrivate
    case connection
    case forwardedFor, forwardedProto, forwardedHost, forwardedPort, forwarded, realIP
    case requestID, traceparent, tracestate, clientCertificate

    static func classify(_ name: String) -> HeaderName {
        var name = name
        return name.withUTF8 { classify(UnsafeRawBufferPointer($0)) }
    }

    static func classify(_ bytes: UnsafeRawBufferPointer) -> HeaderName {
        switch bytes.count {
        case 2: if equals(bytes, "te") { return .hopByHop }
        case 7: if equals(bytes, "trailer") || equals(bytes, "upgrade") { return .hopByHop }
        case 9:
            if equals(bytes, "forwarded") { return .forwarded }
            if equals(bytes, "x-real-ip") { return .realIP }
        case 10:
            if equals(bytes, "connection") { return .connection }
            if equals(bytes, "keep-alive") { return .hopByHop }
            if equals(bytes, "tracestate") { return .tracestate }
        case 11: if equals(bytes, "traceparent") { return .traceparent }
        case 12: if equals(bytes, "x-request-id") { return .requestID }
        case 14: if equals(bytes, "http2-settings") { return .hopByHop }
        case 15: if equals(bytes, "x-forwarded-for") { return .forwardedFor }
        case 16:
            if equals(bytes, "x-forwarded-host") { return .forwardedHost }
            if equals(bytes, "x-forwarded-port") { return .forwardedPort }
        case 17:
            if equals(bytes, "x-forwarded-proto") { return .forwardedProto }
            if equals(bytes, "transfer-encoding") { return .hopByHop }
        case 23: if equals(bytes, "x-forwarded-client-cert") { return .clientCertificate }
        default: break
        }
        if hasPrefix(bytes, "proxy-") { return .hopByHop }
        if hasPrefix(bytes, "x-gatehouse-") { return .gatehousePrivate }
        return .ordinary
    }

    /// ASCII case-insensitive comparison against a lowercase literal.
    private static func equals(_ bytes: UnsafeRawBufferPointer, _ lowercase: StaticString) -> Bool {
        bytes.equalsLowercase(lowercase)
    }

    static func hasPrefix(_ bytes: UnsafeRawBufferPointer, _ lowercase: StaticString) -> Bool {
        let count = lowercase.utf8CodeUnitCount
        guard bytes.count >= count else { return false }
        let literal = lowercase.utf8Start
        for index in 0..<count where ASCII.lowercased(bytes[index]) != literal[index] { return false }
        return true
    }
}

extension UnsafeRawBufferPointer {
    /// ASCII case-insensitive comparison against a lowercase literal.
    func equalsLowercase(_ lowercase: StaticString) -> Bool {
        count == lowercase.utf8CodeUnitCount && HeaderName.hasPrefix(self, lowercase)
    }
}
