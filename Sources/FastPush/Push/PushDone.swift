import Synchronization

/// Ends one connection's push exactly once, whichever path gets there first: the write
/// completed, the stream closed, or an error. It marks the connection done in the queue and
/// releases the push slot.
///
/// The slot can also go back on its own, earlier (`releaseSlot`): when the write is stalled on a
/// client that does not read, that client keeps its place in the queue (PROCESSING, so newer
/// changes merge into one follow-up) but not one of the few push slots everybody shares.
public final class PushDone: Sendable {
    private let fired = Atomic<Bool>(false)
    private let slotReleased = Atomic<Bool>(false)
    private let markDone: @Sendable () -> Void
    private let freeSlot: @Sendable () -> Void

    public init(markDone: @escaping @Sendable () -> Void, releaseSlot: @escaping @Sendable () -> Void) {
        self.markDone = markDone
        self.freeSlot = releaseSlot
    }

    public convenience init(_ action: @escaping @Sendable () -> Void) {
        self.init(markDone: action, releaseSlot: {})
    }

    public func callAsFunction() {
        if !fired.exchange(true, ordering: .acquiringAndReleasing) {
            markDone()
            releaseSlot()
        }
    }

    /// Returns the push slot now; true if this call did it.
    @discardableResult
    public func releaseSlot() -> Bool {
        guard !slotReleased.exchange(true, ordering: .acquiringAndReleasing) else { return false }
        freeSlot()
        return true
    }
}
