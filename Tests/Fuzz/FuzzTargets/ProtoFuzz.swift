import FastPush

/// `proto`: the protobuf reader through every message fastpilot decodes from the network.
/// The decoders' typed throws already guarantee that only ProtoDecodingError can come out; what
/// is checked here is that nothing traps, and that the decoders agree with each other:
/// - `DiscoveryRequest(decoding:)` and the production path `decodingDeferringNames` +
///   `decodeDeferredNames()` accept the same inputs and produce the same request, and the
///   deferred names' wire bytes are exactly the canonical encoding of the names (the digest
///   that spares decoding ACKs compares those bytes);
/// - whatever decodes re-encodes to `protoSize` bytes and to a fixed point;
/// - `DiscoveryResponseView` (the load generator's reader) accepts every response the full
///   decoder accepts and sees the same fields and resources.
enum ProtoFuzz {
    static let name = "proto"
    static let target = FuzzTarget(
        name: name,
        summary: "DiscoveryRequest (full and deferred names), DiscoveryResponse (+ view), Node, Struct, Status",
        run: { data throws(FuzzViolation) in try run(data) },
        seeds: { ProtoSeeds.all() })

    static func run(_ data: UnsafeRawBufferPointer) throws(FuzzViolation) {
        try requests(data)
        try responses(data)
        try roundTrip(try? Node(decoding: data), "Node")
        try roundTrip(try? ProtoStruct(decoding: data), "Struct")
        try roundTrip(try? RPCStatus(decoding: data), "Status")
        // The depth limit at every level, not only the default 32.
        if let first = data.first {
            let depth = Int(first % 40)
            try roundTrip(try? Node(decoding: data, maxDepth: depth), "Node(maxDepth: \(depth))")
        }
    }

    static func requests(_ data: UnsafeRawBufferPointer) throws(FuzzViolation) {
        let full = try? DiscoveryRequest(decoding: data)
        var deferredError: ProtoDecodingError?
        var deferred: DiscoveryRequest?
        var wire: [UInt8] = []
        do throws(ProtoDecodingError) {
            var d = try DiscoveryRequest(decodingDeferringNames: data)
            wire = d.resourceNamesWire
            try d.decodeDeferredNames()
            deferred = d
        } catch {
            deferredError = error
        }
        if let d = deferred {
            try require(!d.namesDeferred, name, "decodeDeferredNames left namesDeferred true")
            var names = DiscoveryRequest()
            names.resourceNames = d.resourceNames
            try require(names.encode() == wire, name,
                        "deferred names wire \(wire.hex) is not the canonical encoding \(names.encode().hex)")
        }
        switch (full, deferred) {
        case (nil, nil):
            return
        case let (f?, nil):
            throw FuzzViolation(name, "decoding accepts the request, the deferred decoder rejects it (\(deferredError.map(String.init(describing:)) ?? "?")): \(f)")
        case let (nil, d?):
            throw FuzzViolation(name, "the deferred decoder accepts the request, decoding rejects it: \(d)")
        case let (f?, d?):
            // Compared through their encodings: Struct values may hold NaN, which is not == itself.
            try require(f.encode() == d.encode(), name, "the two decoders disagree: \(f) vs \(d)")
            try require(f.resourceNames == d.resourceNames, name, "names differ: \(f.resourceNames) vs \(d.resourceNames)")
            try roundTrip(f, "DiscoveryRequest")
        }
    }

    static func responses(_ data: UnsafeRawBufferPointer) throws(FuzzViolation) {
        let full = try? DiscoveryResponse(decoding: data)
        try roundTrip(full, "DiscoveryResponse")
        var seen: [([UInt8], [UInt8])] = []
        let view = try? DiscoveryResponseView(data) { tu, value in
            seen.append((Array(tu), Array(value)))
        }
        guard let full else { return }
        guard let view else { throw FuzzViolation(name, "DiscoveryResponseView rejects a response that decodes: \(full)") }
        try require(view.versionInfo == full.versionInfo && view.typeURL == full.typeURL && view.nonce == full.nonce,
                    name, "the view and the decoder disagree on version/type/nonce")
        try require(view.resourceCount == full.resources.count, name,
                    "the view counts \(view.resourceCount) resources, the decoder \(full.resources.count)")
        for (i, (tu, value)) in seen.enumerated() {
            try require(tu == Array(full.resources[i].typeURL.utf8) && value == full.resources[i].value, name,
                        "resource \(i): the view and the decoder see different bytes")
        }
    }

    static func roundTrip<M: ProtoDecodable & ProtoEncodable>(_ m: M?, _ what: String) throws(FuzzViolation) {
        guard let m else { return }
        let once = m.encode()
        try require(once.count == m.protoSize, name, "\(what): protoSize \(m.protoSize), encoded \(once.count) bytes")
        let again: M
        do { again = try M(decoding: once) } catch {
            throw FuzzViolation(name, "\(what): its own encoding does not decode (\(error)): \(once.hex)")
        }
        try require(again.encode() == once, name, "\(what): re-encoding is not a fixed point: \(once.hex)")
    }
}

extension Array where Element == UInt8 {
    var hex: String {
        let digits = [Character]("0123456789abcdef")
        var s = ""
        for b in prefix(256) { s.append(digits[Int(b >> 4)]); s.append(digits[Int(b & 15)]) }
        return count > 256 ? s + "…" : s
    }
}
