#if canImport(Glibc)
import Glibc
#endif

/// Called once the bytes queued before it have all been accepted by the kernel (`true`) or
/// dropped because the connection closed (`false`).
public typealias WriteCompletion = (Bool) -> Void

/// Bytes queued for one socket, in order. Small pieces (frame headers, prefixes, control frames)
/// are copied into chunks; shared response bodies are referenced without copying. A send takes
/// a prefix of the queue as an iovec array.
public struct OutboundBuffer {
    struct Piece {
        var base: UnsafeRawPointer
        var count: Int
        var owner: AnyObject
    }

    /// Owns the memory of copied small pieces, in the same allocation as the object itself.
    /// Released when its last piece is sent.
    final class Chunk: ManagedBuffer<Int, UInt8> {
        static func make(capacity: Int) -> Chunk {
            unsafeDowncast(Chunk.create(minimumCapacity: capacity) { _ in 0 }, to: Chunk.self)
        }
        var base: UnsafeMutableRawPointer { withUnsafeMutablePointerToElements { UnsafeMutableRawPointer($0) } }
        var used: Int {
            get { header }
            set { header = newValue }
        }
    }

    static let chunkSize = 4096

    private var pieces: [Piece] = []
    private var head = 0
    private var chunk: Chunk?
    private var completions: [(position: UInt64, fn: WriteCompletion)] = []
    private var completionHead = 0
    /// Total bytes ever appended / sent; completions are positions on this axis.
    public private(set) var appended: UInt64 = 0
    public private(set) var sent: UInt64 = 0

    public init() {}

    public var pendingBytes: Int { Int(appended &- sent) }
    public var isEmpty: Bool { appended == sent }
    public var pendingCompletions: Int { completions.count - completionHead }

    // MARK: appending

    /// Reserves `count` bytes in a chunk and lets `fill` write them in place.
    public mutating func appendBytes(count: Int, _ fill: (UnsafeMutableRawBufferPointer) -> Void) {
        guard count > 0 else { return }
        if count > OutboundBuffer.chunkSize / 2 {
            // Large copied data (rare: big control frames) gets a chunk of its own.
            let c = Chunk.make(capacity: count)
            fill(UnsafeMutableRawBufferPointer(start: c.base, count: count))
            c.used = count
            pushPiece(Piece(base: UnsafeRawPointer(c.base), count: count, owner: c))
            return
        }
        if chunk == nil || chunk!.capacity - chunk!.used < count {
            chunk = Chunk.make(capacity: OutboundBuffer.chunkSize)
        }
        let c = chunk!
        let dst = c.base + c.used
        fill(UnsafeMutableRawBufferPointer(start: dst, count: count))
        c.used += count
        // Adjacent copies in the same chunk become one iovec.
        if head < pieces.count, let last = pieces.last, last.owner === c,
           last.base + last.count == UnsafeRawPointer(dst) {
            pieces[pieces.count - 1].count += count
            appended &+= UInt64(count)
        } else {
            pushPiece(Piece(base: UnsafeRawPointer(dst), count: count, owner: c))
        }
    }

    public mutating func append(copying bytes: UnsafeRawBufferPointer) {
        guard bytes.count > 0 else { return }
        appendBytes(count: bytes.count) { dst in dst.copyMemory(from: bytes) }
    }

    public mutating func append(copying bytes: [UInt8]) {
        bytes.withUnsafeBytes { append(copying: $0) }
    }

    /// Appends without copying: the slice's storage is retained until it is sent.
    public mutating func append(_ slice: ByteSlice) {
        guard slice.count > 0 else { return }
        pushPiece(Piece(base: slice.storage.base + slice.offset, count: slice.count, owner: slice.storage))
    }

    private mutating func pushPiece(_ p: Piece) {
        pieces.append(p)
        appended &+= UInt64(p.count)
    }

    /// `fn` runs when everything appended so far has been sent. If nothing is pending it runs now.
    public mutating func onSent(_ fn: @escaping WriteCompletion) {
        if appended == sent {
            fn(true)
        } else {
            completions.append((appended, fn))
        }
    }

    // MARK: sending

    /// Describes up to `capacity` pieces (and at most `maxBytes`) as iovecs.
    public func fill(_ iov: UnsafeMutablePointer<iovec>, capacity: Int, maxBytes: Int) -> (count: Int, bytes: Int) {
        var n = 0
        var bytes = 0
        var i = head
        while i < pieces.count && n < capacity && bytes < maxBytes {
            let p = pieces[i]
            let take = min(p.count, maxBytes - bytes)
            iov[n] = iovec(iov_base: UnsafeMutableRawPointer(mutating: p.base), iov_len: take)
            n += 1
            bytes += take
            i += 1
        }
        return (n, bytes)
    }

    /// Marks `count` bytes as sent, releases their storage and runs completions now due.
    public mutating func consume(_ count: Int) {
        var left = count
        while left > 0 && head < pieces.count {
            let c = pieces[head].count
            if c <= left {
                left -= c
                head += 1
            } else {
                pieces[head].base += left
                pieces[head].count -= left
                left = 0
            }
        }
        sent &+= UInt64(count)
        if head == pieces.count {
            // Drained: hold no memory while idle.
            pieces = []
            head = 0
            chunk = nil
        } else if head > 64 && head * 2 > pieces.count {
            pieces.removeFirst(head)
            head = 0
        }
        runCompletions(success: true)
    }

    /// Marks `count` bytes as taken by a layer below (TLS encrypted them into `next`): the
    /// completions now due move to `next`, to run when its bytes are sent.
    public mutating func consume(_ count: Int, movingCompletionsTo next: inout OutboundBuffer) {
        let through = sent &+ UInt64(count)
        while completionHead < completions.count && completions[completionHead].position <= through {
            next.onSent(completions[completionHead].fn)
            completionHead += 1
        }
        consume(count)  // none left due: it only releases the bytes
    }

    private mutating func runCompletions(success: Bool) {
        while completionHead < completions.count && completions[completionHead].position <= sent {
            let fn = completions[completionHead].fn
            completionHead += 1
            fn(success)
        }
        if completionHead == completions.count {
            completions = []
            completionHead = 0
        }
    }

    /// Drops everything (the connection closed). Pending completions run with `false`.
    public mutating func fail() {
        pieces = []
        head = 0
        chunk = nil
        sent = appended
        let pending = completions[completionHead...].map(\.fn)
        completions = []
        completionHead = 0
        for fn in pending { fn(false) }
    }

    /// Copies everything pending into an array and marks it sent (tests and the sans-I/O path).
    public mutating func drain() -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(pendingBytes)
        for i in head..<pieces.count {
            out.append(contentsOf: UnsafeRawBufferPointer(start: pieces[i].base, count: pieces[i].count))
        }
        consume(out.count)
        return out
    }
}
