import Crypto
import Foundation

/// Verifies the deliveries of one webhook route. Built once per configuration from the
/// route's `webhook` section and its resolved secrets; `verify` is pure and synchronous.
///
/// Every scheme is the same check with different header names: read the one signature
/// header (bounded, strict), read and check the timestamp, read the delivery id, then MAC
/// `prefix + body + suffix` once per secret and compare the result with every offered
/// signature in constant time. The replay store is not consulted here: the delivery names
/// the keys and their expiry, and the caller inserts them.
public struct WebhookVerifier: Sendable {
    public let route: String
    public let config: RouteWebhookConfig

    private let hmacKeys: [SymmetricKey]
    /// The HMAC states right after keying, one per secret, copied per delivery: the key
    /// schedule (two hash blocks) is paid once, not per delivery.
    private let keyedSHA256: [HMAC<SHA256>]
    private let keyedSHA512: [HMAC<SHA512>]
    private let publicKeys: [Curve25519.Signing.PublicKey]
    private let signatureHeader: String
    private let timestampHeader: String?
    private let idHeader: String?
    private let template: WebhookSignedTemplate
    private let algorithm: WebhookHMACAlgorithm

    /// The longest delivery id accepted (`webhook-id`, `X-GitHub-Delivery` are far shorter).
    static let maxIDBytes = 256
    static let maxTimestampHeaderBytes = 64

    /// - Parameters:
    ///   - secrets: the bytes each of `config.secrets` resolved to, in the same order.
    ///   - publicKeys: the bytes each of `config.publicKeys` resolved to (`standard` only).
    /// - Throws: `WebhookKeyError` naming the entry (`secrets[1]`) that cannot be used.
    public init(route: String, config: RouteWebhookConfig, secrets: [[UInt8]], publicKeys: [[UInt8]] = []) throws(WebhookKeyError) {
        self.route = route
        self.config = config
        var hmacKeys: [SymmetricKey] = []
        for (index, bytes) in secrets.enumerated() {
            hmacKeys.append(try WebhookSecret.hmacKey(bytes, scheme: config.scheme, name: "secrets[\(index)]"))
        }
        var verifyingKeys: [Curve25519.Signing.PublicKey] = []
        for (index, bytes) in publicKeys.enumerated() {
            guard config.scheme == .standard else {
                throw WebhookKeyError(key: "public_keys[\(index)]", reason: "only the `standard` scheme has public keys")
            }
            verifyingKeys.append(try WebhookSecret.publicKey(bytes, name: "public_keys[\(index)]"))
        }
        // Fail closed: a verifier with no key would refuse everything anyway, but say why now.
        guard !hmacKeys.isEmpty || !verifyingKeys.isEmpty else {
            throw WebhookKeyError(key: "secrets", reason: "no secret or public key to verify with")
        }
        self.hmacKeys = hmacKeys
        let algorithm = config.generic?.algorithm ?? .sha256
        self.keyedSHA256 = algorithm == .sha256 ? hmacKeys.map { HMAC<SHA256>(key: $0) } : []
        self.keyedSHA512 = algorithm == .sha512 ? hmacKeys.map { HMAC<SHA512>(key: $0) } : []
        self.publicKeys = verifyingKeys

        switch config.scheme {
        case .github:
            (signatureHeader, timestampHeader, template) = ("x-hub-signature-256", nil, .body)
        case .shopify:
            (signatureHeader, timestampHeader, template) = ("x-shopify-hmac-sha256", nil, .body)
        case .stripe:
            // The timestamp is inside `Stripe-Signature`, not a header of its own.
            (signatureHeader, timestampHeader, template) = ("stripe-signature", nil, Self.builtIn("{timestamp}.{body}"))
        case .slack:
            (signatureHeader, timestampHeader, template) = ("x-slack-signature", "x-slack-request-timestamp", Self.builtIn("v0:{timestamp}:{body}"))
        case .standard:
            (signatureHeader, timestampHeader, template) = ("webhook-signature", "webhook-timestamp", Self.builtIn("{id}.{timestamp}.{body}"))
        case .generic:
            guard let format = config.generic else {
                throw WebhookKeyError(key: "generic", reason: "the `generic` scheme needs its signature format")
            }
            (signatureHeader, timestampHeader, template) = (format.header, format.timestampHeader, format.signed)
        }
        self.algorithm = config.generic?.algorithm ?? .sha256
        self.idHeader = config.idHeader ?? config.scheme.defaultIDHeader
        // The loader refuses these; checked again so that a hand-built config cannot sign an
        // empty string where a header value belongs.
        if template.usesTimestamp && timestampHeader == nil && config.scheme != .stripe {
            throw WebhookKeyError(key: "generic.signed", reason: "uses `{timestamp}` but no `timestamp_header` is set")
        }
        if template.usesID && idHeader == nil {
            throw WebhookKeyError(key: "generic.signed", reason: "uses `{id}` but no `id_header` is set")
        }
    }

    private static func builtIn(_ text: String) -> WebhookSignedTemplate {
        // The built-in templates are constants known to parse.
        (try? WebhookSignedTemplate(parsing: text)) ?? .body
    }

    public func verify(headers: some WebhookHeaders, body: UnsafeRawBufferPointer, now: Date) -> WebhookVerdict {
        do throws(WebhookRefusal) {
            return .valid(try check(headers: headers, body: body, now: now))
        } catch {
            return .invalid(error.reason, detail: error.detail)
        }
    }

    public func verify(headers: some WebhookHeaders, body: [UInt8], now: Date) -> WebhookVerdict {
        body.withUnsafeBytes { verify(headers: headers, body: $0, now: now) }
    }

    private func check(headers: some WebhookHeaders, body: UnsafeRawBufferPointer, now: Date) throws(WebhookRefusal) -> WebhookDelivery {
        guard body.count <= config.maxBodyBytes else {
            throw WebhookRefusal(.requestTooLarge, "body is \(body.count) bytes, more than `max_body` (\(config.maxBodyBytes))")
        }
        guard let value = try headers.singleValue(signatureHeader, maxBytes: WebhookSignatureHeader.maxBytes) else {
            throw WebhookRefusal(.webhookMissingSignature, "no `\(signatureHeader)` header")
        }
        let signature = try parse(value)

        let timestamp = try readTimestamp(headers, signature: signature)
        let tolerance = config.tolerance.timeInterval
        if let timestamp, !timestamp.isFresh(now: now, tolerance: tolerance) {
            let offset = Int64((now.timeIntervalSince1970 - TimeInterval(timestamp.seconds)).rounded(.awayFromZero))
            throw WebhookRefusal(
                .webhookStaleTimestamp,
                "timestamp is \(abs(offset)) s \(offset > 0 ? "old" : "in the future"), tolerance is \(Int64(tolerance)) s")
        }
        let id = try readID(headers)

        let (prefix, suffix) = template.surroundings(timestamp: timestamp?.text, id: id)
        let hmacCandidates = signature.candidates.filter { $0.kind == .hmac }.map(\.bytes)
        var match: (index: Int, publicKey: Bool)?
        // What identifies the signed content for the replay key, whichever signature matched.
        var signedContent: [UInt8]?
        if !hmacCandidates.isEmpty {
            let result: (matched: Int?, firstMAC: [UInt8])
            switch algorithm {
            case .sha256: result = Self.matchHMAC(keyedSHA256, prefix: prefix, body: body, suffix: suffix, candidates: hmacCandidates)
            case .sha512: result = Self.matchHMAC(keyedSHA512, prefix: prefix, body: body, suffix: suffix, candidates: hmacCandidates)
            }
            signedContent = result.firstMAC
            match = result.matched.map { ($0, false) }
        }
        let signatureCandidates = signature.candidates.filter { $0.kind == .ed25519 }.map(\.bytes)
        if match == nil, !signatureCandidates.isEmpty, !publicKeys.isEmpty {
            // Ed25519 needs the message in one piece; only `standard` gets here.
            let message = prefix + Array(body) + suffix
            match = Self.matchEd25519(publicKeys, message: message, candidates: signatureCandidates).map { ($0, true) }
            if signedContent == nil { signedContent = message }  // hashed into the key, never stored
        }
        guard let match else {
            throw WebhookRefusal(.webhookBadSignature, "no signature matches any of the route's \(hmacKeys.count + publicKeys.count) key(s)")
        }

        var keys: [WebhookReplayKey] = []
        if config.rejectReplay {
            if let id {
                keys.append(WebhookReplayKey(route: route, kind: .deliveryID, material: id.utf8))
            }
            if id == nil || !template.usesID {
                // The id is not covered by the signature (or there is none): an attacker can
                // change it freely, so the signed content itself is remembered too. It is keyed
                // by the MAC under the first secret, not by whichever offered signature matched:
                // a replay that drops one of several offered signatures still has the same key.
                // A match always set `signedContent`; the empty fallback is never reached.
                keys.append(WebhookReplayKey(route: route, kind: .signedContent, material: signedContent ?? []))
            }
        }
        return WebhookDelivery(
            secretIndex: match.index, verifiedByPublicKey: match.publicKey, deliveryID: id, timestamp: timestamp?.date,
            replayKeys: keys,
            replayExpiresAt: timestamp?.replayExpiry(tolerance: tolerance) ?? now.addingTimeInterval(tolerance))
    }

    private func parse(_ value: String) throws(WebhookRefusal) -> WebhookSignatureHeader {
        switch config.scheme {
        case .github: return try .github(value)
        case .stripe: return try .stripe(value)
        case .slack: return try .slack(value)
        case .shopify: return try .shopify(value)
        case .standard: return try .standard(value, hmac: !hmacKeys.isEmpty, ed25519: !publicKeys.isEmpty)
        case .generic:
            guard let format = config.generic else { throw WebhookRefusal(.webhookMalformedSignature, "no generic format") }
            return try .generic(value, format: format)
        }
    }

    private func readTimestamp(_ headers: some WebhookHeaders, signature: WebhookSignatureHeader) throws(WebhookRefusal) -> WebhookTimestamp? {
        if config.scheme == .stripe { return signature.timestamp }
        guard let name = timestampHeader else { return nil }
        guard let text = try headers.singleValue(name, maxBytes: Self.maxTimestampHeaderBytes) else {
            throw WebhookRefusal(.webhookMalformedSignature, "no `\(name)` header")
        }
        guard let timestamp = WebhookTimestamp(Substring(text)) else {
            throw WebhookRefusal(.webhookMalformedSignature, "`\(name)` is not a Unix time in seconds")
        }
        return timestamp
    }

    /// The delivery id: visible ASCII, bounded, at most one header line. Required when the
    /// signature covers it; otherwise optional (it only adds a replay key).
    private func readID(_ headers: some WebhookHeaders) throws(WebhookRefusal) -> String? {
        guard let name = idHeader else { return nil }
        guard let id = try headers.singleValue(name, maxBytes: Self.maxIDBytes) else {
            if template.usesID { throw WebhookRefusal(.webhookMalformedSignature, "no `\(name)` header") }
            return nil
        }
        guard !id.isEmpty, id.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else {
            throw WebhookRefusal(.webhookMalformedSignature, "`\(name)` is not printable ASCII without spaces")
        }
        return id
    }

    /// MACs `prefix + body + suffix` once per key, without copying the body, and compares
    /// with each candidate using swift-crypto's `HashedAuthenticationCode == DataProtocol`,
    /// which is `safeCompare`: constant time in the bytes (swift-crypto 4.5.2,
    /// MessageAuthenticationCode.swift; on Linux `constantTimeCompare` in SafeCompare_boring.swift).
    /// Stops at the first key that matches; the first key's MAC is always computed, and is
    /// returned for the replay key.
    private static func matchHMAC<H: HashFunction>(
        _ keyed: [HMAC<H>], prefix: [UInt8], body: UnsafeRawBufferPointer, suffix: [UInt8],
        candidates: [[UInt8]]
    ) -> (matched: Int?, firstMAC: [UInt8]) {
        var firstMAC: [UInt8] = []
        for (index, state) in keyed.enumerated() {
            var hmac = state  // a copy: the keyed state is shared by every delivery
            hmac.update(data: prefix)
            hmac.update(data: body)  // UnsafeRawBufferPointer is DataProtocol with one region: no copy
            hmac.update(data: suffix)
            let mac = hmac.finalize()
            if index == 0 { firstMAC = Array(mac) }
            if candidates.contains(where: { mac == $0 }) { return (index, firstMAC) }
        }
        return (nil, firstMAC)
    }

    private static func matchEd25519(_ keys: [Curve25519.Signing.PublicKey], message: [UInt8], candidates: [[UInt8]]) -> Int? {
        for (index, key) in keys.enumerated() where candidates.contains(where: { key.isValidSignature($0, for: message) }) {
            return index
        }
        return nil
    }
}

extension WebhookVerifier {
    /// Resolves the route's secret references with `SecretResolver` and builds the verifier.
    /// - Throws: `SecretResolutionError` (names the reference) or `WebhookKeyError`.
    public init(route: String, config: RouteWebhookConfig, environment: [String: String] = ProcessInfo.processInfo.environment) throws {
        let secrets = try config.secrets.map { try SecretResolver.resolve($0, environment: environment) }
        let publicKeys = try config.publicKeys.map { try SecretResolver.resolve($0, environment: environment) }
        try self.init(route: route, config: config, secrets: secrets, publicKeys: publicKeys)
    }
}
