/// Splits a stream's DATA into gRPC messages (1-byte compressed flag, 4-byte big-endian length).
/// Whole messages inside one chunk are delivered in place; only a message split across chunks
/// is copied, and never beyond the receive limit. The copy grows with the bytes that arrive, not
/// with the length the prefix announces: a peer that announces 4 MiB and sends 5 bytes costs
/// 5 bytes (plus a small first reservation), so the connection can bound what its streams hold.
public struct GRPCDeframer {
    public enum Failure: Error, Equatable {
        case tooLarge(size: Int, limit: Int)
        case compressed
    }

    public let maxMessageSize: Int
    private var partial: [UInt8] = []
    private var expected = -1   // body length of the partial message once its prefix is known

    public init(maxMessageSize: Int) { self.maxMessageSize = maxMessageSize }

    /// Bytes of a message split across chunks, held until it is complete.
    public var bufferedBytes: Int { partial.count }
    /// What the partial message's buffer has reserved.
    var reservedBytes: Int { partial.capacity }

    /// The first reservation for a split message; it then grows geometrically up to its size.
    static let initialReservation = 64 * 1024

    /// Drops a partial message (the stream ended or was rejected) and its memory.
    public mutating func reset() {
        partial = []
        expected = -1
    }

    /// Calls `deliver` per complete message; stops early if it returns false.
    public mutating func feed(_ data: UnsafeRawBufferPointer, deliver: (UnsafeRawBufferPointer) -> Bool) throws(Failure) {
        var pos = 0
        let n = data.count
        while pos < n {
            if partial.isEmpty {
                // Fast path: a complete message in place.
                if n - pos >= 5 {
                    let len = try Self.header(data, at: pos, limit: maxMessageSize)
                    if n - pos - 5 >= len {
                        if !deliver(UnsafeRawBufferPointer(rebasing: data[(pos + 5)..<(pos + 5 + len)])) { return }
                        pos += 5 + len
                        continue
                    }
                    expected = len
                }
                partial.reserveCapacity(5 + min(max(expected, 0), Self.initialReservation))
            }
            // Slow path: accumulate.
            if expected < 0 {
                let take = min(5 - partial.count, n - pos)
                partial.append(contentsOf: data[pos..<(pos + take)])
                pos += take
                if partial.count < 5 { return }
                let p = partial
                let len = Int(p[1]) << 24 | Int(p[2]) << 16 | Int(p[3]) << 8 | Int(p[4])
                if p[0] != 0 { throw .compressed }
                if len > maxMessageSize { throw .tooLarge(size: len, limit: maxMessageSize) }
                expected = len
            }
            let take = min(5 + expected - partial.count, n - pos)
            if partial.count + take > partial.capacity {
                // Doubling, but never past the message's own size.
                partial.reserveCapacity(min(5 + expected, max(partial.capacity * 2, partial.count + take)))
            }
            partial.append(contentsOf: data[pos..<(pos + take)])
            pos += take
            if partial.count == 5 + expected {
                let keepGoing = partial.withUnsafeBytes { deliver(UnsafeRawBufferPointer(rebasing: $0[5...])) }
                partial = []
                expected = -1
                if !keepGoing { return }
            }
        }
    }

    private static func header(_ d: UnsafeRawBufferPointer, at i: Int, limit: Int) throws(Failure) -> Int {
        if d[i] != 0 { throw .compressed }
        let len = Int(d[i + 1]) << 24 | Int(d[i + 2]) << 16 | Int(d[i + 3]) << 8 | Int(d[i + 4])
        if len > limit { throw .tooLarge(size: len, limit: limit) }
        return len
    }

    /// The 5-byte prefix for an uncompressed message of `length` bytes.
    public static func prefix(length: Int) -> SmallBytes {
        SmallBytes([0, UInt8(truncatingIfNeeded: length >> 24), UInt8(truncatingIfNeeded: length >> 16),
                    UInt8(truncatingIfNeeded: length >> 8), UInt8(truncatingIfNeeded: length)])
    }
}
