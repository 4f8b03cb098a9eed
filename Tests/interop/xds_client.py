"""A raw ADS (State of the World) client on grpcio + envoy's generated messages (xds-protos).

`AdsStream` is one StreamAggregatedResources call: requests go in through a queue-fed
iterator, responses are collected by a reader thread, and everything is kept in a transcript
that failing assertions print. `EnvoyClient` adds Envoy's behaviour on top: wildcard CDS and
LDS, EDS for every cluster, RDS for every route the listeners name, and an ACK for every
response with the current subscription.

Every resource is decoded with protobuf's own parser (`Any.Unpack`).
"""
import queue
import threading
import time

import grpc
from google.protobuf import any_pb2
from google.rpc import status_pb2
from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.core.v3 import base_pb2
from envoy.config.endpoint.v3 import endpoint_pb2
from envoy.config.listener.v3 import listener_pb2
from envoy.config.route.v3 import route_pb2
from envoy.extensions.filters.http.router.v3 import router_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import http_connection_manager_pb2 as hcm_pb2
from envoy.service.discovery.v3 import discovery_pb2

ADS_METHOD = "/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources"
PREFIX = "type.googleapis.com/"
CDS = PREFIX + "envoy.config.cluster.v3.Cluster"
EDS = PREFIX + "envoy.config.endpoint.v3.ClusterLoadAssignment"
LDS = PREFIX + "envoy.config.listener.v3.Listener"
RDS = PREFIX + "envoy.config.route.v3.RouteConfiguration"
HCM_TYPE = PREFIX + "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
ROUTER_TYPE = PREFIX + "envoy.extensions.filters.http.router.v3.Router"
RESOURCE_WRAPPER = PREFIX + "envoy.service.discovery.v3.Resource"

SHORT = {CDS: "CDS", EDS: "EDS", LDS: "LDS", RDS: "RDS"}
MESSAGE = {
    CDS: cluster_pb2.Cluster,
    EDS: endpoint_pb2.ClusterLoadAssignment,
    LDS: listener_pb2.Listener,
    RDS: route_pb2.RouteConfiguration,
}
_END = object()


def short(type_url):
    return SHORT.get(type_url, type_url)


def make_node(node_id, namespace=None, cluster="interop", metadata=None):
    node = base_pb2.Node(id=node_id, cluster=cluster, user_agent_name="fastpilot-interop-raw")
    md = dict(metadata or {})
    if namespace is not None:
        md["NAMESPACE"] = namespace
    if md:
        node.metadata.update(md)
    return node


def resource_name(msg):
    return msg.cluster_name if isinstance(msg, endpoint_pb2.ClusterLoadAssignment) else msg.name


def unpack(resp):
    """The response's resources as envoy messages, parsed by protobuf. Each Any must carry the
    response's type_url (or the Resource wrapper around it) and parse completely."""
    cls = MESSAGE[resp.type_url]
    out = []
    for i, any_ in enumerate(resp.resources):
        if any_.type_url == RESOURCE_WRAPPER:
            wrapper = discovery_pb2.Resource()
            assert any_.Unpack(wrapper), f"{short(resp.type_url)} resources[{i}]: Resource wrapper does not parse"
            any_ = wrapper.resource
        assert any_.type_url == resp.type_url, \
            f"{short(resp.type_url)} resources[{i}] has type_url {any_.type_url!r}"
        msg = cls()
        assert any_.Unpack(msg), f"{short(resp.type_url)} resources[{i}] does not parse as {cls.__name__}"
        out.append(msg)
    return out


def unpack_hcm(listener):
    """The HttpConnectionManager of an ApiListener or of the listener's first filter chain."""
    if listener.HasField("api_listener"):
        any_ = listener.api_listener.api_listener
    else:
        filters = [f for fc in listener.filter_chains for f in fc.filters]
        assert filters, f"listener {listener.name}: no api_listener and no network filter"
        hcms = [f for f in filters if f.typed_config.type_url == HCM_TYPE]
        assert hcms, f"listener {listener.name}: no HttpConnectionManager filter in {[f.name for f in filters]}"
        any_ = hcms[0].typed_config
    assert any_.type_url == HCM_TYPE, f"listener {listener.name}: api_listener is {any_.type_url}"
    hcm = hcm_pb2.HttpConnectionManager()
    assert any_.Unpack(hcm), f"listener {listener.name}: HttpConnectionManager does not parse"
    return hcm


def unpack_router(http_filter):
    assert http_filter.typed_config.type_url == ROUTER_TYPE, \
        f"http filter {http_filter.name!r} is {http_filter.typed_config.type_url}, not the Router"
    r = router_pb2.Router()
    assert http_filter.typed_config.Unpack(r)
    return r


class StreamEnded(AssertionError):
    pass


class AdsStream:
    """One ADS stream. Not thread-safe: drive it from one test thread."""

    def __init__(self, address, node, channel=None, options=()):
        self.address = address
        self.node = node
        self.t0 = time.monotonic()
        self._own_channel = channel is None
        # A local subchannel pool: each client its own TCP connection (gRPC would otherwise
        # share one connection between channels to the same address).
        self.channel = channel or grpc.insecure_channel(
            address, options=[("grpc.use_local_subchannel_pool", 1)] + list(options))
        self._requests = queue.Queue()
        self._responses = queue.Queue()
        self.transcript = []
        self.received = []           # every DiscoveryResponse, in order
        self.nonces = []
        self.status = None           # (grpc.StatusCode, details) once the stream ended
        self.ended = threading.Event()
        self.sent_node = False
        # Per type: the current subscription, the last nonce received and the last version ACKed.
        self.names = {}
        self.last_nonce = {}
        self.acked_version = {}
        call = self.channel.stream_stream(
            ADS_METHOD,
            request_serializer=discovery_pb2.DiscoveryRequest.SerializeToString,
            response_deserializer=discovery_pb2.DiscoveryResponse.FromString,
        )
        self.call = call(self._request_iter())
        self._reader = threading.Thread(target=self._read, name=f"ads-{node.id if node else '-'}", daemon=True)
        self._reader.start()

    # -- plumbing --

    def _request_iter(self):
        while True:
            r = self._requests.get()
            if r is _END:
                return
            yield r

    def _read(self):
        try:
            for resp in self.call:
                self._responses.put((time.monotonic(), resp))
            self.status = (grpc.StatusCode.OK, "")
        except grpc.RpcError as e:
            self.status = (e.code(), e.details())
        except Exception as e:  # a response that does not parse lands here
            self.status = (None, f"client error: {e!r}")
        finally:
            self._log("s->c END", str(self.status))
            self.ended.set()
            self._responses.put((time.monotonic(), _END))

    def _log(self, what, text):
        self.transcript.append(f"{time.monotonic() - self.t0:7.3f} {what} {text}")

    def dump(self, last=40):
        return f"transcript of {self.node.id if self.node else '(no node)'}:\n" + "\n".join(self.transcript[-last:])

    def half_close(self):
        """Ends the request stream (END_STREAM from the client); responses still flow."""
        self._log("c->s", "half-close")
        self._requests.put(_END)

    def close(self):
        self._requests.put(_END)
        self.call.cancel()
        if self._own_channel:
            self.channel.close()

    # -- requests --

    def send(self, type_url, names=(), version="", nonce="", error=None, node=None, raw=None):
        """Sends one DiscoveryRequest. The node goes on the stream's first request unless
        `node=False`; `raw` sends a prepared DiscoveryRequest as is."""
        if raw is not None:
            req = raw
        else:
            req = discovery_pb2.DiscoveryRequest(type_url=type_url, resource_names=list(names),
                                                 version_info=version, response_nonce=nonce)
            if error is not None:
                code, message = error
                req.error_detail.CopyFrom(status_pb2.Status(code=code, message=message))
            if node is not False and (node is not None or not self.sent_node) and self.node is not None:
                req.node.CopyFrom(node or self.node)
            self.names[type_url] = list(names)
        self.sent_node = self.sent_node or req.HasField("node")
        kind = "NACK" if req.HasField("error_detail") else ("ACK " if req.response_nonce else "REQ ")
        self._log(f"c->s {kind}", f"{short(req.type_url)} names={list(req.resource_names)[:6]}"
                  f"{'...' if len(req.resource_names) > 6 else ''} version={req.version_info!r} "
                  f"nonce={req.response_nonce!r}" + (" node=" + req.node.id if req.HasField("node") else "")
                  + (f" error={req.error_detail.message!r}" if req.HasField("error_detail") else ""))
        self._requests.put(req)
        return req

    def ack(self, resp, names=None):
        """An ACK as Envoy sends it: the response's version and nonce, the full subscription."""
        t = resp.type_url
        self.acked_version[t] = resp.version_info
        return self.send(t, self.names.get(t, []) if names is None else names,
                         version=resp.version_info, nonce=resp.nonce)

    def nack(self, resp, message, code=3, names=None):
        """A NACK as gRPC sends it: the previous accepted version, the rejected nonce."""
        t = resp.type_url
        return self.send(t, self.names.get(t, []) if names is None else names,
                         version=self.acked_version.get(t, ""), nonce=resp.nonce, error=(code, message))

    # -- responses --

    def _take(self, timeout):
        try:
            t, item = self._responses.get(timeout=max(timeout, 0))
        except queue.Empty:
            return None
        if item is _END:
            self._responses.put((t, _END))  # stays ended for later calls
            raise StreamEnded(f"stream ended: {self.status}\n{self.dump()}")
        resp = item
        self.received.append(resp)
        self.nonces.append(resp.nonce)
        self.last_nonce[resp.type_url] = resp.nonce
        self._log("s->c RESP", f"{short(resp.type_url)} n={len(resp.resources)} "
                  f"names={[resource_name(m) for m in _safe_unpack(resp)][:6]} "
                  f"version={resp.version_info!r} nonce={resp.nonce!r}")
        return resp

    def recv(self, type_url=None, timeout=5.0):
        """The next response; asserts it comes within `timeout` and has `type_url`."""
        resp = self._take(timeout)
        if resp is None:
            raise AssertionError(f"no response{' of ' + short(type_url) if type_url else ''} "
                                 f"within {timeout}s\n{self.dump()}")
        if type_url is not None:
            assert resp.type_url == type_url, \
                f"expected a {short(type_url)} response, got {short(resp.type_url)}\n{self.dump()}"
        return resp

    def _ready(self):
        """Yields responses already received, without waiting, until none is left (or the
        stream has ended)."""
        while True:
            try:
                r = self._take(0)
            except StreamEnded:
                return
            if r is None:
                return
            yield r

    def poll(self):
        """Every response already received, without waiting."""
        return list(self._ready())

    def expect_silence(self, seconds=1.0, what="no response"):
        """Asserts that no response arrives within `seconds`."""
        resp = self._take(seconds)
        if resp is not None:
            raise AssertionError(f"expected {what} within {seconds}s, got {short(resp.type_url)} "
                                 f"version={resp.version_info!r} nonce={resp.nonce!r} "
                                 f"names={[resource_name(m) for m in _safe_unpack(resp)]}\n{self.dump()}")

    def wait_end(self, timeout=5.0):
        """The stream's final (code, details); asserts it ends within `timeout`."""
        if not self.ended.wait(timeout):
            raise AssertionError(f"stream still open after {timeout}s\n{self.dump()}")
        self.poll()
        return self.status

    def check_nonces(self):
        """Every response so far had a non-empty nonce unique on the stream and a version."""
        assert all(self.nonces), f"a response has an empty nonce: {self.nonces}\n{self.dump()}"
        assert len(set(self.nonces)) == len(self.nonces), f"nonce reused on the stream: {self.nonces}\n{self.dump()}"
        empty = [short(r.type_url) for r in self.received if not r.version_info]
        assert not empty, f"responses with empty version_info: {empty}\n{self.dump()}"


def _safe_unpack(resp):
    try:
        return unpack(resp)
    except Exception:
        return []


class EnvoyClient(AdsStream):
    """Envoy's subscription behaviour: wildcard CDS then EDS for every EDS cluster, wildcard
    LDS then RDS for every route named by a listener; every response is ACKed with the full
    current subscription, and a changed cluster or route set is requested at once."""

    def __init__(self, address, node, **kw):
        super().__init__(address, node, **kw)
        self.clusters = {}     # name -> Cluster (the last CDS, complete)
        self.listeners = {}    # name -> Listener (the last LDS, complete)
        self.assignments = {}  # name -> ClusterLoadAssignment (merged over EDS responses)
        self.routes = {}       # name -> RouteConfiguration (merged over RDS responses)
        self.log = []          # (type_url, [resource names]) per response handled

    def start(self, timeout=5.0):
        """The initial Envoy sequence; returns when every type was received and ACKed."""
        self.send(CDS, [])
        self.handle(self.recv(CDS, timeout))
        if self.names.get(EDS):
            self.handle(self.recv(EDS, timeout))
        self.send(LDS, [])
        self.handle(self.recv(LDS, timeout))
        if self.names.get(RDS):
            self.handle(self.recv(RDS, timeout))

    def handle(self, resp):
        msgs = unpack(resp)
        t = resp.type_url
        self.log.append((t, [resource_name(m) for m in msgs]))
        follow = None
        if t == CDS:
            self.clusters = {m.name: m for m in msgs}
            eds = sorted(n for n, c in self.clusters.items() if c.type == cluster_pb2.Cluster.EDS)
            self.assignments = {n: a for n, a in self.assignments.items() if n in eds}
            if eds != sorted(self.names.get(EDS, [])):
                follow = (EDS, eds)
        elif t == LDS:
            self.listeners = {m.name: m for m in msgs}
            routes = sorted({unpack_hcm(l).rds.route_config_name for l in msgs})
            self.routes = {n: r for n, r in self.routes.items() if n in routes}
            if routes != sorted(self.names.get(RDS, [])):
                follow = (RDS, routes)
        elif t == EDS:
            self.assignments.update({m.cluster_name: m for m in msgs})
        elif t == RDS:
            self.routes.update({m.name: m for m in msgs})
        self.ack(resp)
        if follow and follow[1]:
            ft, names = follow
            self.send(ft, names, version=self.acked_version.get(ft, ""), nonce=self.last_nonce.get(ft, ""))
        return msgs

    def pump(self):
        """Handles (ACKs, follows) every response already received, one at a time in order
        as Envoy does; returns them."""
        out = []
        for r in self._ready():
            self.handle(r)
            out.append(r)
        return out


def pump_all(clients, until, timeout, settle=1.0):
    """Handles responses on every client until `until()` holds (bounded by `timeout`), then
    keeps handling for `settle` more seconds. Returns {client: [responses]} of the whole window."""
    got = {c: [] for c in clients}
    deadline = time.monotonic() + timeout
    while True:
        for c in clients:
            got[c] += c.pump()
        if until():
            break
        if time.monotonic() > deadline:
            dumps = "\n".join(c.dump(20) for c in clients)
            raise AssertionError(f"condition not reached within {timeout}s\n{dumps}")
        time.sleep(0.01)
    end = time.monotonic() + settle
    while time.monotonic() < end:
        for c in clients:
            got[c] += c.pump()
        time.sleep(0.02)
    for c in clients:
        got[c] += c.pump()
    return got


# --------------------------------------------------------------------------------------------
# Checks on decoded resources: what gRPC's xDS client and Envoy require (see
# /work/shared/design/grpc-xds-client-notes.md, "Field-level requirements").

def check_cluster(c):
    """An EDS cluster fed over ADS, with a load-balancing policy gRPC accepts."""
    assert c.type == cluster_pb2.Cluster.EDS, f"cluster {c.name}: type {c.type}, expected EDS"
    assert c.HasField("eds_cluster_config"), f"cluster {c.name}: no eds_cluster_config"
    src = c.eds_cluster_config.eds_config
    assert src.WhichOneof("config_source_specifier") == "ads", \
        f"cluster {c.name}: eds_config is {src.WhichOneof('config_source_specifier')}, expected ads"
    assert c.eds_cluster_config.service_name in ("", c.name), \
        f"cluster {c.name}: eds service_name {c.eds_cluster_config.service_name!r}"
    assert c.lb_policy in (cluster_pb2.Cluster.ROUND_ROBIN, cluster_pb2.Cluster.RING_HASH), \
        f"cluster {c.name}: lb_policy {c.lb_policy} is not supported by gRPC"


def cla_endpoints(cla):
    """{(region, zone, sub_zone): {"127.0.0.1:15051": weight-or-None}} after checking the CLA's
    structure: locality present and weighted, one entry per (locality, priority), priorities
    0..N-1, no duplicate address:port, endpoint weights > 0 when set, nothing unhealthy."""
    from envoy.config.core.v3 import health_check_pb2

    seen_addr = set()
    seen_loc = set()
    priorities = set()
    out = {}
    for i, le in enumerate(cla.endpoints):
        where = f"CLA {cla.cluster_name} endpoints[{i}]"
        assert le.HasField("locality"), f"{where}: locality missing"
        loc = (le.locality.region, le.locality.zone, le.locality.sub_zone)
        assert le.HasField("load_balancing_weight") and le.load_balancing_weight.value > 0, \
            f"{where}: locality weight must be > 0 (gRPC drops the locality otherwise)"
        assert (loc, le.priority) not in seen_loc, f"{where}: duplicate locality {loc} at priority {le.priority}"
        seen_loc.add((loc, le.priority))
        priorities.add(le.priority)
        eps = out.setdefault(loc, {})
        for j, lb in enumerate(le.lb_endpoints):
            sa = lb.endpoint.address.socket_address
            key = f"{sa.address}:{sa.port_value}"
            assert sa.address and sa.port_value, f"{where}.lb_endpoints[{j}]: no socket address"
            assert key not in seen_addr, f"{where}.lb_endpoints[{j}]: duplicate endpoint address {key}"
            seen_addr.add(key)
            w = None
            if lb.HasField("load_balancing_weight"):
                w = lb.load_balancing_weight.value
                assert w > 0, f"{where}.lb_endpoints[{j}]: load_balancing_weight must be > 0"
            assert lb.health_status in (health_check_pb2.UNKNOWN, health_check_pb2.HEALTHY), \
                f"{where}.lb_endpoints[{j}]: health_status {lb.health_status}"
            eps[key] = w
    if priorities:
        assert sorted(priorities) == list(range(len(priorities))), \
            f"CLA {cla.cluster_name}: priorities {sorted(priorities)} are not contiguous from 0"
    return out


def check_hcm_rds(hcm, route_name, where):
    """An HCM that takes route `route_name` over ADS and ends with the Router filter."""
    assert hcm.WhichOneof("route_specifier") == "rds", f"{where}: HCM route_specifier {hcm.WhichOneof('route_specifier')}"
    assert hcm.rds.route_config_name == route_name, \
        f"{where}: RDS name {hcm.rds.route_config_name!r}, expected {route_name!r}"
    assert hcm.rds.config_source.WhichOneof("config_source_specifier") == "ads", \
        f"{where}: rds.config_source is {hcm.rds.config_source.WhichOneof('config_source_specifier')}, expected ads"
    assert hcm.http_filters, f"{where}: no http filters"
    names = [f.name for f in hcm.http_filters]
    assert all(names) and len(set(names)) == len(names), f"{where}: http filter names {names}"
    unpack_router(hcm.http_filters[-1])


def check_virtual_host(vh, host, port):
    """Domains HOST and HOST:PORT; every route has an explicit prefix ("" or "/") and routes
    to outbound|PORT||HOST."""
    assert host in vh.domains and f"{host}:{port}" in vh.domains, \
        f"virtual host {vh.name}: domains {list(vh.domains)} lack {host} or {host}:{port}"
    assert vh.routes, f"virtual host {vh.name}: no routes"
    for r in vh.routes:
        assert r.match.WhichOneof("path_specifier") == "prefix", \
            f"virtual host {vh.name}: route match path_specifier {r.match.WhichOneof('path_specifier')} (must be prefix, set explicitly)"
        assert r.match.prefix in ("", "/"), f"virtual host {vh.name}: prefix {r.match.prefix!r}"
        assert r.WhichOneof("action") == "route", f"virtual host {vh.name}: action {r.WhichOneof('action')}"
        assert r.route.cluster == f"outbound|{port}||{host}", \
            f"virtual host {vh.name}: routes to {r.route.cluster!r}"


def check_envoy_state(client, exp):
    """Every resource an EnvoyClient holds, against `exp` = conftest.expected_view(registry,
    namespace): exactly the visible clusters, CLAs, listeners and routes, each well formed."""
    # CDS: exactly the visible clusters, all EDS over ADS.
    assert set(client.clusters) == set(exp["clusters"]), \
        f"CDS names {sorted(client.clusters)}\nexpected {sorted(exp['clusters'])}"
    for c in client.clusters.values():
        check_cluster(c)
    # EDS: one CLA per cluster, structured as gRPC requires, with the registry's endpoints.
    assert set(client.assignments) == set(exp["clusters"]), f"EDS names {sorted(client.assignments)}"
    for name, want in exp["clusters"].items():
        got = cla_endpoints(client.assignments[name])
        assert {l: set(e) for l, e in got.items()} == {l: set(e) for l, e in want.items()}, \
            f"CLA {name}: endpoints by locality {got}\nexpected {want}"
        for loc, eps in want.items():
            for addr, w in eps.items():
                assert got[loc][addr] in ((w,) if w else (None, 1)), \
                    f"CLA {name} {addr}: weight {got[loc][addr]}, registry says {w}"
    # LDS: 0.0.0.0_PORT per visible port, bound to 0.0.0.0:PORT, HCM -> RDS "PORT" over ADS.
    want_listeners = {f"0.0.0.0_{p}": p for p in exp["routes"]}
    assert set(client.listeners) == set(want_listeners), f"LDS names {sorted(client.listeners)}"
    for name, port in want_listeners.items():
        l = client.listeners[name]
        sa = l.address.socket_address
        assert (sa.address, sa.port_value) == ("0.0.0.0", port), f"listener {name}: address {sa.address}:{sa.port_value}"
        check_hcm_rds(unpack_hcm(l), str(port), f"listener {name}")
    # RDS: route PORT has one virtual host per visible service on that port.
    assert set(client.routes) == {str(p) for p in exp["routes"]}, f"RDS names {sorted(client.routes)}"
    for port, hosts in exp["routes"].items():
        rc = client.routes[str(port)]
        by_host = {}
        for vh in rc.virtual_hosts:
            owners = [h for h in hosts if h in vh.domains]
            assert len(owners) == 1, f"route {port}: virtual host {vh.name} domains {list(vh.domains)}"
            by_host[owners[0]] = vh
        assert set(by_host) == hosts, f"route {port}: virtual hosts for {sorted(by_host)}, expected {sorted(hosts)}"
        for host, vh in by_host.items():
            check_virtual_host(vh, host, port)
