/// A resource's content version: a 64-bit hash of its encoded bytes, written as 16 lowercase hex
/// digits. Deterministic (no per-process seed), so a resource keeps its version across streams,
/// workers and server restarts, and a reconnecting client's `initial_resource_versions` can be
/// compared with what the server would send. 0 is never a version: it stands for "unknown".
public enum ContentHash {
    public static func hash(_ bytes: UnsafeRawBufferPointer) -> UInt64 {
        // Word-at-a-time multiply/rotate (in the manner of xxHash64's lanes), then a full
        // avalanche (MurmurHash3's fmix64) so that neighbouring inputs differ in every digit.
        let p1: UInt64 = 0x9E3779B185EBCA87, p2: UInt64 = 0xC2B2AE3D27D4EB4F
        var h: UInt64 = 0x27D4EB2F165667C5 ^ (UInt64(bytes.count) &* p1)
        var i = 0
        while i + 8 <= bytes.count {
            let w = bytes.loadUnaligned(fromByteOffset: i, as: UInt64.self)
            h ^= ((w &* p2) << 31 | (w &* p2) >> 33) &* p1
            h = (h << 27 | h >> 37) &* p1 &+ 0x85EBCA77C2B2AE63
            i += 8
        }
        var tail: UInt64 = 0
        var shift: UInt64 = 0
        while i < bytes.count { tail |= UInt64(bytes[i]) << shift; shift += 8; i += 1 }
        h ^= (tail &* p1 << 23 | tail &* p1 >> 41) &* p2
        h ^= h >> 33; h = h &* 0xFF51AFD7ED558CCD
        h ^= h >> 33; h = h &* 0xC4CEB9FE1A85EC53
        h ^= h >> 33
        return h == 0 ? 1 : h
    }

    public static func hash(_ bytes: SharedBytes) -> UInt64 { hash(bytes.buffer) }

    public static let hexLength = 16

    /// Writes the 16 hex digits of `v` at `p`.
    public static func writeHex(_ v: UInt64, to p: UnsafeMutableRawPointer) {
        let digits: StaticString = "0123456789abcdef"
        let d = digits.utf8Start
        for i in 0..<16 {
            p.storeBytes(of: d[Int((v >> UInt64(60 - 4 * i)) & 0xF)], toByteOffset: i, as: UInt8.self)
        }
    }

    public static func hex(_ v: UInt64) -> String {
        String(unsafeUninitializedCapacity: 16) { buf in
            writeHex(v, to: UnsafeMutableRawPointer(buf.baseAddress!))
            return 16
        }
    }

    /// A client's version string back to a hash: anything that is not 16 hex digits (Istio sends
    /// "", other servers their own schemes) is 0, unknown, and never equals a current version.
    public static func parse(_ s: String) -> UInt64 {
        var v: UInt64 = 0
        var n = 0
        for c in s.utf8 {
            let d: UInt8
            switch c {
            case 0x30...0x39: d = c - 0x30
            case 0x61...0x66: d = c - 0x61 + 10
            default: return 0
            }
            v = v << 4 | UInt64(d)
            n += 1
            if n > 16 { return 0 }
        }
        return n == 16 ? v : 0
    }
}
