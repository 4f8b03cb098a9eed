/// envoy.config.route.v3.Route{match=1 RouteMatch{prefix=1}, route=2 RouteAction{cluster=1}}.
/// `prefix` and `cluster` are oneof members, so "" is still written: gRPC NACKs a RouteMatch
/// whose path specifier is unset, and `prefix: ""` is the usual catch-all.
public struct EnvoyRoute: Sendable, Equatable {
    public var prefix: String
    public var cluster: String

    public init(prefix: String = "", cluster: String) {
        self.prefix = prefix
        self.cluster = cluster
    }

    var matchSize: Int { ProtoSize.string(1, prefix, alwaysEmit: true) }
    var actionSize: Int { ProtoSize.string(1, cluster, alwaysEmit: true) }

    var protoSize: Int { ProtoSize.message(1, matchSize) + ProtoSize.message(2, actionSize) }

    func write(to w: inout ProtoWriter) {
        w.writeMessage(field: 1, size: matchSize) { $0.writeString(field: 1, prefix, alwaysEmit: true) }
        w.writeMessage(field: 2, size: actionSize) { $0.writeString(field: 1, cluster, alwaysEmit: true) }
    }
}
