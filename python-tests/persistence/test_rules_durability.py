"""Every campaign rule of docs/rules.md at once (tiers, GUARANTEE with PRIZES, AFTER, TOTAL,
PERIOD WEEK, a CODES prize with thousands of codes), built under a mixed load, through every
way Redis moves a value: a live replica and a full sync (DEBUG DIGEST-VALUE / DIGEST, STATS,
USER, the wins stream), the AOF with and without the RDB preamble (rewritten during the load)
and as a plain log, RDB (SAVE + restart, DEBUG RELOAD), DUMP/RESTORE and COPY, and a failover
under load.

After each, the campaign goes on: it is drawn from until its code pool is empty, and the codes
handed out over its whole life (replies before, replies after) must be exactly the codes added
and not removed, each once, and exactly the `code` fields of its wins stream.
"""
import collections
import random
import threading
import time

import pytest

import durability_helpers as D
import lottery_helpers as H
from lottery_helpers import Err, Status

KEY = b"{r}camp"
STREAM = b"{r}camp:wins"
DAY = H.DAY_MS
N_CODES = 3000

CONFIG = [
    "PRIZE", "gold", 2, 40, "AFTER", 3,
    "PRIZE", "silver", 5, 300,
    "PRIZE", "card", 4, "CODES",
    "PRIZE", "pts", 0, "INF",
    "NOTHING", 30,
    "SOLDOUT", "FALLBACK", "pts",
    "MAXWINS", 4, "DAILY", 4, "PERIOD", "WEEK", "DAYOFFSET", 480, "TOTAL", 14,
    "COOLDOWN", 1000, "IDEMPOTENCY", 86_400_000,
    "GUARANTEE", 5, "PRIZES", 2, "card", "silver",
    "TIER", "vip", "PRIZE-WEIGHT", "gold", 6, "PRIZE-WEIGHT", "card", 8, "NOTHING", 10,
    "TIER", "low", "NOTHING", 200,
]


def ok(rep, what=""):
    assert isinstance(rep, Status) and rep == "OK", f"{what}: {rep!r}"


def pin(raw, ms):
    ok(raw.call("LOTTERY.DEBUG", "CLOCK", ms), "LOTTERY.DEBUG CLOCK")


class State:
    def __init__(self):
        self.added = []             # every code added (ADD replied it as added)
        self.removed = set()        # removed before being handed out
        self.handed = []            # the codes of the WIN replies seen (replays excluded)
        self.users = []
        self.clock = H.T0
        self.replies = {}           # (user, reqid) -> first reply


def record(st, rep, what):
    assert isinstance(rep, list) and len(rep) in (5, 6), f"{what}: {rep!r}"
    if rep[0] == b"WIN":
        if rep[1] == b"card":
            assert len(rep) == 6 and isinstance(rep[5], bytes), f"{what}: {rep!r}"
            st.handed.append(rep[5])
        else:
            assert len(rep) == 5, f"{what}: {rep!r}"
    else:
        assert len(rep) == 5, f"{what}: {rep!r}"


def add_codes(raw, st, codes):
    n = 0
    for i in range(0, len(codes), 500):
        n += raw.call("LOTTERY.CODES", KEY, "card", "ADD", *codes[i:i + 500])
    assert n == len(codes), (n, len(codes))
    st.added += codes


def load_rounds(raw, st, rng, rounds, start_round=0):
    """Rounds of draws from every user (half a day apart), with grants, bans, restocks,
    CODES REMOVE/ADD, a tier redefined, REQID replays, a pause, drains."""
    for rnd in range(start_round, start_round + rounds):
        st.clock += 12 * 3600 * 1000
        pin(raw, st.clock)
        cmds = []
        for i, u in enumerate(st.users):
            c = ["LOTTERY.DRAW", KEY, u]
            if (i + rnd) % 3 == 0:
                c += ["TIER", "vip"]
            elif (i + rnd) % 3 == 1:
                c += ["TIER", "low"]
            if i % 4 == 0:
                c += ["REQID", f"q{rnd}-{i}"]
            cmds.append(c)
        for c, rep in zip(cmds, raw.pipeline(cmds)):
            record(st, rep, c)
            if "REQID" in c and rep[0] in (b"WIN", b"LOSE"):
                st.replies[(c[2], c[-1])] = rep
        if rnd % 6 == 1:    # REQID replays of this round: the same reply, code included
            this = [(k, v) for k, v in st.replies.items() if k[1].startswith(f"q{rnd}-")]
            for (u, rid), rep in this[-40:]:
                again = raw.call("LOTTERY.DRAW", KEY, u, "REQID", rid)
                assert again == rep, (u, rid, rep, again)
        if rnd % 6 == 2:
            for u in st.users[:25]:
                raw.call("LOTTERY.GRANT", KEY, u, 3, "CAP", 6)
            ok(raw.call("LOTTERY.BAN", KEY, st.users[5], 20 * 3600 * 1000))
            raw.call("LOTTERY.RESTOCK", KEY, "silver", -5)
            raw.call("LOTTERY.DRAIN", KEY)
        if rnd % 6 == 3:
            for code in rng.sample(st.added, 30):
                n = raw.call("LOTTERY.CODES", KEY, "card", "REMOVE", code)
                assert n in (0, 1), n
                if n == 1:
                    assert code not in st.handed and code not in st.removed
                    st.removed.add(code)
                else:
                    assert code in st.handed or code in st.removed, code
        if rnd % 6 == 4:
            add_codes(raw, st, [b"late-%d-%d-" % (rnd, i) + rng.randbytes(6)
                                for i in range(200)])
            ok(raw.call("LOTTERY.CONFIGURE", KEY, "TIER", "low", "PRIZE-WEIGHT", "silver", 9,
                        "NOTHING", 100))
        if rnd % 6 == 5:
            ok(raw.call("LOTTERY.PAUSE", KEY))
            assert raw.call("LOTTERY.DRAW", KEY, st.users[0])[0] == b"PAUSED"
            ok(raw.call("LOTTERY.RESUME", KEY))
            ok(raw.call("LOTTERY.CONFIGURE", KEY, "TOTAL", 14 + rnd))


def build(server, rounds=18):
    st = State()
    rng = random.Random(20261130)
    raw = server.raw()
    try:
        pin(raw, st.clock)
        ok(raw.call("LOTTERY.CONFIGURE", KEY, *CONFIG), "CONFIGURE")
        add_codes(raw, st, [b"%05d-" % i + rng.randbytes(11) for i in range(N_CODES)])
        st.users = [f"u{i}".encode() for i in range(300)] + [b"\x00bin\xff", "奖品".encode(),
                                                              "\U0001F381".encode()]
        load_rounds(raw, st, rng, rounds)
        st.rng = rng
    finally:
        raw.close()
    assert st.handed, "no code was handed out by the load"
    return st


def more_load(server, st, rounds=3):
    raw = server.raw()
    try:
        load_rounds(raw, st, st.rng, rounds, start_round=100)
    finally:
        raw.close()


def view(server, st, master=True):
    """Everything comparable, read with the node's clock pinned at st.clock."""
    raw = server.raw()
    try:
        pin(raw, st.clock)
        names = ["DIGEST-VALUE", "STATS", "XRANGE", "DIGEST"]
        cmds = [("DEBUG", "DIGEST-VALUE", KEY), ("LOTTERY.STATS", KEY),
                ("XRANGE", STREAM, "-", "+"), ("DEBUG", "DIGEST")]
        for u in st.users:
            names.append(f"USER {u!r}")
            cmds.append(("LOTTERY.USER", KEY, u))
        if master:
            names += ["DRAIN LAST", "CODES COUNT"]
            cmds += [("LOTTERY.DRAIN", KEY, "LAST"), ("LOTTERY.CODES", KEY, "card", "COUNT")]
        reps = raw.pipeline(cmds)
    finally:
        raw.close()
    v = dict(zip(names, reps))
    for name, rep in v.items():
        assert not isinstance(rep, Err), f"{name}: {rep}"
    stats = dict(zip(v["STATS"][0::2], v["STATS"][1::2]))
    for k in (b"guarantee", b"total", b"period", b"tiers", b"rejected_total"):
        assert k in stats, f"STATS has no {k!r}"
    if master:
        card = [p for p in stats[b"prizes"] if p[0] == b"card"][0]
        assert card[2] == v["CODES COUNT"], f"card stock {card[2]} != COUNT {v['CODES COUNT']}"
    return v


def assert_same(a, b, what):
    for name in a:
        if name in b and a[name] != b[name]:
            if name == "STATS":
                da = dict(zip(a[name][0::2], a[name][1::2]))
                db = dict(zip(b[name][0::2], b[name][1::2]))
                diff = {k: (da[k], db.get(k)) for k in da if da[k] != db.get(k)}
                pytest.fail(f"{what}: STATS differ: {str(diff)[:600]}", pytrace=False)
            pytest.fail(f"{what}: {name} differs: {str(a[name])[:300]} vs {str(b[name])[:300]}",
                        pytrace=False)


def stream_codes(server):
    raw = server.raw()
    try:
        entries = H.xrange_raw(raw, STREAM)
    finally:
        raw.close()
    out = []
    for eid, fields in entries:
        f = dict(fields)
        names = [k for k, _ in fields]
        if f[b"prize"] == b"card":
            assert names[:4] == [b"user", b"prize", b"draw", b"code"], names
            out.append(f[b"code"])
        else:
            assert b"code" not in f, fields
    return out


def exhaust_and_check(server, st, what):
    """Draw on `server` until the pool is empty; then every code added and not removed was
    handed out exactly once over the campaign's life, and the stream agrees."""
    raw = server.raw()
    try:
        st.clock += 30 * DAY
        pin(raw, st.clock)
        ok(raw.call("LOTTERY.CONFIGURE", KEY, "PRIZE", "gold", 0, 0, "AFTER", 3,
                    "PRIZE", "silver", 0, 0, "PRIZE", "card", 1, "CODES", "PRIZE", "pts", 0, "INF",
                    "NOTHING", 0, "MAXWINS", "INF", "TOTAL", "INF", "DAILY", "INF",
                    "COOLDOWN", 0, "GUARANTEE", "OFF"), f"{what}: CONFIGURE for the end")
        left = raw.call("LOTTERY.CODES", KEY, "card", "COUNT")
        cmds = [("LOTTERY.DRAW", KEY, f"end{i}") for i in range(left + 20)]
        reps = []
        for i in range(0, len(cmds), 2000):
            reps += raw.pipeline(cmds[i:i + 2000])
        for c, rep in zip(cmds, reps):
            record(st, rep, c)
        assert all(r[:2] == [b"WIN", b"card"] for r in reps[:left]), f"{what}: {reps[:3]}"
        assert all(r[:2] == [b"WIN", b"pts"] for r in reps[left:]), \
            f"{what}: after the pool ran dry: {reps[left:left + 3]}"
        assert raw.call("LOTTERY.CODES", KEY, "card", "COUNT") == 0
    finally:
        raw.close()
    c = collections.Counter(st.handed)
    twice = [k for k, n in c.items() if n > 1]
    assert not twice, f"{what}: {len(twice)} codes handed out twice, e.g. {twice[:3]}"
    want = set(st.added) - st.removed
    assert set(c) == want, f"{what}: handed out {len(c)} codes, {len(set(c) - want)} never " \
                           f"added (or removed), {len(want - set(c))} added and never handed out"
    assert collections.Counter(stream_codes(server)) == c, f"{what}: stream codes differ"


def restart(server, what):
    server.stop(save=False)
    try:
        server.start(timeout=120)
    except RuntimeError as e:
        server.intentionally_stopped = True
        pytest.fail(f"{what}: the server did not start again from its own files:\n"
                    f"{str(e)[-2500:]}", pytrace=False)
    D.wait_loaded(server.port)


def wait_rewrite(server):
    D.wait_aof_rewrite(server.client(), timeout=120)


# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("preamble", ["yes", "no"])
def test_aof_rewrite_during_load_then_restart(server_factory, preamble):
    s = server_factory(appendonly=True, extra_args=["--aof-use-rdb-preamble", preamble,
                                                    "--appendfsync", "no"])
    st = build(s, rounds=12)
    assert s.client().bgrewriteaof()
    more_load(s, st, rounds=2)          # draws while (or just after) the rewrite runs
    wait_rewrite(s)
    more_load(s, st, rounds=2)          # and after it: in the incremental file
    before = view(s, st)
    restart(s, f"AOF, preamble {preamble}")
    assert_same(before, view(s, st), f"AOF (aof-use-rdb-preamble {preamble}) restart")
    exhaust_and_check(s, st, f"AOF preamble {preamble}")


def test_aof_log_replay(server_factory):
    s = server_factory(appendonly=True, extra_args=["--aof-use-rdb-preamble", "no",
                                                    "--appendfsync", "no"])
    st = build(s)
    before = view(s, st)
    restart(s, "AOF log")
    assert_same(before, view(s, st), "AOF log replay")
    exhaust_and_check(s, st, "AOF log")


def test_rdb_save_restart_and_debug_reload(server_factory):
    s = server_factory()
    st = build(s)
    before = view(s, st)
    r = s.client()
    assert r.execute_command("DEBUG", "RELOAD") in ("OK", True)
    assert_same(before, view(s, st), "DEBUG RELOAD")
    assert r.save()
    restart(s, "RDB")
    assert_same(before, view(s, st), "RDB restart")
    exhaust_and_check(s, st, "RDB")


def test_dump_restore_and_copy(server_factory):
    s = server_factory()
    st = build(s)
    before = view(s, st)
    raw = s.raw()
    blob = raw.call("DUMP", KEY)
    assert isinstance(blob, bytes)
    assert raw.call("DEL", KEY) == 1
    ok(raw.call("RESTORE", KEY, 0, blob), "RESTORE")
    assert_same(before, view(s, st), "DEL + RESTORE")
    # under another name: the same value (standalone: it keeps its stream)
    ok(raw.call("RESTORE", b"{r}other", 0, blob), "RESTORE as another key")
    assert raw.call("DEBUG", "DIGEST-VALUE", b"{r}other") == raw.call("DEBUG", "DIGEST-VALUE",
                                                                     KEY)
    assert raw.call("DEL", b"{r}other") == 1
    # COPY: the same pool, rules and users (the default stream follows the new key)
    copy = b"{r}copy"
    assert raw.call("COPY", KEY, copy) == 1
    a, c = raw.call("LOTTERY.STATS", KEY), raw.call("LOTTERY.STATS", copy)
    da, dc = dict(zip(a[0::2], a[1::2])), dict(zip(c[0::2], c[1::2]))
    assert dc.pop(b"stream") == copy + b":wins"
    da.pop(b"stream")
    assert da == dc
    assert raw.call("LOTTERY.CODES", copy, "card", "COUNT") == \
        raw.call("LOTTERY.CODES", KEY, "card", "COUNT")
    for u in st.users[:50]:
        assert raw.call("LOTTERY.USER", copy, u) == raw.call("LOTTERY.USER", KEY, u)
    # the copy hands out exactly the codes the original has left, and none handed out before
    pin(raw, st.clock + 40 * DAY)
    ok(raw.call("LOTTERY.CONFIGURE", copy, "PRIZE", "gold", 0, 0, "AFTER", 3, "PRIZE", "silver",
                0, 0, "PRIZE", "card", 1, "CODES", "PRIZE", "pts", 0, "INF", "NOTHING", 0,
                "MAXWINS", "INF", "TOTAL", "INF", "DAILY", "INF", "COOLDOWN", 0,
                "GUARANTEE", "OFF"))
    left = raw.call("LOTTERY.CODES", copy, "card", "COUNT")
    reps = raw.pipeline([("LOTTERY.DRAW", copy, f"c{i}") for i in range(left + 5)])
    copy_codes = [r[5] for r in reps if len(r) == 6]
    assert len(copy_codes) == left == len(set(copy_codes))
    assert not set(copy_codes) & set(st.handed), "the copy handed out codes already handed out"
    assert set(copy_codes) == set(st.added) - st.removed - set(st.handed)
    raw.close()
    exhaust_and_check(s, st, "DUMP/RESTORE")


@pytest.mark.parametrize("when", ["live", "full-sync"])
def test_replica_identical(server_factory, when):
    m = server_factory()
    rep = None
    if when == "live":
        rep = server_factory(replicaof=("127.0.0.1", m.port))
        H.wait_link_up(rep.client())
    st = build(m)
    if rep is None:
        rep = server_factory(replicaof=("127.0.0.1", m.port))
        H.wait_link_up(rep.client())
    rm = m.client()
    D.wait_acked(rm)
    D.wait_same_offset([rm, rep.client()])
    assert_same(view(m, st, master=False), view(rep, st, master=False), f"replica ({when})")
    assert D.db_digest(rm) == D.db_digest(rep.client())
    exhaust_and_check(m, st, f"master with a replica ({when})")
    D.wait_acked(rm)
    D.wait_same_offset([rm, rep.client()])
    assert_same(view(m, st, master=False), view(rep, st, master=False),
                f"replica ({when}) after the pool ran dry")
    assert collections.Counter(stream_codes(rep)) == collections.Counter(st.handed)


# --------------------------------------------------------------------------------------------
# failover under load


FKEY = b"{f}rules"
FSTREAM = b"{f}rules:wins"
F_CODES = 6000
F_CONFIG = [
    "PRIZE", "card", 5, "CODES", "PRIZE", "gold", 1, 100, "AFTER", 2, "PRIZE", "pts", 1, "INF",
    "NOTHING", 10, "SOLDOUT", "FALLBACK", "pts", "GUARANTEE", 3, "PRIZES", 1, "card",
    "TOTAL", 30, "DAILY", 20, "PERIOD", "WEEK", "MAXWINS", 10,
    "TIER", "vip", "PRIZE-WEIGHT", "card", 20, "NOTHING", 5,
]


class Load:
    def __init__(self, servers):
        self.servers = servers
        self.target = 0
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.seen = []          # (user, reply, acked)
        self.draws = 0
        self.unexpected = []
        self.reqids = []        # (command, WIN reply) of the draws made with a REQID

    def worker(self, seed):
        rng = random.Random(seed)
        raw, raw_for = None, None
        n = 0
        while not self.stop.is_set():
            idx = self.target
            try:
                if raw_for != idx:
                    if raw:
                        raw.close()
                    raw, raw_for = self.servers[idx].raw(), idx
                cmds = []
                for _ in range(40):
                    n += 1
                    c = ["LOTTERY.DRAW", FKEY, b"u%d" % rng.randrange(2000)]
                    if n % 2:
                        c += ["TIER", "vip"]
                    if n % 3 == 0:
                        c += ["REQID", f"t{seed}-{n}"]
                    cmds.append(c)
                reps = raw.pipeline(cmds + [("WAIT", 1, 1000)])
            except (ConnectionError, OSError):
                raw, raw_for = None, None
                time.sleep(0.01)
                continue
            acked = isinstance(reps[-1], int) and reps[-1] >= 1
            with self.lock:
                for c, rep in zip(cmds, reps[:-1]):
                    if isinstance(rep, Err):
                        if not rep.startswith("READONLY"):
                            self.unexpected.append((c, rep))
                        continue
                    self.draws += 1
                    if rep[0] == b"WIN":
                        self.seen.append((c[2], rep, acked))
                        if "REQID" in c:
                            self.reqids.append((c, rep))
            if any(isinstance(x, Err) for x in reps):
                time.sleep(0.005)
        if raw:
            raw.close()


def _wait_draws(load, n, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline and load.draws < n:
        time.sleep(0.01)
    assert load.draws >= n, f"only {load.draws} draws in {timeout}s"


def test_failover_keeps_every_win_and_never_repeats_a_code(server_factory):
    master = server_factory()
    replica = server_factory(replicaof=("127.0.0.1", master.port))
    rm, rs = master.client(), replica.client()
    H.wait_link_up(rs)
    raw = master.raw()
    ok(raw.call("LOTTERY.CONFIGURE", FKEY, *F_CONFIG))
    added = [b"F%05d-" % i + bytes([i % 256]) * 6 for i in range(F_CODES)]
    for i in range(0, F_CODES, 1000):
        assert raw.call("LOTTERY.CODES", FKEY, "card", "ADD", *added[i:i + 1000]) == 1000
    raw.close()
    D.wait_acked(rm)

    load = Load({0: master, 1: replica})
    ts = [threading.Thread(target=load.worker, args=(7 + i,)) for i in range(2)]
    for t in ts:
        t.start()
    try:
        _wait_draws(load, 2000)
        assert rm.execute_command("FAILOVER", "TIMEOUT", 20000) == "OK"
        D.wait_role(rs, "master")
        D.wait_role(rm, "slave")
        with load.lock:
            load.target = 1
            at = load.draws
        _wait_draws(load, at + 3000)
    finally:
        load.stop.set()
        for t in ts:
            t.join(60)
    assert not load.unexpected, load.unexpected[:5]

    new = replica
    H.wait_link_up(rm)
    D.wait_acked(rs)
    nraw = new.raw()
    entries = {eid: dict(f) for eid, f in H.xrange_raw(nraw, FSTREAM)}
    for u, rep, acked in load.seen:
        f = entries.get(rep[2])
        assert f is not None, f"WIN {rep} (acked {acked}) is not on the new master's stream"
        assert f[b"user"] == u and f[b"prize"] == rep[1], (u, rep, f)
        if rep[1] == b"card":
            assert len(rep) == 6 and f[b"code"] == rep[5], (rep, f)
        else:
            assert len(rep) == 5 and b"code" not in f, (rep, f)
    # REQID retries of WINs on the new master: the very same reply, the code included
    retries = [x for x in load.reqids if x[1][1] == b"card"][-200:]
    assert retries
    again = nraw.pipeline([c for c, _ in retries])
    for (c, rep), a in zip(retries, again):
        assert a == rep, (c, rep, a)
    before = [f[b"code"] for f in entries.values() if b"code" in f]
    c = collections.Counter(before)
    assert all(n == 1 for n in c.values()), "a code handed out twice before the pool ran dry"
    # draw on the new master until the pool is empty
    ok(nraw.call("LOTTERY.CONFIGURE", FKEY, "PRIZE", "card", 1, "CODES", "PRIZE", "gold", 0, 0,
                 "AFTER", 2, "PRIZE", "pts", 0, "INF", "NOTHING", 0, "MAXWINS", "INF",
                 "TOTAL", "INF", "DAILY", "INF", "GUARANTEE", "OFF"))
    left = nraw.call("LOTTERY.CODES", FKEY, "card", "COUNT")
    assert left + len(before) == F_CODES, (left, len(before))
    reps = []
    cmds = [("LOTTERY.DRAW", FKEY, f"end{i}") for i in range(left + 10)]
    for i in range(0, len(cmds), 2000):
        reps += nraw.pipeline(cmds[i:i + 2000])
    after = [r[5] for r in reps if len(r) == 6]
    assert len(after) == left
    allc = collections.Counter(before + after)
    assert set(allc) == set(added) and all(n == 1 for n in allc.values()), \
        "the codes handed out over the failover are not the codes added, each once"
    assert collections.Counter(
        f[b"code"] for f in (dict(x) for _, x in H.xrange_raw(nraw, FSTREAM)) if b"code" in f
    ) == allc
    nraw.close()
    D.wait_acked(rs)
    assert D.digest(rs, FKEY) == D.digest(rm, FKEY)
    print(f"\nfailover: {load.draws} draws, {len(load.seen)} WINs seen "
          f"({sum(1 for s in load.seen if s[2])} acked), {len(before)} codes before the end, "
          f"{left} drawn after")


# --------------------------------------------------------------------------------------------
# small random states of the rules, many at once, through every path


def _rand_rules_state(rng, key):
    """The commands of a small random campaign with the new rules (every tier has at least
    one clause: the clause-less tier is test_campaign_rules.py's own case)."""
    ids = list(dict.fromkeys(bytes(rng.choice(b"abcxyz\x00\xff") for _ in range(rng.randint(1, 4)))
                             for _ in range(rng.randint(1, 4))))
    args, codes = [], []
    for pid in ids:
        w = rng.choice([0, 1, 2, 5])
        if rng.random() < 0.3:
            args += ["PRIZE", pid, w, "CODES"]
            codes.append(pid)
        else:
            args += ["PRIZE", pid, w, rng.choice(["INF", 0, 1, 3])]
        if rng.random() < 0.3:
            args += ["AFTER", rng.choice([1, 2, 3, 4294967295])]
    args += ["NOTHING", rng.choice([0, 1, 3]), "MAXWINS", "INF"]
    if rng.random() < 0.5:
        args += ["GUARANTEE", rng.choice([2, 3, 1000000])]
        if rng.random() < 0.5:
            k = rng.randint(1, len(ids))
            args += ["PRIZES", k] + rng.sample(ids, k)
    if rng.random() < 0.4:
        args += ["TOTAL", rng.choice([0, 1, 5, 4294967295, "INF"])]
    if rng.random() < 0.4:
        args += ["PERIOD", rng.choice(["DAY", "WEEK", "MONTH"])]
    if rng.random() < 0.3:
        args += ["DAILY", rng.choice([0, 1, 3])]
    if rng.random() < 0.3:
        args += ["SOLDOUT", rng.choice(["LOSE", "REDRAW"])]
    tiers = []
    for _ in range(rng.choice([0, 0, 1, 2, 3])):
        name = bytes(rng.choice(b"tvip\x00") for _ in range(rng.randint(1, 6)))
        c = ["TIER", name]
        for pid in rng.sample(ids, rng.randint(0, len(ids))):
            c += ["PRIZE-WEIGHT", pid, rng.choice([0, 1, 7])]
        if len(c) == 2 or rng.random() < 0.5:
            c += ["NOTHING", rng.choice([0, 1, 9])]
        args += c
        tiers.append(name)
    cmds = [("LOTTERY.CONFIGURE", key, *args)]
    for pid in codes:
        n = rng.randint(0, 4)
        if n:
            cmds.append(("LOTTERY.CODES", key, pid, "ADD",
                         *[bytes(rng.choice(b"01\x00") for _ in range(rng.randint(1, 3)))
                           for _ in range(n)]))
    for _ in range(rng.randint(0, 12)):
        c = ["LOTTERY.DRAW", key, rng.choice([b"u", b"v", b"\x00"])]
        if tiers and rng.random() < 0.5:
            c += ["TIER", rng.choice(tiers)]
        if rng.random() < 0.3:
            c += ["REQID", b"r%d" % rng.randrange(3)]
        cmds.append(tuple(c))
    if rng.random() < 0.3:
        cmds.append(("LOTTERY.GRANT", key, "u", 2))
    if rng.random() < 0.3:
        cmds.append(("LOTTERY.CONFIGURE", key, "TOTAL", "INF", "GUARANTEE", "OFF"))
    return cmds


def test_many_small_rule_states_roundtrip(server_factory):
    """400 small random campaigns with the rules (from fixed seeds): a live replica has the
    same digests; DUMP + RESTORE under another name, DEBUG RELOAD, and an AOF rewritten
    without the RDB preamble and replayed at a restart give the same digests."""
    m = server_factory(appendonly=True, extra_args=["--aof-use-rdb-preamble", "no",
                                                    "--appendfsync", "no"])
    rep = server_factory(replicaof=("127.0.0.1", m.port))
    H.wait_link_up(rep.client())
    raw = m.raw()
    keys = []
    for seed in range(400):
        rng = random.Random(seed)
        key = b"{s%d}" % seed
        pin(raw, H.T0 + seed * 1000)
        raw.pipeline(_rand_rules_state(rng, key))
        if raw.call("EXISTS", key):
            keys.append(key)
    assert len(keys) > 300, len(keys)
    digests = raw.pipeline([("DEBUG", "DIGEST-VALUE", k) for k in keys])
    D.wait_acked(m.client())
    D.wait_same_offset([m.client(), rep.client()])
    rraw = rep.raw()
    assert rraw.pipeline([("DEBUG", "DIGEST-VALUE", k) for k in keys]) == digests, "replica"
    rraw.close()
    bad = []
    for k, d in zip(keys, digests):
        r = raw.call("RESTORE", k + b":r", 0, raw.call("DUMP", k))
        if r != "OK" or raw.call("DEBUG", "DIGEST-VALUE", k + b":r") != d:
            bad.append((k, r))
        raw.call("DEL", k + b":r")
    assert not bad, f"DUMP + RESTORE: {bad[:5]}"
    whole = raw.call("DEBUG", "DIGEST")
    assert raw.call("DEBUG", "RELOAD") == "OK"
    assert raw.call("DEBUG", "DIGEST") == whole, "DEBUG RELOAD"
    raw.close()
    rep.stop()
    assert m.client().bgrewriteaof()
    wait_rewrite(m)
    restart(m, "AOF rewritten without the preamble")
    raw = m.raw()
    assert raw.pipeline([("DEBUG", "DIGEST-VALUE", k) for k in keys]) == digests, "AOF"
    assert raw.call("DEBUG", "DIGEST") == whole
    raw.close()


# --------------------------------------------------------------------------------------------
# corrupt payloads of the new encoding (tiers, lifetime counts, code pools)


def _exercise_rules(raw, key):
    """An accepted payload must give a campaign that works; a list of problems."""
    problems = []
    if raw.call("TYPE", key) != "lottery01":
        return ["TYPE"]
    for clock in (H.T0 + 5 * DAY, 1, 2 ** 62, H.I64_MAX, "REAL"):
        raw.call("LOTTERY.DEBUG", "CLOCK", clock)
        for cmd in (("LOTTERY.STATS", key), ("LOTTERY.USER", key, b"u1"),
                    ("LOTTERY.USER", key, b"zz"), ("LOTTERY.CODES", key, "card", "COUNT")):
            rep = raw.call(*cmd)
            if isinstance(rep, Err) and not (cmd[1:3] == (key, "card") and "prize" in rep):
                problems.append(f"{cmd[0]} at {clock}: {rep}")
        for extra in ((), ("TIER", "vip"), ("TIER", "low"), ("REQID", "r1")):
            for u in (b"u1", b"new"):
                rep = raw.call("LOTTERY.DRAW", key, u, *extra)
                if isinstance(rep, Err):
                    if not (rep.startswith("WRONGTYPE") or "no such tier" in rep):
                        problems.append(f"DRAW {extra} at {clock}: {rep}")
                elif not (isinstance(rep, list) and (len(rep) == 5 or
                                                     (len(rep) == 6 and rep[0] == b"WIN"))):
                    problems.append(f"DRAW reply {rep!r}")
    for cmd in (("LOTTERY.CODES", key, "card", "ADD", "fresh-code"), ("LOTTERY.GRANT", key, "u2", 1),
                ("LOTTERY.DRAIN", key), ("DEBUG", "DIGEST-VALUE", key), ("MEMORY", "USAGE", key)):
        rep = raw.call(*cmd)
        if isinstance(rep, Err) and not (cmd[0] == "LOTTERY.CODES" and "prize" in rep):
            problems.append(f"{cmd[0]}: {rep}")
    rep = raw.call("RESTORE", key, 0, raw.call("DUMP", key), "REPLACE")
    if rep != "OK":
        problems.append(f"re-RESTORE of its own DUMP: {rep}")
    return problems


def _rules_source(server, compressed):
    raw = server.raw()
    try:
        raw.call("CONFIG", "SET", "rdbcompression", "yes" if compressed else "no")
        if not raw.call("EXISTS", "camp"):
            pin(raw, H.T0)
            ok(raw.call("LOTTERY.CONFIGURE", "camp", *CONFIG))
            ok(raw.call("LOTTERY.CONFIGURE", "camp", "COOLDOWN", 0))
            assert raw.call("LOTTERY.CODES", "camp", "card", "ADD",
                            *[b"code%04d" % i for i in range(300)]) == 300
            cmds = []
            for i in range(40):
                for t in ((), ("TIER", "vip"), ("TIER", "low")):
                    cmds.append(("LOTTERY.DRAW", "camp", b"u%d" % i, *t))
            raw.pipeline(cmds)
            raw.call("LOTTERY.GRANT", "camp", "u1", 2)
        blob = raw.call("DUMP", "camp")
        raw.call("CONFIG", "SET", "rdbcompression", "yes")
    finally:
        raw.close()
    return blob


def test_corrupt_payloads_of_the_rules_encoding(server):
    from test_hostile import _variants        # the corruption families of test_hostile.py
    raw = server.raw()
    rng = random.Random(20261130)
    variants = _variants(_rules_source(server, False), _rules_source(server, True), rng)
    assert len(variants) >= 500, len(variants)
    before = raw.call("DEBUG", "DIGEST-VALUE", "camp")
    refused = accepted = 0
    misbehaved = []
    for n, (name, payload) in enumerate(variants):
        rep = raw.call("RESTORE", "victim", 0, payload, "REPLACE")
        if not server.alive():
            pytest.fail(f"server died on variant {name}: {payload.hex()}\n{server.log_tail()}")
        if isinstance(rep, Err):
            refused += 1
            if raw.call("EXISTS", "victim"):
                misbehaved.append((name, "a refused RESTORE left a key"))
            continue
        accepted += 1
        problems = _exercise_rules(raw, "victim")
        if not server.alive():
            pytest.fail(f"server died using accepted variant {name}: {payload.hex()}\n"
                        f"{server.log_tail()}")
        if problems:
            misbehaved.append((name, problems[:3], payload.hex()[:200]))
        raw.call("DEL", "victim")
    print(f"\n{len(variants)} corrupt payloads of the rules encoding: {refused} refused, "
          f"{accepted} accepted and usable")
    assert not misbehaved, misbehaved[:5]
    assert raw.call("DEBUG", "DIGEST-VALUE", "camp") == before
    info = raw.call("INFO", "lottery").decode()
    assert "lottery_internal_errors:0" in info, [l for l in info.splitlines() if "internal" in l]


def test_replication_traffic_of_code_pools(master_replica):
    """Codes live outside the meta record: a CONFIGURE never carries them to replicas (nor a
    COUNT anything); ADD carries about the codes themselves, a draw its own effect."""
    master, replica = master_replica
    raw = master.raw()

    def offset():
        info = raw.call("INFO", "replication").decode()
        return int(next(l.split(":")[1] for l in info.splitlines()
                        if l.startswith("master_repl_offset:")))

    ok(raw.call("LOTTERY.CONFIGURE", "k", "PRIZE", "card", 1, "CODES", "PRIZE", "x", 1, 1000,
                "NOTHING", 1, "MAXWINS", "INF", "GUARANTEE", 5, "TIER", "vip", "NOTHING", 3))
    o = offset()
    n = 50_000
    for i in range(0, n, 10_000):
        assert raw.call("LOTTERY.CODES", "k", "card", "ADD",
                        *[b"%016d" % j for j in range(i, i + 10_000)]) == 10_000
    per_code = (offset() - o) / n
    o = offset()
    ok(raw.call("LOTTERY.CONFIGURE", "k", "COOLDOWN", 0))
    ok(raw.call("LOTTERY.CONFIGURE", "k", "PRIZE", "card", 2, "CODES", "PRIZE", "x", 1, 1000))
    configure_bytes = offset() - o
    o = offset()
    assert raw.call("LOTTERY.CODES", "k", "card", "COUNT") == n
    count_bytes = offset() - o
    o = offset()
    reps = raw.pipeline([("LOTTERY.DRAW", "k", b"u%d" % (i % 50), "TIER", "vip")
                         for i in range(2000)])
    per_draw = (offset() - o) / 2000
    print(f"\nreplicated: {per_code:.1f} B per code added, {configure_bytes} B for two "
          f"CONFIGUREs, {count_bytes} B for COUNT, {per_draw:.1f} B per draw")
    assert per_code < 64 and configure_bytes < 1024 and count_bytes == 0 and per_draw < 400
    assert sum(1 for r in reps if len(r) == 6) > 300
    D.wait_same_offset([master.client(), replica.client()])
    assert D.digest(master.client(), "k") == D.digest(replica.client(), "k")


def test_code_wins_in_multi_and_lua_replicate(master_replica):
    master, replica = master_replica
    raw = master.raw()
    ok(raw.call("LOTTERY.CONFIGURE", "{m}k", "PRIZE", "card", 3, "CODES", "PRIZE", "p", 1, "INF",
                "NOTHING", 1, "MAXWINS", "INF", "GUARANTEE", 2, "PRIZES", 1, "card",
                "TIER", "vip", "PRIZE-WEIGHT", "card", 9))
    cmds = [("MULTI",), ("LOTTERY.CODES", "{m}k", "card", "ADD", *[b"m%d" % i for i in range(50)])]
    cmds += [("LOTTERY.DRAW", "{m}k", b"u%d" % (i % 3), "TIER", "vip") for i in range(20)]
    cmds += [("LOTTERY.CODES", "{m}k", "card", "REMOVE", "m49"), ("EXEC",)]
    exec_rep = raw.pipeline(cmds)[-1]
    assert isinstance(exec_rep, list) and len(exec_rep) == 22, exec_rep
    codes = [r[5] for r in exec_rep[1:21] if len(r) == 6]
    for i in range(10):
        rep = raw.call("EVAL", "return redis.call('LOTTERY.DRAW', KEYS[1], ARGV[1], 'TIER', "
                               "'vip', 'REQID', ARGV[2])", 1, "{m}k", f"lua{i % 2}", f"q{i}")
        if len(rep) == 6:
            codes.append(rep[5])
    assert len(codes) == len(set(codes)) > 5
    D.wait_same_offset([master.client(), replica.client()])
    assert raw.call("DEBUG", "DIGEST") == replica.raw().call("DEBUG", "DIGEST")
    mx = H.xrange_raw(raw, "{m}k:wins")
    assert mx == H.xrange_raw(replica.raw(), "{m}k:wins")
    assert [dict(f)[b"code"] for _, f in mx if b"code" in dict(f)] == codes


@pytest.mark.parametrize("preamble", ["no", "yes"])
def test_clauseless_short_tier_through_the_aof(server_factory, preamble):
    s = server_factory(appendonly=True, extra_args=["--aof-use-rdb-preamble", preamble,
                                                    "--appendfsync", "no"])
    raw = s.raw()
    ok(raw.call("LOTTERY.CONFIGURE", "k", "PRIZE", "p", 1, 100, "TIER", "vip"))
    ok(raw.call("SET", "other", "v"))
    d = raw.call("DEBUG", "DIGEST")
    raw.close()
    assert s.client().bgrewriteaof()
    wait_rewrite(s)
    restart(s, f"AOF rewrite, preamble {preamble}")
    raw = s.raw()
    assert sorted(raw.call("KEYS", "*")) == [b"k", b"other"]
    assert raw.call("DEBUG", "DIGEST") == d
    raw.close()


def _build_extremes(raw):
    """Every new limit at once: 65,536 prizes, GUARANTEE 1000000 with PRIZES 65536, AFTER and
    TOTAL 4294967295, 32 tiers with 64-byte binary names (one without a clause), code pools of
    512-byte and 1-byte-ish codes, 5,000 users with lifetime counts."""
    n = 65_536
    ids = [b"p%d" % i for i in range(n - 2)] + [b"card", b"tiny"]
    args = []
    for pid in ids[:-2]:
        args += ["PRIZE", pid, 1, "INF"]
        if pid.endswith(b"7"):
            args += ["AFTER", 4294967295]
    args += ["PRIZE", "card", 1000, "CODES", "PRIZE", "tiny", 1000, "CODES", "AFTER", 2]
    args += ["NOTHING", 4294967295, "MAXWINS", "INF", "TOTAL", 4294967295, "PERIOD", "MONTH",
             "DAYOFFSET", -1440, "DAILY", 4294967295,
             "GUARANTEE", 1000000, "PRIZES", n, *ids]
    for t in range(32):
        name = bytes([t]) + bytes((t * 7 + i) % 256 for i in range(63))
        args += ["TIER", name]
        if t != 5:
            for i in range(100):
                args += ["PRIZE-WEIGHT", ids[(t * 100 + i) % n], t]
            args += ["PRIZE-WEIGHT", "card", 4294967295, "NOTHING", t]
    ok(raw.call("LOTTERY.CONFIGURE", "x", *args), "CONFIGURE at the limits")
    for i in range(0, 20_000, 5000):
        assert raw.call("LOTTERY.CODES", "x", "card", "ADD",
                        *[b"%05d" % j + bytes([j % 256]) * 506 for j in range(i, i + 5000)]) \
            == 5000
    assert raw.call("LOTTERY.CODES", "x", "tiny", "ADD",
                    *[bytes([a, b]) for a in range(256) for b in range(0, 256, 8)]) == 8192
    tiers = [bytes([t]) + bytes((t * 7 + i) % 256 for i in range(63)) for t in range(32)]
    cmds = []
    for u in range(5000):
        c = ["LOTTERY.DRAW", "x", b"u%d" % u]
        if u % 2:
            c += ["TIER", tiers[u % 32]]
        cmds.append(c)
    reps = []
    for i in range(0, len(cmds), 1000):
        reps += raw.pipeline(cmds[i:i + 1000])
    assert all(isinstance(r, list) for r in reps), [r for r in reps if not isinstance(r, list)][:3]
    assert sum(1 for r in reps if len(r) == 6) > 1000


def test_extremes_through_every_path(server_factory):
    m = server_factory(appendonly=True, extra_args=["--aof-use-rdb-preamble", "no",
                                                    "--appendfsync", "no"])
    rep = server_factory(replicaof=("127.0.0.1", m.port))
    H.wait_link_up(rep.client())
    raw = m.raw()
    pin(raw, H.T0)
    _build_extremes(raw)
    d, whole = raw.call("DEBUG", "DIGEST-VALUE", "x"), raw.call("DEBUG", "DIGEST")
    raw.close()
    D.wait_acked(m.client(), timeout_ms=60000)
    D.wait_same_offset([m.client(), rep.client()], timeout=60)
    assert rep.raw().call("DEBUG", "DIGEST-VALUE", "x") == d, "live replica"
    rep.stop()
    raw = m.raw()
    ok(raw.call("RESTORE", "x2", 0, raw.call("DUMP", "x")), "RESTORE")
    assert raw.call("DEBUG", "DIGEST-VALUE", "x2") == d
    assert raw.call("DEL", "x2") == 1
    ok(raw.call("DEBUG", "RELOAD"), "DEBUG RELOAD")
    assert raw.call("DEBUG", "DIGEST") == whole, "DEBUG RELOAD"
    raw.close()
    restart(m, "AOF log")
    assert m.raw().call("DEBUG", "DIGEST") == whole, "AOF log"
    for preamble in ("no", "yes"):
        m.client().config_set("aof-use-rdb-preamble", preamble)
        m.extra_args[m.extra_args.index("--aof-use-rdb-preamble") + 1] = preamble
        assert m.client().bgrewriteaof()
        wait_rewrite(m)
        restart(m, f"AOF rewrite, preamble {preamble}")
        assert m.raw().call("DEBUG", "DIGEST") == whole, f"AOF preamble {preamble}"
