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
        self.certificateDigest = Self.bytes(hex: verified.certificateSHA256)
        // SPIFFE IDs and hex never contain `,` `;` `=` or `"`, so no value needs quoting.
        var element = gatewayID.map { "By=\($0);" } ?? ""
        element += "Hash=\(verified.certificateSHA256);URI=\(spiffeID)"
        self.forwardedClientCertElement = element
        self.record = DecisionRecord.Peer(spiffeID: spiffeID, certificateSHA256: certificateSHA256)
    }

    private static func bytes(hex: String) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(hex.utf8.count / 2)
        var high: UInt8?
        for char in hex.utf8 {
            let nibble: UInt8 = char >= 0x61 ? char - 0x61 + 10 : char - 0x30
            if let first = high {
                bytes.append(first << 4 | nibble)
                high = nil
            } else {
                high = nibble
            }
        }
        return bytes
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
