"""Failover under load: promote the replica while clients draw; no prize is oversold, no user
wins more than MAXWINS, and every WIN a client was told about is on the new master.

ASSUMPTION (this is what the module can promise, not more): replication is asynchronous, so a
WIN is durable across a failover only once a replica acknowledged it. Clients here call
`WAIT 1 1000` after every batch of draws; a WIN whose batch got WAIT >= 1 is "acknowledged"
and MUST survive any failover. The promotion used here is the graceful `FAILOVER` command
(the master pauses writes, waits until the replica has its whole offset, then swaps roles),
(or, the manual way, CLIENT PAUSE WRITE on the master + equal offsets + REPLICAOF NO ONE on
the replica), so in this test even the unacknowledged WINs (the batch that was cut by the
switch, whose WAIT then failed on the demoted master) must be there; the acknowledged ones are checked
separately so that a failure says which promise broke. With a crash-style failover
(`REPLICAOF NO ONE` on a replica that is behind) only the acknowledged ones are promised.
"""
import random
import threading
import time

import pytest

import durability_helpers as D
import lottery_helpers as H
from lottery_helpers import Err, configure, stats

KEY = "{f}camp"
STREAM = "{f}camp:wins"
STOCK = {"a": 200, "b": 200}
N_USERS = 20_000
THREADS = 4
BATCH = 50


class Load:
    def __init__(self, servers):
        self.servers = servers          # index -> RedisServer
        self.target = 0                 # index of the current master
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.seen = []                  # (user, reqid|None, reply, acked, phase)
        self.draws = 0
        self.errors = []
        self.unexpected = []
        self.phase = 1

    def worker(self, seed):
        rng = random.Random(seed)
        raw, raw_for = None, None
        n = 0
        while not self.stop.is_set():
            idx = self.target
            phase = self.phase
            try:
                if raw_for != idx:
                    if raw:
                        raw.close()
                    raw, raw_for = self.servers[idx].raw(), idx
                cmds = []
                for _ in range(BATCH):
                    u = f"u{rng.randrange(N_USERS)}"
                    n += 1
                    if n % 2:
                        cmds.append(("LOTTERY.DRAW", KEY, u, "REQID", f"t{seed}-{n}"))
                    else:
                        cmds.append(("LOTTERY.DRAW", KEY, u))
                reps = raw.pipeline(cmds + [("WAIT", 1, 1000)])
            except (ConnectionError, OSError) as e:
                with self.lock:
                    self.errors.append(repr(e))
                raw, raw_for = None, None
                time.sleep(0.01)
                continue
            wait_rep = reps[-1]
            acked = isinstance(wait_rep, int) and wait_rep >= 1
            with self.lock:
                for c, rep in zip(cmds, reps[:-1]):
                    if isinstance(rep, Err):
                        # the demoted master refuses writes; anything else is unexpected
                        if not rep.startswith("READONLY"):
                            self.unexpected.append((c, rep))
                        continue
                    self.draws += 1
                    if rep[0] == b"WIN":
                        reqid = c[4] if len(c) == 5 else None
                        self.seen.append((c[2], reqid, rep, acked, phase))
                if isinstance(wait_rep, Err) and "replica" not in wait_rep:
                    self.unexpected.append(("WAIT", wait_rep))
            if any(isinstance(rep, Err) for rep in reps):
                time.sleep(0.005)    # the switch is under way: retry on the new master
        if raw:
            raw.close()


def _wait_draws(load, n, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline and load.draws < n:
        time.sleep(0.01)
    assert load.draws >= n, f"only {load.draws} draws in {timeout}s; errors {load.errors[:3]}"


@pytest.mark.parametrize("how", ["FAILOVER", "PAUSE+REPLICAOF"])
def test_failover_under_load(server_factory, how):
    master = server_factory()
    replica = server_factory(replicaof=("127.0.0.1", master.port))
    rs = replica.client()
    H.wait_link_up(rs)
    rm = master.client()
    configure(rm, KEY, "PRIZE", "a", 1, STOCK["a"], "PRIZE", "b", 1, STOCK["b"],
              "NOTHING", 14, "MAXWINS", 1)
    D.wait_acked(rm)

    load = Load({0: master, 1: replica})
    ts = [threading.Thread(target=load.worker, args=(100 + i,)) for i in range(THREADS)]
    for t in ts:
        t.start()
    try:
        _wait_draws(load, 1500)
        if how == "FAILOVER":
            # graceful promotion: FAILOVER pauses writes on the master, waits for the
            # replica to reach its offset, then the replica becomes master and the master
            # its replica
            assert rm.execute_command("FAILOVER", "TIMEOUT", 20000) == "OK"
            D.wait_role(rs, "master")
            D.wait_role(rm, "slave")
        else:
            # the manual way: stop writes on the master, wait until the replica has the
            # master's whole offset, promote it, make the old master follow it, unpause
            # (paused draws then get READONLY and the clients move to the new master)
            assert rm.execute_command("CLIENT", "PAUSE", 30000, "WRITE") == "OK"
            D.wait_same_offset([rm, rs])
            assert rs.execute_command("REPLICAOF", "NO", "ONE") == "OK"
            assert rm.execute_command("REPLICAOF", "127.0.0.1", replica.port) == "OK"
            assert rm.execute_command("CLIENT", "UNPAUSE") == "OK"
        with load.lock:
            load.phase = 2
            load.target = 1
            at_switch = load.draws
        _wait_draws(load, at_switch + 6000)
    finally:
        load.stop.set()
        for t in ts:
            t.join(60)
    assert not load.unexpected, load.unexpected[:5]

    new = replica
    rn = new.client()
    H.wait_link_up(rm)                       # the old master follows the new one
    D.wait_acked(rn)

    st = stats(rn, KEY)
    entries = H.xrange_raw(new.raw(), STREAM)
    by_id = {eid: dict(fields) for eid, fields in entries}
    print(f"\ndraws seen by clients: {load.draws}, WINs seen: {len(load.seen)} "
          f"(acked {sum(1 for s in load.seen if s[3])}, after the switch "
          f"{sum(1 for s in load.seen if s[4] == 2)}), stream entries: {len(entries)}, "
          f"stock left: {[p[2] for p in st['prizes']]}")

    # stock: never negative, nothing oversold, stream and counters agree
    for pid, weight, stock, sold in st["prizes"]:
        assert stock >= 0, (pid, stock)
        assert stock + sold == STOCK[pid], (pid, stock, sold)
    assert len(entries) == st["wins"] == sum(p[3] for p in st["prizes"])
    assert st["wins"] <= sum(STOCK.values())

    # MAXWINS 1: per user at most one entry in the stream, and USER agrees
    per_user = {}
    for eid, f in by_id.items():
        per_user[f[b"user"]] = per_user.get(f[b"user"], 0) + 1
    assert max(per_user.values()) <= 1, sorted(per_user.items(), key=lambda x: -x[1])[:5]
    raw = new.raw()
    users = [f"u{i}" for i in range(N_USERS)]
    reps = raw.pipeline([("LOTTERY.USER", KEY, u) for u in users])
    for u, rep in zip(users, reps):
        d = dict(zip(rep[0::2], rep[1::2]))
        assert d[b"wins"] <= 1, (u, d)
        assert d[b"wins"] == per_user.get(u.encode(), 0), (u, d)

    # every WIN a client saw is in the new master's stream with the same fields
    def check(seen):
        missing = []
        for u, reqid, rep, acked, phase in seen:
            f = by_id.get(rep[2])
            if f is None:
                missing.append((u, rep))
                continue
            assert f[b"user"] == u.encode() and f[b"prize"] == rep[1], (u, rep, f)
            assert f.get(b"reqid") == (reqid.encode() if reqid else None), (u, reqid, f)
        return missing

    acked = [s for s in load.seen if s[3]]
    assert acked, "no acknowledged WIN at all"
    assert not check(acked), "acknowledged WINs lost in the failover"
    assert not check(load.seen), "WINs lost in a graceful FAILOVER"
    if not load.errors:   # every reply was read: every stream entry was seen by a client
        assert len(load.seen) == len(entries)
    assert any(s[4] == 1 for s in load.seen) and any(s[4] == 2 for s in load.seen)

    # REQID retries after the failover replay the very same reply and consume nothing
    retries = [s for s in load.seen if s[1] is not None][:100]
    before = stats(rn, KEY)
    reps = raw.pipeline([("LOTTERY.DRAW", KEY, u, "REQID", rid) for u, rid, _, _, _ in retries])
    for (u, rid, rep, _, _), again in zip(retries, reps):
        assert again == rep, (u, rid, rep, again)
    after = stats(rn, KEY)
    assert after["replays"] == before["replays"] + len(retries)
    assert after["draws"] == before["draws"] and after["prizes"] == before["prizes"]
    raw.close()

    # and the demoted master holds the same campaign
    D.wait_acked(rn)
    assert D.digest(rn, KEY) == D.digest(rm, KEY)
