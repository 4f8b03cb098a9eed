/// A worker's writes for one batch of pushes, grouped by the thread of each stream: one task
/// per I/O loop instead of one per connection.
struct DeliveryBatch {
    private var groups: [(executor: any XdsExecutor, items: [Item])] = []

    struct Item: Sendable {
        let conn: XdsConnection
        let responses: [XdsResponse]
        let done: PushDone?
        let trace: TraceStamp?
    }

    mutating func add(_ conn: XdsConnection, _ responses: [XdsResponse], _ done: PushDone?, trace: TraceStamp? = nil) {
        let ex = conn.transport.executor
        let id = ex.identity
        let item = Item(conn: conn, responses: responses, done: done, trace: trace)
        if let i = groups.firstIndex(where: { $0.executor.identity == id }) {
            groups[i].items.append(item)
        } else {
            groups.append((ex, [item]))
        }
    }

    func flush() {
        for g in groups {
            let items = g.items
            if g.executor.inExecutor {
                run(items)
            } else {
                g.executor.execute { run(items) }
            }
        }
    }

    private func run(_ items: [Item]) {
        for i in items {
            i.conn.write(i.responses, to: i.conn.transport.currentStream(), done: i.done, trace: i.trace)
        }
    }
}

