#!/usr/bin/env python3
"""Reference byte vectors for fastpilot's hand-written protobuf encoders, made with the real
envoy protos (pip: grpcio==1.85.3 xds-protos==1.85.0 protobuf==7.36.2, in a venv outside the repo).

  make_vectors.py            print `name hex` for every reference message; these hex strings are
                             pasted into Tests/FastPushTests/Proto/EnvoyVectorTests.swift.
  make_vectors.py --swift    print the same as Swift source: the generated file
                             Tests/FastPushTests/Proto/PythonVectors.swift.
  make_vectors.py --check F  F holds `name hex` lines written by the Swift test suite
                             (FASTPUSH_PROTO_VECTORS_OUT=F swift test --filter Proto). Each is
                             parsed with the real protos and compared field by field with the
                             reference message of the same name (a `_split` suffix means a
                             DiscoveryResponse or DeltaDiscoveryResponse encoded as shared
                             body + per-stream tail).
                             Exits 1 on any mismatch.

The Swift encoders write fields in field-number order, as python protobuf does, so the bytes
are compared exactly; Struct maps are serialized deterministically (keys sorted). The Delta
vectors carry resource versions computed by `content_hash`, a port of fastpilot's ContentHash,
so the Swift tests also check that the hash is the same function in both languages.
"""
import sys

from google.protobuf import any_pb2, struct_pb2, wrappers_pb2
from google.rpc import status_pb2
from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.core.v3 import base_pb2, config_source_pb2, health_check_pb2
from envoy.config.endpoint.v3 import endpoint_pb2
from envoy.config.listener.v3 import listener_pb2
from envoy.config.route.v3 import route_pb2
from envoy.extensions.filters.http.router.v3 import router_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import http_connection_manager_pb2 as hcm_pb2
from envoy.service.discovery.v3 import discovery_pb2


def ads(cs):
    cs.ads.SetInParent()
    cs.resource_api_version = config_source_pb2.V3


def cluster_full():
    c = cluster_pb2.Cluster(name="outbound|8080||echo.default.svc.cluster.local")
    c.type = cluster_pb2.Cluster.EDS
    ads(c.eds_cluster_config.eds_config)
    c.eds_cluster_config.service_name = "outbound|8080||echo.default.svc.cluster.local"
    c.connect_timeout.seconds = 10
    c.connect_timeout.nanos = 500_000_000
    return c


def cluster_minimal():
    c = cluster_pb2.Cluster(name="echo-cluster", type=cluster_pb2.Cluster.EDS)
    ads(c.eds_cluster_config.eds_config)
    return c


def cla():
    m = endpoint_pb2.ClusterLoadAssignment(cluster_name="echo-cluster")
    l0 = m.endpoints.add()
    l0.locality.region = "local"
    l0.locality.zone = "zone-a"
    e = l0.lb_endpoints.add()
    e.endpoint.address.socket_address.address = "127.0.0.1"
    e.endpoint.address.socket_address.port_value = 15051
    e.health_status = health_check_pb2.HEALTHY
    e.load_balancing_weight.value = 1
    e = l0.lb_endpoints.add()
    e.endpoint.address.socket_address.address = "10.1.2.3"
    e.endpoint.address.socket_address.port_value = 8080
    e.health_status = health_check_pb2.UNHEALTHY
    l0.load_balancing_weight.value = 2
    # An empty locality still present, priority 1, an endpoint on port 0 (oneof set to 0).
    l1 = m.endpoints.add()
    l1.locality.SetInParent()
    l1.load_balancing_weight.value = 1
    l1.priority = 1
    e = l1.lb_endpoints.add()
    e.endpoint.address.socket_address.address = "::1"
    e.endpoint.address.socket_address.port_value = 0
    e.load_balancing_weight.value = 300
    l2 = m.endpoints.add()
    l2.locality.region = "us-east1"
    l2.locality.zone = "us-east1-b"
    l2.locality.sub_zone = "rack-7"
    l2.load_balancing_weight.SetInParent()  # weight 0: the wrapper is present, its value not
    l2.priority = 2
    return m


def cla_empty():
    return endpoint_pb2.ClusterLoadAssignment(cluster_name="empty")


def hcm(stat_prefix, route_name, codec=0):
    h = hcm_pb2.HttpConnectionManager(stat_prefix=stat_prefix, codec_type=codec)
    ads(h.rds.config_source)
    h.rds.route_config_name = route_name
    f = h.http_filters.add(name="envoy.filters.http.router")
    f.typed_config.Pack(router_pb2.Router())
    return h


def hcm_http2():
    return hcm("grpc", "echo-route", hcm_pb2.HttpConnectionManager.HTTP2)


def listener_api():
    l = listener_pb2.Listener(name="echo")
    l.api_listener.api_listener.Pack(hcm("echo", "echo-route"))
    return l


def listener_outbound():
    l = listener_pb2.Listener(name="0.0.0.0_8080")
    l.address.socket_address.address = "0.0.0.0"
    l.address.socket_address.port_value = 8080
    f = l.filter_chains.add().filters.add(name="envoy.filters.network.http_connection_manager")
    f.typed_config.Pack(hcm("outbound_0.0.0.0_8080", "8080"))
    l.traffic_direction = base_pb2.OUTBOUND
    l.bind_to_port.SetInParent()  # BoolValue(false): present, value omitted
    return l


def route():
    r = route_pb2.RouteConfiguration(name="echo-route")
    vh = r.virtual_hosts.add(name="echo-vh", domains=["echo", "echo:8080"])
    rt = vh.routes.add()
    rt.match.prefix = ""  # oneof member set to "": must be serialized
    rt.route.cluster = "echo-cluster"
    rt = vh.routes.add()
    rt.match.prefix = "/pkg.Svc/"
    rt.route.cluster = "outbound|8080||other.ns.svc.cluster.local"
    r.virtual_hosts.add(name="catch-all", domains=["*"])
    return r


def metadata_struct():
    s = struct_pb2.Struct()
    s.update({
        "NAMESPACE": "default",
        "GENERATOR": "grpc",
        "ISTIO_VERSION": "1.24.0",
        "LABELS": {"app": "echo", "version": "v1"},
        "PORTS": [8080, 9090.5, "x", True, None, {"nested": []}],
        "EMPTY": "",
        "ZERO": 0,
        "FALSE": False,
        "ünïcødé ✓": "值 🚀",
    })
    return s


def discovery_request():
    r = discovery_pb2.DiscoveryRequest(version_info="1", type_url="type.googleapis.com/envoy.config.cluster.v3.Cluster",
                                       response_nonce="nonce-42")
    n = r.node
    n.id = "sidecar~10.0.0.1~echo-6d4f.default~default.svc.cluster.local"
    n.cluster = "echo.default"
    n.metadata.CopyFrom(metadata_struct())
    n.locality.region = "local"
    n.locality.zone = "local-a"
    n.user_agent_name = "gRPC C-core linux Python"
    n.user_agent_version = "C-core 58.0.0 Python 1.85.3"
    n.client_features.extend(["envoy.lb.does_not_support_overprovisioning", "xds.config.resource-in-sotw"])
    r.resource_names.extend(["echo-cluster", "", "outbound|8080||echo.default.svc.cluster.local"])
    r.error_detail.code = 3
    r.error_detail.message = "xDS response validation errors: ✗"
    return r


def discovery_request_minimal():
    return discovery_pb2.DiscoveryRequest(type_url="type.googleapis.com/envoy.config.listener.v3.Listener",
                                          resource_names=["echo"])


def discovery_request_negative_code():
    r = discovery_pb2.DiscoveryRequest()
    r.error_detail.code = -2
    r.node.SetInParent()
    return r


def discovery_response():
    r = discovery_pb2.DiscoveryResponse(version_info="2024-01-01T00:00:00Z/7", nonce="7",
                                        type_url="type.googleapis.com/envoy.config.cluster.v3.Cluster")
    r.resources.add().Pack(cluster_minimal())
    r.resources.add().Pack(cluster_full())
    r.control_plane.identifier = "fastpilot-0"
    return r


# Delta (incremental) xDS: DeltaDiscoveryRequest, DeltaDiscoveryResponse and Resource.

_M64 = (1 << 64) - 1
_P1 = 0x9E3779B185EBCA87
_P2 = 0xC2B2AE3D27D4EB4F


def content_hash(data):
    """fastpilot's ContentHash (Sources/FastPush/Bytes/ContentHash.swift), ported with Swift's
    operator precedence (shifts bind tighter than multiplication there): the Delta resource
    versions in the vectors below are computed here, independently of the Swift code."""
    h = 0x27D4EB2F165667C5 ^ ((len(data) * _P1) & _M64)
    i = 0
    while i + 8 <= len(data):
        a = (int.from_bytes(data[i:i + 8], "little") * _P2) & _M64
        h ^= ((((a << 31) & _M64) | (a >> 33)) * _P1) & _M64
        h = (((((h << 27) & _M64) | (h >> 37)) * _P1) + 0x85EBCA77C2B2AE63) & _M64
        i += 8
    tail = shift = 0
    while i < len(data):
        tail |= data[i] << shift
        shift += 8
        i += 1
    # Swift: (tail &* p1 << 23 | tail &* p1 >> 41) &* p2
    x = ((tail * ((_P1 << 23) & _M64)) & _M64) | ((tail * (_P1 >> 41)) & _M64)
    h ^= (x * _P2) & _M64
    h ^= h >> 33
    h = (h * 0xFF51AFD7ED558CCD) & _M64
    h ^= h >> 33
    h = (h * 0xC4CEB9FE1A85EC53) & _M64
    h ^= h >> 33
    return h or 1


def packed(message):
    a = any_pb2.Any()
    a.Pack(message)
    return a


def delta_resource_for(message, name):
    a = packed(message)
    version = format(content_hash(a.SerializeToString(deterministic=True)), "016x")
    return discovery_pb2.Resource(name=name, version=version, resource=a)


def delta_node():
    n = discovery_request().node
    return n


def delta_discovery_request():
    r = discovery_pb2.DeltaDiscoveryRequest(type_url="type.googleapis.com/envoy.config.cluster.v3.Cluster",
                                            response_nonce="17")
    r.node.CopyFrom(delta_node())
    r.resource_names_subscribe.extend(["outbound|8080||echo.default.svc.cluster.local", "", "*"])
    r.resource_names_unsubscribe.extend(["outbound|9090||gone.default.svc.cluster.local", "ünïcødé ✓"])
    # Deterministic serialization sorts map keys; the Swift reference lists them sorted.
    r.initial_resource_versions["echo-cluster"] = "0123456789abcdef"
    r.initial_resource_versions["outbound|7070||ledger.payments.svc.cluster.local"] = "v1"
    r.error_detail.code = 13
    r.error_detail.message = "delta: rejected ✗"
    return r


def delta_discovery_request_ack():
    # What Envoy sends most: an ACK (type_url + nonce), without the node here.
    return discovery_pb2.DeltaDiscoveryRequest(type_url="type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment",
                                               response_nonce="42")


def delta_discovery_request_empty_versions():
    # Istio's clients claim "" versions: python writes the empty value (12 00) in each map entry,
    # fastpilot leaves it out; both mean the same entry.
    r = discovery_pb2.DeltaDiscoveryRequest(type_url="type.googleapis.com/envoy.config.listener.v3.Listener")
    r.initial_resource_versions["0.0.0.0_8080"] = ""
    r.initial_resource_versions["0.0.0.0_9090"] = ""
    r.initial_resource_versions[""] = "x"
    return r


def delta_discovery_request_big_node():
    # An Envoy copies its node into every delta request; the server skips it undecoded after the
    # first (decodingNode: false). A node of about 12 KB of metadata.
    r = discovery_pb2.DeltaDiscoveryRequest(type_url="type.googleapis.com/envoy.config.cluster.v3.Cluster",
                                            response_nonce="9")
    r.node.id = "sidecar~10.0.0.1~big.default~default.svc.cluster.local"
    fields = {f"KEY_{i:04d}": f"value-{i:04d}-abcdefghijklmnop" for i in range(300)}
    fields["NESTED"] = {"a": {"b": {"c": [1, 2, 3, "four", {"five": True}]}}}
    r.node.metadata.update(fields)
    r.node.user_agent_name = "envoy"
    r.resource_names_subscribe.append("outbound|8080||echo.default.svc.cluster.local")
    return r


def delta_discovery_request_locators():
    # resource_locators_subscribe/unsubscribe (8, 9) and an unknown field: fastpilot skips them.
    r = discovery_pb2.DeltaDiscoveryRequest(type_url="type.googleapis.com/envoy.config.route.v3.RouteConfiguration",
                                            resource_names_subscribe=["8080"])
    loc = r.resource_locators_subscribe.add(name="8080")
    loc.dynamic_parameters["k"] = "v"
    r.resource_locators_unsubscribe.add(name="9090")
    return r


def delta_resource():
    return delta_resource_for(cluster_full(), "outbound|8080||echo.default.svc.cluster.local")


def delta_resource_extras():
    # Fields fastpilot neither writes nor needs: aliases, ttl, cache_control, resource_name, metadata.
    r = delta_resource_for(cluster_minimal(), "echo-cluster")
    r.aliases.extend(["alias-a", "alias-b"])
    r.ttl.seconds = 5
    r.cache_control.do_not_cache = True
    r.resource_name.name = "echo-cluster"
    r.metadata.filter_metadata["envoy.lb"].update({"canary": True})
    return r


def delta_discovery_response():
    r = discovery_pb2.DeltaDiscoveryResponse(system_version_info="7", nonce="3",
                                             type_url="type.googleapis.com/envoy.config.cluster.v3.Cluster")
    r.resources.append(delta_resource_for(cluster_minimal(), "echo-cluster"))
    r.resources.append(delta_resource_for(cluster_full(), "outbound|8080||echo.default.svc.cluster.local"))
    r.removed_resources.extend(["outbound|9090||gone.default.svc.cluster.local", "outbound|1||x.invalid"])
    return r


def delta_discovery_response_removals_only():
    return discovery_pb2.DeltaDiscoveryResponse(system_version_info="12", nonce="1",
                                                type_url="type.googleapis.com/envoy.config.listener.v3.Listener",
                                                removed_resources=["0.0.0.0_9090"])


def delta_discovery_response_extras():
    # control_plane (7), removed_resource_names (8), resource_errors (9): skipped by fastpilot.
    r = delta_discovery_response()
    r.control_plane.identifier = "istiod-1"
    r.removed_resource_names.add(name="outbound|9090||gone.default.svc.cluster.local")
    e = r.resource_errors.add()
    e.resource_name.name = "bad"
    e.error_detail.code = 5
    e.error_detail.message = "not found"
    return r


REFERENCE = {
    "cluster_full": cluster_full,
    "cluster_minimal": cluster_minimal,
    "cla": cla,
    "cla_empty": cla_empty,
    "hcm_http2": hcm_http2,
    "listener_api": listener_api,
    "listener_outbound": listener_outbound,
    "route": route,
    "discovery_request": discovery_request,
    "discovery_request_minimal": discovery_request_minimal,
    "discovery_request_negative_code": discovery_request_negative_code,
    "discovery_response": discovery_response,
    "delta_discovery_request": delta_discovery_request,
    "delta_discovery_request_ack": delta_discovery_request_ack,
    "delta_discovery_request_empty_versions": delta_discovery_request_empty_versions,
    "delta_discovery_request_big_node": delta_discovery_request_big_node,
    "delta_discovery_request_locators": delta_discovery_request_locators,
    "delta_resource": delta_resource,
    "delta_resource_extras": delta_resource_extras,
    "delta_discovery_response": delta_discovery_response,
    "delta_discovery_response_removals_only": delta_discovery_response_removals_only,
    "delta_discovery_response_extras": delta_discovery_response_extras,
}


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--check":
        failures = checked = 0
        for line in open(sys.argv[2]):
            line = line.strip()
            if not line:
                continue
            name, hexstr = line.split(" ", 1) if " " in line else (line, "")
            base = name[:-len("_split")] if name.endswith("_split") else name
            if base not in REFERENCE:
                print(f"FAIL {name}: no reference message")
                failures += 1
                continue
            want = REFERENCE[base]()
            got = type(want)()
            data = bytes.fromhex(hexstr)
            try:
                got.ParseFromString(data)
            except Exception as e:  # noqa: BLE001 - report any parse failure
                print(f"FAIL {name}: real protos cannot parse it: {e}")
                failures += 1
                continue
            checked += 1
            exact = data == want.SerializeToString(deterministic=True)
            if got != want:
                print(f"FAIL {name}: parsed message differs from the reference\n--- got\n{got}\n--- want\n{want}")
                failures += 1
            else:
                print(f"ok   {name}: fields equal" + (", bytes identical" if exact else " (bytes differ: field order, or empty map keys/values left out)"))
        print(f"check: {checked - failures if checked >= failures else 0} passed, {failures} failed")
        sys.exit(1 if failures or checked == 0 else 0)
    if len(sys.argv) == 2 and sys.argv[1] == "--swift":
        print("// Generated by Tests/interop/vectors/make_vectors.py --swift from the real envoy protos")
        print("// (xds-protos 1.85.0, protobuf 7.36.2). Do not edit by hand; re-run the script.")
        print()
        print("enum PythonVectors {")
        print("    static let hex: [String: String] = [")
        for name, make in REFERENCE.items():
            h = make().SerializeToString(deterministic=True).hex()
            print(f'        "{name}": "{h}",')
        print("    ]")
        print("}")
        return
    for name, make in REFERENCE.items():
        print(name, make().SerializeToString(deterministic=True).hex())


if __name__ == "__main__":
    main()
