// envoy.config.core.v3.Node: only the fields fastpilot uses are kept; user_agent_build_version=8,
// extensions=9, listening_addresses=11 and dynamic_parameters=12 are skipped.

extension Node: ProtoDecodable, ProtoEncodable {
    public init(reading r: inout ProtoReader) throws(ProtoDecodingError) {
        self.init()
        while let (field, _) = try r.next() {
            switch field {
            case 1: id = try r.stringField()
            case 2: cluster = try r.stringField()
            case 3: metadata = try r.messageField(ProtoStruct.self)
            case 4: locality = try r.messageField(NodeLocality.self)
            case 6: userAgentName = try r.stringField()
            case 7: userAgentVersion = try r.stringField()
            case 10: clientFeatures.append(try r.stringField())
            default: try r.skipField()
            }
        }
    }

    public var protoSize: Int {
        var n = ProtoSize.string(1, id) + ProtoSize.string(2, cluster)
        if let metadata { n += ProtoSize.message(3, metadata) }
        if let locality { n += ProtoSize.message(4, locality) }
        n += ProtoSize.string(6, userAgentName)
        // A oneof member, but "" and unset are indistinguishable here; "" is not sent.
        n += ProtoSize.string(7, userAgentVersion)
        n += ProtoSize.repeatedString(10, clientFeatures)
        return n
    }

    public func write(to w: inout ProtoWriter) {
        w.writeString(field: 1, id)
        w.writeString(field: 2, cluster)
        if let metadata { w.writeMessage(field: 3, metadata) }
        if let locality { w.writeMessage(field: 4, locality) }
        w.writeString(field: 6, userAgentName)
        w.writeString(field: 7, userAgentVersion)
        for f in clientFeatures { w.writeString(field: 10, f, alwaysEmit: true) }
    }
}
