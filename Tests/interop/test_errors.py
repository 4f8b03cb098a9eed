"""Stream rules and error paths, with a raw ADS client: reconnect, stale nonce, unsubscribe,
unknown type_url, missing node, unknown method, oversized message, half-close, unknown
resource names, and an invalid registry file."""
import os

import grpc
import pytest
from envoy.service.discovery.v3 import discovery_pb2

from conftest import endpoint, service_entry
from xds_client import CDS, EDS, LDS, RDS, AdsStream, EnvoyClient, cla_endpoints, make_node, short, unpack

NS = "interop"
ECHO = "echo.interop.svc.cluster.local"
CLUSTER = f"outbound|8080||{ECHO}"


def echo_items(port=15101):
    return [service_entry("echo", NS, ECHO, [(8080, "grpc")], [endpoint("grpc", port, "region-a/zone-a")])]


def grpc_sequence(s, target=f"{ECHO}:8080"):
    """gRPC's LDS -> RDS -> CDS -> EDS with ACKs; returns {type_url: last response}."""
    last = {}
    for t, names in ((LDS, [target]), (RDS, [f"{ECHO}:8080"]), (CDS, [CLUSTER]), (EDS, [CLUSTER])):
        s.send(t, names)
        r = s.recv(t)
        assert len(r.resources) == 1, f"{short(t)}: {len(r.resources)} resources\n{s.dump()}"
        s.ack(r)
        last[t] = r
    return last


@pytest.fixture
def echo_server(fastpilot_factory, registry):
    registry.write(echo_items())
    return fastpilot_factory(registry)


@pytest.fixture
def streams():
    opened = []

    def open_(*a, cls=AdsStream, **kw):
        s = cls(*a, **kw)
        opened.append(s)
        return s

    yield open_
    for s in opened:
        s.close()


# --------------------------------------------------------------------------------------------
# reconnect

@pytest.mark.parametrize("order", [(EDS, LDS, RDS, CDS), (LDS, RDS, CDS, EDS)], ids=["eds-first", "lds-first"])
def test_reconnect_grpc_style_every_type_answered(order, echo_server, streams):
    """A new stream whose requests carry the last ACKed version and an empty nonce (what gRPC
    sends after a reconnect, all at once; observed in the order EDS, LDS, RDS, CDS) is answered
    for every type with the same resources, although the version is current.

    Then the ACKs: when CDS was requested after EDS on the stream, Istio marks the EDS watch
    AlwaysRespond (istio-push-semantics.md 8.2 step 3, envoyproxy/envoy#13009: Envoy needs EDS
    again to finish warming the clusters), so exactly one more EDS response answers the EDS
    ACK; its ACK, and every other ACK, gets no response."""
    first = streams(echo_server.xds_address, make_node("reconnecting-client", namespace=NS))
    last = grpc_sequence(first)
    first.close()

    s = streams(echo_server.xds_address, make_node("reconnecting-client", namespace=NS))
    subs = {LDS: [f"{ECHO}:8080"], RDS: [f"{ECHO}:8080"], CDS: [CLUSTER], EDS: [CLUSTER]}
    for t in order:
        s.send(t, subs[t], version=last[t].version_info, nonce="")
    got = {}
    for _ in range(4):
        r = s.recv(timeout=5)
        assert r.type_url not in got, f"two {short(r.type_url)} responses\n{s.dump()}"
        got[r.type_url] = r
        assert [m.SerializeToString() for m in unpack(r)] == [m.SerializeToString() for m in unpack(last[r.type_url])], \
            f"{short(r.type_url)} after reconnect differs from before\n{s.dump()}"
    for t in order:
        s.ack(got[t])
    if order.index(CDS) > order.index(EDS):
        again = s.recv(EDS, timeout=2)
        assert [m.SerializeToString() for m in unpack(again)] == [m.SerializeToString() for m in unpack(got[EDS])]
        s.ack(again)
    s.check_nonces()
    s.expect_silence(1.0, "no response to the ACKs after the reconnect")


def test_reconnect_envoy_style_every_type_answered(echo_server, streams):
    """The same for an Envoy-style client: wildcard CDS/LDS and named EDS/RDS, each with the
    version it had ACKed and an empty nonce, all sent at once on the new stream."""
    first = streams(echo_server.xds_address, make_node("reconnecting-envoy", namespace=NS), cls=EnvoyClient)
    first.start()
    versions = dict(first.acked_version)
    names = {t: list(first.names[t]) for t in (CDS, EDS, LDS, RDS)}
    assert all(versions.get(t) for t in names), first.dump()
    first.close()

    s = streams(echo_server.xds_address, make_node("reconnecting-envoy", namespace=NS))
    for t in (CDS, EDS, LDS, RDS):
        s.send(t, names[t], version=versions[t], nonce="")
    got = sorted(short(s.recv(timeout=5).type_url) for _ in range(4))
    assert got == ["CDS", "EDS", "LDS", "RDS"], s.dump()
    for r in s.received:
        s.ack(r)
    s.expect_silence(1.0, "no response to the ACKs after the reconnect")


# --------------------------------------------------------------------------------------------
# stale nonce, unsubscribe

def test_stale_nonce_is_ignored(echo_server, registry, streams):
    """After a push replaced EDS nonce N1 by N2 (ACKed), a request still carrying N1 is stale:
    no response, and pilot_xds_expired_nonce{type="eds"} counts it."""
    s = streams(echo_server.xds_address, make_node("stale-client", namespace=NS))
    first = grpc_sequence(s)[EDS]
    registry.write(echo_items(port=15102))          # endpoint-only change: an EDS push
    pushed = s.recv(EDS, timeout=5)
    assert pushed.nonce != first.nonce
    s.ack(pushed)
    s.expect_silence(0.5)
    before = echo_server.metric('pilot_xds_expired_nonce{type="eds"}')

    s.send(EDS, [CLUSTER], version=first.version_info, nonce=first.nonce)
    s.expect_silence(1.0, "no response to a stale nonce")
    s.send(EDS, [CLUSTER], version=pushed.version_info, nonce="no-such-nonce")
    s.expect_silence(1.0, "no response to a nonce never sent")
    assert echo_server.metric('pilot_xds_expired_nonce{type="eds"}') == before + 2


def test_eds_unsubscribe_gets_no_response_and_no_push(echo_server, registry, streams):
    """EDS with no names (after an ACK) unsubscribes: no response, the watch is gone from
    /debug/adsz, and a later endpoint change pushes nothing to this stream."""
    node = make_node("unsubscribing-proxy", namespace=NS)
    c = streams(echo_server.xds_address, node, cls=EnvoyClient)
    c.start()
    c.expect_silence(0.5)
    c.send(EDS, [], version=c.acked_version[EDS], nonce=c.last_nonce[EDS])
    c.expect_silence(1.0, "no response to an EDS unsubscribe")
    [client] = [x for x in echo_server.adsz()["clients"] if x["connectionId"].startswith(node.id)]
    assert EDS not in client["watches"] and CDS in client["watches"], client

    mark = echo_server.mark()
    registry.write(echo_items(port=15102))
    echo_server.wait_log(r"event=push .*full=false", since=mark, timeout=5)
    c.expect_silence(1.0, "no EDS push after the unsubscribe")


# --------------------------------------------------------------------------------------------
# stream errors

def test_unknown_type_url_ends_stream_invalid_argument(echo_server, streams):
    s = streams(echo_server.xds_address, make_node("odd-client", namespace=NS))
    s.send("type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret", ["default"])
    code, details = s.wait_end(5)
    assert code == grpc.StatusCode.INVALID_ARGUMENT, (code, details, s.dump())


def test_unknown_type_url_after_valid_requests_ends_stream(echo_server, streams):
    s = streams(echo_server.xds_address, make_node("odd-client-2", namespace=NS))
    s.send(CDS, [])
    s.ack(s.recv(CDS))
    s.send("type.googleapis.com/envoy.config.core.v3.TypedExtensionConfig", [])
    code, details = s.wait_end(5)
    assert code == grpc.StatusCode.INVALID_ARGUMENT, (code, details, s.dump())


def test_first_request_without_node_ends_stream_invalid_argument(echo_server, streams):
    s = streams(echo_server.xds_address, None)
    s.send(CDS, [])
    code, details = s.wait_end(5)
    assert code == grpc.StatusCode.INVALID_ARGUMENT, (code, details, s.dump())
    assert not s.received, s.dump()


@pytest.mark.parametrize("method, kind", [
    ("/no.such.Service/Method", "unary"),
    # Both ADS methods are served (test_delta.py); another method of the service is not.
    ("/envoy.service.discovery.v3.AggregatedDiscoveryService/NoSuchMethod", "stream"),
], ids=["unknown-service", "unknown-ads-method"])
def test_unknown_method_is_unimplemented(method, kind, echo_server):
    with grpc.insecure_channel(echo_server.xds_address) as ch:
        if kind == "unary":
            call = ch.unary_unary(method)
            with pytest.raises(grpc.RpcError) as e:
                call(b"", timeout=5)
            err = e.value
        else:
            call = ch.stream_stream(method)
            it = call(iter([b""]), timeout=5)
            with pytest.raises(grpc.RpcError) as e:
                list(it)
            err = e.value
    assert err.code() == grpc.StatusCode.UNIMPLEMENTED, (err.code(), err.details())
    assert err.code().value[0] == 12


def test_message_over_4mib_is_resource_exhausted(echo_server, streams):
    """A DiscoveryRequest over the 4 MiB limit ends the stream with RESOURCE_EXHAUSTED (8), and
    the server keeps serving new streams."""
    s = streams(echo_server.xds_address, make_node("huge-client", namespace=NS))
    big = discovery_pb2.DiscoveryRequest(type_url=EDS, resource_names=["x" * 1024] * (4 * 1024 + 16),
                                         node=make_node("huge-client", namespace=NS))
    assert big.ByteSize() > 4 * 1024 * 1024
    s.send(None, raw=big)
    code, details = s.wait_end(5)
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED, (code, details, s.dump())
    assert code.value[0] == 8

    ok = streams(echo_server.xds_address, make_node("after-huge", namespace=NS))
    ok.send(CDS, [])
    assert unpack(ok.recv(CDS))


def test_half_close_ends_stream_ok(echo_server, streams):
    """The client half-closes after its requests: the server ends the stream with OK."""
    s = streams(echo_server.xds_address, make_node("half-closing", namespace=NS))
    s.send(CDS, [])
    s.ack(s.recv(CDS))
    s.half_close()
    code, details = s.wait_end(5)
    assert code == grpc.StatusCode.OK, (code, details, s.dump())


def test_unknown_names_are_answered(echo_server, streams):
    """Names fastpilot does not know: LDS by name gets a response without that listener (SotW:
    it does not exist), RDS and EDS get an empty RouteConfiguration / ClusterLoadAssignment of
    that name (Istio's answers), so a client never waits for its does-not-exist timer."""
    s = streams(echo_server.xds_address, make_node("asking-for-nothing", namespace=NS))
    s.send(LDS, ["nosuch.example:1234"])
    r = s.recv(LDS)
    assert unpack(r) == [], s.dump()
    s.ack(r)
    s.send(RDS, ["nosuch.example:1234"])
    r = s.recv(RDS)
    [rc] = unpack(r)
    assert rc.name == "nosuch.example:1234" and not rc.virtual_hosts
    s.ack(r)
    s.send(EDS, ["outbound|1234||nosuch.example"])
    r = s.recv(EDS)
    [cla] = unpack(r)
    assert cla.cluster_name == "outbound|1234||nosuch.example" and not cla.endpoints
    s.ack(r)
    s.check_nonces()
    s.expect_silence(1.0)


def test_invalid_registry_keeps_last_good_and_pushes_nothing(echo_server, registry, streams):
    """A registry file that does not parse is logged (registry_invalid), counted
    (fastpilot_registry_errors) and ignored: no push; the next valid file is pushed."""
    c = streams(echo_server.xds_address, make_node("watching-proxy", namespace=NS), cls=EnvoyClient)
    c.start()
    c.expect_silence(0.3)
    before = echo_server.metric("fastpilot_registry_errors")
    mark = echo_server.mark()
    tmp = registry.path.with_name("broken.tmp")
    tmp.write_text('{"apiVersion": "v1", "kind": "List", "items": [ {"kind": ')
    os.rename(tmp, registry.path)
    echo_server.wait_log(r"event=registry_invalid", since=mark, timeout=5)
    assert echo_server.metric("fastpilot_registry_errors") == before + 1
    c.expect_silence(1.0, "no push for an invalid registry")
    assert not echo_server.find_log(r"event=push ", since=mark)

    registry.write(echo_items(port=15177))
    r = c.recv(EDS, timeout=5)
    c.handle(r)
    [cla] = unpack(r)
    assert set(cla_endpoints(cla)[("region-a", "zone-a", "")]) == {"127.0.0.1:15177"}, cla
    c.expect_silence(1.0)


def test_deleted_registry_keeps_last_good_and_recreation_is_pushed(echo_server, registry, streams):
    """Deleting the registry file is an error (logged, counted), not an empty registry: every
    client keeps its config and gets no push. Putting a file back is pushed as usual."""
    c = streams(echo_server.xds_address, make_node("watching-proxy", namespace=NS), cls=EnvoyClient)
    c.start()
    c.expect_silence(0.3)
    before = echo_server.metric("fastpilot_registry_errors")
    mark = echo_server.mark()
    registry.path.unlink()
    echo_server.wait_log(r"event=registry_invalid .*removed", since=mark, timeout=5)
    assert echo_server.metric("fastpilot_registry_errors") == before + 1
    c.expect_silence(1.0, "no push when the registry file is deleted")
    assert not echo_server.find_log(r"event=push ", since=mark)
    # A client that connects now still gets the last good registry.
    late = streams(echo_server.xds_address, make_node("late-proxy", namespace=NS), cls=EnvoyClient)
    late.start()
    assert CLUSTER in late.clusters and CLUSTER in late.assignments, list(late.clusters)

    registry.write(echo_items(port=15178))
    r = c.recv(EDS, timeout=5)
    c.handle(r)
    [cla] = unpack(r)
    assert set(cla_endpoints(cla)[("region-a", "zone-a", "")]) == {"127.0.0.1:15178"}, cla


def test_eds_subscription_shrink_is_quiet_growth_is_answered(fastpilot_factory, registry, streams):
    """An ACK that only removes EDS names gets no response (absence is not deletion for EDS);
    one that adds a name is answered with that name."""
    other = "other.interop.svc.cluster.local"
    registry.write(echo_items() + [service_entry("other", NS, other, [(8080, "grpc")], [endpoint("grpc", 15102)])])
    fp = fastpilot_factory(registry)
    both = [CLUSTER, f"outbound|8080||{other}"]
    s = streams(fp.xds_address, make_node("shrinking-proxy", namespace=NS))
    s.send(EDS, both)
    r = s.recv(EDS)
    assert sorted(m.cluster_name for m in unpack(r)) == sorted(both)
    s.ack(r)
    s.expect_silence(0.5)
    s.ack(r, names=[CLUSTER])
    s.expect_silence(1.0, "no response to an EDS ACK that only removes names")
    s.ack(r, names=both)
    r2 = s.recv(EDS, timeout=5)
    # Only the newly subscribed name (Istio's Delta.Subscribed): the other is unchanged.
    assert [m.cluster_name for m in unpack(r2)] == [f"outbound|8080||{other}"], s.dump()
    s.ack(r2)
    s.expect_silence(1.0)
