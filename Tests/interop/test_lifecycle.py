"""Graceful operation: SIGTERM drains (stop accepting, GOAWAY, in-flight pushes finish, exit 0
within --drain-duration), the admin token guards writes over real HTTP, and --max-connections
refuses the surplus without hurting the connections it holds."""
import json
import os
import signal
import socket
import time
import urllib.error
import urllib.request

import pytest

import h2raw
from conftest import endpoint, service_entry
from h2raw import GOAWAY, H2Raw
from xds_client import EDS, AdsStream, CDS, EnvoyClient, cla_endpoints, make_node, unpack

NS = "interop"
ECHO = "echo.interop.svc.cluster.local"
CLUSTER = f"outbound|8080||{ECHO}"


def echo_items(port):
    return [service_entry("echo", NS, ECHO, [(8080, "grpc")], [endpoint("grpc", port, "region-a/zone-a")])]


def test_sigterm_drains_with_goaway_and_exits_zero(fastpilot_factory, registry):
    registry.write(echo_items(15101))
    fp = fastpilot_factory(registry, "--drain-duration", "3s", log_level="info")
    client = EnvoyClient(fp.xds_address, make_node("draining-proxy", namespace=NS))
    raw = H2Raw(fp.xds_address)
    try:
        client.start()
        assert raw.wait_for(lambda f: f.type == h2raw.SETTINGS, timeout=5), raw.summary()

        # A push on its way when the signal comes: it must still arrive.
        mark = fp.mark()
        registry.write(echo_items(15102))
        fp.wait_log(r"event=push ", since=mark, timeout=5)
        t0 = time.monotonic()
        fp.proc.send_signal(signal.SIGTERM)

        g = raw.wait_for(lambda f: f.type == GOAWAY, timeout=3)
        assert g is not None, f"no GOAWAY after SIGTERM: {raw.summary()}"
        last_stream, code, debug = g.goaway()
        assert code == 0, f"GOAWAY {h2raw.error_name(code)} {debug!r}"

        r = client.recv(EDS, timeout=3)
        [cla] = unpack(r)
        assert set(cla_endpoints(cla)[("region-a", "zone-a", "")]) == {"127.0.0.1:15102"}, cla

        # The listener is closed: new connections are refused.
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", fp.xds_port), timeout=2).close()

        fp.proc.wait(timeout=3 + 3)
        took = time.monotonic() - t0
        assert fp.proc.returncode == 0, fp.tail()
        assert took < 3 + 2, f"exit {took:.1f}s after SIGTERM (drain 3s)"
        fp.wait_log(r"event=drain_start ", timeout=2)
        fp.wait_log(r"event=drain_done .*pushes_unfinished=0", timeout=2)
        fp.wait_log(r"event=stopped", timeout=2)  # the log reader may still be a line behind the exit
    finally:
        raw.close()
        client.close()


def _request(fp, method, path, body=b"", token=None):
    req = urllib.request.Request(f"http://127.0.0.1:{fp.admin_port}{path}", data=body or None, method=method)
    if token is not None:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def test_admin_token_guards_writes(fastpilot_factory, registry, tmp_path):
    registry.write(echo_items(15101))
    token_file = tmp_path / "token"
    token_file.write_text("s3cret-token\n")
    fp = fastpilot_factory(registry, "--admin-token-file", str(token_file))
    entry = json.dumps(echo_items(15109)[0]).encode()
    path = f"/v1/serviceentries/{NS}/echo"

    status, body = _request(fp, "PUT", path, entry)
    assert status == 401 and "error" in json.loads(body), body
    status, body = _request(fp, "PUT", path, entry, token="wrong")
    assert status == 401, body
    status, body = _request(fp, "DELETE", path, token="s3cret")
    assert status == 401, body
    # Reads need no token.
    assert _request(fp, "GET", path)[0] == 200
    assert _request(fp, "GET", "/metrics")[0] == 200
    # Nothing changed.
    assert "15101" in _request(fp, "GET", path)[1]

    status, body = _request(fp, "PUT", path, entry, token="s3cret-token")
    assert status == 200, body
    assert "15109" in _request(fp, "GET", path)[1]
    fp.wait_log(r"event=admin_unauthorized ", timeout=2)


def test_max_connections_refuses_the_surplus(fastpilot_factory, registry):
    registry.write(echo_items(15101))
    fp = fastpilot_factory(registry, "--max-connections", "3", log_level="info")
    held = [AdsStream(fp.xds_address, make_node(f"held-{i}", namespace=NS)) for i in range(3)]
    extra = []
    try:
        for s in held:
            s.send(CDS, [])
            assert unpack(s.recv(CDS, timeout=5))
            s.send(EDS, [CLUSTER])
            s.ack(s.recv(EDS, timeout=5))
        # The fourth connection is accepted by the kernel and closed by the server at once.
        for _ in range(3):
            raw = H2Raw(fp.xds_address)
            extra.append(raw)
            assert raw.wait_closed(5), raw.summary()
        fp.wait_log(r"event=connection_refused .*reason=max_connections", timeout=5)
        # The held ones still get pushes.
        registry.write(echo_items(15103))
        for s in held:
            r = s.recv(EDS, timeout=5)
            [cla] = unpack(r)
            assert set(cla_endpoints(cla)[("region-a", "zone-a", "")]) == {"127.0.0.1:15103"}, cla
    finally:
        for r in extra:
            r.close()
        for s in held:
            s.close()


def _cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_out_of_descriptors_is_logged_and_survived(fastpilot_factory, registry):
    """EMFILE on accept: logged, no crash, no busy loop; serving resumes once descriptors free up."""
    registry.write(echo_items(15101))
    fp = fastpilot_factory(registry, "--max-connections", "1000", "--io-threads", "1", log_level="info", nofile=64)
    socks = []
    try:
        for _ in range(80):
            s = socket.create_connection(("127.0.0.1", fp.xds_port), timeout=2)
            socks.append(s)
        fp.wait_log(r"event=accept_failed .*errno=24", timeout=5)
        cpu0, t0 = _cpu_seconds(fp.proc.pid), time.monotonic()
        time.sleep(2)
        spent = _cpu_seconds(fp.proc.pid) - cpu0
        assert fp.proc.poll() is None, fp.tail()
        assert spent < 0.5 * (time.monotonic() - t0), f"{spent:.2f} CPU-s in 2 s while out of descriptors: spinning?"
    finally:
        for s in socks:
            s.close()
    # Descriptors are back: a new client is served.
    deadline = time.monotonic() + 10
    while True:
        try:
            s = AdsStream(fp.xds_address, make_node("after-emfile", namespace=NS))
            try:
                s.send(CDS, [])
                assert CLUSTER in [c.name for c in unpack(s.recv(CDS, timeout=3))]
                break
            finally:
                s.close()
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    assert fp.proc.poll() is None
