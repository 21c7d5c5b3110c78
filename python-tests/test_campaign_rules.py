"""Campaign rules (docs/rules.md), black-box: TIER, GUARANTEE, AFTER, TOTAL, PERIOD, code
pools (CODES), and hostile inputs to every new option.

Written from the spec, as an adversary: exact replies where the spec fixes them, chi-square
(p = 1e-6, as in test_distribution.py) where it fixes odds, and "an error changes nothing"
checked with DEBUG DIGEST-VALUE. Replies are read with the raw RESP client (bytes), and
STATS / USER are read as field maps, so the tests do not depend on the order of new fields.
"""
import datetime as dt
import random
import time

import pytest

import lottery_helpers as H
from lottery_helpers import Err, Status
from test_distribution import chi2_critical, chi_square

T0 = H.T0
DAY = H.DAY_MS
BIG = 1_000_000_000          # a NOTHING weight that makes an ordinary win ~1e-9


# --------------------------------------------------------------------------------------------
# helpers (raw client: bulk strings are bytes, +OK is Status, errors are Err)


def _s(x):
    return x.decode("utf-8", "surrogateescape") if isinstance(x, bytes) else x


def _short(args):
    return [a[:40] if isinstance(a, (bytes, str)) else a for a in args[:10]]


def cfg(raw, key, *args):
    rep = raw.call("LOTTERY.CONFIGURE", key, *args)
    assert isinstance(rep, Status) and rep == "OK", f"CONFIGURE {_short(args)} -> {rep!r}"


def err(raw, *args, contains=None):
    """The command must be an ERR reply (containing `contains`, case-insensitive) and the
    server must still answer PING."""
    rep = raw.call(*args)
    assert isinstance(rep, Err) and rep.startswith("ERR "), f"{_short(args)} -> {rep!r}"
    assert "internal error" not in rep, f"{_short(args)} panicked: {rep}"
    if contains is not None:
        assert contains.lower() in rep.lower(), f"{_short(args)} -> {rep!r}"
    assert raw.call("PING") == "PONG"
    return str(rep)


def digest(raw, key):
    return raw.call("DEBUG", "DIGEST-VALUE", key)


def stats_d(raw, key):
    flat = raw.call("LOTTERY.STATS", key)
    assert isinstance(flat, list) and len(flat) % 2 == 0, flat
    return {_s(k): v for k, v in zip(flat[0::2], flat[1::2])}


def user_d(raw, key, u):
    flat = raw.call("LOTTERY.USER", key, u)
    assert isinstance(flat, list) and len(flat) % 2 == 0, flat
    d = {_s(k): v for k, v in zip(flat[0::2], flat[1::2])}
    assert "draws_total" in d and "draws_since_win" in d, f"USER lacks the lifetime counts: {d}"
    return d


def prize_rows(st):
    """{prize id: [weight, stock, sold]} from a STATS map."""
    return {p[0]: list(p[1:4]) for p in st["prizes"]}


def shape(rep, code_prizes=()):
    """A DRAW reply: 5 elements, 6 only for a WIN of a code prize (the code, bytes)."""
    assert isinstance(rep, list), rep
    if len(rep) == 6:
        assert rep[0] == b"WIN" and rep[1] in code_prizes and isinstance(rep[5], bytes), rep
    else:
        assert len(rep) == 5, rep
        assert not (rep[0] == b"WIN" and rep[1] in code_prizes), \
            f"a WIN of a code prize without its code: {rep}"
    return rep


def draw(raw, key, u, *extra, code_prizes=()):
    return shape(raw.call("LOTTERY.DRAW", key, u, *extra), code_prizes)


def pipeline(raw, cmds, batch=2000):
    out = []
    for i in range(0, len(cmds), batch):
        out += raw.pipeline(cmds[i:i + batch])
    return out


def count_draws(raw, cmds, code_prizes=()):
    """Pipelined draws that must all pass (WIN/LOSE): {prize or None: count}."""
    counts = {}
    for c, rep in zip(cmds, pipeline(raw, cmds)):
        shape(rep, code_prizes)
        assert rep[0] in (b"WIN", b"LOSE"), (c, rep)
        counts[rep[1]] = counts.get(rep[1], 0) + 1
    return counts


def assert_fits(counts, probs, n, what=""):
    extra = set(counts) - set(probs)
    assert not extra, f"{what}: outcomes outside the table {extra}: {counts}"
    chi = chi_square(counts, probs, n)
    crit = chi2_critical(len(probs) - 1)
    assert chi < crit, f"{what}: chi-square {chi:.1f} >= {crit:.1f} for {counts} (n {n}, " \
                       f"expected { {k: round(p * n) for k, p in probs.items()} })"


def flat_contains(v, needle):
    if isinstance(v, list):
        return any(flat_contains(x, needle) for x in v)
    return v == needle


def parse_resp(blob):
    """Parse one reply from its exact bytes (as RawClient.call_raw returns them)."""
    c = H.RawClient.__new__(H.RawClient)
    c.buf, c.pos = bytearray(blob), 0
    return c._parse()


def pin(raw, ms):
    assert raw.call("LOTTERY.DEBUG", "CLOCK", ms) == "OK"


def local_ms(y, m, d, hh=0, mi=0, offset_min=0):
    """Unix ms of local time y-m-d hh:mi in the zone UTC + offset_min minutes."""
    t = dt.datetime(y, m, d, hh, mi, tzinfo=dt.timezone.utc)
    return int(t.timestamp()) * 1000 - offset_min * 60_000


@pytest.fixture(autouse=True)
def _no_internal_errors(server):
    """A panic inside the module is caught and answered as an ERR: none may happen here."""
    yield
    if server.alive():
        info = server.raw().call("INFO", "lottery").decode()
        line = [l for l in info.splitlines() if l.startswith("lottery_internal_errors:")]
        assert line == ["lottery_internal_errors:0"], line


# --------------------------------------------------------------------------------------------
# TIER


def test_tier_draws_use_the_tier_weights(raw):
    cfg(raw, "c", "PRIZE", "a", 1, "INF", "PRIZE", "b", 1, "INF", "PRIZE", "c", 1, "INF",
        "NOTHING", 1, "MAXWINS", "INF",
        "TIER", "vip", "PRIZE-WEIGHT", "a", 5, "PRIZE-WEIGHT", "b", 0, "NOTHING", 2)
    n = 24_000
    tier = count_draws(raw, [("LOTTERY.DRAW", "c", "u", "TIER", "vip")] * n)
    assert b"b" not in tier, f"prize b has weight 0 in tier vip but was won: {tier}"
    assert_fits(tier, {b"a": 5 / 8, b"c": 1 / 8, None: 2 / 8}, n, "TIER vip")
    m = 8_000
    base = count_draws(raw, [("LOTTERY.DRAW", "c", "u")] * m)
    assert_fits(base, {b"a": 1 / 4, b"b": 1 / 4, b"c": 1 / 4, None: 1 / 4}, m, "base table")
    st = stats_d(raw, "c")
    assert st["draws"] == n + m
    sold = {k: v[2] for k, v in prize_rows(st).items()}
    for p in (b"a", b"b", b"c"):
        assert sold[p] == tier.get(p, 0) + base.get(p, 0), (p, sold)
    assert flat_contains(st["tiers"], b"vip"), st["tiers"]


@pytest.mark.parametrize("with_tiers", [False, True], ids=["no-tiers", "other-tiers"])
def test_unknown_tier_is_an_error_and_consumes_nothing(server, raw, with_tiers):
    pin(raw, T0)
    args = ["PRIZE", "a", 1, 5, "NOTHING", 1, "DAILY", 3, "COOLDOWN", 1000, "TOTAL", 10,
            "GUARANTEE", 3, "MAXWINS", "INF"]
    if with_tiers:
        args += ["TIER", "vip", "NOTHING", 3, "TIER", "t2", "PRIZE-WEIGHT", "a", 2]
    cfg(raw, "c", *args)
    draw(raw, "c", "u")
    pin(raw, T0 + 5000)
    before_user, before_stats = user_d(raw, "c", "u"), stats_d(raw, "c")
    before = digest(raw, "c")
    xlen = raw.call("XLEN", "{c}:wins")
    for name in [b"nope", b"VIP ", "奖品".encode(), "\U0001F381".encode(), b"\x00\xff",
                 b"vip\x00"]:
        err(raw, "LOTTERY.DRAW", "c", "u", "TIER", name, contains="no such tier")
        err(raw, "LOTTERY.DRAW", "c", "u", "REQID", "r1", "TIER", name, contains="no such tier")
        err(raw, "LOTTERY.DRAW", "c", "newcomer", "TIER", name, "CLIENT", "1.2.3.4",
            contains="no such tier")
    assert user_d(raw, "c", "u") == before_user
    assert stats_d(raw, "c") == before_stats
    assert digest(raw, "c") == before
    assert raw.call("XLEN", "{c}:wins") == xlen
    # the REQID of a refused draw was not remembered: the same REQID is a fresh draw now
    rep = draw(raw, "c", "u", "REQID", "r1")
    assert rep[0] in (b"WIN", b"LOSE"), rep
    st = stats_d(raw, "c")
    assert (st["draws"], st["replays"]) == (before_stats["draws"] + 1, before_stats["replays"])


def test_tier_overrides_follow_later_base_changes(raw):
    cfg(raw, "c", "PRIZE", "a", 1, "INF", "PRIZE", "b", 1, "INF", "NOTHING", 0,
        "MAXWINS", "INF", "TIER", "t", "PRIZE-WEIGHT", "a", 0)
    # tier t: a 0 (override), b 1 (base), NOTHING 0 (base): always b
    for _ in range(30):
        assert draw(raw, "c", "u", "TIER", "t")[:2] == [b"WIN", b"b"]
    # the base changes: b 0, NOTHING 3; the tier follows for what it does not list
    cfg(raw, "c", "PRIZE", "a", 1, "INF", "PRIZE", "b", 0, "INF", "NOTHING", 3)
    for _ in range(30):
        assert draw(raw, "c", "u", "TIER", "t")[:2] == [b"LOSE", None]
    # base NOTHING 0, b 7: the tier gives b again, a stays at its override 0
    cfg(raw, "c", "PRIZE", "a", 9, "INF", "PRIZE", "b", 7, "INF", "NOTHING", 0)
    for _ in range(30):
        assert draw(raw, "c", "u", "TIER", "t")[:2] == [b"WIN", b"b"]
    # a base-only draw sees a again
    got = {draw(raw, "c", "u")[1] for _ in range(200)}
    assert got == {b"a", b"b"}, got
    # redefining the tier replaces it: no override left, NOTHING override only
    cfg(raw, "c", "TIER", "t", "NOTHING", 10 ** 9)
    got = count_draws(raw, [("LOTTERY.DRAW", "c", "u", "TIER", "t")] * 200)
    assert got.get(None, 0) >= 198, got


def test_tier_that_base_changes_bring_to_zero(raw):
    """The spec refuses a tier whose weights all come to 0. If a later base change brings a
    tier to 0, either that CONFIGURE is refused, or the tier never gives a prize."""
    cfg(raw, "c", "PRIZE", "a", 1, "INF", "PRIZE", "b", 1, "INF", "MAXWINS", "INF",
        "TIER", "z", "PRIZE-WEIGHT", "a", 0)
    before = digest(raw, "c")
    rep = raw.call("LOTTERY.CONFIGURE", "c", "PRIZE", "a", 1, "INF", "PRIZE", "b", 0, "INF")
    if isinstance(rep, Err):
        assert digest(raw, "c") == before
        return
    assert rep == "OK"
    for _ in range(50):
        rep = raw.call("LOTTERY.DRAW", "c", "u", "TIER", "z")
        assert isinstance(rep, Err) or rep[0] != b"WIN", rep
    assert raw.call("PING") == "PONG"


def test_tier_over_a_dropped_prize_never_gives_it(raw):
    cfg(raw, "c", "PRIZE", "a", 1, "INF", "PRIZE", "b", 1, "INF", "MAXWINS", "INF",
        "TIER", "t", "PRIZE-WEIGHT", "a", 100)
    before = digest(raw, "c")
    rep = raw.call("LOTTERY.CONFIGURE", "c", "PRIZE", "b", 1, "INF")
    if isinstance(rep, Err):        # refused: the tier names a prize that would leave
        assert digest(raw, "c") == before
        return
    got = count_draws(raw, [("LOTTERY.DRAW", "c", "u", "TIER", "t")] * 300)
    assert b"a" not in got, f"tier t gave prize a, no longer in the table: {got}"


def test_tier_without_clauses_saves_and_loads(server, raw):
    """`TIER name [PRIZE-WEIGHT id w]... [NOTHING w]`: a tier with no clause is the base
    table under a name. If CONFIGURE takes it, every save of the campaign must load."""
    bad = []
    for i, name in enumerate([b"same", b"abcde", b"a", b"ab", b"vip", b"\x00"]):
        key = f"c{i}"
        rep = raw.call("LOTTERY.CONFIGURE", key, "PRIZE", "p", 1, 100, "NOTHING", 1,
                       "TIER", name)
        if isinstance(rep, Err):
            assert raw.call("EXISTS", key) == 0
            continue
        assert rep == "OK"
        assert draw(raw, key, "u", "TIER", name)[0] in (b"WIN", b"LOSE")
        got = raw.call("RESTORE", key + ":r", 0, raw.call("DUMP", key))
        if got != "OK":
            bad.append((name, str(got)))
            raw.call("DEL", key)
    assert not bad, f"RESTORE of the DUMP refused for tiers {bad}"
    before = raw.call("DEBUG", "DIGEST")
    assert raw.call("DEBUG", "RELOAD") == "OK"
    assert raw.call("DEBUG", "DIGEST") == before


def test_tier_off_removes_it(raw):
    cfg(raw, "c", "PRIZE", "a", 1, "INF", "NOTHING", 1, "MAXWINS", "INF",
        "TIER", "t", "NOTHING", 0, "TIER", "keep", "PRIZE-WEIGHT", "a", 0)
    assert draw(raw, "c", "u", "TIER", "t")[:2] == [b"WIN", b"a"]
    cfg(raw, "c", "TIER", "t", "OFF")
    err(raw, "LOTTERY.DRAW", "c", "u", "TIER", "t", contains="no such tier")
    st = stats_d(raw, "c")
    assert not flat_contains(st["tiers"], b"t") and flat_contains(st["tiers"], b"keep")
    assert draw(raw, "c", "u", "TIER", "keep")[:2] == [b"LOSE", None]
    # defined again: a new tier
    cfg(raw, "c", "TIER", "t", "PRIZE-WEIGHT", "a", 3, "NOTHING", 0)
    assert draw(raw, "c", "u", "TIER", "t")[:2] == [b"WIN", b"a"]


def test_tier_clause_ends_at_the_first_other_argument(raw):
    cfg(raw, "c", "PRIZE", "a", 1, "INF", "TIER", "t", "NOTHING", 1, "NOTHING", 2,
        "TIER", "u", "PRIZE-WEIGHT", "a", 3, "COOLDOWN", 5, "TIER", "v", "NOTHING", 4)
    st = stats_d(raw, "c")
    assert st["nothing_weight"] == 2 and st["cooldown_ms"] == 5
    assert st["tiers"] == [[b"t", 1, []], [b"u", -1, [b"a", 3]], [b"v", 4, []]], st["tiers"]


def test_32_tiers_and_the_33rd_refused(raw):
    args = []
    for i in range(32):
        args += ["TIER", f"t{i}", "NOTHING", i + 1]
    cfg(raw, "c", "PRIZE", "a", 1, "INF", "MAXWINS", "INF", *args)
    reps = raw.pipeline([("LOTTERY.DRAW", "c", "u", "TIER", f"t{i}") for i in range(32)])
    assert all(isinstance(r, list) and r[0] in (b"WIN", b"LOSE") for r in reps), reps
    before = digest(raw, "c")
    err(raw, "LOTTERY.CONFIGURE", "c", "TIER", "t32", "NOTHING", 1)
    assert digest(raw, "c") == before
    err(raw, "LOTTERY.DRAW", "c", "u", "TIER", "t32", contains="no such tier")
    cfg(raw, "c", "TIER", "t5", "NOTHING", 0)           # replacing one is fine at 32
    assert draw(raw, "c", "u", "TIER", "t5")[:2] == [b"WIN", b"a"]
    cfg(raw, "c", "TIER", "t0", "OFF")
    cfg(raw, "c", "TIER", "t32", "NOTHING", 0)
    assert draw(raw, "c", "u", "TIER", "t32")[:2] == [b"WIN", b"a"]
    # creating with 33 tiers: refused, no key
    args33 = args + ["TIER", "t32", "NOTHING", 1]
    err(raw, "LOTTERY.CONFIGURE", "d", "PRIZE", "a", 1, "INF", *args33)
    assert raw.call("EXISTS", "d", "{d}:wins") == 0


TIER_NAMES = [b"\x00\xff", b"PRIZE", b"NOTHING", b"TIER", b"PRIZE-WEIGHT", b"REQID", b"CLIENT",
              b"INF", b"OFF", b"x" * 64, "奖品".encode(), "\U0001F381\U0001F600".encode(),
              "\U0010FFFF".encode(), b"a\r\nb", b" ", b"\xc0\xaf", b"-1"]


def test_tier_names_binary_keywords_and_utf8(raw):
    args = ["PRIZE", "base", 0, "INF", "NOTHING", 1, "MAXWINS", "INF"]
    for i in range(len(TIER_NAMES)):
        args += ["PRIZE", f"q{i}", 0, "INF"]
    for i, name in enumerate(TIER_NAMES):
        args += ["TIER", name, "PRIZE-WEIGHT", f"q{i}", 1, "NOTHING", 0]
    cfg(raw, "c", *args)
    for i, name in enumerate(TIER_NAMES):
        want = [b"WIN", f"q{i}".encode()]
        assert draw(raw, "c", "u", "TIER", name)[:2] == want, name
        assert draw(raw, "c", "u", "REQID", f"r{i}", "TIER", name)[:2] == want, name
        assert draw(raw, "c", "u", "TIER", name, "CLIENT", "ip")[:2] == want, name
    st = stats_d(raw, "c")
    for name in TIER_NAMES:
        assert flat_contains(st["tiers"], name), (name, st["tiers"])
    cfg(raw, "c", "TIER", b"OFF", "OFF")                 # the tier called OFF, removed
    err(raw, "LOTTERY.DRAW", "c", "u", "TIER", b"OFF", contains="no such tier")
    before = digest(raw, "c")
    err(raw, "LOTTERY.CONFIGURE", "c", "TIER", b"y" * 65, "NOTHING", 1)
    err(raw, "LOTTERY.CONFIGURE", "c", "TIER", b"", "NOTHING", 1)
    assert digest(raw, "c") == before
    err(raw, "LOTTERY.DRAW", "c", "u", "TIER", b"y" * 65)
    err(raw, "LOTTERY.DRAW", "c", "u", "TIER", b"")


def test_tier_weights_all_zero_refused(raw):
    cfg(raw, "c", "PRIZE", "a", 1, "INF", "PRIZE", "b", 0, "INF", "NOTHING", 0)
    before = digest(raw, "c")
    err(raw, "LOTTERY.CONFIGURE", "c", "TIER", "z", "PRIZE-WEIGHT", "a", 0)
    err(raw, "LOTTERY.CONFIGURE", "c", "TIER", "z", "PRIZE-WEIGHT", "a", 0,
        "PRIZE-WEIGHT", "b", 0, "NOTHING", 0)
    cfg(raw, "d", "PRIZE", "a", 1, "INF", "NOTHING", 5)
    before_d = digest(raw, "d")
    err(raw, "LOTTERY.CONFIGURE", "d", "TIER", "z", "PRIZE-WEIGHT", "a", 0, "NOTHING", 0)
    assert digest(raw, "c") == before and digest(raw, "d") == before_d
    err(raw, "LOTTERY.CONFIGURE", "e", "PRIZE", "a", 1, "INF",
        "TIER", "z", "PRIZE-WEIGHT", "a", 0)
    assert raw.call("EXISTS", "e") == 0
    # a tier over an all-zero base is fine when the tier itself has weight
    cfg(raw, "f", "PRIZE", "a", 0, "INF", "NOTHING", 1, "TIER", "g", "PRIZE-WEIGHT", "a", 1,
        "NOTHING", 0)
    assert draw(raw, "f", "u", "TIER", "g")[:2] == [b"WIN", b"a"]


def test_tiers_share_the_stock(raw):
    cfg(raw, "c", "PRIZE", "a", 1, 10, "NOTHING", 0, "TIER", "t", "PRIZE-WEIGHT", "a", 7,
        "TIER", "s", "NOTHING", 0)
    cmds = []
    for i in range(8):
        cmds += [("LOTTERY.DRAW", "c", f"b{i}"), ("LOTTERY.DRAW", "c", f"t{i}", "TIER", "t"),
                 ("LOTTERY.DRAW", "c", f"s{i}", "TIER", "s")]
    reps = pipeline(raw, cmds)
    outs = [r[0] for r in reps]
    assert outs == [b"WIN"] * 10 + [b"LOSE"] * 14, outs
    assert prize_rows(stats_d(raw, "c"))[b"a"] == [1, 0, 10]
    assert raw.call("LOTTERY.RESTOCK", "c", "a", 1) == 1
    assert draw(raw, "c", "late", "TIER", "s")[:2] == [b"WIN", b"a"]
    assert draw(raw, "c", "late2")[0] == b"LOSE"


def test_tier_redraw_rebuilt_when_a_prize_sells_out(raw):
    cfg(raw, "c", "PRIZE", "a", 1, 1, "PRIZE", "b", 1, "INF", "NOTHING", 1,
        "SOLDOUT", "REDRAW", "MAXWINS", "INF",
        "TIER", "t", "PRIZE-WEIGHT", "a", 1000, "NOTHING", 0)
    got = count_draws(raw, [("LOTTERY.DRAW", "c", "u", "TIER", "t")] * 300)
    assert got == {b"a": 1, b"b": 299}, got


# --------------------------------------------------------------------------------------------
# GUARANTEE


def p_first_win(p, n):
    probs = {k: (1 - p) ** (k - 1) * p for k in range(1, n)}
    probs[n] = (1 - p) ** (n - 1)
    return probs


def test_guarantee_first_win_distribution(raw):
    n, users = 5, 5000
    cfg(raw, "c", "PRIZE", "a", 1, "INF", "NOTHING", 9, "GUARANTEE", n, "MAXWINS", 1,
        "DAILY", "INF")
    cmds = [("LOTTERY.DRAW", "c", f"u{i}") for i in range(users) for _ in range(n + 1)]
    reps = pipeline(raw, cmds, batch=3000)
    first = {}
    for i in range(users):
        outs = [r[0] for r in reps[i * (n + 1):(i + 1) * (n + 1)]]
        k = outs.index(b"WIN") + 1 if b"WIN" in outs else None
        assert k is not None, f"user u{i} never won in {n} draws with GUARANTEE {n}: {outs}"
        assert outs == [b"LOSE"] * (k - 1) + [b"WIN"] + [b"ALREADY_WON"] * (n + 1 - k), outs
        first[k] = first.get(k, 0) + 1
    assert_fits(first, p_first_win(0.1, n), users, "index of the first win")
    st = stats_d(raw, "c")
    assert st["wins"] == users and st["draws"] == sum(k * c for k, c in first.items())
    for i in range(0, users, 997):
        u = user_d(raw, "c", f"u{i}")
        assert u["draws_since_win"] == 0 and u["wins"] == 1
        assert u["draws_total"] == [r[0] for r in reps[i * (n + 1):(i + 1) * (n + 1)]].index(
            b"WIN") + 1


@pytest.mark.parametrize("listed", [True, False], ids=["PRIZES-a-b", "every-prize"])
def test_guaranteed_draws_pick_by_relative_weight(raw, listed):
    args = ["PRIZE", "a", 1, "INF", "PRIZE", "b", 3, "INF", "PRIZE", "c", 5, "INF",
            "PRIZE", "z", 0, "INF", "NOTHING", 4_000_000_000, "MAXWINS", "INF", "GUARANTEE", 2]
    if listed:
        args += ["PRIZES", 3, "a", "b", "z"]
        probs = {b"a": 1 / 4, b"b": 3 / 4}
    else:
        probs = {b"a": 1 / 9, b"b": 3 / 9, b"c": 5 / 9}
    cfg(raw, "c", *args)
    n = 16_000 if listed else 12_000
    reps = pipeline(raw, [("LOTTERY.DRAW", "c", "u")] * n)
    outs = [r[1] for r in reps]
    wins = {}
    for i, o in enumerate(outs):
        if i % 2 == 0:
            assert o is None, f"draw {i + 1} won {o} (an ordinary win at odds ~1e-9?)"
        else:
            assert o is not None, f"draw {i + 1} is guaranteed but lost"
            wins[o] = wins.get(o, 0) + 1
    assert b"z" not in wins, "a weight-0 prize was given by a guaranteed draw"
    assert_fits(wins, probs, n // 2, "guaranteed draws")
    u = user_d(raw, "c", "u")
    assert (u["draws_total"], u["draws_since_win"], u["wins"]) == (n, 0, n // 2)


def test_guarantee_uses_the_tier_table_in_force(raw):
    cfg(raw, "c", "PRIZE", "a", 1, "INF", "PRIZE", "b", 1, "INF", "NOTHING", BIG,
        "GUARANTEE", 2, "PRIZES", 2, "a", "b", "MAXWINS", "INF",
        "TIER", "t", "PRIZE-WEIGHT", "a", 0)
    reps = pipeline(raw, [("LOTTERY.DRAW", "c", "u", "TIER", "t")] * 200)
    assert [r[1] for r in reps] == [None, b"b"] * 100


def test_guarantee_listed_prizes_sold_out_is_an_ordinary_draw(raw):
    cfg(raw, "c", "PRIZE", "a", 1, 1, "PRIZE", "b", 1, "INF", "NOTHING", BIG,
        "GUARANTEE", 2, "PRIZES", 1, "a", "MAXWINS", "INF")
    assert [draw(raw, "c", "u1")[1] for _ in range(2)] == [None, b"a"]
    # a is sold out: u2's guaranteed draws are ordinary (b is not listed): losses
    outs = [draw(raw, "c", "u2")[:2] for _ in range(6)]
    assert outs == [[b"LOSE", None]] * 6, outs
    u = user_d(raw, "c", "u2")
    assert (u["draws_total"], u["draws_since_win"]) == (6, 6)
    # restocked: the next draw of u2 is guaranteed again (since_win >= n - 1)
    assert raw.call("LOTTERY.RESTOCK", "c", "a", 2) == 2
    assert draw(raw, "c", "u2")[:2] == [b"WIN", b"a"]
    assert user_d(raw, "c", "u2")["draws_since_win"] == 0
    # one listed prize sold out, another in stock: the other one
    cfg(raw, "c", "PRIZE", "a", 1, 0, "PRIZE", "b", 1, "INF", "NOTHING", BIG,
        "GUARANTEE", 2, "PRIZES", 2, "a", "b")
    assert [draw(raw, "c", "u3")[1] for _ in range(4)] == [None, b"b", None, b"b"]


def test_guarantee_skips_locked_and_zero_weight_listed_prizes(raw):
    cfg(raw, "c", "PRIZE", "late", 1, "INF", "AFTER", 5, "PRIZE", "zero", 0, "INF",
        "PRIZE", "ok", 1, "INF", "NOTHING", BIG,
        "GUARANTEE", 2, "PRIZES", 2, "late", "zero", "MAXWINS", "INF")
    # draws 2 and 4: guaranteed, but late is locked and zero has no weight: ordinary
    outs = [draw(raw, "c", "u")[1] for _ in range(4)]
    assert outs == [None] * 4, outs
    # draw 5: late unlocked; since_win is 4 >= 1: guaranteed, gives late
    assert draw(raw, "c", "u")[:2] == [b"WIN", b"late"]
    assert user_d(raw, "c", "u")["draws_since_win"] == 0


def test_fallback_win_resets_draws_since_win(raw):
    cfg(raw, "c", "PRIZE", "a", 1, 0, "PRIZE", "f", 0, "INF", "NOTHING", 1,
        "SOLDOUT", "FALLBACK", "f", "GUARANTEE", 1000, "MAXWINS", "INF")
    since, total = 0, 0
    for _ in range(150):
        rep = draw(raw, "c", "u")
        total += 1
        if rep[0] == b"WIN":
            assert rep[1] == b"f"
            since = 0
        else:
            since += 1
        u = user_d(raw, "c", "u")
        assert (u["draws_total"], u["draws_since_win"]) == (total, since), (rep, u)


def test_guarantee_counts_only_chance_consuming_draws(raw):
    pin(raw, T0)
    cfg(raw, "c", "PRIZE", "a", 1, "INF", "NOTHING", BIG, "GUARANTEE", 3,
        "COOLDOWN", 1000, "MAXWINS", "INF")
    assert draw(raw, "c", "u")[0] == b"LOSE"
    for _ in range(5):
        assert draw(raw, "c", "u")[0] == b"COOLDOWN"
    raw.call("LOTTERY.BAN", "c", "u", 10)
    assert draw(raw, "c", "u")[0] == b"BANNED"
    pin(raw, T0 + 1000)
    assert draw(raw, "c", "u")[0] == b"LOSE"
    u = user_d(raw, "c", "u")
    assert (u["draws_total"], u["draws_since_win"]) == (2, 2)
    pin(raw, T0 + 2000)
    assert draw(raw, "c", "u")[:2] == [b"WIN", b"a"]


def test_lifetime_counts_kept_only_with_a_rule(raw):
    cfg(raw, "c", "PRIZE", "a", 1, "INF", "NOTHING", BIG, "MAXWINS", "INF")
    for _ in range(3):
        assert draw(raw, "c", "u")[0] == b"LOSE"
    u = user_d(raw, "c", "u")
    assert (u["draws_total"], u["draws_since_win"]) == (0, 0)      # not kept
    cfg(raw, "c", "GUARANTEE", 3)          # counts start now, at 0
    u = user_d(raw, "c", "u")
    assert (u["draws_total"], u["draws_since_win"]) == (0, 0)
    assert [draw(raw, "c", "u")[1] for _ in range(3)] == [None, None, b"a"]
    u = user_d(raw, "c", "u")
    assert (u["draws_total"], u["draws_since_win"], u["wins"]) == (3, 0, 1)
    assert draw(raw, "c", "u")[0] == b"LOSE"
    cfg(raw, "c", "TOTAL", 1000)           # another rule: the counts stay
    cfg(raw, "c", "GUARANTEE", "OFF")
    u = user_d(raw, "c", "u")
    assert (u["draws_total"], u["draws_since_win"]) == (4, 1)
    cfg(raw, "c", "TOTAL", "INF")          # the last rule gone: dropped
    u = user_d(raw, "c", "u")
    assert (u["draws_total"], u["draws_since_win"]) == (0, 0)
    cfg(raw, "c", "GUARANTEE", 2)          # again from 0
    assert [draw(raw, "c", "u")[1] for _ in range(2)] == [None, b"a"]
    u = user_d(raw, "c", "u")
    assert (u["draws_total"], u["draws_since_win"]) == (2, 0)
    assert u["wins"] == 2
    st = stats_d(raw, "c")
    assert st["guarantee"] == 2 and st["total"] == -1
    # a user never seen: both fields present and 0
    u = user_d(raw, "c", "ghost")
    assert (u["draws_total"], u["draws_since_win"]) == (0, 0)


def test_lifetime_counts_cost_bytes_only_while_kept(raw):
    """rules.md: a 14-byte user record instead of 12 while GUARANTEE, AFTER or TOTAL is on
    (measured 33.6-38.1 bytes a user against 31.2-35.8); the switch is O(1), records moving
    over with later writes (16 a write); removing the last rule drops the counts."""
    n = 40_000
    cfg(raw, "plain", "PRIZE", "a", 0, "INF", "NOTHING", 1, "MAXWINS", "INF")
    cfg(raw, "ruled", "PRIZE", "a", 0, "INF", "NOTHING", 1, "MAXWINS", "INF", "TOTAL", 1000)
    for key in ("plain", "ruled"):
        reps = pipeline(raw, [("LOTTERY.DRAW", key, f"user:{i}") for i in range(n)])
        assert all(r[0] == b"LOSE" for r in reps)
    plain = raw.call("MEMORY", "USAGE", "plain", "SAMPLES", 0)
    ruled = raw.call("MEMORY", "USAGE", "ruled", "SAMPLES", 0)
    per_user = (ruled - plain) / n
    print(f"\nMEMORY USAGE with {n} users: plain {plain} B ({plain / n:.1f} B/user), with "
          f"TOTAL {ruled} B ({ruled / n:.1f} B/user): +{per_user:.2f} B/user")
    assert 0.5 <= per_user <= 6.5, per_user
    assert ruled / n <= 38.5
    assert user_d(raw, "ruled", "user:7")["draws_total"] == 1
    sample = [f"user:{i}" for i in range(0, n, 997)]
    views = {u: user_d(raw, "ruled", u) for u in sample}
    d = digest(raw, "ruled")
    assert raw.call("DEBUG", "RELOAD") == "OK"
    assert digest(raw, "ruled") == d and {u: user_d(raw, "ruled", u) for u in sample} == views
    cfg(raw, "ruled", "TOTAL", "INF")            # the last rule gone: the plain layout again
    for u in sample:
        views[u].update(draws_total=0, draws_since_win=0, chances_left=-1)
    assert {u: user_d(raw, "ruled", u) for u in sample} == views
    d = digest(raw, "ruled")
    blob = raw.call("DUMP", "ruled")
    assert raw.call("RESTORE", "ruled2", 0, blob) == "OK" and digest(raw, "ruled2") == d
    assert raw.call("DEL", "ruled2") == 1
    # the records move over with writes (16 a write): n / 16 grants move them all
    reps = pipeline(raw, [("LOTTERY.GRANT", "ruled", "mover", 1)] * (n // 16 + 100))
    assert reps[-1] == n // 16 + 100
    back = raw.call("MEMORY", "USAGE", "ruled", "SAMPLES", 0)
    # the plain layout's size again (rules.md: 31.2 to 35.8 bytes a user without the counts,
    # the users map's load varying with how it grew)
    assert back / n <= 36, (back, plain)
    assert {u: user_d(raw, "ruled", u) for u in sample} == views
    assert stats_d(raw, "ruled")["users"] == n + 1


def test_lifetime_counts_restart_at_zero_after_a_quick_off_and_on(server_factory):
    """The switch of layout is lazy; a rule removed and added again before the records moved
    must still start the counts at 0 (rules.md), for every user, on the master, a replica,
    after DUMP/RESTORE and DEBUG RELOAD; day counts, bonus and wins are kept."""
    m = server_factory()
    rep = server_factory(replicaof=("127.0.0.1", m.port))
    H.wait_link_up(rep.client())
    raw = m.raw()
    pin(raw, T0)
    n = 3000
    cfg(raw, "c", "PRIZE", "a", 0, "INF", "NOTHING", 1, "MAXWINS", "INF", "TOTAL", 100)
    users = [f"u{i}" for i in range(n)]
    pipeline(raw, [("LOTTERY.DRAW", "c", u) for u in users for _ in range(3)])
    pipeline(raw, [("LOTTERY.GRANT", "c", u, 2) for u in users[::3]])
    sample = users[::97] + [users[-1]]
    before = {u: user_d(raw, "c", u) for u in sample}
    assert all(v["draws_total"] == 3 and v["draws_since_win"] == 3 for v in before.values())
    for step, args in enumerate([("TOTAL", "INF"), ("GUARANTEE", 5), ("GUARANTEE", "OFF"),
                                 ("TOTAL", 50)]):
        cfg(raw, "c", *args)
        # one write in between: a few records move, most stay where they are
        assert raw.call("LOTTERY.GRANT", "c", f"w{step}", 1) == 1
        for u in sample:
            got = user_d(raw, "c", u)
            want = dict(before[u], draws_total=0, draws_since_win=0)
            want["chances_left"] = 50 if args == ("TOTAL", 50) else -1
            assert got == want, (args, u, got, want)
    # a draw of a user whose record did not move yet: counts from 0, TOTAL 50 from there
    u = users[1500]
    assert draw(raw, "c", u)[:4] == [b"LOSE", None, None, 49]
    got = user_d(raw, "c", u)
    assert (got["draws_total"], got["draws_since_win"], got["draws_today"]) == (1, 1, 4)
    d = digest(raw, "c")
    D_wait = rep.client()
    assert raw.call("WAIT", 1, 10000) == 1
    for _ in range(100):
        if m.client().info("replication")["master_repl_offset"] == \
                D_wait.info("replication")["master_repl_offset"]:
            break
        time.sleep(0.05)
    rraw = rep.raw()
    pin(rraw, T0)
    assert rraw.call("DEBUG", "DIGEST-VALUE", "c") == d
    assert {x: user_d(rraw, "c", x) for x in sample} == {x: user_d(raw, "c", x) for x in sample}
    assert raw.call("RESTORE", "c2", 0, raw.call("DUMP", "c")) == "OK"
    assert digest(raw, "c2") == d
    assert raw.call("DEBUG", "RELOAD") == "OK"
    assert digest(raw, "c") == d
    assert {x: user_d(raw, "c", x) for x in sample} == {x: user_d(rraw, "c", x) for x in sample}


def test_wins_and_last_prize_past_the_small_record_in_the_lifetime_layout(raw):
    pin(raw, T0)
    args = []
    for i in range(5000):
        args += ["PRIZE", f"p{i}", 1 if i == 4999 else 0, "INF"]
    cfg(raw, "c", *args, "NOTHING", 0, "MAXWINS", "INF", "TOTAL", 100000, "GUARANTEE", 7)
    reps = pipeline(raw, [("LOTTERY.DRAW", "c", "u")] * 4100, batch=5000)
    assert all(r[:2] == [b"WIN", b"p4999"] for r in reps)
    u = user_d(raw, "c", "u")
    assert (u["wins"], u["last_prize"], u["draws_total"], u["draws_since_win"],
            u["draws_today"]) == (4100, b"p4999", 4100, 0, 4100)
    d = digest(raw, "c")
    assert raw.call("DEBUG", "RELOAD") == "OK" and digest(raw, "c") == d
    assert user_d(raw, "c", "u") == u
    cfg(raw, "c", "TOTAL", "INF", "GUARANTEE", "OFF")          # back to the plain layout
    u2 = user_d(raw, "c", "u")
    assert (u2["wins"], u2["last_prize"], u2["draws_today"], u2["draws_total"]) == \
        (4100, b"p4999", 4100, 0)
    assert draw(raw, "c", "u")[:2] == [b"WIN", b"p4999"]
    assert user_d(raw, "c", "u")["wins"] == 4101


@pytest.mark.parametrize("field", ["draws_total", "draws_since_win", "draws_today", "bonus"])
def test_counts_past_12_bits_are_exact(raw, field):
    """The lifetime layout holds the day count, bonus and lifetime counts in 12 bits each;
    larger values are kept exactly in a side map. Cross 4095 and 65535 one draw at a time
    around the edges, with TOTAL / DAILY / AFTER / GUARANTEE deciding at those values."""
    pin(raw, T0)
    if field == "draws_total":
        cfg(raw, "c", "PRIZE", "a", 1, "INF", "AFTER", 4097, "NOTHING", 0, "MAXWINS", "INF",
            "TOTAL", 66000)
    elif field == "draws_since_win":
        cfg(raw, "c", "PRIZE", "a", 1, "INF", "NOTHING", 4_000_000_000, "MAXWINS", "INF",
            "GUARANTEE", 66000)
    elif field == "draws_today":
        cfg(raw, "c", "PRIZE", "a", 0, "INF", "NOTHING", 1, "TOTAL", 100000, "DAILY", 66000)
    else:
        cfg(raw, "c", "PRIZE", "a", 0, "INF", "NOTHING", 1, "TOTAL", 100000, "DAILY", 0)
        assert raw.call("LOTTERY.GRANT", "c", "u", 66000) == 66000
    done = 0
    for target in (4094, 4095, 4096, 4097, 65534, 65535, 65536, 65537):
        k = target - done
        reps = pipeline(raw, [("LOTTERY.DRAW", "c", "u")] * k, batch=5000)
        for i, r in enumerate(reps):
            n = done + i + 1
            if field == "draws_total":
                want = b"LOSE" if n < 4097 else b"WIN"
                assert r[0] == want, (n, r)
            else:
                assert r[0] == b"LOSE", (n, r)
        done = target
        u = user_d(raw, "c", "u")
        if field == "bonus":
            assert u["bonus"] == 66000 - done, (done, u)
        else:
            assert u[field] == done, (done, u)
        if field in ("draws_total", "draws_since_win"):
            assert u["draws_total"] == done
    assert raw.call("DEBUG", "RELOAD") == "OK"
    u2 = user_d(raw, "c", "u")
    assert u2 == u
    blob = raw.call("DUMP", "c")
    assert raw.call("RESTORE", "c2", 0, blob) == "OK" and digest(raw, "c2") == digest(raw, "c")
    # the rules still decide exactly past the edge
    if field == "draws_total":
        reps = pipeline(raw, [("LOTTERY.DRAW", "c", "u")] * (66000 - done))
        assert all(r[0] == b"WIN" for r in reps)
        assert draw(raw, "c", "u") == [b"QUOTA", None, None, 0, -1]
    elif field == "draws_since_win":
        reps = pipeline(raw, [("LOTTERY.DRAW", "c", "u")] * (66000 - 1 - done))
        assert all(r[0] == b"LOSE" for r in reps)
        assert draw(raw, "c", "u")[:2] == [b"WIN", b"a"]      # the 66000th: guaranteed
        assert user_d(raw, "c", "u")["draws_since_win"] == 0
    elif field == "draws_today":
        reps = pipeline(raw, [("LOTTERY.DRAW", "c", "u")] * (66000 - done))
        assert all(r[0] == b"LOSE" for r in reps)
        assert draw(raw, "c", "u")[0] == b"QUOTA"
        pin(raw, T0 + DAY)
        assert user_d(raw, "c", "u")["draws_today"] == 0
    else:
        reps = pipeline(raw, [("LOTTERY.DRAW", "c", "u")] * (66000 - done))
        assert all(r[0] == b"LOSE" for r in reps)
        assert draw(raw, "c", "u") == [b"QUOTA", None, None, 0, -1]


def test_guarantee_lowered_applies_to_draws_since_win_or_more(raw):
    cfg(raw, "c", "PRIZE", "a", 1, "INF", "NOTHING", BIG, "MAXWINS", "INF", "GUARANTEE", 10)
    assert [draw(raw, "c", "u")[1] for _ in range(7)] == [None] * 7
    cfg(raw, "c", "GUARANTEE", 3)           # since_win 7 >= 3 - 1: the next draw wins
    assert [draw(raw, "c", "u")[1] for _ in range(4)] == [b"a", None, None, b"a"]
    cfg(raw, "c", "GUARANTEE", 1000000)
    assert user_d(raw, "c", "u")["draws_since_win"] == 0
    assert [draw(raw, "c", "u")[1] for _ in range(3)] == [None] * 3


def test_guarantee_prize_ids_that_look_like_keywords(raw):
    ids = [b"NOTHING", b"TIER", b"PRIZES", b"GUARANTEE", b"3", b"OFF"]
    args = []
    for pid in ids:
        args += ["PRIZE", pid, 1, "INF"]
    cfg(raw, "c", *args, "NOTHING", BIG, "MAXWINS", "INF",
        "GUARANTEE", 2, "PRIZES", 2, b"NOTHING", b"TIER", "TOTAL", 100)
    wins = {draw(raw, "c", "u")[1] for _ in range(200)} - {None}
    assert wins == {b"NOTHING", b"TIER"}, wins
    st = stats_d(raw, "c")
    assert st["total"] == 100 and st["guarantee"] == 2


# --------------------------------------------------------------------------------------------
# AFTER


def test_after_lose_policy(raw):
    cfg(raw, "c", "PRIZE", "a", 1, "INF", "AFTER", 3, "NOTHING", 0, "MAXWINS", "INF")
    reps = pipeline(raw, [("LOTTERY.DRAW", "c", f"u{i}") for i in range(40) for _ in range(5)])
    for i in range(40):
        outs = [r[:2] for r in reps[i * 5:(i + 1) * 5]]
        assert outs == [[b"LOSE", None]] * 2 + [[b"WIN", b"a"]] * 3, (i, outs)
    u = user_d(raw, "c", "u0")
    assert (u["draws_total"], u["draws_since_win"], u["wins"]) == (5, 0, 3)
    assert stats_d(raw, "c")["after"] == [b"a", 3]


def test_after_redraw_others_share_exact_odds(raw):
    cfg(raw, "c", "PRIZE", "a", 3, "INF", "AFTER", 3, "PRIZE", "b", 1, "INF",
        "PRIZE", "c", 2, "INF", "NOTHING", 2, "SOLDOUT", "REDRAW", "MAXWINS", "INF")
    users = 8000
    cmds = [("LOTTERY.DRAW", "c", f"u{i}") for i in range(users) for _ in range(2)]
    early = count_draws(raw, cmds)
    assert b"a" not in early, f"a locked until draw 3 was won on draw 1 or 2: {early}"
    assert_fits(early, {b"b": 1 / 5, b"c": 2 / 5, None: 2 / 5}, 2 * users, "draws 1-2")
    m = 6000
    third = count_draws(raw, [("LOTTERY.DRAW", "c", f"u{i}") for i in range(m)])
    assert_fits(third, {b"a": 3 / 8, b"b": 1 / 8, b"c": 2 / 8, None: 2 / 8}, m, "draw 3")


def test_after_redraw_exact_when_the_locked_prize_dominates(raw):
    """A locked prize of overwhelming weight: the 16 redraws fail nearly always, and the
    exact pick among the winnable entries must keep b : NOTHING at 1 : 1."""
    cfg(raw, "c", "PRIZE", "a", 4_000_000_000, "INF", "AFTER", 1_000_000, "PRIZE", "b", 1,
        "INF", "NOTHING", 1, "SOLDOUT", "REDRAW", "MAXWINS", "INF")
    n = 10_000
    got = count_draws(raw, [("LOTTERY.DRAW", "c", "u")] * n)
    assert_fits(got, {b"b": 0.5, None: 0.5}, n, "REDRAW past a dominant locked prize")


def test_after_redraw_locked_and_unlocked_users_interleaved_in_a_tier(raw):
    """AFTER is per user: a REDRAW table built for a user who has a prize locked must not
    serve a user who has it unlocked (and the other way round), in a tier too."""
    cfg(raw, "c", "PRIZE", "a", 3, "INF", "AFTER", 3, "PRIZE", "b", 1, "INF",
        "PRIZE", "c", 2, "INF", "NOTHING", 2, "SOLDOUT", "REDRAW", "MAXWINS", "INF",
        "TIER", "t", "PRIZE-WEIGHT", "a", 6)
    n = 5000
    pipeline(raw, [("LOTTERY.DRAW", "c", f"vet{i}") for i in range(n) for _ in range(2)])
    cmds = []
    for i in range(n):
        cmds += [("LOTTERY.DRAW", "c", f"vet{i}", "TIER", "t"),
                 ("LOTTERY.DRAW", "c", f"new{i}", "TIER", "t")]
    reps = pipeline(raw, cmds)
    vets, news = {}, {}
    for i, r in enumerate(reps):
        assert r[0] in (b"WIN", b"LOSE"), r
        d = vets if i % 2 == 0 else news
        d[r[1]] = d.get(r[1], 0) + 1
    assert b"a" not in news, f"a new user won the locked prize: {news}"
    assert_fits(news, {b"b": 1 / 5, b"c": 2 / 5, None: 2 / 5}, n, "locked users, tier t")
    assert_fits(vets, {b"a": 6 / 11, b"b": 1 / 11, b"c": 2 / 11, None: 2 / 11}, n,
                "unlocked users, tier t")


def test_after_fallback_policy(raw):
    cfg(raw, "c", "PRIZE", "a", 1, "INF", "AFTER", 3, "PRIZE", "f", 0, "INF", "NOTHING", 0,
        "SOLDOUT", "FALLBACK", "f", "MAXWINS", "INF")
    outs = [draw(raw, "c", "u")[:2] for _ in range(4)]
    assert outs == [[b"WIN", b"f"], [b"WIN", b"f"], [b"WIN", b"a"], [b"WIN", b"a"]], outs
    # the fallback locked itself: a loss until it unlocks
    cfg(raw, "d", "PRIZE", "a", 1, "INF", "AFTER", 4, "PRIZE", "f", 0, "INF", "AFTER", 2,
        "NOTHING", 0, "SOLDOUT", "FALLBACK", "f", "MAXWINS", "INF")
    outs = [draw(raw, "d", "u")[:2] for _ in range(5)]
    assert outs == [[b"LOSE", None], [b"WIN", b"f"], [b"WIN", b"f"], [b"WIN", b"a"],
                    [b"WIN", b"a"]], outs


def test_after_1_is_no_lock_and_bounds(raw):
    cfg(raw, "c", "PRIZE", "a", 1, "INF", "AFTER", 1, "NOTHING", 0)
    assert draw(raw, "c", "u")[:2] == [b"WIN", b"a"]
    cfg(raw, "d", "PRIZE", "a", 1, "INF", "AFTER", 4294967295, "NOTHING", 0, "MAXWINS", "INF")
    assert [draw(raw, "d", "u")[0] for _ in range(3)] == [b"LOSE"] * 3
    for bad in (0, -1, 4294967296, 2 ** 64, "", "INF", "1.0", "+3"):
        err(raw, "LOTTERY.CONFIGURE", "e", "PRIZE", "a", 1, "INF", "AFTER", bad)
    err(raw, "LOTTERY.CONFIGURE", "e", "PRIZE", "a", 1, "INF", "AFTER")
    assert raw.call("EXISTS", "e") == 0


def test_after_counts_granted_chances_and_starts_with_the_rule(raw):
    pin(raw, T0)
    cfg(raw, "c", "PRIZE", "a", 1, "INF", "NOTHING", 0, "DAILY", 1, "MAXWINS", "INF")
    assert draw(raw, "c", "u")[:2] == [b"WIN", b"a"]        # before any rule
    cfg(raw, "c", "PRIZE", "a", 1, "INF", "AFTER", 2)
    assert raw.call("LOTTERY.GRANT", "c", "u", 5) == 5
    # draws_total counts from the rule on: draw 1 (bonus) locked, draw 2 unlocked
    assert draw(raw, "c", "u")[:2] == [b"LOSE", None]
    assert draw(raw, "c", "u")[:2] == [b"WIN", b"a"]
    assert user_d(raw, "c", "u")["draws_total"] == 2


# --------------------------------------------------------------------------------------------
# TOTAL


def test_total_refuses_past_n_with_wait_minus_one(raw):
    pin(raw, T0)
    cfg(raw, "c", "PRIZE", "a", 0, "INF", "NOTHING", 1, "TOTAL", 3, "DAILY", "INF")
    assert [draw(raw, "c", "u")[3] for _ in range(3)] == [2, 1, 0]
    assert draw(raw, "c", "u") == [b"QUOTA", None, None, 0, -1]
    st = stats_d(raw, "c")
    assert (st["rejected_total"], st["rejected_quota"], st["draws"]) == (1, 0, 3)
    assert st["total"] == 3
    assert raw.call("LOTTERY.GRANT", "c", "u", 5) == 5
    assert draw(raw, "c", "u") == [b"QUOTA", None, None, 0, -1]
    pin(raw, T0 + 40 * DAY)
    assert draw(raw, "c", "u") == [b"QUOTA", None, None, 0, -1]
    u = user_d(raw, "c", "u")
    assert (u["draws_total"], u["chances_left"], u["bonus"]) == (3, 0, 5)
    st = stats_d(raw, "c")
    assert (st["rejected_total"], st["rejected_quota"], st["draws"]) == (3, 0, 3)
    # raising TOTAL lets the user go on, with the bonus still there
    cfg(raw, "c", "TOTAL", 4)
    assert draw(raw, "c", "u")[:4] == [b"LOSE", None, None, 0]


def test_total_checked_before_the_period_quota(raw):
    pin(raw, T0)
    cfg(raw, "c", "PRIZE", "a", 0, "INF", "NOTHING", 1, "TOTAL", 2, "DAILY", 1)
    assert draw(raw, "c", "u") == [b"LOSE", None, None, 0, 0]
    rep = draw(raw, "c", "u")
    assert rep[0] == b"QUOTA" and rep[4] != -1          # the day's quota, not TOTAL yet
    pin(raw, T0 + DAY)
    assert draw(raw, "c", "u") == [b"LOSE", None, None, 0, 0]
    assert draw(raw, "c", "u") == [b"QUOTA", None, None, 0, -1]     # both: TOTAL first
    st = stats_d(raw, "c")
    assert (st["rejected_total"], st["rejected_quota"]) == (1, 1)


def test_total_zero_and_cooldown_first(raw):
    pin(raw, T0)
    cfg(raw, "c", "PRIZE", "a", 1, "INF", "TOTAL", 0)
    assert draw(raw, "c", "u") == [b"QUOTA", None, None, 0, -1]
    cfg(raw, "d", "PRIZE", "a", 0, "INF", "NOTHING", 1, "TOTAL", 1, "COOLDOWN", 500)
    assert draw(raw, "d", "u")[0] == b"LOSE"
    assert draw(raw, "d", "u")[0] == b"COOLDOWN"       # cooldown is checked before TOTAL
    pin(raw, T0 + 500)
    assert draw(raw, "d", "u") == [b"QUOTA", None, None, 0, -1]
    assert stats_d(raw, "d")["rejected_cooldown"] == 1


@pytest.mark.parametrize("daily,total,bonus,left", [
    ("INF", "INF", 0, [-1, -1, -1]),
    ("INF", 3, 0, [2, 1, 0]),
    (5, 3, 0, [2, 1, 0]),
    (2, 10, 0, [1, 0]),
    (1, 3, 5, [2, 1, 0]),       # period 0 + bonus 5 vs TOTAL: 2, 1, 0
    (1, 10, 2, [2, 1, 0]),      # period + bonus is the smaller
    ("INF", 4, 7, [3, 2, 1, 0]),
])
def test_chances_left_is_the_smaller(raw, daily, total, bonus, left):
    pin(raw, T0)
    cfg(raw, "c", "PRIZE", "a", 0, "INF", "NOTHING", 1, "TOTAL", total, "DAILY", daily)
    if bonus:
        raw.call("LOTTERY.GRANT", "c", "u", bonus)
    got = []
    for want in left:
        rep = draw(raw, "c", "u")
        assert rep[0] == b"LOSE", rep
        got.append(rep[3])
        assert user_d(raw, "c", "u")["chances_left"] == rep[3]
    assert got == left
    if left[-1] == 0:
        assert draw(raw, "c", "u")[0] == b"QUOTA"


# --------------------------------------------------------------------------------------------
# PERIOD


PERIOD_CASES = [
    # period, DAYOFFSET, first draw (local y,m,d,h,min), boundary (local), next boundary (local)
    ("WEEK", 0, (2024, 1, 3, 10, 0), (2024, 1, 8), (2024, 1, 15)),        # Wed -> Mon
    ("WEEK", 480, (2024, 1, 7, 23, 30), (2024, 1, 8), (2024, 1, 15)),     # Sun 23:30 UTC+8
    ("WEEK", -300, (2024, 1, 2, 0, 1), (2024, 1, 8), (2024, 1, 15)),
    ("WEEK", 0, (2024, 12, 28, 12, 0), (2024, 12, 30), (2025, 1, 6)),     # across a new year
    ("MONTH", 0, (2025, 1, 15, 9, 0), (2025, 2, 1), (2025, 3, 1)),        # Jan 31 -> Feb 1
    ("MONTH", 0, (2023, 2, 10, 0, 0), (2023, 3, 1), (2023, 4, 1)),        # Feb 28 -> Mar 1
    ("MONTH", 480, (2024, 2, 1, 0, 30), (2024, 3, 1), (2024, 4, 1)),      # Feb 29 (leap)
    ("MONTH", -300, (2024, 2, 28, 23, 0), (2024, 3, 1), (2024, 4, 1)),
    ("MONTH", 480, (2024, 12, 31, 23, 58), (2025, 1, 1), (2025, 2, 1)),   # Dec 31 -> Jan 1
    ("MONTH", -300, (2024, 12, 1, 0, 0), (2025, 1, 1), (2025, 2, 1)),
    ("MONTH", -1440, (2024, 2, 29, 12, 0), (2024, 3, 1), (2024, 4, 1)),
    ("MONTH", 1440, (2024, 4, 30, 1, 0), (2024, 5, 1), (2024, 6, 1)),
]


@pytest.mark.parametrize("period,offset,first,boundary,nxt", PERIOD_CASES,
                         ids=[f"{c[0]}{c[1]:+d}-{c[3][0]}-{c[3][1]:02d}-{c[3][2]:02d}"
                              for c in PERIOD_CASES])
def test_period_boundaries(raw, period, offset, first, boundary, nxt):
    t1 = local_ms(*first, offset_min=offset)
    b = local_ms(*boundary, offset_min=offset)
    b2 = local_ms(*nxt, offset_min=offset)
    assert t1 < b < b2
    pin(raw, t1)
    cfg(raw, "c", "PRIZE", "a", 0, "INF", "NOTHING", 1, "DAILY", 2, "PERIOD", period,
        "DAYOFFSET", offset)
    assert _s(stats_d(raw, "c")["period"]).upper() == period
    assert draw(raw, "c", "u") == [b"LOSE", None, None, 1, 0]
    pin(raw, t1 + 1)
    assert draw(raw, "c", "u") == [b"LOSE", None, None, 0, 0]
    # a later local day of the same period: still refused, wait = ms to the boundary
    mid = max(t1 + 2, b - DAY + 3_600_000)
    for t in sorted({mid, (mid + b) // 2, b - 1}):
        pin(raw, t)
        assert draw(raw, "c", "u") == [b"QUOTA", None, None, 0, b - t], \
            f"at {t} (boundary {b})"
        u = user_d(raw, "c", "u")
        assert (u["draws_today"], u["chances_left"]) == (2, 0)
    pin(raw, b)
    u = user_d(raw, "c", "u")
    assert (u["draws_today"], u["chances_left"]) == (0, 2)
    assert draw(raw, "c", "u") == [b"LOSE", None, None, 1, 0]
    assert draw(raw, "c", "u") == [b"LOSE", None, None, 0, 0]
    assert draw(raw, "c", "u") == [b"QUOTA", None, None, 0, b2 - b]
    pin(raw, b2 - 1)
    assert draw(raw, "c", "u") == [b"QUOTA", None, None, 0, 1]
    pin(raw, b2)
    assert draw(raw, "c", "u") == [b"LOSE", None, None, 1, 0]
    st = stats_d(raw, "c")
    assert st["draws"] == 5 and st["rejected_total"] == 0


def test_period_change_takes_effect_at_once(raw):
    tue = local_ms(2024, 1, 9, 10)          # a Tuesday (UTC)
    pin(raw, tue)
    cfg(raw, "c", "PRIZE", "a", 0, "INF", "NOTHING", 1, "DAILY", 2)
    draw(raw, "c", "u")
    draw(raw, "c", "u")
    assert draw(raw, "c", "u")[0] == b"QUOTA"
    wed = tue + DAY
    pin(raw, wed)
    assert user_d(raw, "c", "u")["draws_today"] == 0
    cfg(raw, "c", "PERIOD", "WEEK")         # the last draw is in this week: the count stands
    u = user_d(raw, "c", "u")
    assert (u["draws_today"], u["chances_left"]) == (2, 0)
    assert draw(raw, "c", "u") == [b"QUOTA", None, None, 0, local_ms(2024, 1, 15) - wed]
    cfg(raw, "c", "PERIOD", "DAY")          # back to days: Tuesday is not today
    assert user_d(raw, "c", "u")["draws_today"] == 0
    assert draw(raw, "c", "u")[0] == b"LOSE"
    cfg(raw, "c", "PERIOD", "MONTH")        # same month: today's draw counts
    u = user_d(raw, "c", "u")
    assert u["draws_today"] == 1
    pin(raw, local_ms(2024, 2, 1))
    assert user_d(raw, "c", "u")["draws_today"] == 0


def test_period_with_daily_zero_and_bonus(raw):
    pin(raw, local_ms(2024, 1, 10))
    cfg(raw, "c", "PRIZE", "a", 0, "INF", "NOTHING", 1, "DAILY", 0, "PERIOD", "MONTH")
    assert draw(raw, "c", "u") == [b"QUOTA", None, None, 0, -1]
    raw.call("LOTTERY.GRANT", "c", "u", 1)
    assert draw(raw, "c", "u")[0] == b"LOSE"
    assert draw(raw, "c", "u") == [b"QUOTA", None, None, 0, -1]


# --------------------------------------------------------------------------------------------
# CODES


def codes_count(raw, key, prize):
    return raw.call("LOTTERY.CODES", key, prize, "COUNT")


def test_codes_add_count_remove_and_stock(raw):
    cfg(raw, "c", "PRIZE", "card", 1, "CODES", "NOTHING", 0, "MAXWINS", "INF")
    assert codes_count(raw, "c", "card") == 0
    assert prize_rows(stats_d(raw, "c"))[b"card"][1] == 0
    assert draw(raw, "c", "u", code_prizes=(b"card",))[:2] == [b"LOSE", None]
    assert raw.call("LOTTERY.CODES", "c", "card", "ADD", "k1", "k2", "k3") == 3
    assert raw.call("LOTTERY.CODES", "c", "card", "ADD", "k3", "k4") == 1
    assert raw.call("LOTTERY.CODES", "c", "card", "ADD", "k5", "k5") == 1
    assert codes_count(raw, "c", "card") == 5
    assert prize_rows(stats_d(raw, "c"))[b"card"][1] == 5
    assert raw.call("LOTTERY.CODES", "c", "card", "REMOVE", "k1", "nope", "k1") == 1
    assert codes_count(raw, "c", "card") == 4
    assert prize_rows(stats_d(raw, "c"))[b"card"][1] == 4
    got = [draw(raw, "c", "u", code_prizes=(b"card",)) for _ in range(5)]
    assert [g[5] for g in got[:4]] == [b"k2", b"k3", b"k4", b"k5"], got   # oldest first
    assert got[4][:2] == [b"LOSE", None] and len(got[4]) == 5
    # handed out: never again, not even by ADD; a removed (never handed out) one may return
    assert raw.call("LOTTERY.CODES", "c", "card", "ADD", "k2", "k5", "k1") == 1
    assert raw.call("LOTTERY.CODES", "c", "card", "REMOVE", "k3") == 0
    assert codes_count(raw, "c", "card") == 1
    assert prize_rows(stats_d(raw, "c"))[b"card"] == [1, 1, 4]
    assert draw(raw, "c", "u", code_prizes=(b"card",))[5] == b"k1"
    assert codes_count(raw, "c", "card") == 0
    rows = stats_d(raw, "c")["prizes"]
    assert rows[0][:4] == [b"card", 1, 0, 5]


def test_code_in_reply_stream_and_reqid_replay(server, raw):
    pin(raw, T0)
    cfg(raw, "c", "PRIZE", "card", 1, "CODES", "PRIZE", "pts", 1, "INF", "NOTHING", 0,
        "MAXWINS", "INF", "SOLDOUT", "REDRAW")
    added = [b"code-%04d" % i for i in range(300)]
    N = 900             # the pool (300) runs dry well before: REDRAW gives pts then
    assert raw.call("LOTTERY.CODES", "c", "card", "ADD", *added) == 300
    first = {}
    for i in range(N):
        first[i] = raw.call_raw("LOTTERY.DRAW", "c", f"u{i % 7}", "REQID", f"r{i}")
    st = stats_d(raw, "c")
    reps = {i: shape(parse_resp(blob), (b"card",)) for i, blob in first.items()}
    codes = [r[5] for r in reps.values() if r[1] == b"card"]
    assert codes == added, "codes are handed out once each, oldest added first"
    assert st["draws"] == N and prize_rows(st)[b"card"] == [1, 0, 300]
    assert all(r[0] == b"WIN" and r[1] == b"pts" for r in list(reps.values())[-50:])
    # the stream: fields user, prize, draw, code (only for a code prize), reqid
    entries = {eid: fields for eid, fields in H.xrange_raw(raw, "{c}:wins")}
    assert len(entries) == N
    for i, rep in reps.items():
        fields = entries[rep[2]]
        names = [f for f, _ in fields]
        vals = dict(fields)
        if rep[1] == b"card":
            assert names == [b"user", b"prize", b"draw", b"code", b"reqid"], names
            assert vals[b"code"] == rep[5]
        else:
            assert names == [b"user", b"prize", b"draw", b"reqid"], names
        assert vals[b"reqid"] == f"r{i}".encode()
    # REQID replays: byte for byte, the code included, nothing consumed
    for i, blob in first.items():
        assert raw.call_raw("LOTTERY.DRAW", "c", f"u{i % 7}", "REQID", f"r{i}") == blob, i
    st2 = stats_d(raw, "c")
    assert st2["draws"] == N and st2["replays"] == N
    assert raw.call("XLEN", "{c}:wins") == N
    assert codes_count(raw, "c", "card") == 0


def test_every_code_handed_out_exactly_once_then_sold_out(raw):
    cfg(raw, "c", "PRIZE", "card", 1, "CODES", "NOTHING", 0)
    rng = random.Random(7)
    added = list(dict.fromkeys(rng.randbytes(rng.randint(1, 40)) for _ in range(1000)))
    assert raw.call("LOTTERY.CODES", "c", "card", "ADD", *added) == len(added)
    reps = pipeline(raw, [("LOTTERY.DRAW", "c", f"u{i}") for i in range(len(added) + 500)])
    for r in reps:
        shape(r, (b"card",))
    won = [r[5] for r in reps if r[0] == b"WIN"]
    assert won == added
    assert all(r[:2] == [b"LOSE", None] for r in reps[len(added):])
    assert codes_count(raw, "c", "card") == 0
    assert prize_rows(stats_d(raw, "c"))[b"card"] == [1, 0, len(added)]
    assert raw.call("LOTTERY.CODES", "c", "card", "ADD", *added[:50]) == 0
    assert raw.call("LOTTERY.CODES", "c", "card", "REMOVE", *added[:50]) == 0
    st = stats_d(raw, "c")
    assert (st["wins"], st["losses"]) == (len(added), 500)


def test_code_bytes_and_sizes(raw):
    cfg(raw, "c", "PRIZE", "card", 1, "CODES", "NOTHING", 0, "MAXWINS", "INF")
    good = [b"\x00", b"a\x00b", b"\xff", b"\xff\xfe\x00", b"\r\n", b"x" * 512, "奖品".encode(),
            "\U0001F381".encode(), "\U0010FFFF".encode(), b" ", b"ADD", b"REMOVE", b"COUNT"]
    assert raw.call("LOTTERY.CODES", "c", "card", "ADD", *good) == len(good)
    before = digest(raw, "c")
    for bad in ([b"x" * 513], [b""], [b"ok1", b""], [b"ok2", b"y" * 513], [b"y" * 100000]):
        err(raw, "LOTTERY.CODES", "c", "card", "ADD", *bad)
    assert digest(raw, "c") == before, "a refused ADD changed the campaign"
    assert codes_count(raw, "c", "card") == len(good)
    got = [draw(raw, "c", "u", code_prizes=(b"card",))[5] for _ in range(len(good))]
    assert got == good


def test_configure_keeps_refuses_and_restock(raw):
    cfg(raw, "c", "PRIZE", "card", 1, "CODES", "PRIZE", "b", 1, 10, "NOTHING", 1)
    assert raw.call("LOTTERY.CODES", "c", "card", "ADD", "a1", "a2", "a3") == 3
    # re-listed as a code prize: the pool stays (CONFIGURE never carries codes)
    cfg(raw, "c", "PRIZE", "card", 5, "CODES", "PRIZE", "b", 1, 10, "NOTHING", 1)
    assert codes_count(raw, "c", "card") == 3
    assert prize_rows(stats_d(raw, "c"))[b"card"][:2] == [5, 3]
    before = digest(raw, "c")
    err(raw, "LOTTERY.CONFIGURE", "c", "PRIZE", "b", 1, 10)                 # dropped
    err(raw, "LOTTERY.CONFIGURE", "c", "PRIZE", "card", 1, 10, "PRIZE", "b", 1, 10)  # counted
    err(raw, "LOTTERY.CONFIGURE", "c", "PRIZE", "card", 1, "INF")
    err(raw, "LOTTERY.RESTOCK", "c", "card", 1)
    err(raw, "LOTTERY.RESTOCK", "c", "card", -1)
    err(raw, "LOTTERY.RESTOCK", "c", "card", 0)
    err(raw, "LOTTERY.CODES", "c", "b", "ADD", "x")                         # a counted prize
    err(raw, "LOTTERY.CODES", "c", "b", "COUNT")
    err(raw, "LOTTERY.CODES", "c", "nope", "ADD", "x", contains="nope")
    err(raw, "LOTTERY.CODES", "c", "\u5956\u54c1".encode(), "COUNT", contains="奖品")
    assert digest(raw, "c") == before
    assert raw.call("LOTTERY.CODES", "c", "card", "REMOVE", "a1", "a2", "a3") == 3
    cfg(raw, "c", "PRIZE", "b", 1, 10)                                       # now allowed
    err(raw, "LOTTERY.CODES", "nokey", "card", "COUNT")
    err(raw, "LOTTERY.CODES", "nokey", "card", "ADD", "x")
    assert raw.call("EXISTS", "nokey") == 0


def test_code_memory_survives_dropping_and_converting_the_prize(raw):
    """The prize remembers every code it handed out: dropped from the table and back, or
    turned into a counted prize and back, a handed-out code is still refused."""
    cfg(raw, "c", "PRIZE", "card", 1, "CODES", "PRIZE", "x", 0, "INF", "NOTHING", 0,
        "MAXWINS", "INF")
    assert raw.call("LOTTERY.CODES", "c", "card", "ADD", "c1", "c2") == 2
    assert [draw(raw, "c", "u", code_prizes=(b"card",))[5] for _ in range(2)] == [b"c1", b"c2"]
    cfg(raw, "c", "PRIZE", "x", 1, "INF")                              # dropped (pool empty)
    cfg(raw, "c", "PRIZE", "card", 1, "CODES", "PRIZE", "x", 0, "INF")  # back
    assert raw.call("LOTTERY.CODES", "c", "card", "ADD", "c1", "c3") == 1
    assert raw.call("LOTTERY.CODES", "c", "card", "REMOVE", "c3") == 1
    cfg(raw, "c", "PRIZE", "card", 1, 5, "PRIZE", "x", 0, "INF")       # counted
    assert draw(raw, "c", "u", code_prizes=())[:2] == [b"WIN", b"card"]
    cfg(raw, "c", "PRIZE", "card", 1, "CODES", "PRIZE", "x", 0, "INF")  # codes again
    assert codes_count(raw, "c", "card") == 0
    assert raw.call("LOTTERY.CODES", "c", "card", "ADD", "c1", "c2", "c4") == 1
    assert draw(raw, "c", "u", code_prizes=(b"card",))[5] == b"c4"
    assert raw.call("DEBUG", "RELOAD") == "OK"
    assert raw.call("LOTTERY.CODES", "c", "card", "ADD", "c1", "c2", "c3", "c4") == 1


def test_transfer_of_a_code_prize_never_creates_or_loses_codes(raw):
    """rules.md: a transfer of a code prize moves codes, not counts: OUT takes the oldest
    codes into the transfer record, `TRANSFER CODES id` names them, IN puts exactly them in
    the other pool. The codes of the two shards are conserved; an IN without them is refused
    and changes nothing."""
    for k in ("{s}a", "{s}b"):
        cfg(raw, k, "PRIZE", "card", 1, "CODES", "NOTHING", 0, "MAXWINS", "INF")
    assert raw.call("LOTTERY.CODES", "{s}a", "card", "ADD", "c1", "c2", "c3", "c4") == 4
    before = digest(raw, "{s}a"), digest(raw, "{s}b")
    out = raw.call("LOTTERY.TRANSFER", "{s}a", "OUT", "t1", "card", 2, "{s}b")
    if isinstance(out, Err):
        assert out.startswith("ERR "), out
        assert (digest(raw, "{s}a"), digest(raw, "{s}b")) == before
        err(raw, "LOTTERY.TRANSFER", "{s}b", "IN", "t1", "card", 2, "{s}a")
        assert (digest(raw, "{s}a"), digest(raw, "{s}b")) == before
        return
    assert out == 2
    moving = raw.call("LOTTERY.TRANSFER", "{s}a", "CODES", "t1")
    assert moving == [b"c1", b"c2"], moving
    mid = digest(raw, "{s}b")
    err(raw, "LOTTERY.TRANSFER", "{s}b", "IN", "t1", "card", out, "{s}a")
    assert digest(raw, "{s}b") == mid
    inn = raw.call("LOTTERY.TRANSFER", "{s}b", "IN", "t1", "card", out, "{s}a", "CODES", *moving)
    assert inn == 1, inn
    na, nb = codes_count(raw, "{s}a", "card"), codes_count(raw, "{s}b", "card")
    assert na + nb == 4 and nb == out, (na, nb, out)
    got = [r[5] for r in pipeline(raw, [("LOTTERY.DRAW", "{s}a", "u")] * na +
                                  [("LOTTERY.DRAW", "{s}b", "u")] * nb)]
    assert sorted(got) == [b"c1", b"c2", b"c3", b"c4"], got


def test_code_order_across_chunks_removals_and_reloads(raw):
    """Oldest added first, exactly, over a pool of 60k codes: removals spread over it and a
    contiguous range removed, removed codes added again (they go last), a DEBUG RELOAD and a
    DUMP/RESTORE in the middle of handing them out."""
    cfg(raw, "c", "PRIZE", "card", 1, "CODES", "NOTHING", 0, "MAXWINS", "INF")
    rng = random.Random(3)
    codes = [b"%06d" % i + rng.randbytes(rng.choice([1, 4, 10, 30])) for i in range(60_000)]
    for i in range(0, len(codes), 5000):
        assert raw.call("LOTTERY.CODES", "c", "card", "ADD", *codes[i:i + 5000]) == 5000
    removed = set(codes[::7]) | set(codes[20_000:26_000])
    rm = sorted(removed)
    n = 0
    for i in range(0, len(rm), 5000):
        n += raw.call("LOTTERY.CODES", "c", "card", "REMOVE", *rm[i:i + 5000])
    assert n == len(removed)
    back = codes[21_000:21_500] + codes[::7][:300]
    assert raw.call("LOTTERY.CODES", "c", "card", "ADD", *back) == len(back)
    want = [c for c in codes if c not in removed] + back
    assert codes_count(raw, "c", "card") == len(want)
    got = []
    step = len(want) // 3
    for part in range(3):
        k = step if part < 2 else len(want) - 2 * step
        reps = pipeline(raw, [("LOTTERY.DRAW", "c", "u")] * k)
        got += [r[5] for r in reps]
        if part == 0:
            assert raw.call("DEBUG", "RELOAD") == "OK"
        if part == 1:
            blob = raw.call("DUMP", "c")
            assert raw.call("DEL", "c") == 1
            assert raw.call("RESTORE", "c", 0, blob) == "OK"
    assert got == want, "codes not handed out oldest added first"
    assert draw(raw, "c", "u", code_prizes=(b"card",))[:2] == [b"LOSE", None]
    assert raw.call("LOTTERY.CODES", "c", "card", "ADD", *codes[:1000]) == \
        sum(1 for c in codes[:1000] if c in removed and c not in back)


def test_tier_redraw_follows_restock_and_pace(raw):
    cfg(raw, "k", "PRIZE", "a", 1, 1, "PRIZE", "b", 1, "INF", "SOLDOUT", "REDRAW",
        "MAXWINS", "INF", "TIER", "t", "PRIZE-WEIGHT", "a", 100_000)
    outs = [draw(raw, "k", "u", "TIER", "t")[1] for _ in range(200)]
    assert outs.count(b"a") == 1 and outs.count(b"b") == 199, outs
    assert raw.call("LOTTERY.RESTOCK", "k", "a", 2) == 2
    outs = [draw(raw, "k", "u", "TIER", "t")[1] for _ in range(200)]
    assert outs.count(b"a") == 2, outs
    # PACE: 10 units released evenly over 100 s; the tier draws hold to it
    pin(raw, T0)
    cfg(raw, "p", "PRIZE", "a", 1, 10, "PRIZE", "b", 1, "INF", "SOLDOUT", "REDRAW",
        "MAXWINS", "INF", "WINDOW", T0, T0 + 100_000, "PACE", "a", "LINEAR",
        "TIER", "t", "PRIZE-WEIGHT", "a", 100_000)
    sold = 0
    for t in (0, 9_999, 10_000, 10_001, 20_000, 55_000, 99_999):
        pin(raw, T0 + t)
        outs = [draw(raw, "p", "u", "TIER", "t")[1] for _ in range(300)]
        sold += outs.count(b"a")
        assert sold == 10 * t // 100_000, (t, sold)
    # a guarantee listing a held-back prize is an ordinary draw
    pin(raw, T0)
    cfg(raw, "g", "PRIZE", "a", 1, 10, "PRIZE", "b", 1, "INF", "NOTHING", BIG,
        "MAXWINS", "INF", "WINDOW", T0, T0 + 100_000, "PACE", "a", "LINEAR",
        "GUARANTEE", 2, "PRIZES", 1, "a")
    assert [draw(raw, "g", "u")[1] for _ in range(6)] == [None] * 6
    pin(raw, T0 + 10_000)
    assert [draw(raw, "g", "u")[1] for _ in range(4)] == [b"a", None, None, None]


def test_code_kept_when_the_win_is_refused_and_ts_field_last(raw):
    """A win that cannot be written (the wins stream key holds a string) is an error that
    changes nothing: its code stays in the pool. A clock stepped back: the entry gets `ts`,
    after `code` and `reqid`."""
    pin(raw, T0)
    cfg(raw, "k", "PRIZE", "card", 1, "CODES", "NOTHING", 0, "MAXWINS", "INF")
    assert raw.call("LOTTERY.CODES", "k", "card", "ADD", "c1", "c2", "c3") == 3
    assert draw(raw, "k", "u", "REQID", "r1", code_prizes=(b"card",))[5] == b"c1"
    pin(raw, T0 - 1000)
    assert draw(raw, "k", "u", "REQID", "r2", code_prizes=(b"card",))[5] == b"c2"
    (_, f1), (_, f2) = H.xrange_raw(raw, "{k}:wins")
    assert [k for k, _ in f1] == [b"user", b"prize", b"draw", b"code", b"reqid"]
    assert f2 == [(b"user", b"u"), (b"prize", b"card"), (b"draw", b"2"), (b"code", b"c2"),
                  (b"reqid", b"r2"), (b"ts", str(T0 - 1000).encode())]
    assert raw.call("DEL", "{k}:wins") == 1
    assert raw.call("SET", "{k}:wins", "str") == "OK"
    before = digest(raw, "k")
    rep = raw.call("LOTTERY.DRAW", "k", "u")
    assert isinstance(rep, Err) and rep.startswith("WRONGTYPE"), rep
    assert digest(raw, "k") == before and codes_count(raw, "k", "card") == 1
    assert raw.call("DEL", "{k}:wins") == 1
    assert draw(raw, "k", "u", code_prizes=(b"card",))[5] == b"c3"
    assert codes_count(raw, "k", "card") == 0


def test_codes_are_per_prize_and_add_is_all_or_nothing(raw):
    cfg(raw, "k", "PRIZE", "A", 1, "CODES", "PRIZE", "B", 1, "CODES", "MAXWINS", "INF",
        "TIER", "a", "PRIZE-WEIGHT", "B", 0, "TIER", "b", "PRIZE-WEIGHT", "A", 0)
    assert raw.call("LOTTERY.CODES", "k", "A", "ADD", "X", "Y") == 2
    assert raw.call("LOTTERY.CODES", "k", "B", "ADD", "X", "Z") == 2   # another prize's pool
    assert draw(raw, "k", "u", "TIER", "a", code_prizes=(b"A", b"B"))[5] == b"X"
    assert draw(raw, "k", "u", "TIER", "b", code_prizes=(b"A", b"B"))[5] == b"X"
    assert raw.call("LOTTERY.CODES", "k", "A", "ADD", "Z", "X") == 1
    assert raw.call("LOTTERY.CODES", "k", "B", "ADD", "X") == 0
    before = digest(raw, "k")
    err(raw, "LOTTERY.CODES", "k", "A", "ADD", *[b"n%d" % i for i in range(100_001)])
    assert digest(raw, "k") == before and codes_count(raw, "k", "A") == 2
    assert raw.call("LOTTERY.CODES", "k", "A", "ADD", *[b"n%d" % i for i in range(100_000)]) \
        == 100_000


def test_code_prize_as_fallback_and_guaranteed(raw):
    cfg(raw, "c", "PRIZE", "big", 1, 0, "PRIZE", "card", 0, "CODES", "NOTHING", 0,
        "SOLDOUT", "FALLBACK", "card", "MAXWINS", "INF")
    raw.call("LOTTERY.CODES", "c", "card", "ADD", "f1", "f2")
    outs = [draw(raw, "c", "u", code_prizes=(b"card",)) for _ in range(3)]
    assert [o[5] for o in outs[:2]] == [b"f1", b"f2"] and outs[2][:2] == [b"LOSE", None]
    cfg(raw, "d", "PRIZE", "card", 1, "CODES", "PRIZE", "p", 1, "INF", "NOTHING", BIG,
        "GUARANTEE", 2, "PRIZES", 1, "card", "MAXWINS", "INF")
    raw.call("LOTTERY.CODES", "d", "card", "ADD", "g1")
    outs = [draw(raw, "d", "u", code_prizes=(b"card",)) for _ in range(4)]
    assert outs[1][:2] == [b"WIN", b"card"] and outs[1][5] == b"g1"
    assert [o[1] for o in (outs[0], outs[2], outs[3])] == [None, None, None]  # pool empty


def test_code_pool_memory_per_code(raw):
    cfg(raw, "c", "PRIZE", "card", 1, "CODES", "NOTHING", 1)
    rng = random.Random(11)
    n, per = 200_000, 2000

    def used():
        info = raw.call("INFO", "memory").decode()
        return int(next(l.split(":")[1] for l in info.splitlines()
                        if l.startswith("used_memory:")))

    before = used()
    total = 0
    for i in range(0, n, per * 10):
        cmds = [("LOTTERY.CODES", "c", "card", "ADD",
                 *[rng.randbytes(16) for _ in range(per)]) for _ in range(10)]
        total += sum(raw.pipeline(cmds))
    assert total >= n - 5
    after = used()
    per_code = (after - before) / total
    usage = raw.call("MEMORY", "USAGE", "c")
    print(f"\ncode pool: {total} codes of 16 bytes: used_memory +{after - before} bytes, "
          f"{per_code:.1f} B per code; MEMORY USAGE {usage} ({usage / total:.1f} B per code)")
    assert per_code < 100, f"{per_code:.1f} bytes per 16-byte code"
    assert codes_count(raw, "c", "card") == total
    # every code handed out: a handed-out code keeps only its index entry (rules.md), so
    # the memory goes down (the wins stream dropped before measuring)
    cfg(raw, "c", "NOTHING", 0, "MAXWINS", "INF")
    reps = pipeline(raw, [("LOTTERY.DRAW", "c", "u")] * total, batch=5000)
    assert all(len(r) == 6 for r in reps)
    assert codes_count(raw, "c", "card") == 0
    assert raw.call("DEL", "{c}:wins") == 1
    for _ in range(100):
        info = raw.call("INFO", "memory").decode()
        if "lazyfree_pending_objects:0" in info or "lazyfree_pending_objects" not in info:
            break
        time.sleep(0.05)
    handed = (used() - before) / total
    print(f"all handed out: {handed:.1f} B per code")
    assert handed < per_code and handed < 40, (handed, per_code)


# --------------------------------------------------------------------------------------------
# hostile inputs to every new option


HOSTILE_NUMS = [-1, "-1", 2 ** 32, 2 ** 64, 2 ** 64 + 1, -(2 ** 63) - 1, "", "+5", "5.0", " 5",
                "0x10", "1e3", "INF", "-INF", "nan", "5\x00", "\xff", "\u5956"]

BASE = ["PRIZE", "a", 1, "INF", "PRIZE", "b", 2, 10]


def _hostile_configures():
    out = []
    for v in HOSTILE_NUMS + [0, 1, 1000001, 4294967295]:
        out.append(["GUARANTEE", v])
    for v in HOSTILE_NUMS + ["OFF", "1.5"]:
        if v != "INF":
            out.append(["TOTAL", v])
    for v in HOSTILE_NUMS + [0, 4294967296]:
        out.append(["PRIZE", "a", 1, "INF", "AFTER", v])
    for v in HOSTILE_NUMS + [4294967296]:
        out.append(["TIER", "t", "PRIZE-WEIGHT", "a", v])
        out.append(["TIER", "t", "NOTHING", v])
    for v in ["", "YEAR", "DAYS", "WEEKS", "\x00DAY", "DAY\x00", "2", "-1", "DAY WEEK", "月"]:
        out.append(["PERIOD", v])
    for v in HOSTILE_NUMS + [0, 65537, 2 ** 32]:
        out.append(["GUARANTEE", 3, "PRIZES", v, "a"])
    out += [
        ["GUARANTEE"], ["GUARANTEE", 3, "PRIZES"], ["GUARANTEE", 3, "PRIZES", 2, "a"],
        ["GUARANTEE", 3, "PRIZES", 3, "a", "b"], ["GUARANTEE", 3, "PRIZES", 1, "nope"],
        ["GUARANTEE", 3, "PRIZES", 2, "a", "nope"], ["GUARANTEE", 3, "PRIZES", 1, ""],
        ["GUARANTEE", 3, "PRIZES", 1, "奖品"], ["GUARANTEE", 3, "PRIZES", 1, "\U0010FFFF"],
        ["GUARANTEE", 3, "GUARANTEE", 4], ["GUARANTEE", "OFF", "PRIZES", 1, "a"],
        ["TOTAL"], ["TOTAL", 3, "TOTAL", 4], ["PERIOD"], ["PERIOD", "WEEK", "PERIOD", "DAY"],
        ["TIER"], ["TIER", "t", "PRIZE-WEIGHT"], ["TIER", "t", "PRIZE-WEIGHT", "a"],
        ["TIER", "t", "PRIZE-WEIGHT", "nope", 1], ["TIER", "t", "PRIZE-WEIGHT", "奖品", 1],
        ["TIER", "t", "PRIZE-WEIGHT", "\U0001F381", 1], ["TIER", "t", "NOTHING"],
        ["TIER", "", "NOTHING", 1], ["TIER", "x" * 65, "NOTHING", 1],
        ["TIER", "t", "PRIZE-WEIGHT", "a", 0, "PRIZE-WEIGHT", "b", 0, "NOTHING", 0],
        ["PRIZE", "a", 1, "INF", "AFTER"], ["PRIZE", "a", 1, "INF", "AFTER", 3, "AFTER", 4],
        ["PRIZE", "a", 1, "CODES", "5"], ["PRIZE", "a", 1], ["PRIZE", "a", "CODES"],
        ["PRIZE", "a", 1, "CODES", "AFTER"],
    ]
    return out


def _has_tier(args):
    return "TIER" in args and "t" in args


def test_hostile_configure_options(raw, server):
    cfg(raw, "c", *BASE, "NOTHING", 1, "TIER", "keep", "NOTHING", 2)
    before = digest(raw, "c")
    bad = []
    for args in _hostile_configures():
        for key, extra in (("c", []), ("new", BASE if args[0] != "PRIZE" else [])):
            rep = raw.call("LOTTERY.CONFIGURE", key, *extra, *args)
            if not (isinstance(rep, Err) and rep.startswith("ERR ")):
                bad.append((key, args, rep))
            assert "\x00" not in str(rep) and "\r" not in str(rep) and "\n" not in str(rep)
            assert raw.call("PING") == "PONG", (key, args)
    assert not bad, f"{len(bad)} hostile CONFIGUREs accepted, e.g. {bad[:4]}"
    assert digest(raw, "c") == before
    assert raw.call("EXISTS", "new", "{new}:wins") == 0
    assert server.alive()


def test_hostile_draw_tier_and_codes_commands(raw):
    cfg(raw, "c", "PRIZE", "card", 1, "CODES", "PRIZE", "b", 1, "INF", "NOTHING", 1,
        "TIER", "t", "NOTHING", 2)
    raw.call("LOTTERY.CODES", "c", "card", "ADD", "x1")
    before = digest(raw, "c")
    cmds = [
        ("LOTTERY.DRAW", "c", "u", "TIER"),
        ("LOTTERY.DRAW", "c", "u", "TIER", "t", "TIER", "t"),
        ("LOTTERY.DRAW", "c", "u", "TIER", "t", "REQID"),
        ("LOTTERY.DRAW", "c", "u", "TIER", "t", "EXTRA"),
        ("LOTTERY.DRAW", "c", "u", "TIER", "t", "REQID", "r", "REQID", "r"),
        ("LOTTERY.DRAW", "c", "u", "TIER", "\U0010FFFF"),
        ("LOTTERY.DRAW", "c", "u", "TIER", "x" * 100000),
        ("LOTTERY.CODES", "c"),
        ("LOTTERY.CODES", "c", "card"),
        ("LOTTERY.CODES", "c", "card", "ADD"),
        ("LOTTERY.CODES", "c", "card", "REMOVE"),
        ("LOTTERY.CODES", "c", "card", "COUNT", "extra"),
        ("LOTTERY.CODES", "c", "card", "FOO", "x"),
        ("LOTTERY.CODES", "c", "card", "", "x"),
        ("LOTTERY.CODES", "c", "", "COUNT"),
        ("LOTTERY.CODES", "c", "x" * 300, "COUNT"),
        ("LOTTERY.CODES", "c", "\U0001F381", "ADD", "x"),
        ("LOTTERY.CODES", "c", "card", "ADD", "x" * 513),
    ]
    for c in cmds:
        err(raw, *c)
    assert digest(raw, "c") == before
    raw.call("SET", "str", "v")
    assert raw.call("LOTTERY.CODES", "str", "card", "COUNT").startswith("WRONGTYPE")
    assert raw.call("PING") == "PONG"


def test_utf8_of_every_plane_in_tiers_prizes_and_codes(raw):
    ids = ["奖品", "\U0001F381", "\U0010FFFF", "\u0100", "\u4e00", "e\u0301", "\U00020000",
           "\U000E0001", "\uFFFD", "\U0001F468\u200d\U0001F469"]
    ids = [s.encode() for s in ids]
    args = []
    for pid in ids:
        args += ["PRIZE", pid, 0, "CODES"]
    args += ["PRIZE", "base", 1, "INF", "MAXWINS", "INF"]
    for i, pid in enumerate(ids):
        args += ["TIER", pid, "PRIZE-WEIGHT", pid, 1, "PRIZE-WEIGHT", "base", 0]
    cfg(raw, "c", *args)
    for pid in ids:
        assert raw.call("LOTTERY.CODES", "c", pid, "ADD", pid + b"-code", b"\xff" + pid) == 2
    for pid in ids:
        rep = draw(raw, "c", "u", "TIER", pid, code_prizes=tuple(ids))
        assert rep[:2] == [b"WIN", pid] and rep[5] == pid + b"-code", rep
    # errors echoing such ids: clean, and the server lives
    for pid in ids:
        err(raw, "LOTTERY.CODES", "c", pid + b"?", "COUNT")
        err(raw, "LOTTERY.DRAW", "c", "u", "TIER", pid + b"?", contains="no such tier")
        err(raw, "LOTTERY.CONFIGURE", "c", "TIER", "z", "PRIZE-WEIGHT", pid + b"?", 1)
        err(raw, "LOTTERY.CONFIGURE", "c", "GUARANTEE", 2, "PRIZES", 1, pid + b"?")
        err(raw, "LOTTERY.RESTOCK", "c", pid, 1)
    assert raw.call("PING") == "PONG"


# --------------------------------------------------------------------------------------------
# the per-user rules against a reference model


class RulesModel:
    """docs/rules.md + docs/semantics.md for one campaign whose every pick is certain (the
    table in force holds either only prize `a` or only NOTHING), so each reply is exact."""

    INF = None

    def __init__(self, rng):
        self.daily = self.INF
        self.total = self.INF
        self.period = "DAY"
        self.offset = 0
        self.guarantee = None
        self.after = None
        self.maxwins = self.INF
        self.cooldown = rng.choice([0, 0, 1000])
        self.base_a = True          # base table: only a (else only NOTHING)
        self.stock = self.INF
        self.users = {}
        self.kept = False           # lifetime counts kept

    def args(self):
        a = ["PRIZE", "a", 1 if self.base_a else 0, "INF" if self.stock is None else self.stock]
        if self.after:
            a += ["AFTER", self.after]
        return a + ["NOTHING", 0 if self.base_a else 1]

    def user(self, u):
        return self.users.setdefault(u, {"count": 0, "last": 0, "bonus": 0, "wins": 0,
                                         "total": 0, "since": 0})

    def rules_on(self):
        return self.guarantee is not None or self.total is not None or bool(self.after)

    def after_configure(self):
        on = self.rules_on()
        if on != self.kept:
            for s in self.users.values():
                s["total"] = s["since"] = 0
            self.kept = on

    # -- time
    def _day(self, t):
        return (t + self.offset * 60_000) // DAY

    def period_key(self, t):
        d = self._day(t)
        if self.period == "DAY":
            return d
        if self.period == "WEEK":
            return (d + 3) // 7
        x = dt.date(1970, 1, 1) + dt.timedelta(days=d)
        return x.year * 12 + x.month

    def next_period(self, t):
        d = self._day(t)
        if self.period == "DAY":
            nd = d + 1
        elif self.period == "WEEK":
            nd = ((d + 3) // 7 + 1) * 7 - 3
        else:
            x = dt.date(1970, 1, 1) + dt.timedelta(days=d)
            y, m = (x.year + 1, 1) if x.month == 12 else (x.year, x.month + 1)
            nd = (dt.date(y, m, 1) - dt.date(1970, 1, 1)).days
        return nd * DAY - self.offset * 60_000

    def count(self, s, t):
        return s["count"] if s["last"] and self.period_key(s["last"]) == self.period_key(t) \
            else 0

    def chances_left(self, s, t):
        period = None if self.daily is None else \
            max(0, self.daily - self.count(s, t)) + s["bonus"]
        total = None if self.total is None else max(0, self.total - s["total"])
        vals = [v for v in (period, total) if v is not None]
        return min(vals) if vals else -1

    def draw(self, u, t, tier):
        s = self.user(u)
        if self.maxwins is not None and s["wins"] >= self.maxwins:
            return [b"ALREADY_WON", None, 0], s
        if s["last"] and s["last"] + self.cooldown > t:
            return [b"COOLDOWN", None, s["last"] + self.cooldown - t], s
        if self.total is not None and s["total"] >= self.total:
            return [b"QUOTA", None, -1], s
        cnt = self.count(s, t)
        free = None if self.daily is None else max(0, self.daily - cnt)
        if free == 0 and s["bonus"] == 0:
            return [b"QUOTA", None, -1 if self.daily == 0 else self.next_period(t) - t], s
        if free == 0:
            s["bonus"] -= 1
        s["count"] = cnt + 1
        s["last"] = t
        if self.kept:
            s["total"] += 1
        a_weight = {"ta": True, "tn": False}.get(tier, self.base_a)
        winnable = (self.stock is None or self.stock > 0) and \
            (not self.after or s["total"] >= self.after)
        guaranteed = self.guarantee is not None and s["since"] >= self.guarantee - 1
        win = winnable and a_weight          # guaranteed or not: a is the only candidate
        del guaranteed
        if win:
            if self.stock is not None:
                self.stock -= 1
            s["wins"] += 1
            if self.kept:
                s["since"] = 0
            return [b"WIN", b"a", self.cooldown], s
        if self.kept:
            s["since"] += 1
        return [b"LOSE", None, self.cooldown], s


def _model_op(rng, m, t):
    """A random CONFIGURE change: (args for CONFIGURE, function applying it to the model)."""
    k = rng.randrange(9)
    if k == 0:
        v = rng.choice([None, 0, 1, 2, 3, 5])
        return ["DAILY", "INF" if v is None else v], lambda: setattr(m, "daily", v)
    if k == 1:
        v = rng.choice([None, 0, 2, 4, 8, 20])
        return ["TOTAL", "INF" if v is None else v], lambda: setattr(m, "total", v)
    if k == 2:
        v = rng.choice(["DAY", "WEEK", "MONTH"])
        return ["PERIOD", v], lambda: setattr(m, "period", v)
    if k == 3:
        v = rng.choice([0, 480, -300, 1440, -1440])
        return ["DAYOFFSET", v], lambda: setattr(m, "offset", v)
    if k == 4:
        v = rng.choice([None, 2, 3, 5])
        return ["GUARANTEE", "OFF" if v is None else v], lambda: setattr(m, "guarantee", v)
    if k == 5:
        v = rng.choice([None, None, None, 3, 10, 30])
        return ["MAXWINS", "INF" if v is None else v], lambda: setattr(m, "maxwins", v)
    # the prize table: a's AFTER, stock, and which of a / NOTHING the base table holds
    after = rng.choice([None, None, 2, 3, 5])
    stock = rng.choice([None, 0, 1, 3, 10])
    base_a = rng.random() < 0.6

    def apply():
        m.after, m.stock, m.base_a = after, stock, base_a
    a = ["PRIZE", "a", 1 if base_a else 0, "INF" if stock is None else stock]
    if after:
        a += ["AFTER", after]
    return a + ["NOTHING", 0 if base_a else 1], apply


def _model_user_view(m, s, t):
    return {"draws_today": m.count(s, t), "chances_left": m.chances_left(s, t),
            "bonus": s["bonus"], "wins": s["wins"], "draws_total": s["total"],
            "draws_since_win": s["since"]}


@pytest.mark.parametrize("seed,n_users", [(i, 5) for i in range(1, 13)] +
                         [(i, 400) for i in range(13, 19)])
def test_per_user_rules_against_a_model(raw, seed, n_users):
    """With 400 users the rules go on and off while most records still sit in the other
    layout (they move 16 a write), and the state goes through DEBUG RELOAD and DUMP/RESTORE
    at any point."""
    rng = random.Random(seed)
    m = RulesModel(rng)
    t = local_ms(2024, 1, 1, 9) + rng.randrange(DAY)
    pin(raw, t)
    idem = 7_777_777          # REQID memory (an odd window: no step lands on its end)
    cfg(raw, "c", *m.args(), "COOLDOWN", m.cooldown, "MAXWINS", "INF", "IDEMPOTENCY", idem,
        "TIER", "ta", "PRIZE-WEIGHT", "a", 1, "NOTHING", 0,
        "TIER", "tn", "PRIZE-WEIGHT", "a", 0, "NOTHING", 1)
    users = [f"u{i}" for i in range(1, n_users + 1)]
    log = []
    outcomes = {}
    replies = {}              # (user, REQID) -> (time, first WIN/LOSE reply)
    for step in range(700):
        r = rng.random()
        if r < (0.12 if n_users < 100 else 0.2):
            args, apply = _model_op(rng, m, t)
            rep = raw.call("LOTTERY.CONFIGURE", "c", *args)
            log.append(("CONFIGURE", args, rep))
            if isinstance(rep, Err):     # e.g. FALLBACK rules; nothing here should fail
                pytest.fail(f"seed {seed} step {step}: CONFIGURE {args}: {rep}")
            apply()
            m.after_configure()
            continue
        if r < 0.3:
            t += rng.choice([1, 500, 1000, 3_600_000, DAY // 2, DAY, 3 * DAY, 9 * DAY])
            pin(raw, t)
            continue
        if r < 0.33:
            if rng.random() < 0.5:
                assert raw.call("DEBUG", "RELOAD") == "OK"
                pin(raw, t)
            else:
                assert raw.call("RESTORE", "c", 0, raw.call("DUMP", "c"), "REPLACE") == "OK"
            seen = [u for u in users if u in m.users]
            for u in rng.sample(seen, min(len(seen), 25)):
                got = user_d(raw, "c", u)
                exp = _model_user_view(m, m.users[u], t)
                assert {k: got[k] for k in exp} == exp, \
                    f"seed {seed} step {step}: USER {u} after a reload: {got} vs {exp}"
            continue
        if r < 0.36:
            u = rng.choice(users)
            n = rng.randint(1, 3)
            got = raw.call("LOTTERY.GRANT", "c", u, n)
            m.user(u)["bonus"] += n
            assert got == m.user(u)["bonus"], (seed, step, log[-8:])
            continue
        u = rng.choice(users)
        tier = rng.choice([None, None, "ta", "tn"])
        rid = f"r{rng.randrange(4)}" if rng.random() < 0.25 else None
        rep = draw(raw, "c", u, *(["TIER", tier] if tier else []),
                   *(["REQID", rid] if rid else []))
        first = replies.get((u, rid))
        if rid and first and t - first[0] < idem:     # a replay: the first reply, nothing else
            assert rep == first[1], f"seed {seed} step {step}: replay {u} {rid}: {rep} vs {first}"
            continue
        (outcome, prize, wait), s = m.draw(u, t, tier)
        if rid and outcome in (b"WIN", b"LOSE"):
            replies[(u, rid)] = (t, rep)
        want = [outcome, prize, rep[2] if outcome == b"WIN" else None,
                m.chances_left(s, t), wait]
        log.append((t, u, tier, rep))
        assert rep == want, f"seed {seed} step {step}: DRAW {u} {tier} at {t}: got {rep}, " \
                            f"model {want}; model user {s}; recent {log[-8:]}"
        got = user_d(raw, "c", u)
        exp = _model_user_view(m, s, t)
        assert {k: got[k] for k in exp} == exp, f"seed {seed} step {step}: USER {u}: {got} " \
                                                f"vs model {exp}; recent {log[-8:]}"
        outcomes[rep[0]] = outcomes.get(rep[0], 0) + 1
    print(f"\nseed {seed}: {outcomes}")
    assert {b"WIN", b"LOSE", b"QUOTA"} <= set(outcomes), outcomes


@pytest.mark.parametrize("seed", range(1, 7))
def test_code_pool_against_a_model(raw, seed):
    """ADD / REMOVE / COUNT / wins / CONFIGURE conversions, DEBUG RELOAD and DUMP/RESTORE on
    one code prize, against a model: a FIFO pool and the set of codes handed out."""
    rng = random.Random(seed)
    alphabet = [bytes([c]) * rng.randint(1, 3) for c in b"abcdefghij\x00\xff"] + \
        [b"long-" + bytes([i]) * 500 for i in range(5)]
    pool, handed = [], set()
    is_codes, in_table = True, True
    cfg(raw, "c", "PRIZE", "card", 1, "CODES", "PRIZE", "x", 0, "INF", "NOTHING", 0,
        "MAXWINS", "INF")
    for step in range(500):
        r = rng.random()
        what = f"seed {seed} step {step}"
        if r < 0.3:
            codes = [rng.choice(alphabet) for _ in range(rng.randint(1, 6))]
            rep = raw.call("LOTTERY.CODES", "c", "card", "ADD", *codes)
            if not (is_codes and in_table):
                assert isinstance(rep, Err), (what, rep)
                continue
            n = 0
            for code in codes:
                if code not in pool and code not in handed:
                    pool.append(code)
                    n += 1
            assert rep == n, (what, "ADD", codes, rep, n)
        elif r < 0.42:
            codes = [rng.choice(alphabet) for _ in range(rng.randint(1, 4))]
            rep = raw.call("LOTTERY.CODES", "c", "card", "REMOVE", *codes)
            if not (is_codes and in_table):
                assert isinstance(rep, Err), (what, rep)
                continue
            n = 0
            for code in codes:
                if code in pool:
                    pool.remove(code)
                    n += 1
            assert rep == n, (what, "REMOVE", codes, rep, n)
        elif r < 0.8:
            rep = draw(raw, "c", "u", code_prizes=(b"card",))
            if is_codes and in_table and pool:
                want = pool.pop(0)
                handed.add(want)
                assert rep[:2] == [b"WIN", b"card"] and rep[5] == want, (what, rep, want)
            else:
                assert rep[:2] == [b"LOSE", None], (what, rep)
        elif r < 0.9:
            kind = rng.choice(["codes", "counted", "dropped"])
            args = {"codes": ["PRIZE", "card", 1, "CODES"], "counted": ["PRIZE", "card", 1, 0],
                    "dropped": []}[kind] + ["PRIZE", "x", 0, "INF",
                                            "NOTHING", 1 if kind == "dropped" else 0]
            rep = raw.call("LOTTERY.CONFIGURE", "c", *args)
            refused = is_codes and in_table and pool and kind != "codes"
            if refused:
                assert isinstance(rep, Err) and "unused" in rep, (what, kind, rep)
            else:
                assert rep == "OK", (what, kind, rep)
                is_codes, in_table = kind == "codes", kind != "dropped"
        elif r < 0.95:
            assert raw.call("DEBUG", "RELOAD") == "OK", what
        else:
            blob = raw.call("DUMP", "c")
            assert raw.call("RESTORE", "c", 0, blob, "REPLACE") == "OK", what
        if is_codes and in_table:
            assert codes_count(raw, "c", "card") == len(pool), what
            assert prize_rows(stats_d(raw, "c"))[b"card"][1] == len(pool), what
