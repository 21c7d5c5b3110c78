"""The module in a real Redis Cluster (3 masters + 3 replicas, module on every node).

- COMMAND INFO / COMMAND GETKEYS: the key is argument 1 of every lottery.* command (LOTTERY.DEBUG
  has none), so cluster-aware clients route every command by its key;
- every command through redis-py's RedisCluster on campaigns on all 3 masters, and through
  `redis-cli -c`; the campaign and its wins stream live on the master owning the key's slot;
- a command sent to a node that does not own the slot gets `MOVED` before the module runs;
  replicas refuse writes (`MOVED` to the master) and serve LOTTERY.STATS/USER after READONLY;
- CROSSSLOT: CONFIGURE ... STREAM in another slot (the module), MULTI and EVAL across slots
  (Redis);
- CLUSTER FAILOVER of a master under load: every WIN a client saw is in the new master's stream;
- resharding a live campaign's slot (redis-cli --cluster reshard, and MIGRATE by hand) keeps its
  state and stream.
"""
import subprocess
import time

import pytest
import redis

import cluster_helpers as C
import durability_helpers as D
import lottery_helpers as H
from cluster_helpers import cluster_factory  # noqa: F401 (fixture)

cl = C.module_cluster_fixture()

EXPECTED_COMMANDS = {"lottery.configure", "lottery.draw", "lottery.drain", "lottery.grant",
                     "lottery.restock", "lottery.pause", "lottery.resume", "lottery.ban",
                     "lottery.unban", "lottery.user", "lottery.stats", "lottery.debug",
                     "lottery.apply", "lottery.transfer"}

# plausible arguments per command, for COMMAND GETKEYS (the key goes first)
GETKEYS_ARGS = {
    "lottery.configure": ["PRIZE", "a", "1", "1"],
    "lottery.draw": ["u", "REQID", "r"],
    "lottery.drain": ["LAST"],
    "lottery.grant": ["u", "1"],
    "lottery.restock": ["a", "1"],
    "lottery.pause": [],
    "lottery.resume": [],
    "lottery.ban": ["u", "1000"],
    "lottery.unban": ["u"],
    "lottery.user": ["u"],
    "lottery.stats": [],
    "lottery.apply": ["blob"],
    "lottery.transfer": ["LIST"],
}


def _s(v):
    return v.decode() if isinstance(v, bytes) else v


def lottery_commands(server):
    raw = server.raw()
    try:
        return sorted(_s(n) for n in raw.call("COMMAND", "LIST", "FILTERBY", "MODULE",
                                              "lottery"))
    finally:
        raw.close()


# --------------------------------------------------------------------------------------------
# key positions


def test_key_slot_helper_matches_cluster_keyslot(cl):
    r = cl.nodes[0].client()
    for k in ["camp:{spring}", "plain", "a{}b", "{x}", "{}", "x{y}z{w}", "{NAME.0}",
              "{NAME.0.3}", "shop:{spring}:wins", "\u00e9t\u00e9"]:
        assert C.key_slot(k) == H.key_slot(k) == r.execute_command("CLUSTER", "KEYSLOT", k), k


def test_command_info_and_getkeys(cl):
    for node in cl.nodes:                      # the module registers the same on every node
        r = node.client()
        raw = node.raw()
        names = lottery_commands(node)
        assert EXPECTED_COMMANDS <= set(names), set(EXPECTED_COMMANDS) - set(names)
        info = r.execute_command("COMMAND", "INFO", *names)
        for name in names:
            i = info[name]
            if name == "lottery.debug":
                assert (i["first_key_pos"], i["last_key_pos"], i["step_count"]) == (0, 0, 0)
                assert i["key_specifications"] == []
                assert raw.call("COMMAND", "GETKEYS", "LOTTERY.DEBUG", "CLOCK", "REAL") == \
                    "ERR The command has no key arguments"
                continue
            assert (i["first_key_pos"], i["last_key_pos"], i["step_count"]) == (1, 1, 1), i
            specs = i["key_specifications"]
            assert len(specs) == 1, (name, specs)
            spec = dict(zip(specs[0][0::2], specs[0][1::2]))
            assert spec["begin_search"] == ["type", "index", "spec", ["index", 1]], (name, spec)
            assert spec["find_keys"][1] == "range" and spec["find_keys"][3][:2] == ["lastkey", 0]
            assert "module" in i["flags"]
            write = name not in ("lottery.user", "lottery.stats")
            assert ("write" in i["flags"]) == write, (name, i["flags"])
            assert ("readonly" in i["flags"]) == (not write), (name, i["flags"])
            args = GETKEYS_ARGS.get(name, ["x"])
            assert raw.call("COMMAND", "GETKEYS", name, "camp:{k}", *args) == \
                [b"camp:{k}"], name
    # redis-py's cluster client finds the same slot for every command
    rc = cl.client()
    try:
        for name, args in GETKEYS_ARGS.items():
            assert rc.determine_slot(name.upper(), "camp:{k}", *args) == C.key_slot("camp:{k}")
    finally:
        rc.close()


# --------------------------------------------------------------------------------------------
# every command, every master


def test_every_command_through_redis_cluster_on_every_master(cl):
    rc = cl.client()
    masters = cl.masters()
    assert len(masters) == 3
    keys = []
    try:
        for mi, m in enumerate(masters):
            k = cl.key_on(m, fmt="every:{%s}", prefix=f"m{mi}-")
            keys.append((k, m))
            st = H.default_stream(k)
            x = lambda *a: rc.execute_command(*a)  # noqa: E731
            assert x("LOTTERY.CONFIGURE", k, "PRIZE", "gold", 1, 2, "PRIZE", "pts", 1, "INF",
                     "DAILY", 10, "MAXWINS", "INF") == "OK"
            assert x("LOTTERY.CONFIGURE", k, "COOLDOWN", 0) == "OK"
            win = x("LOTTERY.DRAW", k, "alice", "REQID", "r1")
            assert win[0] == "WIN" and win[1] in ("gold", "pts") and win[3] == 9, win
            assert x("LOTTERY.DRAW", k, "alice", "REQID", "r1") == win         # replay
            assert x("LOTTERY.GRANT", k, "bob", 3) == 3
            assert x("LOTTERY.RESTOCK", k, "gold", 5) == (7 if win[1] == "pts" else 6)
            assert x("LOTTERY.BAN", k, "bob", 60000) == "OK"
            assert x("LOTTERY.DRAW", k, "bob")[0] == "BANNED"
            assert x("LOTTERY.UNBAN", k, "bob") == 1
            assert x("LOTTERY.PAUSE", k) == "OK"
            assert x("LOTTERY.DRAW", k, "bob")[0] == "PAUSED"
            assert x("LOTTERY.RESUME", k) == "OK"
            assert x("LOTTERY.DRAW", k, "bob")[0] == "WIN"
            u = H.user(rc, k, "alice")
            assert u["wins"] == 1 and u["draws_today"] == 1
            s = H.stats(rc, k)
            assert (s["draws"], s["wins"], s["replays"], s["stream"]) == (2, 2, 1, st)
            seq, sold = H.drain_dict(rc, k)
            assert seq == 1 and sum(sold.values()) == 2
            assert H.drain_dict(rc, k, last=True) == (1, sold)
            if "lottery.transfer" in lottery_commands(m):
                assert x("LOTTERY.TRANSFER", k, "OUT", "t1", "gold", 2, "peer") == 2
                assert x("LOTTERY.TRANSFER", k, "SETTLE", "t1") == 1
                assert x("LOTTERY.TRANSFER", k, "IN", "t2", "gold", 2, "peer") == 1
                assert len(x("LOTTERY.TRANSFER", k, "LIST")) == 2
            entries = rc.xrange(st)
            assert [e[0] for e in entries][:1] == [win[2]]
            assert len(entries) == 2 and entries[0][1]["reqid"] == "r1"
        # each campaign and its stream really live on (only) the master that owns the slot
        for k, m in keys:
            rm = m.raw()
            assert rm.call("EXISTS", k, H.default_stream(k)) == 2
            assert cl.master_of_key(k).port == m.port
            rm.close()
            for other in masters:
                if other.port != m.port:
                    assert _s(other.raw().call("EXISTS", k)).startswith("MOVED")
    finally:
        rc.close()


def test_redis_cli_follows_redirects(cl):
    masters = cl.masters()
    k = cl.key_on(masters[2], fmt="cli:{%s}")
    other = cl.non_owner_of_key(k)

    def cli(*a):
        p = cl.redis_cli(*a, port=other.port)
        assert p.returncode == 0, p
        return p.stdout.splitlines()

    assert cli("LOTTERY.CONFIGURE", k, "PRIZE", "p", 1, 5, "NOTHING", 0) == ["OK"]
    out = cli("LOTTERY.DRAW", k, "carol", "REQID", "x")
    assert out[0] == "WIN" and out[1] == "p" and H.WIN_ID_RE.match(out[2]), out
    assert cli("LOTTERY.DRAW", k, "carol", "REQID", "x") == out
    st = cli("LOTTERY.STATS", k)
    assert st[st.index("wins") + 1] == "1" and st[st.index("replays") + 1] == "1"
    us = cli("LOTTERY.USER", k, "carol")
    assert us[us.index("wins") + 1] == "1"
    assert cli("XLEN", H.default_stream(k)) == ["1"]
    assert cli("LOTTERY.RESTOCK", k, "p", -4) == ["0"]
    # the owner really has it, the node redis-cli was pointed at does not
    assert masters[2].raw().call("XLEN", H.default_stream(k)) == 1


def _cmdstat(r, name):
    d = r.info("commandstats").get(f"cmdstat_{name}", {})
    return d.get("calls", 0), d.get("rejected_calls", 0)


def test_wrong_node_gets_moved_before_the_module_runs(cl):
    masters = cl.masters()
    k = cl.key_on(masters[0], fmt="moved:{%s}")
    owner, other = masters[0], cl.non_owner_of_key(k)
    slot = C.key_slot(k)
    raw = other.raw()
    ro = other.client()
    before = {c: _cmdstat(ro, c) for c in ("lottery.draw", "lottery.configure")}
    moved = f"MOVED {slot} 127.0.0.1:{owner.port}"
    # valid and invalid arguments alike: the redirect comes first, the module never sees them
    assert raw.call("LOTTERY.CONFIGURE", k, "PRIZE", "a", 1, 1) == moved
    assert raw.call("LOTTERY.CONFIGURE", k, "BOGUS") == moved
    assert raw.call("LOTTERY.DRAW", k, "u1") == moved
    assert raw.call("LOTTERY.DRAW", k) == moved                 # the module would say arity
    assert raw.call("LOTTERY.DRAW", k, "u", "REQID") == moved
    assert raw.call("LOTTERY.STATS", k) == moved
    after = {c: _cmdstat(ro, c) for c in before}
    assert after["lottery.draw"] == (before["lottery.draw"][0], before["lottery.draw"][1] + 3)
    assert after["lottery.configure"][0] == before["lottery.configure"][0]
    # nothing was created anywhere
    assert owner.raw().call("EXISTS", k, H.default_stream(k)) == 0
    # the module's own arity error on the owner, for contrast
    assert H.expect_err(owner.raw(), "LOTTERY.DRAW", k).startswith("ERR wrong number")
    raw.close()


def test_replicas_refuse_writes_and_serve_reads_after_readonly(cl):
    m = cl.masters()[1]
    rep = cl.replicas_of(m)[0]
    k = cl.key_on(m, fmt="ro:{%s}")
    slot = C.key_slot(k)
    rm = m.client()
    H.configure(rm, k, "PRIZE", "a", 1, 10, "NOTHING", 1)
    for i in range(20):
        H.draw(rm, k, f"u{i}")
    D.wait_acked(rm)
    moved = f"MOVED {slot} 127.0.0.1:{m.port}"
    raw = rep.raw()
    assert raw.call("LOTTERY.STATS", k) == moved           # not READONLY yet: redirected
    assert raw.call("READONLY") == "OK"
    # reads are served by the replica and equal the master's
    rr = rep.client()
    rr.execute_command("READONLY")
    assert H.stats(rr, k) == H.stats(rm, k)
    for i in range(20):
        assert H.user(rr, k, f"u{i}") == H.user(rm, k, f"u{i}")
    # writes still go to the master
    for cmd in [("LOTTERY.DRAW", k, "u1"), ("LOTTERY.CONFIGURE", k, "NOTHING", 5),
                ("LOTTERY.GRANT", k, "u1", 1), ("LOTTERY.RESTOCK", k, "a", 1),
                ("LOTTERY.PAUSE", k), ("LOTTERY.BAN", k, "u1", 1000), ("LOTTERY.DRAIN", k)]:
        assert raw.call(*cmd) == moved, cmd
    assert H.stats(rr, k)["draws"] == 20
    raw.close()


def test_crossslot(cl):
    m = cl.masters()[0]
    k = cl.key_on(m, fmt="xs:{%s}", prefix="a")
    s = C.key_slot(k)
    other_same_node = cl.key_on(m, fmt="xs:{%s}", prefix="b", avoid_slots={s})
    other_node = cl.key_on(cl.masters()[1], fmt="xs:{%s}", prefix="c")
    raw = m.raw()
    rc = cl.client()
    try:
        for st in (other_same_node, other_node):
            want = (f"CROSSSLOT STREAM key '{st}' hashes to slot {C.key_slot(st)}, "
                    f"the campaign key to slot {s}")
            assert raw.call("LOTTERY.CONFIGURE", k, "PRIZE", "a", 1, 1, "STREAM", st) == want
            # redis-py maps the CROSSSLOT prefix to its own exception (prefix stripped)
            with pytest.raises(redis.exceptions.ClusterCrossSlotError) as e:
                rc.execute_command("LOTTERY.CONFIGURE", k, "PRIZE", "a", 1, 1, "STREAM", st)
            assert "CROSSSLOT " + str(e.value) == want
        assert raw.call("EXISTS", k) == 0
        # a STREAM in the same slot is fine, and the wins land there, on this master
        same = k + ":mywins"
        assert raw.call("LOTTERY.CONFIGURE", k, "PRIZE", "a", 1, 3, "STREAM", same) == "OK"
        rep = H.draw(rc, k, "u")
        assert rep[0] == "WIN" and raw.call("XLEN", same) == 1
        # changing an existing campaign's stream to another slot: refused, nothing changes
        assert raw.call("LOTTERY.CONFIGURE", k, "STREAM", other_same_node).startswith("CROSSSLOT")
        assert H.stats(rc, k)["stream"] == same
        # Redis's own CROSSSLOT: MULTI and EVAL over two slots (same node)
        k2 = other_same_node
        reps = raw.pipeline([("MULTI",), ("LOTTERY.DRAW", k, "v"), ("LOTTERY.CONFIGURE", k2,
                             "PRIZE", "a", 1, 1), ("EXEC",)])
        assert reps[:3] == ["OK", "QUEUED", "QUEUED"]
        assert reps[3] == "CROSSSLOT Keys in request don't hash to the same slot"
        assert raw.call("EVAL", "redis.call('LOTTERY.DRAW', KEYS[1], 'v');"
                        "return redis.call('LOTTERY.CONFIGURE', KEYS[2], 'PRIZE', 'a', 1, 1)",
                        2, k, k2) == "CROSSSLOT Keys in request don't hash to the same slot"
        # ... and across nodes through the cluster client
        with pytest.raises(redis.exceptions.RedisClusterException):
            rc.execute_command("EVAL", "return 1", 2, k, other_node)
        assert raw.call("EXISTS", k2) == 0
        assert H.stats(rc, k)["draws"] == 1                        # "v" never drew
        # MULTI within one slot works
        reps = raw.pipeline([("MULTI",), ("LOTTERY.DRAW", k, "w"), ("LOTTERY.STATS", k),
                             ("EXEC",)])
        assert reps[3][0][0] == b"WIN"
    finally:
        rc.close()
        raw.close()


@pytest.mark.parametrize("key", ["plain", "shop:{spring}", "x{y}z", "{}", "a{}b", "}{x}"])
def test_wins_stream_always_in_the_campaign_slot(cl, key):
    rc = cl.client()
    try:
        st = H.default_stream(key)
        if C.key_slot(st) != C.key_slot(key):
            with pytest.raises(redis.ResponseError, match="give STREAM"):
                rc.execute_command("LOTTERY.CONFIGURE", key, "PRIZE", "a", 1, 1)
            st = "{%s}:w" % C.tag_for_slot(C.key_slot(key))
            H.configure(rc, key, "PRIZE", "a", 1, 1, "STREAM", st)
        else:
            H.configure(rc, key, "PRIZE", "a", 1, 1)
        assert H.stats(rc, key)["stream"] == st
        rep = H.draw(rc, key, "u")
        owner = cl.master_of_key(key)
        assert owner.raw().call("XRANGE", st, "-", "+")[0][0].decode() == rep[2]
    finally:
        rc.delete(key, st)
        rc.close()


# --------------------------------------------------------------------------------------------
# failover


def _check_against_stream(load, r, key, stock):
    """Every reply the clients got agrees with the campaign and its stream on `r`."""
    st = H.stats(r, key)
    entries = {eid: f for eid, f in r.xrange(H.default_stream(key))}
    wins = load.wins()
    missing = [w for w in wins if w[3][2] not in entries]
    assert not missing, f"{len(missing)} WINs a client saw are not in the stream: {missing[:3]}"
    for k, u, rid, rep in wins:
        f = entries[rep[2]]
        assert (f["user"], f["prize"], f["reqid"]) == (u, rep[1], rid), (rep, f)
    outcomes = [rep[0] for _, _, _, rep in load.replies]
    drew = sum(1 for o in outcomes if o in ("WIN", "LOSE"))
    assert len(entries) == st["wins"] == len(wins), (len(entries), st["wins"], len(wins))
    assert st["draws"] == drew, (st["draws"], drew)
    for pid, _, left, sold in st["prizes"]:
        assert left + sold == stock[pid] and left >= 0, (pid, left, sold)
    return st


def test_cluster_failover_mid_load(cluster_factory):
    c = cluster_factory()
    m = c.masters()[0]
    rep = c.replicas_of(m)[0]
    key = c.key_on(m, fmt="fo:{%s}")
    stock = {"a": 400, "b": 400}
    rc = c.client()
    H.configure(rc, key, "PRIZE", "a", 1, stock["a"], "PRIZE", "b", 1, stock["b"],
                "NOTHING", 4, "MAXWINS", 3)
    users = [f"u{i}" for i in range(3000)]
    load = C.DrawLoad(c, lambda rng: (key, rng.choice(users)), threads=4, name="fo").start()
    try:
        load.wait_count(1500)
        assert rep.client().execute_command("CLUSTER", "FAILOVER") == "OK"
        deadline = time.time() + 30
        while time.time() < deadline and c.master_of_key(key).port != rep.port:
            time.sleep(0.05)
        assert c.master_of_key(key).port == rep.port, "the replica did not take over"
        at_switch = load.count
        load.wait_count(at_switch + 1500)
    finally:
        load.stop()
    c.wait_ok()
    assert c.replicas_of(rep)[0].port == m.port               # the old master follows
    r_new = rep.client()
    st = _check_against_stream(load, r_new, key, stock)
    # per user: at most MAXWINS, and USER agrees with the stream
    per_user = {}
    for _, u, _, _ in load.wins():
        per_user[u] = per_user.get(u, 0) + 1
    assert max(per_user.values()) <= 3
    for u in users[:300]:
        assert H.user(r_new, key, u)["wins"] == per_user.get(u, 0)
    D.wait_acked(r_new)
    assert D.digest(m.client(), key) == D.digest(r_new, key)
    print(f"\nfailover: {load.count} draws, {len(load.wins())} wins, {st['draws']} counted, "
          f"{len(load.errors)} retried errors")
    rc.close()


# --------------------------------------------------------------------------------------------
# resharding


def _snapshot(server, key, users):
    r = server.client()
    return {"digest": D.digest(r, key), "stats": H.stats(r, key),
            "users": {u: H.user(r, key, u) for u in users},
            "xrange": r.xrange(H.default_stream(key))}


def _migrate_slot_by_hand(c, slot, src, dst, keys):
    """CLUSTER SETSLOT IMPORTING/MIGRATING, one MIGRATE ... KEYS for all the keys (atomic),
    then SETSLOT NODE everywhere."""
    rs, rd = src.client(), dst.client()
    sid, did = c.node_id(src), c.node_id(dst)
    assert rd.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", sid) == "OK"
    assert rs.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", did) == "OK"
    present = rs.execute_command("CLUSTER", "GETKEYSINSLOT", slot, 100)
    assert sorted(present) == sorted(keys), present
    assert rs.execute_command("MIGRATE", "127.0.0.1", dst.port, "", 0, 10000,
                              "KEYS", *keys) == "OK"
    assert rs.execute_command("CLUSTER", "COUNTKEYSINSLOT", slot) == 0
    for node in (dst, src):
        assert node.client().execute_command("CLUSTER", "SETSLOT", slot, "NODE", did) == "OK"
    for node in c.masters():
        if node.port not in (src.port, dst.port):
            node.client().execute_command("CLUSTER", "SETSLOT", slot, "NODE", did)
    c.wait_ok()


def test_reshard_live_campaign_keeps_state_and_stream(cluster_factory):
    c = cluster_factory()
    a, b = c.masters()[0], c.masters()[1]
    slot = min(c.slots_of(a))              # redis-cli --cluster reshard moves the lowest slots
    key = f"rs:{{{C.tag_for_slot(slot)}}}"
    stream = H.default_stream(key)
    stock = {"a": 3000, "b": 3000}
    rc = c.client()
    H.configure(rc, key, "PRIZE", "a", 1, stock["a"], "PRIZE", "b", 1, stock["b"],
                "NOTHING", 2)
    users = [f"u{i}" for i in range(4000)]
    # phase 1: draws, then a snapshot of the campaign as it was before the move
    load1 = C.DrawLoad(c, lambda rng: (key, rng.choice(users)), threads=3, name="p1-").start()
    load1.wait_count(1500)
    load1.stop()
    s0 = _snapshot(a, key, users[:200])
    # phase 2: draws continue through RedisCluster while redis-cli moves the slot
    load2 = C.DrawLoad(c, lambda rng: (key, rng.choice(users)), threads=3, name="p2-").start()
    try:
        load2.wait_count(300)
        p = subprocess.run([C.REDIS_CLI, "--cluster", "reshard", f"127.0.0.1:{a.port}",
                            "--cluster-from", c.node_id(a), "--cluster-to", c.node_id(b),
                            "--cluster-slots", "1", "--cluster-yes"],
                           capture_output=True, text=True, timeout=60)
        assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
        assert f"Moving slot {slot} from" in p.stdout, p.stdout[-1500:]
        c.wait_ok()
        assert c.master_of_key(key).port == b.port
        at_move = load2.count
        load2.wait_count(at_move + 800)
    finally:
        load2.stop()
    rb = b.client()
    assert a.raw().call("CLUSTER", "COUNTKEYSINSLOT", slot) == 0
    assert rb.execute_command("CLUSTER", "COUNTKEYSINSLOT", slot) == 2
    # state = before + what was drawn after: the old stream is an exact prefix, the rest are
    # exactly the phase-2 wins; the counters add up
    final = rb.xrange(stream)
    assert final[:len(s0["xrange"])] == s0["xrange"]
    new_ids = {e[0] for e in final[len(s0["xrange"]):]}
    assert new_ids == {w[3][2] for w in load2.wins()}
    st = H.stats(rb, key)
    drew2 = sum(1 for *_, rep in load2.replies if rep[0] in ("WIN", "LOSE"))
    assert st["draws"] == s0["stats"]["draws"] + drew2
    assert st["wins"] == s0["stats"]["wins"] + len(load2.wins()) == len(final)
    for pid, _, left, sold in st["prizes"]:
        assert left + sold == stock[pid]
    wins2 = {}
    for _, u, _, _ in load2.wins():
        wins2[u] = wins2.get(u, 0) + 1
    for u, before in s0["users"].items():
        assert H.user(rb, key, u)["wins"] == before["wins"] + wins2.get(u, 0), u
    # with no draws running: moved back by hand (MIGRATE), the value is bit-for-bit the same
    s1 = _snapshot(b, key, users[:200])
    _migrate_slot_by_hand(c, slot, b, a, [key, stream])
    s2 = _snapshot(a, key, users[:200])
    assert s2 == s1
    ra = a.client()
    D.wait_acked(ra)
    rep_a = c.replicas_of(a)[0].client()
    assert D.digest(rep_a, key) == s1["digest"]
    # and the campaign keeps drawing where it is now
    out = H.draw(rc, key, "after-move")
    assert out[0] in ("WIN", "LOSE") and H.stats(ra, key)["draws"] == s1["stats"]["draws"] + 1
    print(f"\nreshard: phase 1 {load1.count} draws, phase 2 {load2.count} "
          f"({len(load2.wins())} wins, {len(load2.errors)} retried errors)")
    rc.close()


@pytest.mark.parametrize("first", ["campaign", "stream"])
def test_split_migration_never_splits_the_stream(cluster_factory, first):
    """The campaign and its wins stream migrated in separate MIGRATE calls (a slot with more
    keys than redis-cli's --cluster-pipeline, or by hand). A win in between would create a
    second stream on the node lacking it (the next MIGRATE then fails with BUSYKEY, or with
    REPLACE drops entries). The module refuses that win with TRYAGAIN instead; losses still
    go through; once the slot has moved, the stream is whole."""
    c = cluster_factory(replicas=0)
    a, b = c.masters()[0], c.masters()[1]
    key = c.key_on(a, fmt="split:{%s}")
    stream = H.default_stream(key)
    slot = C.key_slot(key)
    ra, rb = a.raw(), b.raw()
    assert ra.call("LOTTERY.CONFIGURE", key, "PRIZE", "a", 1, 100, "NOTHING", 0) == "OK"
    seen = [ra.call("LOTTERY.DRAW", key, "u0")[2]]
    assert rb.call("CLUSTER", "SETSLOT", slot, "IMPORTING", c.node_id(a)) == "OK"
    assert ra.call("CLUSTER", "SETSLOT", slot, "MIGRATING", c.node_id(b)) == "OK"
    if first == "campaign":
        assert ra.call("MIGRATE", "127.0.0.1", b.port, key, 0, 5000) == "OK"
        assert ra.call("LOTTERY.DRAW", key, "u1").startswith("ASK ")
        rep = rb.pipeline([("ASKING",), ("LOTTERY.DRAW", key, "u1")])[1]
        holder = rb
    else:
        assert ra.call("MIGRATE", "127.0.0.1", b.port, stream, 0, 5000) == "OK"
        rep = ra.call("LOTTERY.DRAW", key, "u1")
        holder = ra
    assert isinstance(rep, H.Err) and rep.startswith("TRYAGAIN "), rep
    st = holder.pipeline([("ASKING",), ("LOTTERY.STATS", key)])[1]
    assert dict(zip(st[0::2], st[1::2]))[b"wins"] == 1, "the refused win changed nothing"
    second = stream if first == "campaign" else key
    assert ra.call("MIGRATE", "127.0.0.1", b.port, second, 0, 5000) == "OK"
    for node in (b, a):
        assert node.raw().call("CLUSTER", "SETSLOT", slot, "NODE", c.node_id(b)) == "OK"
    rep = rb.call("LOTTERY.DRAW", key, "u1")  # the client's retry, now on the new owner
    assert rep[0] == b"WIN", rep
    seen.append(rep[2])
    ids = [e[0] for e in rb.call("XRANGE", stream, "-", "+")]
    assert ids == seen
    assert ra.call("CLUSTER", "COUNTKEYSINSLOT", slot) == 0
    assert rb.call("CLUSTER", "COUNTKEYSINSLOT", slot) == 2


def test_deleted_stream_is_recreated_outside_migration(cl):
    """The TRYAGAIN guard is only for a slot in migration: an operator who deletes a consumed
    wins stream gets a new one with the next win."""
    m = cl.masters()[0]
    key = cl.key_on(m, fmt="del:{%s}")
    r = m.raw()
    assert r.call("LOTTERY.CONFIGURE", key, "PRIZE", "a", 1, 10, "NOTHING", 0) == "OK"
    assert r.call("LOTTERY.DRAW", key, "u0")[0] == b"WIN"
    assert r.call("DEL", H.default_stream(key)) == 1
    rep = r.call("LOTTERY.DRAW", key, "u1")
    assert rep[0] == b"WIN", rep
    assert r.call("XLEN", H.default_stream(key)) == 1


def test_cluster_setup_starts_over_on_taken_ports(cluster_factory, monkeypatch, capsys):
    """The set-up starts over on fresh ports when a node's port is answered by another server
    (attempt 1: the PING would succeed, the process id does not match) and when a node cannot
    bind its bus port (attempt 2); the third attempt's cluster works and the other server is
    left alone."""
    import socket
    other = H.RedisServer(module=False, port=C.cluster_port())
    held = C.cluster_port()
    bus = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    real = C.cluster_port
    picks = []

    def pick():
        picks.append(None)
        return {1: other.port, 5: held}.get(len(picks)) or real()

    try:
        bus.bind((C.HOST, held + C.BUS_OFFSET))
        bus.listen()
        monkeypatch.setattr(C, "cluster_port", pick)
        c = cluster_factory(masters=3, replicas=0)
        assert len(picks) == 3 + 2 + 3      # attempt 2 stops at its 2nd node (started in turn)
        assert not {s.port for s in c.nodes} & {other.port, held}
        assert "cluster_state:ok" in c.nodes[0].client().execute_command("CLUSTER", "INFO")
        assert other.client().info("server")["process_id"] == other.proc.pid
    finally:
        bus.close()
        other.cleanup()
    err = capsys.readouterr().err
    assert "attempt 1/3" in err and f"port {other.port} is answered by process" in err, err
    assert "attempt 2/3" in err and "exited with 1 during start-up" in err, err


def test_cluster_setup_gives_up_after_three_attempts(monkeypatch):
    """When every attempt fails, the set-up fails with the reason of each."""
    import socket
    held = C.cluster_port()
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind((C.HOST, held))
        s.listen()
        monkeypatch.setattr(C, "cluster_port", lambda: held)
        with pytest.raises(RuntimeError) as e:
            C.Cluster(masters=3, replicas=0)
    finally:
        s.close()
    msg = str(e.value)
    assert "in 3 attempts" in msg, msg
    for a in (1, 2, 3):
        assert f"attempt {a}/3: redis-server exited with 1 during start-up" in msg, msg
