#if canImport(Glibc)
import Glibc
#endif
import Synchronization

public struct GRPCServerConfig: Sendable {
    public var host = "0.0.0.0"
    public var port: UInt16 = 15010
    public var h2 = H2Settings()
    public var maxMessageSize = GRPCServerConnection.defaultMaxMessageSize
    /// Kernel send buffer per accepted socket: a client that does not read holds at most this
    /// much kernel memory (tcp_mem is shared by the whole machine).
    public var socketSendBuffer: Int32 = 256 * 1024
    public var maxConnections = 19_000
    /// A connection with bytes waiting (in the kernel's queue, ours, or held by HTTP/2 flow
    /// control) that moves none for this long is closed. 0: never.
    public var sendTimeoutNanos: UInt64 = 30_000_000_000
    /// Waiting bytes that have not moved for this long mark the connection stalled (its streams
    /// hear `writeStalled`, and an ADS stream gives back its push slot).
    public var stallNanos: UInt64 = 200_000_000
    public init() {}
}

/// Accepts h2c connections and spreads them over the loops; each gets the HTTP/2 + gRPC stack.
public final class GRPCServer: Sendable {
    public let group: EventLoopGroup
    public let config: GRPCServerConfig
    /// Called on a connection's loop thread, with that loop, for each new connection (services
    /// are loop-confined).
    let service: @Sendable (any IOLoop) -> any GRPCService
    public let port: UInt16
    let listenFD: Int32
    private let connections = Atomic<Int>(0)
    let onSendTimeout: @Sendable () -> Void

    public init(group: EventLoopGroup, config: GRPCServerConfig, onSendTimeout: @escaping @Sendable () -> Void = {},
                service: @escaping @Sendable (any IOLoop) -> any GRPCService) throws {
        self.group = group
        self.config = config
        self.service = service
        self.onSendTimeout = onSendTimeout
        let (fd, port) = try Socket.listen(host: config.host, port: config.port)
        self.port = port
        self.listenFD = fd
        let acceptLoop = group.loops[0]
        let box = UnsafeSendableBox(fd)
        acceptLoop.execute { [self] in
            acceptLoop.listen(fd: box.value) { [self] res in self.accepted(res) }
        }
        for loop in group.loops { loop.execute { [self] in sweep(loop) } }
    }

    /// Every `stallNanos` on each loop: connections whose waiting bytes have not moved since the
    /// last sweep are told they are stalled; after the send timeout they are closed (Istio's old
    /// send timeout; a stuck client must not hold memory or a push slot forever).
    private func sweep(_ loop: any IOLoop) {
        let timeout = config.sendTimeoutNanos
        let now = MonotonicClock.nanos()
        var stuck: [(Channel, Int)] = []
        var stalled: [GRPCServerChannelHandler] = []
        loop.forEachChannel { ch in
            guard ch.state == .active, let h = ch.handler as? GRPCServerChannelHandler else { return }
            let waiting = ch.pendingOutboundBytes + h.h2.queuedBytes
            if waiting == 0 {
                ch.sweepStalledSince = 0
            } else if ch.sweepStalledSince == 0 || ch.bytesSent != ch.sweepBytesSent {
                ch.sweepStalledSince = now
            } else if timeout > 0 && now &- ch.sweepStalledSince >= timeout {
                stuck.append((ch, waiting))
            } else {
                stalled.append(h)
            }
            ch.sweepBytesSent = ch.bytesSent
        }
        for h in stalled { h.grpc?.writeStalled() }
        for (ch, waiting) in stuck {
            // Many clients can stall at once (a network partition): the metric counts them all.
            if let dropped = LogLimiter.sendTimeout.admit() {
                Log.warn("send_timeout", ["peer": ch.peer, "waiting_bytes": waiting, "timeout": DurationText.format(timeout),
                                          "action": "closing connection", "suppressed": dropped])
            }
            onSendTimeout()
            ch.close(.sendTimeout)
        }
        // Weak: the loop's timer must not keep a stopped server alive.
        loop.schedule(afterNanos: config.stallNanos) { [weak self] in self?.sweep(loop) }
    }

    public var connectionCount: Int { connections.load(ordering: .relaxed) }

    /// Draining: no new connections, and every open one is told (GOAWAY, NO_ERROR) to go
    /// elsewhere once its streams are done; in-flight pushes still complete.
    public func beginDrain() {
        let done = Semaphore()
        group.loops[0].execute { [self] in
            group.loops[0].stopListening(fd: listenFD)
            done.signal()
        }
        done.wait()
        _ = group.onEveryLoop { loop -> Int in
            var n = 0
            loop.forEachChannel { ch in
                guard ch.state == .active, let h = ch.handler as? GRPCServerChannelHandler else { return }
                h.h2.goAway(errorCode: 0, debug: "server draining")
                n += 1
            }
            return n
        }
    }

    private func accepted(_ fd: Int32) {
        guard fd >= 0 else {
            if let dropped = LogLimiter.acceptFailed.admit() {
                Log.warn("accept_failed", ["errno": -fd, "error": String(cString: strerror(-fd)), "suppressed": dropped])
            }
            return
        }
        if connections.load(ordering: .relaxed) >= config.maxConnections {
            if let dropped = LogLimiter.connectionRefused.admit() {
                Log.warn("connection_refused", ["reason": "max_connections", "limit": config.maxConnections, "suppressed": dropped])
            }
            close(fd)
            return
        }
        connections.wrappingAdd(1, ordering: .relaxed)
        Socket.setNoDelay(fd)
        Socket.setSendBuffer(fd, bytes: config.socketSendBuffer)
        let loop = group.next()
        loop.execute { [self] in
            let handler = GRPCServerChannelHandler(service: self.service(loop), settings: self.config.h2,
                                                   maxMessageSize: self.config.maxMessageSize)
            let peer = Socket.peerName(fd)
            handler.onInactive = { [self] in self.connections.wrappingAdd(-1, ordering: .relaxed) }
            _ = loop.register(fd: fd, peer: peer, handler: handler)
        }
    }
}
