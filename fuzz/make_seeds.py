#!/usr/bin/env python3
"""Writes the seed corpora in seeds/<target>/ (python3 stdlib only).

Run once after changing the fuzzed types; the seeds are committed. The
fuzzers themselves keep their growing corpora outside the clone
(scripts/fuzz)."""
import gzip
import json
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def write(target, name, data):
    path = os.path.join(HERE, "seeds", target)
    os.makedirs(path, exist_ok=True)
    with open(os.path.join(path, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


RECORD = {
    "id": 42, "delta": -7, "score": 0.5, "ratio": 1.25, "active": True,
    "initial": "é", "name": "Ada \"Lovelace\"\n", "tags": ["a", "", "ü"],
    "nickname": None, "counts": {"x": 1, "y": -2}, "names_by_id": {"3": "three"},
    "blob": [0, 255], "kind": {"Struct": {"limit": 9, "flags": [True, False]}},
    "children": [{"key": "k", "weight": 2.5, "levels": [1, -1]},
                 {"key": "", "weight": None, "levels": []}],
    "pair": [7, "seven"], "small": -128, "wide": 65535,
}
JSON_SEEDS = {
    "record": json.dumps(RECORD),
    "kinds": json.dumps(["Unit", {"Newtype": 3}, {"Tuple": [-1, "t"]}]),
    "map": json.dumps({"a": [1.5, -0.0, 1e300], "b": None}),
    "string": json.dumps("line\u2028 \\ \ud83d\ude00"),
    "tuple": "[18446744073709551615,-9223372036854775808,true]",
    "nested": "[[[[{\"a\":[{}]}]]]]",
}

# MessagePack, hand-encoded: fixmap/fixstr/ints/arrays/nil/float64.
def mp_str(s):
    b = s.encode()
    return bytes([0xA0 | len(b)]) + b if len(b) < 32 else b"\xd9" + bytes([len(b)]) + b

def mp(v):
    if v is None:
        return b"\xc0"
    if v is True:
        return b"\xc3"
    if v is False:
        return b"\xc2"
    if isinstance(v, int):
        if 0 <= v < 128:
            return bytes([v])
        if -32 <= v < 0:
            return struct.pack("b", v)
        return b"\xd3" + struct.pack(">q", v) if v < 0 else b"\xcf" + struct.pack(">Q", v)
    if isinstance(v, float):
        return b"\xcb" + struct.pack(">d", v)
    if isinstance(v, str):
        return mp_str(v)
    if isinstance(v, list):
        return bytes([0x90 | len(v)]) + b"".join(mp(x) for x in v)
    if isinstance(v, dict):
        return bytes([0x80 | len(v)]) + b"".join(mp(k) + mp(x) for k, x in v.items())
    raise TypeError(v)

MP_RECORD = dict(RECORD, counts={"x": 1}, names_by_id={}, blob=[1, 2])

# postcard, hand-encoded: varints, zigzag, length-prefixed strings.
def varint(n):
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)

def zigzag(n):
    return varint((n << 1) ^ (n >> 63))

def pc_str(s):
    b = s.encode()
    return varint(len(b)) + b

PC_RECORD = (
    varint(42) + zigzag(-7) + struct.pack("<d", 0.5) + struct.pack("<f", 1.25) + b"\x01"
    + pc_str("é") + pc_str("Ada") + varint(2) + pc_str("a") + pc_str("ü")
    + b"\x01" + pc_str("nick")  # nickname: Some
    + varint(1) + pc_str("x") + zigzag(1)  # counts
    + varint(1) + varint(3) + pc_str("three")  # names_by_id
    + varint(2) + b"\x00\xff"  # blob
    + varint(2) + zigzag(-1) + pc_str("t")  # kind: Tuple
    + varint(1) + pc_str("k") + b"\x01" + struct.pack("<d", 2.5) + varint(1) + zigzag(5)
    + b"\x07" + pc_str("seven") + b"\x80" + varint(65535)
)

# protobuf, hand-encoded Profile.
def pb_key(field, wire):
    return varint(field << 3 | wire)

def pb_len(field, data):
    return pb_key(field, 2) + varint(len(data)) + data

ADDRESS = pb_len(1, b"Paris") + pb_key(2, 0) + varint(75001) + pb_len(3, pb_len(1, b"FR"))
PROFILE = (
    pb_key(1, 0) + varint(42) + pb_len(2, b"Ada") + pb_key(3, 1) + struct.pack("<d", 0.5)
    + pb_key(4, 0) + b"\x01" + pb_len(5, b"a") + pb_len(5, b"b")
    + pb_len(6, pb_len(1, b"x") + pb_key(2, 0) + varint(3))
    + pb_len(7, ADDRESS) + pb_len(8, b"\x00\xff") + pb_key(9, 0) + zigzag(-5)
    + pb_key(10, 0) + b"\x01" + pb_len(11, b"a@b.c") + pb_len(13, ADDRESS)
    + pb_len(14, struct.pack("<II", 1, 2)) + pb_key(15, 5) + struct.pack("<f", 0.25)
)


def header(fresh, created):
    return struct.pack(">dd", fresh, created)


def main():
    for name, text in JSON_SEEDS.items():
        write("loads_json", name, text)
    write("loads_msgpack", "record", mp(MP_RECORD))
    write("loads_msgpack", "kinds", mp(["Unit", {"Newtype": 3}, {"Tuple": [-1, "t"]}]))
    write("loads_msgpack", "map", mp({"a": [1.5, -0.0], "b": None}))
    write("loads_msgpack", "tuple", mp([2**64 - 1, -2**63, True]))
    write("loads_postcard", "record", PC_RECORD)
    write("loads_postcard", "kinds", varint(2) + b"\x00" + b"\x01" + varint(3))
    write("loads_postcard", "tuple", varint(2**64 - 1) + zigzag(-2**63) + b"\x01")
    write("loads_protobuf", "profile", PROFILE)
    write("loads_protobuf", "address", ADDRESS)
    # entry_codec: a mode byte (serializer = mode % 3, type = (mode & 0x7f)
    # // 3 % 3, 0x80: gzip the bytes in the target), then the stored bytes.
    h = header(1_700_000_060.0, 1_700_000_000.5)
    write("entry_codec", "json_record", b"\x00" + h + JSON_SEEDS["record"].encode())
    write("entry_codec", "json_value_never_stale", b"\x03" + header(float("inf"), 1e9) + b'{"a":[1,null]}')
    write("entry_codec", "json_string_gzip", b"\x06" + gzip.compress(h + b'"hi"', mtime=0))
    write("entry_codec", "msgpack_record", b"\x01" + h + mp(MP_RECORD))
    write("entry_codec", "postcard_record", b"\x02" + h + PC_RECORD)
    write("entry_codec", "truncated", b"\x00" + h[:9])
    write("entry_codec", "json_record_gzipped_here", b"\x80" + h + JSON_SEEDS["record"].encode())
    write("entry_codec", "msgpack_value_gzipped_here", b"\x84" + h + mp({"a": [1, None]}))
    # roundtrip_values and key_template take `arbitrary` input: any bytes.
    write("roundtrip_values", "zeros", bytes(64))
    write("roundtrip_values", "mixed", bytes(range(256)))
    for i, (template, args) in enumerate([
        ("user:{}", ["42"]), ("order:{0}:{1}:{0}", ["a", "b"]), ("{{lit}}:{}", ["x"]),
        ("static", []), ("a:{}:{0}", ["1"]), ("{64}", []), ("user:{", []),
    ]):
        # `arbitrary` reads a String as a length-prefixed run when more
        # fields follow; plain text is a good enough start for the fuzzer.
        write("key_template", "t%d" % i, template + "\x00" + "\x00".join(args))
    for i, (a, b) in enumerate([
        ("user:42", "user_42"), ("a/b", "a%2Fb"), ("../../x", "~..%2F..%2Fx"),
        ("", "~"), ("." * 3, "h" + "0" * 64), ("k" * 300, "nul\0"), ("é/ü", "~"),
    ]):
        write("file_name", "k%d" % i, a + "\x00" + b)
    for i, url in enumerate([
        "redis://127.0.0.1:6379/0",
        "redis://user:hunter2@localhost:6380/3",
        "redis://:p%40ss@h",
        "rediss://:secret@cache.example:6380",
        "redis-cluster://:pw@10.0.0.1:30001?node=10.0.0.2:30002&node=10.0.0.3:30003",
        "redis-sentinel://u:pw@s1:26379/1?sentinelServiceName=mymaster&sentinelUsername=su&sentinelPassword=sp&node=s2:26380",
        "redis+unix:///run/redis.sock",
        "redis://[::1]:6379",
        "redis://user:hunter2@[bad",
    ]):
        write("redis_url", "u%d" % i, url)


if __name__ == "__main__":
    main()
