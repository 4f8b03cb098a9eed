// google.protobuf.Value: oneof kind {null_value=1, number_value=2, string_value=3,
// bool_value=4, struct_value=5, list_value=6 ListValue{values=1}}. Oneof members are written
// even when they hold the default (0, "", false), since the member itself is the information.

extension ProtoValue: ProtoDecodable, ProtoEncodable {
    public init(reading r: inout ProtoReader) throws(ProtoDecodingError) {
        self = .null  // a Value with no kind set
        while let (field, _) = try r.next() {
            switch field {
            case 1: _ = try r.uint64Field(); self = .null
            case 2: self = .number(try r.doubleField())
            case 3: self = .string(try r.stringField())
            case 4: self = .bool(try r.boolField())
            case 5: self = .structValue(try r.messageField(ProtoStruct.self))
            case 6:
                var list = try r.messageField()
                var values: [ProtoValue] = []
                while let (f, _) = try list.next() {
                    if f == 1 { values.append(try list.messageField(ProtoValue.self)) } else { try list.skipField() }
                }
                self = .list(values)
            default: try r.skipField()  // a later oneof member wins; unknown fields are ignored
            }
        }
    }

    static func listPayloadSize(_ values: [ProtoValue]) -> Int {
        var n = 0
        for v in values { n += ProtoSize.message(1, v) }
        return n
    }

    public var protoSize: Int {
        switch self {
        case .null: ProtoSize.tag(1) + 1
        case .number: ProtoSize.tag(2) + 8
        case .string(let s): ProtoSize.string(3, s, alwaysEmit: true)
        case .bool: ProtoSize.tag(4) + 1
        case .structValue(let s): ProtoSize.message(5, s)
        case .list(let values): ProtoSize.message(6, Self.listPayloadSize(values))
        }
    }

    public func write(to w: inout ProtoWriter) {
        switch self {
        case .null:
            w.writeTag(field: 1, wireType: .varint)
            w.writeVarint(0)
        case .number(let d):
            w.writeTag(field: 2, wireType: .fixed64)
            w.writeFixed64(d.bitPattern)
        case .string(let s):
            w.writeString(field: 3, s, alwaysEmit: true)
        case .bool(let b):
            w.writeTag(field: 4, wireType: .varint)
            w.writeVarint(b ? 1 : 0)
        case .structValue(let s):
            w.writeMessage(field: 5, s)
        case .list(let values):
            w.writeMessage(field: 6, size: Self.listPayloadSize(values)) { l in
                for v in values { l.writeMessage(field: 1, v) }
            }
        }
    }
}
