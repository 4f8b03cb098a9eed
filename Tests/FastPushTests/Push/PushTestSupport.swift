#if canImport(Glibc)
import Glibc
#endif
import Synchronization
@testable import FastPush

/// The push queue's item in tests: a connection with nothing but an id. `busy` lets a consumer
/// prove a connection is never processed twice at once.
final class TestConn: PushQueueItem, CustomStringConvertible {
    let pushQueueLink = PushQueueLink()
    let id: Int
    let busy = Atomic<Bool>(false)

    init(_ id: Int) { self.id = id }

    var description: String { "p\(id)" }
}

/// A value shared between test threads, behind a pthread mutex rather than `Mutex`: on Linux
/// `Synchronization.Mutex` is a futex inside the (uninstrumented) standard library, so
/// ThreadSanitizer cannot see it and reports every access it protects as a race. pthread
/// mutexes are intercepted, so the test's own bookkeeping stays visible to TSan.
final class Locked<Value>: @unchecked Sendable {
    // `value` is only touched between pthread_mutex_lock and pthread_mutex_unlock.
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private var stored: Value

    init(_ value: Value) {
        stored = value
        mutex = .allocate(capacity: 1)
        pthread_mutex_init(mutex, nil)
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    func withLock<R>(_ body: (inout Value) -> R) -> R {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return body(&stored)
    }

    var value: Value { withLock { $0 } }
}

/// A counter shared between test threads.
final class Counter: Sendable {
    private let atomic = Atomic<Int>(0)
    init() {}
    @discardableResult func add(_ n: Int = 1) -> Int { atomic.wrappingAdd(n, ordering: .acquiringAndReleasing).newValue }
    var value: Int { atomic.load(ordering: .acquiring) }
}

/// Tracks how many things are in some state at once and the most ever seen.
final class ConcurrencyGauge: Sendable {
    private let current = Atomic<Int>(0)
    private let peak = Atomic<Int>(0)
    init() {}
    func enter() {
        let n = current.wrappingAdd(1, ordering: .acquiringAndReleasing).newValue
        var m = peak.load(ordering: .relaxed)
        while n > m {
            let r = peak.compareExchange(expected: m, desired: n, ordering: .relaxed)
            if r.exchanged { break }
            m = r.original
        }
    }
    func leave() { current.wrappingAdd(-1, ordering: .acquiringAndReleasing) }
    var now: Int { current.load(ordering: .relaxed) }
    var max: Int { peak.load(ordering: .relaxed) }
}

enum PushTest {
    static let ms: UInt64 = 1_000_000
    /// Istio's "blocks": Dequeue does not return within 500 ms.
    static let blockTimeout: UInt64 = 500 * ms

    /// A ServiceEntry key whose name encodes `i` (see `index(of:)`).
    static func key(_ i: Int, namespace: String = "ns") -> ConfigKey {
        ConfigKey(kind: .serviceEntry, name: "svc\(i).example.com", namespace: namespace)
    }

    static func endpointKey(_ i: Int) -> ConfigKey {
        ConfigKey(kind: .endpoints, name: "svc\(i).example.com", namespace: "ns")
    }

    static func index(of key: ConfigKey) -> Int? {
        guard key.name.hasPrefix("svc"), let dot = key.name.firstIndex(of: ".") else { return nil }
        return Int(key.name[key.name.index(key.name.startIndex, offsetBy: 3)..<dot])
    }

    static func request(_ keys: [Int], full: Bool = true, forced: Bool = false,
                        reason: TriggerReason = .config, start: UInt64 = 0) -> PushRequest {
        PushRequest(full: full, forced: forced, configsUpdated: Set(keys.map { key($0) }),
                    reason: [reason: 1], start: start)
    }

    static func sleep(millis: Int) { usleep(UInt32(millis * 1000)) }

    /// Polls `condition` every millisecond until it holds or `timeoutMillis` pass; returns
    /// whether it held. Bounded waits only: no assertion is about speed.
    @discardableResult
    static func waitUntil(timeoutMillis: Int, _ condition: () -> Bool) -> Bool {
        let deadline = MonotonicClock.nanos() &+ UInt64(timeoutMillis) * ms
        while true {
            if condition() { return true }
            if MonotonicClock.nanos() >= deadline { return condition() }
            usleep(1000)
        }
    }

    /// Runs `body(i)` on `count` OS threads at once and waits for all of them.
    static func onThreads(_ count: Int, _ body: @escaping @Sendable (Int) -> Void) {
        let ready = Semaphore()
        let go = Semaphore()
        let threads = (0..<count).map { i in
            OSThread.spawn(name: "fp-test-\(i)") {
                ready.signal()
                go.wait()
                body(i)
            }
        }
        for _ in 0..<count { ready.wait() }
        for _ in 0..<count { go.signal() }
        for t in threads { t.join() }
    }

    /// Whether this process runs under ThreadSanitizer (stress sizes shrink there).
    static let underTSan: Bool = dlsym(nil, "__tsan_init") != nil
}
