/// Binds a socket to the HTTP/2 + gRPC stack: the only place where the transport meets the
/// protocol code. Server side.
public final class GRPCServerChannelHandler: ChannelHandler {
    public let h2: H2Connection
    let service: any GRPCService
    let maxMessageSize: Int
    public private(set) var grpc: GRPCServerConnection?
    /// Runs once when the connection is gone (the server's connection count).
    public var onInactive: (() -> Void)?

    public init(service: any GRPCService, settings: H2Settings, maxMessageSize: Int) {
        self.h2 = H2Connection(role: .server, settings: settings)
        self.service = service
        self.maxMessageSize = maxMessageSize
    }

    public func channelActive(_ channel: Channel) {
        // The channel owns this handler, which owns the closure; cleared on close.
        h2.onNeedsFlush = { [unowned(unsafe) channel] in channel.flush() }
        grpc = GRPCServerConnection(h2: h2, service: service, peer: channel.peer, maxMessageSize: maxMessageSize)
    }

    public func channelRead(_ channel: Channel, _ bytes: UnsafeRawBufferPointer) {
        if !h2.receive(bytes) {
            Log.info("h2_connection_error", ["peer": channel.peer, "error": h2.lastError ?? "?"])
            channel.closeAfterFlush()
        }
    }

    public func produce(_ channel: Channel, into out: inout OutboundBuffer, budget: Int) {
        if !h2.produce(into: &out, budget: budget) {
            Log.info("h2_send_error", ["peer": channel.peer, "error": h2.lastError ?? "?"])
            channel.close(.local("h2 send error"))
            return
        }
        if h2.isFinished { channel.closeAfterFlush() }
    }

    public func channelInactive(_ channel: Channel, reason: CloseReason) {
        h2.onNeedsFlush = nil
        grpc?.connectionClosed()
        onInactive?()
        onInactive = nil
    }
}

/// Client side: an HTTP/2 client session on a socket (load generator, tests).
public final class GRPCClientChannelHandler: ChannelHandler {
    public let h2: H2Connection
    public let grpc: GRPCClientConnection
    public var onActive: ((Channel) -> Void)?
    public var onInactive: ((CloseReason) -> Void)?

    public init(authority: String, settings: H2Settings = H2Settings()) {
        h2 = H2Connection(role: .client, settings: settings)
        grpc = GRPCClientConnection(h2: h2, authority: authority)
    }

    public func channelActive(_ channel: Channel) {
        h2.onNeedsFlush = { [unowned(unsafe) channel] in channel.flush() }
        onActive?(channel)
    }

    public func channelRead(_ channel: Channel, _ bytes: UnsafeRawBufferPointer) {
        if !h2.receive(bytes) { channel.closeAfterFlush() }
    }

    public func produce(_ channel: Channel, into out: inout OutboundBuffer, budget: Int) {
        if !h2.produce(into: &out, budget: budget) { channel.close(.local("h2 send error")); return }
        if h2.isFinished { channel.closeAfterFlush() }
    }

    public func channelInactive(_ channel: Channel, reason: CloseReason) {
        h2.onNeedsFlush = nil
        grpc.connectionClosed(reason: reason.description)
        onInactive?(reason)
    }
}
