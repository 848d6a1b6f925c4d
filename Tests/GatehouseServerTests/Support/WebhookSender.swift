import Crypto
import Foundation
import GatehouseCore

/// Signs deliveries the way each sender does (from the providers' documentation), so the
/// end-to-end tests send what GitHub, Stripe, Slack, Shopify and a Standard Webhooks
/// sender would.
enum WebhookSender {
    static func hex(_ bytes: some Sequence<UInt8>) -> String { bytes.map { String(format: "%02x", $0) }.joined() }

    static func hmac256(_ secret: [UInt8], _ message: [UInt8]) -> [UInt8] {
        Array(HMAC<SHA256>.authenticationCode(for: message, using: SymmetricKey(data: secret)))
    }

    static func hmac512(_ secret: [UInt8], _ message: [UInt8]) -> [UInt8] {
        Array(HMAC<SHA512>.authenticationCode(for: message, using: SymmetricKey(data: secret)))
    }

    /// The headers a sender of `scheme` puts on `body`, as curl `-H` values.
    static func headers(
        _ scheme: WebhookScheme, secret: String, body: [UInt8], timestamp: Int = Int(Date().timeIntervalSince1970),
        id: String = UUID().uuidString
    ) -> [String] {
        let key = Array(secret.utf8)
        switch scheme {
        case .github:
            return ["X-Hub-Signature-256: sha256=" + hex(hmac256(key, body)), "X-GitHub-Delivery: \(id)", "X-GitHub-Event: push"]
        case .stripe:
            return ["Stripe-Signature: t=\(timestamp),v1=" + hex(hmac256(key, Array("\(timestamp).".utf8) + body))]
        case .slack:
            return [
                "X-Slack-Request-Timestamp: \(timestamp)",
                "X-Slack-Signature: v0=" + hex(hmac256(key, Array("v0:\(timestamp):".utf8) + body)),
            ]
        case .shopify:
            return ["X-Shopify-Hmac-Sha256: " + Data(hmac256(key, body)).base64EncodedString()]
        case .standard:
            // `whsec_<base64>`: the key is the decoded bytes.
            let raw = Array(Data(base64Encoded: String(secret.dropFirst("whsec_".count)))!)
            let signature = Data(hmac256(raw, Array("\(id).\(timestamp).".utf8) + body)).base64EncodedString()
            return ["webhook-id: \(id)", "webhook-timestamp: \(timestamp)", "webhook-signature: v1,\(signature)"]
        case .generic:
            // The tests' generic sender: X-Signature: sha512=<base64> over `{timestamp}.{body}`.
            let signature = Data(hmac512(key, Array("\(timestamp).".utf8) + body)).base64EncodedString()
            return ["X-Timestamp: \(timestamp)", "X-Signature: sha512=\(signature)"]
        }
    }

    /// The generic format the tests' generic sender uses.
    static var genericFormat: GenericWebhookFormat {
        var format = GenericWebhookFormat(header: "x-signature")
        format.prefix = "sha512="
        format.encoding = .base64
        format.algorithm = .sha512
        format.signed = try! WebhookSignedTemplate(parsing: "{timestamp}.{body}")
        format.timestampHeader = "x-timestamp"
        return format
    }
}
