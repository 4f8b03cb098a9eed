import Testing
@testable import FastPush

/// istio-push-semantics.md 2.3 and section 18 cases 22–25 (push_context_test.go:
/// TestMergeUpdateRequest / TestConcurrentMerge).
@Suite struct PushRequestMergeTests {
    static let k1 = ConfigKey(kind: .serviceEntry, name: "k1.example.com", namespace: "ns1")
    static let k2 = ConfigKey(kind: .serviceEntry, name: "k2.example.com", namespace: "ns2")

    @Test("case 22: nil is the identity of merge and copyMerge, on either side")
    func case22NilIdentity() throws {
        let forced = PushRequest(forced: true)

        for r in [PushRequest.merge(nil, forced), PushRequest.merge(forced, nil),
                  PushRequest.copyMerge(nil, forced), PushRequest.copyMerge(forced, nil)] {
            let r = try #require(r)
            #expect(r.forced)
            #expect(!r.full)
            #expect(r.configsUpdated == nil)
            #expect(r.reason == nil)
            #expect(r.push == nil)
        }
        #expect(PushRequest.merge(nil, nil) == nil)
        #expect(PushRequest.copyMerge(nil, nil) == nil)

        var m = forced
        m.merge(nil)
        #expect(m.forced && m.configsUpdated == nil && m.reason == nil)
        let c = forced.copyMerge(nil)
        #expect(c.forced && c.configsUpdated == nil && c.reason == nil)
    }

    @Test("case 23: full merge — flags ORed, first start kept, newest push, configs united, reasons summed")
    func case23FullMerge() throws {
        let push0 = PushContext(version: 0, registry: .empty)
        let push1 = PushContext(version: 1, registry: .empty)
        let a = PushRequest(full: true, forced: true, configsUpdated: [Self.k1],
                            reason: [.service: 2], start: 1_000, push: push0)
        let b = PushRequest(full: false, forced: false, configsUpdated: [Self.k2],
                            reason: [.endpoint: 1], start: 2_000, push: push1)

        var merged = a
        merged.merge(b)
        let copied = a.copyMerge(b)
        for r in [merged, copied, try #require(PushRequest.merge(a, b)), try #require(PushRequest.copyMerge(a, b))] {
            #expect(r.full)
            #expect(r.forced)
            #expect(r.start == 1_000)
            #expect(r.push === push1)
            #expect(r.configsUpdated == [Self.k1, Self.k2])
            #expect(r.reason == [.service: 2, .endpoint: 1])
        }
    }

    @Test("case 23 (detail): merge keeps the receiver's push when the other has none; copyMerge takes the other's even when nil")
    func case23PushReplacement() {
        let push0 = PushContext(version: 0, registry: .empty)
        let a = PushRequest(full: true, push: push0)
        let b = PushRequest(full: true, push: nil)
        var m = a
        m.merge(b)
        #expect(m.push === push0)
        #expect(a.copyMerge(b).push == nil)
    }

    @Test("case 23 (detail): reasons are counted, never deduplicated")
    func case23ReasonsSummed() {
        let a = PushRequest(reason: [.service: 2, .config: 1])
        let b = PushRequest(reason: [.service: 3])
        var m = a
        m.merge(b)
        #expect(m.reason == [.service: 5, .config: 1])
        #expect(a.copyMerge(b).reason == [.service: 5, .config: 1])
        // Merging a request into itself counts it twice.
        #expect(a.copyMerge(a).reason == [.service: 4, .config: 2])
    }

    @Test("case 24: nil configs merged with {k} give {k} (≥1.26: nil is not \"everything\")")
    func case24NilConfigs() throws {
        let a = PushRequest(forced: true, configsUpdated: nil)
        let b = PushRequest(configsUpdated: [Self.k1])

        var m = a
        m.merge(b)
        let c = a.copyMerge(b)
        for r in [m, c] {
            #expect(r.configsUpdated == [Self.k1])
            #expect(r.reason == nil)
            #expect(r.forced)
        }
        // And the other way round.
        var m2 = b
        m2.merge(a)
        #expect(m2.configsUpdated == [Self.k1])
        #expect(b.copyMerge(a).configsUpdated == [Self.k1])
        #expect(b.copyMerge(a).forced)
        // Both nil stay nil; an empty set stays empty (nothing changed), not nil.
        #expect(a.copyMerge(a).configsUpdated == nil)
        let empty = PushRequest(configsUpdated: [])
        #expect(a.copyMerge(empty).configsUpdated == Set<ConfigKey>())
    }

    @Test("case 25: 50 concurrent copyMerges leave both inputs unmodified")
    func case25ConcurrentCopyMerge() {
        let push0 = PushContext(version: 0, registry: .empty)
        let push1 = PushContext(version: 1, registry: .empty)
        let a = PushRequest(full: true, forced: false, configsUpdated: [Self.k1],
                            reason: [.service: 2], start: 1_000, push: push0)
        let b = PushRequest(full: false, forced: true, configsUpdated: [Self.k2],
                            reason: [.endpoint: 1], start: 2_000, push: push1)
        let failures = Counter()
        let rounds = 200

        PushTest.onThreads(50) { _ in
            for _ in 0..<rounds {
                let r = a.copyMerge(b)
                var ok = r.configsUpdated == [Self.k1, Self.k2] && r.reason == [.service: 2, .endpoint: 1]
                    && r.full && r.forced && r.start == 1_000 && r.push === push1
                ok = ok && a.configsUpdated == [Self.k1] && a.reason == [.service: 2] && a.full && !a.forced
                    && a.start == 1_000 && a.push === push0
                ok = ok && b.configsUpdated == [Self.k2] && b.reason == [.endpoint: 1] && !b.full && b.forced
                    && b.start == 2_000 && b.push === push1
                if !ok { failures.add() }
            }
        }

        #expect(failures.value == 0)
        #expect(a.configsUpdated == [Self.k1])
        #expect(a.reason == [.service: 2])
        #expect(b.configsUpdated == [Self.k2])
        #expect(b.reason == [.endpoint: 1])
    }
}
