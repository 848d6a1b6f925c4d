extension UpstreamCluster {
    /// Whether this running cluster can go on serving in place of `fresh`, built from a
    /// reloaded file: same settings (wherever they are written) and the same resolved
    /// addresses. Keeping it keeps its warm connections and endpoint health; its TLS
    /// material is kept current by the rotation watcher.
    func canStandIn(for fresh: UpstreamCluster) -> Bool {
        var settings = config
        settings.location = fresh.config.location
        return settings == fresh.config && selector.endpoints.map(\.address) == fresh.selector.endpoints.map(\.address)
    }
}
