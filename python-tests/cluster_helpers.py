"""A local Redis Cluster with the lottery module loaded on every node, for the cluster tests
(test_cluster.py, test_sharded.py, test_sharded_failover.py).

    c = Cluster(masters=3, replicas=1)      # 6 redis-servers, `redis-cli --cluster create`
    rc = c.client()                         # redis-py RedisCluster (decode_responses=True)
    m = c.master_of_key("camp:{x}")         # the RedisServer that owns the key's slot now
    c.cleanup()

Every node is a lottery_helpers.RedisServer (own temp dir, free port, module loaded with
``debug-clock yes``) started with ``--cluster-enabled yes --cluster-config-file nodes.conf
--cluster-node-timeout 3000``. The cluster is created with ``redis-cli --cluster create ...
--cluster-replicas R --cluster-yes``; the constructor returns once every node reports
``cluster_state:ok``, knows every other node, agrees on who owns every slot, and every replica's
link to its master is up. Node ports come from ``cluster_port()`` (outside the ephemeral range,
never twice in a process, bus port included); a set-up that fails (a node cannot bind, a port
answered by another process, no convergence) is started over on fresh ports, 3 times at most.

Fixtures (import them into a test module: ``from cluster_helpers import cluster_factory``):
``cluster_factory(**Cluster kwargs)`` starts clusters that are checked and cleaned up after the
test: the test fails if a node died (a module panic kills redis-server) or logged a crash report,
a Rust panic or a CRITICAL line. ``Cluster.check()`` returns the same problems as a list.
"""
import os
import random
import socket
import subprocess
import sys
import time

import pytest
import redis
from redis.cluster import ClusterNode, RedisCluster

import lottery_helpers as H

REDIS_CLI = os.environ.get("REDIS_CLI", "redis-cli")
HOST = "127.0.0.1"
NSLOTS = 16384

# --------------------------------------------------------------------------------------------
# key slots: a table-driven CRC16/XMODEM (lottery_helpers.key_slot is bitwise and slower; the
# two are checked against each other and against CLUSTER KEYSLOT in test_cluster.py)

_CRC_TABLE = []
for _i in range(256):
    _c = _i << 8
    for _ in range(8):
        _c = ((_c << 1) ^ 0x1021) if _c & 0x8000 else (_c << 1)
    _CRC_TABLE.append(_c & 0xFFFF)


def crc16(data: bytes) -> int:
    crc = 0
    for b in data:
        crc = ((crc << 8) & 0xFFFF) ^ _CRC_TABLE[((crc >> 8) ^ b) & 0xFF]
    return crc


def key_slot(key) -> int:
    k = key.encode() if isinstance(key, str) else key
    s = k.find(b"{")
    if s >= 0:
        e = k.find(b"}", s + 1)
        if e > s + 1:
            k = k[s + 1:e]
    return crc16(k) % NSLOTS


def tag_for_slot(slot, prefix="t"):
    """A hash tag string t such that '{t}' hashes to `slot` (searched deterministically)."""
    i = 0
    while True:
        t = f"{prefix}{i}"
        if crc16(t.encode()) % NSLOTS == slot:
            return t
        i += 1


def tag_in_slots(slots, prefix="t", start=0, avoid=()):
    """A hash tag whose slot is in the set `slots` (and not in `avoid`)."""
    slots = set(slots)
    i = start
    while True:
        t = f"{prefix}{i}"
        s = crc16(t.encode()) % NSLOTS
        if s in slots and s not in avoid:
            return t
        i += 1


# --------------------------------------------------------------------------------------------


def _dec(v):
    return v.decode() if isinstance(v, bytes) else v


def parse_cluster_nodes(text):
    """CLUSTER NODES -> {node_id: {addr, port, flags, master, slots:set, link}}"""
    out = {}
    for line in _dec(text).splitlines():
        parts = line.split()
        if len(parts) < 8:
            continue
        nid, addr, flags, master = parts[0], parts[1], parts[2].split(","), parts[3]
        hostport = addr.split("@")[0]
        port = int(hostport.rsplit(":", 1)[1]) if ":" in hostport else 0
        slots = set()
        for s in parts[8:]:
            if s.startswith("["):  # migrating/importing marker
                continue
            if "-" in s:
                a, b = s.split("-")
                slots.update(range(int(a), int(b) + 1))
            else:
                slots.add(int(s))
        out[nid] = {"id": nid, "port": port, "flags": flags,
                    "master": None if master == "-" else master, "slots": slots,
                    "link": parts[7], "myself": "myself" in flags}
    return out


def _port_free(port):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((HOST, port))
        except OSError:
            return False
    return True


BUS_OFFSET = 10000           # a node's cluster bus port is its port + 10000
MAX_CLUSTER_PORT = 65535 - BUS_OFFSET
MIN_CLUSTER_PORT = 10000     # below: well-known services
SETUP_TRIES = 3              # cluster set-ups tried, each on fresh ports, before a test fails

_USED_PORTS = set()          # every node port and bus port handed out in this process


def _cluster_port_ranges():
    """Inclusive ranges where neither a port nor its bus port is in the kernel's ephemeral range
    (where port-0 binds, free_port() included, and outgoing connections take theirs); the whole
    MIN..MAX if the ephemeral range leaves no room."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            lo, hi = (int(x) for x in f.read().split()[:2])
    except (OSError, ValueError):
        lo, hi = 32768, 60999
    ranges = []
    if lo > MIN_CLUSTER_PORT + BUS_OFFSET:
        ranges.append((MIN_CLUSTER_PORT, lo - BUS_OFFSET - 1))
    if hi < MAX_CLUSTER_PORT:
        ranges.append((max(hi + 1, MIN_CLUSTER_PORT), MAX_CLUSTER_PORT))
    return ranges or [(MIN_CLUSTER_PORT, MAX_CLUSTER_PORT)]


def cluster_port():
    """A port p <= 55535 for a cluster node (Redis refuses a bus port p + 10000 over 65535):
    random outside the ephemeral range, neither p nor p + 10000 handed out before in this
    process, both free now."""
    rng = random.Random()
    candidates = [p for a, b in _cluster_port_ranges() for p in range(a, b + 1)]
    for _ in range(10000):
        p = rng.choice(candidates)
        if p in _USED_PORTS or p + BUS_OFFSET in _USED_PORTS:
            continue
        _USED_PORTS.update((p, p + BUS_OFFSET))
        if _port_free(p) and _port_free(p + BUS_OFFSET):
            return p
    raise RuntimeError("no free port pair for a cluster node")


class Cluster:
    def __init__(self, masters=3, replicas=1, module_args=("debug-clock", "yes"),
                 node_timeout=3000, extra_args=(), timeout=60):
        """Starts the nodes and creates the cluster. Another process can take a port between
        cluster_port() and the node's bind: when a node exits during start-up, a port is
        answered by another process, or the creation or convergence fails, every node is
        killed and the set-up starts over on fresh ports (SETUP_TRIES in all)."""
        self.nmasters = masters
        self.nreplicas = replicas
        why = []
        for attempt in range(1, SETUP_TRIES + 1):
            self.nodes = []
            try:
                for _ in range(masters * (1 + replicas)):
                    self.nodes.append(H.RedisServer(
                        port=cluster_port(), module_args=module_args,
                        extra_args=["--cluster-enabled", "yes",
                                    "--cluster-config-file", "nodes.conf",
                                    "--cluster-node-timeout", str(node_timeout),
                                    *extra_args]))
                self._check_own_processes()
                self._create(timeout)
                self._ids = {s.port: _dec(s.client().execute_command("CLUSTER", "MYID"))
                             for s in self.nodes}
                return
            except (RuntimeError, AssertionError, redis.RedisError,
                    subprocess.TimeoutExpired) as e:
                self.cleanup()
                msg = f"attempt {attempt}/{SETUP_TRIES}: {e}"
                why.append(msg)
                print(f"cluster set-up failed, starting over on fresh ports: {msg}",
                      file=sys.stderr)
            except BaseException:
                self.cleanup()
                raise
        raise RuntimeError(f"could not set up a cluster in {SETUP_TRIES} attempts:\n"
                           + "\n".join(why))

    def _check_own_processes(self):
        """Every node's port is answered by the process started for it (PING alone would be
        answered by whatever server took the port)."""
        for s in self.nodes:
            c = redis.Redis(host=HOST, port=s.port, socket_timeout=5)
            try:
                pid = c.info("server").get("process_id")
            finally:
                c.close()
            if pid != s.proc.pid:
                raise RuntimeError(f"port {s.port} is answered by process {pid}, "
                                   f"not by the redis-server started on it ({s.proc.pid})")

    # -- creation and waiting
    def _create(self, timeout):
        argv = [REDIS_CLI, "--cluster", "create",
                *[f"{HOST}:{s.port}" for s in self.nodes],
                "--cluster-replicas", str(self.nreplicas), "--cluster-yes"]
        p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
        if p.returncode != 0 or "[OK] All 16384 slots covered" not in p.stdout:
            raise RuntimeError(f"redis-cli --cluster create failed ({p.returncode}):\n"
                               f"{p.stdout[-3000:]}\n{p.stderr[-2000:]}")
        self.wait_ok(timeout)

    def wait_ok(self, timeout=60):
        """Poll until every live node: cluster_state ok, knows all nodes, and all agree on the
        owner of every slot (no migrating/importing left); every replica's link is up."""
        deadline = time.time() + timeout
        last = None
        while time.time() < deadline:
            try:
                last = self._converged()
                if last is True:
                    return
            except (redis.ConnectionError, redis.TimeoutError, redis.ResponseError) as e:
                last = repr(e)
            time.sleep(0.05)
        raise AssertionError(f"cluster did not converge in {timeout}s: {last}")

    def _converged(self):
        views = []
        for s in self.live_nodes():
            c = redis.Redis(host=HOST, port=s.port, socket_timeout=5, decode_responses=True)
            try:
                info = c.execute_command("CLUSTER", "INFO")
                if "cluster_state:ok" not in info:
                    return f"node {s.port}: cluster_state not ok"
                known = int(info.split("cluster_known_nodes:")[1].split()[0])
                if known != len(self.nodes):
                    return f"node {s.port} knows {known} nodes"
                text = c.execute_command("CLUSTER", "NODES")
                if "->-" in text or "-<-" in text:
                    return f"node {s.port} has a slot migrating/importing"
                nodes = parse_cluster_nodes(text)
                if any("fail" in n["flags"] or "fail?" in n["flags"] or
                       "handshake" in n["flags"] for n in nodes.values()
                       if n["port"] in {x.port for x in self.live_nodes()}):
                    return f"node {s.port} sees a live node as failing/handshake"
                owners = tuple(sorted((n["port"], tuple(sorted(n["slots"])))
                                      for n in nodes.values() if n["slots"]))
                live = {x.port for x in self.live_nodes()}
                nrep = sum(1 for n in nodes.values() if "slave" in n["flags"] and n["master"]
                           and n["port"] in live)
                want = len(live) - len(owners)
                if nrep != want:
                    return f"node {s.port} sees {nrep} replicas, expected {want}"
                views.append(owners)
                role = c.info("replication")
                if role["role"] == "slave" and role.get("master_link_status") != "up":
                    return f"replica {s.port}: master link {role.get('master_link_status')}"
            finally:
                c.close()
        if len(set(views)) != 1:
            return "nodes disagree on slot owners"
        covered = sum(len(sl) for _, sl in views[0])
        if covered != NSLOTS:
            return f"only {covered} slots covered"
        return True

    # -- topology (asked of the cluster each time: it changes with failover and resharding)
    def live_nodes(self):
        return [s for s in self.nodes if s.alive()]

    def server(self, port):
        for s in self.nodes:
            if s.port == port:
                return s
        raise KeyError(port)

    def node_id(self, server):
        return self._ids[server.port]

    def by_id(self, nid):
        for s in self.nodes:
            if self._ids[s.port] == nid:
                return s
        raise KeyError(nid)

    def topology(self, via=None):
        via = via or self.live_nodes()[0]
        c = redis.Redis(host=HOST, port=via.port, socket_timeout=5, decode_responses=True)
        try:
            return parse_cluster_nodes(c.execute_command("CLUSTER", "NODES"))
        finally:
            c.close()

    def masters(self):
        """Masters owning slots, sorted by node id (the contract's order)."""
        topo = self.topology()
        return [self.by_id(nid) for nid in sorted(topo)
                if "master" in topo[nid]["flags"] and topo[nid]["slots"]]

    def replicas_of(self, master):
        topo = self.topology()
        mid = self.node_id(master)
        return [self.by_id(n["id"]) for n in topo.values() if n["master"] == mid]

    def slots_of(self, master):
        return set(self.topology()[self.node_id(master)]["slots"])

    def master_of_slot(self, slot):
        for nid, n in self.topology().items():
            if "master" in n["flags"] and slot in n["slots"]:
                return self.by_id(nid)
        raise AssertionError(f"no master owns slot {slot}")

    def master_of_key(self, key):
        return self.master_of_slot(key_slot(key))

    def non_owner_of_key(self, key):
        """A master that does not own the key's slot."""
        owner = self.master_of_key(key)
        return next(m for m in self.masters() if m.port != owner.port)

    def key_on(self, master, fmt="camp:{%s}", prefix="t", avoid_slots=()):
        """A key (fmt % tag) whose slot is served by `master`."""
        return fmt % tag_in_slots(self.slots_of(master), prefix=prefix, avoid=avoid_slots)

    # -- clients
    def client(self, **kw):
        kw.setdefault("decode_responses", True)
        kw.setdefault("socket_timeout", 30)
        return RedisCluster(startup_nodes=[ClusterNode(HOST, s.port) for s in self.live_nodes()],
                            **kw)

    def redis_cli(self, *args, port=None, timeout=30):
        """`redis-cli -c -p PORT args...` -> CompletedProcess (text)."""
        port = port or self.live_nodes()[0].port
        return subprocess.run([REDIS_CLI, "-c", "-h", HOST, "-p", str(port), *map(str, args)],
                              capture_output=True, text=True, timeout=timeout)

    def url(self, server=None):
        server = server or self.live_nodes()[0]
        return f"redis://{HOST}:{server.port}"

    def wait_replicas_synced(self, timeout=30):
        """WAIT on every master until all its replicas acknowledged its current offset."""
        for m in self.masters():
            n = len(self.replicas_of(m))
            if n:
                c = redis.Redis(host=HOST, port=m.port, socket_timeout=timeout + 5)
                try:
                    got = c.execute_command("WAIT", n, int(timeout * 1000))
                    assert got >= n, f"master {m.port}: only {got}/{n} replicas acknowledged"
                finally:
                    c.close()

    # -- checks and cleanup
    def check(self):
        problems = []
        for s in self.nodes:
            try:
                s.check_alive()
            except AssertionError as e:
                problems.append(str(e))
            problems += [f"node {s.port}: {l}" for l in self.bad_log_lines(s)]
        return problems

    @staticmethod
    def bad_log_lines(s):
        try:
            with open(s.logfile, "rb") as f:
                text = f.read().decode("utf-8", "replace")
        except OSError:
            return []
        marks = ("== CRITICAL ==", "REDIS BUG REPORT", "panicked at", "Guru Meditation",
                 "Bad file format")
        return [l[:400] for l in text.splitlines() if any(m in l for m in marks)]

    def cleanup(self):
        for s in self.nodes:
            s.cleanup()


@pytest.fixture
def cluster_factory():
    """cluster_factory(**Cluster kwargs): clusters checked for dead nodes/crash logs after the
    test (the test fails then), and always cleaned up."""
    started = []

    def make(**kw):
        c = Cluster(**kw)
        started.append(c)
        return c

    yield make
    problems = []
    for c in started:
        problems += c.check()
    for c in started:
        c.cleanup()
    if problems:
        pytest.fail("cluster node problems:\n" + "\n\n".join(problems), pytrace=False)


def module_cluster_fixture(**kw):
    """A module-scoped cluster fixture (for tests that do not disturb each other)."""
    @pytest.fixture(scope="module")
    def _cluster():
        c = Cluster(**kw)
        yield c
        problems = c.check()
        c.cleanup()
        if problems:
            pytest.fail("cluster node problems:\n" + "\n\n".join(problems), pytrace=False)
    return _cluster


# --------------------------------------------------------------------------------------------
# drawing under load with REQID retries


RETRYABLE = (redis.ConnectionError, redis.TimeoutError, redis.exceptions.ClusterDownError,
             redis.exceptions.TryAgainError, redis.exceptions.ClusterError,
             redis.exceptions.SlotNotCoveredError, redis.exceptions.MasterDownError)


def draw_retrying(rc, key, user, reqid, deadline_s=60, on_error=None):
    """LOTTERY.DRAW key user REQID reqid, retried with the same REQID on connection/cluster
    errors (and READONLY/LOADING) until it gets a reply: a retry of a draw that already
    happened replays its reply."""
    deadline = time.time() + deadline_s
    while True:
        try:
            return rc.execute_command("LOTTERY.DRAW", key, user, "REQID", reqid)
        except RETRYABLE as e:
            err = e
        except redis.ResponseError as e:
            if not str(e).startswith(("READONLY", "LOADING", "MASTERDOWN")):
                raise
            err = e
        if on_error:
            on_error(err)
        if time.time() > deadline:
            raise AssertionError(f"draw {key} {user} {reqid} kept failing: {err!r}")
        time.sleep(0.02 + random.random() * 0.03)


class DrawLoad:
    """Threads drawing through their own RedisCluster clients, every draw with a unique REQID
    and retried with it on connection/cluster errors (so each request gets exactly one
    outcome). ``pick(rng) -> (key, user)`` chooses what to draw.

    ``replies``: list of (key, user, reqid, reply) for every request, in completion order;
    ``errors``: the retried errors seen; ``count``: replies so far."""

    def __init__(self, cluster, pick, threads=4, name="d"):
        import threading
        self.cluster = cluster
        self.pick = pick
        self.nthreads = threads
        self.name = name
        self.stop_ev = threading.Event()
        self.lock = threading.Lock()
        self.replies = []
        self.errors = []
        self.failures = []
        self.threads = [threading.Thread(target=self._run, args=(i,), daemon=True)
                        for i in range(threads)]

    @property
    def count(self):
        return len(self.replies)

    def _run(self, i):
        rng = random.Random(f"{self.name}-{i}")
        rc = None
        n = 0
        try:
            while not self.stop_ev.is_set():
                if rc is None:
                    try:
                        rc = self.cluster.client()
                    except RETRYABLE as e:
                        self.errors.append(repr(e))
                        time.sleep(0.05)
                        continue
                key, u = self.pick(rng)
                n += 1
                rid = f"{self.name}{i}-{n}"
                rep = draw_retrying(rc, key, u, rid,
                                    on_error=lambda e: self.errors.append(repr(e)))
                with self.lock:
                    self.replies.append((key, u, rid, rep))
        except Exception as e:  # noqa: BLE001 - reported by stop()
            self.failures.append(repr(e))
        finally:
            if rc is not None:
                rc.close()

    def start(self):
        for t in self.threads:
            t.start()
        return self

    def wait_count(self, n, timeout=60):
        deadline = time.time() + timeout
        while time.time() < deadline and self.count < n and not self.failures:
            time.sleep(0.01)
        assert not self.failures, self.failures[:3]
        assert self.count >= n, f"only {self.count} draws in {timeout}s; errors {self.errors[:3]}"

    def stop(self):
        self.stop_ev.set()
        for t in self.threads:
            t.join(90)
        assert not any(t.is_alive() for t in self.threads), "a draw thread hangs"
        assert not self.failures, self.failures[:3]

    def wins(self):
        return [(k, u, rid, rep) for k, u, rid, rep in self.replies if rep[0] == "WIN"]
