/// One xDS resource ready to go into any number of responses: the complete bytes of its
/// `google.protobuf.Any` (type_url=1, value=2), encoded once per config version.
public struct EncodedResource: Sendable {
    /// The resource name a client subscribes to (Listener/Cluster/RouteConfiguration name,
    /// ClusterLoadAssignment cluster_name).
    public let name: String
    public let any: SharedBytes
    /// The content version Delta xDS sends (`ContentHash` of `any`): computed once, when the
    /// resource is encoded, and shared by every stream and response that carries it.
    public let version: UInt64

    public init(name: String, any: SharedBytes) {
        self.name = name
        self.any = any
        self.version = ContentHash.hash(any)
    }

    /// Wraps already-encoded message bytes in an Any.
    public init(name: String, typeURL: String, value: UnsafeRawBufferPointer) {
        let size = ProtoAny.size(typeURL: typeURL, valueSize: value.count)
        var w = ProtoWriter(capacity: size)
        ProtoAny.write(typeURL: typeURL, valueSize: value.count, to: &w) { $0.writeRaw(value) }
        self.init(name: name, any: w.finish())
    }

    public init(name: String, typeURL: String, value: [UInt8]) {
        let any = value.withUnsafeBytes { EncodedResource(name: name, typeURL: typeURL, value: $0).any }
        self.init(name: name, any: any)
    }
}
