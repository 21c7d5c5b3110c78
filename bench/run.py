#!/usr/bin/env python3
"""The redis-lottery benchmark: LOTTERY.DRAW next to baselines measured in the same run, on
the same server.

    make bench                          # full size (about 10 to 15 minutes)
    make bench BENCH_ARGS=--quick       # short runs, smaller sizes (under 3 minutes)
    .venv/bin/python bench/run.py --help

It builds nothing (the Makefile target builds the module first). It starts its own
redis-servers on free ports (--save '' --appendonly no, the module loaded), and stops them at
the end. Sections:

  throughput  redis-benchmark --csv: INCR k:__rand_int__ (the physical limit), the Lua
              baseline (bench/draw.lua via EVALSHA) and LOTTERY.DRAW, random users
              u:__rand_int__ (-r 10000000), pipeline 1 and 16, 50 and 256 connections
  flashsale   the flash sale against the peer script bench/hmdp_seckill.lua (verbatim):
              every buyer's first draw wins (LOTTERY.DRAW on PRIZE voucher 1 <big stock> vs
              EVALSHA with voucherId, userId, orderId; redis-benchmark -r 1e9, pipeline 1 and
              16), bytes per buyer after --buyers distinct buyers (used_memory delta), and
              repeat clicks (1,000 users on COOLDOWN 1000: usec_per_call next to INCR)
  variants    10 vs 10,000 prizes, ~1% wins vs every draw wins (DRAW and Lua)
  memory      bytes per user after one draw each for --users distinct users (module vs Lua
              keys), then RDB SAVE / load (DEBUG RELOAD) time and RDB size for both
  stall       one campaign grows from 0 to --stall-users users (sequential ids through
              redis-cli --pipe); the slowest DRAW at every doubling (SLOWLOG and
              LATENCY HISTOGRAM), next to HSET into one hash growing the same way

It prints one table and a table of the goals, also written to bench/results.md (with the raw
redis-benchmark figures below it). Goals get PASS/MISS; nothing is asserted. On a shared or small machine the
figures are noisy: the server, the load generator and anything else share the cores.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import io
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True  # no bench/__pycache__

import setup_lua  # noqa: E402

try:
    import redis  # noqa: E402
except ImportError:  # pragma: no cover
    sys.exit("run.py needs redis-py: run it with the repo venv (make deps; .venv/bin/python)")

MODULE = os.path.join(ROOT, "target", "release", "liblottery.so")
CAMP = "camp:{bench}"  # the module's campaign key (wins stream: camp:{bench}:wins)
LUA_TAG = "bench"  # the Lua baseline's keys: {bench}:cfg, {bench}:table, ...
STOCK = 10**12  # large enough never to sell out during a run
RANDSPACE = 10_000_000  # redis-benchmark -r


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- campaigns


def prize_list(n: int, stock: int | None) -> list[tuple[str, int, int | None]]:
    return [(f"p{i}", 1, stock) for i in range(n)]


class Campaign:
    """One campaign definition, loaded into both the module and the Lua baseline."""

    def __init__(self, name, nprizes, nothing, stock=STOCK, cooldown=1000, daily=None, maxwins=1,
                 extra=None):
        self.name = name
        # extra(now_ms) -> more LOTTERY.CONFIGURE options (the module only)
        self.extra = extra
        self.prizes = prize_list(nprizes, stock)
        self.nothing = nothing
        self.cooldown = cooldown
        self.daily = daily
        self.maxwins = maxwins

    def describe(self) -> str:
        n = len(self.prizes)
        st = "INF" if self.prizes[0][2] is None else f"{self.prizes[0][2]:.0e}"
        inf = lambda v: "INF" if v is None else str(v)  # noqa: E731
        return (
            f"{n} prizes (weight 1, stock {st}), NOTHING {self.nothing}, COOLDOWN {self.cooldown}, "
            f"DAILY {inf(self.daily)}, MAXWINS {inf(self.maxwins)}"
        )

    def configure_module(self, r, key=CAMP) -> None:
        args = ["LOTTERY.CONFIGURE", key]
        for pid, w, st in self.prizes:
            args += ["PRIZE", pid, w, "INF" if st is None else st]
        args += ["NOTHING", self.nothing, "COOLDOWN", self.cooldown]
        args += ["DAILY", "INF" if self.daily is None else self.daily]
        args += ["MAXWINS", "INF" if self.maxwins is None else self.maxwins]
        if self.extra:
            args += self.extra(int(time.time() * 1000))
        r.execute_command(*args)

    def setup_lua(self, r, tag=LUA_TAG) -> setup_lua.LuaCampaign:
        return setup_lua.setup(
            r,
            tag,
            self.prizes,
            nothing=self.nothing,
            cooldown=self.cooldown,
            daily=self.daily,
            maxwins=self.maxwins,
        )


# ---------------------------------------------------------------- servers


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, name: str, workdir: str, rng: str, pin: str | None, extra=(), port=None):
        self.name = name
        self.dir = os.path.join(workdir, name)
        os.makedirs(self.dir, exist_ok=True)
        self.port = port or free_port()
        self.logfile = os.path.join(self.dir, "redis.log")
        cmd = [
            "redis-server",
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--save", "",
            "--appendonly", "no",
            "--dir", self.dir,
            "--dbfilename", "dump.rdb",
            "--logfile", self.logfile,
            "--enable-debug-command", "yes",
            "--loadmodule", MODULE, "rng", rng,
            *extra,
        ]  # fmt: skip
        if pin:
            cmd = ["taskset", "-c", pin, *cmd]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.r = redis.Redis(port=self.port, socket_timeout=600)
        deadline = time.time() + 20
        while True:
            try:
                if self.r.ping():
                    break
            except redis.ConnectionError:
                pass
            if self.proc.poll() is not None or time.time() > deadline:
                err = self.proc.stderr.read().decode(errors="replace") if self.proc.stderr else ""
                tail = ""
                if os.path.exists(self.logfile):
                    with open(self.logfile, errors="replace") as f:
                        tail = "".join(f.readlines()[-10:])
                raise RuntimeError(f"redis-server ({name}) did not start:\n{err}{tail}")
            time.sleep(0.05)

    def info(self, section: str) -> dict:
        return self.r.info(section)

    def used_memory(self) -> int:
        return int(self.r.info("memory")["used_memory"])

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                self.r.shutdown(nosave=True)
            except (redis.ConnectionError, redis.ResponseError):
                pass
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()  # our own child, by pid
                self.proc.wait()


# ---------------------------------------------------------------- redis-benchmark


FIELDS = ["rps", "avg", "min", "p50", "p95", "p99", "max"]


def redis_benchmark(port: int, args: list, n: int, c: int, P: int, pin: str | None,
                    rand: int = RANDSPACE) -> dict:
    cmd = [
        "redis-benchmark", "-p", str(port), "-n", str(n), "-c", str(c), "-P", str(P),
        "-r", str(rand), "--csv", *[str(a) for a in args],
    ]  # fmt: skip
    if pin:
        cmd = ["taskset", "-c", pin, *cmd]
    t0 = time.time()
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=3600)
    wall = time.time() - t0
    rows = list(csv.reader(io.StringIO(out.stdout)))
    data = [r for r in rows if r and r[0] != "test"]
    if out.returncode != 0 or not data or len(data[-1]) < 8:
        raise RuntimeError(f"redis-benchmark failed: {' '.join(cmd)}\n{out.stdout}\n{out.stderr}")
    vals = [float(x) for x in data[-1][1:8]]
    res = dict(zip(FIELDS, vals))
    res["n"] = n
    res["wall"] = wall
    return res


def calibrated_n(port, args, c, P, seconds, pin, reset, rand: int = RANDSPACE) -> int:
    """Short probe runs (until one lasts 0.4 s or more), then -n for about `seconds` at the
    probe's rate."""
    probe = max(20_000, 4 * c * P)
    for _ in range(3):
        reset()
        r = redis_benchmark(port, args, probe, c, P, pin, rand)
        if r["wall"] >= 0.4:
            break
        probe = max(probe, int(r["rps"] * 0.6))
    n = int(r["rps"] * seconds * 1.1)
    return max(n, 10 * c * P, 20_000)


def server_usec(srv, command: str) -> float:
    """usec_per_call of `command` in INFO commandstats (nested calls included: EVALSHA's
    redis.call()s, DRAW's XADD)."""
    st = srv.r.info("commandstats").get(f"cmdstat_{command.lower()}")
    return float(st["usec_per_call"]) if st else float("nan")


def median_result(results: list[dict]) -> dict:
    keys = [k for k in results[0] if k != "n" and all(isinstance(r.get(k), (int, float)) for r in results)]
    out = {k: statistics.median(r[k] for r in results) for k in keys}
    out["n"] = results[0]["n"]
    out["runs"] = len(results)
    return out


# ---------------------------------------------------------------- loaders (redis-cli --pipe)


def resp_prefix(args: list[str]) -> bytes:
    """RESP for a command with len(args) + 1 arguments, the last (the user id) left out."""
    out = [b"*%d\r\n" % (len(args) + 1)]
    for a in args:
        b = a.encode() if isinstance(a, str) else a
        out.append(b"$%d\r\n%s\r\n" % (len(b), b))
    return b"".join(out)


def gen_users(prefix: bytes, lo: int, hi: int, extra: bytes = b"") -> bytes:
    """RESP for `prefix u:<i> [extra]` for i in lo..hi (extra: already RESP-encoded)."""
    return b"".join(
        [b"%s$%d\r\nu:%d\r\n%s" % (prefix, len(str(i)) + 2, i, extra) for i in range(lo, hi)]
    )


def pipe(port: int, chunks, pin: str | None) -> tuple[int, int, float]:
    """Feeds RESP chunks (an iterable of bytes) to redis-cli --pipe. Returns (replies,
    errors, seconds)."""
    cmd = ["redis-cli", "-p", str(port), "--pipe"]
    if pin:
        cmd = ["taskset", "-c", pin, *cmd]
    t0 = time.time()
    p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert p.stdin is not None and p.stdout is not None
    for ch in chunks:
        p.stdin.write(ch)
    p.stdin.close()
    out = p.stdout.read().decode(errors="replace")
    p.wait()
    dt = time.time() - t0
    replies = errors = -1
    for line in out.splitlines():
        if line.startswith("errors:"):
            parts = dict(x.strip().split(": ") for x in line.split(","))
            errors, replies = int(parts["errors"]), int(parts["replies"])
    if p.returncode != 0 or errors != 0:
        raise RuntimeError(f"redis-cli --pipe: rc={p.returncode}\n{out[-2000:]}")
    return replies, errors, dt


def chunked(prefix: bytes, lo: int, hi: int, step: int = 200_000, extra: bytes = b""):
    for a in range(lo, hi, step):
        yield gen_users(prefix, a, min(hi, a + step), extra)


# ---------------------------------------------------------------- formatting


def fmt_int(x: float) -> str:
    return f"{x:,.0f}"


def fmt_ms(x: float) -> str:
    return f"{x:.3f}"


def fmt_ratio(x: float) -> str:
    return f"{x:.2f}x" if x < 10 else f"{x:.1f}x"


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def fmt_bytes(n: float) -> str:
    if n >= 1 << 20:
        return f"{n / (1 << 20):.1f} MiB"
    if n >= 1 << 10:
        return f"{n / (1 << 10):.1f} KiB"
    return f"{n:.0f} B"


def fmt_users(n: int) -> str:
    if n >= 1_000_000 and n % 1_000_000 == 0:
        return f"{n // 1_000_000}M"
    if n >= 1_000_000:
        return f"{n / 1_000_000:.3g}M"
    if n >= 1000 and n % 1000 == 0:
        return f"{n // 1000}k"
    return str(n)


def git_commit() -> str:
    try:
        head = subprocess.run(
            ["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", ROOT, "status", "--porcelain", "--untracked-files=no", "--", "src", "engine", "Cargo.toml", "Cargo.lock"],
            capture_output=True,
            text=True,
        ).stdout.strip()
        return head + (" (+ uncommitted changes under src/ or engine/)" if dirty else "")
    except OSError:
        return "unknown"


def machine_facts(args) -> list[str]:
    model = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    ver = subprocess.run(["redis-server", "--version"], capture_output=True, text=True).stdout.strip()
    try:
        load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        load = "?"
    mem = "?"
    try:
        with open("/proc/meminfo") as f:
            mem = f"{int(f.readline().split()[1]) / (1 << 20):.1f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    return [
        f"- date: {datetime.datetime.now().astimezone().isoformat(timespec='seconds')}",
        f"- nproc: {os.cpu_count()} ({platform.machine()}), CPU: {model}, RAM: {mem}",
        f"- load average at start: {load}",
        f"- {ver}",
        f"- module: {os.path.relpath(MODULE, ROOT)}, git commit {git_commit()}, rng {args.rng}",
        f"- run: bench/run.py {' '.join(sys.argv[1:]) or '(full size)'}",
    ]


# ---------------------------------------------------------------- sections


MAIN = Campaign("main", 10, 990)  # ~1% wins
BIG = Campaign("10k", 10_000, 990_000)  # same NOTHING share
WINHEAVY = Campaign("winheavy", 10, 0, stock=None, maxwins=None)  # every draw wins


def _flow_options(now_ms: int) -> list:
    """Every flow-control rule on, none of them limiting the benchmark's draws: a rate and
    burst far above what one server does, 1% turned away by ADMIT (then let in), a client
    limit per CLIENT id, a penalty, and every prize paced over a day's window."""
    opts = ["RATE", 1_000_000_000, "BURST", 1_000_000_000, "ADMIT", "0.99", "1",
            "CLIENTLIMIT", 1000, 1000, "PENALTY", 60_000,
            "WINDOW", now_ms - 3_600_000, now_ms + 86_400_000]
    for i in range(10):
        opts += ["PACE", f"p{i}", "LINEAR"]
    return opts


FLOW = Campaign("flow", 10, 990, extra=_flow_options)  # MAIN with all flow control on

# The flash sale: a campaign of one prize, against the peer seckill script.
SECKILL_LUA = os.path.join(HERE, "hmdp_seckill.lua")
SALE = "sale"
SALE_STREAM = "{sale}:wins"
VOUCHER = "1"
WIN_RANDSPACE = 1_000_000_000  # redis-benchmark -r for "every buyer is new"
CLICK_USERS = 1000


def order_id_base() -> int:
    """An order id like the peer project's id generator (RedisIdWorker): seconds since
    2022-01-01 shifted left 32 bits, a sequence number in the low bits."""
    return (int(time.time()) - 1_640_995_200) << 32


def stats_dict(r, key: str) -> dict:
    st = r.execute_command("LOTTERY.STATS", key)
    out = {}
    for k, v in zip(st[0::2], st[1::2]):
        try:
            out[k.decode()] = int(v)
        except (TypeError, ValueError):
            pass
    return out


def buyer_chunks(prefix: bytes, n: int, orders: int | None = None, step: int = 100_000):
    """RESP for `prefix <10^11 + i> [<orders + i>]` for i in 0..n (prefix: resp_prefix of the
    command without its last one or two arguments)."""
    if orders is not None:
        prefix = prefix.replace(b"*%d\r\n" % (prefix.count(b"$") + 1), b"*%d\r\n" % (prefix.count(b"$") + 2), 1)
    for lo in range(0, n, step):
        parts = []
        for i in range(lo, min(n, lo + step)):
            u = b"%d" % (10**11 + i)
            if orders is None:
                parts.append(b"%s$%d\r\n%s\r\n" % (prefix, len(u), u))
            else:
                o = b"%d" % (orders + i)
                parts.append(b"%s$%d\r\n%s\r\n$%d\r\n%s\r\n" % (prefix, len(u), u, len(o), o))
        yield b"".join(parts)


class Bench:
    def __init__(self, args):
        self.args = args
        self.rows: list[list[str]] = []
        self.raw: list[list[str]] = []
        self.notes: list[str] = []
        self.goals: list[list[str]] = []  # [workload, goal, measured, PASS/MISS]
        self.workdir = tempfile.mkdtemp(prefix="lottery-bench-")
        self.servers: list[Server] = []

    def server(self, name: str, extra=()) -> Server:
        s = Server(name, self.workdir, self.args.rng, self.args.pin_server, extra)
        self.servers.append(s)
        log(f"started redis-server '{name}' on port {s.port}")
        return s

    def row(self, *cells) -> None:
        self.rows.append([str(c) for c in cells])

    def goal(self, workload: str, goal: str, measured: str, ok: bool) -> str:
        """Records a goal for the summary table; returns 'goal: PASS/MISS' for a row."""
        self.goals.append([workload, goal, measured, verdict(ok)])
        return f"{goal}: {verdict(ok)}"

    def close(self) -> None:
        for s in self.servers:
            s.stop()
        if not self.args.keep:
            shutil.rmtree(self.workdir, ignore_errors=True)

    # ---- throughput ----------------------------------------------------------------

    def commands(self, lua: setup_lua.LuaCampaign) -> dict[str, list]:
        return {
            "INCR": ["INCR", "k:__rand_int__"],
            "Lua": lua.evalsha_args("u:__rand_int__"),
            "DRAW": ["LOTTERY.DRAW", CAMP, "u:__rand_int__"],
        }

    def measure(self, srv: Server, runs: list[tuple], after=None):
        """Runs each (label, args, c, P, campaign[, randspace]) --repeat times, interleaved,
        each from an empty server (FLUSHALL, campaign re-created: a Campaign, None, or a
        function of the redis client that sets the keys up). after(label, result), if given,
        runs after each measured run (before the next FLUSHALL). Returns {label: median
        result}."""
        a = self.args
        pin = a.pin_client
        runs = [tuple(x) + (RANDSPACE,) * (6 - len(x)) for x in runs]

        def reset_for(camp):
            def reset():
                srv.r.flushall()
                if callable(camp):
                    camp(srv.r)
                elif camp is not None:
                    camp.configure_module(srv.r)
                    camp.setup_lua(srv.r)

            return reset

        ns = {}
        for label, args, c, P, camp, rand in runs:
            ns[label] = calibrated_n(srv.port, args, c, P, a.seconds, pin, reset_for(camp), rand)
        results: dict[str, list] = {label: [] for label, *_ in runs}
        for rep in range(a.repeat):
            for label, args, c, P, camp, rand in runs:
                reset_for(camp)()
                srv.r.config_resetstat()
                res = redis_benchmark(srv.port, args, ns[label], c, P, pin, rand)
                res["usec"] = server_usec(srv, args[0])
                if after is not None:
                    after(label, res)
                results[label].append(res)
                log(
                    f"  {label:28s} n={ns[label]:>9,} {res['rps']:>12,.0f} ops/s  "
                    f"p50 {res['p50']:.3f}  p99 {res['p99']:.3f} ms  ({res['wall']:.1f} s)"
                )
        med = {k: median_result(v) for k, v in results.items()}
        for label, args, c, P, _, _ in runs:
            m = med[label]
            self.raw.append(
                [label, f"-c {c} -P {P}", fmt_int(m["n"])]
                + [fmt_int(m["rps"])]
                + [fmt_ms(m[k]) for k in FIELDS[1:]]
                + [f"{m['usec']:.2f}"]
            )
        return med

    def throughput(self) -> dict:
        a = self.args
        srv = self.server("throughput")
        lua = MAIN.setup_lua(srv.r)
        cmds = self.commands(lua)
        self.sanity(srv, lua)
        configs = [(1, 50), (1, 256), (16, 50), (16, 256)]
        med = {}
        for P, c in configs:
            log(f"throughput: pipeline {P}, {c} connections")
            runs = [(f"{name} P{P} c{c}", cmds[name], c, P, MAIN) for name in ("INCR", "Lua", "DRAW")]
            med.update(self.measure(srv, runs))
        srv.stop()
        self.notes.append(
            f"Throughput: redis-benchmark -r {RANDSPACE:,} (random users), about {a.seconds:g} s per run, "
            f"median of {a.repeat} run(s), each from an empty server; INCR k:__rand_int__, "
            f"the Lua baseline (EVALSHA bench/draw.lua ... u:__rand_int__) and "
            f"LOTTERY.DRAW {CAMP} u:__rand_int__ on the same campaign: {MAIN.describe()}."
        )
        ratios = {}
        for P, c in configs:
            k = f"P{P} c{c}"
            d, i, l = med[f"DRAW {k}"], med[f"INCR {k}"], med[f"Lua {k}"]
            ratios[(P, c)] = (d["rps"] / i["rps"], d["rps"] / l["rps"], d["p99"] / max(i["p99"], 1e-9))
        for P, c in configs:
            k = f"P{P} c{c}"
            d, i, l = med[f"DRAW {k}"], med[f"INCR {k}"], med[f"Lua {k}"]
            ri, rl, rp = ratios[(P, c)]
            goals = []
            if P == 16:
                w = f"losing draw (~1% wins), pipeline 16, {c} conns"
                goals.append(self.goal(w, ">= 0.7x INCR", f"{fmt_ratio(ri)} INCR", ri >= 0.7))
                goals.append(self.goal(w, ">= 10x Lua draw", f"{fmt_ratio(rl)} Lua", rl >= 10))
            else:
                goals.append(
                    f">= 10x Lua: {verdict(rl >= 10)}"
                    + (f" (INCR itself is {fmt_ratio(i['rps'] / l['rps'])} Lua here)" if rl < 10 else "")
                )
            self.row(
                f"ops/s, pipeline {P}, {c} conns",
                fmt_int(d["rps"]),
                f"INCR {fmt_int(i['rps'])}; Lua {fmt_int(l['rps'])}",
                f"{fmt_ratio(ri)} INCR; {fmt_ratio(rl)} Lua",
                "; ".join(goals),
            )
            self.row(
                f"p50 / p99 ms, pipeline {P}, {c} conns",
                f"{fmt_ms(d['p50'])} / {fmt_ms(d['p99'])}",
                f"INCR {fmt_ms(i['p50'])} / {fmt_ms(i['p99'])}; Lua {fmt_ms(l['p50'])} / {fmt_ms(l['p99'])}",
                f"p99 {fmt_ratio(rp)} INCR",
                f"p99 <= 1.2x INCR: {verdict(rp <= 1.2)}" if c == 256 else "",
            )
        k = "P16 c50"
        d, i, l = med[f"DRAW {k}"], med[f"INCR {k}"], med[f"Lua {k}"]
        self.row(
            "server time per call, us (INFO commandstats), pipeline 16, 50 conns",
            f"{d['usec']:.2f}",
            f"INCR {i['usec']:.2f}; Lua (EVALSHA) {l['usec']:.2f}",
            f"{fmt_ratio(d['usec'] / i['usec'])} INCR; {fmt_ratio(d['usec'] / l['usec'])} Lua",
            "",
        )
        return ratios

    def sanity(self, srv: Server, lua) -> None:
        """A few draws through both, so a broken campaign or script fails loudly, and the
        win rates can be compared."""
        MAIN.configure_module(srv.r)
        wins = {"DRAW": 0, "Lua": 0}
        n = 5000
        p = srv.r.pipeline(transaction=False)
        for i in range(n):
            p.execute_command("LOTTERY.DRAW", CAMP, f"s:{i}")
            p.execute_command(*lua.evalsha_args(f"s:{i}"))
        out = p.execute()
        for j, rep in enumerate(out):
            if not isinstance(rep, list) or len(rep) != 5:
                raise RuntimeError(f"unexpected draw reply: {rep!r}")
            if rep[0] == b"WIN":
                wins["DRAW" if j % 2 == 0 else "Lua"] += 1
        log(f"sanity: {n} draws each: DRAW won {wins['DRAW']}, Lua won {wins['Lua']} (~{n // 100} expected)")
        srv.r.flushall()

    # ---- variants --------------------------------------------------------------------

    def variants(self) -> None:
        srv = self.server("variants")
        P, c = 16, 50
        lua = MAIN.setup_lua(srv.r)  # same keys and script for every campaign: same EVALSHA
        cmds = self.commands(lua)
        runs = []
        for camp in (MAIN, BIG, WINHEAVY):
            for name in ("DRAW", "Lua"):
                runs.append((f"{name} {camp.name}", cmds[name], c, P, camp))
        runs.append(("DRAW flow", cmds["DRAW"] + ["CLIENT", "ip:__rand_int__"], c, P, FLOW))
        log(f"variants: pipeline {P}, {c} connections")
        med = self.measure(srv, runs)
        srv.stop()
        d10, d10k, dw = med["DRAW main"], med["DRAW 10k"], med["DRAW winheavy"]
        l10, l10k, lw = med["Lua main"], med["Lua 10k"], med["Lua winheavy"]
        r = d10k["rps"] / d10["rps"]
        self.row(
            f"ops/s, 10,000 prizes (P{P} c{c})",
            fmt_int(d10k["rps"]),
            f"DRAW 10 prizes {fmt_int(d10['rps'])}; Lua 10k {fmt_int(l10k['rps'])}, Lua 10 {fmt_int(l10['rps'])}",
            f"{fmt_ratio(r)} DRAW-10; {fmt_ratio(d10k['rps'] / l10k['rps'])} Lua-10k",
            f"within 10% of 10 prizes: {verdict(r >= 0.9)}",
        )
        self.row(
            f"ops/s, every draw wins (P{P} c{c})",
            fmt_int(dw["rps"]),
            f"DRAW ~1% wins {fmt_int(d10['rps'])}; Lua all wins {fmt_int(lw['rps'])}, Lua ~1% {fmt_int(l10['rps'])}",
            f"{fmt_ratio(dw['rps'] / d10['rps'])} DRAW-1%; {fmt_ratio(dw['rps'] / lw['rps'])} Lua-all",
            "",
        )
        df = med["DRAW flow"]
        rf = df["rps"] / d10["rps"]
        self.row(
            f"ops/s, all flow control on (P{P} c{c})",
            fmt_int(df["rps"]),
            f"DRAW without it {fmt_int(d10['rps'])}; Lua {fmt_int(l10['rps'])}",
            f"{fmt_ratio(rf)} DRAW; {fmt_ratio(df['rps'] / l10['rps'])} Lua",
            f">= 10x Lua: {verdict(df['rps'] >= 10 * l10['rps'])}; within 15% of DRAW: {verdict(rf >= 0.85)}",
        )
        self.notes.append(
            f"Variants (pipeline {P}, {c} connections): 10,000 prizes = {BIG.describe()}; "
            f"every draw wins = {WINHEAVY.describe()} (a stream entry per draw); "
            f"all flow control on = the main campaign plus {' '.join(map(str, _flow_options(0)[:12]))} "
            f"WINDOW (a day) and PACE LINEAR on every prize, with CLIENT ip:__rand_int__ on each DRAW."
        )

    # ---- flash sale: wins against the peer script, repeat clicks -----------------------

    def seckill_setup(self, r) -> str:
        """The peer script's keys (a stock string) and the script; returns its SHA."""
        r.set(f"seckill:stock:{VOUCHER}", STOCK)
        with open(SECKILL_LUA) as f:
            return r.script_load(f.read())

    def flashsale(self) -> None:
        a = self.args
        srv = self.server("flashsale")
        r = srv.r
        sha = self.seckill_setup(r)

        def setup_sale(r):
            r.execute_command("LOTTERY.CONFIGURE", SALE, "PRIZE", "voucher", 1, STOCK)

        def setup_peer(r):
            self.seckill_setup(r)

        # Sanity: both sides sell to a new buyer once and refuse the second click.
        r.flushall()
        setup_sale(r)
        sha = self.seckill_setup(r)
        order = order_id_base()
        got = [
            r.execute_command("LOTTERY.DRAW", SALE, "7")[0],
            r.execute_command("LOTTERY.DRAW", SALE, "7")[0],
            r.evalsha(sha, 0, VOUCHER, "7", order),
            r.evalsha(sha, 0, VOUCHER, "7", order + 1),
        ]
        if got != [b"WIN", b"ALREADY_WON", 0, 2]:
            raise RuntimeError(f"flash-sale sanity: unexpected replies {got!r}")

        # 1. Wins: unique-ish buyers (redis-benchmark -r 1e9: a repeat is ~0.05% of n).
        draw = ["LOTTERY.DRAW", SALE, "__rand_int__"]
        peer = ["EVALSHA", sha, 0, VOUCHER, "__rand_int__", f"{order // 10**12}__rand_int__"]
        wins: dict[str, list] = {}

        def after(label, res):
            if label.startswith("DRAW"):
                st = stats_dict(r, SALE)
                res["first"] = st["wins"] / max(1, st["wins"] + st["rejected_already_won"])
            elif label.startswith("peer"):
                sold = int(r.scard(f"seckill:order:{VOUCHER}"))
                res["first"] = sold / max(1, res["n"])
                res["usec"] = server_usec(srv, "evalsha")

        runs = []
        for P in (1, 16):
            c = 50
            runs.append((f"DRAW sale P{P} c{c}", draw, c, P, setup_sale, WIN_RANDSPACE))
            runs.append((f"peer seckill.lua P{P} c{c}", peer, c, P, setup_peer, WIN_RANDSPACE))
        log("flash sale: every buyer's first draw wins (module vs the peer script)")
        med = self.measure(srv, runs, after=after)
        for P in (1, 16):
            d, l = med[f"DRAW sale P{P} c50"], med[f"peer seckill.lua P{P} c50"]
            ratio = d["rps"] / l["rps"]
            g = ""
            if P == 16:
                g = self.goal("wins (first draw of each buyer), pipeline 16, 50 conns",
                              ">= 3x the peer script", fmt_ratio(ratio), ratio >= 3)
            else:
                self.goals.append(["wins (first draw of each buyer), pipeline 1, 50 conns",
                                   "(none: reported)", fmt_ratio(ratio), ""])
            self.row(
                f"wins: ops/s, pipeline {P}, 50 conns (every buyer's first draw wins)",
                f"{fmt_int(d['rps'])} ({d['first'] * 100:.2f}% WIN)",
                f"peer seckill.lua {fmt_int(l['rps'])} ({l['first'] * 100:.2f}% sold)",
                f"{fmt_ratio(ratio)} peer",
                g,
            )
        d, l = med["DRAW sale P16 c50"], med["peer seckill.lua P16 c50"]
        self.row(
            "wins: server time per call, us (INFO commandstats), pipeline 16, 50 conns",
            f"{d['usec']:.2f}",
            f"peer seckill.lua (EVALSHA) {l['usec']:.2f}",
            f"{fmt_ratio(d['usec'] / l['usec'])} peer",
            "",
        )

        # 1b. Bytes per buyer: exactly unique buyers through redis-cli --pipe.
        N = a.buyers
        pin = a.pin_client
        r.flushall()
        m0 = srv.used_memory()
        setup_sale(r)
        m0c = srv.used_memory()
        pipe(srv.port, buyer_chunks(resp_prefix(["LOTTERY.DRAW", SALE]), N), pin)
        m1 = srv.used_memory()
        st = stats_dict(r, SALE)
        mod_camp = int(r.memory_usage(SALE, samples=0))
        mod_stream = int(r.memory_usage(SALE_STREAM, samples=0))
        mod_wins = st["wins"]
        r.flushall()
        n0 = srv.used_memory()
        sha = self.seckill_setup(r)
        n0c = srv.used_memory()
        pre = resp_prefix(["EVALSHA", sha, "0", VOUCHER])
        pipe(srv.port, buyer_chunks(pre, N, orders=order_id_base()), pin)
        n1 = srv.used_memory()
        sold = int(r.scard(f"seckill:order:{VOUCHER}"))
        peer_set = int(r.memory_usage(f"seckill:order:{VOUCHER}", samples=0))
        peer_stream = int(r.memory_usage("stream.orders", samples=0))
        peer_len = int(r.xlen("stream.orders"))
        if mod_wins != N or sold != N or peer_len != N:
            self.notes.append(f"bytes per buyer: module {mod_wins:,} wins, peer {sold:,} sold / {peer_len:,} entries, of {N:,} buyers")
        mod_pb = (m1 - m0c) / N
        peer_pb = (n1 - n0c) / N
        log(f"  bytes per buyer: module {mod_pb:.1f} (campaign {mod_camp / N:.1f} + stream {mod_stream / N:.1f}), "
            f"peer {peer_pb:.1f} (set {peer_set / N:.1f} + stream {peer_stream / N:.1f})")
        self.row(
            f"wins: bytes per buyer, {fmt_users(N)} buyers (used_memory delta)",
            f"{mod_pb:.1f} (MEMORY USAGE: campaign {mod_camp / N:.1f} + wins stream {mod_stream / N:.1f})",
            f"peer seckill.lua {peer_pb:.1f} (MEMORY USAGE: buyers set {peer_set / N:.1f} + stream.orders {peer_stream / N:.1f})",
            f"{fmt_ratio(mod_pb / peer_pb)} peer",
            self.goal(f"wins: bytes per buyer ({fmt_users(N)} buyers)", "fewer than the peer script",
                      f"{mod_pb:.1f} vs {peer_pb:.1f} B", mod_pb < peer_pb),
        )

        # 2. Repeat clicks: 1,000 users on a COOLDOWN 1000 campaign; INCR over 1,000 keys.
        P, c = 16, 50
        clicks = Campaign("clicks", 10, 990, cooldown=1000)

        def setup_clicks(r):
            clicks.configure_module(r)

        def after_clicks(label, res):
            if label.startswith("DRAW"):
                st = stats_dict(r, CAMP)
                rej = st["rejected_cooldown"]
                res["rejected"] = rej / max(1, rej + st["draws"])

        log(f"flash sale: repeat clicks, {CLICK_USERS:,} users, COOLDOWN 1000")
        med = self.measure(
            srv,
            [
                (f"INCR {CLICK_USERS} keys P{P} c{c}", ["INCR", "k:__rand_int__"], c, P, None, CLICK_USERS),
                (f"DRAW {CLICK_USERS} users P{P} c{c}", ["LOTTERY.DRAW", CAMP, "u:__rand_int__"], c, P, setup_clicks, CLICK_USERS),
            ],
            after=after_clicks,
        )
        srv.stop()
        d, i = med[f"DRAW {CLICK_USERS} users P{P} c{c}"], med[f"INCR {CLICK_USERS} keys P{P} c{c}"]
        ru = d["usec"] / i["usec"]
        self.row(
            f"repeat clicks: server time per call, us (INFO commandstats), {CLICK_USERS:,} users, COOLDOWN 1000, P{P} c{c}",
            f"{d['usec']:.2f} ({d['rejected'] * 100:.1f}% rejected by COOLDOWN; {fmt_int(d['rps'])} ops/s)",
            f"INCR over {CLICK_USERS:,} keys {i['usec']:.2f} ({fmt_int(i['rps'])} ops/s)",
            f"{fmt_ratio(ru)} INCR",
            self.goal("repeat clicks (~all rejected by COOLDOWN)", "DRAW usec/call <= 2x INCR",
                      f"{fmt_ratio(ru)} INCR ({d['usec']:.2f} vs {i['usec']:.2f} us)", ru <= 2),
        )
        self.notes.append(
            f"Flash sale, wins: LOTTERY.CONFIGURE {SALE} PRIZE voucher 1 {STOCK:.0e} (NOTHING 0, MAXWINS 1, "
            f"no cooldown) and LOTTERY.DRAW {SALE} __rand_int__, against bench/hmdp_seckill.lua (verbatim) called as "
            f"its project does: EVALSHA sha 0 {VOUCHER} <userId> <orderId> (userId __rand_int__, orderId "
            f"a 64-bit number, {order // 10**12}__rand_int__), seckill:stock:{VOUCHER} SET to {STOCK:.0e} first; "
            f"redis-benchmark -r {WIN_RANDSPACE:,} (a buyer repeats in about n / 2e9 of the calls: "
            f"'% WIN' / '% sold' is the share of calls that sold), 50 connections, about {a.seconds:g} s per run, median of "
            f"{a.repeat}, each from an empty server. Bytes per buyer: {N:,} distinct buyers (ids 10^11 + i; the peer's "
            f"orderIds like its project's id generator: seconds since 2022 << 32 | i) through redis-cli --pipe, "
            f"used_memory after minus used_memory after the setup (campaign or stock key, script loaded). "
            f"Repeat clicks: redis-benchmark -r {CLICK_USERS:,}, -P {P} -c {c}: LOTTERY.DRAW {CAMP} u:__rand_int__ "
            f"on {clicks.describe()} next to INCR k:__rand_int__ over as many keys, INFO commandstats "
            f"usec_per_call after CONFIG RESETSTAT, median of {a.repeat}; '% rejected' = rejected_cooldown / "
            f"(draws + rejected_cooldown) from LOTTERY.STATS."
        )

    # ---- memory and RDB ----------------------------------------------------------------

    def memory(self) -> None:
        a = self.args
        N = a.users
        camp = Campaign("mem", 10, 990, cooldown=600_000)
        srv = self.server("memory")
        r = srv.r
        pin = a.pin_client
        rdb = os.path.join(srv.dir, "dump.rdb")

        def rdb_times(label: str) -> tuple[float, float, int, int]:
            t0 = time.time()
            r.save()
            save_s = time.time() - t0
            size = os.path.getsize(rdb)
            keys_before = r.dbsize()
            t0 = time.time()
            r.execute_command("DEBUG", "RELOAD", "NOSAVE")
            load_s = time.time() - t0
            loaded = int(srv.info("persistence").get("rdb_last_load_keys_loaded", r.dbsize()))
            if r.dbsize() != keys_before:
                self.notes.append(f"RDB {label}: {keys_before} keys before, {r.dbsize()} after reload")
            log(f"  {label}: SAVE {save_s:.3f} s, load {load_s:.3f} s, {size:,} bytes, {loaded:,} keys")
            return save_s, load_s, size, loaded

        # The module.
        r.flushall()
        m0 = srv.used_memory()
        camp.configure_module(r)
        log(f"memory: {N:,} users draw once on the module")
        # In 32 steps, with MEMORY USAGE after each: bytes per user is not flat (the user map
        # grows by steps of x1.14 to x1.25), so the second half (N/2..N, one doubling) gives
        # its range and mean.
        steps = 32
        samples = []
        dt = 0.0
        pre = resp_prefix(["LOTTERY.DRAW", CAMP])
        for k in range(steps):
            lo, hi = N * k // steps, N * (k + 1) // steps
            dt += pipe(srv.port, chunked(pre, lo, hi), pin)[2]
            if k >= steps // 2 - 1:
                samples.append(int(r.memory_usage(CAMP)) / hi)
        m1 = srv.used_memory()
        usage = int(r.memory_usage(CAMP))
        stats = r.execute_command("LOTTERY.STATS", CAMP)
        st = dict(zip(stats[0::2], stats[1::2]))
        users = int(st[b"users"])
        wins = int(st[b"wins"])
        log(f"  {users:,} users ({N / dt:,.0f}/s), MEMORY USAGE {usage:,}, used_memory +{m1 - m0:,}")
        mod_rdb = rdb_times("module")
        stats2 = r.execute_command("LOTTERY.STATS", CAMP)
        st2 = dict(zip(stats2[0::2], stats2[1::2]))
        if int(st2[b"users"]) != users:
            self.notes.append(f"RDB reload changed the user count: {users} -> {int(st2[b'users'])}")

        # The Lua keys: a cooldown key (PX 600000) and a daily counter per user, then a second
        # batch with COOLDOWN 0 (daily counter only).
        r.flushall()
        m0l = srv.used_memory()
        lua = camp.setup_lua(r)
        log(f"memory: {N:,} users draw once through the Lua script")
        _, _, dtl = pipe(srv.port, chunked(resp_prefix(lua.evalsha_args("")[:-1]), 0, N), pin)
        m1l = srv.used_memory()
        keys_l = r.dbsize()
        lua_rdb = rdb_times("Lua keys")
        m1l_after = srv.used_memory()
        r.hset(lua.keys[0], "cooldown", 0)
        _, _, _ = pipe(srv.port, chunked(resp_prefix(lua.evalsha_args("")[:-1]), N, 2 * N), pin)
        m2l = srv.used_memory()
        srv.stop()
        lua_pu = (m1l - m0l) / N
        lua_daily_pu = (m2l - m1l_after) / N
        log(f"  Lua: {keys_l:,} keys ({N / dtl:,.0f}/s), {lua_pu:.1f} B/user, {lua_daily_pu:.1f} B/user without cooldown key")
        mod_pu = usage / users
        mod_delta_pu = (m1 - m0) / N
        mean_pu = statistics.mean(samples)
        self.row(
            f"bytes per user, {fmt_users(N)} users drew once",
            f"{mod_pu:.1f} (MEMORY USAGE); {mod_delta_pu:.1f} (used_memory delta); "
            f"{min(samples):.1f} to {max(samples):.1f}, mean {mean_pu:.1f} (MEMORY USAGE "
            f"from {fmt_users(N // 2)} to {fmt_users(N)} users)",
            f"Lua keys {lua_pu:.1f} (cooldown + daily key); {lua_daily_pu:.1f} (daily key only)",
            f"{fmt_ratio(mod_delta_pu / lua_pu)} Lua",
            f"<= 40 B/user: {verdict(mod_pu <= 40)} at {fmt_users(N)}; "
            f"{verdict(mean_pu <= 40)} on average; {verdict(max(samples) <= 40)} at worst",
        )
        self.row(
            f"RDB SAVE, {fmt_users(N)} users",
            f"{mod_rdb[0] * 1000:,.0f} ms, {fmt_bytes(mod_rdb[2])}",
            f"Lua keys {lua_rdb[0] * 1000:,.0f} ms, {fmt_bytes(lua_rdb[2])}",
            f"{fmt_ratio(mod_rdb[0] / lua_rdb[0])} time; {fmt_ratio(mod_rdb[2] / lua_rdb[2])} size",
            "",
        )
        self.row(
            f"RDB load (DEBUG RELOAD NOSAVE), {fmt_users(N)} users",
            f"{mod_rdb[1] * 1000:,.0f} ms ({users * 1000 / max(mod_rdb[1], 1e-9) / 1000:,.0f} users/s)",
            f"Lua keys {lua_rdb[1] * 1000:,.0f} ms ({lua_rdb[3]:,} keys)",
            f"{fmt_ratio(mod_rdb[1] / lua_rdb[1])} time",
            "",
        )
        self.notes.append(
            f"Memory: {N:,} distinct users u:0..u:{N - 1} draw once each (redis-cli --pipe) on a fresh "
            f"server (in 32 steps, MEMORY USAGE after each step of the second half), campaign {camp.describe()}: {wins:,} wins, so the wins stream is in the used_memory "
            f"delta for both. Module bytes per user = MEMORY USAGE {CAMP} / users (the goal) and "
            f"used_memory delta / users. Lua: used_memory delta / users with the cooldown keys alive, "
            f"then a second batch of {N:,} users with COOLDOWN 0 (no cooldown key). RDB: SAVE and "
            f"DEBUG RELOAD NOSAVE timed from the client, size of dump.rdb."
        )

    # ---- stall -----------------------------------------------------------------------

    def stall(self) -> None:
        a = self.args
        N = a.stall_users
        thr = a.slowlog_us
        runs = a.stall_runs
        srv = self.server(
            "stall",
            extra=["--slowlog-log-slower-than", str(thr), "--slowlog-max-len", "1024"],
        )
        r = srv.r
        pin = a.pin_client
        # One empty campaign, DUMPed: every run RESTOREs it, so every run has the same
        # user-hashing seed and the user map grows at the same draws. A slow DRAW of the same
        # user in every run is the module's own work; one in a single run is most likely the
        # server being descheduled (this machine is shared).
        MAIN.configure_module(r)
        empty = r.dump(CAMP)
        base_key = "{bench}:base"
        bounds = [0]  # 1k, 2k, ... 512k, then 1M, 2M, 4M, 8M, then N
        b = 1000
        while b < N:
            bounds.append(b)
            b = 1_000_000 if b == 512_000 else b * 2
        bounds.append(N)
        draw_pre = resp_prefix(["LOTTERY.DRAW", CAMP])
        hset_pre = resp_prefix(["HSET", base_key]).replace(b"*3\r\n", b"*4\r\n", 1)
        one = b"$1\r\n1\r\n"

        def preempted() -> int:
            try:
                with open(f"/proc/{srv.proc.pid}/status") as f:
                    for line in f:
                        if line.startswith("nonvoluntary_ctxt_switches"):
                            return int(line.split()[1])
            except (OSError, ValueError):
                pass
            return 0

        def run_segment(pre, lo, hi, extra, cmdname):
            chunks = list(chunked(pre, lo, hi, step=500_000, extra=extra))  # generated up front
            r.slowlog_reset()
            r.config_resetstat()
            cs0 = preempted()
            _, _, dt = pipe(srv.port, chunks, pin)
            cs = preempted() - cs0
            entries = r.slowlog_get(1024)
            slow = {}
            others = 0
            for e in entries:
                parts = e["command"].split(b" ")
                if parts[0].lower() == cmdname and len(parts) >= 3:
                    slow[parts[2]] = max(slow.get(parts[2], 0), int(e["duration"]))
                else:
                    others += 1
            top = 0
            hist = r.execute_command("LATENCY", "HISTOGRAM", cmdname.decode())
            if hist:
                hd = dict(zip(hist[1][0::2], hist[1][1::2]))
                buckets = hd.get(b"histogram_usec", [])
                if buckets:
                    top = int(buckets[-2])  # upper bound of the highest non-empty bucket
            per_user = 0.0
            if cmdname == b"lottery.draw":
                per_user = int(r.memory_usage(CAMP)) / hi
            return {"slow": slow, "others": others, "top": top, "rate": (hi - lo) / dt, "cs": cs, "bpu": per_user}

        segs = list(zip(bounds, bounds[1:]))
        draws = [[None] * len(segs) for _ in range(runs)]
        hsets = [None] * len(segs)
        log(
            f"stall: growing one campaign to {N:,} users, {runs} run(s)"
            + (" (and a hash, the baseline, in run 1)" if a.stall_baseline else "")
            + f", slowlog > {thr} us"
        )
        for run in range(runs):
            r.flushall()
            r.restore(CAMP, 0, empty, replace=True)
            for i, (lo, hi) in enumerate(segs):
                d = run_segment(draw_pre, lo, hi, b"", b"lottery.draw")
                draws[run][i] = d
                h = None
                if run == 0 and a.stall_baseline:
                    h = hsets[i] = run_segment(hset_pre, lo, hi, one, b"hset")
                log(
                    f"  run {run + 1} {fmt_users(lo):>6} -> {fmt_users(hi):>6}: DRAW slowest "
                    f"{max(d['slow'].values(), default=0)} us ({len(d['slow'])} > {thr} us, hist <= "
                    f"{d['top']} us, {d['rate']:,.0f}/s, preempted {d['cs']}x)"
                    + (
                        f"; HSET slowest {max(h['slow'].values(), default=0)} us "
                        f"({len(h['slow'])} > {thr} us, hist <= {h['top']} us)"
                        if h
                        else ""
                    )
                )
        usage = int(r.memory_usage(CAMP))
        users = int(dict(zip(*[iter(r.execute_command("LOTTERY.STATS", CAMP))] * 2))[b"users"])
        srv.stop()

        def repro(i):
            """Users slow in every run: {user: the smallest of their durations}."""
            common = set(draws[0][i]["slow"])
            for run in range(1, runs):
                common &= set(draws[run][i]["slow"])
            return {u: min(draws[run][i]["slow"][u] for run in range(runs)) for u in common}

        def slowest(x):
            return max(x["slow"].values(), default=0)

        def us(v):
            return f"{v:,} us" if v else f"< {thr} us"

        rep_all = {}
        for i in range(len(segs)):
            rep_all.update(repro(i))
        raw_over = [sum(sum(1 for v in draws[run][i]["slow"].values() if v > 1000) for i in range(len(segs))) for run in range(runs)]
        raw_worst = max(slowest(draws[run][i]) for run in range(runs) for i in range(len(segs)))
        rep_over = sum(1 for v in rep_all.values() if v > 1000)
        rep_worst = max(rep_all.values(), default=0)
        hist_top = max(draws[run][i]["top"] for run in range(runs) for i in range(len(segs)))
        runs_s = ", ".join(str(x) for x in raw_over)
        if a.stall_baseline:
            b_over = sum(sum(1 for v in h["slow"].values() if v > 1000) for h in hsets)
            b_worst = max(slowest(h) for h in hsets)
            b_top = max(h["top"] for h in hsets)
            base = f"HSET into one hash (run 1): slowest {us(b_worst)}, {b_over} > 1 ms (hist <= {b_top} us)"
        else:
            base = "(no baseline)"
        if thr <= 1000:
            goal = (
                f"no DRAW > 1 ms: {verdict(max(raw_over) == 0)} as measured; "
                f"{verdict(rep_over == 0)} counting only a user slow in every run"
            )
        else:
            goal = f"(slowlog threshold {thr} us > 1 ms: not checked)"
        self.row(
            f"slowest DRAW, 0 -> {fmt_users(N)} users in one campaign",
            f"slowest {us(raw_worst)}; DRAWs > 1 ms per run: {runs_s}; slow for the same user in "
            f"all {runs} runs: {len(rep_all)} (slowest {us(rep_worst)}); hist <= {hist_top} us",
            base,
            "",
            goal,
        )
        bpu = [d["bpu"] for d in draws[0]]
        self.row(
            f"bytes per user (MEMORY USAGE) at {fmt_users(N)} users",
            f"{usage / max(users, 1):.1f} (the doublings below all sit at one point of the map's "
            f"growth cycle: {min(bpu[3:] or bpu):.1f} to {max(bpu[3:] or bpu):.1f}; the range is in the memory row)",
            "",
            "",
            f"<= 40 B/user: {verdict(usage / max(users, 1) <= 40)}",
        )
        for i, (lo, hi) in enumerate(segs):
            per_run = " / ".join(us(slowest(draws[run][i])) for run in range(runs))
            rp = repro(i)
            h = hsets[i]
            self.row(
                f"  slowest DRAW, {fmt_users(lo)} -> {fmt_users(hi)} users",
                f"{per_run}; same user in all runs: {us(max(rp.values(), default=0))}",
                (f"HSET {us(slowest(h))} (hist <= {h['top']} us)" if h else ""),
                f"{draws[0][i]['rate']:,.0f} DRAW/s"
                + (f", {h['rate']:,.0f} HSET/s" if h else "")
                + f"; server preempted {draws[0][i]['cs']}x; {draws[0][i]['bpu']:.1f} B/user",
                "",
            )
        self.notes.append(
            f"Stall: users u:0..u:{N - 1} draw once each, in order, through redis-cli --pipe, one "
            f"doubling at a time, {runs} run(s) from the same empty campaign (DUMP/RESTORE: same "
            f"user-hashing seed, so the user map grows at the same draws in every run). After each "
            f"doubling: SLOWLOG (threshold {thr} us, max-len 1024) and LATENCY HISTOGRAM (reset "
            f"before each doubling; 'hist <= X us' bounds the slowest call). Per doubling: the "
            f"slowest DRAW of each run, and the slowest of the users that were slow in every run "
            f"(the smaller of their durations): that part is the module's own work, the rest is "
            f"mostly the server being descheduled ('preempted': involuntary context switches of "
            f"the server during run 1's doubling). Baseline: HSET {{bench}}:base u:<n> 1 into one "
            f"hash growing the same way, interleaved in run 1. At the end: {users:,} users, "
            f"MEMORY USAGE {usage:,} bytes ({usage / max(users, 1):.1f} B/user)."
        )

    # ---- output --------------------------------------------------------------------------

    def render(self, facts: list[str], elapsed: float) -> str:
        head = ["measurement", "LOTTERY.DRAW", "baseline (same run, same server)", "ratio", "goal"]
        out = ["# redis-lottery benchmark", ""]
        out += facts
        out.append(f"- total time: {elapsed:.0f} s")
        out.append("")
        out.append("| " + " | ".join(head) + " |")
        out.append("|" + "|".join(["---"] * len(head)) + "|")
        for r in self.rows:
            out.append("| " + " | ".join(c.replace("|", "\\|") for c in r) + " |")
        out.append("")
        if self.goals:
            out += ["Goals:", "", "| workload | goal | measured | verdict |", "|---|---|---|---|"]
            for g in self.goals:
                out.append("| " + " | ".join(g) + " |")
            out.append("")
        for n in self.notes:
            out.append(f"- {n}")
        return "\n".join(out) + "\n"

    def render_raw(self) -> str:
        if not self.raw:
            return ""
        head = ["run", "options", "-n", "ops/s", "avg ms", "min ms", "p50 ms", "p95 ms", "p99 ms", "max ms", "server us/call"]
        out = ["", "## Raw redis-benchmark figures (medians)", ""]
        out.append("| " + " | ".join(head) + " |")
        out.append("|" + "|".join(["---"] * len(head)) + "|")
        for r in self.raw:
            out.append("| " + " | ".join(r) + " |")
        return "\n".join(out) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="short runs and small sizes (under 3 minutes)")
    ap.add_argument("--seconds", type=float, help="target seconds per redis-benchmark run (default 3; quick 1)")
    ap.add_argument("--repeat", type=int, help="runs per figure, the median is reported (default 3; quick 1)")
    ap.add_argument("--users", type=int, help="users for the memory and RDB test (default 1000000; quick 200000)")
    ap.add_argument("--buyers", type=int, help="buyers for the flash-sale bytes-per-buyer test (default 1000000; quick 200000)")
    ap.add_argument("--stall-users", type=int, help="users for the stall test (default 10000000; quick 1000000)")
    ap.add_argument("--stall-runs", type=int, default=2, help="runs of the stall test (default 2)")
    ap.add_argument("--slowlog-us", type=int, default=1000, help="slowlog-log-slower-than for the stall test (default 1000)")
    ap.add_argument("--no-stall-baseline", dest="stall_baseline", action="store_false", help="skip the HSET baseline of the stall test")
    ap.add_argument(
        "--only",
        default="throughput,flashsale,variants,memory,stall",
        help="comma-separated sections to run (throughput, flashsale, variants, memory, stall)",
    )
    ap.add_argument("--rng", default="chacha", choices=["chacha", "xoshiro"], help="the module's rng load option (default chacha)")
    ap.add_argument("--pin", action="store_true", help="pin the server to CPU 1 and the load generators to CPU 0 (taskset)")
    ap.add_argument("--out", default=os.path.join(HERE, "results.md"), help="markdown output (default bench/results.md)")
    ap.add_argument("--keep", action="store_true", help="keep the servers' directories (logs, RDB files)")
    a = ap.parse_args()
    q = a.quick
    a.seconds = a.seconds or (1.0 if q else 3.0)
    a.repeat = a.repeat or (1 if q else 3)
    a.users = a.users or (200_000 if q else 1_000_000)
    a.buyers = a.buyers or (200_000 if q else 1_000_000)
    a.stall_users = a.stall_users or (1_000_000 if q else 10_000_000)
    a.pin_server = "1" if a.pin else None
    a.pin_client = "0" if a.pin else None
    sections = [s.strip() for s in a.only.split(",") if s.strip()]
    unknown = set(sections) - {"throughput", "flashsale", "variants", "memory", "stall"}
    if unknown:
        ap.error(f"unknown section(s): {', '.join(sorted(unknown))}")

    for tool in ("redis-server", "redis-benchmark", "redis-cli") + (("taskset",) if a.pin else ()):
        if shutil.which(tool) is None:
            sys.exit(f"run.py: {tool} not found (make deps installs redis)")
    if not os.path.exists(MODULE):
        sys.exit(f"run.py: {MODULE} not found: build it first (make build)")

    facts = machine_facts(a)
    for f in facts:
        log(f[2:])
    b = Bench(a)
    t0 = time.time()
    try:
        if "throughput" in sections:
            b.throughput()
        if "flashsale" in sections:
            b.flashsale()
        if "variants" in sections:
            b.variants()
        if "memory" in sections:
            b.memory()
        if "stall" in sections:
            b.stall()
    finally:
        b.close()
    text = b.render(facts, time.time() - t0)
    print(text, end="")
    with open(a.out, "w") as f:
        f.write(text + b.render_raw())
    log(f"written to {os.path.relpath(a.out)}")


if __name__ == "__main__":
    main()
