#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// The last few broadcast push requests, by sequence number. A full push publishes its
/// request here once; each connection then only records "pending up to seq", and the
/// dispatcher merges a connection's range when it dequeues it (usually one entry).
public final class RequestLog: Sendable {
    final class Slot: Sendable {
        let entry = Mutex<(seq: UInt64, request: PushRequest?)>((0, nil))
    }

    private let slots: [Slot]
    private let mask: UInt64
    private let head = Atomic<UInt64>(0)

    public init(capacity requested: Int = 1024) {
        var c = 2
        while c < requested { c <<= 1 }
        slots = (0..<c).map { _ in Slot() }
        mask = UInt64(c - 1)
    }

    /// The newest published sequence number (0: none).
    public var latest: UInt64 { head.load(ordering: .acquiring) }

    public func publish(_ request: PushRequest) -> UInt64 {
        let seq = head.wrappingAdd(1, ordering: .acquiringAndReleasing).newValue
        var r = request
        r.traceFrom = seq
        r.traceSeq = seq
        slots[Int(seq & mask)].entry.withLock { $0 = (seq, r) }
        // Older entries keep their keys and reasons, but point at the newest snapshot: a merge
        // takes the last entry's PushContext anyway, and otherwise the log would keep a whole
        // ring of old PushContexts (with their response caches) alive.
        if let newest = request.push {
            for slot in slots {
                slot.entry.withLock { e in
                    guard e.seq < seq, let old = e.request?.push, old !== newest, old.version < newest.version else { return }
                    e.request?.push = newest
                }
            }
        }
        return seq
    }

    public enum Lookup { case found(PushRequest), overwritten }

    /// The request published as `seq`. A slot still being written by a concurrent publish is
    /// waited for; one already reused by a newer request reports `overwritten`.
    public func lookup(_ seq: UInt64) -> Lookup {
        let slot = slots[Int(seq & mask)]
        while true {
            let (s, r) = slot.entry.withLock { $0 }
            if s == seq, let r { return .found(r) }
            if s > seq { return .overwritten }
            sched_yield()
        }
    }

    /// Everything published in (after, upTo], merged in order (oldest start, newest push). A
    /// connection that fell more than the log's size behind gets a forced full push instead,
    /// which is always a correct superset.
    public func merged(after: UInt64, upTo: UInt64) -> PushRequest? {
        guard upTo > after else { return nil }
        var result: PushRequest?
        var seq = after + 1
        while seq <= upTo {
            switch lookup(seq) {
            case let .found(r):
                result = PushRequest.copyMerge(result, r)
            case .overwritten:
                var newest: PushRequest?
                if case let .found(r) = lookup(upTo) { newest = r }
                return PushRequest(full: true, forced: true, configsUpdated: [], reason: [.unknown: 1],
                                   start: result?.start ?? newest?.start ?? MonotonicClock.nanos(), push: newest?.push)
            }
            seq += 1
        }
        return result
    }
}
