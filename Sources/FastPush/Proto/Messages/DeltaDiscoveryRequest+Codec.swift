// envoy.service.discovery.v3.DeltaDiscoveryRequest. Envoy copies the node into every request of a
// delta stream, but only the first one's counts: the server decodes it only when asked, so an
// ACK (type_url, nonce and a node) costs the same however large the node's metadata is.

extension DeltaDiscoveryRequest: ProtoDecodable, ProtoEncodable {
    public init(reading r: inout ProtoReader) throws(ProtoDecodingError) {
        try self.init(reading: &r, decodingNode: true)
    }

    /// `decodingNode: false` skips field 1 (checking only that it is well framed).
    public init(decoding buffer: UnsafeRawBufferPointer, decodingNode: Bool) throws(ProtoDecodingError) {
        var r = ProtoReader(buffer)
        try self.init(reading: &r, decodingNode: decodingNode)
    }

    private init(reading r: inout ProtoReader, decodingNode: Bool) throws(ProtoDecodingError) {
        self.init()
        while let (field, wt) = try r.next() {
            switch field {
            case 1 where decodingNode: node = try r.messageField(Node.self)
            case 1:
                guard wt == .lengthDelimited else { throw .wrongWireType(field: 1, expected: .lengthDelimited, actual: wt) }
                _ = try r.readLengthDelimited()
                nodeSkipped = true
            case 2: typeURL = try r.stringField()
            case 3: resourceNamesSubscribe.append(try r.stringField())
            case 4: resourceNamesUnsubscribe.append(try r.stringField())
            case 5:
                var entry = try r.messageField()
                var name = "", version = ""
                while let (f, _) = try entry.next() {
                    switch f {
                    case 1: name = try entry.stringField()
                    case 2: version = try entry.stringField()
                    default: try entry.skipField()
                    }
                }
                initialResourceVersions.append((name, version))
            case 6: responseNonce = try r.stringField()
            case 7: errorDetail = try r.messageField(RPCStatus.self)
            default: try r.skipField()
            }
        }
    }

    private static func entrySize(_ e: (name: String, version: String)) -> Int {
        ProtoSize.string(1, e.name) + ProtoSize.string(2, e.version)
    }

    public var protoSize: Int {
        var n = 0
        if let node { n += ProtoSize.message(1, node) }
        n += ProtoSize.string(2, typeURL)
        n += ProtoSize.repeatedString(3, resourceNamesSubscribe)
        n += ProtoSize.repeatedString(4, resourceNamesUnsubscribe)
        for e in initialResourceVersions { n += ProtoSize.message(5, Self.entrySize(e)) }
        n += ProtoSize.string(6, responseNonce)
        if let errorDetail { n += ProtoSize.message(7, errorDetail) }
        return n
    }

    public func write(to w: inout ProtoWriter) {
        if let node { w.writeMessage(field: 1, node) }
        w.writeString(field: 2, typeURL)
        for s in resourceNamesSubscribe { w.writeString(field: 3, s, alwaysEmit: true) }
        for s in resourceNamesUnsubscribe { w.writeString(field: 4, s, alwaysEmit: true) }
        for e in initialResourceVersions {
            w.writeMessage(field: 5, size: Self.entrySize(e)) { m in
                m.writeString(field: 1, e.name)
                m.writeString(field: 2, e.version)
            }
        }
        w.writeString(field: 6, responseNonce)
        if let errorDetail { w.writeMessage(field: 7, errorDetail) }
    }
}
