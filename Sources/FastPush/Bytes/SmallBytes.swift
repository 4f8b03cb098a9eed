/// Up to 64 bytes stored inline: per-stream framing (gRPC prefix, nonce field) without a heap
/// allocation per message.
public struct SmallBytes: Sendable {
    public static let capacity = 64
    private var storage: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0, 0, 0, 0, 0)
    public private(set) var count: Int = 0

    public init() {}

    public init(_ bytes: some Collection<UInt8>) {
        precondition(bytes.count <= SmallBytes.capacity)
        for b in bytes { append(b) }
    }

    public var remaining: Int { SmallBytes.capacity - count }

    public mutating func append(_ byte: UInt8) {
        precondition(count < SmallBytes.capacity, "SmallBytes overflow")
        let i = count
        withUnsafeMutableBytes(of: &storage) { $0[i] = byte }
        count += 1
    }

    /// Writes up to `max` bytes in place; `fill` returns how many it wrote.
    public mutating func append(max: Int, _ fill: (UnsafeMutableRawBufferPointer) -> Int) {
        precondition(count + max <= SmallBytes.capacity, "SmallBytes overflow")
        let start = count
        let n = withUnsafeMutableBytes(of: &storage) { fill(UnsafeMutableRawBufferPointer(rebasing: $0[start..<start + max])) }
        precondition(n <= max)
        count += n
    }

    public func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try Swift.withUnsafeBytes(of: storage) { try body(UnsafeRawBufferPointer(rebasing: $0[0..<count])) }
    }

    public var array: [UInt8] { withUnsafeBytes { Array($0) } }
}
