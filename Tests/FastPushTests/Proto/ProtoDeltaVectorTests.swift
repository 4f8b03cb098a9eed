import Testing
@testable import FastPush

/// The Delta ADS messages against the real envoy protos (vectors from
/// Tests/interop/vectors/make_vectors.py, python protobuf 7.36.2 / xds-protos 1.85.0), and the
/// content hash that gives Delta resources their versions.
///
/// The other direction (python parsing what Swift writes) is `make_vectors.py --check` on the file
/// `FASTPUSH_PROTO_VECTORS_OUT=F swift test --filter ProtoEnvoyVectorTests` writes, which holds
/// `DeltaReference.swiftEncodings` too.
@Suite struct ProtoDeltaVectorTests {
    /// Swift writes exactly python's bytes (deterministic serialization, field-number order).
    static let exactNames = [
        "delta_discovery_request", "delta_discovery_request_ack", "delta_discovery_request_big_node",
        "delta_resource", "delta_discovery_response", "delta_discovery_response_removals_only",
    ]
    /// Same fields, other bytes: python writes empty map keys and values (`0a 00`, `12 00`).
    static let fieldEqualNames = ["delta_discovery_request_empty_versions"]
    /// Fields fastpilot cannot write (locators, aliases, ttl, control_plane, ...): decoded only.
    static let decodeOnlyNames = ["delta_discovery_request_locators", "delta_resource_extras", "delta_discovery_response_extras"]
    static var allNames: [String] { exactNames + fieldEqualNames + decodeOnlyNames }

    static func python(_ name: String) throws -> [UInt8] {
        [UInt8](hex: try #require(PythonVectors.hex[name], "no python vector \(name)"))
    }

    @Test(arguments: exactNames)
    func swiftEncodingMatchesPythonProtobuf(name: String) throws {
        let want = try Self.python(name)
        let got = try #require(DeltaReference.swiftEncodings.first { $0.name == name }, "no Swift encoding \(name)").bytes
        #expect(got.hex == want.hex)
    }

    @Test func everyDeltaVectorIsCovered() {
        let delta = Set(PythonVectors.hex.keys.filter { $0.hasPrefix("delta_") })
        #expect(delta == Set(Self.allNames))
        // Every vector python can check has a Swift encoding to export.
        let exported = Set(DeltaReference.swiftEncodings.map(\.name))
        #expect(Set(Self.exactNames + Self.fieldEqualNames).isSubset(of: exported))
    }

    @Test func pythonEncodedRequestsDecodeToTheReference() throws {
        #expect(try DeltaDiscoveryRequest(decoding: Self.python("delta_discovery_request")) == DeltaReference.request)
        #expect(try DeltaDiscoveryRequest(decoding: Self.python("delta_discovery_request_ack")) == DeltaReference.ack)
        #expect(try DeltaDiscoveryRequest(decoding: Self.python("delta_discovery_request_big_node")) == DeltaReference.bigNode)
        // resource_locators_subscribe/unsubscribe (8, 9) are skipped; the rest is read.
        let locators = try DeltaDiscoveryRequest(decoding: Self.python("delta_discovery_request_locators"))
        #expect(locators == DeltaReference.locators)
    }

    @Test func emptyMapKeysAndValuesFromPythonDecode() throws {
        let bytes = try Self.python("delta_discovery_request_empty_versions")
        // Python writes the empty value of each entry: 12 00.
        #expect(bytes.hex.contains("0a0c302e302e302e305f383038301200"))
        let r = try DeltaDiscoveryRequest(decoding: bytes)
        // A map: python's order is its own (here "" last); the decoder keeps wire order.
        #expect(Self.versions(r) == ["": "x", "0.0.0.0_8080": "", "0.0.0.0_9090": ""])
        #expect(r.initialResourceVersions.count == 3)
        var reference = DeltaReference.emptyVersions
        reference.initialResourceVersions = r.initialResourceVersions
        #expect(r == reference)
        // Our bytes differ (empty fields left out) but decode to the same request.
        let ours = DeltaReference.emptyVersions.encode()
        #expect(ours != bytes)
        let back = try DeltaDiscoveryRequest(decoding: ours)
        #expect(Self.versions(back) == Self.versions(r) && back.typeURL == r.typeURL)
    }

    static func versions(_ r: DeltaDiscoveryRequest) -> [String: String] {
        Dictionary(r.initialResourceVersions.map { ($0.name, $0.version) }, uniquingKeysWith: { $1 })
    }

    @Test func skippingTheNodeReadsEverythingElse() throws {
        for name in ["delta_discovery_request_big_node", "delta_discovery_request"] {
            let bytes = try Self.python(name)
            let full = try bytes.withUnsafeBytes { try DeltaDiscoveryRequest(decoding: $0, decodingNode: true) }
            let skipped = try bytes.withUnsafeBytes { try DeltaDiscoveryRequest(decoding: $0, decodingNode: false) }
            #expect(full.node != nil && !full.nodeSkipped)
            #expect(skipped.node == nil && skipped.nodeSkipped, "\(name)")
            var withoutNode = full
            withoutNode.node = nil
            #expect(skipped == withoutNode, "\(name)")
        }
        // The big node really is big (what makes skipping it worth it).
        #expect(try Self.python("delta_discovery_request_big_node").count > 10_000)
        // No node at all: nothing skipped.
        let ack = try Self.python("delta_discovery_request_ack").withUnsafeBytes { try DeltaDiscoveryRequest(decoding: $0, decodingNode: false) }
        #expect(!ack.nodeSkipped && ack == DeltaReference.ack)
    }

    @Test func aSkippedNodeMustStillBeWellFramed() throws {
        let typeURL = DeltaWire.string(2, EnvoyTypeURL.cluster)
        // Field 1 as a varint: the wrong wire type, whether the node is decoded or skipped.
        let varintNode = DeltaWire.key(1, 0) + [0x01] + typeURL
        for decodingNode in [true, false] {
            #expect(throws: ProtoDecodingError.self) {
                try varintNode.withUnsafeBytes { try DeltaDiscoveryRequest(decoding: $0, decodingNode: decodingNode) }
            }
        }
        #expect(throws: ProtoDecodingError.wrongWireType(field: 1, expected: .lengthDelimited, actual: .varint)) {
            try varintNode.withUnsafeBytes { try DeltaDiscoveryRequest(decoding: $0, decodingNode: false) }
        }
        // A node whose length runs past the end.
        let truncated = DeltaWire.key(1, 2) + DeltaWire.varint(50) + [1, 2, 3]
        #expect(throws: ProtoDecodingError.self) {
            try truncated.withUnsafeBytes { try DeltaDiscoveryRequest(decoding: $0, decodingNode: false) }
        }
        // Skipped means not decoded: a node that is not a valid Node passes when skipped.
        let garbageNode = DeltaWire.bytes(1, [0xFF, 0xFF, 0xFF]) + typeURL
        #expect(throws: ProtoDecodingError.self) {
            try garbageNode.withUnsafeBytes { try DeltaDiscoveryRequest(decoding: $0, decodingNode: true) }
        }
        let r = try garbageNode.withUnsafeBytes { try DeltaDiscoveryRequest(decoding: $0, decodingNode: false) }
        #expect(r.nodeSkipped && r.typeURL == EnvoyTypeURL.cluster)
    }

    @Test func pythonEncodedResponsesDecodeToTheReference() throws {
        #expect(try DeltaDiscoveryResponse(decoding: Self.python("delta_discovery_response")) == DeltaReference.response)
        #expect(try DeltaDiscoveryResponse(decoding: Self.python("delta_discovery_response_removals_only")) == DeltaReference.removalsOnly)
        // control_plane, removed_resource_names and resource_errors are skipped.
        #expect(try DeltaDiscoveryResponse(decoding: Self.python("delta_discovery_response_extras")) == DeltaReference.response)
        #expect(try DeltaResource(decoding: Self.python("delta_resource")) == DeltaReference.resource)
        // aliases, ttl, cache_control, resource_name and metadata are skipped.
        let extras = try DeltaResource(decoding: Self.python("delta_resource_extras"))
        #expect(extras == DeltaReference.resourceFor(Reference.clusterMinimal.encodedResource()))
    }

    /// The versions in python's vectors come from a python port of ContentHash: the same
    /// function in both languages, over the same Any bytes.
    @Test func pythonComputedVersionsEqualContentHash() throws {
        let r = try DeltaDiscoveryResponse(decoding: Self.python("delta_discovery_response"))
        #expect(r.resources.count == 2)
        for res in r.resources {
            let any = try #require(res.resource).encode()
            #expect(res.version == ContentHash.hex(ContentHash.hash(SharedBytes(any))), "\(res.name)")
        }
        let single = try DeltaResource(decoding: Self.python("delta_resource"))
        #expect(single.version == ContentHash.hex(Reference.clusterFull.encodedResource().version))
    }

    /// The push path writes a shared DeltaDiscoveryResponseBody and a per-stream tail: together
    /// they are one valid DeltaDiscoveryResponse, equal to python's after decoding.
    @Test func bodyPlusTailIsAFullDeltaResponse() throws {
        for (name, split) in [("delta_discovery_response", DeltaReference.responseSplit),
                              ("delta_discovery_response_removals_only", DeltaReference.removalsOnlySplit)] {
            let python = try DeltaDiscoveryResponse(decoding: Self.python(name))
            let decoded = try DeltaDiscoveryResponse(decoding: split)
            #expect(decoded == python, "\(name)")
            // Same size, other order: the tail (system_version_info, nonce) comes last.
            #expect(split.count == (try Self.python(name)).count, "\(name)")
        }
        let r = DeltaReference.response
        let resources = [Reference.clusterMinimal.encodedResource(), Reference.clusterFull.encodedResource()]
        let body = DeltaDiscoveryResponseBody.encode(typeURL: r.typeURL, resources: resources, removed: r.removedResources)
        #expect(body.count == DeltaDiscoveryResponseBody.size(typeURL: r.typeURL, resources: resources, removed: r.removedResources))
        // Without a tail: still a response, with neither version nor nonce.
        let bare = try DeltaDiscoveryResponse(decoding: body.array)
        #expect(bare.nonce.isEmpty && bare.systemVersionInfo.isEmpty && bare.resources == r.resources)
        // An empty body (the answer to a first request with nothing to send) is just the type.
        let empty = DeltaDiscoveryResponseBody.encode(typeURL: EnvoyTypeURL.cluster, resources: [], removed: [])
        #expect(empty.array == DeltaWire.string(4, EnvoyTypeURL.cluster))
    }

    @Test func wholeResponseEncoderRoundTrips() throws {
        for r in [DeltaReference.response, DeltaReference.removalsOnly, DeltaDiscoveryResponse()] {
            let bytes = r.encode()
            #expect(bytes.count == r.protoSize)
            #expect(try DeltaDiscoveryResponse(decoding: bytes) == r)
        }
        for r in [DeltaReference.request, DeltaReference.ack, DeltaReference.bigNode, DeltaReference.emptyVersions, DeltaDiscoveryRequest()] {
            let bytes = r.encode()
            #expect(bytes.count == r.protoSize)
            #expect(try DeltaDiscoveryRequest(decoding: bytes) == r)
        }
    }
}

/// Hand-checked content hash properties: deterministic values, 16 lowercase hex digits, and 0
/// reserved for "unknown".
@Suite struct ContentHashTests {
    static func hash(_ bytes: [UInt8]) -> UInt64 { bytes.withUnsafeBytes { ContentHash.hash($0) } }

    /// Computed once (by the python port in make_vectors.py, and equal to what Swift gave when
    /// written): a changed hash function would change every client's held versions, and a
    /// reconnecting Envoy's initial_resource_versions would all miss.
    @Test func knownValues() {
        #expect(ContentHash.hex(Self.hash([])) == "9353dfc8a195f3e2")
        #expect(ContentHash.hex(Self.hash(Array("a".utf8))) == "75377f368e5bd16d")
        #expect(ContentHash.hex(Self.hash(Array("abcdefgh".utf8))) == "286bd345cadb51c8")
        #expect(ContentHash.hex(Self.hash(Array("abcdefghi".utf8))) == "0ce278ada19ac6ad")
        #expect(ContentHash.hex(Self.hash((0..<100).map(UInt8.init))) == "b4a2bc93bbd3f0fb")
    }

    @Test func sameBytesSameHashWhateverTheAlignment() {
        let payload: [UInt8] = (0..<77).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ 11) }
        let want = Self.hash(payload)
        for offset in 0..<9 {
            let padded = [UInt8](repeating: 0xEE, count: offset) + payload + [0xEE]
            let got = padded.withUnsafeBytes { ContentHash.hash(UnsafeRawBufferPointer(rebasing: $0[offset..<(offset + payload.count)])) }
            #expect(got == want, "offset \(offset)")
        }
        #expect(ContentHash.hash(SharedBytes(payload)) == want)
        // Neighbouring inputs differ.
        var changed = payload
        changed[40] ^= 1
        #expect(Self.hash(changed) != want)
        #expect(Self.hash(payload + [0]) != want)
    }

    /// The 8 bytes below are a preimage of 0 for the hash before its last step (found by
    /// inverting the mixing steps); ContentHash must still not return 0, which means "unknown".
    @Test func zeroIsNeverReturned() {
        #expect(Self.hash([0x92, 0x6b, 0xea, 0x9c, 0xe2, 0x73, 0xf4, 0xbf]) == 1)
        var g = SeededGenerator(seed: 47)
        for n in 0..<2000 {
            let bytes = (0..<(n % 40)).map { _ in UInt8.random(in: 0...255, using: &g) }
            #expect(Self.hash(bytes) != 0)
        }
    }

    @Test func hexRoundTrip() {
        var g = SeededGenerator(seed: 7)
        for v in [UInt64(1), 0x0123_4567_89ab_cdef, UInt64.max, 1 << 63, 0xf] + (0..<500).map({ _ in g.next() }) {
            let s = ContentHash.hex(v)
            #expect(s.utf8.count == 16)
            #expect(s.allSatisfy { ("0"..."9").contains($0) || ("a"..."f").contains($0) })
            #expect(ContentHash.parse(s) == v)
        }
        #expect(ContentHash.hex(0xf) == "000000000000000f")
        #expect(ContentHash.parse("ffffffffffffffff") == UInt64.max)
    }

    @Test func parseRejectsAnythingButSixteenLowercaseHexDigits() {
        for s in ["", "0", "0123456789abcde", "0123456789abcdef0", "0123456789ABCDEF", "0123456789abcdeF",
                  "g123456789abcdef", " 123456789abcdef", "0123456789abcdef ", "0x23456789abcdef", "-123456789abcdef",
                  "é123456789abcde", "0123456789abcd\u{0}f", "v1", "1", "ffffffffffffffffffffffffffffffff"] {
            #expect(ContentHash.parse(s) == 0, "\(s.debugDescription)")
        }
    }
}

/// The Swift side of the Delta reference messages in make_vectors.py (same names, same values).
enum DeltaReference {
    static let echo = "outbound|8080||echo.default.svc.cluster.local"

    static var request: DeltaDiscoveryRequest {
        var r = DeltaDiscoveryRequest()
        r.node = Reference.discoveryRequest.node
        r.typeURL = EnvoyTypeURL.cluster
        r.resourceNamesSubscribe = [echo, "", "*"]
        r.resourceNamesUnsubscribe = ["outbound|9090||gone.default.svc.cluster.local", "ünïcødé ✓"]
        r.initialResourceVersions = [("echo-cluster", "0123456789abcdef"), ("outbound|7070||ledger.payments.svc.cluster.local", "v1")]
        r.responseNonce = "17"
        r.errorDetail = RPCStatus(code: 13, message: "delta: rejected ✗")
        return r
    }

    static var ack: DeltaDiscoveryRequest {
        var r = DeltaDiscoveryRequest()
        r.typeURL = EnvoyTypeURL.clusterLoadAssignment
        r.responseNonce = "42"
        return r
    }

    static var emptyVersions: DeltaDiscoveryRequest {
        var r = DeltaDiscoveryRequest()
        r.typeURL = EnvoyTypeURL.listener
        r.initialResourceVersions = [("", "x"), ("0.0.0.0_8080", ""), ("0.0.0.0_9090", "")]
        return r
    }

    static var bigNode: DeltaDiscoveryRequest {
        var r = DeltaDiscoveryRequest()
        var n = Node()
        n.id = "sidecar~10.0.0.1~big.default~default.svc.cluster.local"
        var fields: [String: ProtoValue] = [:]
        for i in 0..<300 {
            let k = String(i).leftPadded(4)
            fields["KEY_\(k)"] = .string("value-\(k)-abcdefghijklmnop")
        }
        fields["NESTED"] = .structValue(ProtoStruct(fields: ["a": .structValue(ProtoStruct(fields: ["b": .structValue(ProtoStruct(fields: [
            "c": .list([.number(1), .number(2), .number(3), .string("four"), .structValue(ProtoStruct(fields: ["five": .bool(true)]))]),
        ]))]))]))
        n.metadata = ProtoStruct(fields: fields)
        n.userAgentName = "envoy"
        r.node = n
        r.typeURL = EnvoyTypeURL.cluster
        r.resourceNamesSubscribe = [echo]
        r.responseNonce = "9"
        return r
    }

    static var locators: DeltaDiscoveryRequest {
        var r = DeltaDiscoveryRequest()
        r.typeURL = EnvoyTypeURL.routeConfiguration
        r.resourceNamesSubscribe = ["8080"]
        return r
    }

    static func resourceFor(_ e: EncodedResource) -> DeltaResource {
        let any = try! ProtoAny(decoding: e.any.array)
        return DeltaResource(name: e.name, version: ContentHash.hex(e.version), resource: any)
    }

    static var resource: DeltaResource { resourceFor(Reference.clusterFull.encodedResource()) }

    static let removed = ["outbound|9090||gone.default.svc.cluster.local", "outbound|1||x.invalid"]

    static var response: DeltaDiscoveryResponse {
        var r = DeltaDiscoveryResponse()
        r.systemVersionInfo = "7"
        r.resources = [resourceFor(Reference.clusterMinimal.encodedResource()), resourceFor(Reference.clusterFull.encodedResource())]
        r.typeURL = EnvoyTypeURL.cluster
        r.nonce = "3"
        r.removedResources = removed
        return r
    }

    /// `response` as the push path writes it: the shared body, then the stream's tail.
    static var responseSplit: [UInt8] {
        DeltaDiscoveryResponseBody.encode(typeURL: EnvoyTypeURL.cluster,
                                          resources: [Reference.clusterMinimal.encodedResource(), Reference.clusterFull.encodedResource()],
                                          removed: removed).array
            + DiscoveryResponseTail.encode(version: "7", nonce: "3")
    }

    static var removalsOnly: DeltaDiscoveryResponse {
        var r = DeltaDiscoveryResponse()
        r.systemVersionInfo = "12"
        r.typeURL = EnvoyTypeURL.listener
        r.nonce = "1"
        r.removedResources = ["0.0.0.0_9090"]
        return r
    }

    static var removalsOnlySplit: [UInt8] {
        DeltaDiscoveryResponseBody.encode(typeURL: EnvoyTypeURL.listener, resources: [], removed: ["0.0.0.0_9090"]).array
            + DiscoveryResponseTail.encode(version: "12", nonce: "1")
    }

    /// Swift's encodings by make_vectors.py's names (`_split`: body + tail), exported for
    /// `make_vectors.py --check` with the SotW ones.
    static var swiftEncodings: [(name: String, bytes: [UInt8])] {
        [
            ("delta_discovery_request", request.encode()),
            ("delta_discovery_request_ack", ack.encode()),
            ("delta_discovery_request_empty_versions", emptyVersions.encode()),
            ("delta_discovery_request_big_node", bigNode.encode()),
            ("delta_resource", resource.encode()),
            ("delta_discovery_response", response.encode()),
            ("delta_discovery_response_split", responseSplit),
            ("delta_discovery_response_removals_only", removalsOnly.encode()),
            ("delta_discovery_response_removals_only_split", removalsOnlySplit),
        ]
    }
}

/// Hand-made protobuf bytes for the broken inputs.
enum DeltaWire {
    static func varint(_ v: UInt64) -> [UInt8] {
        var v = v, out: [UInt8] = []
        while v >= 0x80 { out.append(UInt8(v & 0x7F) | 0x80); v >>= 7 }
        out.append(UInt8(v))
        return out
    }
    static func key(_ field: Int, _ wt: UInt8) -> [UInt8] { varint(UInt64(field) << 3 | UInt64(wt)) }
    static func bytes(_ field: Int, _ b: [UInt8]) -> [UInt8] { key(field, 2) + varint(UInt64(b.count)) + b }
    static func string(_ field: Int, _ s: String) -> [UInt8] { bytes(field, Array(s.utf8)) }
}

private extension String {
    func leftPadded(_ n: Int) -> String { String(repeating: "0", count: Swift.max(0, n - count)) + self }
}
