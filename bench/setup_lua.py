"""Loads the Lua baseline (bench/draw.lua): writes a campaign as plain Redis hashes and
SCRIPT LOADs the draw script. Used by bench/run.py; also usable on its own:

    .venv/bin/python bench/setup_lua.py --port 6379 --prizes 10 --nothing 990

prints the EVALSHA command line to draw with (the user id goes last).
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT_PATH = os.path.join(HERE, "draw.lua")


def alias_table(weights: list[int]) -> tuple[list[int], list[int], int]:
    """The integer alias table the module builds (Vose's method in integers): n columns,
    each holding mass W split between its own entry (keep[c]) and one alias. Entry i gets
    exactly w_i * n of the n * W (column, number) pairs."""
    n = len(weights)
    total = sum(weights)
    if n == 0 or total == 0:
        raise ValueError("all weights are zero")
    mass = [w * n for w in weights]
    keep = [total] * n
    alias = list(range(n))
    small = [i for i, m in enumerate(mass) if m < total]
    large = [i for i, m in enumerate(mass) if m >= total]
    while small and large:
        s = small.pop()
        l = large[-1]
        keep[s] = mass[s]
        alias[s] = l
        mass[l] -= total - mass[s]
        if mass[l] < total:
            large.pop()
            small.append(l)
    return keep, alias, total


@dataclass
class LuaCampaign:
    sha: str
    keys: list[str]
    prefix: str

    def evalsha_args(self, user: str) -> list[str]:
        return ["EVALSHA", self.sha, str(len(self.keys)), *self.keys, user]


def campaign_keys(tag: str) -> tuple[list[str], str]:
    """KEYS 1..7 and the per-user key prefix, all under the hash tag `{tag}`."""
    t = "{" + tag + "}"
    names = ["cfg", "table", "stock", "sold", "winners", "wins", "counters"]
    return [f"{t}:{n}" for n in names], f"{t}:"


def setup(
    r,
    tag: str,
    prizes: list[tuple[str, int, int | None]],
    nothing: int = 0,
    cooldown: int = 0,
    daily: int | None = None,
    maxwins: int | None = 1,
    dayoffset: int = 0,
) -> LuaCampaign:
    """Writes the campaign hashes (replacing any earlier ones under the same tag) and loads
    the script. `prizes`: (id, weight, stock or None for INF). `daily`/`maxwins`: None = INF.
    `r` is a redis-py client."""
    if maxwins not in (None, 0, 1):
        raise ValueError("the Lua baseline supports MAXWINS 0, 1 or INF")
    keys, prefix = campaign_keys(tag)
    cfg, table, stock, sold = keys[0], keys[1], keys[2], keys[3]
    weights = [w for _, w, _ in prizes] + [nothing]
    keep, alias, total = alias_table(weights)
    r.delete(*keys)
    r.hset(
        cfg,
        mapping={
            "n": len(prizes),
            "total": total,
            "cooldown": cooldown,
            "daily": -1 if daily is None else daily,
            "maxwins": -1 if maxwins is None else maxwins,
            "dayoffset": dayoffset,
            "prefix": prefix,
        },
    )
    fields: dict[str, object] = {}
    for c in range(len(weights)):
        fields[f"k{c}"] = keep[c]
        fields[f"a{c}"] = alias[c]
    stocks: dict[str, int] = {}
    for e, (pid, _, st) in enumerate(prizes):
        fields[f"i{e}"] = pid
        if st is None:
            fields[f"f{e}"] = "inf"
        else:
            stocks[pid] = st
    pipe = r.pipeline(transaction=False)
    items = list(fields.items())
    for i in range(0, len(items), 10000):
        pipe.hset(table, mapping=dict(items[i : i + 10000]))
    srt = list(stocks.items())
    for i in range(0, len(srt), 10000):
        pipe.hset(stock, mapping=dict(srt[i : i + 10000]))
    pipe.execute()
    with open(SCRIPT_PATH, "rb") as f:
        sha = r.script_load(f.read())
    return LuaCampaign(sha=sha, keys=keys, prefix=prefix)


def main() -> None:
    import redis

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=6379)
    ap.add_argument("--tag", default="bench")
    ap.add_argument("--prizes", type=int, default=10, help="prizes p0..pN-1, weight 1 each")
    ap.add_argument("--stock", default="1000000000000", help="stock of each prize, or INF")
    ap.add_argument("--nothing", type=int, default=990)
    ap.add_argument("--cooldown", type=int, default=0)
    ap.add_argument("--daily", default="INF")
    ap.add_argument("--maxwins", default="1")
    a = ap.parse_args()
    inf = lambda s: None if str(s).upper() == "INF" else int(s)  # noqa: E731
    r = redis.Redis(host=a.host, port=a.port)
    camp = setup(
        r,
        a.tag,
        [(f"p{i}", 1, inf(a.stock)) for i in range(a.prizes)],
        nothing=a.nothing,
        cooldown=a.cooldown,
        daily=inf(a.daily),
        maxwins=inf(a.maxwins),
    )
    print(" ".join(camp.evalsha_args("<user>")))


if __name__ == "__main__":
    main()
