// envoy.config.core.v3.Locality{region=1, zone=2, sub_zone=3}

extension NodeLocality: ProtoDecodable, ProtoEncodable {
    public init(reading r: inout ProtoReader) throws(ProtoDecodingError) {
        self.init()
        while let (field, _) = try r.next() {
            switch field {
            case 1: region = try r.stringField()
            case 2: zone = try r.stringField()
            case 3: subZone = try r.stringField()
            default: try r.skipField()
            }
        }
    }

    public var protoSize: Int {
        ProtoSize.string(1, region) + ProtoSize.string(2, zone) + ProtoSize.string(3, subZone)
    }

    public func write(to w: inout ProtoWriter) {
        w.writeString(field: 1, region)
        w.writeString(field: 2, zone)
        w.writeString(field: 3, subZone)
    }
}
