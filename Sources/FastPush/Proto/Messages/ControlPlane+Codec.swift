// envoy.config.core.v3.ControlPlane{identifier=1}

extension ControlPlane: ProtoDecodable, ProtoEncodable {
    public init(reading r: inout ProtoReader) throws(ProtoDecodingError) {
        self.init()
        while let (field, _) = try r.next() {
            if field == 1 { identifier = try r.stringField() } else { try r.skipField() }
        }
    }

    public var protoSize: Int { ProtoSize.string(1, identifier) }

    public func write(to w: inout ProtoWriter) { w.writeString(field: 1, identifier) }
}
