import Testing
@testable import FastPush

@Suite struct ProtoMessageCodecTests {
    @Test func discoveryRequestRoundTrip() throws {
        let req = Reference.discoveryRequest
        let bytes = req.encode()
        #expect(bytes.count == req.protoSize)
        let back = try DiscoveryRequest(decoding: bytes)
        #expect(back == req)
        #expect(back.node?.metadata?[string: "NAMESPACE"] == "default")
        #expect(back.node?.metadata?[string: "ünïcødé ✓"] == "值 🚀")
        #expect(back.resourceNames == ["echo-cluster", "", "outbound|8080||echo.default.svc.cluster.local"])
        // Through the raw-buffer entry point too.
        let viaRaw = try bytes.withUnsafeBytes { raw throws(ProtoDecodingError) in try DiscoveryRequest(decoding: raw) }
        #expect(viaRaw == req)
    }

    @Test func emptyMessageIsPresentAbsentIsNil() throws {
        var req = DiscoveryRequest()
        #expect(req.encode() == [])
        req.node = Node()
        req.errorDetail = RPCStatus()
        #expect(req.encode() == [0x12, 0x00, 0x32, 0x00])
        let back = try DiscoveryRequest(decoding: req.encode())
        #expect(back.node == Node())
        #expect(back.errorDetail == RPCStatus())
        let absent = try DiscoveryRequest(decoding: [UInt8]())
        #expect(absent.node == nil)
        #expect(absent.errorDetail == nil)
    }

    @Test func unknownFieldsAreSkipped() throws {
        let node = encodeWith { w in
            w.writeString(field: 1, "node-id")
            w.writeMessage(field: 8, size: 2) { $0.writeUInt32(field: 1, 5) }   // user_agent_build_version
            w.writeMessage(field: 9, size: 3) { $0.writeString(field: 1, "x") } // extensions
            w.writeString(field: 10, "feature")
            w.writeMessage(field: 11, size: 0) { _ in }                           // listening_addresses
            w.writeMessage(field: 12, size: 3) { $0.writeString(field: 1, "k") } // dynamic_parameters
            w.writeFixed32(field: 99, 1)
            w.writeFixed64(field: 100, 1)
            w.writeUInt64(field: 101, 1)
        }
        let bytes = encodeWith { w in
            w.writeString(field: 4, EnvoyTypeURL.cluster)
            w.writeMessage(field: 7, size: 3) { $0.writeString(field: 1, "r") }  // resource_locators
            w.writeBytes(field: 2, node)
            w.writeString(field: 3, "a")
            w.writeUInt64(field: 1000, 42)
            w.writeString(field: 3, "b")
        }
        let req = try DiscoveryRequest(decoding: bytes)
        #expect(req.typeURL == EnvoyTypeURL.cluster)
        #expect(req.resourceNames == ["a", "b"])
        #expect(req.node?.id == "node-id")
        #expect(req.node?.clientFeatures == ["feature"])

        // DiscoveryResponse: canary=3 and resource_errors=7 are skipped.
        var resp = DiscoveryResponse()
        resp.nonce = "n"
        var extra = resp.encode()
        extra += encodeWith { w in w.writeBool(field: 3, true); w.writeMessage(field: 7, size: 0) { _ in } }
        #expect(try DiscoveryResponse(decoding: extra) == resp)
    }

    @Test func fieldsInAnyOrderAndLastScalarWins() throws {
        let bytes = encodeWith { w in
            w.writeString(field: 5, "nonce")
            w.writeString(field: 1, "v1")
            w.writeString(field: 1, "v2")
            w.writeString(field: 4, "t")
        }
        let req = try DiscoveryRequest(decoding: bytes)
        #expect(req.versionInfo == "v2")
        #expect(req.responseNonce == "nonce")
        #expect(req.typeURL == "t")
    }

    @Test func nodeRoundTripWithEveryField() throws {
        var n = Node()
        n.id = "id"; n.cluster = "c"; n.userAgentName = "ua"; n.userAgentVersion = "1.0"
        n.locality = NodeLocality(region: "r", zone: "z", subZone: "s")
        n.clientFeatures = ["a", ""]
        n.metadata = ProtoStruct()
        let back = try Node(decoding: n.encode())
        #expect(back == n)
        #expect(back.metadata == ProtoStruct())
        #expect(try NodeLocality(decoding: NodeLocality().encode()) == NodeLocality())
        #expect(NodeLocality().encode().isEmpty)
    }

    @Test func structAndValueRoundTrip() throws {
        let s = Reference.metadata
        #expect(try ProtoStruct(decoding: s.encode()) == s)
        #expect(try ProtoStruct(decoding: ProtoStruct().encode()) == ProtoStruct())
        let values: [ProtoValue] = [
            .null, .number(0), .number(-0.0), .number(.infinity), .number(1e-300), .string(""), .string("✓"),
            .bool(false), .bool(true), .structValue(ProtoStruct()), .list([]), .list([.null, .list([.bool(true)])]),
        ]
        for v in values {
            let bytes = v.encode()
            #expect(bytes.count == v.protoSize)
            #expect(!bytes.isEmpty, "oneof member \(v) must be written")
            #expect(try ProtoValue(decoding: bytes) == v)
        }
        // A Value with no kind set decodes as null; a map entry without a value holds null.
        #expect(try ProtoValue(decoding: [UInt8]()) == .null)
        let entryWithoutValue = encodeWith { w in w.writeMessage(field: 1, size: 3) { $0.writeString(field: 1, "k") } }
        #expect(try ProtoStruct(decoding: entryWithoutValue).fields == ["k": .null])
    }

    @Test func structEncodingIsDeterministic() {
        var a = ProtoStruct(), b = ProtoStruct()
        let keys = (0..<50).map { "key-\($0 * 7919 % 101)" }
        for k in keys { a.fields[k] = .string(k) }
        for k in keys.reversed() { b.fields[k] = .string(k) }
        #expect(a.encode() == b.encode())
        // And sorted by key bytes: "A" < "B" < "a".
        let s = ProtoStruct(fields: ["a": .null, "B": .null, "A": .null])
        let bytes = s.encode()
        let firstKeys = [bytes[4], bytes[4 + 9], bytes[4 + 18]]
        #expect(firstKeys == [UInt8(ascii: "A"), UInt8(ascii: "B"), UInt8(ascii: "a")])
    }

    @Test func rpcStatusAndAny() throws {
        var st = RPCStatus(code: -1, message: "bad")
        st.details = [ProtoAny(typeURL: "type.googleapis.com/google.rpc.DebugInfo", value: [1, 2, 3]),
                      ProtoAny(typeURL: "", value: [])]
        #expect(try RPCStatus(decoding: st.encode()) == st)
        let any = ProtoAny(typeURL: EnvoyTypeURL.router, value: [])
        #expect(any.encode() == [0x0A, UInt8(EnvoyTypeURL.router.utf8.count)] + Array(EnvoyTypeURL.router.utf8))
        #expect(try ProtoAny(decoding: any.encode()) == any)
        // A nonzero int32 that is positive but sent as a wide varint keeps its low 32 bits.
        #expect(try RPCStatus(decoding: [0x08, 0x83, 0x80, 0x80, 0x80, 0x10]).code == 3)
    }

    @Test func discoveryResponseRoundTrip() throws {
        let resp = Reference.discoveryResponse
        #expect(try DiscoveryResponse(decoding: resp.encode()) == resp)
        var empty = DiscoveryResponse()
        empty.resources = [ProtoAny(typeURL: "", value: [])]
        // An empty Any is still one resource.
        #expect(try DiscoveryResponse(decoding: empty.encode()).resources.count == 1)
    }

    @Test func gRPCClientRequestShapes() throws {
        // The first request the gRPC client sends (notes: node only on the first request).
        var r = DiscoveryRequest()
        r.typeURL = EnvoyTypeURL.listener
        r.resourceNames = ["echo"]
        var n = Node()
        n.id = "xds-interop-check"; n.cluster = "xds-interop"
        n.locality = NodeLocality(region: "local", zone: "local-a")
        n.userAgentName = "gRPC C-core linux Python"; n.userAgentVersion = "C-core 58.0.0 Python 1.85.3"
        n.clientFeatures = ["envoy.lb.does_not_support_overprovisioning", "xds.config.resource-in-sotw"]
        r.node = n
        #expect(try DiscoveryRequest(decoding: r.encode()) == r)
        // A NACK: previous version, rejected nonce, error_detail code 3.
        var nack = DiscoveryRequest()
        nack.typeURL = EnvoyTypeURL.clusterLoadAssignment
        nack.versionInfo = "1"; nack.responseNonce = "5"; nack.resourceNames = ["echo-cluster"]
        nack.errorDetail = RPCStatus(code: 3, message: "duplicate endpoint address \"ipv4:127.0.0.1:15071\"")
        let back = try DiscoveryRequest(decoding: nack.encode())
        #expect(back.errorDetail?.code == 3)
        #expect(back == nack)
    }
}
