/// An Envoy message that travels inside a `google.protobuf.Any`: a top-level xDS resource or a
/// filter's typed_config.
public protocol EnvoyTypedConfig: ProtoEncodable, Sendable {
    static var typeURL: String { get }
    /// The complete Any bytes. A requirement so that large resources (ClusterLoadAssignment)
    /// can size their nested messages once instead of once per nesting level.
    func encodeAny() -> SharedBytes
}

/// A top-level xDS resource with the name clients subscribe to.
public protocol EnvoyResource: EnvoyTypedConfig {
    var resourceName: String { get }
}

extension EnvoyTypedConfig {
    /// Size of this message wrapped in an Any.
    public var anySize: Int { ProtoAny.size(typeURL: Self.typeURL, valueSize: protoSize) }

    /// Writes this message as an Any-typed field (`typed_config`, `api_listener`, ...).
    public func writeAny(field: Int, to w: inout ProtoWriter) {
        let valueSize = protoSize
        w.writeMessage(field: field, size: ProtoAny.size(typeURL: Self.typeURL, valueSize: valueSize)) { a in
            ProtoAny.write(typeURL: Self.typeURL, valueSize: valueSize, to: &a) { self.write(to: &$0) }
        }
    }

    /// The complete Any bytes, encoded straight into one exact-size buffer.
    public func encodeAny() -> SharedBytes {
        let valueSize = protoSize
        let size = ProtoAny.size(typeURL: Self.typeURL, valueSize: valueSize)
        var w = ProtoWriter(capacity: size)
        ProtoAny.write(typeURL: Self.typeURL, valueSize: valueSize, to: &w) { self.write(to: &$0) }
        assert(w.count == size)
        return w.finish()
    }
}

extension EnvoyResource {
    /// Ready for `DiscoveryResponseBody.encode`.
    public func encodedResource() -> EncodedResource {
        EncodedResource(name: resourceName, any: encodeAny())
    }
}
