#!/usr/bin/env python3
"""Reference verifier for redis-lottery's verifiable draws (docs/verifiable.md). Python 3.8+, redis-py.

  verify_draws.py redis://host:port CAMPAIGN_KEY [--stream S] [EPOCH=SEEDHEX ...]
  verify_draws.py --vectors        # prints docs/verify-vectors.json from the functions below

The wins stream defaults to the campaign's default one (`KEY:wins` if KEY has a non-empty hash
tag, else `{KEY}:wins`); give --stream for a campaign configured with STREAM. Exit 0: every check
passed; 1: a mismatch; 2: usage or connection error, or no epoch entry in the stream.
"""
import argparse, bisect, hashlib, hmac, itertools, json, os, re, sys


def words(seed, key, s):
    """w_k = first 8 bytes, big-endian, of HMAC-SHA256(seed, "redis-lottery/v1" 0 key 0 s 0 k)."""
    for k in itertools.count():
        msg = b"redis-lottery/v1\0" + key + b"\0" + str(s).encode() + b"\0" + str(k).encode()
        yield int.from_bytes(hmac.new(seed, msg, hashlib.sha256).digest()[:8], "big")


def below(ws, n):
    """Uniform in [0, n): the next word under floor(2^64 / n) * n, mod n."""
    return next(w % n for w in ws if w < (2**64 // n) * n)


def table_pick(ws, weights, prefix=None):
    """x = below(W), W the sum; the pick is the first entry i with x < w_0 + ... + w_i.
    W = 0 takes no word: (None, the last entry, NOTHING). prefix: the weights' prefix sums."""
    prefix = prefix or list(itertools.accumulate(weights))
    if prefix[-1] == 0:
        return None, len(weights) - 1
    x = below(ws, prefix[-1])
    return x, bisect.bisect_right(prefix, x)


def vectors():
    out = {"words": [], "uniform": [], "picks": []}
    seeds = [bytes(range(32)), hashlib.sha256(b"redis-lottery test seed").digest()]
    for seed, key, s in itertools.product(seeds, [b"camp", "抽奖:双十一".encode(), b"k\0\xff{tag}", b""],
                                          (1, 2, 1000, 2**64 - 1)):
        ws = words(seed, key, s)
        out["words"].append({"seed": seed.hex(), "key_hex": key.hex(), "draw": s,
                             "w": [str(next(ws)) for _ in range(4)]})
    seed, common = seeds[1], {"seed": seeds[1].hex(), "key_hex": b"camp".hex()}
    for n in (1, 2, 3, 10, 2**32 + 7, 2**63 + 1, 2**64 - 1):
        ws = words(seed, b"camp", 7)
        out["uniform"].append({**common, "draw": 7, "n": str(n), "first": str(below(ws, n)),
                               "second": str(below(ws, n))})
    for t in [[1, 1], [3, 0, 1, 4], [0, 0, 5], [4294967295, 1, 4294967295, 0, 3], [1, 999999]]:
        for s in range(1, 6):
            x, i = table_pick(words(seed, b"camp", s), t)
            out["picks"].append({**common, "draw": s, "weights": t, "x": str(x), "entry": i})
    return json.dumps(out, indent=1)


def entries(r, stream, last=b"+"):
    """Every (id, [field, value, ...]) of the stream up to `last`, in pages of 1000."""
    start = b"-"
    while True:
        page = r.execute_command("XRANGE", stream, start, last, "COUNT", 1000)
        yield from page
        if len(page) < 1000:
            return
        start = b"(" + page[-1][0]


def num(v):
    if not (v.isdigit() and len(v) <= 20):  # ASCII digits only: no sign, space or "_"
        raise ValueError(f"not a number: {v!r}")
    return int(v)


DRAW_FIELDS = [b"type", b"draw", b"user", b"outcome", b"pick"]
DRAW_OPTIONAL = ([], [b"tier"], [b"rule"], [b"tier", b"rule"])  # the fields after DRAW_FIELDS


def epochs_and_seeds(r, stream, claimed, bad):
    """Pass 1: returns ({epoch: (from_draw, commitment)}, {epoch: seed} for the seeds that match,
    the last entry's id). claimed: [(epoch, seed hex, where from)]; the reveal entries are added."""
    epochs, last = {}, None
    for eid, f in entries(r, stream):
        last, names = eid, f[0::2]
        try:
            if names == [b"type", b"epoch", b"commitment", b"from_draw"] and f[1] == b"epoch":
                if num(f[3]) in epochs:
                    raise ValueError(f"epoch {num(f[3])} started twice")
                epochs[num(f[3])] = (num(f[7]), f[5].decode("ascii", "replace"))
            elif names == [b"type", b"epoch", b"seed"] and f[1] == b"reveal":
                hexseed = f[5].decode("ascii", "replace")
                claimed.append((num(f[3]), hexseed, f"reveal entry {eid.decode()}"))
            elif names[:1] == [b"type"] and f[1] in (b"epoch", b"reveal"):
                raise ValueError(f"malformed {f[1].decode()} entry")
        except ValueError as e:
            bad.append(f"{eid.decode()}: {e}")
    seeds = {}
    for n, hexseed, where in claimed:
        if n not in epochs:
            bad.append(f"{where}: a seed for epoch {n}, which has no epoch entry")
        elif not re.fullmatch("[0-9a-f]{64}", hexseed):
            bad.append(f"{where}: epoch {n}: the seed is not 64 lowercase hex digits")
        elif hashlib.sha256(bytes.fromhex(hexseed)).hexdigest() != epochs[n][1]:
            bad.append(f"{where}: epoch {n}: SHA-256 of the seed is not the commitment {epochs[n][1]}")
        else:
            seeds[n] = bytes.fromhex(hexseed)
    return epochs, seeds, last


def rule_allows(rule, out, pick, w):
    """A rule is written only when it changed the outcome from the pick. soldout, redraw and
    fallback follow a picked prize that cannot be won: soldout gives a loss, redraw a loss or a
    prize of weight > 0, fallback a loss or any prize of the table; guarantee gives a prize of
    weight > 0, whatever the pick."""
    if out == pick or (pick == b"" and rule != b"guarantee"):
        return False
    return {b"soldout": out == b"", b"redraw": out == b"" or w.get(out, 0) > 0,
            b"fallback": out == b"" or out in w, b"guarantee": w.get(out, 0) > 0}.get(rule, False)


def check_draw(d, s, seed, key, table):
    """Recomputes the pick of the draw entry d (a dict) numbered s; raises ValueError on a mismatch."""
    from_draw, ids, weights, prefix, w = table  # ids: the prize ids, then b"" for NOTHING
    if from_draw > s:
        raise ValueError(f"no table in force for tier {d.get(b'tier', b'')!r}")
    x, i = table_pick(words(seed, key, s), weights, prefix)
    if d[b"pick"] != ids[i]:
        raise ValueError(f"x = {x} picks {ids[i]!r}, the entry says pick {d[b'pick']!r}")
    rule, out = d.get(b"rule"), d[b"outcome"]
    if rule is None and out != ids[i]:
        raise ValueError(f"outcome {out!r} is not the pick {ids[i]!r} and no rule is given")
    if rule is not None and not rule_allows(rule, out, ids[i], w):
        raise ValueError(f"rule {rule!r} cannot give outcome {out!r} from pick {ids[i]!r}")


def verify(r, stream, key, claimed):
    """Returns (summary line, [mismatch text])."""
    bad = []
    epochs, seeds, last = epochs_and_seeds(r, stream, claimed, bad)
    if not epochs and not bad:
        raise LookupError(f"no epoch entry in stream {stream!r} "
                          "(not a VERIFIABLE campaign's stream? give --stream)")
    starts = sorted((from_draw, n) for n, (from_draw, _) in epochs.items())
    tables, wins, seen_epoch, prev, draws, checked, first, note = {}, {}, False, 0, 0, 0, None, ""
    for eid, f in entries(r, stream, last):  # pass 2, in stream order
        names, eid = f[0::2], eid.decode()
        first = first or eid
        kind, d = f[1] if names[:1] == [b"type"] else None, dict(zip(names, f[1::2]))
        try:
            if kind is None and seen_epoch:  # a win (those before the first epoch: not verifiable)
                if num(d[b"draw"]) in wins:
                    raise ValueError(f"a second win entry for draw {num(d[b'draw'])}")
                wins[num(d[b"draw"])] = (d[b"user"], d[b"prize"], eid)
            elif kind == b"epoch":
                seen_epoch = True
            elif kind == b"table":  # type table from_draw s tier name (id weight)... NOTHING weight
                if names[:3] != [b"type", b"from_draw", b"tier"] or names[3:][-1:] != [b"NOTHING"]:
                    raise ValueError("malformed table entry")
                weights = [num(w) for w in f[7::2]]
                if sum(weights) >= 2**64:  # no table the module writes (W is below 2^64)
                    raise ValueError("table entry whose weights sum beyond 64 bits")
                ids = names[3:-1] + [b""]  # prefix sums and prize weights: once per table
                tables[f[5]] = (num(f[3]), ids, weights, list(itertools.accumulate(weights)),
                                dict(zip(ids[:-1], weights)))
            elif kind == b"draw":
                draws += 1
                if names[:5] != DRAW_FIELDS or names[5:] not in DRAW_OPTIONAL:
                    raise ValueError("malformed draw entry")
                s = num(d[b"draw"])
                if s <= prev:
                    raise ValueError(f"draw number {s} is not above the previous draw entry's {prev}")
                prev, win = s, wins.pop(s, None)
                if win is not None and win[:2] != (d[b"user"], d[b"outcome"]):
                    raise ValueError(f"win entry {win[2]} (user {win[0]!r}, prize {win[1]!r}) disagrees")
                if win is None and d[b"outcome"] and eid == first:  # its win entry was trimmed
                    note = f"\nnot checked {eid}: draw {s} won, its win entry is not in the stream"
                elif win is None and d[b"outcome"]:  # the module appends the win entry first
                    raise ValueError(f"draw {s} won {d[b'outcome']!r} and has no win entry")
                i = bisect.bisect_right(starts, (s, float("inf"))) - 1  # the epoch in force
                if i < 0:
                    raise ValueError(f"draw {s} precedes every epoch")
                if starts[i][1] in seeds:  # else not revealed (or wrong: reported), not checkable
                    checked += 1
                    table = tables.get(d.get(b"tier", b""), (s + 1, [], [], [], {}))  # (s + 1: none)
                    check_draw(d, s, seeds[starts[i][1]], key, table)
        except KeyError as e:  # only a win entry's fields are not checked by name above
            bad.append(f"{eid}: win entry without field {e}")
        except ValueError as e:
            bad.append(f"{eid}: {e}")
    bad += [f"{eid}: win entry (draw {s}) has no draw entry" for s, (_, _, eid) in wins.items()]
    unrevealed = set(epochs) - {n for n, _, _ in claimed}
    return (f"epochs {len(epochs)} verified {len(seeds)} unrevealed {len(unrevealed)}  "
            f"draws {draws} checked {checked} mismatches {len(bad)}{note}"), bad


def default_stream(key):
    """`KEY:wins` if the key has a non-empty hash tag (as Redis Cluster reads it), else `{KEY}:wins`."""
    s = key.find(b"{")
    return key + b":wins" if s >= 0 and key.find(b"}", s + 1) > s + 1 else b"{" + key + b"}:wins"


def main(argv):
    if argv == ["--vectors"]:
        return print(vectors()) or 0
    p = argparse.ArgumentParser(description="Verify a redis-lottery campaign's draws from its stream.")
    p.add_argument("url", help="redis://host:port of a server (master, replica, copy) with the stream")
    p.add_argument("key", help="the campaign's key: its bytes are part of every draw's HMAC message")
    p.add_argument("seeds", nargs="*", default=[], metavar="EPOCH=SEEDHEX",
                   help="seeds revealed outside the stream")
    p.add_argument("--stream", help="the wins stream (default: the campaign's default stream)")
    a = p.parse_args(argv)
    seeds = [s.split("=", 1) for s in a.seeds]
    if not all(len(s) == 2 and s[0].isdigit() and s[0].isascii() for s in seeds):
        p.error("a seed is given as EPOCH=SEEDHEX, e.g. 1=<64 hex digits>")
    import redis  # only here: --vectors needs nothing but the standard library
    key = os.fsencode(a.key)  # the argument's raw bytes
    stream = os.fsencode(a.stream) if a.stream is not None else default_stream(key)
    try:
        r = redis.Redis.from_url(a.url, socket_timeout=30, socket_connect_timeout=10)
        r.set_response_callback("XRANGE", lambda reply, **_: reply)  # keep the fields' order and repeats
        summary, bad = verify(r, stream, key, [(int(n), h, f"argument {n}=") for n, h in seeds])
    except (redis.RedisError, LookupError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(summary)
    for line in bad[:10]:
        print("mismatch", line)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
