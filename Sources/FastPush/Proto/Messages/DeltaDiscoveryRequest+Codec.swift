// envoy.service.discovery.v3.DeltaDiscoveryRequest. Envoy copies the node into every request of a
// delta stream, but only the first one's counts: the server decodes it only when asked, so an
// ACK (type_url, nonce and a node) costs the same however large the node's metadata is.

extension DeltaDiscoveryRequest: ProtoDecodable, ProtoEncodable {
    public init(reading r: inout ProtoReader) throws(ProtoDecodingError) {
        try self.init(reading: &r, decodingNode: true)
    }

    /// `decodingNode: false` skips field 1 (checking only that it is well framed).
    /// `deferringNames: true` keeps the subscribe list and the initial versions as wire bytes
    /// (`subscribeWire`, `initialWire`): thousands of Envoys send the same ones, and the server
    /// interns them by their bytes (`subscription()`, `claims()`) instead of decoding each.
    public init(decoding buffer: UnsafeRawBufferPointer, decodingNode: Bool, deferringNames: Bool = false) throws(ProtoDecodingError) {
        var r = ProtoReader(buffer)
        try self.init(reading: &r, decodingNode: decodingNode, deferringNames: deferringNames)
    }

    private init(reading r: inout ProtoReader, decodingNode: Bool, deferringNames: Bool = false) throws(ProtoDecodingError) {
        self.init()
        while let (field, wt) = try r.next() {
            switch field {
            case 1 where decodingNode: node = try r.messageField(Node.self)
            case 1:
                guard wt == .lengthDelimited else { throw .wrongWireType(field: 1, expected: .lengthDelimited, actual: wt) }
                _ = try r.readLengthDelimited()
                nodeSkipped = true
            case 2: typeURL = try r.stringField()
            case 3 where deferringNames, 5 where deferringNames:
                guard wt == .lengthDelimited else { throw .wrongWireType(field: field, expected: .lengthDelimited, actual: wt) }
                let bytes = try r.readLengthDelimited()
                if field == 3 {
                    DeferredField.append(tag: 0x1A, bytes, to: &subscribeWire)
                } else {
                    DeferredField.append(tag: 0x2A, bytes, to: &initialWire)
                }
            case 3: resourceNamesSubscribe.append(try r.stringField())
            case 4: resourceNamesUnsubscribe.append(try r.stringField())
            case 5:
                var entry = try r.messageField()
                initialResourceVersions.append(try Self.entry(&entry))
            case 6: responseNonce = try r.stringField()
            case 7: errorDetail = try r.messageField(RPCStatus.self)
            default: try r.skipField()
            }
        }
        if deferringNames {
            namesDeferred = true
            subscribeDigest = DeferredField.digest(subscribeWire)
            initialDigest = DeferredField.digest(initialWire)
        }
    }

    /// One map entry of initial_resource_versions: key (1), value (2).
    private static func entry(_ r: inout ProtoReader) throws(ProtoDecodingError) -> (name: String, version: String) {
        var name = "", version = ""
        while let (f, _) = try r.next() {
            switch f {
            case 1: name = try r.stringField()
            case 2: version = try r.stringField()
            default: try r.skipField()
            }
        }
        return (name, version)
    }

    /// The deferred lists decoded (as the arrays the plain decoder fills).
    public func decodedNames() throws(ProtoDecodingError) -> (subscribe: [String], initial: [(name: String, version: String)]) {
        guard namesDeferred else { return (resourceNamesSubscribe, initialResourceVersions) }
        var subscribe: [String] = []
        var initial: [(name: String, version: String)] = []
        var failure: ProtoDecodingError?
        subscribeWire.withUnsafeBytes { buf in
            var r = ProtoReader(buf)
            do throws(ProtoDecodingError) { while try r.next() != nil { subscribe.append(try r.stringField()) } } catch { failure = error }
        }
        if let failure { throw failure }
        initialWire.withUnsafeBytes { buf in
            var r = ProtoReader(buf)
            do throws(ProtoDecodingError) {
                while try r.next() != nil {
                    var e = try r.messageField()
                    initial.append(try Self.entry(&e))
                }
            } catch { failure = error }
        }
        if let failure { throw failure }
        return (subscribe, initial)
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
