#!/usr/bin/env python3
"""The baseline of SPEC §11: the access log parsed line by line with a regex,
aggregated like `reactor metrics parse` (same attribution rules, same JSON),
so that tests/bench/log_parser_bench.sh can time both and compare their output.

Usage: regex_parser.py FILE...   (JSON on stdout, unparsed count on stderr)
"""
import json
import re
import sys

LINE = re.compile(
    r"^(\d+(?:\.\d+)?)\|reactor_([a-z0-9][a-z0-9_-]{0,62})\|([1-9]\d\d)\|(\d{1,19})\|(\d+(?:\.\d+)?)\|"
    r"([^|]+)\|([^|]+)\|([^|]+?)\r?$")
SEP = re.compile(r", | : ")
STATUS = re.compile(r"^(?:-|[1-9]\d\d)$")
TIME = re.compile(r"^(?:-|\d+(?:\.\d+)?)$")


def main(paths):
    totals = {}
    lines = unparsed = 0
    for path in paths:
        with open(path, "rb") as f:
            for raw in f:
                lines += 1
                m = LINE.match(raw.decode("utf-8", "replace").rstrip("\n"))
                if not m:
                    unparsed += 1
                    continue
                endpoint, status, nbytes = m.group(2), int(m.group(3)), int(m.group(4))
                addrs, statuses, times = m.group(6), m.group(7), m.group(8)
                if addrs == "-":
                    if statuses != "-" or times != "-":
                        unparsed += 1
                    continue
                a, s, t = SEP.split(addrs), SEP.split(statuses), SEP.split(times)
                if (len(a) != len(s) or len(a) != len(t) or "" in a or "-" in a
                        or not all(STATUS.match(x) for x in s) or not all(TIME.match(x) for x in t)):
                    unparsed += 1
                    continue
                attempts = [(addr, 0 if st == "-" else int(st), None if tm == "-" else float(tm))
                            for addr, st, tm in zip(a, s, t) if addr != "reactor_" + endpoint]
                backends = totals.setdefault(endpoint, {})
                for i, (addr, st, tm) in enumerate(attempts):
                    final = i == len(attempts) - 1
                    if st == 0 and final:
                        st = status
                    b = backends.setdefault(addr, {"hits": 0, "bytes": 0, "errors": 0, "response_sum": 0.0})
                    b["hits"] += 1
                    if tm is not None:
                        b["response_sum"] += tm
                    if 500 <= st <= 599:
                        b["errors"] += 1
                    if final:
                        b["bytes"] += nbytes
    totals = {e: b for e, b in totals.items() if b}
    print(json.dumps(totals, sort_keys=True, separators=(",", ":")))
    print("unparsed: %d of %d lines" % (unparsed, lines), file=sys.stderr)


if __name__ == "__main__":
    main(sys.argv[1:])
