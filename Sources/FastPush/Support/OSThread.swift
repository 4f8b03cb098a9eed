#if canImport(Glibc)
import Glibc
#endif
import CUring

/// A thread we own (the push and I/O paths run on these, never on a concurrency pool).
public struct OSThread: Sendable {
    private final class Box {
        let name: String
        let body: @Sendable () -> Void
        init(name: String, body: @escaping @Sendable () -> Void) { self.name = name; self.body = body }
    }

    private let handle: pthread_t

    @discardableResult
    public static func spawn(name: String, _ body: @escaping @Sendable () -> Void) -> OSThread {
        let box = Unmanaged.passRetained(Box(name: name, body: body)).toOpaque()
        var tid = pthread_t()
        let rc = pthread_create(&tid, nil, { arg in
            let box = Unmanaged<Box>.fromOpaque(arg!).takeRetainedValue()
            // Linux limits thread names to 15 bytes.
            _ = pthread_setname_np(pthread_self(), String(box.name.prefix(15)))
            box.body()
            return nil
        }, box)
        precondition(rc == 0, "pthread_create failed: \(rc)")
        return OSThread(handle: tid)
    }

    /// Waits for the thread to end. Every long-lived thread is joined by whoever stops it.
    public func join() { pthread_join(handle, nil) }

    /// For a thread that stops itself and cannot be joined by anyone.
    public func detach() { pthread_detach(handle) }

    public var isCurrent: Bool { pthread_equal(handle, pthread_self()) != 0 }

    /// Sleeps the calling thread (coordination loops, never the I/O path).
    public static func sleep(nanos n: UInt64) {
        var ts = timespec(tv_sec: Int(n / 1_000_000_000), tv_nsec: Int(n % 1_000_000_000))
        var rest = timespec()
        while nanosleep(&ts, &rest) != 0 && errno == EINTR { ts = rest }
    }
}
