"""Fixtures for the interop suite: fastpilot as a subprocess on free ports, echo backends,
and a registry file written atomically.

Run: python -m pytest -q Tests/interop --binary PATH/TO/fastpilot

Everything listens on 127.0.0.1 only, every wait is bounded, and every process and server a
test starts is stopped in its teardown.
"""
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from concurrent import futures
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
sys.path.insert(0, str(HERE))

os.environ.setdefault("GRPC_VERBOSITY", "NONE")


def pytest_addoption(parser):
    parser.addoption("--binary", action="store", default=".build/debug/fastpilot",
                     help="the fastpilot executable to test (relative paths: from the current "
                          "directory, then from the repository root)")


@pytest.fixture(scope="session")
def fastpilot_binary(pytestconfig):
    raw = pytestconfig.getoption("--binary")
    for candidate in (Path(raw), REPO / raw):
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate.resolve())
    pytest.fail(f"--binary {raw}: no executable there (build it first: swift build)", pytrace=False)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    # Lets fixtures see in their teardown whether the test failed (to print log tails).
    rep = yield
    setattr(item, "rep_" + rep.when, rep)
    return rep


def _test_failed(request):
    rep = getattr(request.node, "rep_call", None)
    return rep is None or rep.failed


# --------------------------------------------------------------------------------------------
# fastpilot

LISTENING = re.compile(r"event=listening service=([\w-]+) address=(\S+):(\d+)")
METRIC_LINE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)$")


class FastPilot:
    """One fastpilot process. Its stderr (the log) is read by a thread into `lines`."""

    def __init__(self, binary, args, log_path, nofile=None):
        self.args = [binary, "serve"] + args
        if nofile is not None:
            # The descriptor limit (soft and hard) set just before exec.
            self.args = [sys.executable, "-c", "import os, resource, sys; "
                         f"resource.setrlimit(resource.RLIMIT_NOFILE, ({nofile}, {nofile})); "
                         "os.execv(sys.argv[1], sys.argv[1:])"] + self.args
        self.log_path = log_path
        self.lines = []
        self._cond = threading.Condition()
        self._log_file = open(log_path, "w")
        self.proc = subprocess.Popen(self.args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, text=True, bufsize=1)
        self._reader = threading.Thread(target=self._read, name="fastpilot-log", daemon=True)
        self._reader.start()
        self.xds_port = None
        self.xds_tls_port = None
        self.admin_port = None

    def _read(self):
        for line in self.proc.stderr:
            line = line.rstrip("\n")
            self._log_file.write(line + "\n")
            self._log_file.flush()
            with self._cond:
                self.lines.append(line)
                self._cond.notify_all()
        with self._cond:
            self.lines.append("<<fastpilot stderr closed>>")
            self._cond.notify_all()

    def wait_started(self, timeout=15.0, ready_within=0.0):
        """Until both listening lines are logged, then /ready must answer 200: at once
        (ready_within=0), within `ready_within` seconds (a store syncing first), or is not
        checked (None)."""
        deadline = time.monotonic() + timeout
        ports = {}
        def complete():
            return "admin" in ports and ("xds" in ports or "xds-tls" in ports)

        while time.monotonic() < deadline and not complete():
            for line in self.log_lines():
                m = LISTENING.search(line)
                if m:
                    ports[m.group(1)] = int(m.group(3))
            if self.proc.poll() is not None:
                raise AssertionError(f"fastpilot exited with {self.proc.returncode} before listening:\n{self.tail()}")
            time.sleep(0.02)
        if not complete():
            raise AssertionError(f"fastpilot did not log its listening lines within {timeout}s:\n{self.tail()}")
        self.xds_port, self.admin_port = ports.get("xds"), ports["admin"]
        self.xds_tls_port = ports.get("xds-tls")
        if ready_within is None:
            return
        ready_deadline = time.monotonic() + ready_within
        status, body = self.http_get("/ready")
        while status != 200 and time.monotonic() < ready_deadline:
            time.sleep(0.02)
            status, body = self.http_get("/ready")
        assert status == 200, f"/ready answered {status}: {body!r}\n{self.tail()}"

    @property
    def xds_address(self):
        return f"127.0.0.1:{self.xds_port}"

    def log_lines(self):
        with self._cond:
            return list(self.lines)

    def tail(self, n=60):
        return "\n".join(self.log_lines()[-n:])

    def mark(self):
        """Index into the log: pass it to wait_log/find_log to see only newer lines."""
        with self._cond:
            return len(self.lines)

    def find_log(self, pattern, since=0):
        rx = re.compile(pattern)
        return [l for l in self.log_lines()[since:] if rx.search(l)]

    def wait_log(self, pattern, since=0, timeout=5.0):
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                found = [l for l in self.lines[since:] if rx.search(l)]
                if found:
                    return found
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no log line matching {pattern!r} within {timeout}s; log tail:\n"
                                         + "\n".join(self.lines[-40:]))
                self._cond.wait(left)

    def http_get(self, path, timeout=5.0):
        url = f"http://127.0.0.1:{self.admin_port}{path}"
        try:
            with urllib.request.urlopen(url, timeout=timeout) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    def metrics(self):
        """{'name{labels}': float} from GET /metrics (Prometheus text)."""
        status, body = self.http_get("/metrics")
        assert status == 200, f"/metrics answered {status}"
        out = {}
        for line in body.splitlines():
            if not line or line.startswith("#"):
                continue
            m = METRIC_LINE.match(line)
            if m:
                out[m.group(1) + (m.group(2) or "")] = float(m.group(3))
        return out

    def metric(self, key):
        return self.metrics().get(key, 0.0)

    def syncz(self):
        status, body = self.http_get("/debug/syncz")
        assert status == 200
        return json.loads(body)

    def adsz(self):
        status, body = self.http_get("/debug/adsz")
        assert status == 200
        return json.loads(body)

    def stop(self, timeout=5.0):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._reader.join(2)
        self._log_file.close()


@pytest.fixture
def fastpilot_factory(fastpilot_binary, tmp_path, request):
    """start(registry=Registry|None, *extra_args) -> a running FastPilot on free ports."""
    started = []

    def start(registry=None, *extra, log_level="debug", nofile=None):
        args = ["--xds-address", "127.0.0.1:0", "--admin-address", "127.0.0.1:0", "--log-level", log_level]
        if registry is not None:
            args += ["--registry", str(registry.path)]
        args += list(extra)
        fp = FastPilot(fastpilot_binary, args, tmp_path / f"fastpilot-{len(started)}.log", nofile=nofile)
        started.append(fp)
        fp.wait_started()
        return fp

    yield start
    for fp in started:
        fp.stop()
    if _test_failed(request):
        for fp in started:
            print(f"\n---- fastpilot log tail ({fp.log_path}) ----\n{fp.tail(80)}")


# --------------------------------------------------------------------------------------------
# registry

def service_entry(name, namespace, host, ports, endpoints, export_to=None):
    """One ServiceEntry (networking.istio.io/v1), resolution STATIC.

    ports: [(number, name)]; endpoints: [{"address", "ports": {name: port}, "locality", "weight"}].
    """
    spec = {
        "hosts": [host],
        "location": "MESH_INTERNAL",
        "resolution": "STATIC",
        "ports": [{"number": n, "name": pn, "protocol": "GRPC"} for n, pn in ports],
        "endpoints": endpoints,
    }
    if export_to is not None:
        spec["exportTo"] = export_to
    return {"apiVersion": "networking.istio.io/v1", "kind": "ServiceEntry",
            "metadata": {"name": name, "namespace": namespace}, "spec": spec}


def endpoint(port_name, port, locality=None, weight=None, address="127.0.0.1"):
    e = {"address": address, "ports": {port_name: port}}
    if locality:
        e["locality"] = locality
    if weight is not None:
        e["weight"] = weight
    return e


def _visible(item, namespace):
    ns = item["metadata"].get("namespace", "default")
    export = item["spec"].get("exportTo")
    if not export or "*" in export:
        return True
    if "~" in export:
        return False
    return namespace in export or ("." in export and ns == namespace)


def expected_view(items, namespace):
    """What a proxy in `namespace` should see of a registry, by Istio's rules (an oracle
    written independently of fastpilot): {"clusters": {name: {locality: {"ip:port": weight}}},
    "routes": {port: {host}}}. Locality is (region, zone, sub_zone); weight None when unset."""
    clusters, routes = {}, {}
    for item in items:
        if not _visible(item, namespace):
            continue
        spec = item["spec"]
        for host in spec["hosts"]:
            for p in spec["ports"]:
                name = f"outbound|{p['number']}||{host}"
                locs, seen = {}, set()
                for e in spec.get("endpoints", []):
                    port = e.get("ports", {}).get(p["name"]) or p.get("targetPort") or p["number"]
                    key = f"{e['address']}:{port}"
                    if key in seen:
                        continue
                    seen.add(key)
                    parts = (e.get("locality", "").split("/") + ["", "", ""])[:3]
                    locs.setdefault(tuple(parts), {})[key] = e.get("weight") or None
                clusters[name] = locs
                routes.setdefault(p["number"], set()).add(host)
    return {"clusters": clusters, "routes": routes}


class Registry:
    """The --registry file. Every write is a temporary file renamed over it (atomic)."""

    def __init__(self, path):
        self.path = Path(path)
        self.items = []
        self._n = 0

    def write(self, items):
        self.items = list(items)
        self._n += 1
        tmp = self.path.with_name(f".{self.path.name}.tmp{self._n}")
        tmp.write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": self.items}, indent=1))
        os.rename(tmp, self.path)


@pytest.fixture
def registry(tmp_path):
    return Registry(tmp_path / "registry.json")


# --------------------------------------------------------------------------------------------
# echo backends

ECHO_SERVICE = "interop.Echo"
ECHO_METHOD = f"/{ECHO_SERVICE}/Echo"


class Backend:
    """A real gRPC server whose one method answers `NAME:<request bytes>`."""

    def __init__(self, name):
        import grpc

        self.name = name
        self.calls = 0
        self._lock = threading.Lock()

        def echo(req, ctx):
            with self._lock:
                self.calls += 1
            return name.encode() + b":" + req

        handler = grpc.method_handlers_generic_handler(
            ECHO_SERVICE, {"Echo": grpc.unary_unary_rpc_method_handler(echo)})
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=4),
                                  handlers=(handler,), options=[("grpc.so_reuseport", 0)])
        self.port = self.server.add_insecure_port("127.0.0.1:0")
        self.server.start()

    def stop(self):
        self.server.stop(0).wait(5)


@pytest.fixture
def backends():
    """start(name) -> a running Backend on a free port; all are stopped after the test."""
    started = []

    def start(name):
        b = Backend(name)
        started.append(b)
        return b

    yield start
    for b in started:
        b.stop()


# --------------------------------------------------------------------------------------------
# etcd (Tests/interop/etcd_cluster.py): real members of Debian's etcd-server on 127.0.0.1

@pytest.fixture
def etcd_factory(tmp_path, request):
    """start(size=1|3) -> a healthy EtcdCluster on free ports with data dirs under tmp_path;
    every member is stopped in teardown (bounded), and the members' log tails are printed when
    the test failed."""
    from etcd_cluster import ETCD, ETCDCTL, EtcdCluster

    for binary in (ETCD, ETCDCTL):
        if not os.access(binary, os.X_OK):
            pytest.fail(f"{binary} not found: the etcd tests need Debian's etcd-server and etcd-client "
                        f"(apt-get install etcd-server etcd-client)", pytrace=False)
    clusters = []

    def start(size=1):
        c = EtcdCluster(size, tmp_path / f"etcd-{len(clusters)}")
        clusters.append(c)
        c.start()
        return c

    yield start
    for c in clusters:
        c.close()
    if _test_failed(request):
        for c in clusters:
            print(f"\n---- etcd cluster {c.base_dir} ----\n{c.describe()}")


@pytest.fixture
def etcd1(etcd_factory):
    """One etcd member, healthy."""
    return etcd_factory(1)


@pytest.fixture
def etcd3(etcd_factory):
    """A three-member etcd cluster, healthy, with a leader."""
    return etcd_factory(3)


@pytest.fixture
def store_replica_factory(fastpilot_binary, tmp_path, request):
    """start(store_url, *extra, ready_within=15.0, xds_port=0, log_level="debug") -> a running
    FastPilot with `--store store_url` on free ports (or the given xDS port, to restart a
    replica where its clients are). ready_within=None: /ready is not awaited (a replica that
    cannot sync yet). Every replica is stopped in teardown; log tails are printed on failure."""
    started = []

    def start(store_url, *extra, ready_within=15.0, xds_port=0, log_level="debug"):
        args = ["--xds-address", f"127.0.0.1:{xds_port}", "--admin-address", "127.0.0.1:0",
                "--log-level", log_level, "--store", store_url] + list(extra)
        fp = FastPilot(fastpilot_binary, args, tmp_path / f"replica-{len(started)}.log")
        started.append(fp)
        fp.wait_started(ready_within=ready_within)
        return fp

    yield start
    for fp in started:
        fp.stop()
    if _test_failed(request):
        for fp in started:
            print(f"\n---- replica log tail ({fp.log_path}) ----\n{fp.tail(60)}")
