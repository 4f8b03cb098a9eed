/// envoy.config.route.v3.VirtualHost{name=1, domains=2, routes=3}. gRPC matches `domains`
/// against the target authority (`echo` or `echo:8080`).
public struct EnvoyVirtualHost: Sendable, Equatable {
    public var name: String
    public var domains: [String]
    public var routes: [EnvoyRoute]

    public init(name: String, domains: [String], routes: [EnvoyRoute]) {
        self.name = name
        self.domains = domains
        self.routes = routes
    }

    var protoSize: Int {
        var n = ProtoSize.string(1, name) + ProtoSize.repeatedString(2, domains)
        for r in routes { n += ProtoSize.message(3, r.protoSize) }
        return n
    }

    func write(to w: inout ProtoWriter) {
        w.writeString(field: 1, name)
        for d in domains { w.writeString(field: 2, d, alwaysEmit: true) }
        for r in routes { w.writeMessage(field: 3, size: r.protoSize) { r.write(to: &$0) } }
    }
}
