/// Istio's DefaultProxyNeedsPush, for ServiceEntry scoping by exportTo: a change is pushed to
/// a proxy only if it can see the service now, or could in the snapshot it last got (so that
/// removals and visibility loss reach it). A request is narrowed to the keys that matter, as a
/// copy: the original is shared by every connection.
public enum ProxyNeedsPush {
    /// `answered`: the view of a newer snapshot a request was answered from since `before`.
    public static func evaluate(proxy: Proxy, request: PushRequest, now: PushContext?, before: NamespaceView?,
                                view: NamespaceView? = nil, answered: NamespaceView? = nil) -> PushRequest? {
        if request.forced { return request }
        guard let cu = request.configsUpdated, !cu.isEmpty else { return nil }
        let nowView = view ?? now?.view(for: proxy.namespace)
        let beforeView = before === nowView ? nil : before
        let answeredView = answered === nowView || answered === beforeView ? nil : answered
        var kept = Set<ConfigKey>()
        for key in cu {
            switch key.kind {
            case .serviceEntry, .endpoints:
                if nowView?.isVisible(hostname: key.name, serviceNamespace: key.namespace) == true
                    || beforeView?.isVisible(hostname: key.name, serviceNamespace: key.namespace) == true
                    || answeredView?.isVisible(hostname: key.name, serviceNamespace: key.namespace) == true {
                    kept.insert(key)
                }
            default:
                kept.insert(key)
            }
        }
        if kept.isEmpty { return nil }
        if kept.count == cu.count { return request }
        var narrowed = request
        narrowed.configsUpdated = kept
        narrowed.updatedHosts = nil
        return narrowed
    }
}
