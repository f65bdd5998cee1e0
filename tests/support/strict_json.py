#!/usr/bin/env python3
"""Strict RFC 8259 check of JSON files: python3 strict_json.py FILE... prints one line per file
("ok FILE" or "bad FILE: why") and exits 1 if any file is not strict JSON. An empty file is
allowed when its name ends in .err (a failure path prints nothing on stdout). Rejected: NaN,
Infinity, -Infinity, invalid UTF-8, trailing data, more than one value."""
import json
import sys


def reject_constant(name):
    raise ValueError("non-standard constant " + name)


def check(path):
    with open(path, "rb") as f:
        data = f.read()
    if not data and path.endswith(".err"):
        return None
    try:
        data.decode("utf-8", errors="strict")
        json.loads(data, parse_constant=reject_constant)
    except (ValueError, UnicodeDecodeError) as e:
        return str(e)[:200]
    return None


bad = 0
for path in sys.argv[1:]:
    why = check(path)
    if why:
        bad += 1
        print("bad %s: %s" % (path, why))
    else:
        print("ok " + path)
sys.exit(1 if bad else 0)
