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
    /// Istio's MaxServerConnectionAge: each connection is sent GOAWAY (NO_ERROR) about this long
    /// after it was accepted (± `maxConnectionAgeJitter`), so that its client opens its next
    /// streams on a new connection, through the load balancer, to any replica; the streams it has
    /// open go on. 0: never.
    public var maxConnectionAgeNanos: UInt64 = 0
    /// After that GOAWAY, a connection still open (streams that have not ended) is closed after
    /// this long. 0: never.
    public var maxConnectionAgeGraceNanos: UInt64 = 10_000_000_000
    /// The spread of each connection's age limit, as a fraction of it: connections opened
    /// together (a fleet after a restart) do not all end together.
    public var maxConnectionAgeJitter = 0.1
    /// [0, 1): the jitter's source (tests pin it).
    public var maxConnectionAgeRandom: @Sendable () -> Double = { Double.random(in: 0..<1) }
    /// The plaintext (h2c) listener on `host:port`; off leaves only TLS.
    public var plaintext = true
    /// A second listener whose connections speak TLS first (istiod's 15012). Its connections
    /// share `maxConnections`, the loops and the sweep with the plaintext ones.
    public var tls: TLSListener?
    public init() {}

    public struct TLSListener: Sendable {
        public var host = "0.0.0.0"
        public var port: UInt16 = 15012
        /// New handshakes use its current context (rotation swaps it).
        public var contexts: TLSContextHolder
        public var handshakeTimeoutNanos: UInt64 = 10_000_000_000
        /// Each handshake's outcome (counters).
        public var onHandshake: @Sendable (Bool) -> Void = { _ in }

        public init(host: String = "0.0.0.0", port: UInt16 = 15012, contexts: TLSContextHolder) {
            self.host = host
            self.port = port
            self.contexts = contexts
        }
    }

    /// One connection's age limit: `maxConnectionAgeNanos` ± `maxConnectionAgeJitter`, drawn
    /// from `maxConnectionAgeRandom`. Nil when there is no limit.
    public func connectionAgeLimit() -> UInt64? {
        guard maxConnectionAgeNanos > 0 else { return nil }
        let jitter = min(max(maxConnectionAgeJitter, 0), 1)
        let r = min(max(maxConnectionAgeRandom(), 0), 1)
        let nanos = Double(maxConnectionAgeNanos) * (1 - jitter + 2 * jitter * r)
        return max(1, nanos >= Double(UInt64.max) ? UInt64.max : UInt64(nanos))
    }
}

/// Accepts h2c connections and spreads them over the loops; each gets the HTTP/2 + gRPC stack.
public final class GRPCServer: Sendable {
    public let group: EventLoopGroup
    public let config: GRPCServerConfig
    /// Called on a connection's loop thread, with that loop, for each new connection (services
    /// are loop-confined).
    let service: @Sendable (any IOLoop) -> any GRPCService
    /// The plaintext listener's port (0: none), and the TLS listener's.
    public let port: UInt16
    public let tlsPort: UInt16
    let listenFDs: [Int32]
    private let connections = Atomic<Int>(0)
    let onSendTimeout: @Sendable () -> Void
    /// Called on a connection's loop thread each time a connection reaches its age limit and is
    /// sent GOAWAY (`fastpilot_xds_connection_max_age_total`).
    let onMaxConnectionAge: @Sendable () -> Void
    /// By loop index: each loop's connections, touched only on that loop.
    let perLoop: [LoopConnections]

    public init(group: EventLoopGroup, config: GRPCServerConfig, onSendTimeout: @escaping @Sendable () -> Void = {},
                onMaxConnectionAge: @escaping @Sendable () -> Void = {},
                service: @escaping @Sendable (any IOLoop) -> any GRPCService) throws {
        self.group = group
        self.config = config
        self.service = service
        self.onSendTimeout = onSendTimeout
        self.onMaxConnectionAge = onMaxConnectionAge
        self.perLoop = group.loops.map { _ in LoopConnections() }
        var listeners: [(fd: Int32, tls: Bool)] = []
        var plainPort: UInt16 = 0
        var tlsPort: UInt16 = 0
        if config.plaintext {
            let (fd, p) = try Socket.listen(host: config.host, port: config.port)
            listeners.append((fd, false))
            plainPort = p
        }
        if let tls = config.tls {
            do {
                let (fd, p) = try Socket.listen(host: tls.host, port: tls.port)
                listeners.append((fd, true))
                tlsPort = p
            } catch {
                for l in listeners { close(l.fd) }
                throw error
            }
        }
        self.port = plainPort
        self.tlsPort = tlsPort
        self.listenFDs = listeners.map(\.fd)
        let acceptLoop = group.loops[0]
        for (fd, tls) in listeners {
            let box = UnsafeSendableBox(fd)
            acceptLoop.execute { [self] in
                acceptLoop.listen(fd: box.value) { [self] res in self.accepted(res, tls: tls) }
            }
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
        var aged: [(Channel, GRPCServerChannelHandler)] = []
        var overdue: [Channel] = []
        for h in perLoop[loop.index].handlers {
            guard let ch = h.channel, ch.state == .active else { continue }
            if h.ageDeadline != 0 && now >= h.ageDeadline { aged.append((ch, h)) }
            if h.graceDeadline != 0 && now >= h.graceDeadline { overdue.append(ch) }
            let waiting = ch.pendingOutboundBytes + h.h2.queuedBytes
            if waiting == 0 {
                ch.sweepStalledSince = 0
                continue
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
        for (ch, h) in aged { reachedAge(ch, h, now: now) }
        for ch in overdue where ch.state == .active { ch.close(.local("max connection age grace")) }
        // Weak: the loop's timer must not keep a stopped server alive.
        loop.schedule(afterNanos: config.stallNanos) { [weak self] in self?.sweep(loop) }
    }

    public var connectionCount: Int { connections.load(ordering: .relaxed) }

    /// Draining: no new connections, and every open one is told (GOAWAY, NO_ERROR) to go
    /// elsewhere once its streams are done; in-flight pushes still complete.
    public func beginDrain() {
        let done = Semaphore()
        group.loops[0].execute { [self] in
            for fd in listenFDs { group.loops[0].stopListening(fd: fd) }
            done.signal()
        }
        done.wait()
        _ = group.onEveryLoop { loop -> Int in
            var n = 0
            for h in self.perLoop[loop.index].handlers where h.channel?.state == .active {
                h.h2.goAway(errorCode: 0, debug: "server draining")
                n += 1
            }
            return n
        }
    }

    private func accepted(_ fd: Int32, tls: Bool) {
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
            let list = perLoop[loop.index]
            list.add(handler)
            handler.onInactive = { [self, unowned handler] in
                list.remove(handler)
                self.connections.wrappingAdd(-1, ordering: .relaxed)
            }
            // The age limit is checked by the stall sweep (every stallNanos): no timer per
            // connection, nothing kept after it closes.
            if let age = config.connectionAgeLimit() {
                handler.acceptedAt = MonotonicClock.nanos()
                handler.ageDeadline = handler.acceptedAt &+ age
            }
            guard tls, let listener = config.tls else {
                _ = loop.register(fd: fd, peer: peer, handler: handler)
                return
            }
            // TLS sits between the socket and HTTP/2; the handshake counts as a connection.
            let t = TLSChannelHandler(inner: handler, context: listener.contexts.context,
                                      handshakeTimeoutNanos: listener.handshakeTimeoutNanos)
            t.onHandshake = listener.onHandshake
            t.onEstablished = { [unowned handler] t in
                handler.grpc?.peerIdentity = t.engine?.peerURI().flatMap(SPIFFEIdentity.init(uri:))
            }
            _ = loop.register(fd: fd, peer: peer, handler: t)
        }
    }

    /// Istio's MaxServerConnectionAge: GOAWAY (NO_ERROR, with the last stream processed), so
    /// that the client opens new streams on a new connection while the open ones go on; the
    /// grace later (0: never), the connection is closed if it is still open. An idle one closes
    /// as soon as its GOAWAY is out (nghttp2 wants nothing more).
    private func reachedAge(_ channel: Channel, _ h: GRPCServerChannelHandler, now: UInt64) {
        h.ageDeadline = 0
        // Failed (its own GOAWAY is on the way), or already told to go (draining).
        guard !h.failed, h.h2.goAwaySent == nil else { return }
        let streams = h.h2.openStreamCount
        h.h2.goAway(errorCode: 0, debug: "max connection age")
        onMaxConnectionAge()
        let grace = config.maxConnectionAgeGraceNanos
        if grace > 0 { h.graceDeadline = now &+ grace }
        if let dropped = LogLimiter.connectionMaxAge.admit() {
            Log.info("connection_max_age", ["peer": channel.peer, "age": DurationText.format((now &- h.acceptedAt) / 1_000_000 * 1_000_000),
                                            "open_streams": streams, "grace": DurationText.format(grace), "suppressed": dropped])
        }
    }
}
