import Synchronization

/// The I/O threads: one loop (and ring) per thread, handed out round-robin.
public final class EventLoopGroup: Sendable {
    public let loops: [any IOLoop]
    private let counter = Atomic<Int>(0)

    public init(threads: Int, config: IOLoopConfig = IOLoopConfig()) throws {
        var loops: [any IOLoop] = []
        for i in 0..<max(1, threads) {
            loops.append(try URingLoop(index: i, config: config))
        }
        self.loops = loops
    }

    public func next() -> any IOLoop {
        loops[counter.wrappingAdd(1, ordering: .relaxed).oldValue % loops.count]
    }

    public func shutdown() {
        for l in loops { l.shutdown() }
    }

    /// Runs `body` on every loop and waits for all of them (metrics, tests).
    public func onEveryLoop<T: Sendable>(_ body: @escaping @Sendable (any IOLoop) -> T) -> [T] {
        let results = Mutex<[T]>([])
        let done = Semaphore()
        for l in loops {
            l.execute {
                let r = body(l)
                results.withLock { $0.append(r) }
                done.signal()
            }
        }
        for _ in loops { done.wait() }
        return results.withLock { $0 }
    }
}
