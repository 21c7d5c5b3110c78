"""LOTTERY.TRANSFER: the per-shard steps that move stock between the shards of a sharded
campaign (docs/commands.md, docs/sharding.md). Each step is idempotent by transfer id, is
replicated as its effect, and persists through RDB, AOF (with and without the RDB preamble)
and DUMP/RESTORE."""
import pytest
import redis

import durability_helpers as D
import lottery_helpers as H
from lottery_helpers import configure, draw, stats


def gold(r, key):
    """(remaining stock, sold) of prize gold."""
    weight, stock, sold = H.prizes(r, key)["gold"]
    return stock, sold


def tlist(r, key, *opt):
    return [[x.decode() if isinstance(x, bytes) else x for x in rec]
            for rec in r.execute_command("LOTTERY.TRANSFER", key, "LIST", *opt)]


def setup_pair(r):
    configure(r, "{a}", "PRIZE", "gold", 1, 10, "PRIZE", "pt", 1, "INF", "NOTHING", 2)
    configure(r, "{b}", "PRIZE", "gold", 1, 0, "PRIZE", "pt", 1, "INF", "NOTHING", 2)


def test_out_in_settle_and_their_repeats(r):
    setup_pair(r)
    T = lambda *a: r.execute_command("LOTTERY.TRANSFER", *a)  # noqa: E731
    assert T("{a}", "OUT", "t1", "gold", 4, "{b}") == 4
    assert gold(r, "{a}") == (6, 0)
    # A repeat answers the recorded units, takes nothing more, whatever count it asks for.
    assert T("{a}", "OUT", "t1", "gold", 99, "{b}") == 4
    assert gold(r, "{a}") == (6, 0)
    assert tlist(r, "{a}", "PENDING") == [["t1", "OUT", "gold", 4, "{b}", "PENDING"]]
    assert T("{b}", "IN", "t1", "gold", 4, "{a}") == 1
    assert T("{b}", "IN", "t1", "gold", 4, "{a}") == 0
    assert gold(r, "{b}") == (4, 0)
    assert T("{a}", "SETTLE", "t1") == 1
    assert T("{a}", "SETTLE", "t1") == 0
    assert tlist(r, "{a}") == [["t1", "OUT", "gold", 4, "{b}", "SETTLED"]]
    assert tlist(r, "{a}", "PENDING") == []
    assert tlist(r, "{b}") == [["t1", "IN", "gold", 4, "{a}", "APPLIED"]]
    # More than there is: what there is. Nothing left: 0, still recorded.
    assert T("{a}", "OUT", "t2", "gold", 100, "{b}") == 6
    assert T("{a}", "OUT", "t3", "gold", 5, "{b}") == 0
    assert gold(r, "{a}") == (0, 0)
    assert [x[0] for x in tlist(r, "{a}", "pending")] == ["t2", "t3"]
    # Sold-out shard can sell again once stock arrives.
    assert draw(r, "{b}", "u1")[0] in ("WIN", "LOSE")
    # A transfer does not count as a sale.
    st = stats(r, "{a}")
    assert st["wins"] == 0 and st["draws"] == 0


@pytest.mark.parametrize("args, msg", [
    (("{a}", "OUT", "t1", "gold", 4, "{c}"), "ERR transfer 't1' was recorded with other arguments"),
    (("{a}", "IN", "t1", "gold", 4, "{b}"), "ERR transfer 't1' was recorded with other arguments"),
    (("{b}", "IN", "x", "gold", 5, "{a}"), "ERR transfer 'x' was recorded with other arguments"),
    (("{a}", "OUT", "t9", "pt", 1, "{b}"), "ERR prize 'pt' has INF stock"),
    (("{a}", "OUT", "t9", "nope", 1, "{b}"), "ERR no such prize 'nope'"),
    (("{a}", "OUT", "t9", "gold", 0, "{b}"),
     "ERR invalid count '0': expected an integer in 1..9223372036854775807"),
    (("{a}", "IN", "t9", "gold", -1, "{b}"),
     "ERR invalid count '-1': expected an integer in 0..9223372036854775807"),
    (("{a}", "OUT", "t9", "gold", "1.5", "{b}"),
     "ERR invalid count '1.5': expected an integer in 1..9223372036854775807"),
    (("{a}", "IN", "t9", "gold", 9223372036854775807, "{b}"),
     "ERR stock would exceed 9223372036854775807"),
    (("{a}", "OUT", "", "gold", 1, "{b}"), "ERR invalid transfer id: must be 1..128 bytes"),
    (("{a}", "OUT", "x" * 129, "gold", 1, "{b}"), "ERR invalid transfer id: must be 1..128 bytes"),
    (("{a}", "OUT", "t9", "gold", 1, ""), "ERR invalid peer: must be 1..4096 bytes"),
    (("{a}", "OUT", "t9", "gold", 1, "{a}"), "ERR a transfer's peer must be another key"),
    (("{a}", "SETTLE", "nope"), "ERR no such outgoing transfer 'nope'"),
    (("{b}", "SETTLE", "x"), "ERR no such outgoing transfer 'x'"),
    (("{a}", "LIST", "ALL"), "ERR unknown option 'ALL'"),
    (("{a}", "MOVE"), "ERR unknown TRANSFER subcommand 'MOVE' (expected OUT, IN, SETTLE, CODES or LIST)"),
    (("{a}", "OUT", "t9", "gold", 1), "ERR wrong number of arguments for 'lottery.transfer' command"),
    (("{a}",), "ERR wrong number of arguments for 'lottery.transfer' command"),
    (("{none}", "OUT", "t9", "gold", 1, "{b}"), "ERR no such campaign"),
    (("{none}", "LIST"), "ERR no such campaign"),
])
def test_errors_change_nothing(r, raw, args, msg):
    setup_pair(r)
    r.execute_command("LOTTERY.TRANSFER", "{a}", "OUT", "t1", "gold", 4, "{b}")
    r.execute_command("LOTTERY.TRANSFER", "{b}", "IN", "x", "gold", 4, "{a}")
    before = (D.digest(r, "{a}"), D.digest(r, "{b}"))
    assert H.expect_err(raw, "LOTTERY.TRANSFER", *args) == msg
    assert (D.digest(r, "{a}"), D.digest(r, "{b}")) == before
    assert r.exists("{none}") == 0


def test_wrong_type(r, raw):
    r.set("s", "x")
    H.expect_err(raw, "LOTTERY.TRANSFER", "s", "LIST", prefix="WRONGTYPE")
    H.expect_err(raw, "LOTTERY.TRANSFER", "s", "OUT", "t", "gold", 1, "p", prefix="WRONGTYPE")


def test_replicated_as_effects_and_repeats_replicate_nothing(master_replica):
    master, replica = master_replica
    m, rep = master.client(), replica.client()
    setup_pair(m)
    T = lambda *a: m.execute_command("LOTTERY.TRANSFER", *a)  # noqa: E731
    for i in range(50):
        T("{a}", "OUT", f"t{i}", "gold", 1, "{b}")
        T("{b}", "IN", f"t{i}", "gold", 1, "{a}")
        if i % 2:
            T("{a}", "SETTLE", f"t{i}")
        draw(m, "{b}", f"u{i}")
    D.wait_acked(m)
    offset = D.repl_info(m)["master_repl_offset"]
    # Repeats change nothing, so they send nothing to the replica.
    for i in range(50):
        T("{a}", "OUT", f"t{i}", "gold", 1, "{b}")
        T("{b}", "IN", f"t{i}", "gold", 1, "{a}")
    assert D.repl_info(m)["master_repl_offset"] == offset
    for k in ("{a}", "{b}"):
        assert D.digest(m, k) == D.digest(rep, k)
    assert H.prizes(rep, "{a}") == H.prizes(m, "{a}")
    # LIST is answered by the master only (the command is flagged write, like the steps).
    with pytest.raises(redis.exceptions.ReadOnlyError):
        rep.execute_command("LOTTERY.TRANSFER", "{a}", "LIST")


@pytest.mark.parametrize("preamble", ["yes", "no"])
def test_records_survive_aof_rewrite_and_restart(server_factory, preamble):
    s = server_factory(appendonly=True, extra_args=["--aof-use-rdb-preamble", preamble])
    r = s.client()
    setup_pair(r)
    T = lambda *a: r.execute_command("LOTTERY.TRANSFER", *a)  # noqa: E731
    T("{a}", "OUT", "t1", "gold", 3, "{b}")
    T("{b}", "IN", "t1", "gold", 3, "{a}")
    T("{a}", "OUT", "t2", "gold", 2, "{b}")
    r.execute_command("BGREWRITEAOF")
    D.wait_aof_rewrite(r)
    T("{a}", "SETTLE", "t1")  # after the rewrite: in the AOF tail
    want = {k: (D.digest(r, k), tlist(r, k)) for k in ("{a}", "{b}")}
    s.restart(save=False)
    r = s.client()
    assert {k: (D.digest(r, k), tlist(r, k)) for k in ("{a}", "{b}")} == want
    # The loaded records still make repeats idempotent.
    assert r.execute_command("LOTTERY.TRANSFER", "{b}", "IN", "t1", "gold", 3, "{a}") == 0
    assert gold(r, "{b}") == (3, 0)


def test_records_survive_rdb_and_dump_restore(server):
    r = server.client()
    setup_pair(r)
    r.execute_command("LOTTERY.TRANSFER", "{a}", "OUT", "t1", "gold", 3, "{b}")
    want = tlist(r, "{a}")
    dg = D.digest(r, "{a}")
    server.restart(save=True)
    r = server.client()
    assert tlist(r, "{a}") == want and D.digest(r, "{a}") == dg
    blob = r.dump("{a}")
    r.restore("{a}", 0, blob, replace=True)
    assert tlist(r, "{a}") == want and D.digest(r, "{a}") == dg
    assert r.execute_command("LOTTERY.TRANSFER", "{a}", "OUT", "t1", "gold", 3, "{b}") == 3
    assert gold(r, "{a}") == (7, 0)


def test_transfer_in_multi_and_lua_is_atomic(r):
    setup_pair(r)
    p = r.pipeline(transaction=True)
    p.execute_command("LOTTERY.TRANSFER", "{a}", "OUT", "m1", "gold", 2, "{b}")
    p.execute_command("LOTTERY.TRANSFER", "{b}", "IN", "m1", "gold", 2, "{a}")
    p.execute_command("LOTTERY.TRANSFER", "{a}", "SETTLE", "m1")
    assert p.execute() == [2, 1, 1]
    got = r.eval("return redis.call('LOTTERY.TRANSFER', KEYS[1], 'OUT', 'l1', 'gold', 1, 'x')",
                 1, "{a}")
    assert got == 1
    assert gold(r, "{a}") == (7, 0) and gold(r, "{b}") == (2, 0)


def setup_codes(r):
    """{a}: code prize card with 10 codes A00..A09 and counted gold; {b}: card with B0, B1."""
    configure(r, "{a}", "PRIZE", "card", 1, "CODES", "PRIZE", "gold", 1, 10, "NOTHING", 2)
    configure(r, "{b}", "PRIZE", "card", 1, "CODES", "PRIZE", "gold", 1, 0, "NOTHING", 2)
    r.execute_command("LOTTERY.CODES", "{a}", "card", "ADD", *[f"A{i:02d}" for i in range(10)])
    r.execute_command("LOTTERY.CODES", "{b}", "card", "ADD", "B0", "B1")


def card(r, key):
    return H.prizes(r, key)["card"][1]


def test_code_prize_moves_its_codes(r, raw):
    setup_codes(r)
    T = lambda *a: r.execute_command("LOTTERY.TRANSFER", *a)  # noqa: E731
    assert T("{a}", "OUT", "c1", "card", 4, "{b}") == 4
    assert card(r, "{a}") == 6
    codes = T("{a}", "CODES", "c1")
    assert codes == ["A00", "A01", "A02", "A03"]
    # A repeated OUT takes nothing more; the codes taken cannot be added on {a} again.
    assert T("{a}", "OUT", "c1", "card", 9, "{b}") == 4
    assert card(r, "{a}") == 6
    assert r.execute_command("LOTTERY.CODES", "{a}", "card", "ADD", *codes) == 0
    assert tlist(r, "{a}", "PENDING") == [["c1", "OUT", "card", 4, "{b}", "PENDING"]]
    before = D.digest(r, "{b}")
    for args, msg in [
        (("IN", "c1", "card", 4, "{a}"),
         "ERR an IN of a code prize takes exactly its count of codes (CODES code ...): "
         "count 4, 0 given"),
        (("IN", "c1", "card", 4, "{a}", "CODES", *codes[:3]),
         "ERR an IN of a code prize takes exactly its count of codes (CODES code ...): "
         "count 4, 3 given"),
        (("IN", "c1", "gold", 4, "{a}", "CODES", *codes),
         "ERR prize 'gold' is not a code prize (PRIZE id weight CODES)"),
        (("IN", "c1", "card", 4, "{a}", "CODES"),
         "ERR wrong number of arguments for 'lottery.transfer' command"),
        (("IN", "c1", "card", 1, "{a}", "CODES", "x" * 513),
         "ERR invalid code of 513 bytes: must be 1..512 bytes"),
        (("IN", "c1", "card", 1, "{a}", "KODES", "x"), "ERR unknown option 'KODES'"),
        (("OUT", "c9", "card", 100001, "{a}"),
         "ERR a transfer of a code prize moves at most 100000 codes: split it"),
        (("CODES", "nope"), "ERR no such outgoing transfer 'nope'"),
    ]:
        assert H.expect_err(raw, "LOTTERY.TRANSFER", "{b}", *args) == msg
    assert D.digest(r, "{b}") == before
    assert T("{b}", "IN", "c1", "card", 4, "{a}", "CODES", *codes) == 1
    assert T("{b}", "IN", "c1", "card", 4, "{a}", "CODES", *codes) == 0
    assert card(r, "{b}") == 6
    assert r.execute_command("LOTTERY.CODES", "{b}", "card", "COUNT") == 6
    assert T("{a}", "SETTLE", "c1") == 1
    assert T("{a}", "CODES", "c1") == []
    # Every code is handed out once, from the pool it is in now, the oldest first.
    won = {"{a}": [], "{b}": []}
    for k in won:
        for i in range(200):
            rep = r.execute_command("LOTTERY.DRAW", k, f"u{k}{i}")
            if rep[0] == "WIN" and rep[1] == "card":
                won[k].append(rep[5])
            if card(r, k) == 0:
                break
    assert won["{b}"] == ["B0", "B1", "A00", "A01", "A02", "A03"]
    assert won["{a}"] == [f"A{i:02d}" for i in range(4, 10)]


def test_code_transfers_replicate_and_persist(master_replica, server_factory):
    master, replica = master_replica
    m, rep = master.client(), replica.client()
    setup_codes(m)
    T = lambda *a: m.execute_command("LOTTERY.TRANSFER", *a)  # noqa: E731
    assert T("{a}", "OUT", "c1", "card", 3, "{b}") == 3
    codes = T("{a}", "CODES", "c1")
    assert T("{b}", "IN", "c1", "card", 3, "{a}", "CODES", *codes) == 1
    assert T("{a}", "OUT", "c2", "card", 2, "{b}") == 2
    D.wait_acked(m)
    for k in ("{a}", "{b}"):
        assert D.digest(m, k) == D.digest(rep, k)
    # The pending record's codes survive a restart (RDB) and DUMP/RESTORE.
    want = T("{a}", "CODES", "c2")
    assert want == ["A03", "A04"]
    dg = D.digest(m, "{a}")
    master.restart(save=True)
    m = master.client()
    assert m.execute_command("LOTTERY.TRANSFER", "{a}", "CODES", "c2") == want
    assert D.digest(m, "{a}") == dg
    blob = m.dump("{a}")
    m.restore("{a}", 0, blob, replace=True)
    assert m.execute_command("LOTTERY.TRANSFER", "{a}", "CODES", "c2") == want
    assert D.digest(m, "{a}") == dg
    # ... and an AOF with a rewrite in the middle.
    s = server_factory(appendonly=True)
    a = s.client()
    setup_codes(a)
    a.execute_command("LOTTERY.TRANSFER", "{a}", "OUT", "c1", "card", 3, "{b}")
    a.execute_command("BGREWRITEAOF")
    D.wait_aof_rewrite(a)
    a.execute_command("LOTTERY.TRANSFER", "{a}", "OUT", "c2", "card", 2, "{b}")
    a.execute_command("LOTTERY.TRANSFER", "{b}", "IN", "c2", "card", 2, "{a}", "CODES", "A03", "A04")
    want = {k: D.digest(a, k) for k in ("{a}", "{b}")}
    s.restart(save=False)
    a = s.client()
    assert {k: D.digest(a, k) for k in ("{a}", "{b}")} == want
    assert a.execute_command("LOTTERY.TRANSFER", "{a}", "CODES", "c1") == ["A00", "A01", "A02"]


def test_codes_moved_back_return_to_the_pool(r):
    """A code moved out of {a} and later moved back is in {a}'s pool again; while it is away,
    LOTTERY.CODES ADD of it on {a} is skipped; STATS counts it neither unused nor handed out."""
    setup_codes(r)
    T = lambda *a: r.execute_command("LOTTERY.TRANSFER", *a)  # noqa: E731
    assert T("{a}", "OUT", "go", "card", 3, "{b}") == 3
    codes = T("{a}", "CODES", "go")
    assert T("{b}", "IN", "go", "card", 3, "{a}", "CODES", *codes) == 1
    assert T("{a}", "SETTLE", "go") == 1
    assert r.execute_command("LOTTERY.CODES", "{a}", "card", "ADD", *codes) == 0
    assert stats(r, "{a}")["codes"] == ["card", 7, 0]
    # {b} sends its five back: B0, B1 and the three from {a}.
    assert T("{b}", "OUT", "back", "card", 5, "{a}") == 5
    back = T("{b}", "CODES", "back")
    assert back == ["B0", "B1"] + codes
    assert T("{a}", "IN", "back", "card", 5, "{b}", "CODES", *back) == 1
    assert T("{b}", "SETTLE", "back") == 1
    assert card(r, "{a}") == 12 and card(r, "{b}") == 0
    won = []
    for i in range(300):
        rep = r.execute_command("LOTTERY.DRAW", "{a}", f"w{i}")
        if rep[0] == "WIN" and rep[1] == "card":
            won.append(rep[5])
        if card(r, "{a}") == 0:
            break
    assert won == [f"A{i:02d}" for i in range(3, 10)] + ["B0", "B1"] + codes
