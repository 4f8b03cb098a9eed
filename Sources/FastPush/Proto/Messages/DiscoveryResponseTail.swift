/// The per-stream part of a DiscoveryResponse: `version_info` (1) and `nonce` (5), appended
/// after a shared `DiscoveryResponseBody`. A few dozen bytes, written straight into the
/// caller's frame buffer with no allocation.
public enum DiscoveryResponseTail {
    public static func size(version: String, nonce: String) -> Int {
        ProtoSize.string(1, version) + ProtoSize.string(5, nonce)
    }

    /// Writes the tail at `p`, which must have room for `size(version:nonce:)` bytes.
    /// Returns the number of bytes written.
    @discardableResult
    public static func encode(version: String, nonce: String, into p: UnsafeMutableRawPointer) -> Int {
        var n = store(field: 1, version, at: p)
        n += store(field: 5, nonce, at: p + n)
        return n
    }

    public static func encode(version: String, nonce: String) -> [UInt8] {
        let size = size(version: version, nonce: nonce)
        return [UInt8](unsafeUninitializedCapacity: size) { buf, initialized in
            initialized = size == 0 ? 0 : encode(version: version, nonce: nonce, into: UnsafeMutableRawPointer(buf.baseAddress!))
        }
    }

    private static func store(field: Int, _ s: String, at p: UnsafeMutableRawPointer) -> Int {
        var s = s
        return s.withUTF8 { utf8 in
            guard utf8.count > 0 else { return 0 }  // proto3: "" is not written
            var n = ProtoWriter.storeVarint(UInt64(field) << 3 | UInt64(WireType.lengthDelimited.rawValue), at: p)
            n += ProtoWriter.storeVarint(UInt64(utf8.count), at: p + n)
            (p + n).copyMemory(from: utf8.baseAddress!, byteCount: utf8.count)
            return n + utf8.count
        }
    }
}
