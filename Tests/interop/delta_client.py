"""A raw Delta ADS client (DeltaAggregatedResources) on grpcio + envoy's generated messages
(xds-protos), in the style of xds_client.py.

`DeltaStream` is one DeltaAggregatedResources call: requests go in through a queue-fed
iterator, responses are collected as raw bytes by a reader thread, and everything is kept in a
transcript that failing assertions print. Every response is parsed STRICTLY when the test
takes it (`DeltaResponse`): the DeltaDiscoveryResponse and every message inside it, Any
payloads included (typed_config and the like), must parse with protobuf and carry no unknown
field; each Resource's Any has the response's type_url and the Resource's name is the name of
the message inside. The protocol invariants (delta-xds-semantics.md case 23) are checked on
every response: a non-empty nonce unique on the stream, no name twice in `resources`, no name
in both `resources` and `removed_resources`, every version 16 lowercase hex digits.

`EnvoyDeltaClient` follows Envoy's delta flow on top: CDS wildcard (legacy: an empty first
subscribe), then an EDS subscribe for every EDS cluster, LDS wildcard, then an RDS subscribe
for every route name the listeners' HttpConnectionManagers name; every response is ACKed by
nonce, and `resources`/`removed_resources` are applied to the name -> version map it holds per
type, which `snapshot()` hands to a new client for a reconnect with initial_resource_versions.
"""
import importlib
import pkgutil
import queue
import re
import threading
import time

import grpc
from google.protobuf import descriptor_pool, message_factory
from google.protobuf.unknown_fields import UnknownFieldSet
from google.rpc import status_pb2
from envoy.config.cluster.v3 import cluster_pb2
from envoy.service.discovery.v3 import discovery_pb2

from xds_client import CDS, EDS, LDS, MESSAGE, RDS, make_node, resource_name, short, unpack_hcm  # noqa: F401

DELTA_METHOD = "/envoy.service.discovery.v3.AggregatedDiscoveryService/DeltaAggregatedResources"
VERSION_RX = re.compile(r"[0-9a-f]{16}")
WILDCARD_TYPES = (CDS, LDS)
_END = object()


# --------------------------------------------------------------------------------------------
# Strict parsing

def _message_class(full_name):
    """The generated class of a message type, importing the xds-protos package that should
    define it if it is not loaded yet. None if no module defines it."""
    pool = descriptor_pool.Default()
    try:
        return message_factory.GetMessageClass(pool.FindMessageTypeByName(full_name))
    except KeyError:
        pass
    package = full_name.rsplit(".", 1)[0]
    try:
        pkg = importlib.import_module(package)
    except ImportError:
        return None
    for mod in pkgutil.iter_modules(getattr(pkg, "__path__", [])):
        if mod.name.endswith("_pb2"):
            importlib.import_module(f"{package}.{mod.name}")
    try:
        return message_factory.GetMessageClass(pool.FindMessageTypeByName(full_name))
    except KeyError:
        return None


def unpack_any_strict(any_, where):
    """The message inside an Any, parsed by protobuf and checked for unknown fields."""
    assert any_.type_url.startswith("type.googleapis.com/"), f"{where}: Any type_url {any_.type_url!r}"
    name = any_.type_url.split("/", 1)[1]
    cls = _message_class(name)
    assert cls is not None, f"{where}: Any of type {name!r} that no xds-protos module defines"
    msg = cls()
    try:
        msg.ParseFromString(any_.value)
    except Exception as e:
        raise AssertionError(f"{where}: Any of type {name} does not parse: {e}")
    check_no_unknown_fields(msg, f"{where}<{name.rsplit('.', 1)[-1]}>")
    return msg


def check_no_unknown_fields(msg, where):
    """Asserts that `msg` and every message in it (map values, repeated elements, and the
    payloads of Any fields, parsed by their type) carry no field unknown to the schema."""
    unknown = UnknownFieldSet(msg)
    assert len(unknown) == 0, \
        f"{where}: unknown fields {[(f.field_number, f.wire_type) for f in unknown]} in {msg.DESCRIPTOR.full_name}"
    for fd, value in msg.ListFields():
        if fd.message_type is None:
            continue
        if fd.message_type.GetOptions().map_entry:
            vfd = fd.message_type.fields_by_name["value"]
            if vfd.message_type is not None:
                for k, v in value.items():
                    _check_value(v, f"{where}.{fd.name}[{k!r}]")
            continue
        if fd.is_repeated:
            for i, v in enumerate(value):
                _check_value(v, f"{where}.{fd.name}[{i}]")
        else:
            _check_value(value, f"{where}.{fd.name}")


def _check_value(v, where):
    if v.DESCRIPTOR.full_name == "google.protobuf.Any":
        check_no_unknown_fields(v, where)
        unpack_any_strict(v, where)
    else:
        check_no_unknown_fields(v, where)


class DeltaResponse:
    """One DeltaDiscoveryResponse, parsed and checked. `names` is the order of `resources`;
    `msgs` and `versions` are keyed by resource name; `size` is the message's wire size."""

    def __init__(self, data, t):
        self.t = t
        self.size = len(data)
        self.raw = discovery_pb2.DeltaDiscoveryResponse()
        try:
            self.raw.ParseFromString(data)
        except Exception as e:
            raise AssertionError(f"DeltaDiscoveryResponse does not parse: {e}; {data[:64]!r}")
        r = self.raw
        self.type_url = r.type_url
        self.nonce = r.nonce
        self.system_version = r.system_version_info
        self.removed = list(r.removed_resources)
        self.names = [x.name for x in r.resources]
        self.versions = {x.name: x.version for x in r.resources}
        self.anys = {x.name: x.resource.value for x in r.resources}   # the encoded resources
        self.msgs = {}
        self.problems = []
        self._check()

    def _check(self):
        """Strict parsing and the case-23 invariants; what fails is kept in `problems` (the
        stream raises it with its transcript)."""
        r, p = self.raw, self.problems
        what = short(r.type_url)
        try:
            check_no_unknown_fields(r, "DeltaDiscoveryResponse")
        except AssertionError as e:
            p.append(str(e))
        if r.type_url not in MESSAGE:
            p.append(f"response type_url {r.type_url!r} is none of CDS/EDS/LDS/RDS")
            return
        if not r.nonce:
            p.append(f"{what}: empty nonce")
        if not r.system_version_info.isdigit():
            p.append(f"{what}: system_version_info {r.system_version_info!r} is not a decimal version")
        if len(r.removed_resource_names) or len(r.resource_errors):
            p.append(f"{what}: removed_resource_names/resource_errors set (fastpilot sends only removed_resources)")
        if len(set(self.names)) != len(self.names):
            p.append(f"{what}: a name twice in resources: {self.names}")
        if len(set(self.removed)) != len(self.removed):
            p.append(f"{what}: a name twice in removed_resources: {self.removed}")
        both = set(self.names) & set(self.removed)
        if both:
            p.append(f"{what}: in both resources and removed_resources: {sorted(both)}")
        cls = MESSAGE[r.type_url]
        for i, res in enumerate(r.resources):
            where = f"{what} resources[{i}] ({res.name!r})"
            if not res.name:
                p.append(f"{where}: empty name")
            if not VERSION_RX.fullmatch(res.version):
                p.append(f"{where}: version {res.version!r} is not 16 lowercase hex digits")
            if not res.HasField("resource"):
                p.append(f"{where}: no resource")
                continue
            if res.resource.type_url != r.type_url:
                p.append(f"{where}: Any type_url {res.resource.type_url!r}, response is {r.type_url!r}")
                continue
            msg = cls()
            try:
                msg.ParseFromString(res.resource.value)
                check_no_unknown_fields(msg, where)
            except Exception as e:
                p.append(f"{where}: {e}")
                continue
            if resource_name(msg) != res.name:
                p.append(f"{where}: the {cls.__name__} inside is named {resource_name(msg)!r}")
            self.msgs[res.name] = msg

    def __repr__(self):
        return (f"{short(self.type_url)} sent={self.names} removed={self.removed} "
                f"nonce={self.nonce!r} version={self.system_version!r} bytes={self.size}")


class StreamEnded(AssertionError):
    pass


def _serialize(req):
    return req if isinstance(req, bytes) else req.SerializeToString()


# --------------------------------------------------------------------------------------------
# DeltaStream

class DeltaStream:
    """One Delta ADS stream. Not thread-safe: drive it from one test thread. `channel` shares
    a gRPC channel (one HTTP/2 connection) with other streams."""

    def __init__(self, address, node, channel=None, options=(), node_every_request=False):
        self.address = address
        self.node = node
        self.node_every_request = node_every_request
        self.t0 = time.monotonic()
        self._own_channel = channel is None
        self.channel = channel or grpc.insecure_channel(
            address, options=[("grpc.use_local_subchannel_pool", 1)] + list(options))
        self._requests = queue.Queue()
        self._responses = queue.Queue()
        self.transcript = []
        self.received = []      # every DeltaResponse taken, in order
        self.nonces = []
        self.status = None      # (grpc.StatusCode, details) once the stream ended
        self.ended = threading.Event()
        self.sent_node = False
        self.held = {t: {} for t in MESSAGE}   # type -> {name: version}, after every response
        self.last_nonce = {}
        call = self.channel.stream_stream(DELTA_METHOD, request_serializer=_serialize,
                                          response_deserializer=lambda b: b)
        self.call = call(self._request_iter())
        self._reader = threading.Thread(target=self._read, name=f"delta-{node.id if node else '-'}", daemon=True)
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
            for data in self.call:
                self._responses.put((time.monotonic(), data))
            self.status = (grpc.StatusCode.OK, "")
        except grpc.RpcError as e:
            self.status = (e.code(), e.details())
        except Exception as e:
            self.status = (None, f"client error: {e!r}")
        finally:
            self._log("s->c END", str(self.status))
            self.ended.set()
            self._responses.put((time.monotonic(), _END))

    def _log(self, what, text):
        self.transcript.append(f"{time.monotonic() - self.t0:7.3f} {what} {text}")

    def dump(self, last=40):
        return f"delta transcript of {self.node.id if self.node else '(no node)'}:\n" + "\n".join(self.transcript[-last:])

    def half_close(self):
        self._log("c->s", "half-close")
        self._requests.put(_END)

    def close(self):
        self._requests.put(_END)
        self.call.cancel()
        if self._own_channel:
            self.channel.close()

    # -- requests --

    def send(self, type_url, subscribe=(), unsubscribe=(), initial=None, nonce="", error=None, node=None, raw=None):
        """Sends one DeltaDiscoveryRequest. The node goes on the stream's first request (on
        every one with node_every_request) unless `node=False`; `initial` is
        {name: version}; `error` = (code, message) makes it a NACK; `raw` (a prepared request,
        or bytes) is sent as is."""
        if raw is not None:
            req = raw
        else:
            req = discovery_pb2.DeltaDiscoveryRequest(
                type_url=type_url, resource_names_subscribe=list(subscribe),
                resource_names_unsubscribe=list(unsubscribe), response_nonce=nonce)
            for n, v in (initial or {}).items():
                req.initial_resource_versions[n] = v
            if error is not None:
                code, message = error
                req.error_detail.CopyFrom(status_pb2.Status(code=code, message=message))
            want_node = node is not None or not self.sent_node or self.node_every_request
            if node is not False and want_node and (node or self.node) is not None:
                req.node.CopyFrom(node or self.node)
        if isinstance(req, bytes):
            self._log("c->s RAW ", f"{len(req)} bytes {req[:32]!r}")
        else:
            self.sent_node = self.sent_node or req.HasField("node")
            kind = "NACK" if req.HasField("error_detail") else ("ACK " if req.response_nonce else "REQ ")
            self._log(f"c->s {kind}", f"{short(req.type_url)} sub={_clip(req.resource_names_subscribe)} "
                      f"unsub={_clip(req.resource_names_unsubscribe)} "
                      f"initial={len(req.initial_resource_versions)} nonce={req.response_nonce!r}"
                      + (" node=" + req.node.id if req.HasField("node") else "")
                      + (f" error={req.error_detail.message!r}" if req.HasField("error_detail") else ""))
        self._requests.put(req)
        return req

    def ack(self, resp, subscribe=(), unsubscribe=()):
        """An ACK as Envoy sends it: the response's nonce, plus any pending (un)subscriptions."""
        return self.send(resp.type_url, subscribe, unsubscribe, nonce=resp.nonce)

    def nack(self, resp, message, code=13, subscribe=(), unsubscribe=()):
        """A NACK as Envoy sends it: error_detail {INTERNAL, message} and the rejected nonce."""
        return self.send(resp.type_url, subscribe, unsubscribe, nonce=resp.nonce, error=(code, message))

    # -- responses --

    def _take(self, timeout):
        try:
            t, item = self._responses.get(timeout=max(timeout, 0))
        except queue.Empty:
            return None
        if item is _END:
            self._responses.put((t, _END))
            raise StreamEnded(f"stream ended: {self.status}\n{self.dump()}")
        resp = DeltaResponse(item, t)
        self._log("s->c RESP", repr(resp)[:400])
        self.received.append(resp)
        problems = list(resp.problems)
        if resp.nonce and resp.nonce in self.nonces:
            problems.append(f"nonce {resp.nonce!r} reused on the stream (earlier: {self.nonces})")
        self.nonces.append(resp.nonce)
        if problems:
            raise AssertionError("invalid DeltaDiscoveryResponse:\n  " + "\n  ".join(problems) + "\n" + self.dump())
        self.last_nonce[resp.type_url] = resp.nonce
        held = self.held.setdefault(resp.type_url, {})
        for n in resp.removed:
            held.pop(n, None)
        held.update(resp.versions)
        return resp

    def recv(self, type_url=None, timeout=5.0):
        """The next response; asserts it comes within `timeout` and has `type_url`."""
        resp = self._take(timeout)
        if resp is None:
            raise AssertionError(f"no response{' of ' + short(type_url) if type_url else ''} "
                                 f"within {timeout}s\n{self.dump()}")
        if type_url is not None:
            assert resp.type_url == type_url, \
                f"expected a {short(type_url)} response, got {resp!r}\n{self.dump()}"
        return resp

    def _ready(self):
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
        resp = self._take(seconds)
        if resp is not None:
            raise AssertionError(f"expected {what} within {seconds}s, got {resp!r}\n{self.dump()}")

    def wait_end(self, timeout=5.0):
        if not self.ended.wait(timeout):
            raise AssertionError(f"stream still open after {timeout}s\n{self.dump()}")
        self.poll()
        return self.status

    def pump(self):
        """ACKs every response already received (and follows nothing); returns them."""
        out = self.poll()
        for r in out:
            self.ack(r)
        return out

    def wait_for(self, pred, timeout=5.0, what="a matching response"):
        """Takes responses (not handled) until `pred(resp)`; returns every response taken."""
        got = []
        deadline = time.monotonic() + timeout
        while True:
            r = self._take(deadline - time.monotonic())
            if r is None:
                raise AssertionError(f"no {what} within {timeout}s (got {got})\n{self.dump()}")
            got.append(r)
            if pred(r):
                return got


def _clip(names, n=6):
    names = list(names)
    return f"{names[:n]}{'...' if len(names) > n else ''}"


# --------------------------------------------------------------------------------------------
# Envoy's flow

class EnvoyDeltaClient(DeltaStream):
    """Envoy's delta flow (NewGrpcMuxImpl / DeltaSubscriptionState): legacy-wildcard CDS, EDS
    subscribe for every EDS cluster, legacy-wildcard LDS, RDS subscribe for every route the
    listeners name; every response ACKed by nonce; (un)subscriptions follow the cluster and
    listener sets at once. The node is copied into every request, as Envoy does.

    `resume` = another client's snapshot(): the first request of each type then carries
    initial_resource_versions (and the EDS/RDS names), as Envoy sends them after a reconnect."""

    def __init__(self, address, node, resume=None, **kw):
        kw.setdefault("node_every_request", True)
        super().__init__(address, node, **kw)
        self.clusters = {}     # name -> Cluster
        self.listeners = {}    # name -> Listener
        self.assignments = {}  # name -> ClusterLoadAssignment
        self.routes = {}       # name -> RouteConfiguration
        self.subscribed = {EDS: set(), RDS: set()}
        self.log = []          # (type, sent names, removed names) per response handled
        self.resume = resume
        if resume:
            # What Envoy keeps over a reconnect: its subscriptions, and the resources (with
            # their versions) it holds.
            self.subscribed = {EDS: set(resume["names"][EDS]), RDS: set(resume["names"][RDS])}
            self.held = {t: dict(v) for t, v in resume["versions"].items()}
            st = resume["state"]
            self.clusters, self.assignments = dict(st[CDS]), dict(st[EDS])
            self.listeners, self.routes = dict(st[LDS]), dict(st[RDS])

    def snapshot(self):
        """What a reconnecting Envoy carries over: the versions it holds per type and its
        EDS/RDS subscriptions."""
        return {"versions": {t: dict(v) for t, v in self.held.items()},
                "names": {EDS: sorted(self.subscribed[EDS]), RDS: sorted(self.subscribed[RDS])},
                "state": {CDS: dict(self.clusters), EDS: dict(self.assignments), LDS: dict(self.listeners),
                          RDS: dict(self.routes)}}

    def start(self, timeout=5.0):
        """The initial sequence; returns {type: first response}. Fresh: CDS, then the EDS it
        asks for, LDS, then the RDS it asks for, one after the other. Resumed: the four first
        requests at once (CDS, EDS, LDS, RDS, each with its initial_resource_versions)."""
        first = {}
        if self.resume:
            versions = self.resume["versions"]
            for t in (CDS, EDS, LDS, RDS):
                names = [] if t in WILDCARD_TYPES else sorted(self.subscribed[t])
                if t not in WILDCARD_TYPES and not names:
                    continue
                self.send(t, names, initial=versions.get(t, {}))
            want = {CDS, LDS} | {t for t in (EDS, RDS) if self.subscribed[t]}
            deadline = time.monotonic() + timeout
            while set(first) != want:
                r = self.recv(timeout=deadline - time.monotonic())
                if r.type_url in first:
                    # A follow-up (say EDS for a new cluster) before the first of another type.
                    self.handle(r)
                    continue
                first[r.type_url] = r
                self.handle(r)
            return first
        self.send(CDS, [])
        first[CDS] = r = self.recv(CDS, timeout)
        self.handle(r)
        if self.subscribed[EDS]:
            first[EDS] = r = self.recv(EDS, timeout)
            self.handle(r)
        self.send(LDS, [])
        first[LDS] = r = self.recv(LDS, timeout)
        self.handle(r)
        if self.subscribed[RDS]:
            first[RDS] = r = self.recv(RDS, timeout)
            self.handle(r)
        return first

    def handle(self, resp):
        """Applies a response, ACKs it, and sends the (un)subscriptions it implies."""
        t = resp.type_url
        self.log.append((t, list(resp.names), list(resp.removed)))
        follow = None
        store = {CDS: self.clusters, EDS: self.assignments, LDS: self.listeners, RDS: self.routes}[t]
        for n in resp.removed:
            store.pop(n, None)
        if t in self.subscribed:
            # A resource of a name no longer subscribed (the answer crossed the unsubscribe) is
            # dropped, as Envoy does.
            for n in resp.names:
                if n not in self.subscribed[t]:
                    self.held[t].pop(n, None)
            store.update({n: m for n, m in resp.msgs.items() if n in self.subscribed[t]})
        else:
            store.update(resp.msgs)
        if t == CDS:
            eds = {n for n, c in self.clusters.items() if c.type == cluster_pb2.Cluster.EDS}
            follow = (EDS, eds)
        elif t == LDS:
            routes = {unpack_hcm(l).rds.route_config_name for l in self.listeners.values()}
            follow = (RDS, routes)
        self.ack(resp)
        if follow:
            ft, want = follow
            have = self.subscribed[ft]
            sub, unsub = sorted(want - have), sorted(have - want)
            if sub or unsub:
                self.subscribed[ft] = set(want)
                held = self.held[ft]
                other = self.assignments if ft == EDS else self.routes
                for n in unsub:
                    held.pop(n, None)
                    other.pop(n, None)
                self.send(ft, sub, unsub)
        return resp

    def pump(self):
        """Handles every response already received, in order; returns them."""
        out = []
        for r in self._ready():
            self.handle(r)
            out.append(r)
        return out
