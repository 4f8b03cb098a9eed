/// A parsed JSON document. The registry reads JSON with its own small reader (`JSONReader`)
/// instead of Foundation so that errors carry a line and column, numbers keep their integer /
/// fraction / boolean distinction, and the FastPush module does not pull in Foundation.
enum JSONValue: Equatable, Sendable {
    case null
    case bool(Bool)
    /// A number written without fraction or exponent that fits in 64 bits.
    case int(Int64)
    /// Any other number.
    case double(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    /// The JSON type name used in "expected X, got Y" messages.
    var typeName: String {
        switch self {
        case .null: "null"
        case .bool: "boolean"
        case .int, .double: "number"
        case .string: "string"
        case .array: "array"
        case .object: "object"
        }
    }

    /// A short rendering of the value for error messages: `string "80"`, `number 1.5`, `object`.
    var preview: String {
        switch self {
        case .null: return "null"
        case .bool(let b): return "boolean \(b)"
        case .int(let i): return "number \(i)"
        case .double(let d): return "number \(d)"
        case .string(let s):
            let short = s.count > 40 ? String(s.prefix(40)) + "..." : s
            return "string \"\(short)\""
        case .array: return "array"
        case .object: return "object"
        }
    }

    subscript(key: String) -> JSONValue? {
        if case .object(let o) = self { return o[key] }
        return nil
    }
}
