/// envoy.config.cluster.v3.Cluster of type EDS, endpoints from ADS. Fields in field-number
/// order: name=1, type=2, eds_cluster_config=3{eds_config=1, service_name=2},
/// connect_timeout=4 Duration{seconds=1, nanos=2}. lb_policy=6 is left unset (ROUND_ROBIN):
/// gRPC NACKs the other classic policies except RING_HASH.
public struct EnvoyCluster: EnvoyResource, Equatable {
    public static let typeURL = EnvoyTypeURL.cluster
    static let discoveryTypeEDS: UInt32 = 3

    public var name: String
    /// EDS resource name; "" means the client asks EDS for `name`.
    public var edsServiceName: String
    /// nil leaves connect_timeout unset (Envoy's default is 5 s).
    public var connectTimeoutMillis: UInt64?

    public init(name: String, edsServiceName: String = "", connectTimeoutMillis: UInt64? = nil) {
        self.name = name
        self.edsServiceName = edsServiceName
        self.connectTimeoutMillis = connectTimeoutMillis
    }

    public var resourceName: String { name }

    var edsClusterConfigSize: Int {
        ProtoSize.message(1, EnvoyADSConfigSource.size) + ProtoSize.string(2, edsServiceName)
    }

    var timeoutSeconds: Int64 { Int64(connectTimeoutMillis! / 1000) }
    var timeoutNanos: Int32 { Int32(connectTimeoutMillis! % 1000) * 1_000_000 }
    var durationSize: Int { ProtoSize.int64(1, timeoutSeconds) + ProtoSize.int32(2, timeoutNanos) }

    public var protoSize: Int {
        var n = ProtoSize.string(1, name)
            + ProtoSize.uint32(2, Self.discoveryTypeEDS)
            + ProtoSize.message(3, edsClusterConfigSize)
        if connectTimeoutMillis != nil { n += ProtoSize.message(4, durationSize) }
        return n
    }

    public func write(to w: inout ProtoWriter) {
        w.writeString(field: 1, name)
        w.writeUInt32(field: 2, Self.discoveryTypeEDS)
        w.writeMessage(field: 3, size: edsClusterConfigSize) { e in
            EnvoyADSConfigSource.write(field: 1, to: &e)
            e.writeString(field: 2, edsServiceName)
        }
        if connectTimeoutMillis != nil {
            // Present even for 0 ms: an explicit zero differs from unset.
            w.writeMessage(field: 4, size: durationSize) { d in
                d.writeInt64(field: 1, timeoutSeconds)
                d.writeInt32(field: 2, timeoutNanos)
            }
        }
    }
}
