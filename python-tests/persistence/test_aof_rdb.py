"""Persistence end to end: AOF (with and without the RDB preamble) across a BGREWRITEAOF made
while draws keep coming, an RDB restart of a 1,000,000-user campaign, and `save 1 1`
snapshots triggered by draws alone."""
import os
import random
import re
import time

import pytest

import durability_helpers as D
import lottery_helpers as H
from lottery_helpers import Err, configure, pin, stats

KEY = "{p}camp"


def _draw_cmds(users, key=KEY, reqid_every=0, tag=""):
    out = []
    for i, u in enumerate(users):
        if reqid_every and i % reqid_every == 0:
            out.append(("LOTTERY.DRAW", key, u, "REQID", f"{tag}{i}"))
        else:
            out.append(("LOTTERY.DRAW", key, u))
    return out


@pytest.mark.parametrize("preamble", ["yes", "no"])
def test_aof_restart_after_rewrite_during_draws(server_factory, preamble):
    s = server_factory(appendonly=True, extra_args=["--aof-use-rdb-preamble", preamble,
                                                    "--appendfsync", "everysec"])
    r = s.client()
    t = H.T0
    pin(r, t)
    configure(r, KEY, "PRIZE", "gold", 1, 50, "PRIZE", "silver", 10, 2000,
              "PRIZE", "pts", 30, "INF", "NOTHING", 200, "DAILY", 5, "MAXWINS", 3,
              "COOLDOWN", 100, "SOLDOUT", "REDRAW", "DAYOFFSET", 480)
    users = [f"u{i}" for i in range(30_000)]
    # phase 1: a first wave of draws, grants, bans (fast: replies switched off)
    cmds = _draw_cmds(users, reqid_every=7, tag="a")
    cmds += [("LOTTERY.GRANT", KEY, f"u{i}", 2) for i in range(0, 30_000, 13)]
    cmds += [("LOTTERY.BAN", KEY, f"u{i}", 3_600_000) for i in range(0, 30_000, 101)]
    D.fast_pipeline(s.port, [cmds[i:i + 20_000] for i in range(0, len(cmds), 20_000)])
    r.execute_command("LOTTERY.DRAIN", KEY)
    # phase 2: BGREWRITEAOF, and draws while the child is writing (the rewrite buffer)
    t += 1000
    pin(r, t)
    r.bgrewriteaof()
    during = 0
    raw = s.raw()
    for k in range(20):
        reps = raw.pipeline(_draw_cmds(users[k * 500:(k + 1) * 500], reqid_every=3,
                                       tag=f"b{k}-"))
        assert not any(isinstance(x, Err) for x in reps)
        if r.info("persistence")["aof_rewrite_in_progress"]:
            during += 1
    info = D.wait_aof_rewrite(r)
    print(f"\n[preamble {preamble}] batches sent while the rewrite ran: {during}/20")
    # phase 3: more writes on top of the rewritten AOF
    t += 1000
    pin(r, t)
    reps = raw.pipeline(_draw_cmds(users[:5000], reqid_every=2, tag="c") +
                        [("LOTTERY.RESTOCK", KEY, "gold", 5),
                         ("LOTTERY.CONFIGURE", KEY, "COOLDOWN", 50, "NOTHING", 150),
                         ("LOTTERY.UNBAN", KEY, "u0"),
                         ("LOTTERY.PAUSE", KEY), ("LOTTERY.DRAW", KEY, "u1"),
                         ("LOTTERY.RESUME", KEY)])
    assert not any(isinstance(x, Err) for x in reps)
    raw.close()
    clock = t + 30      # some cooldowns still running
    sample = [u.encode() for u in random.Random(3).sample(users, 400)] + [b"u0", b"u1"]
    before = D.campaign_view(s, KEY, sample, clock)
    before_db = D.db_digest(r)
    last = r.execute_command("LOTTERY.DRAIN", KEY, "LAST")
    assert before["stats"]["users"] == 30_000
    s.stop(save=False)
    s.start(timeout=60)
    after = D.campaign_view(s, KEY, sample, clock)
    D.assert_same_view(before, after, f"AOF preamble {preamble}")
    r = s.client()
    assert D.db_digest(r) == before_db
    assert r.execute_command("LOTTERY.DRAIN", KEY, "LAST") == last
    # the AOF really is made of effects: no LOTTERY.DRAW in it
    if preamble == "no":
        names = {c[0].upper() for c in D.aof_commands(s.dir)}
        assert b"LOTTERY.APPLY" in names and b"LOTTERY.DRAW" not in names, names


def _log_load_seconds(server):
    """'DB loaded from disk: 0.123 seconds' of the last start-up, or None."""
    with open(server.logfile, "rb") as f:
        text = f.read().decode("utf-8", "replace")
    m = re.findall(r"DB loaded from disk: ([0-9.]+) seconds", text)
    return float(m[-1]) if m else None


def test_rdb_restart_1m_users(server_factory):
    n = 1_000_000
    s = server_factory()
    r = s.client()
    pin(r, H.T0)
    configure(r, "big", "PRIZE", "p", 1, "INF", "NOTHING", 99_999, "DAILY", "INF",
              "COOLDOWN", 0, "MAXWINS", "INF")
    t0 = time.time()
    tmpl = b"*3\r\n$12\r\nLOTTERY.DRAW\r\n$3\r\nbig\r\n"
    batches = []
    step = 50_000
    for b in range(0, n, step):
        parts = []
        for i in range(b, b + step):
            u = b"user:%d" % i
            parts.append(tmpl + b"$%d\r\n%s\r\n" % (len(u), u))
        batches.append(b"".join(parts))
    D.fast_pipeline(s.port, batches)
    load_s = time.time() - t0
    st = stats(r, "big")
    assert st["users"] == n and st["draws"] == n, st
    mem = r.memory_usage("big")
    used = r.info("memory")["used_memory"]
    dig = D.digest(r, "big")
    sample = [b"user:%d" % i for i in random.Random(5).sample(range(n), 300)]
    before = D.campaign_view(s, "big", sample, H.T0)

    t0 = time.time()
    assert r.save()
    save_s = time.time() - t0
    rdb = os.path.join(s.dir, "dump.rdb")
    size = os.path.getsize(rdb)
    s.stop(save=False)
    t0 = time.time()
    s.start(timeout=300)
    start_s = time.time() - t0
    D.wait_loaded(s.port)
    log_s = _log_load_seconds(s)
    r = s.client()
    after = D.campaign_view(s, "big", sample, H.T0)
    assert D.digest(r, "big") == dig
    D.assert_same_view(before, after, "RDB restart, 1M users")
    mem_after = r.memory_usage("big")
    print(f"\n1M users: pipelined draws {load_s:.1f}s, wins {st['wins']}; "
          f"MEMORY USAGE {mem} B ({mem / n:.1f} B/user; after reload {mem_after} B), "
          f"used_memory {used} B; SAVE {save_s:.2f}s; RDB {size} B ({size / n:.1f} B/user); "
          f"restart until PING {start_s:.2f}s, log 'DB loaded from disk' {log_s}s")


def test_save_1_1_snapshots_after_draws(server_factory):
    """`save 1 1`: the server snapshots by itself after draws, so draws (even LOSE-only
    ones, which write nothing but the campaign) dirty the dataset."""
    s = server_factory(extra_args=["--save", "1", "1"])
    r = s.client()
    assert r.config_get("save")["save"] == "1 1"
    configure(r, "c", "PRIZE", "never", 0, 5, "NOTHING", 1, "MAXWINS", "INF")
    deadline = time.time() + 10
    while r.info("persistence")["rdb_changes_since_last_save"] and time.time() < deadline:
        time.sleep(0.1)
    info = r.info("persistence")
    assert info["rdb_changes_since_last_save"] == 0, info
    t_last = info["rdb_last_save_time"]
    time.sleep(1.1)       # rdb_last_save_time has a resolution of one second
    for i in range(50):
        assert H.draw(r, "c", f"u{i}")[0] == "LOSE"
    assert r.exists("{c}:wins") == 0          # only the campaign changed
    changed = r.info("persistence")["rdb_changes_since_last_save"]
    assert changed >= 50, f"50 draws made only {changed} changes"
    deadline = time.time() + 10
    while time.time() < deadline:
        info = r.info("persistence")
        if info["rdb_changes_since_last_save"] == 0 and info["rdb_last_save_time"] > t_last:
            break
        time.sleep(0.1)
    else:
        raise AssertionError(f"no automatic snapshot after the draws: {info}")
    assert info["rdb_last_bgsave_status"] == "ok"
    before = stats(r, "c")
    s.stop(save=False)
    s.start()
    assert stats(s.client(), "c") == before
