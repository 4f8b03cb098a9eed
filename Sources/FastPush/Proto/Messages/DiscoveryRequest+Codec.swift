// envoy.service.discovery.v3.DiscoveryRequest. Decoded on every client request, so the decoder
// is a single pass with no intermediate copies; unknown fields (resource_locators=7, ...) are skipped.

extension DiscoveryRequest: ProtoDecodable, ProtoEncodable {
    public init(reading r: inout ProtoReader) throws(ProtoDecodingError) {
        try self.init(reading: &r, deferringNames: false)
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

extension DiscoveryRequest {
    /// Decodes everything but `resource_names`, which stay as wire bytes with a digest: an ACK
    /// repeats its subscription, and comparing digests spares decoding (and allocating) every
    /// name of every ACK. `decodeDeferredNames()` decodes them when they did change.
    ///
    /// `leavingNamesInPlace`: when the names are one run of bytes (as every client sends them),
    /// they are digested where they are and not copied (`namesRange`); the caller keeps the
    /// buffer while it uses the request. An ACK then costs one pass over its bytes.
    public init(decodingDeferringNames buffer: UnsafeRawBufferPointer, leavingNamesInPlace: Bool = false) throws(ProtoDecodingError) {
        var r = ProtoReader(buffer)
        try self.init(reading: &r, deferringNames: true, inPlace: leavingNamesInPlace ? buffer : nil)
    }

    /// The one decoder; only field 3 differs between the ways in.
    private init(reading r: inout ProtoReader, deferringNames: Bool, inPlace buffer: UnsafeRawBufferPointer? = nil) throws(ProtoDecodingError) {
        self.init()
        var wire: [UInt8] = []
        // The names' run in `buffer`, while they are contiguous (nil once they are copied).
        var run: Range<Int>? = buffer != nil ? 0..<0 : nil
        var keyStart = r.offset
        while let (field, wt) = try r.next() {
            switch field {
            case 1: versionInfo = try r.stringField()
            case 2: node = try r.messageField(Node.self)
            case 3 where deferringNames:
                guard wt == .lengthDelimited else { throw .wrongWireType(field: 3, expected: .lengthDelimited, actual: wt) }
                let bytes = try r.readLengthDelimited()
                if let current = run, let buffer {
                    if current.isEmpty || current.upperBound == keyStart {
                        run = (current.isEmpty ? keyStart : current.lowerBound)..<r.offset
                        break
                    }
                    // Names split by another field: copied from here on.
                    DeferredField.appendEntries(UnsafeRawBufferPointer(rebasing: buffer[current]), to: &wire)
                    run = nil
                }
                // Kept as field 3 entries, so the normal reader decodes them.
                DeferredField.append(tag: 0x1A, bytes, to: &wire)
            case 3: resourceNames.append(try r.stringField())
            case 4: typeURL = try r.stringField()
            case 5: responseNonce = try r.stringField()
            case 6: errorDetail = try r.messageField(RPCStatus.self)
            default: try r.skipField()
            }
            keyStart = r.offset
        }
        if deferringNames {
            if let run, let buffer, !run.isEmpty {
                namesRange = run
                resourceNamesDigest = DeferredField.digest(UnsafeRawBufferPointer(rebasing: buffer[run]))
            } else {
                resourceNamesWire = wire
                resourceNamesDigest = DeferredField.digest(wire)
            }
            namesDeferred = true
        }
    }

    /// Copies names left in place out of `buffer` (the one this request was decoded from).
    public mutating func materializeNames(from buffer: UnsafeRawBufferPointer) {
        guard let range = namesRange else { return }
        resourceNamesWire = Array(UnsafeRawBufferPointer(rebasing: buffer[range]))
        namesRange = nil
    }

    public mutating func decodeDeferredNames() throws(ProtoDecodingError) {
        guard namesDeferred else { return }
        var names: [String] = []
        var failure: ProtoDecodingError?
        resourceNamesWire.withUnsafeBytes { buf in
            var r = ProtoReader(buf)
            do throws(ProtoDecodingError) {
                while try r.next() != nil { names.append(try r.stringField()) }
            } catch {
                failure = error
            }
        }
        if let failure { throw failure }
        resourceNames = names
        namesDeferred = false
    }
}
