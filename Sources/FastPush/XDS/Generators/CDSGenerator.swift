/// Clusters: one EDS cluster `outbound|PORT||HOST` per visible service port, over ADS.
enum CDSGenerator {
    /// Istio's default connect timeout.
    static let connectTimeoutMillis: UInt64 = 10_000

    static func generate(_ c: GeneratorContext) -> XdsResponse {
        let key = ResponseKey(view: c.view.id, subscription: c.watch.wildcard ? nil : c.watch.names)
        let body = c.body(.cds, key: key) {
            let view = c.view
            let names: [String]
            if c.watch.wildcard {
                names = view.services.flatMap { s in s.ports.map { ResourceNames.outboundCluster(port: $0.number, host: s.hostname) } }.sorted()
            } else {
                // A name the proxy cannot see is left out: for CDS, absent means deleted.
                names = c.watch.names.names.filter { view.resolveCluster($0) != nil }
            }
            return names.map { name in
                c.resource(.cds, ResourceKey(name: name)) {
                    EnvoyCluster(name: name, edsServiceName: name, connectTimeoutMillis: connectTimeoutMillis).encodedResource()
                }
            }
        }
        return c.response(.cds, body)
    }
}
