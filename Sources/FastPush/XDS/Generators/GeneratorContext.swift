/// What a generator needs for one stream and one type.
public struct GeneratorContext {
    public let proxy: Proxy
    /// What the proxy sees in `push` (looked up once per connection and push).
    public let view: NamespaceView
    public let watch: WatchedResource
    public let request: PushRequest
    public let push: PushContext
    /// Answers a client request rather than a push.
    public let forRequest: Bool
    /// Answers only part of the subscription (newly subscribed names): not a complete response.
    public var partial = false

    public init(proxy: Proxy, watch: WatchedResource, request: PushRequest, push: PushContext, forRequest: Bool,
                partial: Bool = false, view: NamespaceView? = nil) {
        self.proxy = proxy
        self.view = view ?? push.view(for: proxy.namespace)
        self.watch = watch
        self.request = request
        self.push = push
        self.forRequest = forRequest
        self.partial = partial
    }


    /// The body for `key`, built once per PushContext from `resources()`.
    func body(_ type: XdsType, key: ResponseKey, _ resources: () -> [EncodedResource]) -> EncodedBody {
        push.cache.responses(type).get(key) {
            let rs = resources()
            return EncodedBody(bytes: DiscoveryResponseBody.encode(typeURL: type.typeURL, resources: rs), resourceCount: rs.count)
        }
    }

    func response(_ type: XdsType, _ body: EncodedBody, full: Bool = true) -> XdsResponse {
        XdsResponse(type: type, version: push.version, body: body, full: full && !partial, forced: forRequest)
    }

    func resource(_ type: XdsType, _ key: ResourceKey, _ build: () -> EncodedResource) -> EncodedResource {
        push.cache.resources(type).get(key, build: build)
    }
}
