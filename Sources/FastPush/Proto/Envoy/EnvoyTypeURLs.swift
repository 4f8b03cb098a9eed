/// `google.protobuf.Any` type URLs of the resources and typed configs fastpilot serves.
public enum EnvoyTypeURL {
    public static let listener = "type.googleapis.com/envoy.config.listener.v3.Listener"
    public static let routeConfiguration = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration"
    public static let cluster = "type.googleapis.com/envoy.config.cluster.v3.Cluster"
    public static let clusterLoadAssignment = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment"
    public static let httpConnectionManager =
        "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
    public static let router = "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"
}
