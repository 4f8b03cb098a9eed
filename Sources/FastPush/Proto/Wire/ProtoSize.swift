/// Encoded sizes, computed before writing so that a nested message's length prefix is known
/// up front: the writer never back-patches or shifts bytes. The field helpers mirror
/// `ProtoWriter`'s and return 0 exactly when the writer would skip the field.
public enum ProtoSize {
    @inline(__always)
    public static func varint(_ v: UInt64) -> Int {
        // bits needed (at least 1), 7 per byte.
        (64 - (v | 1).leadingZeroBitCount + 6) / 7
    }

    @inline(__always)
    public static func tag(_ field: Int) -> Int { varint(UInt64(field) << 3) }

    /// A length-delimited field that is always present: tag, length, payload.
    @inline(__always)
    public static func lengthDelimited(_ field: Int, _ length: Int) -> Int {
        tag(field) + varint(UInt64(length)) + length
    }

    /// A nested message field; messages have explicit presence, so it is never skipped.
    @inline(__always)
    public static func message(_ field: Int, _ size: Int) -> Int { lengthDelimited(field, size) }

    public static func string(_ field: Int, _ s: String, alwaysEmit: Bool = false) -> Int {
        let n = s.utf8.count
        return n == 0 && !alwaysEmit ? 0 : lengthDelimited(field, n)
    }

    /// Every element of a repeated string is emitted, "" included.
    public static func repeatedString(_ field: Int, _ values: [String]) -> Int {
        var total = 0
        for s in values { total += lengthDelimited(field, s.utf8.count) }
        return total
    }

    public static func bytes(_ field: Int, count: Int) -> Int {
        count == 0 ? 0 : lengthDelimited(field, count)
    }

    public static func uint32(_ field: Int, _ v: UInt32) -> Int { v == 0 ? 0 : tag(field) + varint(UInt64(v)) }
    public static func uint64(_ field: Int, _ v: UInt64) -> Int { v == 0 ? 0 : tag(field) + varint(v) }
    /// Negative int32 values are sign-extended to 64 bits, so they take 10 bytes.
    public static func int32(_ field: Int, _ v: Int32) -> Int {
        v == 0 ? 0 : tag(field) + varint(UInt64(bitPattern: Int64(v)))
    }
    public static func int64(_ field: Int, _ v: Int64) -> Int {
        v == 0 ? 0 : tag(field) + varint(UInt64(bitPattern: v))
    }
    public static func sint32(_ field: Int, _ v: Int32) -> Int {
        v == 0 ? 0 : tag(field) + varint(UInt64(ProtoWriter.zigzag32(v)))
    }
    public static func sint64(_ field: Int, _ v: Int64) -> Int {
        v == 0 ? 0 : tag(field) + varint(ProtoWriter.zigzag64(v))
    }
    public static func bool(_ field: Int, _ v: Bool) -> Int { v ? tag(field) + 1 : 0 }
    /// -0.0 is not the default (its bit pattern is not zero), matching protobuf's own encoders.
    public static func double(_ field: Int, _ v: Double) -> Int { v.bitPattern == 0 ? 0 : tag(field) + 8 }
    public static func float(_ field: Int, _ v: Float) -> Int { v.bitPattern == 0 ? 0 : tag(field) + 4 }
    public static func fixed32(_ field: Int, _ v: UInt32) -> Int { v == 0 ? 0 : tag(field) + 4 }
    public static func fixed64(_ field: Int, _ v: UInt64) -> Int { v == 0 ? 0 : tag(field) + 8 }

    /// Payload size of a packed repeated varint field (without tag and length).
    public static func packedPayload(_ values: [UInt64]) -> Int {
        var n = 0
        for v in values { n += varint(v) }
        return n
    }

    public static func packedVarints(_ field: Int, _ values: [UInt64]) -> Int {
        values.isEmpty ? 0 : lengthDelimited(field, packedPayload(values))
    }

    /// google.protobuf.UInt32Value / BoolValue wrappers: the message is present, its value field
    /// follows proto3 defaults (so a wrapped 0 or false is tag + zero length).
    public static func uint32Wrapper(_ field: Int, _ v: UInt32) -> Int { message(field, uint32(1, v)) }
    public static func boolWrapper(_ field: Int, _ v: Bool) -> Int { message(field, bool(1, v)) }
}
