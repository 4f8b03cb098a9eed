/// One unit of stream data: a small copied head, an optional shared body (never copied), and a
/// small copied tail. For a push it is the gRPC prefix, the response body shared by every stream,
/// and the stream's own version and nonce fields.
public struct StreamMessage {
    public var head: SmallBytes
    public var body: ByteSlice?
    public var tail: SmallBytes
    /// Runs when the last byte has been accepted by the kernel, or with `false` if the stream closed first.
    public var completion: WriteCompletion?

    public init(head: SmallBytes = SmallBytes(), body: ByteSlice? = nil, tail: SmallBytes = SmallBytes(),
                completion: WriteCompletion? = nil) {
        self.head = head
        self.body = body
        self.tail = tail
        self.completion = completion
    }

    public var count: Int { head.count + (body?.count ?? 0) + tail.count }
}
