"""Routing users to the shards of a sharded redis-lottery campaign.

Dependency-free: works with any redis-py style client (``r.hgetall(key)``), user ids given as
``bytes`` or ``str`` (``str`` is encoded as UTF-8). The algorithm is the one of
``engine/src/route.rs`` and both are checked against ``routing/vectors.tsv``.

    import redis, lottery_route
    r = redis.RedisCluster(host="127.0.0.1", port=7101)
    d = lottery_route.load_descriptor(r, "spring")
    r.execute_command("LOTTERY.DRAW", lottery_route.shard_key(d, "alice"), "alice")
"""

ROUTE_NAME = "fnv1a64-splitmix-mul/1"
DESCRIPTOR_PREFIX = "lottery:shards:"
FORMAT = "1"

_M64 = (1 << 64) - 1


def _user_bytes(user):
    if isinstance(user, str):
        return user.encode("utf-8")
    if isinstance(user, (bytes, bytearray, memoryview)):
        return bytes(user)
    raise TypeError("user id must be bytes or str, not %s" % type(user).__name__)


def shard_index(user, n):
    """The shard (0..n-1) of ``user`` in a campaign of ``n`` shards (0 when n == 0).

    FNV-1a 64 of the bytes, the splitmix64 finaliser, then (h * n) >> 64.
    """
    n = int(n)
    if n < 0 or n > 0xFFFFFFFF:
        raise ValueError("shard count %d out of range 0..4294967295" % n)
    h = 0xCBF29CE484222325
    for b in _user_bytes(user):
        h ^= b
        h = (h * 0x100000001B3) & _M64
    h ^= h >> 30
    h = (h * 0xBF58476D1CE4E5B9) & _M64
    h ^= h >> 27
    h = (h * 0x94D049BB133111EB) & _M64
    h ^= h >> 31
    return (h * n) >> 64


def descriptor_key(name):
    """The key of the descriptor hash of sharded campaign ``name``."""
    if isinstance(name, bytes):
        name = name.decode("utf-8")
    return DESCRIPTOR_PREFIX + name


def _text(v):
    return v.decode("utf-8") if isinstance(v, (bytes, bytearray)) else str(v)


MAX_SHARDS = 16384
MAX_CANDIDATES = 1_000_000


def is_shard_key(name, i, key):
    """Whether ``key`` is a key lottery-shards' ``create`` makes for shard ``i`` of ``name``:
    ``{NAME.i}`` or ``{NAME.i.k}`` with k in 1..999999 written without leading zeros."""
    prefix = "{%s.%d" % (name, i)
    if not (key.startswith(prefix) and key.endswith("}")):
        return False
    rest = key[len(prefix):-1]
    if rest == "":
        return True
    k = rest[1:]
    return (rest[0] == "." and k.isdigit() and k.isascii() and not k.startswith("0")
            and 1 <= int(k) < MAX_CANDIDATES)


def load_descriptor(r, name):
    """Read and validate the descriptor of ``name``.

    Returns {"name": str, "shards": int, "keys": [shard key, ...], "stock": {prize: int or "INF"}}.
    Raises LookupError when there is no descriptor, ValueError when it is malformed.
    """
    raw = r.hgetall(descriptor_key(name))
    if not raw:
        raise LookupError("no sharded campaign %r (key %r missing)" % (name, descriptor_key(name)))
    d = {_text(k): _text(v) for k, v in raw.items()}
    if d.get("format") != FORMAT:
        raise ValueError("descriptor format %r, expected %r" % (d.get("format"), FORMAT))
    if d.get("route") != ROUTE_NAME:
        raise ValueError("descriptor route %r, this helper knows %r" % (d.get("route"), ROUTE_NAME))
    try:
        shards = int(d["shards"])
    except (KeyError, ValueError):
        raise ValueError("descriptor has no valid shards field")
    if not 1 <= shards <= MAX_SHARDS:
        raise ValueError("descriptor shards %d out of range" % shards)
    if d.get("name", _text(name)) != _text(name):
        raise ValueError("descriptor of %r names campaign %r" % (_text(name), d.get("name")))
    keys = []
    for i in range(shards):
        k = d.get("shard:%d" % i)
        if not k:
            raise ValueError("descriptor has no shard:%d field" % i)
        if not is_shard_key(_text(name), i, k) or k in keys:
            raise ValueError("descriptor shard:%d = %r is not a key of shard %d of %r"
                             % (i, k, i, _text(name)))
        keys.append(k)
    for f in d:
        if f.startswith("shard:") and f not in ("shard:%d" % i for i in range(shards)):
            raise ValueError("descriptor field %r does not fit shards = %d" % (f, shards))
    stock = {}
    for k, v in d.items():
        if k.startswith("stock:"):
            stock[k[len("stock:"):]] = "INF" if v.upper() == "INF" else int(v)
    return {"name": d.get("name", _text(name)), "shards": shards, "keys": keys, "stock": stock}


def shard_key(descriptor, user):
    """The campaign key of ``user``'s shard, for LOTTERY.DRAW / USER / GRANT / BAN."""
    return descriptor["keys"][shard_index(user, descriptor["shards"])]


def _gen_vectors():
    """Print routing/vectors.tsv (python3 routing/lottery_route.py > routing/vectors.tsv)."""
    users = [b""]
    users += [("user:%d" % i).encode() for i in range(1, 11)]
    users += [b"+8613800138000", b"13912345678", b"+1-202-555-0143"]
    users += [b"\x00", b"\xff", b"\x00\x00\x00\x00", "抽奖用户".encode("utf-8"), b"alice", b"Bob"]
    users += [bytes((i * 7 + 3) & 0xFF for i in range(300))]
    counts = [1, 2, 3, 5, 7, 16, 1024, 4294967295]
    print("user_hex\tshards\tindex")
    for i, u in enumerate(users):
        # Each user with two shard counts, cycling, plus every count for a few users.
        picks = {counts[i % len(counts)], counts[(i * 3 + 1) % len(counts)]}
        if i in (1, 14, len(users) - 1):
            picks = set(counts)
        for n in sorted(picks):
            print("%s\t%d\t%d" % (u.hex(), n, shard_index(u, n)))


if __name__ == "__main__":
    _gen_vectors()
