/// An event loop thread that owns sockets. Other threads talk to it only through `execute`.
/// io_uring (`URingLoop`) and epoll implement it behind the same interface.
public protocol IOLoop: AnyObject, Sendable {
    var index: Int { get }
    var inEventLoop: Bool { get }
    /// Runs `task` on the loop thread soon. Callable from any thread.
    func execute(_ task: @escaping @Sendable () -> Void)

    // Loop thread only:
    /// Time at the start of the current iteration.
    var nowNanos: UInt64 { get }
    func schedule(afterNanos: UInt64, _ task: @escaping () -> Void)
    func scheduleFlush(_ channel: Channel)
    func closeChannel(_ channel: Channel, reason: CloseReason)
    /// Adopts a connected, non-blocking socket and starts reading.
    func register(fd: Int32, peer: String, handler: any ChannelHandler) -> Channel
    /// Accepts on `fd`; `onAccept` gets each new socket (or a negative errno) on this loop.
    func listen(fd: Int32, onAccept: @escaping (Int32) -> Void)
    /// Stops accepting on `fd` and closes it (draining before shutdown).
    func stopListening(fd: Int32)
    /// Visits every open channel (metrics, send-timeout sweeps, shutdown).
    func forEachChannel(_ body: (Channel) -> Void)
    var channelCount: Int { get }

    /// Closes every channel and listener and ends the thread; blocks until it has. Any thread.
    func shutdown()
}

extension IOLoop {
    public func assertInLoop(file: StaticString = #fileID, line: UInt = #line) {
        assert(inEventLoop, "not on loop \(index)", file: file, line: line)
    }
}
