import GatehouseCore
import NIOCore

/// A connection's verified client certificate, in the forms the data path needs on every
/// request, computed once at the handshake.
final class ConnectionPeer: Sendable {
    let id: SPIFFEID
    let spiffeID: String
    let certificateSHA256: String
    /// The same digest as bytes, for certificate-bound tokens (RFC 8705 `x5t#S256`).
    let certificateDigest: [UInt8]
    /// This hop's element of `X-Forwarded-Client-Cert`, in Envoy's format.
    let forwardedClientCertElement: String
    let record: DecisionRecord.Peer

    /// - Parameter gatewayID: the gateway's own SPIFFE ID (its server certificate's URI SAN),
    ///   for the `By=` field; omitted when the server certificate has none.
    init(_ verified: VerifiedPeer, gatewayID: String?) {
        self.id = verified.spiffeID
        self.spiffeID = verified.spiffeID.description
        self.certificateSHA256 = verified.certificateSHA256
        // The verifier's own lowercase hex of a SHA-256: always decodes.
        self.certificateDigest = Hex.decode(verified.certificateSHA256.utf8) ?? []
        // SPIFFE IDs and hex never contain `,` `;` `=` or `"`, so no value needs quoting.
        var element = gatewayID.map { "By=\($0);" } ?? ""
        element += "Hash=\(verified.certificateSHA256);URI=\(spiffeID)"
        self.forwardedClientCertElement = element
        self.record = DecisionRecord.Peer(spiffeID: spiffeID, certificateSHA256: certificateSHA256)
    }
}

/// Where a connection's handshake leaves its outcome: the verified peer, or why the client
/// certificate was refused (for the refusal's decision record). Written by the verification
/// callback and read by the handlers after it, all on the connection's event loop.
final class PeerSlot {
    var peer: ConnectionPeer?
    var refusal: SVIDRefusal?
}

@available(*, unavailable)
extension PeerSlot: Sendable {}
