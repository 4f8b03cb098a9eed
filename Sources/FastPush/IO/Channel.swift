/// One TCP connection, confined to its loop's thread. The loop owns the reads, the writes and
/// the close; the handler (the HTTP/2 stack) owns the bytes.
public final class Channel {
    public enum State { case active, closing, closed }

    public let fd: Int32
    public let peer: String
    /// A loop outlives its channels.
    public unowned(unsafe) let loop: any IOLoop
    public var handler: (any ChannelHandler)?
    public internal(set) var state: State = .active

    var outbound = OutboundBuffer()
    /// io_uring: a sendmsg is in flight. epoll: the socket is full, EPOLLOUT resumes the send.
    var sendInFlight = false
    var recvArmed = false
    var flushQueued = false
    var closeWhenFlushed = false
    /// Backend-specific in-flight send state (iovecs that must outlive the syscall).
    var sendContext: AnyObject?
    /// Set when bytes are waiting and none have moved since; the send-timeout sweep reads it.
    public internal(set) var stalledSinceNanos: UInt64 = 0
    public internal(set) var bytesReceived: UInt64 = 0
    public internal(set) var bytesSent: UInt64 = 0
    /// For a send-timeout sweep above the loop: `bytesSent` when last seen, and since when
    /// bytes have been waiting without moving (0: none waiting).
    public var sweepBytesSent: UInt64 = 0
    public var sweepStalledSince: UInt64 = 0

    init(fd: Int32, peer: String, loop: any IOLoop) {
        self.fd = fd
        self.peer = peer
        self.loop = loop
    }

    public var pendingOutboundBytes: Int { outbound.pendingBytes }

    /// Asks the loop to pull from the handler and send, once per loop iteration.
    public func flush() {
        guard state == .active, !flushQueued else { return }
        flushQueued = true
        loop.scheduleFlush(self)
    }

    /// Sends what is queued (and what the handler still produces), then closes.
    public func closeAfterFlush() {
        closeWhenFlushed = true
        flush()
    }

    public func close(_ reason: CloseReason) {
        loop.closeChannel(self, reason: reason)
    }
}
