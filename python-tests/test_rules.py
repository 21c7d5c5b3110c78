"""Draw rules: cooldown, daily chances and day rollover, bonus, MAXWINS, check order, SOLDOUT."""
import pytest

import lottery_helpers as H
from lottery_helpers import configure, draw, stats, user, pin, prizes, check, xrange_raw

T0 = H.T0


def test_cooldown(r):
    pin(r, T0)
    configure(r, "c", "PRIZE", "p", 0, 5, "NOTHING", 1, "COOLDOWN", 5000, "DAILY", 10)
    check(draw(r, "c", "u"), "LOSE", None, 9, 5000)
    pin(r, T0 + 1200)
    check(draw(r, "c", "u"), "COOLDOWN", None, 9, 3800)
    assert user(r, "c", "u")["cooldown_left_ms"] == 3800
    pin(r, T0 + 4999)
    check(draw(r, "c", "u"), "COOLDOWN", None, 9, 1)
    pin(r, T0 + 5000)
    check(draw(r, "c", "u"), "LOSE", None, 8, 5000)
    s = stats(r, "c")
    assert (s["draws"], s["rejected_cooldown"]) == (2, 2)
    assert user(r, "c", "u")["draws_today"] == 2


def test_quota_and_day_rollover_utc(r):
    day = 19700 * H.DAY_MS   # a UTC midnight
    pin(r, day - 10_000)
    configure(r, "c", "PRIZE", "p", 0, 5, "NOTHING", 1, "DAILY", 2)
    check(draw(r, "c", "u"), "LOSE", None, 1, 0)
    check(draw(r, "c", "u"), "LOSE", None, 0, 0)
    check(draw(r, "c", "u"), "QUOTA", None, 0, 10_000)
    pin(r, day - 1)
    check(draw(r, "c", "u"), "QUOTA", None, 0, 1)
    assert stats(r, "c")["rejected_quota"] == 2
    u = user(r, "c", "u")
    assert (u["draws_today"], u["chances_left"]) == (2, 0)
    pin(r, day)
    u = user(r, "c", "u")
    assert (u["draws_today"], u["chances_left"]) == (0, 2)
    check(draw(r, "c", "u"), "LOSE", None, 1, 0)
    assert stats(r, "c")["draws"] == 3


@pytest.mark.parametrize("offset", [480, -300, 0])
def test_day_rollover_with_dayoffset(r, offset):
    # local midnight for DAYOFFSET=offset is at UTC midnight minus offset minutes
    boundary = 19723 * H.DAY_MS - offset * 60_000   # 480 -> 16:00 UTC the day before
    configure(r, "c", "PRIZE", "p", 0, 5, "NOTHING", 1, "DAILY", 1, "DAYOFFSET", offset)
    pin(r, boundary - 1000)
    check(draw(r, "c", "u"), "LOSE", None, 0, 0)
    check(draw(r, "c", "u"), "QUOTA", None, 0, 1000)
    pin(r, boundary - 1)
    check(draw(r, "c", "u"), "QUOTA", None, 0, 1)
    pin(r, boundary)
    check(draw(r, "c", "u"), "LOSE", None, 0, 0)
    check(draw(r, "c", "u"), "QUOTA", None, 0, H.DAY_MS)


def test_dayoffset_480_is_1600_utc(r):
    # 2024-01-01T15:59:59Z and 16:00:00Z
    before = 1704124799000
    at = 1704124800000
    assert at % H.DAY_MS == 16 * 3600 * 1000
    configure(r, "c", "PRIZE", "p", 0, 5, "NOTHING", 1, "DAILY", 1, "DAYOFFSET", 480)
    pin(r, before)
    check(draw(r, "c", "u"), "LOSE", None, 0, 0)
    check(draw(r, "c", "u"), "QUOTA", None, 0, 1000)
    pin(r, at)
    check(draw(r, "c", "u"), "LOSE", None, 0, 0)
    # with offset 0 the same instant is mid-day: next day 8 h later
    configure(r, "d", "PRIZE", "p", 0, 5, "NOTHING", 1, "DAILY", 1)
    check(draw(r, "d", "u"), "LOSE", None, 0, 0)
    check(draw(r, "d", "u"), "QUOTA", None, 0, 8 * 3600 * 1000)


def test_bonus_used_after_free_and_kept_across_days(r):
    day = 19800 * H.DAY_MS
    pin(r, day + 1000)
    configure(r, "c", "PRIZE", "p", 0, 5, "NOTHING", 1, "DAILY", 2)
    assert r.execute_command("LOTTERY.GRANT", "c", "u", 2) == 2
    assert user(r, "c", "u")["bonus"] == 2
    check(draw(r, "c", "u"), "LOSE", None, 3, 0)
    assert user(r, "c", "u")["bonus"] == 2          # free chance used first
    check(draw(r, "c", "u"), "LOSE", None, 2, 0)
    assert user(r, "c", "u")["bonus"] == 2
    check(draw(r, "c", "u"), "LOSE", None, 1, 0)    # now bonus
    assert user(r, "c", "u")["bonus"] == 1
    pin(r, day + H.DAY_MS + 5)                      # next day: bonus did not expire
    u = user(r, "c", "u")
    assert (u["bonus"], u["draws_today"]) == (1, 0)
    check(draw(r, "c", "u"), "LOSE", None, 2, 0)
    check(draw(r, "c", "u"), "LOSE", None, 1, 0)
    assert user(r, "c", "u")["bonus"] == 1
    check(draw(r, "c", "u"), "LOSE", None, 0, 0)
    assert user(r, "c", "u")["bonus"] == 0
    check(draw(r, "c", "u"), "QUOTA", None, 0, H.DAY_MS - 5)


def test_daily_zero_grant_only(r):
    pin(r, T0)
    configure(r, "c", "PRIZE", "p", 0, 5, "NOTHING", 1, "DAILY", 0)
    check(draw(r, "c", "u"), "QUOTA", None, 0, -1)
    assert r.execute_command("LOTTERY.GRANT", "c", "u", 1) == 1
    check(draw(r, "c", "u"), "LOSE", None, 0, 0)
    check(draw(r, "c", "u"), "QUOTA", None, 0, -1)
    assert user(r, "c", "u")["bonus"] == 0
    r.execute_command("LOTTERY.GRANT", "c", "u", 2)
    check(draw(r, "c", "u"), "LOSE", None, 1, 0)


def test_daily_inf_with_bonus_reports_minus_one(r):
    configure(r, "c", "PRIZE", "p", 0, 5, "NOTHING", 1)
    r.execute_command("LOTTERY.GRANT", "c", "u", 3)
    check(draw(r, "c", "u"), "LOSE", None, -1, 0)
    assert user(r, "c", "u")["bonus"] == 3
    assert user(r, "c", "u")["chances_left"] == -1


def test_maxwins_default_1(r):
    pin(r, T0)
    configure(r, "c", "PRIZE", "p", 1, "INF", "DAILY", 5)
    check(draw(r, "c", "u"), "WIN", "p", 4, 0)
    check(draw(r, "c", "u"), "ALREADY_WON", None, 4, 0)
    s = stats(r, "c")
    assert (s["draws"], s["wins"], s["rejected_already_won"]) == (1, 1, 1)
    assert user(r, "c", "u")["draws_today"] == 1


def test_maxwins_2(r):
    configure(r, "c", "PRIZE", "p", 1, "INF", "MAXWINS", 2)
    assert draw(r, "c", "u")[0] == "WIN"
    assert draw(r, "c", "u")[0] == "WIN"
    check(draw(r, "c", "u"), "ALREADY_WON", None, -1, 0)
    assert user(r, "c", "u")["wins"] == 2


def test_maxwins_inf(r):
    configure(r, "c", "PRIZE", "p", 1, "INF", "MAXWINS", "INF")
    for _ in range(50):
        assert draw(r, "c", "u")[0] == "WIN"
    assert user(r, "c", "u")["wins"] == 50
    assert r.xlen("{c}:wins") == 50


def test_maxwins_zero_every_draw_is_already_won(r):
    # docs/commands.md: MAXWINS 0 = every draw gets ALREADY_WON and consumes nothing
    configure(r, "c", "PRIZE", "p", 1, 10, "MAXWINS", 0)
    for i in range(5):
        check(draw(r, "c", f"u{i}"), "ALREADY_WON", None, -1, 0)
    assert prizes(r, "c") == {"p": (1, 10, 0)}
    assert stats(r, "c")["draws"] == 0
    assert stats(r, "c")["rejected_already_won"] == 5
    assert r.exists("{c}:wins") == 0


def test_maxwins_raised_lets_user_win_again(r):
    configure(r, "c", "PRIZE", "p", 1, "INF")
    assert draw(r, "c", "u")[0] == "WIN"
    assert draw(r, "c", "u")[0] == "ALREADY_WON"
    configure(r, "c", "MAXWINS", 2)
    assert draw(r, "c", "u")[0] == "WIN"


# ------------------------------------------------------------------ check order

def test_order_banned_beats_cooldown_and_already_won(r):
    pin(r, T0)
    configure(r, "c", "PRIZE", "p", 1, "INF", "COOLDOWN", 60_000)
    assert draw(r, "c", "u")[0] == "WIN"        # now already won AND cooling
    r.execute_command("LOTTERY.BAN", "c", "u", 1000)
    check(draw(r, "c", "u"), "BANNED", None, -1, 1000)


def test_order_already_won_beats_cooldown(r):
    pin(r, T0)
    configure(r, "c", "PRIZE", "p", 1, "INF", "COOLDOWN", 60_000)
    draw(r, "c", "u")
    check(draw(r, "c", "u"), "ALREADY_WON", None, -1, 0)


def test_order_cooldown_beats_quota(r):
    pin(r, T0)
    configure(r, "c", "PRIZE", "p", 0, 1, "NOTHING", 1, "COOLDOWN", 1000, "DAILY", 1)
    draw(r, "c", "u")
    check(draw(r, "c", "u"), "COOLDOWN", None, 0, 1000)
    pin(r, T0 + 1000)
    assert draw(r, "c", "u")[0] == "QUOTA"


def test_order_window_beats_pause_and_pause_beats_ban(r):
    configure(r, "c", "PRIZE", "p", 1, "INF", "WINDOW", T0, T0 + 1000)
    r.execute_command("LOTTERY.PAUSE", "c")
    pin(r, T0 - 10)
    r.execute_command("LOTTERY.BAN", "c", "u", 100_000)
    check(draw(r, "c", "u"), "NOT_STARTED", None, -1, 10)
    pin(r, T0 + 2000)
    check(draw(r, "c", "u"), "ENDED", None, -1, 0)
    pin(r, T0 + 10)
    check(draw(r, "c", "u"), "PAUSED", None, -1, 0)
    r.execute_command("LOTTERY.RESUME", "c")
    check(draw(r, "c", "u"), "BANNED", None, -1, 100_000 - 20)


# ------------------------------------------------------------------ SOLDOUT

def test_soldout_lose_default(r):
    configure(r, "c", "PRIZE", "a", 1, 0, "PRIZE", "b", 1, "INF", "MAXWINS", "INF")
    outs = [tuple(draw(r, "c", "u")[:2]) for _ in range(200)]
    assert set(outs) == {("LOSE", None), ("WIN", "b")}
    assert prizes(r, "c")["a"] == (1, 0, 0)


def test_soldout_lose_only_prize_sold_out(r):
    configure(r, "c", "PRIZE", "a", 1, 2)
    assert draw(r, "c", "u1")[0] == "WIN"
    assert draw(r, "c", "u2")[0] == "WIN"
    for i in range(10):
        check(draw(r, "c", f"v{i}"), "LOSE")
    assert prizes(r, "c") == {"a": (1, 0, 2)}
    s = stats(r, "c")
    assert (s["wins"], s["losses"], s["draws"]) == (2, 10, 12)


def test_soldout_redraw_always_wins_remaining(r):
    configure(r, "c", "PRIZE", "a", 5, 0, "PRIZE", "b", 1, "INF", "SOLDOUT", "REDRAW",
              "MAXWINS", "INF")
    for _ in range(100):
        check(draw(r, "c", "u"), "WIN", "b")


def test_soldout_redraw_runs_out(r):
    configure(r, "c", "PRIZE", "a", 3, 3, "PRIZE", "b", 1, 2, "SOLDOUT", "REDRAW")
    outs = [draw(r, "c", f"u{i}") for i in range(8)]
    assert [o[0] for o in outs] == ["WIN"] * 5 + ["LOSE"] * 3
    assert sorted(o[1] for o in outs[:5]) == ["a", "a", "a", "b", "b"]
    assert prizes(r, "c") == {"a": (3, 0, 3), "b": (1, 0, 2)}


def test_soldout_fallback(r):
    configure(r, "c", "PRIZE", "big", 1, 0, "PRIZE", "small", 0, 2,
              "SOLDOUT", "FALLBACK", "small")
    check(draw(r, "c", "u1"), "WIN", "small")
    check(draw(r, "c", "u2"), "WIN", "small")
    check(draw(r, "c", "u3"), "LOSE")          # fallback sold out too
    assert prizes(r, "c") == {"big": (1, 0, 0), "small": (0, 0, 2)}
    s = stats(r, "c")
    assert (s["wins"], s["losses"]) == (2, 1)


def test_soldout_fallback_counts_as_win_in_stream(server, r):
    raw = server.raw()
    configure(r, "c", "PRIZE", "big", 1, 0, "PRIZE", "small", 0, "INF",
              "SOLDOUT", "FALLBACK", "small")
    rep = draw(r, "c", "u1")
    check(rep, "WIN", "small")
    (eid, fields), = xrange_raw(raw, "{c}:wins")
    assert eid.decode() == rep[2]
    assert dict(fields)[b"prize"] == b"small"
    assert user(r, "c", "u1")["last_prize"] == "small"


def test_weight_zero_prize_with_stock_is_never_drawn(r):
    configure(r, "c", "PRIZE", "z", 0, "INF", "PRIZE", "p", 1, "INF", "MAXWINS", "INF")
    for _ in range(300):
        assert draw(r, "c", "u")[1] == "p"


def test_restock_revives_sold_out_prize(r):
    configure(r, "c", "PRIZE", "a", 1, 0)
    check(draw(r, "c", "u1"), "LOSE")
    assert r.execute_command("LOTTERY.RESTOCK", "c", "a", 1) == 1
    check(draw(r, "c", "u2"), "WIN", "a")
    check(draw(r, "c", "u3"), "LOSE")




def test_soldout_redraw_table_refreshed_by_restock(r):
    configure(r, "c", "PRIZE", "a", 1, 0, "PRIZE", "b", 0, "INF", "SOLDOUT", "REDRAW")
    check(draw(r, "c", "u1"), "LOSE")
    assert r.execute_command("LOTTERY.RESTOCK", "c", "a", 1) == 1
    check(draw(r, "c", "u2"), "WIN", "a")
    check(draw(r, "c", "u3"), "LOSE")
    configure(r, "c", "PRIZE", "a", 1, 2, "PRIZE", "b", 0, "INF")
    check(draw(r, "c", "u4"), "WIN", "a")


def test_soldout_fallback_with_weight_and_redraw_independent(r):
    # the fallback prize may itself be drawable
    configure(r, "c", "PRIZE", "a", 1, 0, "PRIZE", "f", 1, 3, "SOLDOUT", "FALLBACK", "f",
              "MAXWINS", "INF")
    outs = [draw(r, "c", "u") for _ in range(6)]
    assert [o[0] for o in outs] == ["WIN"] * 3 + ["LOSE"] * 3
    assert all(o[1] == "f" for o in outs[:3])
    assert prizes(r, "c") == {"a": (1, 0, 0), "f": (1, 0, 3)}


def test_daily_lowered_mid_day(r):
    pin(r, T0)
    configure(r, "c", "PRIZE", "p", 0, 1, "NOTHING", 1, "DAILY", 5)
    draw(r, "c", "u")
    draw(r, "c", "u")
    configure(r, "c", "DAILY", 1)
    assert user(r, "c", "u")["chances_left"] == 0
    assert draw(r, "c", "u")[0] == "QUOTA"
    configure(r, "c", "DAILY", 3)
    check(draw(r, "c", "u"), "LOSE", None, 0, 0)


def test_negative_dayoffset_near_epoch(r):
    # DAYOFFSET -60: local days start at 01:00 UTC; at 00:00:01 UTC it is still "yesterday"
    configure(r, "c", "PRIZE", "p", 0, 1, "NOTHING", 1, "DAILY", 1, "DAYOFFSET", -60)
    pin(r, 1000)
    check(draw(r, "c", "u"), "LOSE", None, 0, 0)
    check(draw(r, "c", "u"), "QUOTA", None, 0, 3_600_000 - 1000)
    pin(r, 3_600_000)
    check(draw(r, "c", "u"), "LOSE", None, 0, 0)


def test_huge_cooldown_does_not_wrap(r):
    pin(r, T0)
    configure(r, "c", "PRIZE", "p", 0, 1, "NOTHING", 1, "COOLDOWN", H.I64_MAX)
    rep = draw(r, "c", "u")
    assert rep[0] == "LOSE" and rep[4] == H.I64_MAX
    pin(r, T0 + 5)
    rep = draw(r, "c", "u")
    assert rep[0] == "COOLDOWN", rep
    assert rep[4] > 0
    pin(r, T0 + 10 * 365 * H.DAY_MS)
    assert draw(r, "c", "u")[0] == "COOLDOWN"


def test_extreme_clock_values_do_not_crash(r, raw):
    configure(r, "c", "PRIZE", "p", 1, "INF", "NOTHING", 1, "COOLDOWN", H.I64_MAX,
              "DAYOFFSET", 1440, "DAILY", 3, "MAXWINS", "INF", "IDEMPOTENCY", 86400000)
    configure(r, "d", "PRIZE", "p", 1, "INF", "DAYOFFSET", -1440, "DAILY", 3,
              "WINDOW", 1, H.I64_MAX)
    for ms in [0, 1, H.I64_MAX - 1, H.I64_MAX, 2 ** 62]:
        rep = raw.call("LOTTERY.DEBUG", "CLOCK", ms)
        if isinstance(rep, H.Err):
            continue
        for key in ("c", "d"):
            for cmd in (("LOTTERY.DRAW", key, "u"), ("LOTTERY.DRAW", key, "u", "REQID", "x"),
                        ("LOTTERY.USER", key, "u"), ("LOTTERY.STATS", key),
                        ("LOTTERY.BAN", key, "v", H.I64_MAX), ("LOTTERY.DRAW", key, "v")):
                raw.call(*cmd)      # any reply, but the server must live
        assert r.ping()
