"""VERIFIABLE campaigns end to end against a real redis-server with the module: the epoch,
table, win and draw entries of the wins stream in order with their exact fields; every
draw's pick recomputed here (hmac/hashlib, independently of the module) from the seed that
LOTTERY.SEED ROTATE reveals, checked against the commitment published before the draws;
REVEAL after the WINDOW; the errors; and a replica holding the same entries and STATS."""
import hashlib
import hmac

import lottery_helpers as H

T0 = 1_800_000_000_000
KEY = b"v{t}\xff\x00k"           # binary-safe: the HMAC message takes the key's raw bytes
WEIGHTS = [(b"a", 3), (b"b", 1), (b"c", 0)]
NOTHING = 4
USERS = [b"u%d" % i for i in range(24)] + [b"\x00\xff\xfe", "\U0001F600".encode()]


def words(seed, key, s):
    k = 0
    while True:
        msg = b"redis-lottery/v1\x00" + key + b"\x00" + str(s).encode() + b"\x00" + str(k).encode()
        yield int.from_bytes(hmac.new(seed, msg, hashlib.sha256).digest()[:8], "big")
        k += 1


def uniform_below(ws, n):
    limit = (2 ** 64 // n) * n
    for w in ws:
        if w < limit:
            return w % n


def pick(seed, key, s, weights):
    x = uniform_below(words(seed, key, s), sum(weights))
    acc = 0
    for i, w in enumerate(weights):
        acc += w
        if x < acc:
            return i
    raise AssertionError("x past the table")


def entries(raw, stream):
    return [(eid, dict(fv), [f for f, _ in fv]) for eid, fv in H.xrange_raw(raw, stream)]


def stats_b(raw, key):
    flat = raw.call("LOTTERY.STATS", key)
    return dict(zip([bytes(k) for k in flat[0::2]], flat[1::2]))


def test_verifiable_draws_end_to_end(server_factory):
    master = server_factory()
    replica = server_factory(replicaof=("127.0.0.1", master.port))
    H.wait_link_up(replica.client())
    raw, rraw = master.raw(), replica.raw()
    assert raw.call("LOTTERY.DEBUG", "CLOCK", T0) == "OK"
    args = []
    for pid, w in WEIGHTS:
        args += [b"PRIZE", pid, str(w).encode(), b"INF"]
    args += [b"NOTHING", str(NOTHING).encode(), b"MAXWINS", b"INF", b"VERIFIABLE", b"LOG", b"ALL"]
    assert raw.call("LOTTERY.CONFIGURE", KEY, *args) == "OK"
    st = stats_b(raw, KEY)
    stream = bytes(st[b"stream"])
    assert st[b"verifiable"] == 1 and st[b"seed_log"] == b"ALL" and st[b"seed_epoch"] == 1
    assert st[b"seed_from_draw"] == 1 and st[b"seed_revealed"] == 0
    commitment = bytes(st[b"seed_commitment"])
    assert len(commitment) == 64 and commitment == commitment.lower()
    # VERIFIABLE again changes nothing; LOG changes the log alone.
    assert raw.call("LOTTERY.CONFIGURE", KEY, "VERIFIABLE") == "OK"
    assert stats_b(raw, KEY) == st
    assert raw.call("LOTTERY.CONFIGURE", KEY, "VERIFIABLE", "LOG", "WINS") == "OK"
    st = stats_b(raw, KEY)
    assert (st[b"seed_log"], st[b"seed_epoch"], bytes(st[b"seed_commitment"])) == \
        (b"WINS", 1, commitment)
    assert raw.call("LOTTERY.CONFIGURE", KEY, "VERIFIABLE", "LOG", "all") == "OK"

    outcomes = []
    for i, u in enumerate(USERS):
        raw.call("LOTTERY.DEBUG", "CLOCK", T0 + i // 3)    # several draws a millisecond
        rep = raw.call("LOTTERY.DRAW", KEY, u)
        assert rep[0] in (b"WIN", b"LOSE"), rep
        outcomes.append((u, rep[1]))

    # LOTTERY.SEED ROTATE reveals the first epoch's seed and starts the second.
    old = raw.call("LOTTERY.SEED", KEY, "ROTATE")
    assert len(old) == 64
    seed = bytes.fromhex(old.decode())
    assert hashlib.sha256(seed).hexdigest().encode() == commitment
    st = stats_b(raw, KEY)
    assert st[b"seed_epoch"] == 2 and st[b"seed_from_draw"] == len(USERS) + 1
    assert bytes(st[b"seed_commitment"]) != commitment and st[b"seed_revealed"] == 0

    es = entries(raw, stream)
    ids = [e[0] for e in es]
    assert ids == sorted(ids, key=lambda x: tuple(int(p) for p in x.split(b"-")))
    # Every ID carries the command's time (the clock was pinned).
    assert all(int(e.split(b"-")[0]) in range(T0, T0 + 10) for e in ids)
    eid, f, order = es[0]
    assert order == [b"type", b"epoch", b"commitment", b"from_draw"]
    assert f == {b"type": b"epoch", b"epoch": b"1", b"commitment": commitment, b"from_draw": b"1"}
    eid, f, order = es[1]
    assert order == [b"type", b"from_draw", b"tier", b"a", b"b", b"c", b"NOTHING"]
    assert f == {b"type": b"table", b"from_draw": b"1", b"tier": b"", b"a": b"3", b"b": b"1",
                 b"c": b"0", b"NOTHING": b"4"}
    table = [w for _, w in WEIGHTS] + [NOTHING]
    ids_of = [p for p, _ in WEIGHTS] + [b""]
    rest = es[2:]
    wins = 0
    for s, (u, prize) in enumerate(outcomes, start=1):
        if prize is not None:
            _, f, order = rest.pop(0)
            assert order == [b"user", b"prize", b"draw"], order
            assert (f[b"user"], f[b"prize"], f[b"draw"]) == (u, prize, str(s).encode())
            wins += 1
        _, f, order = rest.pop(0)
        assert order == [b"type", b"draw", b"user", b"outcome", b"pick"], order
        expect = ids_of[pick(seed, KEY, s, table)]
        assert f == {b"type": b"draw", b"draw": str(s).encode(), b"user": u,
                     b"outcome": prize or b"", b"pick": expect}, (s, f)
    assert 0 < wins < len(USERS)
    # Then the reveal of epoch 1 and the epoch entry of epoch 2.
    assert [(x[1], x[2]) for x in rest] == [
        ({b"type": b"reveal", b"epoch": b"1", b"seed": old}, [b"type", b"epoch", b"seed"]),
        ({b"type": b"epoch", b"epoch": b"2", b"commitment": bytes(st[b"seed_commitment"]),
          b"from_draw": str(len(USERS) + 1).encode()},
         [b"type", b"epoch", b"commitment", b"from_draw"]),
    ]

    # The replica holds the same entries and the same STATS.
    assert raw.call("WAIT", 1, 5000) == 1
    assert H.xrange_raw(rraw, stream) == H.xrange_raw(raw, stream)
    assert stats_b(rraw, KEY) == stats_b(raw, KEY)
    assert rraw.call("LOTTERY.SEED", KEY, "ROTATE").startswith("READONLY")


def test_seed_reveal_errors_and_log_wins(server):
    raw = server.raw()
    raw.call("LOTTERY.DEBUG", "CLOCK", T0)
    assert raw.call("LOTTERY.CONFIGURE", "p", "PRIZE", "a", "1", "INF") == "OK"
    H.expect_err(raw, "LOTTERY.SEED", "nokey", "ROTATE")
    assert "not VERIFIABLE" in H.expect_err(raw, "LOTTERY.SEED", "p", "ROTATE")
    assert H.expect_err(raw, "LOTTERY.SEED", "p", "FLIP") == "ERR syntax error"
    assert "cannot be turned off" in H.expect_err(raw, "LOTTERY.CONFIGURE", "p", "VERIFIABLE", "OFF")
    raw.call("SET", "str", "x")
    H.expect_err(raw, "LOTTERY.SEED", "str", "REVEAL", prefix="WRONGTYPE")
    # A wins stream of the wrong type: nothing changes.
    raw.call("SET", "{q}:bad", "x")
    H.expect_err(raw, "LOTTERY.CONFIGURE", "{q}", "PRIZE", "a", "1", "INF", "STREAM", "{q}:bad",
                 "VERIFIABLE", prefix="WRONGTYPE")
    assert raw.call("EXISTS", "{q}") == 0

    # LOG WINS (the default): draw entries for wins only.
    assert raw.call("LOTTERY.CONFIGURE", "w", "PRIZE", "a", "1", "INF", "NOTHING", "1",
                    "MAXWINS", "INF", "WINDOW", 1, T0 + 10, "VERIFIABLE") == "OK"
    stream = bytes(stats_b(raw, "w")[b"stream"])
    won = 0
    for i in range(40):
        rep = raw.call("LOTTERY.DRAW", "w", f"u{i}")
        won += rep[0] == b"WIN"
    es = entries(raw, stream)
    kinds = [f.get(b"type", b"win") for _, f, _ in es]
    assert kinds.count(b"draw") == won == kinds.count(b"win") and 0 < won < 40
    assert kinds[:2] == [b"epoch", b"table"]
    assert "WINDOW has ended" in H.expect_err(raw, "LOTTERY.SEED", "w", "REVEAL")
    raw.call("LOTTERY.DEBUG", "CLOCK", T0 + 10)
    seed = raw.call("LOTTERY.SEED", "w", "REVEAL")
    assert raw.call("LOTTERY.SEED", "w", "REVEAL") == seed
    st = stats_b(raw, "w")
    assert st[b"seed_revealed"] == 1
    assert hashlib.sha256(bytes.fromhex(seed.decode())).hexdigest().encode() == \
        bytes(st[b"seed_commitment"])
    es = entries(raw, stream)
    assert [f for _, f, _ in es if f.get(b"type") == b"reveal"] == \
        [{b"type": b"reveal", b"epoch": b"1", b"seed": seed}]
    # The WINDOW moved later: the next draw starts a new epoch first.
    assert raw.call("LOTTERY.CONFIGURE", "w", "WINDOW", 1, T0 + 100) == "OK"
    rep = raw.call("LOTTERY.DRAW", "w", "late")
    st = stats_b(raw, "w")
    assert st[b"seed_epoch"] == 2 and st[b"seed_revealed"] == 0 and st[b"seed_from_draw"] == 41
    new = [f for _, f, _ in entries(raw, stream)][len(es):]
    assert new[0] == {b"type": b"epoch", b"epoch": b"2", b"commitment": bytes(st[b"seed_commitment"]),
                      b"from_draw": b"41"}
    assert len(new) == (3 if rep[0] == b"WIN" else 1)


def test_reload_and_rename_keep_the_epoch(server):
    """DEBUG RELOAD (RDB) keeps the seed and epoch, and the first draw after it publishes its
    table again; after RENAME the words use the new key name."""
    raw = server.raw()
    raw.call("LOTTERY.DEBUG", "CLOCK", T0)
    assert raw.call("LOTTERY.CONFIGURE", "{r}a", "PRIZE", "a", "1", "INF", "NOTHING", "1",
                    "MAXWINS", "INF", "STREAM", "{r}:s", "VERIFIABLE", "LOG", "ALL") == "OK"
    for i in range(3):
        raw.call("LOTTERY.DRAW", "{r}a", f"u{i}")
    before = stats_b(raw, "{r}a")
    assert raw.call("DEBUG", "RELOAD") == "OK"
    raw.call("LOTTERY.DEBUG", "CLOCK", T0 + 1)
    assert stats_b(raw, "{r}a") == before
    raw.call("LOTTERY.DRAW", "{r}a", "after-reload")
    assert raw.call("RENAME", "{r}a", "{r}b") == "OK"
    raw.call("LOTTERY.DRAW", "{r}b", "after-rename")
    seed = bytes.fromhex(raw.call("LOTTERY.SEED", "{r}b", "ROTATE").decode())
    es = [f for _, f, _ in entries(raw, b"{r}:s")]
    tables = [f[b"from_draw"] for f in es if f.get(b"type") == b"table"]
    assert tables == [b"1", b"4"], "the first draw after the reload publishes its table again"
    draws = {int(f[b"draw"]): f for f in es if f.get(b"type") == b"draw"}
    assert sorted(draws) == [1, 2, 3, 4, 5]
    for s, f in draws.items():
        key = b"{r}b" if s == 5 else b"{r}a"
        assert f[b"pick"] == [b"a", b""][pick(seed, key, s, [1, 1])], s
    # COPY never draws with the original's seed: the copy's first draw starts a new epoch
    # (its entry, then its table); the rest of STATS is the original's.
    assert raw.call("COPY", "{r}b", "{r}c") == 1
    sb, sc = stats_b(raw, "{r}b"), stats_b(raw, "{r}c")
    assert sc[b"seed_commitment"] != sb[b"seed_commitment"] and sc[b"seed_revealed"] == 1
    seedish = (b"seed_commitment", b"seed_revealed")
    assert {k: v for k, v in sc.items() if k not in seedish} == \
        {k: v for k, v in sb.items() if k not in seedish}
    won = raw.call("LOTTERY.DRAW", "{r}c", "on-the-copy")[0] == b"WIN"
    new = [f for _, f, _ in entries(raw, b"{r}:s")][len(es):]
    assert [f.get(b"type", b"win") for f in new] == \
        [b"epoch", b"table"] + [b"win"] * won + [b"draw"]
    assert new[0][b"epoch"] == str(sb[b"seed_epoch"] + 1).encode()
    assert new[0][b"from_draw"] == new[1][b"from_draw"] == b"6"
    assert new[-1][b"draw"] == b"6" and new[-1][b"user"] == b"on-the-copy"


def test_a_new_stream_gets_the_epoch_and_table_again(server):
    raw = server.raw()
    raw.call("LOTTERY.DEBUG", "CLOCK", T0)
    assert raw.call("LOTTERY.CONFIGURE", "{m}", "PRIZE", "a", "1", "INF", "MAXWINS", "INF",
                    "STREAM", "{m}:one", "VERIFIABLE") == "OK"
    raw.call("LOTTERY.DRAW", "{m}", "u1")
    raw.call("SET", "{m}:bad", "x")
    H.expect_err(raw, "LOTTERY.CONFIGURE", "{m}", "STREAM", "{m}:bad", prefix="WRONGTYPE")
    assert bytes(stats_b(raw, "{m}")[b"stream"]) == b"{m}:one"
    assert raw.call("LOTTERY.CONFIGURE", "{m}", "STREAM", "{m}:two") == "OK"
    raw.call("LOTTERY.DRAW", "{m}", "u2")
    one = [f for _, f, _ in entries(raw, b"{m}:one")]
    two = [f for _, f, _ in entries(raw, b"{m}:two")]
    assert one[0] == two[0] and one[0][b"type"] == b"epoch"
    assert [f.get(b"type", b"win") for f in two] == [b"epoch", b"table", b"win", b"draw"]
    assert two[1][b"from_draw"] == b"2"


def test_tier_and_rule_fields_and_aof_reload(server_factory):
    """A TIER draw's table and draw entries name the tier; a pick the rules overrode has its
    `rule`; everything comes back identical from the AOF."""
    srv = server_factory(appendonly=True)
    raw = srv.raw()
    raw.call("LOTTERY.DEBUG", "CLOCK", T0)
    assert raw.call("LOTTERY.CONFIGURE", "{x}", "PRIZE", "a", "1000000", "0", "PRIZE", "b", "1",
                    "INF", "NOTHING", "1", "MAXWINS", "INF", "TIER", "vip", "PRIZE-WEIGHT", "b",
                    "7", "VERIFIABLE", "LOG", "ALL") == "OK"
    stream = bytes(stats_b(raw, "{x}")[b"stream"])
    assert raw.call("LOTTERY.DRAW", "{x}", "u1")[0] == b"LOSE"
    raw.call("LOTTERY.DRAW", "{x}", "u2", "TIER", "vip")
    es = [(f, o) for _, f, o in entries(raw, stream)]
    assert es[1][0] == {b"type": b"table", b"from_draw": b"1", b"tier": b"", b"a": b"1000000",
                        b"b": b"1", b"NOTHING": b"1"}
    assert es[2] == ({b"type": b"draw", b"draw": b"1", b"user": b"u1", b"outcome": b"",
                      b"pick": b"a", b"rule": b"soldout"},
                     [b"type", b"draw", b"user", b"outcome", b"pick", b"rule"])
    assert es[3][0] == {b"type": b"table", b"from_draw": b"2", b"tier": b"vip", b"a": b"1000000",
                        b"b": b"7", b"NOTHING": b"1"}
    last = es[-1]
    assert last[0][b"tier"] == b"vip" and last[0][b"draw"] == b"2"
    assert last[1][:6] == [b"type", b"draw", b"user", b"outcome", b"pick", b"tier"]
    before = (H.xrange_raw(raw, stream), stats_b(raw, "{x}"))
    assert raw.call("DEBUG", "LOADAOF") == "OK"
    assert (H.xrange_raw(raw, stream), stats_b(raw, "{x}")) == before


def test_an_encoding_5_dump_loads_as_not_verifiable_and_becomes_verifiable(server):
    """fixtures/campaign-encoding-v5.dump: DUMP written by the build before VERIFIABLE (meta
    encoding 5: GUARANTEE, AFTER, CODES, TOTAL, PERIOD, TIER, their per-user records)."""
    import json
    import pathlib
    fixtures = pathlib.Path(__file__).parent / "fixtures"
    blob = (fixtures / "campaign-encoding-v5.dump").read_bytes()
    want = json.loads((fixtures / "campaign-encoding-v5.json").read_text())
    r = server.client()
    assert r.restore("old:{v5}", 0, blob)
    H.pin(r, want["clock"])
    got = r.execute_command("LOTTERY.STATS", "old:{v5}")
    assert got[:len(want["stats"])] == want["stats"]
    assert got[len(want["stats"]):] == ["verifiable", 0, "seed_log", None, "seed_epoch", 0,
                                        "seed_commitment", None, "seed_from_draw", -1,
                                        "seed_revealed", 0]
    for u, flat in want["users"].items():
        assert r.execute_command("LOTTERY.USER", "old:{v5}", u) == flat, u
    draws = dict(zip(got[0::2], got[1::2]))["draws"]
    H.configure(r, "old:{v5}", "VERIFIABLE")
    st = H.stats(r, "old:{v5}")
    assert (st["verifiable"], st["seed_epoch"], st["seed_from_draw"]) == (1, 1, draws + 1)
    assert r.execute_command("LOTTERY.DRAW", "old:{v5}", "newcomer")[0] in ("WIN", "LOSE")
    r.execute_command("DEBUG", "RELOAD")
    assert H.stats(r, "old:{v5}")["seed_commitment"] == st["seed_commitment"]


def test_a_stream_of_the_wrong_type_refuses_the_draw_whole(server):
    raw = server.raw()
    raw.call("LOTTERY.DEBUG", "CLOCK", T0)
    assert raw.call("LOTTERY.CONFIGURE", "{z}", "PRIZE", "a", "0", "INF", "NOTHING", "1",
                    "STREAM", "{z}:s", "VERIFIABLE", "LOG", "ALL") == "OK"
    assert raw.call("LOTTERY.DRAW", "{z}", "u")[0] == b"LOSE"
    raw.call("DEL", "{z}:s")
    raw.call("SET", "{z}:s", "x")
    before = stats_b(raw, "{z}")
    H.expect_err(raw, "LOTTERY.DRAW", "{z}", "v", prefix="WRONGTYPE")
    H.expect_err(raw, "LOTTERY.SEED", "{z}", "ROTATE", prefix="WRONGTYPE")
    assert stats_b(raw, "{z}") == before
