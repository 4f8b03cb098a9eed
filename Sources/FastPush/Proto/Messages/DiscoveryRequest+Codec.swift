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
    public init(decodingDeferringNames buffer: UnsafeRawBufferPointer) throws(ProtoDecodingError) {
        var r = ProtoReader(buffer)
        try self.init(reading: &r, deferringNames: true)
    }

    /// The one decoder; only field 3 differs between the two ways in.
    private init(reading r: inout ProtoReader, deferringNames: Bool) throws(ProtoDecodingError) {
        self.init()
        var wire: [UInt8] = []
        while let (field, wt) = try r.next() {
            switch field {
            case 1: versionInfo = try r.stringField()
            case 2: node = try r.messageField(Node.self)
            case 3 where deferringNames:
                guard wt == .lengthDelimited else { throw .wrongWireType(field: 3, expected: .lengthDelimited, actual: wt) }
                let bytes = try r.readLengthDelimited()
                wire.append(0x1A)  // kept as field 3 entries, so the normal reader decodes them
                // The length varint straight into the array: through ProtoWriter.storeVarint and a
                // scratch buffer this decoder ran 20% slower (fastpilot-bench proto).
                var v = UInt64(bytes.count)
                while v >= 0x80 { wire.append(UInt8(v & 0x7F) | 0x80); v >>= 7 }
                wire.append(UInt8(v))
                wire.append(contentsOf: bytes)
            case 3: resourceNames.append(try r.stringField())
            case 4: typeURL = try r.stringField()
            case 5: responseNonce = try r.stringField()
            case 6: errorDetail = try r.messageField(RPCStatus.self)
            default: try r.skipField()
            }
        }
        if deferringNames {
            resourceNamesWire = wire
            resourceNamesDigest = Self.digest(wire)
            namesDeferred = true
        }
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

    /// A fast 64-bit digest (word-at-a-time multiply/xor-shift) for change detection only.
    static func digest(_ bytes: [UInt8]) -> UInt64 {
        var h: UInt64 = 0x243F6A8885A308D3 ^ UInt64(bytes.count)
        bytes.withUnsafeBytes { b in
            var i = 0
            while i + 8 <= b.count {
                h = (h ^ b.loadUnaligned(fromByteOffset: i, as: UInt64.self)) &* 0x9E3779B97F4A7C15
                h ^= h >> 29
                i += 8
            }
            var tail: UInt64 = 0
            var shift: UInt64 = 0
            while i < b.count { tail |= UInt64(b[i]) << shift; shift += 8; i += 1 }
            h = (h ^ tail) &* 0x9E3779B97F4A7C15
            h ^= h >> 32
        }
        return h
    }
}
