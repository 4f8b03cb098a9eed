#if canImport(Glibc)
import Glibc
#endif

public struct AdminConfig: Sendable {
    public var host = "127.0.0.1"
    public var port: UInt16 = 15014
    public var maxBodyBytes = 1 << 20
    public var idleTimeoutNanos: UInt64 = 10_000_000_000
    /// Bearer token required on writes (PUT, DELETE, forced pushes); nil: none.
    public var token: String?
    public init() {}
}

/// The admin and monitoring HTTP server (Istio's :15014): readiness, metrics, debug views,
/// and the registry write API. Requests are answered on an I/O loop.
public final class AdminServer: Sendable {
    public let port: UInt16
    let handlers: AdminHandlers

    public init(group: EventLoopGroup, config: AdminConfig, handlers: AdminHandlers) throws {
        self.handlers = handlers
        let (fd, port) = try Socket.listen(host: config.host, port: config.port, backlog: 128)
        self.port = port
        let loop = group.loops[0]
        let box = UnsafeSendableBox(fd)
        loop.execute {
            loop.listen(fd: box.value) { res in
                guard res >= 0 else { return }
                let handler = HTTP1Connection(maxBody: config.maxBodyBytes, idleTimeoutNanos: config.idleTimeoutNanos) {
                    handlers.handle($0, respond: $1)
                }
                _ = loop.register(fd: res, peer: Socket.peerName(res), handler: handler)
            }
        }
    }
}
