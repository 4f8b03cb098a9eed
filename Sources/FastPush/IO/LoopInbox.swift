import Synchronization

/// Tasks posted to a loop from other threads, for both backends. Only the first post after the
/// loop last drained asks for a wake-up, so a burst of `execute` calls costs one eventfd write.
struct LoopInbox: ~Copyable {
    private let tasks = Mutex<[@Sendable () -> Void]>([])
    private let wakePending = Atomic<Bool>(false)

    /// Any thread. True when the caller must wake the loop.
    func post(_ task: @escaping @Sendable () -> Void) -> Bool {
        tasks.withLock { $0.append(task) }
        return !wakePending.exchange(true, ordering: .acquiringAndReleasing)
    }

    /// Loop thread: runs everything posted so far.
    func runAll() {
        wakePending.store(false, ordering: .releasing)
        let batch = tasks.withLock { t -> [@Sendable () -> Void] in
            if t.isEmpty { return [] }
            defer { t = [] }
            return t
        }
        for task in batch { task() }
    }

    /// For an ended loop: what it will never run must not keep its captures alive.
    func removeAll() { tasks.withLock { $0.removeAll() } }
}
