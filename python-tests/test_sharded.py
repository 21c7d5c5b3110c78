"""Sharded campaigns (lottery-shards + lottery-writer --cluster --shards) on a real
3-master/3-replica cluster with the module on every node.

- lottery-shards create/describe/route/stats/pause/resume/restock/check against the layout
  in docs/sharding.md: shard keys on the masters it names, stock split
  S/N + (1 if i < S%N), routing equal to routing/lottery_route.py;
- many clients drawing concurrently on a sharded campaign until it sells out: total wins ==
  total stock, every user's wins <= MAXWINS, every win a client saw in its shard's stream, and
  lottery-writer --cluster --shards persisting every stream entry and every drain;
- rebalancing under load with the mover crashing after OUT and after IN (--crash-after) and
  kill -9 of a looping `rebalance --every-ms`, then rerun: `check` conserved at every step, and
  with demand skewed to one shard the campaign still sells out completely;
- the campaign rules of docs/rules.md on a sharded campaign: `codes add` / `codes count`, a code
  per win from the user's shard, the writer's `code` column, the new CONFIGURE options split or
  passed through. Skipped, saying so, while the servers' module has no code pools or rules.

Needs target/release/lottery-shards and target/release/lottery-writer:
    cargo build --release -p lottery-shards -p lottery-writer
"""
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time

import pytest
import redis

import cluster_helpers as C
import lottery_helpers as H

sys.path.insert(0, str(H.REPO / "routing"))
import lottery_route as R  # noqa: E402

SHARDS_BIN = os.environ.get("LOTTERY_SHARDS", str(H.REPO / "target" / "release" / "lottery-shards"))
WRITER_BIN = os.environ.get("LOTTERY_WRITER", str(H.REPO / "target" / "release" / "lottery-writer"))
BUILD = "cargo build --release -p lottery-shards -p lottery-writer"

if not (os.path.isfile(SHARDS_BIN) and os.path.isfile(WRITER_BIN)):
    pytest.skip(f"lottery-shards / lottery-writer not built ({SHARDS_BIN}, {WRITER_BIN}): "
                f"run `{BUILD}`", allow_module_level=True)

cl = C.module_cluster_fixture()


def shards(cl, *args, ok=True, timeout=60):
    p = subprocess.run([SHARDS_BIN, "--cluster", cl.url(), *map(str, args)],
                       capture_output=True, text=True, timeout=timeout)
    if ok is True:
        assert p.returncode == 0, f"lottery-shards {args} -> {p.returncode}\n{p.stdout}\n{p.stderr}"
    elif ok is not None:
        assert p.returncode == ok, f"lottery-shards {args} -> {p.returncode} (want {ok})\n" \
                                   f"{p.stdout}\n{p.stderr}"
    return p


def check_json(cl, name):
    p = shards(cl, "check", name, "--json", ok=None)
    d = json.loads(p.stdout)
    assert p.returncode == (0 if d["ok"] else 1), (p.returncode, d)
    return d


def stats_json(cl, name):
    return json.loads(shards(cl, "stats", name, "--json").stdout)


def shard_stats(cl, desc):
    rc = cl.client()
    try:
        return [H.stats(rc, k) for k in desc["keys"]]
    finally:
        rc.close()


def split(total, n):
    return [total // n + (1 if i < total % n else 0) for i in range(n)]


def create(cl, name, n, *opts):
    p = shards(cl, "create", name, "--shards", n, "--", *opts)
    rc = cl.client()
    try:
        desc = R.load_descriptor(rc, name)
    finally:
        rc.close()
    # "shard <i> <key> <master host:port>", key on the master the contract names
    lines = [l.split() for l in p.stdout.splitlines() if l.startswith("shard ")]
    assert [int(l[1]) for l in lines] == list(range(n)), p.stdout
    masters = cl.masters()                       # sorted by node id
    for i, (_, _, key, node) in enumerate(lines):
        assert key == desc["keys"][i]
        assert key in (f"{{{name}.{i}}}",) or key.startswith(f"{{{name}.{i}.")
        owner = cl.master_of_key(key)
        assert node == f"127.0.0.1:{owner.port}", (i, key, node, owner.port)
        assert owner.port == masters[i % len(masters)].port, (i, key)
        if key != f"{{{name}.{i}}}":          # the first k that lands on the right master
            k = int(key[len(name) + 4:-1])
            for j in [None] + list(range(1, k)):
                cand = f"{{{name}.{i}}}" if j is None else f"{{{name}.{i}.{j}}}"
                assert cl.master_of_key(cand).port != owner.port, cand
    return desc


# --------------------------------------------------------------------------------------------


def test_tool_basics(cl):
    name = "basics"
    desc = create(cl, name, 4, "PRIZE", "gold", 1, 10, "PRIZE", "pts", 1, "INF",
                  "NOTHING", 1, "DAILY", 3)
    rc = cl.client()
    try:
        raw = rc.hgetall(R.descriptor_key(name))
        assert raw["format"] == "1" and raw["name"] == name and raw["shards"] == "4"
        assert raw["route"] == R.ROUTE_NAME and int(raw["created_ms"]) > 0
        assert raw["stock:gold"] == "10" and raw["stock:pts"].upper() == "INF"
        described = dict(l.split(" = ", 1) for l in
                         shards(cl, "describe", name).stdout.splitlines() if " = " in l)
        assert {k: described.get(k) for k in raw} == raw
        # stock split 3,3,2,2; INF stays INF
        for i, st in enumerate(shard_stats(cl, desc)):
            p = {x[0]: x for x in st["prizes"]}
            assert p["gold"][2] == split(10, 4)[i] and p["pts"][2] == -1
            assert st["daily"] == 3
        # routing: the tool, the Python helper and the descriptor agree
        for u in [f"user:{i}" for i in range(40)] + ["", "\u62bd\u5956"]:
            out = shards(cl, "route", name, u).stdout.split()
            i = R.shard_index(u, 4)
            assert out == [str(i), desc["keys"][i]], (u, out)
        # pause / resume reach every shard
        shards(cl, "pause", name)
        assert all(s["state"] == "paused" for s in shard_stats(cl, desc))
        assert rc.execute_command("LOTTERY.DRAW", R.shard_key(desc, "x"), "x")[0] == "PAUSED"
        shards(cl, "resume", name)
        assert all(s["state"] == "active" for s in shard_stats(cl, desc))
        # restock split across shards; the descriptor counts what was put in
        shards(cl, "restock", name, "gold", 6)
        got = [{x[0]: x for x in s["prizes"]}["gold"][2] for s in shard_stats(cl, desc)]
        assert got == [a + b for a, b in zip(split(10, 4), split(6, 4))], got
        assert int(rc.hget(R.descriptor_key(name), "stock:gold")) == 16
        d = check_json(cl, name)
        assert d["ok"] and d["pending"] == 0
        assert d["prizes"]["gold"] == {"total": 16, "remaining": 16, "sold": 0, "in_flight": 0}
        # combined stats
        for u in [f"s{i}" for i in range(30)]:
            rc.execute_command("LOTTERY.DRAW", R.shard_key(desc, u), u)
        sj = stats_json(cl, name)
        per = shard_stats(cl, desc)
        assert [s["key"] for s in sj["shards"]] == desc["keys"]
        assert sj["draws"] == sum(s["draws"] for s in per) == 30
        assert sj["wins"] == sum(s["wins"] for s in per)
        assert sj["prizes"]["gold"]["total"] == 16
        assert sj["prizes"]["gold"]["remaining"] + sj["prizes"]["gold"]["sold"] == 16
        assert sj["prizes"]["pts"]["remaining"] == -1
        assert check_json(cl, name)["ok"]
        # errors: exists already, no such campaign, cluster unreachable
        shards(cl, "create", name, "--shards", 2, "--", "PRIZE", "a", 1, 1, ok=3)
        shards(cl, "check", "no-such-campaign", ok=3)
        p = subprocess.run([SHARDS_BIN, "--cluster", f"redis://127.0.0.1:{C.cluster_port()}",
                            "describe", name], capture_output=True, text=True, timeout=60)
        assert p.returncode == 2, (p.returncode, p.stdout, p.stderr)
    finally:
        rc.close()


# --------------------------------------------------------------------------------------------


class Writer:
    def __init__(self, cl, name, dbdir):
        self.db = os.path.join(dbdir, "wins.db")
        self.logpath = os.path.join(dbdir, "writer.log")
        self.log = open(self.logpath, "w")
        self.proc = subprocess.Popen(
            [WRITER_BIN, "--redis", cl.url(), "--cluster", "--shards", name,
             "--group", "writers", "--consumer", "w1", "--database", f"sqlite:{self.db}",
             "--drain-every-ms", "200", "--block-ms", "200", "--log-every-ms", "0"],
            stdout=self.log, stderr=subprocess.STDOUT)

    def rows(self):
        if not os.path.exists(self.db):
            return []
        con = sqlite3.connect(self.db, timeout=10)
        try:
            return con.execute("select campaign, stream_id, user_id, prize, reqid from wins"
                               ).fetchall()
        except sqlite3.OperationalError:
            return []
        finally:
            con.close()

    def drains(self):
        con = sqlite3.connect(self.db, timeout=10)
        try:
            return con.execute("select campaign, prize, sum(sold) from stock_drains "
                               "group by campaign, prize").fetchall()
        finally:
            con.close()

    def wait_rows(self, n, timeout=60):
        deadline = time.time() + timeout
        while time.time() < deadline:
            assert self.proc.poll() is None, f"writer exited {self.proc.returncode}: " + \
                self.tail()
            if len(self.rows()) >= n:
                return
            time.sleep(0.1)
        raise AssertionError(f"writer stored {len(self.rows())}/{n} rows in {timeout}s\n"
                             + self.tail())

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        rc = self.proc.wait(60)
        self.log.close()
        return rc

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def tail(self):
        if not self.log.closed:
            self.log.flush()
        with open(self.logpath) as f:
            return "".join(f.readlines()[-20:])


def _totals(sts, prize):
    p = [{x[0]: x for x in s["prizes"]}[prize] for s in sts]
    return sum(x[2] for x in p), sum(x[3] for x in p)


def _wait_sold_out(cl, desc, prizes, load, timeout=90):
    deadline = time.time() + timeout
    while time.time() < deadline:
        assert not load.failures, load.failures[:3]
        sts = shard_stats(cl, desc)
        if all(_totals(sts, p)[0] == 0 for p in prizes):
            return sts
        time.sleep(0.2)
    raise AssertionError(f"not sold out in {timeout}s: "
                         f"{[_totals(shard_stats(cl, desc), p) for p in prizes]}")


def test_sharded_concurrent_draws_sell_out_and_writer_persists(cl):
    name = "flash"
    stock = {"a": 900, "b": 600}
    maxwins = 2
    n = 6
    desc = create(cl, name, n, "PRIZE", "a", 1, stock["a"], "PRIZE", "b", 1, stock["b"],
                  "NOTHING", 3, "MAXWINS", maxwins)
    for i, st in enumerate(shard_stats(cl, desc)):
        p = {x[0]: x for x in st["prizes"]}
        assert (p["a"][2], p["b"][2]) == (split(stock["a"], n)[i], split(stock["b"], n)[i])
    users = [f"user:{i}" for i in range(2500)]
    tmp = tempfile.mkdtemp(prefix="lottery-sharded-")
    writer = Writer(cl, name, tmp)
    load = C.DrawLoad(cl, lambda rng: (lambda u: (R.shard_key(desc, u), u))(rng.choice(users)),
                      threads=8, name="f").start()
    try:
        sts = _wait_sold_out(cl, desc, stock, load)
    finally:
        load.stop()
    sts = shard_stats(cl, desc)
    # sold out exactly: total wins == total stock, per prize and per shard
    assert sum(s["wins"] for s in sts) == sum(stock.values())
    for p, total in stock.items():
        assert _totals(sts, p) == (0, total)
    for i, s in enumerate(sts):
        pr = {x[0]: x for x in s["prizes"]}
        assert (pr["a"][3], pr["b"][3]) == (split(stock["a"], n)[i], split(stock["b"], n)[i])
    # every WIN a client saw is in its own shard's stream, with its fields; nothing else is
    rc = cl.client()
    try:
        streams = {k: {eid: f for eid, f in rc.xrange(H.default_stream(k))} for k in desc["keys"]}
    finally:
        rc.close()
    wins = load.wins()
    assert len(wins) == sum(stock.values()) == sum(len(v) for v in streams.values())
    per_user = {}
    for key, u, rid, rep in wins:
        assert key == R.shard_key(desc, u)
        f = streams[key].get(rep[2])
        assert f is not None, (key, u, rep)
        assert (f["user"], f["prize"], f["reqid"]) == (u, rep[1], rid)
        per_user[u] = per_user.get(u, 0) + 1
    assert max(per_user.values()) <= maxwins
    drew = sum(1 for *_, rep in load.replies if rep[0] in ("WIN", "LOSE"))
    assert sum(s["draws"] for s in sts) == drew
    d = check_json(cl, name)
    assert d["ok"] and all(d["prizes"][p]["remaining"] == 0 and d["prizes"][p]["sold"] == t
                           for p, t in stock.items()), d
    sj = stats_json(cl, name)
    assert sj["wins"] == sum(stock.values()) and sj["draws"] == drew
    # the writer stores every entry of every shard's stream, once, under the shard key
    try:
        writer.wait_rows(sum(stock.values()))
    finally:
        rc_w = writer.stop()
    assert rc_w == 0, writer.tail()
    rows = writer.rows()
    assert sorted((c, s) for c, s, *_ in rows) == \
        sorted((k, eid) for k, v in streams.items() for eid in v)
    for c, s, u, p, reqid in rows:
        f = streams[c][s]
        assert (u.decode() if isinstance(u, bytes) else u, p) == (f["user"], f["prize"])
    # its drains (a last one at SIGTERM) add up to what each shard sold
    drained = {(c, p): n for c, p, n in writer.drains()}
    for k, s in zip(desc["keys"], sts):
        for pid, _, _, sold in s["prizes"]:
            assert drained.get((k, pid), 0) == sold, (k, pid, drained)
    print(f"\nsharded: {load.count} draws by 8 clients, {len(wins)} wins, "
          f"{len(per_user)} winners, {len(load.errors)} retried errors")


# --------------------------------------------------------------------------------------------


def _in_flight_ok(cl, name, total):
    d = check_json(cl, name)
    assert d["ok"], d
    p = d["prizes"]["a"]
    assert p["total"] == total and p["remaining"] + p["sold"] + p["in_flight"] == total, d
    return d


def test_rebalance_under_load_with_crashes_sells_out(cl):
    name = "skew"
    total = 240
    n = 3
    desc = create(cl, name, n, "PRIZE", "a", 1, total, "NOTHING", 1, "MAXWINS", 1)
    # users of shard 0 do most of the drawing: it runs dry long before the others
    by_shard = {i: [] for i in range(n)}
    i = 0
    while min(len(v) for v in by_shard.values()) < 600:
        u = f"sk{i}"
        by_shard[R.shard_index(u, n)].append(u)
        i += 1

    def pick(rng):
        s = 0 if rng.random() < 0.9 else rng.randrange(1, n)
        u = rng.choice(by_shard[s])
        return desc["keys"][s], u

    load = C.DrawLoad(cl, pick, threads=4, name="k").start()
    looper = None
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            left = [{x[0]: x for x in s["prizes"]}["a"][2] for s in shard_stats(cl, desc)]
            if left[0] == 0:
                break
            time.sleep(0.1)
        assert left[0] == 0 and min(left[1:]) > 0, left
        # the mover dies right after OUT: the units are in flight, still conserved
        p = shards(cl, "rebalance", name, "--crash-after", "out", ok=None)
        assert p.returncode not in (0, 1, 2, 3), (p.returncode, p.stdout, p.stderr)
        d = _in_flight_ok(cl, name, total)
        assert d["pending"] == 1 and d["prizes"]["a"]["in_flight"] > 0, d
        # ... and right after IN (first finishing the pending one): applied, not settled
        p = shards(cl, "rebalance", name, "--crash-after", "in", ok=None)
        assert p.returncode not in (0, 1, 2, 3), (p.returncode, p.stdout, p.stderr)
        d = _in_flight_ok(cl, name, total)
        assert d["pending"] == 1 and d["prizes"]["a"]["in_flight"] == 0, d
        # a looping mover killed with SIGKILL mid-run, then restarted
        for _ in range(2):
            looper = subprocess.Popen([SHARDS_BIN, "--cluster", cl.url(), "rebalance", name,
                                       "--every-ms", "20", "--min-move", "1"],
                                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            t0 = time.time()
            while time.time() - t0 < 1.0 and looper.poll() is None:
                time.sleep(0.05)
            assert looper.poll() is None, looper.communicate()[0]
            looper.kill()
            looper.wait(10)
            looper = None
            _in_flight_ok(cl, name, total)
        shards(cl, "rebalance", name, "--min-move", "1")        # finishes what was pending
        d = _in_flight_ok(cl, name, total)
        assert d["pending"] == 0
        # keep moving stock while the load lasts: the campaign sells out completely
        looper = subprocess.Popen([SHARDS_BIN, "--cluster", cl.url(), "rebalance", name,
                                   "--every-ms", "50", "--min-move", "1"],
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        _wait_sold_out(cl, desc, ["a"], load, timeout=90)
        looper.send_signal(signal.SIGTERM)
        out = looper.communicate(timeout=30)[0]
        assert looper.returncode == 0, out[-2000:]
        looper = None
    finally:
        load.stop()
        if looper is not None:
            looper.kill()
            looper.wait(10)
    shards(cl, "rebalance", name, "--min-move", "1")
    d = _in_flight_ok(cl, name, total)
    assert d["pending"] == 0 and d["prizes"]["a"]["sold"] == total
    sts = shard_stats(cl, desc)
    assert sum(s["wins"] for s in sts) == total == len(load.wins())
    # moved units were sold on shards that were not their own
    sold = [{x[0]: x for x in s["prizes"]}["a"][3] for s in sts]
    assert sold[0] > split(total, n)[0], sold
    # the transfer records: every OUT settled, every OUT has its IN on the peer
    rc = cl.client()
    try:
        outs, ins = {}, {}
        for k in desc["keys"]:
            for rec in rc.execute_command("LOTTERY.TRANSFER", k, "LIST"):
                rid, kind, prize, cnt, peer, state = rec
                (outs if kind == "OUT" else ins)[rid] = (k, peer, cnt, state)
        assert outs and all(v[3] == "SETTLED" for v in outs.values()), outs
        for rid, (k, peer, cnt, _) in outs.items():
            if cnt:
                assert rid in ins and ins[rid][0] == peer and ins[rid][2] == cnt, (rid, ins)
        assert set(ins) <= set(outs)
        per_user = {}
        for _, u, _, _ in load.wins():
            per_user[u] = per_user.get(u, 0) + 1
        assert max(per_user.values()) == 1
    finally:
        rc.close()
    print(f"\nrebalance: {load.count} draws, sold per shard {sold}, {len(outs)} transfers")


# --------------------------------------------------------------------------------------------
# The mover lease: `rebalance` holds lottery:shards:NAME:mover (its run id, PX lease) so that
# `configure`/`restock` refuse to run under it (exit 3) unless --force.


def lease_key(name):
    return R.descriptor_key(name) + ":mover"


def _wait_for(cond, timeout, what):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = cond()
        if v:
            return v
        time.sleep(0.05)
    raise AssertionError(f"{what}: not within {timeout}s")


def _refused_by(p, holder):
    assert p.returncode == 3, (p.returncode, p.stdout, p.stderr)
    assert f"a rebalance is running (run {holder}, lease " in p.stderr, p.stderr
    assert "ms left): stop it first, or pass --force" in p.stderr, p.stderr


def test_lease_refuses_configure_and_restock_under_a_looping_mover(cl):
    name = "leaseloop"
    create(cl, name, 3, "PRIZE", "a", 1, 90, "NOTHING", 1)
    rc = cl.client()
    lk = lease_key(name)
    looper = None
    try:
        assert not rc.exists(lk)
        looper = subprocess.Popen([SHARDS_BIN, "--cluster", cl.url(), "rebalance", name,
                                   "--every-ms", "100"],
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        run = _wait_for(lambda: rc.get(lk), 10, "the mover takes its lease")
        assert 0 < rc.pttl(lk) <= 10000                       # max(3 * 100, 10000)
        for args in (["configure", name, "--", "PRIZE", "a", 1, 50, "NOTHING", 1],
                     ["restock", name, "a", 3]):
            _refused_by(shards(cl, *args, ok=None), run)
        assert rc.hget(R.descriptor_key(name), "stock:a") == "90"
        # --force: runs, says so, and leaves the mover's lease alone
        p = shards(cl, "restock", name, "a", 3, "--force")
        assert f"warning: a rebalance is running (run {run}," in p.stderr, p.stderr
        p = shards(cl, "configure", name, "--force", "--", "PRIZE", "a", 1, 99, "NOTHING", 1)
        assert "going on (--force)" in p.stderr, p.stderr
        assert rc.hget(R.descriptor_key(name), "stock:a") == "99"
        assert rc.get(lk) == run
        # someone else's lease: the mover warns, does not overwrite it, takes it back once gone
        rc.set(lk, "intruder", px=700)
        time.sleep(0.4)
        assert rc.get(lk) == "intruder"
        _wait_for(lambda: rc.get(lk) == run, 5, "the mover takes its expired lease back")
        # SIGTERM: the loop stops and releases its lease
        looper.send_signal(signal.SIGTERM)
        out = looper.communicate(timeout=30)[0]
        assert looper.returncode == 0, out[-2000:]
        looper = None
        assert "is held by intruder" in out and "going on" in out, out[-2000:]
        assert not rc.exists(lk)
        shards(cl, "configure", name, "--", "PRIZE", "a", 1, 60, "NOTHING", 1)
        shards(cl, "restock", name, "a", 6)
        assert rc.hget(R.descriptor_key(name), "stock:a") == "66"
        assert not rc.exists(lk)                              # theirs, released at the end
        assert check_json(cl, name)["ok"]
        # a campaign named NAME:mover would have its descriptor on NAME's lease key
        shards(cl, "create", f"{name}:mover", "--shards", 1, "--", "PRIZE", "a", 1, 1, ok=1)
    finally:
        if looper is not None:
            looper.kill()
            looper.wait(10)
        rc.close()


def test_lease_of_a_crashed_mover(cl):
    name = "leasecrash"
    desc = create(cl, name, 3, "PRIZE", "a", 1, 30, "NOTHING", 1)
    rc = cl.client()
    lk = lease_key(name)
    try:
        def skew():       # shard 0 gets 30 more: something to move (the descriptor counts it)
            rc.execute_command("LOTTERY.RESTOCK", desc["keys"][0], "a", 30)
            rc.hincrby(R.descriptor_key(name), "stock:a", 30)

        skew()
        p = shards(cl, "rebalance", name, "--crash-after", "out", "--lease-ms", 60000, ok=None)
        assert p.returncode not in (0, 1, 2, 3), (p.returncode, p.stdout, p.stderr)
        run = rc.get(lk)
        assert run and f"transfer {run}.1" in p.stderr, (run, p.stderr)
        assert rc.pttl(lk) > 50000
        _refused_by(shards(cl, "configure", name, "--", "PRIZE", "a", 1, 30, ok=None), run)
        _refused_by(shards(cl, "restock", name, "a", 1, ok=None), run)
        # a new mover takes over at once, finishes the crashed one's transfer, releases
        t0 = time.time()
        p = shards(cl, "rebalance", name)
        assert time.time() - t0 < 5
        assert f"taking over the mover lease of run {run}" in p.stderr, p.stderr
        assert f"recovered {run}.1 " in p.stdout, p.stdout
        assert not rc.exists(lk)
        assert check_json(cl, name)["pending"] == 0
        # a crashed mover's lease (short here) blocks configure until it expires
        skew()
        p = shards(cl, "rebalance", name, "--crash-after", "out", "--lease-ms", 1500, ok=None)
        assert p.returncode not in (0, 1, 2, 3), (p.returncode, p.stdout, p.stderr)
        run = rc.get(lk)
        _refused_by(shards(cl, "configure", name, "--", "PRIZE", "a", 1, 30, ok=None), run)
        _wait_for(lambda: not rc.exists(lk), 5, "the crashed mover's lease expires")
        p = shards(cl, "configure", name, "--", "PRIZE", "a", 1, 30)
        assert f"recovered {run}.1 " in p.stdout, p.stdout      # pending transfer first
        d = check_json(cl, name)
        assert d["pending"] == 0 and d["prizes"]["a"]["total"] == 30, d
    finally:
        rc.close()


def test_lease_mover_waits_for_configure(cl):
    name = "leasewait"
    create(cl, name, 2, "PRIZE", "a", 1, 10, "NOTHING", 1)
    rc = cl.client()
    lk = lease_key(name)
    try:
        # a configure (or restock) at work holds the lease: a starting mover waits for it
        rc.set(lk, "configure-424242", px=800)
        t0 = time.time()
        p = shards(cl, "rebalance", name)
        assert time.time() - t0 >= 0.6, p.stderr
        assert "waiting for configure-424242" in p.stderr, p.stderr
        assert not rc.exists(lk)
        # and a second configure refuses while one holds it
        rc.set(lk, "restock-77", px=5000)
        p = shards(cl, "configure", name, "--", "PRIZE", "a", 1, 10, ok=3)
        assert "another configure or restock is running (restock-77, lease " in p.stderr, p.stderr
        assert rc.get(lk) == "restock-77"
        rc.delete(lk)
    finally:
        rc.close()


# -------------------------------------------------------------------------- campaign rules


def _module_supports(cl, *opts):
    """Whether the servers' module takes these LOTTERY.CONFIGURE options (the campaign rules
    of docs/rules.md, code pools)."""
    rc = cl.client()
    key = "{probe.rules}"
    try:
        rc.execute_command("LOTTERY.CONFIGURE", key, *opts)
        return True
    except redis.ResponseError:
        return False
    finally:
        rc.delete(key)
        rc.delete(key + ":wins")
        rc.close()


def _raw_stats(cl, key):
    """LOTTERY.STATS as a dict, whatever fields the module has."""
    rc = cl.client()
    try:
        flat = rc.execute_command("LOTTERY.STATS", key)
    finally:
        rc.close()
    d = dict(zip([str(k) for k in flat[0::2]], flat[1::2]))
    d["prizes"] = {p[0]: list(p) for p in d["prizes"]}
    return d


def test_codes_add_refused_before_anything_is_sent(cl, tmp_path):
    """Works with any module: what `codes add` checks before it adds anything, and the lease
    it holds (codes-<pid>) keeping a mover waiting and a configure out."""
    name = "codesrefused"
    create(cl, name, 2, "PRIZE", "a", 1, 10, "NOTHING", 1)
    f = tmp_path / "codes.txt"
    f.write_bytes(b"ok\n" + b"x" * 513 + b"\n")
    p = shards(cl, "codes", "add", name, "a", str(f), ok=1)
    assert "line 2: a code of 513 bytes" in p.stderr, p.stderr
    p = shards(cl, "codes", "add", name, "nope", str(f), ok=3)
    assert "no such prize 'nope'" in p.stderr, p.stderr
    p = shards(cl, "codes", "count", name, "nope", ok=3)
    f.write_bytes(b"c1\n")
    # "a" is a counted prize (or the module has no code pools): refused by the server, nothing
    # added, the descriptor untouched
    p = shards(cl, "codes", "add", name, "a", str(f), ok=3)
    assert "shard 0" in p.stderr, p.stderr
    rc = cl.client()
    lk = lease_key(name)
    try:
        assert rc.hget(R.descriptor_key(name), "stock:a") == "10"
        rc.set(lk, "codes-4242", px=800)
        t0 = time.time()
        p = shards(cl, "rebalance", name)
        assert time.time() - t0 >= 0.6, p.stderr
        assert "waiting for codes-4242" in p.stderr, p.stderr
        rc.set(lk, "codes-4243", px=5000)
        p = shards(cl, "configure", name, "--", "PRIZE", "a", 1, 10, ok=3)
        assert "a codes add is running (codes-4243, lease " in p.stderr, p.stderr
        p = shards(cl, "codes", "add", name, "a", str(f), ok=3)
        assert "a codes add is running (codes-4243, lease " in p.stderr, p.stderr
        assert rc.get(lk) == "codes-4243"
        rc.delete(lk)
    finally:
        rc.close()


def test_codes_on_a_sharded_campaign(cl, tmp_path):
    """Needs the module's code pools (PRIZE ... CODES, LOTTERY.CODES, the 6th DRAW element, the
    stream's `code` field): codes add/count, a code per win from the user's own shard, never
    twice, `check` counting codes as units, and lottery-writer storing each win's code."""
    if not _module_supports(cl, "PRIZE", "c", 1, "CODES"):
        pytest.skip("the module has no code pools yet (PRIZE id weight CODES, LOTTERY.CODES)")
    name = "codes"
    n = 3
    desc = create(cl, name, n, "PRIZE", "card", 5, "CODES", "PRIZE", "phone", 1, 10,
                  "NOTHING", 1, "MAXWINS", "INF")
    rc = cl.client()
    try:
        raw = rc.hgetall(R.descriptor_key(name))
        assert raw["stock:card"] == "0" and raw["stock:phone"] == "10"
        for i, key in enumerate(desc["keys"]):
            st = _raw_stats(cl, key)
            assert st["prizes"]["phone"][2] == split(10, n)[i]
            assert st["prizes"]["card"][2] == 0
        codes = [f"GIFT-{i:05d}" for i in range(300)]
        f = tmp_path / "codes.txt"
        # CRLF and LF lines, a blank line, a code twice
        f.write_bytes(("\r\n".join(codes[:150]) + "\r\n\n" + "\n".join(codes[150:]) + "\n"
                       + codes[7] + "\n").encode())
        p = shards(cl, "codes", "add", name, "card", str(f), "--batch", 40)
        assert "added 300 skipped 1 (codes read 301, blank lines 1)" in p.stdout, p.stdout
        assert "stock:card = 300" in p.stdout, p.stdout
        # each code on the shard it routes to
        per = [sum(1 for c in codes if R.shard_index(c, n) == i) for i in range(n)]
        out = shards(cl, "codes", "count", name, "card").stdout.splitlines()
        assert out == [f"shard {i} {k} {per[i]}" for i, k in enumerate(desc["keys"])] \
            + ["total 300"], out
        # the same file again: every code skipped; stdin works too
        p = shards(cl, "codes", "add", name, "card", str(f))
        assert "added 0 skipped 301" in p.stdout, p.stdout
        p = subprocess.run([SHARDS_BIN, "--cluster", cl.url(), "codes", "add", name, "card", "-"],
                           input="NEW-1\nGIFT-00001\n", capture_output=True, text=True,
                           timeout=60)
        assert p.returncode == 0 and "added 1 skipped 1" in p.stdout, (p.stdout, p.stderr)
        assert rc.hget(R.descriptor_key(name), "stock:card") == "301"
        assert check_json(cl, name)["prizes"]["card"] == \
            {"total": 301, "remaining": 301, "sold": 0, "in_flight": 0}

        with tempfile.TemporaryDirectory() as dbdir:
            w = Writer(cl, name, dbdir)
            try:
                given = {}
                wins = 0
                for u in [f"u{i}" for i in range(400)]:
                    r = rc.execute_command("LOTTERY.DRAW", R.shard_key(desc, u), u)
                    if r[0] != "WIN":
                        continue
                    wins += 1
                    if r[1] == "card":
                        assert len(r) == 6, r
                        code = r[5]
                        assert code not in given, code
                        given[code] = u
                        # from the pool of the user's own shard
                        assert R.shard_index(code, n) == R.shard_index(u, n), (u, code)
                    else:
                        assert len(r) == 5, r
                assert given
                w.wait_rows(wins)
                assert w.stop() == 0, w.tail()
                con = sqlite3.connect(w.db)
                try:
                    rows = con.execute("select user_id, prize, code from wins").fetchall()
                finally:
                    con.close()
                stored = {bytes(c).decode(): bytes(u).decode() for u, p_, c in rows
                          if p_ == "card"}
                assert stored == given
                assert all(c is None for _, p_, c in rows if p_ != "card")
            finally:
                w.kill()
        out = shards(cl, "codes", "count", name, "card").stdout.splitlines()
        assert out[-1] == f"total {301 - len(given)}", out
        d = check_json(cl, name)
        assert d["ok"], d
        assert d["prizes"]["card"]["total"] == 301
        assert d["prizes"]["card"]["sold"] == len(given)
        # configure keeps the pools and recounts the descriptor the same way
        shards(cl, "configure", name, "--", "PRIZE", "card", 5, "CODES", "PRIZE", "phone", 1,
               10, "NOTHING", 1)
        assert rc.hget(R.descriptor_key(name), "stock:card") == "301"
        assert check_json(cl, name)["ok"]
    finally:
        rc.close()


def test_rebalance_moves_codes(cl):
    """A code prize's stock is moved as codes: `rebalance` takes the oldest codes out of the
    fuller shard (OUT), reads them (TRANSFER CODES) and gives them to the other (IN ... CODES),
    then settles; a mover killed after OUT or after IN finishes the transfer on its next run.
    Each code ends in exactly one pool and is handed out once."""
    if not _module_supports(cl, "PRIZE", "c", 1, "CODES"):
        pytest.skip("the module has no code pools yet (PRIZE id weight CODES, LOTTERY.CODES)")
    name = "codemove"
    n = 2
    desc = create(cl, name, n, "PRIZE", "card", 1, "CODES", "NOTHING", 1, "MAXWINS", "INF")
    k0, k1 = desc["keys"]
    codes = [f"MV-{i:03d}" for i in range(60)]
    rc = cl.client()
    try:
        def add(key, batch):
            assert rc.execute_command("LOTTERY.CODES", key, "card", "ADD", *batch) == len(batch)
            rc.hincrby(R.descriptor_key(name), "stock:card", len(batch))

        def count(key):
            return rc.execute_command("LOTTERY.CODES", key, "card", "COUNT")

        def card_check():
            d = check_json(cl, name)
            assert d["ok"], d
            p = d["prizes"]["card"]
            assert p["total"] == p["remaining"] + p["sold"] + p["in_flight"], d
            return d

        # every code on shard 0 (as after a skewed `codes add`)
        add(k0, codes[:40])
        # the mover dies right after OUT: 20 codes in flight, held by the PENDING record
        p = shards(cl, "rebalance", name, "--crash-after", "out", ok=None)
        assert p.returncode not in (0, 1, 2, 3), (p.returncode, p.stdout, p.stderr)
        d = card_check()
        assert d["pending"] == 1 and d["prizes"]["card"]["in_flight"] == 20, d
        assert (count(k0), count(k1)) == (20, 0)
        [rec] = rc.execute_command("LOTTERY.TRANSFER", k0, "LIST", "PENDING")
        assert rec[1:] == ["OUT", "card", 20, k1, "PENDING"], rec
        held = rc.execute_command("LOTTERY.TRANSFER", k0, "CODES", rec[0])
        assert held == codes[:20]
        # a moved code is remembered on its old shard: adding it there again is skipped
        assert rc.execute_command("LOTTERY.CODES", k0, "card", "ADD", codes[0]) == 0
        # the next run finishes it first (IN with the record's codes, SETTLE); then 20 more
        # codes on shard 0 make a new move, and that mover dies right after its IN
        add(k0, codes[40:])
        p = shards(cl, "rebalance", name, "--crash-after", "in", ok=None)
        assert p.returncode not in (0, 1, 2, 3), (p.returncode, p.stdout, p.stderr)
        assert f"recovered {rec[0]} card 20 {k0} -> {k1} (IN applied now; settled)" \
            in p.stdout, p.stdout
        d = card_check()
        assert d["pending"] == 1 and d["prizes"]["card"]["in_flight"] == 0, d
        assert (count(k0), count(k1)) == (30, 30)
        assert rc.execute_command("LOTTERY.TRANSFER", k0, "CODES", rec[0]) == []
        p = shards(cl, "rebalance", name)
        assert "IN was applied; settled" in p.stdout, p.stdout
        d = card_check()
        assert d["pending"] == 0 and d["prizes"]["card"]["in_flight"] == 0, d
        assert d["prizes"]["card"]["total"] == 60
        assert (count(k0), count(k1)) == (30, 30)
        # every code is handed out once, each from the pool it ended in
        won = {}
        for i in range(2000):
            u = f"cm{i}"
            r = rc.execute_command("LOTTERY.DRAW", R.shard_key(desc, u), u)
            if r[0] == "WIN":
                assert r[5] not in won, r
                won[r[5]] = R.shard_key(desc, u)
            if count(k0) == 0 and count(k1) == 0:
                break
        assert sorted(won) == codes
        # the oldest codes of shard 0 moved: 0-19 by the first transfer, 20-29 by the second
        assert all(won[c] == (k1 if i < 30 else k0) for i, c in enumerate(codes)), won
        d = card_check()
        assert d["prizes"]["card"]["sold"] == 60
    finally:
        rc.close()


def test_new_rule_options_split_or_passed_through(cl):
    """Needs the module's campaign rules (AFTER, GUARANTEE, TOTAL, PERIOD, TIER): finite stocks
    split, everything else on every shard as given, prize ids and tier names that are
    keywords taken by position; DRAW ... TIER on the user's shard."""
    opts = ["PRIZE", "PRIZE", 1, 30, "AFTER", 2, "PRIZE", "TIER", 3, "INF",
            "NOTHING", 6, "GUARANTEE", 4, "PRIZES", 1, "PRIZE", "TOTAL", 50, "PERIOD", "WEEK",
            "TIER", "vip", "PRIZE-WEIGHT", "PRIZE", 9, "NOTHING", 0, "MAXWINS", "INF"]
    if not _module_supports(cl, *opts):
        pytest.skip("the module has no campaign rules yet (AFTER, GUARANTEE, TOTAL, PERIOD, TIER)")
    name = "rules"
    n = 3
    desc = create(cl, name, n, *opts)
    sts = [_raw_stats(cl, k) for k in desc["keys"]]
    for i, st in enumerate(sts):
        assert st["prizes"]["PRIZE"][2] == split(30, n)[i]
        assert st["prizes"]["TIER"][2] == -1
    # every shard has the same rules (all but the split stocks and the per-shard counters)
    same = ["guarantee", "total", "period", "tiers", "maxwins", "nothing_weight"]
    for f in same:
        assert all(st.get(f) == sts[0].get(f) for st in sts), (f, [st.get(f) for st in sts])
    assert str(sts[0]["total"]) == "50" and str(sts[0]["guarantee"]) == "4"
    rc = cl.client()
    try:
        assert rc.hget(R.descriptor_key(name), "stock:PRIZE") == "30"
        # DRAW ... TIER routes by the user as usual; an unknown tier is refused
        for u in ["t1", "t2", "t3"]:
            r = rc.execute_command("LOTTERY.DRAW", R.shard_key(desc, u), u, "TIER", "vip")
            assert r[0] in ("WIN", "LOSE"), r
        with pytest.raises(redis.ResponseError, match="no such tier"):
            rc.execute_command("LOTTERY.DRAW", R.shard_key(desc, "t1"), "t1", "TIER", "gold")
        # configure: a tier removed, AFTER after a split stock kept
        shards(cl, "configure", name, "--", "PRIZE", "PRIZE", 1, 30, "AFTER", 3, "PRIZE",
               "TIER", 3, "INF", "TIER", "vip", "OFF")
        assert check_json(cl, name)["ok"]
    finally:
        rc.close()
