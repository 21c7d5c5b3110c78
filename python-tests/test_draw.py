"""LOTTERY.DRAW: every outcome with all five fields, wins stream entries, REQID."""
import time

import pytest

import lottery_helpers as H
from lottery_helpers import configure, draw, stats, user, pin, prizes, xrange_raw, check

T0 = H.T0


def test_win_reply_and_stream_entry(server, r):
    raw = server.raw()
    pin(r, T0)
    configure(r, "c", "PRIZE", "gold", 1, 5, "NOTHING", 0)
    rep = draw(r, "c", "alice")
    check(rep, "WIN", "gold", -1, 0)
    entries = xrange_raw(raw, "{c}:wins")
    assert len(entries) == 1
    eid, fields = entries[0]
    assert eid.decode() == rep[2]
    # the entry ID carries the draw's time (the first entry of that millisecond)
    assert eid.decode() == f"{T0}-0"
    assert fields == [(b"user", b"alice"), (b"prize", b"gold"), (b"draw", b"1")]
    s = stats(r, "c")
    assert (s["draws"], s["wins"], s["losses"], s["users"]) == (1, 1, 0, 1)
    assert s["prizes"] == [["gold", 1, 4, 1]]
    u = user(r, "c", "alice")
    assert u == {"draws_today": 1, "chances_left": -1, "bonus": 0, "wins": 1,
                 "last_prize": "gold", "last_draw_ms": T0, "cooldown_left_ms": 0,
                 "banned_until_ms": 0, "admit_waiting": 0, "draws_total": 0,
                 "draws_since_win": 0}


def test_win_with_reqid_stream_fields(server, r):
    raw = server.raw()
    pin(r, T0 + 7)
    configure(r, "c", "PRIZE", "p", 1, "INF", "MAXWINS", "INF")
    draw(r, "c", "x")
    draw(r, "c", "x")
    rep = draw(r, "c", "bob", reqid="req-42")
    check(rep, "WIN", "p", -1, 0)
    eid, fields = xrange_raw(raw, "{c}:wins")[-1]
    assert eid.decode() == rep[2]
    assert eid.decode() == f"{T0 + 7}-2"
    assert fields == [(b"user", b"bob"), (b"prize", b"p"), (b"draw", b"3"),
                      (b"reqid", b"req-42")]


def test_draw_seq_counts_losses_too(server, r):
    raw = server.raw()
    configure(r, "c", "PRIZE", "p", 1, 1, "MAXWINS", "INF")
    draw(r, "c", "a")            # WIN (draw 1)
    check(draw(r, "c", "b"), "LOSE")  # sold out -> LOSE (draw 2)
    r.execute_command("LOTTERY.RESTOCK", "c", "p", 1)
    rep = draw(r, "c", "c")      # draw 3
    assert rep[0] == "WIN"
    ents = xrange_raw(raw, "{c}:wins")
    assert [dict(f)[b"draw"] for _, f in ents] == [b"1", b"3"]
    assert [dict(f)[b"user"] for _, f in ents] == [b"a", b"c"]


def test_lose_reply(r):
    pin(r, T0)
    configure(r, "c", "PRIZE", "p", 0, 5, "NOTHING", 1)
    check(draw(r, "c", "u"), "LOSE", None, -1, 0)
    s = stats(r, "c")
    assert (s["draws"], s["wins"], s["losses"], s["users"]) == (1, 0, 1, 1)
    assert r.exists("{c}:wins") == 0
    u = user(r, "c", "u")
    assert (u["draws_today"], u["wins"], u["last_prize"], u["last_draw_ms"]) == (1, 0, None, T0)


def test_not_started_and_ended(r):
    configure(r, "c", "PRIZE", "p", 1, "INF", "WINDOW", T0, T0 + 10_000, "DAILY", 3)
    pin(r, T0 - 2500)
    check(draw(r, "c", "u"), "NOT_STARTED", None, 3, 2500)
    pin(r, T0 - 1)
    check(draw(r, "c", "u"), "NOT_STARTED", None, 3, 1)
    pin(r, T0 + 10_001)
    check(draw(r, "c", "u"), "ENDED", None, 3, 0)
    s = stats(r, "c")
    assert (s["rejected_not_started"], s["rejected_ended"], s["draws"], s["users"]) == (2, 1, 0, 0)
    pin(r, T0)
    check(draw(r, "c", "u"), "WIN", "p", 2, 0)
    pin(r, T0 + 9_999)
    check(draw(r, "c", "v"), "WIN", "p", 2, 0)


def test_paused(r):
    pin(r, T0)
    configure(r, "c", "PRIZE", "p", 1, "INF", "DAILY", 3)
    assert r.execute_command("LOTTERY.PAUSE", "c") == "OK"
    check(draw(r, "c", "u"), "PAUSED", None, 3, 0)
    s = stats(r, "c")
    assert (s["rejected_paused"], s["draws"], s["users"], s["state"]) == (1, 0, 0, "paused")
    assert r.execute_command("LOTTERY.RESUME", "c") == "OK"
    check(draw(r, "c", "u"), "WIN", "p", 2, 0)


def test_banned(r):
    pin(r, T0)
    configure(r, "c", "PRIZE", "p", 1, "INF", "DAILY", 3)
    assert r.execute_command("LOTTERY.BAN", "c", "u", 5000) == "OK"
    check(draw(r, "c", "u"), "BANNED", None, 3, 5000)
    pin(r, T0 + 4999)
    check(draw(r, "c", "u"), "BANNED", None, 3, 1)
    s = stats(r, "c")
    assert (s["rejected_banned"], s["draws"]) == (2, 0)
    pin(r, T0 + 5000)
    check(draw(r, "c", "u"), "WIN", "p", 2, 0)


# ------------------------------------------------------------------ stream

def test_xlen_equals_wins_and_ids_increase(server, r):
    raw = server.raw()
    pin(r, T0)
    configure(r, "c", "PRIZE", "a", 1, 30, "PRIZE", "b", 1, 30, "NOTHING", 1)
    reps = [draw(r, "c", f"u{i}") for i in range(100)]
    wins = [x for x in reps if x[0] == "WIN"]
    s = stats(r, "c")
    assert s["wins"] == len(wins) and s["losses"] == 100 - len(wins)
    ents = xrange_raw(raw, "{c}:wins")
    assert r.xlen("{c}:wins") == len(wins) == len(ents)
    assert [e[0].decode() for e in ents] == [w[2] for w in wins]
    assert [dict(f)[b"prize"].decode() for _, f in ents] == [w[1] for w in wins]
    sold = {p[0]: p[3] for p in s["prizes"]}
    assert sold["a"] + sold["b"] == len(wins)
    assert sold["a"] == sum(1 for w in wins if w[1] == "a")


def test_existing_stream_with_higher_ids_still_appends(r):
    configure(r, "c", "PRIZE", "a", 1, "INF", "MAXWINS", "INF")
    r.xadd("{c}:wins", {"x": "1"}, id="99999999999999-5")
    pin(r, T0)
    rep = draw(r, "c", "u")
    assert rep[0] == "WIN"
    last = r.xrange("{c}:wins")[-1]
    assert last[0] == rep[2]
    assert r.xlen("{c}:wins") == 2


def test_stream_deleted_between_wins(r):
    configure(r, "c", "PRIZE", "a", 1, "INF", "MAXWINS", "INF")
    draw(r, "c", "u")
    r.delete("{c}:wins")
    rep = draw(r, "c", "u")
    assert rep[0] == "WIN"
    assert r.xrange("{c}:wins")[0][0] == rep[2]


# ------------------------------------------------------------------ REQID

def _snapshot(r, key, users):
    s = stats(r, key)
    s.pop("replays")
    return s, {u: user(r, key, u) for u in users}


def test_reqid_retry_returns_identical_reply(server, r):
    raw = server.raw()
    pin(r, T0)
    configure(r, "c", "PRIZE", "a", 1, 10, "NOTHING", 1, "COOLDOWN", 500, "DAILY", 5)
    first = raw.call_raw("LOTTERY.DRAW", "c", "u", "REQID", "r1")
    snap = _snapshot(r, "c", ["u"])
    xlen = r.xlen("{c}:wins")
    replays = stats(r, "c")["replays"]
    pin(r, T0 + 100)      # in the cooldown, but a replay comes first
    for i in range(3):
        assert raw.call_raw("LOTTERY.DRAW", "c", "u", "REQID", "r1") == first
    assert _snapshot(r, "c", ["u"])[0] == snap[0]
    assert r.xlen("{c}:wins") == xlen
    assert stats(r, "c")["replays"] == replays + 3
    u = user(r, "c", "u")
    assert (u["draws_today"], u["last_draw_ms"]) == (1, T0)


def test_reqid_replay_of_win_and_lose(r):
    configure(r, "c", "PRIZE", "a", 1, 10, "NOTHING", 1, "MAXWINS", "INF")
    seen = set()
    for i in range(40):
        rep = draw(r, "c", "u", reqid=f"q{i}")
        seen.add(rep[0])
        assert draw(r, "c", "u", reqid=f"q{i}") == rep
    assert seen == {"WIN", "LOSE"}
    s = stats(r, "c")
    assert (s["draws"], s["replays"]) == (40, 40)
    assert r.xlen("{c}:wins") == s["wins"]


def test_reqid_replayed_even_when_paused_or_banned(r):
    pin(r, T0)
    configure(r, "c", "PRIZE", "a", 1, 10)
    rep = draw(r, "c", "u", reqid="r")
    assert rep[0] == "WIN"
    r.execute_command("LOTTERY.PAUSE", "c")
    assert draw(r, "c", "u", reqid="r") == rep
    r.execute_command("LOTTERY.RESUME", "c")
    r.execute_command("LOTTERY.BAN", "c", "u", 1000)
    assert draw(r, "c", "u", reqid="r") == rep
    # a new request id is not a replay: checks apply
    assert draw(r, "c", "u", reqid="other")[0] == "BANNED"


def test_reqid_other_user_is_independent(r):
    configure(r, "c", "PRIZE", "a", 1, 10)
    a = draw(r, "c", "alice", reqid="same")
    b = draw(r, "c", "bob", reqid="same")
    assert a[0] == b[0] == "WIN"
    assert a[2] != b[2]
    s = stats(r, "c")
    assert (s["draws"], s["wins"], s["replays"]) == (2, 2, 0)


def test_reqid_expires_after_idempotency(r):
    pin(r, T0)
    configure(r, "c", "PRIZE", "a", 1, "INF", "MAXWINS", "INF", "IDEMPOTENCY", 1000)
    rep = draw(r, "c", "u", reqid="r")
    pin(r, T0 + 999)
    assert draw(r, "c", "u", reqid="r") == rep
    assert stats(r, "c")["draws"] == 1
    pin(r, T0 + 1001)
    rep2 = draw(r, "c", "u", reqid="r")
    assert rep2[0] == "WIN" and rep2[2] != rep[2]
    assert stats(r, "c")["draws"] == 2
    assert draw(r, "c", "u", reqid="r") == rep2


def test_reqid_default_idempotency_600000(r):
    pin(r, T0)
    configure(r, "c", "PRIZE", "a", 1, "INF", "MAXWINS", "INF")
    rep = draw(r, "c", "u", reqid="r")
    pin(r, T0 + 599_999)
    assert draw(r, "c", "u", reqid="r") == rep
    pin(r, T0 + 600_001)
    assert draw(r, "c", "u", reqid="r") != rep
    assert stats(r, "c")["draws"] == 2


def test_reqid_idempotency_zero_disables(r):
    pin(r, T0)
    configure(r, "c", "PRIZE", "a", 1, "INF", "MAXWINS", "INF", "IDEMPOTENCY", 0)
    a = draw(r, "c", "u", reqid="r")
    b = draw(r, "c", "u", reqid="r")
    assert a[0] == b[0] == "WIN" and a[2] != b[2]
    s = stats(r, "c")
    assert (s["draws"], s["replays"]) == (2, 0)


def test_reqid_rejections_not_remembered(r):
    pin(r, T0)
    configure(r, "c", "PRIZE", "a", 0, 1, "NOTHING", 1, "COOLDOWN", 1000)
    draw(r, "c", "u")
    check(draw(r, "c", "u", reqid="x"), "COOLDOWN", None, -1, 1000)
    pin(r, T0 + 1000)
    check(draw(r, "c", "u", reqid="x"), "LOSE", None, -1, 1000)
    r.execute_command("LOTTERY.PAUSE", "c")
    pin(r, T0 + 5000)
    assert draw(r, "c", "v", reqid="y")[0] == "PAUSED"
    r.execute_command("LOTTERY.RESUME", "c")
    assert draw(r, "c", "v", reqid="y")[0] == "LOSE"
    s = stats(r, "c")
    assert (s["draws"], s["replays"]) == (3, 0)


def test_reqid_binary_and_length_limits(server, r):
    raw = server.raw()
    configure(r, "c", "PRIZE", "a", 1, "INF", "MAXWINS", "INF")
    rid = b"\x00\xff" * 64
    first = raw.call_raw("LOTTERY.DRAW", "c", "u", "REQID", rid)
    assert raw.call_raw("LOTTERY.DRAW", "c", "u", "REQID", rid) == first
    assert raw.call_raw("LOTTERY.DRAW", "c", "u", "REQID", rid[:-1]) != first
    before = stats(r, "c")
    H.expect_err(raw, "LOTTERY.DRAW", "c", "u", "REQID", b"x" * 129)
    H.expect_err(raw, "LOTTERY.DRAW", "c", "u", "REQID", b"")
    assert stats(r, "c") == before
    ents = xrange_raw(raw, "{c}:wins")
    assert dict(ents[0][1])[b"reqid"] == rid


def test_reqid_keyword_case_insensitive(r):
    configure(r, "c", "PRIZE", "a", 1, "INF", "MAXWINS", "INF")
    a = r.execute_command("LOTTERY.DRAW", "c", "u", "reqid", "k")
    assert r.execute_command("LOTTERY.DRAW", "c", "u", "ReQiD", "k") == a


def test_resp_types(server, r):
    """Outcome names, prize ids, win ids and field names are bulk strings; counts integers."""
    raw = server.raw()
    assert raw.call_raw("LOTTERY.CONFIGURE", "c", "PRIZE", "a", 1, 5, "MAXWINS", "INF") == b"+OK\r\n"
    pin(r, T0)
    rep = raw.call("LOTTERY.DRAW", "c", "u")
    assert type(rep[0]) is bytes and rep[0] == b"WIN"
    assert type(rep[1]) is bytes and type(rep[2]) is bytes
    assert type(rep[3]) is int and type(rep[4]) is int
    body = raw.call_raw("LOTTERY.DRAW", "c", "u")
    assert body.startswith(b"*5\r\n$3\r\nWIN\r\n$1\r\na\r\n$"), body
    raw.call("LOTTERY.PAUSE", "c")
    assert raw.call_raw("LOTTERY.DRAW", "c", "u") == b"*5\r\n$6\r\nPAUSED\r\n$-1\r\n$-1\r\n:-1\r\n:0\r\n" \
        or raw.call_raw("LOTTERY.DRAW", "c", "u") == b"*5\r\n$6\r\nPAUSED\r\n*-1\r\n*-1\r\n:-1\r\n:0\r\n"
    st = raw.call("LOTTERY.STATS", "c")
    assert all(type(k) is bytes for k in st[0::2])
    assert type(st[1]) is bytes and st[1] == b"paused"
    assert all(type(st[i]) is int for i in range(3, len(st), 2)
               if st[i - 1] not in (b"soldout", b"fallback", b"stream", b"admit",
                                    b"admit_retry", b"pace", b"guarantee_prizes", b"period",
                                    b"after", b"codes", b"tiers", b"prizes", b"seed_log",
                                    b"seed_commitment")), st
    assert st[st.index(b"seed_log") + 1] is None and st[st.index(b"seed_commitment") + 1] is None
    for f in (b"pace", b"guarantee_prizes", b"after", b"codes", b"tiers"):
        assert st[st.index(f) + 1] == [], f
    assert st[st.index(b"period") + 1] == b"DAY"
    us = raw.call("LOTTERY.USER", "c", "u")
    assert all(type(k) is bytes for k in us[0::2])
    assert raw.call_raw("LOTTERY.RESUME", "c") == b"+OK\r\n"
    assert raw.call_raw("LOTTERY.GRANT", "c", "u", 2) == b":2\r\n"


def test_win_wakes_blocked_stream_readers_and_notifies(server, r):
    """A WIN's stream entry behaves like an XADD for consumers: a client blocked in
    XREADGROUP ... BLOCK is woken with the entry, and the `xadd` keyspace event fires."""
    import threading
    configure(r, "c", "PRIZE", "a", 1, "INF", "MAXWINS", "INF")
    r.xgroup_create("{c}:wins", "writers", id="$", mkstream=True)
    r.config_set("notify-keyspace-events", "Et")
    sub = server.client().pubsub()
    sub.subscribe("__keyevent@0__:xadd")
    assert sub.get_message(timeout=2)["type"] == "subscribe"
    got = {}

    def reader():
        c = server.client()
        got["reply"] = c.xreadgroup("writers", "w1", {"{c}:wins": ">"}, count=10, block=10_000)

    t = threading.Thread(target=reader)
    t.start()
    deadline = time.time() + 5
    while int(r.info("clients")["blocked_clients"]) < 1 and time.time() < deadline:
        time.sleep(0.01)
    rep = draw(r, "c", "alice")
    assert rep[0] == "WIN"
    t.join(10)
    assert not t.is_alive()
    [(stream, entries)] = got["reply"]
    assert stream == "{c}:wins"
    assert [e[0] for e in entries] == [rep[2]]
    assert entries[0][1]["user"] == "alice"
    msg = sub.get_message(timeout=2)
    assert msg and msg["type"] == "message" and msg["data"] == "{c}:wins"
    sub.close()
