"""Fault injection for lottery-shards on a real 3-master/3-replica cluster with the module:

- a hand-edited descriptor (another campaign's shard key, a key twice, a shard count that does
  not fit) -> every subcommand refuses with exit 4 and moves nothing;
- the descriptor deleted or made invalid, a shard key deleted, under a running
  `rebalance --every-ms` -> it stops loudly with exit 4 and releases its lease;
- `--every-ms 0` (and other out-of-range values) refused (exit 1); a wrong password is an auth
  error (exit 5), not "unreachable";
- a second SIGTERM while a transfer step waits for a stalled replica -> exit 143 at once, and
  the next run recovers the step;
- kill -9 of a master holding a shard while a looping mover runs and clients draw, its replica
  promoted with CLUSTER FAILOVER TAKEOVER (the old master stays down; it is also the mover's
  only seed) -> the mover's next rounds move stock out of the failed-over shard to the hot
  one; the old master comes back as a replica -> still fine.

After each: stock conserved (`check`: total == remaining + sold + in flight), every OUT
settled with its IN on the peer, and another campaign on the same cluster untouched.
"""
import signal
import subprocess
import threading
import time

import cluster_helpers as C
from cluster_helpers import cluster_factory  # noqa: F401 (fixture)
from test_sharded import SHARDS_BIN, R, check_json, create, shard_stats, shards

cl = C.module_cluster_fixture()

EXIT_DESCRIPTOR = 4
EXIT_AUTH = 5


def _remaining(sts, prize="a"):
    return [{x[0]: x for x in s["prizes"]}[prize][2] for s in sts]


def _snapshot(cl, desc):
    """What a tool could change on a campaign: stats (stock, sold, state) and transfer records."""
    rc = cl.client()
    try:
        return [(rc.execute_command("LOTTERY.STATS", k),
                 rc.execute_command("LOTTERY.TRANSFER", k, "LIST")) for k in desc["keys"]]
    finally:
        rc.close()


def _transfers_ok(cl, desc):
    """Every OUT settled, and every OUT of t > 0 units has its IN (same count) on its peer."""
    rc = cl.client()
    try:
        outs, ins = {}, {}
        for k in desc["keys"]:
            for rid, kind, prize, cnt, peer, state in rc.execute_command("LOTTERY.TRANSFER", k,
                                                                         "LIST"):
                (outs if kind == "OUT" else ins)[rid] = (k, peer, cnt, state)
        assert all(v[3] == "SETTLED" for v in outs.values()), outs
        for rid, (k, peer, cnt, _) in outs.items():
            if cnt:
                assert rid in ins and ins[rid][0] == peer and ins[rid][2] == cnt, (rid, ins)
        assert set(ins) <= set(outs)
        return outs
    finally:
        rc.close()


def _conserved(cl, name, total=None):
    d = check_json(cl, name)
    assert d["ok"] and d["pending"] == 0, d
    if total is not None:
        p = d["prizes"]["a"]
        assert p["total"] == total == p["remaining"] + p["sold"] + p["in_flight"], d
    return d


def _skew(cl, name, desc, n):
    """Shard 0 gets n more units (the descriptor counts them): something for a mover to move."""
    rc = cl.client()
    try:
        rc.execute_command("LOTTERY.RESTOCK", desc["keys"][0], "a", n)
        rc.hincrby(R.descriptor_key(name), "stock:a", n)
    finally:
        rc.close()


def _lease(name):
    return R.descriptor_key(name) + ":mover"


# --------------------------------------------------------------------------------------------


def test_hand_edited_descriptor_is_refused_by_every_subcommand(cl):
    name, other = "edited", "edited-other"
    desc = create(cl, name, 3, "PRIZE", "a", 1, 30, "NOTHING", 1)
    odesc = create(cl, other, 3, "PRIZE", "a", 1, 60, "NOTHING", 1)
    _skew(cl, name, desc, 30)
    rc = cl.client()
    dkey = R.descriptor_key(name)
    good = rc.hgetall(dkey)
    before = (_snapshot(cl, desc), _snapshot(cl, odesc), rc.hgetall(R.descriptor_key(other)))
    edits = {
        "other campaign's shard key": ({"shard:1": odesc["keys"][1]}, [], "not a key of shard 1"),
        "another index's key": ({"shard:2": desc["keys"][1]}, [], "twice"),
        "same key twice": ({"shard:1": desc["keys"][0]}, [], "twice"),
        "count lowered": ({"shards": "2"}, [], "does not fit shards = 2"),
        "count raised": ({"shards": "4"}, [], "has no shard:3 field"),
        "wrong route": ({"route": "crc16/1"}, [], "uses route"),
        "shard field removed": ({}, ["shard:2"], "has no shard:2 field"),
    }
    subcommands = [["describe", name], ["route", name, "u1"], ["stats", name],
                   ["stats", name, "--json"], ["check", name], ["pause", name],
                   ["resume", name], ["restock", name, "a", 5], ["restock", name, "a", -5],
                   ["configure", name, "--", "PRIZE", "a", 1, 9, "NOTHING", 1],
                   ["rebalance", name], ["rebalance", name, "--every-ms", 50]]
    try:
        for what, (hset, hdel, msg) in edits.items():
            if hset:
                rc.hset(dkey, mapping=hset)
            if hdel:
                rc.hdel(dkey, *hdel)
            for args in subcommands:
                p = shards(cl, *args, ok=EXIT_DESCRIPTOR, timeout=30)
                assert f"invalid descriptor {dkey}" in p.stderr and msg in p.stderr, \
                    (what, args, p.stderr)
                assert "transfer" not in p.stdout, (what, args, p.stdout)
            rc.delete(dkey)
            rc.hset(dkey, mapping=good)
        # nothing moved, nothing changed, on either campaign; no lease left behind
        after = (_snapshot(cl, desc), _snapshot(cl, odesc), rc.hgetall(R.descriptor_key(other)))
        assert after == before
        assert rc.hgetall(dkey) == good and not rc.exists(_lease(name))
        # restored: the mover evens it out, conserved
        shards(cl, "rebalance", name)
        _conserved(cl, name, 60)
        assert max(_remaining(shard_stats(cl, desc))) - min(_remaining(shard_stats(cl, desc))) <= 1
        _transfers_ok(cl, desc)
        assert (_snapshot(cl, odesc), rc.hgetall(R.descriptor_key(other))) == before[1:]
        _conserved(cl, other, 60)
    finally:
        rc.close()


def _loop(cl, name, every_ms=50):
    return subprocess.Popen([SHARDS_BIN, "--cluster", cl.url(), "rebalance", name,
                             "--every-ms", str(every_ms), "--min-move", "1"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for(cond, timeout, what):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = cond()
        if v:
            return v
        time.sleep(0.05)
    raise AssertionError(f"{what}: not within {timeout}s")


def test_campaign_changed_under_a_running_loop_stops_it_loudly(cl):
    rc = cl.client()
    try:
        # the descriptor deleted / made invalid / a shard key deleted, under the loop
        for case in ("deleted", "invalid", "shard key deleted"):
            name = "under-" + case.replace(" ", "-")
            desc = create(cl, name, 3, "PRIZE", "a", 1, 30, "NOTHING", 1)
            dkey = R.descriptor_key(name)
            good = rc.hgetall(dkey)
            loop = _loop(cl, name)
            try:
                _wait_for(lambda: rc.get(_lease(name)), 10, "the loop takes its lease")
                _skew(cl, name, desc, 30)       # something to move meanwhile
                time.sleep(0.3)
                if case == "deleted":
                    rc.delete(dkey)
                    msg = f"the descriptor {dkey} was deleted under the running rebalance"
                elif case == "invalid":
                    rc.hset(dkey, "shard:1", desc["keys"][0])
                    msg = f"invalid descriptor {dkey}"
                else:
                    saved = rc.dump(desc["keys"][2])
                    rc.delete(desc["keys"][2])
                    msg = f"shard key {desc['keys'][2]} holds no campaign"
                out, err = loop.communicate(timeout=20)
            finally:
                if loop.poll() is None:
                    loop.kill()
                    loop.wait(10)
            assert loop.returncode == EXIT_DESCRIPTOR, (case, loop.returncode, out, err)
            assert msg in err, (case, err)
            assert not rc.exists(_lease(name)), "the lease is released"
            # put it back: nothing was lost (every transfer finished or recoverable)
            rc.delete(dkey)
            rc.hset(dkey, mapping=good)
            rc.hincrby(dkey, "stock:a", 30)
            if case == "shard key deleted":
                rc.restore(desc["keys"][2], 0, saved)
            shards(cl, "rebalance", name)
            _conserved(cl, name, 60)
            _transfers_ok(cl, desc)
    finally:
        rc.close()


def test_numeric_options_and_credentials(cl, server_factory):
    name = "opts"
    desc = create(cl, name, 2, "PRIZE", "a", 1, 10, "NOTHING", 1)
    rc = cl.client()
    try:
        for bad in ("0", "9", "86400001", "18446744073709551616", "-5"):
            t0 = time.time()
            p = shards(cl, "rebalance", name, f"--every-ms={bad}", ok=1, timeout=10)
            assert time.time() - t0 < 5 and "--every-ms" in p.stderr, (bad, p.stderr)
        shards(cl, "rebalance", name, "--lease-ms", "18446744073709551615", ok=1)
        shards(cl, "create", "x", "--shards", 0, "--", "PRIZE", "a", 1, 1, ok=1)
        assert not rc.exists(_lease(name))
        # a wrong password, or none: an auth error (exit 5), not "unreachable" (exit 2)
        locked = server_factory()
        locked.client().config_set("requirepass", "secret")
        try:
            for url in (f"redis://default:wrong@127.0.0.1:{locked.port}",
                        f"redis://127.0.0.1:{locked.port}"):
                p = subprocess.run([SHARDS_BIN, "--cluster", url, "check", name],
                                   capture_output=True, text=True, timeout=30)
                assert p.returncode == EXIT_AUTH, (url, p.returncode, p.stderr)
                assert "authentication refused" in p.stderr, p.stderr
                assert "unreachable" not in p.stderr and "wrong" not in p.stderr, p.stderr
        finally:
            locked.client(password="secret").config_set("requirepass", "")
        _conserved(cl, name, 10)
        assert [s["draws"] for s in shard_stats(cl, desc)] == [0, 0]
    finally:
        rc.close()


def test_second_signal_during_a_stalled_step_exits_at_once_and_is_recoverable(cl):
    name = "sig"
    desc = create(cl, name, 3, "PRIZE", "a", 1, 30, "NOTHING", 1)
    _skew(cl, name, desc, 60)          # shard 0 gives: its OUT waits for shard 0's replica
    replica = cl.replicas_of(cl.master_of_key(desc["keys"][0]))[0]
    replica.proc.send_signal(signal.SIGSTOP)
    loop = None
    try:
        loop = _loop(cl, name, every_ms=100)
        time.sleep(1.0)                 # in the OUT's WAIT (up to 5 s)
        loop.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        assert loop.poll() is None, "the first signal lets the step finish"
        t0 = time.time()
        loop.send_signal(signal.SIGTERM)
        loop.wait(5)
        assert time.time() - t0 < 2 and loop.returncode == 128 + signal.SIGTERM, loop.returncode
    finally:
        replica.proc.send_signal(signal.SIGCONT)
        if loop is not None and loop.poll() is None:
            loop.kill()
            loop.wait(10)
    cl.wait_ok()
    # the interrupted step: conserved (in flight), and the next run finishes it
    d = check_json(cl, name)
    assert d["ok"], d
    p = shards(cl, "rebalance", name)   # takes over the killed mover's lease
    assert d["pending"] == 0 or "recovered " in p.stdout, (d, p.stdout)
    _conserved(cl, name, 90)
    _transfers_ok(cl, desc)
    # a first signal alone: the loop stops cleanly with 0 and releases its lease
    loop = _loop(cl, name, every_ms=100)
    rc = cl.client()
    try:
        _wait_for(lambda: rc.get(_lease(name)), 10, "the loop takes its lease")
        loop.send_signal(signal.SIGINT)
        out, err = loop.communicate(timeout=20)
        assert loop.returncode == 0, (out, err)
        assert not rc.exists(_lease(name))
    finally:
        rc.close()


# --------------------------------------------------------------------------------------------


def test_rebalancer_survives_unplanned_failover(cluster_factory):  # noqa: F811
    c = cluster_factory()
    name, other = "hot", "cold"
    total = 3000
    desc = create(c, name, 3, "PRIZE", "a", 1, total, "NOTHING", 1, "DAILY", "INF",
                  "MAXWINS", "INF")
    odesc = create(c, other, 3, "PRIZE", "a", 1, 300, "NOTHING", 1)
    other_before = _snapshot(c, odesc)
    victim = c.master_of_key(desc["keys"][1])
    heir = c.replicas_of(victim)[0]
    # clients draw on shard 0 (hot, runs dry without the mover) and a little on shard 2; the
    # failed-over shard 1 only gives stock
    users = {0: [], 2: []}
    i = 0
    while min(len(v) for v in users.values()) < 300:
        u = f"h{i}"
        s = R.shard_index(u, 3)
        if s in users:
            users[s].append(u)
        i += 1

    def pick(rng):
        time.sleep(0.004)      # a bounded rate: the stock lasts through the failover
        s = 0 if rng.random() < 0.9 else 2
        return desc["keys"][s], rng.choice(users[s])

    # the mover's only seed is the master about to die: it must find the cluster on its own
    mover = subprocess.Popen([SHARDS_BIN, "--cluster", f"redis://127.0.0.1:{victim.port}",
                              "rebalance", name, "--every-ms", "100", "--min-move", "1"],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = []
    reader = threading.Thread(target=lambda: lines.extend(iter(mover.stdout.readline, "")),
                              daemon=True)
    reader.start()
    load = C.DrawLoad(c, pick, threads=4, name="hf").start()

    def outs_of_shard1():
        rc = c.client()
        try:
            return sum(1 for r in rc.execute_command("LOTTERY.TRANSFER", desc["keys"][1], "LIST")
                       if r[1] == "OUT")
        finally:
            rc.close()

    try:
        load.wait_count(300)
        _wait_for(lambda: outs_of_shard1() >= 1, 30, "the mover moves stock out of shard 1")
        # kill -9 the master of shard 1, promote its replica (the old master stays down)
        victim.kill()
        victim.intentionally_stopped = True
        assert heir.client().execute_command("CLUSTER", "FAILOVER", "TAKEOVER") == "OK"
        _wait_for(lambda: c.master_of_key(desc["keys"][1]).port == heir.port, 30,
                  "the replica takes over")
        at_failover = outs_of_shard1()
        killed_at = len(lines)
        # the mover's next rounds succeed on the new master: more stock leaves shard 1, and
        # the hot shard receives it
        _wait_for(lambda: outs_of_shard1() >= at_failover + 2, 60,
                  f"transfers out of the failed-over shard ({''.join(lines[-5:])})")
        moved_after = [l for l in lines[killed_at:] if l.startswith("transfer ")
                       and l.split()[4:7] == [desc["keys"][1], "->", desc["keys"][0]]]
        assert moved_after, lines[killed_at:][-10:]
        assert mover.poll() is None, "".join(lines[-20:])
        # the old master comes back: it rejoins as a replica; the mover goes on
        victim.start()
        c.wait_ok(60)
        assert c.master_of_key(desc["keys"][1]).port == heir.port
        back = outs_of_shard1()
        _wait_for(lambda: outs_of_shard1() >= back + 1, 60, "transfers after the old master is back")
        assert mover.poll() is None, "".join(lines[-20:])
    finally:
        load.stop()
        if mover.poll() is None:
            mover.send_signal(signal.SIGTERM)
        mover.wait(60)
        reader.join(10)
    assert mover.returncode == 0, "".join(lines[-30:])
    shards(c, "rebalance", name, "--min-move", "1")     # finishes anything left pending
    d = _conserved(c, name, total)
    outs = _transfers_ok(c, desc)
    sts = shard_stats(c, desc)
    sold = [{x[0]: x for x in s["prizes"]}["a"][3] for s in sts]
    assert sum(s["wins"] for s in sts) == d["prizes"]["a"]["sold"] == len(load.wins())
    assert _snapshot(c, odesc) == other_before, "the other campaign is untouched"
    _conserved(c, other, 300)
    # a round that failed found the cluster again (most often a step finds the new master
    # itself: the topology read again from a live node, the command not yet sent)
    found_again = sum("finding the cluster again" in l for l in lines)
    print("".join(lines[killed_at - 2:killed_at + 8]))
    print(f"\nfailover: {load.count} draws, {len(outs)} transfers, sold per shard {sold}, "
          f"{found_again} rounds failed and found the cluster again, "
          f"{len(load.errors)} retried draw errors")
