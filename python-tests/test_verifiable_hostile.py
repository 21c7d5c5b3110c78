"""VERIFIABLE campaigns under hostile clients and careless operators, against a real
redis-server with the module: the bound on a VERIFIABLE REDRAW table (each sell-out republishes
it), draws in MULTI/EXEC, scripts and pipelines reaching a replica and the AOF identical, a wins
stream at its last ID, and prize ids named like the entries' fixed fields."""
import lottery_helpers as H

T0 = 1_800_000_000_000
LIMIT = 1024     # engine/src/limits.rs MAX_VERIFIABLE_REDRAW_PRIZES


def table(n, stock=b"1"):
    args = []
    for i in range(n):
        args += [b"PRIZE", b"p%d" % i, b"1", stock]
    return args


def test_verifiable_redraw_table_is_bounded(raw):
    """Refused past the limit, nothing changed (no key, no stream entry); at the limit it
    works; LOSE keeps larger tables."""
    stream = H.default_stream("k")
    r = raw.call("LOTTERY.CONFIGURE", "k", *table(LIMIT + 1), "SOLDOUT", "REDRAW", "VERIFIABLE")
    assert isinstance(r, H.Err) and f"at most {LIMIT} prizes" in r, r
    assert raw.call("EXISTS", "k", stream) == 0
    assert raw.call("LOTTERY.CONFIGURE", "k", *table(LIMIT + 1), "SOLDOUT", "LOSE",
                    "VERIFIABLE") == "OK"
    r = raw.call("LOTTERY.CONFIGURE", "k", "SOLDOUT", "REDRAW")
    assert isinstance(r, H.Err) and "SOLDOUT REDRAW" in r, r
    assert raw.call("LOTTERY.CONFIGURE", "k", *table(LIMIT), "SOLDOUT", "REDRAW") == "OK"
    # A large REDRAW campaign may not become VERIFIABLE.
    assert raw.call("LOTTERY.CONFIGURE", "r", *table(LIMIT + 1), "SOLDOUT", "REDRAW") == "OK"
    r = raw.call("LOTTERY.CONFIGURE", "r", "VERIFIABLE")
    assert isinstance(r, H.Err) and "SOLDOUT REDRAW" in r, r
    st = dict(zip(*[iter(raw.call("LOTTERY.STATS", "r"))] * 2))
    assert st[b"verifiable"] == 0
    assert raw.call("EXISTS", H.default_stream("r")) == 0
