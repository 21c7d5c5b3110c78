"""Odds are exact: chi-square goodness of fit at p = 1e-6 (no scipy).

Critical values: chi2_critical(dof) is exact for dof 1 and 2 (z(1 - 0.5e-6)^2 and
-2 ln 1e-6) and the Wilson-Hilferty approximation otherwise,
    x = k * (1 - 2/(9k) + z * sqrt(2/(9k)))**3,  z = 4.753424 (the N(0,1) 1 - 1e-6 quantile).
A correct generator fails one of these tests about once in a million runs, so CI is not
flaky, while a wrong alias table or a biased bounded draw (which shifts whole percentage
points over 100k+ draws) still fails by orders of magnitude.
"""
import math

import pytest

import lottery_helpers as H
from lottery_helpers import configure, stats

Z_1E6 = 4.753424308822899
CHI2_1E6 = {1: 23.928, 2: 27.631}


def wilson_hilferty(dof, z=Z_1E6):
    a = 2.0 / (9.0 * dof)
    return dof * (1.0 - a + z * math.sqrt(a)) ** 3


def chi2_critical(dof):
    return CHI2_1E6.get(dof) or wilson_hilferty(dof)


def test_critical_value_sanity():
    # Wilson-Hilferty errs high at small dof (conservative: it never makes a test stricter)
    for k, v in CHI2_1E6.items():
        assert v <= wilson_hilferty(k) <= 1.2 * v
    # monotone in dof, and far above the 0.001 quantiles (10.83 at dof 1, 29.59 at dof 10)
    vals = [chi2_critical(k) for k in range(1, 12)]
    assert vals == sorted(vals) and vals[0] > 20 and vals[9] > 40


def chi_square(observed, probs, n):
    return sum((observed.get(k, 0) - n * p) ** 2 / (n * p) for k, p in probs.items())


def run_draws(server, key, n, user=b"u", per_pipeline=1000):
    """n draws via pipelines of per_pipeline commands; returns {prize or None: count}."""
    raw = server.raw()
    counts = {}
    done = 0
    while done < n:
        k = min(per_pipeline, n - done)
        for rep in raw.pipeline([("LOTTERY.DRAW", key, user)] * k):
            assert isinstance(rep, list), rep
            counts[rep[1]] = counts.get(rep[1], 0) + 1
        done += k
    raw.close()
    return counts


@pytest.mark.parametrize("rng", [None, "xoshiro"])
def test_chi_square_weights(server_factory, rng):
    args = ("debug-clock", "yes") + (("rng", rng) if rng else ())
    s = server_factory(module_args=args)
    r = s.client()
    configure(r, "c", "PRIZE", "a", 1, "INF", "PRIZE", "b", 2, "INF", "PRIZE", "c", 3, "INF",
              "PRIZE", "d", 4, "INF", "NOTHING", 10, "COOLDOWN", 0, "DAILY", "INF",
              "MAXWINS", "INF")
    n = 100_000
    counts = run_draws(s, "c", n)
    probs = {b"a": 1 / 20, b"b": 2 / 20, b"c": 3 / 20, b"d": 4 / 20, None: 10 / 20}
    assert set(counts) <= set(probs), counts
    chi = chi_square(counts, probs, n)
    crit = chi2_critical(len(probs) - 1)
    assert chi < crit, f"chi-square {chi:.2f} >= {crit} for counts {counts}"
    st = stats(r, "c")
    assert st["draws"] == n and st["wins"] + st["losses"] == n
    assert st["losses"] == counts.get(None, 0)
    sold = {p[0].encode(): p[3] for p in st["prizes"]}
    for k in (b"a", b"b", b"c", b"d"):
        assert sold[k] == counts.get(k, 0)
    assert r.xlen("{c}:wins") == st["wins"]


def test_chi_square_unequal_large_weights(server):
    r = server.client()
    # weights near 2^32: a float-based or modulo-biased pick would still pass for tiny
    # biases, but gross truncation errors show
    w1, w2 = 4294967295, 1431655765  # 3:1 exactly
    configure(r, "c", "PRIZE", "big", w1, "INF", "PRIZE", "small", w2, "INF",
              "MAXWINS", "INF")
    n = 40_000
    counts = run_draws(server, "c", n)
    probs = {b"big": 0.75, b"small": 0.25}
    chi = chi_square(counts, probs, n)
    assert chi < chi2_critical(1), counts


@pytest.mark.parametrize("mode,p_b", [("LOSE", 0.25), ("REDRAW", 1 / 3)])
def test_soldout_lose_keeps_odds_redraw_rescales(server, mode, p_b):
    r = server.client()
    configure(r, "c", "PRIZE", "a", 1, 0, "PRIZE", "b", 1, "INF", "NOTHING", 2,
              "SOLDOUT", mode, "MAXWINS", "INF")
    n = 20_000
    counts = run_draws(server, "c", n)
    assert set(counts) <= {b"b", None}
    chi = chi_square(counts, {b"b": p_b, None: 1 - p_b}, n)
    assert chi < chi2_critical(1), counts


def test_weight_zero_never_drawn(server):
    r = server.client()
    configure(r, "c", "PRIZE", "z1", 0, "INF", "PRIZE", "a", 1, "INF", "PRIZE", "z2", 0, "INF",
              "NOTHING", 1, "MAXWINS", "INF")
    counts = run_draws(server, "c", 20_000)
    assert set(counts) == {b"a", None}
    p = {x[0]: x[3] for x in stats(r, "c")["prizes"]}
    assert p["z1"] == 0 and p["z2"] == 0


def test_many_users_distribution(server):
    r = server.client()
    configure(r, "c", "PRIZE", "a", 1, "INF", "PRIZE", "b", 3, "INF", "NOTHING", 4)
    raw = server.raw()
    n = 20_000
    counts = {}
    for start in range(0, n, 1000):
        for rep in raw.pipeline([("LOTTERY.DRAW", "c", f"user{i}") for i in range(start, start + 1000)]):
            counts[rep[1]] = counts.get(rep[1], 0) + 1
    chi = chi_square(counts, {b"a": 1 / 8, b"b": 3 / 8, None: 4 / 8}, n)
    assert chi < chi2_critical(2), counts
    assert stats(r, "c")["users"] == n
