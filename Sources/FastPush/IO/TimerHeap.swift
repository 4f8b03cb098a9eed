/// Loop-confined one-shot timers, earliest first.
struct TimerHeap {
    private var items: [(deadline: UInt64, seq: UInt64, task: () -> Void)] = []
    private var seq: UInt64 = 0

    var isEmpty: Bool { items.isEmpty }

    mutating func removeAll() { items.removeAll() }
    var nextDeadline: UInt64? { items.first?.deadline }

    mutating func insert(deadline: UInt64, _ task: @escaping () -> Void) {
        seq &+= 1
        items.append((deadline, seq, task))
        var i = items.count - 1
        while i > 0 {
            let p = (i - 1) / 2
            if less(i, p) { items.swapAt(i, p); i = p } else { break }
        }
    }

    /// Removes and returns every timer due at `now`.
    mutating func popDue(now: UInt64) -> [() -> Void] {
        var due: [() -> Void] = []
        while let first = items.first, first.deadline <= now {
            due.append(first.task)
            let last = items.removeLast()
            if !items.isEmpty {
                items[0] = last
                siftDown(0)
            }
        }
        return due
    }

    private func less(_ a: Int, _ b: Int) -> Bool {
        (items[a].deadline, items[a].seq) < (items[b].deadline, items[b].seq)
    }

    private mutating func siftDown(_ start: Int) {
        var i = start
        while true {
            let l = 2 * i + 1, r = l + 1
            var m = i
            if l < items.count && less(l, m) { m = l }
            if r < items.count && less(r, m) { m = r }
            if m == i { return }
            items.swapAt(i, m)
            i = m
        }
    }
}
