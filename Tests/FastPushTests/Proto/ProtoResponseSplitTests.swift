import Testing
@testable import FastPush

/// "Encode once, write many": a shared body plus a per-stream tail is one valid DiscoveryResponse.
@Suite struct ProtoResponseSplitTests {
    static let resources = [Reference.clusterMinimal.encodedResource(), Reference.clusterFull.encodedResource()]

    @Test func bodyPlusTailDecodesLikeANormalEncode() throws {
        let body = DiscoveryResponseBody.encode(typeURL: EnvoyTypeURL.cluster, resources: Self.resources)
        #expect(body.count == DiscoveryResponseBody.size(typeURL: EnvoyTypeURL.cluster, resources: Self.resources))
        for (version, nonce) in [("1", "1"), ("2024-01-01T00:00:00Z/7", "12345"), ("", "n"), ("v", "")] {
            let tail = DiscoveryResponseTail.encode(version: version, nonce: nonce)
            #expect(tail.count == DiscoveryResponseTail.size(version: version, nonce: nonce))
            var want = DiscoveryResponse()
            want.versionInfo = version
            want.nonce = nonce
            want.typeURL = EnvoyTypeURL.cluster
            want.resources = [ProtoAny(typeURL: EnvoyTypeURL.cluster, value: Reference.clusterMinimal.encode()),
                              ProtoAny(typeURL: EnvoyTypeURL.cluster, value: Reference.clusterFull.encode())]
            let got = try DiscoveryResponse(decoding: body.array + tail)
            #expect(got == want)
            #expect(try DiscoveryResponse(decoding: want.encode()) == got)
            #expect(want.encode().count == body.count + tail.count)
        }
    }

    @Test func tailWritesIntoCallerMemory() throws {
        let size = DiscoveryResponseTail.size(version: "42", nonce: "nonce-9")
        #expect(size == 2 + 2 + 2 + 7)
        let buf = UnsafeMutableRawPointer.allocate(byteCount: size + 4, alignment: 1)
        defer { buf.deallocate() }
        buf.initializeMemory(as: UInt8.self, repeating: 0xEE, count: size + 4)
        let n = DiscoveryResponseTail.encode(version: "42", nonce: "nonce-9", into: buf)
        #expect(n == size)
        let bytes = Array(UnsafeRawBufferPointer(start: buf, count: size + 4))
        #expect(bytes == [0x0A, 2] + Array("42".utf8) + [0x2A, 7] + Array("nonce-9".utf8) + [0xEE, 0xEE, 0xEE, 0xEE])
        #expect(DiscoveryResponseTail.encode(version: "", nonce: "").isEmpty)
    }

    @Test func bodyWithControlPlaneAndNoResources() throws {
        let body = DiscoveryResponseBody.encode(typeURL: EnvoyTypeURL.listener, resources: [],
                                                controlPlane: ControlPlane(identifier: "fastpilot"))
        let got = try DiscoveryResponse(decoding: body.array + DiscoveryResponseTail.encode(version: "3", nonce: "4"))
        #expect(got.resources.isEmpty)
        #expect(got.typeURL == EnvoyTypeURL.listener)
        #expect(got.controlPlane == ControlPlane(identifier: "fastpilot"))
        #expect(got.versionInfo == "3" && got.nonce == "4")
    }

    @Test func oneBodySharedByManyStreams() throws {
        let body = DiscoveryResponseBody.encode(typeURL: EnvoyTypeURL.cluster, resources: Self.resources)
        let before = body.array
        var nonces = Set<String>()
        for i in 0..<100 {
            let r = try DiscoveryResponse(decoding: body.array + DiscoveryResponseTail.encode(version: "7", nonce: "\(i)"))
            nonces.insert(r.nonce)
            #expect(r.resources.count == 2)
        }
        #expect(nonces.count == 100)
        #expect(body.array == before)
    }

    @Test func encodedResourceIsTheAnyMessage() throws {
        for (res, typeURL, value) in [
            (Reference.clusterFull.encodedResource(), EnvoyTypeURL.cluster, Reference.clusterFull.encode()),
            (Reference.cla.encodedResource(), EnvoyTypeURL.clusterLoadAssignment, Reference.cla.encode()),
            (Reference.listenerAPI.encodedResource(), EnvoyTypeURL.listener, Reference.listenerAPI.encode()),
            (Reference.route.encodedResource(), EnvoyTypeURL.routeConfiguration, Reference.route.encode()),
        ] {
            let any = try ProtoAny(decoding: res.any.array)
            #expect(any == ProtoAny(typeURL: typeURL, value: value))
            #expect(res.any.array == ProtoAny(typeURL: typeURL, value: value).encode())
            #expect(EncodedResource(name: res.name, typeURL: typeURL, value: value).any.array == res.any.array)
        }
        // The CLA sizes its endpoints once (computeSizes); the plain sizing must agree.
        let big = ProtoThroughputTests.bigCLA(endpoints: 400)
        #expect(big.computeSizes().total == big.protoSize)
        #expect(big.encode().count == big.protoSize)
        #expect(big.encodeAny().array == ProtoAny(typeURL: EnvoyTypeURL.clusterLoadAssignment, value: big.encode()).encode())
        #expect(Reference.clusterFull.encodedResource().name == Reference.clusterFull.name)
        #expect(Reference.cla.encodedResource().name == "echo-cluster")
        #expect(Reference.listenerAPI.encodedResource().name == "echo")
        #expect(Reference.route.encodedResource().name == "echo-route")
    }
}
