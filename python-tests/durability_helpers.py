"""Extra helpers for the durability / hostile-input tests (persistence/, replication/, and the
feature tests that also check saving and replicas: test_flow.py, test_transfer.py, ...).

Builds on lottery_helpers (RedisServer, RawClient, stats/user/...); nothing here changes them.

Contents
- replication waits: WAIT with an assertion, equal replication offsets along a chain;
- campaign comparison: DEBUG DIGEST-VALUE, STATS, USER sample, XRANGE of the wins stream;
- persistence waits: AOF rewrite finished, RDB loaded;
- fast bulk loading (CLIENT REPLY OFF around big pipelined batches);
- AOF reading (the RESP commands of an AOF, preamble skipped) to obtain real LOTTERY.APPLY
  blobs;
- the DUMP format: CRC-64/Jones (own bitwise implementation), RDB length encoding, LZF
  decompression, and a parser/builder for a module value (RDB_TYPE_MODULE_2).
"""
import glob
import os
import socket
import time

import lottery_helpers as H

# --------------------------------------------------------------------------------------------
# replication


def wait_acked(r, n=1, timeout_ms=10000):
    """WAIT n timeout_ms and assert that n replicas acknowledged."""
    got = r.execute_command("WAIT", n, timeout_ms)
    assert got >= n, f"WAIT {n} {timeout_ms}: only {got} replica(s) acknowledged"
    return got


def repl_info(r):
    return r.info("replication")


def wait_role(r, role, timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if repl_info(r).get("role") == role:
            return
        time.sleep(0.02)
    raise AssertionError(f"role did not become {role}: {repl_info(r)}")


def wait_same_offset(clients, timeout=20):
    """Poll until every server reports the same master_repl_offset (a chain has caught up)."""
    deadline = time.time() + timeout
    offs = None
    while time.time() < deadline:
        offs = [repl_info(c)["master_repl_offset"] for c in clients]
        if len(set(offs)) == 1:
            return offs[0]
        time.sleep(0.05)
    raise AssertionError(f"replication offsets never became equal: {offs}")


# --------------------------------------------------------------------------------------------
# comparing campaigns


def digest(r, key):
    """DEBUG DIGEST-VALUE of one key, as a str (40 hex digits)."""
    rep = r.execute_command("DEBUG", "DIGEST-VALUE", key)
    assert isinstance(rep, list) and len(rep) == 1, rep
    d = rep[0]
    return d.decode() if isinstance(d, bytes) else d


def db_digest(r):
    d = r.execute_command("DEBUG", "DIGEST")
    return d.decode() if isinstance(d, bytes) else d


def users_state(server, key, users):
    """{user: USER dict} read through one pipelined raw connection (bytes replies)."""
    raw = server.raw()
    try:
        reps = raw.pipeline([("LOTTERY.USER", key, u) for u in users])
    finally:
        raw.close()
    out = {}
    for u, rep in zip(users, reps):
        assert isinstance(rep, list), (u, rep)
        names = [k.decode() for k in rep[0::2]]
        assert names == H.USER_FIELDS, names
        out[u] = dict(zip(names, rep[1::2]))
    return out


def campaign_view(server, key, users, clock):
    """Everything comparable about one campaign, read with the node's clock pinned at clock.

    (USER's cooldown_left_ms and STATS's state depend on the clock of the node that answers.)
    """
    rb = server.bclient()
    H.pin(rb, clock)
    st = H.stats(rb, key)
    raw = server.raw()
    try:
        xr = H.xrange_raw(raw, st["stream"])
        xlen = raw.call("XLEN", st["stream"])
    finally:
        raw.close()
    return {
        "digest": digest(rb, key),
        "stats": st,
        "users": users_state(server, key, users),
        "xrange": xr,
        "xlen": xlen,
    }


def assert_same_view(a, b, what=""):
    assert a["digest"] == b["digest"], f"{what}: DIGEST-VALUE differs"
    assert a["stats"] == b["stats"], f"{what}: STATS differ:\n{a['stats']}\n{b['stats']}"
    diff = [u for u in a["users"] if a["users"][u] != b["users"].get(u)]
    assert not diff, f"{what}: USER differs for {len(diff)} users, e.g. {diff[:3]}: " \
                     f"{a['users'][diff[0]]} vs {b['users'].get(diff[0])}"
    assert a["xlen"] == b["xlen"], f"{what}: XLEN {a['xlen']} vs {b['xlen']}"
    assert a["xrange"] == b["xrange"], f"{what}: XRANGE of the wins stream differs"


# --------------------------------------------------------------------------------------------
# persistence waits


def wait_aof_rewrite(r, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        info = r.info("persistence")
        if info["aof_rewrite_in_progress"] == 0 and info["aof_rewrite_scheduled"] == 0:
            assert info["aof_last_bgrewrite_status"] == "ok", info
            return info
        time.sleep(0.05)
    raise AssertionError("AOF rewrite did not finish")


def wait_loaded(port, timeout=300):
    """Poll until the server answers PING and reports loading:0. Returns seconds waited."""
    import redis
    t0 = time.time()
    deadline = t0 + timeout
    while time.time() < deadline:
        try:
            c = redis.Redis(host="127.0.0.1", port=port, socket_timeout=5)
            if c.ping() and c.info("persistence")["loading"] == 0:
                c.close()
                return time.time() - t0
        except (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError,
                redis.ResponseError):
            pass
        time.sleep(0.01)
    raise AssertionError("server did not finish loading")


# --------------------------------------------------------------------------------------------
# fast pipelining


def fast_pipeline(port, batches):
    """Send big batches of commands with replies switched off (CLIENT REPLY OFF), each batch
    followed by CLIENT REPLY ON, whose +OK is the only reply read: fast bulk loading.

    batches: iterable of lists of command tuples (or pre-encoded bytes). Errors are not seen
    here: check the result afterwards (e.g. LOTTERY.STATS counters).
    """
    s = socket.create_connection(("127.0.0.1", port), timeout=300)
    off = H.encode_command("CLIENT", "REPLY", "OFF")
    on = H.encode_command("CLIENT", "REPLY", "ON")
    try:
        for batch in batches:
            data = batch if isinstance(batch, (bytes, bytearray)) else encode_many(batch)
            s.sendall(off + data + on)
            buf = b""
            while not buf.endswith(b"+OK\r\n"):
                chunk = s.recv(65536)
                if not chunk:
                    raise ConnectionError("server closed the connection")
                buf += chunk
            assert buf == b"+OK\r\n", buf[:200]
    finally:
        s.close()


def encode_many(commands):
    return b"".join(H.encode_command(*c) for c in commands)


# --------------------------------------------------------------------------------------------
# AOF reading


def parse_resp_commands(data: bytes):
    """Parse a sequence of RESP arrays of bulk strings (an AOF body). Returns [[bytes...]]."""
    out = []
    i = 0
    n = len(data)
    while i < n:
        if data[i:i + 1] != b"*":
            raise ValueError(f"not a RESP array at offset {i}: {data[i:i + 20]!r}")
        j = data.index(b"\r\n", i)
        argc = int(data[i + 1:j])
        i = j + 2
        args = []
        for _ in range(argc):
            assert data[i:i + 1] == b"$", data[i:i + 20]
            j = data.index(b"\r\n", i)
            ln = int(data[i + 1:j])
            i = j + 2
            args.append(data[i:i + ln])
            i += ln + 2
        out.append(args)
    return out


def aof_files(dirpath):
    """The AOF files of a Redis 7 appendonlydir in manifest order (base first)."""
    d = os.path.join(dirpath, "appendonlydir")
    manifest = glob.glob(os.path.join(d, "*.manifest"))
    assert manifest, f"no AOF manifest in {d}"
    files = []
    with open(manifest[0]) as f:
        for line in f:
            parts = line.split()
            if not parts:
                continue
            kv = dict(zip(parts[0::2], parts[1::2]))
            files.append((0 if kv.get("type") == "b" else 1, int(kv.get("seq", 0)),
                          os.path.join(d, kv["file"])))
    return [p for _, _, p in sorted(files)]


def aof_commands(dirpath):
    """All RESP commands in the AOF (an RDB preamble, if any, is skipped)."""
    cmds = []
    for path in aof_files(dirpath):
        with open(path, "rb") as f:
            data = f.read()
        if data.startswith(b"REDIS"):
            continue  # RDB preamble base file: no commands to parse
        cmds += parse_resp_commands(data)
    return cmds


# --------------------------------------------------------------------------------------------
# CRC-64/Jones, own bitwise implementation (cross-checked against a real DUMP and against
# lottery_helpers.crc64 in persistence/test_hostile.py)

CRC64_POLY = 0xAD93D23594C935A9


def _reflect(v, width):
    r = 0
    for _ in range(width):
        r = (r << 1) | (v & 1)
        v >>= 1
    return r


_POLY_REFLECTED = _reflect(CRC64_POLY, 64)
_T = []
for _i in range(256):
    _c = _i
    for _ in range(8):
        _c = (_c >> 1) ^ _POLY_REFLECTED if _c & 1 else _c >> 1
    _T.append(_c)


def crc64_jones(data: bytes, crc: int = 0) -> int:
    """Reflected CRC-64 with poly 0xad93d23594c935a9, init 0, no final xor (Redis crc64.c)."""
    t = _T
    for b in data:
        crc = t[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc


def split_dump(blob: bytes):
    """DUMP payload -> (object bytes, rdb version int, crc int)."""
    assert len(blob) >= 10, blob
    return blob[:-10], int.from_bytes(blob[-10:-8], "little"), int.from_bytes(blob[-8:], "little")


def make_dump(obj: bytes, rdbver: int) -> bytes:
    body = obj + rdbver.to_bytes(2, "little")
    return body + crc64_jones(body).to_bytes(8, "little")


# --------------------------------------------------------------------------------------------
# RDB object encoding for module values

RDB_TYPE_MODULE_2 = 7
OP_EOF, OP_SINT, OP_UINT, OP_FLOAT, OP_DOUBLE, OP_STRING = 0, 1, 2, 3, 4, 5
RDB_ENC_LZF = 3
_MODULE_CHARSET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def module_type_id(name: str, encver: int) -> int:
    assert len(name) == 9
    mid = 0
    for ch in name:
        mid = (mid << 6) | _MODULE_CHARSET.index(ch)
    return (mid << 10) | encver


def decode_module_type_id(mid: int):
    encver = mid & 1023
    x = mid >> 10
    name = ""
    for _ in range(9):
        name = _MODULE_CHARSET[x & 63] + name
        x >>= 6
    return name, encver


def enc_len(n: int) -> bytes:
    if n < (1 << 6):
        return bytes([n])
    if n < (1 << 14):
        return bytes([0x40 | (n >> 8), n & 0xFF])
    if n <= 0xFFFFFFFF:
        return b"\x80" + n.to_bytes(4, "big")
    return b"\x81" + n.to_bytes(8, "big")


def dec_len(buf: bytes, i: int):
    """-> (value, is_encoded, next offset). is_encoded: special string encoding (11xxxxxx)."""
    b = buf[i]
    t = b >> 6
    if t == 0:
        return b & 0x3F, False, i + 1
    if t == 1:
        return ((b & 0x3F) << 8) | buf[i + 1], False, i + 2
    if t == 3:
        return b & 0x3F, True, i + 1
    if b == 0x80:
        return int.from_bytes(buf[i + 1:i + 5], "big"), False, i + 5
    if b == 0x81:
        return int.from_bytes(buf[i + 1:i + 9], "big"), False, i + 9
    raise ValueError(f"bad length byte {b:#x} at {i}")


def lzf_decompress(data: bytes, out_len: int) -> bytes:
    out = bytearray()
    i = 0
    while i < len(data):
        ctrl = data[i]
        i += 1
        if ctrl < 32:
            out += data[i:i + ctrl + 1]
            i += ctrl + 1
        else:
            ln = ctrl >> 5
            if ln == 7:
                ln += data[i]
                i += 1
            ref = len(out) - ((ctrl & 0x1F) << 8) - data[i] - 1
            i += 1
            for _ in range(ln + 2):
                out.append(out[ref])
                ref += 1
    assert len(out) == out_len, (len(out), out_len)
    return bytes(out)


def parse_module_value(obj: bytes):
    """Parse an RDB module value (type 7): {'mid', 'name', 'encver', 'items'}.

    items: list of dicts {op, off (of the opcode), voff (of the value), vend, value,
    compressed (for strings)}, the last one being OP_EOF.
    """
    assert obj[0] == RDB_TYPE_MODULE_2, f"not RDB_TYPE_MODULE_2: {obj[0]}"
    mid, enc, i = dec_len(obj, 1)
    assert not enc
    name, encver = decode_module_type_id(mid)
    items = []
    while True:
        off = i
        op, enc, i = dec_len(obj, i)
        item = {"op": op, "off": off, "voff": i}
        if op == OP_EOF:
            item.update(vend=i, value=None)
            items.append(item)
            break
        if op in (OP_SINT, OP_UINT):
            v, enc, i = dec_len(obj, i)
            item["value"] = v
        elif op == OP_STRING:
            ln, enc, j = dec_len(obj, i)
            if enc:
                assert ln == RDB_ENC_LZF, f"unexpected string encoding {ln}"
                clen, _, j = dec_len(obj, j)
                ulen, _, j = dec_len(obj, j)
                item["value"] = lzf_decompress(obj[j:j + clen], ulen)
                item["compressed"] = True
                i = j + clen
            else:
                item["value"] = obj[j:j + ln]
                item["compressed"] = False
                i = j + ln
        else:
            raise ValueError(f"unexpected module opcode {op} at {off}")
        item["vend"] = i
        items.append(item)
    assert i == len(obj), f"{len(obj) - i} trailing bytes after the module EOF"
    return {"mid": mid, "name": name, "encver": encver, "items": items}


def build_module_value(mid: int, items) -> bytes:
    """Re-encode (uncompressed) from [(op, value)] (OP_EOF appended if missing)."""
    out = bytearray([RDB_TYPE_MODULE_2]) + enc_len(mid)
    for op, v in items:
        out += enc_len(op)
        if op == OP_EOF:
            return bytes(out)
        if op in (OP_SINT, OP_UINT):
            out += enc_len(v)
        elif op == OP_STRING:
            out += enc_len(len(v)) + v
        else:
            raise ValueError(op)
    out += enc_len(OP_EOF)
    return bytes(out)
