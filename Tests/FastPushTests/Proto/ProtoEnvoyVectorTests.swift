import Foundation
import Testing
@testable import FastPush

/// Byte-for-byte comparison with the real envoy protos (vectors from make_vectors.py).
@Suite struct ProtoEnvoyVectorTests {
    static let exactNames = [
        "cluster_full", "cluster_minimal", "cla", "cla_empty", "hcm_http2", "listener_api", "listener_outbound",
        "route", "discovery_request", "discovery_request_minimal", "discovery_request_negative_code",
        "discovery_response",
    ]

    @Test(arguments: exactNames)
    func swiftEncodingMatchesPythonProtobuf(name: String) throws {
        let want = try #require(PythonVectors.hex[name], "no python vector \(name)")
        let got = try #require(Reference.swiftEncodings.first { $0.name == name }).bytes
        #expect(got.hex == want)
    }

    @Test func everyPythonVectorIsCompared() {
        // The delta_ vectors are compared in ProtoDeltaVectorTests.
        #expect(Set(PythonVectors.hex.keys) == Set(Self.exactNames + ProtoDeltaVectorTests.allNames))
    }

    @Test func pythonEncodedRequestsDecodeToTheReference() throws {
        #expect(try DiscoveryRequest(decoding: [UInt8](hex: PythonVectors.hex["discovery_request"]!))
                == Reference.discoveryRequest)
        #expect(try DiscoveryRequest(decoding: [UInt8](hex: PythonVectors.hex["discovery_request_minimal"]!))
                == Reference.discoveryRequestMinimal)
        let neg = try DiscoveryRequest(decoding: [UInt8](hex: PythonVectors.hex["discovery_request_negative_code"]!))
        #expect(neg == Reference.discoveryRequestNegativeCode)
        #expect(neg.errorDetail?.code == -2)
        #expect(neg.node == Node())
    }

    @Test func pythonEncodedResponseEqualsSplitEncodingAfterDecoding() throws {
        let python = try DiscoveryResponse(decoding: [UInt8](hex: PythonVectors.hex["discovery_response"]!))
        let split = try DiscoveryResponse(decoding: Reference.discoveryResponseSplit)
        #expect(python == Reference.discoveryResponse)
        #expect(split == python)
        // Same fields, different order: the split puts version_info and nonce last.
        #expect(Reference.discoveryResponseSplit.hex != PythonVectors.hex["discovery_response"]!)
        #expect(Reference.discoveryResponseSplit.count == [UInt8](hex: PythonVectors.hex["discovery_response"]!).count)
    }

    /// Pitfalls from the gRPC client notes, checked on the bytes themselves.
    @Test func requiredPresenceIsOnTheWire() throws {
        // RouteMatch{prefix: ""} = 0a 00 inside match (field 1, length 2).
        #expect(Reference.route.encode().hex.contains("1a140a020a00"))
        // ConfigSource{ads: {}, resource_api_version: V3} = 1a 00 30 02.
        #expect(Reference.clusterMinimal.encode().hex.hasSuffix("1a060a041a003002"))
        // Empty Locality{} present: 0a 00 at the start of a LocalityLbEndpoints.
        #expect(Reference.cla.encode().hex.contains("121c0a00"))
        // bind_to_port BoolValue(false): field 26 (d2 01), length 0.
        #expect(Reference.listenerOutbound.encode().hex.hasSuffix("800102d20100"))
    }

    /// For the reverse check: FASTPUSH_PROTO_VECTORS_OUT=/tmp/swift-vectors.txt swift test --filter Proto,
    /// then make_vectors.py --check /tmp/swift-vectors.txt parses Swift's bytes with the real protos.
    @Test func exportSwiftEncodingsForPythonCheck() throws {
        #expect(Reference.swiftEncodings.count == Self.exactNames.count + 1)
        let encodings = Reference.swiftEncodings + DeltaReference.swiftEncodings
        for (name, bytes) in encodings where name.hasPrefix("discovery_") {
            // What is exported must at least decode with our own decoder.
            if name.hasPrefix("discovery_request") {
                _ = try DiscoveryRequest(decoding: bytes)
            } else {
                _ = try DiscoveryResponse(decoding: bytes)
            }
        }
        for (name, bytes) in DeltaReference.swiftEncodings {
            if name.hasPrefix("delta_discovery_request") {
                _ = try DeltaDiscoveryRequest(decoding: bytes)
            } else if name.hasPrefix("delta_discovery_response") {
                _ = try DeltaDiscoveryResponse(decoding: bytes)
            } else {
                _ = try DeltaResource(decoding: bytes)
            }
        }
        guard let path = ProcessInfo.processInfo.environment["FASTPUSH_PROTO_VECTORS_OUT"] else { return }
        let text = encodings.map { "\($0.name) \($0.bytes.hex)\n" }.joined()
        try text.write(toFile: path, atomically: true, encoding: .utf8)
    }
}
