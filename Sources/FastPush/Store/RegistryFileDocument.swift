/// The registry file's items, each with its key, its hosts and its own pretty text, as the
/// writer last read or wrote them. A write then serializes only the item it changes and joins
/// the rest: with 2000 services a write cost a parse of the whole file and a serialization of
/// every item (about 150 ms).
struct RegistryFileDocument {
    struct Item {
        /// `metadata.name` and `metadata.namespace` ("default" when absent); nil without a name.
        let key: (namespace: String, name: String)?
        /// `spec.hosts` as written (the parser gives a host that two items claim to the first).
        let hosts: [String]
        /// The item serialized pretty at its depth in the document.
        let text: String

        init(_ value: JSONValue, depth: Int) {
            if case let .string(n)? = value["metadata"]?["name"] {
                if case let .string(ns)? = value["metadata"]?["namespace"] {
                    key = (ns, n)
                } else {
                    key = ("default", n)
                }
            } else {
                key = nil
            }
            var hosts: [String] = []
            if case let .array(list)? = value["spec"]?["hosts"] {
                for case let .string(h) in list { hosts.append(h) }
            }
            self.hosts = hosts
            text = value.serialized(pretty: true, depth: depth)
        }

        func isEntry(_ namespace: String, _ name: String) -> Bool { key.map { $0 == (namespace, name) } ?? false }
    }

    enum Shape {
        /// `{"items": [...], ...}`: the other members of the root.
        case list(JSONValue)
        case array
    }

    let shape: Shape
    private(set) var items: [Item]

    /// The file's root value: a List object, a bare array, or one ServiceEntry object (which
    /// becomes a List on the first write).
    init?(root: JSONValue) {
        let values: [JSONValue]
        switch root {
        case let .object(o) where o["items"] != nil:
            guard case let .array(items)? = o["items"] else { return nil }
            shape = .list(root.setting(["items"], to: nil))
            values = items
        case let .array(items):
            shape = .array
            values = items
        default:
            shape = .list(.object(["apiVersion": .string("v1"), "kind": .string("List")]))
            values = [root]
        }
        let depth = Self.itemDepth(shape)
        items = values.map { Item($0, depth: depth) }
    }

    /// Items are one level deeper in a List than in a bare array.
    private static func itemDepth(_ shape: Shape) -> Int {
        if case .array = shape { return 1 }
        return 2
    }

    private var itemDepth: Int { Self.itemDepth(shape) }

    /// Whether another item of the namespace claims a host of ServiceEntry `namespace/name`.
    /// Then which of them owns it depends on their order in the file, and an edit of one of
    /// them is applied correctly only by parsing the whole file again.
    func sharesHost(namespace: String, name: String) -> Bool {
        let mine = items.filter { $0.isEntry(namespace, name) }.flatMap(\.hosts)
        guard !mine.isEmpty else { return false }
        let hosts = Set(mine)
        return items.contains { i in
            guard let k = i.key, k.namespace == namespace, k.name != name else { return false }
            return i.hosts.contains(where: hosts.contains)
        }
    }

    /// Removes ServiceEntry `namespace/name`; whether it was there.
    @discardableResult
    mutating func remove(namespace: String, name: String) -> Bool {
        let before = items.count
        items.removeAll { $0.isEntry(namespace, name) }
        return items.count != before
    }

    mutating func append(_ value: JSONValue) { items.append(Item(value, depth: itemDepth)) }

    /// The file's text: the same bytes as serializing the whole document pretty.
    func text() -> String {
        var out = ""
        out.reserveCapacity(items.reduce(256) { $0 + $1.text.utf8.count + 2 * itemDepth + 2 })
        switch shape {
        case .array:
            writeItems(into: &out, depth: 0)
        case let .list(root):
            guard case let .object(members) = root else { return "" }
            out += "{"
            for (n, k) in (Array(members.keys) + ["items"]).sorted().enumerated() {
                out += n > 0 ? ",\n  " : "\n  "
                out += JSONText.quote(k) + ": "
                if k == "items" {
                    writeItems(into: &out, depth: 1)
                } else {
                    out += members[k]!.serialized(pretty: true, depth: 1)
                }
            }
            out += "\n}"
        }
        return out + "\n"
    }

    private func writeItems(into out: inout String, depth: Int) {
        guard !items.isEmpty else { out += "[]"; return }
        let indent = "\n" + String(repeating: "  ", count: depth + 1)
        out += "["
        for (n, i) in items.enumerated() {
            if n > 0 { out += "," }
            out += indent
            out += i.text
        }
        out += "\n" + String(repeating: "  ", count: depth) + "]"
    }
}
