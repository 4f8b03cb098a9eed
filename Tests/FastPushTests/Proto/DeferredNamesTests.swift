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
}
