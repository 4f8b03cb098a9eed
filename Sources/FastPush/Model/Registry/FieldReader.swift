/// Typed access to the fields of one JSON object. Type mismatches and range errors are
/// recorded against the object and the field path (`spec.ports[1].number`) and read as nil,
/// so parsing continues and one run reports every problem in the file.
struct FieldReader {
    /// e.g. `items[3] (ServiceEntry default/echo)`; set once the name is known.
    var object: String?
    var problems = RegistryProblems()

    init(object: String?) { self.object = object }

    mutating func fail(_ field: String?, _ message: String) {
        problems.add(object: object, field: field, message)
    }

    mutating func warn(_ message: String) { problems.warn(message) }

    /// A string; nil when absent/null (an error if `required`) or of another type.
    mutating func string(_ v: JSONValue?, _ field: String, required: Bool = false) -> String? {
        switch v {
        case .string(let s)?: return s
        case nil, .null?: if required { fail(field, "required") }; return nil
        case let other?: fail(field, "expected a string, got \(other.preview)"); return nil
        }
    }

    /// An integer within `range`. Integral floats (8080.0) are accepted as protojson does;
    /// strings are not, even though protojson would take "8080".
    mutating func integer(_ v: JSONValue?, _ field: String, in range: ClosedRange<Int64>,
                          required: Bool = false) -> Int64? {
        let n: Int64
        switch v {
        case .int(let i)?: n = i
        case .double(let d)?:
            guard d.rounded() == d, let i = Int64(exactly: d) else {
                fail(field, "expected an integer, got \(v!.preview)"); return nil
            }
            n = i
        case nil, .null?: if required { fail(field, "required") }; return nil
        case let other?: fail(field, "expected a number, got \(other.preview)"); return nil
        }
        guard range.contains(n) else {
            fail(field, "must be \(range.lowerBound)..\(range.upperBound), got \(n)"); return nil
        }
        return n
    }

    mutating func object(_ v: JSONValue?, _ field: String, required: Bool = false) -> [String: JSONValue]? {
        switch v {
        case .object(let o)?: return o
        case nil, .null?: if required { fail(field, "required") }; return nil
        case let other?: fail(field, "expected an object, got \(other.preview)"); return nil
        }
    }

    mutating func array(_ v: JSONValue?, _ field: String, required: Bool = false) -> [JSONValue]? {
        switch v {
        case .array(let a)?: return a
        case nil, .null?: if required { fail(field, "required") }; return nil
        case let other?: fail(field, "expected an array, got \(other.preview)"); return nil
        }
    }

    /// A `map<string, string>` such as `labels`; entries of the wrong type are reported and dropped.
    mutating func stringMap(_ v: JSONValue?, _ field: String) -> [String: String] {
        guard let o = object(v, field) else { return [:] }
        var out: [String: String] = [:]
        for key in o.keys.sorted() {
            if let s = string(o[key], Self.key(field, key), required: true) { out[key] = s }
        }
        return out
    }

    /// `spec.ports` + `[1]`.
    static func index(_ base: String, _ i: Int) -> String { "\(base)[\(i)]" }

    /// `spec` + `hosts` -> `spec.hosts`; keys that are not plain words are quoted:
    /// `labels["app.kubernetes.io/name"]`.
    static func key(_ base: String, _ k: String) -> String {
        let plain = !k.isEmpty && k.utf8.allSatisfy { u in
            (u >= 0x30 && u <= 0x39) || (u >= 0x41 && u <= 0x5A) || (u >= 0x61 && u <= 0x7A) || u == 0x5F || u == 0x2D
        }
        if !plain { return "\(base)[\"\(k)\"]" }
        return base.isEmpty ? k : "\(base).\(k)"
    }
}
