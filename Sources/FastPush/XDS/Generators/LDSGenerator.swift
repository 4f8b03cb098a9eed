/// Listeners, depending on how the client asks (as Istio does):
/// - by name `HOST:PORT` or `HOST` (proxyless gRPC): an ApiListener named exactly as asked, with
///   an HttpConnectionManager that fetches route `HOST:PORT` over ADS;
/// - wildcard (Envoy): Istio's sidecar outbound listeners `0.0.0.0_PORT`, routing by RDS `PORT`.
enum LDSGenerator {
    static func generate(_ c: GeneratorContext) -> XdsResponse {
        let key = ResponseKey(view: c.view.id, subscription: c.watch.wildcard ? nil : c.watch.names)
        return c.response(.lds, c.body(.lds, key: key) { resources(c, explicitWithWildcard: false) })
    }

    /// `explicitWithWildcard`: a wildcard watch also gets the listeners it names (Delta, where a
    /// client may subscribe to `*` and to names at once); State of the World ignores them.
    static func resources(_ c: GeneratorContext, explicitWithWildcard: Bool) -> [EncodedResource] {
        let view = c.view
        var out: [EncodedResource] = []
        if c.watch.wildcard {
            out = view.ports.map { outbound(c, port: $0) }
            if !explicitWithWildcard { return out }
        }
        for name in c.watch.names.names {
            if let port = ResourceNames.parseOutboundListener(name) {
                if view.servicesByPort[port] != nil { out.append(outbound(c, port: port)) }
                continue
            }
            guard let (service, port) = view.resolveTarget(name) else { continue }
            out.append(c.resource(.lds, ResourceKey(name: name, scope: service.namespace)) {
                let route = ResourceNames.grpcRoute(host: service.hostname, port: port.number)
                return EnvoyAPIListener(name: name, connectionManager: EnvoyHttpConnectionManager(
                    statPrefix: name, routeConfigName: route)).encodedResource()
            })
        }
        return out
    }

    static func outbound(_ c: GeneratorContext, port: UInt32) -> EncodedResource {
        let name = ResourceNames.outboundListener(port: port)
        return c.resource(.lds, ResourceKey(name: name)) {
            EnvoyOutboundListener(name: name, port: port, connectionManager: EnvoyHttpConnectionManager(
                statPrefix: "outbound_\(name)", routeConfigName: String(port)), bindToPort: false).encodedResource()
        }
    }
}
