/// Reads protobuf wire format from memory the caller keeps alive; only `readString` and
/// `readBytes` copy. Every read is bounds-checked against the enclosing message, lengths are
/// checked before anything is allocated, and nested messages count against `maxDepth`, so
/// hostile input ends in a `ProtoDecodingError`, never a trap, a hang or a huge allocation.
///
/// Usage: `while let (field, _) = try r.next() { switch field { case 1: x = try r.stringField() ... default: try r.skipField() } }`
/// The `...Field()` readers check the wire type of the key `next()` just read.
public struct ProtoReader {
    public static let defaultMaxDepth = 32

    private let base: UnsafeRawPointer?
    private var pos: Int
    private let end: Int
    /// Nesting level of this reader: 0 for the top-level message.
    public let depth: Int
    public let maxDepth: Int
    /// The key most recently returned by `next()`.
    public private(set) var field: Int = 0
    public private(set) var wireType: WireType = .varint

    public init(_ buffer: UnsafeRawBufferPointer, maxDepth: Int = ProtoReader.defaultMaxDepth) {
        self.init(base: buffer.baseAddress, pos: 0, end: buffer.baseAddress == nil ? 0 : buffer.count,
                  depth: 0, maxDepth: maxDepth)
    }

    private init(base: UnsafeRawPointer?, pos: Int, end: Int, depth: Int, maxDepth: Int) {
        self.base = base; self.pos = pos; self.end = end; self.depth = depth; self.maxDepth = maxDepth
    }

    public var isAtEnd: Bool { pos >= end }
    /// Where the next read starts, from the start of the buffer.
    public var offset: Int { pos }
    public var remaining: Int { end - pos }

    // MARK: keys

    /// The next field key, or nil at the end of the message.
    @inline(__always)
    public mutating func next() throws(ProtoDecodingError) -> (field: Int, wireType: WireType)? {
        guard pos < end else { return nil }
        let key = try readVarint()
        // A key is a uint32: field numbers stop at 2^29-1.
        guard key <= UInt64(UInt32.max), key >> 3 != 0 else { throw .invalidFieldNumber(key >> 3) }
        guard let wt = WireType(rawValue: UInt8(key & 7)), wt != .startGroup, wt != .endGroup else {
            throw .invalidWireType(UInt8(key & 7))
        }
        field = Int(key >> 3)
        wireType = wt
        return (field, wt)
    }

    // MARK: raw values

    @inline(__always)
    public mutating func readVarint() throws(ProtoDecodingError) -> UInt64 {
        guard let base, pos < end else { throw .truncatedVarint }
        let first = base.load(fromByteOffset: pos, as: UInt8.self)
        if first < 0x80 {
            pos += 1
            return UInt64(first)
        }
        return try readVarintSlow(base)
    }

    private mutating func readVarintSlow(_ base: UnsafeRawPointer) throws(ProtoDecodingError) -> UInt64 {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        var p = pos
        while true {
            guard p < end else { throw .truncatedVarint }
            let b = base.load(fromByteOffset: p, as: UInt8.self)
            p += 1
            // The 10th byte holds bit 63 only: anything more is an 11-byte varint or overflow.
            if shift == 63 && b > 1 { throw .varintTooLong }
            result |= UInt64(b & 0x7F) << shift
            if b < 0x80 {
                pos = p
                return result
            }
            shift += 7
        }
    }

    public mutating func readFixed32() throws(ProtoDecodingError) -> UInt32 {
        guard let base, end - pos >= 4 else { throw .lengthPastEnd(length: 4, remaining: end - pos) }
        let v = base.loadUnaligned(fromByteOffset: pos, as: UInt32.self)
        pos += 4
        return UInt32(littleEndian: v)
    }

    public mutating func readFixed64() throws(ProtoDecodingError) -> UInt64 {
        guard let base, end - pos >= 8 else { throw .lengthPastEnd(length: 8, remaining: end - pos) }
        let v = base.loadUnaligned(fromByteOffset: pos, as: UInt64.self)
        pos += 8
        return UInt64(littleEndian: v)
    }

    /// The payload of a length-delimited value, as a view into the input (no copy).
    public mutating func readLengthDelimited() throws(ProtoDecodingError) -> UnsafeRawBufferPointer {
        let n = try readVarint()
        guard n <= UInt64(end - pos) else { throw .lengthPastEnd(length: n, remaining: end - pos) }
        let len = Int(n)
        guard len > 0, let base else { return UnsafeRawBufferPointer(start: nil, count: 0) }
        let out = UnsafeRawBufferPointer(start: base + pos, count: len)
        pos += len
        return out
    }

    /// A length-delimited value as a validated UTF-8 String.
    public mutating func readString() throws(ProtoDecodingError) -> String {
        let raw = try readLengthDelimited()
        if raw.isEmpty { return "" }
        guard let s = raw.withMemoryRebound(to: UInt8.self, { UTF8Validation.string(from: $0) }) else {
            throw .invalidUTF8(field: field)
        }
        return s
    }

    public mutating func readBytes() throws(ProtoDecodingError) -> [UInt8] {
        Array(try readLengthDelimited())
    }

    /// Decodes a packed repeated varint payload. Count is bounded by the payload's length.
    public mutating func readPackedVarints() throws(ProtoDecodingError) -> [UInt64] {
        var out: [UInt64] = []
        try appendPackedVarints(to: &out)
        return out
    }

    private mutating func appendPackedVarints(to out: inout [UInt64]) throws(ProtoDecodingError) {
        let payload = try readLengthDelimited()
        var sub = ProtoReader(base: payload.baseAddress, pos: 0, end: payload.count, depth: depth, maxDepth: maxDepth)
        while !sub.isAtEnd { out.append(try sub.readVarint()) }
    }

    public static func zigzag32(_ v: UInt32) -> Int32 { Int32(bitPattern: (v >> 1) ^ (0 &- (v & 1))) }
    public static func zigzag64(_ v: UInt64) -> Int64 { Int64(bitPattern: (v >> 1) ^ (0 &- (v & 1))) }

    /// Skips one value of the given wire type.
    public mutating func skip(wireType: WireType) throws(ProtoDecodingError) {
        switch wireType {
        case .varint: _ = try readVarint()
        case .fixed64: try advance(8)
        case .lengthDelimited: _ = try readLengthDelimited()
        case .fixed32: try advance(4)
        case .startGroup, .endGroup: throw .invalidWireType(wireType.rawValue)
        }
    }

    private mutating func advance(_ n: Int) throws(ProtoDecodingError) {
        guard end - pos >= n else { throw .lengthPastEnd(length: UInt64(n), remaining: end - pos) }
        pos += n
    }

    // MARK: typed fields (check the wire type of the current key)

    @inline(__always)
    private func expect(_ wt: WireType) throws(ProtoDecodingError) {
        guard wireType == wt else { throw .wrongWireType(field: field, expected: wt, actual: wireType) }
    }

    /// Skips the value of the current (unknown) field.
    public mutating func skipField() throws(ProtoDecodingError) { try skip(wireType: wireType) }

    public mutating func stringField() throws(ProtoDecodingError) -> String {
        try expect(.lengthDelimited)
        return try readString()
    }

    public mutating func bytesField() throws(ProtoDecodingError) -> [UInt8] {
        try expect(.lengthDelimited)
        return try readBytes()
    }

    public mutating func uint64Field() throws(ProtoDecodingError) -> UInt64 {
        try expect(.varint)
        return try readVarint()
    }

    /// Like protobuf's parsers, a uint32 keeps the low 32 bits of a wider varint.
    public mutating func uint32Field() throws(ProtoDecodingError) -> UInt32 {
        UInt32(truncatingIfNeeded: try uint64Field())
    }

    public mutating func int64Field() throws(ProtoDecodingError) -> Int64 {
        Int64(bitPattern: try uint64Field())
    }

    public mutating func int32Field() throws(ProtoDecodingError) -> Int32 {
        Int32(truncatingIfNeeded: try uint64Field())
    }

    public mutating func sint32Field() throws(ProtoDecodingError) -> Int32 {
        Self.zigzag32(UInt32(truncatingIfNeeded: try uint64Field()))
    }

    public mutating func sint64Field() throws(ProtoDecodingError) -> Int64 {
        Self.zigzag64(try uint64Field())
    }

    public mutating func boolField() throws(ProtoDecodingError) -> Bool { try uint64Field() != 0 }

    public mutating func doubleField() throws(ProtoDecodingError) -> Double {
        try expect(.fixed64)
        return Double(bitPattern: try readFixed64())
    }

    public mutating func floatField() throws(ProtoDecodingError) -> Float {
        try expect(.fixed32)
        return Float(bitPattern: try readFixed32())
    }

    /// Repeated varints arrive packed (length-delimited) or one per key; parsers must accept both.
    public mutating func repeatedVarintField(appendingTo out: inout [UInt64]) throws(ProtoDecodingError) {
        switch wireType {
        case .varint: out.append(try readVarint())
        case .lengthDelimited: try appendPackedVarints(to: &out)
        default: throw .wrongWireType(field: field, expected: .lengthDelimited, actual: wireType)
        }
    }

    /// A reader over the current field's nested message, one level deeper; this reader moves past it.
    public mutating func messageField() throws(ProtoDecodingError) -> ProtoReader {
        try expect(.lengthDelimited)
        guard depth < maxDepth else { throw .nestingTooDeep(limit: maxDepth) }
        let payload = try readLengthDelimited()
        return ProtoReader(base: payload.baseAddress, pos: 0, end: payload.count, depth: depth + 1, maxDepth: maxDepth)
    }

    /// Decodes the current field as a nested message.
    public mutating func messageField<M: ProtoDecodable>(_ type: M.Type = M.self) throws(ProtoDecodingError) -> M {
        var sub = try messageField()
        return try M(reading: &sub)
    }
}
