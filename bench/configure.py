#!/usr/bin/env python3
"""LOTTERY.CONFIGURE on a full prize table (65,536 prizes), next to baselines of the same size
measured in the same run, on the same server.

    make bench-configure                        # into bench/results-configure.md
    .venv/bin/python bench/configure.py --help
    .venv/bin/python bench/configure.py --before /path/to/older/liblottery.so \
        --before-label "commit abc1234" --before-reps 1

It builds nothing (the Makefile target builds the module first). It starts its own
redis-server on a free port (--save '' --appendonly no, the module loaded) and stops it at the
end. Cases, each repeated --reps times (median reported):

  create      CONFIGURE on a missing key with the full table (the key is deleted first)
  no-op       CONFIGURE camp NOTHING 5 on that campaign (the table is left as it is)
  same table  CONFIGURE camp with the very table it has
  all-new     CONFIGURE camp with a table of all-new ids (the campaign is created afresh
              before each repetition, untimed, so it never nears the limit on distinct ids)

Baselines: HSET of a 65,536-field hash (after DEL: the same number of id/value pairs) and SET
of a string as large as the whole CONFIGURE command. Every command is sent pre-encoded over a
plain socket, so the client's own encoding is not timed; "round trip" is from the first byte
sent to the reply, "server" the command's own time from INFO commandstats.

With --before MODULE, the cases also run on a second server with that module (for a
before/after comparison in one run); --before-reps repetitions there (slow modules).
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import socket
import statistics
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True  # no bench/__pycache__

import run  # noqa: E402  (Server, machine facts, formatting)

N = 65_536
CAMP = "camp:{cfg}"


def resp(args: list) -> bytes:
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        b = a if isinstance(a, bytes) else str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(b), b))
    return b"".join(out)


def table(prefix: str, n: int) -> list:
    args = []
    for i in range(n):
        args += ["PRIZE", f"{prefix}{i}", 1 + i % 7, 1000]
    return args


class Conn:
    """One plain socket: sends a pre-encoded command, reads one reply line."""

    def __init__(self, port: int):
        self.s = socket.create_connection(("127.0.0.1", port))
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def call(self, payload: bytes) -> tuple[bytes, float]:
        t0 = time.perf_counter()
        self.s.sendall(payload)
        while b"\r\n" not in self.buf:
            chunk = self.s.recv(65536)
            if not chunk:
                raise RuntimeError("server closed the connection")
            self.buf += chunk
        dt = time.perf_counter() - t0
        line, self.buf = self.buf.split(b"\r\n", 1)
        if line.startswith(b"-"):
            raise RuntimeError(f"error reply: {line.decode(errors='replace')}")
        return line, dt


def server_usec(r, cmd: str) -> tuple[int, int]:
    st = r.info("commandstats").get(f"cmdstat_{cmd}", {})
    return int(st.get("calls", 0)), int(st.get("usec", 0))


def cpu_ns(pid: int) -> int:
    """CPU time the server's main thread has run (ns): unlike wall time, it hardly moves when
    other processes share the cores."""
    with open(f"/proc/{pid}/task/{pid}/schedstat") as f:
        return int(f.read().split()[0])


def timed(srv, conn: Conn, payload: bytes, cmd: str) -> tuple[float, float, float]:
    """(round trip ms, server ms, server CPU ms) of one command."""
    c0, u0 = server_usec(srv.r, cmd)
    t0 = cpu_ns(srv.proc.pid)
    _, dt = conn.call(payload)
    t1 = cpu_ns(srv.proc.pid)
    c1, u1 = server_usec(srv.r, cmd)
    assert c1 == c0 + 1, (cmd, c0, c1)
    return dt * 1000, (u1 - u0) / 1000, (t1 - t0) / 1e6


def measure(srv, reps: int, with_baselines: bool) -> dict[str, tuple[float, float, float]]:
    conn = Conn(srv.port)
    a = resp(["LOTTERY.CONFIGURE", CAMP, *table("p", N)])
    noop = resp(["LOTTERY.CONFIGURE", CAMP, "NOTHING", 5])
    dele = resp(["DEL", CAMP])
    res: dict[str, list[tuple[float, float, float]]] = {}

    def add(name, v):
        res.setdefault(name, []).append(v)

    for rep in range(reps):
        run.log(f"  repetition {rep + 1}/{reps}")
        conn.call(dele)
        add("create", timed(srv, conn, a, "lottery.configure"))
        add("no-op (NOTHING 5)", timed(srv, conn, noop, "lottery.configure"))
        add("same table", timed(srv, conn, a, "lottery.configure"))
        new = resp(["LOTTERY.CONFIGURE", CAMP, *table(f"n{rep}-", N)])
        add("all-new table", timed(srv, conn, new, "lottery.configure"))
        # Correctness at a glance: the table has its 65,536 prizes, all new, the old retired.
        stats = srv.r.execute_command("LOTTERY.STATS", CAMP)
        d = dict(zip(stats[::2], stats[1::2]))
        prizes = d[b"prizes"]
        assert len(prizes) == N and prizes[0][0] == f"n{rep}-0".encode(), "unexpected table"
        assert int(d[b"nothing_weight"]) == 5
        if with_baselines:
            h = resp(["HSET", "h:{cfg}", *[x for i in range(N) for x in (f"p{i}", 1000)]])
            conn.call(resp(["DEL", "h:{cfg}"]))
            add("baseline: HSET of 65,536 fields (new hash)", timed(srv, conn, h, "hset"))
            h2 = resp(["HSET", "h:{cfg}", *[x for i in range(2 * N) for x in (f"p{i}", 1000)]])
            conn.call(resp(["DEL", "h:{cfg}"]))
            add("baseline: HSET of 131,072 fields (as many arguments)", timed(srv, conn, h2, "hset"))
            conn.call(resp(["DEL", "h:{cfg}"]))
            s = resp(["SET", "s:{cfg}", b"x" * len(a)])
            add(f"baseline: SET of a {len(a) // 1024} KiB string", timed(srv, conn, s, "set"))
    conn.call(dele)
    return {k: tuple(statistics.median(x[j] for x in v) for j in range(3)) for k, v in res.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=7, help="repetitions per case, the median is reported (default 7)")
    ap.add_argument("--before", help="also run the cases on a server with this module (e.g. an older build)")
    ap.add_argument("--before-reps", type=int, default=1, help="repetitions with --before (default 1)")
    ap.add_argument("--before-label", help="what the --before module is, for the results (default: its file name)")
    ap.add_argument("--rng", default="chacha", choices=["chacha", "xoshiro"], help="the module's rng load option")
    ap.add_argument("--out", default=os.path.join(HERE, "results-configure.md"), help="markdown output")
    a = ap.parse_args()
    if shutil.which("redis-server") is None:
        sys.exit("configure.py: redis-server not found (make deps installs redis)")
    if not os.path.exists(run.MODULE):
        sys.exit(f"configure.py: {run.MODULE} not found: build it first (make build)")
    if a.before and not os.path.exists(a.before):
        sys.exit(f"configure.py: {a.before} not found")

    a.pin = False
    facts = run.machine_facts(a)
    shown = ["<before module>" if x == a.before else x for x in sys.argv[1:]]
    facts[-1] = f"- run: bench/configure.py {shlex.join(shown)}".rstrip()
    if a.before:
        facts.append(f"- before module: {a.before_label or os.path.basename(a.before)}")
    for f in facts:
        run.log(f[2:])
    work = tempfile.mkdtemp(prefix="lottery-bench-configure-")
    t0 = time.time()
    try:
        srv = run.Server("configure", work, a.rng, None)
        run.log(f"started redis-server on port {srv.port}; {a.reps} repetitions")
        try:
            after = measure(srv, a.reps, True)
        finally:
            srv.stop()
        before = None
        if a.before:
            module = run.MODULE
            run.MODULE = a.before  # Server reads it when it starts
            try:
                old = run.Server("before", work, a.rng, None)
            finally:
                run.MODULE = module
            run.log(f"started redis-server with {a.before}; {a.before_reps} repetition(s)")
            try:
                before = measure(old, a.before_reps, False)
            finally:
                old.stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)

    base = after["baseline: HSET of 65,536 fields (new hash)"]
    lines = [
        "# LOTTERY.CONFIGURE on 65,536 prizes",
        "",
        "From `make bench-configure` (`bench/configure.py`); medians of the repetitions, in ms.",
        "\"server\": the command's own time (INFO commandstats, wall clock); \"CPU\": the CPU time",
        "the server's main thread ran meanwhile (/proc schedstat: it hardly moves when other",
        "processes share the cores, so it is the figure to read on a busy machine); \"round",
        "trip\": from sending the pre-encoded command to its reply. Ratios: against the HSET of",
        "65,536 fields (as many id/value pairs, into a new hash), server and CPU time.",
        "",
        *facts,
        f"- repetitions: {a.reps}" + (f" ({a.before_reps} with the older module)" if before else ""),
        f"- elapsed: {time.time() - t0:.0f} s",
        "",
    ]
    head = "| case | server ms | CPU ms | round trip ms | server / HSET | CPU / HSET |"
    sep = "| --- | ---: | ---: | ---: | ---: | ---: |"
    if before:
        head += " before: server ms | before: CPU ms |"
        sep += " ---: | ---: |"
    lines += [head, sep]
    for name, (rt, sv, cpu) in after.items():
        row = f"| {name} | {sv:.2f} | {cpu:.2f} | {rt:.2f} | {sv / base[1]:.2f} | {cpu / base[2]:.2f} |"
        if before:
            b = before.get(name)
            row += f" {b[1]:.1f} | {b[2]:.1f} |" if b else " | |"
        lines.append(row)
    lines += [
        "",
        "Goal: every CONFIGURE case well under 100 ms, its cost linear in the table like the",
        "baselines'; the ratios are what to compare across machines.",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    with open(a.out, "w") as f:
        f.write(text)
    run.log(f"wrote {os.path.relpath(a.out, ROOT)}")


if __name__ == "__main__":
    main()
