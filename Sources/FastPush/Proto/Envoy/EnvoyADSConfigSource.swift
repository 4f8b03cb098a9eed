/// envoy.config.core.v3.ConfigSource{ads: {}, resource_api_version: V3}: where the client
/// fetches RDS and EDS from. gRPC NACKs anything but ads/self, and `ads` is an empty message
/// that must still be present (tag 3 + zero length), so the 4 bytes are constant.
enum EnvoyADSConfigSource {
    static let adsField = 3
    static let resourceAPIVersionField = 6
    static let apiVersionV3: UInt32 = 2

    static let size = ProtoSize.message(adsField, 0) + ProtoSize.uint32(resourceAPIVersionField, apiVersionV3)

    static func write(to w: inout ProtoWriter) {
        w.writeEmptyMessage(field: adsField)
        w.writeUInt32(field: resourceAPIVersionField, apiVersionV3)
    }

    /// As a message field of its parent.
    static func write(field: Int, to w: inout ProtoWriter) {
        w.writeMessage(field: field, size: size) { write(to: &$0) }
    }
}
