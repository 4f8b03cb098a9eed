/// RouteConfigurations. `PORT` (Envoy): one virtual host per visible service on that port.
/// `HOST:PORT` (proxyless gRPC): the one service. Virtual hosts match `HOST` and `HOST:PORT`
/// (the authorities of `xds:///HOST` and `xds:///HOST:PORT`) and route `prefix: ""` to the
/// cluster. Every requested name gets a RouteConfiguration, empty if unknown, so that a
/// listener never waits on it.
enum RDSGenerator {
    static func generate(_ c: GeneratorContext) -> XdsResponse {
        let key = ResponseKey(view: c.view.id, subscription: c.watch.names)
        return c.response(.rds, c.body(.rds, key: key) { resources(c) })
    }

    static func resources(_ c: GeneratorContext) -> [EncodedResource] {
        let view = c.view
        return c.watch.names.names.map { name -> EncodedResource in
            if let port = UInt32(name) {
                return c.resource(.rds, ResourceKey(name: name, scope: c.proxy.namespace)) {
                    let hosts = (view.servicesByPort[port] ?? []).map { virtualHost($0, port: port) }
                    return EnvoyRouteConfiguration(name: name, virtualHosts: hosts).encodedResource()
                }
            }
            if let (service, port) = view.resolveTarget(name), ResourceNames.parseTarget(name).port != nil {
                return c.resource(.rds, ResourceKey(name: name, scope: service.namespace)) {
                    EnvoyRouteConfiguration(name: name, virtualHosts: [virtualHost(service, port: port.number)]).encodedResource()
                }
            }
            return c.resource(.rds, ResourceKey(name: name, scope: "-")) {
                EnvoyRouteConfiguration(name: name, virtualHosts: []).encodedResource()
            }
        }
    }

    static func virtualHost(_ s: Service, port: UInt32) -> EnvoyVirtualHost {
        EnvoyVirtualHost(name: "\(s.hostname):\(port)", domains: [s.hostname, "\(s.hostname):\(port)"],
                         routes: [EnvoyRoute(prefix: "", cluster: ResourceNames.outboundCluster(port: port, host: s.hostname))])
    }
}
