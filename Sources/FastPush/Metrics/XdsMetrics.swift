/// The push path's metrics, under Istio's names so that existing istiod dashboards work.
public final class XdsMetrics: Sendable {
    public let registry: MetricsRegistry
    public let pushes: [Counter]
    public let sendErrors: [Counter]
    public let pushTime: [Histogram]
    public let rejects: [Counter]
    public let expiredNonce: [Counter]
    public let configSize: [Histogram]
    public let proxyQueueTime: Histogram
    public let convergenceTime: Histogram
    public let debounceTime: Histogram
    public let pushContextInit: Histogram
    public let inboundConfig: Counter
    public let inboundEDS: Counter
    public let xdsClients: Gauge
    public let services: Gauge
    public let pushTriggers: [TriggerReason: Counter]
    public let writeTimeouts: Counter
    public let stalledPushes: Counter
    /// Connections sent GOAWAY at their age limit (`--max-connection-age`).
    public let connectionMaxAge: Counter
    public let internalErrors: Counter
    /// Streams refused because the node's namespace is not its certificate's.
    public let identityDenied: Counter
    /// TLS listener: handshakes done, handshakes that failed, certificate reloads that failed.
    public let tlsHandshakes: Counter
    public let tlsHandshakeFailures: Counter
    public let tlsReloadErrors: Counter
    public let registryErrors: Counter
    /// Delta responses, per type: resources sent, names removed, and resources left out because
    /// the client already held them at the same version.
    public let deltaResources: [DeltaResourceCounters]

    public struct DeltaResourceCounters: Sendable {
        public let sent: Counter
        public let removed: Counter
        public let skipped: Counter
    }

    public init(registry: MetricsRegistry = MetricsRegistry()) {
        self.registry = registry
        func perType<M: Metric>(suffix: String = "", _ make: (String) -> M) -> [M] {
            XdsType.allCases.map { registry.register(make("{type=\"\($0.metricLabel)\(suffix)\"}")) }
        }
        let push = [0.01, 0.1, 0.5, 1, 3, 5, 10, 20, 30]
        let proxy = [0.1, 0.5, 1, 3, 5, 10, 20, 30]
        pushes = perType { Counter("pilot_xds_pushes", "Pilot build and send errors for lds, rds, cds and eds.", labels: $0) }
        sendErrors = perType(suffix: "_senderr") { Counter("pilot_xds_pushes", "Pilot build and send errors for lds, rds, cds and eds.", labels: $0) }
        pushTime = perType { Histogram("pilot_xds_push_time", "Total time in seconds Pilot takes to push lds, rds, cds and eds.", bounds: push, labels: $0) }
        rejects = perType { Counter("pilot_total_xds_rejects", "Total number of XDS responses from pilot rejected by proxy.", labels: $0) }
        expiredNonce = perType { Counter("pilot_xds_expired_nonce", "Total number of XDS requests with an expired nonce.", labels: $0) }
        configSize = perType { Histogram("pilot_xds_config_size_bytes", "Distribution of configuration sizes pushed to clients", bounds: [1, 10000, 1000000, 4000000, 10000000, 40000000], labels: $0) }
        proxyQueueTime = registry.register(Histogram("pilot_proxy_queue_time", "Time in seconds, a proxy is in the push queue before being dequeued.", bounds: proxy))
        convergenceTime = registry.register(Histogram("pilot_proxy_convergence_time", "Delay in seconds between config change and a proxy receiving all required configuration.", bounds: proxy))
        debounceTime = registry.register(Histogram("pilot_debounce_time", "Delay in seconds between the first config enters debouncing and the merged push request is pushed into the push queue.", bounds: push))
        pushContextInit = registry.register(Histogram("pilot_pushcontext_init_seconds", "Total time in seconds Pilot takes to init pushContext.", bounds: [0.01, 0.1, 0.5, 1, 3, 5]))
        inboundConfig = registry.register(Counter("pilot_inbound_updates", "Total number of updates received by pilot.", labels: "{type=\"config\"}"))
        inboundEDS = registry.register(Counter("pilot_inbound_updates", "Total number of updates received by pilot.", labels: "{type=\"eds\"}"))
        xdsClients = registry.register(Gauge("pilot_xds", "Number of endpoints connected to this pilot using XDS.", labels: "{version=\"fastpilot\"}"))
        services = registry.register(Gauge("pilot_services", "Total services known to pilot."))
        var triggers: [TriggerReason: Counter] = [:]
        for r in TriggerReason.allCases {
            triggers[r] = registry.register(Counter("pilot_push_triggers", "Total number of times a push was triggered, labeled by reason for the push.", labels: "{type=\"\(r.rawValue)\"}"))
        }
        pushTriggers = triggers
        writeTimeouts = registry.register(Counter("pilot_xds_write_timeout", "Pilot XDS response write timeouts."))
        stalledPushes = registry.register(Counter("fastpilot_xds_stalled_pushes", "Pushes whose write stalled on a client that does not read; their push slot was released early."))
        connectionMaxAge = registry.register(Counter("fastpilot_xds_connection_max_age_total", "xDS connections sent GOAWAY (NO_ERROR) at their age limit, so that their clients reconnect, possibly to another replica."))
        identityDenied = registry.register(Counter("fastpilot_xds_permission_denied_total", "ADS streams refused with PERMISSION_DENIED: the node claimed a namespace other than its certificate's SPIFFE identity."))
        tlsHandshakes = registry.register(Counter("fastpilot_tls_handshakes_total", "TLS handshakes completed on the xDS TLS listener."))
        tlsHandshakeFailures = registry.register(Counter("fastpilot_tls_handshake_failures_total", "TLS connections closed before their handshake completed: refused certificates, bad input, timeouts."))
        tlsReloadErrors = registry.register(Counter("fastpilot_tls_reload_errors_total", "Certificate or key files that could not be loaded; the last good pair is kept."))
        internalErrors = registry.register(Counter("pilot_total_xds_internal_errors", "Total number of internal XDS errors in pilot."))
        registryErrors = registry.register(Counter("fastpilot_registry_errors", "Registry file loads that failed; the last good registry is kept."))
        deltaResources = XdsType.allCases.map { t in
            func counter(_ outcome: String) -> Counter {
                registry.register(Counter("fastpilot_xds_delta_resources_total",
                                          "Resources in Delta responses: sent, removed, or skipped because the client held them at the same version.",
                                          labels: "{type=\"\(t.metricLabel)\",outcome=\"\(outcome)\"}"))
            }
            return DeltaResourceCounters(sent: counter("sent"), removed: counter("removed"), skipped: counter("skipped"))
        }
    }
}
