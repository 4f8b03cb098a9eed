"""--max-connection-age (Istio's MaxServerConnectionAge) with gRPC's own xDS client: every xDS
connection is sent a graceful GOAWAY (NO_ERROR) after about the age (±10%), its ADS stream goes on
until --max-connection-age-grace, then the connection is closed and the client reconnects (behind
a load balancer: to any replica). The client's RPCs never notice."""
import re
import time

from conftest import endpoint
from test_grpc_client import HOST, echo_entry, probes  # noqa: F401  (probes is a fixture)

AGE_LINE = re.compile(r"event=connection_max_age peer=(\S+) age=(\d+)(ms|s)\b")


def _age_seconds(line):
    m = AGE_LINE.search(line)
    assert m, line
    return int(m.group(2)) / (1000 if m.group(3) == "ms" else 1)


def test_grpc_xds_client_reconnects_at_max_connection_age(fastpilot_factory, registry, backends, probes):  # noqa: F811
    """fastpilot with --max-connection-age 1s (grace 1s): grpcio's xDS client makes RPCs through
    xds:///... back to back, across an endpoint move, until its third connection aged out (about
    8 s). No RPC fails; the log shows connection_max_age lines for three connections (the client
    reconnected more than once), each at an age within 1s ±10% (the line's age is rounded down
    to the millisecond); fastpilot_xds_connection_max_age_total counts them; the move is followed
    on a reconnected stream; nothing was NACKed."""
    b1, b2 = backends("b1"), backends("b2")
    registry.write([echo_entry([endpoint("grpc", b1.port, "region-a/zone-a")])])
    fp = fastpilot_factory(registry, "--max-connection-age", "1s", "--max-connection-age-grace", "1s",
                           log_level="info")
    probe = probes(fp.xds_address, f"xds:///{HOST}:8080", follow=True)

    deadline = time.monotonic() + 15
    while not any(r.get("ok") for r in probe.snapshot()):
        assert time.monotonic() < deadline and probe.proc.poll() is None, probe.report()
        time.sleep(0.05)
    t0 = time.monotonic()

    # Until the second connection aged out: the push that carries the move then goes to a stream
    # on a connection the client opened after an age-out (in its grace, or the next one).
    while len(fp.find_log(r"event=connection_max_age ")) < 2:
        assert time.monotonic() - t0 < 15, f"fewer than two connection_max_age lines in 15 s\n{fp.tail()}"
        assert probe.proc.poll() is None, probe.report()
        time.sleep(0.05)
    registry.write([echo_entry([endpoint("grpc", b2.port, "region-b/zone-b")])])
    t_move = time.monotonic()
    while True:
        after = [r for r in probe.snapshot() if r["t"] >= t_move]
        if len(after) >= 10 and all(r.get("backend") == "b2" for r in after[-10:]):
            break
        assert time.monotonic() - t_move < 10, \
            f"no move to b2 within 10 s: {[r.get('backend') for r in after[-20:]]}\n{probe.report()}"
        time.sleep(0.05)
    # RPCs go on through a third age-out (a cycle is about 3 s: the age, the grace, and the
    # client's reconnect backoff).
    while len(fp.find_log(r"event=connection_max_age ")) < 3:
        assert time.monotonic() - t0 < 20, f"fewer than three connection_max_age lines in 20 s\n{fp.tail()}"
        assert probe.proc.poll() is None, probe.report()
        time.sleep(0.1)
    time.sleep(0.5)
    records = probe.finish()

    assert len(records) > 50, probe.report()
    assert all(r["ok"] for r in records), f"RPCs failed while connections aged out\n{probe.report()}"

    aged = fp.find_log(r"event=connection_max_age ")
    peers = {AGE_LINE.search(l).group(1) for l in aged}
    assert len(aged) >= 3 and len(peers) >= 3, \
        "expected the client's connection to age out more than twice (so it reconnected more than once):\n" \
        + "\n".join(aged)
    for line in aged:
        assert 0.9 - 0.002 <= _age_seconds(line) <= 1.1 + 0.5, f"age outside 1s ±10% (+0.5 s): {line}"
    connects = fp.find_log(r"event=ads_connect ")
    assert len({l.split("peer=")[1].split()[0] for l in connects}) >= 3, "\n".join(connects)
    # One GOAWAY per connection, counted, whatever the log budget let through.
    assert fp.metric("fastpilot_xds_connection_max_age_total") >= len(aged)
    assert not fp.find_log(r"event=ads_nack"), "\n".join(fp.find_log("event=ads_nack"))
    assert not fp.find_log(r"event=h2_connection_error"), "\n".join(fp.find_log("event=h2_connection_error"))
