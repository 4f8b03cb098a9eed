/// envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager with
/// routes from RDS over ADS and the router as the only (terminal) HTTP filter, which is what
/// gRPC requires. Fields: codec_type=1 (AUTO omitted), stat_prefix=2,
/// rds=3 Rds{config_source=1, route_config_name=2}, http_filters=5 HttpFilter{name=1, typed_config=4}.
public struct EnvoyHttpConnectionManager: EnvoyTypedConfig, Equatable {
    public static let typeURL = EnvoyTypeURL.httpConnectionManager
    public static let routerFilterName = "envoy.filters.http.router"

    public var statPrefix: String
    public var routeConfigName: String
    /// CodecType enum: AUTO=0, HTTP1=1, HTTP2=2, HTTP3=3.
    public var codecType: UInt32

    public init(statPrefix: String, routeConfigName: String, codecType: UInt32 = 0) {
        self.statPrefix = statPrefix
        self.routeConfigName = routeConfigName
        self.codecType = codecType
    }

    var rdsSize: Int { ProtoSize.message(1, EnvoyADSConfigSource.size) + ProtoSize.string(2, routeConfigName) }

    /// The Router's Any holds only its type URL: an empty Router has no value bytes.
    static let routerAnySize = ProtoAny.size(typeURL: EnvoyTypeURL.router, valueSize: 0)
    static let routerFilterSize = ProtoSize.string(1, routerFilterName) + ProtoSize.message(4, routerAnySize)

    public var protoSize: Int {
        ProtoSize.uint32(1, codecType) + ProtoSize.string(2, statPrefix) + ProtoSize.message(3, rdsSize)
            + ProtoSize.message(5, Self.routerFilterSize)
    }

    public func write(to w: inout ProtoWriter) {
        w.writeUInt32(field: 1, codecType)
        w.writeString(field: 2, statPrefix)
        w.writeMessage(field: 3, size: rdsSize) { r in
            EnvoyADSConfigSource.write(field: 1, to: &r)
            r.writeString(field: 2, routeConfigName)
        }
        w.writeMessage(field: 5, size: Self.routerFilterSize) { f in
            f.writeString(field: 1, Self.routerFilterName)
            f.writeMessage(field: 4, size: Self.routerAnySize) { a in
                a.writeString(field: 1, EnvoyTypeURL.router)
            }
        }
    }
}
