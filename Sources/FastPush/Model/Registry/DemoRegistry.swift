/// The registry served when no `--registry` file is given, so a first run shows something.
/// Same shape as `kubectl get serviceentries -A -o json`. Every endpoint is on 127.0.0.1, so
/// local test servers on the listed ports make it fully working.
public enum DemoRegistry {
    public static let source = "<embedded demo registry>"

    public static let json = #"""
    {
      "apiVersion": "v1",
      "kind": "List",
      "items": [
        {
          "apiVersion": "networking.istio.io/v1",
          "kind": "ServiceEntry",
          "metadata": {"name": "echo", "namespace": "demo"},
          "spec": {
            "hosts": ["echo.demo.svc.cluster.local"],
            "location": "MESH_INTERNAL",
            "resolution": "STATIC",
            "ports": [{"number": 8080, "name": "grpc", "protocol": "GRPC"}],
            "endpoints": [
              {"address": "127.0.0.1", "ports": {"grpc": 15051}, "locality": "us-east1/us-east1-b",
               "labels": {"app": "echo", "version": "v1"}},
              {"address": "127.0.0.1", "ports": {"grpc": 15052}, "locality": "us-west1/us-west1-a",
               "labels": {"app": "echo", "version": "v2"}}
            ]
          }
        },
        {
          "apiVersion": "networking.istio.io/v1",
          "kind": "ServiceEntry",
          "metadata": {"name": "echo-admin", "namespace": "demo"},
          "spec": {
            "hosts": ["echo-admin.demo.svc.cluster.local"],
            "exportTo": ["."],
            "location": "MESH_INTERNAL",
            "resolution": "STATIC",
            "ports": [{"number": 9090, "name": "grpc-admin", "protocol": "GRPC"}],
            "endpoints": [{"address": "127.0.0.1", "ports": {"grpc-admin": 15053}, "labels": {"app": "echo-admin"}}]
          }
        },
        {
          "apiVersion": "networking.istio.io/v1",
          "kind": "ServiceEntry",
          "metadata": {"name": "payments", "namespace": "payments"},
          "spec": {
            "hosts": ["payments.payments.svc.cluster.local"],
            "location": "MESH_INTERNAL",
            "resolution": "STATIC",
            "ports": [
              {"number": 8080, "name": "grpc", "protocol": "GRPC", "targetPort": 15061},
              {"number": 8081, "name": "http-metrics", "protocol": "HTTP", "targetPort": 15062}
            ],
            "endpoints": [
              {"address": "127.0.0.1", "locality": "us-east1/us-east1-b", "weight": 3},
              {"address": "::1", "locality": "us-east1/us-east1-c", "weight": 1}
            ]
          }
        },
        {
          "apiVersion": "networking.istio.io/v1beta1",
          "kind": "ServiceEntry",
          "metadata": {"name": "ledger", "namespace": "payments"},
          "spec": {
            "hosts": ["ledger.payments.svc.cluster.local", "ledger.internal"],
            "exportTo": ["payments", "demo"],
            "location": "MESH_INTERNAL",
            "resolution": "STATIC",
            "ports": [{"number": 7070, "name": "grpc", "protocol": "GRPC"}],
            "endpoints": [{"address": "127.0.0.1", "ports": {"grpc": 15071}, "locality": "us-east1"}]
          }
        }
      ]
    }
    """#

    /// The demo registry, parsed. It is a constant, so failing to parse it is a bug.
    public static func snapshot() -> RegistrySnapshot {
        do {
            return try ServiceEntryParser.parse(json: json, source: source)
        } catch {
            fatalError("embedded demo registry does not parse: \(error)")
        }
    }
}
