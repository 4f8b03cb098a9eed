/// gRPC over one HTTP/2 connection: validates request heads, routes paths to the service,
/// deframes messages, and turns failures into gRPC statuses. Loop-thread only.
public final class GRPCServerConnection: H2ConnectionDelegate {
    public static let defaultMaxMessageSize = 4 << 20

    public let h2: H2Connection
    let service: any GRPCService
    let maxMessageSize: Int
    /// Bytes of partial messages all streams of this connection may hold at once. Each stream
    /// is limited to one message (maxMessageSize) but a connection has thousands of streams:
    /// without this, one client could make the server hold 4096 x 4 MiB.
    public let maxBufferedBytes: Int
    public private(set) var bufferedBytes = 0
    public let peer: String
    /// The verified identity of a TLS peer (set after its handshake, before any stream).
    public var peerIdentity: SPIFFEIdentity?
    private(set) var streams: [Int32: GRPCServerStream] = [:]
    var streamsForTesting: [GRPCServerStream] { Array(streams.values) }

    /// The default buffer budget: two messages at the limit, and at least 16 MiB.
    public static func defaultMaxBufferedBytes(maxMessageSize: Int) -> Int {
        max(16 << 20, 2 * (maxMessageSize + 5))
    }

    public init(h2: H2Connection, service: any GRPCService, peer: String, maxMessageSize: Int = defaultMaxMessageSize,
                maxBufferedBytes: Int? = nil) {
        self.h2 = h2
        self.service = service
        self.peer = peer
        self.maxMessageSize = maxMessageSize
        self.maxBufferedBytes = maxBufferedBytes ?? Self.defaultMaxBufferedBytes(maxMessageSize: maxMessageSize)
        h2.delegate = self
    }

    public var streamCount: Int { streams.count }

    public func h2StreamOpened(_ c: H2Connection, streamID: Int32, head: H2Head, endStream: Bool) {
        guard head.method == "POST" else {
            c.respondHeadersOnly(streamID: streamID, headers: [(":status", "405")])
            return
        }
        guard head.contentType.hasPrefix("application/grpc") else {
            c.respondHeadersOnly(streamID: streamID, headers: [(":status", "415")])
            return
        }
        let stream = GRPCServerStream(id: streamID, head: head, connection: self, maxMessageSize: maxMessageSize)
        guard let handler = service.makeHandler(path: head.path, stream: stream) else {
            if let dropped = LogLimiter.unimplemented.admit() {
                Log.info("grpc_unimplemented", ["peer": peer, "path": head.path, "suppressed": dropped])
            }
            c.respondHeadersOnly(streamID: streamID, headers: Self.responseHeaders
                + GRPCStatus(.unimplemented, "unknown method \(head.path)").trailers)
            return
        }
        stream.handler = handler
        streams[streamID] = stream
        c.startResponse(streamID: streamID, headers: Self.responseHeaders)
        if endStream { handler.halfClosed(stream) }
    }

    static let responseHeaders = [(":status", "200"), ("content-type", "application/grpc")]

    public func h2StreamData(_ c: H2Connection, streamID: Int32, data: UnsafeRawBufferPointer) {
        guard let stream = streams[streamID], !stream.isFinished else { return }
        var failure: GRPCStatus?
        do {
            try stream.deframer.feed(data) { message in
                stream.handler?.received(stream, message: message)
                return !stream.isFinished && !stream.isClosed
            }
        } catch {
            switch error {
            case let .tooLarge(size, limit):
                failure = GRPCStatus(.resourceExhausted, "received message larger than max (\(size) vs. \(limit))")
            case .compressed:
                failure = GRPCStatus(.unimplemented, "compressed messages are not supported (grpc-encoding \(stream.grpcEncoding.isEmpty ? "unset" : stream.grpcEncoding))")
            }
        }
        guard !stream.isClosed else { return }
        bufferedBytes += stream.deframer.bufferedBytes - stream.bufferedCounted
        stream.bufferedCounted = stream.deframer.bufferedBytes
        if failure == nil, stream.deframer.bufferedBytes > 0, bufferedBytes > maxBufferedBytes {
            failure = GRPCStatus(.resourceExhausted, "partial messages on this connection over \(maxBufferedBytes) bytes")
        }
        guard let status = failure else { return }
        release(stream)
        if let dropped = LogLimiter.streamRejected.admit() {
            Log.warn("grpc_stream_rejected", ["peer": peer, "stream": streamID, "status": status.code.rawValue, "reason": status.message,
                                              "suppressed": dropped])
        }
        stream.finish(status)
    }

    /// Gives back the stream's partial message.
    private func release(_ stream: GRPCServerStream) {
        bufferedBytes -= stream.bufferedCounted
        stream.bufferedCounted = 0
        stream.deframer.reset()
    }

    public func h2StreamHeaders(_ c: H2Connection, streamID: Int32, head: H2Head, endStream: Bool) {}

    public func h2StreamRemoteClosed(_ c: H2Connection, streamID: Int32) {
        guard let stream = streams[streamID] else { return }
        stream.handler?.halfClosed(stream)
    }

    public func h2StreamClosed(_ c: H2Connection, streamID: Int32, errorCode: UInt32) {
        guard let stream = streams.removeValue(forKey: streamID) else { return }
        close(stream)
    }

    /// Outbound bytes have not moved for a while: every stream hears of it.
    public func writeStalled() {
        for s in streams.values { s.handler?.writeStalled(s) }
    }

    /// The connection is gone: every stream ends.
    public func connectionClosed() {
        h2.delegate = nil
        let all = streams.values
        streams = [:]
        for s in all { close(s) }
    }

    private func close(_ stream: GRPCServerStream) {
        release(stream)
        stream.isClosed = true
        let h = stream.handler
        stream.handler = nil
        h?.closed(stream)
    }
}
