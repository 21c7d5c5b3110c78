"""What can be saved can be loaded: a round-trip property over reachable campaign states.

Each state below is built with ordinary commands (the module clock pinned, so a build is
deterministic) and must come back identical through every way Redis moves a value:

  rdb             SAVE, restart the server from dump.rdb
  debug_reload    DEBUG RELOAD (save and load in place)
  dump_restore    DUMP, DEL, RESTORE under the same name; RESTORE under another name (same
                  digest: standalone, a restored value keeps its stream); COPY (identical but
                  for the stream when the campaign is on its key's default stream)
  aof_preamble    appendonly yes, aof-use-rdb-preamble yes, BGREWRITEAOF, restart
  aof_rewrite     appendonly yes, aof-use-rdb-preamble no, BGREWRITEAOF, restart
  aof_log         appendonly yes from the start, restart (plain replay of the command log)
  replica_live    a replica attached before the state is built (effects replication)
  replica_sync    a replica attached after the state is built (full sync)

"Identical": the same set of keys (nothing dropped), `DEBUG DIGEST` of the whole dataset,
`DEBUG DIGEST-VALUE` and `LOTTERY.STATS` of each campaign, `LOTTERY.USER` of sampled users,
and (on a master) `LOTTERY.DRAIN LAST` and `LOTTERY.TRANSFER LIST`. A restart that does not
come up (Redis refuses an RDB or AOF it cannot load) fails with the server's log tail.

Where the module refuses an input at the command (a key whose default wins stream would be
too long, say), the state is not built; the refusal must then be clean: an `ERR` reply, no
key created, the server alive. What is never acceptable is a state that is accepted and then
cannot be loaded.

States: randomized campaigns from a fixed list of seeds, and extremes: 1-byte keys, long keys
(with their default stream, with a hash tag, with an explicit STREAM), a STREAM of the
maximum length, COPY to a long key, prize ids of 256 bytes (arbitrary bytes, UTF-8 from all
17 planes), 65,536 prizes with a large DRAIN batch, many users (several chunks of users,
winners, bans, REQIDs of 128 bytes, CLIENT ids of 256 bytes, ADMIT memory, penalties),
transfer records with 4096-byte peers, a long CONFIGURE history (many retired prizes), and
(marked `slow`, still part of the default run) a DRAIN batch of more than 131,072 prizes
and a campaign with the maximum 65,536 transfer records.
"""
import random
import time

import pytest

import durability_helpers as D
import lottery_helpers as H
from lottery_helpers import Err, Status

T0 = H.T0
DAY = H.DAY_MS

PATHS = ["rdb", "debug_reload", "dump_restore", "aof_preamble", "aof_rewrite", "aof_log",
         "replica_live", "replica_sync"]


# --------------------------------------------------------------------------------------------
# small utilities


def short(b, n=40):
    """A readable form of a (possibly huge, binary) key or id for messages."""
    if isinstance(b, str):
        b = b.encode()
    if len(b) <= n:
        return repr(b)
    return f"{b[:n]!r}...({len(b)} bytes)"


def default_stream(key: bytes) -> bytes:
    s = key.find(b"{")
    if s >= 0:
        e = key.find(b"}", s + 1)
        if e > s + 1:
            return key + b":wins"
    return b"{" + key + b"}:wins"


def stream_for(key: bytes, suffix=b":s") -> bytes:
    """An explicit STREAM in the key's slot (the key's hash tag, or the key itself as one)."""
    s = key.find(b"{")
    if s >= 0:
        e = key.find(b"}", s + 1)
        if e > s + 1:
            return key[s:e + 1] + suffix
    assert b"{" not in key and b"}" not in key
    return b"{" + key + b"}" + suffix


def is_ok(rep):
    return isinstance(rep, Status) and rep == "OK"


class Built:
    def __init__(self, campaigns, clock, refused):
        self.campaigns = campaigns      # {key: [sample users]}
        self.clock = clock              # the clock the state is compared at
        self.refused = refused          # [(what, error)] inputs refused at the command


class Builder:
    """Sends a state's commands to a server (raw RESP, pipelined), tracking the campaigns,
    a sample of users per campaign and the pinned clock."""

    def __init__(self, server):
        self.server = server
        self.raw = server.raw()
        self.t = T0
        self.campaigns = {}
        self.refused = []
        self.clock_at_end = None
        self.raw.call("LOTTERY.DEBUG", "CLOCK", self.t)

    def close(self):
        self.raw.close()

    def pin_cmd(self, t):
        self.t = t
        return ("LOTTERY.DEBUG", "CLOCK", t)

    def pin(self, t):
        self.send([self.pin_cmd(t)])

    def send(self, cmds, strict=True, batch=5000):
        """Pipelined; strict: every reply must be a non-error (first errors reported)."""
        out = []
        for i in range(0, len(cmds), batch):
            out += self.raw.pipeline(cmds[i:i + batch])
        if strict:
            bad = [(c, rep) for c, rep in zip(cmds, out) if isinstance(rep, Err)]
            assert not bad, (f"{len(bad)} command(s) of the state failed, e.g. "
                             + "; ".join(f"{[short(a, 24) for a in c[:4]]} -> {rep}"
                                         for c, rep in bad[:3]))
        else:
            bad = [rep for rep in out if isinstance(rep, Err) and not rep.startswith("ERR ")]
            assert not bad, f"non-ERR error replies: {bad[:3]}"
        assert self.server.alive(), f"server died while building\n{self.server.log_tail()}"
        return out

    def add(self, key, users=()):
        self.campaigns.setdefault(key, [])
        for u in users:
            if u not in self.campaigns[key]:
                self.campaigns[key].append(u)

    def create(self, key, *args):
        """CONFIGURE a new campaign. Returns True if created; a refusal must be clean."""
        rep = self.raw.call("LOTTERY.CONFIGURE", key, *args)
        if is_ok(rep):
            self.add(key)
            return True
        self.assert_clean_refusal(f"CONFIGURE {short(key)}", rep, [key, default_stream(key)])
        return False

    def assert_clean_refusal(self, what, rep, keys):
        assert isinstance(rep, Err) and rep.startswith("ERR "), f"{what}: {rep!r}"
        assert self.server.alive(), f"{what}: server died\n{self.server.log_tail()}"
        for k in keys:
            assert self.raw.call("EXISTS", k) == 0, f"{what} was refused ({rep}) " \
                                                     f"but key {short(k)} exists"
        self.refused.append((what, str(rep)))

    def done(self, clock=None):
        return Built(self.campaigns, self.t if clock is None else clock, self.refused)


# --------------------------------------------------------------------------------------------
# id generators

def utf8_id(rng, max_bytes=256, exact=True):
    """UTF-8 text using characters of every plane (0..16, surrogates excluded), up to
    max_bytes (exactly, if exact)."""
    out = bytearray()
    planes = list(range(17))
    i = 0
    while True:
        p = planes[i % 17] if i < 17 else rng.randrange(17)
        i += 1
        cp = p * 0x10000 + rng.randrange(0x10000)
        if 0xD800 <= cp <= 0xDFFF:
            cp = 0x4E2D
        ch = chr(cp).encode("utf-8")
        if len(out) + len(ch) > max_bytes:
            break
        out += ch
    if exact:
        out += b"x" * (max_bytes - len(out))
    return bytes(out)


def bin_id(rng, n, avoid=b""):
    """n random bytes, none of `avoid`."""
    return bytes(b for b in (rng.randrange(256) for _ in range(n * 2)) if b not in avoid)[:n] \
        or b"\x00"


# --------------------------------------------------------------------------------------------
# randomized states


def _rand_key(rng, i):
    kind = rng.randrange(4)
    if kind == 0:
        return f"camp:{i}:{rng.randrange(10**6)}".encode()
    if kind == 1:
        return b"{t%d}" % i + bin_id(rng, rng.randint(1, 30), avoid=b"{}")
    if kind == 2:
        return b"k%d" % i + bin_id(rng, rng.randint(1, 60), avoid=b"{}")
    return b"u%d" % i + utf8_id(rng, rng.randint(4, 80), exact=False).replace(b"{", b"(") \
        .replace(b"}", b")")


def _rand_prize_id(rng, used):
    while True:
        kind = rng.randrange(5)
        if kind == 0:
            pid = f"p{rng.randrange(100000)}".encode()
        elif kind == 1:
            pid = bin_id(rng, rng.randint(1, 256))
        elif kind == 2:
            pid = bin_id(rng, 256)
        elif kind == 3:
            pid = utf8_id(rng, 256)
        else:
            pid = utf8_id(rng, rng.randint(4, 60), exact=False)
        if pid not in used:
            used.add(pid)
            return pid


def _rand_table(rng, pool):
    """A prize table [(id, weight, stock)] drawing ids from pool (reused) or new ones."""
    n = rng.choice([1, 1, 2, 3, 5, 8, 20])
    ids = []
    used = set()
    for _ in range(n):
        if pool and rng.random() < 0.6:
            pid = rng.choice(pool)
            if pid in used:
                continue
        else:
            pid = _rand_prize_id(rng, set(pool))
            pool.append(pid)
        used.add(pid)
        ids.append(pid)
    table = []
    for pid in ids:
        w = rng.choice([0, 1, 1, 3, 10, 100, H.U32_MAX // 64])
        stock = rng.choice(["INF", 0, 1, 3, 10, 50, 1000, H.I64_MAX])
        table.append((pid, w, stock))
    if all(w == 0 for _, w, _ in table):
        table[0] = (table[0][0], 1, table[0][2])
    return table


def _table_args(table):
    out = []
    for pid, w, s in table:
        out += ["PRIZE", pid, w, s]
    return out


def _rand_options(rng, key, table, t, creating):
    finite = [pid for pid, _, s in table if s != "INF"]
    o = []
    if rng.random() < 0.5:
        o += ["NOTHING", rng.choice([0, 1, 5, 50, 1000])]
    if rng.random() < 0.4:
        o += ["COOLDOWN", rng.choice([0, 1, 1000, 60_000, H.I64_MAX])]
    if rng.random() < 0.4:
        o += ["DAILY", rng.choice([0, 1, 3, 50, "INF", H.U32_MAX])]
    if rng.random() < 0.4:
        o += ["MAXWINS", rng.choice([0, 1, 2, 10, "INF", H.U32_MAX])]
    if rng.random() < 0.3:
        o += ["DAYOFFSET", rng.choice([-1440, -60, 0, 480, 1440])]
    window = False
    if rng.random() < 0.35:
        a = t - rng.choice([0, 1000, DAY])
        o += ["WINDOW", max(0, a), a + rng.choice([1, 5000, 30 * DAY, 365 * DAY, 365 * DAY])]
        window = True
    sold = rng.random()
    if sold < 0.2:
        o += ["SOLDOUT", "LOSE"]
    elif sold < 0.4:
        o += ["SOLDOUT", "REDRAW"]
    elif sold < 0.55:
        o += ["SOLDOUT", "FALLBACK", rng.choice(table)[0]]
    if rng.random() < (0.5 if creating else 0.004):
        o += ["STREAM", stream_for(key, rng.choice([b":s", b":w" * rng.randint(1, 50)]))]
    if rng.random() < 0.3:
        o += ["IDEMPOTENCY", rng.choice([0, 1, 60_000, 86_400_000])]
    r = rng.random()
    if r < 0.2:
        o += ["RATE", rng.choice([1, 50, 10**9])] + (
            ["BURST", rng.choice([1, 10, 10**9])] if rng.random() < 0.6 else [])
    elif r < 0.25 and not creating:
        o += ["RATE", "OFF"]
    r = rng.random()
    if r < 0.25:
        o += ["ADMIT", rng.choice(["0.5", "0.000001", "1", "0"])] + (
            [rng.choice(["0.9", "0.25", "1"])] if rng.random() < 0.6 else [])
    elif r < 0.3 and not creating:
        o += ["ADMIT", "OFF"]
    r = rng.random()
    if r < 0.25:
        o += ["CLIENTLIMIT", rng.choice([0, 1, 3, 100]), rng.choice([1, 1000, DAY])]
    elif r < 0.3 and not creating:
        o += ["CLIENTLIMIT", "OFF"]
    if rng.random() < 0.2:
        o += ["PENALTY", rng.choice([0, 1, 5000, H.I64_MAX // 2])]
    if window and finite and rng.random() < 0.6:
        for pid in rng.sample(finite, min(len(finite), rng.randint(1, 3))):
            o += ["PACE", pid, rng.choice(["LINEAR", "LINEAR", "NONE"])]
    if rng.random() < 0.3:
        o += ["VERIFIABLE"] + rng.choice([[], ["LOG", "ALL"], ["LOG", "WINS"]])
    return o


def build_random(b, seed):
    rng = random.Random(seed)
    keys = []
    state = {}
    for i in range(rng.randint(1, 3)):
        key = _rand_key(rng, i)
        pool = []
        table = _rand_table(rng, pool)
        opts = _rand_options(rng, key, table, b.t, creating=True)
        assert b.create(key, *_table_args(table), *opts), f"seed {seed}: CONFIGURE refused"
        keys.append(key)
        state[key] = {"pool": pool, "table": table}
    users = [f"user{i}".encode() for i in range(40)] + \
        [bin_id(rng, rng.randint(1, 40)) for _ in range(10)] + \
        [utf8_id(rng, rng.randint(4, 300), exact=False) for _ in range(10)] + [b"x" * 5000]
    clients = [f"10.0.0.{i}".encode() for i in range(12)] + [bin_id(rng, 256) for _ in range(4)]
    reqids = [f"r{i}".encode() for i in range(30)] + [bin_id(rng, 128) for _ in range(6)]
    transfer_ids = []
    pairs = []          # (user, reqid) already used: drawing with them again is a replay
    cmds = []
    steps = rng.choice([300, 600, 1200])
    t = b.t
    for _ in range(steps):
        if rng.random() < 0.15:
            t += rng.choice([0, 1, 10, 999, 1000, 60_000, 3_600_000, 3_600_000, DAY])
            cmds.append(b.pin_cmd(t))
        key = rng.choice(keys)
        st = state[key]
        u = rng.choice(users)
        x = rng.random()
        if x < 0.45:
            c = ["LOTTERY.DRAW", key, u]
            if rng.random() < 0.3:
                if pairs and rng.random() < 0.4:
                    c[2], rid = rng.choice(pairs)
                else:
                    rid = rng.choice(reqids)
                    pairs.append((u, rid))
                c += ["REQID", rid]
            if rng.random() < 0.3:
                c += ["CLIENT", rng.choice(clients)]
            if len(c) == 7 and rng.random() < 0.5:
                c = c[:3] + c[5:] + c[3:5]
            cmds.append(tuple(c))
        elif x < 0.52:
            cmds.append(("LOTTERY.GRANT", key, u, rng.choice([1, 2, 100, H.U32_MAX]))
                        + (("CAP", rng.choice([0, 3, 10])) if rng.random() < 0.4 else ()))
        elif x < 0.56:
            pid = rng.choice(st["table"])[0]
            cmds.append(("LOTTERY.RESTOCK", key, pid, rng.choice([-5, -1, 1, 7, 10**6])))
        elif x < 0.60:
            cmds.append(("LOTTERY.BAN", key, u, rng.choice([1, 1000, DAY, H.I64_MAX // 4])))
        elif x < 0.62:
            cmds.append(("LOTTERY.UNBAN", key, u))
        elif x < 0.64:
            cmds.append(("LOTTERY.BAN", key, "CLIENT", rng.choice(clients),
                         rng.choice([1, 5000, DAY])))
        elif x < 0.65:
            cmds.append(("LOTTERY.UNBAN", key, "CLIENT", rng.choice(clients)))
        elif x < 0.67:
            cmds.append((rng.choice(["LOTTERY.PAUSE", "LOTTERY.RESUME", "LOTTERY.RESUME"]),
                         key))
        elif x < 0.70:
            cmds.append(("LOTTERY.DRAIN", key))
        elif x < 0.76:
            kind = rng.random()
            pid = rng.choice(st["table"])[0]
            peer = stream_for(key, b":peer") + bin_id(rng, rng.choice([1, 20, 4000]))
            peer = peer[:4096]
            if kind < 0.45:
                tid = bin_id(rng, rng.choice([1, 8, 128]))
                transfer_ids.append((key, tid))
                cmds.append(("LOTTERY.TRANSFER", key, "OUT", tid, pid,
                             rng.choice([1, 3, 10**6]), peer))
            elif kind < 0.8:
                tid = bin_id(rng, rng.choice([1, 8, 128]))
                cmds.append(("LOTTERY.TRANSFER", key, "IN", tid, pid, rng.choice([0, 1, 5]),
                             peer))
            elif transfer_ids:
                k2, tid = rng.choice(transfer_ids)
                cmds.append(("LOTTERY.TRANSFER", k2, "SETTLE", tid))
        else:
            if rng.random() < 0.4:
                st["table"] = _rand_table(rng, st["pool"])
                args = _table_args(st["table"])
            else:
                args = []
            args += _rand_options(rng, key, st["table"], t, creating=False)
            if args:
                cmds.append(("LOTTERY.CONFIGURE", key, *args))
    reps = b.send(cmds, strict=False)
    oks = sum(1 for r in reps if not isinstance(r, Err))
    assert oks > len(cmds) // 2, f"seed {seed}: only {oks}/{len(cmds)} commands succeeded"
    for key in keys:
        b.add(key, users[:8] + users[40:43] + users[50:53] + users[-1:])
    return b.done(clock=t + rng.choice([0, 500, 2 * DAY]))


# --------------------------------------------------------------------------------------------
# explicit extremes


def _small_campaign_cmds(key, users=("alice", "bob", "carol"), reqid=b"q"):
    """A few draws (wins and losses), a grant, a ban, a drain: state in every section."""
    cmds = []
    for i, u in enumerate(users):
        cmds.append(("LOTTERY.DRAW", key, u, "REQID", reqid + b"%d" % i))
    cmds += [("LOTTERY.DRAIN", key), ("LOTTERY.DRAW", key, "dave"),
             ("LOTTERY.GRANT", key, "erin", 3), ("LOTTERY.BAN", key, "frank", 60_000)]
    return cmds


SMALL_TABLE = ["PRIZE", "gold", 1, 5, "PRIZE", "pts", 2, "INF", "NOTHING", 1,
               "MAXWINS", "INF", "DAILY", "INF"]
SMALL_USERS = [b"alice", b"bob", b"carol", b"dave", b"erin", b"frank"]


def build_one_byte_keys(b):
    # (b"{" has no default stream in its slot: refused without STREAM)
    for key in (b"k", b"\x00", b"\xff", b"{"):
        if b.create(key, *SMALL_TABLE):
            b.send(_small_campaign_cmds(key))
            b.add(key, SMALL_USERS)
    assert b.campaigns, "no 1-byte key could be created"
    return b.done()


def build_long_key(b, length, tagged=False, explicit_stream=None):
    """A campaign on a key of `length` bytes: its default wins stream ({key}:wins, or
    key:wins with a hash tag) is 7 (or 5) bytes longer."""
    if tagged:
        key = b"{t}" + b"k" * (length - 3)
    else:
        key = b"k" * length
    assert len(key) == length
    args = list(SMALL_TABLE)
    if explicit_stream is not None:
        args += ["STREAM", explicit_stream]
    if b.create(key, *args):
        b.send(_small_campaign_cmds(key))
        b.add(key, SMALL_USERS)
    # a neighbour with a short key, so a load that drops the long one is noticed
    assert b.create(b"{t}neighbour", *SMALL_TABLE)
    b.send(_small_campaign_cmds(b"{t}neighbour"))
    b.add(b"{t}neighbour", SMALL_USERS)
    return b.done()


def build_max_stream(b, length):
    """An explicit STREAM of `length` bytes (the limit is 4096)."""
    key = b"{s}camp"
    stream = b"{s}" + b"w" * (length - 3)
    if b.create(key, *SMALL_TABLE, "STREAM", stream):
        b.send(_small_campaign_cmds(key))
        b.add(key, SMALL_USERS)
    assert b.create(b"{s}other", *SMALL_TABLE)
    b.add(b"{s}other")
    return b.done()


def build_copy_to_long_key(b, length):
    """COPY a campaign on its default stream to a key of `length` bytes: the copy follows
    its new key's default stream, which is length + 7 bytes."""
    src = b"src"
    assert b.create(src, *SMALL_TABLE)
    b.send(_small_campaign_cmds(src))
    b.add(src, SMALL_USERS)
    dst = b"c" * length
    rep = b.raw.call("COPY", src, dst)
    if rep == 1:
        b.add(dst, SMALL_USERS)
        b.send([("LOTTERY.DRAW", dst, "after-copy")])
        b.add(dst, [b"after-copy"])
    else:
        b.assert_clean_refusal(f"COPY src {short(dst)}", rep if isinstance(rep, Err)
                               else Err(f"ERR COPY replied {rep!r}"), [dst, default_stream(dst)])
    return b.done()


def build_prize_ids(b):
    """Prize ids of 256 bytes: arbitrary bytes (NUL, CR LF, 0xff, invalid UTF-8) and UTF-8
    text from all 17 planes, won, drained, retired, paced, fallen back to, transferred."""
    rng = random.Random(256)
    ids = [bytes(range(256)), bytes(range(255, -1, -1)), b"\r\n" * 128, b"\x00" * 256,
           b"\xff" * 256, utf8_id(rng, 256), utf8_id(rng, 256), utf8_id(rng, 256)]
    ids += [bytes([p]) for p in (0, 10, 0xff)]          # and 1-byte ones
    # each plane on its own: 64 characters (192 bytes in plane 0, 256 in the others)
    for plane in range(17):
        base = plane * 0x10000 + 0x100 if plane else 0x4E00
        ids.append("".join(chr(base + j) for j in range(64)).encode("utf-8"))
    ids = list(dict.fromkeys(ids))
    for pid in ids:
        assert 1 <= len(pid) <= 256, len(pid)
    key = b"{ids}camp"
    args = []
    for i, pid in enumerate(ids):
        args += ["PRIZE", pid, 1 + i % 3, 3 if i % 2 else "INF"]
    finite = [pid for i, pid in enumerate(ids) if i % 2]
    args += ["NOTHING", 1, "MAXWINS", "INF", "DAILY", "INF", "SOLDOUT", "FALLBACK", ids[0],
             "WINDOW", T0 - 1000, T0 + 30 * DAY, "PACE", finite[0], "LINEAR",
             "PACE", finite[-1], "LINEAR", "STREAM", b"{ids}" + ids[5][:200]]
    assert b.create(key, *args)
    users = [b"u%d" % i for i in range(200)]
    cmds = [b.pin_cmd(T0 + DAY)]
    cmds += [("LOTTERY.DRAW", key, u) for u in users]
    cmds += [("LOTTERY.TRANSFER", key, "OUT", b"t%d" % i, pid, 1, b"{ids}" + pid[:100])
             for i, pid in enumerate(finite[:4])]
    cmds += [("LOTTERY.TRANSFER", key, "IN", b"i%d" % i, pid, 2, b"\xff" * 300)
             for i, pid in enumerate(finite[4:8])]
    cmds += [("LOTTERY.DRAIN", key)]
    cmds += [("LOTTERY.DRAW", key, u) for u in users[:60]]
    # a new table without half of them: those are retired with their pending counts
    new = []
    for i, pid in enumerate(ids[::2]):
        new += ["PRIZE", pid, 1, "INF"]
    cmds += [("LOTTERY.CONFIGURE", key, *new)]
    cmds += [("LOTTERY.DRAW", key, u) for u in users[60:90]]
    b.send(cmds)
    b.add(key, users[:30])
    return b.done()


def build_many_prizes(b, n=65_536):
    """The maximum table: 65,536 prizes (some with 256-byte ids), wins spread over thousands
    of them, a DRAIN whose batch (DRAIN LAST) holds thousands of entries, and pending counts
    left for the next one."""
    rng = random.Random(65536)
    ids = []
    for i in range(n):
        if i % 4096 == 0:
            ids.append(utf8_id(rng, 256)[:-8] + b"%08d" % i)
        else:
            ids.append(b"p%05d" % i)
    key = b"{many}prizes"
    args = []
    for i, pid in enumerate(ids):
        args += ["PRIZE", pid, 1, 2 if i % 3 else "INF"]
    # (SOLDOUT LOSE: with REDRAW, a draw from a table this size takes ~0.2 ms)
    args += ["NOTHING", 0, "MAXWINS", "INF", "DAILY", "INF", "SOLDOUT", "LOSE",
             "WINDOW", T0 - 1000, T0 + 30 * DAY, "PACE", ids[1], "LINEAR", "PACE", ids[4097],
             "LINEAR", "COOLDOWN", 0]
    assert b.create(key, *args)
    users = [b"u%d" % i for i in range(300)]
    draws = [("LOTTERY.DRAW", key, users[i % 300]) for i in range(12_000)]
    b.pin(T0 + DAY)
    D.fast_pipeline(b.server.port, [draws])
    seq, batch = b.raw.call("LOTTERY.DRAIN", key)
    assert len(batch) > 2 * 5000, len(batch)
    D.fast_pipeline(b.server.port, [draws[:3000]])
    b.add(key, users[:40])
    return b.done()


def build_many_users(b):
    """More than one chunk (4096 entries) of users, winners, bans, REQID memory entries
    (REQIDs of 128 bytes), clients (ids of 256 bytes) with CLIENTLIMIT and PENALTY, and
    users remembered by ADMIT; left paused."""
    key = b"{mu}camp"
    assert b.create(key, "PRIZE", "gold", 1, 3000, "PRIZE", "silver", 3, "INF",
                    "PRIZE", "tin", 1, 500, "NOTHING", 4, "COOLDOWN", 1000, "DAILY", 3,
                    "MAXWINS", 2, "IDEMPOTENCY", 86_400_000, "CLIENTLIMIT", 2, 60_000,
                    "PENALTY", 30_000, "ADMIT", "0.6", "0.9", "RATE", 10**9, "BURST", 10**9)
    n = 12_000
    users = [b"user:%06d" % i for i in range(n)]

    def reqid(i, rnd):
        return (b"req-%d-%06d-" % (rnd, i)).ljust(128, b"#")

    def client(i):
        return (b"client-%06d-" % (i % 7000)).ljust(256, b"\xee")

    cmds = [b.pin_cmd(T0)]
    for i, u in enumerate(users):
        c = ["LOTTERY.DRAW", key, u]
        if i % 2 == 0:
            c += ["REQID", reqid(i, 0)]
        if i % 3 != 2:
            c += ["CLIENT", client(i)]
        cmds.append(tuple(c))
    cmds += [("LOTTERY.GRANT", key, users[i], 1 + i % 5) for i in range(0, n, 2)]
    cmds += [("LOTTERY.GRANT", key, b"granted-only:%d" % i, 2, "CAP", 1) for i in range(500)]
    cmds += [("LOTTERY.BAN", key, users[i], 1_000_000 + i) for i in range(0, n, 2)]
    cmds += [("LOTTERY.BAN", key, "CLIENT", client(i), 500_000) for i in range(0, 300)]
    cmds.append(b.pin_cmd(T0 + 5000))
    for i in range(1, n, 2):
        c = ["LOTTERY.DRAW", key, users[i], "REQID", reqid(i, 1), "CLIENT", client(i)]
        cmds.append(tuple(c))
    cmds += [("LOTTERY.DRAIN", key), ("LOTTERY.PAUSE", key)]
    b.send(cmds)
    b.add(key, users[:20] + users[-20:] + [b"granted-only:1"])
    return b.done(clock=T0 + 6000)


def build_transfers(b):
    """Transfer records with 128-byte ids and 4096-byte peers (the maximum), in every state
    (OUT pending, OUT settled, IN), next to draws."""
    key = b"{tr}camp"
    assert b.create(key, "PRIZE", "gold", 1, 10**6, "PRIZE", "pts", 1, "INF", "NOTHING", 1,
                    "MAXWINS", "INF", "DAILY", "INF")
    cmds = []
    for i in range(1500):
        tid = (b"tr-%05d-" % i).ljust(128, b"\x01")
        peer = (b"{tr}peer-%05d-" % i).ljust(4096, b"\xfe")
        if i % 3 == 2:
            cmds.append(("LOTTERY.TRANSFER", key, "IN", tid, "gold", i, peer))
        else:
            cmds.append(("LOTTERY.TRANSFER", key, "OUT", tid, "gold", 1 + i % 7, peer))
            if i % 3 == 1:
                cmds.append(("LOTTERY.TRANSFER", key, "SETTLE", tid))
    cmds += [("LOTTERY.DRAW", key, b"u%d" % i) for i in range(200)]
    b.send(cmds)
    b.add(key, [b"u%d" % i for i in range(10)])
    return b.done()


def build_configure_history(b):
    """A long CONFIGURE history: 400 tables, each with new 256-byte prize ids (so thousands
    of interned names and retired prizes with sold and pending counts), every option
    switched on and off along the way."""
    rng = random.Random(400)
    key = b"{hist}camp"
    assert b.create(key, "PRIZE", "first", 1, 100, "NOTHING", 1, "MAXWINS", "INF",
                    "DAILY", "INF")
    cmds = []
    t = T0
    option_cycle = [
        ["RATE", 1000, "BURST", 5000], ["RATE", "OFF"], ["ADMIT", "0.5", "0.75"],
        ["ADMIT", "OFF"], ["CLIENTLIMIT", 3, 1000], ["CLIENTLIMIT", "OFF"],
        ["PENALTY", 1000], ["PENALTY", 0], ["STREAM", b"{hist}s%d" % 1],
        ["STREAM", b"{hist}:wins"], ["SOLDOUT", "REDRAW"], ["SOLDOUT", "LOSE"],
        ["COOLDOWN", 5], ["COOLDOWN", 0], ["DAYOFFSET", -1440], ["DAYOFFSET", 1440],
        ["WINDOW", T0, T0 + 365 * DAY], ["IDEMPOTENCY", 0], ["IDEMPOTENCY", 86_400_000],
    ]
    for k in range(400):
        t += 1000
        cmds.append(b.pin_cmd(t))
        table = []
        for j in range(12):
            pid = (b"gen%03d-%02d-" % (k, j)) + utf8_id(rng, 240, exact=True)[:244]
            table += ["PRIZE", pid, 1 + j, 2 if j % 2 else "INF"]
        table += ["PRIZE", "keep", 1, "INF"]      # a prize in every table
        opts = option_cycle[k % len(option_cycle)]
        cmds.append(("LOTTERY.CONFIGURE", key, *table, *opts))
        cmds += [("LOTTERY.DRAW", key, b"u%d" % (k * 3 + i)) for i in range(3)]
        if k % 50 == 49:
            cmds.append(("LOTTERY.DRAIN", key))
    b.send(cmds)
    b.add(key, [b"u%d" % i for i in range(0, 1200, 97)])
    return b.done()


def build_huge_drain(b):
    """A DRAIN batch of 133,120 entries (more than twice the 65,536 prizes a table may
    have): 65 tables of 2,048 prizes in turn, each prize won once (stock 1, SOLDOUT
    REDRAW), each table retiring the previous one with its pending counts; DRAIN then
    names every prize with a pending count, current or retired. (Sizes chosen for build
    time: a CONFIGURE costs about 1 us per retired prize, a REDRAW draw about 8 ns per
    prize of the table.)"""
    key = b"{hd}camp"
    tables, per = 65, 2048
    common = ["NOTHING", 0, "MAXWINS", "INF", "DAILY", "INF", "SOLDOUT", "REDRAW"]
    batches = []
    for k in range(tables):
        args = []
        for i in range(per):
            args += ["PRIZE", b"t%03d-%04d" % (k, i), 1, 1]
        cmd = ("LOTTERY.CONFIGURE", key, *args, *common)
        if k == 0:
            assert b.create(key, *args, *common)
            batch = []
        else:
            batch = [cmd]
        batch += [("LOTTERY.DRAW", key, b"u%d" % (i % 16)) for i in range(per)]
        batches.append(batch)
    D.fast_pipeline(b.server.port, batches)
    rep = b.raw.call("LOTTERY.DRAIN", key)
    assert rep[0] == 1 and len(rep[1]) == 2 * tables * per, (rep[0], len(rep[1]))
    b.add(key, [b"u0", b"u15"])
    return b.done()


def build_max_transfers(b):
    """The maximum number of transfer records (65,536, 4,096 of them with 4096-byte peers);
    one more is refused; then some are settled."""
    key = b"{mt}camp"
    assert b.create(key, "PRIZE", "gold", 1, 10**9, "NOTHING", 1)
    cmds = []
    for i in range(65_536):
        tid = b"t%05d" % i
        peer = b"{mt}peer%d" % (i % 9)
        if i % 16 == 0:
            peer = peer.ljust(4096, b"p")
        if i % 2:
            cmds.append(("LOTTERY.TRANSFER", key, "IN", tid, "gold", 1, peer))
        else:
            cmds.append(("LOTTERY.TRANSFER", key, "OUT", tid, "gold", 2, peer))
    b.send(cmds, batch=16384)
    rep = b.raw.call("LOTTERY.TRANSFER", key, "OUT", "one-more", "gold", 1, "{mt}p")
    assert isinstance(rep, Err) and "too many transfer records" in rep, rep
    b.send([("LOTTERY.TRANSFER", key, "SETTLE", b"t%05d" % i) for i in range(0, 2000, 2)])
    b.add(key)
    return b.done()


STATES = {}
for _seed in (1, 2, 3, 4, 5, 6):
    STATES[f"random-{_seed}"] = (lambda s: lambda b: build_random(b, s))(_seed)
STATES["key-1-byte"] = build_one_byte_keys
for _n in (4000, 4089, 4090, 4096, 10_000, 100_000):
    STATES[f"key-{_n}"] = (lambda n: lambda b: build_long_key(b, n))(_n)
for _n in (4091, 4092):
    STATES[f"key-tagged-{_n}"] = (lambda n: lambda b: build_long_key(b, n, tagged=True))(_n)
STATES["key-100000-explicit-stream"] = \
    lambda b: build_long_key(b, 100_000, tagged=True, explicit_stream=b"{t}:w")
STATES["stream-4096"] = lambda b: build_max_stream(b, 4096)
STATES["stream-4097"] = lambda b: build_max_stream(b, 4097)
for _n in (4090, 10_000):
    STATES[f"copy-to-key-{_n}"] = (lambda n: lambda b: build_copy_to_long_key(b, n))(_n)
STATES["prize-ids-256"] = build_prize_ids
STATES["prizes-65536"] = build_many_prizes
STATES["many-users"] = build_many_users
STATES["transfers-long-peers"] = build_transfers
STATES["configure-history"] = build_configure_history
SLOW_STATES = {"drain-133120": build_huge_drain, "transfers-65536": build_max_transfers}


# --------------------------------------------------------------------------------------------
# observing and comparing


def observe(server, built, master=True):
    """Everything comparable, read with the node's clock pinned at built.clock."""
    raw = server.raw()
    try:
        rep = raw.call("LOTTERY.DEBUG", "CLOCK", built.clock)
        assert is_ok(rep), rep
        keys = raw.call("KEYS", "*")
        assert isinstance(keys, list), keys
        view = {"keys": sorted(keys), "db": raw.call("DEBUG", "DIGEST"), "campaigns": {}}
        for key, users in built.campaigns.items():
            cmds = [("DEBUG", "DIGEST-VALUE", key), ("LOTTERY.STATS", key)]
            cmds += [("LOTTERY.USER", key, u) for u in users]
            if master:
                cmds += [("LOTTERY.DRAIN", key, "LAST"), ("LOTTERY.TRANSFER", key, "LIST")]
            view["campaigns"][key] = raw.pipeline(cmds)
    finally:
        raw.close()
    return view


def _stats_diff(a, b):
    if not (isinstance(a, list) and isinstance(b, list)):
        return f"{str(a)[:200]} vs {str(b)[:200]}"
    da, db = dict(zip(a[0::2], a[1::2])), dict(zip(b[0::2], b[1::2]))
    diff = [k for k in da if da[k] != db.get(k)]
    return "; ".join(f"{k.decode()}: {short(repr(da[k]).encode(), 80)} vs "
                     f"{short(repr(db.get(k)).encode(), 80)}" for k in diff[:6])


def assert_same(before, after, what, master=True):
    lost = set(before["keys"]) - set(after["keys"])
    extra = set(after["keys"]) - set(before["keys"])
    assert not lost and not extra, \
        f"{what}: keys dropped {[short(k) for k in lost]}, keys added {[short(k) for k in extra]}"
    for key, b in before["campaigns"].items():
        a = after["campaigns"][key]
        if not master:
            b = b[:len(a)]
        names = ["DIGEST-VALUE", "STATS"] + [f"USER #{i}" for i in range(len(b) - 2)]
        if master:
            names[-2:] = ["DRAIN LAST", "TRANSFER LIST"]
        for name, x, y in zip(names, b, a):
            if x != y:
                detail = _stats_diff(x, y) if name == "STATS" else \
                    f"{short(repr(x).encode(), 200)} vs {short(repr(y).encode(), 200)}"
                pytest.fail(f"{what}: {name} of campaign {short(key)} differs: {detail}",
                            pytrace=False)
    assert before["db"] == after["db"], f"{what}: DEBUG DIGEST of the dataset differs"


# --------------------------------------------------------------------------------------------
# the paths


def restart(server, what):
    """Stop without saving and start again from whatever is on disk. A server that does not
    come up (a refused RDB/AOF) fails the test with its log tail."""
    server.stop(save=False)
    try:
        server.start(timeout=120)
    except RuntimeError as e:
        server.intentionally_stopped = True
        pytest.fail(f"{what}: the server did not start again from its own files:\n"
                    f"{str(e)[-2500:]}", pytrace=False)
    D.wait_loaded(server.port)


def build(server, builder_fn):
    b = Builder(server)
    try:
        return builder_fn(b)
    finally:
        b.close()


def wait_rewrite(server):
    r = server.client()
    deadline = time.time() + 120
    while time.time() < deadline:
        info = r.info("persistence")
        if not info["aof_rewrite_in_progress"] and not info["aof_rewrite_scheduled"]:
            assert info["aof_last_bgrewrite_status"] == "ok", \
                f"BGREWRITEAOF failed: {info}\n{server.log_tail(15)}"
            return
        time.sleep(0.02)
    raise AssertionError("AOF rewrite did not finish")


def wait_replica_synced(master, replica, what):
    rm, rr = master.client(), replica.client()
    deadline = time.time() + 60
    info = {}
    while time.time() < deadline:
        assert replica.alive(), f"{what}: the replica died:\n{replica.log_tail(15)}"
        info = rr.info("replication")
        if info.get("master_link_status") == "up" and \
                info.get("master_repl_offset") == rm.info("replication")["master_repl_offset"] \
                and rr.info("persistence")["loading"] == 0:
            crit = replica.critical_log_lines()
            assert not crit, f"{what}: the replica refused what the master sent:\n" + \
                "\n".join(crit[:3])
            return
        time.sleep(0.02)
    pytest.fail(f"{what}: the replica never caught up ({info.get('master_link_status')}, "
                f"offset {info.get('master_repl_offset')} vs "
                f"{rm.info('replication')['master_repl_offset']}):\n{replica.log_tail(15)}",
                pytrace=False)


def check_dump_restore(server, built, before, what):
    raw = server.raw()
    try:
        blobs = {}
        for key in built.campaigns:
            blobs[key] = raw.call("DUMP", key)
            assert isinstance(blobs[key], bytes), f"{what}: DUMP {short(key)}: {blobs[key]!r}"
            assert raw.call("DEL", key) == 1
            rep = raw.call("RESTORE", key, 0, blobs[key])
            assert is_ok(rep), \
                f"{what}: RESTORE {short(key)} of its own DUMP ({len(blobs[key])} bytes) " \
                f"was refused: {rep!r}; the campaign is gone"
        assert_same(before, observe(server, built), f"{what} (DEL + RESTORE, same name)")
        raw.call("LOTTERY.DEBUG", "CLOCK", built.clock)
        for i, key in enumerate(built.campaigns):
            # RESTORE under another name: standalone, the value is identical (stream kept)
            other = b"{rt%d}restored" % i
            rep = raw.call("RESTORE", other, 0, blobs[key])
            assert is_ok(rep), f"{what}: RESTORE of {short(key)} as {other!r}: {rep!r}"
            assert raw.call("DEBUG", "DIGEST-VALUE", other) == \
                raw.call("DEBUG", "DIGEST-VALUE", key), f"{what}: RESTORE as {other!r}"
            raw.call("DEL", other)
            # COPY: identical, but a campaign on its default stream follows the new key
            copy = b"{cp%d}copy" % i
            assert raw.call("COPY", key, copy) == 1
            a, c = raw.call("LOTTERY.STATS", key), raw.call("LOTTERY.STATS", copy)
            sa, sc = dict(zip(a[0::2], a[1::2])), dict(zip(c[0::2], c[1::2]))
            want = default_stream(copy) if sa[b"stream"] == default_stream(key) \
                else sa[b"stream"]
            assert sc[b"stream"] == want, f"{what}: COPY {short(key)}: stream {sc[b'stream']!r}"
            sc[b"stream"] = sa[b"stream"]
            if sa.get(b"verifiable") == 1:
                # A copy never draws with nor shows the original's seed (docs/verifiable.md):
                # its own, derived, counted as revealed.
                assert sc[b"seed_revealed"] == 1, f"{what}: COPY {short(key)}: seed"
                assert sc[b"seed_commitment"] != sa[b"seed_commitment"], what
                for f in (b"seed_commitment", b"seed_revealed"):
                    sc[f] = sa[f]
            assert sa == sc, f"{what}: COPY of {short(key)}: STATS differ " \
                             f"{_stats_diff(a, c)}"
            rep = raw.call("RESTORE", copy, 0, raw.call("DUMP", copy), "REPLACE")
            assert is_ok(rep), f"{what}: RESTORE of the DUMP of COPY {short(key)}: {rep!r}"
            raw.call("DEL", copy)
    finally:
        raw.close()


def run_path(path, builder_fn, server_factory, name):
    what = f"{name} via {path}"
    if path in ("rdb", "debug_reload", "dump_restore"):
        s = server_factory()
        built = build(s, builder_fn)
        before = observe(s, built)
        if path == "rdb":
            assert s.client().save()
            restart(s, what)
        elif path == "debug_reload":
            r = s.client()
            try:
                r.execute_command("DEBUG", "RELOAD")
            except Exception as e:  # noqa: BLE001
                keys = r.dbsize() if s.alive() else "server dead"
                pytest.fail(f"{what}: DEBUG RELOAD failed: {e} (keys now: {keys}):\n"
                            f"{s.log_tail(6)}", pytrace=False)
        else:
            check_dump_restore(s, built, before, what)
            return built
        assert_same(before, observe(s, built), what)
        return built
    if path.startswith("aof"):
        preamble = "yes" if path == "aof_preamble" else "no"
        s = server_factory(appendonly=True, extra_args=["--aof-use-rdb-preamble", preamble,
                                                        "--appendfsync", "no"])
        built = build(s, builder_fn)
        before = observe(s, built)
        if path != "aof_log":
            assert s.client().bgrewriteaof()
            wait_rewrite(s)
        restart(s, what)
        assert_same(before, observe(s, built), what)
        return built
    m = server_factory()
    if path == "replica_live":
        rep = server_factory(replicaof=("127.0.0.1", m.port))
        H.wait_link_up(rep.client())
        built = build(m, builder_fn)
    else:
        built = build(m, builder_fn)
        rep = server_factory(replicaof=("127.0.0.1", m.port))
    wait_replica_synced(m, rep, what)
    assert_same(observe(m, built, master=False), observe(rep, built, master=False), what,
                master=False)
    return built


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("state", list(STATES))
def test_roundtrip(server_factory, state, path):
    run_path(path, STATES[state], server_factory, state)


def run_chain(builder_fn, server_factory, name):
    """Every path on one build (for states that take seconds to build): a master with the
    AOF on from the start and a replica attached before the build; then, in turn, the live
    replica, DUMP/RESTORE, a restart replaying the AOF log, a replica attached after, DEBUG
    RELOAD, BGREWRITEAOF without and with the RDB preamble (each with a restart), and SAVE
    with a restart from dump.rdb. The first path that fails stops the chain (its name is in
    the message)."""
    m = server_factory(appendonly=True, extra_args=["--aof-use-rdb-preamble", "no",
                                                    "--appendfsync", "no"])
    r1 = server_factory(replicaof=("127.0.0.1", m.port))
    H.wait_link_up(r1.client())
    built = build(m, builder_fn)
    before = observe(m, built)

    def check(path, srv=m):
        assert_same(before, observe(srv, built), f"{name} via {path}")

    wait_replica_synced(m, r1, f"{name} via replica_live")
    assert_same(observe(m, built, master=False), observe(r1, built, master=False),
                f"{name} via replica_live", master=False)
    check_dump_restore(m, built, before, f"{name} via dump_restore")
    restart(m, f"{name} via aof_log")
    check("aof_log")
    r2 = server_factory(replicaof=("127.0.0.1", m.port))
    wait_replica_synced(m, r2, f"{name} via replica_sync")
    assert_same(observe(m, built, master=False), observe(r2, built, master=False),
                f"{name} via replica_sync", master=False)
    r1.stop()       # (so the restarts below do not wait for full syncs)
    r2.stop()
    r = m.client()
    try:
        r.execute_command("DEBUG", "RELOAD")
    except Exception as e:  # noqa: BLE001
        pytest.fail(f"{name} via debug_reload: {e}:\n{m.log_tail(6)}", pytrace=False)
    check("debug_reload")
    for path, preamble in (("aof_rewrite", "no"), ("aof_preamble", "yes")):
        m.client().config_set("aof-use-rdb-preamble", preamble)
        m.extra_args[m.extra_args.index("--aof-use-rdb-preamble") + 1] = preamble
        assert m.client().bgrewriteaof()
        wait_rewrite(m)
        restart(m, f"{name} via {path}")
        check(path)
    r = m.client()
    r.config_set("appendonly", "no")
    m.appendonly = False
    assert r.save()
    restart(m, f"{name} via rdb")
    check("rdb")


@pytest.mark.slow
@pytest.mark.parametrize("state", list(SLOW_STATES))
def test_roundtrip_slow(server_factory, state):
    run_chain(SLOW_STATES[state], server_factory, state)


# --------------------------------------------------------------------------------------------
# refusing an input that echoes a non-ASCII id must not kill the server (the randomized
# states meet this: their commands may be refused, and error replies echo ids; a character
# such as U+0100 or U+4E00 once became a NUL on its way into the reply, and the module
# aborted)


@pytest.mark.parametrize("args", [
    ("LOTTERY.RESTOCK", "c", "\u0100".encode(), 1),                     # no such prize 'Ā'
    ("LOTTERY.RESTOCK", "c", "\U0001F600".encode(), 1),                 # an INF prize '😀'
    ("LOTTERY.CONFIGURE", "c", "SOLDOUT", "FALLBACK", "\u4e00".encode()),
    ("LOTTERY.TRANSFER", "c", "OUT", "t", b"\xc4\x80", 1, "{c}peer"),   # binary, same bytes
], ids=["restock-no-such-prize", "restock-inf", "fallback-not-in-table", "transfer-no-prize"])
def test_error_reply_echoing_a_non_ascii_id(server, args):
    raw = server.raw()
    assert is_ok(raw.call("LOTTERY.CONFIGURE", "c", "PRIZE", "a", 1, 1,
                          "PRIZE", "\U0001F600".encode(), 1, "INF"))
    before = raw.call("DEBUG", "DIGEST-VALUE", "c")
    try:
        rep = raw.call(*args)
    except ConnectionError:
        rep = None
    assert server.alive(), f"{args[0]} with a non-ASCII id killed the server:\n" \
                           f"{server.log_tail(8)}"
    raw = server.raw()
    assert isinstance(rep, Err) and rep.startswith("ERR "), rep
    assert raw.call("DEBUG", "DIGEST-VALUE", "c") == before
