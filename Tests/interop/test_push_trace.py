"""Push traces (issue 10) with real clients: gRPC's own xDS client and raw ADS clients follow an
endpoint change; /debug/pushz shows that push with every stage filled and every client's ACK,
a client that never ACKs listed as pending; one push in detail by version (404 for an unknown
one); the waterfall SVG parses as XML."""
import json
import time
import xml.etree.ElementTree as ET

from conftest import endpoint
from test_grpc_client import HOST, echo_entry, probes  # noqa: F401 (fixture)
from xds_client import EDS, EnvoyClient, make_node

STAGES = ("queue", "generate", "submit", "write", "ack")


def pushz(fp, query=""):
    status, body = fp.http_get("/debug/pushz" + query)
    return status, (json.loads(body) if status == 200 else body)


def newest_version(fp):
    _, doc = pushz(fp)
    return max((p["version"] for p in doc["pushes"]), default=0)


def test_an_endpoint_change_is_traced_from_event_to_every_ack(registry, backends, fastpilot_factory, probes):
    b1, b2 = backends("b1"), backends("b2")
    registry.write([echo_entry([endpoint("grpc", b1.port)])])
    fp = fastpilot_factory(registry)
    probe = probes(fp.xds_address, f"xds:///{HOST}:8080", follow=True)
    deadline = time.monotonic() + 15
    while not any(r.get("backend") == "b1" for r in probe.snapshot()):
        assert time.monotonic() < deadline and probe.proc.poll() is None, probe.report()
        time.sleep(0.05)
    acking = EnvoyClient(fp.xds_address, make_node("sidecar~10.0.0.9~acking.interop~interop.svc.cluster.local"))
    acking.start()
    silent_id = "sidecar~10.0.0.8~silent.interop~interop.svc.cluster.local"
    silent = EnvoyClient(fp.xds_address, make_node(silent_id))
    silent.start()
    _, doc = pushz(fp)
    assert doc["enabled"] is True and doc["capacity"] >= 64
    before = newest_version(fp)

    registry.write([echo_entry([endpoint("grpc", b2.port)])])
    acking.handle(acking.recv(EDS, timeout=10))      # received and ACKed
    silent_resp = silent.recv(EDS, timeout=10)         # received, never ACKed
    assert silent_resp.nonce

    # The push shows up with the three streams sent, two ACKs and the silent client pending.
    deadline = time.monotonic() + 10
    push = None
    while time.monotonic() < deadline:
        _, doc = pushz(fp)
        newer = [p for p in doc["pushes"] if p["version"] > before and p["streams"]["pushed"] >= 3]
        if newer:
            push = newer[-1]  # the oldest push after the change: the endpoint change itself
            if push["streams"]["acked"] >= 2 and push["pending_count"] >= 1:
                break
        time.sleep(0.1)
    assert push, json.dumps(doc, indent=1)[:3000]
    assert push["streams"]["acked"] >= 2, json.dumps(push, indent=1)
    assert push["streams"]["nacked"] == 0
    assert any(c["connection"].startswith(silent_id) for c in push["pending_clients"]), json.dumps(push, indent=1)
    assert push["state"] == "in_progress", "a client has not ACKed: the push is not done"
    # A connection's stages are folded in when its record closes (its ACK): two so far.
    acked = push["streams"]["acked"]
    for s in STAGES:
        st = push["stages"][s]
        assert st["count"] == acked, f"stage {s}: {st}"
        assert st["p50_ms"] <= st["p90_ms"] <= st["p99_ms"] <= st["max_ms"], f"stage {s}: {st}"
    assert push["to_write"]["count"] == acked and push["to_ack"]["count"] == acked
    # The config event comes first: every client's ACK lands after its write.
    assert push["to_ack"]["max_ms"] >= push["to_write"]["p50_ms"]
    for key in ("debounce_ms", "context_ms", "publish_ms"):
        assert push["push"][key] is not None and push["push"][key] >= 0
    assert len(push["slowest"]) >= 2
    assert all(s["stage"] in STAGES for s in push["slowest"])

    # One push in detail, and an unknown version.
    status, one = pushz(fp, f"?version={push['version']}")
    assert status == 200 and one["version"] == push["version"], one
    assert set(one["ends"]) == set(STAGES)
    assert any(c["connection"].startswith(silent_id) for c in one["pending_clients"])
    status, body = pushz(fp, "?version=987654321")
    assert status == 404, body

    # The waterfall parses as XML, newest and by version.
    for q in ("", f"?version={push['version']}"):
        status, svg = fp.http_get("/debug/pushz.svg" + q)
        assert status == 200, svg
        root = ET.fromstring(svg)
        assert root.tag.endswith("svg")
        texts = " ".join(t.text or "" for t in root.iter() if t.tag.endswith("text"))
        assert "queue" in texts and "ack" in texts
    status, _ = fp.http_get("/debug/pushz.svg?version=987654321")
    assert status == 404

    # The metrics beside Istio's: the stages, the ACK delay and convergence.
    assert fp.metric('fastpilot_push_stage_seconds_count{stage="write"}') >= 2
    assert fp.metric("fastpilot_push_ack_seconds_count") >= 2
    assert fp.metric("pilot_proxy_convergence_time_count") >= 3, "Istio's meaning: at the write, ACK or not"

    # When the silent client finally ACKs, the push is done and logged once.
    silent.ack(silent_resp)
    fp.wait_log(rf"event=push_done version={push['version']} ", timeout=10)
    _, one = pushz(fp, f"?version={push['version']}")
    assert one["state"] == "done" and one["pending_count"] == 0, one
    assert one["streams"]["acked"] == acked + 1
    assert all(one["stages"][s]["count"] == acked + 1 for s in STAGES), one["stages"]
    probe.finish()
    for c in (acking, silent):
        c.close()
