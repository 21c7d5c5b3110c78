#!/usr/bin/env python3
"""One campaign on 1 shard vs 3 shards of a Redis Cluster, next to INCR on the same cluster.

    make bench-cluster                         # about 2 minutes
    .venv/bin/python bench/cluster.py --help

It starts a 3-master cluster (no replicas; `--cluster-enabled yes`, the module loaded on every
node, `redis-cli --cluster create`), then measures, with the same load generators each time:

  1 shard   one campaign key on master 0 (its wins stream in the same slot); every load
            generator sends LOTTERY.DRAW to it
  3 shards  the campaign split in 3 keys whose hash tags put one on each master (as
            `lottery-shards create` lays them out); load generator i sends to shard i
  baseline  the same with INCR on one key per shard: what the cluster can do at all

Load: G redis-benchmark processes (default 3) at once, each -c C -P P for about S seconds, with
random users u:__rand_int__. A real client routes each user to its shard by the campaign's
hash (routing/); redis-benchmark cannot, so each generator draws random users on its own
shard. Per-shard work is the same (one user lookup, one pick); only routing is skipped, and
routing costs the client, not the server.

On a machine with fewer cores than servers + generators, the shards share cores with each
other and with the generators: the 3-shard figure then measures the machine, not the design.
The report says how many cores there were. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "python-tests"))
sys.dont_write_bytecode = True

import run as base  # noqa: E402  (Server, redis_benchmark, formatting)
from cluster_helpers import cluster_port  # noqa: E402  (a port whose bus port is free too)
from lottery_helpers import key_slot  # noqa: E402

STOCK = 10**12


def log(msg: str) -> None:
    base.log(msg)


class Cluster:
    def __init__(self, workdir: str, masters: int, rng: str):
        self.nodes = []
        try:
            self._start(workdir, masters, rng)
        except BaseException:
            self.close()  # no servers left behind when the cluster cannot be formed
            raise

    def _start(self, workdir: str, masters: int, rng: str) -> None:
        for i in range(masters):
            self.nodes.append(
                base.Server(
                    f"node{i}",
                    workdir,
                    rng,
                    None,
                    extra=("--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"),
                    port=cluster_port(),
                )
            )
        addrs = [f"127.0.0.1:{n.port}" for n in self.nodes]
        out = subprocess.run(
            ["redis-cli", "--cluster", "create", *addrs, "--cluster-yes"],
            capture_output=True,
            text=True,
            timeout=120,
        )
        if out.returncode != 0:
            raise RuntimeError(f"redis-cli --cluster create failed:\n{out.stdout}\n{out.stderr}")
        deadline = time.time() + 60
        while time.time() < deadline:
            if all(n.r.cluster("info")["cluster_state"] == "ok" for n in self.nodes):
                break
            time.sleep(0.1)
        else:
            raise RuntimeError("cluster did not reach cluster_state:ok")
        # slot -> node index
        self.owner = {}
        for lo, hi, master, *_ in self.nodes[0].r.execute_command("CLUSTER", "SLOTS"):
            port = int(master[1])
            idx = next(i for i, n in enumerate(self.nodes) if n.port == port)
            for s in range(int(lo), int(hi) + 1):
                self.owner[s] = idx

    def tag_on(self, name: str, i: int, node: int) -> str:
        """`{name.i}`, or the first `{name.i.k}` whose slot is on `node`."""
        k = 0
        while True:
            tag = f"{name}.{i}" if k == 0 else f"{name}.{i}.{k}"
            if self.owner[key_slot("{" + tag + "}")] == node:
                return "{" + tag + "}"
            k += 1

    def close(self) -> None:
        for n in self.nodes:
            n.stop()


def parallel_benchmark(jobs, n: int, c: int, P: int) -> dict:
    """Runs redis-benchmark jobs [(port, args)] at once; total ops/s = all ops / longest wall."""
    results = [None] * len(jobs)

    def one(i, port, args):
        results[i] = base.redis_benchmark(port, args, n, c, P, None)

    t0 = time.time()
    threads = [threading.Thread(target=one, args=(i, p, a)) for i, (p, a) in enumerate(jobs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.time() - t0
    p99 = max(r["p99"] for r in results)
    return {"rps": n * len(jobs) / wall, "p99": p99, "each": [r["rps"] for r in results]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--generators", type=int, default=3, help="redis-benchmark processes at once (default 3)")
    ap.add_argument("--conns", type=int, default=50, help="connections per generator (default 50)")
    ap.add_argument("--pipelines", default="1,16", help="pipeline depths to run (default 1,16)")
    ap.add_argument("--seconds", type=float, default=4.0, help="target seconds per run (default 4)")
    ap.add_argument("--repeat", type=int, default=3, help="runs per figure; the median is reported (default 3)")
    ap.add_argument("--rng", default="chacha", choices=["chacha", "xoshiro"])
    ap.add_argument("--out", default=os.path.join(HERE, "cluster-results.md"))
    a = ap.parse_args()
    for tool in ("redis-server", "redis-benchmark", "redis-cli"):
        if shutil.which(tool) is None:
            sys.exit(f"cluster.py: {tool} not found (make deps installs redis)")
    if not os.path.exists(base.MODULE):
        sys.exit(f"cluster.py: {base.MODULE} not found: build it first (make build)")

    facts = [
        f if not f.startswith("- run:") else f"- run: bench/cluster.py {' '.join(sys.argv[1:])}".rstrip()
        for f in base.machine_facts(argparse.Namespace(rng=a.rng))
    ]
    t_start = time.time()
    work = tempfile.mkdtemp(prefix="lottery-cluster-bench-")
    cl = Cluster(work, 3, a.rng)
    rows = []
    try:
        one = cl.tag_on("bench1", 0, 0)
        three = [cl.tag_on("bench3", i, i) for i in range(3)]
        for key, node in [(one, 0)] + [(k, i) for i, k in enumerate(three)]:
            cl.nodes[node].r.execute_command(
                "LOTTERY.CONFIGURE", key, *sum([["PRIZE", f"p{j}", 1, STOCK] for j in range(10)], []),
                "NOTHING", 990, "COOLDOWN", 1000,
            )  # fmt: skip
        G = a.generators
        layouts = {
            "1 shard": [(cl.nodes[0].port, one)] * G,
            "3 shards": [(cl.nodes[i % 3].port, three[i % 3]) for i in range(G)],
        }
        for P in [int(x) for x in a.pipelines.split(",")]:
            for what in ("INCR", "DRAW"):
                figs = {}
                for layout, targets in layouts.items():
                    if what == "INCR":
                        jobs = [(p, ["INCR", f"{k}:n:__rand_int__"]) for p, k in targets]
                    else:
                        jobs = [(p, ["LOTTERY.DRAW", k, "u:__rand_int__"]) for p, k in targets]
                    probe = parallel_benchmark(jobs, 20_000, a.conns, P)
                    n = max(20_000, int(probe["rps"] / len(jobs) * a.seconds))
                    runs = []
                    for _ in range(a.repeat):
                        runs.append(parallel_benchmark(jobs, n, a.conns, P))
                    runs.sort(key=lambda r: r["rps"])
                    figs[layout] = runs[len(runs) // 2]
                    log(f"{what} P{P} {layout}: {base.fmt_int(figs[layout]['rps'])} ops/s "
                        f"(per generator {', '.join(base.fmt_int(x) for x in figs[layout]['each'])})")
                rows.append((what, P, figs))
    finally:
        cl.close()
        shutil.rmtree(work, ignore_errors=True)

    by = {(w, P): f for w, P, f in rows}
    lines = [
        "# redis-lottery on Redis Cluster: one campaign on 1 vs 3 shards",
        "",
        *facts,
        f"- load: {a.generators} redis-benchmark processes at once, -c {a.conns} each, random users; "
        f"median of {a.repeat} runs of about {a.seconds:g} s",
        f"- total time: {time.time() - t_start:.0f} s",
        "",
        "| command, pipeline | 1 shard ops/s | 3 shards ops/s | 3 vs 1 | worst p99 ms (1 / 3) |",
        "|---|---|---|---|---|",
    ]
    for (w, P), f in by.items():
        o, t = f["1 shard"], f["3 shards"]
        lines.append(
            f"| {w} P{P} | {base.fmt_int(o['rps'])} | {base.fmt_int(t['rps'])} | "
            f"{t['rps'] / o['rps']:.2f}x | {o['p99']:.3f} / {t['p99']:.3f} |"
        )
    lines.append("")
    for P in sorted({P for _, P in by}):
        if ("DRAW", P) in by and ("INCR", P) in by:
            d, i = by[("DRAW", P)], by[("INCR", P)]
            lines.append(
                f"- P{P}: DRAW/INCR on 1 shard {d['1 shard']['rps'] / i['1 shard']['rps']:.2f}x, "
                f"on 3 shards {d['3 shards']['rps'] / i['3 shards']['rps']:.2f}x; "
                f"INCR itself scales {i['3 shards']['rps'] / i['1 shard']['rps']:.2f}x from 1 to 3 masters here."
            )
    cores = os.cpu_count() or 0
    lines.append(
        f"- This machine has {cores} cores for 3 redis-servers and {a.generators} load generators: "
        "whatever INCR gains from 1 to 3 masters is the most any command can gain here."
    )
    text = "\n".join(lines) + "\n"
    print(text, end="")
    with open(a.out, "w") as f:
        f.write(text)
    log(f"written to {os.path.relpath(a.out)}")


if __name__ == "__main__":
    main()
