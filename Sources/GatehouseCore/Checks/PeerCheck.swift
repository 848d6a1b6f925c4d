/// The outcome of one check on a request.
public enum CheckOutcome: Sendable, Equatable {
    case pass
    case deny(ReasonCode)
}

/// `routes[].peers`: may the connection's verified workload call this route?
/// Pure: it sees only the route's policy and the peer the TLS handshake verified.
public struct PeerCheck: Sendable, Equatable {
    public let policy: PeerPolicy

    public init(policy: PeerPolicy) {
        self.policy = policy
    }

    /// - Parameter peer: the verified SPIFFE ID of the client certificate, nil without one.
    public func evaluate(peer: SPIFFEID?) -> CheckOutcome {
        guard let peer else { return .deny(.peerMissing) }
        return policy.allows(peer) ? .pass : .deny(.peerNotAllowed)
    }
}
