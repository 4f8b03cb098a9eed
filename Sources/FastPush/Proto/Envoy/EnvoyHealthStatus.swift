/// envoy.config.core.v3.HealthStatus. gRPC uses UNKNOWN and HEALTHY endpoints and excludes
/// the others.
public enum EnvoyHealthStatus: UInt32, Sendable, Equatable {
    case unknown = 0
    case healthy = 1
    case unhealthy = 2
    case draining = 3
    case timeout = 4
    case degraded = 5
}
