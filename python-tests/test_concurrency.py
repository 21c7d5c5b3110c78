"""Many connections racing: no prize is oversold, MAXWINS holds across connections."""
import threading

import lottery_helpers as H
from lottery_helpers import configure, stats, user, xrange_raw

THREADS = 16


def _race(server, jobs_per_thread, per_pipeline=100):
    """jobs_per_thread: list (per thread) of command tuples. Returns all replies."""
    results = [None] * len(jobs_per_thread)
    errors = []
    barrier = threading.Barrier(len(jobs_per_thread))

    def worker(i):
        try:
            raw = server.raw()
            cmds = jobs_per_thread[i]
            out = []
            barrier.wait(timeout=30)
            for s in range(0, len(cmds), per_pipeline):
                out += raw.pipeline(cmds[s:s + per_pipeline])
            raw.close()
            results[i] = out
        except Exception as e:  # noqa: BLE001
            errors.append(repr(e))

    ts = [threading.Thread(target=worker, args=(i,)) for i in range(len(jobs_per_thread))]
    for t in ts:
        t.start()
    for t in ts:
        t.join(120)
    assert not errors, errors
    return [rep for res in results for rep in res]


def test_last_units_not_oversold(server):
    r = server.client()
    raw = server.raw()
    configure(r, "c", "PRIZE", "a", 1, 20, "PRIZE", "b", 2, 30, "NOTHING", 0,
              "SOLDOUT", "REDRAW")
    users = [f"user-{i}" for i in range(10_000)]
    jobs = [[("LOTTERY.DRAW", "c", u) for u in users[i::THREADS]] for i in range(THREADS)]
    reps = _race(server, jobs)
    assert len(reps) == 10_000
    wins = [x for x in reps if x[0] == b"WIN"]
    assert len(wins) == 50
    assert all(x[0] in (b"WIN", b"LOSE") for x in reps)
    s = stats(r, "c")
    assert (s["wins"], s["losses"], s["draws"]) == (50, 9950, 10_000)
    assert s["prizes"] == [["a", 1, 0, 20], ["b", 2, 0, 30]]
    ents = xrange_raw(raw, "{c}:wins")
    assert len(ents) == 50 == r.xlen("{c}:wins")
    assert sorted(e[0] for e in ents) == sorted(w[2] for w in wins)
    assert len({dict(f)[b"user"] for _, f in ents}) == 50
    assert sorted(dict(f)[b"prize"] for _, f in ents) == sorted(w[1] for w in wins)
    assert sum(1 for w in wins if w[1] == b"a") == 20
    assert sorted(int(dict(f)[b"draw"]) for _, f in ents) == sorted(set(
        int(dict(f)[b"draw"]) for _, f in ents))


def test_last_units_not_oversold_soldout_lose(server):
    r = server.client()
    configure(r, "c", "PRIZE", "a", 1, 50, "NOTHING", 0)
    users = [f"u{i}" for i in range(4000)]
    jobs = [[("LOTTERY.DRAW", "c", u) for u in users[i::THREADS]] for i in range(THREADS)]
    reps = _race(server, jobs)
    assert sum(1 for x in reps if x[0] == b"WIN") == 50
    s = stats(r, "c")
    assert s["prizes"] == [["a", 1, 0, 50]]
    assert r.xlen("{c}:wins") == 50


def test_one_user_many_connections_one_win(server):
    r = server.client()
    configure(r, "c", "PRIZE", "a", 1, "INF", "NOTHING", 0, "MAXWINS", 1)
    jobs = [[("LOTTERY.DRAW", "c", "same-user")] * 50 for _ in range(THREADS)]
    reps = _race(server, jobs, per_pipeline=10)
    outcomes = [x[0] for x in reps]
    assert outcomes.count(b"WIN") == 1
    assert outcomes.count(b"ALREADY_WON") == len(reps) - 1
    assert user(r, "c", "same-user")["wins"] == 1
    assert r.xlen("{c}:wins") == 1
    s = stats(r, "c")
    assert (s["wins"], s["draws"], s["rejected_already_won"]) == (1, 1, len(reps) - 1)


def test_same_reqid_from_many_connections(server):
    r = server.client()
    configure(r, "c", "PRIZE", "a", 1, "INF", "NOTHING", 1, "MAXWINS", "INF")
    jobs = [[("LOTTERY.DRAW", "c", "u", "REQID", f"req{k}") for k in range(40)]
            for _ in range(THREADS)]
    reps = _race(server, jobs, per_pipeline=8)
    by_req = {}
    # each request id was drawn exactly once; every reply for it is identical
    flat_jobs = [c for j in jobs for c in j]
    for cmd, rep in zip(flat_jobs, reps):
        by_req.setdefault(cmd[4], set()).add(tuple(rep))
    assert all(len(v) == 1 for v in by_req.values()), by_req
    s = stats(r, "c")
    assert s["draws"] == 40
    assert s["replays"] == 40 * (THREADS - 1)
