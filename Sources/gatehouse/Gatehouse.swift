import ArgumentParser
import GatehouseCore

@main
struct Gatehouse: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gatehouse",
        abstract: "A reverse-proxy enforcement gateway: every request proves who sent it before it is forwarded.",
        version: GatehouseCoreVersion.string,
        subcommands: [ServeCommand.self, CheckCommand.self, DevCertsCommand.self, DemoCommand.self, TokenCommand.self, WebhookCommand.self,
            AuditCommand.self, GraphCommand.self, ReportCommand.self,
        ]
    )
}
