/// The shared part of a DiscoveryResponse: `resources` (2) then `type_url` (4), plus an optional
/// `control_plane` (6). Protobuf accepts fields in any order, so this part is encoded once per
/// (type, resource set, version) and written to every stream as is; each stream appends only
/// its own `DiscoveryResponseTail`. body + tail is a complete DiscoveryResponse.
public enum DiscoveryResponseBody {
    public static func size(typeURL: String, resources: [EncodedResource], controlPlane: ControlPlane? = nil) -> Int {
        var n = 0
        for r in resources { n += ProtoSize.lengthDelimited(2, r.any.count) }
        n += ProtoSize.string(4, typeURL)
        if let controlPlane { n += ProtoSize.message(6, controlPlane) }
        return n
    }

    public static func encode(typeURL: String, resources: [EncodedResource],
                              controlPlane: ControlPlane? = nil) -> SharedBytes {
        let size = size(typeURL: typeURL, resources: resources, controlPlane: controlPlane)
        var w = ProtoWriter(capacity: size)
        for r in resources {
            // Always written, even an empty Any: an element of a repeated message is present.
            w.writeBytes(field: 2, r.any.buffer, alwaysEmit: true)
        }
        w.writeString(field: 4, typeURL)
        if let controlPlane { w.writeMessage(field: 6, controlPlane) }
        assert(w.count == size)
        return w.finish()
    }
}
