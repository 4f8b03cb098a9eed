// envoy.service.discovery.v3.DiscoveryRequest. Decoded on every client request, so the decoder
// is a single pass with no intermediate copies; unknown fields (resource_locators=7, ...) are skipped.

extension DiscoveryRequest: ProtoDecodable, ProtoEncodable {
    public init(reading r: inout ProtoReader) throws(ProtoDecodingError) {
        self.init()
        while let (field, _) = try r.next() {
            switch field {
            case 1: versionInfo = try r.stringField()
            case 2: node = try r.messageField(Node.self)
            case 3: resourceNames.append(try r.stringField())
            case 4: typeURL = try r.stringField()
            case 5: responseNonce = try r.stringField()
            case 6: errorDetail = try r.messageField(RPCStatus.self)
            default: try r.skipField()
            }
        }
    }

    public var protoSize: Int {
        var n = ProtoSize.string(1, versionInfo)
        if let node { n += ProtoSize.message(2, node) }
        n += ProtoSize.repeatedString(3, resourceNames)
        n += ProtoSize.string(4, typeURL)
        n += ProtoSize.string(5, responseNonce)
        if let errorDetail { n += ProtoSize.message(6, errorDetail) }
        return n
    }

    public func write(to w: inout ProtoWriter) {
        w.writeString(field: 1, versionInfo)
        if let node { w.writeMessage(field: 2, node) }
        for name in resourceNames { w.writeString(field: 3, name, alwaysEmit: true) }
        w.writeString(field: 4, typeURL)
        w.writeString(field: 5, responseNonce)
        if let errorDetail { w.writeMessage(field: 6, errorDetail) }
    }
}
