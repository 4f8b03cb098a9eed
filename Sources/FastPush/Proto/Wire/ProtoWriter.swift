#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Appends protobuf wire format into one malloc'ed buffer. Noncopyable because it owns that
/// buffer: `finish()` hands it to `SharedBytes` without a copy. Encoders compute sizes first
/// (`ProtoSize`) and pass the exact capacity, so a typical encode does one malloc and no realloc.
///
/// Field helpers follow proto3 implicit presence: default values (0, false, "", empty bytes)
/// are skipped unless the caller asks otherwise.
public struct ProtoWriter: ~Copyable {
    private var base: UnsafeMutableRawPointer
    private var capacity: Int
    public private(set) var count: Int = 0

    public init(capacity: Int = 256) {
        let c = max(capacity, 16)
        guard let p = malloc(c) else { fatalError("ProtoWriter: out of memory (\(c) bytes)") }
        base = p
        self.capacity = c
    }

    deinit { free(base) }

    /// Hands the buffer to `SharedBytes` without copying. Any spare capacity stays allocated:
    /// shrinking with realloc may itself copy, and sized encoders leave none.
    public consuming func finish() -> SharedBytes {
        let p = base, n = count
        discard self
        return SharedBytes(takingOwnershipOf: p, count: n)
    }

    public func toArray() -> [UInt8] {
        Array(UnsafeRawBufferPointer(start: base, count: count))
    }

    /// The bytes written so far, valid until the next write.
    public func withBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try body(UnsafeRawBufferPointer(start: base, count: count))
    }

    /// Makes room for `extra` more bytes, doubling so that appends stay amortized O(1).
    @inline(__always)
    public mutating func reserve(_ extra: Int) {
        if count + extra > capacity { grow(to: count + extra) }
    }

    private mutating func grow(to needed: Int) {
        var c = capacity
        while c < needed { c = c &* 2 }
        guard let p = realloc(base, c) else { fatalError("ProtoWriter: out of memory (\(c) bytes)") }
        base = p
        capacity = c
    }

    // MARK: raw wire primitives

    /// Stores a varint at `p`, returns its length. Shared with code that writes into memory it
    /// owns (the per-stream response tail).
    @inline(__always)
    public static func storeVarint(_ value: UInt64, at p: UnsafeMutableRawPointer) -> Int {
        var v = value
        var i = 0
        while v >= 0x80 {
            p.storeBytes(of: UInt8(truncatingIfNeeded: v) | 0x80, toByteOffset: i, as: UInt8.self)
            v >>= 7
            i += 1
        }
        p.storeBytes(of: UInt8(truncatingIfNeeded: v), toByteOffset: i, as: UInt8.self)
        return i + 1
    }

    public static func zigzag32(_ v: Int32) -> UInt32 { UInt32(bitPattern: (v << 1) ^ (v >> 31)) }
    public static func zigzag64(_ v: Int64) -> UInt64 { UInt64(bitPattern: (v << 1) ^ (v >> 63)) }

    @inline(__always)
    public mutating func writeVarint(_ value: UInt64) {
        reserve(10)
        count += Self.storeVarint(value, at: base + count)
    }

    @inline(__always)
    public mutating func writeTag(field: Int, wireType: WireType) {
        writeVarint(UInt64(field) << 3 | UInt64(wireType.rawValue))
    }

    public mutating func writeFixed32(_ v: UInt32) {
        reserve(4)
        (base + count).storeBytes(of: v.littleEndian, as: UInt32.self)
        count += 4
    }

    public mutating func writeFixed64(_ v: UInt64) {
        reserve(8)
        (base + count).storeBytes(of: v.littleEndian, as: UInt64.self)
        count += 8
    }

    public mutating func writeRaw(_ bytes: UnsafeRawBufferPointer) {
        guard let src = bytes.baseAddress, bytes.count > 0 else { return }
        reserve(bytes.count)
        (base + count).copyMemory(from: src, byteCount: bytes.count)
        count += bytes.count
    }

    public mutating func writeRaw(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { writeRaw($0) }
    }

    // MARK: fields (proto3 implicit presence: defaults are skipped)

    public mutating func writeUInt32(field: Int, _ v: UInt32) {
        guard v != 0 else { return }
        writeTag(field: field, wireType: .varint)
        writeVarint(UInt64(v))
    }

    public mutating func writeUInt64(field: Int, _ v: UInt64) {
        guard v != 0 else { return }
        writeTag(field: field, wireType: .varint)
        writeVarint(v)
    }

    /// Enums are int32 on the wire; the open-enum value is written as is.
    public mutating func writeEnum(field: Int, _ v: Int32) { writeInt32(field: field, v) }

    /// Negative values are sign-extended to 64 bits (10 bytes), as protobuf requires.
    public mutating func writeInt32(field: Int, _ v: Int32) {
        guard v != 0 else { return }
        writeTag(field: field, wireType: .varint)
        writeVarint(UInt64(bitPattern: Int64(v)))
    }

    public mutating func writeInt64(field: Int, _ v: Int64) {
        guard v != 0 else { return }
        writeTag(field: field, wireType: .varint)
        writeVarint(UInt64(bitPattern: v))
    }

    public mutating func writeSInt32(field: Int, _ v: Int32) {
        guard v != 0 else { return }
        writeTag(field: field, wireType: .varint)
        writeVarint(UInt64(Self.zigzag32(v)))
    }

    public mutating func writeSInt64(field: Int, _ v: Int64) {
        guard v != 0 else { return }
        writeTag(field: field, wireType: .varint)
        writeVarint(Self.zigzag64(v))
    }

    public mutating func writeBool(field: Int, _ v: Bool) {
        guard v else { return }
        writeTag(field: field, wireType: .varint)
        writeVarint(1)
    }

    public mutating func writeDouble(field: Int, _ v: Double) {
        guard v.bitPattern != 0 else { return }
        writeTag(field: field, wireType: .fixed64)
        writeFixed64(v.bitPattern)
    }

    public mutating func writeFloat(field: Int, _ v: Float) {
        guard v.bitPattern != 0 else { return }
        writeTag(field: field, wireType: .fixed32)
        writeFixed32(v.bitPattern)
    }

    public mutating func writeFixed32(field: Int, _ v: UInt32) {
        guard v != 0 else { return }
        writeTag(field: field, wireType: .fixed32)
        writeFixed32(v)
    }

    public mutating func writeFixed64(field: Int, _ v: UInt64) {
        guard v != 0 else { return }
        writeTag(field: field, wireType: .fixed64)
        writeFixed64(v)
    }

    /// `alwaysEmit` is for oneof members and repeated elements, where "" is a present value
    /// (RouteMatch `prefix: ""` must reach the client or it NACKs the route).
    public mutating func writeString(field: Int, _ s: String, alwaysEmit: Bool = false) {
        let n = s.utf8.count
        guard n > 0 || alwaysEmit else { return }
        writeTag(field: field, wireType: .lengthDelimited)
        writeVarint(UInt64(n))
        var s = s  // withUTF8 needs a var; a native string is not copied
        s.withUTF8 { writeRaw(UnsafeRawBufferPointer($0)) }
    }

    public mutating func writeBytes(field: Int, _ bytes: UnsafeRawBufferPointer, alwaysEmit: Bool = false) {
        guard bytes.count > 0 || alwaysEmit else { return }
        writeTag(field: field, wireType: .lengthDelimited)
        writeVarint(UInt64(bytes.count))
        writeRaw(bytes)
    }

    public mutating func writeBytes(field: Int, _ bytes: [UInt8], alwaysEmit: Bool = false) {
        bytes.withUnsafeBytes { writeBytes(field: field, $0, alwaysEmit: alwaysEmit) }
    }

    public mutating func writePackedVarints(field: Int, _ values: [UInt64]) {
        guard !values.isEmpty else { return }
        writeTag(field: field, wireType: .lengthDelimited)
        writeVarint(UInt64(ProtoSize.packedPayload(values)))
        for v in values { writeVarint(v) }
    }

    /// Writes tag, the caller-computed `size`, then lets `body` write exactly `size` bytes.
    /// The size must come from `ProtoSize`; a mismatch would corrupt every following field.
    public mutating func writeMessage(field: Int, size: Int, _ body: (inout ProtoWriter) -> Void) {
        writeTag(field: field, wireType: .lengthDelimited)
        writeVarint(UInt64(size))
        reserve(size)
        let start = count
        body(&self)
        assert(count - start == size, "nested message field \(field): declared \(size) bytes, wrote \(count - start)")
    }

    /// A present message with no fields set (ConfigSource `ads: {}`).
    public mutating func writeEmptyMessage(field: Int) {
        writeTag(field: field, wireType: .lengthDelimited)
        writeVarint(0)
    }

    /// google.protobuf.UInt32Value: the wrapper is present even when the value is 0.
    public mutating func writeUInt32Wrapper(field: Int, _ v: UInt32) {
        writeMessage(field: field, size: ProtoSize.uint32(1, v)) { $0.writeUInt32(field: 1, v) }
    }

    /// google.protobuf.BoolValue: `false` is a present wrapper with an empty body.
    public mutating func writeBoolWrapper(field: Int, _ v: Bool) {
        writeMessage(field: field, size: ProtoSize.bool(1, v)) { $0.writeBool(field: 1, v) }
    }
}
