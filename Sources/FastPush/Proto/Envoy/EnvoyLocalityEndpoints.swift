/// envoy.config.endpoint.v3.LocalityLbEndpoints{locality=1 Locality{region=1, zone=2,
/// sub_zone=3}, lb_endpoints=2, load_balancing_weight=3 UInt32Value, priority=5}.
/// The locality message is always written: gRPC NACKs a missing one, an empty one is fine.
public struct EnvoyLocalityEndpoints: Sendable, Equatable {
    public var region: String
    public var zone: String
    public var subZone: String
    /// gRPC silently drops a locality without a weight > 0; nil leaves it unset.
    public var weight: UInt32?
    /// Priorities must be 0..N-1 without gaps (enforced by the XDS layer).
    public var priority: UInt32
    public var endpoints: [EnvoyLbEndpoint]

    public init(region: String = "", zone: String = "", subZone: String = "", weight: UInt32? = nil,
                priority: UInt32 = 0, endpoints: [EnvoyLbEndpoint]) {
        self.region = region
        self.zone = zone
        self.subZone = subZone
        self.weight = weight
        self.priority = priority
        self.endpoints = endpoints
    }

    var localitySize: Int { ProtoSize.string(1, region) + ProtoSize.string(2, zone) + ProtoSize.string(3, subZone) }

    var protoSize: Int {
        var n = 0
        for e in endpoints { n += ProtoSize.message(2, e.protoSize) }
        return n + fieldsSize
    }

    /// Everything but lb_endpoints.
    var fieldsSize: Int {
        var n = ProtoSize.message(1, localitySize) + ProtoSize.uint32(5, priority)
        if let weight { n += ProtoSize.uint32Wrapper(3, weight) }
        return n
    }

    /// `endpointSizes[i]` is `endpoints[i].protoSize`, computed once by the caller.
    func write(to w: inout ProtoWriter, endpointSizes: ArraySlice<Int>) {
        w.writeMessage(field: 1, size: localitySize) { l in
            l.writeString(field: 1, region)
            l.writeString(field: 2, zone)
            l.writeString(field: 3, subZone)
        }
        var i = endpointSizes.startIndex
        for e in endpoints {
            w.writeMessage(field: 2, size: endpointSizes[i]) { e.write(to: &$0) }
            i += 1
        }
        if let weight { w.writeUInt32Wrapper(field: 3, weight) }
        w.writeUInt32(field: 5, priority)
    }
}
