/// envoy.config.endpoint.v3.LbEndpoint{endpoint=1 Endpoint{address=1 Address{socket_address=1
/// SocketAddress{protocol=1 (TCP=0, omitted), address=2, port_value=3}}}, health_status=2,
/// load_balancing_weight=4 UInt32Value}.
public struct EnvoyLbEndpoint: Sendable, Equatable {
    public var address: String
    public var port: UInt32
    public var healthStatus: EnvoyHealthStatus
    /// nil leaves the weight unset (means 1). A set weight is always written, even 0, which
    /// gRPC NACKs: the XDS layer decides, this encoder does not hide mistakes.
    public var weight: UInt32?

    public init(address: String, port: UInt32, healthStatus: EnvoyHealthStatus = .healthy, weight: UInt32? = nil) {
        self.address = address
        self.port = port
        self.healthStatus = healthStatus
        self.weight = weight
    }

    public init(address: String, port: UInt32, healthy: Bool, weight: UInt32? = nil) {
        self.init(address: address, port: port, healthStatus: healthy ? .healthy : .unhealthy, weight: weight)
    }

    var socketAddress: EnvoySocketAddress { EnvoySocketAddress(address: address, port: port) }

    /// Sizes of the nested chain Endpoint > Address > SocketAddress, computed once.
    var nestedSizes: (endpoint: Int, address: Int, socketAddress: Int) {
        let s = socketAddress.protoSize
        let a = ProtoSize.message(1, s)
        return (ProtoSize.message(1, a), a, s)
    }

    var protoSize: Int {
        var n = ProtoSize.message(1, nestedSizes.endpoint) + ProtoSize.uint32(2, healthStatus.rawValue)
        if let weight { n += ProtoSize.uint32Wrapper(4, weight) }
        return n
    }

    func write(to w: inout ProtoWriter) {
        let sizes = nestedSizes
        w.writeMessage(field: 1, size: sizes.endpoint) { e in
            e.writeMessage(field: 1, size: sizes.address) { a in
                a.writeMessage(field: 1, size: sizes.socketAddress) { socketAddress.write(to: &$0) }
            }
        }
        w.writeUInt32(field: 2, healthStatus.rawValue)
        if let weight { w.writeUInt32Wrapper(field: 4, weight) }
    }
}
