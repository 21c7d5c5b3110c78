"""VERIFIABLE campaigns under hostile clients and careless operators, against a real
redis-server with the module: the bound on a VERIFIABLE REDRAW table (each sell-out republishes
it), draws in MULTI/EXEC, scripts and pipelines reaching a replica and the AOF identical, a wins
stream at its last ID, and prize ids named like the entries' fixed fields."""
import time

import lottery_helpers as H

T0 = 1_800_000_000_000
LIMIT = 1024     # engine/src/limits.rs MAX_VERIFIABLE_REDRAW_PRIZES


def table(n, stock=b"1"):
    args = []
    for i in range(n):
        args += [b"PRIZE", b"p%d" % i, b"1", stock]
    return args


def test_verifiable_redraw_table_is_bounded(raw):
    """Refused past the limit, nothing changed (no key, no stream entry); at the limit it
    works; LOSE keeps larger tables."""
    stream = H.default_stream("k")
    r = raw.call("LOTTERY.CONFIGURE", "k", *table(LIMIT + 1), "SOLDOUT", "REDRAW", "VERIFIABLE")
    assert isinstance(r, H.Err) and f"at most {LIMIT} prizes" in r, r
    assert raw.call("EXISTS", "k", stream) == 0
    assert raw.call("LOTTERY.CONFIGURE", "k", *table(LIMIT + 1), "SOLDOUT", "LOSE",
                    "VERIFIABLE") == "OK"
    r = raw.call("LOTTERY.CONFIGURE", "k", "SOLDOUT", "REDRAW")
    assert isinstance(r, H.Err) and "SOLDOUT REDRAW" in r, r
    assert raw.call("LOTTERY.CONFIGURE", "k", *table(LIMIT), "SOLDOUT", "REDRAW") == "OK"
    # A large REDRAW campaign may not become VERIFIABLE.
    assert raw.call("LOTTERY.CONFIGURE", "r", *table(LIMIT + 1), "SOLDOUT", "REDRAW") == "OK"
    r = raw.call("LOTTERY.CONFIGURE", "r", "VERIFIABLE")
    assert isinstance(r, H.Err) and "SOLDOUT REDRAW" in r, r
    st = dict(zip(*[iter(raw.call("LOTTERY.STATS", "r"))] * 2))
    assert st[b"verifiable"] == 0
    assert raw.call("EXISTS", H.default_stream("r")) == 0


MAX = 2 ** 64 - 1


def stats_b(raw, key):
    flat = raw.call("LOTTERY.STATS", key)
    return dict(zip([bytes(k) for k in flat[0::2]], flat[1::2]))


def test_stream_near_its_last_id_refuses_a_draw_it_cannot_log(raw):
    """A wins stream moved (by anyone with XADD) to within one ID of the last possible one: a
    verifiable win needs two entries (the win, its draw entry), a LOG ALL loss one; a draw
    the stream cannot log whole is refused before anything changes, never answered with a
    win whose draw entry is missing."""
    assert raw.call("LOTTERY.DEBUG", "CLOCK", T0) == "OK"
    assert raw.call("LOTTERY.CONFIGURE", "w", "PRIZE", "a", 1, "INF", "NOTHING", 0,
                    "MAXWINS", "INF", "VERIFIABLE") == "OK"
    stream = H.default_stream("w")
    assert raw.call("LOTTERY.DRAW", "w", "u0")[0] == b"WIN"
    raw.call("XADD", stream, f"{MAX}-{MAX - 2}", "x", "y")        # room for two entries
    assert raw.call("LOTTERY.DRAW", "w", "u1")[0] == b"WIN"
    last = raw.call("XREVRANGE", stream, "+", "-", "COUNT", 2)
    assert [e[0] for e in last] == [f"{MAX}-{MAX}".encode(), f"{MAX}-{MAX - 1}".encode()]
    assert last[0][1][:2] == [b"type", b"draw"] and last[1][1][:2] == [b"user", b"u1"]
    before = stats_b(raw, "w")
    r = raw.call("LOTTERY.DRAW", "w", "u2")
    assert isinstance(r, H.Err) and "exhausted" in r, r
    assert stats_b(raw, "w") == before
    # One ID left: still refused (the win would take it and its draw entry would be lost).
    assert raw.call("LOTTERY.CONFIGURE", "v", "PRIZE", "a", 1, "INF", "NOTHING", 0,
                    "MAXWINS", "INF", "VERIFIABLE", "LOG", "ALL") == "OK"
    sv = H.default_stream("v")
    assert raw.call("LOTTERY.DRAW", "v", "u0")[0] == b"WIN"
    raw.call("XADD", sv, f"{MAX}-{MAX - 1}", "x", "y")
    before = stats_b(raw, "v")
    n = raw.call("XLEN", sv)
    r = raw.call("LOTTERY.DRAW", "v", "u1")
    assert isinstance(r, H.Err) and "exhausted" in r, r
    assert stats_b(raw, "v") == before and raw.call("XLEN", sv) == n
    # ROTATE needs two entries (the reveal, the new epoch): refused whole, nothing changed.
    st = stats_b(raw, "v")
    r = raw.call("LOTTERY.SEED", "v", "ROTATE")
    assert isinstance(r, H.Err) and "exhausted" in r, r
    assert stats_b(raw, "v") == st and raw.call("XLEN", sv) == n
    # LOG ALL: a loss needs its draw entry too.
    assert raw.call("LOTTERY.CONFIGURE", "v", "PRIZE", "a", 0, "INF", "NOTHING", 1) == "OK"
    raw.call("XADD", sv, f"{MAX}-{MAX}", "x", "y")
    before = stats_b(raw, "v")
    r = raw.call("LOTTERY.DRAW", "v", "u1")
    assert isinstance(r, H.Err) and "exhausted" in r, r
    assert stats_b(raw, "v") == before


def test_deleted_wins_stream_gets_the_epoch_and_table_again(server):
    """An operator deletes the wins stream mid-epoch: the next draw starts the new stream with
    the current epoch's entry and its table, so its draws stay verifiable (the reference
    verifier checks them once the seed is revealed)."""
    import subprocess
    import sys
    raw = server.raw()
    assert raw.call("LOTTERY.DEBUG", "CLOCK", T0) == "OK"
    assert raw.call("LOTTERY.CONFIGURE", "d", "PRIZE", "a", 1, "INF", "NOTHING", 1,
                    "MAXWINS", "INF", "VERIFIABLE", "LOG", "ALL") == "OK"
    stream = H.default_stream("d")
    for i in range(3):
        raw.call("LOTTERY.DRAW", "d", f"u{i}")
    assert raw.call("DEL", stream) == 1
    for i in range(3, 9):
        raw.call("LOTTERY.DRAW", "d", f"u{i}")
    kinds = [dict(fv).get(b"type") for _, fv in H.xrange_raw(raw, stream)]
    assert kinds[:2] == [b"epoch", b"table"] and b"draw" in kinds[2:4], kinds
    raw.call("LOTTERY.SEED", "d", "ROTATE")
    verifier = str(H.REPO / "docs" / "verify_draws.py")
    p = subprocess.run([sys.executable, verifier, f"redis://127.0.0.1:{server.port}", "d"],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "checked 6 mismatches 0" in p.stdout, p.stdout


def test_hostile_restore_of_the_verifiable_state(server):
    """A DUMP whose verifiable bytes are mutated (epoch 0, the largest epoch, a bad log code, a
    bad revealed flag, draw 0, truncated), CRC fixed so Redis hands it to the module: refused
    cleanly or loaded whole, never a crash; a loaded largest epoch refuses ROTATE (an epoch
    number must never repeat)."""
    raw = server.raw()
    assert raw.call("LOTTERY.DEBUG", "CLOCK", T0 + 10) == "OK"
    assert raw.call("LOTTERY.CONFIGURE", "h", "PRIZE", "a", 1, "INF", "NOTHING", 1,
                    "WINDOW", T0, T0 + 5, "VERIFIABLE") == "OK"
    seed = bytes.fromhex(raw.call("LOTTERY.SEED", "h", "REVEAL").decode())
    assert raw.call("CONFIG", "SET", "rdbcompression", "no") == "OK"    # the record as is
    dump = raw.call("DUMP", "h")
    body, at = dump[:-8], dump.find(seed)
    assert at > 9 and dump.count(seed) == 1
    # ... log(1) epoch(8) seed length(4) seed(32) from_draw(8) revealed(1)
    log_at, epoch_at, len_at, from_at, rev_at = at - 13, at - 12, at - 4, at + 32, at + 40

    def restore(mutated):
        payload = H.dump_with_crc(mutated[:-2] + mutated[-2:])
        return raw.call("RESTORE", "m", 0, payload, "REPLACE")

    def put(b, off, v):
        return b[:off] + v + b[off + len(v):]

    cases = {
        "epoch 0": put(body, epoch_at, (0).to_bytes(8, "little")),
        "draw 0": put(body, from_at, (0).to_bytes(8, "little")),
        "log code": put(body, log_at, b"\x07"),
        "revealed 2": put(body, rev_at, b"\x02"),
        "seed length": put(body, len_at, (31).to_bytes(4, "little")),
        "truncated": body[:rev_at] + body[-2:],
    }
    for name, b in cases.items():
        r = restore(b)
        assert isinstance(r, H.Err), (name, r)
        assert raw.call("EXISTS", "m") == 0, name
    assert raw.call("PING") == "PONG"
    # Past the largest epoch number (2^63 - 1, what STATS can reply): refused. The largest
    # loads; ROTATE, and a draw that would replace its revealed seed, then refuse to go on
    # (an epoch number must never repeat, and what is saved must load).
    for e in (2 ** 63, 2 ** 64 - 1):
        r = restore(put(body, epoch_at, e.to_bytes(8, "little")))
        assert isinstance(r, H.Err), (e, r)
    top = 2 ** 63 - 1
    assert restore(put(body, epoch_at, top.to_bytes(8, "little"))) == "OK"
    assert stats_b(raw, "m")[b"seed_epoch"] == top
    lens = lambda: [raw.call("XLEN", H.default_stream(k)) for k in ("h", "m")]  # noqa: E731
    n = lens()
    r = raw.call("LOTTERY.SEED", "m", "ROTATE")
    assert isinstance(r, H.Err) and "epoch numbers are exhausted" in r, r
    assert raw.call("LOTTERY.CONFIGURE", "m", "WINDOW", T0, T0 + 100) == "OK"
    r = raw.call("LOTTERY.DRAW", "m", "u")
    assert isinstance(r, H.Err) and "epoch numbers are exhausted" in r, r
    st = stats_b(raw, "m")
    assert st[b"seed_epoch"] == top and st[b"draws"] == 0
    assert lens() == n
    assert raw.call("RESTORE", "m2", 0, raw.call("DUMP", "m")) == "OK"


def _equal(master_raw, replica_raw, streams):
    master_raw.call("WAIT", 1, 5000)
    d = master_raw.call("DEBUG", "DIGEST")
    for s in streams:
        assert master_raw.call("XRANGE", s, "-", "+") == replica_raw.call("XRANGE", s, "-", "+"), s
    assert replica_raw.call("DEBUG", "DIGEST") == d
    return d


def test_transactions_scripts_and_operators_keep_replica_and_aof_identical(server_factory):
    """Verifiable draws and rotations in MULTI/EXEC, EVAL, FCALL and pipelines, a wins stream
    deleted, of the wrong type, at its last ID, a tiny maxmemory, BGREWRITEAOF mid-way: after
    each step the replica's DEBUG DIGEST and XRANGE equal the master's, and the AOF (both
    preamble settings) reloads to the same digest."""
    for preamble in ("yes", "no"):
        master = server_factory(appendonly=True,
                                extra_args=["--aof-use-rdb-preamble", preamble])
        replica = server_factory(replicaof=("127.0.0.1", master.port))
        H.wait_link_up(replica.client())
        raw, rraw = master.raw(), replica.raw()
        assert raw.call("LOTTERY.DEBUG", "CLOCK", T0) == "OK"
        assert rraw.call("LOTTERY.DEBUG", "CLOCK", T0) == "OK"
        stream = H.default_stream("k")
        assert raw.call("LOTTERY.CONFIGURE", "k", "PRIZE", "type", 2, 3, "PRIZE", "NOTHING", 1,
                        5, "PRIZE", "b", 1, "INF", "NOTHING", 1, "MAXWINS", "INF",
                        "SOLDOUT", "REDRAW", "TIER", "t", "PRIZE-WEIGHT", "b", 9,
                        "VERIFIABLE", "LOG", "ALL") == "OK"
        r = raw.pipeline([["MULTI"], ["LOTTERY.DRAW", "k", "u1"], ["LOTTERY.SEED", "k", "ROTATE"],
                          ["LOTTERY.DRAW", "k", "u2", "TIER", "t"], ["EXEC"]])
        assert isinstance(r[-1], list) and len(r[-1]) == 3, r
        _equal(raw, rraw, [stream])
        r = raw.call("EVAL", "return {redis.call('LOTTERY.DRAW', KEYS[1], 'u3'),"
                     "redis.call('LOTTERY.SEED', KEYS[1], 'rotate'),"
                     "redis.call('LOTTERY.DRAW', KEYS[1], 'u4', 'TIER', 't')}", 1, "k")
        assert isinstance(r, list), r
        assert raw.call("FUNCTION", "LOAD", "#!lua name=v\nredis.register_function('d', "
                        "function(k, a) return redis.call('LOTTERY.DRAW', k[1], a[1]) end)"
                        ) == b"v"
        raw.pipeline([["FCALL", "d", 1, "k", f"f{i}"] for i in range(12)])
        _equal(raw, rraw, [stream])
        assert raw.call("BGREWRITEAOF")
        raw.pipeline([["LOTTERY.DRAW", "k", f"p{i}"] for i in range(12)])
        # The stream deleted, then of the wrong type, then near its last ID.
        raw.call("DEL", stream)
        raw.pipeline([["LOTTERY.DRAW", "k", f"d{i}"] for i in range(4)])
        _equal(raw, rraw, [stream])
        raw.call("RENAME", stream, "saved")
        raw.call("SET", stream, "x")
        assert isinstance(raw.call("LOTTERY.DRAW", "k", "w"), H.Err)
        assert isinstance(raw.call("LOTTERY.SEED", "k", "ROTATE"), H.Err)
        raw.call("DEL", stream)
        raw.call("XADD", stream, f"{MAX}-{MAX - 2}", "x", "y")
        raw.pipeline([["LOTTERY.DRAW", "k", f"m{i}"] for i in range(3)])
        _equal(raw, rraw, [stream, "saved"])
        # A tiny maxmemory: refused (deny-oom) or whole.
        raw.call("DEL", stream)
        raw.call("CONFIG", "SET", "maxmemory", 1)
        r = raw.call("LOTTERY.DRAW", "k", "o")
        assert isinstance(r, H.Err) and "OOM" in r, r
        raw.call("CONFIG", "SET", "maxmemory", 0)
        assert raw.call("LOTTERY.CONFIGURE", "k", "NOTHING", 2) == "OK"
        raw.pipeline([["LOTTERY.DRAW", "k", f"q{i}", "TIER", "t"] for i in range(4)])
        d = _equal(raw, rraw, [stream, "saved"])
        for _ in range(100):
            if raw.call("INFO", "persistence").find(b"aof_rewrite_in_progress:0") >= 0:
                break
            time.sleep(0.05)
        assert raw.call("DEBUG", "LOADAOF") == "OK"
        assert raw.call("DEBUG", "DIGEST") == d, preamble
        master.restart()
        raw = master.raw()
        assert raw.call("DEBUG", "DIGEST") == d, preamble
        replica.cleanup()
        master.cleanup()


def test_a_copy_never_draws_with_nor_reveals_the_originals_seed(master_replica):
    """COPY of a VERIFIABLE campaign: revealing the original's seed (ROTATE) must not make the
    copy's draws predictable, and nothing done on the copy may reveal the original's live
    seed. The copy's first draw starts its own epoch; replica identical."""
    master, replica = master_replica
    raw, rraw = master.raw(), replica.raw()
    assert raw.call("LOTTERY.DEBUG", "CLOCK", T0) == "OK"
    assert raw.call("LOTTERY.CONFIGURE", "{c}a", "PRIZE", "a", 1, "INF", "NOTHING", 1,
                    "MAXWINS", "INF", "VERIFIABLE", "LOG", "ALL") == "OK"
    raw.call("LOTTERY.DRAW", "{c}a", "u0")
    assert raw.call("COPY", "{c}a", "{c}b") == 1
    a, b = stats_b(raw, "{c}a"), stats_b(raw, "{c}b")
    assert b[b"seed_epoch"] == a[b"seed_epoch"] == 1
    assert b[b"seed_commitment"] != a[b"seed_commitment"]
    # The copy's seed, shown by its ROTATE, is not the original's live one.
    shown_by_copy = raw.call("LOTTERY.SEED", "{c}b", "ROTATE")
    live = raw.call("LOTTERY.SEED", "{c}a", "ROTATE")
    assert shown_by_copy != live
    # A second copy, made before the original revealed: its draws start a new epoch.
    assert raw.call("COPY", "{c}a", "{c}x") == 1
    raw.call("LOTTERY.SEED", "{c}a", "ROTATE")
    raw.call("LOTTERY.DRAW", "{c}x", "u1")
    x = stats_b(raw, "{c}x")
    assert x[b"seed_epoch"] == 3 and x[b"seed_revealed"] == 0 and x[b"seed_from_draw"] == 2
    kinds = [dict(fv).get(b"type") for _, fv in H.xrange_raw(raw, H.default_stream("{c}x"))]
    assert kinds[:2] == [b"epoch", b"table"], kinds
    _equal(raw, rraw, [H.default_stream(k) for k in ("{c}a", "{c}b", "{c}x")])
