/// A DiscoveryResponse read in place: the small fields are copied, resources are visited as
/// slices of the received buffer. What a load generator needs to ACK and to follow names,
/// without materializing every resource.
public struct DiscoveryResponseView {
    public var versionInfo = ""
    public var typeURL = ""
    public var nonce = ""
    public var resourceCount = 0

    /// `eachResource` gets each resource's Any (type_url, value) while the buffer is valid.
    public init(_ buffer: UnsafeRawBufferPointer,
                eachResource: ((_ typeURL: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer) throws(ProtoDecodingError) -> Void)? = nil) throws(ProtoDecodingError) {
        var r = ProtoReader(buffer)
        while let (field, wt) = try r.next() {
            switch field {
            case 1: versionInfo = try r.stringField()
            case 2:
                var any = try r.messageField()
                resourceCount += 1
                guard let each = eachResource else { continue }
                var tu = UnsafeRawBufferPointer(start: nil, count: 0)
                var value = UnsafeRawBufferPointer(start: nil, count: 0)
                while let (f, w) = try any.next() {
                    if f == 1 && w == .lengthDelimited { tu = try any.readLengthDelimited() }
                    else if f == 2 && w == .lengthDelimited { value = try any.readLengthDelimited() }
                    else { try any.skip(wireType: w) }
                }
                try each(tu, value)
            case 4: typeURL = try r.stringField()
            case 5: nonce = try r.stringField()
            default: try r.skip(wireType: wt)
            }
        }
    }
}
