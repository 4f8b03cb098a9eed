import Testing
@testable import FastPush

@Suite struct RegistryJSONReaderTests {
    private func parse(_ s: String) throws(JSONReader.SyntaxError) -> JSONValue {
        try JSONReader.parse(Array(s.utf8))
    }

    @Test func readsEveryValueKind() throws {
        let v = try parse(#"{"a": [1, -2, 1.5, 2e3, true, false, null, "x"], "b": {}}"#)
        #expect(v == .object([
            "a": .array([.int(1), .int(-2), .double(1.5), .double(2000), .bool(true), .bool(false), .null, .string("x")]),
            "b": .object([:]),
        ]))
    }

    @Test func integersAndBooleansStayDistinct() throws {
        #expect(try parse("1") == .int(1))
        #expect(try parse("true") == .bool(true))
        #expect(try parse("1.0") == .double(1))
        #expect(try parse("99999999999999999999") == .double(1e20))  // beyond Int64
    }

    @Test func decodesEscapesAndSurrogatePairs() throws {
        #expect(try parse(#""a\"b\\c\/d\n\t\u00e9\ud83d\ude00""#) == .string("a\"b\\c/d\n\té😀"))
        #expect(try parse("\"h\u{e9}llo\"") == .string("h\u{e9}llo"))  // raw UTF-8 passes through
    }

    @Test func reportsLineAndColumnOfTheError() {
        let e = #expect(throws: JSONReader.SyntaxError.self) { try parse("{\n  \"a\": 1,\n  \"b\" 2\n}") }
        #expect(e?.line == 3)
        #expect(e?.column == 7)
        #expect(e?.message.contains("expected ':'") == true)
    }

    @Test(arguments: [
        "", "   ", "{", "[1,]", "{\"a\":1,}", "01", "1.", "-", "tru", "\"abc", "\"\\x\"", "\"\\ud800\"",
        "{\"a\" 1}", "[1 2]", "1 2", "\"a\u{01}b\"", "{a:1}",
    ])
    func rejectsMalformedInput(_ text: String) {
        #expect(throws: JSONReader.SyntaxError.self) { try parse(text) }
    }

    @Test func rejectsInvalidUTF8() {
        #expect(throws: JSONReader.SyntaxError.self) { try JSONReader.parse([0x22, 0xFF, 0x22]) }
    }

    @Test func limitsNesting() {
        let deep = String(repeating: "[", count: 1000) + String(repeating: "]", count: 1000)
        #expect(throws: JSONReader.SyntaxError.self) { try parse(deep) }
        let ok = String(repeating: "[", count: 100) + String(repeating: "]", count: 100)
        #expect(throws: Never.self) { try parse(ok) }
    }
}
