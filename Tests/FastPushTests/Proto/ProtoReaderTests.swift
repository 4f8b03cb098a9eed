import Testing
@testable import FastPush

@Suite struct ProtoReaderTests {
    @Test func varintKnownVectors() throws {
        for (value, bytes) in ProtoWriterTests.varintVectors {
            let got = try read(bytes) { r throws(ProtoDecodingError) in (try r.readVarint(), r.isAtEnd) }
            #expect(got.0 == value)
            #expect(got.1, "consumed all of \(bytes)")
        }
    }

    @Test func fixedWidth() throws {
        #expect(try read([1, 0, 0, 0]) { r throws(ProtoDecodingError) in try r.readFixed32() } == 1)
        #expect(try read([8, 7, 6, 5, 4, 3, 2, 1]) { r throws(ProtoDecodingError) in try r.readFixed64() }
                == 0x0102_0304_0506_0708)
    }

    @Test func keysAndTypedFields() throws {
        let bytes = encodeWith { w in
            w.writeUInt32(field: 1, 150)
            w.writeString(field: 2, "héllo")
            w.writeDouble(field: 3, -2.5)
            w.writeFloat(field: 4, 0.5)
            w.writeSInt64(field: 5, -1_000_000_000_000)
            w.writeInt32(field: 6, -7)
            w.writeBool(field: 7, true)
            w.writeBytes(field: 8, [0, 255, 1])
            w.writeSInt32(field: 9, -5)
            w.writeInt64(field: 10, Int64.min)
            w.writeUInt64(field: 536_870_911, UInt64.max)
        }
        try read(bytes) { r throws(ProtoDecodingError) in
            var seen: [Int] = []
            while let (field, wt) = try r.next() {
                seen.append(field)
                switch field {
                case 1: #expect(wt == .varint); #expect(try r.uint32Field() == 150)
                case 2: #expect(wt == .lengthDelimited); #expect(try r.stringField() == "héllo")
                case 3: #expect(wt == .fixed64); #expect(try r.doubleField() == -2.5)
                case 4: #expect(wt == .fixed32); #expect(try r.floatField() == 0.5)
                case 5: #expect(try r.sint64Field() == -1_000_000_000_000)
                case 6: #expect(try r.int32Field() == -7)
                case 7: #expect(try r.boolField())
                case 8: #expect(try r.bytesField() == [0, 255, 1])
                case 9: #expect(try r.sint32Field() == -5)
                case 10: #expect(try r.int64Field() == Int64.min)
                case 536_870_911: #expect(try r.uint64Field() == UInt64.max)
                default: Issue.record("unexpected field \(field)")
                }
            }
            #expect(seen == [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 536_870_911])
        }
    }

    @Test func skipsEveryNonGroupWireType() throws {
        let bytes = encodeWith { w in
            w.writeUInt64(field: 1, 1 << 40)
            w.writeFixed64(field: 2, 9)
            w.writeString(field: 3, "skip me")
            w.writeFixed32(field: 4, 9)
            w.writeString(field: 5, "kept")
        }
        let kept = try read(bytes) { r throws(ProtoDecodingError) in
            var kept = ""
            while let (field, _) = try r.next() {
                if field == 5 { kept = try r.stringField() } else { try r.skipField() }
            }
            return kept
        }
        #expect(kept == "kept")
    }

    @Test func repeatedVarintsPackedAndUnpacked() throws {
        let packed: [UInt8] = [0x22, 0x06, 0x03, 0x8E, 0x02, 0x9E, 0xA7, 0x05]
        #expect(try read(packed) { r throws(ProtoDecodingError) in _ = try r.next(); return try r.readPackedVarints() }
                == [3, 270, 86_942] as [UInt64])
        // Mixed packed and unpacked elements of the same field concatenate.
        let mixed: [UInt8] = [0x20, 0x01] + packed + [0x20, 0x02]
        let all = try read(mixed) { r throws(ProtoDecodingError) in
            var out: [UInt64] = []
            while try r.next() != nil { try r.repeatedVarintField(appendingTo: &out) }
            return out
        }
        #expect(all == [1, 3, 270, 86_942, 2])
        #expect(try read([0x22, 0x00]) { r throws(ProtoDecodingError) in _ = try r.next(); return try r.readPackedVarints() } == [] as [UInt64])
    }

    @Test func emptyInputHasNoFields() throws {
        #expect(try read([]) { r throws(ProtoDecodingError) in try r.next() } == nil)
        #expect(try DiscoveryRequest(decoding: [UInt8]()) == DiscoveryRequest())
        #expect(try DiscoveryRequest(decoding: UnsafeRawBufferPointer(start: nil, count: 0)) == DiscoveryRequest())
    }

    @Test func nestedReaderIsBoundedAndOuterContinues() throws {
        // field 1 = message{field 1 = 5}, field 2 = 7
        let bytes: [UInt8] = [0x0A, 0x02, 0x08, 0x05, 0x10, 0x07]
        let (inner, outer, depth) = try read(bytes) { r throws(ProtoDecodingError) in
            _ = try r.next()
            var sub = try r.messageField()
            var inner: [UInt64] = []
            while try sub.next() != nil { inner.append(try sub.uint64Field()) }
            _ = try r.next()
            return (inner, try r.uint64Field(), sub.depth)
        }
        #expect(inner == [5])
        #expect(outer == 7)
        #expect(depth == 1)
    }

    @Test func stringsAreCopiedOut() throws {
        var bytes = encodeWith { $0.writeString(field: 1, "abc") }
        let s = try read(bytes) { r throws(ProtoDecodingError) in _ = try r.next(); return try r.stringField() }
        bytes[2] = UInt8(ascii: "z")
        #expect(s == "abc")
    }
}
