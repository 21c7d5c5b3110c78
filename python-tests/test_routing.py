"""The Python routing helper (routing/lottery_route.py) against the shared vectors
(routing/vectors.tsv), which engine/src/route.rs checks too. No server needed."""
import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "routing"))

import lottery_route as R  # noqa: E402


def _rows():
    with open(os.path.join(ROOT, "routing", "vectors.tsv"), encoding="ascii") as f:
        lines = f.read().splitlines()
    assert lines[0] == "user_hex\tshards\tindex"
    rows = []
    for line in lines[1:]:
        if line:
            h, n, i = line.split("\t")
            rows.append((bytes.fromhex(h), int(n), int(i)))
    return rows


def test_every_vector_row():
    rows = _rows()
    assert len(rows) >= 30
    for user, n, index in rows:
        assert R.shard_index(user, n) == index, (user, n)
        assert 0 <= index < n


def test_str_user_is_utf8():
    assert R.shard_index("抽奖用户", 7) == R.shard_index("抽奖用户".encode("utf-8"), 7)
    assert R.shard_index("user:1", 1024) == R.shard_index(b"user:1", 1024)


def test_zero_shards_and_bad_input():
    assert R.shard_index(b"x", 0) == 0
    with pytest.raises(ValueError):
        R.shard_index(b"x", 1 << 32)
    with pytest.raises(TypeError):
        R.shard_index(12, 3)


class _FakeRedis:
    def __init__(self, h):
        self.h = h

    def hgetall(self, key):
        return self.h.get(key, {})


def _desc(over=None):
    d = {b"format": b"1", b"name": b"spring", b"shards": b"2", b"route": R.ROUTE_NAME.encode(),
         b"shard:0": b"{spring.0}", b"shard:1": b"{spring.1.3}", b"stock:phone": b"5",
         b"stock:points": b"INF", b"created_ms": b"1"}
    d.update(over or {})
    return {"lottery:shards:spring": d}


def test_load_descriptor_and_shard_key():
    d = R.load_descriptor(_FakeRedis(_desc()), "spring")
    assert d == {"name": "spring", "shards": 2, "keys": ["{spring.0}", "{spring.1.3}"],
                 "stock": {"phone": 5, "points": "INF"}}
    for u in ("alice", b"bob", "user:1"):
        assert R.shard_key(d, u) == d["keys"][R.shard_index(u, 2)]
    assert R.descriptor_key("spring") == "lottery:shards:spring"


def test_load_descriptor_rejects_bad_ones():
    with pytest.raises(LookupError):
        R.load_descriptor(_FakeRedis({}), "spring")
    with pytest.raises(ValueError):
        R.load_descriptor(_FakeRedis(_desc({b"format": b"2"})), "spring")
    with pytest.raises(ValueError):
        R.load_descriptor(_FakeRedis(_desc({b"route": b"crc32/1"})), "spring")
    with pytest.raises(ValueError):
        R.load_descriptor(_FakeRedis(_desc({b"shards": b"3"})), "spring")
    # Hand-edited shard keys: another campaign's, another index's, twice, a field past the count.
    for bad in ({b"shard:1": b"{autumn.1}"}, {b"shard:1": b"{spring.0}"},
                {b"shard:1": b"{spring.1.01}"}, {b"shard:2": b"{spring.2}"},
                {b"name": b"autumn"}):
        with pytest.raises(ValueError):
            R.load_descriptor(_FakeRedis(_desc(bad)), "spring")
