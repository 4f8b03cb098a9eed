// google.protobuf.Struct: map<string, Value> fields = 1, i.e. repeated entries {key=1, value=2}.
// Node metadata arrives as a Struct, and Struct -> Value -> Struct recursion is how a hostile
// client would try to exhaust the stack; every level goes through `messageField`, which
// enforces the reader's depth limit.

extension ProtoStruct: ProtoDecodable, ProtoEncodable {
    public init(reading r: inout ProtoReader) throws(ProtoDecodingError) {
        self.init()
        while let (field, _) = try r.next() {
            guard field == 1 else { try r.skipField(); continue }
            var entry = try r.messageField()
            var key = ""
            var value = ProtoValue.null  // an entry without a value holds the default Value
            while let (f, _) = try entry.next() {
                switch f {
                case 1: key = try entry.stringField()
                case 2: value = try entry.messageField(ProtoValue.self)
                default: try entry.skipField()
                }
            }
            fields[key] = value  // a repeated key keeps the last value, as protobuf maps do
        }
    }

    /// Keys sorted by their UTF-8 bytes, so the encoding is deterministic and matches
    /// protobuf's deterministic serialization.
    var sortedKeys: [String] {
        fields.keys.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
    }

    static func entrySize(key: String, value: ProtoValue) -> Int {
        // Map entries always carry both key and value.
        ProtoSize.string(1, key, alwaysEmit: true) + ProtoSize.message(2, value)
    }

    public var protoSize: Int {
        var n = 0
        for (k, v) in fields { n += ProtoSize.message(1, Self.entrySize(key: k, value: v)) }
        return n
    }

    public func write(to w: inout ProtoWriter) {
        for k in sortedKeys {
            let v = fields[k]!
            w.writeMessage(field: 1, size: Self.entrySize(key: k, value: v)) { e in
                e.writeString(field: 1, k, alwaysEmit: true)
                e.writeMessage(field: 2, v)
            }
        }
    }
}
