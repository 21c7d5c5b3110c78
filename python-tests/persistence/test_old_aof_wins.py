"""An AOF written by a build that replicated each win as `MULTI; XADD <stream> <id> user ..
prize .. ts .. draw .. [reqid ..]; LOTTERY.APPLY <key> <effect>; EXEC` and each refusal as its
own `LOTTERY.APPLY`, loaded by this build: the same campaigns, counters, users, wins streams
(entries, IDs, metadata) and digests; later wins follow the loaded streams, and a rewrite and a
restart keep all of it.

fixtures/old-format-wins.aof is such an AOF (written by commit 143ffbb with the scenario in
`old_scenario`), fixtures/old-format-wins.json what that server held when it stopped. With
LOTTERY_OLD_MODULE set to an older build's liblottery.so, the scenario also runs live.
"""
import json
import os
from pathlib import Path

import pytest

import durability_helpers as D
import lottery_helpers as H

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
AOF_FIXTURE = FIXTURES / "old-format-wins.aof"
JSON_FIXTURE = FIXTURES / "old-format-wins.json"
TB = 4_000_000_000_000
KEYS = ["c", "{c}d", "e"]
USERS = [f"u{i}" for i in range(12)] + ["r", "a", "b"]


def old_scenario(raw):
    """Wins, refusals, REQID replays, a shared stream, a client's far-future ID and an XDEL."""
    def ok(*args):
        rep = raw.call(*args)
        assert not isinstance(rep, H.Err), (args, rep)
        return rep

    ok("LOTTERY.DEBUG", "CLOCK", TB)
    ok("LOTTERY.CONFIGURE", "c", "PRIZE", "p", 1, "INF", "NOTHING", 0, "MAXWINS", "INF",
       "COOLDOWN", 1000)
    ok("LOTTERY.CONFIGURE", "{c}d", "PRIZE", "q", 1, 5, "NOTHING", 1, "MAXWINS", 2,
       "STREAM", "{c}:wins")
    ok("LOTTERY.CONFIGURE", "e", "PRIZE", "g", 1, 3, "NOTHING", 1, "DAILY", 2)
    for i in range(8):
        ok("LOTTERY.DRAW", "c", f"u{i}")
        ok("LOTTERY.DRAW", "c", f"u{i}")                   # COOLDOWN
        ok("LOTTERY.DRAW", "{c}d", f"u{i}", "REQID", f"q{i}")
        ok("LOTTERY.DRAW", "{c}d", f"u{i}", "REQID", f"q{i}")  # replay
        ok("LOTTERY.DRAW", "e", f"u{i}")
    ok("LOTTERY.DEBUG", "CLOCK", TB + 5000)
    ok("XADD", "{c}:wins", f"{TB + 10**9}-0", "x", "y")
    ok("LOTTERY.DRAW", "c", "r", "REQID", "r1")
    ok("LOTTERY.DRAW", "c", "r", "REQID", "r1")
    ok("XDEL", "{c}:wins", f"{TB + 10**9}-0")
    for u in ("a", "b", "u9", "u10", "u11"):
        ok("LOTTERY.DRAW", "c", u)
        ok("LOTTERY.DRAW", "{c}d", u)
        ok("LOTTERY.DRAW", "e", u)
        ok("LOTTERY.DRAW", "e", u)
        ok("LOTTERY.DRAW", "e", u)                          # QUOTA
    ok("LOTTERY.BAN", "e", "u1", 60_000)
    ok("LOTTERY.DRAW", "e", "u1")                           # BANNED
    ok("LOTTERY.PAUSE", "{c}d")
    ok("LOTTERY.DRAW", "{c}d", "u1")                        # PAUSED
    ok("LOTTERY.DRAIN", "c")


def _js(v):
    if isinstance(v, bytes):
        return v.decode()
    if isinstance(v, (list, tuple)):
        return [_js(x) for x in v]
    if isinstance(v, dict):
        return {_js(k): _js(x) for k, x in v.items()}
    return v


def state(server):
    """Everything comparable, as JSON-able values, read with the clock pinned at TB + 5000."""
    rb = server.bclient()
    H.pin(rb, TB + 5000)
    raw = server.raw()
    out = {"keys": sorted(_js(raw.call("KEYS", "*")))}
    for k in KEYS:
        st = H.stats(rb, k)
        out[k] = {
            "digest": D.digest(rb, k),
            "stats": st,
            "users": {u: H.user(rb, k, u) for u in USERS},
            "drain_last": raw.call("LOTTERY.DRAIN", k, "LAST"),
        }
    for s in ("{c}:wins", "{e}:wins"):
        info = raw.call("XINFO", "STREAM", s)
        info = dict(zip(info[0::2], info[1::2]))
        out[s] = {
            "digest": D.digest(rb, s),
            "xrange": raw.call("XRANGE", s, "-", "+"),
            "xinfo": {k: info[k.encode()] for k in (
                "length", "last-generated-id", "max-deleted-entry-id", "entries-added",
                "recorded-first-entry-id")},
        }
    raw.close()
    return _js(out)


def _install_aof(dirpath, body: bytes):
    d = os.path.join(dirpath, "appendonlydir")
    os.makedirs(d)
    with open(os.path.join(d, "appendonly.aof.1.base.aof"), "wb") as f:
        f.write(body)
    with open(os.path.join(d, "appendonly.aof.manifest"), "w") as f:
        f.write("file appendonly.aof.1.base.aof seq 1 type b\n")


# What later builds added to STATS and USER, with the values a campaign of the fixture's
# build has: none of the campaign rules.
NEW_STATS = {"guarantee": -1, "guarantee_prizes": [], "total": -1, "period": "DAY",
             "rejected_total": 0, "after": [], "codes": [], "tiers": [], "verifiable": 0,
             "seed_log": None, "seed_epoch": 0, "seed_commitment": None, "seed_from_draw": -1,
             "seed_revealed": 0}
NEW_USER = {"draws_total": 0, "draws_since_win": 0}


def _as_fixture(got):
    """The state as the fixture's build showed it: the fields added since then must hold their
    defaults and are taken out. A campaign's digest is a fingerprint of its encoding, which
    has a newer version now: it is taken out of both sides (the restarts below compare it)."""
    got = json.loads(json.dumps(got))
    for k in KEYS:
        st = got[k]["stats"]
        for f, v in NEW_STATS.items():
            assert st.pop(f) == v, (k, f)
        for u in got[k]["users"].values():
            for f, v in NEW_USER.items():
                assert u.pop(f) == v, (k, f)
        got[k].pop("digest")
    return got


def _without_campaign_digests(want):
    want = json.loads(json.dumps(want))
    for k in KEYS:
        want[k].pop("digest")
    return want


def _continue_and_restart(s, want):
    """On the loaded server: the loaded state is `want`; new wins follow the old entries with
    exact IDs; BGREWRITEAOF and a restart keep everything."""
    assert _as_fixture(state(s)) == _without_campaign_digests(want)
    raw = s.raw()
    assert raw.call("LOTTERY.DEBUG", "CLOCK", TB + 2 * 10**9) == "OK"
    assert raw.call("LOTTERY.RESUME", "{c}d") == "OK"
    new = [raw.call("LOTTERY.DRAW", "c", f"n{i}") for i in range(3)]
    new.append(raw.call("LOTTERY.DRAW", "{c}d", "n9"))
    last = raw.call("XREVRANGE", "{c}:wins", "+", "-", "COUNT", 4)[::-1]
    wins = [x for x in new if x[0] == b"WIN"]
    assert len(wins) >= 3, new
    assert [x[2] for x in wins] == [e[0] for e in last[-len(wins):]]
    assert wins[0][2] == f"{TB + 2 * 10**9}-0".encode()
    raw.close()
    after = state(s)
    s.client().execute_command("BGREWRITEAOF")
    D.wait_aof_rewrite(s.client())
    s.restart()
    assert state(s) == after
    s.restart()
    assert state(s) == after


@pytest.mark.parametrize("preamble", ["no", "yes"])
def test_old_format_aof_fixture_loads_identically(server_factory, tmp_path, preamble):
    want = json.loads(JSON_FIXTURE.read_text())
    _install_aof(str(tmp_path), AOF_FIXTURE.read_bytes())
    s = server_factory(appendonly=True, dir=str(tmp_path),
                       extra_args=["--aof-use-rdb-preamble", preamble])
    _continue_and_restart(s, want)
    with open(s.logfile) as f:
        assert "could not append" not in f.read()


OLD_MODULE = os.environ.get("LOTTERY_OLD_MODULE")


@pytest.mark.skipif(not OLD_MODULE, reason="LOTTERY_OLD_MODULE (an older build) not set")
def test_old_build_aof_live(server_factory, tmp_path):
    old = server_factory(module=False, appendonly=True, dir=str(tmp_path),
                         extra_args=["--aof-use-rdb-preamble", "no",
                                     "--loadmodule", OLD_MODULE, "debug-clock", "yes"])
    raw = old.raw()
    old_scenario(raw)
    raw.close()
    want = state(old)
    old.stop()
    s = server_factory(appendonly=True, dir=str(tmp_path),
                       extra_args=["--aof-use-rdb-preamble", "no"])
    _continue_and_restart(s, want)


def write_fixture(old_module, out_dir=FIXTURES):
    """Writes fixtures/old-format-wins.{aof,json} with `old_module` (run by hand)."""
    import tempfile
    d = tempfile.mkdtemp(prefix="lottery-old-aof-")
    old = H.RedisServer(module=False, appendonly=True, dir=d,
                        extra_args=["--aof-use-rdb-preamble", "no",
                                    "--loadmodule", old_module, "debug-clock", "yes"])
    raw = old.raw()
    old_scenario(raw)
    raw.close()
    want = state(old)
    old.stop()
    body = b"".join(open(p, "rb").read() for p in D.aof_files(d))
    (Path(out_dir) / "old-format-wins.aof").write_bytes(body)
    (Path(out_dir) / "old-format-wins.json").write_text(json.dumps(want, indent=1) + "\n")
    old.cleanup()
