"""Flow control and anti-abuse: RATE/BURST -> BUSY, ADMIT p1 p2 -> RETRY,
DRAW ... CLIENT id with CLIENTLIMIT and PENALTY -> LIMITED (and the penalty box, visible in
USER and STATS, lifted by UNBAN), PACE prize LINEAR; all replicated as effects, persisted,
and an encoding written by the previous version still loads."""
import json
import pathlib
import threading
import time

import pytest

import durability_helpers as D
import lottery_helpers as H
from lottery_helpers import configure, pin, stats, user
from test_distribution import chi2_critical, chi_square

T0 = 1_700_000_000_000
FIXTURES = pathlib.Path(__file__).parent / "fixtures"


def outcomes(replies):
    out = {}
    for rep in replies:
        o = rep[0].decode() if isinstance(rep[0], bytes) else rep[0]
        out[o] = out.get(o, 0) + 1
    return out


def burst(server, key, users_per_conn, conns, extra=()):
    """`conns` connections at once, each drawing for its own users (pipelined)."""
    replies = []
    lock = threading.Lock()

    def one(c):
        raw = server.raw()
        try:
            reps = raw.pipeline([("LOTTERY.DRAW", key, f"c{c}-u{i}", *extra)
                                 for i in range(users_per_conn)])
        finally:
            raw.close()
        with lock:
            replies.extend(reps)

    ts = [threading.Thread(target=one, args=(c,)) for c in range(conns)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return replies


# ------------------------------------------------------------------------------------- RATE

def test_rate_burst_from_many_connections_pinned_clock(server, r):
    configure(r, "c", "PRIZE", "p", 1, "INF", "MAXWINS", "INF", "RATE", 100, "BURST", 40)
    pin(r, T0)
    got = outcomes(burst(server, "c", 50, 16))
    assert got == {"WIN": 40, "BUSY": 760}, got
    s = stats(r, "c")
    assert (s["rate"], s["burst"], s["rejected_busy"], s["draws"], s["users"]) == \
        (100, 40, 760, 40, 40)
    # BUSY's wait: one interval (10 ms) until the next token
    rep = r.execute_command("LOTTERY.DRAW", "c", "late")
    assert rep[0] == "BUSY" and rep[4] == 10 and rep[1] is None and rep[2] is None
    # one second later the bucket is full again: exactly one burst more
    pin(r, T0 + 1000)
    assert outcomes(burst(server, "c", 10, 8)) == {"WIN": 40, "BUSY": 40}
    configure(r, "c", "RATE", "OFF")
    assert r.execute_command("LOTTERY.DRAW", "c", "free")[0] == "WIN"
    assert stats(r, "c")["rate"] == -1


def test_rate_burst_real_clock_within_the_bucket_bound(server, r):
    rate, bucket = 200, 50
    configure(r, "c", "PRIZE", "p", 1, "INF", "MAXWINS", "INF", "RATE", rate, "BURST", bucket)
    t0 = time.time()
    replies = []
    while time.time() - t0 < 1.0:
        replies += burst(server, "c", 40, 8)
    elapsed_s = time.time() - t0
    won = outcomes(replies).get("WIN", 0)
    # GCRA bound: at most burst + rate * elapsed (+1 for the token at the boundary)
    assert won <= bucket + rate * elapsed_s + 1, (won, elapsed_s)
    # and it does not starve: at least the rate over most of the time
    assert won >= bucket + rate * (elapsed_s - 0.3), (won, elapsed_s)
    assert stats(r, "c")["rejected_busy"] == len(replies) - won


# ------------------------------------------------------------------------------------ ADMIT

def test_admit_ratios_chi_square(server, r):
    configure(r, "c", "PRIZE", "p", 1, "INF", "NOTHING", 1, "MAXWINS", "INF", "ADMIT", "0.3", "0.8")
    pin(r, T0)
    n = 20000
    raw = server.raw()
    try:
        first = raw.pipeline([("LOTTERY.DRAW", "c", f"u{i}") for i in range(n)])
        passed1 = [i for i, rep in enumerate(first) if rep[0] in (b"WIN", b"LOSE")]
        retried = [i for i, rep in enumerate(first) if rep[0] == b"RETRY"]
        assert len(passed1) + len(retried) == n
        chi = chi_square({"p": len(passed1), "r": len(retried)}, {"p": 0.3, "r": 0.7}, n)
        assert chi < chi2_critical(1), (len(passed1), chi)
        # RETRY consumed nothing; the users turned away are remembered
        s = stats(r, "c")
        assert (s["draws"], s["rejected_retry"], s["admit_waiting"]) == \
            (len(passed1), len(retried), len(retried))
        assert (s["admit"], s["admit_retry"]) == ("0.3", "0.8")
        assert user(r, "c", f"u{retried[0]}")["admit_waiting"] == 1
        assert user(r, "c", f"u{retried[0]}")["draws_today"] == 0
        # their next try passes with p2 = 0.8
        second = raw.pipeline([("LOTTERY.DRAW", "c", f"u{i}") for i in retried])
        m = len(retried)
        passed2 = sum(1 for rep in second if rep[0] in (b"WIN", b"LOSE"))
        chi = chi_square({"p": passed2, "r": m - passed2}, {"p": 0.8, "r": 0.2}, m)
        assert chi < chi2_critical(1), (passed2, m, chi)
        assert stats(r, "c")["admit_waiting"] == m - passed2
    finally:
        raw.close()
    # p = 1 (or OFF) lets everyone through
    configure(r, "c", "ADMIT", "OFF")
    assert r.execute_command("LOTTERY.DRAW", "c", "new")[0] in ("WIN", "LOSE")


# ----------------------------------------------------------------------- CLIENT and PENALTY

def test_client_limit_penalty_box_and_unban(server, r):
    configure(r, "c", "PRIZE", "p", 1, "INF", "MAXWINS", "INF", "CLIENTLIMIT", 3, 1000)
    pin(r, T0)
    D_ = lambda u, cl: r.execute_command("LOTTERY.DRAW", "c", u, "CLIENT", cl)  # noqa: E731
    assert [D_(f"u{i}", "10.0.0.1")[0] for i in range(3)] == ["WIN"] * 3
    rep = D_("u9", "10.0.0.1")
    assert rep[0] == "LIMITED" and rep[4] == 1000 and rep[1] is None
    assert D_("u9", "10.0.0.2")[0] == "WIN"                   # another client
    assert r.execute_command("LOTTERY.DRAW", "c", "u8")[0] == "WIN"   # no CLIENT: no check
    pin(r, T0 + 1000)
    assert D_("u7", "10.0.0.1")[0] == "WIN"                   # a new window
    # the penalty box: the client and the user
    configure(r, "c", "PENALTY", 60000)
    for i in range(3):
        assert D_("x", "bot")[0] == "WIN"
    rep = D_("bad", "bot")
    assert rep[0] == "LIMITED" and rep[4] == 60000, rep
    assert user(r, "c", "bad")["banned_until_ms"] == T0 + 61000
    assert r.execute_command("LOTTERY.DRAW", "c", "bad", "CLIENT", "clean")[0] == "BANNED"
    assert D_("someone", "bot")[0] == "LIMITED"
    s = stats(r, "c")
    assert (s["clientlimit"], s["clientlimit_window_ms"], s["penalty_ms"]) == (3, 1000, 60000)
    assert (s["penalized_clients"], s["rejected_limited"]) == (1, 3)
    # UNBAN lifts both; BAN CLIENT puts a client in the box by hand
    assert r.execute_command("LOTTERY.UNBAN", "c", "bad") == 1
    assert r.execute_command("LOTTERY.UNBAN", "c", "CLIENT", "bot") == 1
    assert r.execute_command("LOTTERY.UNBAN", "c", "CLIENT", "bot") == 0
    assert r.execute_command("LOTTERY.UNBAN", "c", "CLIENT", "never-seen") == 0
    assert D_("bad", "bot")[0] == "WIN"
    assert r.execute_command("LOTTERY.BAN", "c", "CLIENT", "tor", 5000) == "OK"
    rep = D_("anyone", "tor")
    assert rep[0] == "LIMITED" and rep[4] == 5000
    assert stats(r, "c")["penalized_clients"] == 1
    # a user called CLIENT is still a user
    assert r.execute_command("LOTTERY.BAN", "c", "CLIENT", 1000) == "OK"
    assert user(r, "c", "CLIENT")["banned_until_ms"] == T0 + 2000


def test_draw_options_in_any_order_and_their_errors(server, r, raw):
    configure(r, "c", "PRIZE", "p", 1, "INF", "MAXWINS", "INF", "CLIENTLIMIT", 10, 1000)
    a = r.execute_command("LOTTERY.DRAW", "c", "u", "CLIENT", "ip", "REQID", "q1")
    b = r.execute_command("LOTTERY.DRAW", "c", "u", "REQID", "q1", "CLIENT", "ip")
    assert a == b and a[0] == "WIN"                       # the REQID replay
    assert stats(r, "c")["replays"] == 1
    for args, msg in [
        (("u", "CLIENT", ""), "ERR invalid CLIENT: must be 1..256 bytes"),
        (("u", "CLIENT", "x" * 257), "ERR invalid CLIENT: must be 1..256 bytes"),
        (("u", "CLIENT", "a", "CLIENT", "b"), "ERR CLIENT given twice"),
        (("u", "REQID", "a", "REQID", "b"), "ERR REQID given twice"),
        (("u", "FOO", "a"), "ERR unknown option 'FOO'"),
        (("u", "CLIENT"), "ERR wrong number of arguments for 'lottery.draw' command"),
        (("u", "CLIENT", "a", "REQID", "b", "X", "y"), "ERR unknown option 'X'"),
        (("u", "CLIENT", "a", "REQID", "b", "TIER", "t", "X", "y"),
         "ERR wrong number of arguments for 'lottery.draw' command"),
        (("u", "TIER", "a", "TIER", "b"), "ERR TIER given twice"),
        (("u", "TIER", ""), "ERR invalid tier name: must be 1..64 bytes"),
        (("u", "TIER", "nope"), "ERR no such tier 'nope'"),
    ]:
        assert H.expect_err(raw, "LOTTERY.DRAW", "c", *args) == msg


@pytest.mark.parametrize("opts, msg", [
    (("RATE", 0), "ERR invalid RATE '0': expected 1..1000000000 or OFF"),
    (("RATE", 5, "BURST", 0), "ERR invalid BURST '0': expected 1..1000000000"),
    (("RATE", "x"), "ERR invalid RATE 'x': expected an integer in 0..1000000000"),
    (("ADMIT", "1.5"), "ERR invalid ADMIT probability '1.5': expected 0..1 with at most 6 decimals (0.25, 1)"),
    (("ADMIT",), "ERR ADMIT needs a probability or OFF"),
    (("CLIENTLIMIT", 5), "ERR CLIENTLIMIT needs n window-ms"),
    (("CLIENTLIMIT", 5, 0), "ERR invalid CLIENTLIMIT window '0': expected 1..9223372036854775807"),
    (("PENALTY", -1), "ERR invalid PENALTY '-1': expected an integer in 0..9223372036854775807"),
    (("PACE", "gold", "FAST"), "ERR invalid PACE 'FAST': expected LINEAR or NONE"),
    (("PACE", "gold", "LINEAR"), "ERR PACE needs a WINDOW (the span the stock is released over)"),
    (("WINDOW", 1, 2, "PACE", "pt", "LINEAR"), "ERR PACE prize 'pt' has INF stock"),
    (("WINDOW", 1, 2, "PACE", "nope", "LINEAR"), "ERR PACE prize 'nope' is not in the prize table"),
])
def test_configure_errors_change_nothing(r, raw, opts, msg):
    configure(r, "c", "PRIZE", "gold", 1, 10, "PRIZE", "pt", 1, "INF")
    before = D.digest(r, "c")
    assert H.expect_err(raw, "LOTTERY.CONFIGURE", "c", *opts) == msg
    assert D.digest(r, "c") == before


# ------------------------------------------------------------------------------------- PACE

def test_pace_linear_at_several_points_of_a_pinned_clock(server, r):
    start, end = T0, T0 + 100_000
    configure(r, "c", "PRIZE", "gold", 1, 100, "PRIZE", "pt", 1, "INF", "NOTHING", 0,
              "MAXWINS", "INF", "WINDOW", start, end, "PACE", "gold", "LINEAR",
              "SOLDOUT", "FALLBACK", "pt")
    assert stats(r, "c")["pace"] == ["gold"]
    raw = server.raw()
    try:
        for k, at in enumerate([0, 999, 1000, 5_500, 25_000, 50_001, 99_999, 100_000 - 1]):
            pin(r, start + at)
            raw.pipeline([("LOTTERY.DRAW", "c", f"u{k}-{i}") for i in range(400)])
            sold = H.prizes(r, "c")["gold"][2]
            # no more than its share of the elapsed time, and (with demand) exactly that
            assert sold == 100 * at // 100_000, (at, sold)
    finally:
        raw.close()
    # the top prize cannot be swept in the first minute of a day-long campaign
    configure(r, "d", "PRIZE", "top", 1, 10, "NOTHING", 0, "MAXWINS", "INF",
              "WINDOW", T0, T0 + 86_400_000, "PACE", "top", "LINEAR")
    pin(r, T0 + 60_000)
    reps = [r.execute_command("LOTTERY.DRAW", "d", f"v{i}") for i in range(300)]
    assert outcomes(reps) == {"LOSE": 300}
    configure(r, "d", "PACE", "top", "NONE")
    assert r.execute_command("LOTTERY.DRAW", "d", "w")[0] == "WIN"


# ------------------------------------------------------------------------ replication, RDB

def test_flow_control_replicates_and_persists(master_replica):
    master, replica = master_replica
    m = master.client()
    pin(m, T0)
    configure(m, "c", "PRIZE", "gold", 2, 200, "PRIZE", "pt", 5, "INF", "NOTHING", 3,
              "MAXWINS", 3, "RATE", 500, "BURST", 30, "ADMIT", "0.5", "0.9",
              "CLIENTLIMIT", 8, 1000, "PENALTY", 3000, "WINDOW", T0, T0 + 20_000,
              "PACE", "gold", "LINEAR")
    raw = master.raw()
    try:
        for step in range(20):
            pin(m, T0 + step * 700)
            raw.pipeline([("LOTTERY.DRAW", "c", f"u{(step * 37 + i) % 400}", "CLIENT",
                           f"ip{i % 13}") for i in range(120)])
        raw.call("LOTTERY.BAN", "c", "CLIENT", "ip5", 10_000)
        raw.call("LOTTERY.UNBAN", "c", "CLIENT", "ip6")
    finally:
        raw.close()
    s = stats(m, "c")
    for f in ("rejected_busy", "rejected_retry", "rejected_limited", "wins"):
        assert s[f] > 0, (f, s)
    D.wait_acked(m)
    rep = replica.client()
    assert D.digest(m, "c") == D.digest(rep, "c")
    pin(rep, T0 + 14_000)
    pin(m, T0 + 14_000)
    assert stats(rep, "c") == stats(m, "c")
    want = (D.digest(m, "c"), stats(m, "c"))
    master.restart(save=True)
    m = master.client()
    pin(m, T0 + 14_000)
    assert (D.digest(m, "c"), stats(m, "c")) == want
    m.execute_command("DEBUG", "RELOAD")
    assert (D.digest(m, "c"), stats(m, "c")) == want


def test_idle_client_ids_and_admit_memory_are_reclaimed_alike_on_replicas(master_replica):
    """Hostile CLIENT ids and users turned away by ADMIT: held while they matter, dropped by
    later draws once idle, and the replica drops the same ones (equal digests)."""
    master, replica = master_replica
    m = master.client()
    pin(m, T0)
    configure(m, "c", "PRIZE", "p", 1, "INF", "MAXWINS", "INF", "DAILY", 0,
              "CLIENTLIMIT", 5, 1000, "ADMIT", 0, 1)
    raw = master.raw()
    try:
        raw.pipeline([("LOTTERY.DRAW", "c", "bot", "CLIENT", f"ip{i}") for i in range(3000)])
        s = stats(m, "c")
        assert (s["clients"], s["rejected_quota"]) == (3000, 3000)
        configure(m, "c", "DAILY", "INF")
        raw.pipeline([("LOTTERY.DRAW", "c", f"u{i}") for i in range(500)])
        assert stats(m, "c")["admit_waiting"] == 500
        mem = m.memory_usage("c")
        # past the window: the client records go as draws go by (16 at most per draw)
        pin(m, T0 + 1000)
        raw.pipeline([("LOTTERY.DRAW", "c", "someone") for _ in range(400)])
        assert stats(m, "c")["clients"] == 0
        assert stats(m, "c")["admit_waiting"] == 500, "remembered for a day"
        # a day on: ADMIT forgets
        pin(m, T0 + 86_400_000)
        raw.pipeline([("LOTTERY.DRAW", "c", "someone") for _ in range(100)])
        assert stats(m, "c")["admit_waiting"] == 0
        assert m.memory_usage("c") < mem // 4
    finally:
        raw.close()
    D.wait_acked(m)
    rep = replica.client()
    assert D.digest(m, "c") == D.digest(rep, "c")
    pin(rep, T0 + 86_400_000)
    assert stats(rep, "c") == stats(m, "c")


def test_an_encoding_written_by_the_previous_version_loads(server, r):
    """fixtures/campaign-encoding-v2.dump: DUMP of a campaign written by the build before
    flow control (meta encoding 2: no flow-control rules, 7 rejection counters)."""
    blob = (FIXTURES / "campaign-encoding-v2.dump").read_bytes()
    want = json.loads((FIXTURES / "campaign-encoding-v2.json").read_text())
    r.restore("old:{v2}", 0, blob)
    pin(r, want["clock"])
    flat = r.execute_command("LOTTERY.STATS", "old:{v2}")
    got = dict(zip(flat[0::2], flat[1::2]))
    old = dict(zip(want["stats"][0::2], want["stats"][1::2]))
    for k, v in old.items():
        assert got[k] == v, (k, got[k], v)
    assert (got["rate"], got["rejected_busy"], got["pace"]) == (-1, 0, [])
    for u, flat in want["users"].items():
        now = r.execute_command("LOTTERY.USER", "old:{v2}", u)
        assert now[:len(flat)] == flat, u
        assert now[len(flat):] == ["admit_waiting", 0, "draws_total", 0, "draws_since_win", 0], u
    assert [list(x) for x in r.execute_command("LOTTERY.TRANSFER", "old:{v2}", "LIST")] == \
        want["transfers"]
    # it runs on: draws, flow control added, saved in today's encoding
    configure(r, "old:{v2}", "RATE", 1000)
    assert r.execute_command("LOTTERY.DRAW", "old:{v2}", "newcomer")[0] in ("WIN", "LOSE")
    r.execute_command("DEBUG", "RELOAD")
    assert stats(r, "old:{v2}")["rate"] == 1000
