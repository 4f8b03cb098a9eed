// The Delta (incremental) ADS messages of envoy.service.discovery.v3, as plain values.
// Decoding and encoding live in the codec files beside this one.

/// envoy.service.discovery.v3.DeltaDiscoveryRequest. The resource_locators fields (8, 9) serve
/// dynamic parameters, which neither Istio nor an Envoy it configures uses: skipped.
public struct DeltaDiscoveryRequest: Sendable, Equatable {
    public var node: Node? = nil                                   // 1
    public var typeURL: String = ""                                // 2
    public var resourceNamesSubscribe: [String] = []               // 3
    public var resourceNamesUnsubscribe: [String] = []             // 4
    /// map<string, string>, in wire order (first request of a type on a stream only).
    public var initialResourceVersions: [(name: String, version: String)] = []  // 5
    public var responseNonce: String = ""                          // 6
    public var errorDetail: RPCStatus? = nil                       // 7 google.rpc.Status
    /// The request carried a node that was skipped, not decoded (`decodingNode: false`).
    public var nodeSkipped = false
    /// With `deferringNames: true`: `resource_names_subscribe` (3) and `initial_resource_versions`
    /// (5) kept as wire bytes (field entries) with digests, and the arrays above left empty.
    public var subscribeWire: [UInt8] = []
    public var subscribeDigest: UInt64 = 0
    public var initialWire: [UInt8] = []
    public var initialDigest: UInt64 = 0
    public var namesDeferred = false
    public init() {}

    public static func == (a: DeltaDiscoveryRequest, b: DeltaDiscoveryRequest) -> Bool {
        a.node == b.node && a.typeURL == b.typeURL && a.resourceNamesSubscribe == b.resourceNamesSubscribe
            && a.resourceNamesUnsubscribe == b.resourceNamesUnsubscribe
            && a.initialResourceVersions.elementsEqual(b.initialResourceVersions, by: { $0 == $1 })
            && a.responseNonce == b.responseNonce && a.errorDetail == b.errorDetail
    }
}

/// envoy.service.discovery.v3.Resource: one resource of a delta response.
public struct DeltaResource: Sendable, Equatable {
    public var version: String = ""                                // 1
    public var resource: ProtoAny? = nil                           // 2
    public var name: String = ""                                   // 3
    public init(name: String = "", version: String = "", resource: ProtoAny? = nil) {
        self.name = name; self.version = version; self.resource = resource
    }
}

/// envoy.service.discovery.v3.DeltaDiscoveryResponse. The server writes it as a shared
/// `DeltaDiscoveryResponseBody` and a per-stream tail; this whole form is for clients and tests.
public struct DeltaDiscoveryResponse: Sendable, Equatable {
    public var systemVersionInfo: String = ""                      // 1
    public var resources: [DeltaResource] = []                     // 2
    public var typeURL: String = ""                                // 4
    public var nonce: String = ""                                  // 5
    public var removedResources: [String] = []                     // 6
    public init() {}
}
