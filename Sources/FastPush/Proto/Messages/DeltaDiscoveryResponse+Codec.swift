// envoy.service.discovery.v3.DeltaDiscoveryResponse and Resource, encoded whole (tests, load
// generator) and decoded. The server's push path writes DeltaDiscoveryResponseBody instead.

extension DeltaResource: ProtoDecodable, ProtoEncodable {
    public init(reading r: inout ProtoReader) throws(ProtoDecodingError) {
        self.init()
        while let (field, _) = try r.next() {
            switch field {
            case 1: version = try r.stringField()
            case 2: resource = try r.messageField(ProtoAny.self)
            case 3: name = try r.stringField()
            default: try r.skipField()  // aliases=4, ttl=6, cache_control=7, resource_name=8, metadata=9
            }
        }
    }

    public var protoSize: Int {
        var n = ProtoSize.string(1, version)
        if let resource { n += ProtoSize.message(2, resource) }
        return n + ProtoSize.string(3, name)
    }

    public func write(to w: inout ProtoWriter) {
        w.writeString(field: 1, version)
        if let resource { w.writeMessage(field: 2, resource) }
        w.writeString(field: 3, name)
    }
}

extension DeltaDiscoveryResponse: ProtoDecodable, ProtoEncodable {
    public init(reading r: inout ProtoReader) throws(ProtoDecodingError) {
        self.init()
        while let (field, _) = try r.next() {
            switch field {
            case 1: systemVersionInfo = try r.stringField()
            case 2: resources.append(try r.messageField(DeltaResource.self))
            case 4: typeURL = try r.stringField()
            case 5: nonce = try r.stringField()
            case 6: removedResources.append(try r.stringField())
            default: try r.skipField()  // control_plane=7, removed_resource_names=8, resource_errors=9
            }
        }
    }

    public var protoSize: Int {
        var n = ProtoSize.string(1, systemVersionInfo)
        for res in resources { n += ProtoSize.message(2, res) }
        n += ProtoSize.string(4, typeURL) + ProtoSize.string(5, nonce)
        return n + ProtoSize.repeatedString(6, removedResources)
    }

    public func write(to w: inout ProtoWriter) {
        w.writeString(field: 1, systemVersionInfo)
        for res in resources { w.writeMessage(field: 2, res) }
        w.writeString(field: 4, typeURL)
        w.writeString(field: 5, nonce)
        for n in removedResources { w.writeString(field: 6, n, alwaysEmit: true) }
    }
}
