import Synchronization

/// A bounded lock-free ring of object references (Dmitry Vyukov's sequence-numbered cells).
/// Producers claim a cell with one CAS on the tail; consumers with one CAS on the head. The
/// push queue uses it with many producers and one consumer, the dispatcher.
///
/// `@unchecked Sendable`: every cell is published by a release store of its sequence number and
/// read after an acquire load of it; positions are atomics. Values are retained while inside.
public final class MPSCRing<T: AnyObject>: @unchecked Sendable {
    private let capacity: Int
    private let mask: Int
    private let sequences: UnsafeMutablePointer<Atomic<Int>>
    private let values: UnsafeMutablePointer<UnsafeMutableRawPointer?>
    /// [0] is the tail (producers), [8] the head (consumers): a cache line apart.
    private let positions: UnsafeMutablePointer<Atomic<Int>>

    public init(capacity requested: Int) {
        var c = 2
        while c < requested { c <<= 1 }
        capacity = c
        mask = c - 1
        sequences = .allocate(capacity: c)
        values = .allocate(capacity: c)
        for i in 0..<c {
            (sequences + i).initialize(to: Atomic(i))
            (values + i).initialize(to: nil)
        }
        positions = .allocate(capacity: 16)
        for i in 0..<16 { (positions + i).initialize(to: Atomic(0)) }
    }

    deinit {
        while pop() != nil {}
        sequences.deinitialize(count: capacity)
        sequences.deallocate()
        values.deallocate()
        positions.deinitialize(count: 16)
        positions.deallocate()
    }

    public var size: Int { capacity }

    /// False if the ring is full.
    public func push(_ value: T) -> Bool {
        let tail = positions
        var pos = tail.pointee.load(ordering: .relaxed)
        while true {
            let cell = pos & mask
            let seq = sequences[cell].load(ordering: .acquiring)
            let dif = seq &- pos
            if dif == 0 {
                let (done, current) = tail.pointee.weakCompareExchange(expected: pos, desired: pos &+ 1, ordering: .relaxed)
                if done {
                    values[cell] = Unmanaged.passRetained(value).toOpaque()
                    sequences[cell].store(pos &+ 1, ordering: .releasing)
                    return true
                }
                pos = current
            } else if dif < 0 {
                return false
            } else {
                pos = tail.pointee.load(ordering: .relaxed)
            }
        }
    }

    public func pop() -> T? {
        let head = positions + 8
        var pos = head.pointee.load(ordering: .relaxed)
        while true {
            let cell = pos & mask
            let seq = sequences[cell].load(ordering: .acquiring)
            let dif = seq &- (pos &+ 1)
            if dif == 0 {
                let (done, current) = head.pointee.weakCompareExchange(expected: pos, desired: pos &+ 1, ordering: .relaxed)
                if done {
                    let raw = values[cell]!
                    values[cell] = nil
                    sequences[cell].store(pos &+ mask &+ 1, ordering: .releasing)
                    return Unmanaged<T>.fromOpaque(raw).takeRetainedValue()
                }
                pos = current
            } else if dif < 0 {
                return nil
            } else {
                pos = head.pointee.load(ordering: .relaxed)
            }
        }
    }

    /// Whether the next cell to pop is published (sequentially consistent, for parking).
    public var isEmpty: Bool {
        let pos = (positions + 8).pointee.load(ordering: .sequentiallyConsistent)
        return sequences[pos & mask].load(ordering: .sequentiallyConsistent) != pos &+ 1
    }
}
