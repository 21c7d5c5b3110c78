"""Shared helpers for the redis-lottery black-box suite.

Conventions
- ``server.client()`` is a redis-py client with ``decode_responses=True`` (str replies).
- ``server.raw()`` is a tiny hand-written RESP2 client (:class:`RawClient`) that returns bytes
  for bulk strings, :class:`Status` for ``+`` replies and :class:`Err` for ``-`` replies (with
  the full error text, prefix included). It is used for byte-exact checks, binary ids and
  exact error messages.
"""
import atexit
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import redis

REPO = Path(__file__).resolve().parent.parent
MODULE_PATH = os.environ.get("LOTTERY_MODULE", str(REPO / "target" / "release" / "liblottery.so"))
REDIS_SERVER = os.environ.get("REDIS_SERVER", "redis-server")

T0 = 1_700_000_000_000  # 2023-11-14T22:13:20Z, a default pinned clock
DAY_MS = 86_400_000
U32_MAX = 4294967295
I64_MAX = 9223372036854775807

_ALL_SERVERS = []


def module_path_or_fail():
    """Return the module path; raise a clear error if it is missing."""
    if not os.path.isfile(MODULE_PATH):
        raise RuntimeError(
            f"lottery module not found at {MODULE_PATH!r}: build it "
            f"(cargo build --release) or set LOTTERY_MODULE to the .so path"
        )
    return MODULE_PATH


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --------------------------------------------------------------------------------------------
# raw RESP2 client


class Status(str):
    """A +simple string reply."""


class Err(str):
    """A -error reply (full text, e.g. 'ERR no such campaign')."""


def _enc(a):
    if isinstance(a, bytes):
        return a
    if isinstance(a, (int,)):
        return str(a).encode()
    return str(a).encode("utf-8")


def encode_command(*args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        b = _enc(a)
        out.append(b"$%d\r\n" % len(b))
        out.append(b)
        out.append(b"\r\n")
    return b"".join(out)


class RawClient:
    def __init__(self, port, timeout=60):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = bytearray()
        self.pos = 0

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def _fill(self):
        chunk = self.sock.recv(1 << 20)
        if not chunk:
            raise ConnectionError("server closed the connection")
        self.buf += chunk

    def _line(self):
        while True:
            i = self.buf.find(b"\r\n", self.pos)
            if i >= 0:
                line = bytes(self.buf[self.pos:i])
                self.pos = i + 2
                return line
            self._fill()

    def _exact(self, n):
        while len(self.buf) - self.pos < n + 2:
            self._fill()
        data = bytes(self.buf[self.pos:self.pos + n])
        self.pos += n + 2
        return data

    def _parse(self):
        line = self._line()
        t, rest = line[:1], line[1:]
        if t == b"+":
            return Status(rest.decode("utf-8", "replace"))
        if t == b"-":
            return Err(rest.decode("utf-8", "replace"))
        if t == b":":
            return int(rest)
        if t == b"$":
            n = int(rest)
            if n < 0:
                return None
            return self._exact(n)
        if t == b"*":
            n = int(rest)
            if n < 0:
                return None
            return [self._parse() for _ in range(n)]
        raise ValueError(f"bad RESP type byte in {line!r}")

    def _take(self):
        start = self.pos
        val = self._parse()
        raw = bytes(self.buf[start:self.pos])
        del self.buf[:self.pos]
        self.pos = 0
        return val, raw

    def call(self, *args):
        self.sock.sendall(encode_command(*args))
        return self._take()[0]

    def call_raw(self, *args):
        """Return the exact bytes of the reply."""
        self.sock.sendall(encode_command(*args))
        return self._take()[1]

    def pipeline(self, commands):
        self.sock.sendall(b"".join(encode_command(*c) for c in commands))
        return [self._take()[0] for _ in commands]


# --------------------------------------------------------------------------------------------
# server process


class RedisServer:
    def __init__(self, module=True, module_args=("debug-clock", "yes"), extra_args=(),
                 replicaof=None, appendonly=False, dir=None, port=None, capture_output=False):
        self.module = module
        self.module_args = list(module_args)
        self.extra_args = list(extra_args)
        self.replicaof = replicaof
        self.appendonly = appendonly
        self.port = port or free_port()
        self.dir = dir or tempfile.mkdtemp(prefix="lottery-test-")
        self._own_dir = dir is None
        self.logfile = os.path.join(self.dir, "redis.log")
        # stdout/stderr of the process (where a Rust panic message goes), if captured
        self.output_file = os.path.join(self.dir, "output.log") if capture_output else None
        self.proc = None
        self.intentionally_stopped = False
        self._clients = []
        _ALL_SERVERS.append(self)
        self.start()

    # -- lifecycle
    def argv(self):
        argv = [REDIS_SERVER,
                "--port", str(self.port),
                "--bind", "127.0.0.1",
                "--dir", self.dir,
                "--save", "",
                "--appendonly", "yes" if self.appendonly else "no",
                "--logfile", self.logfile,
                "--daemonize", "no",
                "--enable-debug-command", "yes",
                "--protected-mode", "no",
                "--repl-diskless-sync-delay", "0"]
        if self.module:
            argv += ["--loadmodule", module_path_or_fail()] + self.module_args
        if self.replicaof is not None:
            host, port = self.replicaof
            argv += ["--replicaof", host, str(port)]
        argv += self.extra_args
        return argv

    def start(self, timeout=10.0):
        self.intentionally_stopped = False
        if self.output_file:
            with open(self.output_file, "ab") as out:
                self.proc = subprocess.Popen(self.argv(), stdout=out,
                                             stderr=subprocess.STDOUT, cwd=self.dir)
        else:
            self.proc = subprocess.Popen(self.argv(), stdout=subprocess.DEVNULL,
                                         stderr=subprocess.STDOUT, cwd=self.dir)
        deadline = time.time() + timeout
        last = None
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"redis-server exited with {self.proc.returncode} during start-up\n"
                    f"argv: {self.argv()}\nlog tail:\n{self.log_tail()}")
            try:
                c = redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=1)
                if c.ping():
                    c.close()
                    return
            except (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError) as e:
                last = e
            except redis.ResponseError as e:  # LOADING etc.
                last = e
            time.sleep(0.02)
        self.kill()
        raise RuntimeError(f"redis-server did not answer PING within {timeout}s ({last})\n"
                           f"log tail:\n{self.log_tail()}")

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, save=False, timeout=10.0):
        """SHUTDOWN [NO]SAVE, then wait; SIGKILL as a last resort."""
        self.intentionally_stopped = True
        if not self.alive():
            return
        for c in self._clients:
            try:
                c.close()
            except Exception:
                pass
        self._clients = []
        try:
            c = redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=5)
            c.execute_command("SHUTDOWN", "SAVE" if save else "NOSAVE")
        except (redis.ConnectionError, redis.TimeoutError):
            pass
        except redis.ResponseError:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                pass

    def restart(self, save=False):
        """Stop (optionally saving) and start again with the same dir and port."""
        self.stop(save=save)
        self.start()

    def cleanup(self):
        self.intentionally_stopped = True
        self.kill()
        if self._own_dir:
            shutil.rmtree(self.dir, ignore_errors=True)

    # -- clients
    def client(self, **kw):
        kw.setdefault("decode_responses", True)
        kw.setdefault("socket_timeout", 120)
        c = redis.Redis(host="127.0.0.1", port=self.port, **kw)
        self._clients.append(c)
        return c

    def bclient(self):
        """redis-py client that returns bytes."""
        return self.client(decode_responses=False)

    def raw(self):
        return RawClient(self.port)

    def log_tail(self, n=40):
        try:
            with open(self.logfile, "rb") as f:
                lines = f.read().decode("utf-8", "replace").splitlines()
            return "\n".join(lines[-n:])
        except OSError as e:
            return f"(no log: {e})"

    def critical_log_lines(self):
        try:
            with open(self.logfile, "rb") as f:
                text = f.read().decode("utf-8", "replace")
        except OSError:
            return []
        return [l[:400] for l in text.splitlines()
                if "== CRITICAL ==" in l or "Bad file format reading the append only" in l]

    def check_alive(self):
        if self.intentionally_stopped:
            return
        if not self.alive():
            raise AssertionError(
                f"redis-server on port {self.port} died (exit code {self.proc.returncode}); "
                f"a module panic/crash?\nlog tail:\n{self.log_tail()}")
        try:
            c = redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=30)
            assert c.ping()
            c.close()
        except Exception as e:  # noqa: BLE001
            raise AssertionError(f"redis-server on port {self.port} does not answer PING: {e}\n"
                                 f"log tail:\n{self.log_tail()}")


@atexit.register
def _kill_all():
    for s in _ALL_SERVERS:
        try:
            s.cleanup()
        except Exception:
            pass


# --------------------------------------------------------------------------------------------
# command helpers

def pin(r, ms):
    """Pin the module clock (LOTTERY.DEBUG CLOCK ms)."""
    assert r.execute_command("LOTTERY.DEBUG", "CLOCK", ms) in ("OK", b"OK", True)


def unpin(r):
    assert r.execute_command("LOTTERY.DEBUG", "CLOCK", "REAL") in ("OK", b"OK", True)


def configure(r, key, *args):
    res = r.execute_command("LOTTERY.CONFIGURE", key, *args)
    assert res in ("OK", b"OK", True), res
    return res


def draw(r, key, user, reqid=None):
    args = ["LOTTERY.DRAW", key, user]
    if reqid is not None:
        args += ["REQID", reqid]
    rep = r.execute_command(*args)
    assert isinstance(rep, list) and len(rep) == 5, f"DRAW reply is not a 5-array: {rep!r}"
    return rep


def _pairs(flat):
    assert isinstance(flat, list) and len(flat) % 2 == 0, flat
    return dict(zip(flat[0::2], flat[1::2]))


def _key(k):
    return k.decode() if isinstance(k, bytes) else k


STATS_FIELDS = ["state", "nothing_weight", "cooldown_ms", "daily", "maxwins", "dayoffset",
                "window_start_ms", "window_end_ms", "soldout", "fallback", "stream",
                "idempotency_ms", "rate", "burst", "admit", "admit_retry", "clientlimit",
                "clientlimit_window_ms", "penalty_ms", "guarantee", "guarantee_prizes",
                "total", "period", "users", "clients",
                "penalized_clients", "admit_waiting", "draws", "wins", "losses", "replays",
                "rejected_cooldown", "rejected_quota", "rejected_already_won",
                "rejected_not_started", "rejected_ended", "rejected_paused", "rejected_banned",
                "rejected_busy", "rejected_retry", "rejected_limited", "rejected_total",
                "drain_seq", "pace", "after", "codes", "tiers", "prizes", "verifiable",
                "seed_log", "seed_epoch", "seed_commitment", "seed_from_draw", "seed_revealed"]

USER_FIELDS = ["draws_today", "chances_left", "bonus", "wins", "last_prize", "last_draw_ms",
               "cooldown_left_ms", "banned_until_ms", "admit_waiting", "draws_total",
               "draws_since_win"]


def stats(r, key):
    flat = r.execute_command("LOTTERY.STATS", key)
    names = [_key(k) for k in flat[0::2]]
    assert names == STATS_FIELDS, f"STATS field names/order differ: {names}"
    d = dict(zip(names, flat[1::2]))
    d["prizes"] = [list(p) for p in d["prizes"]]
    return d


def user(r, key, u):
    flat = r.execute_command("LOTTERY.USER", key, u)
    names = [_key(k) for k in flat[0::2]]
    assert names == USER_FIELDS, f"USER field names/order differ: {names}"
    return dict(zip(names, flat[1::2]))


def prizes(r, key):
    """{id: (weight, stock, sold)}"""
    return {p[0]: tuple(p[1:]) for p in stats(r, key)["prizes"]}


def drain(r, key, last=False):
    args = ["LOTTERY.DRAIN", key] + (["LAST"] if last else [])
    rep = r.execute_command(*args)
    assert isinstance(rep, list) and len(rep) == 2, rep
    seq, flat = rep
    return seq, list(flat)


def drain_dict(r, key, last=False):
    seq, flat = drain(r, key, last)
    assert len(flat) % 2 == 0
    return seq, dict(zip(flat[0::2], flat[1::2]))


def expect_err(raw, *args, prefix="ERR"):
    """Send with the raw client; assert an error reply that starts with prefix; return it."""
    rep = raw.call(*args)
    assert isinstance(rep, Err), f"expected an error for {args[:6]!r}..., got {rep!r}"
    assert rep.startswith(prefix + " ") or rep == prefix, \
        f"error for {args[:6]!r} should start with {prefix!r}: {rep!r}"
    return str(rep)


def xrange_raw(raw, stream):
    """[(id_bytes, [(field, value), ...])] in stream order, field order kept."""
    rep = raw.call("XRANGE", stream, "-", "+")
    assert isinstance(rep, list), rep
    out = []
    for eid, flat in rep:
        out.append((eid, list(zip(flat[0::2], flat[1::2]))))
    return out


# --------------------------------------------------------------------------------------------
# cluster slot helpers (CRC16/XMODEM as used by Redis Cluster)

def _crc16(data: bytes) -> int:
    crc = 0
    for b in data:
        crc ^= b << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else (crc << 1)
            crc &= 0xFFFF
    return crc


def key_slot(key) -> int:
    k = key.encode() if isinstance(key, str) else key
    s = k.find(b"{")
    if s >= 0:
        e = k.find(b"}", s + 1)
        if e > s + 1:
            k = k[s + 1:e]
    return _crc16(k) % 16384


WIN_ID_RE = re.compile(r"^\d+-\d+$")


def default_stream(key: str) -> str:
    s = key.find("{")
    if s >= 0:
        e = key.find("}", s + 1)
        if e > s + 1:
            return key + ":wins"
    return "{" + key + "}:wins"


def check(rep, outcome, prize=None, chances=-1, wait=0):
    """Check a DRAW reply exactly (win id only by shape; it is checked against XRANGE)."""
    assert rep[0] == outcome, rep
    assert rep[1] == prize, rep
    if outcome == "WIN":
        assert isinstance(rep[2], str) and WIN_ID_RE.match(rep[2]), rep
    else:
        assert rep[2] is None, rep
    assert rep[3] == chances, rep
    assert rep[4] == wait, rep


# --------------------------------------------------------------------------------------------
# a rich campaign state for persistence / replication comparisons

def populate(r, rb=None, t0=T0):
    """Build varied state on r (decode_responses client) with the clock pinned from t0.

    Returns (users_by_key, reqid_replies, t_end) where users_by_key maps key -> list of user
    ids (bytes) to compare, reqid_replies is a list of (key, user, reqid, reply) of WIN/LOSE
    draws made with a REQID, and t_end is the pinned clock at the end.
    """
    t = t0
    pin(r, t)
    configure(r, "camp", "PRIZE", "gold", 1, 5, "PRIZE", "silver", 3, 100,
              "PRIZE", "bronze", 0, "INF", "NOTHING", 4, "COOLDOWN", 1000, "DAILY", 5,
              "MAXWINS", 2, "DAYOFFSET", 480, "SOLDOUT", "FALLBACK", "bronze",
              "IDEMPOTENCY", 3_600_000)
    configure(r, "other:{t}", "PRIZE", "p", 1, 3, "NOTHING", 1, "MAXWINS", "INF",
              "WINDOW", t0 - 1000, t0 + 10 * DAY_MS, "SOLDOUT", "REDRAW",
              "STREAM", "{t}:stream", "VERIFIABLE", "LOG", "ALL")
    users = {"camp": [f"u{i}".encode() for i in range(20)] + [b"ghost"],
             "other:{t}": [b"bin\x00\xff", b"x"]}
    reqs = []
    for rnd in range(4):
        t += 1500
        pin(r, t)
        for i in range(20):
            u = f"u{i}"
            if i % 3 == 0:
                rid = f"r{rnd}-{i}"
                rep = draw(r, "camp", u, reqid=rid)
                if rep[0] in ("WIN", "LOSE"):
                    reqs.append(("camp", u, rid, rep))
            else:
                draw(r, "camp", u)
        if rnd == 1:
            drain(r, "camp")
            r.execute_command("LOTTERY.GRANT", "camp", "u1", 3)
            r.execute_command("LOTTERY.GRANT", "camp", "u2", 5, "CAP", 2)
            r.execute_command("LOTTERY.BAN", "camp", "u4", 50_000)
            r.execute_command("LOTTERY.RESTOCK", "camp", "silver", -3)
        if rnd == 2:
            configure(r, "camp", "PRIZE", "gold", 2, 5, "PRIZE", "silver", 3, 50,
                      "PRIZE", "bronze", 1, "INF", "PRIZE", "tin", 1, 7)
            r.execute_command("LOTTERY.PAUSE", "camp")
            draw(r, "camp", "u5")
            r.execute_command("LOTTERY.RESUME", "camp")
            r.execute_command("LOTTERY.UNBAN", "camp", "u4")
    if rb is not None:
        for _ in range(4):
            draw(rb, "other:{t}", b"bin\x00\xff")
    for _ in range(3):
        draw(r, "other:{t}", "x", reqid="rx")
    drain(r, "camp")
    u7 = draw(r, "camp", "u7")
    drain(r, "other:{t}")
    r.execute_command("LOTTERY.PAUSE", "other:{t}")
    t += 3000
    pin(r, t)
    pending = {u7[1]: 1} if u7[0] == "WIN" else {}
    for i in range(12):
        rep = draw(r, "camp", f"p{i}")
        if rep[0] == "WIN":
            pending[rep[1]] = pending.get(rep[1], 0) + 1
    users["camp"] += [f"p{i}".encode() for i in range(12)]
    populate.pending = pending     # sold since the last DRAIN of "camp" (plus u7's draw)
    return users, reqs, t


def snapshot(server, users_by_key, clock, with_drain=True):
    """Everything observable about the campaigns, with the clock pinned at `clock`."""
    rb = server.bclient()
    pin(rb, clock)
    raw = server.raw()
    snap = {}
    for key, users in users_by_key.items():
        st = stats(rb, key)
        stream = st["stream"]
        snap[key] = {
            "stats": st,
            "users": {u: user(rb, key, u) for u in users},
            "xrange": xrange_raw(raw, stream),
            "drain_last": raw.call("LOTTERY.DRAIN", key, "LAST") if with_drain else None,
        }
    raw.close()
    return snap


# --------------------------------------------------------------------------------------------
# CRC-64/Jones as used by Redis for DUMP payloads (reflected, poly 0xad93d23594c935a9)

_CRC64_TABLE = []
for _i in range(256):
    _c = _i
    for _ in range(8):
        _c = (_c >> 1) ^ 0x95AC9329AC4BC9B5 if _c & 1 else _c >> 1
    _CRC64_TABLE.append(_c)


def crc64(data: bytes, crc: int = 0) -> int:
    for b in data:
        crc = _CRC64_TABLE[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc


def dump_with_crc(body_and_version: bytes) -> bytes:
    """Append a valid CRC64 footer to <body><2-byte rdb version>."""
    return body_and_version + crc64(body_and_version).to_bytes(8, "little")


def wait_link_up(replica_client, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline:
        info = replica_client.info("replication")
        if info.get("master_link_status") == "up":
            return
        time.sleep(0.05)
    raise AssertionError(f"replica link not up: {replica_client.info('replication')}")
