/// A message decoded from wire format. Conformers read fields until the reader ends and skip
/// unknown ones. A singular message field that appears twice keeps the last occurrence
/// (protobuf would merge them; no xDS client relies on that).
public protocol ProtoDecodable {
    init(reading reader: inout ProtoReader) throws(ProtoDecodingError)
}

// @inlinable so that callers in other modules get a specialized copy: unspecialized, every
// decoded message was copied through value witnesses.
extension ProtoDecodable {
    /// Decodes a whole buffer; the buffer must stay alive for the call only.
    @inlinable
    public init(decoding buffer: UnsafeRawBufferPointer,
                maxDepth: Int = ProtoReader.defaultMaxDepth) throws(ProtoDecodingError) {
        var r = ProtoReader(buffer, maxDepth: maxDepth)
        try self.init(reading: &r)
    }

    @inlinable
    public init(decoding bytes: [UInt8], maxDepth: Int = ProtoReader.defaultMaxDepth) throws(ProtoDecodingError) {
        // Array.withUnsafeBytes is untyped `rethrows`, so the typed error is carried out by hand.
        var failure: ProtoDecodingError? = nil
        let value: Self? = bytes.withUnsafeBytes { raw in
            do throws(ProtoDecodingError) {
                return try Self(decoding: raw, maxDepth: maxDepth)
            } catch {
                failure = error
                return nil
            }
        }
        guard let value else { throw failure ?? .truncatedVarint }
        self = value
    }
}
