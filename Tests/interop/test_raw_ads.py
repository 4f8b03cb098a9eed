"""Requirements (c) and (d): a raw ADS client (grpcio + xds-protos) checks every byte fastpilot
sends with protobuf's own parser, the SotW ACK rules (no ping-pong), and NACK handling."""
import json
import time

import pytest

from conftest import endpoint, expected_view, service_entry
from xds_client import (CDS, EDS, LDS, RDS, AdsStream, EnvoyClient, check_cluster, check_envoy_state,
                        check_hcm_rds, check_virtual_host, cla_endpoints, make_node, pump_all, short, unpack,
                        unpack_hcm)

NS = "interop"
ECHO = "echo.interop.svc.cluster.local"
PAYMENTS = "payments.pay.svc.cluster.local"


def base_items(echo_port_a=15101):
    """A registry with what the generators must get right: two ports, two localities (one with
    a sub-zone), endpoint weights, a duplicate endpoint, an endpoint without a port map, a
    two-host entry exported to a list of namespaces, and an entry hidden from `interop`."""
    return [
        service_entry("echo", NS, ECHO, [(8080, "grpc"), (9091, "grpc-second")], [
            {"address": "127.0.0.1", "ports": {"grpc": echo_port_a, "grpc-second": 15111},
             "locality": "region-a/zone-a", "weight": 3},
            {"address": "127.0.0.2", "ports": {"grpc": 15102, "grpc-second": 15112}, "locality": "region-a/zone-a"},
            {"address": "127.0.0.3", "ports": {"grpc": 15103, "grpc-second": 15113}, "locality": "region-b/zone-b/sub-b"},
            # The same address and ports again: must appear once.
            {"address": "127.0.0.2", "ports": {"grpc": 15102, "grpc-second": 15112}, "locality": "region-a/zone-a"},
        ]),
        service_entry("payments", "pay", PAYMENTS, [(8080, "grpc")], [
            {"address": "127.0.0.4", "locality": "region-a/zone-a", "weight": 2},  # no port map: port 8080
        ]),
        {**service_entry("ledger", "pay", "ledger.pay.svc.cluster.local", [(7070, "grpc")],
                         [endpoint("grpc", 15301, "region-c")], export_to=["pay", NS]),
         },
        service_entry("secret", "other", "secret.other.svc.cluster.local", [(8080, "grpc")],
                      [endpoint("grpc", 15401)], export_to=["."]),
    ]


def with_two_hosts(items):
    # ledger has two hosts: one Service (and cluster) per host.
    items[2]["spec"]["hosts"].append("ledger.internal")
    return items


# --------------------------------------------------------------------------------------------
# (c)

def test_c_envoy_style_subscription_parses_and_matches_registry(fastpilot_factory, registry):
    """(c) Envoy-style: wildcard CDS, EDS for every cluster, wildcard LDS, RDS for every route;
    every resource parses with protobuf and matches the registry (names, EDS over ADS, CLA
    structure, listeners, virtual hosts, explicit prefix). Nonces non-empty and unique,
    versions non-empty. Each response is ACKed as Envoy does, and the ACKs get no response."""
    items = with_two_hosts(base_items())
    registry.write(items)
    fp = fastpilot_factory(registry)

    client = EnvoyClient(fp.xds_address, make_node("sidecar~10.0.0.1~envoy-1.interop~interop.svc.cluster.local"))
    try:
        client.start()
        assert [short(t) for t, _ in client.log] == ["CDS", "EDS", "LDS", "RDS"], client.dump()
        check_envoy_state(client, expected_view(items, NS))
        client.check_nonces()
        # Every ACK was sent; none may be answered (an ACK answered with a new response is
        # the start of a ping-pong storm).
        client.expect_silence(1.0, "no response to the ACKs")
        # fastpilot saw the namespace from the node id, and every type is ACKed.
        rows = [r for r in fp.syncz() if r["proxy"].startswith(client.node.id)]
        assert len(rows) == 1, fp.syncz()
        for key in ("cluster", "listener", "route", "endpoint"):
            assert rows[0][f"{key}_sent"] and rows[0][f"{key}_sent"] == rows[0][f"{key}_acked"], rows[0]
    finally:
        client.close()


@pytest.mark.parametrize("target, port", [(f"{ECHO}:9091", 9091), (ECHO, 8080)], ids=["host:port", "bare-host"])
def test_c_grpc_style_sequence(target, port, fastpilot_factory, registry):
    """(c) gRPC's sequence: LDS by name HOST:PORT (or HOST = the first port) -> RDS HOST:PORT ->
    CDS outbound|PORT||HOST -> EDS. The Listener is an ApiListener named exactly as asked whose
    HCM takes the route over ADS and ends with the Router; each ACK gets no response."""
    items = base_items()
    registry.write(items)
    fp = fastpilot_factory(registry)
    route = f"{ECHO}:{port}"
    cluster = f"outbound|{port}||{ECHO}"

    s = AdsStream(fp.xds_address, make_node("grpc-style-client", namespace=NS))
    try:
        s.send(LDS, [target])
        r = s.recv(LDS)
        [l] = unpack(r)
        assert l.name == target
        assert l.HasField("api_listener"), f"listener {l.name} has no api_listener"
        assert not l.filter_chains and not l.HasField("address"), "an ApiListener has no address or filter chains"
        check_hcm_rds(unpack_hcm(l), route, f"listener {l.name}")
        s.ack(r)

        s.send(RDS, [route])
        r = s.recv(RDS)
        [rc] = unpack(r)
        assert rc.name == route and len(rc.virtual_hosts) == 1, rc
        check_virtual_host(rc.virtual_hosts[0], ECHO, port)
        s.ack(r)

        s.send(CDS, [cluster])
        r = s.recv(CDS)
        [c] = unpack(r)
        assert c.name == cluster
        check_cluster(c)
        s.ack(r)

        s.send(EDS, [cluster])
        r = s.recv(EDS)
        [cla] = unpack(r)
        assert cla.cluster_name == cluster
        got = cla_endpoints(cla)
        want = expected_view(items, NS)["clusters"][cluster]
        assert {l: set(e) for l, e in got.items()} == {l: set(e) for l, e in want.items()}, got
        s.ack(r)

        s.check_nonces()
        s.expect_silence(1.0, "no response to the ACKs")
    finally:
        s.close()


# --------------------------------------------------------------------------------------------
# (d)

def changed_items():
    """Every type changes: echo's endpoint moves (EDS), and a new service on port 8080 and the
    new port 7000 adds clusters (CDS), a listener (LDS) and a virtual host to route 8080 (RDS)."""
    items = base_items(echo_port_a=15199)
    items.append(service_entry("extra", NS, "extra.interop.svc.cluster.local",
                               [(8080, "grpc"), (7000, "grpc-7000")],
                               [{"address": "127.0.0.9", "ports": {"grpc": 15501, "grpc-7000": 15502}}]))
    return items


@pytest.mark.parametrize("nack_type", [EDS, CDS, LDS, RDS], ids=["eds", "cds", "lds", "rds"])
def test_d_nack_is_logged_counted_and_not_answered(nack_type, fastpilot_factory, registry):
    """(d) The client NACKs its first response of one type (error_detail code 3, the rejected
    nonce, the previous accepted version ''): no response follows within 1 s, fastpilot logs
    event=ads_nack with the message, pilot_total_xds_rejects{type} increments, /debug/syncz shows
    the error. Then a registry change pushes a new version of that type, which is ACKed quietly."""
    label = short(nack_type).lower()
    items = base_items()
    registry.write(items)
    fp = fastpilot_factory(registry)
    rejects_before = fp.metric(f'pilot_total_xds_rejects{{type="{label}"}}')
    message = f"interop-test: rejected {short(nack_type)} on purpose ({time.monotonic_ns()})"

    client = EnvoyClient(fp.xds_address, make_node("nacking-proxy", namespace=NS))
    rejected = {}
    orig_handle = client.handle

    def handle(resp):
        if resp.type_url == nack_type and not rejected:
            rejected["version"], rejected["nonce"] = resp.version_info, resp.nonce
            # The subscription the client holds (what it asked for), as gRPC sends it.
            client.nack(resp, message)
            return []
        return orig_handle(resp)

    client.handle = handle
    try:
        client.start()
        assert rejected, f"no {short(nack_type)} response to reject\n{client.dump()}"
        client.expect_silence(1.0, f"no response after the {short(nack_type)} NACK")

        lines = fp.wait_log(r"event=ads_nack", timeout=3)
        assert any(message in l and f"type={short(nack_type)}" in l for l in lines), \
            f"ads_nack lines do not carry the type and message:\n" + "\n".join(lines)
        assert fp.metric(f'pilot_total_xds_rejects{{type="{label}"}}') == rejects_before + 1
        [row] = [r for r in fp.syncz() if r["proxy"].startswith("nacking-proxy")]
        assert message in json.dumps(row["resources"][nack_type]), row

        # Not stuck: a change that touches every type pushes a new version of the rejected one.
        items = changed_items()
        registry.write(items)

        def fresh():
            return any(r.type_url == nack_type and r.version_info != rejected["version"] for r in client.received)

        pump_all([client], until=fresh, timeout=5, settle=1.0)
        new = [r for r in client.received if r.type_url == nack_type and r.version_info != rejected["version"]]
        assert new and new[0].nonce != rejected["nonce"]
        # The client ends with the new config of every type, everything ACKed, all quiet.
        check_envoy_state(client, expected_view(items, NS))
        client.check_nonces()
        client.expect_silence(1.0, "no response to the ACKs after the push")
        [row] = [r for r in fp.syncz() if r["proxy"].startswith("nacking-proxy")]
        assert "lastError" not in row["resources"][nack_type], row
    finally:
        client.close()


def test_removed_service_is_deleted_in_sotw(fastpilot_factory, registry):
    """A gRPC-style stream watching one service; the service leaves the registry: CDS and LDS
    (complete-state types) are pushed without its cluster and listener, RDS with its route but
    no virtual host, EDS with an empty assignment. When it comes back, all four come back."""
    entry = service_entry("echo", NS, ECHO, [(8080, "grpc")], [endpoint("grpc", 15101)])
    other = service_entry("other", NS, "other.interop.svc.cluster.local", [(8080, "grpc")], [endpoint("grpc", 15102)])
    registry.write([entry, other])
    fp = fastpilot_factory(registry)
    cluster, target = f"outbound|8080||{ECHO}", f"{ECHO}:8080"
    s = AdsStream(fp.xds_address, make_node("deletion-watcher", namespace=NS))
    try:
        for t, names in ((LDS, [target]), (RDS, [target]), (CDS, [cluster]), (EDS, [cluster])):
            s.send(t, names)
            s.ack(s.recv(t))

        registry.write([other])
        got = {}
        for _ in range(4):
            r = s.recv(timeout=5)
            got[r.type_url] = unpack(r)
            s.ack(r)
        assert got[CDS] == [] and got[LDS] == [], s.dump()
        [rc] = got[RDS]
        assert rc.name == target and not rc.virtual_hosts, rc
        [cla] = got[EDS]
        assert cla.cluster_name == cluster and not cla.endpoints, cla
        s.expect_silence(0.5)

        registry.write([entry, other])
        got = {}
        for _ in range(4):
            r = s.recv(timeout=5)
            got[r.type_url] = unpack(r)
            s.ack(r)
        assert [m.name for m in got[CDS]] == [cluster] and [m.name for m in got[LDS]] == [target], s.dump()
        check_virtual_host(got[RDS][0].virtual_hosts[0], ECHO, 8080)
        assert set(cla_endpoints(got[EDS][0])[("", "", "")]) == {"127.0.0.1:15101"}
        s.check_nonces()
        s.expect_silence(1.0)
    finally:
        s.close()


def test_c_large_registry_many_frames(fastpilot_factory, registry):
    """1500 services x 8 endpoints (hundreds of KB per response: many HTTP/2 DATA frames and
    flow-control window updates): the Envoy-style client receives every response whole, and
    every resource matches the registry."""
    items = [service_entry(f"svc{i}", f"ns{i % 10}", f"svc{i}.ns{i % 10}.svc.cluster.local", [(8000 + i % 50, "grpc")],
                           [endpoint("grpc", 20000 + j, f"r{j % 3}/z{j}", address=f"10.{i // 250}.{i % 250}.{j}")
                            for j in range(8)])
             for i in range(1500)]
    registry.write(items)
    fp = fastpilot_factory(registry, log_level="info")
    client = EnvoyClient(fp.xds_address, make_node("big-proxy", namespace="ns0"))
    try:
        client.start(timeout=20)
        sizes = {short(r.type_url): r.ByteSize() for r in client.received}
        assert sizes["EDS"] > 500_000, sizes
        check_envoy_state(client, expected_view(items, "ns0"))
        client.check_nonces()
        client.expect_silence(1.0)
    finally:
        client.close()
