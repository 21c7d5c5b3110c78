"""A sharded campaign through a master failover: many clients drawing through
RedisCluster with REQID retries, the mover rebalancing in a loop and lottery-writer persisting,
while one shard's replica takes over with CLUSTER FAILOVER. Nothing a client saw as WIN is
lost, draws continue on the new master, stock is conserved and the campaign sells out."""
import signal
import subprocess
import tempfile
import time

import cluster_helpers as C
import lottery_helpers as H
from cluster_helpers import cluster_factory  # noqa: F401 (fixture)
from test_sharded import (SHARDS_BIN, R, Writer, _totals, check_json, create, shard_stats,
                          shards)


def test_sharded_campaign_through_failover(cluster_factory):  # noqa: F811
    c = cluster_factory()
    name = "fail"
    stock = 900
    desc = create(c, name, 3, "PRIZE", "a", 1, stock, "NOTHING", 5, "MAXWINS", 2)
    victim_key = desc["keys"][1]
    old = c.master_of_key(victim_key)
    new = c.replicas_of(old)[0]
    users = [f"fo{i}" for i in range(4000)]
    writer = Writer(c, name, tempfile.mkdtemp(prefix="lottery-sharded-fo-"))
    load = C.DrawLoad(c, lambda rng: (lambda u: (R.shard_key(desc, u), u))(rng.choice(users)),
                      threads=6, name="fo").start()
    mover = subprocess.Popen([SHARDS_BIN, "--cluster", c.url(), "rebalance", name,
                              "--every-ms", "100", "--min-move", "1"],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        load.wait_count(1500)
        assert new.client().execute_command("CLUSTER", "FAILOVER") == "OK"
        deadline = time.time() + 30
        while time.time() < deadline and c.master_of_key(victim_key).port != new.port:
            time.sleep(0.05)
        assert c.master_of_key(victim_key).port == new.port, "the replica did not take over"
        at_switch = load.count
        # draws continue, on the new master too
        load.wait_count(at_switch + 1000)
        deadline = time.time() + 120
        while time.time() < deadline:
            assert not load.failures, load.failures[:3]
            if _totals(shard_stats(c, desc), "a")[0] == 0:
                break
            time.sleep(0.2)
    finally:
        load.stop()
        mover.send_signal(signal.SIGTERM)
        out = mover.communicate(timeout=60)[0]
    assert mover.returncode == 0, out[-3000:]
    c.wait_ok()
    shards(c, "rebalance", name, "--min-move", "1")  # finishes anything the loop left pending
    d = check_json(c, name)
    assert d["ok"] and d["pending"] == 0, d
    sts = shard_stats(c, desc)
    assert _totals(sts, "a") == (0, stock), \
        f"sold out exactly: {sts}; draws {load.count}; the mover said:\n{out[-3000:]}"
    # every WIN a client saw is in its shard's stream on today's master, once
    rc = c.client()
    try:
        streams = {k: {eid: f for eid, f in rc.xrange(H.default_stream(k))} for k in desc["keys"]}
    finally:
        rc.close()
    wins = load.wins()
    assert len(wins) == stock == sum(len(v) for v in streams.values())
    per_user = {}
    for key, u, rid, rep in wins:
        f = streams[key].get(rep[2])
        assert f is not None and (f["user"], f["reqid"]) == (u, rid), (key, u, rep)
        per_user[u] = per_user.get(u, 0) + 1
    assert max(per_user.values()) <= 2
    on_victim = sum(1 for k, *_ in wins if k == victim_key)
    served = new.client().info("commandstats").get("cmdstat_lottery.draw", {}).get("calls", 0)
    assert served > 0, "the promoted replica served draws"
    # the writer has every entry, keyed by shard
    try:
        writer.wait_rows(stock, timeout=90)
    finally:
        assert writer.stop() == 0, writer.tail()
    assert sorted((k, s) for k, s, *_ in writer.rows()) == \
        sorted((k, e) for k, v in streams.items() for e in v)
    print(f"\nsharded failover: {load.count} draws, {len(wins)} wins ({on_victim} on the failed-over "
          f"shard), {len(load.errors)} retried errors")
