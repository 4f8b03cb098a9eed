/// Strict RFC 8259 JSON reader over UTF-8 bytes. Errors report the 1-based line and column
/// (counted in characters) of the offending byte.
struct JSONReader {
    struct SyntaxError: Error, Equatable {
        var line: Int
        var column: Int
        var message: String
    }

    /// Deeper nesting than this is rejected rather than risking the stack.
    static let maxDepth = 128

    static func parse(_ bytes: [UInt8]) throws(SyntaxError) -> JSONValue {
        try bytes.withUnsafeBufferPointer { (buf) throws(SyntaxError) -> JSONValue in
            var reader = JSONReader(buf)
            return try reader.document()
        }
    }

    private let b: UnsafeBufferPointer<UInt8>
    private var i = 0
    private var depth = 0

    private init(_ b: UnsafeBufferPointer<UInt8>) { self.b = b }

    private mutating func document() throws(SyntaxError) -> JSONValue {
        if b.count >= 3 && b[0] == 0xEF && b[1] == 0xBB && b[2] == 0xBF { i = 3 }  // UTF-8 BOM
        skipSpace()
        if i == b.count { throw fail(i == 0 ? "empty document" : "no JSON value (only whitespace)") }
        let v = try value()
        skipSpace()
        if i < b.count { throw fail("unexpected \(describe(b[i])) after the JSON value") }
        return v
    }

    private mutating func value() throws(SyntaxError) -> JSONValue {
        guard i < b.count else { throw fail("unexpected end of input, expected a value") }
        switch b[i] {
        case UInt8(ascii: "{"): return try object()
        case UInt8(ascii: "["): return try array()
        case UInt8(ascii: "\""): return .string(try string())
        case UInt8(ascii: "t"): try literal("true"); return .bool(true)
        case UInt8(ascii: "f"): try literal("false"); return .bool(false)
        case UInt8(ascii: "n"): try literal("null"); return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return try number()
        default: throw fail("unexpected \(describe(b[i])), expected a value")
        }
    }

    private mutating func object() throws(SyntaxError) -> JSONValue {
        try enter()
        i += 1
        var out: [String: JSONValue] = [:]
        skipSpace()
        if peek(UInt8(ascii: "}")) { i += 1; depth -= 1; return .object(out) }
        while true {
            skipSpace()
            guard peek(UInt8(ascii: "\"")) else { throw fail(expected: "a string key") }
            let key = try string()
            skipSpace()
            guard peek(UInt8(ascii: ":")) else { throw fail(expected: "':'") }
            i += 1
            skipSpace()
            out[key] = try value()  // duplicate keys: the last one wins, as in Go
            skipSpace()
            if peek(UInt8(ascii: ",")) { i += 1; continue }
            if peek(UInt8(ascii: "}")) { i += 1; depth -= 1; return .object(out) }
            throw fail(expected: "',' or '}'")
        }
    }

    private mutating func array() throws(SyntaxError) -> JSONValue {
        try enter()
        i += 1
        var out: [JSONValue] = []
        skipSpace()
        if peek(UInt8(ascii: "]")) { i += 1; depth -= 1; return .array(out) }
        while true {
            skipSpace()
            out.append(try value())
            skipSpace()
            if peek(UInt8(ascii: ",")) { i += 1; continue }
            if peek(UInt8(ascii: "]")) { i += 1; depth -= 1; return .array(out) }
            throw fail(expected: "',' or ']'")
        }
    }

    private mutating func string() throws(SyntaxError) -> String {
        let start = i
        i += 1  // opening quote
        var bytes: [UInt8] = []
        while true {
            guard i < b.count else {
                i = start
                throw fail("unterminated string")
            }
            let c = b[i]
            switch c {
            case UInt8(ascii: "\""):
                i += 1
                guard let s = String(validating: bytes, as: UTF8.self) else {
                    i = start
                    throw fail("string is not valid UTF-8")
                }
                return s
            case UInt8(ascii: "\\"):
                try escape(into: &bytes)
            case 0..<0x20:
                throw fail("control character in string (must be escaped)")
            default:
                bytes.append(c)
                i += 1
            }
        }
    }

    private mutating func escape(into bytes: inout [UInt8]) throws(SyntaxError) {
        i += 1
        guard i < b.count else { throw fail("unterminated escape") }
        let c = b[i]
        i += 1
        switch c {
        case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): bytes.append(c)
        case UInt8(ascii: "b"): bytes.append(0x08)
        case UInt8(ascii: "f"): bytes.append(0x0C)
        case UInt8(ascii: "n"): bytes.append(0x0A)
        case UInt8(ascii: "r"): bytes.append(0x0D)
        case UInt8(ascii: "t"): bytes.append(0x09)
        case UInt8(ascii: "u"):
            var scalar = try hex4()
            if (0xD800...0xDBFF).contains(scalar) {
                // A high surrogate must be followed by an escaped low surrogate.
                guard i + 1 < b.count, b[i] == UInt8(ascii: "\\"), b[i + 1] == UInt8(ascii: "u") else {
                    throw fail("unpaired surrogate in \\u escape")
                }
                i += 2
                let low = try hex4()
                guard (0xDC00...0xDFFF).contains(low) else { throw fail("unpaired surrogate in \\u escape") }
                scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
            } else if (0xDC00...0xDFFF).contains(scalar) {
                throw fail("unpaired surrogate in \\u escape")
            }
            bytes.append(contentsOf: Array(String(Character(Unicode.Scalar(scalar)!)).utf8))
        default:
            i -= 1
            throw fail("invalid escape \\\(Character(Unicode.Scalar(c)))")
        }
    }

    private mutating func hex4() throws(SyntaxError) -> UInt32 {
        var v: UInt32 = 0
        for _ in 0..<4 {
            guard i < b.count else { throw fail("unterminated \\u escape") }
            let c = b[i]
            let d: UInt8
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): d = c - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): d = c - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): d = c - UInt8(ascii: "A") + 10
            default: throw fail("invalid hex digit in \\u escape")
            }
            v = v << 4 | UInt32(d)
            i += 1
        }
        return v
    }

    private mutating func number() throws(SyntaxError) -> JSONValue {
        let start = i
        var integral = true
        if peek(UInt8(ascii: "-")) { i += 1 }
        guard i < b.count, isDigit(b[i]) else { throw fail("invalid number") }
        if b[i] == UInt8(ascii: "0") {
            i += 1
            if i < b.count, isDigit(b[i]) { throw fail("invalid number (leading zero)") }
        } else {
            while i < b.count, isDigit(b[i]) { i += 1 }
        }
        if peek(UInt8(ascii: ".")) {
            integral = false
            i += 1
            guard i < b.count, isDigit(b[i]) else { throw fail("invalid number (digit expected after '.')") }
            while i < b.count, isDigit(b[i]) { i += 1 }
        }
        if i < b.count, b[i] == UInt8(ascii: "e") || b[i] == UInt8(ascii: "E") {
            integral = false
            i += 1
            if i < b.count, b[i] == UInt8(ascii: "+") || b[i] == UInt8(ascii: "-") { i += 1 }
            guard i < b.count, isDigit(b[i]) else { throw fail("invalid number (digit expected in exponent)") }
            while i < b.count, isDigit(b[i]) { i += 1 }
        }
        let text = String(decoding: UnsafeBufferPointer(rebasing: b[start..<i]), as: UTF8.self)
        if integral, let v = Int64(text) { return .int(v) }
        guard let d = Double(text) else {
            i = start
            throw fail("invalid number")
        }
        return .double(d)
    }

    private mutating func literal(_ word: StaticString) throws(SyntaxError) {
        let n = word.utf8CodeUnitCount
        let w = UnsafeBufferPointer(start: word.utf8Start, count: n)
        guard i + n <= b.count, b[i..<(i + n)].elementsEqual(w) else {
            throw fail("unexpected \(describe(b[i])), expected a value")
        }
        i += n
    }

    private mutating func enter() throws(SyntaxError) {
        depth += 1
        if depth > Self.maxDepth { throw fail("nesting deeper than \(Self.maxDepth) levels") }
    }

    private mutating func skipSpace() {
        while i < b.count {
            switch b[i] {
            case 0x20, 0x09, 0x0A, 0x0D: i += 1
            default: return
            }
        }
    }

    private func peek(_ c: UInt8) -> Bool { i < b.count && b[i] == c }
    private func isDigit(_ c: UInt8) -> Bool { c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9") }

    private func describe(_ c: UInt8) -> String {
        if c >= 0x21 && c < 0x7F { return "'\(Character(Unicode.Scalar(c)))'" }
        return "byte 0x\(String(c, radix: 16))"
    }

    private func fail(expected what: String) -> SyntaxError {
        if i >= b.count { return fail("unexpected end of input, expected \(what)") }
        return fail("unexpected \(describe(b[i])), expected \(what)")
    }

    /// Error at the current offset; line and column are counted up to it (the error path only).
    private func fail(_ message: String) -> SyntaxError {
        var line = 1
        var column = 1
        for k in 0..<min(i, b.count) {
            let c = b[k]
            if c == 0x0A {
                line += 1; column = 1
            } else if c & 0xC0 != 0x80 {  // count characters, not UTF-8 continuation bytes
                column += 1
            }
        }
        return SyntaxError(line: line, column: column, message: message)
    }
}
