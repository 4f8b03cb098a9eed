// The envoy.service.discovery.v3 messages fastpilot reads and writes, as plain values.
// Decoding and encoding live in the Proto codec files beside this one.

/// envoy.service.discovery.v3.DiscoveryRequest
public struct DiscoveryRequest: Sendable, Equatable {
    public var versionInfo: String = ""            // 1
    public var node: Node? = nil                   // 2
    public var resourceNames: [String] = []        // 3
    public var typeURL: String = ""                // 4
    public var responseNonce: String = ""          // 5
    public var errorDetail: RPCStatus? = nil       // 6 google.rpc.Status
    /// With `init(decodingDeferringNames:)`: the names still as wire bytes, and their digest.
    public var resourceNamesWire: [UInt8] = []
    /// With `leavingNamesInPlace`: where the names' wire bytes are in the decoded buffer (they
    /// were not copied); `materializeNames(from:)` copies them when they are needed.
    public var namesRange: Range<Int>?
    public var resourceNamesDigest: UInt64 = 0
    public var namesDeferred = false
    public init() {}
}

/// envoy.service.discovery.v3.DiscoveryResponse
public struct DiscoveryResponse: Sendable, Equatable {
    public var versionInfo: String = ""            // 1
    public var resources: [ProtoAny] = []          // 2
    public var typeURL: String = ""                // 4
    public var nonce: String = ""                  // 5
    public var controlPlane: ControlPlane? = nil   // 6 (config.core.v3.ControlPlane{identifier=1})
    public init() {}
}

public struct ControlPlane: Sendable, Equatable {
    public var identifier: String = ""
    public init(identifier: String = "") { self.identifier = identifier }
}

/// envoy.config.core.v3.Node (the fields fastpilot uses; the rest are skipped on decode).
public struct Node: Sendable, Equatable {
    public var id: String = ""                     // 1
    public var cluster: String = ""                // 2
    public var metadata: ProtoStruct? = nil        // 3 google.protobuf.Struct
    public var locality: NodeLocality? = nil       // 4
    public var userAgentName: String = ""          // 6
    public var userAgentVersion: String = ""       // 7 (oneof user_agent_version_type)
    public var clientFeatures: [String] = []       // 10
    public init() {}
}

/// envoy.config.core.v3.Locality
public struct NodeLocality: Sendable, Equatable {
    public var region: String = ""                 // 1
    public var zone: String = ""                   // 2
    public var subZone: String = ""                // 3
    public init(region: String = "", zone: String = "", subZone: String = "") {
        self.region = region; self.zone = zone; self.subZone = subZone
    }
}

/// google.rpc.Status
public struct RPCStatus: Sendable, Equatable {
    public var code: Int32 = 0                     // 1
    public var message: String = ""                // 2
    public var details: [ProtoAny] = []            // 3
    public init(code: Int32 = 0, message: String = "") { self.code = code; self.message = message }
}

/// google.protobuf.Any
public struct ProtoAny: Sendable, Equatable {
    public var typeURL: String                     // 1
    public var value: [UInt8]                      // 2
    public init(typeURL: String, value: [UInt8]) { self.typeURL = typeURL; self.value = value }
}

/// google.protobuf.Struct: map<string, Value> fields = 1.
public struct ProtoStruct: Sendable, Equatable {
    public var fields: [String: ProtoValue] = [:]
    public init(fields: [String: ProtoValue] = [:]) { self.fields = fields }

    /// A string field, the common case for Istio node metadata (NAMESPACE, GENERATOR, ...).
    public subscript(string key: String) -> String? {
        if case let .string(s)? = fields[key] { return s }
        return nil
    }
}

/// google.protobuf.Value
public indirect enum ProtoValue: Sendable, Equatable {
    case null                                      // 1 NullValue
    case number(Double)                            // 2
    case string(String)                            // 3
    case bool(Bool)                                // 4
    case structValue(ProtoStruct)                  // 5
    case list([ProtoValue])                        // 6 ListValue{values=1}
}
