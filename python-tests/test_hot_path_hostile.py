"""Hostile clients and careless operators against the wins stream's explicit IDs, the
one-command win replication (LOTTERY.APPLY with the entry) and the statistics batches.

Every win checked here: the DRAW reply's win id is the entry's ID, the entry's fields are
`user prize draw [reqid] [ts]`, and the entry's time (its `ts`, else its ID's ms) is the
pinned clock. Replicas (after WAIT and equal offsets) and AOF restarts (with and without the
RDB preamble) hold byte-identical streams, the same stream metadata and the same digests.
"""
import time

import pytest

import durability_helpers as D
import lottery_helpers as H
from lottery_helpers import Err, configure, pin, stats

TB = 4_000_000_000_000  # a pinned clock well ahead of the real one (year 2096)
COUNTERS = ["draws", "wins", "losses", "replays", "rejected_cooldown", "rejected_quota",
            "rejected_already_won", "rejected_paused", "rejected_banned"]


# --------------------------------------------------------------------------------------------
# helpers


def _s(v):
    return v.decode() if isinstance(v, bytes) else v


def entry(raw, stream, eid):
    rep = raw.call("XRANGE", stream, eid, eid)
    assert isinstance(rep, list) and len(rep) == 1, (stream, eid, rep)
    got_id, flat = rep[0]
    assert _s(got_id) == eid
    return list(zip(flat[0::2], flat[1::2]))


def win(raw, key, user, at, stream, reqid=None, draw_no=None, exact=None):
    """One DRAW that must win, at pinned time `at`; checks its entry. exact: True (the ID
    carries the time, no ts), False (automatic ID with ts), None (either). Returns the id."""
    assert raw.call("LOTTERY.DEBUG", "CLOCK", at) == "OK"
    args = ["LOTTERY.DRAW", key, user] + (["REQID", reqid] if reqid is not None else [])
    rep = raw.call(*args)
    assert isinstance(rep, list) and rep[0] == b"WIN", (args, rep)
    eid = _s(rep[2])
    fields = entry(raw, stream, eid)
    names = [f for f, _ in fields]
    want = [b"user", b"prize", b"draw"] + ([b"reqid"] if reqid is not None else [])
    has_ts = names == want + [b"ts"]
    assert names == want or has_ts, (eid, fields)
    d = dict(fields)
    assert d[b"user"] == H._enc(user)
    assert d[b"prize"] == rep[1]
    if reqid is not None:
        assert d[b"reqid"] == H._enc(reqid)
    if draw_no is not None:
        assert d[b"draw"] == str(draw_no).encode()
    ms = int(eid.split("-")[0])
    if has_ts:
        assert int(d[b"ts"]) == at, (eid, fields, at)
    else:
        assert ms == at, (eid, fields, at)
    if exact is not None:
        assert has_ts == (not exact), (eid, fields, at, exact)
    # the stream's last entry is this one
    last = raw.call("XREVRANGE", stream, "+", "-", "COUNT", 1)
    assert _s(last[0][0]) == eid
    return eid


def xinfo(raw, stream):
    rep = raw.call("XINFO", "STREAM", stream)
    if isinstance(rep, Err):
        return str(rep)
    d = dict(zip([_s(k) for k in rep[0::2]], rep[1::2]))
    return {k: d.get(k) for k in ("length", "last-generated-id", "max-deleted-entry-id",
                                   "entries-added", "recorded-first-entry-id")}


def world(server, dbs=(0, 1)):
    """Every key of the given databases: type, digest, and for streams XRANGE and metadata."""
    raw = server.raw()
    out = {}
    try:
        for db in dbs:
            assert raw.call("SELECT", db) == "OK"
            for k in sorted(raw.call("KEYS", "*")):
                t = _s(raw.call("TYPE", k))
                v = {"type": t, "digest": _s(raw.call("DEBUG", "DIGEST-VALUE", k)[0])}
                if t == "stream":
                    v["xrange"] = raw.call("XRANGE", k, "-", "+")
                    v["xinfo"] = xinfo(raw, k)
                if t == "lottery01":
                    st = raw.call("LOTTERY.STATS", k)
                    v["counters"] = {_s(a): b for a, b in zip(st[0::2], st[1::2])
                                     if _s(a) in COUNTERS}
                out[(db, k)] = v
        out["digest"] = _s(raw.call("DEBUG", "DIGEST"))
    finally:
        raw.close()
    return out


def assert_same_world(a, b, what):
    assert a.keys() == b.keys(), (what, sorted(map(str, a.keys() ^ b.keys())))
    for k in a:
        assert a[k] == b[k], (what, k, a[k], b[k])


def synced(master, replica):
    rm = master.client()
    D.wait_acked(rm)
    D.wait_same_offset([rm, replica.client()])


# --------------------------------------------------------------------------------------------
# the wins stream under a hostile clock, hostile clients and careless operators


def _stream_torture(master, check):
    """Wins across everything that can stand between a win and its exact ID. `check()` is
    called at a few points (replica comparison, an AOF rewrite, ...)."""
    raw = master.raw()
    r = master.client()
    S = "{c}:wins"
    assert raw.call("LOTTERY.DEBUG", "CLOCK", TB) == "OK"
    configure(r, "c", "PRIZE", "p", 1, "INF", "NOTHING", 0, "MAXWINS", "INF")
    configure(r, "{c}d", "PRIZE", "q", 1, "INF", "NOTHING", 0, "MAXWINS", "INF", "STREAM", S)
    n = 0

    def w(key, at, exact=None, reqid=None, stream=S):
        nonlocal n
        n += 1
        return win(raw, key, f"u{n}", at, stream, reqid=reqid, exact=exact)

    # many wins in one millisecond: consecutive sequence numbers
    ids = [w("c", TB, True) for _ in range(12)]
    assert ids == [f"{TB}-{i}" for i in range(12)]
    # the clock steps back: automatic IDs, each with the time in ts
    assert w("c", TB - 5000, False) == f"{TB}-12"
    assert w("c", TB - 5000, False) == f"{TB}-13"
    assert w("c", 1, False) == f"{TB}-14"
    # and forward again: exact
    assert w("c", TB + 1, True) == f"{TB + 1}-0"
    check("clock")
    # a client writes a far-future ID into the wins stream
    far = TB + 10**9
    assert raw.call("XADD", S, f"{far}-5", "x", "y") == f"{far}-5".encode()
    assert w("c", TB + 2, False, reqid="r1") == f"{far}-6"
    # XDEL of the last entry: the stream's last ID stays
    assert raw.call("XDEL", S, f"{far}-6") == 1
    assert w("c", far, True) == f"{far}-7"
    assert raw.call("XADD", S, f"{far}-100", "x", "y") == f"{far}-100".encode()
    assert raw.call("XDEL", S, f"{far}-100") == 1
    assert w("c", far, False) == f"{far}-101"
    # the clock passes it: exact again, then XTRIM MAXLEN 0 keeps the last ID too
    assert w("c", far + 1, True) == f"{far + 1}-0"
    assert raw.call("XTRIM", S, "MAXLEN", 0) >= 1
    assert w("c", far + 1, True) == f"{far + 1}-1"
    assert w("c", far + 1, True, reqid="r2") == f"{far + 1}-2"
    check("xadd-xdel-xtrim")
    # two campaigns on one stream, same millisecond: each one's hint is stale in turn
    t = far + 10
    seen = [w("c", t), w("{c}d", t), w("{c}d", t), w("c", t), w("c", t + 1), w("{c}d", t + 1)]
    assert seen == sorted(seen, key=lambda i: tuple(map(int, i.split("-"))))
    assert len(set(seen)) == len(seen)
    # the stream deleted between wins: a fresh stream takes the next exact ID
    assert raw.call("DEL", S) == 1
    w("c", t + 1, True)
    w("{c}d", t + 1, True)
    # the stream replaced by another type: the win is refused, nothing changes
    assert raw.call("DEL", S) == 1
    assert raw.call("SET", S, "not a stream") == "OK"
    before = (raw.call("DEBUG", "DIGEST-VALUE", "c"), raw.call("LOTTERY.STATS", "c"))
    rep = raw.call("LOTTERY.DRAW", "c", "wrongtype")
    assert isinstance(rep, Err) and rep.startswith("WRONGTYPE"), rep
    assert (raw.call("DEBUG", "DIGEST-VALUE", "c"), raw.call("LOTTERY.STATS", "c")) == before
    assert raw.call("DEL", S) == 1
    w("c", t + 2, True)
    check("shared-deleted-wrongtype")
    # RENAME keeps the stream; COPY gets its own default stream; MOVE to another database
    assert raw.call("RENAME", "c", "c2") == "OK"
    w("c2", t + 2, True)
    assert raw.call("COPY", "c2", "c3") == 1
    w("c3", t + 2, True, stream="{c3}:wins")
    w("c2", t + 2, True)
    assert raw.call("MOVE", "c3", 1) == 1
    assert raw.call("SELECT", 1) == "OK"
    w("c3", t + 3, True, stream="{c3}:wins")
    assert raw.call("SELECT", 0) == "OK"
    # the stream renamed away and back under the campaign
    assert raw.call("RENAME", S, "{c}:old") == "OK"
    w("c2", t + 3, True)
    assert raw.call("DEL", S) == 1
    assert raw.call("RENAME", "{c}:old", S) == "OK"
    w("c2", t + 3, True)
    check("rename-copy-move")
    # DEBUG RELOAD loses the hints: the same millisecond again falls back, the next is exact
    assert raw.call("DEBUG", "RELOAD") == "OK"
    w("c2", t + 3, False)
    w("{c}d", t + 3, False)
    w("c2", t + 4, True)
    # the largest time the clock takes, then behind it
    big = H.I64_MAX
    assert w("c2", big, True) == f"{big}-0"
    assert w("c2", big, True) == f"{big}-1"
    assert w("{c}d", TB, False) == f"{big}-2"
    # a stream at its last possible ID: the win is refused, nothing changes
    assert raw.call("XADD", S, "18446744073709551615-18446744073709551615", "x", "y")
    before = (raw.call("DEBUG", "DIGEST-VALUE", "c2"), raw.call("LOTTERY.STATS", "c2"))
    for at in (TB, big):
        assert raw.call("LOTTERY.DEBUG", "CLOCK", at) == "OK"
        rep = raw.call("LOTTERY.DRAW", "c2", "exhausted", "REQID", "rx")
        assert isinstance(rep, Err) and "exhausted" in rep, rep
    assert (raw.call("DEBUG", "DIGEST-VALUE", "c2"), raw.call("LOTTERY.STATS", "c2")) == before
    assert raw.call("DEL", S) == 1
    # the campaign's last entry is far ahead of the clock: a fresh stream, an automatic ID
    rx = w("c2", TB, False, reqid="rx")
    # a REQID replay returns the same id, and appends nothing
    xlen = raw.call("XLEN", S)
    rep = raw.call("LOTTERY.DRAW", "c2", f"u{n}", "REQID", "rx")
    assert _s(rep[2]) == rx and raw.call("XLEN", S) == xlen
    w("c2", big, True)
    check("reload-limits")
    raw.close()


def test_wins_stream_torture_replica_identical(master_replica):
    master, replica = master_replica

    def check(what):
        synced(master, replica)
        assert_same_world(world(master), world(replica), what)

    _stream_torture(master, check)
    assert not master.critical_log_lines() and not replica.critical_log_lines()
    with open(replica.logfile) as f:
        assert "could not append" not in f.read()


@pytest.mark.parametrize("preamble", ["yes", "no"])
def test_wins_stream_torture_aof_restart_identical(server_factory, preamble):
    s = server_factory(appendonly=True, extra_args=["--aof-use-rdb-preamble", preamble])
    rewrites = []

    def check(what):
        if what == "xadd-xdel-xtrim":
            # a rewrite in the middle: the rest goes to the incremental file
            s.client().execute_command("BGREWRITEAOF")
            D.wait_aof_rewrite(s.client())
            rewrites.append(what)

    _stream_torture(s, check)
    assert rewrites
    want = world(s)
    s.restart()
    got = world(s)
    assert_same_world(want, got, f"AOF restart, preamble {preamble}")
    with open(s.logfile) as f:
        assert "could not append" not in f.read()


# --------------------------------------------------------------------------------------------
# statistics batches against hostile interleavings


def _refusal_campaign(r, key, stream=None):
    extra = ["STREAM", stream] if stream else []
    configure(r, key, "PRIZE", "p", 1, "INF", "NOTHING", 1, "COOLDOWN", 60_000, "MAXWINS", "INF",
              *extra)


def _counters(r, key):
    st = stats(r, key)
    return {k: st[k] for k in COUNTERS}


def test_a_stopped_replica_gets_the_batch_when_it_resumes(master_replica):
    """With the replica stopped: WAIT after a win counts no replica (the win is replicated
    with its command); a refusal's batch waits in the replication stream and the replica holds
    it once it caught up with the master's offset."""
    import os
    import signal
    master, replica = master_replica
    rm, rs = master.client(), replica.client()
    pin(rm, TB)
    _refusal_campaign(rm, "k")
    H.draw(rm, "k", "a")
    synced(master, replica)
    raw = master.raw()
    os.kill(replica.proc.pid, signal.SIGSTOP)
    try:
        assert raw.call("LOTTERY.DRAW", "k", "a")[0] == b"COOLDOWN"
        assert raw.call("LOTTERY.DRAW", "k", "b")[0] in (b"WIN", b"LOSE")
        t = time.time()
        assert raw.call("WAIT", 1, 300) == 0
        assert time.time() - t >= 0.25
    finally:
        os.kill(replica.proc.pid, signal.SIGCONT)
    synced(master, replica)
    assert _counters(rs, "k") == _counters(rm, "k")
    assert _counters(rm, "k")["rejected_cooldown"] == 1
    assert D.digest(rs, "k") == D.digest(rm, "k")


def test_debug_reload_in_the_same_iteration_as_refusals(master_replica):
    """Refusals, then DEBUG RELOAD before the event loop sleeps: the RDB it writes and loads
    holds the counters as replicas hold them (those refusals' counts are not in it), and
    master and replica agree afterwards, also after the next refusals."""
    master, replica = master_replica
    rm, rs = master.client(), replica.client()
    pin(rm, TB)
    _refusal_campaign(rm, "k")
    H.draw(rm, "k", "a")
    raw = master.raw()
    raw.pipeline([("LOTTERY.DRAW", "k", "a")] * 2)
    reps = raw.pipeline([("LOTTERY.DRAW", "k", "a")] * 3 + [("DEBUG", "RELOAD")])
    assert [x[0] for x in reps[:3]] == [b"COOLDOWN"] * 3 and reps[3] == "OK"
    synced(master, replica)
    assert _counters(rm, "k")["rejected_cooldown"] == 2
    assert _counters(rs, "k") == _counters(rm, "k")
    assert D.digest(rs, "k") == D.digest(rm, "k")
    raw.pipeline([("LOTTERY.DRAW", "k", "a")] * 4)
    H.draw(rm, "k", "b")
    synced(master, replica)
    assert _counters(rm, "k")["rejected_cooldown"] == 6
    assert D.digest(rs, "k") == D.digest(rm, "k")


def _touch_all(raw, keys_by_db, user):
    """A passing draw (a new user) on every campaign: what sends a moved campaign's counts."""
    for db, keys in keys_by_db.items():
        assert raw.call("SELECT", db) == "OK"
        for k in keys:
            rep = raw.call("LOTTERY.DRAW", k, user)
            assert rep[0] in (b"WIN", b"LOSE"), (db, k, rep)
    assert raw.call("SELECT", 0) == "OK"


def test_counters_same_names_in_many_databases(master_replica):
    """Campaigns with the same name in three databases; refusals interleaved with SELECT,
    SWAPDB, MOVE, COPY ... DB, RENAME, DEL + CONFIGURE and FLUSHDB in single iterations
    (pipelines, MULTI, Lua). After each campaign's next draw the replica equals the master."""
    master, replica = master_replica
    rm = master.client()
    pin(rm, TB)
    raw = master.raw()
    for db in (0, 1, 2):
        assert raw.call("SELECT", db) == "OK"
        for k in ("k", "{k}x"):
            assert raw.call("LOTTERY.CONFIGURE", k, "PRIZE", "p", 1, "INF", "NOTHING", 1,
                            "COOLDOWN", 60_000, "MAXWINS", "INF") == "OK"
            assert raw.call("LOTTERY.DRAW", k, "a")[0] in (b"WIN", b"LOSE")
    assert raw.call("SELECT", 0) == "OK"
    ref = ("LOTTERY.DRAW", "k", "a")
    refx = ("LOTTERY.DRAW", "{k}x", "a")
    reps = raw.pipeline([ref, ref, ("SELECT", 1), ref, refx, ("SELECT", 2), ref,
                         ("SWAPDB", 0, 1), ("SELECT", 0), ref, ref, ("SWAPDB", 1, 2),
                         ("SELECT", 1), ref, ("SELECT", 0)])
    assert not any(isinstance(x, Err) for x in reps), reps
    _touch_all(raw, {0: ["k", "{k}x"], 1: ["k", "{k}x"], 2: ["k", "{k}x"]}, "t1")
    synced(master, replica)
    assert_same_world(world(master, (0, 1, 2)), world(replica, (0, 1, 2)), "swapdb")
    # MOVE and COPY ... DB after refusals, within MULTI
    reps = raw.pipeline([("MULTI",), ref, refx, ("MOVE", "{k}x", 3), ref,
                         ("COPY", "k", "k", "DB", 3), ref, ("RENAME", "k", "{k}y"),
                         ("LOTTERY.CONFIGURE", "k", "PRIZE", "p", 1, "INF", "NOTHING", 1,
                          "COOLDOWN", 60_000, "MAXWINS", "INF"), ("LOTTERY.DRAW", "k", "a"),
                         ref, ref,
                         ("EXEC",)])
    assert isinstance(reps[-1], list) and not any(isinstance(x, Err) for x in reps[-1]), reps
    _touch_all(raw, {0: ["k", "{k}y"], 3: ["k", "{k}x"]}, "t2")
    synced(master, replica)
    assert_same_world(world(master, (0, 1, 2, 3)), world(replica, (0, 1, 2, 3)), "multi")
    # Lua: refusals, DEL, a new campaign under the name, more refusals
    script = """
        for i = 1, 5 do redis.call('LOTTERY.DRAW', KEYS[1], 'a') end
        redis.call('DEL', KEYS[1])
        redis.call('LOTTERY.CONFIGURE', KEYS[1], 'PRIZE', 'p', 1, 'INF', 'NOTHING', 1,
                   'COOLDOWN', 60000, 'MAXWINS', 'INF')
        for i = 1, 3 do redis.call('LOTTERY.DRAW', KEYS[1], 'b') end
        return redis.call('LOTTERY.STATS', KEYS[1])"""
    rep = raw.call("EVAL", script, 1, "{k}y")
    assert isinstance(rep, list), rep
    ev = dict(zip(rep[0::2], rep[1::2]))
    assert ev[b"rejected_cooldown"] == 2, rep
    assert _counters(rm, "{k}y")["rejected_cooldown"] == 2, (rep, stats(rm, "{k}y"))
    # refusals, then FLUSHDB, then the name configured again, in one pipeline
    reps = raw.pipeline([("SELECT", 3), ("LOTTERY.DRAW", "k", "a"), ("FLUSHDB",),
                         ("LOTTERY.CONFIGURE", "k", "PRIZE", "p", 1, "INF", "NOTHING", 1,
                          "COOLDOWN", 60_000, "MAXWINS", "INF"), ("LOTTERY.DRAW", "k", "z"),
                         ("LOTTERY.DRAW", "k", "z"), ("SELECT", 0)])
    assert not any(isinstance(x, Err) for x in reps), reps
    synced(master, replica)
    assert_same_world(world(master, (0, 1, 2, 3)), world(replica, (0, 1, 2, 3)), "lua-flush")
    # no further draw needed for campaigns refused where they stayed: every counter arrived
    reps = raw.pipeline([("SELECT", db) if i % 2 == 0 else ("LOTTERY.DRAW", "k", "a")
                         for db in (0, 1, 2) for i in (0, 1)] + [("SELECT", 0)])
    synced(master, replica)
    assert_same_world(world(master, (0, 1, 2, 3)), world(replica, (0, 1, 2, 3)), "plain")


def test_failover_command_after_refusals(server_factory):
    """Refusals, then FAILOVER in the same pipeline: the old master never sends the counts
    the write pause held back; demoted, it takes them back and equals its new master."""
    a = server_factory()
    b = server_factory(replicaof=("127.0.0.1", a.port))
    ra, rb = a.client(), b.client()
    H.wait_link_up(rb)
    pin(ra, TB)
    _refusal_campaign(ra, "k")
    raw = a.raw()
    raw.pipeline([("LOTTERY.DRAW", "k", f"u{i}") for i in range(10)])
    synced(a, b)
    sent = _counters(ra, "k")
    reps = raw.pipeline([("LOTTERY.DRAW", "k", f"u{i % 10}") for i in range(40)]
                        + [("FAILOVER",)])
    assert reps[-1] == "OK" and reps[0][0] == b"COOLDOWN"
    D.wait_role(rb, "master")
    D.wait_role(ra, "slave")
    H.wait_link_up(ra)
    deadline = time.time() + 10
    while time.time() < deadline and _counters(ra, "k") != _counters(rb, "k"):
        time.sleep(0.05)
    assert _counters(rb, "k") == sent
    assert _counters(ra, "k") == sent
    pin(rb, TB)
    assert H.draw(rb, "k", "u1")[0] == "COOLDOWN"
    synced(b, a)
    assert _counters(ra, "k") == _counters(rb, "k")
    assert D.digest(ra, "k") == D.digest(rb, "k")
    assert a.alive() and b.alive()


def test_client_pause_all_then_refusals_queue(master_replica):
    """CLIENT PAUSE ALL holds the refusals themselves; once it ends they are counted and
    reach the replica; the master stays up."""
    master, replica = master_replica
    rm = master.client()
    pin(rm, TB)
    _refusal_campaign(rm, "k")
    H.draw(rm, "k", "a")
    raw = master.raw()
    reps = raw.pipeline([("LOTTERY.DRAW", "k", "a")] * 5 + [("CLIENT", "PAUSE", 200, "ALL")]
                        + [("LOTTERY.DRAW", "k", "a")] * 5)
    assert [x[0] for x in reps[:5]] == [b"COOLDOWN"] * 5 and reps[5] == "OK"
    assert [x[0] for x in reps[6:]] == [b"COOLDOWN"] * 5
    synced(master, replica)
    assert _counters(rm, "k")["rejected_cooldown"] == 10
    assert_same_world(world(master), world(replica), "pause all")


# --------------------------------------------------------------------------------------------
# LOTTERY.APPLY: hostile arguments


def _win_applies(server_factory):
    """Real AOF commands of a campaign with wins with and without REQID: (all commands, the
    APPLY of a win without REQID, the APPLY of a win with one), and the state they make."""
    s = server_factory(appendonly=True, extra_args=["--aof-use-rdb-preamble", "no"])
    raw = s.raw()
    assert raw.call("LOTTERY.DEBUG", "CLOCK", TB) == "OK"
    configure(s.client(), "c", "PRIZE", "p", 1, "INF", "NOTHING", 0, "MAXWINS", "INF")
    for i in range(3):
        win(raw, "c", f"u{i}", TB, "{c}:wins")
    win(raw, "c", "r", TB + 1, "{c}:wins", reqid="rq")
    win(raw, "c", "u9", TB + 2, "{c}:wins")
    want = world(s)
    raw.close()
    s.stop()
    cmds = D.aof_commands(s.dir)
    applies = [c for c in cmds if c[0].upper() == b"LOTTERY.APPLY"]
    plain = next(c for c in applies if len(c) == 4)
    with_reqid = next(c for c in applies if len(c) == 5)
    assert with_reqid[3:] == [b"r", b"rq"]
    return cmds, plain, with_reqid, want


def test_apply_with_mismatched_arguments_from_an_aof(server_factory, tmp_path):
    """An AOF whose win effects come with a missing user, a missing or extra REQID, too many
    arguments, or twice: each bad one is refused whole (nothing applied, nothing appended), a
    repeated one appends nothing, and the server loads and equals the clean one."""
    cmds, plain, with_reqid, want = _win_applies(server_factory)
    hostile = [
        plain[:3],                                  # a win without its user
        plain + [b"extra-reqid"],                   # a REQID the effect does not have
        with_reqid[:4],                             # the REQID missing
        with_reqid + [b"more"],                     # too many arguments
        plain[:2],                                  # no effect at all
        [b"LOTTERY.APPLY", b"c", plain[2][:-3], plain[3]],   # a truncated effect
    ]
    out = []
    first_win = True
    for c in cmds:
        if c[0].upper() == b"LOTTERY.APPLY" and len(c) >= 4 and first_win:
            out += hostile
            out.append(c)
            out.append(c)                           # the same win again
            out += [[b"MULTI"]] + hostile + [[b"EXEC"]]
            first_win = False
        else:
            out.append(c)
    body = D.encode_many(out)
    d = tmp_path / "appendonlydir"
    d.mkdir()
    (d / "appendonly.aof.1.base.aof").write_bytes(body)
    (d / "appendonly.aof.manifest").write_text("file appendonly.aof.1.base.aof seq 1 type b\n")
    s = server_factory(appendonly=True, dir=str(tmp_path),
                       extra_args=["--aof-use-rdb-preamble", "no"])
    assert_same_world(want, world(s), "hostile AOF")
    with open(s.logfile) as f:
        log = f.read()
    assert log.count("could not append win") == 1, log[-2000:]
    # each bad command was answered with an error, which the loader logs; nothing else was
    refused = [l for l in log.splitlines() if "error to its AOF-loading-client" in l]
    assert len(refused) == 2 * len(hostile), refused
    assert s.critical_log_lines() == refused
    open(s.logfile, "w").close()     # expected: not a failure of the server
    # a client cannot run any of them, plainly, in MULTI or from Lua
    raw = s.raw()
    for c in hostile + [plain, with_reqid]:
        rep = raw.call(*c)
        assert isinstance(rep, Err) and ("internal" in rep or "wrong number" in rep), (c, rep)
        reps = raw.pipeline([("MULTI",), tuple(c), ("EXEC",)])
        assert isinstance(reps[1], Err) or isinstance(reps[2], Err) or \
            all(isinstance(x, Err) for x in reps[2]), reps
        rep = raw.call("EVAL", "return redis.pcall('LOTTERY.APPLY', unpack(ARGV))", 0, *c[1:])
        assert isinstance(rep, Err), rep
    raw.close()
    assert_same_world(want, world(s), "after client attempts")


def test_many_streams_and_prizes_through_the_name_cache(master_replica):
    """More stream names and prize ids than the module keeps made (40 campaigns, 3 prizes
    each, binary and long names), wins interleaved across them: every entry names its own
    prize and user, and the replica is identical."""
    master, replica = master_replica
    raw = master.raw()
    assert raw.call("LOTTERY.DEBUG", "CLOCK", TB) == "OK"
    keys = [f"{{k{i}}}" for i in range(40)]
    prize_ids = {}
    for i, k in enumerate(keys):
        ids = [b"p\x00%d-%d" % (i, j) + b"x" * (j * 50) for j in range(3)]
        prize_ids[k] = ids
        args = ["LOTTERY.CONFIGURE", k]
        for p in ids:
            args += ["PRIZE", p, 1, "INF"]
        assert raw.call(*args + ["NOTHING", 0, "MAXWINS", "INF"]) == "OK"
    cmds = []
    for rnd in range(5):
        for i, k in enumerate(keys):
            cmds.append(("LOTTERY.DRAW", k, b"user\xff%d-%d" % (i, rnd)))
    reps = raw.pipeline(cmds)
    for (_, k, u), rep in zip(cmds, reps):
        assert rep[0] == b"WIN", rep
        (eid, flat), = raw.call("XRANGE", f"{k}:wins", rep[2], rep[2])
        d = dict(zip(flat[0::2], flat[1::2]))
        assert d[b"user"] == u and d[b"prize"] == rep[1] and rep[1] in prize_ids[k]
        assert eid.split(b"-")[0] == str(TB).encode()
    synced(master, replica)
    assert_same_world(world(master, (0,)), world(replica, (0,)), "name cache")


def test_wins_in_scripts_and_transactions_across_databases(master_replica):
    """Wins and refusals in Lua and MULTI that switch databases, with same-named campaigns
    and streams in each: the replica has every entry in the right database."""
    master, replica = master_replica
    raw = master.raw()
    assert raw.call("LOTTERY.DEBUG", "CLOCK", TB) == "OK"
    for db in (0, 1):
        assert raw.call("SELECT", db) == "OK"
        assert raw.call("LOTTERY.CONFIGURE", "c", "PRIZE", f"p{db}", 1, "INF", "NOTHING", 0,
                        "MAXWINS", 1) == "OK"
    assert raw.call("SELECT", 0) == "OK"
    script = """
        local out = {}
        for i = 1, 4 do
            redis.call('SELECT', i % 2)
            out[#out + 1] = redis.call('LOTTERY.DRAW', KEYS[1], ARGV[1])
            out[#out + 1] = redis.call('LOTTERY.DRAW', KEYS[1], ARGV[1], 'REQID', 'x')
        end
        return out"""
    rep = raw.call("EVAL", script, 1, "c", "lua-user")
    assert isinstance(rep, list) and len(rep) == 8, rep
    assert [x[0] for x in rep[:2]] == [b"WIN", b"ALREADY_WON"]
    reps = raw.pipeline([("MULTI",), ("SELECT", 1), ("LOTTERY.DRAW", "c", "m"),
                         ("SELECT", 0), ("LOTTERY.DRAW", "c", "m", "REQID", "y"),
                         ("LOTTERY.DRAW", "c", "m", "REQID", "y"), ("EXEC",)])
    assert [x[0] for x in reps[-1][1::2]] == [b"WIN", b"WIN"], reps
    assert reps[-1][4] == reps[-1][3], reps
    for db, prize in ((0, b"p0"), (1, b"p1")):
        assert raw.call("SELECT", db) == "OK"
        ents = raw.call("XRANGE", "{c}:wins", "-", "+")
        assert {dict(zip(f[0::2], f[1::2]))[b"prize"] for _, f in ents} == {prize}
        assert len(ents) == 2
    assert raw.call("SELECT", 0) == "OK"
    synced(master, replica)
    assert_same_world(world(master), world(replica), "lua/multi databases")


def test_sequence_number_at_its_limit(master_replica):
    """A client's entry with the last sequence number of a millisecond: the campaign's next
    ID in that millisecond does not exist, so the entry goes to the next one with its ts."""
    master, replica = master_replica
    raw = master.raw()
    assert raw.call("LOTTERY.DEBUG", "CLOCK", TB) == "OK"
    configure(master.client(), "c", "PRIZE", "p", 1, "INF", "NOTHING", 0, "MAXWINS", "INF")
    S = "{c}:wins"
    top = 2**64 - 1
    assert win(raw, "c", "a", TB, S, exact=True) == f"{TB}-0"
    assert raw.call("XADD", S, f"{TB}-{top - 1}", "x", "y")
    assert win(raw, "c", "b", TB, S, exact=False) == f"{TB}-{top}"
    assert win(raw, "c", "c", TB, S, exact=False) == f"{TB + 1}-0"
    assert win(raw, "c", "d", TB + 1, S, exact=True) == f"{TB + 1}-1"
    synced(master, replica)
    assert_same_world(world(master), world(replica), "sequence limit")


def test_noted_name_taken_by_another_type(master_replica):
    """Refusals, then the campaign deleted and its name given to a string, in one iteration:
    the batch skips it, the server stays up, the replica equals the master."""
    master, replica = master_replica
    rm = master.client()
    pin(rm, TB)
    _refusal_campaign(rm, "k")
    H.draw(rm, "k", "a")
    raw = master.raw()
    reps = raw.pipeline([("LOTTERY.DRAW", "k", "a")] * 3
                        + [("DEL", "k"), ("SET", "k", "v"), ("LOTTERY.DRAW", "k", "a")])
    assert [x[0] for x in reps[:3]] == [b"COOLDOWN"] * 3
    assert isinstance(reps[-1], Err) and reps[-1].startswith("WRONGTYPE")
    synced(master, replica)
    assert replica.client().get("k") == "v"
    assert_same_world(world(master), world(replica), "name taken")


def test_wins_stream_with_a_ttl(master_replica):
    """The wins stream given a TTL that runs out between wins: the win finds it expired, the
    expiry reaches the replica before the new entry, and both hold the same stream."""
    master, replica = master_replica
    raw = master.raw()
    assert raw.call("LOTTERY.DEBUG", "CLOCK", TB) == "OK"
    configure(master.client(), "c", "PRIZE", "p", 1, "INF", "NOTHING", 0, "MAXWINS", "INF")
    S = "{c}:wins"
    for u in "abc":
        win(raw, "c", u, TB, S, exact=True)
    assert raw.call("PEXPIRE", S, 20) == 1
    synced(master, replica)
    time.sleep(0.05)
    assert win(raw, "c", "d", TB, S, exact=True) == f"{TB}-3"
    assert raw.call("XLEN", S) == 1
    synced(master, replica)
    assert_same_world(world(master), world(replica), "stream ttl")


# --------------------------------------------------------------------------------------------
# winners in the users' packed records: every way out of the packed form and back


def test_winner_records_beyond_the_packed_form(server_factory):
    """A winner past 14 wins, with a prize whose name index passes 4095, drawing at times past
    2^47 ms and back: USER shows the exact values at every step, and a replica, DEBUG RELOAD
    and an AOF restart hold the same."""
    m = server_factory(appendonly=True, extra_args=["--aof-use-rdb-preamble", "no"])
    rep_ = server_factory(replicaof=("127.0.0.1", m.port))
    H.wait_link_up(rep_.client())
    rb = m.bclient()
    raw = m.raw()
    assert raw.call("LOTTERY.DEBUG", "CLOCK", TB) == "OK"

    def conf(hi_weight, lo_weight):
        args = ["LOTTERY.CONFIGURE", "c", "PRIZE", "lo", lo_weight, "INF"]
        for i in range(4100):
            args += ["PRIZE", f"z{i}", 0, 0]
        args += ["PRIZE", "hi", hi_weight, "INF", "NOTHING", 0, "MAXWINS", "INF"]
        assert raw.call(*args) == "OK"

    conf(1, 0)
    others = []
    steps = [(TB, "hi"), (2**47 - 1, "hi"), (2**47, "hi"), (H.I64_MAX, "lo"), (TB, "lo"),
             (TB, "hi")] + [(TB + i, "hi" if i % 3 else "lo") for i in range(1, 12)]
    current = "hi"
    for n, (t, prize) in enumerate(steps, 1):
        if prize != current:
            conf(*((1, 0) if prize == "hi" else (0, 1)))
            current = prize
        win(raw, "c", "w", t, "{c}:wins")
        others.append(win(raw, "c", f"o{n}", t, "{c}:wins"))
        u = H.user(rb, "c", "w")
        assert (u["wins"], u["last_prize"], u["last_draw_ms"]) == (n, prize.encode(), t), (n, u)
    st = stats(rb, "c")
    assert (st["users"], st["wins"]) == (1 + len(steps), 2 * len(steps))
    users = ["w"] + [f"o{n}" for n in range(1, len(steps) + 1)]

    def view(s):
        c = s.bclient()
        pin(c, TB)
        return {"users": {u: H.user(c, "c", u) for u in users}, "stats": stats(c, "c"),
                "digest": D.digest(c, "c"), "world": world(s, (0,))}

    want = view(m)
    synced(m, rep_)
    assert view(rep_) == want
    assert raw.call("DEBUG", "RELOAD") == "OK"
    assert view(m) == want
    raw.close()
    m.restart()
    assert view(m) == want


def test_wins_stream_torture_chained_replica_and_its_aof(server_factory):
    """master -> replica -> sub-replica (with its own AOF): all three equal at every check, and
    the sub-replica's AOF, loaded by a standalone server, equals the master."""
    master = server_factory()
    mid = server_factory(replicaof=("127.0.0.1", master.port))
    H.wait_link_up(mid.client())
    sub = server_factory(replicaof=("127.0.0.1", mid.port), appendonly=True,
                         extra_args=["--aof-use-rdb-preamble", "no"])
    H.wait_link_up(sub.client())
    clients = [master.client(), mid.client(), sub.client()]

    def check(what):
        D.wait_acked(clients[0])
        D.wait_same_offset(clients)
        w = world(master)
        assert_same_world(w, world(mid), what + " (replica)")
        assert_same_world(w, world(sub), what + " (sub-replica)")

    _stream_torture(master, check)
    want = world(master)
    # the sub-replica's own AOF, read back by a standalone server
    D.wait_aof_rewrite(clients[2])
    sub.stop()
    alone = server_factory(appendonly=True, dir=sub.dir,
                           extra_args=["--aof-use-rdb-preamble", "no"])
    assert_same_world(want, world(alone), "sub-replica AOF")


def test_shutdown_save_right_after_refusals(master_replica):
    """Refusals, then SHUTDOWN SAVE in the same pipeline (the server exits before its event
    loop sleeps again, so their counts were never sent): the RDB holds what the replica holds,
    and after the restart master and replica agree."""
    master, replica = master_replica
    rm, rs = master.client(), replica.client()
    pin(rm, TB)
    _refusal_campaign(rm, "k")
    H.draw(rm, "k", "a")
    synced(master, replica)
    raw = master.raw()
    raw.sock.sendall(D.encode_many([("LOTTERY.DRAW", "k", "a")] * 3 + [("SHUTDOWN", "SAVE")]))
    master.proc.wait(20)
    raw.close()
    master.start()
    rm = master.client()
    H.wait_link_up(rs, timeout=20)
    pin(rm, TB)
    synced(master, replica)
    assert _counters(rs, "k") == _counters(rm, "k")
    assert D.digest(rs, "k") == D.digest(rm, "k")
    # the campaign goes on as usual
    assert H.draw(rm, "k", "a")[0] == "COOLDOWN"
    synced(master, replica)
    assert D.digest(rs, "k") == D.digest(rm, "k")


def test_save_right_after_refusals_keeps_them(master_replica):
    """Refusals, then SAVE in the same pipeline: the counts stay on the master and reach the
    replica; a restart from that RDB agrees with the replica again."""
    master, replica = master_replica
    rm, rs = master.client(), replica.client()
    pin(rm, TB)
    _refusal_campaign(rm, "k")
    H.draw(rm, "k", "a")
    # A background save still running (the replica's sync) would refuse the SAVE.
    deadline = time.time() + 20
    while rm.info("persistence")["rdb_bgsave_in_progress"] and time.time() < deadline:
        time.sleep(0.05)
    raw = master.raw()
    reps = raw.pipeline([("LOTTERY.DRAW", "k", "a")] * 3 + [("SAVE",)])
    assert reps[-1] == "OK"
    synced(master, replica)
    assert _counters(rm, "k")["rejected_cooldown"] == 3
    assert _counters(rs, "k") == _counters(rm, "k")
    raw.close()
    master.stop()
    master.start()
    rm = master.client()
    H.wait_link_up(rs, timeout=20)
    synced(master, replica)
    assert _counters(rs, "k") == _counters(rm, "k")
    assert D.digest(rs, "k") == D.digest(rm, "k")


def test_sigterm_during_a_flood_of_refusals(master_replica):
    """SIGTERM (how service managers stop Redis) while a client floods refusals: the shutdown
    runs between an iteration's commands and the next sleep; the RDB it writes agrees with
    the replica, which resynchronizes partially after the restart."""
    import os
    import signal
    import threading
    master, replica = master_replica
    rm, rs = master.client(), replica.client()
    master.extra_args += ["--save", "3600 1"]
    rm.config_set("save", "3600 1")
    pin(rm, TB)
    _refusal_campaign(rm, "k")
    users = [f"u{i}" for i in range(50)]
    H.RawClient(master.port).pipeline([("LOTTERY.DRAW", "k", u) for u in users])
    synced(master, replica)
    batch = D.encode_many([("LOTTERY.DRAW", "k", u) for u in users] * 40)
    stop = threading.Event()

    def flood():
        try:
            c = H.RawClient(master.port, timeout=5)
            while not stop.is_set():
                c.sock.sendall(batch)
                for _ in range(len(users) * 40):
                    c._take()
        except (OSError, ConnectionError):
            pass

    t = threading.Thread(target=flood, daemon=True)
    t.start()
    time.sleep(0.3)
    os.kill(master.proc.pid, signal.SIGTERM)
    master.proc.wait(20)
    stop.set()
    t.join(10)
    master.start()
    rm = master.client()
    H.wait_link_up(rs, timeout=20)
    synced(master, replica)
    with open(replica.logfile) as f:
        assert "Successful partial resynchronization" in f.read()
    assert _counters(rs, "k") == _counters(rm, "k")
    assert D.digest(rs, "k") == D.digest(rm, "k")


# --------------------------------------------------------------------------------------------
# a seeded random mix of all of the above


def _random_ops(rnd, n, databases=False):
    """Commands mixing wins and refusals with clock jumps, hostile stream writes and operator
    actions, in pipelines, MULTI and Lua; `databases`: also SELECT, SWAPDB, MOVE, COPY ... DB,
    DEL + CONFIGURE again, SAVE and short write pauses (the pipeline ends in database 0)."""
    keys = ["{f}a", "{f}b", "{f}c"]           # {f}a and {f}b share {f}:wins
    clock = TB
    ops = []
    for i in range(n):
        x = rnd.random()
        if databases and rnd.random() < 0.12:
            y = rnd.random()
            if y < 0.3:
                ops.append(("SELECT", rnd.randrange(2)))
            elif y < 0.4:
                ops.append(("SWAPDB", 0, 1))
            elif y < 0.5:
                ops.append(("MOVE", rnd.choice(keys), 1))
            elif y < 0.6:
                ops.append(("COPY", rnd.choice(keys), rnd.choice(keys), "DB", 1, "REPLACE"))
            elif y < 0.75:
                ops.append(("DEL", "{f}b"))
                ops.append(("LOTTERY.CONFIGURE", "{f}b", "PRIZE", "q", 1, 50, "NOTHING", 1,
                            "COOLDOWN", 1500, "MAXWINS", 3, "STREAM", "{f}:wins"))
            elif y < 0.85:
                ops.append(("SAVE",))
            else:
                ops.append(("CLIENT", "PAUSE", 10, rnd.choice(["WRITE", "ALL"])))
            continue
        if x < 0.08:
            clock = max(1, clock + rnd.choice([-5000, -1, 0, 1, 1, 2, 1000]))
            ops.append(("LOTTERY.DEBUG", "CLOCK", clock))
        elif x < 0.60:
            k = rnd.choice(keys)
            u = f"u{rnd.randrange(40)}"
            if rnd.random() < 0.3:
                ops.append(("LOTTERY.DRAW", k, u, "REQID", f"r{rnd.randrange(20)}"))
            else:
                ops.append(("LOTTERY.DRAW", k, u))
        elif x < 0.65:
            s = rnd.choice(["{f}:wins", "{f}c:wins"])
            ops.append(("XADD", s, f"{clock + rnd.choice([-10, 0, 10, 10**6])}-{rnd.randrange(5)}",
                        "x", "y"))
        elif x < 0.68:
            ops.append(("XTRIM", rnd.choice(["{f}:wins", "{f}c:wins"]), "MAXLEN",
                        rnd.randrange(3)))
        elif x < 0.70:
            ops.append(("DEL", rnd.choice(["{f}:wins", "{f}c:wins"])))
        elif x < 0.73:
            ops.append(("RENAME", "{f}c", "{f}tmp"))
            ops.append(("RENAME", "{f}tmp", "{f}c"))
        elif x < 0.76:
            ops.append(("LOTTERY.USER", rnd.choice(keys), f"u{rnd.randrange(40)}"))
        elif x < 0.78:
            ops.append(("LOTTERY.BAN", rnd.choice(keys), f"u{rnd.randrange(40)}", 3000))
        elif x < 0.80:
            ops.append(("LOTTERY.PAUSE", rnd.choice(keys)))
        elif x < 0.83:
            ops.append(("LOTTERY.RESUME", rnd.choice(keys)))
        elif x < 0.86:
            ops.append(("MULTI",))
            for _ in range(rnd.randrange(1, 6)):
                ops.append(("LOTTERY.DRAW", rnd.choice(keys), f"u{rnd.randrange(40)}"))
            ops.append(("EXEC",))
        elif x < 0.88:
            ops.append(("EVAL", "for i = 1, #ARGV do redis.call('LOTTERY.DRAW', KEYS[1], ARGV[i])"
                        " end return 1", 1, rnd.choice(keys),
                        *[f"u{rnd.randrange(40)}" for _ in range(rnd.randrange(1, 5))]))
        elif x < 0.885:
            # (with databases: a campaign moved after refusals and reloaded before its next
            # draw keeps them unsent, see test_moved_after_refusals_then_reloaded)
            ops.append(("DEBUG", "RELOAD") if not databases else ("PING",))
        elif x < 0.89:
            ops.append(("BGREWRITEAOF",))
        else:
            k = rnd.choice(keys)
            ops.append(("LOTTERY.DRAW", k, f"new{i}"))
    if databases:
        ops.append(("SELECT", 0))
    return ops


def _setup_random(raw):
    assert raw.call("LOTTERY.DEBUG", "CLOCK", TB) == "OK"
    common = ["NOTHING", 1, "COOLDOWN", 1500, "MAXWINS", 3, "DAILY", 6, "IDEMPOTENCY", 60_000]
    assert raw.call("LOTTERY.CONFIGURE", "{f}a", "PRIZE", "p", 3, "INF", *common,
                    "STREAM", "{f}:wins") == "OK"
    assert raw.call("LOTTERY.CONFIGURE", "{f}b", "PRIZE", "q", 1, 50, *common,
                    "STREAM", "{f}:wins") == "OK"
    assert raw.call("LOTTERY.CONFIGURE", "{f}c", "PRIZE", "r", 2, "INF", "PRIZE", "s", 1, 5,
                    *common) == "OK"


@pytest.mark.parametrize("seed", [1, 2, 3, -4, -5])
def test_random_mix_replica_and_aof_identical(server_factory, seed):
    """Seeds below 0 add databases (SELECT, SWAPDB, MOVE, COPY ... DB), DEL + CONFIGURE,
    SAVE and write pauses."""
    import random
    rnd = random.Random(seed)
    databases = seed < 0
    master = server_factory(appendonly=True, extra_args=["--aof-use-rdb-preamble",
                                                         "yes" if seed % 2 else "no"])
    replica = server_factory(replicaof=("127.0.0.1", master.port))
    H.wait_link_up(replica.client())
    raw = master.raw()
    _setup_random(raw)
    clock = TB
    wins = 0
    for chunk in range(6):
        ops = _random_ops(rnd, 250, databases)
        reps = raw.pipeline(ops)
        wins += sum(1 for x in reps if isinstance(x, list) and x and x[0] == b"WIN")
        queued = False
        db = 0
        # an entry is looked up in database 0 at the end: entries made before the last
        # SWAPDB are in the other database's stream now (whose IDs may be the same)
        last_swap = max([i for i, op in enumerate(ops) if op[0] == "SWAPDB"], default=-1)
        for i, (op, rep) in enumerate(zip(ops, reps)):
            if op[0] == "SELECT":
                db = op[1]
            if op[0] == "LOTTERY.DEBUG":
                clock = op[2]
            if db != 0 or i < last_swap or op[0] in ("SWAPDB", "MOVE", "COPY", "DEL", "SAVE",
                                                     "CLIENT"):
                continue
            if op[0] in ("MULTI", "EXEC"):
                queued = op[0] == "MULTI"
                assert not isinstance(rep, Err), (op, rep)
                continue
            if queued:
                assert rep == "QUEUED", (op, rep)
                continue
            if op[0] == "DEBUG" or op[0] == "BGREWRITEAOF":
                assert not isinstance(rep, Err) or "in progress" in rep, (op, rep)
                continue
            if op[0] != "LOTTERY.DRAW":
                continue
            if databases and isinstance(rep, Err) and "no such campaign" in rep:
                continue
            assert isinstance(rep, list), (op, rep)
            if rep[0] != b"WIN":
                continue
            stream = "{f}c:wins" if op[1] == "{f}c" else "{f}:wins"
            got = raw.call("XRANGE", stream, rep[2], rep[2])
            if not got:
                continue                      # deleted or trimmed later in the pipeline
            d = dict(zip(got[0][1][0::2], got[0][1][1::2]))
            if d.get(b"user") != op[2].encode() or d.get(b"prize") != rep[1]:
                continue                      # the stream was recreated; an older entry
            when = int(d[b"ts"]) if b"ts" in d else int(rep[2].split(b"-")[0])
            assert when == clock, (op, rep, d, clock)
        if databases:
            # a campaign moved, copied or swapped after refusals sends them with its next draw
            draws = [("LOTTERY.DRAW", k, f"t{chunk}") for k in ("{f}a", "{f}b", "{f}c")]
            raw.pipeline(draws + [("SELECT", 1)] + draws + [("SELECT", 0)])
        synced(master, replica)
        assert_same_world(world(master), world(replica), f"seed {seed} chunk {chunk}")
    assert wins > 50
    D.wait_aof_rewrite(master.client())
    want = world(master)
    raw.close()
    master.restart()
    assert_same_world(want, world(master), f"seed {seed} AOF restart")
    for s in (master, replica):
        with open(s.logfile) as f:
            assert "could not append" not in f.read()


def test_moved_after_refusals_sends_them_with_its_next_draw(master_replica):
    """Commands held by CLIENT PAUSE run when it ends, after that iteration's batch went out:
    a refusal there, then SWAPDB; the campaign's next draw comes before the next batch (the
    same round) under its new database, and must still send the counts."""
    master, replica = master_replica
    raw = master.raw()
    _setup_random(raw)
    reps = raw.pipeline([("CLIENT", "PAUSE", 10, "ALL"), ("LOTTERY.DRAW", "{f}a", "u1"),
                         ("LOTTERY.DRAW", "{f}a", "u1"), ("SWAPDB", 0, 1)])
    assert reps[2][0] == b"COOLDOWN" and reps[3] == "OK"
    reps = raw.pipeline([("SELECT", 1), ("LOTTERY.DRAW", "{f}a", "u2"), ("SELECT", 0)])
    assert reps[1][0] in (b"WIN", b"LOSE")
    synced(master, replica)
    rs = replica.raw()
    assert raw.call("SELECT", 1) == rs.call("SELECT", 1) == "OK"
    assert raw.call("LOTTERY.STATS", "{f}a") == rs.call("LOTTERY.STATS", "{f}a")
    assert raw.call("DEBUG", "DIGEST-VALUE", "{f}a") == rs.call("DEBUG", "DIGEST-VALUE", "{f}a")
    rs.close()
    assert _counters_raw(raw, "{f}a")["rejected_cooldown"] == 1


def _counters_raw(raw, key):
    st = raw.call("LOTTERY.STATS", key)
    return {_s(k): v for k, v in zip(st[0::2], st[1::2]) if _s(k) in COUNTERS}


def test_moved_after_refusals_then_reloaded(master_replica):
    """A campaign renamed after refusals in the same iteration keeps them unsent until its
    next draw; DEBUG RELOAD before that draw saves and loads it as replicas hold it."""
    master, replica = master_replica
    rm = master.client()
    pin(rm, TB)
    _refusal_campaign(rm, "k")
    H.draw(rm, "k", "a")
    raw = master.raw()
    raw.pipeline([("LOTTERY.DRAW", "k", "a")] * 3 + [("RENAME", "k", "k2")])
    assert raw.call("DEBUG", "RELOAD") == "OK"
    H.draw(rm, "k2", "b")
    synced(master, replica)
    assert _counters(rm, "k2") == _counters(replica.client(), "k2")
    assert D.digest(rm, "k2") == D.digest(replica.client(), "k2")
