"""Hostile clients and careless operators against the campaign rules (GUARANTEE, AFTER,
TOTAL, PERIOD, TIER) and the code pools (LOTTERY.CODES): whatever a client can configure
must save, load, replicate and rewrite; no code is ever handed out twice.

Each test is a defect found by attacking a real server, kept as its regression test.
"""
import time

import pytest

import durability_helpers as D
import lottery_helpers as H
from lottery_helpers import Err, pin

T0 = H.T0


def reload_ok(r):
    """DEBUG RELOAD (save then load the RDB): must succeed."""
    assert r.execute_command("DEBUG", "RELOAD") in (b"OK", "OK", True)


def roundtrips(server, raw, key):
    """The campaign survives every way it is saved: DEBUG RELOAD, DUMP/RESTORE, an AOF
    rewrite without the RDB preamble (its meta record as a LOTTERY.APPLY) and with it."""
    r = server.client()
    before = D.digest(r, key)
    reload_ok(r)
    assert D.digest(r, key) == before
    dump = r.dump(key)
    assert raw.call("RESTORE", key + "-copy", 0, dump) == "OK"
    assert D.digest(r, key + "-copy") == D.digest(r, key)
    r.delete(key + "-copy")
    for preamble in ("no", "yes"):
        r.config_set("aof-use-rdb-preamble", preamble)
        if r.config_get("appendonly")["appendonly"] == "no":
            r.config_set("appendonly", "yes")
        else:
            r.execute_command("BGREWRITEAOF")
            time.sleep(0.05)
        D.wait_aof_rewrite(r)
        assert r.execute_command("DEBUG", "LOADAOF") in (b"OK", "OK", True)
        assert D.digest(r, key) == before, preamble
    r.config_set("appendonly", "no")
    return before


# --------------------------------------------------------------------------------------------
# TIER


@pytest.mark.parametrize("tiers", [
    ["TIER", "vip"],                                  # one tier, no weights: 9 + 3 bytes saved
    ["TIER", "a", "TIER", "b"],                       # two one-letter tiers
    ["TIER", "t1", "TIER", b"\xf0\x9f\x98\x80"],      # a short name and an emoji
])
def test_a_tier_without_weights_saves_and_loads(server, raw, tiers):
    # A tier with no PRIZE-WEIGHT and no NOTHING (the base table under another name) is
    # accepted; its saved form is shorter than what the loader assumed a tier takes, so
    # the RDB, DUMP and a rewritten AOF of the campaign could not be loaded again.
    r = server.client()
    pin(r, T0)
    assert raw.call("LOTTERY.CONFIGURE", "k", "PRIZE", "p", 1, 5, "NOTHING", 1, *tiers) == "OK"
    roundtrips(server, raw, "k")
    name = tiers[1]
    assert raw.call("LOTTERY.DRAW", "k", "u", "TIER", name)[0] in (b"WIN", b"LOSE")


def test_a_tier_without_weights_reaches_a_new_replica(server_factory):
    master = server_factory()
    m = master.raw()
    assert m.call("LOTTERY.CONFIGURE", "k", "PRIZE", "p", 1, 5, "NOTHING", 1,
                  "TIER", "a", "TIER", "b") == "OK"
    # A replica that connects now gets the campaign by full sync (the RDB).
    replica = server_factory(replicaof=("127.0.0.1", master.port))
    rc = replica.client()
    H.wait_link_up(rc)
    D.wait_same_offset([master.client(), rc])
    assert D.digest(rc, "k") == D.digest(master.client(), "k")


def test_a_reqid_retry_is_answered_after_its_tier_is_removed(server, raw):
    # A client draws on a tier with a REQID, wins a code, and times out before the reply;
    # meanwhile the operator removes the tier. Its retry (the same command) must get the
    # remembered win and its code (the REQID replay comes first), not "no such tier": the
    # code was handed out and the client would never learn it.
    pin(server.client(), T0)
    assert raw.call("LOTTERY.CONFIGURE", "k", "PRIZE", "q", 1, "CODES", "NOTHING", 1,
                    "IDEMPOTENCY", 60000, "TIER", "vip", "NOTHING", 0) == "OK"
    assert raw.call("LOTTERY.CODES", "k", "q", "ADD", "GIFT-1") == 1
    first = raw.call("LOTTERY.DRAW", "k", "u", "REQID", "r1", "TIER", "vip")
    assert first[0] == b"WIN" and first[5] == b"GIFT-1"
    assert raw.call("LOTTERY.CONFIGURE", "k", "TIER", "vip", "OFF") == "OK"
    assert raw.call("LOTTERY.DRAW", "k", "u", "REQID", "r1", "TIER", "vip") == first
    # Without a remembered request the unknown tier is still an error that consumes nothing.
    rep = raw.call("LOTTERY.DRAW", "k", "u", "REQID", "r2", "TIER", "vip")
    assert isinstance(rep, Err) and "no such tier 'vip'" in rep
    assert raw.call("LOTTERY.USER", "k", "u")[1] == 1   # draws_today: the one draw


# --------------------------------------------------------------------------------------------
# Errors name the range that is valid


@pytest.mark.parametrize("args, message", [
    (["GUARANTEE", -1], "ERR invalid GUARANTEE '-1': expected 2..1000000 or OFF"),
    (["GUARANTEE", 2**32], "ERR invalid GUARANTEE '4294967296': expected 2..1000000 or OFF"),
    (["GUARANTEE", 1], "ERR invalid GUARANTEE '1': expected 2..1000000 or OFF"),
    (["GUARANTEE", b"\xf0\x9f\x98\x80\x00"],
     "ERR invalid GUARANTEE '\U0001F600\\x00': expected 2..1000000 or OFF"),
    (["GUARANTEE", 3, "PRIZES", -1, "p"], "ERR invalid PRIZES count '-1': expected 1..65536"),
    (["GUARANTEE", 3, "PRIZES", 2**32, "p"],
     "ERR invalid PRIZES count '4294967296': expected 1..65536"),
    (["GUARANTEE", 3, "PRIZES", 0, "p"], "ERR invalid PRIZES count '0': expected 1..65536"),
    (["AFTER", 0], "ERR invalid AFTER '0': expected 1..4294967295"),
    (["AFTER", 2**32], "ERR invalid AFTER '4294967296': expected 1..4294967295"),
    (["AFTER", "\u4e2d"], "ERR invalid AFTER '\u4e2d': expected 1..4294967295"),
])
def test_errors_of_the_new_counts_name_their_valid_range(raw, args, message):
    # Out of range or not a number, the error names the range the option accepts (not the
    # 0..4294967295 of the integer it is read into, which suggests 0 would do).
    assert raw.call("LOTTERY.CONFIGURE", "k", "PRIZE", "p", 1, 5, *args) == message


# --------------------------------------------------------------------------------------------
# MEMORY USAGE


def test_memory_usage_counts_the_tiers_and_the_guarantee_list(server, raw):
    # 16 tiers weighing 2048 prizes of 200-byte ids, and a GUARANTEE list of them all: some
    # 7 MB of ids (17 x 2048 x 200 bytes) a client put in the campaign with one CONFIGURE.
    # MEMORY USAGE (what --bigkeys, --memkeys and operators go by) must see them.
    ids = [b"%0200d" % i for i in range(2048)]
    table = []
    for i in ids:
        table += [b"PRIZE", i, 1, 10]
    assert raw.call("LOTTERY.CONFIGURE", "k", *table) == "OK"
    before = raw.call("MEMORY", "USAGE", "k")
    tiers = []
    for j in range(16):
        tiers += [b"TIER", b"t%d" % j]
        for i in ids:
            tiers += [b"PRIZE-WEIGHT", i, 2]
    assert raw.call("LOTTERY.CONFIGURE", "k", *tiers,
                    "GUARANTEE", 5, "PRIZES", len(ids), *ids) == "OK"
    seen = raw.call("MEMORY", "USAGE", "k") - before
    assert seen >= 17 * 2048 * 200, seen
    # Removing them gives the bytes back.
    off = []
    for j in range(16):
        off += [b"TIER", b"t%d" % j, b"OFF"]
    assert raw.call("LOTTERY.CONFIGURE", "k", *off, "GUARANTEE", "OFF") == "OK"
    assert raw.call("MEMORY", "USAGE", "k") - before < 100_000


def test_unlink_frees_a_campaign_with_large_tiers_in_the_background(server, raw):
    # Two tiers weighing 40000 prizes: 80000 ids held by the rules, 40000 by the table, each
    # its own allocation, and no users. UNLINK must hand such a campaign to the lazy-free
    # thread (Redis does when the type's free effort is past 64), not free it in the event
    # loop: at 32 tiers of 65536 prizes that is a stall of tens of milliseconds.
    r = server.client()
    ids = [b"p%d" % i for i in range(40000)]
    table = []
    for i in ids:
        table += [b"PRIZE", i, 1, 10]
    tiers = []
    for name in (b"a", b"b"):
        tiers += [b"TIER", name]
        for i in ids:
            tiers += [b"PRIZE-WEIGHT", i, 2]
    assert raw.call("LOTTERY.CONFIGURE", "k", *table, *tiers) == "OK"
    before = r.info("memory")["lazyfreed_objects"]
    assert raw.call("UNLINK", "k") == 1
    deadline = time.time() + 3
    while r.info("memory")["lazyfreed_objects"] == before and time.time() < deadline:
        time.sleep(0.01)
    assert r.info("memory")["lazyfreed_objects"] == before + 1


# --------------------------------------------------------------------------------------------
# LOTTERY.CODES COUNT and REMOVE: reads and frees


def test_codes_counts_on_a_replica_are_in_stats(master_replica):
    """LOTTERY.CODES is a write command (a replica refuses all of it, COUNT included, as
    documented); on a replica LOTTERY.STATS `codes` has the counts."""
    master, replica = master_replica
    m = master.raw()
    assert m.call("LOTTERY.CONFIGURE", "k", "PRIZE", "q", 1, "CODES") == "OK"
    assert m.call("LOTTERY.CODES", "k", "q", "ADD", "a", "b") == 2
    D.wait_same_offset([master.client(), replica.client()])
    rep = replica.raw()
    assert rep.call("LOTTERY.CODES", "k", "q", "COUNT").startswith("READONLY")
    st = H.stats(replica.client(), "k")
    assert st["codes"] == ["q", 2, 0]


def test_codes_count_and_remove_work_over_maxmemory(server, raw):
    r = server.client()
    assert raw.call("LOTTERY.CONFIGURE", "k", "PRIZE", "q", 1, "CODES") == "OK"
    assert raw.call("LOTTERY.CODES", "k", "q", "ADD", "a", "b") == 2
    r.config_set("maxmemory", 1)
    try:
        assert isinstance(raw.call("LOTTERY.CODES", "k", "q", "ADD", "c"), Err)
        assert raw.call("LOTTERY.CODES", "k", "q", "COUNT") == 2
        assert raw.call("LOTTERY.CODES", "k", "q", "REMOVE", "a") == 1
    finally:
        r.config_set("maxmemory", 0)
