import Testing
@testable import FastPush

/// Hostile input: random and mutated bytes must end in a decoded value or a ProtoDecodingError
/// (typed throws makes any other error impossible), never a trap or a hang. Whatever decodes
/// must re-encode to a fixed point.
@Suite struct ProtoRobustnessTests {
    static func check<M: ProtoDecodable & ProtoEncodable>(_ type: M.Type, _ bytes: [UInt8],
                                                          errors: inout [String: Int]) -> Bool {
        do {
            let m = try M(decoding: bytes)
            let once = m.encode()
            #expect(once.count == m.protoSize)
            let again = try M(decoding: once).encode()
            #expect(again == once, "re-encoding is not stable for \(bytes.hex)")
            return true
        } catch {
            errors[String(describing: error).prefix(while: { $0 != "(" }).description, default: 0] += 1
            return false
        }
    }

    @Test func randomBytes() {
        var rng = SeededGenerator(seed: 0x5EED)
        var errors: [String: Int] = [:]
        var decoded = 0
        for i in 0..<20_000 {
            let n = Int.random(in: 0...64, using: &rng)
            var bytes = (0..<n).map { _ in UInt8.random(in: 0...255, using: &rng) }
            // Bias half of the inputs towards plausible keys so decoding gets past the first byte.
            if i % 2 == 0 {
                for j in stride(from: 0, to: bytes.count, by: 3) { bytes[j] = UInt8(Int.random(in: 1...12, using: &rng) << 3) | UInt8(Int.random(in: 0...5, using: &rng)) }
            }
            switch i % 4 {
            case 0: decoded += Self.check(DiscoveryRequest.self, bytes, errors: &errors) ? 1 : 0
            case 1: decoded += Self.check(DiscoveryResponse.self, bytes, errors: &errors) ? 1 : 0
            case 2: decoded += Self.check(ProtoStruct.self, bytes, errors: &errors) ? 1 : 0
            default: decoded += Self.check(Node.self, bytes, errors: &errors) ? 1 : 0
            }
        }
        // The loop must exercise both outcomes and many error kinds.
        #expect(decoded > 100)
        #expect(errors.values.reduce(0, +) > 5_000)
        #expect(errors.count >= 6, "error kinds seen: \(errors)")
    }

    @Test func mutatedValidMessages() {
        var rng = SeededGenerator(seed: 42)
        let seeds: [(any ProtoDecodable.Type, [UInt8])] = [
            (DiscoveryRequest.self, Reference.discoveryRequest.encode()),
            (DiscoveryResponse.self, Reference.discoveryResponse.encode()),
        ]
        var errors: [String: Int] = [:]
        var decoded = 0
        for i in 0..<10_000 {
            let (type, seed) = seeds[i % seeds.count]
            var bytes = seed
            switch Int.random(in: 0...3, using: &rng) {
            case 0: bytes = Array(bytes.prefix(Int.random(in: 0..<bytes.count, using: &rng)))  // truncate
            case 1:  // flip a few bytes
                for _ in 0..<Int.random(in: 1...4, using: &rng) {
                    bytes[Int.random(in: 0..<bytes.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng)
                }
            case 2:  // inflate a byte into a huge varint
                let at = Int.random(in: 0..<bytes.count, using: &rng)
                bytes.replaceSubrange(at..<at + 1, with: [0xFF, 0xFF, 0xFF, 0xFF, 0x0F])
            default:  // drop a range
                let a = Int.random(in: 0..<bytes.count, using: &rng)
                bytes.removeSubrange(a..<min(bytes.count, a + Int.random(in: 1...8, using: &rng)))
            }
            if type == DiscoveryRequest.self {
                decoded += Self.check(DiscoveryRequest.self, bytes, errors: &errors) ? 1 : 0
            } else {
                decoded += Self.check(DiscoveryResponse.self, bytes, errors: &errors) ? 1 : 0
            }
        }
        #expect(decoded > 100)
        #expect(errors.values.reduce(0, +) > 1_000)
    }
}
