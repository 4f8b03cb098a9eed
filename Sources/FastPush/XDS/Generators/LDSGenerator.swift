/// Listeners, depending on how the client asks (as Istio does):
/// - by name `HOST:PORT` or `HOST` (proxyless gRPC): an ApiListener named exactly as asked, with
///   an HttpConnectionManager that fetches route `HOST:PORT` over ADS;
/// - wildcard (Envoy): Istio's sidecar outbound listeners `0.0.0.0_PORT`, routing by RDS `PORT`.
enum LDSGenerator {
    static func generate(_ c: GeneratorContext) -> XdsResponse {
        let key = ResponseKey(view: c.view.id, subscription: c.watch.wildcard ? nil : c.watch.names)
        let body = c.body(.lds, key: key) {
            let view = c.view
            if c.watch.wildcard {
                return view.ports.map { outbound(c, port: $0) }
            }
            return c.watch.names.names.compactMap { name -> EncodedResource? in
                if let port = ResourceNames.parseOutboundListener(name) {
                    return view.servicesByPort[port] == nil ? nil : outbound(c, port: port)
                }
                guard let (service, port) = view.resolveTarget(name) else { return nil }
                return c.resource(.lds, ResourceKey(name: name, scope: service.namespace)) {
                    let route = ResourceNames.grpcRoute(host: service.hostname, port: port.number)
                    return EnvoyAPIListener(name: name, connectionManager: EnvoyHttpConnectionManager(
                        statPrefix: name, routeConfigName: route)).encodedResource()
                }
            }
        }
        return c.response(.lds, body)
    }

    static func outbound(_ c: GeneratorContext, port: UInt32) -> EncodedResource {
        let name = ResourceNames.outboundListener(port: port)
        return c.resource(.lds, ResourceKey(name: name)) {
            EnvoyOutboundListener(name: name, port: port, connectionManager: EnvoyHttpConnectionManager(
                statPrefix: "outbound_\(name)", routeConfigName: String(port)), bindToPort: false).encodedResource()
        }
    }
}
