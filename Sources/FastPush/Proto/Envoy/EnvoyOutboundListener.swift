/// envoy.config.listener.v3.Listener in the Istio sidecar outbound shape: name=1,
/// address=2 Address{socket_address=1{address=2, port_value=3}}, filter_chains=3 with one
/// FilterChain{filters=3 Filter{name=1, typed_config=4 Any(HCM)}}, traffic_direction=16
/// (OUTBOUND=2), bind_to_port=26 BoolValue (false: the listener only receives traffic
/// redirected by the virtual outbound listener).
public struct EnvoyOutboundListener: EnvoyResource, Equatable {
    public static let typeURL = EnvoyTypeURL.listener
    public static let httpConnectionManagerFilterName = "envoy.filters.network.http_connection_manager"
    static let trafficDirectionOutbound: UInt32 = 2

    public var name: String
    public var address: String
    public var port: UInt32
    public var connectionManager: EnvoyHttpConnectionManager
    /// nil leaves bind_to_port unset (true); false is written as a present, empty BoolValue.
    public var bindToPort: Bool?

    public init(name: String, address: String = "0.0.0.0", port: UInt32,
                connectionManager: EnvoyHttpConnectionManager, bindToPort: Bool? = false) {
        self.name = name
        self.address = address
        self.port = port
        self.connectionManager = connectionManager
        self.bindToPort = bindToPort
    }

    public var resourceName: String { name }

    var socketAddress: EnvoySocketAddress { EnvoySocketAddress(address: address, port: port) }
    var addressSize: Int { ProtoSize.message(1, socketAddress.protoSize) }
    var filterSize: Int {
        ProtoSize.string(1, Self.httpConnectionManagerFilterName) + ProtoSize.message(4, connectionManager.anySize)
    }
    var filterChainSize: Int { ProtoSize.message(3, filterSize) }

    public var protoSize: Int {
        var n = ProtoSize.string(1, name) + ProtoSize.message(2, addressSize) + ProtoSize.message(3, filterChainSize)
            + ProtoSize.uint32(16, Self.trafficDirectionOutbound)
        if let bindToPort { n += ProtoSize.boolWrapper(26, bindToPort) }
        return n
    }

    public func write(to w: inout ProtoWriter) {
        w.writeString(field: 1, name)
        let socketAddress = socketAddress
        w.writeMessage(field: 2, size: addressSize) { a in
            a.writeMessage(field: 1, size: socketAddress.protoSize) { socketAddress.write(to: &$0) }
        }
        let filterSize = filterSize
        w.writeMessage(field: 3, size: filterChainSize) { fc in
            fc.writeMessage(field: 3, size: filterSize) { f in
                f.writeString(field: 1, Self.httpConnectionManagerFilterName)
                connectionManager.writeAny(field: 4, to: &f)
            }
        }
        w.writeUInt32(field: 16, Self.trafficDirectionOutbound)
        if let bindToPort { w.writeBoolWrapper(field: 26, bindToPort) }
    }
}
