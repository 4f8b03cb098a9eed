/// The stream an XdsConnection writes to. Used only on the stream's own thread; the ADS
/// service implements it over a gRPC stream, tests over a recorder.
public protocol XdsStream: AnyObject {
    var isOpen: Bool { get }
    /// Writes one response: the shared body, then this stream's tail (version, nonce).
    func write(body: ByteSlice, tail: SmallBytes, completion: WriteCompletion?)
    func close(_ status: GRPCStatus)
}

/// The thread a stream lives on (an I/O loop). Workers hand it their writes in batches, grouped
/// by `identity`.
public protocol XdsExecutor: Sendable {
    var identity: ObjectIdentifier { get }
    var inExecutor: Bool { get }
    func execute(_ task: @escaping @Sendable () -> Void)
}

/// How other threads reach an XdsStream.
public protocol XdsTransport: Sendable {
    var peer: String { get }
    /// The identity the peer proved in its TLS handshake (nil: plaintext, or no SPIFFE URI).
    var peerIdentity: SPIFFEIdentity? { get }
    var executor: any XdsExecutor { get }
    /// On the executor: the stream, or nil once it is gone.
    func currentStream() -> (any XdsStream)?
}

extension XdsTransport {
    public var peerIdentity: SPIFFEIdentity? { nil }

    /// Runs `body` on the stream's thread with the stream (or nil if it is gone).
    public func withStream(_ body: @escaping @Sendable ((any XdsStream)?) -> Void) {
        if executor.inExecutor {
            body(currentStream())
        } else {
            executor.execute { body(self.currentStream()) }
        }
    }
}
