/// A message decoded from wire format. Conformers read fields until the reader ends and skip
/// unknown ones. A singular message field that appears twice keeps the last occurrence
/// (protobuf would merge them; no xDS client relies on that).
public protocol ProtoDecodable {
    init(reading reader: inout ProtoReader) throws(ProtoDecodingError)
}

extension ProtoDecodable {
    /// Decodes a whole buffer; the buffer must stay alive for the call only.
    public init(decoding buffer: UnsafeRawBufferPointer,
                maxDepth: Int = ProtoReader.defaultMaxDepth) throws(ProtoDecodingError) {
        var r = ProtoReader(buffer, maxDepth: maxDepth)
        try self.init(reading: &r)
    }

    public init(decoding bytes: [UInt8], maxDepth: Int = ProtoReader.defaultMaxDepth) throws(ProtoDecodingError) {
        let result: Result<Self, ProtoDecodingError> = bytes.withUnsafeBytes { raw in
            Result { () throws(ProtoDecodingError) -> Self in try Self(decoding: raw, maxDepth: maxDepth) }
        }
        self = try result.get()
    }
}
