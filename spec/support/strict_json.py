# A strict JSON reader for the specs: stdin must be one JSON text with no
# NaN/Infinity, no duplicate keys and no raw control characters in strings
# (Python's json otherwise accepts the first two). Prints "ok" or the error.
import json
import sys


def no_constant(name):
    raise ValueError("not JSON: " + name)


def no_duplicates(pairs):
    keys = [k for k, _ in pairs]
    if len(keys) != len(set(keys)):
        raise ValueError("a key is given twice")
    return dict(pairs)


try:
    json.loads(sys.stdin.buffer.read().decode("utf-8"), parse_constant=no_constant,
               object_pairs_hook=no_duplicates, strict=True)
    print("ok")
except Exception as e:  # noqa: BLE001 - any failure is the answer
    print("error: %s" % e)
