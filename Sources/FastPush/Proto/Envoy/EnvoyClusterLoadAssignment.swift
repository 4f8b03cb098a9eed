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

    /// Sizes of every LocalityLbEndpoints and LbEndpoint, in write order. A CLA can hold
    /// thousands of endpoints; sizing each once (instead of once per nesting level) roughly
    /// halves the encode time.
    struct Sizes {
        var total = 0
        var localities: [Int] = []
        var endpoints: [Int] = []
    }

    func computeSizes() -> Sizes {
        var s = Sizes()
        s.localities.reserveCapacity(localities.count)
        s.endpoints.reserveCapacity(localities.reduce(0) { $0 + $1.endpoints.count })
        s.total = ProtoSize.string(1, clusterName)
        for l in localities {
            var n = l.fieldsSize
            for e in l.endpoints {
                let es = e.protoSize
                s.endpoints.append(es)
                n += ProtoSize.message(2, es)
            }
            s.localities.append(n)
            s.total += ProtoSize.message(2, n)
        }
        return s
    }

    func write(to w: inout ProtoWriter, sizes: Sizes) {
        w.writeString(field: 1, clusterName)
        var first = 0
        for (i, l) in localities.enumerated() {
            let endpointSizes = sizes.endpoints[first..<first + l.endpoints.count]
            w.writeMessage(field: 2, size: sizes.localities[i]) { l.write(to: &$0, endpointSizes: endpointSizes) }
            first += l.endpoints.count
        }
    }

    public func write(to w: inout ProtoWriter) { write(to: &w, sizes: computeSizes()) }

    public func encodeAny() -> SharedBytes {
        let sizes = computeSizes()
        let anySize = ProtoAny.size(typeURL: Self.typeURL, valueSize: sizes.total)
        var w = ProtoWriter(capacity: anySize)
        ProtoAny.write(typeURL: Self.typeURL, valueSize: sizes.total, to: &w) { write(to: &$0, sizes: sizes) }
        assert(w.count == anySize)
        return w.finish()
    }
}
