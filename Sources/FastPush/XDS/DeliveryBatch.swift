/// A worker's writes for one batch of pushes, grouped by the thread of each stream: one task
/// per I/O loop instead of one per connection.
struct DeliveryBatch {
    private var groups: [(executor: any XdsExecutor, items: [(XdsConnection, [XdsResponse], PushDone?)])] = []

    mutating func add(_ conn: XdsConnection, _ responses: [XdsResponse], _ done: PushDone?) {
        let ex = conn.transport.executor
        let id = ex.identity
        if let i = groups.firstIndex(where: { $0.executor.identity == id }) {
            groups[i].items.append((conn, responses, done))
        } else {
            groups.append((ex, [(conn, responses, done)]))
        }
    }

    func flush() {
        for g in groups {
            let items = UnsafeItems(g.items)
            if g.executor.inExecutor {
                run(items.value)
            } else {
                g.executor.execute { run(items.value) }
            }
        }
    }

    private func run(_ items: [(XdsConnection, [XdsResponse], PushDone?)]) {
        for (conn, responses, done) in items {
            conn.write(responses, to: conn.transport.currentStream(), done: done)
        }
    }
}

/// `@unchecked Sendable`: every element is Sendable (XdsConnection, XdsResponse, PushDone);
/// only the tuple array is not, to the compiler.
private struct UnsafeItems: @unchecked Sendable {
    let value: [(XdsConnection, [XdsResponse], PushDone?)]
    init(_ v: [(XdsConnection, [XdsResponse], PushDone?)]) { value = v }
}
