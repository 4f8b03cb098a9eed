/// The server side of one gRPC call on an HTTP/2 stream.
public final class GRPCServerStream {
    public let id: Int32
    public let path: String
    /// For the error when a compressed message arrives.
    public let grpcEncoding: String
    unowned(unsafe) let connection: GRPCServerConnection  // it owns its streams
    var handler: (any GRPCStreamHandler)?
    var deframer: GRPCDeframer
    /// The deframer's partial bytes as the connection's total counts them.
    var bufferedCounted = 0
    public private(set) var isFinished = false
    public internal(set) var isClosed = false

    init(id: Int32, head: H2Head, connection: GRPCServerConnection, maxMessageSize: Int) {
        self.id = id
        self.path = head.path
        self.grpcEncoding = head.grpcEncoding
        self.connection = connection
        self.deframer = GRPCDeframer(maxMessageSize: maxMessageSize)
    }

    /// Sends one message: `body` (shared, not copied) followed by `tail` (small, per stream).
    /// Most messages a stream may have waiting: a client that keeps asking without reading the
    /// answers is cut off instead of growing the queue.
    public static let maxQueuedMessages = 64

    @discardableResult
    public func send(body: ByteSlice?, tail: SmallBytes = SmallBytes(), completion: WriteCompletion? = nil) -> Bool {
        guard !isFinished, !isClosed else { completion?(false); return false }
        if connection.h2.queuedMessages(streamID: id) >= Self.maxQueuedMessages {
            completion?(false)
            Log.warn("grpc_stream_backlog", ["peer": connection.peer, "stream": id, "queued": Self.maxQueuedMessages])
            finish(GRPCStatus(.resourceExhausted, "more than \(Self.maxQueuedMessages) responses waiting: the client does not read"))
            return false
        }
        let length = (body?.count ?? 0) + tail.count
        let m = StreamMessage(head: GRPCDeframer.prefix(length: length), body: body, tail: tail, completion: completion)
        return connection.h2.send(streamID: id, m)
    }

    /// Convenience for small or test messages (copies).
    @discardableResult
    public func send(bytes: [UInt8], completion: WriteCompletion? = nil) -> Bool {
        send(body: ByteSlice(SharedBytes(bytes)), completion: completion)
    }

    /// Ends the call with a status (trailers). Queued messages go out first.
    public func finish(_ status: GRPCStatus) {
        guard !isFinished, !isClosed else { return }
        isFinished = true
        connection.h2.finish(streamID: id, trailers: status.trailers)
    }
}
