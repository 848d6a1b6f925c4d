import Crypto
import Foundation
import NIOPosix

enum SHA256Hex {
    static func of(_ data: Data) -> String {
        SHA256.hash(data: data).map { String(format: "%02x", $0) }.joined()
    }
}

enum MultiThreadedEventLoopGroupHolder {
    static let shared = MultiThreadedEventLoopGroup.singleton
}
