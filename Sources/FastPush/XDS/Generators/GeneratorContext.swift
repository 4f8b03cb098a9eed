/// What a generator needs for one stream and one type.
public struct GeneratorContext {
    public let proxy: Proxy
    public let watch: WatchedResource
    public let request: PushRequest
    public let push: PushContext
    /// Answers a client request rather than a push.
    public let forRequest: Bool

    public var view: NamespaceView { push.view(for: proxy.namespace) }

    /// The body for `key`, built once per PushContext from `resources()`.
    func body(_ type: XdsType, key: ResponseKey, _ resources: () -> [EncodedResource]) -> EncodedBody {
        push.cache.responses(type).get(key) {
            let rs = resources()
            return EncodedBody(bytes: DiscoveryResponseBody.encode(typeURL: type.typeURL, resources: rs), resourceCount: rs.count)
        }
    }

    func response(_ type: XdsType, _ body: EncodedBody, full: Bool = true) -> XdsResponse {
        XdsResponse(type: type, version: push.version, body: body, full: full, forced: forRequest)
    }

    func resource(_ type: XdsType, _ key: ResourceKey, _ build: () -> EncodedResource) -> EncodedResource {
        push.cache.resources(type).get(key, build: build)
    }
}
