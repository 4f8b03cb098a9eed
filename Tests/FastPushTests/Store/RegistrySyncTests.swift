import Testing
@testable import FastPush

/// RegistrySync, the list-then-watch state machine, driven by hand: no sockets, no clock.
@Suite struct StoreRegistrySyncTests {
    static func kv(_ name: String, _ rev: Int64, value: String = "v") -> EtcdKeyValue {
        EtcdKeyValue(key: Array("/fastpilot/serviceentries/demo/\(name)".utf8), value: Array(value.utf8),
                     createRevision: rev, modRevision: rev, version: 1)
    }

    static func put(_ name: String, _ rev: Int64) -> EtcdEvent { EtcdEvent(type: .put, kv: kv(name, rev)) }
    static func delete(_ name: String, _ rev: Int64) -> EtcdEvent {
        EtcdEvent(type: .delete, kv: EtcdKeyValue(key: Array("/fastpilot/serviceentries/demo/\(name)".utf8), modRevision: rev))
    }

    static func range(_ revision: Int64, _ kvs: [EtcdKeyValue] = []) -> EtcdRangeResponse {
        var r = EtcdRangeResponse()
        r.header.revision = revision
        r.kvs = kvs
        r.count = Int64(kvs.count)
        return r
    }

    static func watch(_ revision: Int64, _ events: [EtcdEvent] = [], created: Bool = false) -> EtcdWatchResponse {
        var w = EtcdWatchResponse()
        w.header.revision = revision
        w.events = events
        w.created = created
        return w
    }

    static func canceled(compactRevision: Int64 = 0, reason: String = "") -> EtcdWatchResponse {
        var w = EtcdWatchResponse()
        w.canceled = true
        w.compactRevision = compactRevision
        w.cancelReason = reason
        return w
    }

    /// Jitter pinned to its middle: every delay is exactly the base.
    static func pinned(_ value: Double = 0.5, jitter: Double = 0.2) -> Backoff {
        var b = Backoff()
        b.jitter = jitter
        b.random = { value }
        return b
    }

    /// A sync that listed at `revision` and is watching.
    static func watching(at revision: Int64 = 10, backoff: Backoff = pinned()) -> RegistrySync {
        var s = RegistrySync(backoff: backoff)
        _ = s.connected()
        _ = s.listed(range(revision, [kv("a", 2)]))
        return s
    }

    @Test func firstConnectLists() {
        var s = RegistrySync()
        #expect(s.phase == .disconnected)
        #expect(!s.synced && s.revision == 0)
        #expect(s.connected() == [.list])
        #expect(s.phase == .listing)
        #expect(!s.synced)
    }

    @Test func listedReplacesThenWatchesFromTheNextRevision() {
        var s = RegistrySync()
        _ = s.connected()
        let kvs = [Self.kv("a", 3), Self.kv("b", 7)]
        #expect(s.listed(Self.range(9, kvs)) == [.replace(kvs, revision: 9), .watch(fromRevision: 10)])
        #expect(s.phase == .watching)
        #expect(s.revision == 9)
        #expect(s.synced)
        // An empty registry at a revision is a sync too.
        var empty = RegistrySync()
        _ = empty.connected()
        #expect(empty.listed(Self.range(1)) == [.replace([], revision: 1), .watch(fromRevision: 2)])
        #expect(empty.synced)
    }

    @Test func eventsApplyInOrder() {
        var s = Self.watching(at: 10)
        let events = [Self.put("b", 11), Self.delete("a", 12), Self.put("c", 13), Self.put("b", 13)]
        #expect(s.watched(Self.watch(13, events)) == [.apply(events, revision: 13)])
        #expect(s.revision == 13)
        let next = [Self.put("d", 20)]
        #expect(s.watched(Self.watch(25, next)) == [.apply(next, revision: 20)])
        // The header may be ahead of the last event: the revision is the last event's.
        #expect(s.revision == 20)
    }

    @Test func eventsAlreadyAppliedAreDropped() {
        var s = Self.watching(at: 10)
        _ = s.watched(Self.watch(12, [Self.put("b", 11), Self.put("c", 12)]))
        // A resume that overlaps: 11 and 12 again, then 13.
        #expect(s.watched(Self.watch(13, [Self.put("b", 11), Self.put("c", 12), Self.delete("b", 13)]))
                == [.apply([Self.delete("b", 13)], revision: 13)])
        // Only old events (the revision applied included): nothing to do, the revision stays.
        #expect(s.watched(Self.watch(13, [Self.put("c", 12), Self.delete("b", 13)])) == [])
        #expect(s.revision == 13)
        // Older than the list.
        var t = Self.watching(at: 10)
        #expect(t.watched(Self.watch(10, [Self.put("a", 2), Self.put("z", 10)])) == [])
        #expect(t.revision == 10)
    }

    @Test func theCreatedAnswerDoesNotMoveTheRevision() {
        var s = Self.watching(at: 10)
        // etcd answers "created" with its current revision while the replay from 11 is still to come.
        #expect(s.watched(Self.watch(50, created: true)) == [])
        #expect(s.revision == 10)
        #expect(s.phase == .watching)
        // So the replay that follows is applied.
        let replay = [Self.put("b", 11), Self.put("c", 49)]
        #expect(s.watched(Self.watch(50, replay)) == [.apply(replay, revision: 49)])
    }

    @Test func aProgressNotificationMovesTheRevision() {
        var s = Self.watching(at: 10)
        #expect(s.watched(Self.watch(20)) == [])
        #expect(s.revision == 20)
        // Never backwards.
        #expect(s.watched(Self.watch(15)) == [])
        #expect(s.revision == 20)
        // A resume starts after it.
        _ = s.failed()
        #expect(s.connected() == [.watch(fromRevision: 21)])
        // Events at or below it are old.
        #expect(s.watched(Self.watch(21, [Self.put("b", 20), Self.put("c", 21)])) == [.apply([Self.put("c", 21)], revision: 21)])
    }

    @Test func canceledForCompactionListsAgain() {
        var s = Self.watching(at: 10)
        _ = s.watched(Self.watch(12, [Self.put("b", 12)]))
        #expect(s.watched(Self.canceled(compactRevision: 30, reason: "mvcc: required revision has been compacted")) == [.list])
        #expect(s.phase == .listing)
        #expect(s.failures == 0)
        // The registry applied so far is kept until the new list replaces it.
        #expect(s.revision == 12 && s.synced)
        let kvs = [Self.kv("c", 31)]
        #expect(s.listed(Self.range(35, kvs)) == [.replace(kvs, revision: 35), .watch(fromRevision: 36)])
        #expect(s.phase == .watching && s.revision == 35)
    }

    @Test func canceledOtherwiseReconnects() {
        var s = Self.watching(at: 10)
        #expect(s.watched(Self.canceled(reason: "permission denied")) == [.reconnect(afterNanos: 100_000_000)])
        #expect(s.phase == .disconnected)
        #expect(s.failures == 1)
        #expect(s.revision == 10)
        // Late answers of the old connection change nothing.
        #expect(s.watched(Self.watch(11, [Self.put("b", 11)])) == [])
        #expect(s.listed(Self.range(40)) == [])
        #expect(s.revision == 10 && s.phase == .disconnected)
    }

    @Test func afterAFailureConnectedResumesTheWatch() {
        var s = Self.watching(at: 10)
        _ = s.watched(Self.watch(14, [Self.put("b", 14)]))
        #expect(s.failed() == [.reconnect(afterNanos: 100_000_000)])
        #expect(s.connected() == [.watch(fromRevision: 15)])
        #expect(s.phase == .watching)
        // Failures are counted until something succeeds.
        #expect(s.failures == 1)
        _ = s.watched(Self.watch(15, created: true))
        #expect(s.failures == 0)
    }

    @Test func aFailedFirstListListsAgain() {
        var s = RegistrySync(backoff: Self.pinned())
        _ = s.connected()
        #expect(s.failed() == [.reconnect(afterNanos: 100_000_000)])
        #expect(s.phase == .disconnected)
        #expect(s.connected() == [.list])
        #expect(s.failed() == [.reconnect(afterNanos: 200_000_000)])
        #expect(s.connected() == [.list])
        _ = s.listed(Self.range(3))
        #expect(s.failures == 0)
        #expect(s.failed() == [.reconnect(afterNanos: 100_000_000)])
    }

    @Test func backoffGrowsAndIsCapped() {
        var s = Self.watching(at: 10)
        var delays: [UInt64] = []
        for _ in 0..<9 {
            guard case let .reconnect(d)? = s.failed().first else {
                Issue.record("expected a reconnect")
                return
            }
            delays.append(d)
            #expect(s.connected() == [.watch(fromRevision: 11)])
        }
        let ms: UInt64 = 1_000_000
        #expect(delays == [100 * ms, 200 * ms, 400 * ms, 800 * ms, 1600 * ms, 3200 * ms, 5000 * ms, 5000 * ms, 5000 * ms])
        #expect(s.failures == 9)
        // A success starts over.
        _ = s.watched(Self.watch(11, [Self.put("b", 11)]))
        #expect(s.failures == 0)
        #expect(s.failed() == [.reconnect(afterNanos: 100 * ms)])
    }

    @Test func backoffJitterStaysWithinItsBounds() {
        let ms = 1_000_000.0
        for n in 1...70 {
            let base = min(5000.0, 100.0 * Double(1 << min(n - 1, 40))) * ms
            let low = Self.pinned(0).delay(afterFailures: n)
            let high = Self.pinned(0.999_999).delay(afterFailures: n)
            #expect(Double(low) >= base * 0.8 - 1 && Double(low) <= base * 0.8 + 1, "n=\(n)")
            #expect(Double(high) <= base * 1.2 && Double(high) >= base * 1.2 - 0.01 * ms, "n=\(n)")
            #expect(Self.pinned(0.5, jitter: 0).delay(afterFailures: n) == UInt64(base), "n=\(n)")
        }
        #expect(Self.pinned().delay(afterFailures: 0) == 0)
        // Very many failures: still the cap, no overflow.
        #expect(Self.pinned(0.5, jitter: 0).delay(afterFailures: 10_000) == 5_000_000_000)
        #expect(Self.pinned(0.5, jitter: 0).delay(afterFailures: Int.max) == 5_000_000_000)
        // Two replicas with different random draws do not reconnect in step.
        #expect(Self.pinned(0.1).delay(afterFailures: 3) != Self.pinned(0.9).delay(afterFailures: 3))
    }

    @Test func aStaleListIsRefused() {
        var s = Self.watching(at: 10)
        _ = s.watched(Self.watch(20, [Self.put("b", 20)]))
        _ = s.watched(Self.canceled(compactRevision: 15))
        #expect(s.phase == .listing)
        // A member that lags answers as of 18: applying it would roll the registry back.
        #expect(s.listed(Self.range(18, [Self.kv("a", 2)])) == [.reconnect(afterNanos: 100_000_000)])
        #expect(s.revision == 20)
        #expect(s.phase == .disconnected)
        // The same revision is fine (nothing happened since).
        #expect(s.connected() == [.watch(fromRevision: 21)])
        _ = s.watched(Self.canceled(compactRevision: 21))
        #expect(s.listed(Self.range(20)) == [.replace([], revision: 20), .watch(fromRevision: 21)])
        // A header without a revision is not a list.
        var fresh = RegistrySync(backoff: Self.pinned())
        _ = fresh.connected()
        #expect(fresh.listed(Self.range(0)) == [.reconnect(afterNanos: 100_000_000)])
        #expect(!fresh.synced)
    }

    @Test func phases() {
        var s = RegistrySync(backoff: Self.pinned())
        var seen: [RegistrySync.Phase] = [s.phase]
        _ = s.connected(); seen.append(s.phase)
        _ = s.listed(Self.range(5)); seen.append(s.phase)
        _ = s.watched(Self.watch(6, [Self.put("a", 6)])); seen.append(s.phase)
        _ = s.failed(); seen.append(s.phase)
        _ = s.connected(); seen.append(s.phase)
        _ = s.watched(Self.canceled(compactRevision: 6)); seen.append(s.phase)
        _ = s.listed(Self.range(9)); seen.append(s.phase)
        #expect(seen == [.disconnected, .listing, .watching, .watching, .disconnected, .watching, .listing, .watching])
        // A list answer while watching, or a watch answer while listing, is ignored.
        #expect(s.listed(Self.range(100)) == [])
        #expect(s.revision == 9)
        _ = s.watched(Self.canceled(compactRevision: 9))
        #expect(s.watched(Self.watch(12, [Self.put("x", 12)])) == [])
        #expect(s.revision == 9 && s.phase == .listing)
    }
}
