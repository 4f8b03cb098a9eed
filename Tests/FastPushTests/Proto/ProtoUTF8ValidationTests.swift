import Testing
@testable import FastPush

@Suite struct ProtoUTF8ValidationTests {
    func valid(_ bytes: [UInt8]) -> Bool { bytes.withUnsafeBufferPointer { UTF8Validation.isValid($0) } }

    @Test func knownSequences() {
        let good: [[UInt8]] = [
            [], Array("plain ascii, longer than eight bytes".utf8), [0xC2, 0x80], [0xDF, 0xBF],
            [0xE0, 0xA0, 0x80], [0xED, 0x9F, 0xBF], [0xEE, 0x80, 0x80], [0xEF, 0xBF, 0xBF],
            [0xF0, 0x90, 0x80, 0x80], [0xF4, 0x8F, 0xBF, 0xBF], Array("值 🚀 ünïcødé".utf8),
        ]
        let bad: [[UInt8]] = [
            [0x80], [0xBF], [0xC0, 0x80], [0xC1, 0xBF], [0xC2], [0xC2, 0x41], [0xE0, 0x80, 0x80],
            [0xE0, 0x9F, 0xBF], [0xED, 0xA0, 0x80], [0xED, 0xBF, 0xBF], [0xE2, 0x82], [0xE2, 0x82, 0x41],
            [0xF0, 0x80, 0x80, 0x80], [0xF0, 0x8F, 0xBF, 0xBF], [0xF4, 0x90, 0x80, 0x80], [0xF5, 0x80, 0x80, 0x80],
            [0xF0, 0x90, 0x80], [0xFE], [0xFF], Array("12345678".utf8) + [0xFF] + Array("abcdefgh".utf8),
        ]
        for b in good { #expect(valid(b), "\(b)") }
        for b in bad { #expect(!valid(b), "\(b)") }
    }

    /// Agrees with the standard library on random byte strings biased towards non-ASCII.
    @Test func matchesStandardLibrary() {
        var rng = SeededGenerator(seed: 99)
        var validCount = 0
        for _ in 0..<20_000 {
            let n = Int.random(in: 0...24, using: &rng)
            let bytes: [UInt8] = (0..<n).map { _ in
                switch Int.random(in: 0...3, using: &rng) {
                case 0: UInt8.random(in: 0x20...0x7E, using: &rng)
                case 1: UInt8.random(in: 0x80...0xBF, using: &rng)
                case 2: UInt8.random(in: 0xC0...0xF7, using: &rng)
                default: UInt8.random(in: 0...255, using: &rng)
                }
            }
            let stdlib = String(validating: bytes, as: UTF8.self) != nil
            #expect(valid(bytes) == stdlib, "\(bytes)")
            if stdlib { validCount += 1 }
            if let s = bytes.withUnsafeBufferPointer({ UTF8Validation.string(from: $0) }) {
                #expect(Array(s.utf8) == bytes)
            }
        }
        #expect(validCount > 500)  // both outcomes exercised
    }
}
