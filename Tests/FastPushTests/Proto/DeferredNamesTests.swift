import Testing
@testable import FastPush

@Suite struct DeferredNamesTests {
    func deferred(_ names: [String], nonce: String = "n") throws -> DiscoveryRequest {
        var r = DiscoveryRequest()
        r.typeURL = EnvoyTypeURL.clusterLoadAssignment
        r.resourceNames = names
        r.responseNonce = nonce
        return try r.encode().withUnsafeBytes { try DiscoveryRequest(decodingDeferringNames: $0) }
    }

    @Test func sameNamesSameDigestAndTheyDecode() throws {
        let names = (0..<100).map { "outbound|8080||svc-\($0).bench.svc.cluster.local" }
        var a = try deferred(names), b = try deferred(names, nonce: "other")
        #expect(a.resourceNames.isEmpty && a.namesDeferred)
        #expect(a.resourceNamesDigest == b.resourceNamesDigest)
        #expect(try deferred(Array(names.dropLast())).resourceNamesDigest != a.resourceNamesDigest)
        #expect(try deferred(names.reversed()).resourceNamesDigest != a.resourceNamesDigest)
        try a.decodeDeferredNames()
        #expect(a.resourceNames == names && !a.namesDeferred)
        try b.decodeDeferredNames()
        #expect(b.responseNonce == "other")
    }

    @Test func invalidUTF8InANameIsReportedWhenDecoded() throws {
        // type_url, then resource_names = [0xFF]
        var wire: [UInt8] = [0x1A, 0x01, 0xFF]
        wire += [0x22, 0x01, 0x78]
        var r = try wire.withUnsafeBytes { try DiscoveryRequest(decodingDeferringNames: $0) }
        #expect(throws: ProtoDecodingError.self) { try r.decodeDeferredNames() }
    }

    /// ADS decodes with the names left in the message: the digest must be the copying decoder's,
    /// and materialized names must decode to the same list, contiguous or not.
    @Test func namesLeftInPlaceDigestAndMaterializeLikeCopiedOnes() throws {
        let names = (0..<50).map { "outbound|8080||svc-\($0).bench.svc.cluster.local" }
        var r = DiscoveryRequest()
        r.typeURL = EnvoyTypeURL.clusterLoadAssignment
        r.resourceNames = names
        r.responseNonce = "7"
        let wire = r.encode()
        let copied = try wire.withUnsafeBytes { try DiscoveryRequest(decodingDeferringNames: $0) }
        var inPlace = try wire.withUnsafeBytes { try DiscoveryRequest(decodingDeferringNames: $0, leavingNamesInPlace: true) }
        #expect(inPlace.namesRange != nil && inPlace.resourceNamesWire.isEmpty)
        #expect(inPlace.resourceNamesDigest == copied.resourceNamesDigest)
        wire.withUnsafeBytes { inPlace.materializeNames(from: $0) }
        #expect(inPlace.namesRange == nil)
        try inPlace.decodeDeferredNames()
        #expect(inPlace.resourceNames == names && inPlace.responseNonce == "7")

        // Names split by another field (legal protobuf): copied from the split on, same result.
        var split: [UInt8] = []
        for (i, n) in ["a", "b", "c"].enumerated() {
            split += [0x1A, UInt8(n.utf8.count)] + Array(n.utf8)
            if i == 0 { split += [0x2A, 0x01, 0x39] }  // response_nonce "9" between the names
        }
        let splitCopied = try split.withUnsafeBytes { try DiscoveryRequest(decodingDeferringNames: $0) }
        var splitInPlace = try split.withUnsafeBytes { try DiscoveryRequest(decodingDeferringNames: $0, leavingNamesInPlace: true) }
        #expect(splitInPlace.namesRange == nil)
        #expect(splitInPlace.resourceNamesDigest == splitCopied.resourceNamesDigest)
        split.withUnsafeBytes { splitInPlace.materializeNames(from: $0) }
        try splitInPlace.decodeDeferredNames()
        #expect(splitInPlace.resourceNames == ["a", "b", "c"] && splitInPlace.responseNonce == "9")
    }
}
