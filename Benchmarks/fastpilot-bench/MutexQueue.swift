#if canImport(Glibc)
import Glibc
#endif
import FastPush

/// The baseline: Istio's PushQueue as written (one mutex, one condition variable, a pending map,
/// a FIFO, a processing map), with the same interface as the ring queue.
///
/// `@unchecked Sendable`: every field is guarded by `mutex`.
final class MutexQueue<Item: PushQueueItem>: @unchecked Sendable {
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let cond = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    private var pending: [ObjectIdentifier: PushRequest] = [:]
    private var queue: [Item] = []
    private var head = 0
    private var processing: [ObjectIdentifier: PushRequest?] = [:]
    private var shuttingDown = false
    private var log: [UInt64: PushRequest] = [:]
    private var nextSeq: UInt64 = 0

    init() {
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(cond, nil)
    }

    deinit {
        pthread_mutex_destroy(mutex); pthread_cond_destroy(cond)
        mutex.deallocate(); cond.deallocate()
    }

    /// The same interface as the ring queue's broadcast path.
    func publish(_ r: PushRequest) -> UInt64 {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        nextSeq += 1
        log[nextSeq] = r
        if log.count > 1024 { log.removeValue(forKey: nextSeq - 1024) }
        return nextSeq
    }

    func enqueue(_ item: Item, published seq: UInt64) {
        pthread_mutex_lock(mutex)
        let r = log[seq]!
        pthread_mutex_unlock(mutex)
        enqueue(item, r)
    }

    func enqueue(_ item: Item, _ r: PushRequest) {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        if shuttingDown { return }
        let id = ObjectIdentifier(item)
        if let p = processing[id] {
            if p == nil { processing[id] = .some(r) } else { processing[id]!!.absorb(r) }
            return
        }
        if pending[id] != nil {
            pending[id]!.absorb(r)
            return
        }
        pending[id] = r
        queue.append(item)
        pthread_cond_signal(cond)
    }

    func dequeue() -> (Item, PushRequest)? {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        while head == queue.count && !shuttingDown { pthread_cond_wait(cond, mutex) }
        if head == queue.count { return nil }
        let item = queue[head]
        head += 1
        if head > 1024 && head * 2 > queue.count { queue.removeFirst(head); head = 0 }
        let id = ObjectIdentifier(item)
        let r = pending.removeValue(forKey: id)!
        processing[id] = .some(nil)
        return (item, r)
    }

    func markDone(_ item: Item) {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        let id = ObjectIdentifier(item)
        guard let p = processing.removeValue(forKey: id) else { return }
        if let r = p {
            pending[id] = r
            queue.append(item)
            pthread_cond_signal(cond)
        }
    }

    func shutDown() {
        pthread_mutex_lock(mutex)
        shuttingDown = true
        pthread_cond_broadcast(cond)
        pthread_mutex_unlock(mutex)
    }
}
