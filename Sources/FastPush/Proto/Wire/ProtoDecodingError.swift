/// Why bytes from the network are not a valid message. Every malformed input maps to one of
/// these; the decoder never traps, so a hostile client can only get its stream closed.
public enum ProtoDecodingError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The input ended inside a varint.
    case truncatedVarint
    /// A varint ran past 10 bytes or overflowed 64 bits.
    case varintTooLong
    /// A key carried wire type 3, 4 (groups), 6 or 7.
    case invalidWireType(UInt8)
    /// A known field arrived with a different wire type than its declaration.
    case wrongWireType(field: Int, expected: WireType, actual: WireType)
    /// A length prefix, or a fixed32/fixed64 value, reaches past the end of the enclosing bytes.
    case lengthPastEnd(length: UInt64, remaining: Int)
    /// A `string` field held bytes that are not UTF-8.
    case invalidUTF8(field: Int)
    /// Field number 0, or one above 2^29-1.
    case invalidFieldNumber(UInt64)
    /// Messages nested deeper than the reader's limit (Struct/Value/ListValue recursion).
    case nestingTooDeep(limit: Int)

    public var description: String {
        switch self {
        case .truncatedVarint:
            "truncated varint: input ended before the varint's last byte"
        case .varintTooLong:
            "malformed varint: longer than 10 bytes or larger than 64 bits"
        case .invalidWireType(let t):
            "invalid wire type \(t)" + (t == 3 || t == 4 ? " (groups are not supported)" : "")
        case .wrongWireType(let field, let expected, let actual):
            "field \(field) has wire type \(actual), expected \(expected)"
        case .lengthPastEnd(let length, let remaining):
            "length \(length) runs past the end of the message (\(remaining) bytes left)"
        case .invalidUTF8(let field):
            "string field \(field) is not valid UTF-8"
        case .invalidFieldNumber(let n):
            n == 0 ? "field number 0 is not allowed" : "field number \(n) is out of range"
        case .nestingTooDeep(let limit):
            "messages nested deeper than \(limit) levels"
        }
    }
}
