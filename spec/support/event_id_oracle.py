# The test oracle of spec/v12_ingest_spec.lua: event IDs as the
# specification computes them, with matrix.org's canonicaljson and
# unpaddedbase64 (Debian's python3-canonicaljson; python3-signedjson
# depends on python3-unpaddedbase64), run as /usr/bin/python3. The
# redaction algorithm is transcribed here from the room version pages
# ("Redactions": v1, v9, v11), apart from the C code it checks. Reads JSON
# lines {"version": "10", "event": {...}} on stdin and writes one line
# {"event_id": "$...", "room_id": "!..." (a v12 create only)} each.
import hashlib
import json
import sys

from canonicaljson import encode_canonical_json
from unpaddedbase64 import encode_base64

V11_ON = {"11", "12"}
V9_ON = {"9", "10"} | V11_ON

# Top-level keys every version keeps, and those kept up to v10.
TOP = {"event_id", "type", "room_id", "sender", "state_key", "content", "hashes",
       "signatures", "depth", "prev_events", "auth_events", "origin_server_ts"}
TOP_BEFORE_V11 = {"prev_state", "origin", "membership"}


def content_keys(version, etype):
    keys = {
        "m.room.member": {"membership"},
        "m.room.create": {"creator"},
        "m.room.join_rules": {"join_rule"},
        "m.room.power_levels": {"ban", "events", "events_default", "kick", "redact",
                                "state_default", "users", "users_default"},
        "m.room.history_visibility": {"history_visibility"},
    }.get(etype, set())
    if version in {"1", "2", "3", "4", "5"} and etype == "m.room.aliases":
        keys = {"aliases"}
    if version in V9_ON and etype == "m.room.member":
        keys = keys | {"join_authorised_via_users_server"}
    if version in V9_ON and etype == "m.room.join_rules":
        keys = keys | {"allow"}
    if version in V11_ON and etype == "m.room.power_levels":
        keys = keys | {"invite"}
    if version in V11_ON and etype == "m.room.redaction":
        keys = keys | {"redacts"}
    return keys


def redact(version, event):
    top = TOP if version in V11_ON else TOP | TOP_BEFORE_V11
    out = {k: v for k, v in event.items() if k in top}
    content = event.get("content", {})
    etype = event.get("type")
    if version in V11_ON and etype == "m.room.create":
        kept = dict(content)
    else:
        kept = {k: v for k, v in content.items() if k in content_keys(version, etype)}
    if version in V11_ON and etype == "m.room.member" and "third_party_invite" in content:
        invite = content["third_party_invite"]
        kept["third_party_invite"] = {"signed": invite["signed"]} if "signed" in invite else {}
    out["content"] = kept
    return out


def answer(req):
    version, event = req["version"], req["event"]
    redacted = redact(version, event)
    redacted.pop("signatures", None)
    redacted.pop("unsigned", None)
    digest = hashlib.sha256(encode_canonical_json(redacted)).digest()
    body = encode_base64(digest, urlsafe=version != "3")
    out = {"event_id": "$" + body}
    if version == "12" and event.get("type") == "m.room.create":
        out["room_id"] = "!" + body
    return out


for line in sys.stdin:
    sys.stdout.write(json.dumps(answer(json.loads(line))) + "\n")
