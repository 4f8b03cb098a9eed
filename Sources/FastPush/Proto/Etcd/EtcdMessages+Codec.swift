// Wire codecs of the etcd messages in EtcdMessages.swift. Requests are encoded (and decoded, for
// tests); responses are decoded (and encoded, for tests and fakes). Unknown fields are skipped.

extension EtcdResponseHeader: ProtoDecodable, ProtoEncodable {
    public init(reading r: inout ProtoReader) throws(ProtoDecodingError) {
        self.init()
        while let (f, _) = try r.next() {
            switch f {
            case 1: clusterID = try r.uint64Field()
            case 2: memberID = try r.uint64Field()
            case 3: revision = try r.int64Field()
            case 4: raftTerm = try r.uint64Field()
            default: try r.skipField()
            }
        }
    }
    public var protoSize: Int {
        ProtoSize.uint64(1, clusterID) + ProtoSize.uint64(2, memberID) + ProtoSize.int64(3, revision) + ProtoSize.uint64(4, raftTerm)
    }
    public func write(to w: inout ProtoWriter) {
        w.writeUInt64(field: 1, clusterID)
        w.writeUInt64(field: 2, memberID)
        w.writeInt64(field: 3, revision)
        w.writeUInt64(field: 4, raftTerm)
    }
}

extension EtcdKeyValue: ProtoDecodable, ProtoEncodable {
    public init(reading r: inout ProtoReader) throws(ProtoDecodingError) {
        self.init()
        while let (f, _) = try r.next() {
            switch f {
            case 1: key = try r.bytesField()
            case 2: createRevision = try r.int64Field()
            case 3: modRevision = try r.int64Field()
            case 4: version = try r.int64Field()
            case 5: value = try r.bytesField()
            case 6: lease = try r.int64Field()
            default: try r.skipField()
            }
        }
    }
    public var protoSize: Int {
        ProtoSize.bytes(1, count: key.count) + ProtoSize.int64(2, createRevision) + ProtoSize.int64(3, modRevision)
            + ProtoSize.int64(4, version) + ProtoSize.bytes(5, count: value.count) + ProtoSize.int64(6, lease)
    }
    public func write(to w: inout ProtoWriter) {
        w.writeBytes(field: 1, key)
        w.writeInt64(field: 2, createRevision)
        w.writeInt64(field: 3, modRevision)
        w.writeInt64(field: 4, version)
        w.writeBytes(field: 5, value)
        w.writeInt64(field: 6, lease)
    }
}

extension EtcdEvent: ProtoDecodable, ProtoEncodable {
    public init(reading r: inout ProtoReader) throws(ProtoDecodingError) {
        self.init()
        while let (f, _) = try r.next() {
            switch f {
            case 1: type = Kind(rawValue: try r.int32Field()) ?? .put
            case 2: kv = try r.messageField(EtcdKeyValue.self)
            case 3: prevKV = try r.messageField(EtcdKeyValue.self)
            default: try r.skipField()
            }
        }
    }
    public var protoSize: Int {
        ProtoSize.int32(1, type.rawValue) + ProtoSize.message(2, kv) + (prevKV.map { ProtoSize.message(3, $0) } ?? 0)
    }
    public func write(to w: inout ProtoWriter) {
        w.writeEnum(field: 1, type.rawValue)
        w.writeMessage(field: 2, kv)
        if let prevKV { w.writeMessage(field: 3, prevKV) }
    }
}

extension EtcdRangeRequest: ProtoDecodable, ProtoEncodable {
    public init(reading r: inout ProtoReader) throws(ProtoDecodingError) {
        self.init()
        while let (f, _) = try r.next() {
            switch f {
            case 1: key = try r.bytesField()
            case 2: rangeEnd = try r.bytesField()
            case 3: limit = try r.int64Field()
            case 4: revision = try r.int64Field()
            case 7: serializable = try r.boolField()
            case 8: keysOnly = try r.boolField()
            default: try r.skipField()
            }
        }
    }
    public var protoSize: Int {
        ProtoSize.bytes(1, count: key.count) + ProtoSize.bytes(2, count: rangeEnd.count) + ProtoSize.int64(3, limit)
            + ProtoSize.int64(4, revision) + ProtoSize.bool(7, serializable) + ProtoSize.bool(8, keysOnly)
    }
    public func write(to w: inout ProtoWriter) {
        w.writeBytes(field: 1, key)
        w.writeBytes(field: 2, rangeEnd)
        w.writeInt64(field: 3, limit)
        w.writeInt64(field: 4, revision)
        w.writeBool(field: 7, serializable)
        w.writeBool(field: 8, keysOnly)
    }
}

extension EtcdRangeResponse: ProtoDecodable, ProtoEncodable {
    public init(reading r: inout ProtoReader) throws(ProtoDecodingError) {
        self.init()
        while let (f, _) = try r.next() {
            switch f {
            case 1: header = try r.messageField(EtcdResponseHeader.self)
            case 2: kvs.append(try r.messageField(EtcdKeyValue.self))
            case 3: more = try r.boolField()
            case 4: count = try r.int64Field()
            default: try r.skipField()
            }
        }
    }
    public var protoSize: Int {
        ProtoSize.message(1, header) + kvs.reduce(0) { $0 + ProtoSize.message(2, $1) } + ProtoSize.bool(3, more) + ProtoSize.int64(4, count)
    }
    public func write(to w: inout ProtoWriter) {
        w.writeMessage(field: 1, header)
        for kv in kvs { w.writeMessage(field: 2, kv) }
        w.writeBool(field: 3, more)
        w.writeInt64(field: 4, count)
    }
}

extension EtcdPutRequest: ProtoDecodable, ProtoEncodable {
    public init(reading r: inout ProtoReader) throws(ProtoDecodingError) {
        self.init()
        while let (f, _) = try r.next() {
            switch f {
            case 1: key = try r.bytesField()
            case 2: value = try r.bytesField()
            case 3: lease = try r.int64Field()
            case 4: prevKV = try r.boolField()
            default: try r.skipField()
            }
        }
    }
    public var protoSize: Int {
        ProtoSize.bytes(1, count: key.count) + ProtoSize.bytes(2, count: value.count) + ProtoSize.int64(3, lease) + ProtoSize.bool(4, prevKV)
    }
    public func write(to w: inout ProtoWriter) {
        w.writeBytes(field: 1, key)
        w.writeBytes(field: 2, value)
        w.writeInt64(field: 3, lease)
        w.writeBool(field: 4, prevKV)
    }
}

extension EtcdPutResponse: ProtoDecodable, ProtoEncodable {
    public init(reading r: inout ProtoReader) throws(ProtoDecodingError) {
        self.init()
        while let (f, _) = try r.next() {
            switch f {
            case 1: header = try r.messageField(EtcdResponseHeader.self)
            case 2: prevKV = try r.messageField(EtcdKeyValue.self)
            default: try r.skipField()
            }
        }
    }
    public var protoSize: Int { ProtoSize.message(1, header) + (prevKV.map { ProtoSize.message(2, $0) } ?? 0) }
    public func write(to w: inout ProtoWriter) {
        w.writeMessage(field: 1, header)
        if let prevKV { w.writeMessage(field: 2, prevKV) }
    }
}

extension EtcdDeleteRangeRequest: ProtoDecodable, ProtoEncodable {
    public init(reading r: inout ProtoReader) throws(ProtoDecodingError) {
        self.init()
        while let (f, _) = try r.next() {
            switch f {
            case 1: key = try r.bytesField()
            case 2: rangeEnd = try r.bytesField()
            case 3: prevKV = try r.boolField()
            default: try r.skipField()
            }
        }
    }
    public var protoSize: Int { ProtoSize.bytes(1, count: key.count) + ProtoSize.bytes(2, count: rangeEnd.count) + ProtoSize.bool(3, prevKV) }
    public func write(to w: inout ProtoWriter) {
        w.writeBytes(field: 1, key)
        w.writeBytes(field: 2, rangeEnd)
        w.writeBool(field: 3, prevKV)
    }
}

extension EtcdDeleteRangeResponse: ProtoDecodable, ProtoEncodable {
    public init(reading r: inout ProtoReader) throws(ProtoDecodingError) {
        self.init()
        while let (f, _) = try r.next() {
            switch f {
            case 1: header = try r.messageField(EtcdResponseHeader.self)
            case 2: deleted = try r.int64Field()
            case 3: prevKVs.append(try r.messageField(EtcdKeyValue.self))
            default: try r.skipField()
            }
        }
    }
    public var protoSize: Int {
        ProtoSize.message(1, header) + ProtoSize.int64(2, deleted) + prevKVs.reduce(0) { $0 + ProtoSize.message(3, $1) }
    }
    public func write(to w: inout ProtoWriter) {
        w.writeMessage(field: 1, header)
        w.writeInt64(field: 2, deleted)
        for kv in prevKVs { w.writeMessage(field: 3, kv) }
    }
}

extension EtcdCompare: ProtoDecodable, ProtoEncodable {
    /// CompareTarget: VERSION 0, CREATE 1, MOD 2, VALUE 3.
    var targetKind: Int32 {
        switch target {
        case .version: 0
        case .createRevision: 1
        case .modRevision: 2
        case .value: 3
        }
    }

    public init(reading r: inout ProtoReader) throws(ProtoDecodingError) {
        self.init(key: [], .equal, .version(0))
        var kind: Int32 = 0
        var number: Int64 = 0
        var bytes: [UInt8] = []
        while let (f, _) = try r.next() {
            switch f {
            case 1: result = Result(rawValue: try r.int32Field()) ?? .equal
            case 2: kind = try r.int32Field()
            case 3: key = try r.bytesField()
            case 4, 5, 6: number = try r.int64Field()
            case 7: bytes = try r.bytesField()
            default: try r.skipField()
            }
        }
        switch kind {
        case 1: target = .createRevision(number)
        case 2: target = .modRevision(number)
        case 3: target = .value(bytes)
        default: target = .version(number)
        }
    }

    // The oneof member is present even when 0: "mod_revision == 0" (the key does not exist)
    // is a comparison etcd must see.
    private var unionSize: Int {
        switch target {
        case let .version(v), let .createRevision(v), let .modRevision(v): ProtoSize.tag(4) + ProtoSize.varint(UInt64(bitPattern: v))
        case let .value(b): ProtoSize.lengthDelimited(7, b.count)
        }
    }

    public var protoSize: Int { ProtoSize.int32(1, result.rawValue) + ProtoSize.int32(2, targetKind) + ProtoSize.bytes(3, count: key.count) + unionSize }

    public func write(to w: inout ProtoWriter) {
        w.writeEnum(field: 1, result.rawValue)
        w.writeEnum(field: 2, targetKind)
        w.writeBytes(field: 3, key)
        switch target {
        case let .version(v): w.writeTag(field: 4, wireType: .varint); w.writeVarint(UInt64(bitPattern: v))
        case let .createRevision(v): w.writeTag(field: 5, wireType: .varint); w.writeVarint(UInt64(bitPattern: v))
        case let .modRevision(v): w.writeTag(field: 6, wireType: .varint); w.writeVarint(UInt64(bitPattern: v))
        case let .value(b): w.writeBytes(field: 7, b, alwaysEmit: true)
        }
    }
}

extension EtcdRequestOp: ProtoDecodable, ProtoEncodable {
    public init(reading r: inout ProtoReader) throws(ProtoDecodingError) {
        var op: EtcdRequestOp?
        while let (f, _) = try r.next() {
            switch f {
            case 1: op = .range(try r.messageField(EtcdRangeRequest.self))
            case 2: op = .put(try r.messageField(EtcdPutRequest.self))
            case 3: op = .deleteRange(try r.messageField(EtcdDeleteRangeRequest.self))
            default: try r.skipField()
            }
        }
        self = op ?? .range(EtcdRangeRequest())
    }
    public var protoSize: Int {
        switch self {
        case let .range(m): ProtoSize.message(1, m)
        case let .put(m): ProtoSize.message(2, m)
        case let .deleteRange(m): ProtoSize.message(3, m)
        }
    }
    public func write(to w: inout ProtoWriter) {
        switch self {
        case let .range(m): w.writeMessage(field: 1, m)
        case let .put(m): w.writeMessage(field: 2, m)
        case let .deleteRange(m): w.writeMessage(field: 3, m)
        }
    }
}

extension EtcdResponseOp: ProtoDecodable, ProtoEncodable {
    public init(reading r: inout ProtoReader) throws(ProtoDecodingError) {
        var op = EtcdResponseOp.other
        while let (f, _) = try r.next() {
            switch f {
            case 1: op = .range(try r.messageField(EtcdRangeResponse.self))
            case 2: op = .put(try r.messageField(EtcdPutResponse.self))
            case 3: op = .deleteRange(try r.messageField(EtcdDeleteRangeResponse.self))
            default: try r.skipField()
            }
        }
        self = op
    }
    public var protoSize: Int {
        switch self {
        case let .range(m): ProtoSize.message(1, m)
        case let .put(m): ProtoSize.message(2, m)
        case let .deleteRange(m): ProtoSize.message(3, m)
        case .other: 0
        }
    }
    public func write(to w: inout ProtoWriter) {
        switch self {
        case let .range(m): w.writeMessage(field: 1, m)
        case let .put(m): w.writeMessage(field: 2, m)
        case let .deleteRange(m): w.writeMessage(field: 3, m)
        case .other: break
        }
    }
}

extension EtcdTxnRequest: ProtoDecodable, ProtoEncodable {
    public init(reading r: inout ProtoReader) throws(ProtoDecodingError) {
        self.init()
        while let (f, _) = try r.next() {
            switch f {
            case 1: compare.append(try r.messageField(EtcdCompare.self))
            case 2: success.append(try r.messageField(EtcdRequestOp.self))
            case 3: failure.append(try r.messageField(EtcdRequestOp.self))
            default: try r.skipField()
            }
        }
    }
    public var protoSize: Int {
        compare.reduce(0) { $0 + ProtoSize.message(1, $1) } + success.reduce(0) { $0 + ProtoSize.message(2, $1) }
            + failure.reduce(0) { $0 + ProtoSize.message(3, $1) }
    }
    public func write(to w: inout ProtoWriter) {
        for c in compare { w.writeMessage(field: 1, c) }
        for op in success { w.writeMessage(field: 2, op) }
        for op in failure { w.writeMessage(field: 3, op) }
    }
}

extension EtcdTxnResponse: ProtoDecodable, ProtoEncodable {
    public init(reading r: inout ProtoReader) throws(ProtoDecodingError) {
        self.init()
        while let (f, _) = try r.next() {
            switch f {
            case 1: header = try r.messageField(EtcdResponseHeader.self)
            case 2: succeeded = try r.boolField()
            case 3: responses.append(try r.messageField(EtcdResponseOp.self))
            default: try r.skipField()
            }
        }
    }
    public var protoSize: Int {
        ProtoSize.message(1, header) + ProtoSize.bool(2, succeeded) + responses.reduce(0) { $0 + ProtoSize.message(3, $1) }
    }
    public func write(to w: inout ProtoWriter) {
        w.writeMessage(field: 1, header)
        w.writeBool(field: 2, succeeded)
        for op in responses { w.writeMessage(field: 3, op) }
    }
}

extension EtcdWatchCreateRequest: ProtoDecodable, ProtoEncodable {
    public init(reading r: inout ProtoReader) throws(ProtoDecodingError) {
        self.init()
        while let (f, _) = try r.next() {
            switch f {
            case 1: key = try r.bytesField()
            case 2: rangeEnd = try r.bytesField()
            case 3: startRevision = try r.int64Field()
            case 4: progressNotify = try r.boolField()
            case 6: prevKV = try r.boolField()
            case 7: watchID = try r.int64Field()
            default: try r.skipField()
            }
        }
    }
    public var protoSize: Int {
        ProtoSize.bytes(1, count: key.count) + ProtoSize.bytes(2, count: rangeEnd.count) + ProtoSize.int64(3, startRevision)
            + ProtoSize.bool(4, progressNotify) + ProtoSize.bool(6, prevKV) + ProtoSize.int64(7, watchID)
    }
    public func write(to w: inout ProtoWriter) {
        w.writeBytes(field: 1, key)
        w.writeBytes(field: 2, rangeEnd)
        w.writeInt64(field: 3, startRevision)
        w.writeBool(field: 4, progressNotify)
        w.writeBool(field: 6, prevKV)
        w.writeInt64(field: 7, watchID)
    }
}

extension EtcdWatchRequest: ProtoDecodable, ProtoEncodable {
    public init(reading r: inout ProtoReader) throws(ProtoDecodingError) {
        var req = EtcdWatchRequest.progress
        while let (f, _) = try r.next() {
            switch f {
            case 1: req = .create(try r.messageField(EtcdWatchCreateRequest.self))
            case 2:
                var c = try r.messageField()
                var id: Int64 = 0
                while let (cf, _) = try c.next() { if cf == 1 { id = try c.int64Field() } else { try c.skipField() } }
                req = .cancel(watchID: id)
            case 3: _ = try r.messageField(); req = .progress
            default: try r.skipField()
            }
        }
        self = req
    }
    public var protoSize: Int {
        switch self {
        case let .create(m): ProtoSize.message(1, m)
        case let .cancel(id): ProtoSize.message(2, ProtoSize.int64(1, id))
        case .progress: ProtoSize.message(3, 0)
        }
    }
    public func write(to w: inout ProtoWriter) {
        switch self {
        case let .create(m): w.writeMessage(field: 1, m)
        case let .cancel(id): w.writeMessage(field: 2, size: ProtoSize.int64(1, id)) { $0.writeInt64(field: 1, id) }
        case .progress: w.writeEmptyMessage(field: 3)
        }
    }
}

extension EtcdWatchResponse: ProtoDecodable, ProtoEncodable {
    public init(reading r: inout ProtoReader) throws(ProtoDecodingError) {
        self.init()
        while let (f, _) = try r.next() {
            switch f {
            case 1: header = try r.messageField(EtcdResponseHeader.self)
            case 2: watchID = try r.int64Field()
            case 3: created = try r.boolField()
            case 4: canceled = try r.boolField()
            case 5: compactRevision = try r.int64Field()
            case 6: cancelReason = try r.stringField()
            case 7: fragment = try r.boolField()
            case 11: events.append(try r.messageField(EtcdEvent.self))
            default: try r.skipField()
            }
        }
    }
    public var protoSize: Int {
        ProtoSize.message(1, header) + ProtoSize.int64(2, watchID) + ProtoSize.bool(3, created) + ProtoSize.bool(4, canceled)
            + ProtoSize.int64(5, compactRevision) + ProtoSize.string(6, cancelReason) + ProtoSize.bool(7, fragment)
            + events.reduce(0) { $0 + ProtoSize.message(11, $1) }
    }
    public func write(to w: inout ProtoWriter) {
        w.writeMessage(field: 1, header)
        w.writeInt64(field: 2, watchID)
        w.writeBool(field: 3, created)
        w.writeBool(field: 4, canceled)
        w.writeInt64(field: 5, compactRevision)
        w.writeString(field: 6, cancelReason)
        w.writeBool(field: 7, fragment)
        for e in events { w.writeMessage(field: 11, e) }
    }
}
