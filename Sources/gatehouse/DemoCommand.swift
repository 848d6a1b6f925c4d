import ArgumentParser
import Foundation
import GatehouseCore
import GatehouseServer
import Logging
import NIOPosix

struct DemoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Serve conf/demo.yaml in front of a built-in echo upstream (makes dev certs if missing)."
    )

    @Option(name: .long, help: "The demo configuration.")
    var config: String = "conf/demo.yaml"

    @Option(name: .long, help: "Where the development certificates live (made if missing).")
    var certs: String = "dev-certs"

    @Option(name: .long, help: "The upstream in the config that the built-in echo server plays.")
    var upstream: String = "echo"

    func run() async throws {
        bootstrapLogging(level: .info)
        let logger = Logger(label: "gatehouse.demo")
        // Regenerate when any file is missing (e.g. a dev-certs/ made by an older version).
        let manifest = DevPKIManifest(directory: certs)
        if DevPKIManifest.Role.allCases.contains(where: { !FileManager.default.fileExists(atPath: manifest[$0]) }) {
            _ = try DevPKI.generate(into: certs)
            print("made development certificates in \(certs)/")
        }
        let loaded = try loadConfigOrExit(config)
        guard let echo = loaded.upstreams.first(where: { $0.name == upstream }), let endpoint = echo.endpoints.first else {
            printError("\(config): the demo needs an upstream named `\(upstream)` for the built-in echo server")
            throw ExitCode(1)
        }
        let upstreamServer = try await EchoUpstream.start(
            host: endpoint.host, port: endpoint.port, group: MultiThreadedEventLoopGroup.singleton
        )
        let listener = loaded.listeners[0]
        let base = "\(listener.tls == nil ? "http" : "https")://localhost:\(listener.address.port)"
        let caFlag = listener.tls == nil ? "" : "--cacert \(certs)/ca.pem "
        // The counts of everything above, by route and reason, when the admin listener is on.
        let metricsLine = loaded.admin.address.map {
            "\n  curl http://\($0)/metrics                                # decisions by route and reason (Prometheus)"
        } ?? ""
        let banner = """

            Gatehouse demo: \(base) -> built-in echo upstream at \(endpoint)
            Decision records are written to \(loaded.decisionLog.path == "-" ? "stdout" : loaded.decisionLog.path), one JSON line per request.
            Try:
              curl \(caFlag)\(base)/api/hello                                  # allowed: the echo shows the headers the upstream saw
              curl \(caFlag)-H 'X-Forwarded-For: 6.6.6.6' \(base)/api/hello   # the spoofed header is replaced
              curl \(caFlag)-X POST -d '{"item":1}' \(base)/api/orders         # allowed on the write route
              curl \(caFlag)-X DELETE \(base)/api/orders/1                     # 404 route.not_found: no route allows DELETE
              curl \(caFlag)--path-as-is \(base)/api/../../etc/passwd          # 400 request.invalid_path
              curl \(caFlag)\(base)/admin                                      # 404 route.not_found
              curl \(caFlag)\(base)/api/payments                               # 401 peer.missing: no client certificate
              curl \(caFlag)--cert \(certs)/client-prod.pem --key \(certs)/client-prod.key \(base)/api/payments      # allowed: the verified SPIFFE ID
              curl \(caFlag)--cert \(certs)/client-staging.pem --key \(certs)/client-staging.key \(base)/api/payments  # 403 peer.not_allowed
              curl \(caFlag)--cert \(certs)/client-untrusted.pem --key \(certs)/client-untrusted.key \(base)/api/hello # handshake refused: tls.untrusted_chain\(metricsLine)
            Ctrl-C to stop.

            """
        try await runGateway(config: loaded, logger: logger) {
            print(banner)
        }
        await upstreamServer.stop()
    }
}
