# The test oracle of spec/crypto_spec.lua: matrix.org's own canonicaljson
# and signedjson (Debian's python3-canonicaljson, python3-signedjson), run
# as /usr/bin/python3. Reads JSON lines on stdin, one request each, and
# writes one JSON line per request:
#   {"canon": obj}                 -> {"canon": canonical JSON text}
#   {"sign": obj, "seed": b64}     -> {"signed": obj signed by "domain" with ed25519:1,
#                                      as JSON text, so its numbers stay exact}
#   {"verify": obj, "pub": b64}    -> {"ok": true/false}: domain's ed25519:1 signature
import json
import sys

from canonicaljson import encode_canonical_json
from signedjson.key import decode_signing_key_base64, decode_verify_key_base64
from signedjson.sign import SignatureVerifyException, sign_json, verify_signed_json


def answer(req):
    if "canon" in req:
        return {"canon": encode_canonical_json(req["canon"]).decode("utf-8")}
    if "sign" in req:
        key = decode_signing_key_base64("ed25519", "1", req["seed"])
        return {"signed": json.dumps(sign_json(req["sign"], "domain", key))}
    key = decode_verify_key_base64("ed25519", "1", req["pub"])
    try:
        verify_signed_json(req["verify"], "domain", key)
        return {"ok": True}
    except SignatureVerifyException:
        return {"ok": False}


for line in sys.stdin:
    sys.stdout.write(json.dumps(answer(json.loads(line)), ensure_ascii=True) + "\n")
