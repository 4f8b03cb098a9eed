/// envoy.config.route.v3.RouteConfiguration{name=1, virtual_hosts=2}.
public struct EnvoyRouteConfiguration: EnvoyResource, Equatable {
    public static let typeURL = EnvoyTypeURL.routeConfiguration

    public var name: String
    public var virtualHosts: [EnvoyVirtualHost]

    public init(name: String, virtualHosts: [EnvoyVirtualHost]) {
        self.name = name
        self.virtualHosts = virtualHosts
    }

    public var resourceName: String { name }

    public var protoSize: Int {
        var n = ProtoSize.string(1, name)
        for v in virtualHosts { n += ProtoSize.message(2, v.protoSize) }
        return n
    }

    public func write(to w: inout ProtoWriter) {
        w.writeString(field: 1, name)
        for v in virtualHosts { w.writeMessage(field: 2, size: v.protoSize) { v.write(to: &$0) } }
    }
}
