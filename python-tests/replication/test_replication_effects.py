"""Effects replication under load: a replica (and a replica of a replica) ends up identical to
the master after ~100k mixed commands from several threads, never re-draws, and LOTTERY.APPLY
cannot be called by ordinary clients.

Replication model under test: every write replicates as effects: a WIN's XADD with its
concrete stream ID, and the state change as `LOTTERY.APPLY <key> <blob>` (absolute values).
"""
import json
import random
import subprocess
import threading
import time

import pytest

import durability_helpers as D
import lottery_helpers as H
from lottery_helpers import Err, configure, draw, pin, stats

CAMPAIGNS = ["{a}camp", "plain"]
N_USERS = 3000
THREADS = 4
COMMANDS_PER_THREAD = 25_000      # 100k in all (a MULTI block or an EVAL counts as one)
BATCH = 500

DRAW_LUA = "return redis.call('LOTTERY.DRAW', KEYS[1], ARGV[1])"
DRAW2_LUA = ("local a = redis.call('LOTTERY.DRAW', KEYS[1], ARGV[1]) "
             "redis.call('LOTTERY.GRANT', KEYS[1], ARGV[2], 1) "
             "local b = redis.call('LOTTERY.DRAW', KEYS[1], ARGV[2]) return {a, b}")

CONFIG_CHANGES = [
    ("COOLDOWN", 0),
    ("COOLDOWN", 3),
    ("NOTHING", 40),
    ("NOTHING", 200),
    ("DAILY", 9),
    ("DAILY", "INF"),
    ("MAXWINS", 3),
    ("MAXWINS", "INF"),
    ("SOLDOUT", "REDRAW"),
    ("SOLDOUT", "LOSE"),
    ("SOLDOUT", "FALLBACK", "pts"),
    ("IDEMPOTENCY", 300000),
    # a new prize table (stocks are absolute; sold counters kept by id)
    ("PRIZE", "gold", 1, 30, "PRIZE", "silver", 5, 400, "PRIZE", "pts", 20, "INF"),
    ("PRIZE", "gold", 2, 10, "PRIZE", "silver", 4, 200, "PRIZE", "pts", 20, "INF",
     "PRIZE", "tin", 3, 50),
]


def _setup(rm):
    for key in CAMPAIGNS:
        configure(rm, key, "PRIZE", "gold", 1, 20, "PRIZE", "silver", 5, 300,
                  "PRIZE", "pts", 20, "INF", "NOTHING", 100, "MAXWINS", 5, "DAILY", 12,
                  "COOLDOWN", 0, *(["VERIFIABLE", "LOG", "ALL"] if key == CAMPAIGNS[-1] else []))


def _one_command(rng, key):
    """One random command (or a MULTI block as a list of commands)."""
    u = f"u{rng.randrange(N_USERS)}"
    x = rng.random()
    if x < 0.50:
        return [("LOTTERY.DRAW", key, u)]
    if x < 0.62:
        # a small pool of request ids per user: some draws are replays
        return [("LOTTERY.DRAW", key, u, "REQID", f"r{rng.randrange(6)}")]
    if x < 0.66:
        # DRAW inside MULTI/EXEC (the whole block counts as one command here)
        block = [("MULTI",)]
        for _ in range(rng.randrange(1, 4)):
            block.append(("LOTTERY.DRAW", key, f"u{rng.randrange(N_USERS)}"))
        block.append(("LOTTERY.GRANT", key, u, 1, "CAP", 3))
        block.append(("EXEC",))
        return block
    if x < 0.71:
        return [("EVAL", DRAW_LUA, 1, key, u)]
    if x < 0.72:
        return [("EVAL", DRAW2_LUA, 1, key, u, f"u{rng.randrange(N_USERS)}")]
    if x < 0.78:
        return [("LOTTERY.GRANT", key, u, rng.randrange(1, 4))]
    if x < 0.80:
        return [("LOTTERY.RESTOCK", key, rng.choice(["gold", "silver", "tin", "nope"]),
                 rng.randrange(-5, 10))]
    if x < 0.83:
        return [("LOTTERY.BAN", key, u, rng.randrange(1, 20_000))]
    if x < 0.86:
        return [("LOTTERY.UNBAN", key, u)]
    if x < 0.865:
        return [("LOTTERY.PAUSE", key)]
    if x < 0.885:
        return [("LOTTERY.RESUME", key)]
    if x < 0.89:
        return [("LOTTERY.CONFIGURE", key) + rng.choice(CONFIG_CHANGES)]
    if x < 0.895:
        return [("LOTTERY.DRAIN", key)]
    if x < 0.90:
        # a new epoch of a verifiable campaign (refused on the others)
        return [("LOTTERY.SEED", key, "ROTATE")]
    if x < 0.95:
        return [("LOTTERY.USER", key, u)]
    return [("LOTTERY.STATS", key)]


# errors a random workload may legitimately get (e.g. RESTOCK below zero)
ALLOWED_ERRORS = ("ERR no such prize", "ERR stock would go below zero",
                  "ERR prize 'pts' has INF stock", "ERR FALLBACK prize",
                  "ERR the campaign is not VERIFIABLE")


def _worker(server, seed, out, errors):
    rng = random.Random(seed)
    raw = server.raw()
    n = 0
    sent = 0
    try:
        while n < COMMANDS_PER_THREAD:
            cmds = []
            while len(cmds) < BATCH and n < COMMANDS_PER_THREAD:
                cmds += _one_command(rng, rng.choice(CAMPAIGNS))
                n += 1
            reps = raw.pipeline(cmds)
            sent += len(cmds)
            for c, rep in zip(cmds, reps):
                if isinstance(rep, Err) and not rep.startswith(ALLOWED_ERRORS):
                    errors.append((c, rep))
                if c[0] == "EXEC" and isinstance(rep, list):
                    for inner in rep:
                        if isinstance(inner, Err) and not inner.startswith(ALLOWED_ERRORS):
                            errors.append((c, inner))
        out.append(sent)
    except Exception as e:  # noqa: BLE001
        errors.append(("exception", repr(e)))
    finally:
        raw.close()


def test_replica_identical_after_100k_mixed_commands(master_replica):
    master, replica = master_replica
    rm = master.client()
    _setup(rm)
    t0 = time.time()
    out, errors = [], []
    ts = [threading.Thread(target=_worker, args=(master, 1000 + i, out, errors))
          for i in range(THREADS)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(300)
    assert not errors, errors[:10]
    assert len(out) == THREADS
    elapsed = time.time() - t0
    print(f"\n{sum(out)} commands sent ({THREADS * COMMANDS_PER_THREAD} logical) "
          f"in {elapsed:.1f}s")
    # make sure the campaigns are running at the end, then a final wave of draws
    for key in CAMPAIGNS:
        rm.execute_command("LOTTERY.RESUME", key)
        for i in range(20):
            draw(rm, key, f"final{i}")
    D.wait_acked(rm, 1, 20000)
    assert rm.info("replication")["connected_slaves"] == 1
    rs = replica.client()
    assert D.db_digest(rm) == D.db_digest(rs), "DEBUG DIGEST of the whole dataset differs"
    clock = int(time.time() * 1000)
    sample = [f"u{i}".encode() for i in random.Random(7).sample(range(N_USERS), 250)]
    sample += [f"final{i}".encode() for i in range(20)] + [b"never-seen"]
    for key in CAMPAIGNS:
        m = D.campaign_view(master, key, sample, clock)
        s = D.campaign_view(replica, key, sample, clock)
        D.assert_same_view(m, s, key)
        st = m["stats"]
        if key == CAMPAIGNS[-1]:
            _check_verifiable_log(master, rm, key, st)
        else:
            assert m["xlen"] == st["wins"], (key, m["xlen"], st["wins"])
        assert st["draws"] == st["wins"] + st["losses"]
        # the workload really exercised the paths we meant to test
        assert st["wins"] > 100 and st["losses"] > 1000, st
        assert st["replays"] > 0 and st["rejected_paused"] > 0 and st["drain_seq"] > 0, st
        assert st["rejected_banned"] > 0 and st["rejected_quota"] > 0, st
        print(f"{key}: draws={st['draws']} wins={st['wins']} replays={st['replays']} "
              f"users={st['users']} paused={st['rejected_paused']} "
              f"banned={st['rejected_banned']} quota={st['rejected_quota']}")


def _check_verifiable_log(master, rm, key, st):
    """The VERIFIABLE LOG ALL campaign's stream: a win entry per win, a draw entry per draw,
    an epoch entry per epoch, a reveal per ROTATE; lottery-audit finds no mismatch."""
    kinds = {}
    for _, fields in H.xrange_raw(master.raw(), st["stream"]):
        kind = fields[0][1] if fields[0][0] == b"type" else b"win"
        kinds[kind] = kinds.get(kind, 0) + 1
    seed = dict(zip(*[iter(rm.execute_command("LOTTERY.STATS", key))] * 2))
    epochs = int(seed["seed_epoch"])
    assert epochs > 1, seed  # the workload rotated
    assert kinds.get(b"win") == st["wins"] and kinds.get(b"draw") == st["draws"], (kinds, st)
    assert kinds.get(b"epoch") == epochs and kinds.get(b"reveal") == epochs - 1, (kinds, epochs)
    audit = str(H.REPO / "target" / "release" / "lottery-audit")
    p = subprocess.run([audit, "--redis", f"redis://127.0.0.1:{master.port}", "--campaign", key,
                        "--stream", st["stream"], "--json"], capture_output=True, text=True,
                       timeout=300)  # fmt: skip
    assert p.returncode == 0, (p.stdout[-2000:], p.stderr[-2000:])
    rep = json.loads(p.stdout)
    assert rep["draws"] == st["draws"] and rep["draws_checked"] > 0, rep


def test_chained_replica_digests_equal(server_factory):
    master = server_factory()
    replica = server_factory(replicaof=("127.0.0.1", master.port))
    H.wait_link_up(replica.client())
    sub = server_factory(replicaof=("127.0.0.1", replica.port))
    H.wait_link_up(sub.client())
    rm = master.client()
    users, reqs, t_end = H.populate(rm, master.bclient())
    pin(rm, t_end + 10_000)
    raw = master.raw()
    cmds = []
    for i in range(3000):
        cmds.append(("LOTTERY.DRAW", "camp", f"c{i % 700}", "REQID", f"q{i % 5}")
                    if i % 4 == 0 else ("LOTTERY.DRAW", "camp", f"c{i % 700}"))
        if i % 50 == 0:
            cmds.append(("LOTTERY.GRANT", "camp", f"c{i % 700}", 2))
    cmds.append(("LOTTERY.RESUME", "other:{t}"))
    cmds += [("LOTTERY.DRAW", "other:{t}", f"o{i}") for i in range(200)]
    cmds.append(("EVAL", DRAW_LUA, 1, "camp", "lua-user"))
    for rep in raw.pipeline(cmds):
        assert not isinstance(rep, Err), rep
    raw.close()
    D.wait_acked(rm, 1)
    clients = [master.client(), replica.client(), sub.client()]
    D.wait_same_offset(clients)
    for key in ("camp", "other:{t}"):
        ds = [D.digest(c, key) for c in clients]
        assert ds[0] == ds[1] == ds[2], (key, ds)
    dbs = [D.db_digest(c) for c in clients]
    assert dbs[0] == dbs[1] == dbs[2], dbs
    clock = t_end + 20_000
    sample = users["camp"] + [f"c{i}".encode() for i in range(0, 700, 3)]
    views = [D.campaign_view(s, "camp", sample, clock) for s in (master, replica, sub)]
    D.assert_same_view(views[0], views[1], "replica")
    D.assert_same_view(views[0], views[2], "sub-replica")


def test_replica_never_redraws_pinned_master_clock(master_replica):
    """The master's clock is pinned far in the past; the replica's clock is real. The replica's
    state must carry the master's time and outcomes: it applied effects, it did not draw."""
    master, replica = master_replica
    rm = master.client()
    rs = replica.client()
    pinned = H.T0 + 12_345
    pin(rm, pinned)
    configure(rm, "c", "PRIZE", "a", 1, 500, "PRIZE", "b", 1, 500, "NOTHING", 2,
              "MAXWINS", "INF", "COOLDOWN", 60_000, "DAILY", 3)
    replies = {}
    for i in range(200):
        replies[f"p{i}"] = draw(rm, "c", f"p{i}")
    D.wait_acked(rm)
    # the replica's clock is not pinned (LOTTERY.DEBUG CLOCK is per node, never replicated)
    assert abs(int(rs.time()[0]) * 1000 - int(time.time() * 1000)) < 60_000
    for u, rep in replies.items():
        us = H.user(rs, "c", u)
        um = H.user(rm, "c", u)
        assert us["last_draw_ms"] == pinned == um["last_draw_ms"], (u, us, um)
        # USER answers with the answering node's clock: on the master (pinned) the draw was
        # today; by the replica's real clock that day is long over
        assert um["draws_today"] == 1 and um["chances_left"] == 2
        assert us["draws_today"] == 0 and us["chances_left"] == 3
        assert us["wins"] == (1 if rep[0] == "WIN" else 0)
        assert us["last_prize"] == rep[1]
        # the cooldown started at the master's pinned time has long run out by the replica's
        # real clock: proof that the replica reads the replicated time, not its own
        assert us["cooldown_left_ms"] == 0
    wins = [rep for rep in replies.values() if rep[0] == "WIN"]
    xr = rs.xrange("{c}:wins")
    assert [e[0] for e in xr] == [rep[2] for rep in wins]
    assert all(e[0].split("-")[0] == str(pinned) and "ts" not in e[1] for e in xr)
    assert [e[1]["prize"] for e in xr] == [rep[1] for rep in wins]
    # stream IDs were chosen by the master (the draw's time, under the module clock), and
    # the replica kept them verbatim
    assert xr == rm.xrange("{c}:wins")
    assert stats(rs, "c")["prizes"] == stats(rm, "c")["prizes"]
    assert D.digest(rs, "c") == D.digest(rm, "c")


def _real_apply_blobs(server_factory):
    """Real LOTTERY.APPLY blobs, taken from an AOF (no RDB preamble) after a rewrite."""
    s = server_factory(appendonly=True, extra_args=["--aof-use-rdb-preamble", "no",
                                                    "--appendfsync", "always"])
    r = s.client()
    pin(r, H.T0)
    configure(r, "src", "PRIZE", "a", 1, 100, "NOTHING", 1, "MAXWINS", "INF")
    for i in range(20):
        draw(r, "src", f"u{i}", reqid="x" if i % 2 else None)
    r.bgrewriteaof()
    D.wait_aof_rewrite(r)
    r.execute_command("LOTTERY.GRANT", "src", "u1", 7)
    r.execute_command("LOTTERY.BAN", "src", "u2", 100_000)
    r.execute_command("LOTTERY.PAUSE", "src")
    draw(r, "src", "u3")
    time.sleep(0.2)
    blobs = [(c[1], c[2]) for c in D.aof_commands(s.dir) if c[0].upper() == b"LOTTERY.APPLY"]
    assert len(blobs) >= 5, blobs
    s.stop()
    return blobs


def test_apply_refused_from_clients(server_factory):
    blobs = _real_apply_blobs(server_factory)
    s = server_factory()
    r = s.client()
    rb = s.bclient()
    pin(r, H.T0)
    configure(r, "src", "PRIZE", "a", 1, 100, "NOTHING", 1, "MAXWINS", "INF")
    for i in range(5):
        draw(r, "src", f"u{i}")
    before_digest = D.digest(rb, "src")
    before_stats = stats(r, "src")
    before_db = D.db_digest(r)
    raw = s.raw()
    msg = "ERR LOTTERY.APPLY is internal (replication and AOF only)"
    for key, blob in blobs:
        for target in (key, b"fresh"):
            # plain call
            assert raw.call("LOTTERY.APPLY", target, blob) == msg
            # inside MULTI/EXEC
            reps = raw.pipeline([("MULTI",), ("LOTTERY.APPLY", target, blob), ("EXEC",)])
            assert reps[0] == "OK"
            if isinstance(reps[2], Err):       # EXECABORT is fine too
                assert reps[2].startswith("EXECABORT"), reps
            else:
                assert reps[2] == [msg], reps
            # from Lua: redis.pcall gets the error, redis.call raises it
            rep = raw.call("EVAL", "return redis.pcall('LOTTERY.APPLY', KEYS[1], ARGV[1])",
                           1, target, blob)
            assert isinstance(rep, Err) and msg in rep, rep
            rep = raw.call("EVAL", "return redis.call('LOTTERY.APPLY', KEYS[1], ARGV[1])",
                           1, target, blob)
            assert isinstance(rep, Err) and "LOTTERY.APPLY is internal" in rep, rep
    # wrong arity / garbage from a client: refused the same way (nothing parsed first)
    assert isinstance(raw.call("LOTTERY.APPLY", "src", b"\x01\x02garbage"), Err)
    assert isinstance(raw.call("LOTTERY.APPLY", "src"), Err)
    raw.close()
    assert r.exists("fresh") == 0
    assert D.digest(rb, "src") == before_digest
    assert stats(r, "src") == before_stats
    assert D.db_digest(r) == before_db


def test_apply_refused_on_replica_from_clients(master_replica):
    """On a replica a client's LOTTERY.APPLY is refused too (READONLY or the internal error),
    while the master link keeps applying effects."""
    master, replica = master_replica
    rm = master.client()
    configure(rm, "c", "PRIZE", "a", 1, 100, "NOTHING", 1)
    draw(rm, "c", "u")
    D.wait_acked(rm)
    raw = replica.raw()
    rep = raw.call("LOTTERY.APPLY", "c", b"\x01\x00")
    assert isinstance(rep, Err) and (rep.startswith("READONLY") or "internal" in rep), rep
    raw.close()
    draw(rm, "c", "v")
    D.wait_acked(rm)
    assert D.digest(rm, "c") == D.digest(replica.client(), "c")


def test_acl_can_deny_internal_commands_by_name(master_replica):
    """Module commands have no ACL categories on Redis 7.0: +@all includes them, and they
    are denied by name (what docs/durability.md recommends). The master link is not a
    client under this ACL user, so replication keeps working."""
    master, replica = master_replica
    rm = master.client()
    assert rm.execute_command("ACL", "SETUSER", "app", "on", ">pw", "~*", "+@all",
                              "-lottery.apply", "-lottery.debug") == "OK"
    configure(rm, "c", "PRIZE", "a", 1, 100, "NOTHING", 1)
    raw = master.raw()
    assert raw.call("AUTH", "app", "pw") == "OK"
    rep = raw.call("LOTTERY.APPLY", "c", b"\x01")
    assert isinstance(rep, Err) and rep.startswith("NOPERM"), rep
    rep = raw.call("LOTTERY.DEBUG", "CLOCK", "REAL")
    assert isinstance(rep, Err) and rep.startswith("NOPERM"), rep
    for i in range(20):
        rep = raw.call("LOTTERY.DRAW", "c", f"u{i}")
        assert isinstance(rep, list) and rep[0] in (b"WIN", b"LOSE"), rep
    assert isinstance(raw.call("LOTTERY.STATS", "c"), list)
    raw.close()
    D.wait_acked(rm)
    assert D.digest(rm, "c") == D.digest(replica.client(), "c")
    # categories do not reach module commands on 7.0: removing @admin/@dangerous/@write
    # leaves LOTTERY.DEBUG callable (hence: name the commands)
    assert rm.execute_command("ACL", "SETUSER", "cats", "on", ">pw", "~*", "+@all",
                              "-@admin", "-@dangerous", "-@write") == "OK"
    raw = master.raw()
    assert raw.call("AUTH", "cats", "pw") == "OK"
    assert raw.call("SET", "k", "v").startswith("NOPERM")
    rep = raw.call("LOTTERY.DEBUG", "CLOCK", "REAL")
    if not isinstance(rep, Err):
        print("\nnote: module commands carry no ACL categories here (LOTTERY.DEBUG allowed "
              "despite -@admin -@dangerous)")
    raw.call("LOTTERY.DEBUG", "CLOCK", "REAL")
    raw.close()
