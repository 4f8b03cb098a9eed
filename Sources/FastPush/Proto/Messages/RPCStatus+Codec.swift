// google.rpc.Status{code=1 int32, message=2, details=3 repeated Any}: a NACK's error_detail.

extension RPCStatus: ProtoDecodable, ProtoEncodable {
    public init(reading r: inout ProtoReader) throws(ProtoDecodingError) {
        self.init()
        while let (field, _) = try r.next() {
            switch field {
            case 1: code = try r.int32Field()
            case 2: message = try r.stringField()
            case 3: details.append(try r.messageField(ProtoAny.self))
            default: try r.skipField()
            }
        }
    }

    public var protoSize: Int {
        var n = ProtoSize.int32(1, code) + ProtoSize.string(2, message)
        for d in details { n += ProtoSize.message(3, d) }
        return n
    }

    public func write(to w: inout ProtoWriter) {
        w.writeInt32(field: 1, code)
        w.writeString(field: 2, message)
        for d in details { w.writeMessage(field: 3, d) }
    }
}
