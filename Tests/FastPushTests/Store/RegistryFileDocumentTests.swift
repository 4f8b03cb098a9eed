import Testing
@testable import FastPush

/// The writer's kept document: joining the items' own texts must give the same bytes as
/// serializing the whole file, whatever its shape and after any edit.
@Suite struct RegistryFileDocumentTests {
    static let a = serviceEntryJSON(name: "a", namespace: "demo", spec: #"{"hosts": ["a.demo"], "ports": [{"number": 80, "name": "http"}]}"#)
    static let b = serviceEntryJSON(name: "b", namespace: nil, spec: #"{"hosts": ["b"], "endpoints": [{"address": "10.0.0.1", "labels": {"x": "y"}}]}"#)
    static let c = serviceEntryJSON(name: "c", namespace: "other", spec: #"{"hosts": []}"#)

    static func whole(_ v: JSONValue) -> String { v.serialized(pretty: true) + "\n" }

    static func parse(_ s: String) throws -> JSONValue { try JSONReader.parse(Array(s.utf8)) }

    @Test(arguments: [
        // A List with other members around items (sorted before and after it).
        #"{"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": ""}, "zz": [1, {"q": null}], "items": [\#(a), \#(b), \#(c)]}"#,
        #"{"kind": "List", "items": []}"#,
        // A bare array, empty or not.
        "[\(a), \(b)]",
        "[]",
    ])
    func textIsTheWholeSerialization(_ file: String) throws {
        let root = try Self.parse(file)
        let doc = try #require(RegistryFileDocument(root: root))
        #expect(doc.text() == Self.whole(root))
    }

    @Test func oneObjectBecomesAList() throws {
        let root = try Self.parse(Self.a)
        let doc = try #require(RegistryFileDocument(root: root))
        let list = JSONValue.object(["apiVersion": .string("v1"), "kind": .string("List"), "items": .array([root])])
        #expect(doc.text() == Self.whole(list))
    }

    @Test func editsKeepTheSameBytesAsAWholeSerialization() throws {
        let root = try Self.parse(#"{"apiVersion": "v1", "kind": "List", "items": [\#(Self.a), \#(Self.b), \#(Self.c)]}"#)
        var doc = try #require(RegistryFileDocument(root: root))
        #expect(doc.items.contains { $0.isEntry("default", "b") }, "an item without a namespace is in default")
        #expect(!doc.items.contains { $0.isEntry("demo", "b") })
        let removed = doc.remove(namespace: "default", name: "b")
        let again = doc.remove(namespace: "default", name: "b")
        #expect(removed && !again)
        let a2 = try Self.parse(Self.a.replacingFirst("a.demo", with: "a2.demo"))
        let removedA = doc.remove(namespace: "demo", name: "a")
        #expect(removedA)
        doc.append(a2)
        let expected = JSONValue.object(["apiVersion": .string("v1"), "kind": .string("List"),
                                         "items": .array([try Self.parse(Self.c), a2])])
        #expect(doc.text() == Self.whole(expected))
        // And it reads back as that document.
        #expect(try JSONReader.parse(Array(doc.text().utf8)) == expected)
    }

    @Test func itemsThatAreNotAnArrayAreRefused() throws {
        #expect(RegistryFileDocument(root: try Self.parse(#"{"items": {"a": 1}}"#)) == nil)
    }
}
