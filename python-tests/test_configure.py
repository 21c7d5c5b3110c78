"""LOTTERY.CONFIGURE: create/change semantics, defaults, stream naming and slots."""
import pytest

import lottery_helpers as H
from lottery_helpers import configure, draw, stats, user, pin, prizes


def test_create_reply_and_defaults(r, raw):
    assert raw.call("LOTTERY.CONFIGURE", "camp", "PRIZE", "gold", 5, 10) == "OK"
    assert r.exists("camp") == 1
    assert r.type("camp") not in ("none", "string", "stream")
    s = stats(r, "camp")
    assert s["state"] == "active"
    assert s["nothing_weight"] == 0
    assert s["cooldown_ms"] == 0
    assert s["daily"] == -1
    assert s["maxwins"] == 1
    assert s["dayoffset"] == 0
    assert s["window_start_ms"] == -1
    assert s["window_end_ms"] == -1
    assert s["soldout"] == "LOSE"
    assert s["fallback"] is None
    assert s["stream"] == "{camp}:wins"
    assert s["idempotency_ms"] == 600000
    for f in ["users", "draws", "wins", "losses", "replays", "rejected_cooldown",
              "rejected_quota", "rejected_already_won", "rejected_not_started",
              "rejected_ended", "rejected_paused", "rejected_banned", "rejected_busy",
              "rejected_retry", "rejected_limited", "clients", "penalized_clients",
              "admit_waiting", "penalty_ms", "drain_seq"]:
        assert s[f] == 0, f
    for f in ["rate", "burst", "clientlimit", "clientlimit_window_ms"]:
        assert s[f] == -1, f
    assert s["admit"] is None and s["admit_retry"] is None and s["pace"] == []
    assert s["prizes"] == [["gold", 5, 10, 0]]


def test_create_with_all_options_visible_in_stats(r):
    configure(r, "c", "PRIZE", "a", 1, "INF", "PRIZE", "b", 2, 3, "NOTHING", 7,
              "COOLDOWN", 1500, "DAILY", 4, "MAXWINS", "INF", "DAYOFFSET", -300,
              "WINDOW", 1000, 2000, "SOLDOUT", "FALLBACK", "a", "STREAM", "{c}:other",
              "IDEMPOTENCY", 5000)
    pin(r, 1500)
    s = stats(r, "c")
    assert (s["nothing_weight"], s["cooldown_ms"], s["daily"], s["maxwins"], s["dayoffset"]) == \
        (7, 1500, 4, -1, -300)
    assert (s["window_start_ms"], s["window_end_ms"]) == (1000, 2000)
    assert (s["soldout"], s["fallback"], s["stream"], s["idempotency_ms"]) == \
        ("FALLBACK", "a", "{c}:other", 5000)
    assert s["prizes"] == [["a", 1, -1, 0], ["b", 2, 3, 0]]


def test_keywords_case_insensitive(r):
    configure(r, "c", "prize", "a", 1, "inf", "nothing", 1, "daily", "Inf", "maxwins", "iNf",
              "soldout", "redraw", "cooldown", 5)
    s = stats(r, "c")
    assert s["prizes"] == [["a", 1, -1, 0]]
    assert (s["daily"], s["maxwins"], s["soldout"], s["cooldown_ms"]) == (-1, -1, "REDRAW", 5)


def test_soldout_modes_in_stats(r):
    configure(r, "c", "PRIZE", "a", 1, 1, "PRIZE", "b", 1, 1, "SOLDOUT", "REDRAW")
    assert (stats(r, "c")["soldout"], stats(r, "c")["fallback"]) == ("REDRAW", None)
    configure(r, "c", "SOLDOUT", "FALLBACK", "b")
    assert (stats(r, "c")["soldout"], stats(r, "c")["fallback"]) == ("FALLBACK", "b")
    configure(r, "c", "SOLDOUT", "LOSE")
    assert stats(r, "c")["soldout"] == "LOSE"


def test_change_keeps_options_not_given(r):
    configure(r, "c", "PRIZE", "a", 1, 10, "NOTHING", 3, "COOLDOWN", 100, "DAILY", 5,
              "MAXWINS", 2, "DAYOFFSET", 480, "WINDOW", 10, 20000000000000,
              "SOLDOUT", "REDRAW", "IDEMPOTENCY", 999)
    before = stats(r, "c")
    configure(r, "c", "COOLDOWN", 200)
    after = stats(r, "c")
    assert after["cooldown_ms"] == 200
    before["cooldown_ms"] = 200
    assert after == before


def test_change_replaces_prize_table_keeping_sold_by_id(r):
    configure(r, "c", "PRIZE", "a", 1, 10, "PRIZE", "b", 0, 10, "MAXWINS", "INF")
    for i in range(3):
        assert draw(r, "c", f"u{i}")[0] == "WIN"
    assert prizes(r, "c") == {"a": (1, 7, 3), "b": (0, 10, 0)}
    # new table: b removed, a re-stocked to 100 remaining, new prize c
    configure(r, "c", "PRIZE", "c", 2, "INF", "PRIZE", "a", 5, 100)
    s = stats(r, "c")
    assert s["prizes"] == [["c", 2, -1, 0], ["a", 5, 100, 3]]
    assert s["wins"] == 3 and s["draws"] == 3


def test_change_without_prizes_keeps_table(r):
    configure(r, "c", "PRIZE", "a", 1, 10, "PRIZE", "b", 2, "INF")
    draw(r, "c", "u")
    before = stats(r, "c")["prizes"]
    configure(r, "c", "NOTHING", 4)
    assert stats(r, "c")["prizes"] == before
    assert stats(r, "c")["nothing_weight"] == 4


def test_removed_then_readded_prize_keeps_sold(r):
    configure(r, "c", "PRIZE", "a", 1, 10, "PRIZE", "b", 0, 5, "MAXWINS", "INF")
    draw(r, "c", "u1")
    draw(r, "c", "u2")
    configure(r, "c", "PRIZE", "b", 1, 5)
    configure(r, "c", "PRIZE", "b", 1, 5, "PRIZE", "a", 1, 1)
    p = prizes(r, "c")
    assert p["b"] == (1, 5, 0)
    # 'a' was dropped in between; "keeps its sold counter by id" -> either remembered or 0,
    # but stock is exactly what was given
    assert p["a"][0:2] == (1, 1)


def test_user_state_kept_across_change(r):
    pin(r, H.T0)
    configure(r, "c", "PRIZE", "a", 1, 10, "DAILY", 5, "COOLDOWN", 1000)
    rep = draw(r, "c", "alice")
    assert rep[0] == "WIN"
    assert r.execute_command("LOTTERY.GRANT", "c", "alice", 3) == 3
    before = user(r, "c", "alice")
    configure(r, "c", "PRIZE", "z", 1, 1, "NOTHING", 1)
    after = user(r, "c", "alice")
    assert after["wins"] == 1 and after["bonus"] == 3 and after["draws_today"] == 1
    assert after["last_prize"] == "a" and after["last_draw_ms"] == H.T0
    assert after == before
    assert draw(r, "c", "alice")[0] == "ALREADY_WON"
    assert stats(r, "c")["users"] == 1


@pytest.mark.parametrize("key,expected", [
    ("camp", "{camp}:wins"),
    ("camp:{x}", "camp:{x}:wins"),
    ("{tag}rest", "{tag}rest:wins"),
    ("a{b", "{a{b}:wins"),        # '{' without '}': no tag
    ("{", "{{}:wins"),
])
def test_default_stream_name(r, key, expected):
    configure(r, key, "PRIZE", "p", 1, "INF")
    assert stats(r, key)["stream"] == expected


@pytest.mark.parametrize("key", ["a{}b", "{}", "{}x{y}"])
def test_empty_hash_tag_counts_as_no_tag(r, raw, key):
    """An empty tag {} is no tag, so commands.md names the default `{key}:wins`; but that name
    can never hash to the key's slot (its own tag ends at the key's '}'), which a campaign must never do
    (it never writes outside its slot).
    Accept either reading: the doc's name, or a refusal asking for STREAM; with an explicit
    same-slot STREAM the campaign must work."""
    rep = raw.call("LOTTERY.CONFIGURE", key, "PRIZE", "p", 1, "INF")
    if isinstance(rep, H.Err):
        assert rep.startswith("ERR") and "STREAM" in rep, rep
        assert r.exists(key) == 0
    else:
        assert stats(r, key)["stream"] == "{" + key + "}:wins"
        r.delete(key)
    slot = H.key_slot(key)
    assert slot == H._crc16(key.encode()) % 16384      # the whole key is hashed
    name = next(f"w{i}" for i in range(1_000_000) if H.key_slot(f"w{i}") == slot)
    configure(r, key, "PRIZE", "p", 1, "INF", "STREAM", name)
    assert draw(r, key, "u")[0] == "WIN"
    assert r.xlen(name) == 1


def test_win_goes_to_default_stream(r):
    configure(r, "camp:{x}", "PRIZE", "p", 1, "INF", "NOTHING", 0)
    rep = draw(r, "camp:{x}", "u")
    assert rep[0] == "WIN"
    assert r.xlen("camp:{x}:wins") == 1
    assert r.exists("{camp:{x}}:wins") == 0


def test_stream_same_slot_accepted(r):
    configure(r, "{c}1", "PRIZE", "p", 1, "INF", "STREAM", "{c}wins")
    assert stats(r, "{c}1")["stream"] == "{c}wins"
    assert draw(r, "{c}1", "u")[0] == "WIN"
    assert r.xlen("{c}wins") == 1


def test_stream_same_slot_without_tag_accepted(r):
    # a tag-less stream name whose CRC16 slot equals the campaign's: slot equality, not tags
    target = H.key_slot("camp")
    name = next(f"s{i}" for i in range(1_000_000) if H.key_slot(f"s{i}") == target)
    configure(r, "camp", "PRIZE", "p", 1, "INF", "STREAM", name)
    assert stats(r, "camp")["stream"] == name
    assert draw(r, "camp", "u")[0] == "WIN"
    assert r.xlen(name) == 1


def test_stream_other_slot_refused(r, raw):
    assert H.key_slot("{c}1") != H.key_slot("{d}wins")
    e = H.expect_err(raw, "LOTTERY.CONFIGURE", "{c}1", "PRIZE", "p", 1, "INF",
                     "STREAM", "{d}wins", prefix="CROSSSLOT")
    assert e == (f"CROSSSLOT STREAM key '{{d}}wins' hashes to slot {H.key_slot('{d}wins')}, "
                 f"the campaign key to slot {H.key_slot('{c}1')}")
    assert r.exists("{c}1") == 0
    configure(r, "{c}1", "PRIZE", "p", 1, "INF")
    before = stats(r, "{c}1")
    H.expect_err(raw, "LOTTERY.CONFIGURE", "{c}1", "STREAM", "{d}wins", prefix="CROSSSLOT")
    assert stats(r, "{c}1") == before


def test_stream_change_takes_effect(r):
    configure(r, "{c}1", "PRIZE", "p", 1, "INF", "MAXWINS", "INF")
    draw(r, "{c}1", "u")
    configure(r, "{c}1", "STREAM", "{c}new")
    draw(r, "{c}1", "u")
    assert r.xlen("{c}1:wins") == 1
    assert r.xlen("{c}new") == 1


def test_change_fallback_must_be_in_resulting_table(r, raw):
    configure(r, "c", "PRIZE", "a", 1, 1, "PRIZE", "b", 1, 1, "SOLDOUT", "FALLBACK", "b")
    before = stats(r, "c")
    e = H.expect_err(raw, "LOTTERY.CONFIGURE", "c", "PRIZE", "a", 1, 1)
    assert "b" in e
    assert stats(r, "c") == before
    configure(r, "c", "PRIZE", "a", 1, 1, "SOLDOUT", "LOSE")
    assert stats(r, "c")["soldout"] == "LOSE"


def test_boundary_values_accepted(r):
    configure(r, "c", "PRIZE", "a", H.U32_MAX, H.I64_MAX, "NOTHING", H.U32_MAX,
              "COOLDOWN", H.I64_MAX, "DAILY", H.U32_MAX, "MAXWINS", H.U32_MAX,
              "DAYOFFSET", 1440, "WINDOW", 0, H.I64_MAX, "IDEMPOTENCY", 86400000)
    s = stats(r, "c")
    assert s["prizes"] == [["a", H.U32_MAX, H.I64_MAX, 0]]
    assert (s["nothing_weight"], s["cooldown_ms"], s["daily"], s["maxwins"], s["dayoffset"],
            s["window_start_ms"], s["window_end_ms"], s["idempotency_ms"]) == \
        (H.U32_MAX, H.I64_MAX, H.U32_MAX, H.U32_MAX, 1440, 0, H.I64_MAX, 86400000)
    configure(r, "c", "DAYOFFSET", -1440, "IDEMPOTENCY", 0, "DAILY", 0, "MAXWINS", 0)
    s = stats(r, "c")
    assert (s["dayoffset"], s["idempotency_ms"], s["daily"], s["maxwins"]) == (-1440, 0, 0, 0)


def test_prize_id_256_bytes_accepted_and_binary(r, server):
    rb = server.bclient()
    pid = b"\x00\xff" * 128
    assert len(pid) == 256
    rb.execute_command("LOTTERY.CONFIGURE", "c", "PRIZE", pid, 1, 1, "PRIZE", "x", 0, 1)
    assert stats(rb, "c")["prizes"][0][0] == pid
    rep = draw(rb, "c", "u")
    assert rep[0] == b"WIN" and rep[1] == pid


def test_only_nothing_weight_positive_is_ok(r):
    configure(r, "c", "PRIZE", "a", 0, 5, "NOTHING", 1)
    for i in range(20):
        assert draw(r, "c", f"u{i}")[0] == "LOSE"


def test_window_state_in_stats(r):
    configure(r, "c", "PRIZE", "a", 1, 1, "WINDOW", H.T0, H.T0 + 1000)
    pin(r, H.T0 - 1)
    assert stats(r, "c")["state"] == "not_started"
    pin(r, H.T0)
    assert stats(r, "c")["state"] == "active"
    r.execute_command("LOTTERY.PAUSE", "c")
    assert stats(r, "c")["state"] == "paused"
    r.execute_command("LOTTERY.RESUME", "c")
    pin(r, H.T0 + 5000)
    assert stats(r, "c")["state"] == "ended"


def test_all_keywords_lowercase(r):
    configure(r, "{c}k", "prize", "a", 1, "inf", "prize", "b", 1, 5, "nothing", 2,
              "cooldown", 3, "daily", "inf", "maxwins", "inf", "dayoffset", 60,
              "window", 10, 20000000000000, "soldout", "fallback", "b", "stream", "{c}s",
              "idempotency", 42)
    s = stats(r, "{c}k")
    assert (s["soldout"], s["fallback"], s["stream"], s["idempotency_ms"], s["dayoffset"],
            s["window_start_ms"]) == ("FALLBACK", "b", "{c}s", 42, 60, 10)
    assert r.execute_command("LOTTERY.DRAIN", "{c}k", "last") == [0, []]


def _table(prefix, n=65536):
    out = []
    for i in range(n):
        out += ["PRIZE", f"{prefix}{i}", 1, 5]
    return out


def test_full_tables_and_the_limit_on_distinct_ids(r):
    """65,536-prize tables: re-sent, replaced by all-new ids up to the 262,144 distinct ids a
    campaign may have over its life, then refused with nothing changed; what is at the limit
    survives DEBUG RELOAD and DUMP/RESTORE."""
    configure(r, "c", *_table("a"))
    configure(r, "c", "NOTHING", 5)
    configure(r, "c", *_table("a"))
    for p in ("b", "c", "d"):
        configure(r, "c", *_table(p))
    with pytest.raises(Exception) as e:
        configure(r, "c", *_table("e", 1))
    assert str(e.value).startswith("too many distinct prize ids over the campaign's life (at most 262144")
    s = stats(r, "c")
    assert len(s["prizes"]) == 65536 and s["prizes"][0] == ["d0", 1, 5, 0]
    assert s["nothing_weight"] == 5
    # Ids it had before are fine.
    configure(r, "c", "PRIZE", "a7", 1, 5, "PRIZE", "b9", 2, 5)
    assert r.execute_command("DEBUG", "RELOAD") == "OK"
    assert [p[0] for p in stats(r, "c")["prizes"]] == ["a7", "b9"]
    r.restore("c2", 0, r.dump("c"))
    assert stats(r, "c2")["prizes"] == stats(r, "c")["prizes"]
    with pytest.raises(Exception):
        configure(r, "c2", "PRIZE", "new", 1, 1)
