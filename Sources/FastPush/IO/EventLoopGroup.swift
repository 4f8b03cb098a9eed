#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// Which kernel interface the event loops use.
public enum IOBackend: String, Sendable, Equatable, CaseIterable {
    /// io_uring where it can be set up, epoll where it cannot (see `EventLoopGroup.init`).
    case auto
    case uring
    case epoll

    /// The environment variable that `.auto` reads: `uring`, `epoll` or `auto`.
    public static let environmentName = "FASTPILOT_IO"

    /// "auto", "uring" (also "io_uring", "io-uring") or "epoll", any case; nil otherwise.
    public init?(name: String) {
        switch name.lowercased() {
        case "auto", "": self = .auto
        case "uring", "io_uring", "io-uring", "iouring": self = .uring
        case "epoll": self = .epoll
        default: return nil
        }
    }
}

/// The I/O threads: one loop (and ring, or epoll set) per thread, handed out round-robin.
public final class EventLoopGroup: Sendable {
    public let loops: [any IOLoop]
    /// The backend the loops use: `.uring` or `.epoll`, never `.auto`.
    public let backend: IOBackend
    /// Why `.auto` fell back to epoll (nil if it did not).
    public let fallbackReason: String?
    private let counter = Atomic<Int>(0)

    /// The `SocketError.operation` with which `URingLoop.init` reports a ring it could not set
    /// up (the only error `.auto` falls back on: an eventfd failure is not about io_uring).
    static let uringSetupOperation = "io_uring_queue_init"

    /// `.auto` takes `FASTPILOT_IO` from the environment if it is set, else tries io_uring and
    /// falls back to epoll when the ring cannot be set up (seccomp's EPERM, ENOSYS, ENOMEM from
    /// a locked-memory limit, ...), with one warning. An explicit `.uring` (by argument or by
    /// `FASTPILOT_IO=uring`) that cannot be set up throws.
    public convenience init(threads: Int, config: IOLoopConfig = IOLoopConfig(), backend: IOBackend = .auto) throws {
        try self.init(threads: threads, config: config, backend: backend, environment: ProcessEnv.all()) {
            try URingLoop(index: $0, config: $1)
        }
    }

    /// `makeURing` is injectable so that tests can make ring setup fail.
    init(threads: Int, config: IOLoopConfig, backend requested: IOBackend, environment: [String: String],
         makeURing: (Int, IOLoopConfig) throws -> any IOLoop) throws {
        var backend = requested
        if backend == .auto, let name = environment[IOBackend.environmentName] {
            guard let b = IOBackend(name: name) else {
                throw SocketError(operation: "\(IOBackend.environmentName)=\(name) (expected uring, epoll or auto)", errno: EINVAL)
            }
            backend = b
        }
        let count = max(1, threads)
        var loops: [any IOLoop] = []
        var fallbackReason: String?
        if backend != .epoll {
            do {
                for i in 0..<count { loops.append(try makeURing(i, config)) }
                backend = .uring
            } catch let error as SocketError where backend == .auto && error.operation == EventLoopGroup.uringSetupOperation {
                for l in loops { l.shutdown() }
                loops = []
                fallbackReason = error.description
                backend = .epoll
                Log.warn("io_backend", ["backend": "epoll", "reason": error.description])
            } catch {
                for l in loops { l.shutdown() }
                throw error
            }
        }
        if backend == .epoll {
            do {
                for i in 0..<count { loops.append(try EpollLoop(index: i, config: config)) }
            } catch {
                for l in loops { l.shutdown() }
                throw error
            }
        }
        self.loops = loops
        self.backend = backend
        self.fallbackReason = fallbackReason
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
