"""mTLS on the xDS port (issue 12): gRPC's own xDS client with TLS channel credentials (gRFC
A65), raw ADS clients over TLS, refused certificates, the SPIFFE namespace rule, rotation while
clients are connected, and hostile TLS with a bystander that keeps getting pushes.

Certificates come from Tests/tls/make-test-certs.sh (Debian's openssl), made once per session."""
import shutil
import socket
import ssl
import subprocess
import threading
import time
from pathlib import Path

import grpc
import pytest

from conftest import REPO, endpoint, service_entry
from test_grpc_client import HOST, NS, Probe, echo_entry, probes  # noqa: F401 (fixture)
from xds_client import CDS, EDS, EnvoyClient, make_node

SCRIPT = REPO / "Tests" / "tls" / "make-test-certs.sh"
PROBE_URI = f"spiffe://cluster.local/ns/{NS}/sa/probe"
PAYMENTS_URI = "spiffe://cluster.local/ns/payments/sa/ledger"


def make_certs(directory, *clients):
    subprocess.run(["bash", str(SCRIPT), str(directory)] + list(clients), check=True, capture_output=True, timeout=60)
    return Path(directory)


@pytest.fixture(scope="session")
def certs(tmp_path_factory):
    """main: the CA fastpilot trusts (server, probe in ns interop, payments in ns payments);
    foreign: an unrelated CA with a client of the same identity and a server certificate."""
    base = tmp_path_factory.mktemp("tls")
    main = make_certs(base / "main", f"probe={PROBE_URI}", f"payments={PAYMENTS_URI}")
    foreign = make_certs(base / "foreign", f"probe={PROBE_URI}")
    return {"main": main, "foreign": foreign}


def tls_args(certs, *extra, client_ca=True, cert_dir=None):
    d = cert_dir or certs["main"]
    args = ["--xds-tls-address", "127.0.0.1:0", "--tls-cert", str(d / "server.crt"), "--tls-key", str(d / "server.key")]
    if client_ca:
        args += ["--tls-client-ca", str(certs["main"] / "ca.crt")]
    return args + list(extra)


def tls_channel(fp, d, name="probe", trust=None):
    """A grpc channel to fastpilot's TLS port with client certificate `name` from directory `d`
    (None: no certificate), trusting `trust`'s CA (default: d's)."""
    ca = ((trust or d) / "ca.crt").read_bytes()
    creds = grpc.ssl_channel_credentials(
        root_certificates=ca,
        private_key=(d / f"{name}.key").read_bytes() if name else None,
        certificate_chain=(d / f"{name}.crt").read_bytes() if name else None)
    return grpc.secure_channel(f"127.0.0.1:{fp.xds_tls_port}", creds,
                               options=[("grpc.use_local_subchannel_pool", 1)])


def envoy_over_tls(fp, d, node_id, namespace=None, name="probe", trust=None):
    ch = tls_channel(fp, d, name, trust)
    return EnvoyClient(f"127.0.0.1:{fp.xds_tls_port}", make_node(node_id, namespace), channel=ch)


def clusters_of(client):
    return set(client.clusters)


def wait_until(check, timeout, what):
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


# --------------------------------------------------------------------------------------------

def test_grpc_xds_client_with_tls_channel_credentials_follows_an_endpoint_change(
        certs, registry, backends, fastpilot_factory, probes):
    """grpcio's xDS client, its bootstrap using A65 `"type": "tls"` with a client certificate,
    resolves through the TLS-only listener and follows an endpoint move without a failed RPC."""
    b1, b2 = backends("b1"), backends("b2")
    registry.write([echo_entry([endpoint("grpc", b1.port, "region-a/zone-a")])])
    fp = fastpilot_factory(registry, *tls_args(certs, "--xds-plaintext=false"))
    assert fp.xds_port is None and fp.xds_tls_port
    m = certs["main"]
    probe = probes(f"127.0.0.1:{fp.xds_tls_port}", f"xds:///{HOST}:8080", follow=True,
                   extra=["--tls", f"{m / 'ca.crt'},{m / 'probe.crt'},{m / 'probe.key'}"])
    wait_until(lambda: any(r.get("backend") == "b1" for r in probe.snapshot()) or probe.proc.poll() is not None,
               15, f"no RPC reached b1 over xDS-over-TLS\n{probe.report()}\n{fp.tail()}")
    assert probe.proc.poll() is None, probe.report()
    registry.write([echo_entry([endpoint("grpc", b2.port, "region-b/zone-b")])])
    t_move = time.monotonic()
    wait_until(lambda: len([r for r in probe.snapshot() if r["t"] >= t_move and r.get("backend") == "b2"]) >= 10,
               10, f"RPCs did not move to b2\n{probe.report()}")
    records = probe.finish()
    assert records and all(r["ok"] for r in records), probe.report()
    assert fp.metric("fastpilot_tls_handshakes_total") >= 1
    assert fp.metric("fastpilot_tls_handshake_failures_total") == 0
    connect = fp.find_log(r"event=ads_connect .*user_agent=\"gRPC")
    assert connect, fp.tail()


def test_raw_ads_over_tls_and_plaintext_side_by_side(certs, registry, backends, fastpilot_factory):
    b1 = backends("b1")
    registry.write([echo_entry([endpoint("grpc", b1.port)])])
    fp = fastpilot_factory(registry, *tls_args(certs))
    assert fp.xds_port and fp.xds_tls_port
    c = envoy_over_tls(fp, certs["main"], "sidecar~10.0.0.9~app.interop~interop.svc.cluster.local")
    c.start()
    plain = EnvoyClient(fp.xds_address, make_node("sidecar~10.0.0.8~app.interop~interop.svc.cluster.local"))
    plain.start()
    try:
        want = f"outbound|8080||{HOST}"
        assert want in clusters_of(c), c.dump()
        assert clusters_of(c) == clusters_of(plain), "TLS and plaintext streams see the same config"
        assert c.assignments[want].endpoints, c.dump()
        c.check_nonces()
    finally:
        c.close()
        plain.close()


@pytest.mark.parametrize("who", ["no certificate", "another CA"])
def test_clients_without_a_valid_certificate_are_refused_in_the_handshake(who, certs, registry, fastpilot_factory):
    registry.write([echo_entry([endpoint("grpc", 1)])])
    fp = fastpilot_factory(registry, *tls_args(certs))
    if who == "no certificate":
        ch = tls_channel(fp, certs["main"], name=None)
    else:
        ch = tls_channel(fp, certs["foreign"], name="probe", trust=certs["main"])
    c = EnvoyClient(f"127.0.0.1:{fp.xds_tls_port}", make_node("sidecar~10.0.0.9~app.interop~interop.svc.cluster.local"),
                    channel=ch)
    c.send(CDS, [])
    code, _ = c.wait_end(10)
    assert code == grpc.StatusCode.UNAVAILABLE, c.dump()
    assert not c.received
    fp.wait_log(r"event=tls_handshake_failed", timeout=5)
    assert fp.metric("fastpilot_tls_handshake_failures_total") >= 1
    assert fp.metric("fastpilot_tls_handshakes_total") == 0
    assert not fp.find_log(r"event=ads_connect")
    c.close()


def test_a_certificate_for_one_namespace_claiming_another_gets_permission_denied(certs, registry, fastpilot_factory):
    registry.write([echo_entry([endpoint("grpc", 1)])])
    fp = fastpilot_factory(registry, *tls_args(certs))
    # The payments certificate, a node id that says interop.
    c = envoy_over_tls(fp, certs["main"], "sidecar~10.0.0.9~app.interop~interop.svc.cluster.local", name="payments")
    c.send(CDS, [])
    code, details = c.wait_end(10)
    assert code == grpc.StatusCode.PERMISSION_DENIED, c.dump()
    assert "payments" in details and "interop" in details, details
    assert not c.received
    assert fp.metric("fastpilot_xds_permission_denied_total") == 1
    fp.wait_log(r"event=ads_permission_denied .*claimed_namespace=interop", timeout=5)
    # Metadata is a claim too; the same certificate in its own namespace is served.
    m = envoy_over_tls(fp, certs["main"], "proxyless", namespace="interop", name="payments")
    m.send(CDS, [])
    assert m.wait_end(10)[0] == grpc.StatusCode.PERMISSION_DENIED
    ok = envoy_over_tls(fp, certs["main"], "sidecar~10.0.0.7~ledger.payments~payments.svc.cluster.local", name="payments")
    ok.start()
    assert ok.clusters, ok.dump()
    # A node that claims nothing gets its certificate's namespace.
    quiet = envoy_over_tls(fp, certs["main"], "proxyless-quiet")
    quiet.start()
    fp.wait_log(rf"event=ads_connect conn=proxyless-quiet-\d+ .*namespace={NS} ", timeout=5)
    for s in (c, m, ok, quiet):
        s.close()


def test_rotation_while_clients_are_connected(certs, registry, backends, fastpilot_factory, tmp_path):
    b1, b2 = backends("b1"), backends("b2")
    registry.write([echo_entry([endpoint("grpc", b1.port)])])
    live = tmp_path / "live"
    live.mkdir()
    for f in ("server.crt", "server.key", "ca.crt"):
        shutil.copy(certs["main"] / f, live / f)
    fp = fastpilot_factory(registry, *tls_args(certs, "--tls-watch-interval", "100ms", cert_dir=live))
    node = "sidecar~10.0.0.9~app.interop~interop.svc.cluster.local"
    before = envoy_over_tls(fp, certs["main"], node)
    before.start()

    # Rotate to a server certificate from the foreign CA (atomic renames, as a Secret update).
    for f in ("server.crt", "server.key"):
        shutil.copy(certs["foreign"] / f, live / (f + ".new"))
        (live / (f + ".new")).rename(live / f)
    fp.wait_log(r"event=tls_reloaded", timeout=10)
    # New handshakes: the new certificate (a client trusting only the old CA is refused by its
    # own check; one trusting the new CA, still presenting a certificate fastpilot trusts, is served).
    old_trust = envoy_over_tls(fp, certs["main"], node)
    old_trust.send(CDS, [])
    assert old_trust.wait_end(10)[0] == grpc.StatusCode.UNAVAILABLE
    new_trust = envoy_over_tls(fp, certs["main"], node, trust=certs["foreign"])
    new_trust.start()
    assert new_trust.clusters
    # The connection made before the rotation keeps its session and its pushes.
    registry.write([echo_entry([endpoint("grpc", b2.port)])])
    want = f"outbound|8080||{HOST}"
    resp = before.recv(EDS, timeout=10)
    before.handle(resp)
    ports = [lb.endpoint.address.socket_address.port_value
             for e in before.assignments[want].endpoints for lb in e.lb_endpoints]
    assert ports == [b2.port], before.dump()
    # A bad key: reported, the last good pair kept.
    (live / "server.key").write_text("not a key")
    fp.wait_log(r"event=tls_reload_failed", timeout=10)
    assert fp.metric("fastpilot_tls_reload_errors_total") >= 1
    again = envoy_over_tls(fp, certs["main"], node, trust=certs["foreign"])
    again.start()
    for s in (before, old_trust, new_trust, again):
        s.close()


# --------------------------------------------------------------------------------------------
# hostile TLS, with a bystander

def tls_client_context(certs, name="probe"):
    ctx = ssl.create_default_context(cafile=str(certs["main"] / "ca.crt"))
    ctx.load_cert_chain(str(certs["main"] / f"{name}.crt"), str(certs["main"] / f"{name}.key"))
    ctx.set_alpn_protocols(["h2"])
    return ctx


def read_to_eof(sock, timeout):
    sock.settimeout(timeout)
    try:
        while sock.recv(4096):
            pass
        return True
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


def test_hostile_tls_costs_a_bystander_nothing(certs, registry, backends, fastpilot_factory):
    b1, b2 = backends("b1"), backends("b2")
    registry.write([echo_entry([endpoint("grpc", b1.port)])])
    fp = fastpilot_factory(registry, *tls_args(certs, "--tls-handshake-timeout", "1s", "--max-connections", "60"))
    bystander = envoy_over_tls(fp, certs["main"], "sidecar~10.0.0.9~app.interop~interop.svc.cluster.local")
    bystander.start()
    addr = ("127.0.0.1", fp.xds_tls_port)
    mark = fp.mark()

    # Garbage instead of a ClientHello: closed at once.
    g = socket.create_connection(addr, timeout=5)
    g.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    t0 = time.monotonic()
    assert read_to_eof(g, 5)
    assert time.monotonic() - t0 < 0.9, "garbage is not held until the handshake timeout"
    g.close()

    # Renegotiation (TLS 1.2, client-initiated): refused, the session ends or goes on unharmed.
    reneg = subprocess.Popen(
        ["openssl", "s_client", "-connect", f"127.0.0.1:{fp.xds_tls_port}", "-tls1_2", "-alpn", "h2",
         "-CAfile", str(certs["main"] / "ca.crt"), "-cert", str(certs["main"] / "probe.crt"),
         "-key", str(certs["main"] / "probe.key")],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    time.sleep(0.5)
    reneg.stdin.write(b"R\n")
    reneg.stdin.flush()
    time.sleep(1.0)  # s_client ends at EOF on stdin: give the answer time to arrive first
    try:
        out, _ = reneg.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        reneg.kill()
        out, _ = reneg.communicate()
    text = out.decode(errors="replace")
    assert "RENEGOTIATING" in text or "renegotiat" in text.lower(), text[-2000:]
    assert "no renegotiation" in text.lower(), text[-2000:]
    fp.wait_log(r"event=tls_error ", since=mark, timeout=5)

    # A flood of stalled handshakes (half a ClientHello, then silence), up to the connection
    # limit: the next connection is refused, the stalled ones are closed after the timeout.
    flood = []
    for _ in range(50):
        s = socket.create_connection(addr, timeout=5)
        s.sendall(bytes([0x16, 0x03, 0x01, 0x02, 0x00, 0x01]))
        flood.append(s)
    wait_until(lambda: fp.metric("fastpilot_xds_connections") >= 0, 1, "")
    extra = [socket.create_connection(addr, timeout=5) for _ in range(15)]
    time.sleep(0.3)  # well inside the 1 s handshake timeout: only refusals have ended

    def ended(s):
        s.setblocking(False)
        try:
            return s.recv(1) == b""
        except BlockingIOError:
            return False
        except ConnectionResetError:
            return True
        finally:
            s.setblocking(True)

    refused = sum(1 for s in extra if ended(s))
    assert 5 <= refused < 15, f"{refused} of 15 refused: handshakes count toward --max-connections"
    fp.wait_log(r"event=connection_refused reason=max_connections", since=mark, timeout=5)

    # While all that goes on, the bystander gets its push.
    registry.write([echo_entry([endpoint("grpc", b2.port)])])
    want = f"outbound|8080||{HOST}"
    bystander.handle(bystander.recv(EDS, timeout=10))
    ports = [lb.endpoint.address.socket_address.port_value
             for e in bystander.assignments[want].endpoints for lb in e.lb_endpoints]
    assert ports == [b2.port], bystander.dump()

    # The flood ends by the timeout, each with one line (rate-limited) and a count.
    for s in flood:
        assert read_to_eof(s, 5), "a stalled handshake was not closed"
        s.close()
    for s in extra:
        s.close()
    wait_until(lambda: fp.metric("fastpilot_tls_handshake_failures_total") >= 51, 5,
               f"failures: {fp.metric('fastpilot_tls_handshake_failures_total')}")
    assert fp.find_log(r"event=tls_handshake_failed .*handshake not done within 1000 ms", since=mark)
    assert len(fp.find_log(r"event=tls_handshake_failed", since=mark)) <= 40, "one line each, rate-limited"
    # Capacity is back: a real client connects.
    after = envoy_over_tls(fp, certs["main"], "sidecar~10.0.0.5~app.interop~interop.svc.cluster.local")
    after.start()
    assert want in after.clusters
    assert bystander.ended.is_set() is False
    for s in (bystander, after):
        s.close()
