#if canImport(Glibc)
import Glibc
#endif

/// TLS between the socket and the protocol stack: a ChannelHandler that wraps another. The loop
/// still owns the socket and its sends; this layer decrypts what the loop reads before the inner
/// handler (HTTP/2) sees it, and encrypts what the inner handler produces — shared response
/// bodies included — on its way into the channel's outbound buffer. Write completions move with
/// the bytes: they run when the kernel took the ciphertext, as they would in plaintext.
///
/// The inner handler becomes active when the handshake is done; it always hears the close.
public final class TLSChannelHandler: ChannelHandler {
    public let inner: any ChannelHandler
    /// Nil when OpenSSL could not make a session (the connection is closed at once).
    public let engine: TLSEngine?
    let handshakeTimeoutNanos: UInt64
    /// Runs once the handshake is done, before the inner handler sees any data (the server sets
    /// the connection's peer identity here).
    public var onEstablished: ((TLSChannelHandler) -> Void)?
    /// Counters: a handshake completed (true) or a connection ended before it did (false).
    public var onHandshake: ((Bool) -> Void)?

    /// What the inner handler produced and this layer has not yet encrypted (empty between calls).
    private var plain = OutboundBuffer()
    private var innerActive = false
    /// Failed or closed: no more input, only the alert or close_notify left to send.
    private var finished = false
    private var handshakeEnded = false

    public init(inner: any ChannelHandler, context: TLSContext, handshakeTimeoutNanos: UInt64 = 10_000_000_000) {
        self.inner = inner
        self.engine = TLSEngine(context: context)
        self.handshakeTimeoutNanos = handshakeTimeoutNanos
    }

    public func channelActive(_ channel: Channel) {
        guard let engine else {
            fail(channel, "cannot create a TLS session: " + TLSContext.takeErrors())
            return
        }
        if engine.pendingCiphertext > 0 { channel.flush() }  // a client's ClientHello
        let timeout = handshakeTimeoutNanos
        guard timeout > 0 else { return }
        // Holds the channel, not the handler (see GRPCServerChannelHandler): an active channel
        // still owns this handler.
        channel.loop.schedule(afterNanos: timeout) { [channel, unowned(unsafe) self] in
            guard channel.state == .active else { return }
            let h = self
            guard !h.innerActive, !h.finished else { return }
            h.fail(channel, "handshake not done within \(timeout / 1_000_000) ms")
        }
    }

    public func channelRead(_ channel: Channel, _ bytes: UnsafeRawBufferPointer) {
        guard !finished, let engine else { return }
        if !innerActive {
            switch engine.receive(bytes) {
            case .wantRead:
                if engine.pendingCiphertext > 0 { channel.flush() }
                return
            case .established:
                established(channel, engine)
            case .closed:
                fail(channel, "peer closed during the handshake")
                return
            case let .failed(error):
                fail(channel, error)
                return
            }
        } else {
            engine.receive(bytes)
        }
        let status = engine.read { plaintext in
            if channel.state == .active { inner.channelRead(channel, plaintext) }
        }
        switch status {
        case .closed:
            // close_notify: answer it, then close once it is out.
            finished = true
            engine.shutdown()
            channel.closeAfterFlush()
        case let .failed(error):
            fail(channel, error)
        case .established, .wantRead:
            break
        }
        // TLS 1.3 sends key updates of its own.
        if engine.pendingCiphertext > 0 { channel.flush() } else { engine.releaseIdleBuffers() }
    }

    private func established(_ channel: Channel, _ engine: TLSEngine) {
        handshakeEnded = true
        onHandshake?(true)
        innerActive = true
        inner.channelActive(channel)
        onEstablished?(self)
        channel.flush()  // the server's SETTINGS (or the client's preface) and the handshake's tail
    }

    public func produce(_ channel: Channel, into out: inout OutboundBuffer, budget: Int) {
        guard let engine else { return }
        engine.takeCiphertext(into: &out)
        guard innerActive, !finished else { return }
        inner.produce(channel, into: &plain, budget: budget)
        guard !plain.isEmpty else { return }
        encrypt(engine, into: &out)
        engine.releaseIdleBuffers()
    }

    /// Encrypts everything the inner handler produced, in full 16 KB records where it can: the
    /// pieces (frame headers, shared bodies) are gathered into one record-sized run first.
    private func encrypt(_ engine: TLSEngine, into out: inout OutboundBuffer) {
        let recordSize = 16_384
        let iovCapacity = 64
        withUnsafeTemporaryAllocation(byteCount: recordSize, alignment: 16) { staging in
            withUnsafeTemporaryAllocation(of: iovec.self, capacity: iovCapacity) { iov in
                while !plain.isEmpty {
                    let (n, bytes) = plain.fill(iov.baseAddress!, capacity: iovCapacity, maxBytes: recordSize)
                    var used = 0
                    for i in 0..<n {
                        let v = iov[i]
                        let take = min(v.iov_len, bytes - used)
                        (staging.baseAddress! + used).copyMemory(from: v.iov_base!, byteCount: take)
                        used += take
                    }
                    guard engine.write(UnsafeRawBufferPointer(start: staging.baseAddress, count: used)) else {
                        plain.fail()
                        finished = true
                        logError(channel: nil, "encrypt: \(engine.status)")
                        return
                    }
                    engine.takeCiphertext(into: &out)
                    plain.consume(used, movingCompletionsTo: &out)
                }
            }
        }
    }

    public func channelInactive(_ channel: Channel, reason: CloseReason) {
        if !handshakeEnded {
            handshakeEnded = true
            onHandshake?(false)
            if !finished { logFailure(channel, "connection closed during the handshake (\(reason))") }
        }
        finished = true
        plain.fail()
        inner.channelInactive(channel, reason: reason)
        onEstablished = nil
        onHandshake = nil
    }

    /// One log line, the alert (if OpenSSL queued one) sent, then closed; within a bounded time
    /// even if the peer does not read.
    private func fail(_ channel: Channel, _ error: String) {
        guard !finished else { return }
        finished = true
        if !handshakeEnded {
            handshakeEnded = true
            onHandshake?(false)
            logFailure(channel, error)
        } else {
            logError(channel: channel, error)
        }
        channel.closeAfterFlush()
        channel.loop.schedule(afterNanos: 2_000_000_000) { [channel] in
            guard channel.state == .active else { return }
            channel.close(.local("tls close timeout"))
        }
    }

    private func logFailure(_ channel: Channel, _ error: String) {
        if let dropped = LogLimiter.tlsHandshakeFailed.admit() {
            Log.info("tls_handshake_failed", ["peer": channel.peer, "error": error, "suppressed": dropped])
        }
    }

    private func logError(channel: Channel?, _ error: String) {
        if let dropped = LogLimiter.tlsHandshakeFailed.admit() {
            Log.info("tls_error", ["peer": channel?.peer ?? "?", "error": error, "suppressed": dropped])
        }
    }
}
