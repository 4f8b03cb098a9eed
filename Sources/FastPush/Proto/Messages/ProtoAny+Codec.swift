// google.protobuf.Any{type_url=1, value=2 bytes}. Besides the value codec, the static helpers
// write an Any around a message that is sized but not yet encoded, so a resource is written
// straight into its Any wrapper (and a typed_config into its parent) without an extra copy.

extension ProtoAny: ProtoDecodable, ProtoEncodable {
    public init(reading r: inout ProtoReader) throws(ProtoDecodingError) {
        self.init(typeURL: "", value: [])
        while let (field, _) = try r.next() {
            switch field {
            case 1: typeURL = try r.stringField()
            case 2: value = try r.bytesField()
            default: try r.skipField()
            }
        }
    }

    public var protoSize: Int { ProtoSize.string(1, typeURL) + ProtoSize.bytes(2, count: value.count) }

    public func write(to w: inout ProtoWriter) {
        w.writeString(field: 1, typeURL)
        w.writeBytes(field: 2, value)
    }

    /// Size of an Any whose value is a message of `valueSize` bytes.
    public static func size(typeURL: String, valueSize: Int) -> Int {
        ProtoSize.string(1, typeURL) + ProtoSize.bytes(2, count: valueSize)
    }

    /// Writes the Any's fields (not an enclosing tag); `body` writes exactly `valueSize` bytes.
    /// An empty value is omitted, as protobuf does for `Pack(Router())`.
    public static func write(typeURL: String, valueSize: Int, to w: inout ProtoWriter,
                             _ body: (inout ProtoWriter) -> Void) {
        w.writeString(field: 1, typeURL)
        if valueSize > 0 { w.writeMessage(field: 2, size: valueSize, body) }
    }
}
