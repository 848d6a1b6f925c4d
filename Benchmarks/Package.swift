// swift-tools-version:6.1
// The Gatehouse benchmark package: its own package so that the gateway's build
// never depends on benchmark code. `gh-load` is the harness's HTTP/1.1 keep-alive
// load generator; unlike wrk or h2load it can present a client certificate, so
// mTLS scenarios can be measured with the same tool as the plain-TLS ones. `gh-state`
// measures the in-memory replay store (memory per entry, time per insert).
import PackageDescription

let package = Package(
    name: "gatehouse-benchmarks",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "gh-load", targets: ["gh-load"]),
        .executable(name: "gh-state", targets: ["gh-state"]),
        .executable(name: "gh-floor", targets: ["gh-floor"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.3"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        // HMAC-SHA256 of the webhook deliveries gh-load signs (--webhook-github-secret).
        .package(url: "https://github.com/apple/swift-crypto.git", from: "4.5.2"),
        // The gateway itself, for benchmarks of its parts (gh-state: the replay store).
        .package(name: "gatehouse", path: ".."),
    ],
    targets: [
        .executableTarget(
            name: "gh-load",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        // A minimal SwiftNIO + NIOSSL reverse proxy: the stack's floor (peer nio-floor).
        .executableTarget(
            name: "gh-floor",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .executableTarget(
            name: "gh-state",
            dependencies: [.product(name: "GatehouseCore", package: "gatehouse")]
        ),
        .testTarget(
            name: "gh-loadTests",
            dependencies: ["gh-load", .product(name: "Crypto", package: "swift-crypto")]
        ),
    ]
)
