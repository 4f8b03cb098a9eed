/// Binds a socket to the HTTP/2 + gRPC stack: the only place where the transport meets the
/// protocol code. Server side.
///
/// A connection that fails (bytes that are not HTTP/2, a protocol error, a flood, a limit run
/// out) is logged once (`h2_connection_error` with the peer), takes no more input, and closes
/// once its GOAWAY is flushed, or after `closeTimeoutNanos` if the peer does not read it.
public final class GRPCServerChannelHandler: ChannelHandler {
    public let h2: H2Connection
    let service: any GRPCService
    let maxMessageSize: Int
    public private(set) var grpc: GRPCServerConnection?
    /// Runs once when the connection is gone (the server's connection count).
    public var onInactive: (() -> Void)?
    /// Set once the connection failed: input is ignored from then on.
    public private(set) var failed = false
    /// Connection age (`--max-connection-age`), checked by the server's sweep on this loop:
    /// when it was accepted, when it gets GOAWAY (0: not, or done), when it is closed after that.
    var acceptedAt: UInt64 = 0
    var ageDeadline: UInt64 = 0
    var graceDeadline: UInt64 = 0
    /// Its place in the server's LoopConnections (-1: not listed), and its channel while active
    /// (the channel owns this handler, directly or through a TLS layer).
    var listIndex = -1
    public internal(set) unowned(unsafe) var channel: Channel?

    public init(service: any GRPCService, settings: H2Settings, maxMessageSize: Int) {
        self.h2 = H2Connection(role: .server, settings: settings)
        self.service = service
        self.maxMessageSize = maxMessageSize
    }

    public func channelActive(_ channel: Channel) {
        self.channel = channel
        // The channel owns this handler, which owns the closure; cleared on close.
        h2.onNeedsFlush = { [unowned(unsafe) channel] in channel.flush() }
        grpc = GRPCServerConnection(h2: h2, service: service, peer: channel.peer, maxMessageSize: maxMessageSize)
        let timeout = h2.settings.handshakeTimeoutNanos
        if timeout > 0 {
            // Holds the channel (small) until it runs, not the handler: a closed channel has let
            // go of its handler and session. No weak reference either (it would put the
            // channel's reference counting on the slow path for good).
            // An active channel still owns its handler, so `h` is alive when the check passes.
            channel.loop.schedule(afterNanos: timeout) { [channel, unowned(unsafe) self] in
                guard channel.state == .active else { return }
                let h = self
                guard !h.failed, !h.h2.peerSettingsReceived else { return }
                h.fail(channel, "no HTTP/2 preface and SETTINGS within \(timeout / 1_000_000) ms")
                channel.close(.local("handshake timeout"))
            }
        }
    }

    public func channelRead(_ channel: Channel, _ bytes: UnsafeRawBufferPointer) {
        guard !failed else { return }
        if !h2.receive(bytes) {
            fail(channel, h2.lastError ?? "?")
        }
    }

    public func produce(_ channel: Channel, into out: inout OutboundBuffer, budget: Int) {
        if !h2.produce(into: &out, budget: budget) {
            if !failed {
                failed = true
                Log.info("h2_send_error", ["peer": channel.peer, "error": h2.lastError ?? "?"])
            }
            channel.close(.local("h2 send error"))
            return
        }
        if !failed, let g = h2.goAwaySent, g.code != 0 {
            // nghttp2 answered a protocol violation (or a rapid-reset flood) with GOAWAY itself.
            fail(channel, "sent GOAWAY \(H2Connection.errorName(g.code))" + (g.debug.isEmpty ? "" : ": \(g.debug)"))
            return
        }
        if h2.isFinished { channel.closeAfterFlush() }
    }

    /// Logs the failure once, stops reading, and closes after the queued frames (the GOAWAY) are
    /// out, within `closeTimeoutNanos`.
    private func fail(_ channel: Channel, _ error: String) {
        guard !failed else { return }
        failed = true
        Log.info("h2_connection_error", ["peer": channel.peer, "error": error])
        channel.closeAfterFlush()
        let timeout = h2.settings.closeTimeoutNanos
        channel.loop.schedule(afterNanos: timeout) { [channel] in
            guard channel.state == .active else { return }
            channel.close(.local("close timeout"))
        }
    }

    public func channelInactive(_ channel: Channel, reason: CloseReason) {
        h2.onNeedsFlush = nil
        grpc?.connectionClosed()
        onInactive?()
        onInactive = nil
        self.channel = nil
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
