"""Operations (docs/operations.md): INFO lottery, keyspace events, ACL recipes,
COMMAND DOCS / COMMAND INFO.

- INFO lottery: the field list (rejections follow the outcomes LOTTERY.STATS reports), the
  generator, and lottery_campaigns through CONFIGURE, COPY, RENAME, DEL, UNLINK, RESTORE,
  expiry, DEBUG RELOAD, SWAPDB, FLUSHALL, and on a replica (full sync, then LOTTERY.APPLY);
  the draw counters once LOTTERY.DRAW reports them;
- keyspace events (class d): received by a real subscriber with `KEd`, `KA`, `Ed`; none with
  other classes; raised on a replica applying the effects;
- the ACL recipes of docs/operations.md: allowed and refused (NOPERM) commands;
- COMMAND DOCS (summary, since, group, argument names) and COMMAND INFO key specs;
- docs/commands.md's generated table against COMMAND DOCS / COMMAND INFO (names, summaries,
  complexity, flags, key spec flags) and the arity it documents against the server's replies.
"""
import re
import time
from pathlib import Path

import pytest
import redis

import lottery_helpers as H

COMMANDS = ["lottery.configure", "lottery.draw", "lottery.drain", "lottery.grant",
            "lottery.restock", "lottery.pause", "lottery.resume", "lottery.ban",
            "lottery.unban", "lottery.user", "lottery.stats", "lottery.transfer",
            "lottery.codes", "lottery.seed", "lottery.debug", "lottery.apply"]


def info_fields(server):
    raw = server.raw()
    try:
        text = raw.call("INFO", "lottery").decode()
    finally:
        raw.close()
    lines = [l for l in text.splitlines() if l and not l.startswith("#")]
    assert text.startswith("# lottery\r\n"), text
    return [tuple(l.split(":", 1)) for l in lines]


def info_dict(server):
    return dict(info_fields(server))


def campaigns(server):
    return int(info_dict(server)["lottery_campaigns"])


def wait_for(pred, timeout=5.0, what="condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def rejection_names(r):
    """The rejection outcomes as LOTTERY.STATS reports them (rejected_<outcome>)."""
    H.configure(r, "probe:names", "PRIZE", "a", 1, 1)
    flat = r.execute_command("LOTTERY.STATS", "probe:names")
    r.delete("probe:names")
    return [k for k in flat[0::2] if isinstance(k, str) and k.startswith("rejected_")]


# --------------------------------------------------------------------------------------------
# INFO


def test_info_section_fields_and_order(server, r):
    fields = [f for f, _ in info_fields(server)]
    rejected = ["lottery_" + n for n in rejection_names(r)]
    assert len(rejected) >= 7
    assert fields == (["lottery_generator", "lottery_campaigns", "lottery_draws", "lottery_wins",
                       "lottery_losses"] + rejected
                      + ["lottery_replays", "lottery_internal_errors"]), fields
    d = info_dict(server)
    assert d["lottery_generator"] == "chacha"
    assert all(d[f] == "0" for f in fields[1:]), d
    # also in INFO modules and INFO everything; not a section of the default INFO
    raw = server.raw()
    try:
        assert b"lottery_campaigns:0" in raw.call("INFO", "modules")
        assert b"# lottery\r\n" in raw.call("INFO", "everything")
        assert b"lottery_campaigns" not in raw.call("INFO")
        assert b"lottery_campaigns" not in raw.call("INFO", "all")
    finally:
        raw.close()


def test_info_generator_xoshiro(server_factory):
    s = server_factory(module_args=("rng", "xoshiro"))
    assert info_dict(s)["lottery_generator"] == "xoshiro"


def test_campaign_count_through_key_operations(server, r):
    H.configure(r, "camp:{a}", "PRIZE", "p", 1, 10, "NOTHING", 1)
    H.configure(r, "camp:{b}", "PRIZE", "p", 1, 10)
    H.configure(r, "camp:{a}", "COOLDOWN", 5)                # a change creates nothing
    assert campaigns(server) == 2
    with pytest.raises(redis.ResponseError):                  # an error creates nothing
        r.execute_command("LOTTERY.CONFIGURE", "camp:{c}", "NOTHING", 1)
    r.set("plain", "x")
    assert campaigns(server) == 2
    assert r.copy("camp:{a}", "camp:{a}2") == 1
    assert campaigns(server) == 3
    assert r.copy("camp:{b}", "camp:{a}2", replace=True) == 1  # replaces (frees) one
    assert campaigns(server) == 3
    r.rename("camp:{a}2", "camp:{z}")
    assert campaigns(server) == 3
    assert r.delete("camp:{z}") == 1
    assert campaigns(server) == 2
    payload = r.dump("camp:{a}")
    r.restore("camp:{r}", 0, payload)
    assert campaigns(server) == 3
    r.restore("camp:{r}", 0, payload, replace=True)
    assert campaigns(server) == 3
    r.restore("camp:{r2}", 0, payload)
    assert r.unlink("camp:{r2}") == 1
    wait_for(lambda: campaigns(server) == 3, what="UNLINK to free the value")
    with pytest.raises(redis.ResponseError):                  # corrupt payload: no value
        r.restore("camp:{bad}", 0, payload[:-12] + b"\x00" * 12)
    assert campaigns(server) == 3
    r.copy("camp:{a}", "camp:{a}1", destination_db=1)         # other databases count too
    assert campaigns(server) == 4
    r.execute_command("SWAPDB", 0, 1)
    assert campaigns(server) == 4
    r.execute_command("SWAPDB", 0, 1)
    raw = server.raw()
    assert raw.call("SELECT", 1) == "OK" and raw.call("MOVE", "camp:{a}1", 2) == 1
    raw.close()
    assert campaigns(server) == 4
    r.pexpire("camp:{r}", 1)
    time.sleep(0.05)
    assert r.exists("camp:{r}") == 0                          # expired on access
    assert campaigns(server) == 3
    r.pexpire("camp:{b}", 1)                                  # expired by the active cycle
    wait_for(lambda: campaigns(server) == 2, what="active expiry")
    assert r.execute_command("DEBUG", "RELOAD") in ("OK", True)
    assert campaigns(server) == 2
    assert r.dbsize() == 2 and r.exists("camp:{a}") == 1      # camp:{a} and plain
    r.flushall()
    # FLUSHALL frees in the background where lazyfree-lazy-user-flush is yes (Valkey's default)
    wait_for(lambda: campaigns(server) == 0, what="FLUSHALL to free the values")


def test_campaign_count_on_a_replica(server_factory):
    master = server_factory()
    m = master.client()
    H.configure(m, "camp:{a}", "PRIZE", "p", 1, 10)
    H.configure(m, "camp:{b}", "PRIZE", "p", 1, 10)
    replica = server_factory(replicaof=("127.0.0.1", master.port))
    rc = replica.client()
    H.wait_link_up(rc)
    wait_for(lambda: campaigns(replica) == 2, what="the full sync")
    H.configure(m, "camp:{c}", "PRIZE", "p", 1, 10)           # LOTTERY.APPLY creates it
    m.copy("camp:{a}", "camp:{d}")
    m.execute_command("WAIT", 1, 5000)
    wait_for(lambda: campaigns(replica) == 4, what="APPLY and COPY on the replica")
    m.delete("camp:{a}")
    m.execute_command("WAIT", 1, 5000)
    wait_for(lambda: campaigns(replica) == 3, what="DEL on the replica")
    assert campaigns(master) == 3
    # a resync replaces the replica's data: it frees what it had, loads the master's
    rc.execute_command("REPLICAOF", "NO", "ONE")
    H.configure(rc, "camp:{local}", "PRIZE", "p", 1, 1)
    assert campaigns(replica) == 4
    rc.execute_command("REPLICAOF", "127.0.0.1", master.port)
    H.wait_link_up(rc)
    wait_for(lambda: campaigns(replica) == 3, what="the resync")
    m.flushall()
    m.execute_command("WAIT", 1, 5000)
    wait_for(lambda: campaigns(replica) == 0, what="FLUSHALL on the replica")
    wait_for(lambda: campaigns(master) == 0, what="FLUSHALL (lazily freed on Valkey)")


def _draw_counters_wired(server, r):
    """True once LOTTERY.DRAW reports its outcomes to INFO (metrics::record in draw.rs)."""
    H.configure(r, "probe:wired", "PRIZE", "p", 0, 1, "NOTHING", 1)
    before = int(info_dict(server)["lottery_draws"])
    H.draw(r, "probe:wired", "u")
    wired = int(info_dict(server)["lottery_draws"]) == before + 1
    r.delete("probe:wired")
    return wired


def test_info_draw_counters(server, r):
    if not _draw_counters_wired(server, r):
        pytest.skip("LOTTERY.DRAW does not call metrics::record yet (draw.rs wiring pending)")
    r.flushall()
    base = {k: int(v) for k, v in info_fields(server) if k != "lottery_generator"}
    H.pin(r, H.T0)
    H.configure(r, "c", "PRIZE", "gold", 1, 1, "NOTHING", 0, "SOLDOUT", "LOSE",
                "COOLDOWN", 1000, "DAILY", 3, "MAXWINS", "INF")
    assert H.draw(r, "c", "u1", reqid="r1")[0] == "WIN"
    assert H.draw(r, "c", "u1", reqid="r1")[0] == "WIN"        # replay
    assert H.draw(r, "c", "u1")[0] == "COOLDOWN"
    assert H.draw(r, "c", "u2")[0] == "LOSE"                    # sold out, SOLDOUT LOSE
    r.execute_command("LOTTERY.PAUSE", "c")
    assert H.draw(r, "c", "u3")[0] == "PAUSED"
    r.execute_command("LOTTERY.RESUME", "c")
    r.execute_command("LOTTERY.BAN", "c", "u4", 1000)
    assert H.draw(r, "c", "u4")[0] == "BANNED"
    d = {k: int(v) for k, v in info_fields(server) if k != "lottery_generator"}
    delta = {k: d[k] - base[k] for k in d}
    assert delta.pop("lottery_campaigns") == 1
    expected = {k: 0 for k in delta}
    expected.update({"lottery_draws": 2, "lottery_wins": 1, "lottery_losses": 1,
                     "lottery_replays": 1, "lottery_rejected_cooldown": 1,
                     "lottery_rejected_paused": 1, "lottery_rejected_banned": 1})
    assert delta == expected
    # the same as the campaign's own counters
    st = H.stats(r, "c")
    assert (st["draws"], st["wins"], st["losses"], st["replays"]) == (2, 1, 1, 1)


# --------------------------------------------------------------------------------------------
# keyspace events


class Subscriber:
    def __init__(self, server, patterns=("__keyspace@0__:*", "__keyevent@0__:lottery.*")):
        self.client = server.client()
        self.ps = self.client.pubsub(ignore_subscribe_messages=True)
        self.ps.psubscribe(*patterns)
        # wait for the subscriptions to be active
        deadline = time.time() + 5
        while self.ps.subscribed is False or len(self.ps.patterns) < len(patterns):
            self.ps.get_message(timeout=0.05)
            if time.time() > deadline:
                raise AssertionError("psubscribe not confirmed")
        self.ps.get_message(timeout=0.1)

    def messages(self, settle=0.3):
        """Every message received until `settle` seconds pass without one: (channel, data)."""
        out = []
        deadline = time.time() + settle
        while time.time() < deadline:
            m = self.ps.get_message(timeout=0.05)
            if m and m["type"] == "pmessage":
                out.append((m["channel"], m["data"]))
                deadline = time.time() + settle
        return out

    def close(self):
        self.ps.close()


def lottery_events(msgs, key):
    """The lottery.* events on `key`, as seen on the keyspace channel."""
    return [d for ch, d in msgs if ch == f"__keyspace@0__:{key}" and d.startswith("lottery.")]


def keyevents(msgs):
    return [(ch.split(":", 1)[1], d) for ch, d in msgs if ch.startswith("__keyevent@0__:")]


def run_admin_script(r, key):
    """The admin commands, each with the events it must raise (on `key`)."""
    H.configure(r, key, "PRIZE", "gold", 1, 3, "PRIZE", "pts", 1, "INF")
    yield ["lottery.configure"]
    H.configure(r, key, "COOLDOWN", 10)
    yield ["lottery.configure"]
    assert r.execute_command("LOTTERY.RESTOCK", key, "gold", 2) == 5
    yield ["lottery.restock"]
    assert r.execute_command("LOTTERY.RESTOCK", key, "gold", 0) == 5
    yield ["lottery.restock"]
    assert r.execute_command("LOTTERY.RESTOCK", key, "gold", -5) == 0
    yield ["lottery.restock", "lottery.soldout"]
    assert r.execute_command("LOTTERY.RESTOCK", key, "gold", -0) == 0
    yield ["lottery.restock"]                                   # already 0: no second soldout
    assert r.execute_command("LOTTERY.PAUSE", key) == "OK"
    yield ["lottery.pause"]
    assert r.execute_command("LOTTERY.RESUME", key) == "OK"
    yield ["lottery.resume"]
    assert r.execute_command("LOTTERY.TRANSFER", key, "IN", "t1", "gold", 4, "peer") == 1
    yield ["lottery.restock"]
    assert r.execute_command("LOTTERY.TRANSFER", key, "IN", "t1", "gold", 4, "peer") == 0
    yield []                                                    # a repeat changes nothing
    assert r.execute_command("LOTTERY.TRANSFER", key, "IN", "t0", "gold", 0, "peer") == 1
    yield []                                                    # nothing moved
    assert r.execute_command("LOTTERY.TRANSFER", key, "OUT", "t2", "gold", 9, "peer") == 4
    yield ["lottery.restock", "lottery.soldout"]
    assert r.execute_command("LOTTERY.TRANSFER", key, "OUT", "t3", "gold", 9, "peer") == 0
    yield []
    assert r.execute_command("LOTTERY.TRANSFER", key, "SETTLE", "t2") == 1
    yield []
    r.execute_command("LOTTERY.GRANT", key, "u", 1)
    r.execute_command("LOTTERY.BAN", key, "u", 10)
    r.execute_command("LOTTERY.UNBAN", key, "u")
    r.execute_command("LOTTERY.STATS", key)
    r.execute_command("LOTTERY.DRAIN", key)
    yield []
    with pytest.raises(redis.ResponseError):
        r.execute_command("LOTTERY.RESTOCK", key, "gold", -1)   # an error raises nothing
    yield []


def test_events_with_Kd_and_Ed(server, r):
    r.config_set("notify-keyspace-events", "KEd")
    sub = Subscriber(server)
    try:
        key = "camp:{ev}"
        for expected in run_admin_script(r, key):
            msgs = sub.messages()
            assert lottery_events(msgs, key) == expected, (expected, msgs)
            assert keyevents(msgs) == [(e, key) for e in expected], msgs
    finally:
        sub.close()


@pytest.mark.parametrize("flags,keyspace,keyevent", [
    ("KA", True, False), ("Ed", False, True), ("Kd", True, False), ("AKE", True, True),
    ("", False, False), ("KEg$lshzxet", False, False), ("KEm", False, False)])
def test_event_flags(server, r, flags, keyspace, keyevent):
    r.config_set("notify-keyspace-events", flags)
    sub = Subscriber(server)
    try:
        r.execute_command("LOTTERY.CONFIGURE", "camp:{f}", "PRIZE", "a", 1, 1)
        msgs = sub.messages()
        assert bool(lottery_events(msgs, "camp:{f}")) == keyspace, msgs
        assert bool([e for e in keyevents(msgs) if e[0] == "lottery.configure"]) == keyevent, msgs
    finally:
        sub.close()


def test_soldout_through_a_draw(server, r):
    r.config_set("notify-keyspace-events", "KEd")
    if not _draw_counters_wired(server, r):
        pytest.skip("LOTTERY.DRAW does not call notify::soldout_if_empty yet (draw.rs wiring pending)")
    sub = Subscriber(server)
    try:
        H.configure(r, "c", "PRIZE", "gold", 1, 2, "NOTHING", 0, "SOLDOUT", "LOSE",
                    "MAXWINS", "INF")
        sub.messages()
        assert H.draw(r, "c", "u1")[0] == "WIN"
        assert lottery_events(sub.messages(), "c") == []
        assert H.draw(r, "c", "u2", reqid="x")[0] == "WIN"
        assert lottery_events(sub.messages(), "c") == ["lottery.soldout"]
        assert H.draw(r, "c", "u2", reqid="x")[0] == "WIN"     # a replay sells nothing
        assert H.draw(r, "c", "u3")[0] == "LOSE"
        assert lottery_events(sub.messages(), "c") == []
    finally:
        sub.close()


def test_events_on_a_replica(master_replica):
    master, replica = master_replica
    m, rc = master.client(), replica.client()
    rc.config_set("notify-keyspace-events", "KEd")
    m.config_set("notify-keyspace-events", "")               # the master's setting is its own
    sub = Subscriber(replica)
    try:
        key = "camp:{rep}"
        for expected in run_admin_script(m, key):
            m.execute_command("WAIT", 1, 5000)
            msgs = sub.messages()
            assert lottery_events(msgs, key) == expected, (expected, msgs)
    finally:
        sub.close()


def test_no_events_while_loading_the_aof(server_factory):
    s = server_factory(appendonly=True)
    r = s.client()
    H.configure(r, "camp:{aof}", "PRIZE", "a", 1, 1)
    r.execute_command("LOTTERY.PAUSE", "camp:{aof}")
    s.restart()
    r = s.client()
    assert H.stats(r, "camp:{aof}")["state"] == "paused"
    assert campaigns(s) == 1


# --------------------------------------------------------------------------------------------
# ACL recipes (docs/operations.md)

APP_RULES = ["on", ">app-pw", "resetkeys", "~camp:*", "resetchannels", "-@all",
             "+lottery.draw", "+lottery.user", "+lottery.grant"]
OPS_RULES = ["on", ">ops-pw", "resetkeys", "~camp:*", "resetchannels", "-@all",
             "+lottery.configure", "+lottery.restock", "+lottery.codes", "+lottery.pause",
             "+lottery.resume",
             "+lottery.ban", "+lottery.unban", "+lottery.user", "+lottery.stats",
             "+lottery.transfer", "+lottery.drain", "+info"]
WRITER_RULES = ["on", ">writer-pw", "resetkeys", "~camp:*", "resetchannels", "-@all",
                "+lottery.drain", "+lottery.stats", "+xreadgroup", "+xack", "+xautoclaim",
                "+xgroup|create", "+cluster|slots", "+ping",
                "(~lottery-writer:* +hset +pexpire)"]
MONITOR_RULES = ["on", ">mon-pw", "resetkeys", "%R~camp:*", "resetchannels", "-@all",
                 "+lottery.stats", "+lottery.user", "+lottery.draw", "+info"]


def _as(server, user, pw):
    c = server.client()
    c.execute_command("AUTH", user, pw)
    return c


def _noperm(c, *args):
    with pytest.raises(redis.exceptions.NoPermissionError) as e:
        c.execute_command(*args)
    return str(e.value)


def test_acl_recipes(server, r):
    r.execute_command("ACL", "SETUSER", "app", *APP_RULES)
    r.execute_command("ACL", "SETUSER", "ops", *OPS_RULES)
    r.execute_command("ACL", "SETUSER", "writer", *WRITER_RULES)
    r.execute_command("ACL", "SETUSER", "mon", *MONITOR_RULES)
    H.pin(r, H.T0)
    key = "camp:{spring}"
    stream = H.default_stream(key)
    assert stream == "camp:{spring}:wins"
    ops = _as(server, "ops", "ops-pw")
    app = _as(server, "app", "app-pw")
    writer = _as(server, "writer", "writer-pw")
    mon = _as(server, "mon", "mon-pw")

    # operators run the campaign
    assert ops.execute_command("LOTTERY.CONFIGURE", key, "PRIZE", "gold", 1, 5,
                               "NOTHING", 0, "MAXWINS", "INF") == "OK"
    assert ops.execute_command("LOTTERY.RESTOCK", key, "gold", 1) == 6
    assert ops.execute_command("LOTTERY.PAUSE", key) == "OK"
    assert ops.execute_command("LOTTERY.RESUME", key) == "OK"
    assert ops.execute_command("LOTTERY.BAN", key, "eve", 1000) == "OK"
    assert ops.execute_command("LOTTERY.UNBAN", key, "eve") == 1
    assert H.stats(ops, key)["prizes"] == [["gold", 1, 6, 0]]
    assert ops.execute_command("LOTTERY.TRANSFER", key, "LIST") == []
    assert "lottery_campaigns" in ops.info("lottery")
    # refused for the command, then for the key: what the server's ACL LOG records (its
    # reply wording differs between servers: "this user ..." on Redis, "User ops ..." on Valkey)
    r.execute_command("ACL", "LOG", "RESET")
    draws = H.stats(ops, key)["draws"]
    _noperm(ops, "LOTTERY.DRAW", key, "alice")
    _noperm(ops, "LOTTERY.CONFIGURE", "other", "PRIZE", "a", 1, 1)
    log = [(e["username"], e["reason"], e["object"])
           for e in reversed(r.acl_log())]
    assert log == [("ops", "command", "lottery.draw"), ("ops", "key", "other")], log
    assert H.stats(ops, key)["draws"] == draws and r.exists("other") == 0
    _noperm(ops, "LOTTERY.DEBUG", "CLOCK", "REAL")
    _noperm(ops, "DEL", key)

    # the application draws, reads users, grants
    rep = H.draw(app, key, "alice")
    assert rep[0] == "WIN"
    assert H.user(app, key, "alice")["wins"] == 1
    assert app.execute_command("LOTTERY.GRANT", key, "alice", 2) == 2
    for args in (["LOTTERY.CONFIGURE", key, "COOLDOWN", 0], ["LOTTERY.RESTOCK", key, "gold", 1],
                 ["LOTTERY.PAUSE", key], ["LOTTERY.RESUME", key], ["LOTTERY.STATS", key],
                 ["LOTTERY.DRAIN", key], ["LOTTERY.BAN", key, "x", 1],
                 ["LOTTERY.UNBAN", key, "x"], ["LOTTERY.TRANSFER", key, "LIST"],
                 ["LOTTERY.DEBUG", "CLOCK", "REAL"], ["LOTTERY.APPLY", key, "x"],
                 ["DEL", key], ["XRANGE", stream, "-", "+"], ["KEYS", "*"]):
        _noperm(app, *args)
    _noperm(app, "LOTTERY.DRAW", "other", "alice")                 # key outside camp:*

    # the writer reads the wins stream and drains
    assert writer.execute_command("XGROUP", "CREATE", stream, "writers", "0") == "OK"
    got = writer.execute_command("XREADGROUP", "GROUP", "writers", "w1", "COUNT", 10,
                                 "STREAMS", stream, ">")
    assert got and got[0][1][0][0] == rep[2]
    assert writer.execute_command("XACK", stream, "writers", rep[2]) == 1
    writer.execute_command("XAUTOCLAIM", stream, "writers", "w1", 0, "0-0")
    assert H.drain_dict(writer, key) == (1, {"gold": 1})
    H.stats(writer, key)
    _noperm(writer, "LOTTERY.DRAW", key, "alice")
    _noperm(writer, "LOTTERY.CONFIGURE", key, "COOLDOWN", 0)
    _noperm(writer, "XADD", stream, "*", "user", "forged")
    _noperm(writer, "XGROUP", "DESTROY", stream, "writers")
    # its status hash, and only there (the selector)
    assert writer.execute_command("HSET", "lottery-writer:writers:w1", "rows_total", "1") == 1
    assert writer.execute_command("PEXPIRE", "lottery-writer:writers:w1", 15000) == 1
    _noperm(writer, "HSET", "camp:{spring}:status", "f", "v")
    _noperm(writer, "PEXPIRE", key, 1)
    _noperm(writer, "XADD", "lottery-writer:writers:w1", "*", "f", "v")
    _noperm(writer, "DEL", "lottery-writer:writers:w1")

    # a read-only user (key spec flags: STATS/USER read the key, DRAW writes it)
    assert H.stats(mon, key)["wins"] == 1
    assert H.user(mon, key, "alice")["wins"] == 1
    _noperm(mon, "LOTTERY.DRAW", key, "alice")

    # LOTTERY.APPLY: refused by ACL for everyone it is denied to, and by the module otherwise
    for c in (app, ops, writer, mon):
        _noperm(c, "LOTTERY.APPLY", key, "x")
    raw = server.raw()
    try:
        assert raw.call("LOTTERY.APPLY", key, "x") == \
            "ERR LOTTERY.APPLY is internal (replication and AOF only)"
    finally:
        raw.close()


def test_acl_cache_user_receives_events(server, r):
    r.config_set("notify-keyspace-events", "KEd")
    r.execute_command("ACL", "SETUSER", "cache", "on", ">cache-pw", "resetkeys", "~camp:*",
                      "resetchannels", "&__keyevent@0__:lottery.*", "&__keyspace@0__:camp:*",
                      "-@all", "+lottery.stats", "+psubscribe", "+ping")

    class CacheSub(Subscriber):
        def __init__(self, server, patterns):
            self.client = server.client(username="cache", password="cache-pw")
            self.ps = self.client.pubsub(ignore_subscribe_messages=True)
            self.ps.psubscribe(*patterns)
            for _ in range(20):
                self.ps.get_message(timeout=0.05)

    sub = CacheSub(server, ["__keyevent@0__:lottery.*", "__keyspace@0__:camp:*"])
    try:
        H.configure(r, "camp:{c}", "PRIZE", "a", 1, 1)
        msgs = sub.messages()
        assert ("__keyevent@0__:lottery.configure", "camp:{c}") in msgs, msgs
        assert ("__keyspace@0__:camp:{c}", "lottery.configure") in msgs, msgs
    finally:
        sub.close()
    raw = server.raw()
    try:
        assert raw.call("AUTH", "cache", "cache-pw") == "OK"
        rep = raw.call("PSUBSCRIBE", "__keyevent@0__:*")         # not an allowed pattern
        assert isinstance(rep, H.Err) and rep.startswith("NOPERM"), rep
    finally:
        raw.close()


def test_acl_recipe_does_not_stop_replication(server_factory):
    master = server_factory()
    m = master.client()
    for s in (master,):
        s.client().execute_command("ACL", "SETUSER", "default", "-lottery.apply")
    replica = server_factory(replicaof=("127.0.0.1", master.port))
    rc = replica.client()
    H.wait_link_up(rc)
    rc.execute_command("ACL", "SETUSER", "default", "-lottery.apply")
    H.configure(m, "camp:{x}", "PRIZE", "a", 1, 1)
    m.execute_command("LOTTERY.PAUSE", "camp:{x}")
    m.execute_command("WAIT", 1, 5000)
    assert H.stats(rc, "camp:{x}")["state"] == "paused"
    _noperm(m, "LOTTERY.APPLY", "camp:{x}", "x")


# --------------------------------------------------------------------------------------------
# COMMAND DOCS / COMMAND INFO

EXPECTED_ARGS = {
    "lottery.configure": ["key", "prize", "nothing", "cooldown", "daily", "maxwins", "dayoffset",
                          "window", "soldout", "stream", "idempotency", "rate", "admit",
                          "clientlimit", "penalty", "pace", "guarantee", "total", "period",
                          "tier", "verifiable"],
    "lottery.draw": ["key", "user", "request-id", "client-id", "tier"],
    "lottery.drain": ["key", "last"],
    "lottery.grant": ["key", "user", "n", "cap"],
    "lottery.restock": ["key", "prize", "delta"],
    "lottery.pause": ["key"],
    "lottery.resume": ["key"],
    "lottery.ban": ["key", "who", "ms"],
    "lottery.unban": ["key", "who"],
    "lottery.user": ["key", "user"],
    "lottery.stats": ["key"],
    "lottery.transfer": ["key", "step"],
    "lottery.codes": ["key", "prize", "operation"],
    "lottery.seed": ["key", "action"],
    "lottery.debug": ["subcommand"],
    "lottery.apply": ["key", "blob", "user", "request-id"],
}

READONLY = {"lottery.user", "lottery.stats"}


def _d(flat):
    return dict(zip(flat[0::2], flat[1::2]))


def test_command_docs(server, r):
    raw = server.raw()
    try:
        docs = raw.call("COMMAND", "DOCS", *COMMANDS)
    finally:
        raw.close()
    docs = {k.decode(): _d(v) for k, v in _d(docs).items()}
    assert set(docs) == set(COMMANDS)
    for name in COMMANDS:
        d = docs[name]
        assert d[b"summary"] and len(d[b"summary"]) > 10, (name, d)
        assert d[b"since"] == b"1.0.0", name
        assert d[b"group"] == b"module", name
        assert d[b"module"] == b"lottery", name
        assert d[b"complexity"].startswith(b"O("), name
        args = [_d(a) for a in d[b"arguments"]]
        assert [a[b"name"].decode() for a in args] == EXPECTED_ARGS[name], name
        if name != "lottery.debug":
            assert args[0][b"type"] == b"key" and args[0][b"key_spec_index"] == 0, name
    conf = {a[b"name"]: a for a in map(_d, docs["lottery.configure"][b"arguments"])}
    prize = conf[b"prize"]
    assert prize[b"token"] == b"PRIZE" and set(prize[b"flags"]) == {"optional", "multiple"}
    assert [_d(a)[b"name"] for a in prize[b"arguments"]] == [b"id", b"weight", b"stock", b"after"]
    assert [_d(a)[b"token"] for a in conf[b"soldout"][b"arguments"]] == \
        [b"LOSE", b"REDRAW", b"FALLBACK"]
    draw = [_d(a) for a in docs["lottery.draw"][b"arguments"]]
    assert draw[2][b"token"] == b"REQID" and draw[2][b"flags"] == ["optional"]
    steps = [_d(a) for a in _d(docs["lottery.transfer"][b"arguments"][1])[b"arguments"]]
    assert [s[b"token"] for s in steps] == [b"OUT", b"IN", b"SETTLE", b"CODES", b"LIST"]
    assert [_d(a)[b"name"] for a in steps[0][b"arguments"]] == [b"id", b"prize", b"count",
                                                                 b"peer"]
    into = [_d(a) for a in steps[1][b"arguments"]]
    assert [a[b"name"] for a in into] == [b"id", b"prize", b"count", b"peer", b"codes"]
    assert into[4][b"token"] == b"CODES" and into[4][b"flags"] == ["optional"]
    assert [_d(a)[b"name"] for a in steps[3][b"arguments"]] == [b"id"]


def test_command_info_key_specs(server, r):
    info = r.execute_command("COMMAND", "INFO", *COMMANDS)
    for name in COMMANDS:
        i = info[name]
        assert "module" in i["flags"], name
        if name == "lottery.debug":
            assert (i["first_key_pos"], i["last_key_pos"], i["step_count"]) == (0, 0, 0)
            assert i["key_specifications"] == []
            continue
        assert (i["first_key_pos"], i["last_key_pos"], i["step_count"]) == (1, 1, 1), name
        assert i["arity"] == -1, name                  # the commands check their own arity
        specs = i["key_specifications"]
        assert len(specs) == 1, name
        spec = _d(specs[0])
        assert spec["begin_search"] == ["type", "index", "spec", ["index", 1]], name
        assert spec["find_keys"] == ["type", "range", "spec",
                                     ["lastkey", 0, "keystep", 1, "limit", 0]], name
        flags = set(spec["flags"])
        if name in READONLY:
            assert flags == {"RO", "access"}, (name, flags)
        else:
            assert "RW" in flags and "update" in flags, (name, flags)
    raw = server.raw()
    try:
        for name in COMMANDS[:-2] + ["lottery.apply"]:
            assert raw.call("COMMAND", "GETKEYS", name, "camp:{k}", "x", "1", "1") == \
                [b"camp:{k}"], name
        # arity errors are still the module's own
        assert raw.call("LOTTERY.STATS") == \
            "ERR wrong number of arguments for 'lottery.stats' command"
    finally:
        raw.close()


# --------------------------------------------------------------------------------------------
# docs/commands.md's generated table agrees with the live server

DOCS_MD = Path(__file__).resolve().parent.parent / "docs" / "commands.md"


def docs_table():
    """The rows of docs/commands.md's generated table, as dicts keyed by the header."""
    text = DOCS_MD.read_text()
    body = text.split("<!-- commands:begin -->", 1)[1].split("<!-- commands:end -->", 1)[0]
    lines = [l for l in body.strip().splitlines() if l.startswith("|")]

    def cells(line):
        parts = re.split(r"(?<!\\)\|", line.strip())[1:-1]
        return [p.strip().replace("\\|", "|") for p in parts]

    header = cells(lines[0])
    return [dict(zip(header, cells(l))) for l in lines[2:]]


def test_docs_table_matches_the_server(server, r):
    rows = {row["command"].lower(): row for row in docs_table()}
    assert set(rows) == set(COMMANDS)
    raw = server.raw()
    try:
        docs = raw.call("COMMAND", "DOCS", *COMMANDS)
    finally:
        raw.close()
    docs = {k.decode(): _d(v) for k, v in _d(docs).items()}
    info = r.execute_command("COMMAND", "INFO", *COMMANDS)
    for name, row in rows.items():
        d = docs[name]
        assert d[b"summary"].decode() == row["summary"], name
        assert d[b"complexity"].decode() == row["complexity"], name
        i = info[name]
        # COMMAND INFO spells deny-oom "denyoom" and adds "module".
        flags = {"denyoom" if f == "deny-oom" else f for f in row["flags"].split()}
        assert set(i["flags"]) == flags | {"module"}, name
        if row["key"] == "-":
            assert i["key_specifications"] == [], name
        else:
            spec = _d(i["key_specifications"][0])
            assert set(spec["flags"]) == set(row["key"].split()), name
        # The arity: Redis keeps -1 (the command checks its own); the documented one holds.
        assert i["arity"] == -1, name
        arity = int(row["arity"])
        if name == "lottery.apply":
            continue  # refused from clients before its arguments are looked at
        words = abs(arity)
        wrong = [words - 1] + ([words + 1] if arity > 0 else [])
        for n in wrong:
            args = ["camp:{k}"] + ["1"] * (n - 2) if n >= 2 else []
            with pytest.raises(redis.ResponseError) as e:
                r.execute_command(name, *args)
            assert str(e.value) == f"wrong number of arguments for '{name}' command", (name, n)
        # The minimum number of words gets past the arity check.
        if name == "lottery.debug":
            continue  # two words: PANIC only (which would panic)
        args = ["camp:{k}"] + ["1"] * (words - 2)
        try:
            r.execute_command(name, *args)
        except redis.ResponseError as e:
            assert "wrong number of arguments" not in str(e), (name, args)
