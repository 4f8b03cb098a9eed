/// Clusters: one EDS cluster `outbound|PORT||HOST` per visible service port, over ADS.
enum CDSGenerator {
    /// Istio's default connect timeout.
    static let connectTimeoutMillis: UInt64 = 10_000

    static func generate(_ c: GeneratorContext) -> XdsResponse {
        let key = ResponseKey(view: c.view.id, subscription: c.watch.wildcard ? nil : c.watch.names)
        return c.response(.cds, c.body(.cds, key: key) { resources(c) })
    }

    /// Wildcard: every cluster the proxy sees. By name: the names it sees; one it cannot see is
    /// left out (for CDS, absent means deleted). A wildcard watch's explicit names are all in
    /// the wildcard set already, or do not exist.
    static func resources(_ c: GeneratorContext) -> [EncodedResource] {
        let view = c.view
        let names: [String]
        if c.watch.wildcard {
            names = view.services.flatMap { s in s.ports.map { ResourceNames.outboundCluster(port: $0.number, host: s.hostname) } }.sorted()
        } else {
            names = c.watch.names.names.filter { view.resolveCluster($0) != nil }
        }
        return names.map { name in
            c.resource(.cds, ResourceKey(name: name)) {
                EnvoyCluster(name: name, edsServiceName: name, connectTimeoutMillis: connectTimeoutMillis).encodedResource()
            }
        }
    }
}
