"""Errors and hostile input: arity, options, integers, ranges, missing key, WRONGTYPE, ..."""
import pytest

import lottery_helpers as H
from lottery_helpers import configure, draw, stats, user, pin, expect_err

T0 = H.T0

# commands with a fixed arity (args after the command name)
FIXED = {
    "LOTTERY.RESTOCK": ["c", "a", "1"],
    "LOTTERY.PAUSE": ["c"],
    "LOTTERY.RESUME": ["c"],
    "LOTTERY.BAN": ["c", "u", "1000"],
    "LOTTERY.UNBAN": ["c", "u"],
    "LOTTERY.USER": ["c", "u"],
    "LOTTERY.STATS": ["c"],
}
# variadic commands: minimum args, and bad extra forms
VARIADIC = {
    "LOTTERY.CONFIGURE": (["c"], [["c", "PRIZE"], ["c", "PRIZE", "a"], ["c", "PRIZE", "a", "1"],
                                  ["c", "NOTHING"], ["c", "COOLDOWN"], ["c", "WINDOW", "1"],
                                  ["c", "SOLDOUT"], ["c", "SOLDOUT", "FALLBACK"],
                                  ["c", "STREAM"], ["c", "IDEMPOTENCY"], ["c", "DAILY"],
                                  ["c", "MAXWINS"], ["c", "DAYOFFSET"]]),
    "LOTTERY.DRAW": (["c", "u"], [["c", "u", "REQID"], ["c", "u", "REQID", "x", "y"],
                                  ["c", "u", "FOO", "x"], ["c", "u", "x"]]),
    "LOTTERY.DRAIN": (["c"], [["c", "FOO"], ["c", "LAST", "LAST"]]),
    "LOTTERY.GRANT": (["c", "u", "1"], [["c", "u", "1", "CAP"], ["c", "u", "1", "CAP", "2", "x"],
                                        ["c", "u", "1", "FOO", "2"]]),
}


@pytest.fixture
def camp(r):
    pin(r, T0)
    configure(r, "c", "PRIZE", "a", 1, 10, "NOTHING", 1, "COOLDOWN", 100)
    draw(r, "c", "u")
    r.execute_command("LOTTERY.GRANT", "c", "u", 2)
    return r


def _state(r):
    return stats(r, "c"), user(r, "c", "u"), r.xrange("{c}:wins"), sorted(r.keys("*"))


@pytest.mark.parametrize("cmd", sorted(FIXED))
def test_fixed_arity(camp, raw, cmd):
    before = _state(camp)
    args = FIXED[cmd]
    for n in range(len(args)):
        e = expect_err(raw, cmd, *args[:n])
        assert "wrong number of arguments" in e.lower(), e
    e = expect_err(raw, cmd, *args, "extra")
    assert "wrong number of arguments" in e.lower() or "syntax" in e.lower() or "extra" in e, e
    assert _state(camp) == before


@pytest.mark.parametrize("cmd", sorted(VARIADIC))
def test_variadic_arity(camp, raw, cmd):
    before = _state(camp)
    minimum, bad = VARIADIC[cmd]
    for n in range(len(minimum)):
        e = expect_err(raw, cmd, *minimum[:n])
        assert "wrong number of arguments" in e.lower(), e
    for args in bad:
        expect_err(raw, cmd, *args)
    assert _state(camp) == before


def test_arity_message_names_command(raw):
    e = expect_err(raw, "LOTTERY.STATS")
    assert e.lower() == "err wrong number of arguments for 'lottery.stats' command"
    e = expect_err(raw, "LOTTERY.CONFIGURE")
    assert e.lower() == "err wrong number of arguments for 'lottery.configure' command"


def test_debug_arity_and_args(server, raw):
    expect_err(raw, "LOTTERY.DEBUG")
    expect_err(raw, "LOTTERY.DEBUG", "CLOCK")
    expect_err(raw, "LOTTERY.DEBUG", "CLOCK", "1", "2")
    expect_err(raw, "LOTTERY.DEBUG", "FOO", "1")
    expect_err(raw, "LOTTERY.DEBUG", "CLOCK", "x")
    assert raw.call("LOTTERY.DEBUG", "CLOCK", "real") == "OK"
    assert raw.call("LOTTERY.DEBUG", "clock", "123") == "OK"


# ------------------------------------------------------------------ CONFIGURE errors

def test_documented_messages(r, raw):
    # commands.md lists these as examples: the documented text must start the message
    def starts(args, text):
        e = expect_err(raw, "LOTTERY.CONFIGURE", *args)
        assert e == text or e.startswith(text + ":") or e.startswith(text + " ("), e

    starts(["c", "PRIZE", "a", 1, 1, "FOO", 1], "ERR unknown option 'FOO'")
    starts(["c", "PRIZE", "a", "x", 1],
           "ERR invalid weight 'x': expected an integer in 0..4294967295")
    starts(["c", "PRIZE", "gold", 1, 1, "PRIZE", "gold", 2, 2], "ERR duplicate prize 'gold'")
    starts(["c", "PRIZE", "a", 1, 1, "SOLDOUT", "FALLBACK", "x"],
           "ERR FALLBACK prize 'x' is not in the prize table")
    starts(["c", "COOLDOWN", 5], "ERR a new campaign needs at least one PRIZE")
    starts(["c", "PRIZE", "a", 0, 1], "ERR all weights are zero")
    starts(["c", "PRIZE", "a", 1, 1, "COOLDOWN", 1, "COOLDOWN", 2], "ERR COOLDOWN given twice")
    starts(["c", "PRIZE", "a", 1], "ERR PRIZE needs id weight stock")
    starts(["c"], "ERR a new campaign needs at least one PRIZE")
    assert r.exists("c") == 0


BAD_CONFIG = [
    # non-integers
    ["PRIZE", "a", "x", "1"], ["PRIZE", "a", "+5", "1"], ["PRIZE", "a", "5.0", "1"],
    ["PRIZE", "a", " 5", "1"], ["PRIZE", "a", "0x10", "1"], ["PRIZE", "a", "", "1"],
    ["PRIZE", "a", "1", "x"], ["PRIZE", "a", "1", ""], ["PRIZE", "a", "1", "1e3"],
    ["PRIZE", "a", "1", "INFINITY"],
    # out of range
    ["PRIZE", "a", "4294967296", "1"], ["PRIZE", "a", "-1", "1"],
    ["PRIZE", "a", "1", "-1"], ["PRIZE", "a", "1", "9223372036854775808"],
    ["PRIZE", "a", "1", "18446744073709551616"], ["PRIZE", "a", "INF", "1"],
    ["PRIZE", "a", "1", "1", "NOTHING", "4294967296"], ["PRIZE", "a", "1", "1", "NOTHING", "-1"],
    ["PRIZE", "a", "1", "1", "NOTHING", "INF"],
    ["PRIZE", "a", "1", "1", "COOLDOWN", "-1"], ["PRIZE", "a", "1", "1", "COOLDOWN", "x"],
    ["PRIZE", "a", "1", "1", "COOLDOWN", "9223372036854775808"],
    ["PRIZE", "a", "1", "1", "DAILY", "4294967296"], ["PRIZE", "a", "1", "1", "DAILY", "-1"],
    ["PRIZE", "a", "1", "1", "MAXWINS", "4294967296"], ["PRIZE", "a", "1", "1", "MAXWINS", "-1"],
    ["PRIZE", "a", "1", "1", "DAYOFFSET", "2000"], ["PRIZE", "a", "1", "1", "DAYOFFSET", "1441"],
    ["PRIZE", "a", "1", "1", "DAYOFFSET", "-1441"], ["PRIZE", "a", "1", "1", "DAYOFFSET", "x"],
    ["PRIZE", "a", "1", "1", "WINDOW", "10", "10"], ["PRIZE", "a", "1", "1", "WINDOW", "10", "5"],
    ["PRIZE", "a", "1", "1", "WINDOW", "-1", "5"], ["PRIZE", "a", "1", "1", "WINDOW", "x", "5"],
    ["PRIZE", "a", "1", "1", "WINDOW", "0", "9223372036854775808"],
    ["PRIZE", "a", "1", "1", "IDEMPOTENCY", "86400001"],
    ["PRIZE", "a", "1", "1", "IDEMPOTENCY", "-1"],
    ["PRIZE", "a", "1", "1", "SOLDOUT", "MAYBE"], ["PRIZE", "a", "1", "1", "SOLDOUT", "FALLBACK"],
    # ids
    ["PRIZE", "", "1", "1"], ["PRIZE", "x" * 257, "1", "1"],
    # duplicates / structure
    ["PRIZE", "a", "1", "1", "PRIZE", "a", "1", "1"], ["PRIZE", "a", "1", "1", "FOO"],
    ["PRIZE", "a", "1", "1", "NOTHING", "1", "NOTHING", "2"],
    ["PRIZE", "a", "1", "1", "DAILY", "1", "DAILY", "1"],
    ["PRIZE", "a", "1", "1", "SOLDOUT", "LOSE", "SOLDOUT", "REDRAW"],
    ["PRIZE", "a", "1", "1", "STREAM", "k", "STREAM", "k2"],
    ["PRIZE", "a", "0", "1", "NOTHING", "0"],
    ["PRIZE", "a", "1", "1", "SOLDOUT", "FALLBACK", "b"],
]


@pytest.mark.parametrize("args", BAD_CONFIG, ids=[" ".join(a)[:40] for a in BAD_CONFIG])
def test_bad_configure_create_never_creates(r, raw, args):
    expect_err(raw, "LOTTERY.CONFIGURE", "new", *args)
    assert r.exists("new") == 0
    assert r.dbsize() == 0


def test_bad_configure_change_changes_nothing(r, raw):
    pin(r, T0)
    configure(r, "c", "PRIZE", "a", 3, 10, "PRIZE", "b", 2, "INF", "NOTHING", 1, "COOLDOWN", 50,
              "DAILY", 4, "SOLDOUT", "REDRAW")
    draw(r, "c", "u")
    before = _state(r)
    for args in BAD_CONFIG:
        # a valid prefix with a different option first, so partial application would show
        expect_err(raw, "LOTTERY.CONFIGURE", "c", "COOLDOWN", "7", "MAXWINS", "9", *args)
        assert _state(r) == before, args
    for args in [["PRIZE", "a", "0", "1", "PRIZE", "b", "0", "1", "NOTHING", "0"],  # all zero
                 ["NOTHING", "0", "PRIZE", "z", "0", "1"],
                 ["PRIZE", "a", "1", "1", "SOLDOUT", "FALLBACK", "b"]]:  # b leaves the table
        expect_err(raw, "LOTTERY.CONFIGURE", "c", *args)
        assert _state(r) == before, args


def test_change_making_all_weights_zero_via_nothing(r, raw):
    configure(r, "c", "PRIZE", "a", 0, 1, "NOTHING", 1)
    before = stats(r, "c")
    e = expect_err(raw, "LOTTERY.CONFIGURE", "c", "NOTHING", 0)
    assert e.startswith("ERR all weights are zero"), e
    assert stats(r, "c") == before


def test_prize_id_257_refused_256_ok(r, raw):
    expect_err(raw, "LOTTERY.CONFIGURE", "c", "PRIZE", b"p" * 257, 1, 1)
    assert r.exists("c") == 0
    assert raw.call("LOTTERY.CONFIGURE", "c", "PRIZE", b"p" * 256, 1, 1) == "OK"


# ------------------------------------------------------------------ missing key / wrong type

ALL_KEYED = [
    ["LOTTERY.DRAW", "k", "u"], ["LOTTERY.DRAW", "k", "u", "REQID", "r"],
    ["LOTTERY.DRAIN", "k"], ["LOTTERY.DRAIN", "k", "LAST"],
    ["LOTTERY.GRANT", "k", "u", "1"], ["LOTTERY.GRANT", "k", "u", "1", "CAP", "5"],
    ["LOTTERY.RESTOCK", "k", "a", "1"], ["LOTTERY.PAUSE", "k"], ["LOTTERY.RESUME", "k"],
    ["LOTTERY.BAN", "k", "u", "100"], ["LOTTERY.UNBAN", "k", "u"], ["LOTTERY.USER", "k", "u"],
    ["LOTTERY.STATS", "k"],
]


@pytest.mark.parametrize("cmd", ALL_KEYED, ids=[" ".join(c[0:1] + c[2:]) for c in ALL_KEYED])
def test_no_such_campaign(r, raw, cmd):
    assert expect_err(raw, *cmd) == "ERR no such campaign"
    assert r.dbsize() == 0


@pytest.mark.parametrize("cmd", ALL_KEYED + [["LOTTERY.CONFIGURE", "k", "PRIZE", "a", "1", "1"],
                                             ["LOTTERY.CONFIGURE", "k", "COOLDOWN", "1"]],
                         ids=[" ".join(c[0:1] + c[2:])[:40] for c in ALL_KEYED] +
                         ["CONFIGURE create", "CONFIGURE change"])
@pytest.mark.parametrize("other", ["string", "list", "stream"])
def test_wrongtype(r, raw, cmd, other):
    if other == "string":
        r.set("k", "v")
    elif other == "list":
        r.rpush("k", "v")
    else:
        r.xadd("k", {"f": "v"})
    e = expect_err(raw, *cmd, prefix="WRONGTYPE")
    assert e.startswith("WRONGTYPE Operation against a key holding the wrong kind of value")
    assert r.type("k") == other


def test_wrongtype_on_stream_key_makes_win_an_error(r, raw):
    pin(r, T0)
    configure(r, "c", "PRIZE", "a", 1, 10, "NOTHING", 0, "DAILY", 3)
    r.set("{c}:wins", "not a stream")
    before = (stats(r, "c"), user(r, "c", "u"))
    rep = raw.call("LOTTERY.DRAW", "c", "u")
    assert isinstance(rep, H.Err), rep
    assert rep.startswith("WRONGTYPE") or rep.startswith("ERR"), rep
    assert (stats(r, "c"), user(r, "c", "u")) == before
    assert r.get("{c}:wins") == "not a stream"
    # the REQID variant is not remembered either
    rep = raw.call("LOTTERY.DRAW", "c", "u", "REQID", "q")
    assert isinstance(rep, H.Err), rep
    r.delete("{c}:wins")
    out = draw(r, "c", "u", reqid="q")
    assert out[0] == "WIN"
    assert r.xlen("{c}:wins") == 1
    s = stats(r, "c")
    assert (s["draws"], s["wins"], s["replays"]) == (1, 1, 0)


# ------------------------------------------------------------------ DEBUG / APPLY

@pytest.mark.parametrize("module_args", [(), ("debug-clock", "no")])
def test_debug_refused_without_debug_clock(server_factory, module_args):
    s = server_factory(module_args=module_args)
    raw = s.raw()
    assert expect_err(raw, "LOTTERY.DEBUG", "CLOCK", "1000") == \
        "ERR LOTTERY.DEBUG is disabled (load the module with debug-clock yes)"
    expect_err(raw, "LOTTERY.DEBUG", "CLOCK", "REAL")
    # the module otherwise works, on the real clock
    assert raw.call("LOTTERY.CONFIGURE", "c", "PRIZE", "a", 1, 1) == "OK"
    rep = raw.call("LOTTERY.DRAW", "c", "u")
    assert rep[0] == b"WIN"
    u = s.client()
    import time
    assert abs(user(u, "c", "u")["last_draw_ms"] - time.time() * 1000) < 60_000


def test_apply_refused_from_client(r, raw):
    msg = "ERR LOTTERY.APPLY is internal (replication and AOF only)"
    assert expect_err(raw, "LOTTERY.APPLY", "k", b"\x00\x01garbage") == msg
    assert r.exists("k") == 0
    configure(r, "c", "PRIZE", "a", 1, 10)
    before = stats(r, "c")
    assert expect_err(raw, "LOTTERY.APPLY", "c", b"\x00\x01garbage") == msg
    assert expect_err(raw, "LOTTERY.APPLY", "c", b"") == msg
    assert stats(r, "c") == before


def test_apply_refused_inside_multi_and_lua(r, raw):
    configure(r, "c", "PRIZE", "a", 1, 10)
    before = stats(r, "c")
    with pytest.raises(Exception):
        r.eval("return redis.call('LOTTERY.APPLY', KEYS[1], 'xx')", 1, "c")
    p = r.pipeline(transaction=True)
    p.execute_command("LOTTERY.APPLY", "c", "xx")
    with pytest.raises(Exception):
        p.execute()
    assert stats(r, "c") == before


def test_commands_work_in_multi_and_lua(r):
    pin(r, T0)
    configure(r, "c", "PRIZE", "a", 1, 10, "MAXWINS", "INF")
    p = r.pipeline(transaction=True)
    p.execute_command("LOTTERY.DRAW", "c", "u")
    p.execute_command("LOTTERY.DRAW", "c", "v")
    res = p.execute()
    assert [x[0] for x in res] == ["WIN", "WIN"]
    res = r.eval("return redis.call('LOTTERY.DRAW', KEYS[1], ARGV[1])", 1, "c", "w")
    assert res[0] == "WIN"
    assert stats(r, "c")["wins"] == 3
    assert r.xlen("{c}:wins") == 3


# ------------------------------------------------------------------ hostile input

def test_10000_prizes_accepted(r):
    args = []
    for i in range(10_000):
        args += ["PRIZE", f"p{i}", 1, 1]
    configure(r, "c", *args)
    s = stats(r, "c")
    assert len(s["prizes"]) == 10_000
    assert s["prizes"][9999] == ["p9999", 1, 1, 0]
    assert draw(r, "c", "u")[0] == "WIN"


def test_65536_prizes_accepted_65537_refused(r, raw):
    args = []
    for i in range(65_537):
        args += ["PRIZE", f"p{i}", 1, 1]
    expect_err(raw, "LOTTERY.CONFIGURE", "c", *args)
    assert r.exists("c") == 0
    assert raw.call("LOTTERY.CONFIGURE", "c", *args[:-4]) == "OK"
    assert r.execute_command("LOTTERY.RESTOCK", "c", "p65535", 1) == 2


def test_70000_prizes_refused(r, raw):
    args = []
    for i in range(70_000):
        args += ["PRIZE", f"p{i}", 1, 1]
    expect_err(raw, "LOTTERY.CONFIGURE", "c", *args)
    assert r.exists("c") == 0
    configure(r, "c", "PRIZE", "a", 1, 1)
    before = stats(r, "c")
    expect_err(raw, "LOTTERY.CONFIGURE", "c", *args)
    assert stats(r, "c") == before


def test_binary_user_ids_are_distinct(server, r):
    rb = server.bclient()
    raw = server.raw()
    pin(r, T0)
    configure(r, "c", "PRIZE", "a", 1, "INF", "DAILY", 1)
    ids = [b"a\x00b", b"a\x00c", b"a", b"a\x00", b"\xff\xfe\x80", b"\xff\xfe",
           "\u00e9".encode("utf-8"), "\u00e9".encode("latin-1")]
    for uid in ids:
        rep = draw(rb, "c", uid)
        assert rep[0] == b"WIN", (uid, rep)
    for uid in ids:
        assert draw(rb, "c", uid)[0] == b"ALREADY_WON", uid
        u = user(rb, "c", uid)
        assert u["wins"] == 1 and u["draws_today"] == 1, uid
    assert stats(r, "c")["users"] == len(ids)
    users_in_stream = [dict(f)[b"user"] for _, f in H.xrange_raw(raw, "{c}:wins")]
    assert users_in_stream == ids
    assert user(rb, "c", b"a\x00d")["wins"] == 0


def test_binary_ids_in_grant_ban(server, r):
    rb = server.bclient()
    configure(r, "c", "PRIZE", "a", 1, "INF")
    assert rb.execute_command("LOTTERY.GRANT", "c", b"\x00\xff", 3) == 3
    assert rb.execute_command("LOTTERY.GRANT", "c", b"\x00\xfe", 1) == 1
    rb.execute_command("LOTTERY.BAN", "c", b"\x00\xff", 1000)
    assert draw(rb, "c", b"\x00\xff")[0] == b"BANNED"
    assert draw(rb, "c", b"\x00\xfe")[0] == b"WIN"
    assert rb.execute_command("LOTTERY.UNBAN", "c", b"\x00\xfe") == 0


def test_one_megabyte_user_id(server, r):
    raw = server.raw()
    configure(r, "c", "PRIZE", "a", 1, "INF")
    big = b"u" * (1 << 20)
    rep = raw.call("LOTTERY.DRAW", "c", big)
    if isinstance(rep, H.Err):
        assert rep.startswith("ERR"), rep
        assert stats(r, "c")["draws"] == 0
    else:
        assert rep[0] == b"WIN"
        big2 = big[:-1] + b"v"
        assert raw.call("LOTTERY.DRAW", "c", big2)[0] == b"WIN"
        assert raw.call("LOTTERY.DRAW", "c", big)[0] == b"ALREADY_WON"
        u = raw.call("LOTTERY.USER", "c", big)
        assert u[6] == b"wins" and u[7] == 1
    g = raw.call("LOTTERY.GRANT", "c", big, 1)
    assert isinstance(g, int) or (isinstance(g, H.Err) and g.startswith("ERR"))
    assert r.ping()


def test_huge_argument_count_to_draw(r, raw):
    configure(r, "c", "PRIZE", "a", 1, "INF")
    expect_err(raw, "LOTTERY.DRAW", "c", "u", *(["REQID", "x"] * 50_000))
    assert stats(r, "c")["draws"] == 0


def test_garbage_numbers_everywhere(r, raw):
    configure(r, "c", "PRIZE", "a", 1, 5)
    before = stats(r, "c")
    for bad in ["", "-", "--1", "1-", "١", "0b1", "1_000", "NaN", "inf1", "99999999999999999999999"]:
        expect_err(raw, "LOTTERY.RESTOCK", "c", "a", bad)
        expect_err(raw, "LOTTERY.GRANT", "c", "u", bad)
        expect_err(raw, "LOTTERY.BAN", "c", "u", bad)
        expect_err(raw, "LOTTERY.CONFIGURE", "c", "COOLDOWN", bad)
    assert stats(r, "c") == before


@pytest.mark.parametrize("cmd", [
    ["LOTTERY.CONFIGURE", "k", "PRIZE", "a", "1", "1"], ["LOTTERY.DRAW", "k", "u"],
    ["LOTTERY.DRAW", "k", "u", "REQID", "r"], ["LOTTERY.DRAIN", "k"], ["LOTTERY.DRAIN", "k", "LAST"],
    ["LOTTERY.GRANT", "k", "u", "1"], ["LOTTERY.RESTOCK", "k", "a", "1"], ["LOTTERY.PAUSE", "k"],
    ["LOTTERY.RESUME", "k"], ["LOTTERY.BAN", "k", "u", "1"], ["LOTTERY.UNBAN", "k", "u"],
    ["LOTTERY.USER", "k", "u"], ["LOTTERY.STATS", "k"]], ids=lambda c: " ".join(c[:1] + c[2:3]))
def test_commands_declare_first_key(raw, cmd):
    assert raw.call("COMMAND", "GETKEYS", *cmd) == [b"k"]
    info = raw.call("COMMAND", "INFO", cmd[0])
    assert info and info[0], f"COMMAND INFO knows nothing about {cmd[0]}"
    assert info[0][3] == 1, info   # first key position


def test_write_and_readonly_flags(raw):
    def flags(name):
        info = raw.call("COMMAND", "INFO", name)
        return [f.decode() if isinstance(f, bytes) else str(f) for f in info[0][2]]
    for name in ["LOTTERY.CONFIGURE", "LOTTERY.DRAW", "LOTTERY.DRAIN", "LOTTERY.GRANT",
                 "LOTTERY.RESTOCK", "LOTTERY.PAUSE", "LOTTERY.RESUME", "LOTTERY.BAN",
                 "LOTTERY.UNBAN"]:
        assert "write" in flags(name), (name, flags(name))
    for name in ["LOTTERY.USER", "LOTTERY.STATS"]:
        assert "write" not in flags(name), (name, flags(name))


def test_debug_clock_real_returns_to_real_time(r):
    import time
    configure(r, "c", "PRIZE", "a", 1, "INF", "MAXWINS", "INF")
    pin(r, T0)
    draw(r, "c", "u")
    assert user(r, "c", "u")["last_draw_ms"] == T0
    H.unpin(r)
    draw(r, "c", "u")
    assert abs(user(r, "c", "u")["last_draw_ms"] - time.time() * 1000) < 60_000


@pytest.mark.parametrize("target", ["self", "other_campaign"])
def test_stream_naming_a_campaign_key(r, raw, target):
    """STREAM pointing at a campaign key (same slot): refused, or a would-be WIN is an error
    that changes nothing; never a crash or a corrupted campaign."""
    configure(r, "{c}2", "PRIZE", "z", 1, 1)
    stream = "{c}1" if target == "self" else "{c}2"
    rep = raw.call("LOTTERY.CONFIGURE", "{c}1", "PRIZE", "a", 1, 10, "STREAM", stream)
    other_before = stats(r, "{c}2")
    if isinstance(rep, H.Err):
        assert rep.startswith("ERR") or rep.startswith("WRONGTYPE"), rep
        assert r.exists("{c}1") == 0
        return
    before = stats(r, "{c}1")
    out = raw.call("LOTTERY.DRAW", "{c}1", "u")
    assert isinstance(out, H.Err), out
    assert stats(r, "{c}1") == before
    assert stats(r, "{c}2") == other_before


def test_stream_at_max_id_makes_win_an_error(r, raw):
    configure(r, "c", "PRIZE", "a", 1, 10, "DAILY", 2)
    r.xadd("{c}:wins", {"f": "v"}, id="18446744073709551615-18446744073709551615")
    before = (stats(r, "c"), user(r, "c", "u"))
    out = raw.call("LOTTERY.DRAW", "c", "u")
    assert isinstance(out, H.Err), out
    assert out.startswith("ERR"), out
    assert (stats(r, "c"), user(r, "c", "u")) == before
    assert r.xlen("{c}:wins") == 1


@pytest.mark.parametrize("args", [("rng", "chacha"), ("rng", "xoshiro"), ("debug-clock", "no"),
                                  ("debug-clock", "yes", "rng", "chacha")])
def test_documented_load_options_load(server_factory, args):
    s = server_factory(module_args=args)
    assert s.raw().call("LOTTERY.CONFIGURE", "c", "PRIZE", "a", 1, 1) == "OK"


@pytest.mark.parametrize("args", [("rng", "md5"), ("bogus", "yes"), ("debug-clock", "maybe")])
def test_bad_load_options_refused(args):
    with pytest.raises(RuntimeError) as e:
        s = H.RedisServer(module_args=args)
        s.cleanup()
    assert "exited" in str(e.value)
