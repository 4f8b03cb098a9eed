/// One DiscoveryResponse before its per-stream tail (version and nonce) is added.
public struct XdsResponse: Sendable {
    public let type: XdsType
    /// The PushContext version: the response's version_info.
    public let version: UInt64
    public let body: EncodedBody
    /// Holds every watched resource (false for an incremental EDS response with some clusters).
    public let full: Bool
    /// Answers a request: sent even when identical to the last response on the stream.
    public let forced: Bool

    public init(type: XdsType, version: UInt64, body: EncodedBody, full: Bool, forced: Bool) {
        self.type = type
        self.version = version
        self.body = body
        self.full = full
        self.forced = forced
    }
}
