/// The server's connections on one loop, as a dense array: the stall sweep and the drain visit
/// them without a dictionary walk or a dynamic cast per channel (the sweep runs every 200 ms
/// over tens of thousands). Removal swaps the last one into the hole.
///
/// `@unchecked Sendable`: the server holds one per loop and touches it only on that loop's
/// thread (accept hands the socket over with `execute`; the sweep, the drain and the close run
/// there).
final class LoopConnections: @unchecked Sendable {
    private(set) var handlers: [GRPCServerChannelHandler] = []

    func add(_ h: GRPCServerChannelHandler) {
        h.listIndex = handlers.count
        handlers.append(h)
    }

    func remove(_ h: GRPCServerChannelHandler) {
        let i = h.listIndex
        guard i >= 0, i < handlers.count, handlers[i] === h else { return }
        let last = handlers.removeLast()
        if i < handlers.count {
            handlers[i] = last
            last.listIndex = i
        }
        h.listIndex = -1
    }
}
