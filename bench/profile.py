#!/usr/bin/env python3
"""Where the instructions of each command path go: redis-server with the module under
`valgrind --tool=callgrind`, a fixed number of commands per path, instructions per command and
the top functions of each path (callgrind_annotate).

    make bench-profile                   # about 3 minutes
    .venv/bin/python bench/profile.py --help

Paths (each from its own keys, set up before the measured window):

  win         LOTTERY.DRAW sale <new user>: PRIZE voucher 1 <big stock>, NOTHING 0, MAXWINS 1:
              every draw a WIN (the user stored, a stream entry, the effects replicated)
  rejected    LOTTERY.DRAW camp <user> on 1,000 users who drew already, COOLDOWN 600000
              (MAXWINS INF, so a winner is refused by the cooldown too):
              every draw refused with COOLDOWN (the repeat click)
  lose        LOTTERY.DRAW camp <new user>, one prize of weight 0 and NOTHING 1, COOLDOWN
              1000: every draw a LOSE (the user stored, the effects replicated)
  INCR        INCR k:<new key>
  peer        EVALSHA of bench/hmdp_seckill.lua (verbatim), voucherId 1, a new userId, a
              64-bit orderId: every call sells (SISMEMBER, INCRBY, SADD, XADD)
  lua-draw    EVALSHA of bench/draw.lua (the repo's Lua draw, ~1% wins), new users
  rules-lose  LOTTERY.DRAW rules <new user> TIER vip with GUARANTEE, AFTER, TOTAL and a tier
              (docs/rules.md), every draw a LOSE (builds that have the rules)
  code-win    LOTTERY.DRAW codes <new buyer>: a code prize with a pool of N codes, every
              draw a WIN that hands out a code (builds that have code pools)

For each path: callgrind_control --zero, N commands sent from a Python client in pipelines of
16, callgrind_control --dump. Instructions per command = the dump's total (the event loop,
reading and parsing the requests, the command, the replies) / N, minus what the idle server
costs per second over the same time (measured first); 'in call()' = the inclusive cost of
Redis's call() / N (the command alone, with its propagation). Instruction counts do not
depend on the machine's load, unlike the timings of bench/run.py.

Writes bench/results-profile.md (and keeps the callgrind files with --keep).
"""

from __future__ import annotations

import argparse
import datetime
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True

import setup_lua  # noqa: E402

try:
    import redis  # noqa: E402
except ImportError:  # pragma: no cover
    sys.exit("profile.py needs redis-py: run it with the repo venv (make deps; .venv/bin/python)")

MODULE = os.path.join(ROOT, "target", "release", "liblottery.so")
SECKILL_LUA = os.path.join(HERE, "hmdp_seckill.lua")
STOCK = 10**12
BATCH = 16

# Frames every command goes through: left out of the per-path "top inclusive" list.
GENERIC = {
    "main", "aeMain", "aeProcessEvents", "readQueryFromClient", "processInputBuffer",
    "processCommandAndResetClient", "processCommand", "call", "connSocketEventHandler",
    "callHandler", "0x0000000000000000", "(below main)", "__libc_start_main",
    "__libc_start_call_main", "_start", "RedisModuleCommandDispatcher",
}  # fmt: skip

# Named costs (inclusive, per command) shown for every path when they occur.
PROBES = [
    ("lottery::commands::draw::DRAW::entry", "the module's DRAW command (all of it)"),
    ("commit_draw", "  engine: commit_draw (rules, pick, user state)"),
    ("lottery_engine::users::Users::insert", "  engine: Users::insert (a new user)"),
    ("lottery_engine::segmap::SegMap<V>::upsert", "  engine: SegMap::upsert (the user's record, one probe)"),
    ("lottery::commands::draw::reply_draw", "  reply_draw (the five-element reply)"),
    ("lottery::commands::draw::finish", "  finish (metrics, sold-out event, the five-element reply)"),
    ("lottery::replication::append_win", "  append_win (the stream entry)"),
    ("lottery::replication::replicate_str", "  replicate_str (effect encoding + RM_Replicate)"),
    ("lottery::replication::replicate_win", "  replicate_win (a win's effect + RM_Replicate)"),
    ("lottery::stats_sync::flush", "the batched statistics (once per event loop iteration)"),
    ("RM_Replicate", "  RM_Replicate (all calls)"),
    ("lookupCommandByCString", "    lookupCommandByCString (Replicate's command lookup)"),
    ("moduleCreateArgvFromUserFormat", "    moduleCreateArgvFromUserFormat (Replicate's argv)"),
    ("alsoPropagate", "    alsoPropagate"),
    ("RM_StreamAdd", "  RM_StreamAdd"),
    ("streamAppendItem", "    streamAppendItem (stream append)"),
    ("RM_OpenKey", "  RM_OpenKey"),
    ("RM_CloseKey", "  RM_CloseKey"),
    ("evalShaCommand", "evalShaCommand (all of the script)"),
    ("lua_pcall", "  lua_pcall (the Lua VM running the script)"),
    ("scriptCall", "  scriptCall (every redis.call)"),
    ("xaddCommand", "    xaddCommand"),
    ("saddCommand", "    saddCommand"),
    ("sismemberCommand", "    sismemberCommand"),
    ("incrbyCommand", "    incrbyCommand"),
    ("getCommand", "    getCommand"),
    ("incrCommand", "incrCommand"),
    ("propagatePendingCommands", "propagatePendingCommands (after the command)"),
    ("processMultibulkBuffer", "processMultibulkBuffer (request parsing)"),
    ("writeToClient", "writeToClient (replies)"),
]


def shown(path: str) -> str:
    """A path as the output shows it: relative to the repository, or its name if outside."""
    rel = os.path.relpath(path, ROOT)
    return os.path.basename(path) if rel.startswith("..") else rel


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def order_id_base() -> int:
    return (int(time.time()) - 1_640_995_200) << 32


class Profiled:
    """redis-server under callgrind; dumps on request."""

    def __init__(self, workdir: str, module: str):
        self.dir = workdir
        self.port = free_port()
        self.out = os.path.join(workdir, "callgrind.out")
        cmd = [
            "valgrind", "--tool=callgrind", f"--callgrind-out-file={self.out}", "--dump-instr=no",
            "--log-file=" + os.path.join(workdir, "valgrind.log"),
            "redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
            "--appendonly", "no", "--dir", workdir, "--logfile", os.path.join(workdir, "redis.log"),
            "--loadmodule", module,
        ]  # fmt: skip
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.r = redis.Redis(port=self.port, socket_timeout=600)
        deadline = time.time() + 120
        while True:
            try:
                if self.r.ping():
                    break
            except redis.ConnectionError:
                pass
            if self.proc.poll() is not None or time.time() > deadline:
                raise RuntimeError(f"redis-server under callgrind did not start (see {workdir})")
            time.sleep(0.2)
        self.dumps = 0

    def ctl(self, *args) -> None:
        subprocess.run(["callgrind_control", *args, str(self.proc.pid)], check=True, capture_output=True)

    def zero(self) -> None:
        self.r.ping()
        self.ctl("--zero")

    def dump(self, label: str) -> str:
        self.r.ping()
        before = set(os.listdir(self.dir))
        self.ctl(f"--dump={label}")
        deadline = time.time() + 60
        while time.time() < deadline:
            new = [f for f in set(os.listdir(self.dir)) - before if f.startswith("callgrind.out")]
            if new:
                path = os.path.join(self.dir, new[0])
                time.sleep(0.3)  # let valgrind finish writing
                return path
            time.sleep(0.1)
        raise RuntimeError(f"no callgrind dump for {label}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                self.r.shutdown(nosave=True)
            except (redis.ConnectionError, redis.ResponseError):
                pass
            try:
                self.proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                self.proc.kill()  # our own child, by pid
                self.proc.wait()


def annotate(path: str, inclusive: bool) -> list[tuple[int, str]]:
    out = subprocess.run(
        ["callgrind_annotate", f"--inclusive={'yes' if inclusive else 'no'}", "--threshold=100", path],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    rows = []
    for line in out.splitlines():
        m = re.match(r"^\s*([\d,]+)\s+(?:\(\s*[\d.]+%\)\s+)?(\S.*)$", line)
        if not m or ":" not in m.group(2):
            continue
        name = m.group(2)
        if "PROGRAM TOTALS" in name:
            continue
        # "file:function [object]" -> function
        name = re.sub(r"\s+\[[^\]]*\]$", "", name)
        name = name.split(":", 1)[1] if not name.startswith("0x") else name
        rows.append((int(m.group(1).replace(",", "")), name))
    return rows


def total_ir(path: str) -> int:
    with open(path) as f:
        for line in f:
            if line.startswith("totals:") or line.startswith("summary:"):
                return int(line.split()[1])
    raise RuntimeError(f"no totals in {path}")


def short(name: str) -> str:
    """Rust symbols: drop the hash suffix and long paths."""
    if re.fullmatch(r"0x[0-9a-f]+", name):
        return name + " (no symbol: a static function of redis-server, e.g. the Lua VM's)"
    name = re.sub(r"::h[0-9a-f]{16}$", "", name)
    name = re.sub(r"<([a-z_]+::)+", "<", name)
    return name if len(name) <= 90 else name[:87] + "..."


def send(r, cmds) -> float:
    t0 = time.time()
    for i in range(0, len(cmds), BATCH):
        p = r.pipeline(transaction=False)
        for c in cmds[i : i + BATCH]:
            p.execute_command(*c)
        p.execute(raise_on_error=True)
    return time.time() - t0


def profile(module: str, N: int, top: int, keep: bool):
    """Every path against `module`: (results, idle instructions/s, what the paths did)."""
    workdir = tempfile.mkdtemp(prefix="lottery-profile-")
    log(f"redis-server under callgrind with {shown(module)} in {workdir}")
    srv = Profiled(workdir, module)
    r = srv.r
    results = []
    try:
        # Idle cost: what the server does per second with nothing to do (serverCron, epoll).
        srv.zero()
        t0 = time.time()
        time.sleep(3)
        idle = total_ir(srv.dump("idle")) / (time.time() - t0)
        log(f"idle: {idle:,.0f} instructions/s")

        # Setup of every path, outside the measured windows.
        r.execute_command("LOTTERY.CONFIGURE", "sale", "PRIZE", "voucher", 1, STOCK)
        r.execute_command("LOTTERY.CONFIGURE", "lose", "PRIZE", "p", 0, STOCK, "NOTHING", 1, "COOLDOWN", 1000)
        r.execute_command("LOTTERY.CONFIGURE", "clicks", "PRIZE", "p", 1, STOCK, "NOTHING", 990, "COOLDOWN", 600_000, "MAXWINS", "INF")
        send(r, [("LOTTERY.DRAW", "clicks", f"u:{i}") for i in range(1000)])
        r.set("seckill:stock:1", STOCK)
        with open(SECKILL_LUA) as f:
            peer_sha = r.script_load(f.read())
        lua = setup_lua.setup(r, "prof", [(f"p{i}", 1, STOCK) for i in range(10)], nothing=990,
                              cooldown=1000, daily=None, maxwins=1)
        order = order_id_base()
        base = 10**11
        paths = [
            ("win", "LOTTERY.DRAW, every draw a WIN (new buyer, MAXWINS 1, NOTHING 0)",
             [("LOTTERY.DRAW", "sale", str(base + i)) for i in range(N)]),
            ("rejected", "LOTTERY.DRAW, repeat click refused by COOLDOWN (1,000 users)",
             [("LOTTERY.DRAW", "clicks", f"u:{i % 1000}") for i in range(N)]),
            ("lose", "LOTTERY.DRAW, every draw a LOSE (new user)",
             [("LOTTERY.DRAW", "lose", f"u:{i}") for i in range(N)]),
            ("INCR", "INCR k:<new key>", [("INCR", f"k:{i}") for i in range(N)]),
            ("peer", "EVALSHA bench/hmdp_seckill.lua, every call sells (new buyer)",
             [("EVALSHA", peer_sha, 0, "1", str(base + i), str(order + i)) for i in range(N)]),
            ("lua-draw", "EVALSHA bench/draw.lua (~1% wins, new user)",
             [tuple(lua.evalsha_args(f"u:{i}")) for i in range(N)]),
        ]  # fmt: skip
        try:
            r.execute_command("LOTTERY.CONFIGURE", "rules", "PRIZE", "p", 0, STOCK, "PRIZE", "q", 0,
                              STOCK, "AFTER", 5, "NOTHING", 1, "COOLDOWN", 1000, "GUARANTEE",
                              1_000_000, "TOTAL", 1000, "TIER", "vip", "NOTHING", 2)
            r.execute_command("LOTTERY.CONFIGURE", "codes", "PRIZE", "card", 1, "CODES")
            for i in range(0, N, 1000):
                r.execute_command("LOTTERY.CODES", "codes", "card", "ADD",
                                  *[f"CARD-{j:012d}" for j in range(i, min(N, i + 1000))])
            paths += [
                ("rules-lose", "LOTTERY.DRAW ... TIER vip, every draw a LOSE (GUARANTEE, AFTER, "
                 "TOTAL, a tier; new user)",
                 [("LOTTERY.DRAW", "rules", f"u:{i}", "TIER", "vip") for i in range(N)]),
                ("code-win", "LOTTERY.DRAW, every draw a WIN of a code prize (new buyer)",
                 [("LOTTERY.DRAW", "codes", str(base + i)) for i in range(N)]),
            ]
        except redis.ResponseError:
            log("this build has no campaign rules: rules-lose and code-win left out")
        for name, desc, cmds in paths:
            srv.zero()
            t0 = time.time()
            dt = send(r, cmds)
            path = srv.dump(name)
            el = time.time() - t0
            tot = total_ir(path)
            per = (tot - idle * el) / N
            incl = annotate(path, True)
            self_rows = annotate(path, False)
            inc_map: dict[str, int] = {}
            for v, fn in incl:
                inc_map[fn] = max(inc_map.get(fn, 0), v)
            call_ir = inc_map.get("call", 0)
            in_call = call_ir / N

            def probe(fn: str) -> int:
                if "::" in fn or fn == "commit_draw":
                    return max((v for f, v in inc_map.items() if fn in f), default=0)
                return inc_map.get(fn, 0)

            log(f"{name:9s}: {per:,.0f} instructions/command, {in_call:,.0f} in call() ({dt:.1f} s)")
            results.append({
                "name": name, "desc": desc, "per": per, "in_call": in_call, "tot": tot, "el": el,
                # below call(): what the command itself spends (frames above it are the loop)
                "incl": [(v / N, fn) for v, fn in incl if v < call_ir and fn not in GENERIC][:top],
                # the frames still on the stack at --zero show up with the whole window as
                # "self": left out
                "self": [(v / N, fn) for v, fn in self_rows if v < 0.5 * tot][:top],
                "probes": [(label, probe(fn) / N) for fn, label in PROBES if probe(fn)],
            })  # fmt: skip
        # The replies, checked after the windows: the stats say what each path did.
        st = {k: dict(zip(*[iter(r.execute_command("LOTTERY.STATS", k))] * 2)) for k in ("sale", "clicks", "lose")}
        checks = (
            f"sale: {int(st['sale'][b'wins']):,} wins; clicks: {int(st['clicks'][b'rejected_cooldown']):,} "
            f"COOLDOWN; lose: {int(st['lose'][b'losses']):,} losses; peer: "
            f"{r.scard('seckill:order:1'):,} sold, stream.orders {r.xlen('stream.orders'):,} entries"
        )
        log(checks)
    finally:
        srv.stop()
        if keep:
            log(f"callgrind files kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)

    return results, idle, checks


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-n", type=int, default=20_000, help="commands per path (default 20000)")
    ap.add_argument("--top", type=int, default=12, help="functions listed per path (default 12)")
    ap.add_argument("--out", default=os.path.join(HERE, "results-profile.md"), help="markdown output")
    ap.add_argument("--keep", action="store_true", help="keep the callgrind files (their directory is printed)")
    ap.add_argument("--before", metavar="SO", help="also profile this build of the module (an earlier commit's "
                    "liblottery.so) in the same run, and show both side by side")
    ap.add_argument("--before-label", default="before", help="what to call the --before build in the output")
    a = ap.parse_args()
    a.before = a.before and os.path.abspath(a.before)
    for tool in ("valgrind", "callgrind_control", "callgrind_annotate", "redis-server"):
        if shutil.which(tool) is None:
            sys.exit(f"profile.py: {tool} not found")
    for so in [MODULE] + ([a.before] if a.before else []):
        if not os.path.exists(so):
            sys.exit(f"profile.py: {so} not found: build it first (make build)")
    N = a.n
    t_start = time.time()
    before = profile(a.before, N, a.top, a.keep) if a.before else None
    results, idle, checks = profile(MODULE, N, a.top, a.keep)
    ver = subprocess.run(["redis-server", "--version"], capture_output=True, text=True).stdout.strip()
    vg = subprocess.run(["valgrind", "--version"], capture_output=True, text=True).stdout.strip()
    head = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    base_incr = next(x for x in results if x["name"] == "INCR")
    out = [
        "# redis-lottery: instructions per command, per path (callgrind)",
        "",
        f"- date: {datetime.datetime.now().astimezone().isoformat(timespec='seconds')}",
        f"- {ver}; {vg}; module {os.path.relpath(MODULE, ROOT)} at git commit {head}"
        + (f"; '{a.before_label}': {shown(a.before)}" if a.before else ""),
        f"- run: bench/profile.py {' '.join(sys.argv[1:]) or '(defaults)'}: {N:,} commands per path, "
        f"pipelines of {BATCH} from redis-py; idle server {idle:,.0f} instructions/s subtracted; "
        f"total time {time.time() - t_start:.0f} s",
        f"- what each path did (LOTTERY.STATS / keys afterwards): {checks}",
        "",
        "| path | what | instructions / command | in call() | vs INCR |",
        "|---|---|---|---|---|",
    ]
    for x in results:
        out.append(
            f"| {x['name']} | {x['desc']} | {x['per']:,.0f} | {x['in_call']:,.0f} | "
            f"{x['per'] / base_incr['per']:.2f}x |"
        )
    if before:
        old = {x["name"]: x for x in before[0]}
        old_incr = old["INCR"]["per"]
        lb = a.before_label
        out += [
            "",
            f"Before and after, same run ('{lb}' = {shown(a.before)}; instructions per command, "
            "and in call(); each next to INCR's of its own server):",
            "",
            f"| path | {lb} | now | change | {lb} in call() | now in call() | {lb} vs INCR | now vs INCR |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for x in results:
            o = old.get(x["name"])
            if not o:
                continue
            out.append(
                f"| {x['name']} | {o['per']:,.0f} | {x['per']:,.0f} | {(x['per'] / o['per'] - 1) * 100:+.0f}% | "
                f"{o['in_call']:,.0f} | {x['in_call']:,.0f} | {o['per'] / old_incr:.2f}x | "
                f"{x['per'] / base_incr['per']:.2f}x |"
            )
    out += [
        "",
        "'instructions / command': everything the server ran in the window (event loop, request "
        "parsing, the command, replies), minus the idle server's rate, / N. 'in call()': the "
        "inclusive cost of Redis's call() (the command and its propagation).",
        "",
    ]
    for x in results:
        out += [f"## {x['name']}: {x['desc']}", ""]
        if x["probes"] and before:
            o = {label: v for label, v in next((y["probes"] for y in before[0] if y["name"] == x["name"]), [])}
            labels = [label for label, _ in x["probes"]] + [label for label in o if label not in dict(x["probes"])]
            now = dict(x["probes"])
            out += [f"Named costs (inclusive, instructions per command), {a.before_label} and now:", ""]
            out += [f"| function | {a.before_label} | now |", "|---|---|---|"]
            out += [f"| {label} | {o.get(label, 0):,.0f} | {now.get(label, 0):,.0f} |" for label in labels]
            out.append("")
        elif x["probes"]:
            out += ["Named costs (inclusive, instructions per command):", ""]
            out += ["| function | instructions / command |", "|---|---|"]
            out += [f"| {label} | {v:,.0f} |" for label, v in x["probes"]]
            out.append("")
        out += ["| top inclusive (below call()) | instr. / cmd | top self (whole window) | instr. / cmd |", "|---|---|---|---|"]
        for i in range(max(len(x["incl"]), len(x["self"]))):
            a_ = x["incl"][i] if i < len(x["incl"]) else (None, "")
            b_ = x["self"][i] if i < len(x["self"]) else (None, "")
            fa = f"{a_[0]:,.0f}" if a_[0] is not None else ""
            fb = f"{b_[0]:,.0f}" if b_[0] is not None else ""
            out.append(f"| `{short(a_[1])}` | {fa} | `{short(b_[1])}` | {fb} |")
        out.append("")
    text = "\n".join(out)
    print(text)
    with open(a.out, "w") as f:
        f.write(text)
    log(f"written to {os.path.relpath(a.out)}")


if __name__ == "__main__":
    main()
