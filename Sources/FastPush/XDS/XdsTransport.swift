/// The stream an XdsConnection writes to. Used only on the stream's own thread; the ADS
/// service implements it over a gRPC stream, tests over a recorder.
public protocol XdsStream: AnyObject {
    var isOpen: Bool { get }
    /// Writes one response: the shared body, then this stream's tail (version, nonce).
    func write(body: ByteSlice, tail: SmallBytes, completion: WriteCompletion?)
    func close(_ status: GRPCStatus)
}

/// How other threads reach an XdsStream: `withStream` runs on the stream's thread, with nil if
/// the stream is gone.
public protocol XdsTransport: Sendable {
    var peer: String { get }
    func withStream(_ body: @escaping @Sendable ((any XdsStream)?) -> Void)
}
