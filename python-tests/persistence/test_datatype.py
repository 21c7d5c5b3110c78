"""The `lottery01` data type as Redis sees it: DUMP/RESTORE, COPY, MEMORY USAGE, DEBUG RELOAD,
TYPE, OBJECT ENCODING, freeing a big campaign, and MODULE UNLOAD being refused."""
import threading
import time

import redis

import durability_helpers as D
import lottery_helpers as H
from lottery_helpers import configure, draw, pin, populate, stats, user


def _all_users(users_by_key):
    return [u for us in users_by_key.values() for u in us]


def _fill(server, key, n, prefix="u"):
    tmpl_key = key.encode()
    batches = []
    for b in range(0, n, 20_000):
        batches.append([("LOTTERY.DRAW", tmpl_key, f"{prefix}{i}".encode())
                        for i in range(b, min(n, b + 20_000))])
    D.fast_pipeline(server.port, batches)


def test_type_and_encoding(server):
    r = server.client()
    configure(r, "c", "PRIZE", "a", 1, 10)
    assert r.type("c") == "lottery01"
    enc = r.object("encoding", "c")          # whatever it says, it must not crash
    assert isinstance(enc, str)
    assert r.object("refcount", "c") >= 1
    assert isinstance(r.object("idletime", "c"), int)
    assert r.execute_command("DEBUG", "OBJECT", "c")
    assert r.ping()


def test_dump_restore_roundtrip_to_other_key(server):
    r = server.client()
    rb = server.bclient()
    users, reqs, t_end = populate(r, rb)
    clock = t_end + 500
    for key in ("camp", "other:{t}"):
        blob = rb.dump(key)
        dst = "{t}restored" if key == "other:{t}" else "restored"
        assert rb.restore(dst, 0, blob)
        # standalone, a restored value is identical, wins stream included (as with RENAME;
        # in cluster mode a stream outside the new key's slot is replaced: see below)
        assert D.digest(rb, dst) == D.digest(rb, key)
        pin(r, clock)
        assert stats(rb, dst) == stats(rb, key)
        for u in users[key]:
            assert user(rb, dst, u) == user(rb, key, u)
        # RESTORE ... REPLACE over an existing campaign, and the dump of the dump is equal
        assert rb.restore(dst, 0, blob, replace=True)
        assert rb.dump(dst) == blob
    # a restored campaign keeps working (and keeps its configured stream)
    pin(r, clock + H.DAY_MS)
    r.execute_command("LOTTERY.RESUME", "{t}restored")
    assert draw(r, "{t}restored", "new-user")[0] in ("WIN", "LOSE")
    assert stats(r, "{t}restored")["stream"] == "{t}:stream"


def test_restore_under_another_name_standalone_keeps_its_stream(server):
    """Standalone, a DUMP restored under another name keeps its wins stream, as RENAME does,
    and keeps it across DEBUG RELOAD (the stream never changes behind the operator's back)."""
    r = server.client()
    rb = server.bclient()
    configure(r, "camp", "PRIZE", "p", 1, "INF", "MAXWINS", "INF")
    draw(r, "camp", "a")
    assert rb.restore("restored", 0, rb.dump("camp"))
    assert stats(r, "restored")["stream"] == "{camp}:wins"
    before = D.digest(rb, "restored")
    assert r.execute_command("DEBUG", "RELOAD") == "OK"
    assert D.digest(rb, "restored") == before


def test_restore_under_another_name_in_cluster_stays_in_its_slot(server_factory):
    """SPEC: "a campaign never touches a key outside its slot". In cluster mode (a one-node
    cluster owning every slot), a DUMP restored under a name in another slot switches to the
    new key's default stream instead of writing to the old key's, which lives in another slot
    (on another node in a real cluster). Stable across DEBUG RELOAD."""
    # an explicit cluster bus port: the default (port + 10000) fails for ports over 55535
    srv = server_factory(extra_args=["--cluster-enabled", "yes",
                                     "--cluster-config-file", "nodes.conf",
                                     "--cluster-port", str(H.free_port())])
    r = srv.client()
    rb = srv.bclient()
    r.execute_command("CLUSTER", "ADDSLOTSRANGE", 0, 16383)
    deadline = time.time() + 10
    while "cluster_state:ok" not in r.execute_command("CLUSTER", "INFO") and time.time() < deadline:
        time.sleep(0.05)
    configure(r, "camp", "PRIZE", "p", 1, "INF", "MAXWINS", "INF")
    draw(r, "camp", "a")
    assert rb.restore("restored", 0, rb.dump("camp"))
    stream = stats(r, "restored")["stream"]
    assert stream == "{restored}:wins"
    assert H.key_slot(stream) == H.key_slot("restored")
    assert draw(r, "restored", "b")[0] == "WIN"
    assert r.xlen("{restored}:wins") == 1 and r.xlen("{camp}:wins") == 1
    before = D.digest(rb, "restored")
    assert r.execute_command("DEBUG", "RELOAD") == "OK"
    assert D.digest(rb, "restored") == before


def test_copy_is_independent_and_moves_default_stream(server):
    r = server.client()
    rb = server.bclient()
    pin(r, H.T0)
    configure(r, "{a}camp", "PRIZE", "p", 1, "INF", "MAXWINS", "INF")   # every draw wins
    for i in range(10):
        assert draw(r, "{a}camp", f"u{i}")[0] == "WIN"
    assert r.xlen("{a}camp:wins") == 10
    assert r.copy("{a}camp", "{a}camp2") == 1
    # identical but for the stream name: the copy uses its own key's default stream
    s1, s2 = stats(r, "{a}camp"), stats(r, "{a}camp2")
    assert s1["stream"] == "{a}camp:wins" and s2["stream"] == "{a}camp2:wins"
    assert {k: v for k, v in s1.items() if k != "stream"} == \
           {k: v for k, v in s2.items() if k != "stream"}
    for i in range(10):
        assert user(rb, "{a}camp2", f"u{i}") == user(rb, "{a}camp", f"u{i}")
    before_digest = D.digest(rb, "{a}camp")
    before_stats = stats(r, "{a}camp")
    # drawing on the copy changes neither the original nor its stream
    for i in range(10, 15):
        rep = draw(r, "{a}camp2", f"u{i}")
        assert rep[0] == "WIN"
    r.execute_command("LOTTERY.GRANT", "{a}camp2", "u0", 5)
    r.execute_command("LOTTERY.CONFIGURE", "{a}camp2", "NOTHING", 7)
    assert D.digest(rb, "{a}camp") == before_digest
    assert stats(r, "{a}camp") == before_stats
    assert r.xlen("{a}camp:wins") == 10
    assert r.xlen("{a}camp2:wins") == 5
    assert stats(r, "{a}camp2")["wins"] == 15
    # and the other way round
    draw(r, "{a}camp", "z")
    assert stats(r, "{a}camp2")["wins"] == 15
    # a campaign with an explicit STREAM keeps it in the copy
    configure(r, "{a}x", "PRIZE", "p", 1, 5, "STREAM", "{a}log")
    assert r.copy("{a}x", "{a}y") == 1
    assert stats(r, "{a}y")["stream"] == "{a}log"
    # COPY onto an existing key needs REPLACE; with REPLACE the target is overwritten
    assert r.copy("{a}x", "{a}camp2") == 0
    assert r.copy("{a}x", "{a}camp2", replace=True) == 1
    assert stats(r, "{a}camp2")["stream"] == "{a}log"
    # COPY to another db
    assert r.copy("{a}camp", "{a}camp", destination_db=2) == 1
    r2 = server.client(db=2)
    assert D.digest(r2, "{a}camp") == D.digest(rb, "{a}camp")


def test_memory_usage_grows_with_users(server):
    r = server.client()
    pin(r, H.T0)
    configure(r, "c", "PRIZE", "p", 1, "INF", "NOTHING", 1000, "MAXWINS", "INF")
    sizes = []
    total = 0
    for n in (0, 1000, 10_000, 100_000):
        if n > total:
            _fill(server, "c", n - total, prefix=f"s{total}-")
            total = n
        assert stats(r, "c")["users"] == total
        sizes.append(r.memory_usage("c"))
    print(f"\nMEMORY USAGE at 0/1k/10k/100k users: {sizes}")
    assert all(isinstance(x, int) and x > 0 for x in sizes)
    assert sizes[1] >= sizes[0] and sizes[2] > sizes[1] and sizes[3] > sizes[2]
    # roughly linear at scale: 100k users cost at least 16 B each and at most 1 KiB each
    per_user = (sizes[3] - sizes[2]) / 90_000
    assert 16 <= per_user <= 1024, per_user
    # MEMORY USAGE is of the right order against what the allocator sees
    used0 = r.info("memory")["used_memory"]
    r.delete("c")
    # DEL frees a big value in the background where lazyfree-lazy-user-del is yes (Valkey's
    # default): wait for that free to have run
    deadline = time.time() + 10
    while r.info("memory")["lazyfree_pending_objects"] and time.time() < deadline:
        time.sleep(0.05)
    freed = used0 - r.info("memory")["used_memory"]
    assert sizes[3] / 4 < freed < sizes[3] * 4, (sizes[3], freed)


def test_debug_reload_keeps_digest(server):
    r = server.client()
    rb = server.bclient()
    users, reqs, t_end = populate(r, rb)
    _fill(server, "camp", 20_000, prefix="bulk")
    before = {k: D.digest(rb, k) for k in users}
    db = D.db_digest(r)
    assert r.execute_command("DEBUG", "RELOAD") == "OK"
    assert {k: D.digest(rb, k) for k in users} == before
    assert D.db_digest(r) == db
    assert r.type("camp") == "lottery01"


def test_unlink_and_del_of_big_campaign(server):
    r = server.client()
    pin(r, H.T0)
    for key in ("big1", "big2"):
        configure(r, key, "PRIZE", "p", 1, "INF", "NOTHING", 1000, "MAXWINS", "INF")
        _fill(server, key, 100_000)
        for i in range(0, 100_000, 997):
            r.execute_command("LOTTERY.GRANT", key, f"u{i}", 1)
    used_full = r.info("memory")["used_memory"]
    # a second connection keeps pinging while the big values are freed
    lat = []
    stop = threading.Event()

    def pinger():
        c = redis.Redis(host="127.0.0.1", port=server.port, socket_timeout=10)
        while not stop.is_set():
            t = time.time()
            c.ping()
            lat.append(time.time() - t)
            time.sleep(0.001)
        c.close()

    th = threading.Thread(target=pinger)
    th.start()
    try:
        t = time.time()
        assert r.unlink("big1") == 1
        unlink_s = time.time() - t
        t = time.time()
        assert r.delete("big2") == 1
        del_s = time.time() - t
        time.sleep(0.2)
    finally:
        stop.set()
        th.join(20)
    assert r.exists("big1", "big2") == 0
    deadline = time.time() + 10
    while r.info("memory")["lazyfree_pending_objects"] and time.time() < deadline:
        time.sleep(0.05)
    used_after = r.info("memory")["used_memory"]
    print(f"\nUNLINK 100k users {unlink_s * 1000:.1f} ms, DEL {del_s * 1000:.1f} ms, "
          f"max PING {max(lat) * 1000:.1f} ms over {len(lat)} pings; "
          f"used_memory {used_full} -> {used_after}")
    assert used_after < used_full / 2
    assert r.ping()
    assert max(lat) < 5.0
    # the keyspace works as before
    configure(r, "big1", "PRIZE", "p", 1, 1)
    assert draw(r, "big1", "x")[0] == "WIN"


def test_module_unload_refused(server):
    r = server.client()
    configure(r, "c", "PRIZE", "p", 1, 3)
    raw = server.raw()
    rep = raw.call("MODULE", "UNLOAD", "lottery")
    assert isinstance(rep, H.Err), rep
    raw.close()
    mods = [m["name"] for m in r.module_list()]
    assert "lottery" in mods
    assert r.ping()
    assert draw(r, "c", "u")[0] == "WIN"
    assert r.type("c") == "lottery01"
