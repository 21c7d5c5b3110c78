"""Verifiable draws end to end: a campaign with VERIFIABLE drawn through every rule that
changes the table in force, then checked by both verifiers (lottery-audit and the reference
verifier in docs/) against the real stream; tampering with one entry is caught; the epoch
survives RDB, AOF (both preambles), DUMP/RESTORE and failover with the audit still passing;
the verifiable draw path keeps the published odds (chi-square).
"""
import hashlib
import json
import os
import subprocess
import sys

import pytest

import lottery_helpers as H
from durability_helpers import wait_aof_rewrite, wait_role, wait_same_offset

AUDIT = os.environ.get("LOTTERY_AUDIT", str(H.REPO / "target" / "release" / "lottery-audit"))
REFERENCE = str(H.REPO / "docs" / "verify_draws.py")
END = H.T0 + H.DAY_MS


def audit(server, key, stream, *extra):
    """lottery-audit on the live stream: (exit code, JSON report)."""
    if not os.path.isfile(AUDIT):
        pytest.fail(f"lottery-audit not found at {AUDIT}: make build", pytrace=False)
    p = subprocess.run([AUDIT, "--redis", f"redis://127.0.0.1:{server.port}", "--campaign", key,
                        "--stream", stream, "--json", *extra],
                       capture_output=True, text=True, timeout=120)  # fmt: skip
    assert p.returncode in (0, 1), f"lottery-audit failed to run ({p.returncode}): {p.stderr}"
    return p.returncode, json.loads(p.stdout)


def reference(server, key, stream, *extra):
    """The reference verifier: (exit code, its output)."""
    p = subprocess.run([sys.executable, REFERENCE, f"redis://127.0.0.1:{server.port}", key,
                        "--stream", stream, *extra],
                       capture_output=True, text=True, timeout=120)  # fmt: skip
    assert p.returncode in (0, 1), f"verify_draws.py failed to run ({p.returncode}): {p.stderr}"
    return p.returncode, p.stdout + p.stderr


def entries(raw, stream):
    return H.xrange_raw(raw, stream)


def typed(raw, stream, kind):
    return [(i, f) for i, f in entries(raw, stream) if f and f[0] == (b"type", kind)]


def field(fields, name):
    for k, v in fields:
        if k == name:
            return v
    return None


def assert_both_pass(server, key, stream, draws_at_least):
    code, rep = audit(server, key, stream)
    assert code == 0, rep
    ref_code, out = reference(server, key, stream)
    assert ref_code == 0, out
    checked = rep["draws_checked"]
    assert checked >= draws_at_least, rep
    assert f"checked {checked} " in out, (out, rep)
    assert rep["mismatches"] == 0
    return rep


def busy_campaign(r, key, stream):
    """A verifiable campaign drawn through RESTOCK, sell-outs under REDRAW, a tier, a
    FALLBACK change, a ROTATE, users of every kind of bytes; then its WINDOW ends."""
    H.pin(r, H.T0)
    H.configure(r, key, "PRIZE", "gold", 1, 3, "PRIZE", "银", 4, 20, "PRIZE", b"\xff\x00bin", 5, "INF",
                "NOTHING", 30, "SOLDOUT", "REDRAW", "WINDOW", H.T0 - 1, END, "MAXWINS", "INF",
                "STREAM", stream, "TIER", "vip", "PRIZE-WEIGHT", "gold", 20, "NOTHING", 5,
                "VERIFIABLE", "LOG", "ALL")  # fmt: skip
    users = [f"user:{i}" for i in range(300)] + ["抽奖用户", "😀\U0010fffd", "a\x00b"]
    users += [bytes([0x80 + i % 100, i % 256]) + b"\xfe" for i in range(50)]
    n = 0
    for rnd in range(3):
        p = r.pipeline(transaction=False)
        for i, u in enumerate(users):
            if i % 7 == 0:
                p.execute_command("LOTTERY.DRAW", key, u, "TIER", "vip")
            else:
                p.execute_command("LOTTERY.DRAW", key, u)
        p.execute()
        n += len(users)
        H.pin(r, H.T0 + (rnd + 1) * 1000)
        if rnd == 0:
            r.execute_command("LOTTERY.RESTOCK", key, "gold", 2)
        if rnd == 1:
            old = r.execute_command("LOTTERY.SEED", key, "ROTATE")
            assert len(old) == 64
            H.configure(r, key, "SOLDOUT", "FALLBACK", b"\xff\x00bin", "VERIFIABLE", "LOG", "WINS")
    return n


def test_audit_and_reference_agree_then_reveal(server):
    r, raw = server.bclient(), server.raw()
    key, stream = "{v}camp", "{v}camp:log"
    n = busy_campaign(r, key, stream)
    H.expect_err(raw, "LOTTERY.SEED", key, "REVEAL")  # the window has not ended
    st = H._pairs(r.execute_command("LOTTERY.STATS", key))
    commitment = st[b"seed_commitment"].decode()
    H.pin(r, END)
    seed = r.execute_command("LOTTERY.SEED", key, "REVEAL").decode()
    assert hashlib.sha256(bytes.fromhex(seed)).hexdigest() == commitment
    assert r.execute_command("LOTTERY.SEED", key, "REVEAL").decode() == seed
    reveals = typed(raw, stream, b"reveal")
    assert len(reveals) == 2, reveals  # the rotated epoch and this one, each once
    assert len(typed(raw, stream, b"epoch")) == 2
    assert len(typed(raw, stream, b"table")) >= 4  # base, tier, restock, sell-outs, FALLBACK
    rep = assert_both_pass(server, key, stream, 1)
    # LOG ALL for the first two rounds (every draw), LOG WINS after.
    draws = typed(raw, stream, b"draw")
    wins = [e for e in entries(raw, stream) if e[1] and e[1][0][0] == b"user"]
    assert len(draws) >= 2 * (n // 3), (len(draws), n)
    assert rep["wins_checked"] == len(wins) > 0, rep


@pytest.mark.parametrize("what", ["outcome", "pick", "table-weight", "seed", "drop-draw-entry",
                                  "drop-epoch", "user"])
def test_tampering_is_detected(server, what):
    r, raw = server.bclient(), server.raw()
    key, stream = "{t}camp", "{t}camp:log"
    busy_campaign(r, key, stream)
    H.pin(r, END)
    r.execute_command("LOTTERY.SEED", key, "REVEAL")
    assert_both_pass(server, key, stream, 1)
    copy = "{t}camp:copy"
    done = False
    for eid, fields in entries(raw, stream):
        f = list(fields)
        kind = field(f, b"type")
        # A win's draw entry decided by the table alone (no rule): the user is checked
        # against the win's entry, the outcome and the pick against the recomputed pick.
        if (not done and kind == b"draw" and field(f, b"outcome") and field(f, b"rule") is None
                and what in ("outcome", "pick", "user", "drop-draw-entry")):
            if what == "drop-draw-entry":
                done = True
                continue
            else:
                name = {"outcome": b"outcome", "pick": b"pick", "user": b"user"}[what]
                i = [k for k, _ in f].index(name)
                old = f[i][1]
                f[i] = (name, b"gold" if old != b"gold" else "银".encode())
                done = True
        elif kind == b"table" and what == "table-weight":
            # every table entry: the draws of one table alone may all pick the same anyway
            f[-1] = (b"NOTHING", str(int(f[-1][1]) + 1).encode())
            done = True
        elif not done and kind == b"reveal" and what == "seed":
            s = bytearray(bytes.fromhex(field(f, b"seed").decode()))
            s[0] ^= 1
            f[2] = (b"seed", s.hex().encode())
            done = True
        elif not done and kind == b"epoch" and what == "drop-epoch":
            done = True
            continue
        flat = [x for kv in f for x in kv]
        assert raw.call("XADD", copy, eid, *flat) == eid
    assert done, what
    code, rep = audit(server, key, copy)
    assert code == 1 and rep["mismatches"] > 0, rep
    ref_code, out = reference(server, key, copy)
    assert ref_code == 1, out


def test_sold_out_table_of_zero_weights_and_a_deleted_win_entry(server):
    """SOLDOUT REDRAW with NOTHING 0 and small stocks, drawn past the sell-out: the tables in
    force (base and tier) come to all zeros, and their draws are losses that take no word (pick
    and outcome empty, no rule), logged with LOG ALL. After ROTATE both verifiers pass and agree;
    a copy of the stream without one win entry (a prize answered but not in the stream) fails
    both."""
    r, raw = server.bclient(), server.raw()
    key, stream = "{z}c", "{z}c:log"
    H.pin(r, H.T0)
    H.configure(r, key, "PRIZE", "a", 1, 3, "PRIZE", "b", 2, 4, "NOTHING", 0, "SOLDOUT", "REDRAW",
                "MAXWINS", "INF", "STREAM", stream, "TIER", "vip", "PRIZE-WEIGHT", "a", 5,
                "VERIFIABLE", "LOG", "ALL")  # fmt: skip
    p = r.pipeline(transaction=False)
    for i in range(40):
        p.execute_command("LOTTERY.DRAW", key, f"z{i}", *(["TIER", "vip"] if i % 3 == 0 else []))
    replies = p.execute()
    assert sum(1 for x in replies if x[0] == b"WIN") == 7, replies  # every prize sold out
    r.execute_command("LOTTERY.SEED", key, "ROTATE")
    zero = [field(f, b"tier") for _, f in typed(raw, stream, b"table")
            if all(w == b"0" for _, w in f[3:])]  # fmt: skip
    assert sorted(zero) == [b"", b"vip"], typed(raw, stream, b"table")
    draws = [dict(f) for _, f in typed(raw, stream, b"draw")]
    assert len(draws) == 40
    assert draws[-1][b"pick"] == draws[-1][b"outcome"] == b"" and b"rule" not in draws[-1]
    rep = assert_both_pass(server, key, stream, 40)
    assert rep["draws_checked"] == 40 and rep["wins_checked"] == 7, rep
    # The copy without one win entry: its draw entry's prize has no win entry.
    copy = "{z}c:copy"
    win_ids = [i for i, f in entries(raw, stream) if f and f[0][0] == b"user"]
    assert len(win_ids) == 7
    for eid, f in entries(raw, stream):
        if eid != win_ids[3]:
            assert raw.call("XADD", copy, eid, *[x for kv in f for x in kv]) == eid
    code, rep = audit(server, key, copy)
    assert code == 1 and rep["mismatches"] == 1, rep
    assert "has no win entry" in rep["first_mismatches"][0]["reason"], rep
    ref_code, out = reference(server, key, copy)
    assert ref_code == 1 and "mismatches 1\n" in out and "has no win entry" in out, out


def reveal_and_audit(server, key, stream, draws_at_least):
    r = server.bclient()
    r.execute_command("LOTTERY.SEED", key, "ROTATE")
    return assert_both_pass(server, key, stream, draws_at_least)


def small_campaign(r, key, stream, users, start=0):
    p = r.pipeline(transaction=False)
    for i in range(start, start + users):
        p.execute_command("LOTTERY.DRAW", key, f"u{i}")
    p.execute()


def configure_small(r, key, stream):
    H.pin(r, H.T0)
    H.configure(r, key, "PRIZE", "a", 2, 50, "PRIZE", "b", 3, "INF", "NOTHING", 5, "SOLDOUT",
                "REDRAW", "MAXWINS", "INF", "STREAM", stream, "VERIFIABLE", "LOG", "ALL")


def commitment(r, key):
    st = H._pairs(r.execute_command("LOTTERY.STATS", key))
    return st[b"seed_epoch"], st[b"seed_commitment"], st[b"seed_from_draw"]


def test_survives_rdb_reload(server):
    r = server.bclient()
    key, stream = "{p}c", "{p}c:log"
    configure_small(r, key, stream)
    small_campaign(r, key, stream, 300)
    before = commitment(r, key)
    r.execute_command("DEBUG", "RELOAD")
    H.pin(r, H.T0 + 1)
    assert commitment(r, key) == before
    small_campaign(r, key, stream, 300, 300)
    reveal_and_audit(server, key, stream, 600)


@pytest.mark.parametrize("preamble", ["yes", "no"])
def test_survives_aof_restart(server_factory, preamble):
    srv = server_factory(appendonly=True, extra_args=["--aof-use-rdb-preamble", preamble])
    r = srv.bclient()
    key, stream = "{a}c", "{a}c:log"
    configure_small(r, key, stream)
    small_campaign(r, key, stream, 200)
    r.execute_command("BGREWRITEAOF")
    wait_aof_rewrite(r)
    small_campaign(r, key, stream, 200, 200)  # after the rewrite: plain AOF commands
    before = commitment(r, key)
    srv.restart()
    r = srv.bclient()
    H.pin(r, H.T0 + 1)
    assert commitment(r, key) == before
    small_campaign(r, key, stream, 200, 400)
    reveal_and_audit(srv, key, stream, 600)


def test_survives_dump_restore(server):
    r = server.bclient()
    key, stream = "{d}c", "{d}c:log"
    configure_small(r, key, stream)
    small_campaign(r, key, stream, 300)
    before = commitment(r, key)
    blob = r.dump(key)
    r.delete(key)
    r.restore(key, 0, blob)
    assert commitment(r, key) == before
    small_campaign(r, key, stream, 300, 300)
    reveal_and_audit(server, key, stream, 600)


def test_failover_continues_the_epoch(master_replica):
    master, replica = master_replica
    m, rep = master.bclient(), replica.bclient()
    key, stream = "{f}c", "{f}c:log"
    configure_small(m, key, stream)
    small_campaign(m, key, stream, 300)
    wait_same_offset([m, rep])
    assert H.xrange_raw(master.raw(), stream) == H.xrange_raw(replica.raw(), stream)
    assert commitment(rep, key) == commitment(m, key)
    rep.execute_command("REPLICAOF", "NO", "ONE")
    wait_role(rep, "master")
    H.pin(rep, H.T0 + 5)
    small_campaign(rep, key, stream, 300, 300)
    assert commitment(rep, key) == commitment(m, key)  # the same epoch, the same seed
    reveal_and_audit(replica, key, stream, 600)


def test_replica_holds_the_same_entries_and_seed(master_replica):
    master, replica = master_replica
    m, rep = master.bclient(), replica.bclient()
    key, stream = "{q}c", "{q}c:log"
    busy_campaign(m, key, stream)
    H.pin(m, END)
    m.execute_command("LOTTERY.SEED", key, "REVEAL")
    wait_same_offset([m, rep])
    assert H.xrange_raw(master.raw(), stream) == H.xrange_raw(replica.raw(), stream)
    assert m.execute_command("LOTTERY.STATS", key) == rep.execute_command("LOTTERY.STATS", key)
    assert_both_pass(replica, key, stream, 1)


def test_chi_square_on_the_verifiable_path(server):
    """20,000 verifiable draws on weights 1:2:3:4, NOTHING 10: the counts fit the odds
    (chi-square, 4 degrees of freedom, critical value 33.4 for p = 1e-6)."""
    r = server.bclient()
    key, stream = "{x}c", "{x}c:log"
    H.pin(r, H.T0)
    H.configure(r, key, "PRIZE", "p1", 1, "INF", "PRIZE", "p2", 2, "INF", "PRIZE", "p3", 3, "INF",
                "PRIZE", "p4", 4, "INF", "NOTHING", 10, "MAXWINS", "INF", "STREAM", stream,
                "VERIFIABLE")  # fmt: skip
    n = 20_000
    counts = {}
    for base in range(0, n, 2000):
        p = r.pipeline(transaction=False)
        for i in range(base, base + 2000):
            p.execute_command("LOTTERY.DRAW", key, f"u{i}")
        for rep in p.execute():
            counts[rep[1]] = counts.get(rep[1], 0) + 1
    weights = {b"p1": 1, b"p2": 2, b"p3": 3, b"p4": 4, None: 10}
    chi2 = sum((counts.get(k, 0) - n * w / 20) ** 2 / (n * w / 20) for k, w in weights.items())
    assert chi2 < 33.4, (chi2, counts)
    rep = reveal_and_audit(server, key, stream, 1)
    assert rep["wins_checked"] == sum(v for k, v in counts.items() if k is not None)
