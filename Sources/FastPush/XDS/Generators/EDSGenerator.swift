/// ClusterLoadAssignments, shaped for what gRPC's xDS client accepts: endpoints grouped by
/// locality (one entry per locality), no duplicate address:port, every weight > 0, and all
/// localities at priority 0 (priorities must be contiguous).
public enum EDSGenerator {
    static func generate(_ c: GeneratorContext) -> XdsResponse? {
        var partial: UpdatedHosts?
        if !c.forRequest && !c.request.forced && !c.watch.needsComplete, let cu = c.request.configsUpdated, !cu.isEmpty {
            partial = c.request.updatedHosts ?? UpdatedHosts(cu)
        }
        let key = ResponseKey(view: c.view.id, subscription: c.watch.names, partial: partial)
        let body = c.body(.eds, key: key) { resources(c, onlyHosts: partial) }
        // An incremental push that touches none of this stream's clusters sends nothing.
        if partial != nil && body.resourceCount == 0 { return nil }
        return c.response(.eds, body, full: partial == nil)
    }

    /// Every subscribed cluster's assignment (an unknown cluster gets an empty one, as Istio
    /// sends), or with `onlyHosts` only those of the hosts an incremental push changed.
    static func resources(_ c: GeneratorContext, onlyHosts partial: UpdatedHosts? = nil) -> [EncodedResource] {
        let view = c.view
        var names = c.watch.names.names
        if let partial {
            names = names.filter { n in ResourceNames.parseCluster(n).map { partial.hostnames.contains($0.host) } ?? false }
        }
        return names.map { name in
            guard let (service, port) = view.resolveCluster(name) else {
                let host = ResourceNames.parseCluster(name)?.host ?? ""
                return c.resource(.eds, ResourceKey(name: name, scope: "-", host: host)) {
                    EnvoyClusterLoadAssignment(clusterName: name, localities: []).encodedResource()
                }
            }
            let current = c.push.service(namespace: service.namespace, hostname: service.hostname) ?? service
            return c.resource(.eds, ResourceKey(name: name, scope: service.namespace, host: service.hostname)) {
                loadAssignment(name: name, service: current, port: port).encodedResource()
            }
        }
    }

    public static func loadAssignment(name: String, service: Service, port: ServicePort) -> EnvoyClusterLoadAssignment {
        var byLocality: [Locality: [EnvoyLbEndpoint]] = [:]
        var seen = Set<String>()
        for e in service.endpoints {
            let p = e.port(for: port)
            guard seen.insert("\(e.address)|\(p)").inserted else { continue }
            byLocality[e.locality, default: []].append(
                EnvoyLbEndpoint(address: e.address, port: p, healthStatus: .healthy, weight: e.weight > 0 ? e.weight : nil))
        }
        let localities = byLocality.keys.sorted().map { l -> EnvoyLocalityEndpoints in
            let eps = byLocality[l]!
            let weight = eps.reduce(UInt32(0)) { $0 &+ ($1.weight ?? 1) }
            return EnvoyLocalityEndpoints(region: l.region, zone: l.zone, subZone: l.subZone,
                                          weight: max(weight, 1), priority: 0, endpoints: eps)
        }
        return EnvoyClusterLoadAssignment(clusterName: name, localities: localities)
    }
}
