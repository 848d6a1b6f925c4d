import ArgumentParser
import GatehouseServer

struct DevCertsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dev-certs",
        abstract: "Write a development PKI: a CA per trust domain (prod.example, staging.example), the gateway's localhost certificate and SVID, an upstream SVID, client SVIDs, and an untrusted CA."
    )

    @Option(name: .long, help: "Directory to write the PEM files into (created if missing).")
    var out: String = "dev-certs"

    func run() async throws {
        let manifest = try DevPKI.generate(into: out)
        print("wrote a development PKI to \(out):")
        for role in DevPKIManifest.Role.allCases { print("  \(manifest[role])") }
    }
}
