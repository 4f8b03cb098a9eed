/// JSON text from a JSONValue: what the store writes back (a registry file, an etcd value, an
/// export). Object keys are sorted, so the same document is always the same bytes.
extension JSONValue {
    /// `pretty`: two-space indentation, one member per line (files people read and diff).
    /// `depth`: the nesting this value will sit at (its continuation lines are indented so).
    func serialized(pretty: Bool = false, depth: Int = 0) -> String {
        var out = ""
        write(into: &out, pretty: pretty, depth: depth)
        return out
    }

    private func write(into out: inout String, pretty: Bool, depth: Int) {
        func newline(_ d: Int) {
            guard pretty else { return }
            out += "\n" + String(repeating: "  ", count: d)
        }
        switch self {
        case .null: out += "null"
        case let .bool(b): out += b ? "true" : "false"
        case let .int(i): out += String(i)
        case let .double(d): out += d.isFinite ? "\(d)" : "null"
        case let .string(s): out += JSONText.quote(s)
        case let .array(items):
            guard !items.isEmpty else { out += "[]"; return }
            out += "["
            for (n, v) in items.enumerated() {
                if n > 0 { out += "," }
                newline(depth + 1)
                v.write(into: &out, pretty: pretty, depth: depth + 1)
            }
            newline(depth)
            out += "]"
        case let .object(members):
            guard !members.isEmpty else { out += "{}"; return }
            out += "{"
            for (n, k) in members.keys.sorted().enumerated() {
                if n > 0 { out += "," }
                newline(depth + 1)
                out += JSONText.quote(k) + (pretty ? ": " : ":")
                members[k]!.write(into: &out, pretty: pretty, depth: depth + 1)
            }
            newline(depth)
            out += "}"
        }
    }

    /// The value with `path` (object keys) set to `value`, making objects on the way; nil
    /// `value` removes the member.
    func setting(_ path: [String], to value: JSONValue?) -> JSONValue {
        guard let first = path.first else { return value ?? .null }
        var members: [String: JSONValue] = [:]
        if case let .object(o) = self { members = o }
        if path.count == 1 {
            if value == nil && members[first] == nil { return self }
            members[first] = value
        } else {
            // Removing under a member that is not there changes nothing.
            guard value != nil || members[first] != nil else { return self }
            members[first] = (members[first] ?? .object([:])).setting(Array(path.dropFirst()), to: value)
        }
        return .object(members)
    }
}
