import Testing
@testable import FastPush

/// JSONValue.serialized (what the stores write: the registry file, etcd values) and `setting`.
@Suite struct StoreJSONWriterTests {
    static func parse(_ s: String) throws -> JSONValue { try JSONReader.parse(Array(s.utf8)) }

    static let nested: JSONValue = .object([
        "apiVersion": .string("networking.istio.io/v1"),
        "metadata": .object(["name": .string("shop"), "labels": .object(["tier": .string("web"), "empty": .string("")]),
                             "annotations": .object([:])]),
        "spec": .object([
            "hosts": .array([.string("a.demo"), .string("b.demo")]),
            "ports": .array([.object(["number": .int(8080), "name": .string("grpc"), "targetPort": .int(0)])]),
            "endpoints": .array([]),
            "deep": .array([.array([.array([.object(["x": .null, "y": .bool(true), "z": .bool(false)])])])]),
        ]),
        "ratios": .array([.double(0.5), .double(-2.25), .double(1e300), .double(1.5e-7), .double(3.0), .double(-0.0)]),
        "ints": .array([.int(0), .int(-1), .int(Int64.max), .int(Int64.min), .int(1_000_000_007)]),
    ])

    @Test func roundTripsThroughTheReader() throws {
        for pretty in [false, true] {
            let text = Self.nested.serialized(pretty: pretty)
            #expect(try Self.parse(text) == Self.nested, "pretty: \(pretty)")
            // And again: the same text.
            #expect(try Self.parse(text).serialized(pretty: pretty) == text)
        }
    }

    @Test func stringsWithEscapesAndUnicode() throws {
        let strings = [
            "plain", "", "quote \" backslash \\ slash /", "line\nfeed\r\ttab", "\u{0}\u{1}\u{8}\u{C}\u{1F}",
            "\u{7F} del", "é and e\u{301}", "日本語", "😀 \u{10FFFF}", "\u{2028}\u{2029}", "\u{FEFF}bom",
        ]
        for s in strings {
            let text = JSONValue.string(s).serialized()
            #expect(try Self.parse(text) == .string(s), "\(s.unicodeScalars.map { String($0.value, radix: 16) })")
            // Keys too.
            #expect(try Self.parse(JSONValue.object([s: .int(1)]).serialized()) == .object([s: .int(1)]))
        }
        // Control characters are escaped; everything else is written as UTF-8.
        #expect(JSONValue.string("a\"b\\c\nd\u{1}e\u{1F}").serialized() == #""a\"b\\c\nd\u0001e\u001f""#)
        #expect(JSONValue.string("é😀").serialized() == "\"é😀\"")
        // What a reader decoded from escapes comes back as the characters themselves.
        let escaped = try Self.parse(#"["\u00e9", "\ud83d\ude00", "\u0000", "\/"]"#)
        #expect(escaped == .array([.string("é"), .string("😀"), .string("\u{0}"), .string("/")]))
        #expect(escaped.serialized() == #"["é","😀","\u0000","/"]"#)
    }

    @Test func numbers() throws {
        let cases: [(String, JSONValue)] = [
            ("0", .int(0)), ("-0", .int(0)), ("42", .int(42)), ("-9223372036854775808", .int(Int64.min)),
            ("9223372036854775807", .int(Int64.max)), ("1.5", .double(1.5)), ("1e3", .double(1000)),
            ("-2.5E-3", .double(-0.0025)), ("1.0", .double(1)), ("9223372036854775808", .double(9_223_372_036_854_775_808)),
            ("123456789.125", .double(123_456_789.125)), ("5e-324", .double(5e-324)), ("1.7976931348623157e308", .double(.greatestFiniteMagnitude)),
        ]
        for (text, value) in cases {
            let parsed = try Self.parse(text)
            #expect(parsed == value, "\(text)")
            let again = try Self.parse(parsed.serialized())
            #expect(again == value, "\(text) -> \(parsed.serialized())")
        }
        // A fraction stays a fraction (an int would be a different value to a reader).
        #expect(JSONValue.double(3).serialized() == "3.0")
        #expect(try Self.parse(JSONValue.double(3).serialized()) == .double(3))
        #expect(JSONValue.int(-7).serialized() == "-7")
        // JSON has no NaN or infinities.
        #expect(JSONValue.array([.double(.nan), .double(.infinity), .double(-.infinity)]).serialized() == "[null,null,null]")
    }

    @Test func keysAreSortedSoTheSameDocumentIsTheSameBytes() throws {
        let v: JSONValue = .object(["b": .int(1), "a": .int(2), "C": .int(3), "aa": .int(4), "": .int(5), "a b": .int(6)])
        #expect(v.serialized() == #"{"":5,"C":3,"a":2,"a b":6,"aa":4,"b":1}"#)
        // Parsed from two orders: one text.
        let x = try Self.parse(#"{"z": {"y": 1, "x": [2, {"q": 0, "p": 1}]}, "a": null}"#)
        let y = try Self.parse(#"{"a": null, "z": {"x": [2, {"p": 1, "q": 0}], "y": 1}}"#)
        #expect(x.serialized() == y.serialized())
        #expect(x.serialized() == #"{"a":null,"z":{"x":[2,{"p":1,"q":0}],"y":1}}"#)
        // Array order is kept.
        #expect(JSONValue.array([.int(3), .int(1), .int(2)]).serialized() == "[3,1,2]")
    }

    @Test func prettyText() {
        let v: JSONValue = .object(["b": .object(["c": .null]), "a": .array([.int(1), .object([:]), .array([])])])
        #expect(v.serialized(pretty: true) == """
        {
          "a": [
            1,
            {},
            []
          ],
          "b": {
            "c": null
          }
        }
        """)
        #expect(JSONValue.object([:]).serialized(pretty: true) == "{}")
        #expect(JSONValue.array([]).serialized(pretty: true) == "[]")
    }

    @Test func settingCreatesMembers() {
        let base: JSONValue = .object(["metadata": .object(["name": .string("shop")]), "spec": .object([:])])
        let set = base.setting(["metadata", "resourceVersion"], to: .string("12"))
        #expect(set == .object(["metadata": .object(["name": .string("shop"), "resourceVersion": .string("12")]), "spec": .object([:])]))
        // The original value is not changed.
        #expect(base["metadata"]?["resourceVersion"] == nil)
        // Objects on the way are made.
        #expect(JSONValue.object([:]).setting(["a", "b", "c"], to: .int(1))
                == .object(["a": .object(["b": .object(["c": .int(1)])])]))
        // Replacing a member, and a value that is not an object on the way.
        #expect(set.setting(["metadata", "resourceVersion"], to: .int(13))["metadata"]?["resourceVersion"] == .int(13))
        #expect(JSONValue.object(["a": .string("x")]).setting(["a", "b"], to: .bool(true)) == .object(["a": .object(["b": .bool(true)])]))
        // An empty path is the value itself.
        #expect(base.setting([], to: .int(5)) == .int(5))
        #expect(EtcdRegistryStore.rendered(base, 7) == #"{"metadata":{"name":"shop","resourceVersion":"7"},"spec":{}}"# + "\n")
    }

    @Test func settingNilRemovesMembers() {
        let base: JSONValue = .object(["metadata": .object(["name": .string("shop"), "resourceVersion": .string("12")]), "kind": .string("ServiceEntry")])
        #expect(base.setting(["metadata", "resourceVersion"], to: nil)
                == .object(["metadata": .object(["name": .string("shop")]), "kind": .string("ServiceEntry")]))
        #expect(base.setting(["kind"], to: nil) == .object(["metadata": base["metadata"]!]))
        // The last member: an empty object stays.
        #expect(JSONValue.object(["m": .object(["v": .int(1)])]).setting(["m", "v"], to: nil) == .object(["m": .object([:])]))
        // Removing what is not there changes nothing.
        #expect(base.setting(["status"], to: nil) == base)
    }

    /// Removing a member under a path that does not exist changes nothing: no empty objects on
    /// the way ("status": {}), and a value on the way that is not an object is left as it is.
    @Test func settingNilOnAMissingPathChangesNothing() {
        let base: JSONValue = .object(["metadata": .object(["name": .string("shop")]), "kind": .string("ServiceEntry")])
        #expect(base.setting(["status", "conditions"], to: nil) == base)
        #expect(base.setting(["kind", "x"], to: nil) == base)
    }
}
