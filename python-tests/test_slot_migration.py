"""Atomic slot migration (Valkey 9's CLUSTER MIGRATESLOTS) of live campaigns.

- the module says at load what it found (server, version, whether it declared atomic slot
  migration); on a server with CLUSTER MIGRATESLOTS the command is accepted with the module
  loaded, elsewhere the module does not declare it;
- a campaign's slot moved with no draws running: the campaign and its wins stream arrive
  together, the target's value equals the source's (DEBUG DIGEST-VALUE, stats, the stream),
  the source keeps nothing, and both replicas follow;
- a live campaign's slot moved while clients draw and lottery-writer consumes the stream:
  every draw got one outcome (the server's normal redirection, retried with its REQID), every
  WIN a client saw is in the target's stream once, nothing else is, the counters add up, and
  the writer stored every entry once;
- a sharded campaign's shard (lottery-shards) likewise;
- a migration cancelled before the hand-over leaves everything on the source.

The migration tests run where the server has CLUSTER MIGRATESLOTS (Valkey 9) and are skipped
elsewhere; docs/compatibility.md says what the other servers do.
"""
import os
import re
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time

import pytest

import cluster_helpers as C
import durability_helpers as D
import lottery_helpers as H
from cluster_helpers import cluster_factory  # noqa: F401 (fixture)

WRITER_BIN = os.environ.get("LOTTERY_WRITER", str(H.REPO / "target" / "release" / "lottery-writer"))
SHARDS_BIN = os.environ.get("LOTTERY_SHARDS", str(H.REPO / "target" / "release" / "lottery-shards"))


def _s(v):
    return v.decode() if isinstance(v, bytes) else v


def server_identity(server):
    """("valkey"|"redis", (major, minor, patch)) from INFO server."""
    info = server.client().info("server")
    if info.get("server_name") == "valkey":
        v = info["valkey_version"]
        name = "valkey"
    else:
        v = info["redis_version"]
        name = "redis"
    return name, tuple(int(x) for x in str(v).split(".")[:3])


def has_migrateslots(server):
    rep = server.raw().call("COMMAND", "INFO", "CLUSTER|MIGRATESLOTS")
    return isinstance(rep, list) and rep and rep[0] is not None


def load_line(server):
    with open(server.logfile, "rb") as f:
        lines = [l.decode("utf-8", "replace") for l in f if b"lottery: loaded" in l]
    assert lines, server.log_tail()
    return lines[-1]


def test_load_log_names_the_server_and_what_was_declared(server):
    name, ver = server_identity(server)
    line = load_line(server)
    assert f"server {name} {ver[0]}.{ver[1]}.{ver[2]}" in line, line
    if name == "valkey" and ver >= (9, 0, 0):
        assert "atomic slot migration declared" in line, line
    else:
        assert "atomic slot migration not available" in line, line
    # the module still answers, whatever it found
    r = server.client()
    assert r.execute_command("LOTTERY.CONFIGURE", "c", "PRIZE", "a", 1, 5, "NOTHING", 0) == "OK"
    assert r.execute_command("LOTTERY.DRAW", "c", "u")[0] == "WIN"


# --------------------------------------------------------------------------------------------
# helpers for CLUSTER MIGRATESLOTS


def _migrations(server):
    """CLUSTER GETSLOTMIGRATIONS -> a list of dicts (str keys and values)."""
    out = []
    for m in server.raw().call("CLUSTER", "GETSLOTMIGRATIONS") or []:
        it = [_s(x) if not isinstance(x, list) else x for x in m]
        out.append(dict(zip(it[0::2], it[1::2])))
    return out


def migrate_slot(c, slot, src, dst, timeout=60, stall_target=0.0):
    """CLUSTER MIGRATESLOTS of one slot from src to dst; returns once every master says dst
    owns it and the migration is reported successful. `stall_target`: seconds the target
    spends in DEBUG SLEEP right after the migration starts, so that the source keeps serving
    the slot (and streaming its writes) for that long before the hand-over."""
    rep = src.raw().call("CLUSTER", "MIGRATESLOTS", "SLOTSRANGE", slot, slot,
                         "NODE", c.node_id(dst))
    assert rep == "OK", rep
    if stall_target:
        assert dst.raw().call("DEBUG", "SLEEP", stall_target) == "OK"
    deadline = time.time() + timeout
    while time.time() < deadline:
        states = [m.get("state") for m in _migrations(src)]
        if any(s == "failed" or s == "cancelled" for s in states):
            raise AssertionError(f"migration failed: {_migrations(src)} / {_migrations(dst)}\n"
                                 f"{src.log_tail(20)}\n{dst.log_tail(20)}")
        owners = {c.master_of_slot(slot).port} if states and all(
            s == "success" for s in states) else set()
        if owners == {dst.port}:
            c.wait_ok()
            return
        time.sleep(0.05)
    raise AssertionError(f"slot {slot} not moved in {timeout}s: {_migrations(src)}\n"
                         f"{src.log_tail(20)}\n{dst.log_tail(20)}")


def _snapshot(server, key, users):
    r = server.client()
    return {"digest": D.digest(r, key), "stats": H.stats(r, key),
            "users": {u: H.user(r, key, u) for u in users},
            "xrange": r.xrange(H.default_stream(key)),
            "groups": [(g["name"], g["last-delivered-id"])
                       for g in r.xinfo_groups(H.default_stream(key))]}


@pytest.fixture(scope="module")
def migrateslots_supported():
    """Whether this server has CLUSTER MIGRATESLOTS (asked of one standalone server, once)."""
    s = H.RedisServer()
    try:
        return has_migrateslots(s)
    finally:
        s.cleanup()


@pytest.fixture
def asm_cluster(migrateslots_supported, cluster_factory):
    if not migrateslots_supported:
        pytest.skip("this server has no CLUSTER MIGRATESLOTS (atomic slot migration)")
    return cluster_factory(masters=3, replicas=1)


def test_migrateslots_is_accepted_with_the_module_loaded(asm_cluster):
    """Valkey refuses CLUSTER MIGRATESLOTS for every slot of a node while a loaded module has
    not declared that it handles atomic slot migration: the module declares it, so even a
    slot holding no campaign moves."""
    c = asm_cluster
    a, b = c.masters()[0], c.masters()[1]
    slot = max(c.slots_of(a))
    migrate_slot(c, slot, a, b)
    assert c.master_of_slot(slot).port == b.port


def test_idle_campaign_moves_with_its_stream_and_equal_state(asm_cluster):
    c = asm_cluster
    a, b = c.masters()[0], c.masters()[1]
    key = c.key_on(a, fmt="asm:{%s}")
    stream = H.default_stream(key)
    slot = C.key_slot(key)
    rc = c.client()
    H.configure(rc, key, "PRIZE", "a", 1, 500, "PRIZE", "b", 2, 300, "NOTHING", 2,
                "MAXWINS", 3)
    users = [f"u{i}" for i in range(300)]
    for i in range(1500):
        rc.execute_command("LOTTERY.DRAW", key, users[i % len(users)], "REQID", f"r{i}")
    rc.xgroup_create(stream, "g", id="0")
    rc.xreadgroup("g", "c1", {stream: ">"}, count=7)
    before = _snapshot(a, key, users[:100])
    assert before["stats"]["wins"] == len(before["xrange"]) > 0
    migrate_slot(c, slot, a, b)
    after = _snapshot(b, key, users[:100])
    assert after == before
    assert a.raw().call("CLUSTER", "COUNTKEYSINSLOT", slot) == 0
    assert b.raw().call("CLUSTER", "COUNTKEYSINSLOT", slot) == 2
    # the source redirects to the target, as for any key of a slot it gave away
    rep = a.raw().call("LOTTERY.DRAW", key, "late")
    assert rep == f"MOVED {slot} 127.0.0.1:{b.port}", rep
    # the target's replica holds the same value
    rb = b.client()
    D.wait_acked(rb)
    rep_b = c.replicas_of(b)[0]
    assert D.digest(rep_b.client(), key) == before["digest"]
    assert rep_b.raw().pipeline([("READONLY",), ("XLEN", stream)])[1] == len(before["xrange"])
    # a REQID retry on the new owner replays (the REQID memory moved too), a new draw counts
    assert rc.execute_command("LOTTERY.DRAW", key, users[1499 % len(users)], "REQID", "r1499") \
        is not None
    assert H.stats(rb, key)["draws"] == before["stats"]["draws"]
    out = rc.execute_command("LOTTERY.DRAW", key, "newcomer")
    assert out[0] in ("WIN", "LOSE")
    assert H.stats(rb, key)["draws"] == before["stats"]["draws"] + 1
    # and back again: bit-for-bit
    s1 = _snapshot(b, key, users[:100])
    migrate_slot(c, slot, b, a)
    assert _snapshot(a, key, users[:100]) == s1
    rc.close()


class Writer:
    """lottery-writer consuming one campaign (or a sharded one) into SQLite."""

    def __init__(self, c, dbdir, campaign=None, shards=None):
        self.db = os.path.join(dbdir, "wins.db")
        self.logpath = os.path.join(dbdir, "writer.log")
        self.log = open(self.logpath, "w")
        what = ["--campaign", campaign] if campaign else ["--shards", shards]
        self.proc = subprocess.Popen(
            [WRITER_BIN, "--redis", c.url(), "--cluster", *what,
             "--group", "writers", "--consumer", "w1", "--database", f"sqlite:{self.db}",
             "--block-ms", "200", "--log-every-ms", "0"],
            stdout=self.log, stderr=subprocess.STDOUT)

    def rows(self):
        if not os.path.exists(self.db):
            return []
        con = sqlite3.connect(self.db, timeout=10)
        try:
            return con.execute("select campaign, stream_id from wins").fetchall()
        except sqlite3.OperationalError:
            return []
        finally:
            con.close()

    def wait_rows(self, n, timeout=60):
        deadline = time.time() + timeout
        while time.time() < deadline:
            assert self.proc.poll() is None, f"writer exited {self.proc.returncode}: {self.tail()}"
            if len(self.rows()) >= n:
                return
            time.sleep(0.1)
        raise AssertionError(f"writer stored {len(self.rows())}/{n} rows\n{self.tail()}")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        rc = self.proc.wait(60)
        self.log.close()
        return rc

    def tail(self):
        if not self.log.closed:
            self.log.flush()
        with open(self.logpath) as f:
            return "".join(f.readlines()[-20:])


def _need_tools(*paths):
    for p in paths:
        if not os.path.isfile(p):
            pytest.skip(f"{p} not built (cargo build --release -p lottery-shards -p lottery-writer)")


def _check_live_move(c, keys, load, owner_after, writer, stock):
    """Every WIN a client saw is in its campaign's stream on the owner, once; nothing else
    is; the counters add up; the writer stored every entry once."""
    rc = c.client()
    try:
        streams = {k: rc.xrange(H.default_stream(k)) for k in keys}
        stats = {k: H.stats(rc, k) for k in keys}
    finally:
        rc.close()
    for k, entries in streams.items():
        ids = [e[0] for e in entries]
        assert len(ids) == len(set(ids)), f"{k}: a stream entry twice"
        assert ids == sorted(ids, key=lambda x: tuple(int(p) for p in x.split("-")))
    wins = load.wins()
    seen = {}
    for key, u, rid, rep in wins:
        seen.setdefault(key, []).append(rep[2])
    for k in keys:
        got = [e[0] for e in streams[k]]
        assert sorted(got) == sorted(seen.get(k, [])), \
            f"{k}: stream {len(got)} entries, clients saw {len(seen.get(k, []))} wins"
        for eid, f in streams[k]:
            assert {"user", "prize", "reqid"} <= set(f), f
    by_reply = {(k, rep[2]): (u, rep[1], rid) for k, u, rid, rep in wins}
    for k in keys:
        for eid, f in streams[k]:
            assert (f["user"], f["prize"], f["reqid"]) == by_reply[(k, eid)]
    drew = {}
    for k, _, _, rep in load.replies:
        if rep[0] in ("WIN", "LOSE"):
            drew[k] = drew.get(k, 0) + 1
    for k in keys:
        st = stats[k]
        assert st["draws"] == drew.get(k, 0), (k, st["draws"], drew.get(k, 0))
        assert st["wins"] == len(streams[k])
    for k in keys:
        for pid, _, left, sold in stats[k]["prizes"]:
            assert left + sold == stock[k][pid], (k, pid, left, sold)
    for k in keys:
        assert C.key_slot(k) in c.slots_of(owner_after[k])
    total = sum(len(v) for v in streams.values())
    try:
        writer.wait_rows(total)
    finally:
        rc_w = writer.stop()
    assert rc_w == 0, writer.tail()
    rows = writer.rows()
    assert len(rows) == len(set(rows)) == total, (len(rows), len(set(rows)), total)
    assert sorted(rows) == sorted((k, e[0]) for k, v in streams.items() for e in v)
    return total


def test_live_campaign_migrates_under_draws_with_a_writer(asm_cluster):
    _need_tools(WRITER_BIN)
    c = asm_cluster
    a, b = c.masters()[0], c.masters()[1]
    key = c.key_on(a, fmt="live:{%s}")
    slot = C.key_slot(key)
    stock = {key: {"a": 20000, "b": 20000}}
    rc = c.client()
    H.configure(rc, key, "PRIZE", "a", 1, 20000, "PRIZE", "b", 1, 20000, "NOTHING", 2)
    rc.close()
    users = [f"u{i}" for i in range(5000)]
    writer = Writer(c, tempfile.mkdtemp(prefix="lottery-asm-"), campaign=key)
    load = C.DrawLoad(c, lambda rng: (key, rng.choice(users)), threads=4, name="m").start()
    during = []
    try:
        load.wait_count(500)
        for src, dst in ((a, b), (b, a)):     # there, and back, under load
            at = load.count
            migrate_slot(c, slot, src, dst, stall_target=1)
            during.append(load.count - at)
            at = load.count
            load.wait_count(at + 500)
    finally:
        load.stop()
    # draws were served while each migration ran (by the source, then the target)
    assert all(n >= 20 for n in during), during
    assert a.raw().call("CLUSTER", "COUNTKEYSINSLOT", slot) == 2
    assert b.raw().call("CLUSTER", "COUNTKEYSINSLOT", slot) == 0
    total = _check_live_move(c, [key], load, {key: a}, writer, stock)
    # the owner's replica equals it
    ra = a.client()
    D.wait_acked(ra)
    assert D.digest(c.replicas_of(a)[0].client(), key) == D.digest(ra, key)
    print(f"\nlive migration: {load.count} draws ({during} while migrating), {total} wins, "
          f"{len(load.errors)} retried errors ({sorted(set(e.split('(')[0] for e in load.errors))})")


def test_sharded_campaign_shard_migrates_under_draws(asm_cluster):
    """One shard of a sharded campaign (lottery-shards) moved to another master while clients
    draw on every shard and lottery-writer --shards consumes them all."""
    _need_tools(WRITER_BIN, SHARDS_BIN)
    sys.path.insert(0, str(H.REPO / "routing"))
    import lottery_route as R
    c = asm_cluster
    name = "asmflash"
    p = subprocess.run([SHARDS_BIN, "--cluster", c.url(), "create", name, "--shards", "3", "--",
                        "PRIZE", "a", "1", "9000", "PRIZE", "b", "1", "9000", "NOTHING", "2"],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr
    rc = c.client()
    desc = R.load_descriptor(rc, name)
    rc.close()
    keys = desc["keys"]
    stock = {k: {"a": 3000, "b": 3000} for k in keys}
    shard = keys[0]
    src = c.master_of_key(shard)
    dst = next(m for m in c.masters() if m.port != src.port)
    slot = C.key_slot(shard)
    users = [f"user:{i}" for i in range(3000)]
    writer = Writer(c, tempfile.mkdtemp(prefix="lottery-asm-shards-"), shards=name)
    load = C.DrawLoad(c, lambda rng: (lambda u: (R.shard_key(desc, u), u))(rng.choice(users)),
                      threads=4, name="s").start()
    try:
        load.wait_count(600)
        at = load.count
        migrate_slot(c, slot, src, dst, stall_target=1)
        during = load.count - at
        at = load.count
        load.wait_count(at + 600)
    finally:
        load.stop()
    assert during >= 20, during
    owners = {k: c.master_of_key(k) for k in keys}
    assert owners[shard].port == dst.port
    assert src.raw().call("CLUSTER", "COUNTKEYSINSLOT", slot) == 0
    total = _check_live_move(c, keys, load, owners, writer, stock)
    p = subprocess.run([SHARDS_BIN, "--cluster", c.url(), "check", name],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr
    print(f"\nshard migration: {load.count} draws ({during} while migrating), {total} wins, {len(load.errors)} retried errors")


def test_cancelled_migration_leaves_the_campaign_whole_on_the_source(asm_cluster):
    """A migration cancelled on the source before the target took the slot (the target is
    in DEBUG SLEEP, so the hand-over cannot have happened): the source keeps the slot and
    every draw made meanwhile, the target ends with no key of the slot, the stream is whole
    and the writer stored it once."""
    import threading
    c = asm_cluster
    a, b = c.masters()[0], c.masters()[1]
    key = c.key_on(a, fmt="cancel:{%s}")
    slot = C.key_slot(key)
    stock = {key: {"a": 20000}}
    rc = c.client()
    H.configure(rc, key, "PRIZE", "a", 1, 20000, "NOTHING", 1)
    rc.close()
    users = [f"u{i}" for i in range(4000)]
    writer = Writer(c, tempfile.mkdtemp(prefix="lottery-asm-cancel-"), campaign=key)
    load = C.DrawLoad(c, lambda rng: (key, rng.choice(users)), threads=3, name="x").start()
    try:
        load.wait_count(300)
        sleeper = threading.Thread(target=lambda: b.raw().call("DEBUG", "SLEEP", 1.5))
        sleeper.start()
        time.sleep(0.2)
        rep = a.raw().call("CLUSTER", "MIGRATESLOTS", "SLOTSRANGE", slot, slot,
                           "NODE", c.node_id(b))
        assert rep == "OK", rep
        time.sleep(0.3)
        assert a.raw().call("CLUSTER", "CANCELSLOTMIGRATIONS") == "OK"
        sleeper.join(10)
        at = load.count
        load.wait_count(at + 500)
    finally:
        load.stop()
    # the target holds nothing of a slot it never took
    deadline = time.time() + 20
    while time.time() < deadline and b.raw().call("CLUSTER", "COUNTKEYSINSLOT", slot) != 0:
        time.sleep(0.1)
    assert b.raw().call("CLUSTER", "COUNTKEYSINSLOT", slot) == 0
    assert c.master_of_slot(slot).port == a.port
    assert a.raw().call("CLUSTER", "COUNTKEYSINSLOT", slot) == 2
    states = [m.get("state") for m in _migrations(a)]
    assert states and "success" not in states, _migrations(a)
    _check_live_move(c, [key], load, {key: a}, writer, stock)
    ra = a.client()
    D.wait_acked(ra)
    assert D.digest(c.replicas_of(a)[0].client(), key) == D.digest(ra, key)
    print(f"\ncancelled migration: states {states}, {load.count} draws")
