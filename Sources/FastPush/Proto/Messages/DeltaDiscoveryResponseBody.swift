/// The shared part of a DeltaDiscoveryResponse: `resources` (2, each a Resource{version=1,
/// resource=2, name=3} around an already-encoded Any), `type_url` (4) and `removed_resources`
/// (6). Built once per transition between two states of a resource table and written to every
/// stream that makes it; each stream appends only its tail, `system_version_info` (1) and `nonce`
/// (5), which have the same numbers as a DiscoveryResponse's and use DiscoveryResponseTail.
public enum DeltaDiscoveryResponseBody {
    static func resourceSize(_ r: EncodedResource) -> Int {
        ProtoSize.lengthDelimited(1, ContentHash.hexLength) + ProtoSize.lengthDelimited(2, r.any.count)
            + ProtoSize.string(3, r.name, alwaysEmit: true)
    }

    public static func size(typeURL: String, resources: [EncodedResource], removed: [String]) -> Int {
        var n = 0
        for r in resources { n += ProtoSize.lengthDelimited(2, resourceSize(r)) }
        n += ProtoSize.string(4, typeURL)
        for name in removed { n += ProtoSize.string(6, name, alwaysEmit: true) }
        return n
    }

    public static func encode(typeURL: String, resources: [EncodedResource], removed: [String]) -> SharedBytes {
        let size = size(typeURL: typeURL, resources: resources, removed: removed)
        var w = ProtoWriter(capacity: size)
        for r in resources {
            w.writeMessage(field: 2, size: resourceSize(r)) { m in
                m.writeTag(field: 1, wireType: .lengthDelimited)
                m.writeVarint(UInt64(ContentHash.hexLength))
                withUnsafeTemporaryAllocation(byteCount: ContentHash.hexLength, alignment: 1) { buf in
                    ContentHash.writeHex(r.version, to: buf.baseAddress!)
                    m.writeRaw(UnsafeRawBufferPointer(buf))
                }
                m.writeBytes(field: 2, r.any.buffer, alwaysEmit: true)
                m.writeString(field: 3, r.name, alwaysEmit: true)
            }
        }
        w.writeString(field: 4, typeURL)
        for name in removed { w.writeString(field: 6, name, alwaysEmit: true) }
        assert(w.count == size)
        return w.finish()
    }
}
