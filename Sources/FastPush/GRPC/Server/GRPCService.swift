/// A gRPC service: claims request paths and makes a handler per stream.
public protocol GRPCService: AnyObject {
    /// The handler for a new stream on `path`, or nil if the method is not served (UNIMPLEMENTED).
    func makeHandler(path: String, stream: GRPCServerStream) -> (any GRPCStreamHandler)?
}

/// One RPC's server side. Calls arrive on the connection's loop thread.
public protocol GRPCStreamHandler: AnyObject {
    func received(_ stream: GRPCServerStream, message: UnsafeRawBufferPointer)
    /// The client half-closed (sent END_STREAM).
    func halfClosed(_ stream: GRPCServerStream)
    /// The stream is gone: finished, reset by the peer, or the connection closed.
    func closed(_ stream: GRPCServerStream)
    /// Bytes for this connection have been waiting a while without moving (the client does not
    /// read, or keeps its flow-control window shut).
    func writeStalled(_ stream: GRPCServerStream)
}

extension GRPCStreamHandler {
    public func writeStalled(_ stream: GRPCServerStream) {}
}
