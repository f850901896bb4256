#!/usr/bin/env python3
"""Writes the seed corpus of each fuzzer into fuzz/corpus/<name>/: small
inputs in each harness's format (see the comment at the top of each
fuzz_*.c). Run from the repository root; the files are committed, so this
is only needed when a format changes."""
import os
import struct

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")


def varint(v):
    out = bytearray()
    while v >= 0x80:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)
    return bytes(out)


def zigzag(v):
    return (v << 1) ^ (v >> 63) if v >= 0 else ((-v) << 1) - 1


def block(entries):
    """codec.c's block format: entries sorted by (type, key)."""
    out, offsets, start = bytearray(varint(len(entries))), [], 0
    prev = (0, 0, 0)
    for i, (t, k, e) in enumerate(entries):
        if i % 16 == 0:
            if i:
                offsets.append(len(out) - start)
            prev = (0, 0, 0)
        dt = t - prev[0]
        out += varint(dt) + varint(k - prev[1] if dt == 0 else k) + varint(zigzag(e - prev[2]))
        prev = (t, k, e)
    for o in offsets:
        out += struct.pack("<I", o)
    return bytes(out)


def snapblob(refs, tail=None):
    out = bytearray(varint(len(refs)))
    for b, n in refs:
        out += varint(b) + varint(n)
    return bytes(out) + (block(tail) if tail is not None else b"")


def write(name, seeds):
    d = os.path.join(ROOT, name)
    os.makedirs(d, exist_ok=True)
    for i, s in enumerate(seeds):
        with open(os.path.join(d, "seed-%02d" % i), "wb") as f:
            f.write(s)


def codec_seeds():
    members = [(5, k, 100 + k) for k in range(2, 42)]
    lists = [[], [(1, 1, 1)], [(1, 1, 1), (2, 1, 3), (3, 1, 0)], members[:16], members[:17],
             members, [(1, 1, 7), (5, 2, 0), (5, 3, 9)], [(2**40, 2**40, 2**40)]]
    seeds = [b"\x00" + block(l) for l in lists]
    seeds += [b"\x01" + snapblob([]), b"\x01" + snapblob([(3, 40)]),
              b"\x01" + snapblob([(3, 40), (9, 17)], members[:5]),
              b"\x01" + snapblob([(1, 1)], []), b"\x01" + snapblob([(7, 2)] * 64)]
    return seeds


def out_new(rewrote, hash_, last_sent, lists):
    b = bytes([1, rewrote]) + struct.pack("<Q", hash_) + varint(last_sent)
    for l in lists:
        b += varint(len(l)) + b"".join(varint(x) for x in l)
    return b


def output_seeds():
    # flags (bit 0: body, bit 1: own event JSON), event nid, row bytes
    rows = [(0, 3, out_new(0, 0x1234, 3, [[3], [2, 3], [], [], []])),
            (0, 2, out_new(1, 0, 0, [[2], [1, 2], [1], [2], [1]])),
            (0, 5, out_new(0, 1, 7, [[4, 5, 6, 7], [], [], [], []])),
            (0, 1, bytes([2])), (2, 0, bytes([2])), (0, 9, bytes([2])),
            (1, 0, b'{"type":"purge_room","purge_room":{"room_id":"!r:x"}}'),
            (3, 3, b'{"type":"old_room_event","old_room_event":{"event_id":"$t"}}'),
            (3, 3, b'{"type":"new_room_event","new_room_event":{}}'),
            (0, 3, out_new(0, 0, 3, [[3], [], [], [], []]) + b"\x00")]
    return [bytes([f, e]) + r for f, e, r in rows]


CREATE = ('{"type":"m.room.create","state_key":"","sender":"@a:x","room_id":"!r:x",'
          '"event_id":"$create:x","prev_events":[],"content":{"creator":"@a:x","room_version":"%s"}}')
def MEMBER(u, m, s=None):
    return ('{"type":"m.room.member","state_key":"%s","sender":"%s","room_id":"!r:x",'
            '"event_id":"$m%s","content":{"membership":"%s"}}' % (u, s or u, m + u, m))
POWER = ('{"type":"m.room.power_levels","state_key":"","sender":"@a:x","room_id":"!r:x",'
         '"event_id":"$pl","content":{"users":{"@a:x":100,"@b:x":50},"ban":50,"kick":"50"}}')
def RULES(r):
    return ('{"type":"m.room.join_rules","state_key":"","sender":"@a:x","room_id":"!r:x",'
            '"event_id":"$jr","content":{"join_rule":"%s","allow":[]}}' % r)
REDACT = ('{"type":"m.room.redaction","sender":"@b:x","room_id":"!r:x","redacts":"$x",'
          '"content":{"redacts":"$x"}}')


def auth_seeds():
    # version byte (an index into rs_room_versions: 0 is "1"), then lines
    cases = [(9, [CREATE % "10"]),
             (9, [MEMBER("@a:x", "join"), CREATE % "10"]),
             (9, [MEMBER("@d:y", "join"), CREATE % "10", POWER, RULES("public")]),
             (9, [MEMBER("@d:y", "join"), CREATE % "10", POWER, RULES("invite")]),
             (6, [MEMBER("@d:y", "knock"), CREATE % "7", RULES("knock"), MEMBER("@a:x", "join")]),
             (9, [MEMBER("@c:y", "invite", "@b:x"), CREATE % "10", POWER, MEMBER("@b:x", "join")]),
             (9, [MEMBER("@c:y", "ban", "@b:x"), CREATE % "10", POWER, MEMBER("@b:x", "join"),
                  MEMBER("@c:y", "join")]),
             (9, [POWER, CREATE % "10", POWER, MEMBER("@a:x", "join")]),
             (0, [REDACT, CREATE % "1", POWER, MEMBER("@b:x", "join")]),
             (10, [REDACT, CREATE % "11", POWER, MEMBER("@b:x", "join")]),
             (11, ['{"type":"m.room.create","state_key":"","sender":"@a:x",'
                   '"content":{"room_version":"12","additional_creators":["@b:x"]}}']),
             (3, [RULES("public"), CREATE % "4", MEMBER("@a:x", "join"), POWER]),
             (9, ['{"type":"m.room.member","state_key":"@d:y","sender":"@a:x","room_id":"!r:x",'
                  '"content":{"membership":"invite","third_party_invite":{"display_name":"d",'
                  '"signed":{"mxid":"@d:y","token":"t","signatures":{}}}}}', CREATE % "10",
                  MEMBER("@a:x", "join"), POWER])]
    return [bytes([v]) + "\n".join(lines).encode() for v, lines in cases]


def ingest_seeds():
    # byte 0 (bit 0: skip the auth rules), then ops: see fuzz_ingest.c op()
    M, P, R, T, MSG = 1, 2, 3, 4, 5
    def ev(t, user=0, key=0, memb=0, kind=0, prevs=(0,), state=(), mask=0x1f):
        s = bytes([3, t, user, key, memb, kind, len(prevs)]) + bytes(prevs)
        s += bytes([0x80 | (len(state) - 1)] + list(state)) if state else b"\x00"
        return s + bytes([mask])
    join = lambda u: ev(M, u, u, 0)
    seqs = [
        (1, ev(MSG) + ev(T) + ev(MSG)),
        (1, b"\x00" + ev(T) + ev(MSG) + b"\x02" + ev(MSG)),
        (1, b"\x00" + ev(M, 1, 1) + ev(M, 2, 2) + b"\x01" + ev(MSG, 1)),
        (1, ev(T) + ev(T, 0, 0, 0, 0, (0, 1)) + ev(MSG, 0, 0, 0, 6)),
        (1, ev(T) + ev(MSG, 0, 0, 0, 7) + ev(T, 0, 0, 0, 0, (0,), (0, 1))),
        (1, b"\x00" + ev(T) + ev(MSG, prevs=(9,)) + b"\x01"),
        (1, b"".join(ev(M, i % 4, i % 4, i % 3) for i in range(12)) + b"\x00" + ev(T) + b"\x02"),
        (0, join(1) + ev(MSG, 1) + ev(T, 1)),
        (0, b"\x00" + join(2) + ev(P, 0, 2 | 4) + ev(T, 2) + b"\x01"),
        (0, ev(M, 0, 3, 1) + join(3) + ev(M, 0, 3, 3) + ev(MSG, 3)),
        (0, ev(R, 0, 1) + join(1) + ev(M, 0, 1, 1) + join(1)),
        (0, join(1) + ev(MSG, 1, mask=0x03) + b"\x00" + join(2) + b"\x02" + ev(MSG, 2)),
        (0, ev(M, 1, 1, 4) + ev(MSG, 0, 0, 0, 6) + ev(T, 0, 0, 0, 7, (0,), (0, 1, 2))),
    ]
    return [bytes([a]) + s for a, s in seqs]


if __name__ == "__main__":
    write("fuzz_codec", codec_seeds())
    write("fuzz_output", output_seeds())
    write("fuzz_auth", auth_seeds())
    write("fuzz_ingest", ingest_seeds())
