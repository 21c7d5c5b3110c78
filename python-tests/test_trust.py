"""The module never takes the server down, and a refused command changes nothing.

- Error replies echo ids of any bytes safely (UTF-8 of every plane as is, anything else
  escaped; never NUL, CR or LF), and a panic anywhere is caught at the boundary.
- Load options are read as bytes.
- Campaign keys are bounded where they enter (CONFIGURE, COPY), so what is saved loads.
- CONFIGURE ... STREAM needs write permission on the stream (ACL), whatever the wrapper.
- A refused command leaves WATCH alone; a real change aborts it.
- A CONFIGURE's effect (replicas, AOF) is the size of the command, not of the history.
"""
import os

import pytest
import redis

import durability_helpers as D
import lottery_helpers as H

# Ids a client may send: CJK (U+4E00's low byte is 0), Latin-1 supplement, astral, combining,
# C0/C1 controls, invalid UTF-8, NUL, CR/LF, quotes, 256-byte ids.
HOSTILE_IDS = [
    "一等奖".encode(), "Ā".encode(), "😀".encode(), "e\u0301".encode(), "\u0085".encode(),
    "\u2028".encode(), b"\xff\xfe", b"\xe4\xb8", b"a\x00b", b"a\r\nb", b"'\\", b"\x00" * 256,
    "奖".encode() * 85, bytes(range(1, 256)),
]


def assert_clean_error(rep):
    assert isinstance(rep, H.Err), rep
    assert "\x00" not in rep and "\r" not in rep and "\n" not in rep, repr(rep)


def test_error_replies_echo_any_id_without_harm(server):
    raw = server.raw()
    r = server.client()
    H.configure(r, "camp", "PRIZE", "phone", 1, 10)
    for pid in HOSTILE_IDS:
        rep = raw.call("LOTTERY.RESTOCK", "camp", pid, 5)
        assert_clean_error(rep)
        assert rep.startswith("ERR no such prize '")
        for args in (
            ("LOTTERY.CONFIGURE", "c2", "PRIZE", pid, 1, 1, "PRIZE", pid, 1, 1),
            ("LOTTERY.CONFIGURE", "c2", "PRIZE", "a", 1, 1, "SOLDOUT", "FALLBACK", pid),
            ("LOTTERY.CONFIGURE", "c2", "PRIZE", "a", 1, 1, "PACE", pid, "LINEAR"),
            ("LOTTERY.TRANSFER", "camp", "OUT", "t1", pid, 1, "peer"),
            ("LOTTERY.TRANSFER", "camp", "SETTLE", pid),
            ("LOTTERY.DRAW", "camp", "u", "REQID", "r", pid, "x"),
            ("LOTTERY.DEBUG", pid, 1),
            (pid, "x"),
        ):
            assert_clean_error(raw.call(*args))
    # Valid UTF-8 is shown as is, so an operator can read the name back.
    assert raw.call("LOTTERY.RESTOCK", "camp", "一等奖", 5) == "ERR no such prize '一等奖'"
    assert raw.call("LOTTERY.RESTOCK", "camp", b"\xff", 5) == "ERR no such prize '\\xff'"
    assert r.ping()
    assert r.info("lottery")["lottery_internal_errors"] == 0
    assert r.exists("c2") == 0


def test_a_panic_is_an_error_reply_and_one_log_line(server):
    r = server.client()
    raw = server.raw()
    H.configure(r, "camp", "PRIZE", "a", 1, 10)
    rep = raw.call("LOTTERY.DEBUG", "PANIC")
    assert rep == "ERR internal error in LOTTERY.DEBUG: refused; see the server log", rep
    # Inside MULTI and a script as well: the transaction and the script go on.
    p = r.pipeline()
    p.execute_command("LOTTERY.DEBUG", "PANIC")
    p.set("after", 1)
    res = p.execute(raise_on_error=False)
    assert isinstance(res[0], redis.ResponseError) and res[1] is True
    with pytest.raises(redis.ResponseError, match="internal error"):
        r.eval("return redis.call('LOTTERY.DEBUG', 'PANIC')", 0)
    assert r.ping() and r.get("after") == "1"
    assert r.info("lottery")["lottery_internal_errors"] == 3
    log = open(server.logfile, encoding="utf-8", errors="replace").read()
    lines = [l for l in log.splitlines() if "internal error in LOTTERY.DEBUG" in l]
    assert len(lines) == 3 and "asked for a panic" in lines[0], lines
    # Nothing else was disturbed.
    assert H.draw(r, "camp", "u1")[0] in ("WIN", "LOSE")


@pytest.mark.parametrize("args", [
    ["rng", "a\x00b"], ["debug-clock", "ye\x00s"], ["一等奖\x00", "x"], ["rng"], ["\xff"],
    ["debug-clock", "yes", "rng"],
])
def test_bad_load_options_refuse_the_load_not_the_server(server_factory, args):
    s = server_factory(module=False, extra_args=["--enable-module-command", "yes"])
    r = s.client()
    with pytest.raises(redis.ResponseError):
        r.execute_command("MODULE", "LOAD", H.MODULE_PATH, *args)
    assert r.ping()
    r.execute_command("MODULE", "LOAD", H.MODULE_PATH, "rng", "xoshiro", "debug-clock", "yes")
    assert r.info("lottery")["lottery_generator"] == "xoshiro"
    assert r.config_get("lottery.debug-clock") == {"lottery.debug-clock": "yes"}


def test_campaign_keys_are_bounded_where_they_enter_so_every_save_loads(server):
    r = server.client()
    raw = server.raw()
    longest = "k" * 4096
    H.configure(r, longest, "PRIZE", "a", 1, 10)
    H.draw(r, longest, "u1")
    assert r.exists(H.default_stream(longest)) == 1
    err = H.expect_err(raw, "LOTTERY.CONFIGURE", "k" * 4097, "PRIZE", "a", 1, 10)
    assert "campaign key too long" in err
    assert r.exists("k" * 4097) == 0
    # COPY to a key past the bound is refused (the copy would follow the new key's default
    # stream); to a key within it, the copy works.
    H.expect_err(raw, "COPY", longest, "y" * 4097)
    assert r.exists("y" * 4097) == 0
    assert r.copy(longest, "y" * 4096) is True
    # RENAME cannot be refused: the value keeps its stream, so it still saves and loads.
    r.rename("y" * 4096, "z" * 100_000)
    before = {k: D.digest(r, k) for k in (longest, "z" * 100_000)}
    assert r.execute_command("DEBUG", "RELOAD") == "OK"
    assert {k: D.digest(r, k) for k in before} == before
    r.save()
    server.restart()
    r = server.client()
    assert {k: D.digest(r, k) for k in before} == before
    # STREAM keys have the same bound.
    H.expect_err(raw := server.raw(), "LOTTERY.CONFIGURE", "c", "PRIZE", "a", 1, 1,
                 "STREAM", "{c}" + "s" * 4094)
    H.configure(r, "c", "PRIZE", "a", 1, 1, "STREAM", "{c}" + "s" * 4093)


def test_stream_needs_write_permission_in_every_wrapper(server):
    r = server.client()
    r.execute_command("ACL", "SETUSER", "op", "on", ">pw", "~camp:*", "+@all")
    op = redis.Redis(port=server.port, username="op", password="pw", decode_responses=True)
    attempts = [
        lambda: op.execute_command("LOTTERY.CONFIGURE", "camp:{v}", "PRIZE", "a", 1, 1,
                                   "STREAM", "{v}:victim"),
        lambda: op.eval("return redis.call('LOTTERY.CONFIGURE', KEYS[1], 'PRIZE', 'a', 1, 1, "
                        "'STREAM', '{v}:victim')", 1, "camp:{v}"),
    ]
    for attempt in attempts:
        with pytest.raises(redis.exceptions.NoPermissionError, match="STREAM key"):
            attempt()
    p = op.pipeline()
    p.execute_command("LOTTERY.CONFIGURE", "camp:{v}", "PRIZE", "a", 1, 1, "STREAM", "{v}:victim")
    res = p.execute(raise_on_error=False)
    assert isinstance(res[0], redis.exceptions.NoPermissionError)
    # Changing the stream of an existing campaign is checked too.
    op.execute_command("LOTTERY.CONFIGURE", "camp:{v}", "PRIZE", "a", 1, 100, "MAXWINS", "INF",
                       "STREAM", "camp:{v}:wins")
    with pytest.raises(redis.exceptions.NoPermissionError):
        op.execute_command("LOTTERY.CONFIGURE", "camp:{v}", "STREAM", "{v}:victim")
    for u in range(20):
        op.execute_command("LOTTERY.DRAW", "camp:{v}", f"u{u}")
    assert r.exists("{v}:victim") == 0
    assert r.xlen("camp:{v}:wins") == 20
    # A user allowed to write the stream may name it.
    r.execute_command("ACL", "SETUSER", "op", "~{v}:victim")
    op.execute_command("LOTTERY.CONFIGURE", "camp:{v}", "STREAM", "{v}:victim")


def watch_outcome(r, key, action):
    """WATCH key, run action on another connection, then EXEC: True if EXEC ran."""
    p = r.pipeline()
    p.watch(key)
    action()
    p.multi()
    p.set("watch-probe", 1)
    try:
        p.execute()
        return True
    except redis.WatchError:
        return False


def test_a_refused_command_leaves_watch_alone(server):
    r = server.client()
    other = server.client()
    raw = server.raw()
    H.configure(r, "camp", "PRIZE", "a", 1, 10, "MAXWINS", "INF")
    refused = [
        ("LOTTERY.RESTOCK", "camp", "nope", 5),
        ("LOTTERY.RESTOCK", "camp", "a", -100),
        ("LOTTERY.CONFIGURE", "camp", "PRIZE", "a", 0, 1),
        ("LOTTERY.CONFIGURE", "camp", "SOLDOUT", "FALLBACK", "zz"),
        ("LOTTERY.TRANSFER", "camp", "SETTLE", "none"),
        ("LOTTERY.TRANSFER", "camp", "OUT", "t", "nope", 1, "peer"),
        ("LOTTERY.GRANT", "camp", "u", -1),
        ("LOTTERY.DRAW", "camp", "u", "BOGUS", "1"),
        ("LOTTERY.UNBAN", "camp", "never-banned"),
    ]
    for cmd in refused:
        assert watch_outcome(r, "camp", lambda: raw.call(*cmd)), cmd
    assert watch_outcome(r, "{camp}:wins", lambda: raw.call(*refused[0]))
    # Real changes abort it, on the campaign and (for a win) on the stream.
    assert not watch_outcome(r, "camp", lambda: other.execute_command(
        "LOTTERY.RESTOCK", "camp", "a", 1))
    assert not watch_outcome(r, "camp", lambda: other.execute_command(
        "LOTTERY.CONFIGURE", "camp", "NOTHING", 3))
    assert not watch_outcome(r, "{camp}:wins", lambda: other.execute_command(
        "LOTTERY.CONFIGURE", "camp", "NOTHING", 0) and other.execute_command(
        "LOTTERY.DRAW", "camp", "winner"))
    assert r.xlen("{camp}:wins") == 1


def test_configure_effect_does_not_carry_the_transfer_history(server_factory):
    s = server_factory(appendonly=True, extra_args=["--aof-use-rdb-preamble", "no"])
    r = s.client()
    H.configure(r, "camp", "PRIZE", "gold", 1, 1_000_000, "MAXWINS", "INF")
    peer = "{camp}" + "p" * 3000
    p = r.pipeline(transaction=False)
    for i in range(2000):
        p.execute_command("LOTTERY.TRANSFER", "camp", "OUT", f"t{i}", "gold", 1, peer)
    p.execute()
    r.config_set("appendfsync", "always")
    aof = lambda: sum(os.path.getsize(os.path.join(dp, f))
                      for dp, _, fs in os.walk(s.dir) for f in fs if ".aof" in f)
    before = aof()
    for _ in range(10):
        r.execute_command("LOTTERY.CONFIGURE", "camp", "NOTHING", 1)
    grown = aof() - before
    assert grown < 2000, f"10 CONFIGUREs appended {grown} bytes to the AOF"
    d = D.digest(r, "camp")
    s.restart()
    assert D.digest(s.client(), "camp") == d


def test_configure_replicates_the_same_campaign_as_the_command_made(server_factory):
    m = server_factory()
    rep = server_factory(replicaof=("127.0.0.1", m.port))
    r, rr = m.client(), rep.client()
    H.wait_link_up(rr)
    H.configure(r, "一等奖", "PRIZE", "一等奖", 1, 5, "PRIZE", b"\xff\x00", 2, "INF",
                "NOTHING", 3, "SOLDOUT", "FALLBACK", b"\xff\x00")
    H.configure(r, "一等奖", "PRIZE", "new", 1, 1, "PRIZE", b"\xff\x00", 2, "INF",
                "COOLDOWN", 5, "CLIENTLIMIT", 3, 1000)
    r.copy("一等奖", "copy")
    H.configure(r, "copy", "NOTHING", 9)
    D.wait_acked(r)
    for k in ("一等奖", "copy"):
        assert D.digest(r, k) == D.digest(rr, k)
