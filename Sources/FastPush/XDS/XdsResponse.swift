/// One response before its per-stream tail (version and nonce) is added: a DiscoveryResponse,
/// or on a Delta stream a DeltaDiscoveryResponse (`delta` set).
public struct XdsResponse: Sendable {
    public let type: XdsType
    /// The PushContext version: the response's version_info (system_version_info in Delta).
    public let version: UInt64
    public let body: EncodedBody
    /// Holds every watched resource (false for an incremental EDS response with some clusters).
    public let full: Bool
    /// Answers a request: sent even when identical to the last response on the stream.
    public let forced: Bool
    /// Delta: how the body was made, checked again when it is written.
    public let delta: DeltaPlan?

    public init(type: XdsType, version: UInt64, body: EncodedBody, full: Bool, forced: Bool, delta: DeltaPlan? = nil) {
        self.type = type
        self.version = version
        self.body = body
        self.full = full
        self.forced = forced
        self.delta = delta
    }
}

/// A Delta response as a worker made it: the patch from what the stream held then to the table
/// of its scope. The stream's thread writes it only if the stream still holds the patch's
/// starting point; otherwise (a request moved it on meanwhile) it makes the patch again from
/// the same PushContext, or drops it if the stream already has a newer one.
public struct DeltaPlan: Sendable {
    public let patch: DeltaPatch
    public let table: ResourceTable
    public let push: PushContext
    public let view: NamespaceView

    public init(patch: DeltaPatch, table: ResourceTable, push: PushContext, view: NamespaceView) {
        self.patch = patch
        self.table = table
        self.push = push
        self.view = view
    }
}

/// Which ADS method a stream speaks.
public enum XdsProtocol: String, Sendable {
    /// StreamAggregatedResources: State of the World.
    case sotw
    /// DeltaAggregatedResources: incremental.
    case delta
}
