#if canImport(Glibc)
import Glibc
#endif
import CUring

/// A counting semaphore (futex-backed sem_t). Parks a thread without spinning: the push
/// dispatcher parks on it when the queue is empty and when every push slot is taken.
///
/// `@unchecked Sendable`: sem_t is itself safe to use from any thread; the pointer never changes.
public final class Semaphore: @unchecked Sendable {
    private let sem: UnsafeMutablePointer<sem_t>

    public init(value: Int = 0) {
        sem = .allocate(capacity: 1)
        sem_init(sem, 0, UInt32(value))
    }

    deinit {
        sem_destroy(sem)
        sem.deallocate()
    }

    public func signal() { sem_post(sem) }

    public func wait() {
        while sem_wait(sem) != 0 && errno == EINTR {}
    }

    /// Returns false on timeout.
    public func wait(timeoutNanos: UInt64) -> Bool {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        let total = UInt64(ts.tv_nsec) + timeoutNanos % 1_000_000_000
        ts.tv_sec += Int(timeoutNanos / 1_000_000_000) + Int(total / 1_000_000_000)
        ts.tv_nsec = Int(total % 1_000_000_000)
        while true {
            if sem_clockwait(sem, CLOCK_MONOTONIC, &ts) == 0 { return true }
            if errno == EINTR { continue }
            return false
        }
    }

    public func tryWait() -> Bool { sem_trywait(sem) == 0 }
}
