#!/usr/bin/env python3
"""The Python half of `make demo` (scripts/demo.sh), with the repository venv's redis-py.

  demo_load.py draw     --port P --campaign KEY --users N --state FILE [...]
      N users draw DAILY+1 times each (so the last draw meets QUOTA, or ALREADY_WON after a
      win), pipelined, from a few threads, with a progress bar on stderr. Every 10th user sends
      a REQID with each draw, and every 3rd of those retries it at once, as a client that timed
      out would: the retry must get the first reply again. Writes what the clients saw (outcome
      counts, distinct win ids per prize) to FILE as JSON.

  demo_load.py wait     --port P --campaign KEY --db PATH [--writer-pid PID] [--timeout S]
      Polls the SQLite database (python's sqlite3) until `wins` has as many rows for the campaign
      as the wins stream has entries (XLEN).

  demo_load.py report   --port P --campaign KEY --db PATH --state FILE --configure ARGS...
      The summary table per prize: configured stock, sold (LOTTERY.STATS), wins the clients saw,
      wins in the stream, rows in `wins`, sum drained into `stock_drains`. Exit 1 on a mismatch.
"""

import argparse
import json
import os
import random
import sqlite3
import sys
import threading
import time
import urllib.request

import redis

# ---------------------------------------------------------------- helpers


def connect(port):
    return redis.Redis(host="127.0.0.1", port=port, socket_timeout=30)


def stats(r, key):
    """LOTTERY.STATS as (dict of the scalar fields, [(id, weight, stock, sold), ...])."""
    raw = r.execute_command("LOTTERY.STATS", key)
    fields, prizes = {}, []
    i = 0
    while i < len(raw):
        name = raw[i].decode()
        if name == "prizes":
            prizes = [
                (p[0].decode(), int(p[1]), int(p[2]), int(p[3])) for p in raw[i + 1]
            ]
        else:
            v = raw[i + 1]
            fields[name] = v.decode() if isinstance(v, bytes) else v
        i += 2
    return fields, prizes


def stream_wins(r, stream):
    """{prize: count} and the set of entry ids of the whole stream, read in pages."""
    per_prize, ids = {}, set()
    start = "-"
    while True:
        page = r.xrange(stream, min=start, max="+", count=10000)
        for entry_id, fields in page:
            ids.add(entry_id.decode())
            prize = fields.get(b"prize", b"?").decode()
            per_prize[prize] = per_prize.get(prize, 0) + 1
        if len(page) < 10000:
            return per_prize, ids
        start = "(" + page[-1][0].decode()


def fmt(n):
    return f"{n:,}" if isinstance(n, int) else str(n)


class Progress:
    """A text progress bar on stderr: redrawn in place on a TTY, a line every ~10% otherwise."""

    def __init__(self, total, what, rate=True):
        self.total, self.what, self.rate = max(total, 1), what, rate
        self.tty = sys.stderr.isatty()
        self.start = time.monotonic()
        self.next_decile = 1
        self.last_draw = 0.0

    def update(self, done, extra="", final=False):
        now = time.monotonic()
        elapsed = max(now - self.start, 1e-6)
        frac = min(done / self.total, 1.0)
        rate = done / elapsed
        text = f"{frac * 100:5.1f}%  {fmt(done)}/{fmt(self.total)} {self.what}"
        if self.rate:
            text += f"  {fmt(int(rate))} {self.what}/s"
        text += f"{extra}  {elapsed:5.1f}s"
        if self.tty:
            if final or now - self.last_draw >= 0.1:
                width = 30
                filled = int(width * frac)
                bar = "#" * filled + "." * (width - filled)
                sys.stderr.write(f"\r  [{bar}] {text}\x1b[K")
                if final:
                    sys.stderr.write("\n")
                sys.stderr.flush()
                self.last_draw = now
        else:
            if frac * 10 >= self.next_decile or (final and self.next_decile <= 10):
                sys.stderr.write(f"  {text}\n")
                sys.stderr.flush()
                self.next_decile = int(frac * 10) + 1


# ---------------------------------------------------------------- draw


def cmd_draw(a):
    r = connect(a.port)
    fields, prizes = stats(r, a.campaign)
    daily = int(fields["daily"])
    rounds = a.rounds or ((daily + 1) if daily > 0 else 4)
    users = [f"user:{i:06d}" for i in range(1, a.users + 1)]

    # Every 10th user sends a REQID with each draw; every 3rd of those retries it at once.
    def reqid_user(i):
        return i % 10 == 0

    def retry_user(i):
        return i % 30 == 0

    total = 0
    for i in range(1, a.users + 1):
        total += rounds * (2 if retry_user(i) else 1)

    lock = threading.Lock()
    counts = {}  # outcome -> count (retries counted apart)
    win_ids = {}  # win id -> prize (distinct: a replayed WIN carries the same id)
    retries = {"sent": 0, "same_reply": 0, "different": 0, "replays_expected": 0}
    done = [0]
    errors = []
    progress = Progress(total, "draws")

    def worker(tid):
        try:
            conn = connect(a.port)
            mine = [i for i in range(1, a.users + 1) if i % a.threads == tid]
            rnd = random.Random(tid)
            for rd in range(1, rounds + 1):
                rnd.shuffle(mine)  # users come back in a different order each round
                for off in range(0, len(mine), a.pipeline):
                    chunk = mine[off : off + a.pipeline]
                    pipe = conn.pipeline(transaction=False)
                    kinds = []  # per command: ("draw"|"retry", user index)
                    for i in chunk:
                        user = users[i - 1]
                        if reqid_user(i):
                            rid = f"{user}/draw-{rd}"
                            pipe.execute_command(
                                "LOTTERY.DRAW", a.campaign, user, "REQID", rid
                            )
                            kinds.append("draw")
                            if retry_user(i):
                                pipe.execute_command(
                                    "LOTTERY.DRAW", a.campaign, user, "REQID", rid
                                )
                                kinds.append("retry")
                        else:
                            pipe.execute_command("LOTTERY.DRAW", a.campaign, user)
                            kinds.append("draw")
                    replies = pipe.execute()
                    local, local_wins = {}, {}
                    lr = {"sent": 0, "same_reply": 0, "different": 0, "replays_expected": 0}
                    prev = None
                    for kind, rep in zip(kinds, replies):
                        outcome = rep[0].decode()
                        if kind == "retry":
                            lr["sent"] += 1
                            # Only WIN and LOSE replies are remembered: a retry of a rejected
                            # draw is a new draw, rejected again (its wait-ms may differ).
                            if prev[0] in (b"WIN", b"LOSE"):
                                lr["replays_expected"] += 1
                                same = rep == prev
                            else:
                                local[outcome] = local.get(outcome, 0) + 1
                                same = rep[0] == prev[0]
                            lr["same_reply" if same else "different"] += 1
                        else:
                            local[outcome] = local.get(outcome, 0) + 1
                        if outcome == "WIN":
                            local_wins[rep[2].decode()] = rep[1].decode()
                        prev = rep
                    with lock:
                        for k, v in local.items():
                            counts[k] = counts.get(k, 0) + v
                        win_ids.update(local_wins)
                        for k, v in lr.items():
                            retries[k] += v
                        done[0] += len(kinds)
        except Exception as e:  # noqa: BLE001 - reported by the main thread
            with lock:
                errors.append(f"thread {tid}: {e!r}")

    print(
        f"  {fmt(a.users)} users x {rounds} draws (DAILY {daily}: the last one meets QUOTA "
        f"or ALREADY_WON), {a.threads} threads, pipelines of {a.pipeline}; every 10th user "
        f"sends a REQID, every 30th retries it",
        flush=True,
    )
    threads = [threading.Thread(target=worker, args=(t,), daemon=True) for t in range(a.threads)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    while any(t.is_alive() for t in threads):
        time.sleep(0.05)
        with lock:
            d, w = done[0], len(win_ids)
        progress.update(d, f"  wins {fmt(w)}")
    elapsed = time.monotonic() - t0
    progress.update(done[0], f"  wins {fmt(len(win_ids))}", final=True)
    if errors:
        for e in errors:
            print(f"demo_load.py: {e}", file=sys.stderr)
        sys.exit(1)

    per_prize = {}
    for prize in win_ids.values():
        per_prize[prize] = per_prize.get(prize, 0) + 1
    state = {
        "commands": done[0],
        "seconds": elapsed,
        "outcomes": counts,
        "retries": retries,
        "wins_by_prize": per_prize,
        "wins": len(win_ids),
    }
    with open(a.state, "w") as f:
        json.dump(state, f)

    print(
        f"  {fmt(done[0])} LOTTERY.DRAW in {elapsed:.1f} s ({fmt(int(done[0] / elapsed))}/s)"
    )
    order = ["WIN", "LOSE", "ALREADY_WON", "QUOTA"]
    outs = [k for k in order if k in counts] + sorted(k for k in counts if k not in order)
    print("  outcomes: " + ", ".join(f"{k} {fmt(counts[k])}" for k in outs))
    print(
        f"  REQID retries: {fmt(retries['sent'])} sent, {fmt(retries['same_reply'])} answered "
        f"as expected ({fmt(retries['replays_expected'])} replays of a WIN/LOSE, byte for byte; "
        f"the rest rejected again), {fmt(retries['different'])} not"
    )
    if retries["different"]:
        print("demo_load.py: MISMATCH: a REQID retry got a different reply", file=sys.stderr)
        sys.exit(1)


# ---------------------------------------------------------------- wait


def db_rows(db, campaign):
    """Rows of `wins` for the campaign, or None while the writer has not created the table."""
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
        try:
            return conn.execute(
                "SELECT count(*) FROM wins WHERE campaign = ?", (campaign,)
            ).fetchone()[0]
        finally:
            conn.close()
    except sqlite3.OperationalError:
        return None


def cmd_wait(a):
    r = connect(a.port)
    stream = stats(r, a.campaign)[0]["stream"]
    xlen = r.xlen(stream)
    progress = Progress(xlen, "rows", rate=False)
    deadline = time.monotonic() + a.timeout
    rows = 0
    while True:
        rows = db_rows(a.db, a.campaign) or 0
        progress.update(rows, f"  (XLEN {fmt(xlen)})")
        if rows >= xlen:
            break
        if a.writer_pid:
            try:
                os.kill(a.writer_pid, 0)
            except ProcessLookupError:
                progress.update(rows, "", final=True)
                print(f"demo_load.py: the writer (pid {a.writer_pid}) is gone", file=sys.stderr)
                sys.exit(1)
        if time.monotonic() > deadline:
            progress.update(rows, "", final=True)
            print(
                f"demo_load.py: MISMATCH: after {a.timeout} s `wins` has {fmt(rows)} rows, "
                f"the stream {fmt(xlen)} entries",
                file=sys.stderr,
            )
            sys.exit(1)
        time.sleep(0.1)
    progress.update(rows, f"  (XLEN {fmt(xlen)})", final=True)
    print(
        f"  {fmt(rows)} rows in `wins` = XLEN {stream} {fmt(xlen)}, "
        f"{time.monotonic() - progress.start:.1f} s after the last draw"
    )


# ---------------------------------------------------------------- report


def configured_stock(configure):
    """{prize: stock (int, or None for INF)} from the LOTTERY.CONFIGURE arguments."""
    out, i = {}, 0
    while i < len(configure):
        if configure[i].upper() == "PRIZE":
            stock = configure[i + 3]
            out[configure[i + 1]] = None if stock.upper() == "INF" else int(stock)
            i += 4
        else:
            i += 1
    return out


def cmd_report(a):
    r = connect(a.port)
    fields, prizes = stats(r, a.campaign)
    stream = fields["stream"]
    with open(a.state) as f:
        seen = json.load(f)
    conf = configured_stock(a.configure)
    in_stream, stream_ids = stream_wins(r, stream)

    db = sqlite3.connect(a.db, timeout=10)  # read only; not mode=ro, so it tidies -wal/-shm
    rows = dict(
        db.execute(
            "SELECT prize, count(*) FROM wins WHERE campaign = ? GROUP BY prize", (a.campaign,)
        ).fetchall()
    )
    row_ids = {
        x[0] for x in db.execute("SELECT stream_id FROM wins WHERE campaign = ?", (a.campaign,))
    }
    drained = dict(
        db.execute(
            "SELECT prize, sum(sold) FROM stock_drains WHERE campaign = ? GROUP BY prize",
            (a.campaign,),
        ).fetchall()
    )
    n_drains, last_seq = db.execute(
        "SELECT count(DISTINCT seq), max(seq) FROM stock_drains WHERE campaign = ?",
        (a.campaign,),
    ).fetchone()
    reqid_rows = db.execute(
        "SELECT count(*) FROM wins WHERE campaign = ? AND reqid IS NOT NULL", (a.campaign,)
    ).fetchone()[0]
    db.close()

    head = ["prize", "configured", "sold", "left", "clients saw", "stream", "rows", "drained", ""]
    table = [head]
    problems = []
    tot = [0] * 5
    for pid, _weight, stock, sold in prizes:
        c = conf.get(pid, "?")
        cols = [
            sold,
            seen["wins_by_prize"].get(pid, 0),
            in_stream.get(pid, 0),
            rows.get(pid, 0),
            drained.get(pid, 0),
        ]
        ok = len(set(cols)) == 1
        if c is None:
            ok = ok and stock == -1
        elif c != "?":
            ok = ok and sold + stock == c and sold <= c
        if not ok:
            problems.append(pid)
        for k in range(5):
            tot[k] += cols[k]
        table.append(
            [
                pid,
                "INF" if c is None else fmt(c),
                fmt(sold),
                "INF" if stock == -1 else fmt(stock),
                *[fmt(x) for x in cols[1:]],
                "ok" if ok else "MISMATCH",
            ]
        )
    # Wins of prizes no longer in the table (or unknown to the campaign) would show up here.
    for pid in sorted(set(in_stream) | set(rows) | set(drained)):
        if pid not in {p[0] for p in prizes}:
            problems.append(pid)
            table.append([pid, "?", "-", "-", "-", fmt(in_stream.get(pid, 0)),
                          fmt(rows.get(pid, 0)), fmt(drained.get(pid, 0)), "MISMATCH"])
    total_ok = len(set(tot)) == 1 and tot[0] == int(fields["wins"])
    table.append(["total", "", fmt(tot[0]), "", *[fmt(x) for x in tot[1:]],
                  "ok" if total_ok else "MISMATCH"])
    if not total_ok:
        problems.append("total")

    widths = [max(len(row[k]) for row in table) for k in range(len(head))]
    for n, row in enumerate(table):
        cells = [row[0].ljust(widths[0])] + [row[k].rjust(widths[k]) for k in range(1, len(row) - 1)]
        print(("  " + "  ".join(cells) + "  " + row[-1]).rstrip())
        if n == 0 or n == len(table) - 2:
            print("  " + "  ".join("-" * w for w in widths[:-1]))
    print(
        "  configured: the stock given to LOTTERY.CONFIGURE; sold, left: LOTTERY.STATS;\n"
        "  clients saw: distinct win ids in the DRAW replies; stream: entries in\n"
        f"  {stream}; rows: rows in `wins`; drained: sum(sold) in `stock_drains`\n"
        f"  ({n_drains} batches stored, the last seq {last_seq}; {fields['drain_seq']} drains in "
        "all, the others empty)."
    )

    # The counters, and the rows' ids against the stream's.
    checks = []
    o = seen["outcomes"]
    checks.append(("STATS wins = WINs the clients saw", int(fields["wins"]), seen["wins"]))
    checks.append(("STATS losses = LOSEs the clients saw", int(fields["losses"]), o.get("LOSE", 0)))
    checks.append(("STATS replays = REQID retries of a WIN/LOSE", int(fields["replays"]),
                   seen["retries"]["replays_expected"]))
    checks.append(("STATS rejected_quota = QUOTAs", int(fields["rejected_quota"]), o.get("QUOTA", 0)))
    checks.append(("STATS rejected_already_won = ALREADY_WONs",
                   int(fields["rejected_already_won"]), o.get("ALREADY_WON", 0)))
    checks.append(("`wins` stream_ids = stream entry ids", len(row_ids), len(stream_ids)))
    print()
    for what, x, y in checks:
        ok = x == y and (not what.startswith("`wins` stream_ids") or row_ids == stream_ids)
        if not ok:
            problems.append(what)
        print(f"  {what:<46} {fmt(x):>9} {fmt(y):>9}  {'ok' if ok else 'MISMATCH'}")
    print(f"  ({fmt(reqid_rows)} rows carry a reqid; {fmt(int(fields['users']))} users, "
          f"{fmt(int(fields['draws']))} draws)")

    print()
    if problems:
        print(f"MISMATCH: {', '.join(problems)}")
        sys.exit(1)
    print("all matching")


def prom_value(text, name, campaign):
    """The value of `name{campaign="..."}` in a Prometheus exposition, or None."""
    want = campaign.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    for line in text.splitlines():
        if line.startswith(name + "{") and f'campaign="{want}"' in line:
            return float(line.rsplit(" ", 1)[1])
    return None


def cmd_metrics(a):
    """Checks that lottery-exporter's /metrics shows the campaign's STATS wins and draws, and
    prints its size; waits up to --timeout seconds for a sample taken after the draws."""
    r = connect(a.port)
    fields, _prizes = stats(r, a.campaign)
    deadline = time.time() + a.timeout
    got = {}
    while True:
        try:
            with urllib.request.urlopen(a.url + "metrics", timeout=5) as resp:
                text = resp.read().decode("utf-8", "replace")
        except OSError as e:
            text, err = "", e
        got = {n: prom_value(text, n, a.campaign) for n in ("lottery_wins_total", "lottery_draws_total")}
        want = {"lottery_wins_total": float(fields["wins"]), "lottery_draws_total": float(fields["draws"])}
        if text and got == want:
            break
        if time.time() > deadline:
            print(f"MISMATCH: /metrics shows {got}, LOTTERY.STATS {want}"
                  + ("" if text else f" (no answer: {err})"))
            sys.exit(1)
        time.sleep(0.2)
    lines = text.count("\n")
    series = sum(1 for x in text.splitlines() if x and not x.startswith("#"))
    print(f"  status page:  {a.url}")
    print(f"  metrics:      {a.url}metrics  ({fmt(lines)} lines, {fmt(series)} series)")
    print(f"  lottery_wins_total {fmt(int(got['lottery_wins_total']))} = STATS wins, "
          f"lottery_draws_total {fmt(int(got['lottery_draws_total']))} = STATS draws  ok")


# ---------------------------------------------------------------- main


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)

    d = sub.add_parser("draw")
    d.add_argument("--port", type=int, required=True)
    d.add_argument("--campaign", required=True)
    d.add_argument("--users", type=int, default=50000)
    d.add_argument("--rounds", type=int, default=0, help="draws per user (default DAILY+1)")
    d.add_argument("--threads", type=int, default=4)
    d.add_argument("--pipeline", type=int, default=200)
    d.add_argument("--state", required=True)

    w = sub.add_parser("wait")
    w.add_argument("--port", type=int, required=True)
    w.add_argument("--campaign", required=True)
    w.add_argument("--db", required=True)
    w.add_argument("--writer-pid", type=int, default=0)
    w.add_argument("--timeout", type=float, default=60)

    r = sub.add_parser("report")
    r.add_argument("--port", type=int, required=True)
    r.add_argument("--campaign", required=True)
    r.add_argument("--db", required=True)
    r.add_argument("--state", required=True)
    r.add_argument("--configure", nargs=argparse.REMAINDER, required=True)

    m = sub.add_parser("metrics")
    m.add_argument("--port", type=int, required=True)
    m.add_argument("--campaign", required=True)
    m.add_argument("--url", required=True, help="the exporter's base URL, ending in /")
    m.add_argument("--timeout", type=float, default=15)

    a = p.parse_args()
    try:
        {"draw": cmd_draw, "wait": cmd_wait, "report": cmd_report, "metrics": cmd_metrics}[a.cmd](a)
    except KeyboardInterrupt:
        print("\ndemo_load.py: interrupted", file=sys.stderr)
        sys.exit(130)


if __name__ == "__main__":
    main()
