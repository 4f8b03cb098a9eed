import Testing
@testable import FastPush

@Suite struct SlowestListTests {
    func conn(_ total: UInt64) -> SlowConnection {
        SlowConnection(peer: "p\(total)", node: "n\(total)", totalNanos: total, slowestStage: .write, stageNanos: total, outcome: .acked)
    }

    /// In order (a fan-out), reversed and shuffled: the top 20 of 10 000 are the same, slowest
    /// first, and `make` ran only for candidates that could be kept.
    @Test(arguments: ["ascending", "descending", "shuffled"])
    func keepsTheSlowestInAnyOrder(_ order: String) {
        let list = SlowestList(kept: 20)
        var totals = (1...10_000).map { UInt64($0) * 1_000 + UInt64($0 % 7) }
        switch order {
        case "descending": totals.reverse()
        case "shuffled": totals.shuffle()
        default: break
        }
        var made = 0
        for t in totals { list.offer(total: t) { made += 1; return conn(t) } }
        let expected = Array(totals.sorted(by: >).prefix(20))
        #expect(list.top.map(\.totalNanos) == expected)
        #expect(list.top.first?.peer == "p\(expected[0])")
        if order == "descending" {
            #expect(made <= 20 * SlowestList.shardCount, "past the first kept per shard, faster ones are not even built")
        }
        list.reset()
        #expect(list.top.isEmpty)
    }

    @Test func fewerThanKeptAreAllKept() {
        let list = SlowestList(kept: 20)
        for t: UInt64 in [5, 3, 9] { list.offer(total: t) { conn(t) } }
        #expect(list.top.map(\.totalNanos) == [9, 5, 3])
    }
}
