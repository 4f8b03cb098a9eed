"""The etcd fixture itself (etcd_cluster.py), against real etcd: clusters start healthy on free
ports, a killed leader is replaced, members restart with their data, a port taken between
picking and binding is survived, and teardown is bounded even for a hung member. No fastpilot
here: these tests run whatever the server supports."""
import socket
import time

import pytest

import etcd_cluster
from etcd_cluster import EtcdCluster, EtcdError


def test_single_member_put_get_compact_restart(etcd1):
    """One member: a put is read back with its mod revision, revisions grow by one per write,
    compaction succeeds (and a read at a compacted revision then fails), and the data survives
    a SIGTERM stop and a restart on the same ports."""
    (m,) = etcd1.members
    assert m.running and etcd1.health() == {m.endpoint: True}
    assert etcd1.store_url() == f"etcd://127.0.0.1:{m.client_port}"

    r1 = etcd1.put("/t/a", "one")
    r2 = etcd1.put("/t/b", {"x": 1})
    assert r2 == r1 + 1
    assert etcd1.get("/t/a") == ("one", r1)
    assert etcd1.get("/t/missing") is None
    assert set(etcd1.get_prefix("/t/")) == {"/t/a", "/t/b"}
    assert etcd1.revision() == r2

    r3 = etcd1.put("/t/a", "two")
    etcd1.compact(r3)
    old = etcd1.ctl("get", "--rev", str(r1), "/t/a", check=False)
    assert old.returncode != 0 and "compacted" in (old.stderr + old.stdout), (old.stdout, old.stderr)

    m.stop()
    assert not m.running
    with pytest.raises(EtcdError):
        etcd1.ctl("get", "/t/a", members=[m], timeout=2)
    etcd1.restart(m)
    etcd1.wait_healthy(timeout=15)
    assert etcd1.get("/t/a") == ("two", r3)
    assert etcd1.delete("/t/b") == 1
    assert etcd1.get_prefix("/t/") == {"/t/a": ("two", r3)}


def test_three_members_leader_killed_and_restarted(etcd3):
    """Three members: all healthy and agreeing on one leader; SIGKILL of the leader elects
    another within seconds and writes go on; the killed member restarts with its data dir,
    catches up on what was written while it was down (a serializable read on it alone), and
    the cluster is healthy again."""
    assert len(etcd3.members) == 3
    ports = {p for m in etcd3.members for p in (m.client_port, m.peer_port)}
    assert len(ports) == 6
    assert set(etcd3.health().values()) == {True}
    names = {n for n, _ in etcd3.member_list()}
    assert names == {"m0", "m1", "m2"}

    leader = etcd3.leader()
    etcd3.put("/t/before", "1")
    t0 = time.monotonic()
    etcd3.kill(leader)
    assert not leader.running and leader.proc.returncode == -9
    new = etcd3.wait_leader(exclude=leader, timeout=10)
    elected_in = time.monotonic() - t0
    assert new is not leader and new.running
    assert elected_in < 10
    rev = etcd3.put("/t/during", "2")

    etcd3.restart(leader)
    etcd3.wait_healthy(timeout=15)
    # The restarted member alone, without asking the leader: it caught up.
    deadline = time.monotonic() + 10
    while True:
        r = etcd3.ctl("get", "--consistency=s", "/t/during", "-w", "json", members=[leader], check=False)
        if r.returncode == 0 and '"kvs"' in r.stdout:
            break
        assert time.monotonic() < deadline, f"{leader.name} did not catch up: {r.stdout} {r.stderr}"
        time.sleep(0.1)
    assert etcd3.get("/t/during") == ("2", rev)
    assert etcd3.wait_leader() in etcd3.members


def test_stop_all_and_start_all_keeps_data(etcd3):
    """Every member stopped (SIGTERM): nothing answers; started again, the cluster is healthy
    with its data and a leader."""
    rev = etcd3.put("/t/k", "v")
    etcd3.stop_all()
    assert etcd3.running_members() == []
    for m in etcd3.members:
        with socket.socket() as s:
            s.settimeout(0.5)
            assert s.connect_ex(("127.0.0.1", m.client_port)) != 0, f"{m.name} still listening"
    etcd3.start_all()
    assert etcd3.get("/t/k") == ("v", rev)
    assert etcd3.leader().running


def test_port_clash_is_retried_on_new_ports(tmp_path, monkeypatch):
    """A port taken between picking it and etcd binding it: the cluster starts again on new
    ports (the first attempt's member logs show the clash)."""
    squatter = socket.socket()
    squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    squatter.bind(("127.0.0.1", 0))
    squatter.listen(1)
    taken = squatter.getsockname()[1]
    real = etcd_cluster.free_port
    handed = []

    def free_port():
        # The first pick of the first attempt is the squatter's port.
        p = taken if not handed else real()
        handed.append(p)
        return p

    monkeypatch.setattr(etcd_cluster, "free_port", free_port)
    c = EtcdCluster(1, tmp_path / "etcd")
    try:
        c.start(timeout=10)
        assert c._attempt >= 2
        (m,) = c.members
        assert taken not in (m.client_port, m.peer_port)
        first_log = (tmp_path / "etcd" / "attempt-1" / "m0.log").read_text()
        assert "address already in use" in first_log
        assert c.health() == {m.endpoint: True}
    finally:
        c.close()
        squatter.close()


def test_teardown_is_bounded_for_a_hung_member(tmp_path):
    """close() stops a member frozen with SIGSTOP, within bounded time."""
    c = EtcdCluster(1, tmp_path / "etcd")
    c.start()
    (m,) = c.members
    m.pause()
    t0 = time.monotonic()
    c.close()
    assert not m.running
    assert time.monotonic() - t0 < 10
