"""RDB / AOF / DEBUG RELOAD / DUMP-RESTORE / COPY: the campaign state survives byte-exact."""
import random
import time

import pytest

import lottery_helpers as H
from lottery_helpers import configure, draw, stats, pin, populate, snapshot


def _populated(server):
    r = server.client()
    rb = server.bclient()
    users, reqs, t_end = populate(r, rb)
    clock = t_end + 700     # some cooldowns still running, bans still active
    return r, users, reqs, clock


def _check_pending_drain(server):
    r = server.client()
    seq, _ = H.drain(r, "camp", last=True)
    assert H.drain_dict(r, "camp") == (seq + 1, populate.pending)


def _check_reqid_replays(server, reqs, clock):
    r = server.client()
    pin(r, clock)
    assert reqs, "populate made no REQID draw"
    before = stats(r, "camp")
    for key, u, rid, rep in reqs:
        assert draw(r, key, u, reqid=rid) == rep, (u, rid)
    after = stats(r, "camp")
    assert after["replays"] == before["replays"] + sum(1 for q in reqs if q[0] == "camp")
    assert after["draws"] == before["draws"]


def _wait_aof_rewrite(r, timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        info = r.info("persistence")
        if not info["aof_rewrite_in_progress"] and not info["aof_rewrite_scheduled"]:
            assert info.get("aof_last_bgrewrite_status") == "ok", info
            return
        time.sleep(0.05)
    raise AssertionError("AOF rewrite did not finish")


def _wait_bgsave(r, timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        info = r.info("persistence")
        if not info["rdb_bgsave_in_progress"]:
            assert info["rdb_last_bgsave_status"] == "ok", info
            return
        time.sleep(0.05)
    raise AssertionError("BGSAVE did not finish")


def test_debug_reload(server):
    r, users, reqs, clock = _populated(server)
    before = snapshot(server, users, clock)
    assert r.execute_command("DEBUG", "RELOAD") == "OK"
    after = snapshot(server, users, clock)
    assert after == before
    _check_reqid_replays(server, reqs, clock)
    _check_pending_drain(server)


def test_save_and_restart(server):
    r, users, reqs, clock = _populated(server)
    before = snapshot(server, users, clock)
    assert r.save()
    server.stop(save=False)
    server.start()
    after = snapshot(server, users, clock)
    assert after == before
    _check_reqid_replays(server, reqs, clock)
    _check_pending_drain(server)


def test_bgsave_and_restart(server):
    r, users, reqs, clock = _populated(server)
    before = snapshot(server, users, clock)
    r.bgsave()
    _wait_bgsave(r)
    server.stop(save=False)
    server.start()
    assert snapshot(server, users, clock) == before


def test_shutdown_save_and_restart(server):
    r, users, reqs, clock = _populated(server)
    before = snapshot(server, users, clock)
    server.stop(save=True)
    server.start()
    assert snapshot(server, users, clock) == before
    # and the restored campaign keeps working the same way
    r2 = server.client()
    pin(r2, clock + 10_000_000)
    assert draw(r2, "camp", "brand-new")[0] in ("WIN", "LOSE")


@pytest.mark.parametrize("preamble", ["yes", "no"])
def test_aof_log_and_rewrite(server_factory, preamble):
    s = server_factory(appendonly=True, extra_args=["--aof-use-rdb-preamble", preamble,
                                                    "--appendfsync", "always"])
    r, users, reqs, clock = _populated(s)
    # part 1: plain AOF log replay (effects, e.g. LOTTERY.APPLY)
    before = snapshot(s, users, clock)
    s.stop(save=False)
    s.start()
    assert snapshot(s, users, clock) == before
    _check_reqid_replays(s, reqs, clock)
    _check_pending_drain(s)
    # part 2: rewrite, then more writes on top, then reload
    r = s.client()
    r.bgrewriteaof()
    _wait_aof_rewrite(r)
    pin(r, clock + 5000)
    for i in range(10):
        draw(r, "camp", f"late{i}")
    r.execute_command("LOTTERY.GRANT", "camp", "u3", 2)
    before = snapshot(s, users, clock)
    s.stop(save=False)
    s.start()
    assert snapshot(s, users, clock) == before
    assert s.client().execute_command("DEBUG", "LOADAOF") == "OK"
    assert snapshot(s, users, clock) == before


def test_dump_restore_same_key(server):
    r, users, reqs, clock = _populated(server)
    before = snapshot(server, users, clock)
    rb = server.bclient()
    blob = rb.dump("camp")
    assert blob
    rb.delete("camp")
    assert rb.restore("camp", 0, blob)
    assert snapshot(server, users, clock) == before


def test_copy_and_memory_usage_and_digest(server):
    r, users, reqs, clock = _populated(server)
    pin(r, clock)
    assert r.copy("other:{t}", "copy:{t}") == 1
    a, b = stats(r, "other:{t}"), stats(r, "copy:{t}")
    # A VERIFIABLE campaign's copy never holds the original's seed: a seed derived from it,
    # counted as revealed (its first draw starts a new epoch with a fresh one).
    assert a["verifiable"] == b["verifiable"] == 1 and a["seed_epoch"] == b["seed_epoch"]
    assert a["seed_commitment"] != b["seed_commitment"]
    assert (a["seed_revealed"], b["seed_revealed"]) == (0, 1)
    for f in ("seed_commitment", "seed_revealed"):
        del a[f], b[f]
    assert a == b      # STREAM was given explicitly, so even the stream name is the same
    for u in users["other:{t}"]:
        assert H.user(server.bclient(), "other:{t}", u) == H.user(server.bclient(), "copy:{t}", u)
    # the copy is independent
    r.execute_command("LOTTERY.RESTOCK", "copy:{t}", "p", 5)
    assert stats(r, "other:{t}")["prizes"] != stats(r, "copy:{t}")["prizes"]
    mu = r.memory_usage("camp")
    assert isinstance(mu, int) and mu > 0
    d1 = r.execute_command("DEBUG", "DIGEST-VALUE", "camp")
    r.execute_command("DEBUG", "RELOAD")
    pin(r, clock)
    d2 = r.execute_command("DEBUG", "DIGEST-VALUE", "camp")
    assert d1 == d2
    r.execute_command("LOTTERY.GRANT", "camp", "u0", 1)
    d3 = r.execute_command("DEBUG", "DIGEST-VALUE", "camp")
    assert d3 != d2


def _module_payload(blob):
    """Split a DUMP blob into (body, rdb-version bytes)."""
    return blob[:-10], blob[-10:-8]


def test_restore_malformed_payloads_refused_without_crash(server):
    r = server.client()
    rb = server.bclient()
    populate(r, rb)
    blob = rb.dump("camp")
    body, ver = _module_payload(blob)
    assert body[0] in (6, 7), "not a module value DUMP"
    rng = random.Random(1234)
    mutants = []
    for cut in sorted({1, 2, 5, 10, 11, 12, 16, 24, 40, len(body) // 3, len(body) // 2,
                       len(body) - 2, len(body) - 1}):
        if 0 < cut < len(body):
            mutants.append(body[:cut])
    # too-new encoding version: the low 10 bits of the module id
    if body[1] == 0x81:
        mid = int.from_bytes(body[2:10], "big")
        for encver in (1023, (mid & 1023) + 1):
            nid = (mid & ~1023) | encver
            mutants.append(body[:2] + nid.to_bytes(8, "big") + body[10:])
    for _ in range(40):
        b = bytearray(body)
        pos = rng.randrange(10, len(b))
        b[pos] ^= 1 << rng.randrange(8)
        mutants.append(bytes(b))
    for i, m in enumerate(mutants):
        payload = H.dump_with_crc(m + ver)
        key = f"bad{i}"
        try:
            rb.restore(key, 0, payload)
        except Exception:
            assert rb.exists(key) == 0
        else:
            # accepted: it must then behave as a campaign (or other value) without crashing
            try:
                rb.execute_command("LOTTERY.STATS", key)
                rb.execute_command("LOTTERY.DRAW", key, "z")
            except Exception:
                pass
        assert server.alive(), f"server died on mutant {i}\n{server.log_tail()}"
        assert r.ping()
    # the too-new version is refused for sure
    if body[1] == 0x81:
        mid = int.from_bytes(body[2:10], "big")
        nid = (mid & ~1023) | 1023
        with pytest.raises(Exception):
            rb.restore("toonew", 0, H.dump_with_crc(body[:2] + nid.to_bytes(8, "big") +
                                                    body[10:] + ver))
        assert rb.exists("toonew") == 0


def test_aof_holds_effects_not_draw_commands(server_factory):
    s = server_factory(appendonly=True, extra_args=["--appendfsync", "always",
                                                    "--aof-use-rdb-preamble", "no"])
    r = s.client()
    pin(r, H.T0)
    configure(r, "c", "PRIZE", "a", 1, 50, "NOTHING", 1, "MAXWINS", "INF")
    for i in range(30):
        draw(r, "c", "u", reqid=f"q{i}" if i % 2 else None)
    import glob
    import os
    blobs = b""
    for path in glob.glob(os.path.join(s.dir, "**", "*.aof*"), recursive=True):
        with open(path, "rb") as f:
            blobs += f.read()
    assert blobs, "no AOF written"
    assert b"lottery.draw" not in blobs.lower(), "DRAW was written to the AOF as a command"
    assert b"lottery.debug" not in blobs.lower()
    before = snapshot(s, {"c": [b"u"]}, H.T0)
    s.stop()
    s.start()
    assert snapshot(s, {"c": [b"u"]}, H.T0) == before
