"""docs/verify_draws.py, the reference verifier of verifiable draws, on its own.

The streams are written by this file's own generator (entries laid out as docs/verifiable.md
and docs/commands.md describe them) into a plain redis-server without the module, so the
verifier is tested apart from the module. The generator restates the construction
independently of the verifier's code: an inclusive rejection limit and a linear prefix scan
where the verifier uses floor(2^64 / n) * n and a binary search.
"""
import hashlib
import hmac
import struct
import subprocess
import sys

import lottery_helpers as H

VERIFIER = H.REPO / "docs" / "verify_draws.py"
U64_MAX = 2**64 - 1
KEY = b"camp\xff{t}"  # not UTF-8, with a hash tag: the default stream is KEY + b":wins"
SEED1 = hashlib.sha256(b"epoch one").digest()
SEED2 = hashlib.sha256(b"epoch two").digest()
IDS = [b"A", b"B", b"C"]


def pick_entry(seed, key, s, weights):
    """The index of the table entry the draw numbered s picks (len(IDS) is NOTHING)."""
    n, k = sum(weights), 0
    if n == 0:  # a table whose weights sum to 0 takes no word: the NOTHING entry
        return len(weights) - 1
    limit = U64_MAX - (U64_MAX % n + 1) % n  # the largest accepted word
    while True:
        msg = b"redis-lottery/v1\x00%s\x00%d\x00%d" % (key, s, k)
        word = struct.unpack(">Q", hmac.new(seed, msg, "sha256").digest()[:8])[0]
        k += 1
        if word <= limit:
            break
    acc = 0
    for i, w in enumerate(weights):
        acc += w
        if word % n < acc:
            return i


class Campaign:
    """Builds a campaign's wins stream as a list of entries, each a flat [field, value, ...]."""

    def __init__(self, key=KEY):
        self.key, self.entries, self.draws = key, [], 0
        self.seed, self.epoch, self.published = None, 0, {}  # published: tier -> its last table

    def old_win(self, user, prize):  # a win from before the campaign was VERIFIABLE
        self.draws += 1
        self.entries.append([b"user", user, b"prize", prize, b"draw", b"%d" % self.draws])

    def new_epoch(self, seed):
        self.seed, self.epoch = seed, self.epoch + 1
        commitment = hashlib.sha256(seed).hexdigest().encode()
        self.entries.append([b"type", b"epoch", b"epoch", b"%d" % self.epoch, b"commitment", commitment,
                             b"from_draw", b"%d" % (self.draws + 1)])

    def reveal(self, epoch, seed):
        self.entries.append([b"type", b"reveal", b"epoch", b"%d" % epoch, b"seed", seed.hex().encode()])

    def draw(self, user, weights, tier=b"", rule=None, rule_outcome=b""):
        self.draws += 1
        s = self.draws
        if self.published.get(tier) != weights:
            self.published[tier] = weights
            table = [b"type", b"table", b"from_draw", b"%d" % s, b"tier", tier]
            for pid, w in zip(IDS + [b"NOTHING"], weights):
                table += [pid, b"%d" % w]
            self.entries.append(table)
        pick = (IDS + [b""])[pick_entry(self.seed, self.key, s, weights)]
        # a rule follows a picked prize (soldout, redraw, fallback): none for a NOTHING pick
        outcome = rule_outcome if rule is not None and pick and rule_outcome != pick else pick
        if outcome:
            self.entries.append([b"user", user, b"prize", outcome, b"draw", b"%d" % s])
        entry = [b"type", b"draw", b"draw", b"%d" % s, b"user", user, b"outcome", outcome, b"pick", pick]
        entry += [b"tier", tier] if tier else []
        entry += [b"rule", rule] if outcome != pick else []
        self.entries.append(entry)

    def find(self, **want):
        """Indexes of the entries whose fields have the given values (type= for the kind)."""
        return [i for i, e in enumerate(self.entries)
                if all(dict(zip(e[0::2], e[1::2])).get(k.encode()) == v for k, v in want.items())]


def sample():
    """Two old wins; epoch 1 (base table, a tier, a table change, rule draws); a rotation; epoch 2."""
    c = Campaign()
    c.old_win(b"early", b"A")
    c.old_win(b"early2", b"B")
    c.new_epoch(SEED1)
    base, vip, restocked = [5, 3, 0, 2], [1, 1, 1, 0], [5, 3, 4, 2]
    for u in range(12):
        c.draw(b"u%d" % u, base)
    for u in range(3):
        c.draw("用户%d".encode() % u, vip, tier=b"vip")
    for u in range(5):
        c.draw(b"r%d" % u, restocked)
    c.draw(b"s", [5, 3, 0, 0], rule=b"soldout", rule_outcome=b"")  # NOTHING 0: a prize picked
    c.draw(b"f", [5, 3, 0, 0], rule=b"fallback", rule_outcome=b"C")  # C: any prize of the table
    c.new_epoch(SEED2)
    c.reveal(1, SEED1)
    for u in range(6):
        c.draw(b"e2-%d" % u, restocked)
    return c


def run(server, c, *args, stream=None):
    """Writes c's entries into a fresh stream, runs the verifier; returns (exit code, stdout)."""
    r = server.client(decode_responses=False)
    stream_key = stream or c.key + b":wins"
    r.delete(stream_key)
    for e in c.entries:
        r.execute_command("XADD", stream_key, "*", *e)
    argv = [sys.executable, str(VERIFIER), f"redis://127.0.0.1:{server.port}", c.key, *args]
    if stream is not None:
        argv += [b"--stream", stream]
    p = subprocess.run(argv, capture_output=True, timeout=60)
    if p.returncode == 2:  # usage or connection error, or no epoch entry: the message is on stderr
        return 2, p.stderr.decode()
    assert not p.stderr, p.stderr
    return p.returncode, p.stdout.decode()


def plain(server_factory):
    return server_factory(module=False)


def test_a_clean_stream_passes_and_counts(server_factory):
    server, c = plain(server_factory), sample()
    draws = len(c.find(type=b"draw"))
    assert draws == 28 and len(c.find(rule=b"soldout")) == 1 and len(c.find(rule=b"fallback")) == 1
    assert c.find(type=b"draw", pick=b"A") and c.find(type=b"draw", pick=b"")
    rc, out = run(server, c, "2=" + SEED2.hex())
    assert (rc, out) == (0, f"epochs 2 verified 2 unrevealed 0  draws {draws} checked {draws} "
                            "mismatches 0\n")
    # epoch 2's seed not given: its draws are counted, not checked, and that is no mismatch
    rc, out = run(server, c)
    assert (rc, out) == (0, f"epochs 2 verified 1 unrevealed 1  draws {draws} checked {draws - 6} "
                            "mismatches 0\n")
    # a campaign with a STREAM of its own
    rc, out = run(server, c, "2=" + SEED2.hex(), stream=b"other\xffstream")
    assert rc == 0 and out.endswith(f"checked {draws} mismatches 0\n"), out


def test_a_changed_outcome_is_detected(server_factory):
    server, c = plain(server_factory), sample()
    d = c.find(type=b"draw", pick=b"A", outcome=b"A")[0]
    w = c.find(prize=b"A", draw=c.entries[d][3])[0]
    c.entries[d][7] = c.entries[w][3] = b"B"  # the win and its draw entry agree: only the draw shows it
    rc, out = run(server, c, "2=" + SEED2.hex())
    assert rc == 1, out
    assert "mismatches 1\n" in out, out
    assert "outcome b'B' is not the pick b'A' and no rule is given" in out, out
    # and with the pick rewritten too
    c.entries[d][9] = b"B"
    rc, out = run(server, c, "2=" + SEED2.hex())
    assert rc == 1 and "picks b'A', the entry says pick b'B'" in out, out
    # a rule cannot give a prize with no weight in the table in force (C has 0 in the base table)
    c = sample()
    d = c.find(type=b"draw", pick=b"", tier=None)[0]
    assert int(c.entries[d][3]) <= 14  # a draw of the base table's first version
    c.entries[d][7] = b"C"
    c.entries[d] += [b"rule", b"soldout"]
    c.entries.insert(d, [b"user", c.entries[d][5], b"prize", b"C", b"draw", c.entries[d][3]])
    rc, out = run(server, c, "2=" + SEED2.hex())
    assert rc == 1 and "rule b'soldout' cannot give outcome b'C' from pick b''" in out, out
    # soldout gives a loss, never a prize (even one with a weight); a rule needs outcome != pick
    for rule, outcome, want in [(b"soldout", b"B", 1), (b"redraw", b"A", 1), (b"redraw", b"B", 0)]:
        c = sample()
        d = c.find(type=b"draw", pick=b"A", outcome=b"A", tier=None)[0]
        c.entries[d][7] = c.entries[d - 1][3] = outcome  # the win entry, right before, agrees
        c.entries[d] += [b"rule", rule]
        rc, out = run(server, c, "2=" + SEED2.hex())
        assert rc == want and f"mismatches {want}\n" in out, (rule, outcome, out)


def zero_table_sample():
    """sample(), then three draws on a base table whose weights are all 0 (every prize sold out
    under REDRAW, NOTHING 0): losses that took no word."""
    c = sample()
    for u in range(3):
        c.draw(b"z%d" % u, [0, 0, 0, 0])
    return c


def test_a_table_whose_weights_sum_to_0_gives_losses_only(server_factory):
    server, c = plain(server_factory), zero_table_sample()
    assert c.entries[-1][6:] == [b"outcome", b"", b"pick", b""]
    rc, out = run(server, c, "2=" + SEED2.hex())
    assert (rc, out) == (0, "epochs 2 verified 2 unrevealed 0  draws 31 checked 31 mismatches 0\n")
    # anything but pick b"", outcome b"" and no rule is a mismatch
    for pick, outcome, rule in [(b"A", b"A", None), (b"", b"", b"soldout"), (b"", b"C", b"fallback"),
                                (b"", b"B", b"guarantee")]:
        c = zero_table_sample()
        c.entries[-1][7], c.entries[-1][9] = outcome, pick
        c.entries[-1] += [b"rule", rule] if rule else []
        d = c.entries[-1]
        if outcome:  # its win entry, which the module appends right before
            c.entries.insert(-1, [b"user", d[5], b"prize", outcome, b"draw", d[3]])
        rc, out = run(server, c, "2=" + SEED2.hex())
        assert rc == 1 and "mismatches 1\n" in out, (pick, outcome, rule, out)
    # weights summing beyond 64 bits (no table the module writes): malformed, not a hang
    c = sample()
    c.entries[c.find(type=b"table")[0]][7] = b"%d" % 2**64
    rc, out = run(server, c, "2=" + SEED2.hex())
    assert rc == 1 and ": table entry whose weights sum beyond 64 bits\n" in out, out


def test_a_changed_table_weight_is_detected(server_factory):
    server, c = plain(server_factory), sample()
    t = c.find(type=b"table", tier=b"")[0]
    assert c.entries[t][6:8] == [b"A", b"5"]
    c.entries[t][7] = b"50"
    rc, out = run(server, c, "2=" + SEED2.hex())
    assert rc == 1 and "the entry says pick" in out, out
    assert int(out.split("mismatches ")[1].split()[0]) >= 1


def test_a_wrong_revealed_seed_is_detected(server_factory):
    server, c = plain(server_factory), sample()
    rc, out = run(server, c, "2=" + SEED1.hex())
    assert rc == 1, out
    assert (f"argument 2=: epoch 2: SHA-256 of the seed is not the commitment "
            f"{hashlib.sha256(SEED2).hexdigest()}") in out, out
    assert out.startswith("epochs 2 verified 1 unrevealed 0  draws 28 checked 22 mismatches 1\n"), out
    r = c.find(type=b"reveal")[0]
    c.entries[r][5] = SEED2.hex().encode()  # the stream's own reveal entry, falsified
    rc, out = run(server, c, "2=" + SEED2.hex())
    assert rc == 1 and ": epoch 1: SHA-256 of the seed is not the commitment" in out, out
    assert "reveal entry " in out and "checked 6 mismatches 1\n" in out, out


def test_a_win_without_its_draw_entry_is_detected(server_factory):
    server, c = plain(server_factory), sample()
    c.entries.append([b"user", b"mallory", b"prize", b"A", b"draw", b"1000"])  # a fabricated win
    rc, out = run(server, c, "2=" + SEED2.hex())
    assert rc == 1 and "win entry (draw 1000) has no draw entry" in out, out
    c = sample()
    d = c.find(type=b"draw", outcome=b"B")[0]
    s = c.entries[d][3].decode()
    del c.entries[d]  # the draw entry of a real win removed
    rc, out = run(server, c, "2=" + SEED2.hex())
    assert rc == 1 and f"win entry (draw {s}) has no draw entry" in out, out
    c = sample()
    w = [i for i in c.find(prize=b"B") if int(c.entries[i][5]) > 2][0]  # a verifiable win
    c.entries[w][1] = b"someone else"  # handed to another user
    rc, out = run(server, c, "2=" + SEED2.hex())
    assert rc == 1 and "(user b'someone else', prize b'B') disagrees" in out, out


def test_a_draw_that_won_without_its_win_entry_is_detected(server_factory):
    server, c = plain(server_factory), sample()
    d = c.find(type=b"draw", outcome=b"B")[0]
    s = int(c.entries[d][3])
    assert c.entries[d - 1] == [b"user", c.entries[d][5], b"prize", b"B", b"draw", b"%d" % s]
    del c.entries[d - 1]  # the win entry removed (XDEL): a prize answered but not in the stream
    rc, out = run(server, c, "2=" + SEED2.hex())
    assert rc == 1 and f"mismatches 1\nmismatch " in out, out
    assert f": draw {s} won b'B' and has no win entry\n" in out, out
    # unless the draw entry is the first entry read (the stream trimmed between the two): not
    # checked, said so, no mismatch (its epoch's seed unrevealed: its table is not needed)
    c = Campaign()
    c.new_epoch(SEED1)
    c.draw(b"u", [1, 0, 0, 0])  # A, always
    c.draw(b"v", [1, 0, 0, 0])
    assert [e[1] for e in c.entries] == [b"epoch", b"table", b"u", b"draw", b"v", b"draw"]
    c.entries = [c.entries[3]] + c.entries[:2] + c.entries[4:]
    rc, out = run(server, c)
    assert rc == 0 and "draws 2 checked 0 mismatches 0\nnot checked " in out, out
    assert out.endswith(": draw 1 won, its win entry is not in the stream\n"), out


def test_a_replayed_or_malformed_draw_entry_is_detected(server_factory):
    server, c = plain(server_factory), sample()
    d = c.find(type=b"draw", user=b"u3")[0]
    c.entries.append(list(c.entries[d]))  # the same draw once more, at the end
    c.entries[c.find(type=b"draw", outcome=b"")[0]][8] = b"choice"  # `pick` misnamed, in a loss
    rc, out = run(server, c, "2=" + SEED2.hex())
    assert rc == 1 and "mismatches 2\n" in out, out
    assert ": malformed draw entry" in out, out
    assert f"draw number {int(c.entries[d][3])} is not above the previous draw entry's 30" in out, out


def test_usage_and_a_stream_without_epochs_exit_2(server_factory):
    server, c = plain(server_factory), sample()
    run(server, c)
    p = subprocess.run([sys.executable, str(VERIFIER), f"redis://127.0.0.1:{server.port}", c.key,
                        "--stream", "nothing-here"], capture_output=True, text=True, timeout=60)
    assert (p.returncode, p.stdout) == (2, "")
    assert p.stderr == ("error: no epoch entry in stream b'nothing-here' "
                        "(not a VERIFIABLE campaign's stream? give --stream)\n")
    p = subprocess.run([sys.executable, str(VERIFIER), "redis://127.0.0.1:1", "k", "x=1"],
                       capture_output=True, timeout=60)
    assert p.returncode == 2 and b"EPOCH=SEEDHEX" in p.stderr


def test_vectors_are_the_committed_file():
    p = subprocess.run([sys.executable, str(VERIFIER), "--vectors"], capture_output=True, timeout=60)
    assert p.returncode == 0 and p.stdout == (H.REPO / "docs" / "verify-vectors.json").read_bytes()


def test_hostile_entries_and_a_table_of_65536_prizes(server_factory):
    """Entries no module writes give mismatch lines, never a traceback; a table of 65,536 prizes
    costs once, not once per draw (its prefix sums were recomputed for every draw: 5,000 draws
    took 6 s, 50,000 draws a minute)."""
    import time
    server, c = plain(server_factory), Campaign()
    c.new_epoch(SEED1)
    n = 65_536
    table = [b"type", b"table", b"from_draw", b"1", b"tier", b""]
    for i in range(n):
        table += [b"p%d" % i, b"0"]
    c.entries.append(table + [b"NOTHING", b"1"])  # W = 1: every draw picks NOTHING
    for s in range(1, 5_001):
        c.entries.append([b"type", b"draw", b"draw", b"%d" % s, b"user", b"u\0\xff%d" % s,
                          b"outcome", b"", b"pick", b""])
    c.reveal(1, SEED1)
    hostile = [
        [b"type", b"\xff" * (1 << 20), b"x", b"\0"],  # an unknown type of 1 MB: not a draw
        [b"type", b"draw"] + [b"f%d" % i if i % 2 == 0 else b"\0\xff" for i in range(100_000)],
        [b"user", b"u", b"type", b"draw", b"draw", b"5001"],  # type not first: a win without prize
        [b"type", b"draw", b"draw", b"x1", b"user", b"u", b"outcome", b"", b"pick", b""],
        [b"type", b"draw", b"draw", b"99999999999999999999", b"user", b"u", b"outcome", b"",
         b"pick", b"\xff"],
        [b"type", b"draw", b"draw", b"5002", b"draw", b"5003", b"user", b"u", b"outcome", b"",
         b"pick", b""],
        [b"type", b"table", b"from_draw", b"1", b"tier", b"t", b"a", b"99999999999999999999",
         b"NOTHING", b"99999999999999999999"],
        [b"type", b"epoch", b"epoch", b"1" * 30, b"commitment", b"\0", b"from_draw", b"1"],
    ]
    c.entries += hostile
    start = time.monotonic()
    rc, out = run(server, c)
    took = time.monotonic() - start
    print(f"verified in {took:.1f} s")
    assert rc == 1, out
    assert out.startswith("epochs 1 verified 1 unrevealed 0  draws 5004 checked 5001 mismatches 7\n"), out
    assert "win entry without field b'prize'" in out and "malformed draw entry" in out, out
    assert "weights sum beyond 64 bits" in out and "not a number: b'111111" in out, out
    assert "x = 0 picks b'', the entry says pick b'\\xff'" in out, out
    assert took < 4, took
