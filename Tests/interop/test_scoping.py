"""Push scoping through the whole pipeline (registry file -> debounce -> PushContext -> push
queue -> streams), seen by several raw ADS clients in different namespaces (node metadata
NAMESPACE): who gets which push, and how many."""
import time

import pytest

from conftest import endpoint, expected_view, service_entry
from xds_client import (CDS, EDS, LDS, RDS, AdsStream, EnvoyClient, check_envoy_state, cla_endpoints,
                        make_node, pump_all, resource_name, short, unpack)

SHARED = "shared.alpha.svc.cluster.local"       # alpha, exported everywhere, port 8080
PRIVATE = "private.alpha.svc.cluster.local"     # alpha, exportTo ["."], port 8080
BETA = "beta.beta.svc.cluster.local"            # beta, exportTo ["."], port 9090
NEW = "new.alpha.svc.cluster.local"             # added by a test: alpha, exportTo ["."], port 7000
C_SHARED = f"outbound|8080||{SHARED}"
C_PRIVATE = f"outbound|8080||{PRIVATE}"


def items(private_port=15702, shared_weight=None, with_new=False):
    out = [
        service_entry("shared", "alpha", SHARED, [(8080, "grpc")],
                      [endpoint("grpc", 15701, "region-a/zone-a", weight=shared_weight)]),
        service_entry("private", "alpha", PRIVATE, [(8080, "grpc")],
                      [endpoint("grpc", private_port, "region-a/zone-a")], export_to=["."]),
        service_entry("beta", "beta", BETA, [(9090, "grpc")],
                      [endpoint("grpc", 15703, "region-b/zone-b")], export_to=["."]),
    ]
    if with_new:
        out.append(service_entry("new", "alpha", NEW, [(7000, "grpc")],
                                 [endpoint("grpc", 15704, "region-a/zone-a")], export_to=["."]))
    return out


class Fleet:
    """Envoy-style clients a1, a2 (alpha) and b1, b2 (beta), connected and quiet; plus
    `narrow`, an alpha client that watches CDS (wildcard) and EDS for the shared cluster only.
    a1 and b2 share one HTTP/2 connection (two streams, two namespaces); the others have their
    own."""

    def __init__(self, fp, registry_items):
        self.fp = fp
        self.envoys = {}
        for name, ns in (("a1", "alpha"), ("a2", "alpha"), ("b1", "beta"), ("b2", "beta")):
            shared = self.envoys["a1"].channel if name == "b2" else None
            c = EnvoyClient(fp.xds_address, make_node(f"scoping-{name}", namespace=ns), channel=shared)
            self.envoys[name] = c
        self.narrow = AdsStream(fp.xds_address, make_node("scoping-a-eds-shared", namespace="alpha"))
        for name, c in self.envoys.items():
            c.start()
            ns = "alpha" if name.startswith("a") else "beta"
            check_envoy_state(c, expected_view(registry_items, ns))
        s = self.narrow
        s.send(CDS, [])
        s.ack(s.recv(CDS))
        s.send(EDS, [C_SHARED])
        s.ack(s.recv(EDS))
        for c in self.all():
            c.expect_silence(0.2 if c is not self.narrow else 0.5)
        peers = {x["connectionId"].rsplit("-", 1)[0]: (x["address"], x["namespace"]) for x in fp.adsz()["clients"]}
        assert peers["scoping-a1"][0] == peers["scoping-b2"][0], peers
        assert len({a for a, _ in peers.values()}) == 4, f"expected 4 connections for 5 streams: {peers}"
        assert peers["scoping-a1"][1] == "alpha" and peers["scoping-b2"][1] == "beta", peers

    def all(self):
        return list(self.envoys.values()) + [self.narrow]

    def close(self):
        for c in reversed(self.all()):  # b2 before a1, which owns their connection
            c.close()


@pytest.fixture
def fleet_factory():
    made = []

    def make(fp, registry_items):
        f = Fleet(fp, registry_items)
        made.append(f)
        return f

    yield make
    for f in made:
        f.close()


def types_of(responses):
    return [short(r.type_url) for r in responses]


def describe(got):
    return "\n".join(f"{c.node.id}: {[(short(r.type_url), [resource_name(m) for m in unpack(r)]) for r in rs]}"
                     for c, rs in got.items())


def narrow_pump(s):
    """The narrow client ACKs whatever it gets (it follows nothing)."""
    out = s.poll()
    for r in out:
        s.ack(r)
    return out


def test_scoping_1_endpoint_change_pushes_eds_only_to_watchers(fastpilot_factory, registry, fleet_factory):
    """An endpoint-only change of private.alpha (exportTo ".") reaches the two alpha proxies that
    watch its cluster as one EDS response with just that cluster and the new endpoint (no CDS,
    LDS or RDS). The alpha proxy watching only another cluster's EDS, and the beta proxies,
    get nothing."""
    registry.write(items())
    fp = fastpilot_factory(registry)
    fleet = fleet_factory(fp, items())
    a1, a2, b1, b2 = (fleet.envoys[n] for n in ("a1", "a2", "b1", "b2"))

    registry.write(items(private_port=15799))
    got_eds = lambda c: any(r.type_url == EDS for r in c.received[-3:])
    got = pump_all([a1, a2, b1, b2], until=lambda: all(len(c.received) > 4 and got_eds(c) for c in (a1, a2)),
                   timeout=5, settle=1.0)
    got[fleet.narrow] = narrow_pump(fleet.narrow)

    for c in (a1, a2):
        assert types_of(got[c]) == ["EDS"], describe(got)
        [cla] = unpack(got[c][0])
        assert cla.cluster_name == C_PRIVATE, describe(got)
        assert set(cla_endpoints(cla)[("region-a", "zone-a", "")]) == {"127.0.0.1:15799"}
    for c in (b1, b2, fleet.narrow):
        assert got[c] == [], f"{c.node.id} got a push it does not need\n{describe(got)}"
    for c in fleet.all():
        c.check_nonces()


def test_scoping_2_new_private_service_reaches_only_its_namespace(fastpilot_factory, registry, fleet_factory):
    """A new ServiceEntry with exportTo ["."] in alpha, on a new port, reaches the alpha proxies
    (new cluster in CDS and its EDS, listener 0.0.0.0_7000 in LDS, route 7000 in RDS); beta
    proxies get nothing at all."""
    registry.write(items())
    fp = fastpilot_factory(registry)
    fleet = fleet_factory(fp, items())
    a1, a2, b1, b2 = (fleet.envoys[n] for n in ("a1", "a2", "b1", "b2"))

    after = items(with_new=True)
    registry.write(after)
    done = lambda c: f"outbound|7000||{NEW}" in c.assignments and "7000" in c.routes
    got = pump_all([a1, a2, b1, b2], until=lambda: done(a1) and done(a2), timeout=5, settle=1.0)
    got[fleet.narrow] = narrow_pump(fleet.narrow)

    for c in (a1, a2):
        assert {"CDS", "EDS", "LDS", "RDS"} <= set(types_of(got[c])), describe(got)
        check_envoy_state(c, expected_view(after, "alpha"))
        c.check_nonces()
    for c in (b1, b2):
        assert got[c] == [], f"{c.node.id} (beta) got a push for an alpha-only service\n{describe(got)}"
        check_envoy_state(c, expected_view(after, "beta"))
    # The narrow alpha client watches CDS wildcard: it gets the new cluster list, nothing else.
    assert types_of(got[fleet.narrow]) == ["CDS"], describe(got)
    assert f"outbound|7000||{NEW}" in [resource_name(m) for m in unpack(got[fleet.narrow][0])]
    for c in fleet.all():
        c.expect_silence(0.3)


def test_scoping_3_burst_of_100_writes_is_one_push(fastpilot_factory, registry, fleet_factory):
    """100 registry rewrites (shared's endpoint weight 1..100) inside the debounce window
    (--debounce-after 500ms, written within about 300 ms, at most 900 ms) give exactly one push: one EDS
    response per connection watching the shared cluster, carrying the final weight 100, and
    nothing else."""
    registry.write(items(shared_weight=1000))
    fp = fastpilot_factory(registry, "--debounce-after", "500ms")
    fleet = fleet_factory(fp, items(shared_weight=1000))
    everyone = fleet.all()
    envoys = list(fleet.envoys.values())
    mark = fp.mark()

    t0 = time.monotonic()
    for w in range(1, 101):
        registry.write(items(shared_weight=w))
        time.sleep(0.002)
    burst = time.monotonic() - t0
    # The debounce merges while writes come less than 500 ms apart; the registry watcher reloads
    # at most once a second during a burst. Under a second, any two reloads are close enough.
    assert burst < 0.9, f"the burst took {burst:.3f}s: the machine is too busy for this test's premise"

    def all_got():
        narrow_seen.extend(narrow_pump(fleet.narrow))
        return all(any(r.type_url == EDS for r in c.received[-2:]) for c in envoys) and narrow_seen

    narrow_seen = []
    got = pump_all(envoys, until=all_got, timeout=5, settle=1.5)
    got[fleet.narrow] = narrow_seen + narrow_pump(fleet.narrow)

    for c in everyone:
        assert types_of(got[c]) == ["EDS"], f"{c.node.id}: expected exactly one EDS response\n{describe(got)}"
        [cla] = [m for m in unpack(got[c][0]) if m.cluster_name == C_SHARED]
        assert list(cla_endpoints(cla)[("region-a", "zone-a", "")].values()) == [100], \
            f"{c.node.id}: final weight not pushed: {cla}"
    pushes = fp.find_log(r"event=push ", since=mark)
    assert len(pushes) == 1, "expected one debounced push:\n" + "\n".join(pushes)
    assert "full=false" in pushes[0], pushes[0]
