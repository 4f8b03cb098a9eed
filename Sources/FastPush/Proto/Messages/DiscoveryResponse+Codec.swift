// envoy.service.discovery.v3.DiscoveryResponse, encoded whole (tests, load generator) and decoded.
// The server's push path does not use `encode()`: it writes DiscoveryResponseBody once and a
// DiscoveryResponseTail per stream.

extension DiscoveryResponse: ProtoDecodable, ProtoEncodable {
    public init(reading r: inout ProtoReader) throws(ProtoDecodingError) {
        self.init()
        while let (field, _) = try r.next() {
            switch field {
            case 1: versionInfo = try r.stringField()
            case 2: resources.append(try r.messageField(ProtoAny.self))
            case 4: typeURL = try r.stringField()
            case 5: nonce = try r.stringField()
            case 6: controlPlane = try r.messageField(ControlPlane.self)
            default: try r.skipField()  // canary=3, resource_errors=7
            }
        }
    }

    public var protoSize: Int {
        var n = ProtoSize.string(1, versionInfo)
        for a in resources { n += ProtoSize.message(2, a) }
        n += ProtoSize.string(4, typeURL)
        n += ProtoSize.string(5, nonce)
        if let controlPlane { n += ProtoSize.message(6, controlPlane) }
        return n
    }

    public func write(to w: inout ProtoWriter) {
        w.writeString(field: 1, versionInfo)
        for a in resources { w.writeMessage(field: 2, a) }
        w.writeString(field: 4, typeURL)
        w.writeString(field: 5, nonce)
        if let controlPlane { w.writeMessage(field: 6, controlPlane) }
    }
}
