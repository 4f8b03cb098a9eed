import Testing
@testable import FastPush

/// Each malformed input must fail with the specific error, never trap.
@Suite struct ProtoDecodingErrorTests {
    func decodeRequest(_ bytes: [UInt8]) throws(ProtoDecodingError) { _ = try DiscoveryRequest(decoding: bytes) }

    @Test func truncatedVarint() {
        #expect(throws: ProtoDecodingError.truncatedVarint) { try decodeRequest([0x80]) }          // key
        #expect(throws: ProtoDecodingError.truncatedVarint) { try decodeRequest([0x0A]) }          // length missing
        #expect(throws: ProtoDecodingError.truncatedVarint) { try decodeRequest([0x0A, 0x85]) }    // length cut
        // error_detail.code cut short inside a nested message
        #expect(throws: ProtoDecodingError.truncatedVarint) { try decodeRequest([0x32, 0x02, 0x08, 0xFF]) }
        #expect(throws: ProtoDecodingError.truncatedVarint) {
            try decodeRequest([0x38] + [UInt8](repeating: 0xFF, count: 9))  // unknown varint field 7, 9 bytes
        }
    }

    @Test func varintTooLong() {
        let eleven = [UInt8](repeating: 0x80, count: 10) + [0x01]
        #expect(throws: ProtoDecodingError.varintTooLong) { try decodeRequest([0x38] + eleven) }
        #expect(throws: ProtoDecodingError.varintTooLong) { try decodeRequest(eleven) }  // as a key
        // 10 bytes whose last carries more than bit 63: overflow.
        #expect(throws: ProtoDecodingError.varintTooLong) {
            try decodeRequest([0x38] + [UInt8](repeating: 0xFF, count: 9) + [0x02])
        }
        // The largest legal varint still decodes.
        #expect(throws: Never.self) { try decodeRequest([0x38] + [UInt8](repeating: 0xFF, count: 9) + [0x01]) }
    }

    @Test func invalidWireTypes() {
        #expect(throws: ProtoDecodingError.invalidWireType(6)) { try decodeRequest([0x0E, 0x00]) }
        #expect(throws: ProtoDecodingError.invalidWireType(7)) { try decodeRequest([0x0F, 0x00]) }
        #expect(throws: ProtoDecodingError.invalidWireType(3)) { try decodeRequest([0x3B, 0x3C]) }  // group 7
        #expect(throws: ProtoDecodingError.invalidWireType(4)) { try decodeRequest([0x3C]) }
        #expect(throws: ProtoDecodingError.invalidWireType(3)) { try read([0x00]) { r throws(ProtoDecodingError) in try r.skip(wireType: .startGroup) } }
    }

    @Test func wrongWireTypeForKnownField() {
        #expect(throws: ProtoDecodingError.wrongWireType(field: 1, expected: .lengthDelimited, actual: .varint)) {
            try decodeRequest([0x08, 0x01])
        }
        #expect(throws: ProtoDecodingError.wrongWireType(field: 2, expected: .lengthDelimited, actual: .fixed32)) {
            try decodeRequest([0x15, 0, 0, 0, 0])
        }
        // google.rpc.Status.code (varint) sent as length-delimited
        #expect(throws: ProtoDecodingError.wrongWireType(field: 1, expected: .varint, actual: .lengthDelimited)) {
            try decodeRequest([0x32, 0x02, 0x0A, 0x00])
        }
        // Value.number_value must be fixed64
        #expect(throws: ProtoDecodingError.wrongWireType(field: 2, expected: .fixed64, actual: .varint)) {
            _ = try ProtoValue(decoding: [0x10, 0x01])
        }
    }

    @Test func lengthPastEnd() {
        #expect(throws: ProtoDecodingError.lengthPastEnd(length: 5, remaining: 1)) { try decodeRequest([0x0A, 0x05, 0x61]) }
        #expect(throws: ProtoDecodingError.lengthPastEnd(length: 0xFFFF_FFFF, remaining: 0)) {
            try decodeRequest([0x0A, 0xFF, 0xFF, 0xFF, 0xFF, 0x0F])
        }
        #expect(throws: ProtoDecodingError.lengthPastEnd(length: UInt64.max, remaining: 0)) {
            try decodeRequest([0x0A] + [UInt8](repeating: 0xFF, count: 9) + [0x01])
        }
        // A nested message may not reach past its parent, even if the outer buffer has bytes.
        #expect(throws: ProtoDecodingError.lengthPastEnd(length: 4, remaining: 0)) {
            try decodeRequest([0x12, 0x02, 0x0A, 0x04, 0x61, 0x62, 0x63, 0x64])
        }
        #expect(throws: ProtoDecodingError.lengthPastEnd(length: 8, remaining: 3)) { try decodeRequest([0x39, 1, 2, 3]) }
        #expect(throws: ProtoDecodingError.lengthPastEnd(length: 4, remaining: 2)) { try decodeRequest([0x3D, 1, 2]) }
    }

    @Test func invalidUTF8() {
        #expect(throws: ProtoDecodingError.invalidUTF8(field: 1)) { try decodeRequest([0x0A, 0x02, 0xC3, 0x28]) }
        #expect(throws: ProtoDecodingError.invalidUTF8(field: 3)) { try decodeRequest([0x1A, 0x01, 0xFF]) }
        // Surrogate code point encoded in UTF-8 (ED A0 80) is not valid UTF-8.
        #expect(throws: ProtoDecodingError.invalidUTF8(field: 1)) { try decodeRequest([0x12, 0x05, 0x0A, 0x03, 0xED, 0xA0, 0x80]) }
        // Bytes fields accept anything.
        #expect(throws: Never.self) { _ = try ProtoAny(decoding: [0x12, 0x02, 0xC3, 0x28]) }
    }

    @Test func invalidFieldNumber() {
        #expect(throws: ProtoDecodingError.invalidFieldNumber(0)) { try decodeRequest([0x02, 0x00]) }
        #expect(throws: ProtoDecodingError.invalidFieldNumber(0)) { try decodeRequest([0x00]) }
        #expect(throws: ProtoDecodingError.invalidFieldNumber(0)) { try decodeRequest([0x12, 0x02, 0x00, 0x00]) }
        // A key above UInt32.max: field number 2^29 is out of range.
        #expect(throws: ProtoDecodingError.invalidFieldNumber(1 << 29)) { try decodeRequest([0x80, 0x80, 0x80, 0x80, 0x10]) }
    }

    static func nestedLists(_ depth: Int) -> ProtoValue {
        var v = ProtoValue.string("leaf")
        for _ in 0..<depth { v = .list([v]) }
        return v
    }

    @Test func nestingTooDeep() throws {
        // Value -> ListValue -> Value: two message levels per list. 16 lists = depth 32 = the limit.
        let ok = Self.nestedLists(16).encode()
        #expect(try ProtoValue(decoding: ok) == Self.nestedLists(16))
        #expect(throws: ProtoDecodingError.nestingTooDeep(limit: 32)) { _ = try ProtoValue(decoding: Self.nestedLists(17).encode()) }
        // The limit is configurable.
        #expect(throws: ProtoDecodingError.nestingTooDeep(limit: 4)) { _ = try ProtoValue(decoding: ok, maxDepth: 4) }
        #expect(try ProtoValue(decoding: Self.nestedLists(17).encode(), maxDepth: 34) == Self.nestedLists(17))

        // Through a DiscoveryRequest's node metadata (Struct -> Value -> Struct ...).
        var inner = ProtoStruct(fields: ["k": .string("v")])
        for i in 0..<20 { inner = ProtoStruct(fields: ["level\(i)": .structValue(inner)]) }
        var req = DiscoveryRequest()
        req.node = Node()
        req.node?.metadata = inner
        #expect(throws: ProtoDecodingError.nestingTooDeep(limit: 32)) { _ = try DiscoveryRequest(decoding: req.encode()) }
        #expect(try DiscoveryRequest(decoding: req.encode(), maxDepth: 100) == req)
    }

    @Test func hostileDeepNestingStopsAtTheLimit() {
        // 100,000 nested list_value headers with lengths that claim the rest of the input: a
        // recursive decoder without a limit would overflow the stack.
        // Built from the inside out, alternating ListValue.values (1) and Value.list_value (6);
        // only the headers are generated per level, then laid out outermost first.
        let leaf: [UInt8] = [0x08, 0x00]  // Value{null_value: NULL_VALUE}
        var headers: [[UInt8]] = []
        var size = leaf.count
        for i in 0..<100_000 {
            var w = ProtoWriter(capacity: 16)
            w.writeTag(field: i % 2 == 0 ? 1 : 6, wireType: .lengthDelimited)
            w.writeVarint(UInt64(size))
            headers.append(w.toArray())
            size += w.count
        }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(size)
        for h in headers.reversed() { bytes += h }
        bytes += leaf
        #expect(bytes.count == size)
        #expect(throws: ProtoDecodingError.nestingTooDeep(limit: 32)) { _ = try ProtoValue(decoding: bytes) }
    }

    @Test func descriptionsAreHumanReadable() {
        let all: [ProtoDecodingError] = [
            .truncatedVarint, .varintTooLong, .invalidWireType(6), .invalidWireType(3),
            .wrongWireType(field: 1, expected: .lengthDelimited, actual: .varint),
            .lengthPastEnd(length: 9, remaining: 2), .invalidUTF8(field: 4), .invalidFieldNumber(0),
            .invalidFieldNumber(1 << 30), .nestingTooDeep(limit: 32),
        ]
        let texts = all.map(\.description)
        #expect(Set(texts).count == all.count)
        #expect(texts[4] == "field 1 has wire type varint, expected length-delimited")
        #expect(texts[3].contains("groups"))
        #expect(texts[7].contains("0"))
    }
}
