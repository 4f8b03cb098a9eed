/// envoy.config.listener.v3.Listener as proxyless gRPC expects it: name=1 and
/// api_listener=19 ApiListener{api_listener=1 Any(HttpConnectionManager)}. Without
/// api_listener gRPC parses it as a server listener and NACKs.
public struct EnvoyAPIListener: EnvoyResource, Equatable {
    public static let typeURL = EnvoyTypeURL.listener

    public var name: String
    public var connectionManager: EnvoyHttpConnectionManager

    public init(name: String, connectionManager: EnvoyHttpConnectionManager) {
        self.name = name
        self.connectionManager = connectionManager
    }

    public var resourceName: String { name }

    var apiListenerSize: Int { ProtoSize.message(1, connectionManager.anySize) }

    public var protoSize: Int { ProtoSize.string(1, name) + ProtoSize.message(19, apiListenerSize) }

    public func write(to w: inout ProtoWriter) {
        w.writeString(field: 1, name)
        w.writeMessage(field: 19, size: apiListenerSize) { connectionManager.writeAny(field: 1, to: &$0) }
    }
}
