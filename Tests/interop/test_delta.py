"""Delta ADS (DeltaAggregatedResources) with real peers: a raw Delta client on grpcio +
xds-protos (delta_client.py) that parses every byte strictly and checks the protocol
invariants on every response, Envoy's delta flow, and the rules of
../shared/design/delta-xds-semantics.md (section 9 cases cited as "case N", fastpilot's "fp:"
results)."""
import time

import grpc
import pytest
from envoy.service.discovery.v3 import discovery_pb2

from conftest import endpoint, expected_view, service_entry
from delta_client import DeltaResponse, DeltaStream, EnvoyDeltaClient, unpack_any_strict
from xds_client import (CDS, EDS, LDS, RDS, EnvoyClient, check_cluster, check_envoy_state, check_hcm_rds,
                        check_virtual_host, cla_endpoints, make_node, pump_all, short, unpack, unpack_hcm)

NS = "interop"
ECHO = "echo.interop.svc.cluster.local"
PAY = "payments.pay.svc.cluster.local"
LEDGER = "ledger.pay.svc.cluster.local"
C_ECHO = f"outbound|8080||{ECHO}"
C_ECHO2 = f"outbound|9091||{ECHO}"
C_PAY = f"outbound|8080||{PAY}"
C_LEDGER = f"outbound|7070||{LEDGER}"
SILENCE = 0.8          # how long "no response" is watched for


def envoy_node(name, ns=NS):
    """Istio's sidecar node id: the namespace comes from it."""
    return make_node(f"sidecar~10.0.0.1~{name}.{ns}~{ns}.svc.cluster.local")


def base_items(echo_port=15101):
    """Two ports with localities, weights and a duplicate endpoint (echo), an entry without a
    port map (payments), one exported to a list of namespaces with two hosts (ledger), and
    one hidden from `interop` (secret)."""
    return [
        service_entry("echo", NS, ECHO, [(8080, "grpc"), (9091, "grpc-second")], [
            {"address": "127.0.0.1", "ports": {"grpc": echo_port, "grpc-second": 15111},
             "locality": "region-a/zone-a", "weight": 3},
            {"address": "127.0.0.2", "ports": {"grpc": 15102, "grpc-second": 15112}, "locality": "region-a/zone-a"},
            {"address": "127.0.0.3", "ports": {"grpc": 15103, "grpc-second": 15113}, "locality": "region-b/zone-b/sub-b"},
            {"address": "127.0.0.2", "ports": {"grpc": 15102, "grpc-second": 15112}, "locality": "region-a/zone-a"},
        ]),
        service_entry("payments", "pay", PAY, [(8080, "grpc")],
                      [{"address": "127.0.0.4", "locality": "region-a/zone-a", "weight": 2}]),
        {**service_entry("ledger", "pay", LEDGER, [(7070, "grpc")], [endpoint("grpc", 15301, "region-c")],
                         export_to=["pay", NS])},
        service_entry("secret", "other", "secret.other.svc.cluster.local", [(8080, "grpc")],
                      [endpoint("grpc", 15401)], export_to=["."]),
    ]


@pytest.fixture
def streams():
    """open(cls, *args, **kw) -> a stream closed after the test (in reverse order, so streams
    sharing another's channel go first)."""
    opened = []

    def open_(cls, *a, **kw):
        s = cls(*a, **kw)
        opened.append(s)
        return s

    yield open_
    for s in reversed(opened):
        s.close()


def by_type(responses):
    out = {}
    for r in responses:
        out.setdefault(r.type_url, []).append(r)
    return out


def describe(got):
    return "\n".join(f"{c.node.id}: {[repr(r) for r in rs]}" for c, rs in got.items())


def sent_names(responses):
    """Every name sent in `responses`, in order (repeats kept: a test can see a duplicate)."""
    return [n for r in responses for n in r.names]


def removed_names(responses):
    return [n for r in responses for n in r.removed]


def delta_counter(fp, t, outcome):
    return fp.metric(f'fastpilot_xds_delta_resources_total{{type="{short(t).lower()}",outcome="{outcome}"}}')


def _one(fetch, node_id, what, timeout=3.0):
    """The one entry of `node_id` (a stream of the same node closed just before may take a
    moment to leave the list)."""
    deadline = time.monotonic() + timeout
    while True:
        rows = [r for r in fetch() if (r.get("proxy") or r.get("connectionId")).startswith(node_id + "-")]
        if len(rows) == 1 or time.monotonic() > deadline:
            assert len(rows) == 1, f"{what} entries for {node_id}: {rows}"
            return rows[0]
        time.sleep(0.05)


def syncz_row(fp, node_id):
    return _one(fp.syncz, node_id, "syncz")


def adsz_entry(fp, node_id):
    return _one(lambda: fp.adsz()["clients"], node_id, "adsz")


def wait_push(fp, since, timeout=5.0):
    """Waits for the push line after a registry write (the PushContext is current when it is
    logged), so that a request made afterwards sees the new registry."""
    fp.wait_log(r"event=push ", since=since, timeout=timeout)


# --------------------------------------------------------------------------------------------
# the strict parser itself

def test_strict_parser_rejects_what_envoy_would():
    """The checks delta_client applies to every response are not vacuous: an unknown field deep
    inside a typed_config Any, a Resource whose Any has another type, a bad version, a name
    twice or in both lists, an empty nonce, and a Resource named unlike its message are all
    reported."""
    from envoy.config.listener.v3 import listener_pb2
    from envoy.extensions.filters.network.http_connection_manager.v3 import http_connection_manager_pb2 as hcm_pb2
    from envoy.config.cluster.v3 import cluster_pb2

    hcm = hcm_pb2.HttpConnectionManager(stat_prefix="x")
    hcm.rds.route_config_name = "8080"
    good_hcm = hcm.SerializeToString()
    bad_hcm = good_hcm + b"\xf8\xff\x03\x01"   # field 8191, varint 1: unknown to the schema

    def response(hcm_bytes, version="0123456789abcdef", name="l", type_url=LDS, extra=None, nonce="1"):
        l = listener_pb2.Listener(name="l")
        f = l.api_listener.api_listener
        f.type_url = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
        f.value = hcm_bytes
        r = discovery_pb2.DeltaDiscoveryResponse(type_url=LDS, nonce=nonce, system_version_info="7")
        res = r.resources.add(name=name, version=version)
        res.resource.type_url = type_url
        res.resource.value = l.SerializeToString()
        if extra:
            extra(r)
        return r.SerializeToString()

    assert DeltaResponse(response(good_hcm), 0).problems == []
    assert unpack_any_strict(DeltaResponse(response(good_hcm), 0).msgs["l"].api_listener.api_listener, "x") == hcm
    cases = {
        "unknown field in the HCM": (response(bad_hcm), "unknown fields [(8191, 0)]"),
        "Any of another type": (response(good_hcm, type_url=CDS), "Any type_url"),
        "uppercase version": (response(good_hcm, version="0123456789ABCDEF"), "16 lowercase hex"),
        "short version": (response(good_hcm, version="1"), "16 lowercase hex"),
        "name unlike the message": (response(good_hcm, name="m"), "named 'l'"),
        "empty nonce": (response(good_hcm, nonce=""), "empty nonce"),
        "name twice": (response(good_hcm, extra=lambda r: r.resources.append(r.resources[0])), "twice in resources"),
        "sent and removed": (response(good_hcm, extra=lambda r: r.removed_resources.append("l")), "in both"),
        "unknown top-level field": (response(good_hcm) + b"\xa0\x06\x01", "unknown fields [(100, 0)]"),
    }
    for what, (data, needle) in cases.items():
        problems = DeltaResponse(data, 0).problems
        assert any(needle in p for p in problems), f"{what}: problems {problems}"
    # A Cluster with an unknown field in a nested message (not an Any).
    c = cluster_pb2.Cluster(name="c")
    c.eds_cluster_config.service_name = "c"
    cb = c.SerializeToString().replace(b"\x1a\x03\x12\x01c", b"\x1a\x06\x12\x01c\xa0\x06\x01")
    r = discovery_pb2.DeltaDiscoveryResponse(type_url=CDS, nonce="1", system_version_info="1")
    res = r.resources.add(name="c", version="0123456789abcdef")
    res.resource.type_url, res.resource.value = CDS, cb
    problems = DeltaResponse(r.SerializeToString(), 0).problems
    assert any("eds_cluster_config" in p and "(100, 0)" in p for p in problems), problems


# --------------------------------------------------------------------------------------------
# Envoy's flow

def test_envoy_flow_end_to_end(fastpilot_factory, registry, streams):
    """Envoy's delta flow (cases 3, 6, 23): CDS legacy wildcard -> EDS subscribe for every EDS
    cluster -> LDS wildcard -> RDS subscribe for every route the HCMs name. Every resource parses
    strictly and matches the registry field by field (clusters EDS over ADS, CLAs with the
    registry's endpoints, listeners with an HCM taking RDS over ADS, routes with the virtual
    hosts); no removals; ACKs get no answer; syncz/adsz show a delta stream in sync; the delta
    counters count what was sent. Versions are content hashes: a second client in the same
    namespace gets the same versions, and one in another namespace gets equal versions exactly
    for the resources whose bytes are equal."""
    items = base_items()
    items[2]["spec"]["hosts"].append("ledger.internal")
    registry.write(items)
    fp = fastpilot_factory(registry)
    before = {t: delta_counter(fp, t, "sent") for t in (CDS, EDS, LDS, RDS)}

    c = streams(EnvoyDeltaClient, fp.xds_address, envoy_node("envoy-1"))
    first = c.start()
    assert [short(t) for t, _, _ in c.log] == ["CDS", "EDS", "LDS", "RDS"], c.dump()
    assert all(not r.removed for r in first.values()), c.dump()
    exp = expected_view(items, NS)
    check_envoy_state(c, exp)
    assert sorted(first[CDS].names) == sorted(exp["clusters"])
    assert sorted(first[EDS].names) == sorted(exp["clusters"])
    c.expect_silence(SILENCE, "no response to the ACKs")
    # What the stream holds is what it was sent.
    for t, r in first.items():
        assert c.held[t] == r.versions, short(t)

    row = syncz_row(fp, c.node.id)
    assert row["protocol"] == "delta", row
    for key in ("cluster", "listener", "route", "endpoint"):
        assert row[f"{key}_sent"] and row[f"{key}_sent"] == row[f"{key}_acked"], row
    assert not any("lastError" in v for v in row["resources"].values()), row
    ads = adsz_entry(fp, c.node.id)
    assert ads["protocol"] == "delta" and ads["namespace"] == NS, ads
    assert ads["watches"][CDS] == ["*"] and ads["watches"][LDS] == ["*"], ads
    assert sorted(ads["watches"][EDS]) == sorted(exp["clusters"]), ads
    assert sorted(ads["watches"][RDS]) == sorted(str(p) for p in exp["routes"]), ads
    for t, r in first.items():
        assert delta_counter(fp, t, "sent") == before[t] + len(r.names), short(t)

    # Versions: the same content, the same version; different content, a different one.
    twin = streams(EnvoyDeltaClient, fp.xds_address, envoy_node("envoy-2"))
    twin.start()
    for t in (CDS, EDS, LDS, RDS):
        assert twin.held[t] == c.held[t], f"{short(t)} versions differ between two proxies of one namespace"
    other = streams(EnvoyDeltaClient, fp.xds_address, envoy_node("envoy-3", "other"))
    other.start()
    check_envoy_state(other, expected_view(items, "other"))
    anys = {id(s): {} for s in (c, other)}
    for s in (c, other):
        for r in s.received:
            for n, b in r.anys.items():
                anys[id(s)][(r.type_url, n)] = b
    common = set(anys[id(c)]) & set(anys[id(other)])
    assert (RDS, "8080") in common and (CDS, C_ECHO) in common
    for key in common:
        t, n = key
        same_bytes = anys[id(c)][key] == anys[id(other)][key]
        same_version = c.held[t][n] == other.held[t][n]
        assert same_bytes == same_version, f"{short(t)} {n}: bytes equal {same_bytes}, versions equal {same_version}"
    # Route 8080 differs: `other` also sees secret.other on port 8080.
    assert c.held[RDS]["8080"] != other.held[RDS]["8080"]


def test_wildcard_forms(fastpilot_factory, registry, streams):
    """Cases 4, 5, 19, 20: an explicit `*` is the legacy wildcard's set at the same versions;
    `*` subscribed and unsubscribed at once is an empty answer. On a wildcard CDS stream,
    subscribing a name it holds sends it again, unsubscribing it sends it again (still in the
    wildcard); a name not in scope comes back in removed_resources, and unsubscribing it then
    gets no answer. Case 21 (fp): a later unsubscribe of `*` gets no answer, and new clusters
    no longer reach the stream."""
    registry.write(base_items())
    fp = fastpilot_factory(registry)
    legacy = streams(DeltaStream, fp.xds_address, make_node("legacy", namespace=NS))
    legacy.send(CDS)
    want = legacy.recv(CDS)
    legacy.send(LDS)
    want_l = legacy.recv(LDS)
    assert want.names and want_l.names

    star = streams(DeltaStream, fp.xds_address, make_node("star", namespace=NS))
    star.send(CDS, ["*"])
    r = star.recv(CDS)
    assert r.versions == want.versions and not r.removed, star.dump()
    star.send(LDS, ["*"])
    r = star.recv(LDS)
    assert r.versions == want_l.versions and not r.removed, star.dump()

    nothing = streams(DeltaStream, fp.xds_address, make_node("nothing", namespace=NS))
    for t in (CDS, LDS):
        nothing.send(t, ["*"], ["*"])
        r = nothing.recv(t)
        assert r.names == [] and r.removed == [], nothing.dump()
    nothing.expect_silence(SILENCE)

    # Case 19: a held wildcard name subscribed explicitly, then unsubscribed.
    s = legacy
    s.ack(want)
    s.ack(want_l)
    s.send(CDS, [C_ECHO])
    r = s.recv(CDS)
    assert r.names == [C_ECHO] and not r.removed, s.dump()
    s.ack(r)
    s.send(CDS, unsubscribe=[C_ECHO])
    r = s.recv(CDS)
    assert r.names == [C_ECHO] and not r.removed, f"unsubscribing a wildcard-covered name: resend expected\n{s.dump()}"
    assert r.versions[C_ECHO] == want.versions[C_ECHO]
    s.ack(r)
    # Case 20: a name that does not exist.
    gone = "outbound|1||gone.invalid"
    s.send(CDS, [gone])
    r = s.recv(CDS)
    assert r.names == [] and r.removed == [gone], s.dump()
    s.ack(r)
    s.send(CDS, unsubscribe=[gone])
    s.expect_silence(SILENCE, "no answer to unsubscribing a name reported removed")
    assert set(s.held[CDS]) == set(want.names)

    # Case 21 (fp): with C_ECHO explicit, unsubscribing `*` gets no answer; a new cluster then
    # reaches the wildcard stream `star` but not this one, and a later change is judged
    # against C_ECHO alone.
    s.send(CDS, [C_ECHO])
    s.ack(s.recv(CDS))
    s.send(CDS, unsubscribe=["*"])
    s.expect_silence(SILENCE, "no answer to unsubscribing the wildcard")
    assert adsz_entry(fp, "legacy")["watches"][CDS] == [C_ECHO]
    registry.write(base_items() + [service_entry("added", NS, "added.interop.svc.cluster.local", [(8080, "grpc")],
                                                 [endpoint("grpc", 15999)])])
    r = star.recv(CDS, timeout=5)
    assert r.names == ["outbound|8080||added.interop.svc.cluster.local"] and not r.removed, star.dump()
    s.expect_silence(SILENCE, "no CDS push of a new cluster after unsubscribing the wildcard")


def test_by_name_flow(fastpilot_factory, registry, streams):
    """Named subscriptions on one raw stream (cases 2, 11, 13-18): EDS A, then B on the ACK of A,
    an unknown cluster (an empty CLA, no removal), A again (sent again); RDS 8080 (its virtual
    hosts) and the unknown 9999 (an empty RouteConfiguration); a stream with named CDS and LDS
    gets unknown names in removed_resources. Unsubscribing a name never subscribed gets no
    answer, and a later request with another node changes nothing."""
    items = base_items()
    registry.write(items)
    fp = fastpilot_factory(registry)
    exp = expected_view(items, NS)
    s = streams(DeltaStream, fp.xds_address, make_node("by-name", namespace=NS))

    s.send(EDS, [C_ECHO])
    ra = s.recv(EDS)
    assert ra.names == [C_ECHO] and not ra.removed, s.dump()
    got = cla_endpoints(ra.msgs[C_ECHO])
    want = exp["clusters"][C_ECHO]
    assert {l: set(e) for l, e in got.items()} == {l: set(e) for l, e in want.items()}, got
    assert got[("region-a", "zone-a", "")]["127.0.0.1:15101"] == 3

    s.ack(ra, subscribe=[C_PAY])                      # case 14
    rb = s.recv(EDS)
    assert rb.names == [C_PAY], s.dump()
    assert set(cla_endpoints(rb.msgs[C_PAY])[("region-a", "zone-a", "")]) == {"127.0.0.4:8080"}
    s.ack(rb)

    unknown = "outbound|1||nothing.invalid"
    s.send(EDS, [unknown])                            # case 16
    ru = s.recv(EDS)
    assert ru.names == [unknown] and not ru.removed, s.dump()
    assert ru.msgs[unknown].cluster_name == unknown and not ru.msgs[unknown].endpoints
    s.ack(ru)

    s.send(EDS, [C_ECHO])                             # case 15: re-subscribe
    r = s.recv(EDS)
    assert r.names == [C_ECHO] and r.versions[C_ECHO] == ra.versions[C_ECHO], s.dump()
    s.ack(r)

    s.send(EDS, unsubscribe=["outbound|2||never.subscribed"])   # case 13
    s.expect_silence(SILENCE, "no answer to unsubscribing a name never subscribed")
    assert sorted(adsz_entry(fp, "by-name")["watches"][EDS]) == sorted([C_ECHO, C_PAY, unknown])

    s.send(RDS, ["8080"])
    r8 = s.recv(RDS)
    assert r8.names == ["8080"], s.dump()
    vhs = r8.msgs["8080"].virtual_hosts
    assert len(vhs) == len(exp["routes"][8080]) == 2, vhs
    for vh in vhs:
        [host] = [h for h in exp["routes"][8080] if h in vh.domains]
        check_virtual_host(vh, host, 8080)
    s.ack(r8)
    s.send(RDS, ["9999"])                             # case 17
    r9 = s.recv(RDS)
    assert r9.names == ["9999"] and not r9.removed and not r9.msgs["9999"].virtual_hosts, s.dump()
    s.ack(r9)

    # Case 2: a later request with another node (namespace "other", where secret is visible)
    # is ignored: still namespace interop.
    s.send(RDS, ["8080"], node=make_node("someone-else", namespace="other"))
    r = s.recv(RDS)
    assert r.names == ["8080"] and r.versions == r8.versions, s.dump()
    s.ack(r)
    assert adsz_entry(fp, "by-name")["namespace"] == NS
    s.expect_silence(SILENCE)

    # Case 18, and LDS by name: unknown CDS/LDS names are reported removed.
    n = streams(DeltaStream, fp.xds_address, make_node("by-name-cds", namespace=NS))
    gone = "outbound|1||gone.invalid"
    n.send(CDS, [C_ECHO, gone])
    r = n.recv(CDS)
    assert r.names == [C_ECHO] and r.removed == [gone], n.dump()
    check_cluster(r.msgs[C_ECHO])
    n.ack(r)
    target = f"{ECHO}:8080"
    n.send(LDS, [target, "nope.invalid:1"])
    r = n.recv(LDS)
    assert r.names == [target] and r.removed == ["nope.invalid:1"], n.dump()
    l = r.msgs[target]
    assert l.HasField("api_listener"), l
    check_hcm_rds(unpack_hcm(l), target, f"listener {target}")
    n.ack(r)
    n.expect_silence(SILENCE)


# --------------------------------------------------------------------------------------------
# NACK, stale nonce

def test_nack(fastpilot_factory, registry, streams):
    """Cases 7, 8, 37, 48. A NACK of the first CDS response gets no answer, is counted in
    pilot_total_xds_rejects{type="cds"}, logged, and shown as lastError in syncz; nothing is
    resent until the next change, whose CDS push carries the new cluster and the NACKed ones;
    its ACK clears lastError. A NACK on EDS that subscribes B gets exactly B. A NACK as the
    first request of a type creates no watch and gets no answer."""
    items = base_items()
    registry.write(items)
    fp = fastpilot_factory(registry)
    rejects = {t: fp.metric(f'pilot_total_xds_rejects{{type="{short(t).lower()}"}}') for t in (CDS, EDS, LDS)}
    s = streams(DeltaStream, fp.xds_address, make_node("nacker", namespace=NS))
    message = f"interop-test: rejected CDS on purpose ({time.monotonic_ns()})"

    s.send(CDS)
    r1 = s.recv(CDS)
    assert r1.names
    mark = fp.mark()
    s.nack(r1, message)
    s.expect_silence(SILENCE, "no answer to a NACK")
    assert fp.metric('pilot_total_xds_rejects{type="cds"}') == rejects[CDS] + 1
    lines = fp.wait_log(r"event=ads_nack", since=mark, timeout=3)
    assert any("type=CDS" in l and "protocol=delta" in l and message in l for l in lines), lines
    row = syncz_row(fp, "nacker")
    assert message in row["resources"][CDS].get("lastError", ""), row
    assert row["cluster_acked"] != r1.nonce, row

    # Case 37: the next change carries the new cluster and everything the NACK rejected.
    added = service_entry("added", NS, "added.interop.svc.cluster.local", [(8080, "grpc")], [endpoint("grpc", 15999)])
    registry.write(items + [added])
    r2 = s.recv(CDS, timeout=5)
    c_added = "outbound|8080||added.interop.svc.cluster.local"
    assert sorted(r2.names) == sorted(set(r1.names) | {c_added}) and not r2.removed, s.dump()
    s.ack(r2)
    s.expect_silence(SILENCE)
    row = syncz_row(fp, "nacker")
    assert "lastError" not in row["resources"][CDS] and row["cluster_acked"] == r2.nonce, row

    # Case 8: a NACK that subscribes.
    s.send(EDS, [C_ECHO])
    ra = s.recv(EDS)
    assert ra.names == [C_ECHO]
    s.nack(ra, "interop-test: rejected EDS", subscribe=[C_PAY])
    rb = s.recv(EDS)
    assert rb.names == [C_PAY] and not rb.removed, f"the NACK's subscription must be answered with it only\n{s.dump()}"
    assert fp.metric('pilot_total_xds_rejects{type="eds"}') == rejects[EDS] + 1
    s.ack(rb)
    s.expect_silence(SILENCE)
    assert sorted(adsz_entry(fp, "nacker")["watches"][EDS]) == [C_ECHO, C_PAY]

    # Case 48: a NACK of a type never requested.
    s.send(LDS, nonce="12345", error=(13, "interop-test: NACK of nothing"))
    s.expect_silence(SILENCE, "no answer to a NACK of an unwatched type")
    assert fp.metric('pilot_total_xds_rejects{type="lds"}') == rejects[LDS] + 1
    assert LDS not in adsz_entry(fp, "nacker")["watches"]
    # The stream still works.
    s.send(LDS)
    r = s.recv(LDS)
    assert r.names
    s.ack(r)


def test_stale_nonce(fastpilot_factory, registry, streams):
    """Cases 9 and 10: a request carrying an older nonce is counted in pilot_xds_expired_nonce
    and is not an ACK; without lists it gets no answer; with a subscribe, the names are still
    recorded and answered (fp: never lost)."""
    registry.write(base_items())
    fp = fastpilot_factory(registry)
    expired = fp.metric('pilot_xds_expired_nonce{type="eds"}')
    s = streams(DeltaStream, fp.xds_address, make_node("stale", namespace=NS))
    s.send(EDS, [C_ECHO])
    r1 = s.recv(EDS)
    s.send(EDS, [C_ECHO2])
    r2 = s.recv(EDS)
    assert r2.names == [C_ECHO2] and r1.nonce != r2.nonce

    s.send(EDS, nonce=r1.nonce)
    s.expect_silence(SILENCE, "no answer to a stale nonce")
    assert fp.metric('pilot_xds_expired_nonce{type="eds"}') == expired + 1
    row = syncz_row(fp, "stale")
    assert row["endpoint_sent"] == r2.nonce and row["endpoint_acked"] == "", f"a stale nonce taken as an ACK: {row}"

    s.send(EDS, [C_PAY], nonce=r1.nonce)
    r3 = s.recv(EDS)
    assert r3.names == [C_PAY] and not r3.removed, s.dump()
    assert fp.metric('pilot_xds_expired_nonce{type="eds"}') == expired + 2
    assert sorted(adsz_entry(fp, "stale")["watches"][EDS]) == sorted([C_ECHO, C_ECHO2, C_PAY])
    s.ack(r3)
    s.expect_silence(SILENCE)
    row = syncz_row(fp, "stale")
    assert row["endpoint_acked"] == r3.nonce == row["endpoint_sent"], row


# --------------------------------------------------------------------------------------------
# reconnect with initial_resource_versions

def test_reconnect_same_server_resends_nothing(fastpilot_factory, registry, streams):
    """Case 39-41 on one server: Envoy reconnects with every type's initial_resource_versions
    (its four first requests at once): every first response is empty, nothing follows, the
    skipped counters count every held resource, and the resumed state still matches the
    registry. One claimed version changed ("") and one unknown claimed name: exactly that
    cluster is sent, and the unknown name is removed (case 41). An EDS-first reconnect with a
    stale nonce and a name without a version gets exactly that CLA (cases 42-44)."""
    items = base_items()
    registry.write(items)
    fp = fastpilot_factory(registry)
    c1 = streams(EnvoyDeltaClient, fp.xds_address, envoy_node("resumer"))
    c1.start()
    snap = c1.snapshot()
    c1.close()
    skipped = {t: delta_counter(fp, t, "skipped") for t in (CDS, EDS, LDS, RDS)}

    c2 = streams(EnvoyDeltaClient, fp.xds_address, envoy_node("resumer"), resume=snap)
    first = c2.start()
    assert set(first) == {CDS, EDS, LDS, RDS}, c2.dump()
    for t, r in first.items():
        assert r.names == [] and r.removed == [], f"{short(t)}: expected an empty first response\n{c2.dump()}"
        assert delta_counter(fp, t, "skipped") == skipped[t] + len(snap["versions"][t]), short(t)
    c2.expect_silence(SILENCE, "nothing after an in-sync reconnect")
    check_envoy_state(c2, expected_view(items, NS))
    row = syncz_row(fp, c2.node.id)
    for key in ("cluster", "listener", "route", "endpoint"):
        assert row[f"{key}_sent"] == row[f"{key}_acked"], row

    # Case 41: one version unknown, one name the server does not have.
    s = streams(DeltaStream, fp.xds_address, make_node("resumer-raw", namespace=NS))
    claims = dict(snap["versions"][CDS])
    claims[C_PAY] = ""
    claims["outbound|1||gone.invalid"] = "0123456789abcdef"
    s.send(CDS, initial=claims)
    r = s.recv(CDS)
    assert r.names == [C_PAY] and r.removed == ["outbound|1||gone.invalid"], s.dump()
    assert r.versions[C_PAY] == snap["versions"][CDS][C_PAY]

    # Cases 42-44: an EDS first request before any CDS request, carrying the old stream's
    # nonce, claiming echo's CLA at its version and subscribing payments' without a version
    # (a warming cluster): answered at once, with exactly payments' CLA.
    e = streams(DeltaStream, fp.xds_address, make_node("resumer-eds", namespace=NS))
    e.send(EDS, [C_ECHO, C_PAY], initial={C_ECHO: snap["versions"][EDS][C_ECHO]}, nonce=c1.nonces[-1])
    r = e.recv(EDS)
    assert r.names == [C_PAY] and not r.removed and r.versions[C_PAY] == snap["versions"][EDS][C_PAY], e.dump()
    assert sorted(adsz_entry(fp, "resumer-eds")["watches"][EDS]) == sorted([C_ECHO, C_PAY])
    e.ack(r)
    e.expect_silence(SILENCE / 2)


def test_reconnect_after_registry_change_gets_only_changes(fastpilot_factory, registry, streams):
    """Case 39: while Envoy is away, echo's endpoint moves, service `gone` (alone on port
    7070) is deleted and `fresh` is added on port 8080. The reconnect's first responses carry
    exactly the changes: CDS fresh + removal of gone; EDS echo's new CLA and an empty one for
    gone; LDS the removal of 0.0.0.0_7070; RDS route 8080 (new virtual host) and an empty 7070.
    Then Envoy's follow-ups (EDS fresh) complete a state that matches the registry."""
    fresh_host, gone_host = "fresh.interop.svc.cluster.local", "gone.interop.svc.cluster.local"
    echo = lambda port: service_entry("echo", NS, ECHO, [(8080, "grpc")], [endpoint("grpc", port, "region-a/zone-a")])
    pay = service_entry("payments", "pay", PAY, [(8080, "grpc")], [endpoint("grpc", 15201)])
    gone = service_entry("gone", NS, gone_host, [(7070, "grpc")], [endpoint("grpc", 15301)])
    fresh = service_entry("fresh", NS, fresh_host, [(8080, "grpc")], [endpoint("grpc", 15401)])
    before, after = [echo(15101), pay, gone], [echo(15199), pay, fresh]
    registry.write(before)
    fp = fastpilot_factory(registry)
    c1 = streams(EnvoyDeltaClient, fp.xds_address, envoy_node("away"))
    c1.start()
    check_envoy_state(c1, expected_view(before, NS))
    snap = c1.snapshot()
    c1.close()

    mark = fp.mark()
    registry.write(after)
    wait_push(fp, mark)
    c2 = streams(EnvoyDeltaClient, fp.xds_address, envoy_node("away"), resume=snap)
    first = c2.start()
    c_fresh, c_gone = f"outbound|8080||{fresh_host}", f"outbound|7070||{gone_host}"
    assert first[CDS].names == [c_fresh] and first[CDS].removed == [c_gone], c2.dump()
    assert sorted(first[EDS].names) == sorted([C_ECHO, c_gone]) and not first[EDS].removed, c2.dump()
    assert not first[EDS].msgs[c_gone].endpoints
    assert set(cla_endpoints(first[EDS].msgs[C_ECHO])[("region-a", "zone-a", "")]) == {"127.0.0.1:15199"}
    assert first[LDS].names == [] and first[LDS].removed == ["0.0.0.0_7070"], c2.dump()
    assert sorted(first[RDS].names) == ["7070", "8080"] and not first[RDS].removed, c2.dump()
    assert not first[RDS].msgs["7070"].virtual_hosts
    assert len(first[RDS].msgs["8080"].virtual_hosts) == 3

    done = lambda: c_fresh in c2.assignments
    got = pump_all([c2], until=done, timeout=5, settle=SILENCE)
    assert [(short(r.type_url), r.names, r.removed) for r in got[c2]] == [("EDS", [c_fresh], [])], c2.dump()
    check_envoy_state(c2, expected_view(after, NS))
    assert c2.subscribed[EDS] == {C_ECHO, C_PAY, c_fresh} and c2.subscribed[RDS] == {"8080"}
    assert sorted(adsz_entry(fp, c2.node.id)["watches"][RDS]) == ["8080"]


def test_reconnect_after_server_restart_is_tiny(fastpilot_factory, registry, streams):
    """Case 40: a server restarted on the same registry gives every resource the same version;
    Envoy reconnecting with initial_resource_versions gets an empty first response of every
    type, and the bytes of those answers are tiny next to the initial sync's."""
    items = [service_entry(f"svc{i}", f"ns{i % 3}", f"svc{i}.ns{i % 3}.svc.cluster.local", [(8000 + i % 10, "grpc")],
                           [endpoint("grpc", 20000 + j, f"r{j % 2}/z{j}", address=f"10.0.{i}.{j}") for j in range(4)])
             for i in range(150)]
    registry.write(items)
    fp1 = fastpilot_factory(registry, log_level="info")
    c1 = streams(EnvoyDeltaClient, fp1.xds_address, envoy_node("restarted", "ns0"))
    c1.start(timeout=10)
    check_envoy_state(c1, expected_view(items, "ns0"))
    initial_bytes = sum(r.size for r in c1.received)
    snap = c1.snapshot()
    c1.close()
    fp1.stop()

    fp2 = fastpilot_factory(registry, log_level="info")
    c2 = streams(EnvoyDeltaClient, fp2.xds_address, envoy_node("restarted", "ns0"), resume=snap)
    first = c2.start(timeout=10)
    assert set(first) == {CDS, EDS, LDS, RDS}, c2.dump()
    for t, r in first.items():
        assert r.names == [] and r.removed == [], f"{short(t)} after a restart: {r!r}\n{c2.dump()}"
        assert delta_counter(fp2, t, "skipped") == len(snap["versions"][t])
    c2.expect_silence(SILENCE)
    resumed_bytes = sum(r.size for r in c2.received)
    assert initial_bytes > 50_000, initial_bytes
    assert resumed_bytes < 0.01 * initial_bytes, \
        f"reconnect after restart: {resumed_bytes} bytes vs {initial_bytes} for the initial sync"
    check_envoy_state(c2, expected_view(items, "ns0"))


# --------------------------------------------------------------------------------------------
# unsubscribe, pushes

def two_services(echo_port=15101, pay_port=15201):
    return [service_entry("echo", NS, ECHO, [(8080, "grpc")], [endpoint("grpc", echo_port, "region-a/zone-a")]),
            service_entry("payments", NS, "payments.interop.svc.cluster.local", [(8080, "grpc")],
                          [endpoint("grpc", pay_port, "region-a/zone-a")])]


C_PAY_NS = "outbound|8080||payments.interop.svc.cluster.local"


def test_unsubscribe(fastpilot_factory, registry, streams):
    """Case 12: unsubscribing B gets no answer, and a later endpoint change of B reaches a
    stream that still watches B but not this one; a change of A, still watched, does."""
    registry.write(two_services())
    fp = fastpilot_factory(registry)
    s = streams(DeltaStream, fp.xds_address, make_node("unsubscriber", namespace=NS))
    w = streams(DeltaStream, fp.xds_address, make_node("b-watcher", namespace=NS))
    s.send(EDS, [C_ECHO, C_PAY_NS])
    r = s.recv(EDS)
    assert sorted(r.names) == sorted([C_ECHO, C_PAY_NS])
    s.ack(r)
    w.send(EDS, [C_PAY_NS])
    w.ack(w.recv(EDS))

    s.send(EDS, unsubscribe=[C_PAY_NS])
    s.expect_silence(SILENCE, "no answer to an EDS unsubscribe")
    assert adsz_entry(fp, "unsubscriber")["watches"][EDS] == [C_ECHO]

    registry.write(two_services(pay_port=15299))
    r = w.recv(EDS, timeout=5)
    assert r.names == [C_PAY_NS] and set(cla_endpoints(r.msgs[C_PAY_NS])[("region-a", "zone-a", "")]) == {"127.0.0.1:15299"}
    w.ack(r)
    s.expect_silence(SILENCE, "no push of an unsubscribed cluster")

    registry.write(two_services(echo_port=15199, pay_port=15299))
    r = s.recv(EDS, timeout=5)
    assert r.names == [C_ECHO] and not r.removed, s.dump()
    s.ack(r)
    w.expect_silence(SILENCE / 2)


def test_endpoint_change(fastpilot_factory, registry, streams):
    """Cases 24, 35, 46: an endpoint-only change of echo sends one EDS response with exactly
    echo's CLA to the Envoy delta client; a delta stream watching only payments' CLA gets
    nothing; a SotW Envoy stream on the same HTTP/2 connection as the delta client gets its SotW
    EDS push (the CLAs of the changed service, echo's two ports, each complete). A forced push with no change then reaches the SotW stream and sends
    nothing on the delta streams."""
    items = base_items()
    registry.write(items)
    fp = fastpilot_factory(registry)
    d = streams(EnvoyDeltaClient, fp.xds_address, envoy_node("delta-envoy"))
    sotw = streams(EnvoyClient, fp.xds_address, envoy_node("sotw-envoy"), channel=d.channel)
    narrow = streams(DeltaStream, fp.xds_address, make_node("narrow", namespace=NS))
    d.start()
    sotw.start()
    narrow.send(CDS)
    narrow.ack(narrow.recv(CDS))
    narrow.send(EDS, [C_PAY])
    narrow.ack(narrow.recv(EDS))
    for c in (d, sotw, narrow):
        c.expect_silence(0.3)

    after = base_items(echo_port=15199)
    registry.write(after)
    seen_sotw_eds = lambda: any(r.type_url == EDS for r in sotw.received[4:])
    got = pump_all([d, sotw, narrow], until=lambda: len(d.received) > 4 and seen_sotw_eds(), timeout=5, settle=SILENCE)

    assert [(short(r.type_url), r.names, r.removed) for r in got[d]] == [("EDS", [C_ECHO], [])], describe(got)
    eps = cla_endpoints(got[d][0].msgs[C_ECHO])
    assert set(eps[("region-a", "zone-a", "")]) == {"127.0.0.1:15199", "127.0.0.2:15102"}, eps
    assert got[narrow] == [], describe(got)
    # SotW: an incremental EDS push carries the changed service's CLAs (Istio's partial EDS,
    # istio-push-semantics.md 7.6, as test_scoping checks), each whole.
    assert [short(r.type_url) for r in got[sotw]] == ["EDS"], sotw.dump()
    names = sorted(m.cluster_name for m in unpack(got[sotw][0]))
    assert names == sorted([C_ECHO, C_ECHO2]), f"SotW EDS push: {names}"
    check_envoy_state(d, expected_view(after, NS))
    check_envoy_state(sotw, expected_view(after, NS))

    # Case 35: forced push, nothing changed.
    status, _ = fp.http_get("/debug/adsz?push=true")
    assert status == 200
    got = pump_all([d, sotw, narrow], until=lambda: len(sotw.received) > 5, timeout=5, settle=SILENCE)
    assert got[sotw], "the SotW stream got no forced push"
    assert got[d] == [] and got[narrow] == [], f"a forced push with no change sent delta responses\n{describe(got)}"


def test_sotw_and_delta_on_one_connection(fastpilot_factory, registry, streams):
    """Case 46: one grpc.Channel (one TCP connection) carries a Delta and a SotW stream: adsz
    lists both with the same peer address and their protocols, syncz too; both are in sync.
    Closing the delta stream leaves the SotW one pushed."""
    items = two_services()
    registry.write(items)
    fp = fastpilot_factory(registry)
    channel = grpc.insecure_channel(fp.xds_address, options=[("grpc.use_local_subchannel_pool", 1)])
    try:
        _sotw_and_delta_on_one_connection(fp, registry, channel, streams)
    finally:
        channel.close()


def _sotw_and_delta_on_one_connection(fp, registry, channel, streams):
    d = streams(EnvoyDeltaClient, fp.xds_address, envoy_node("both-delta"), channel=channel)
    s = streams(EnvoyClient, fp.xds_address, envoy_node("both-sotw"), channel=channel)
    d.start()
    s.start()
    entries = {e["connectionId"].rsplit("-", 1)[0]: e for e in fp.adsz()["clients"]}
    ed, es = entries[d.node.id], entries[s.node.id]
    assert ed["protocol"] == "delta" and es["protocol"] == "sotw", entries
    assert ed["address"] == es["address"] and ed["address"].startswith("127.0.0.1:"), entries
    rows = {r["proxy"].rsplit("-", 1)[0]: r for r in fp.syncz()}
    assert rows[d.node.id]["protocol"] == "delta" and rows[s.node.id]["protocol"] == "sotw", rows
    for r in (rows[d.node.id], rows[s.node.id]):
        assert r["cluster_sent"] == r["cluster_acked"] and r["endpoint_sent"] == r["endpoint_acked"], r

    registry.write(two_services(echo_port=15199))
    got = pump_all([d, s], until=lambda: len(d.received) > 4 and len(s.received) > 4, timeout=5, settle=0.3)
    assert [(short(r.type_url), r.names) for r in got[d]] == [("EDS", [C_ECHO])], describe(got)
    assert [short(r.type_url) for r in got[s]] == ["EDS"], s.dump()

    d.close()
    deadline = time.monotonic() + 5
    while any(e["connectionId"].startswith(d.node.id) for e in fp.adsz()["clients"]):
        assert time.monotonic() < deadline, "the closed delta stream is still listed"
        time.sleep(0.05)
    registry.write(two_services(echo_port=15198))
    r = s.recv(EDS, timeout=5)
    s.handle(r)
    check_envoy_state(s, expected_view(two_services(echo_port=15198), NS))


SHARED = "shared.alpha.svc.cluster.local"
BETA = "beta.beta.svc.cluster.local"
NEW = "new.alpha.svc.cluster.local"
NEW8 = "new8.alpha.svc.cluster.local"
C_SHARED = f"outbound|8080||{SHARED}"
C_NEW = f"outbound|7000||{NEW}"
C_NEW8 = f"outbound|8080||{NEW8}"


def scoping_items(shared_export=None, new=False, new8=False):
    out = [service_entry("shared", "alpha", SHARED, [(8080, "grpc")], [endpoint("grpc", 15701, "region-a/zone-a")],
                         export_to=shared_export),
           service_entry("beta", "beta", BETA, [(9090, "grpc")], [endpoint("grpc", 15703, "region-b/zone-b")],
                         export_to=["."])]
    if new:
        out.append(service_entry("new", "alpha", NEW, [(7000, "grpc")], [endpoint("grpc", 15704)], export_to=["."]))
    if new8:
        out.append(service_entry("new8", "alpha", NEW8, [(8080, "grpc")], [endpoint("grpc", 15705)], export_to=["."]))
    return out


def summary(responses):
    """{type: (sent names in order, removed names in order)} over a window."""
    out = {}
    for t, rs in by_type(responses).items():
        out[short(t)] = (sent_names(rs), removed_names(rs))
    return out


def test_service_add_remove_and_scoping(fastpilot_factory, registry, streams):
    """Cases 28-30, 32, 45. Envoy delta clients a1, a2 (alpha) and b1, b2 (beta; b2 shares a1's
    HTTP/2 connection).
    1. Two alpha-only services are added, `new` on the new port 7000 and `new8` on 8080: alpha
       streams get CDS with exactly the two clusters, LDS exactly 0.0.0.0_7000, RDS exactly 8080
       (changed) and 7000 (once subscribed), EDS exactly the two CLAs (once subscribed); no
       removals. Beta streams get nothing.
    2. shared's exportTo becomes ["."]: beta streams get its cluster and the now-empty
       0.0.0.0_8080 in removed_resources (plus at most an empty CLA and an empty route 8080);
       alpha streams get nothing (no byte changed for them).
    3. `new` is deleted: alpha streams get CDS removal of its cluster, LDS removal of
       0.0.0.0_7000 and an empty CLA for it; beta streams get nothing.
    4. `new` comes back unchanged: alpha streams get its cluster, listener, CLA and route
       again (case 33)."""
    before = scoping_items()
    registry.write(before)
    fp = fastpilot_factory(registry)
    a1 = streams(EnvoyDeltaClient, fp.xds_address, envoy_node("a1", "alpha"))
    a2 = streams(EnvoyDeltaClient, fp.xds_address, envoy_node("a2", "alpha"))
    b1 = streams(EnvoyDeltaClient, fp.xds_address, envoy_node("b1", "beta"))
    b2 = streams(EnvoyDeltaClient, fp.xds_address, envoy_node("b2", "beta"), channel=a1.channel)
    alpha, beta = [a1, a2], [b1, b2]
    for c in alpha + beta:
        c.start()
        check_envoy_state(c, expected_view(before, "alpha" if c in alpha else "beta"))
    for c in alpha + beta:
        c.expect_silence(0.2)
    addr = {e["connectionId"].split("~")[2].split(".")[0]: e["address"] for e in fp.adsz()["clients"]}
    assert addr["a1"] == addr["b2"] and len(set(addr.values())) == 3, addr

    # 1. added
    step1 = scoping_items(new=True, new8=True)
    registry.write(step1)
    done = lambda c: C_NEW in c.assignments and C_NEW8 in c.assignments and "7000" in c.routes
    got = pump_all(alpha + beta, until=lambda: all(done(c) for c in alpha), timeout=5, settle=SILENCE)
    for c in alpha:
        sm = summary(got[c])
        assert sorted(sm["CDS"][0]) == [C_NEW, C_NEW8] and sm["CDS"][1] == [], describe(got)
        assert sorted(sm["EDS"][0]) == [C_NEW, C_NEW8] and sm["EDS"][1] == [], describe(got)
        assert sm["LDS"] == (["0.0.0.0_7000"], []), describe(got)
        assert sorted(sm["RDS"][0]) == ["7000", "8080"] and sm["RDS"][1] == [], describe(got)
        check_envoy_state(c, expected_view(step1, "alpha"))
    for c in beta:
        assert got[c] == [], f"{c.node.id} (beta) got a push for alpha-only services\n{describe(got)}"

    # 2. exportTo hides shared from beta
    step2 = scoping_items(shared_export=["."], new=True, new8=True)
    registry.write(step2)
    done = lambda c: C_SHARED not in c.clusters and "0.0.0.0_8080" not in c.listeners
    got = pump_all(alpha + beta, until=lambda: all(done(c) for c in beta), timeout=5, settle=SILENCE)
    for c in beta:
        sm = summary(got[c])
        assert sm["CDS"] == ([], [C_SHARED]), describe(got)
        assert sm["LDS"] == ([], ["0.0.0.0_8080"]), describe(got)
        assert sm.get("EDS", ([C_SHARED], []))[0] in ([], [C_SHARED]) and not sm.get("EDS", ([], []))[1], describe(got)
        for r in by_type(got[c]).get(EDS, []):
            assert all(not m.endpoints for m in r.msgs.values()), r
        assert sm.get("RDS", (["8080"], []))[0] in ([], ["8080"]) and not sm.get("RDS", ([], []))[1], describe(got)
        for r in by_type(got[c]).get(RDS, []):
            assert all(not m.virtual_hosts for m in r.msgs.values()), r
        check_envoy_state(c, expected_view(step2, "beta"))
        assert c.subscribed[EDS] == {f"outbound|9090||{BETA}"} and c.subscribed[RDS] == {"9090"}
    for c in alpha:
        assert got[c] == [], f"{c.node.id} (alpha) got a push although nothing changed for it\n{describe(got)}"

    # 3. new removed
    step3 = scoping_items(shared_export=["."], new8=True)
    registry.write(step3)
    done = lambda c: C_NEW not in c.clusters and C_NEW not in c.assignments and "7000" not in c.routes
    got = pump_all(alpha + beta, until=lambda: all(done(c) for c in alpha), timeout=5, settle=SILENCE)
    for c in alpha:
        sm = summary(got[c])
        assert sm["CDS"] == ([], [C_NEW]), describe(got)
        assert sm["LDS"] == ([], ["0.0.0.0_7000"]), describe(got)
        assert sm["EDS"] == ([C_NEW], []), describe(got)
        [cla] = [m for r in by_type(got[c])[EDS] for m in r.msgs.values()]
        assert cla.cluster_name == C_NEW and not cla.endpoints, cla
        assert sm.get("RDS", (["7000"], []))[0] in ([], ["7000"]) and not sm.get("RDS", ([], []))[1], describe(got)
        for r in by_type(got[c]).get(RDS, []):
            assert all(not m.virtual_hosts for m in r.msgs.values()), r
        check_envoy_state(c, expected_view(step3, "alpha"))
    for c in beta:
        assert got[c] == [], f"{c.node.id} (beta) got a push for an alpha-only service\n{describe(got)}"
    # Removals counted: shared for b1 and b2, new for a1 and a2; their listeners likewise.
    assert delta_counter(fp, CDS, "removed") == 4 and delta_counter(fp, LDS, "removed") == 4

    # 4. new comes back as it was (case 33): everything about it is sent again, the CLA and
    # route included, although their bytes equal what the streams once held.
    registry.write(step1b := scoping_items(shared_export=["."], new=True, new8=True))
    done = lambda c: C_NEW in c.assignments and "7000" in c.routes
    got = pump_all(alpha + beta, until=lambda: all(done(c) for c in alpha), timeout=5, settle=SILENCE)
    for c in alpha:
        sm = summary(got[c])
        assert sm["CDS"] == ([C_NEW], []) and sm["EDS"] == ([C_NEW], []), describe(got)
        assert sm["LDS"] == (["0.0.0.0_7000"], []) and sm["RDS"] == (["7000"], []), describe(got)
        check_envoy_state(c, expected_view(step1b, "alpha"))
    for c in beta:
        assert got[c] == [], describe(got)


# --------------------------------------------------------------------------------------------
# bad streams

@pytest.mark.parametrize("node", [None, make_node("")], ids=["no-node", "empty-id"])
def test_first_request_without_node(node, fastpilot_factory, registry, streams):
    """Case 1: a first request without node, or with node.id "", ends the stream with
    INVALID_ARGUMENT; the server keeps serving."""
    registry.write(two_services())
    fp = fastpilot_factory(registry)
    s = streams(DeltaStream, fp.xds_address, node)
    s.send(CDS, node=node if node is not None else False)
    code, details = s.wait_end(5)
    assert code == grpc.StatusCode.INVALID_ARGUMENT, (code, details, s.dump())
    assert not s.received, s.dump()
    ok = streams(DeltaStream, fp.xds_address, make_node("fine", namespace=NS))
    ok.send(CDS)
    assert ok.recv(CDS).names


def test_malformed_request(fastpilot_factory, registry, streams):
    """Malformed DeltaDiscoveryRequest bytes, as the first request or after a valid one, end
    that stream with INVALID_ARGUMENT; an Envoy delta client sharing the same HTTP/2
    connection, and one on its own connection, keep getting pushes. A later request whose
    node field holds garbage is accepted (later nodes are not decoded)."""
    registry.write(two_services())
    fp = fastpilot_factory(registry)
    shared = streams(EnvoyDeltaClient, fp.xds_address, envoy_node("bystander-shared"))
    alone = streams(EnvoyDeltaClient, fp.xds_address, envoy_node("bystander-alone"))
    shared.start()
    alone.start()

    # Field 2 (type_url) claims 127 bytes, 3 follow.
    first = streams(DeltaStream, fp.xds_address, make_node("bad-first", namespace=NS), channel=shared.channel)
    first.send(None, raw=b"\x12\x7fabc")
    code, details = first.wait_end(5)
    assert code == grpc.StatusCode.INVALID_ARGUMENT, (code, details)

    later = streams(DeltaStream, fp.xds_address, make_node("bad-later", namespace=NS), channel=shared.channel)
    later.send(CDS)
    later.ack(later.recv(CDS))
    # type_url as a varint: wrong wire type.
    later.send(None, raw=b"\x10\x01")
    code, details = later.wait_end(5)
    assert code == grpc.StatusCode.INVALID_ARGUMENT, (code, details, later.dump())

    garbage = streams(DeltaStream, fp.xds_address, make_node("garbage-node", namespace=NS), channel=shared.channel)
    garbage.send(CDS)
    garbage.ack(garbage.recv(CDS))
    req = discovery_pb2.DeltaDiscoveryRequest(type_url=EDS, resource_names_subscribe=[C_ECHO]).SerializeToString()
    garbage.send(None, raw=b"\x0a\x03\xff\xff\xff" + req)   # node: 3 bytes that are no Node
    r = garbage.recv(EDS)
    assert r.names == [C_ECHO], garbage.dump()
    garbage.ack(r)

    registry.write(two_services(echo_port=15199))
    got = pump_all([shared, alone, garbage], until=lambda: all(len(c.received) > 4 for c in (shared, alone))
                   and len(garbage.received) > 2, timeout=5, settle=0.3)
    for c in (shared, alone):
        assert [(short(r.type_url), r.names) for r in got[c]] == [("EDS", [C_ECHO])], describe(got)
    assert [(short(r.type_url), r.names) for r in got[garbage]] == [("EDS", [C_ECHO])], describe(got)
    assert fp.proc.poll() is None
