#!/usr/bin/env python3
"""What a verifiable draw costs against an ordinary one, measured in the same run.

    make bench-verifiable                # about 2 minutes
    .venv/bin/python bench/verifiable.py --help

Three campaigns, identical but for VERIFIABLE: PRIZE p 1 <huge stock>, NOTHING 9 (about one
draw in ten wins), a new user every draw:

  ordinary      no VERIFIABLE
  verifiable    VERIFIABLE (LOG WINS: a `type draw` entry after every win's entry)
  log-all       VERIFIABLE LOG ALL (a `type draw` entry for every draw)

For each, N draws, and:
  - stream bytes per draw: MEMORY USAGE of the wins stream after / N
  - AOF bytes per draw: INFO persistence aof_current_size growth / N (what the AOF, and so
    the replication stream, carries: the effects and the replicated XADDs)
  - server time per draw: INFO commandstats usec_per_call of LOTTERY.DRAW
  - instructions per draw: redis-server under callgrind (skipped without valgrind), the whole
    window (event loop, parsing, the command, replies) / N, the idle server's rate subtracted,
    with INCR measured in the same server as the baseline

Writes bench/results-verifiable.md.
"""

from __future__ import annotations

import argparse
import datetime
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True

try:
    import redis  # noqa: E402
except ImportError:  # pragma: no cover
    sys.exit("verifiable.py needs redis-py: run it with the repo venv (make deps; .venv/bin/python)")

from profile import BATCH, Profiled, free_port, log, send, total_ir  # noqa: E402

MODULE = os.path.join(ROOT, "target", "release", "liblottery.so")
STOCK = 10**12
VARIANTS = [
    ("ordinary", []),
    ("verifiable", ["VERIFIABLE"]),
    ("log-all", ["VERIFIABLE", "LOG", "ALL"]),
]


def configure(r, name: str, extra: list) -> None:
    r.execute_command("LOTTERY.CONFIGURE", name, "PRIZE", "p", 1, STOCK, "NOTHING", 9,
                      "MAXWINS", "INF", *extra)  # fmt: skip


def stream_of(name: str) -> str:
    """The default wins stream of a key without a hash tag."""
    return "{" + name + "}:wins"


def draws(name: str, n: int, base: int) -> list[tuple]:
    return [("LOTTERY.DRAW", name, f"user:{base + i}") for i in range(n)]


def stats(r, key: str) -> dict:
    raw = r.execute_command("LOTTERY.STATS", key)
    return dict(zip(raw[0::2], raw[1::2]))


class Server:
    """redis-server with the module and the AOF on (RDB preamble off: the AOF is commands)."""

    def __init__(self, workdir: str):
        self.port = free_port()
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "yes", "--appendfsync", "no", "--aof-use-rdb-preamble", "no",
             "--dir", workdir, "--logfile", os.path.join(workdir, "redis.log"),
             "--loadmodule", MODULE],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        self.r = redis.Redis(port=self.port, socket_timeout=120)
        deadline = time.time() + 30
        while True:
            try:
                if self.r.ping():
                    break
            except redis.ConnectionError:
                pass
            if self.proc.poll() is not None or time.time() > deadline:
                raise RuntimeError(f"redis-server did not start (see {workdir}/redis.log)")
            time.sleep(0.05)
        # The AOF rewrite at start must be over before sizes are read.
        while int(self.r.info("persistence").get("aof_rewrite_in_progress", 0)):
            time.sleep(0.05)

    def aof_size(self) -> int:
        self.r.execute_command("PING")
        return int(self.r.info("persistence")["aof_current_size"])

    def stop(self) -> None:
        try:
            self.r.shutdown(nosave=True)
        except (redis.ConnectionError, redis.ResponseError):
            pass
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def measure_bytes(n: int) -> list[dict]:
    workdir = tempfile.mkdtemp(prefix="lottery-bench-verifiable-")
    srv = Server(workdir)
    r = srv.r
    out = []
    try:
        for i, (name, extra) in enumerate(VARIANTS):
            configure(r, name, extra)
            r.config_resetstat()
            aof0 = srv.aof_size()
            t0 = time.time()
            send(r, draws(name, n, i * 10**9))
            wall = time.time() - t0
            aof1 = srv.aof_size()
            st = stats(r, name)
            cs = r.info("commandstats").get("cmdstat_lottery.draw", {})
            stream = r.memory_usage(stream_of(name), samples=0) or 0
            entries = r.xlen(stream_of(name))
            row = {
                "name": name,
                "draws": int(st[b"draws"]),
                "wins": int(st[b"wins"]),
                "entries": entries,
                "stream_per_draw": stream / n,
                "aof_per_draw": (aof1 - aof0) / n,
                "usec": float(cs.get("usec_per_call", 0.0)),
                "wall_us": wall / n * 1e6,
            }
            if row["draws"] != n:
                raise RuntimeError(f"{name}: {row['draws']} draws counted, {n} sent")
            log(f"{name:10s}: {row['wins']:,} wins, {entries:,} stream entries, "
                f"stream {row['stream_per_draw']:.1f} B/draw, AOF {row['aof_per_draw']:.1f} B/draw, "
                f"{row['usec']:.2f} us/draw in the server")  # fmt: skip
            out.append(row)
    finally:
        srv.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    return out


def measure_instructions(n: int) -> dict | None:
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        log("valgrind not found: instructions per draw left out (apt-get install valgrind)")
        return None
    workdir = tempfile.mkdtemp(prefix="lottery-bench-verifiable-cg-")
    srv = Profiled(workdir, MODULE)
    r = srv.r
    out = {}
    try:
        srv.zero()
        t0 = time.time()
        time.sleep(2)
        idle = total_ir(srv.dump("idle")) / (time.time() - t0)
        for name, extra in VARIANTS:
            configure(r, name, extra)
        runs = [(name, draws(name, n, i * 10**9)) for i, (name, _) in enumerate(VARIANTS)]
        runs.append(("INCR", [("INCR", f"k:{i}") for i in range(n)]))
        for name, cmds in runs:
            srv.zero()
            t0 = time.time()
            send(r, cmds)
            path = srv.dump(name)
            out[name] = (total_ir(path) - idle * (time.time() - t0)) / n
            log(f"{name:10s}: {out[name]:,.0f} instructions per command")
    finally:
        srv.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-n", type=int, default=50_000, help="draws per campaign for bytes and time (default 50000)")
    ap.add_argument("--cg-n", type=int, default=10_000, help="draws per campaign under callgrind (default 10000)")
    ap.add_argument("--out", default=os.path.join(HERE, "results-verifiable.md"), help="markdown output")
    a = ap.parse_args()
    if not os.path.exists(MODULE):
        sys.exit(f"verifiable.py: {MODULE} not found: build it first (make build)")
    t_start = time.time()
    rows = measure_bytes(a.n)
    ir = measure_instructions(a.cg_n)
    base = rows[0]
    ver = subprocess.run(["redis-server", "--version"], capture_output=True, text=True).stdout.strip()
    head = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    lines = [
        "# redis-lottery: what a verifiable draw costs",
        "",
        f"- date: {datetime.datetime.now().astimezone().isoformat(timespec='seconds')}",
        f"- {ver}; module at git commit {head}; bench/verifiable.py {' '.join(sys.argv[1:]) or '(defaults)'}",
        f"- {a.n:,} draws per campaign (new users, pipelines of {BATCH}), PRIZE p 1, NOTHING 9; "
        f"total time {time.time() - t_start:.0f} s",
        "- the baseline, `ordinary`, is the same campaign without VERIFIABLE, measured in the same run",
        "",
        "| campaign | wins | stream entries | stream bytes / draw | AOF bytes / draw | server us / draw"
        + (" | instructions / draw" if ir else "") + " |",
        "|---|---|---|---|---|---" + ("|---" if ir else "") + "|",
    ]
    for x in rows:
        cells = [
            x["name"], f"{x['wins']:,}", f"{x['entries']:,}",
            f"{x['stream_per_draw']:.1f} ({x['stream_per_draw'] / max(base['stream_per_draw'], 1e-9):.2f}x)",
            f"{x['aof_per_draw']:.1f} ({x['aof_per_draw'] / max(base['aof_per_draw'], 1e-9):.2f}x)",
            f"{x['usec']:.2f} ({x['usec'] / max(base['usec'], 1e-9):.2f}x)",
        ]  # fmt: skip
        if ir:
            cells.append(f"{ir[x['name']]:,.0f} ({ir[x['name']] / ir['ordinary']:.2f}x)")
        lines.append("| " + " | ".join(cells) + " |")
    if ir:
        lines += [
            "",
            f"INCR in the same server: {ir['INCR']:,.0f} instructions per command; a verifiable draw "
            f"is {ir['verifiable'] / ir['INCR']:.2f}x INCR, an ordinary one {ir['ordinary'] / ir['INCR']:.2f}x.",
        ]
    lines += [
        "",
        "Ratios are against `ordinary`. The extra cost of a verifiable draw: the HMAC-SHA256 words "
        "(the seed's HMAC key states made once per epoch, then two SHA-256 compressions per word, one word for almost every draw), "
        "and, for each logged draw, one more stream entry appended and replicated as an XADD.",
        "",
    ]
    text = "\n".join(lines)
    print(text)
    with open(a.out, "w") as f:
        f.write(text)
    log(f"written to {os.path.relpath(a.out)}")


if __name__ == "__main__":
    main()
