"""Master + replica: the replica receives effects and ends up identical."""
import lottery_helpers as H
from lottery_helpers import configure, draw, stats, pin, populate, snapshot


def _wait(r):
    assert r.execute_command("WAIT", 1, 5000) == 1


def test_replica_identical_after_mixed_workload(master_replica):
    master, replica = master_replica
    rm = master.client()
    rmb = master.bclient()
    users, reqs, t_end = populate(rm, rmb)
    # more traffic after a full sync has happened
    pin(rm, t_end + 2000)
    for i in range(30):
        draw(rm, "camp", f"w{i}", reqid=f"late{i}" if i % 2 else None)
    rm.execute_command("LOTTERY.RESUME", "other:{t}")
    for i in range(10):
        draw(rm, "other:{t}", "x")
    rm.execute_command("LOTTERY.DRAIN", "camp")
    _wait(rm)
    users["camp"] += [f"w{i}".encode() for i in range(30)]
    clock = t_end + 2500
    m = snapshot(master, users, clock)
    s = snapshot(replica, users, clock, with_drain=False)
    for key in m:
        assert s[key]["stats"] == m[key]["stats"], key
        assert s[key]["users"] == m[key]["users"], key
        assert s[key]["xrange"] == m[key]["xrange"], key
    assert len(m["camp"]["xrange"]) == m["camp"]["stats"]["wins"]


def test_replica_refuses_writes(master_replica):
    master, replica = master_replica
    rm = master.client()
    configure(rm, "c", "PRIZE", "a", 1, "INF")
    _wait(rm)
    raw = replica.raw()
    for cmd in [("LOTTERY.DRAW", "c", "u"), ("LOTTERY.GRANT", "c", "u", 1),
                ("LOTTERY.CONFIGURE", "c", "COOLDOWN", 5), ("LOTTERY.DRAIN", "c")]:
        H.expect_err(raw, *cmd, prefix="READONLY")
    assert stats(replica.client(), "c")["draws"] == 0


def test_replica_does_not_redraw(master_replica):
    """Odds: the replica must receive outcomes, not re-run the RNG."""
    master, replica = master_replica
    rm = master.client()
    pin(rm, H.T0)
    configure(rm, "c", "PRIZE", "a", 1, 1000, "PRIZE", "b", 1, 1000, "NOTHING", 2,
              "MAXWINS", "INF")
    reps = [draw(rm, "c", "u") for _ in range(300)]
    _wait(rm)
    rs = replica.client()
    ms, ss = stats(rm, "c"), stats(rs, "c")
    assert ms == ss
    assert [p[3] for p in ss["prizes"]] == [sum(1 for x in reps if x[1] == "a"),
                                            sum(1 for x in reps if x[1] == "b")]
    assert rs.xrange("{c}:wins") == rm.xrange("{c}:wins")
    # the entries carry the master's pinned time, in their IDs
    assert all(e[0].split("-")[0] == str(H.T0) and "ts" not in e[1]
               for e in rs.xrange("{c}:wins"))


def test_reqid_retry_on_promoted_replica(master_replica):
    master, replica = master_replica
    rm = master.client()
    pin(rm, H.T0)
    configure(rm, "c", "PRIZE", "a", 1, 100, "NOTHING", 1, "MAXWINS", "INF", "COOLDOWN", 10)
    replies = {}
    mraw = master.raw()
    for i in range(20):
        pin(rm, H.T0 + 100 * i)
        replies[f"q{i}"] = mraw.call_raw("LOTTERY.DRAW", "c", "u", "REQID", f"q{i}")
    last_drain = rm.execute_command("LOTTERY.DRAIN", "c")
    _wait(rm)
    before = stats(rm, "c")
    master.stop()
    rs = replica.client()
    assert rs.execute_command("REPLICAOF", "NO", "ONE") == "OK"
    pin(rs, H.T0 + 5000)
    raw = replica.raw()
    for rid, first in replies.items():
        assert raw.call_raw("LOTTERY.DRAW", "c", "u", "REQID", rid) == first, rid
    after = stats(rs, "c")
    assert rs.execute_command("LOTTERY.DRAIN", "c", "LAST") == last_drain
    assert after["draws"] == before["draws"]
    assert after["replays"] == before["replays"] + 20
    # and the promoted replica can draw on its own
    assert draw(rs, "c", "u", reqid="fresh")[0] in ("WIN", "LOSE")
    assert stats(rs, "c")["draws"] == before["draws"] + 1


def test_full_resync_of_existing_data(server_factory):
    master = server_factory()
    rm = master.client()
    users, reqs, t_end = populate(rm, master.bclient())
    replica = server_factory(replicaof=("127.0.0.1", master.port))
    H.wait_link_up(replica.client())
    _wait(rm)
    clock = t_end + 100
    m = snapshot(master, users, clock)
    s = snapshot(replica, users, clock, with_drain=False)
    for key in m:
        assert s[key]["stats"] == m[key]["stats"]
        assert s[key]["users"] == m[key]["users"]
        assert s[key]["xrange"] == m[key]["xrange"]


def test_replication_multi_lua_and_other_db(master_replica):
    master, replica = master_replica
    rm = master.client(db=3)
    pin(rm, H.T0)
    configure(rm, "c", "PRIZE", "a", 1, 40, "PRIZE", "b", 1, "INF", "NOTHING", 1,
              "MAXWINS", "INF", "COOLDOWN", 0)
    p = rm.pipeline(transaction=True)
    for i in range(10):
        p.execute_command("LOTTERY.DRAW", "c", f"m{i}", "REQID", f"t{i}")
    p.execute_command("LOTTERY.GRANT", "c", "m0", 4)
    p.execute()
    for i in range(5):
        rm.eval("return redis.call('LOTTERY.DRAW', KEYS[1], ARGV[1])", 1, "c", f"lua{i}")
    rm.execute_command("LOTTERY.DRAIN", "c")
    _wait(rm)
    rs = replica.client(db=3)
    pin(rs, H.T0)      # USER/STATS read the clock of the node that answers
    assert stats(rs, "c") == stats(rm, "c")
    assert rs.xrange("{c}:wins") == rm.xrange("{c}:wins")
    for u in [f"m{i}" for i in range(10)] + [f"lua{i}" for i in range(5)]:
        assert H.user(rs, "c", u) == H.user(rm, "c", u)
    assert replica.client(db=0).dbsize() == 0
