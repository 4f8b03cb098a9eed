import Testing
@testable import FastPush

@Suite struct ProtoWriterTests {
    static let varintVectors: [(UInt64, [UInt8])] = [
        (0, [0x00]), (1, [0x01]), (127, [0x7F]), (128, [0x80, 0x01]), (150, [0x96, 0x01]),
        (300, [0xAC, 0x02]), (16_383, [0xFF, 0x7F]), (16_384, [0x80, 0x80, 0x01]),
        (UInt64(UInt32.max), [0xFF, 0xFF, 0xFF, 0xFF, 0x0F]),
        (1 << 63, [0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01]),
        (UInt64.max, [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01]),
    ]

    @Test func varintKnownVectors() {
        for (value, bytes) in Self.varintVectors {
            #expect(encodeWith { $0.writeVarint(value) } == bytes, "varint \(value)")
            #expect(ProtoSize.varint(value) == bytes.count, "size of \(value)")
        }
    }

    @Test func varintSizeMatchesWrittenLengthAtEveryBoundary() {
        for shift in 0..<64 {
            for v in [UInt64(1) << shift, (UInt64(1) << shift) &- 1, (UInt64(1) << shift) + 1] {
                #expect(ProtoSize.varint(v) == encodeWith { $0.writeVarint(v) }.count, "\(v)")
            }
        }
    }

    @Test func zigzagKnownValues() {
        #expect(ProtoWriter.zigzag32(0) == 0)
        #expect(ProtoWriter.zigzag32(-1) == 1)
        #expect(ProtoWriter.zigzag32(1) == 2)
        #expect(ProtoWriter.zigzag32(-2) == 3)
        #expect(ProtoWriter.zigzag32(Int32.max) == 0xFFFF_FFFE)
        #expect(ProtoWriter.zigzag32(Int32.min) == 0xFFFF_FFFF)
        #expect(ProtoWriter.zigzag64(-1) == 1)
        #expect(ProtoWriter.zigzag64(Int64.max) == 0xFFFF_FFFF_FFFF_FFFE)
        #expect(ProtoWriter.zigzag64(Int64.min) == UInt64.max)
        for v: Int64 in [0, 1, -1, 12_345, -12_345, .max, .min] {
            #expect(ProtoReader.zigzag64(ProtoWriter.zigzag64(v)) == v)
        }
        for v: Int32 in [0, 1, -1, 77, -77, .max, .min] {
            #expect(ProtoReader.zigzag32(ProtoWriter.zigzag32(v)) == v)
        }
        #expect(encodeWith { $0.writeSInt32(field: 1, -1) } == [0x08, 0x01])
        #expect(encodeWith { $0.writeSInt64(field: 1, -3) } == [0x08, 0x05])
    }

    @Test func fixedWidthIsLittleEndian() {
        #expect(encodeWith { $0.writeFixed32(1) } == [1, 0, 0, 0])
        #expect(encodeWith { $0.writeFixed64(0x0102_0304_0506_0708) } == [8, 7, 6, 5, 4, 3, 2, 1])
        // double 1.0 = 0x3FF0000000000000, field 2 -> key 0x11
        #expect(encodeWith { $0.writeDouble(field: 2, 1.0) } == [0x11, 0, 0, 0, 0, 0, 0, 0xF0, 0x3F])
        // float 1.0 = 0x3F800000, field 1 -> key 0x0D
        #expect(encodeWith { $0.writeFloat(field: 1, 1.0) } == [0x0D, 0, 0, 0x80, 0x3F])
        #expect(encodeWith { $0.writeFixed32(field: 3, 7) } == [0x1D, 7, 0, 0, 0])
        #expect(encodeWith { $0.writeFixed64(field: 3, 7) } == [0x19, 7, 0, 0, 0, 0, 0, 0, 0])
    }

    @Test func tagsCombineFieldAndWireType() {
        #expect(encodeWith { $0.writeTag(field: 1, wireType: .varint) } == [0x08])
        #expect(encodeWith { $0.writeTag(field: 2, wireType: .lengthDelimited) } == [0x12])
        #expect(encodeWith { $0.writeTag(field: 16, wireType: .varint) } == [0x80, 0x01])
        #expect(encodeWith { $0.writeTag(field: 19, wireType: .lengthDelimited) } == [0x9A, 0x01])
        #expect(encodeWith { $0.writeTag(field: 536_870_911, wireType: .fixed32) } == [0xFD, 0xFF, 0xFF, 0xFF, 0x0F])
        #expect(ProtoSize.tag(536_870_911) == 5)
    }

    @Test func negativeInt32IsTenByteVarint() {
        let bytes = encodeWith { $0.writeInt32(field: 1, -1) }
        #expect(bytes == [0x08, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01])
        #expect(ProtoSize.int32(1, -1) == 11)
        #expect(encodeWith { $0.writeInt64(field: 1, -2) }.count == 11)
        #expect(encodeWith { $0.writeInt32(field: 1, 150) } == [0x08, 0x96, 0x01])
    }

    @Test func proto3DefaultsAreSkipped() {
        let bytes = encodeWith { w in
            w.writeUInt32(field: 1, 0); w.writeUInt64(field: 2, 0); w.writeInt32(field: 3, 0)
            w.writeInt64(field: 4, 0); w.writeSInt32(field: 5, 0); w.writeSInt64(field: 6, 0)
            w.writeBool(field: 7, false); w.writeDouble(field: 8, 0); w.writeFloat(field: 9, 0)
            w.writeString(field: 10, ""); w.writeBytes(field: 11, [UInt8]()); w.writePackedVarints(field: 12, [])
            w.writeFixed32(field: 13, 0); w.writeFixed64(field: 14, 0); w.writeEnum(field: 15, 0)
        }
        #expect(bytes.isEmpty)
    }

    @Test func alwaysEmitWritesEmptyStringsAndBytes() {
        #expect(encodeWith { $0.writeString(field: 1, "", alwaysEmit: true) } == [0x0A, 0x00])
        #expect(encodeWith { $0.writeBytes(field: 2, [UInt8](), alwaysEmit: true) } == [0x12, 0x00])
        #expect(ProtoSize.string(1, "", alwaysEmit: true) == 2)
        #expect(ProtoSize.string(1, "") == 0)
    }

    @Test func negativeZeroIsNotTheDefault() {
        #expect(encodeWith { $0.writeDouble(field: 1, -0.0) } == [0x09, 0, 0, 0, 0, 0, 0, 0, 0x80])
        #expect(ProtoSize.double(1, -0.0) == 9)
    }

    @Test func stringsAreUTF8WithLengthPrefix() {
        #expect(encodeWith { $0.writeString(field: 2, "testing") } == [0x12, 0x07] + Array("testing".utf8))
        let s = "值 🚀"
        #expect(encodeWith { $0.writeString(field: 1, s) } == [0x0A, UInt8(s.utf8.count)] + Array(s.utf8))
        #expect(ProtoSize.string(1, s) == 2 + s.utf8.count)
    }

    @Test func packedVarints() {
        #expect(encodeWith { $0.writePackedVarints(field: 4, [3, 270, 86_942]) }
                == [0x22, 0x06, 0x03, 0x8E, 0x02, 0x9E, 0xA7, 0x05])
        #expect(ProtoSize.packedVarints(4, [3, 270, 86_942]) == 8)
    }

    @Test func nestedMessageWithPrecomputedSize() {
        // The protobuf docs' example: Test3{c: Test1{a: 150}} = 1a 03 08 96 01
        let inner = ProtoSize.uint32(1, 150)
        #expect(inner == 3)
        let bytes = encodeWith { w in w.writeMessage(field: 3, size: inner) { $0.writeUInt32(field: 1, 150) } }
        #expect(bytes == [0x1A, 0x03, 0x08, 0x96, 0x01])
        #expect(ProtoSize.message(3, inner) == bytes.count)
    }

    @Test func wrappersAndEmptyMessagesArePresent() {
        #expect(encodeWith { $0.writeEmptyMessage(field: 3) } == [0x1A, 0x00])
        #expect(encodeWith { $0.writeUInt32Wrapper(field: 4, 0) } == [0x22, 0x00])
        #expect(encodeWith { $0.writeUInt32Wrapper(field: 4, 1) } == [0x22, 0x02, 0x08, 0x01])
        #expect(encodeWith { $0.writeBoolWrapper(field: 26, false) } == [0xD2, 0x01, 0x00])
        #expect(encodeWith { $0.writeBoolWrapper(field: 26, true) } == [0xD2, 0x01, 0x02, 0x08, 0x01])
        #expect(ProtoSize.uint32Wrapper(4, 0) == 2)
        #expect(ProtoSize.boolWrapper(26, false) == 3)
    }

    @Test func growsPastInitialCapacityAndFinishesWithoutLosingBytes() {
        var w = ProtoWriter(capacity: 1)
        var expected: [UInt8] = []
        for i in 0..<20_000 {
            w.writeVarint(UInt64(i) * 977)
            var tmp = ProtoWriter(capacity: 16)
            tmp.writeVarint(UInt64(i) * 977)
            expected += tmp.toArray()
        }
        let big = [UInt8](repeating: 0xAB, count: 100_000)
        w.writeRaw(big)
        expected += big
        #expect(w.count == expected.count)
        #expect(w.toArray() == expected)
        let shared = w.finish()
        #expect(shared.count == expected.count)
        #expect(shared.array == expected)
    }

    @Test func fieldSizeHelpersAgreeWithTheWriter() {
        var rng = SeededGenerator(seed: 7)
        for _ in 0..<2_000 {
            let u32 = UInt32.random(in: 0...UInt32.max, using: &rng) >> UInt32.random(in: 0...32, using: &rng)
            let i64 = Int64(bitPattern: rng.next()) >> Int64.random(in: 0...63, using: &rng)
            let i32 = Int32(truncatingIfNeeded: i64)
            let field = Int.random(in: 1...100_000, using: &rng)
            #expect(ProtoSize.uint32(field, u32) == encodeWith { $0.writeUInt32(field: field, u32) }.count)
            #expect(ProtoSize.uint64(field, UInt64(bitPattern: i64)) == encodeWith { $0.writeUInt64(field: field, UInt64(bitPattern: i64)) }.count)
            #expect(ProtoSize.int32(field, i32) == encodeWith { $0.writeInt32(field: field, i32) }.count)
            #expect(ProtoSize.int64(field, i64) == encodeWith { $0.writeInt64(field: field, i64) }.count)
            #expect(ProtoSize.sint32(field, i32) == encodeWith { $0.writeSInt32(field: field, i32) }.count)
            #expect(ProtoSize.sint64(field, i64) == encodeWith { $0.writeSInt64(field: field, i64) }.count)
        }
    }

    @Test func encodeSharedEqualsEncode() {
        let req = Reference.discoveryRequest
        #expect(req.encodeShared().array == req.encode())
        #expect(req.encode().count == req.protoSize)
    }
}
