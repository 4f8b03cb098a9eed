// The parts of etcd's v3 API (etcdserverpb, mvccpb) fastpilot's store client uses, as plain
// values. Field numbers are etcd's (api/etcdserverpb/rpc.proto, api/mvccpb/kv.proto); codecs
// are in EtcdMessages+Codec.swift. Keys and values are bytes.

/// etcdserverpb.ResponseHeader
public struct EtcdResponseHeader: Sendable, Equatable {
    public var clusterID: UInt64 = 0      // 1
    public var memberID: UInt64 = 0       // 2
    public var revision: Int64 = 0        // 3
    public var raftTerm: UInt64 = 0       // 4
    public init() {}
}

/// mvccpb.KeyValue
public struct EtcdKeyValue: Sendable, Equatable {
    public var key: [UInt8] = []          // 1
    public var createRevision: Int64 = 0  // 2
    public var modRevision: Int64 = 0     // 3
    public var version: Int64 = 0         // 4
    public var value: [UInt8] = []        // 5
    public var lease: Int64 = 0           // 6
    public init(key: [UInt8] = [], value: [UInt8] = [], createRevision: Int64 = 0, modRevision: Int64 = 0, version: Int64 = 0) {
        self.key = key; self.value = value
        self.createRevision = createRevision; self.modRevision = modRevision; self.version = version
    }
}

/// mvccpb.Event
public struct EtcdEvent: Sendable, Equatable {
    public enum Kind: Int32, Sendable { case put = 0, delete = 1 }
    public var type: Kind = .put          // 1
    public var kv = EtcdKeyValue()        // 2
    public var prevKV: EtcdKeyValue?      // 3
    public init(type: Kind = .put, kv: EtcdKeyValue = EtcdKeyValue()) { self.type = type; self.kv = kv }
}

/// etcdserverpb.RangeRequest (sorting, limits and filters left at their defaults).
public struct EtcdRangeRequest: Sendable, Equatable {
    public var key: [UInt8] = []          // 1
    public var rangeEnd: [UInt8] = []     // 2
    public var limit: Int64 = 0           // 3
    public var revision: Int64 = 0        // 4
    public var serializable = false       // 7
    public var keysOnly = false           // 8
    public init(key: [UInt8] = [], rangeEnd: [UInt8] = [], revision: Int64 = 0) {
        self.key = key; self.rangeEnd = rangeEnd; self.revision = revision
    }
}

/// etcdserverpb.RangeResponse
public struct EtcdRangeResponse: Sendable, Equatable {
    public var header = EtcdResponseHeader()  // 1
    public var kvs: [EtcdKeyValue] = []       // 2
    public var more = false                   // 3
    public var count: Int64 = 0               // 4
    public init() {}
}

/// etcdserverpb.PutRequest
public struct EtcdPutRequest: Sendable, Equatable {
    public var key: [UInt8] = []          // 1
    public var value: [UInt8] = []        // 2
    public var lease: Int64 = 0           // 3
    public var prevKV = false             // 4
    public init(key: [UInt8] = [], value: [UInt8] = []) { self.key = key; self.value = value }
}

/// etcdserverpb.PutResponse
public struct EtcdPutResponse: Sendable, Equatable {
    public var header = EtcdResponseHeader()  // 1
    public var prevKV: EtcdKeyValue?          // 2
    public init() {}
}

/// etcdserverpb.DeleteRangeRequest
public struct EtcdDeleteRangeRequest: Sendable, Equatable {
    public var key: [UInt8] = []          // 1
    public var rangeEnd: [UInt8] = []     // 2
    public var prevKV = false             // 3
    public init(key: [UInt8] = [], rangeEnd: [UInt8] = []) { self.key = key; self.rangeEnd = rangeEnd }
}

/// etcdserverpb.DeleteRangeResponse
public struct EtcdDeleteRangeResponse: Sendable, Equatable {
    public var header = EtcdResponseHeader()  // 1
    public var deleted: Int64 = 0             // 2
    public var prevKVs: [EtcdKeyValue] = []   // 3
    public init() {}
}

/// etcdserverpb.Compare: one guard of a transaction.
public struct EtcdCompare: Sendable, Equatable {
    public enum Result: Int32, Sendable { case equal = 0, greater = 1, less = 2, notEqual = 3 }
    /// The target and its value (the `target_union` oneof).
    public enum Target: Sendable, Equatable {
        case version(Int64)
        case createRevision(Int64)
        case modRevision(Int64)
        case value([UInt8])
    }
    public var result: Result = .equal    // 1
    public var target: Target             // 2 (kind) and 4-7 (value)
    public var key: [UInt8]               // 3
    public init(key: [UInt8], _ result: Result, _ target: Target) { self.key = key; self.result = result; self.target = target }
}

/// etcdserverpb.RequestOp
public enum EtcdRequestOp: Sendable, Equatable {
    case range(EtcdRangeRequest)                  // 1
    case put(EtcdPutRequest)                      // 2
    case deleteRange(EtcdDeleteRangeRequest)      // 3
}

/// etcdserverpb.ResponseOp
public enum EtcdResponseOp: Sendable, Equatable {
    case range(EtcdRangeResponse)                 // 1
    case put(EtcdPutResponse)                     // 2
    case deleteRange(EtcdDeleteRangeResponse)     // 3
    /// A nested transaction's response or an op this client does not read.
    case other
}

/// etcdserverpb.TxnRequest
public struct EtcdTxnRequest: Sendable, Equatable {
    public var compare: [EtcdCompare] = []        // 1
    public var success: [EtcdRequestOp] = []      // 2
    public var failure: [EtcdRequestOp] = []      // 3
    public init(compare: [EtcdCompare] = [], success: [EtcdRequestOp] = [], failure: [EtcdRequestOp] = []) {
        self.compare = compare; self.success = success; self.failure = failure
    }
}

/// etcdserverpb.TxnResponse
public struct EtcdTxnResponse: Sendable, Equatable {
    public var header = EtcdResponseHeader()      // 1
    public var succeeded = false                  // 2
    public var responses: [EtcdResponseOp] = []   // 3
    public init() {}
}

/// etcdserverpb.WatchRequest: create (1) or cancel (2) a watcher, or ask for progress (3).
public enum EtcdWatchRequest: Sendable, Equatable {
    case create(EtcdWatchCreateRequest)
    case cancel(watchID: Int64)
    case progress
}

/// etcdserverpb.WatchCreateRequest
public struct EtcdWatchCreateRequest: Sendable, Equatable {
    public var key: [UInt8] = []          // 1
    public var rangeEnd: [UInt8] = []     // 2
    public var startRevision: Int64 = 0   // 3
    public var progressNotify = false     // 4
    public var prevKV = false             // 6
    public var watchID: Int64 = 0         // 7
    public init(key: [UInt8] = [], rangeEnd: [UInt8] = [], startRevision: Int64 = 0, progressNotify: Bool = false) {
        self.key = key; self.rangeEnd = rangeEnd; self.startRevision = startRevision; self.progressNotify = progressNotify
    }
}

/// etcdserverpb.WatchResponse
public struct EtcdWatchResponse: Sendable, Equatable {
    public var header = EtcdResponseHeader()  // 1
    public var watchID: Int64 = 0             // 2
    public var created = false                // 3
    public var canceled = false               // 4
    public var compactRevision: Int64 = 0     // 5
    public var cancelReason = ""              // 6
    public var fragment = false               // 7
    public var events: [EtcdEvent] = []       // 11
    public init() {}
}

/// The gRPC methods, and the key-range helper etcd clients share.
public enum Etcd {
    public static let rangePath = "/etcdserverpb.KV/Range"
    public static let putPath = "/etcdserverpb.KV/Put"
    public static let deleteRangePath = "/etcdserverpb.KV/DeleteRange"
    public static let txnPath = "/etcdserverpb.KV/Txn"
    public static let watchPath = "/etcdserverpb.Watch/Watch"

    /// The end of the range of every key that starts with `prefix`: the prefix with its last
    /// byte below 0xff incremented (bytes after it dropped); "\0" (all keys) if there is none.
    public static func prefixEnd(_ prefix: [UInt8]) -> [UInt8] {
        var end = prefix
        while let last = end.last {
            if last < 0xFF {
                end[end.count - 1] = last + 1
                return end
            }
            end.removeLast()
        }
        return [0]
    }
}
