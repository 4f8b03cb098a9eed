#if canImport(Glibc)
import Glibc
#endif

/// Immutable bytes on the heap. One encoded response body is shared by every stream that
/// writes it, so the storage is reference counted and never copied per stream.
///
/// `@unchecked Sendable`: the storage is written once, before the initializer returns, and is
/// read-only afterwards; ARC keeps it alive while any writer still references it.
public final class SharedBytes: @unchecked Sendable {
    public let base: UnsafeRawPointer
    public let count: Int

    /// Takes ownership of `malloc`ed memory.
    public init(takingOwnershipOf pointer: UnsafeMutableRawPointer, count: Int) {
        self.base = UnsafeRawPointer(pointer)
        self.count = count
    }

    public convenience init(_ bytes: some Collection<UInt8>) {
        let n = bytes.count
        let p = malloc(max(n, 1))!
        let dst = p.bindMemory(to: UInt8.self, capacity: max(n, 1))
        var i = 0
        for b in bytes { dst[i] = b; i += 1 }
        self.init(takingOwnershipOf: p, count: n)
    }

    deinit { free(UnsafeMutableRawPointer(mutating: base)) }

    public var buffer: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base, count: count) }

    public var array: [UInt8] { Array(buffer) }
}

/// A window into `SharedBytes`.
public struct ByteSlice: Sendable {
    public let storage: SharedBytes
    public let offset: Int
    public let count: Int

    public init(_ storage: SharedBytes) {
        self.storage = storage; self.offset = 0; self.count = storage.count
    }

    public init(_ storage: SharedBytes, offset: Int, count: Int) {
        precondition(offset >= 0 && count >= 0 && offset + count <= storage.count)
        self.storage = storage; self.offset = offset; self.count = count
    }

    public var buffer: UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: storage.base + offset, count: count)
    }
}
