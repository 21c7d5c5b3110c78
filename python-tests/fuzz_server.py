#!/usr/bin/env python3
"""Stateful fuzzer for the module inside a real redis-server, with a replica attached.

It sends random sequences of every LOTTERY.* command to a master (module loaded with
``debug-clock yes``) whose replica follows it with ``replicaof``. Valid calls (campaigns with
many prizes, draws with users, REQID and CLIENT, grants, bans, transfers, ...) keep the state
deep; hostile ones mutate them: random bytes and UTF-8 of every plane in ids and keys, NUL/CR/LF
inside ids, boundary and malformed numbers, ids and keys up to tens of KB, options repeated or
missing, wrong arities. Calls are also wrapped: MULTI/EXEC, EVAL (redis.call / redis.pcall),
COPY, RENAME, DUMP + RESTORE (to other keys, long names included), DEL, and rarely FLUSHALL.

After each batch it checks:

- master and replica are alive, answer PING, and their logs hold no crash, panic, assertion
  or ``== CRITICAL ==`` line;
- once the replica has caught up (WAIT, then equal replication offsets), every key's
  ``DEBUG DIGEST-VALUE`` and the dataset's ``DEBUG DIGEST`` are equal on master and replica;
- for each campaign: DUMP then ``RESTORE tmp 0 payload`` is accepted and has the same
  DIGEST-VALUE (a restored campaign keeps its stream name, so the values are equal); COPY to
  a temporary key gives the same LOTTERY.STATS except ``stream``, which is either the
  original's or (for a campaign on its default stream) the new key's default stream, and the
  same DIGEST-VALUE whenever the stream is the same (a VERIFIABLE campaign's copy holds its
  own seed: its seed fields and digest differ);
- ``DEBUG RELOAD`` (RDB save + load) on the master keeps the key set and every digest; every
  few batches the same for the replica, a ``BGREWRITEAOF`` + ``DEBUG LOADAOF`` on the master,
  and a full resync of the replica (its digests must equal the master's again);
- the campaign rules (docs/rules.md): ``STATS`` has ``draws = wins + losses``, a code prize's
  stock equals its ``LOTTERY.CODES ... COUNT``, and no code is ever handed out twice by one
  campaign: every ``WIN`` reply with a code (directly or inside ``MULTI``) is remembered per
  campaign and prize, and the same code under another win id is a failure (a ``REQID``
  replay repeats the win id). The memory follows the keys: ``COPY``, ``RENAME`` and
  ``RESTORE`` of a ``DUMP`` carry it to the new key (the value remembers its handed-out
  codes), a ``DEL``, a ``SET``, a ``FLUSHALL`` or a command whose effect is unknown (inside
  ``EVAL``) forgets it, and so does a ``CONFIGURE`` for a prize it does not declare ``CODES``.

A command slower than ``--slow-ms`` is reported (a soft failure: the run goes on, but exits
non-zero).

The sequence depends only on the seed (not on replies: draws are random on the server), so a
failure is replayable. Every command sent since the start (or the last FLUSHALL) is logged in
redis-cli syntax, one per line, with ``# check`` lines where the checks ran. On a failure the
fuzzer prints the seed, the last commands and the server log tails, writes that log to
``<out>/fuzz-<seed>.replay``, shrinks it (delta debugging against fresh servers, for
``--minimize-seconds``) into ``<out>/fuzz-<seed>.min.replay``, and exits 1.

    python fuzz_server.py --seconds 60                 # random seed, printed
    python fuzz_server.py --seed 42 --batches 20
    python fuzz_server.py --replay fuzz-out/fuzz-42.min.replay
    redis-cli -p PORT < fuzz-out/fuzz-42.min.replay     # the same by hand ('#' lines: errors)

Environment: LOTTERY_MODULE (the .so), REDIS_SERVER (as for the tests).
"""
import argparse
import os
import random
import shutil
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lottery_helpers as H  # noqa: E402

U32 = 4294967295
I64 = 9223372036854775807
DAY = 86_400_000

# Log lines that mean the server crashed, panicked or refused its own data.
BAD_LOG = ["crashed by signal", "panicked", "panic", "ASSERTION FAILED", "Guru Meditation",
           "REDIS BUG REPORT", "== CRITICAL ==", "Bad file format", "Internal error in RDB",
           "Short read", "Unrecoverable error", "STACK TRACE"]


class Failure(Exception):
    def __init__(self, kind, detail):
        super().__init__(f"{kind}: {detail}")
        self.kind = kind
        self.detail = detail


# --------------------------------------------------------------------------------------------
# servers

class FuzzServer(H.RedisServer):
    """A RedisServer whose stdout/stderr (where a Rust panic message goes) land in a file."""

    def __init__(self, **kw):
        super().__init__(capture_output=True, **kw)

    def all_log(self):
        text = ""
        for p in (self.logfile, self.output_file):
            if p and os.path.exists(p):
                with open(p, "rb") as f:
                    text += f.read().decode("utf-8", "replace")
        return text

    def stderr_tail(self, n=15):
        try:
            with open(self.output_file, "rb") as f:
                return "\n".join(f.read().decode("utf-8", "replace").splitlines()[-n:])
        except OSError:
            return ""


def bad_log_lines(server):
    out = []
    for line in server.all_log().splitlines():
        if any(p.lower() in line.lower() for p in BAD_LOG):
            out.append(line[:300])
    return out


def first_crash_line(server):
    """The panic message (and where), else Redis's crash line, else the first bad line."""
    out = server.all_log().splitlines()
    for i, line in enumerate(out):
        if "panicked at" in line:
            return (line.strip() + " " + (out[i + 1].strip() if i + 1 < len(out) else ""))[:400]
    lines = bad_log_lines(server)
    for pat in ("crashed by signal", "ASSERTION", "Guru"):
        for line in lines:
            if pat.lower() in line.lower():
                return line
    return lines[0] if lines else "(no crash line in the log)"


class Pair:
    """A master (appendonly, debug-clock) and a replica of it, with raw clients."""

    def __init__(self):
        args = ("debug-clock", "yes")
        self.master = FuzzServer(module_args=args, appendonly=True,
                                 extra_args=["--appendfsync", "no", "--loglevel", "notice",
                                             "--lua-time-limit", "60000"])
        self.replica = FuzzServer(module_args=args,
                                  replicaof=("127.0.0.1", self.master.port),
                                  extra_args=["--loglevel", "notice"])
        self.m = H.RawClient(self.master.port, timeout=120)
        self.r = H.RawClient(self.replica.port, timeout=120)
        self.wait_link()

    def wait_link(self, timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            info = info_dict(self.r.call("INFO", "replication"))
            if info.get("master_link_status") == "up":
                return
            time.sleep(0.05)
        raise Failure("replica", f"replica link not up after {timeout}s")

    def reconnect(self):
        for c in (self.m, self.r):
            c.close()
        self.m = H.RawClient(self.master.port, timeout=120)
        self.r = H.RawClient(self.replica.port, timeout=120)

    def close(self):
        for c in (self.m, self.r):
            c.close()
        for s in (self.master, self.replica):
            s.cleanup()


def info_dict(text):
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    d = {}
    for line in str(text).splitlines():
        if ":" in line and not line.startswith("#"):
            k, v = line.split(":", 1)
            d[k] = v.strip()
    return d


# --------------------------------------------------------------------------------------------
# the replay log: redis-cli syntax (sdssplitargs), one command a line

def quote(arg):
    s = arg.decode("utf-8", "surrogateescape")
    out = ['"']
    for ch in s:
        o = ord(ch)
        if 0xDC80 <= o <= 0xDCFF:
            out.append("\\x%02x" % (o - 0xDC00))
        elif ch == '"' or ch == "\\":
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif ch.isprintable() and o < 0xD800 or (o >= 0xE000 and ch.isprintable()):
            out.append(ch)
        else:
            out.extend("\\x%02x" % b for b in ch.encode("utf-8", "surrogatepass"))
    out.append('"')
    return "".join(out)


def format_cmd(args):
    return " ".join(quote(a) for a in args)


_ESC = {"n": b"\n", "r": b"\r", "t": b"\t", "b": b"\b", "a": b"\a", '"': b'"', "\\": b"\\"}


def parse_line(line):
    """sdssplitargs, as redis-cli reads a line (double quotes with escapes, or bare words)."""
    args, i, n = [], 0, len(line)
    while True:
        while i < n and line[i].isspace():
            i += 1
        if i >= n:
            return args
        cur = bytearray()
        if line[i] == '"':
            i += 1
            while True:
                if i >= n:
                    raise ValueError(f"unbalanced quotes in {line[:80]!r}")
                ch = line[i]
                if ch == "\\" and i + 1 < n:
                    nx = line[i + 1]
                    if nx == "x" and i + 3 < n:
                        cur.append(int(line[i + 2:i + 4], 16))
                        i += 4
                        continue
                    cur += _ESC.get(nx, nx.encode())
                    i += 2
                    continue
                if ch == '"':
                    i += 1
                    break
                cur += ch.encode("utf-8")
                i += 1
        elif line[i] == "'":
            i += 1
            while i < n and line[i] != "'":
                cur += line[i].encode("utf-8")
                i += 1
            i += 1
        else:
            while i < n and not line[i].isspace():
                cur += line[i].encode("utf-8")
                i += 1
        args.append(bytes(cur))


def short(args, width=70):
    parts = []
    for a in args[:14]:
        q = quote(a)
        if len(q) > width:
            q = q[:width] + f'...({len(a)} bytes)"'
        parts.append(q)
    if len(args) > 14:
        parts.append(f"... ({len(args)} args)")
    return " ".join(parts)


class ReplayLog:
    """The commands sent since the start or the last FLUSHALL, in a file."""

    def __init__(self, path):
        self.path = path
        self.f = open(path, "w", encoding="utf-8")
        self.tail = []

    def reset(self, preamble=()):
        self.f.close()
        self.f = open(self.path, "w", encoding="utf-8")
        for args in preamble:
            self.add(args)

    def add(self, args):
        self.f.write(format_cmd(args) + "\n")
        self.tail.append(args)
        if len(self.tail) > 60:
            del self.tail[:20]

    def mark(self, text="check"):
        self.f.write(f"# {text}\n")

    def lines(self):
        self.f.flush()
        with open(self.path, encoding="utf-8") as f:
            return [l.rstrip("\n") for l in f]

    def close(self):
        self.f.close()


# --------------------------------------------------------------------------------------------
# values

INTS = [b"0", b"-1", b"1", b"2", b"3", b"5", b"7", b"10", b"100", b"1000", b"5000",
        b"86400000", b"86400001", b"1440", b"-1440", b"1441", b"-1441", b"65536", b"65537",
        b"2147483647", b"2147483648", b"-2147483648", b"4294967295", b"4294967296",
        b"9223372036854775807", b"9223372036854775808", b"-9223372036854775807",
        b"-9223372036854775808", b"-9223372036854775809", b"18446744073709551615",
        b"18446744073709551616", b"1000000000", b"1000000001", b"+5", b" 5", b"5 ", b"5.0",
        b"1e3", b"0x10", b"", b"00", b"-0", b"007", b"INF", b"inf", b"-INF", b"nan", b"1_000",
        "５".encode(), "١".encode(), b"5\x00", b"\x005", b"9" * 40, b"-", b"--1"]
PROBS = [b"0", b"1", b"0.3", b"0.000001", b"0.0000001", b"1.5", b"-0", b".5", b"0.", b"1.000000",
         b"1.0000001", b"0,5", b"1e-6", b"0.999999", b"", b"OFF", b"nan", b"-0.1", b"1.0"]

UNI = ["一等奖", "二等奖", "三等奖", "🎁", "😀", "Ā", "一", "e\u0301", "a\u0308\u0301",
       "\U0010FFFF", "\uFFFD", "\u200b", "\ufeff", "Ω", "𝔘𝔫𝔦", "👨\u200d👩\u200d👧", "ñ", "ß",
       "İ", "\u202e", "한국", "ア", "\U0001F600\U0001F3FD", "\u0300", "Ⅻ", "ﷺ", "\u2028"]

KEYWORDS = {}


def case(rng, word):
    if rng.random() < 0.85:
        return word
    return bytes(c ^ 0x20 if rng.random() < 0.5 and chr(c).isalpha() else c for c in word)


def rand_char(rng):
    k = rng.random()
    if k < 0.3:
        return chr(rng.randrange(0x21, 0x7F))
    if k < 0.45:
        return rng.choice(UNI)
    if k < 0.55:
        return chr(rng.randrange(0x80, 0x800))
    if k < 0.7:
        o = rng.randrange(0x800, 0x10000)
        return chr(o) if not 0xD800 <= o < 0xE000 else "\u4e00"
    if k < 0.8:
        return chr(rng.randrange(0x10000, 0x110000))
    if k < 0.9:
        return rng.choice(["\x00", "\r", "\n", "\r\n", " ", "\t", "{", "}", "\x7f"])
    return "\udc80"  # placeholder for a raw byte, see rand_str


def rand_str(rng, n=None):
    if n is None:
        n = rng.choice([0, 1, 1, 2, 3, 4, 6, 8, 12, 20, 40])
    out = bytearray()
    for _ in range(n):
        ch = rand_char(rng)
        if ch == "\udc80":
            out.append(rng.randrange(256))
        else:
            out += ch.encode("utf-8")
    return bytes(out)


def sized(rng, n, prefix=b""):
    """A string of exactly n bytes (n >= len(prefix)), padded with mixed characters."""
    fill = rng.choice([b"x", "一".encode(), b"\x00", "🎁".encode(), b"ab\r\n"])
    body = prefix + fill * ((n - len(prefix)) // len(fill) + 1)
    return body[:n]


def hostile(rng):
    k = rng.random()
    if k < 0.3:
        return rng.choice(INTS)
    if k < 0.55:
        return rand_str(rng)
    if k < 0.65:
        return rng.choice(UNI).encode()
    if k < 0.75:
        return rng.choice(PROBS)
    if k < 0.85:
        return case(rng, rng.choice([b"PRIZE", b"NOTHING", b"REQID", b"CLIENT", b"INF", b"LOSE",
                                     b"OFF", b"BURST", b"WINDOW", b"STREAM", b"PACE", b"LIST",
                                     b"PENDING", b"OUT", b"IN", b"SETTLE", b"LAST", b"CAP",
                                     b"REAL", b"CLOCK", b"FALLBACK", b"REDRAW", b"LINEAR",
                                     b"TIER", b"PRIZE-WEIGHT", b"GUARANTEE", b"PRIZES",
                                     b"TOTAL", b"PERIOD", b"WEEK", b"MONTH", b"DAY", b"AFTER",
                                     b"CODES", b"ADD", b"REMOVE", b"COUNT"]))
    if k < 0.97:
        return sized(rng, rng.choice([127, 128, 129, 255, 256, 257, 4095, 4096, 4097]))
    return sized(rng, rng.choice([20000, 40000, 70000]))


def _crc16(data):
    return H._crc16(data)


_TABLE = []
for _i in range(256):
    _c = _i << 8
    for _ in range(8):
        _c = ((_c << 1) ^ 0x1021) if _c & 0x8000 else (_c << 1)
    _TABLE.append(_c & 0xFFFF)


def crc16(data):
    crc = 0
    for b in data:
        crc = ((crc << 8) & 0xFFFF) ^ _TABLE[((crc >> 8) ^ b) & 0xFF]
    return crc


def hash_tag(key):
    o = key.find(b"{")
    if o < 0:
        return None
    c = key.find(b"}", o + 1)
    if c < 0 or c == o + 1:
        return None
    return key[o + 1:c]


def slot(key):
    t = hash_tag(key)
    return crc16(t if t is not None else key) & 0x3FFF


def default_stream(key):
    if hash_tag(key) is not None:
        return key + b":wins"
    return b"{" + key + b"}:wins"


# --------------------------------------------------------------------------------------------
# the generator: depends only on its own RNG and model, never on replies

def shift_low_nul(arg):
    """Replaces each character above U+00FF whose low byte is 0x00 (U+0100 'Ā', U+4E00 '一')
    by the next code point (for --avoid-known)."""
    s = arg.decode("utf-8", "surrogateescape")
    t = "".join(chr(ord(c) + 1) if ord(c) > 0xFF and ord(c) & 0xFF == 0 and
                not 0xD800 <= ord(c) < 0xE000 else c for c in s)
    return arg if t == s else t.encode("utf-8", "surrogateescape")


class Gen:
    def __init__(self, seed, avoid_known=False):
        self.avoid_known = avoid_known
        self.rng = random.Random(seed)
        rng = self.rng
        self.clock = H.T0
        long_keys = [b"{L}" + b"k" * (n - 3) for n in (4085, 4088, 4089, 4090, 4091, 4093, 4096)]
        self.keys = [b"camp", b"c:{a}", b"c2:{a}", "一等奖:{奖}".encode(), b"k\x00\r\n{z}",
                     b"a{}b", b"", "🎁{🎁}".encode(), b"{b}", "Ā{一}".encode(), b"x{}{y}"]
        self.keys += [rand_str(rng, rng.randrange(1, 12)) for _ in range(4)]
        self.rare_keys = long_keys + [sized(rng, 20000, b"{H}"), sized(rng, 50000)]
        self.prizes = {}           # key -> prize ids of the last CONFIGURE sent
        self.users = [b"u%d" % i for i in range(40)] + [rand_str(rng) for _ in range(30)] + \
            [u.encode() for u in UNI[:10]] + [b"", b"\x00", b"a\x00b", b"\r\n", b"CLIENT",
                                              b"REQID", sized(rng, 300)]
        self.reqids = [b"r%d" % i for i in range(20)] + [rand_str(rng) for _ in range(8)] + \
            [sized(rng, 128), sized(rng, 129), b""]
        self.clients = [b"10.0.0.%d" % i for i in range(6)] + [rand_str(rng) for _ in range(5)] + \
            [sized(rng, 256), sized(rng, 257), b""]
        self.xfers = [b"t%d" % i for i in range(10)] + [rand_str(rng) for _ in range(4)] + \
            [sized(rng, 128), sized(rng, 129)]
        self.peers = [b"peer:{a}", b"other", rand_str(rng), sized(rng, 4096), sized(rng, 4097)]
        self.prize_pool = [b"gold", b"silver", b"bronze", b"p0", b"p1", b"p2"] + \
            [u.encode() for u in UNI] + [b"\x00", b"a\x00b", b"\r\n", b"\xff\xfe", b" ",
                                         sized(rng, 256), b"INF", b"PRIZE", b"NOTHING"]
        self._same_slot = {}
        self.pending = None
        # the campaign rules: tiers and code prizes of the last CONFIGURE sent per key
        self.tiers = {}
        self.code_prizes = {}
        self.tier_pool = [b"vip", b"low", b"t1", "奖品".encode(), "\U0001F381".encode(),
                          b"\x00\xff", b"TIER", b"OFF", b"NOTHING", sized(rng, 64),
                          sized(rng, 65), b""]
        self.codes_sent = []       # codes ADDed so far (re-ADD and REMOVE pick from them)
        self.code_seq = 0

    # -- picks
    def key(self):
        r = self.rng.random()
        if r < 0.03:
            return self.rng.choice(self.rare_keys)
        if r < 0.06:
            return rand_str(self.rng)
        return self.rng.choice(self.keys)

    def campaign_key(self):
        known = [k for k in self.keys if k in self.prizes]
        if known and self.rng.random() < 0.85:
            return self.rng.choice(known)
        return self.key()

    def prize_of(self, key):
        ps = self.prizes.get(key)
        if ps and self.rng.random() < 0.85:
            return self.rng.choice(ps)
        return self.rng.choice(self.prize_pool) if self.rng.random() < 0.8 else hostile(self.rng)

    def pick(self, pool, fresh=0.05):
        if self.rng.random() < fresh:
            return hostile(self.rng)
        return self.rng.choice(pool)

    def same_slot_name(self, key):
        """A stream name in the key's slot (other than the key and its default stream)."""
        rng = self.rng
        t = hash_tag(key)
        if t is not None:
            return b"{" + t + b"}:" + rng.choice([b"s1", b"s2", "流".encode(), b"\x00s"])
        if key not in self._same_slot:
            want = slot(key)
            i = 0
            while slot(b"s%d" % i) != want:
                i += 1
            self._same_slot[key] = b"s%d" % i
        return self._same_slot[key]

    def num(self, lo, hi, inf=False):
        rng = self.rng
        r = rng.random()
        if inf and r < 0.2:
            return case(rng, b"INF")
        if r < 0.3:
            return str(rng.choice([lo, hi, lo + 1, max(lo, hi - 1)])).encode()
        if r < 0.9:
            return str(rng.randint(lo, min(hi, lo + 20))).encode()
        return str(rng.randint(lo, hi)).encode()

    # -- commands
    def configure(self):
        rng = self.rng
        key = self.campaign_key() if rng.random() < 0.9 else self.key()
        r = rng.random()
        if r < 0.002:
            n = rng.choice([65536, 65537])
        elif r < 0.03:
            n = rng.randint(100, 3000)
        elif r < 0.3:
            n = rng.randint(6, 40)
        elif r < 0.95:
            n = rng.randint(1, 5)
        else:
            n = 0
        args = [case(rng, b"LOTTERY.CONFIGURE"), key]
        ids = []
        code_ids = []
        if n <= 40:
            pool = list(self.prize_pool)
            rng.shuffle(pool)
            for i in range(n):
                if rng.random() < 0.4 and pool:
                    ids.append(pool.pop())
                else:
                    ids.append(rand_str(rng, rng.randint(1, 10)) + b"#%d" % i)
            ids = list(dict.fromkeys(ids))
        else:
            tag = rng.choice([b"p", "奖".encode(), b"\x00"])
            ids = [tag + b"%d" % i for i in range(n)]
            for i in rng.sample(range(n), min(n, 10)):
                ids[i] = rng.choice(UNI).encode() + b"%d" % i
            ids = list(dict.fromkeys(ids))
        finite = []
        for pid in ids:
            w = rng.choice([b"0", b"1", b"1", b"2", b"3", b"10", b"100", b"4294967295"]) \
                if n <= 40 else b"%d" % rng.randint(0, 3)
            s = rng.choice([b"0", b"1", b"2", b"5", b"100", case(rng, b"INF"),
                            b"9223372036854775807"]) if n <= 40 else b"%d" % rng.randint(0, 9)
            if n <= 40 and rng.random() < 0.3:
                args += [case(rng, b"PRIZE"), pid, w, case(rng, b"CODES")]
                code_ids.append(pid)
            else:
                if s.upper() != b"INF":
                    finite.append(pid)
                args += [case(rng, b"PRIZE"), pid, w, s]
            if n <= 40 and rng.random() < 0.1:
                args += [case(rng, b"AFTER"), rng.choice([b"1", b"2", b"3", b"10", b"4294967295",
                                                          b"0", b"4294967296"])]
        if ids and n <= 40 and rng.random() < 0.9:
            args[4] = rng.choice([b"1", b"5", b"100"])      # weights not all zero
        opts = []
        if rng.random() < 0.5:
            opts.append([b"NOTHING", self.num(0, U32)])
        if rng.random() < 0.3:
            opts.append([b"COOLDOWN", rng.choice([b"0", b"1000", b"5000", b"86400000", b"%d" % I64])])
        if rng.random() < 0.3:
            opts.append([b"DAILY", self.num(0, U32, inf=True)])
        if rng.random() < 0.3:
            opts.append([b"MAXWINS", self.num(0, U32, inf=True)])
        if rng.random() < 0.2:
            opts.append([b"DAYOFFSET", str(rng.randint(-1440, 1440)).encode()])
        window = rng.random() < 0.2
        if window:
            s = self.clock + rng.choice([-DAY, -1000, 0, 1000, DAY])
            s = max(0, s)
            e = s + rng.choice([1, 1000, DAY, 30 * DAY, 30 * DAY, I64 - s])
            opts.append([b"WINDOW", b"%d" % s, b"%d" % min(e, I64)])
        if rng.random() < 0.25:
            m = rng.choice([b"LOSE", b"REDRAW", b"FALLBACK"])
            if m == b"FALLBACK":
                opts.append([b"SOLDOUT", m, rng.choice(ids) if ids else b"x"])
            else:
                opts.append([b"SOLDOUT", m])
        no_default = hash_tag(key) is None and (key == b"" or b"{" in key or b"}" in key)
        if rng.random() < (0.8 if no_default else 0.1):
            opts.append([b"STREAM", self.same_slot_name(key)])
        if rng.random() < 0.2:
            opts.append([b"IDEMPOTENCY", rng.choice([b"0", b"1000", b"600000", b"86400000"])])
        if rng.random() < 0.15:
            o = [b"RATE", rng.choice([b"1", b"10", b"1000", b"1000000000"])]
            if rng.random() < 0.5:
                o += [b"BURST", rng.choice([b"1", b"5", b"1000000000"])]
            opts.append(o if rng.random() < 0.8 else [b"RATE", b"OFF"])
        if rng.random() < 0.15:
            o = [b"ADMIT", rng.choice([b"0.3", b"1", b"0.000001", b"0", b"0.5"])]
            if rng.random() < 0.5:
                o.append(rng.choice([b"1", b"0.9", b"0.25"]))
            opts.append(o if rng.random() < 0.8 else [b"ADMIT", b"OFF"])
        if rng.random() < 0.15:
            opts.append([b"CLIENTLIMIT", rng.choice([b"0", b"1", b"3", b"%d" % U32]),
                         rng.choice([b"1", b"1000", b"%d" % I64])]
                        if rng.random() < 0.85 else [b"CLIENTLIMIT", b"OFF"])
        if rng.random() < 0.1:
            opts.append([b"PENALTY", rng.choice([b"0", b"1000", b"%d" % I64])])
        if window and finite and rng.random() < 0.5:
            for pid in rng.sample(finite, min(len(finite), rng.randint(1, 3))):
                opts.append([b"PACE", pid, rng.choice([b"LINEAR", b"NONE"])])
        known = ids or self.prizes.get(key) or [b"gold"]
        if rng.random() < 0.15:
            if rng.random() < 0.15:
                opts.append([b"GUARANTEE", b"OFF"])
            else:
                o = [b"GUARANTEE", rng.choice([b"2", b"3", b"5", b"10", b"1000000", b"1",
                                               b"1000001", b"0"])]
                if rng.random() < 0.5:
                    listed = rng.sample(known, min(len(known), rng.randint(1, 3)))
                    cnt = len(listed) if rng.random() < 0.85 else len(listed) + rng.choice([-1, 1, 5])
                    o += [b"PRIZES", b"%d" % cnt] + listed
                opts.append(o)
        if rng.random() < 0.12:
            opts.append([b"TOTAL", rng.choice([b"0", b"1", b"3", b"10", b"100", b"4294967295",
                                               case(rng, b"INF")])])
        if rng.random() < 0.12:
            opts.append([b"PERIOD", case(rng, rng.choice([b"DAY", b"WEEK", b"MONTH"]))])
        if rng.random() < 0.1:
            o = [b"VERIFIABLE"]
            v = rng.random()
            if v < 0.4:
                o += [case(rng, b"LOG"), case(rng, rng.choice([b"WINS", b"ALL"]))]
            elif v < 0.5:
                o += [rng.choice([b"OFF", b"LOG", b"LOG\x00", hostile(rng)])]
            opts.append(o)
        tier_names = []
        tier_clauses = []
        if rng.random() < 0.2:
            for _ in range(rng.choice([1, 1, 2, 3, 33])):
                name = self.pick(self.tier_pool, fresh=0.02) if rng.random() < 0.8 \
                    else b"t%d" % rng.randrange(40)
                if rng.random() < 0.1:
                    tier_clauses.append([b"TIER", name, b"OFF"])
                    continue
                c = [b"TIER", name]
                for pid in rng.sample(known, min(len(known), rng.randint(0, 3))):
                    c += [case(rng, b"PRIZE-WEIGHT"), pid,
                          rng.choice([b"0", b"1", b"5", b"100", b"4294967295"])]
                if rng.random() < 0.6:
                    c += [case(rng, b"NOTHING"), rng.choice([b"0", b"1", b"10", b"1000"])]
                tier_clauses.append(c)
                tier_names.append(name)
        rng.shuffle(opts)
        for o in opts:
            args += [case(rng, o[0])] + o[1:]
        for c in tier_clauses:              # last: a tier's clause ends at the next keyword
            args += [case(rng, c[0])] + c[1:]
        if n and ids and n <= 65536:
            self.pending = (key, ids, code_ids, tier_names)
        elif tier_names:
            self.pending = (key, None, None, tier_names)
        return args

    def codes(self):
        rng = self.rng
        key = self.campaign_key()
        cps = self.code_prizes.get(key)
        prize = rng.choice(cps) if cps and rng.random() < 0.85 else self.prize_of(key)
        r = rng.random()
        if r < 0.55:
            codes = []
            for _ in range(rng.choice([1, 1, 2, 5, 20, 200])):
                k = rng.random()
                if k < 0.8 or not self.codes_sent:
                    self.code_seq += 1
                    c = rng.choice([b"code%d" % self.code_seq,
                                    b"%d\x00\xff" % self.code_seq,
                                    ("码%d" % self.code_seq).encode(),
                                    b"%d" % self.code_seq + sized(rng, rng.choice([16, 500]))[:500]])
                    self.codes_sent.append(c)
                    if len(self.codes_sent) > 5000:
                        del self.codes_sent[:1000]
                elif k < 0.95:
                    c = rng.choice(self.codes_sent)            # again: skipped
                else:
                    c = rng.choice([b"", sized(rng, 512), sized(rng, 513), hostile(rng)])
                codes.append(c)
            return [b"LOTTERY.CODES", key, prize, case(rng, b"ADD")] + codes
        if r < 0.75:
            codes = [rng.choice(self.codes_sent) if self.codes_sent and rng.random() < 0.9
                     else hostile(rng) for _ in range(rng.choice([1, 1, 3, 10]))]
            return [b"LOTTERY.CODES", key, prize, case(rng, b"REMOVE")] + codes
        return [b"LOTTERY.CODES", key, prize, case(rng, b"COUNT")]

    def draw(self):
        rng = self.rng
        args = [case(rng, b"LOTTERY.DRAW"), self.campaign_key(), self.pick(self.users)]
        opts = []
        if rng.random() < 0.35:
            opts.append([case(rng, b"REQID"), self.pick(self.reqids)])
        if rng.random() < 0.3:
            opts.append([case(rng, b"CLIENT"), self.pick(self.clients)])
        if rng.random() < 0.25:
            tiers = self.tiers.get(args[1])
            opts.append([case(rng, b"TIER"), rng.choice(tiers) if tiers and rng.random() < 0.85
                         else self.pick(self.tier_pool, fresh=0.1)])
        rng.shuffle(opts)
        for o in opts:
            args += o
        return args

    def one(self):
        """One command (args list), valid most of the time."""
        rng = self.rng
        r = rng.random()
        k = self.campaign_key
        if r < 0.08:
            return self.configure()
        if r < 0.14:
            return self.codes()
        if r < 0.45:
            return self.draw()
        if r < 0.50:
            a = [b"LOTTERY.GRANT", k(), self.pick(self.users), self.num(1, U32)]
            if rng.random() < 0.3:
                a += [b"CAP", self.num(0, U32)]
            return a
        if r < 0.55:
            key = k()
            return [b"LOTTERY.RESTOCK", key, self.prize_of(key),
                    rng.choice([b"1", b"-1", b"5", b"-5", b"100", b"0", b"%d" % I64, b"-%d" % I64])]
        if r < 0.57:
            return [rng.choice([b"LOTTERY.PAUSE", b"LOTTERY.RESUME"]), k()]
        if r < 0.61:
            if rng.random() < 0.3:
                return [b"LOTTERY.BAN", k(), b"CLIENT", self.pick(self.clients),
                        self.num(1, I64)]
            return [b"LOTTERY.BAN", k(), self.pick(self.users),
                    rng.choice([b"1", b"1000", b"86400000", b"%d" % I64])]
        if r < 0.64:
            if rng.random() < 0.3:
                return [b"LOTTERY.UNBAN", k(), b"CLIENT", self.pick(self.clients)]
            return [b"LOTTERY.UNBAN", k(), self.pick(self.users)]
        if r < 0.68:
            return [b"LOTTERY.USER", k(), self.pick(self.users)]
        if r < 0.71:
            return [b"LOTTERY.STATS", k()]
        if r < 0.74:
            return [b"LOTTERY.DRAIN", k()] + ([b"LAST"] if rng.random() < 0.3 else [])
        if r < 0.84:
            key = k()
            sub = rng.random()
            if sub < 0.35:
                return [b"LOTTERY.TRANSFER", key, b"OUT", self.pick(self.xfers),
                        self.prize_of(key), self.num(1, I64), self.pick(self.peers)]
            if sub < 0.65:
                return [b"LOTTERY.TRANSFER", key, b"IN", self.pick(self.xfers),
                        self.prize_of(key), self.num(0, I64), self.pick(self.peers)]
            if sub < 0.85:
                return [b"LOTTERY.TRANSFER", key, b"SETTLE", self.pick(self.xfers)]
            return [b"LOTTERY.TRANSFER", key, b"LIST"] + ([b"PENDING"] if rng.random() < 0.5 else [])
        if r < 0.88:
            if rng.random() < 0.15:
                return [b"LOTTERY.DEBUG", b"CLOCK", rng.choice(INTS)]
            if rng.random() < 0.05:
                return [b"LOTTERY.DEBUG", b"CLOCK", b"REAL"]
            self.clock += rng.choice([0, 1, 500, 1000, 1000, 5000, 5000, 60_000, 3_600_000, DAY])
            return [b"LOTTERY.DEBUG", b"CLOCK", b"%d" % self.clock]
        if r < 0.89:
            return [b"LOTTERY.APPLY", k(), rand_str(rng, rng.randrange(0, 60))]
        if r < 0.895:
            sub = rng.random()
            word = rng.choice([b"ROTATE", b"REVEAL"]) if sub < 0.9 else hostile(rng)
            return [b"LOTTERY.SEED", k(), case(rng, word)]
        if r < 0.92:
            key = k()
            sub = rng.random()
            stream = default_stream(key)
            if sub < 0.3:
                return [b"SET", rng.choice([stream, key]), b"not-a-stream"]
            if sub < 0.6:
                return [b"DEL", stream]
            if sub < 0.8:
                return [b"XADD", stream, b"*", b"f", b"v"]
            return [rng.choice([b"MEMORY", b"TYPE", b"EXISTS", b"OBJECT"]), key] \
                if rng.random() < 0.5 else [b"MEMORY", b"USAGE", key]
        # a command with the wrong shape
        name = rng.choice([b"LOTTERY.CONFIGURE", b"LOTTERY.DRAW", b"LOTTERY.GRANT",
                           b"LOTTERY.RESTOCK", b"LOTTERY.PAUSE", b"LOTTERY.RESUME",
                           b"LOTTERY.BAN", b"LOTTERY.UNBAN", b"LOTTERY.USER", b"LOTTERY.STATS",
                           b"LOTTERY.DRAIN", b"LOTTERY.TRANSFER", b"LOTTERY.DEBUG",
                           b"LOTTERY.APPLY", b"LOTTERY.CODES", b"LOTTERY.SEED"])
        return [name] + [hostile(rng) for _ in range(rng.choice([0, 1, 2, 3, 5, 8]))]

    def mutate(self, args):
        rng = self.rng
        args = list(args)
        for _ in range(rng.choice([1, 1, 1, 2, 3])):
            m = rng.random()
            if m < 0.35 and len(args) > 1:
                args[rng.randrange(1, len(args))] = hostile(rng)
            elif m < 0.5 and len(args) > 1:
                del args[rng.randrange(1, len(args))]
            elif m < 0.6 and len(args) > 2:
                i = rng.randrange(2, len(args))
                j = min(len(args), i + rng.randint(1, 3))
                args[j:j] = args[i:j]              # an option (or part of one) repeated
            elif m < 0.7:
                args.insert(rng.randrange(1, len(args) + 1), hostile(rng))
            elif m < 0.8 and len(args) > 2:
                args = args[:rng.randrange(1, len(args))]
            elif m < 0.9 and len(args) > 1:
                args[1] = rng.choice(self.rare_keys + [hostile(rng)])
            else:
                args += [hostile(rng) for _ in range(rng.randint(1, 4))]
        return args

    def command(self):
        self.pending = None
        a = self.one()
        if self.rng.random() < 0.25:
            a = self.mutate(a)
        elif self.pending:                      # a CONFIGURE that should succeed
            key, ids, code_ids, tier_names = self.pending
            if ids is not None:
                self.prizes[key] = ids
                self.code_prizes[key] = code_ids
            if tier_names:
                self.tiers[key] = list(dict.fromkeys(self.tiers.get(key, []) + tier_names))[-32:]
        elif len(a) == 2 and a[0] in (b"DEL", b"UNLINK"):
            self.prizes.pop(a[1], None)
        elif a[0] == b"SET":
            self.prizes.pop(a[1], None)
        return a

    # -- units: a command, or a wrapper around some
    def unit(self):
        """('cmd', args) | ('multi', [args...], exec_word) | ('dumprestore', src, dst, opts)"""
        u = self._unit()
        if not self.avoid_known:
            return u
        if u[0] == "cmd":
            return ("cmd", [shift_low_nul(a) for a in u[1]])
        if u[0] == "multi":
            return ("multi", [[shift_low_nul(a) for a in c] for c in u[1]], u[2])
        return ("dumprestore", shift_low_nul(u[1]), shift_low_nul(u[2]), u[3])

    def _unit(self):
        rng = self.rng
        r = rng.random()
        if r < 0.78:
            return ("cmd", self.command())
        if r < 0.85:
            cmds = [self.command() for _ in range(rng.randint(1, 6))]
            return ("multi", cmds, b"DISCARD" if rng.random() < 0.05 else b"EXEC")
        if r < 0.91:
            cmds = [self.command() for _ in range(rng.randint(1, 4))]
            cmds = [c for c in cmds if len(c) < 2000] or [self.draw()]
            if len(cmds) == 1 and rng.random() < 0.5:
                fn = rng.choice([b"call", b"pcall"])
                script = b"return redis." + fn + b"(unpack(ARGV))"
                verb = b"EVAL_RO" if rng.random() < 0.1 else b"EVAL"
                return ("cmd", [verb, script, b"0"] + cmds[0])
            script = (b"local r={} local i=1 while i<=#ARGV do local n=tonumber(ARGV[i]) "
                      b"local a={} for j=1,n do a[j]=ARGV[i+j] end "
                      b"local ok,v=pcall(redis.call,unpack(a)) "
                      b"if ok then r[#r+1]=v else r[#r+1]=tostring(v) end i=i+n+1 end return r")
            flat = []
            for c in cmds:
                flat += [b"%d" % len(c)] + c
            return ("cmd", [b"EVAL", script, b"0"] + flat)
        if r < 0.95:
            src = self.campaign_key()
            dst = self.rng.choice(self.keys + self.rare_keys + [rand_str(rng)])
            if rng.random() < 0.3:
                dst = src + rng.choice([b":copy", b"{x}", "一".encode(), b"\x00"])
            if dst not in self.keys and len(self.keys) < 40 and len(dst) < 1000:
                self.keys.append(dst)
            if src in self.prizes:
                self.prizes[dst] = self.prizes[src]
            else:
                self.prizes.pop(dst, None)
            w = rng.random()
            if w < 0.35:
                return ("cmd", [b"COPY", src, dst] + ([b"REPLACE"] if rng.random() < 0.5 else []))
            if w < 0.55:
                verb = rng.choice([b"RENAME", b"RENAMENX"])
                if verb == b"RENAME" and src != dst:
                    self.prizes.pop(src, None)
                return ("cmd", [verb, src, dst])
            return ("dumprestore", src, dst, [b"REPLACE"] if rng.random() < 0.6 else [])
        if r < 0.97:
            k = self.key()
            self.prizes.pop(k, None)
            return ("cmd", [rng.choice([b"DEL", b"UNLINK"]), k])
        if r < 0.9995:
            return ("cmd", [b"DEBUG", b"DIGEST-VALUE", self.key()])
        self.prizes.clear()
        return ("cmd", [b"FLUSHALL"] + ([b"ASYNC"] if rng.random() < 0.3 else []))


# --------------------------------------------------------------------------------------------
# the codes model: no campaign ever hands out one code twice

class CodeModel:
    """Per campaign key and prize, the codes seen in WIN replies, with their win ids.

    A code seen again under another win id is a failure (a REQID replay repeats the win id).
    Key changes carry or drop the memory (see the module docstring); whenever a command's
    effect is not known (inside EVAL, or a reply that was not read), the memory of the keys it
    names is dropped, so the model never expects more than the server promises."""

    def __init__(self):
        self.handed = {}            # key -> {prize: {code: win id}}
        self.queue = None           # the commands queued in a MULTI
        self.restore_src = None     # the key a dump+restore unit dumped
        self.checked = 0

    def observe(self, args, rep):
        if not args:
            return
        name = args[0].upper()
        if self.queue is not None:
            if name == b"EXEC":
                q, self.queue = self.queue, None
                if isinstance(rep, list) and len(rep) == len(q):
                    for a, r in zip(q, rep):
                        self.one(a, r)
                else:
                    for a in q:
                        self.one(a, None)
            elif name == b"DISCARD":
                self.queue = None
            elif rep == "QUEUED":
                self.queue.append(args)
            return
        if name == b"MULTI" and rep == "OK":
            self.queue = []
            return
        self.one(args, rep)

    def forget(self, key):
        self.handed.pop(key, None)

    def one(self, args, rep):
        """rep None: not known."""
        name = args[0].upper()
        if name in (b"EVAL", b"EVAL_RO"):
            for inner in unwrap(args) or []:
                if inner:
                    self.one(inner, None)
            return
        if name == b"LOTTERY.DRAW":
            if len(args) >= 2 and isinstance(rep, list) and len(rep) == 6 and rep[0] == b"WIN":
                key, prize, wid, code = args[1], rep[1], rep[2], rep[5]
                seen = self.handed.setdefault(key, {}).setdefault(prize, {})
                prev = seen.get(code)
                if prev is not None and prev != wid:
                    raise Failure("code-twice", f"campaign {short([key])} prize "
                                                f"{short([prize])} handed out code "
                                                f"{short([code])} twice: win {prev!r} and "
                                                f"{wid!r}")
                seen[code] = wid
                self.checked += 1
            return
        if name in (b"DEL", b"UNLINK"):
            for k in args[1:]:
                self.forget(k)
        elif name == b"SET" and len(args) >= 2:
            self.forget(args[1])
        elif name in (b"FLUSHALL", b"FLUSHDB"):
            self.handed.clear()
        elif name == b"COPY" and len(args) >= 3:
            if rep == 1 and args[1] != args[2]:
                src = self.handed.get(args[1], {})
                self.handed[args[2]] = {p: dict(c) for p, c in src.items()}
            elif rep is None:
                self.forget(args[2])
        elif name in (b"RENAME", b"RENAMENX") and len(args) >= 3:
            if (rep == "OK" or rep == 1) and args[1] != args[2]:
                self.handed[args[2]] = self.handed.pop(args[1], {})
            elif rep is None:
                self.forget(args[1])
                self.forget(args[2])
        elif name == b"RESTORE" and len(args) >= 2:
            src, self.restore_src = self.restore_src, None
            if rep == "OK" and src is not None:
                if src != args[1]:
                    s = self.handed.get(src, {})
                    self.handed[args[1]] = {p: dict(c) for p, c in s.items()}
            elif rep == "OK" or rep is None:
                self.forget(args[1])
        elif name == b"LOTTERY.CONFIGURE" and len(args) >= 2:
            if rep == "OK" or rep is None:
                words = [a.upper() for a in args]
                if b"PRIZE" not in words[2:]:
                    return
                codes = {args[i + 1] for i in range(2, len(args) - 3)
                         if words[i] == b"PRIZE" and words[i + 3] == b"CODES"}
                mine = self.handed.get(args[1], {})
                for p in [p for p in mine if p not in codes]:
                    del mine[p]


# --------------------------------------------------------------------------------------------
# running commands and checks

class Runner:
    def __init__(self, pair, log, slow_ms):
        self.p = pair
        self.log = log
        self.slow_ms = slow_ms
        self.slow = []          # (ms, args)
        self.sent = 0
        self.clock = [b"LOTTERY.DEBUG", b"CLOCK", b"REAL"]   # the last clock command
        self.replies = {}       # error / other / each DRAW outcome -> count
        self.big = []           # (ms, args, reply) of the very large CONFIGUREs
        self.codes = CodeModel()

    def send(self, args, client=None):
        c = client or self.p.m
        t = time.monotonic()
        try:
            rep = c.call(*args)
        except (ConnectionError, OSError, socket.timeout, ValueError) as e:
            self.died(args, e)
        ms = (time.monotonic() - t) * 1000
        self.sent += 1
        name = args[0].upper() if args else b""
        if isinstance(rep, Exception) or (isinstance(rep, str) and type(rep).__name__ == "Err"):
            self.replies[b"error"] = self.replies.get(b"error", 0) + 1
        elif name == b"LOTTERY.DRAW" and isinstance(rep, list) and rep and isinstance(rep[0], bytes):
            self.replies[rep[0]] = self.replies.get(rep[0], 0) + 1
        else:
            self.replies[b"other"] = self.replies.get(b"other", 0) + 1
        if name == b"LOTTERY.CONFIGURE" and len(args) > 30000:
            self.big.append((ms, len(args), rep))
        if ms > self.slow_ms:
            self.slow.append((ms, args))
        if client is None:
            self.codes.observe(args, rep)
        return rep

    def died(self, args, exc):
        time.sleep(0.3)
        who = [s for s in (self.p.master, self.p.replica) if not s.alive()]
        if who:
            names = " and ".join("master" if s is self.p.master else "replica" for s in who)
            raise Failure("crash", f"{names} died after {short(args)} "
                                   f"({exc!r}); first crash line: {first_crash_line(who[0])}")
        if isinstance(exc, socket.timeout):
            raise Failure("hang", f"no reply within 120 s to {short(args)}")
        raise Failure("connection", f"{exc!r} after {short(args)}")

    def run_unit(self, unit):
        kind = unit[0]
        if kind == "cmd":
            a = unit[1]
            self.log.add(a)
            self.send(a)
            if a[0].upper() == b"FLUSHALL":
                self.log.reset([[b"FLUSHALL"], self.clock])
            elif len(a) == 3 and a[0].upper() == b"LOTTERY.DEBUG" and a[1].upper() == b"CLOCK":
                self.clock = a
        elif kind == "multi":
            self.log.add([b"MULTI"])
            self.send([b"MULTI"])
            for c in unit[1]:
                self.log.add(c)
                self.send(c)
            self.log.add([unit[2]])
            self.send([unit[2]])
        elif kind == "dumprestore":
            _, src, dst, opts = unit
            payload = self.send([b"DUMP", src])
            if isinstance(payload, bytes):
                a = [b"RESTORE", dst, b"0", payload] + opts
                self.log.add(a)
                self.codes.restore_src = src
                self.send(a)

    def run_line_args(self, args):
        """Replay: one logged command."""
        self.send(args)


def digests(c, keys):
    if not keys:
        return []
    return c.pipeline([[b"DEBUG", b"DIGEST-VALUE", k] for k in keys])


def all_keys(c):
    keys, cur = [], b"0"
    while True:
        cur, batch = c.call(b"SCAN", cur, b"COUNT", b"1000")
        keys += batch
        if cur == b"0":
            return keys


def lottery_keys(c):
    keys = all_keys(c)
    types = c.pipeline([[b"TYPE", k] for k in keys]) if keys else []
    return sorted(k for k, t in zip(keys, types) if t == "lottery01")


def wait_sync(p, timeout=60):
    p.m.call(b"WAIT", b"1", b"10000")
    deadline = time.time() + timeout
    while True:
        mo = info_dict(p.m.call(b"INFO", b"replication")).get("master_repl_offset")
        ri = info_dict(p.r.call(b"INFO", b"replication"))
        if ri.get("master_link_status") == "up" and ri.get("slave_repl_offset") == mo:
            return
        if time.time() > deadline:
            raise Failure("replica-lag", f"replica did not catch up in {timeout}s: master "
                                         f"offset {mo}, replica {ri.get('slave_repl_offset')}, "
                                         f"link {ri.get('master_link_status')}")
        time.sleep(0.02)


TMP = b"fuzz:tmp:{tmp}"


def stats_without_stream(flat):
    if not isinstance(flat, list):
        return flat, None
    d = list(flat)
    for i in range(0, len(d) - 1, 2):
        if d[i] == b"stream":
            s = d[i + 1]
            return d[:i] + d[i + 2:], s
    return d, None


def without_seed(flat):
    """STATS without seed_commitment and seed_revealed (what a COPY changes)."""
    out = []
    for i in range(0, len(flat) - 1, 2):
        if flat[i] not in (b"seed_commitment", b"seed_revealed"):
            out += flat[i:i + 2]
    return out


def check_rules(p, k):
    flat = p.m.call(b"LOTTERY.STATS", k)
    if not isinstance(flat, list):
        raise Failure("stats", f"LOTTERY.STATS {short([k])}: {flat!r}")
    st = dict(zip(flat[0::2], flat[1::2]))
    for f in (b"guarantee", b"total", b"period", b"tiers", b"rejected_total"):
        if f not in st:
            raise Failure("stats", f"LOTTERY.STATS {short([k])} has no {f!r}")
    if st[b"draws"] != st[b"wins"] + st[b"losses"]:
        raise Failure("stats", f"{short([k])}: draws {st[b'draws']} != wins {st[b'wins']} + "
                               f"losses {st[b'losses']}")
    rows = st[b"prizes"][:60]
    counts = p.m.pipeline([[b"LOTTERY.CODES", k, row[0], b"COUNT"] for row in rows]) \
        if rows else []
    for row, n in zip(rows, counts):
        if isinstance(n, int) and n != row[2]:
            raise Failure("stats", f"{short([k])}: code prize {short([row[0]])} has stock "
                                   f"{row[2]} but LOTTERY.CODES COUNT {n}")


def check_pair(runner, batch_no, heavy):
    """Every check of the batch; raises Failure."""
    try:
        _check_pair(runner, batch_no, heavy)
    except (ConnectionError, OSError) as e:
        runner.died([b"# check"], e)


def _check_pair(runner, batch_no, heavy):
    p = runner.p
    for name, s, c in (("master", p.master, p.m), ("replica", p.replica, p.r)):
        if not s.alive():
            raise Failure("crash", f"{name} died; first crash line: {first_crash_line(s)}")
        try:
            rep = c.call(b"PING")
        except (ConnectionError, OSError) as e:
            runner.died([b"PING"], e)
        if rep != "PONG":
            raise Failure("ping", f"{name} answered PING with {rep!r}")
    wait_sync(p)
    mkeys = lottery_keys(p.m)
    rkeys = lottery_keys(p.r)
    if mkeys != rkeys:
        raise Failure("replica-keys", f"campaign keys differ: only on master "
                                      f"{[short([k]) for k in set(mkeys) - set(rkeys)][:5]}, only "
                                      f"on replica {[short([k]) for k in set(rkeys) - set(mkeys)][:5]}")
    md, rd = digests(p.m, mkeys), digests(p.r, mkeys)
    for k, a, b in zip(mkeys, md, rd):
        if a != b:
            raise Failure("replica-digest", f"DIGEST-VALUE of {short([k])} differs: master {a!r}, "
                                            f"replica {b!r}")
    a, b = p.m.call(b"DEBUG", b"DIGEST"), p.r.call(b"DEBUG", b"DIGEST")
    if a != b:
        raise Failure("replica-digest", f"DEBUG DIGEST differs: master {a!r}, replica {b!r}")

    # the campaign rules: STATS counters, a code prize's stock is its pool
    for k in mkeys:
        check_rules(p, k)

    # DUMP / RESTORE and COPY of each campaign
    for k, d in zip(mkeys, md):
        payload = p.m.call(b"DUMP", k)
        rep = p.m.call(b"RESTORE", TMP, b"0", payload, b"REPLACE")
        if rep != "OK":
            raise Failure("dump-restore", f"RESTORE of the DUMP of {short([k])} refused: {rep!r}")
        d2 = p.m.call(b"DEBUG", b"DIGEST-VALUE", TMP)
        p.m.call(b"DEL", TMP)
        if d2 != d:
            raise Failure("dump-restore", f"DUMP+RESTORE of {short([k])} changed its digest: "
                                          f"{d!r} -> {d2!r}")
        rep = p.m.pipeline([[b"MULTI"], [b"COPY", k, TMP, b"REPLACE"],
                            [b"LOTTERY.STATS", k], [b"LOTTERY.STATS", TMP],
                            [b"DEBUG", b"DIGEST-VALUE", TMP], [b"DEL", TMP], [b"EXEC"]])[-1]
        if not isinstance(rep, list) or rep[0] != 1:
            raise Failure("copy", f"COPY of {short([k])}: {rep!r}")
        s1, st1 = stats_without_stream(rep[1])
        s2, st2 = stats_without_stream(rep[2])
        # A VERIFIABLE campaign's copy holds its own seed, counted as revealed
        # (docs/verifiable.md): the seed fields and the digest differ by design.
        copied_seed = isinstance(s1, list) and dict(zip(s1[0::2], s1[1::2])).get(
            b"verifiable") == 1
        if copied_seed:
            s1, s2 = without_seed(s1), without_seed(s2)
        if s1 != s2:
            raise Failure("copy", f"COPY of {short([k])} changed LOTTERY.STATS: {s1!r} vs {s2!r}")
        if st2 != st1 and st2 != default_stream(TMP):
            raise Failure("copy", f"COPY of {short([k])} got stream {st2!r} (the original's is "
                                  f"{st1!r}, the copy's default {default_stream(TMP)!r})")
        if st2 == st1 and rep[3] != d and not copied_seed:
            raise Failure("copy", f"COPY of {short([k])} (same stream) changed its digest")

    # DEBUG RELOAD on the master (and on the replica, every other batch); first the replica
    # catches up with the temporary keys above, or its key set could change under the reload
    wait_sync(p)
    targets = [("master", p.master, p.m)]
    if heavy or batch_no % 2 == 1:
        targets.append(("replica", p.replica, p.r))
    for name, s, c in targets:
        before_keys = sorted(all_keys(c))
        before = digests(c, before_keys)
        whole = c.call(b"DEBUG", b"DIGEST")
        try:
            rep = c.call(b"DEBUG", b"RELOAD")
        except (ConnectionError, OSError) as e:
            raise Failure("reload", f"{name} died in DEBUG RELOAD ({e!r}); first crash line: "
                                    f"{first_crash_line(s)}")
        if rep != "OK":
            raise Failure("reload", f"DEBUG RELOAD on the {name}: {rep!r}; log: "
                                    f"{(bad_log_lines(s) or [s.log_tail(3)])[-1]}")
        after_keys = sorted(all_keys(c))
        if after_keys != before_keys:
            raise Failure("reload", f"DEBUG RELOAD on the {name} changed the key set: "
                                    f"{len(before_keys)} -> {len(after_keys)} keys")
        after = digests(c, after_keys)
        for k, a, b in zip(before_keys, before, after):
            if a != b:
                raise Failure("reload", f"DEBUG RELOAD on the {name} changed the digest of "
                                        f"{short([k])}")
        if c.call(b"DEBUG", b"DIGEST") != whole:
            raise Failure("reload", f"DEBUG RELOAD on the {name} changed DEBUG DIGEST")

    if heavy:
        # AOF rewrite (LOTTERY.APPLY config + chunks) and reload from the AOF
        before_keys = sorted(all_keys(p.m))
        before = digests(p.m, before_keys)
        rep = p.m.call(b"BGREWRITEAOF")
        deadline = time.time() + 60
        while True:
            info = info_dict(p.m.call(b"INFO", b"persistence"))
            if info.get("aof_rewrite_in_progress") == "0" and \
                    info.get("aof_rewrite_scheduled") == "0":
                break
            if time.time() > deadline:
                raise Failure("aof", "BGREWRITEAOF did not finish in 60 s")
            time.sleep(0.05)
        if info.get("aof_last_bgrewrite_status") != "ok":
            raise Failure("aof", f"BGREWRITEAOF failed: {info.get('aof_last_bgrewrite_status')}")
        try:
            rep = p.m.call(b"DEBUG", b"LOADAOF")
        except (ConnectionError, OSError) as e:
            raise Failure("aof", f"master died in DEBUG LOADAOF ({e!r}); first crash line: "
                                 f"{first_crash_line(p.master)}")
        if rep != "OK":
            raise Failure("aof", f"DEBUG LOADAOF: {rep!r}")
        after_keys = sorted(all_keys(p.m))
        after = digests(p.m, after_keys)
        if after_keys != before_keys or after != before:
            diff = [short([k]) for k, a, b in zip(before_keys, before, after) if a != b][:3]
            raise Failure("aof", f"AOF rewrite + reload changed the data: keys "
                                 f"{len(before_keys)} -> {len(after_keys)}, digests differ for "
                                 f"{diff}")
        # a full resync: the replica loads the master's RDB (a new replication id on the
        # master, then the link is cut, so the replica cannot continue partially)
        full = int(info_dict(p.m.call(b"INFO", b"stats")).get("sync_full", 0))
        p.m.call(b"DEBUG", b"CHANGE-REPL-ID")
        p.m.call(b"CLIENT", b"KILL", b"TYPE", b"replica")
        deadline = time.time() + 60
        while int(info_dict(p.m.call(b"INFO", b"stats")).get("sync_full", 0)) <= full:
            if not p.replica.alive():
                raise Failure("resync", f"the replica died in a full resync; first crash line: "
                                        f"{first_crash_line(p.replica)}")
            if time.time() > deadline:
                raise Failure("resync", "no full resync within 60 s")
            time.sleep(0.05)
        try:
            p.wait_link(timeout=60)
        except Failure:
            raise Failure("resync", f"replica did not finish a full resync; replica log: "
                                    f"{(bad_log_lines(p.replica) or [p.replica.log_tail(5)])}")
        wait_sync(p)
        if p.m.call(b"DEBUG", b"DIGEST") != p.r.call(b"DEBUG", b"DIGEST"):
            raise Failure("resync", "after a full resync DEBUG DIGEST differs")

    for name, s in (("master", p.master), ("replica", p.replica)):
        bad = bad_log_lines(s)
        if bad:
            raise Failure("log", f"the {name}'s log: {bad[0]}")


# --------------------------------------------------------------------------------------------
# replay and shrinking

def replay(lines, slow_ms=1e9, quiet=True, checks=True):
    """Run logged lines against fresh servers, checks at '# check' and at the end (with
    checks=False: only that both servers stay alive, for shrinking a crash).
    Returns the Failure, or None."""
    pair = Pair()
    tmp = os.path.join(pair.master.dir, "replay.log")
    log = ReplayLog(tmp)
    runner = Runner(pair, log, slow_ms)
    try:
        n = 0
        for line in lines:
            s = line.strip()
            if not s:
                continue
            if s.startswith("#"):
                if s == "# check" and checks:
                    n += 1
                    check_pair(runner, n, heavy=False)
                continue
            runner.send(parse_line(s))
        if checks:
            check_pair(runner, n + 1, heavy=True)
        else:
            try:
                wait_sync(pair, timeout=20)
                pair.m.call(b"PING")
                pair.r.call(b"PING")
            except (ConnectionError, OSError) as e:
                runner.died([b"PING"], e)
            for s in (pair.master, pair.replica):
                if not s.alive():
                    raise Failure("crash", f"died; first crash line: {first_crash_line(s)}")
        if runner.slow:
            ms, args = max(runner.slow, key=lambda x: x[0])
            return Failure("slow", f"{ms:.0f} ms for {short(args)}")
        return None
    except Failure as f:
        if not quiet:
            print(f"  -> {f}")
        return f
    finally:
        log.close()
        pair.close()


def unwrap(args):
    """The commands inside an EVAL line the fuzzer wrote, else None."""
    if len(args) < 4 or args[0].upper() not in (b"EVAL", b"EVAL_RO") or args[2] != b"0":
        return None
    if args[1].endswith(b"(unpack(ARGV))"):
        return [args[3:]]
    out, i, rest = [], 0, args[3:]
    try:
        while i < len(rest):
            n = int(rest[i])
            out.append(rest[i + 1:i + 1 + n])
            i += n + 1
    except ValueError:
        return None
    return out


def shrink(lines, kind, budget_s, slow_ms):
    """Delta debugging over lines (keeping failures of the same kind), then unwrapping EVAL
    lines into their commands and shortening long arguments, within budget_s seconds."""
    deadline = time.time() + budget_s
    tries = [0]

    def fails(cand):
        if time.time() > deadline:
            return False
        tries[0] += 1
        f = replay(cand, slow_ms=slow_ms, checks=kind not in ("crash", "hang", "slow"))
        return f is not None and f.kind == kind

    def ddmin(cur):
        n = 2
        while len(cur) >= 2 and time.time() < deadline:
            size = max(1, len(cur) // n)
            chunks = [cur[i:i + size] for i in range(0, len(cur), size)]
            reduced = False
            for i in range(len(chunks)):
                comp = [l for j, c in enumerate(chunks) if j != i for l in c]
                if comp and fails(comp):
                    cur, n, reduced = comp, max(n - 1, 2), True
                    break
            if not reduced:
                if n >= len(cur):
                    break
                n = min(len(cur), n * 2)
        return cur

    cur = [l for l in lines if l.strip() and not l.startswith("#")]
    if kind in ("crash", "slow", "hang") and cur and fails(cur[-1:]):
        return cur[-1:], tries[0]
    cur = ddmin(cur)
    changed = True
    while changed and time.time() < deadline:
        changed = False
        for i, line in enumerate(cur):
            inner = unwrap(parse_line(line))
            if inner is not None:
                cand = cur[:i] + [format_cmd(c) for c in inner if c] + cur[i + 1:]
                if fails(cand):
                    cur, changed = ddmin(cand), True
                    break
        for i, line in enumerate(cur):
            args = parse_line(line)
            if len(args) > 200:
                continue
            for k in (4, 2, 1):
                j = len(args) - k
                while j >= 2 and time.time() < deadline:
                    cand_args = args[:j] + args[j + k:]
                    cand = cur[:i] + [format_cmd(cand_args)] + cur[i + 1:]
                    if fails(cand):
                        cur, changed, args = cand, True, cand_args
                    j -= 1
            for j, a in enumerate(args):
                if len(a) > 64:
                    short_args = args[:j] + [a[:16]] + args[j + 1:]
                    cand = cur[:i] + [format_cmd(short_args)] + cur[i + 1:]
                    if fails(cand):
                        cur, changed, args = cand, True, short_args
    return cur, tries[0]


# --------------------------------------------------------------------------------------------
# main

LAST_FAILURE = None     # what the last run() found, for the test's message
LAST_CODE_WINS = 0      # WIN replies with a code the last run() checked against its model


def run(seed, seconds, batches, batch_size, out_dir, minimize_s, slow_ms, heavy_every,
        avoid_known=False):
    global LAST_FAILURE, LAST_CODE_WINS
    LAST_FAILURE = None
    LAST_CODE_WINS = 0
    os.makedirs(out_dir, exist_ok=True)
    flags = " --avoid-known" if avoid_known else ""
    print(f"fuzz-server: seed {seed} (replay: --seed {seed}{flags}), module {H.MODULE_PATH}",
          flush=True)
    gen = Gen(seed, avoid_known)
    pair = Pair()
    log_path = os.path.join(out_dir, f"fuzz-{seed}.replay")
    log = ReplayLog(os.path.join(pair.master.dir, "current.replay"))
    runner = Runner(pair, log, slow_ms)
    start = time.time()
    batch = 0
    failure = None
    reported_slow = 0
    try:
        log.add([b"LOTTERY.DEBUG", b"CLOCK", b"%d" % gen.clock])
        runner.send([b"LOTTERY.DEBUG", b"CLOCK", b"%d" % gen.clock])
        while True:
            if batches is not None and batch >= batches:
                break
            if batches is None and time.time() - start >= seconds:
                break
            batch += 1
            for _ in range(batch_size):
                runner.run_unit(gen.unit())
            log.mark("check")
            check_pair(runner, batch, heavy=(batch % heavy_every == 0))
            for ms, args in runner.slow[reported_slow:]:
                print(f"  SLOW: {ms:.0f} ms for {short(args)}", flush=True)
            reported_slow = len(runner.slow)
            if batch % 10 == 0:
                print(f"  batch {batch}: {runner.sent} commands, {time.time() - start:.0f} s, "
                      f"{len(lottery_keys(pair.m))} campaigns", flush=True)
    except Failure as f:
        failure = f
    elapsed = time.time() - start
    LAST_CODE_WINS = runner.codes.checked
    print("  replies: " + ", ".join(f"{k.decode()} {v}" for k, v in
                                    sorted(runner.replies.items(), key=lambda x: -x[1])))
    print(f"  code wins checked against the model: {runner.codes.checked}")
    for ms, n, rep in runner.big:
        print(f"  large CONFIGURE ({n} args): {ms:.0f} ms, {str(rep)[:80]}")
    if failure is None:
        log.close()
        pair.close()
        print(f"fuzz-server: seed {seed}: {batch} batches, {runner.sent} commands in "
              f"{elapsed:.0f} s: no crash, every check passed", flush=True)
        if runner.slow:
            ms, args = max(runner.slow, key=lambda x: x[0])
            LAST_FAILURE = (f"{len(runner.slow)} command(s) slower than {slow_ms:.0f} ms, "
                            f"the slowest {ms:.0f} ms: {short(args)}")
            print(f"fuzz-server: seed {seed}: SOFT FAILURE: {LAST_FAILURE}", flush=True)
            return 1
        return 0

    LAST_FAILURE = f"{failure.kind}: {failure.detail}"
    lines = log.lines()
    log.close()
    shutil.copyfile(log.path, log_path)
    print(f"\nFUZZ FAILURE (seed {seed}, batch {batch}, {runner.sent} commands, {elapsed:.0f} s)")
    print(f"  {failure.kind}: {failure.detail}")
    print("  last commands:")
    for a in log.tail[-15:]:
        print("    " + short(a))
    for name, s in (("master", pair.master), ("replica", pair.replica)):
        print(f"  {name} log tail ({s.logfile}):")
        for line in s.log_tail(25).splitlines():
            print("    " + line)
        err = s.stderr_tail()
        if err.strip():
            print(f"  {name} stderr tail:")
            for line in err.splitlines():
                print("    " + line)
    print(f"  replay log ({len(lines)} lines): {log_path}")
    pair.close()
    if minimize_s > 0:
        print(f"  shrinking for up to {minimize_s:.0f} s ...", flush=True)
        small, tries = shrink(lines, failure.kind, minimize_s, slow_ms)
        min_path = os.path.join(out_dir, f"fuzz-{seed}.min.replay")
        with open(min_path, "w", encoding="utf-8") as f:
            f.write("\n".join(small) + "\n")
        print(f"  minimal replay ({len(small)} lines, {tries} replays): {min_path}")
        for line in small[:20]:
            print("    " + (line if len(line) < 300 else line[:300] + f"... ({len(line)} chars)"))
    print(f"  reproduce: {sys.executable} {os.path.abspath(__file__)} --replay {log_path}")
    print(f"  or: {sys.executable} {os.path.abspath(__file__)} --seed {seed} --batches {batch}"
          f"{flags}")
    return 1


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seed", type=int, default=None, help="default: random (printed)")
    ap.add_argument("--seconds", type=float, default=60, help="run time (default 60)")
    ap.add_argument("--batches", type=int, default=None, help="a number of batches instead")
    ap.add_argument("--batch-size", type=int, default=200, help="units between checks")
    ap.add_argument("--heavy-every", type=int, default=4,
                    help="every N batches: AOF rewrite + DEBUG LOADAOF, replica full resync")
    ap.add_argument("--out", default=os.environ.get("FUZZ_OUT", "fuzz-out"),
                    help="where replay logs go (default ./fuzz-out)")
    ap.add_argument("--minimize-seconds", type=float, default=120,
                    help="time to shrink a failing log (0: do not)")
    ap.add_argument("--slow-ms", type=float, default=1000,
                    help="a command slower than this is a (soft) failure")
    ap.add_argument("--replay", help="run a replay log against fresh servers and check")
    ap.add_argument("--runs", type=int, default=1, help="several seeds in a row (seed, seed+1..)")
    ap.add_argument("--avoid-known", action="store_true",
                    help="to look past a crash being fixed: never send a character above "
                         "U+00FF whose low byte is 0x00 (U+0100, U+4E00, ...), which crashes "
                         "an error reply that echoes it")
    a = ap.parse_args(argv)
    H.module_path_or_fail()
    if a.replay:
        with open(a.replay, encoding="utf-8") as f:
            lines = f.read().splitlines()
        f = replay(lines, slow_ms=a.slow_ms, quiet=False)
        print(f"replay {a.replay}: {'FAILED: ' + str(f) if f else 'no failure'}")
        return 1 if f else 0
    seed = a.seed if a.seed is not None else random.SystemRandom().randrange(1, 2 ** 32)
    rc = 0
    for i in range(a.runs):
        rc |= run(seed + i, a.seconds, a.batches, a.batch_size, a.out, a.minimize_seconds,
                  a.slow_ms, a.heavy_every, a.avoid_known)
    return rc


if __name__ == "__main__":
    sys.exit(main())
