import Crypto
import NIOHTTP1

/// `admin.token`: the bearer token the mutating admin endpoints require. Without one they
/// are disabled: a default that lets anyone on the admin port change policy is the kind of
/// implicit trust the gateway exists to remove.
struct AdminAuthorization: Sendable {
    enum Outcome: Equatable {
        case allowed
        /// No `admin.token` is configured: the endpoint is off.
        case disabled
        /// No bearer token, or the wrong one.
        case refused
    }

    /// SHA-256 of the configured token: compared digest to digest, in constant time.
    private let digest: [UInt8]?

    init(token: [UInt8]?) {
        self.digest = token.map { Array(SHA256.hash(data: $0)) }
    }

    func check(_ headers: HTTPHeaders) -> Outcome {
        guard let digest else { return .disabled }
        let values = headers["authorization"]
        guard values.count == 1, values[0].count > 7, values[0].prefix(7).lowercased() == "bearer " else { return .refused }
        let presented = Array(SHA256.hash(data: Array(values[0].dropFirst(7).utf8)))
        var difference: UInt8 = 0
        for (a, b) in zip(presented, digest) { difference |= a ^ b }
        return difference == 0 ? .allowed : .refused
    }
}
