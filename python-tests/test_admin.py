"""GRANT, RESTOCK, PAUSE/RESUME, BAN/UNBAN, USER, STATS, DRAIN."""
import lottery_helpers as H
from lottery_helpers import configure, draw, stats, user, pin, prizes, drain, drain_dict, check

T0 = H.T0


def G(r, *args):
    return r.execute_command("LOTTERY.GRANT", *args)


# ------------------------------------------------------------------ GRANT

def test_grant_adds_bonus(r):
    configure(r, "c", "PRIZE", "a", 1, 1)
    assert G(r, "c", "u", 1) == 1
    assert G(r, "c", "u", 5) == 6
    assert user(r, "c", "u")["bonus"] == 6
    assert stats(r, "c")["users"] == 1
    assert user(r, "c", "other")["bonus"] == 0


def test_grant_cap(r):
    configure(r, "c", "PRIZE", "a", 1, 1)
    assert G(r, "c", "u", 5, "CAP", 3) == 3
    assert G(r, "c", "u", 1, "CAP", 3) == 3
    assert G(r, "c", "u", 1, "cap", 10) == 4
    assert G(r, "c", "u", 10, "CAP", 6) == 6
    # above the cap already: bonus is not reduced
    assert G(r, "c", "v", 8) == 8
    assert G(r, "c", "v", 1, "CAP", 3) == 8
    assert G(r, "c", "w", 1, "CAP", 0) == 0
    assert user(r, "c", "v")["bonus"] == 8


def test_grant_saturates(r):
    configure(r, "c", "PRIZE", "a", 1, 1)
    assert G(r, "c", "u", H.U32_MAX) == H.U32_MAX
    assert G(r, "c", "u", H.U32_MAX) == H.U32_MAX
    assert G(r, "c", "u", 1) == H.U32_MAX


def test_grant_errors(r, raw):
    configure(r, "c", "PRIZE", "a", 1, 1)
    G(r, "c", "u", 2)
    before = (stats(r, "c"), user(r, "c", "u"))
    for bad in [("0",), ("-1",), ("4294967296",), ("x",), ("1.0",), ("",), ("+1",),
                ("1", "CAP", "-1"), ("1", "CAP", "4294967296"), ("1", "CAP", "x"),
                ("1", "CAP"), ("1", "FOO", "2"), ("1", "CAP", "2", "CAP", "3")]:
        H.expect_err(raw, "LOTTERY.GRANT", "c", "u", *bad)
    assert (stats(r, "c"), user(r, "c", "u")) == before


# ------------------------------------------------------------------ RESTOCK

def RS(r, *a):
    return r.execute_command("LOTTERY.RESTOCK", *a)


def test_restock(r):
    configure(r, "c", "PRIZE", "a", 1, 10, "PRIZE", "b", 1, "INF")
    assert RS(r, "c", "a", 5) == 15
    assert RS(r, "c", "a", -3) == 12
    assert RS(r, "c", "a", -12) == 0
    assert RS(r, "c", "a", 0) == 0
    assert prizes(r, "c")["a"] == (1, 0, 0)
    assert RS(r, "c", "a", H.I64_MAX) == H.I64_MAX
    assert RS(r, "c", "a", -H.I64_MAX) == 0


def test_restock_errors(r, raw):
    configure(r, "c", "PRIZE", "a", 1, 10, "PRIZE", "b", 1, "INF")
    before = stats(r, "c")
    assert H.expect_err(raw, "LOTTERY.RESTOCK", "c", "x", 1) == "ERR no such prize 'x'"
    assert H.expect_err(raw, "LOTTERY.RESTOCK", "c", "b", 1) == "ERR prize 'b' has INF stock"
    assert H.expect_err(raw, "LOTTERY.RESTOCK", "c", "a", -11) == "ERR stock would go below zero"
    for bad in ["x", "1.5", "", "+1", "9223372036854775808", "-9223372036854775808",
                "99999999999999999999"]:
        H.expect_err(raw, "LOTTERY.RESTOCK", "c", "a", bad)
    assert stats(r, "c") == before


def test_restock_overflow_refused(r, raw):
    configure(r, "c", "PRIZE", "a", 1, H.I64_MAX)
    H.expect_err(raw, "LOTTERY.RESTOCK", "c", "a", 1)
    assert prizes(r, "c")["a"] == (1, H.I64_MAX, 0)


def test_restock_does_not_change_sold(r):
    configure(r, "c", "PRIZE", "a", 1, 2)
    draw(r, "c", "u1")
    draw(r, "c", "u2")
    assert RS(r, "c", "a", 7) == 7
    assert prizes(r, "c")["a"] == (1, 7, 2)


# ------------------------------------------------------------------ PAUSE / RESUME

def test_pause_resume_idempotent(r):
    pin(r, T0)
    configure(r, "c", "PRIZE", "a", 1, "INF", "DAILY", 2)
    assert r.execute_command("LOTTERY.PAUSE", "c") == "OK"
    assert r.execute_command("LOTTERY.PAUSE", "c") == "OK"
    assert stats(r, "c")["state"] == "paused"
    check(draw(r, "c", "u"), "PAUSED", None, 2, 0)
    check(draw(r, "c", "u"), "PAUSED", None, 2, 0)
    u = user(r, "c", "u")
    assert (u["draws_today"], u["chances_left"], u["last_draw_ms"]) == (0, 2, 0)
    s = stats(r, "c")
    assert (s["rejected_paused"], s["draws"], s["users"]) == (2, 0, 0)
    assert r.execute_command("LOTTERY.RESUME", "c") == "OK"
    assert r.execute_command("LOTTERY.RESUME", "c") == "OK"
    assert stats(r, "c")["state"] == "active"
    check(draw(r, "c", "u"), "WIN", "a", 1, 0)


def test_pause_survives_configure(r):
    configure(r, "c", "PRIZE", "a", 1, "INF")
    r.execute_command("LOTTERY.PAUSE", "c")
    configure(r, "c", "COOLDOWN", 5)
    assert stats(r, "c")["state"] == "paused"


# ------------------------------------------------------------------ BAN / UNBAN

def test_ban_unban(r):
    pin(r, T0)
    configure(r, "c", "PRIZE", "a", 1, "INF")
    assert r.execute_command("LOTTERY.BAN", "c", "u", 10_000) == "OK"
    assert user(r, "c", "u")["banned_until_ms"] == T0 + 10_000
    assert stats(r, "c")["users"] == 1
    pin(r, T0 + 4000)
    check(draw(r, "c", "u"), "BANNED", None, -1, 6000)
    assert r.execute_command("LOTTERY.UNBAN", "c", "u") == 1
    assert r.execute_command("LOTTERY.UNBAN", "c", "u") == 0
    assert user(r, "c", "u")["banned_until_ms"] == 0
    check(draw(r, "c", "u"), "WIN", "a", -1, 0)
    assert r.execute_command("LOTTERY.UNBAN", "c", "nobody") == 0


def test_ban_expired_unban_returns_0(r):
    pin(r, T0)
    configure(r, "c", "PRIZE", "a", 1, "INF")
    r.execute_command("LOTTERY.BAN", "c", "u", 100)
    pin(r, T0 + 100)
    assert r.execute_command("LOTTERY.UNBAN", "c", "u") == 0
    assert draw(r, "c", "u")[0] == "WIN"


def test_ban_extends_or_replaces(r):
    pin(r, T0)
    configure(r, "c", "PRIZE", "a", 1, "INF")
    r.execute_command("LOTTERY.BAN", "c", "u", 100)
    r.execute_command("LOTTERY.BAN", "c", "u", 5000)
    assert user(r, "c", "u")["banned_until_ms"] == T0 + 5000
    check(draw(r, "c", "u"), "BANNED", None, -1, 5000)


def test_ban_errors(r, raw):
    configure(r, "c", "PRIZE", "a", 1, "INF")
    before = stats(r, "c")
    for bad in ["0", "-5", "x", "", "1.5", "9223372036854775808"]:
        H.expect_err(raw, "LOTTERY.BAN", "c", "u", bad)
    assert stats(r, "c") == before


def test_ban_huge_does_not_overflow(r):
    pin(r, T0)
    configure(r, "c", "PRIZE", "a", 1, "INF")
    r.execute_command("LOTTERY.BAN", "c", "u", H.I64_MAX)
    rep = draw(r, "c", "u")
    assert rep[0] == "BANNED" and rep[4] > 0
    assert user(r, "c", "u")["banned_until_ms"] > T0


# ------------------------------------------------------------------ USER / STATS

def test_user_unknown_defaults(r):
    configure(r, "c", "PRIZE", "a", 1, "INF", "DAILY", 3)
    assert user(r, "c", "ghost") == {"draws_today": 0, "chances_left": 3, "bonus": 0, "wins": 0,
                                     "last_prize": None, "last_draw_ms": 0,
                                     "cooldown_left_ms": 0, "banned_until_ms": 0,
                                     "admit_waiting": 0, "draws_total": 0,
                                     "draws_since_win": 0}
    assert stats(r, "c")["users"] == 0
    configure(r, "d", "PRIZE", "a", 1, "INF")
    assert user(r, "d", "ghost")["chances_left"] == -1


def test_user_chances_left_matches_draw_reply(r):
    pin(r, T0)
    configure(r, "c", "PRIZE", "a", 0, 1, "NOTHING", 1, "DAILY", 3, "COOLDOWN", 100)
    G(r, "c", "u", 2)
    for i in range(5):
        pin(r, T0 + i * 100)
        rep = draw(r, "c", "u")
        assert rep[0] == "LOSE"
        u = user(r, "c", "u")
        assert u["chances_left"] == rep[3]
        assert u["cooldown_left_ms"] == 100
        assert u["last_draw_ms"] == T0 + i * 100
    pin(r, T0 + 460)
    assert user(r, "c", "u")["cooldown_left_ms"] == 40


def test_stats_counters(r):
    pin(r, T0)
    configure(r, "c", "PRIZE", "a", 1, 3, "NOTHING", 1, "COOLDOWN", 1000, "DAILY", 2,
              "MAXWINS", 1, "WINDOW", T0, T0 + 100_000)
    outcomes = {}

    def d(u):
        rep = draw(r, "c", u)
        outcomes[rep[0]] = outcomes.get(rep[0], 0) + 1
        return rep

    for i in range(10):
        d(f"u{i}")
    for i in range(10):
        d(f"u{i}")                       # COOLDOWN or ALREADY_WON
    pin(r, T0 + 1000)
    for i in range(10):
        d(f"u{i}")                       # second chance or ALREADY_WON
    pin(r, T0 + 2000)
    for i in range(10):
        d(f"u{i}")                       # QUOTA or ALREADY_WON
    r.execute_command("LOTTERY.BAN", "c", "banned", 1000)
    d("banned")
    r.execute_command("LOTTERY.PAUSE", "c")
    d("p")
    r.execute_command("LOTTERY.RESUME", "c")
    pin(r, T0 - 1)
    d("ns")
    pin(r, T0 + 100_001)
    d("end")
    s = stats(r, "c")
    assert s["draws"] == s["wins"] + s["losses"]
    assert s["wins"] == outcomes.get("WIN", 0)
    assert s["losses"] == outcomes.get("LOSE", 0)
    assert s["rejected_cooldown"] == outcomes.get("COOLDOWN", 0)
    assert s["rejected_quota"] == outcomes.get("QUOTA", 0)
    assert s["rejected_already_won"] == outcomes.get("ALREADY_WON", 0)
    assert (s["rejected_banned"], s["rejected_paused"], s["rejected_not_started"],
            s["rejected_ended"]) == (1, 1, 1, 1)
    assert s["users"] == 11   # u0..u9 + banned
    assert s["wins"] == 3 - prizes(r, "c")["a"][1]
    assert s["rejected_cooldown"] >= 1


# ------------------------------------------------------------------ DRAIN

def test_drain(r):
    configure(r, "c", "PRIZE", "a", 1, "INF", "PRIZE", "b", 0, "INF", "MAXWINS", "INF")
    assert drain(r, "c", last=True) == (0, [])
    assert drain(r, "c") == (1, [])
    assert drain(r, "c", last=True) == (1, [])
    for _ in range(3):
        assert draw(r, "c", "u")[1] == "a"
    configure(r, "c", "PRIZE", "a", 0, "INF", "PRIZE", "b", 1, "INF")
    assert draw(r, "c", "u")[1] == "b"
    assert drain_dict(r, "c") == (2, {"a": 3, "b": 1})
    assert drain_dict(r, "c", last=True) == (2, {"a": 3, "b": 1})
    assert drain_dict(r, "c", last=True) == (2, {"a": 3, "b": 1})
    assert stats(r, "c")["drain_seq"] == 2
    draw(r, "c", "u")
    draw(r, "c", "u")
    assert drain(r, "c") == (3, ["b", 2])         # zero count of 'a' omitted
    assert drain(r, "c") == (4, [])
    assert drain(r, "c", last=True) == (4, [])
    p = prizes(r, "c")
    assert p["a"][2] == 3 and p["b"][2] == 3     # sold is not reset by DRAIN


def test_drain_keeps_pending_across_configure(r):
    configure(r, "c", "PRIZE", "a", 1, 10)
    draw(r, "c", "u1")
    draw(r, "c", "u2")
    configure(r, "c", "PRIZE", "a", 1, 5, "PRIZE", "n", 1, 5)
    assert drain_dict(r, "c") == (1, {"a": 2})


def test_drain_lowercase_last(r):
    configure(r, "c", "PRIZE", "a", 1, 10)
    draw(r, "c", "u1")
    d = drain(r, "c")
    assert r.execute_command("LOTTERY.DRAIN", "c", "last") == [d[0], d[1]]


def test_drain_counts_fallback_prize(r):
    configure(r, "c", "PRIZE", "big", 1, 0, "PRIZE", "small", 0, 5,
              "SOLDOUT", "FALLBACK", "small")
    draw(r, "c", "u1")
    draw(r, "c", "u2")
    assert drain(r, "c") == (1, ["small", 2])
