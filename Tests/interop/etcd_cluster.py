"""Real etcd for the interop suite: N members (1 or 3) of Debian's etcd-server on 127.0.0.1.

etcd cannot listen on port 0 and report the port, so every member gets two ports picked by
binding a socket to port 0, reading the port and closing the socket; if another process takes
one of them before etcd binds it (etcd then exits with "address already in use"), the whole
cluster is started again on new ports (a peer URL is part of the cluster's identity, so one
member cannot move alone).

    cluster = EtcdCluster(3, tmp_path / "etcd")
    cluster.start()                  # returns once every member answers `endpoint health`
    cluster.store_url()              # "etcd://127.0.0.1:C0,127.0.0.1:C1,127.0.0.1:C2"
    leader = cluster.leader()        # the EtcdMember `endpoint status` names as leader
    cluster.kill(leader)             # SIGKILL
    cluster.wait_leader(exclude=leader)
    cluster.restart(leader)          # same name, ports and data dir
    cluster.ctl("put", "k", "v")     # etcdctl on the live members
    cluster.close()                  # every member stopped, bounded

Every wait is bounded; `close` stops every process it started (SIGTERM, then SIGKILL).
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

ETCD = os.environ.get("ETCD_BINARY", "/usr/bin/etcd")
ETCDCTL = os.environ.get("ETCDCTL_BINARY", "/usr/bin/etcdctl")
HOST = "127.0.0.1"


class EtcdError(AssertionError):
    pass


def free_port():
    """A port nothing listens on right now (the kernel's pick for port 0). Another process may
    take it before it is used: callers retry on a clash."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def _port_open(port, timeout=0.2):
    try:
        with socket.create_connection((HOST, port), timeout=timeout):
            return True
    except OSError:
        return False


class EtcdMember:
    """One etcd process. Its output goes to `log_path` (kept across restarts)."""

    def __init__(self, cluster, index, name, client_port, peer_port, data_dir, log_path):
        self.cluster = cluster
        self.index = index
        self.name = name
        self.client_port = client_port
        self.peer_port = peer_port
        self.data_dir = Path(data_dir)
        self.log_path = Path(log_path)
        self.proc = None
        self.starts = 0
        # Started and not deliberately stopped since: it should be running.
        self.wanted = False

    def __repr__(self):
        state = "running" if self.running else "stopped"
        return f"<etcd {self.name} client={self.client_port} peer={self.peer_port} {state}>"

    @property
    def endpoint(self):
        """HOST:PORT of the client URL (what --store and etcdctl take)."""
        return f"{HOST}:{self.client_port}"

    @property
    def client_url(self):
        return f"http://{HOST}:{self.client_port}"

    @property
    def peer_url(self):
        return f"http://{HOST}:{self.peer_port}"

    @property
    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def _args(self, initial_cluster, state):
        return [
            ETCD,
            "--name", self.name,
            "--data-dir", str(self.data_dir),
            "--listen-client-urls", self.client_url,
            "--advertise-client-urls", self.client_url,
            "--listen-peer-urls", self.peer_url,
            "--initial-advertise-peer-urls", self.peer_url,
            "--initial-cluster", initial_cluster,
            "--initial-cluster-state", state,
            "--initial-cluster-token", self.cluster.token,
            # Faster elections than the defaults (100 ms / 1 s): a killed leader is replaced
            # in about a second.
            "--heartbeat-interval", "50",
            "--election-timeout", "500",
            "--logger", "zap",
            "--log-outputs", "stderr",
            "--log-level", "info",
        ]

    def start(self, initial_cluster, state="new"):
        """Starts the process (returns at once; `wait_listening` waits for its client port)."""
        assert not self.running, f"{self} is already running"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.starts += 1
        self.wanted = True
        log = open(self.log_path, "a")
        log.write(f"\n==== start #{self.starts} at {time.strftime('%H:%M:%S')} ====\n")
        log.flush()
        try:
            self.proc = subprocess.Popen(self._args(initial_cluster, state), stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=subprocess.STDOUT)
        finally:
            log.close()

    def log_text(self):
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def tail(self, n=25):
        return "\n".join(self.log_text().splitlines()[-n:])

    def _this_start_log(self):
        return self.log_text().rsplit("==== start #", 1)[-1]

    def port_clash(self):
        """The last start failed because a port was taken."""
        return "address already in use" in self._this_start_log()

    def wait_listening(self, timeout=10.0):
        """Until the client port accepts connections; raises if the process exits first."""
        deadline = time.monotonic() + timeout
        while True:
            if not self.running:
                raise EtcdError(f"{self.name} exited with {self.proc.returncode if self.proc else None}:\n{self.tail()}")
            # The port alone could be another process's (a clash): etcd logs when it serves.
            if "serving client traffic" in self._this_start_log() and _port_open(self.client_port):
                return
            if time.monotonic() > deadline:
                raise EtcdError(f"{self.name}: client port {self.client_port} not open within {timeout}s:\n{self.tail()}")
            time.sleep(0.05)

    def kill(self):
        """SIGKILL: no goodbye to the cluster or to clients."""
        self.wanted = False
        if self.running:
            self.proc.send_signal(signal.SIGKILL)
        self._reap(5.0)

    def stop(self, timeout=5.0):
        """SIGTERM (a clean stop: the leader hands over), SIGKILL after `timeout`."""
        self.wanted = False
        if self.running:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self._reap(5.0)

    def pause(self):
        """SIGSTOP: the process holds its sockets but answers nothing (a hung member)."""
        if self.running:
            self.proc.send_signal(signal.SIGSTOP)

    def resume(self):
        if self.running:
            self.proc.send_signal(signal.SIGCONT)

    def _reap(self, timeout):
        if self.proc is not None and self.proc.poll() is None:
            try:
                self.proc.send_signal(signal.SIGCONT)  # a paused process cannot exit otherwise
            except OSError:
                pass
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout)


class EtcdCluster:
    """N members on 127.0.0.1, each with its own data dir under `base_dir`."""

    def __init__(self, size, base_dir, start_retries=5):
        assert size >= 1
        self.size = size
        self.base_dir = Path(base_dir)
        self.start_retries = start_retries
        self.members = []
        self.token = f"fastpilot-{os.getpid()}-{int(time.time() * 1000) % 100000000}"
        self._attempt = 0

    # -- lifecycle --

    def start(self, timeout=20.0):
        """Starts every member on fresh ports and waits until the cluster is healthy (a leader,
        a linearizable read on every member). Retries on new ports when one was taken."""
        last = None
        for _ in range(self.start_retries):
            self._attempt += 1
            self._make_members()
            initial = self.initial_cluster
            for m in self.members:
                m.start(initial, "new")
            try:
                for m in self.members:
                    m.wait_listening(timeout)
                self.wait_healthy(timeout=timeout)
                return self
            except EtcdError as e:
                last = e
                clash = any(m.port_clash() for m in self.members)
                for m in self.members:
                    m.stop(2.0)
                if not clash:
                    raise EtcdError(f"etcd cluster did not start:\n{e}\n{self.describe()}") from None
                # A port was taken between picking and binding: new ports, new data dirs.
        raise EtcdError(f"etcd cluster did not start after {self.start_retries} attempts (port clashes):\n{last}")

    def _make_members(self):
        used = set()

        def pick():
            while True:
                p = free_port()
                if p not in used:
                    used.add(p)
                    return p

        attempt_dir = self.base_dir / f"attempt-{self._attempt}"
        self.members = [
            EtcdMember(self, i, f"m{i}", pick(), pick(), attempt_dir / f"m{i}.data", attempt_dir / f"m{i}.log")
            for i in range(self.size)
        ]

    @property
    def initial_cluster(self):
        return ",".join(f"{m.name}={m.peer_url}" for m in self.members)

    def close(self):
        """Teardown: SIGKILL to every member (their data dirs are temporary; a clean stop of a
        three-member cluster can wait seconds on leadership transfer), each reaped, bounded."""
        for m in self.members:
            m.kill()

    def kill(self, member):
        member.kill()

    def stop(self, member, timeout=5.0):
        member.stop(timeout)

    def restart(self, member, wait=True, timeout=15.0):
        """Starts a stopped member again (same name, ports and data dir: it rejoins)."""
        assert not member.running, f"{member} is running"
        member.start(self.initial_cluster, "new")  # ignored by etcd: the data dir has the cluster
        if wait:
            member.wait_listening(timeout)
        return member

    def stop_all(self, timeout=5.0):
        """Stops every member with SIGTERM, the leader first and one at a time (stopped
        together, a leader waits seconds handing over to a member that is going away too)."""
        try:
            first = [self.wait_leader(timeout=2.0)]
        except EtcdError:
            first = []
        for m in first + [m for m in self.members if m not in first]:
            m.stop(timeout)

    def start_all(self, timeout=20.0):
        """Starts every stopped member, then waits until the cluster is healthy again."""
        for m in self.members:
            if not m.running:
                m.start(self.initial_cluster, "new")
        for m in self.members:
            m.wait_listening(timeout)
        self.wait_healthy(timeout=timeout)

    # -- addresses --

    def running_members(self):
        return [m for m in self.members if m.running]

    def endpoints(self, members=None):
        return [m.endpoint for m in (self.members if members is None else members)]

    def store_url(self, members=None):
        """What `fastpilot --store` takes: etcd://HOST:PORT[,HOST:PORT...]."""
        return "etcd://" + ",".join(self.endpoints(members))

    def describe(self):
        out = []
        for m in self.members:
            out.append(f"---- {m!r} ({m.log_path}) ----\n{m.tail(15)}")
        return "\n".join(out)

    # -- etcdctl --

    def ctl(self, *args, members=None, timeout=10.0, check=True, input=None):
        """etcdctl ARGS against `members` (default: the running ones). Returns the
        CompletedProcess; with check, a non-zero exit raises with its output."""
        ms = self.running_members() if members is None else members
        if not ms:
            raise EtcdError(f"etcdctl {' '.join(args)}: no running member")
        cmd = [ETCDCTL, "--endpoints", ",".join(self.endpoints(ms)),
               "--dial-timeout", "2s", "--command-timeout", f"{max(1, int(timeout) - 1)}s"] + list(args)
        env = dict(os.environ, ETCDCTL_API="3")
        try:
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, input=input)
        except subprocess.TimeoutExpired as e:
            raise EtcdError(f"{' '.join(cmd)}: no answer within {timeout}s ({e.stderr!r})") from None
        if check and r.returncode != 0:
            raise EtcdError(f"{' '.join(cmd)} exited {r.returncode}:\nstdout: {r.stdout}\nstderr: {r.stderr}")
        return r

    def ctl_json(self, *args, **kw):
        r = self.ctl("-w", "json", *args, **kw)
        return json.loads(r.stdout)

    def put(self, key, value, **kw):
        """Writes a key; returns the cluster revision after the write."""
        if not isinstance(value, str):
            value = json.dumps(value)
        # `--` so that a value starting with '-' is not a flag.
        out = self.ctl_json("put", "--", key, value, **kw)
        return int(out["header"]["revision"])

    def get(self, key, **kw):
        """(value str, mod_revision) or None."""
        import base64
        out = self.ctl_json("get", "--", key, **kw)
        kvs = out.get("kvs") or []
        if not kvs:
            return None
        kv = kvs[0]
        return base64.b64decode(kv["value"]).decode(), int(kv["mod_revision"])

    def get_prefix(self, prefix, **kw):
        """{key: (value, mod_revision)} for every key under `prefix`."""
        import base64
        out = self.ctl_json("get", "--prefix", "--", prefix, **kw)
        res = {}
        for kv in out.get("kvs") or []:
            res[base64.b64decode(kv["key"]).decode()] = (base64.b64decode(kv["value"]).decode(), int(kv["mod_revision"]))
        return res

    def delete(self, key, **kw):
        out = self.ctl_json("del", "--", key, **kw)
        return int(out.get("deleted", 0))

    def revision(self, **kw):
        """The cluster's current revision (from a linearizable read's header)."""
        out = self.ctl_json("get", "--", "/fastpilot-tests/revision-probe", **kw)
        return int(out["header"]["revision"])

    def compact(self, revision=None, **kw):
        """Compacts the key-value history up to `revision` (default: the current one),
        physically (`--physical`: returns once the compaction is applied)."""
        rev = self.revision() if revision is None else revision
        self.ctl("compact", "--physical", str(rev), **kw)
        return rev

    # -- health and leadership --

    def health(self, members=None, timeout=5.0):
        """{endpoint: healthy?} from `etcdctl endpoint health` (a linearizable read per
        endpoint: needs a leader and quorum)."""
        ms = self.running_members() if members is None else members
        if not ms:
            return {}
        r = self.ctl("endpoint", "health", "-w", "json", members=ms, timeout=timeout, check=False)
        out = {}
        try:
            for e in json.loads(r.stdout or "[]"):
                out[e["endpoint"].replace("http://", "")] = bool(e.get("health"))
        except ValueError:
            pass
        for m in ms:
            out.setdefault(m.endpoint, False)
        return out

    def wait_healthy(self, members=None, timeout=20.0):
        """Until every given (default: running) member reports healthy."""
        deadline = time.monotonic() + timeout
        last = {}
        while True:
            ms = [m for m in self.members if m.wanted] if members is None else members
            for m in ms:
                if not m.running:
                    raise EtcdError(f"{m.name} exited while waiting for health:\n{m.tail()}")
            try:
                last = self.health(ms, timeout=max(2.0, min(5.0, deadline - time.monotonic())))
            except EtcdError as e:
                last = {"error": str(e)}
            if last and all(v is True for v in last.values()):
                return
            if time.monotonic() > deadline:
                raise EtcdError(f"etcd not healthy within {timeout}s: {last}\n{self.describe()}")
            time.sleep(0.1)

    def status(self, members=None, timeout=5.0):
        """`etcdctl endpoint status -w json` of the given (default: running) members: a list of
        {"Endpoint": "http://...", "Status": {"header": {...}, "leader": ..., ...}}; members
        that do not answer are left out."""
        ms = self.running_members() if members is None else members
        if not ms:
            return []
        r = self.ctl("endpoint", "status", "-w", "json", members=ms, timeout=timeout, check=False)
        try:
            return json.loads(r.stdout or "[]")
        except ValueError:
            return []

    def member_by_id(self, member_id, statuses=None):
        for s in statuses if statuses is not None else self.status():
            if int(s["Status"]["header"]["member_id"]) == int(member_id):
                ep = s["Endpoint"].replace("http://", "")
                for m in self.members:
                    if m.endpoint == ep:
                        return m
        return None

    def leader(self, timeout=10.0):
        """The member that the running members agree is the leader (bounded wait)."""
        return self.wait_leader(timeout=timeout)

    def wait_leader(self, exclude=None, timeout=10.0):
        """Until the running members agree on one leader (other than `exclude`, when given)
        and it is one of them; returns that member."""
        deadline = time.monotonic() + timeout
        last = None
        while True:
            statuses = self.status(timeout=3.0)
            running = self.running_members()
            leaders = {int(s["Status"].get("leader", 0)) for s in statuses}
            if statuses and len(statuses) == len(running) and len(leaders) == 1 and 0 not in leaders:
                m = self.member_by_id(leaders.pop(), statuses)
                if m is not None and m.running and m is not exclude:
                    return m
            last = [(s.get("Endpoint"), s["Status"].get("leader")) for s in statuses]
            if time.monotonic() > deadline:
                raise EtcdError(f"no agreed leader{' other than ' + exclude.name if exclude else ''} "
                                f"within {timeout}s: {last}\n{self.describe()}")
            time.sleep(0.1)

    def member_list(self):
        """[(name, client urls)] from `etcdctl member list`."""
        out = self.ctl_json("member", "list")
        return [(m.get("name", ""), m.get("clientURLs", [])) for m in out.get("members", [])]

    def cleanup(self):
        shutil.rmtree(self.base_dir, ignore_errors=True)
