/// envoy.config.endpoint.v3.ClusterLoadAssignment{cluster_name=1, endpoints=2}. Encodes what
/// it is given; grouping by locality, dedupe and priority rules belong to the XDS layer.
public struct EnvoyClusterLoadAssignment: EnvoyResource, Equatable {
    public static let typeURL = EnvoyTypeURL.clusterLoadAssignment

    public var clusterName: String
    public var localities: [EnvoyLocalityEndpoints]

    public init(clusterName: String, localities: [EnvoyLocalityEndpoints]) {
        self.clusterName = clusterName
        self.localities = localities
    }

    public var resourceName: String { clusterName }

    public var protoSize: Int {
        var n = ProtoSize.string(1, clusterName)
        for l in localities { n += ProtoSize.message(2, l.protoSize) }
        return n
    }

    public func write(to w: inout ProtoWriter) {
        w.writeString(field: 1, clusterName)
        for l in localities {
            w.writeMessage(field: 2, size: l.protoSize) { l.write(to: &$0) }
        }
    }
}
