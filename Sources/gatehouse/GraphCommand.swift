import ArgumentParser
import GatehouseCore

struct GraphCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "graph",
        abstract: "Print the trust graph: callers (SPIFFE patterns, token issuers and scopes, webhook senders) → routes → upstreams (hop identity).",
        discussion: "Exit status 2 when the configuration does not load or the arguments are wrong."
    )

    @Argument(help: "The configuration file.")
    var config: String

    @Option(name: .long, help: "dot, mermaid or json.")
    var format: String = "mermaid"

    func run() throws {
        guard ["dot", "mermaid", "json"].contains(format) else { try usage("--format must be dot, mermaid or json") }
        let graph = TrustGraph(try loadConfigOrExit(config, exitCode: 2))
        switch format {
        case "dot": print(graph.dot(), terminator: "")
        case "json": print(graph.json(), terminator: "")
        default: print(graph.mermaid(), terminator: "")
        }
    }
}
