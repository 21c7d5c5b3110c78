"""Statistics sent in batches: a refusal that changes only a statistics counter (a repeat click
refused by COOLDOWN, a REQID replay, ...) is not replicated by itself; each campaign sends its
counters once per event loop iteration. Replicas and the AOF still hold exactly the master's
counters after every iteration, across pipelines, MULTI, Lua, a write pause and a demotion."""
import time

import durability_helpers as D
import lottery_helpers as H
from lottery_helpers import Err, configure, pin, stats

KEY = "{b}camp"
COUNTERS = ["draws", "wins", "losses", "replays", "rejected_cooldown", "rejected_quota",
            "rejected_already_won", "rejected_paused", "rejected_banned"]


def _setup(r):
    pin(r, H.T0)
    configure(r, KEY, "PRIZE", "p", 1, "INF", "NOTHING", 1, "COOLDOWN", 60_000, "MAXWINS", "INF")


def _same(rm, rs, key=KEY):
    D.wait_acked(rm)
    sm, ss = stats(rm, key), stats(rs, key)
    assert {k: ss[k] for k in COUNTERS} == {k: sm[k] for k in COUNTERS}
    assert D.digest(rs, key) == D.digest(rm, key)
    return sm


def _apply_calls(r):
    st = r.info("commandstats").get("cmdstat_lottery.apply")
    return st["calls"] if st else 0


def test_refusals_reach_the_replica_in_batches(master_replica):
    master, replica = master_replica
    rm, rs = master.client(), replica.client()
    raw = master.raw()
    _setup(rm)
    users = [f"u{i}" for i in range(200)]
    first = raw.pipeline([("LOTTERY.DRAW", KEY, u, "REQID", f"r-{u}") for u in users])
    assert not any(isinstance(x, Err) for x in first)
    D.wait_acked(rm)
    before = _apply_calls(rs)
    # 10 rounds of repeat clicks (COOLDOWN) and REQID retries (replays), 400 refusals a round
    for _ in range(10):
        cmds = [("LOTTERY.DRAW", KEY, u) for u in users]
        cmds += [("LOTTERY.DRAW", KEY, u, "REQID", f"r-{u}") for u in users]
        reps = raw.pipeline(cmds)
        assert [x[0] for x in reps[:200]] == [b"COOLDOWN"] * 200
        assert [x for x in reps[200:]] == first
    sm = _same(rm, rs)
    assert sm["rejected_cooldown"] == 2000 and sm["replays"] == 2000
    applied = _apply_calls(rs) - before
    # far fewer replicated commands than refusals: one per campaign and event loop iteration
    assert 1 <= applied <= 400, applied


def test_refusals_in_multi_and_lua_and_mixed_with_draws(master_replica):
    master, replica = master_replica
    rm, rs = master.client(), replica.client()
    _setup(rm)
    configure(rm, "{b}other", "PRIZE", "q", 1, 3, "NOTHING", 1, "COOLDOWN", 60_000)
    H.draw(rm, KEY, "a")
    p = rm.pipeline(transaction=True)
    for i in range(20):
        p.execute_command("LOTTERY.DRAW", KEY, "a")           # COOLDOWN
        p.execute_command("LOTTERY.DRAW", KEY, f"n{i}")       # a new user: a real draw
        p.execute_command("LOTTERY.DRAW", "{b}other", "x")    # other campaign
    p.execute()
    script = "for i = 1, 30 do redis.call('LOTTERY.DRAW', KEYS[1], 'a') end return 1"
    assert rm.eval(script, 1, KEY) == 1
    rm.execute_command("LOTTERY.BAN", KEY, "a", 60_000)
    for _ in range(5):
        assert H.draw(rm, KEY, "a")[0] == "BANNED"
    sm = _same(rm, rs)
    assert sm["rejected_cooldown"] == 50 and sm["rejected_banned"] == 5
    _same(rm, rs, "{b}other")


def test_refusals_reach_the_aof(server_factory):
    s = server_factory(appendonly=True, extra_args=["--aof-use-rdb-preamble", "no",
                                                    "--appendfsync", "always"])
    r = s.client()
    raw = s.raw()
    _setup(r)
    raw.pipeline([("LOTTERY.DRAW", KEY, f"u{i}") for i in range(50)])
    raw.pipeline([("LOTTERY.DRAW", KEY, f"u{i % 50}") for i in range(3000)])
    want = stats(r, KEY)
    assert want["rejected_cooldown"] == 3000
    digest = D.digest(r, KEY)
    r.execute_command("DEBUG", "LOADAOF")
    got = stats(r, KEY)
    assert {k: got[k] for k in COUNTERS} == {k: want[k] for k in COUNTERS}
    assert D.digest(r, KEY) == digest


def test_counters_wait_out_a_write_pause(master_replica):
    """Refusals and CLIENT PAUSE WRITE in one iteration: nothing enters the replication stream
    while writes are paused (Redis would abort), and the counters follow when it ends."""
    master, replica = master_replica
    rm, rs = master.client(), replica.client()
    raw = master.raw()
    _setup(rm)
    raw.pipeline([("LOTTERY.DRAW", KEY, f"u{i}") for i in range(20)])
    D.wait_acked(rm)
    cmds = [("LOTTERY.DRAW", KEY, f"u{i % 20}") for i in range(100)]
    reps = raw.pipeline(cmds + [("CLIENT", "PAUSE", 300, "WRITE")])
    assert reps[-1] == "OK" and reps[0][0] == b"COOLDOWN"
    deadline = time.time() + 10
    while time.time() < deadline and stats(rs, KEY)["rejected_cooldown"] != 100:
        time.sleep(0.05)
    _same(rm, rs)
    assert master.alive()


def test_demoted_master_takes_back_unsent_counters(server_factory):
    """Refusals, then the write pause of a manual failover in the same iteration: the old
    master never sent those counts, so once demoted it holds what its new master holds."""
    a = server_factory()
    b = server_factory(replicaof=("127.0.0.1", a.port))
    H.wait_link_up(b.client())
    ra, rb = a.client(), b.client()
    raw = a.raw()
    _setup(ra)
    raw.pipeline([("LOTTERY.DRAW", KEY, f"u{i}") for i in range(20)])
    D.wait_acked(ra)
    sent = stats(ra, KEY)
    reps = raw.pipeline([("LOTTERY.DRAW", KEY, f"u{i % 20}") for i in range(60)]
                        + [("CLIENT", "PAUSE", 30_000, "WRITE")])
    assert reps[-1] == "OK"
    assert stats(ra, KEY)["rejected_cooldown"] == sent["rejected_cooldown"] + 60
    D.wait_same_offset([ra, rb])
    assert rb.execute_command("REPLICAOF", "NO", "ONE") == "OK"
    assert ra.execute_command("REPLICAOF", "127.0.0.1", b.port) == "OK"
    assert ra.execute_command("CLIENT", "UNPAUSE") == "OK"
    H.wait_link_up(ra)
    # the new master never saw the 60 refusals; the demoted one took them back
    assert stats(rb, KEY)["rejected_cooldown"] == sent["rejected_cooldown"]
    deadline = time.time() + 10
    while time.time() < deadline and stats(ra, KEY)["rejected_cooldown"] != sent["rejected_cooldown"]:
        time.sleep(0.05)
    _same(rb, ra)
    # and the new master's own refusals flow as usual
    pin(rb, H.T0)
    assert H.draw(rb, KEY, "u1")[0] == "COOLDOWN"
    assert _same(rb, ra)["rejected_cooldown"] == sent["rejected_cooldown"] + 1


def test_renamed_in_the_same_iteration_converges_at_its_next_draw(master_replica):
    master, replica = master_replica
    rm, rs = master.client(), replica.client()
    _setup(rm)
    H.draw(rm, KEY, "a")
    p = rm.pipeline(transaction=True)
    p.execute_command("LOTTERY.DRAW", KEY, "a")
    p.rename(KEY, "{b}moved")
    p.execute()
    H.draw(rm, "{b}moved", "z")
    sm = _same(rm, rs, "{b}moved")
    assert sm["rejected_cooldown"] == 1
