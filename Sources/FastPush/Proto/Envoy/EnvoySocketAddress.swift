/// envoy.config.core.v3.SocketAddress, inside an Address: what endpoints and listeners both
/// nest. `port_value` is a oneof member, so it is written even when 0.
struct EnvoySocketAddress {
    let address: String
    let port: UInt32

    var protoSize: Int { ProtoSize.string(2, address) + ProtoSize.tag(3) + ProtoSize.varint(UInt64(port)) }

    func write(to w: inout ProtoWriter) {
        w.writeString(field: 2, address)
        w.writeTag(field: 3, wireType: .varint)
        w.writeVarint(UInt64(port))
    }
}
