import GatehouseCore
import NIOCore

/// One listener's settings as the data path needs them, shared by its connections.
/// A class: handlers read it on every request, and copying a struct of this size would
/// retain and release each of its strings and arrays every time.
final class ListenerRuntime: Sendable {
    let config: ListenerConfig
    let normalizer: PathNormalizer
    let validator: RequestValidator
    let name: String
    let scheme: String

    init(config: ListenerConfig) {
        self.config = config
        self.normalizer = PathNormalizer(mergeSlashes: config.mergeSlashes)
        self.validator = RequestValidator(limits: config.limits)
        self.name = config.name
        self.scheme = config.tls == nil ? "http" : "https"
    }

    func isTrustedProxy(_ client: ClientAddress) -> Bool {
        guard !config.trustedProxies.isEmpty else { return false }
        return config.trustedProxies.contains { $0.contains(client.bytes) }
    }
}

/// The direct client's address, computed once per connection.
struct ClientAddress: Sendable {
    let text: String
    let bytes: [UInt8]

    init(_ address: SocketAddress?) {
        guard let address else {
            self.text = "unknown"
            self.bytes = []
            return
        }
        switch address {
        case .v4(let v4):
            var raw = v4.address.sin_addr.s_addr  // network byte order
            self.bytes = withUnsafeBytes(of: &raw) { Array($0) }
        case .v6(let v6):
            var raw = v6.address.sin6_addr
            let bytes = withUnsafeBytes(of: &raw) { Array($0) }
            // An IPv4-mapped address is an IPv4 client: compare it against IPv4 CIDRs.
            if bytes[0..<10].allSatisfy({ $0 == 0 }) && bytes[10] == 0xFF && bytes[11] == 0xFF {
                self.bytes = Array(bytes[12..<16])
            } else {
                self.bytes = bytes
            }
        case .unixDomainSocket:
            self.bytes = []
        }
        self.text = address.ipAddress ?? "unknown"
    }
}
