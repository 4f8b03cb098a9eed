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
    public init() {}
}

/// Accepts h2c connections and spreads them over the loops; each gets the HTTP/2 + gRPC stack.
public final class GRPCServer: Sendable {
    public let group: EventLoopGroup
    public let config: GRPCServerConfig
    let service: @Sendable () -> any GRPCService
    public let port: UInt16
    private let connections = Atomic<Int>(0)
    private let refusedLogged = Atomic<UInt64>(0)

    /// `service` is called on a loop thread for each new connection (services are loop-confined).
    public init(group: EventLoopGroup, config: GRPCServerConfig, service: @escaping @Sendable () -> any GRPCService) throws {
        self.group = group
        self.config = config
        self.service = service
        let (fd, port) = try Socket.listen(host: config.host, port: config.port)
        self.port = port
        let acceptLoop = group.loops[0]
        let box = UnsafeSendableBox(fd)
        acceptLoop.execute { [self] in
            acceptLoop.listen(fd: box.value) { [self] res in self.accepted(res) }
        }
    }

    public var connectionCount: Int { connections.load(ordering: .relaxed) }

    private func accepted(_ fd: Int32) {
        guard fd >= 0 else {
            rateLimitedLog("accept_failed", ["errno": -fd, "error": String(cString: strerror(-fd))])
            return
        }
        if connections.load(ordering: .relaxed) >= config.maxConnections {
            rateLimitedLog("connection_refused", ["reason": "max_connections", "limit": config.maxConnections])
            close(fd)
            return
        }
        connections.wrappingAdd(1, ordering: .relaxed)
        Socket.setNoDelay(fd)
        Socket.setSendBuffer(fd, bytes: config.socketSendBuffer)
        let loop = group.next()
        loop.execute { [self] in
            let handler = GRPCServerChannelHandler(service: self.service(), settings: self.config.h2,
                                                   maxMessageSize: self.config.maxMessageSize)
            let peer = Socket.peerName(fd)
            handler.onInactive = { [self] in self.connections.wrappingAdd(-1, ordering: .relaxed) }
            _ = loop.register(fd: fd, peer: peer, handler: handler)
        }
    }

    /// One line per second at most for floods of the same event.
    private func rateLimitedLog(_ event: String, _ fields: KeyValuePairs<String, Any>) {
        let now = MonotonicClock.nanos()
        let last = refusedLogged.load(ordering: .relaxed)
        if now &- last > 1_000_000_000, refusedLogged.compareExchange(expected: last, desired: now, ordering: .relaxed).exchanged {
            Log.warn(event, fields)
        }
    }
}
