"""Requirements (a) and (b): gRPC's own xDS client (grpcio, unmodified, in a fresh process)
resolves a ServiceEntry through fastpilot, load-balances over its endpoints, and follows an
endpoint move without a failed RPC."""
import json
import os
import subprocess
import sys
import threading
import time

import pytest

from conftest import endpoint, service_entry

PROBE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "grpc_client_probe.py")
HOST = "echo.interop.svc.cluster.local"
NS = "interop"


class Probe:
    """grpc_client_probe.py in its own process; its JSON lines are collected by a thread."""

    def __init__(self, xds_address, target, follow=False, count=20, extra=()):
        targets = [target] if isinstance(target, str) else list(target)
        args = [sys.executable, PROBE, "--xds-server", xds_address] + list(extra)
        for t in targets:
            args += ["--target", t]
        args += ["--follow"] if follow else ["--count", str(count)]
        env = dict(os.environ, GRPC_VERBOSITY="NONE")
        env.pop("GRPC_XDS_BOOTSTRAP", None)
        self.target = target
        self.proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, env=env)
        self.records = []
        self.done = None
        self.stderr = ""
        self._lock = threading.Lock()
        self._out = threading.Thread(target=self._read_out, daemon=True)
        self._err = threading.Thread(target=self._read_err, daemon=True)
        self._out.start()
        self._err.start()

    def _read_out(self):
        for line in self.proc.stdout:
            try:
                rec = json.loads(line)
            except ValueError:
                rec = {"ok": False, "garbage": line.rstrip()}
            with self._lock:
                if rec.get("done"):
                    self.done = rec
                else:
                    self.records.append(rec)

    def _read_err(self):
        self.stderr = self.proc.stderr.read()

    def snapshot(self):
        with self._lock:
            return list(self.records)

    def wait(self, timeout):
        """Waits for the process to exit (bounded) and returns its records."""
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"probe {self.target} still running after {timeout}s; "
                                 f"records so far: {self.failures_text(self.snapshot()[-5:])}")
        self._out.join(5)
        self._err.join(5)
        return self.snapshot()

    def finish(self, timeout=10):
        """Follow mode: closes stdin (the probe stops after its current RPC) and waits."""
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        return self.wait(timeout)

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)

    def report(self):
        return (f"probe {self.target}: exit={self.proc.returncode} done={self.done}\n"
                f"failed RPCs: {self.failures_text(self.snapshot())}\nprobe stderr: {self.stderr[-2000:]}")

    @staticmethod
    def failures_text(records):
        bad = [r for r in records if not r.get("ok")]
        return json.dumps(bad[:10], indent=1) if bad else "none"


@pytest.fixture
def probes():
    started = []

    def start(*a, **kw):
        p = Probe(*a, **kw)
        started.append(p)
        return p

    yield start
    for p in started:
        p.kill()


def echo_entry(endpoints, ports=((8080, "grpc"),)):
    return service_entry("echo", NS, HOST, list(ports), endpoints)


# --------------------------------------------------------------------------------------------

def write_two_port_service(registry, backends):
    """One service on ports 8080 (backends b1, b2) and 9091 (b3, b4), in two localities."""
    b = {n: backends(n) for n in ("b1", "b2", "b3", "b4")}
    registry.write([echo_entry(
        [{"address": "127.0.0.1", "ports": {"grpc": b["b1"].port, "grpc-second": b["b3"].port},
          "locality": "region-a/zone-a"},
         {"address": "127.0.0.1", "ports": {"grpc": b["b2"].port, "grpc-second": b["b4"].port},
          "locality": "region-b/zone-b"}],
        ports=((8080, "grpc"), (9091, "grpc-second")))])


@pytest.mark.parametrize("target, expected", [
    (f"{HOST}:8080", {"b1", "b2"}),
    (HOST, {"b1", "b2"}),             # bare host: the service's first port
    (f"{HOST}:9091", {"b3", "b4"}),   # the second port routes to other backend ports
], ids=["host:port", "bare-host", "second-port"])
def test_a_grpc_xds_client_resolves_and_balances(target, expected, fastpilot_factory, registry, backends, probes):
    """(a) A real gRPC channel to xds:///TARGET makes 20 RPCs through fastpilot's LDS/RDS/CDS/EDS:
    every RPC succeeds, and every backend of the selected port (two localities) answers."""
    write_two_port_service(registry, backends)
    fp = fastpilot_factory(registry)

    probe = probes(fp.xds_address, f"xds:///{target}", count=20)
    records = probe.wait(60)

    assert probe.done is not None and len(records) == 20, probe.report()
    assert all(r["ok"] for r in records), probe.report()
    answered = {r["backend"] for r in records}
    assert answered == expected, f"backends that answered: {answered}, expected {expected}\n{probe.report()}"
    assert probe.proc.returncode == 0, probe.report()
    assert not fp.find_log(r"event=ads_nack"), "gRPC NACKed something:\n" + "\n".join(fp.find_log("event=ads_nack"))


def test_b_grpc_xds_client_follows_endpoint_move(fastpilot_factory, registry, backends, probes):
    """(b) While a real gRPC client makes RPCs back to back, the registry file is replaced
    (tmp + rename) so the service's only endpoint is a third backend: within 10 s every RPC
    reaches only the new backend, no RPC fails during the move, and pilot_xds_pushes{type="eds"}
    increased."""
    b1, b2, b3 = backends("b1"), backends("b2"), backends("b3")
    registry.write([echo_entry([endpoint("grpc", b1.port, "region-a/zone-a"),
                                endpoint("grpc", b2.port, "region-b/zone-b")])])
    fp = fastpilot_factory(registry)
    probe = probes(fp.xds_address, f"xds:///{HOST}:8080", follow=True)

    # Both old backends answer first.
    deadline = time.monotonic() + 15
    while {r.get("backend") for r in probe.snapshot()} < {"b1", "b2"}:
        assert time.monotonic() < deadline, f"b1 and b2 did not both answer within 15 s\n{probe.report()}"
        assert probe.proc.poll() is None, probe.report()
        time.sleep(0.05)
    eds_pushes_before = fp.metric('pilot_xds_pushes{type="eds"}')

    registry.write([echo_entry([endpoint("grpc", b3.port, "region-c/zone-c")])])
    t_move = time.monotonic()

    # Moved: the RPCs made in the last stretch all went to b3 (at least 10 in a row).
    moved_at = None
    while moved_at is None:
        recs = probe.snapshot()
        after = [r for r in recs if r["t"] >= t_move]
        for k in range(len(after)):
            tail = after[k:]
            if len(tail) >= 10 and all(r.get("backend") == "b3" for r in tail):
                moved_at = tail[0]["t"] - t_move
                break
        if moved_at is None:
            assert time.monotonic() - t_move < 10, \
                f"RPCs did not all reach b3 within 10 s; last answers: " \
                f"{[r.get('backend') for r in after[-20:]]}\n{probe.report()}"
            time.sleep(0.05)

    records = probe.finish()
    assert records and all(r["ok"] for r in records), f"RPCs failed during the move\n{probe.report()}"
    after_move = [r for r in records if r["t"] >= t_move + moved_at]
    assert {r["backend"] for r in after_move} == {"b3"}, probe.report()
    assert b3.calls >= 10

    eds_pushes_after = fp.metric('pilot_xds_pushes{type="eds"}')
    assert eds_pushes_after > eds_pushes_before, \
        f'pilot_xds_pushes{{type="eds"}} did not increase: {eds_pushes_before} -> {eds_pushes_after}'
    assert not fp.find_log(r"event=ads_nack"), "\n".join(fp.find_log("event=ads_nack"))


def test_a_two_targets_in_one_process(fastpilot_factory, registry, backends, probes):
    """(a) xds:///HOST:8080 and xds:///HOST:9091 in one process: gRPC opens two ADS streams on
    one HTTP/2 connection, each with its own node and LDS subscription. Both resolve: 20 RPCs
    each, all succeed, each target reaches exactly its port's backends."""
    write_two_port_service(registry, backends)
    fp = fastpilot_factory(registry)

    t1, t2 = f"xds:///{HOST}:8080", f"xds:///{HOST}:9091"
    probe = probes(fp.xds_address, [t1, t2], count=40)
    records = probe.wait(60)
    assert len(records) == 40 and all(r["ok"] for r in records), probe.report()
    assert {r["backend"] for r in records if r["target"] == t1} == {"b1", "b2"}, probe.report()
    assert {r["backend"] for r in records if r["target"] == t2} == {"b3", "b4"}, probe.report()
    connects = fp.find_log(r"event=ads_connect")
    assert len(connects) == 2, "expected two ADS streams:\n" + "\n".join(connects)
    peers = {l.split("peer=")[1].split()[0] for l in connects}
    assert len(peers) == 1, f"expected both streams on one connection: {peers}"
    assert not fp.find_log(r"event=ads_nack"), "\n".join(fp.find_log("event=ads_nack"))


@pytest.mark.parametrize("how", ["sigterm", "kill-9"])
def test_grpc_client_survives_server_restart(how, fastpilot_factory, registry, backends, probes):
    """The notes' reconnect case with the real client: fastpilot stops (SIGTERM drain, or kill -9
    with no goodbye at all) while the client makes RPCs (they keep working on the cached config),
    a new fastpilot starts on the same port,
    the client reconnects by itself (its first requests carry the old versions and no nonce),
    and then follows an endpoint move pushed by the new server. No RPC fails throughout."""
    b1, b2 = backends("b1"), backends("b2")
    registry.write([echo_entry([endpoint("grpc", b1.port, "region-a/zone-a")])])
    fp1 = fastpilot_factory(registry)
    port = fp1.xds_port
    probe = probes(fp1.xds_address, f"xds:///{HOST}:8080", follow=True)

    deadline = time.monotonic() + 15
    while not any(r.get("backend") == "b1" for r in probe.snapshot()):
        assert time.monotonic() < deadline and probe.proc.poll() is None, probe.report()
        time.sleep(0.05)

    if how == "kill-9":
        fp1.proc.kill()
        fp1.proc.wait(5)
        assert fp1.proc.returncode == -9
    else:
        fp1.stop()
        assert fp1.proc.returncode == 0, fp1.tail()
    n_down = len(probe.snapshot())
    time.sleep(1.5)
    assert len(probe.snapshot()) > n_down + 10, f"RPCs stalled while the server was down\n{probe.report()}"

    fp2 = fastpilot_factory(registry, "--xds-address", f"127.0.0.1:{port}")
    assert fp2.xds_port == port
    fp2.wait_log(r"event=ads_connect .*user_agent=\"gRPC", timeout=15)

    registry.write([echo_entry([endpoint("grpc", b2.port, "region-b/zone-b")])])
    t_move = time.monotonic()
    while True:
        after = [r for r in probe.snapshot() if r["t"] >= t_move]
        if len(after) >= 10 and all(r.get("backend") == "b2" for r in after[-10:]):
            break
        assert time.monotonic() - t_move < 10, \
            f"no move to b2 within 10 s after the restart: {[r.get('backend') for r in after[-20:]]}\n{probe.report()}"
        time.sleep(0.05)
    records = probe.finish()
    assert all(r["ok"] for r in records), f"RPCs failed around the restart\n{probe.report()}"
    assert not fp2.find_log(r"event=ads_nack"), "\n".join(fp2.find_log("event=ads_nack"))


def test_grpc_client_sees_service_removed_and_restored(fastpilot_factory, registry, backends, probes):
    """Deletion seen by the real client: when the ServiceEntry leaves the registry, fastpilot
    pushes LDS/CDS without the client's listener and cluster and RDS without its virtual host
    (the raw view is test_raw_ads.py::test_removed_service_is_deleted_in_sotw), so RPCs start
    to fail with UNAVAILABLE within 10 s (grpcio 1.85 reports "could not find VirtualHost");
    when the entry comes back, RPCs succeed again within 10 s."""
    b1 = backends("b1")
    entry = echo_entry([endpoint("grpc", b1.port, "region-a/zone-a")])
    other = service_entry("other", NS, "other.interop.svc.cluster.local", [(8080, "grpc")],
                          [endpoint("grpc", b1.port)])
    registry.write([entry, other])
    fp = fastpilot_factory(registry)
    probe = probes(fp.xds_address, f"xds:///{HOST}:8080", follow=True)

    def wait_for(pred, what, since):
        deadline = time.monotonic() + 10
        while True:
            recs = [r for r in probe.snapshot() if r["t"] >= since]
            if pred(recs):
                return recs
            assert time.monotonic() < deadline, f"{what} within 10 s\n{probe.report()}"
            assert probe.proc.poll() is None, probe.report()
            time.sleep(0.05)

    wait_for(lambda rs: len(rs) >= 5 and all(r["ok"] for r in rs), "RPCs did not succeed", 0)
    registry.write([other])
    t_rm = time.monotonic()
    failed = wait_for(lambda rs: any(not r["ok"] for r in rs), "RPCs still succeed after the removal", t_rm)
    bad = [r for r in failed if not r["ok"]][0]
    assert bad["code"] == "UNAVAILABLE", bad

    registry.write([entry, other])
    t_back = time.monotonic()
    wait_for(lambda rs: len(rs) >= 10 and all(r["ok"] for r in rs[-10:]), "RPCs did not recover", t_back)
    probe.finish()
    assert not fp.find_log(r"event=ads_nack"), "\n".join(fp.find_log("event=ads_nack"))
