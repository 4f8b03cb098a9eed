/// A message that can size itself and then write itself. Sizing first is what lets nested
/// messages be written in one pass with their length prefixes known.
public protocol ProtoEncodable {
    /// Exact encoded size in bytes (without any enclosing tag or length).
    var protoSize: Int { get }
    /// Writes exactly `protoSize` bytes.
    func write(to writer: inout ProtoWriter)
}

extension ProtoEncodable {
    @inlinable
    public func encode() -> [UInt8] {
        var w = ProtoWriter(capacity: protoSize)
        write(to: &w)
        return w.toArray()
    }

    /// One exact-size allocation, handed over without a copy.
    @inlinable
    public func encodeShared() -> SharedBytes {
        let size = protoSize
        var w = ProtoWriter(capacity: size)
        write(to: &w)
        assert(w.count == size, "\(Self.self): protoSize \(size) but wrote \(w.count)")
        return w.finish()
    }
}

extension ProtoSize {
    public static func message(_ field: Int, _ m: some ProtoEncodable) -> Int { message(field, m.protoSize) }
}

extension ProtoWriter {
    public mutating func writeMessage(field: Int, _ m: some ProtoEncodable) {
        writeMessage(field: field, size: m.protoSize) { m.write(to: &$0) }
    }
}
