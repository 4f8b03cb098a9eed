import Synchronization

/// Ends one connection's push exactly once, whichever path gets there first: the write
/// completed, the stream closed, or an error. It marks the connection done in the queue and
/// releases the push slot.
public final class PushDone: Sendable {
    private let fired = Atomic<Bool>(false)
    private let action: @Sendable () -> Void

    public init(_ action: @escaping @Sendable () -> Void) { self.action = action }

    public func callAsFunction() {
        if !fired.exchange(true, ordering: .acquiringAndReleasing) { action() }
    }

    public var hasFired: Bool { fired.load(ordering: .acquiring) }
}
