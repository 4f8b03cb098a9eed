/// Repeated fields a decoder keeps as wire bytes instead of decoding: a request that repeats
/// what the stream already sent (an ACK's names) or what thousands of clients send alike (an
/// Envoy's subscription, its resource versions on a reconnect) is recognised by a digest and
/// decoded once, not per stream.
public enum DeferredField {
    /// Appends one length-delimited entry (tag byte, length, bytes) so the normal reader can read
    /// the kept bytes back. The length varint goes straight into the array: through
    /// ProtoWriter.storeVarint and a scratch buffer the request decoder ran 20% slower.
    @inline(__always)
    public static func append(tag: UInt8, _ bytes: UnsafeRawBufferPointer, to wire: inout [UInt8]) {
        wire.append(tag)
        var v = UInt64(bytes.count)
        while v >= 0x80 { wire.append(UInt8(v & 0x7F) | 0x80); v >>= 7 }
        wire.append(UInt8(v))
        wire.append(contentsOf: bytes)
    }

    /// Appends field entries that are already on the wire (a run copied as it is).
    public static func appendEntries(_ bytes: UnsafeRawBufferPointer, to wire: inout [UInt8]) {
        wire.append(contentsOf: bytes)
    }

    /// A fast 64-bit digest (word-at-a-time multiply/xor-shift) for change detection only.
    public static func digest(_ bytes: [UInt8]) -> UInt64 {
        bytes.withUnsafeBytes { digest($0) }
    }

    public static func digest(_ b: UnsafeRawBufferPointer) -> UInt64 {
        var h: UInt64 = 0x243F6A8885A308D3 ^ UInt64(b.count)
        do {
            var i = 0
            while i + 8 <= b.count {
                h = (h ^ b.loadUnaligned(fromByteOffset: i, as: UInt64.self)) &* 0x9E3779B97F4A7C15
                h ^= h >> 29
                i += 8
            }
            var tail: UInt64 = 0
            var shift: UInt64 = 0
            while i < b.count { tail |= UInt64(b[i]) << shift; shift += 8; i += 1 }
            h = (h ^ tail) &* 0x9E3779B97F4A7C15
            h ^= h >> 32
        }
        return h
    }
}
