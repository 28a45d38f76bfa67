#!/usr/bin/env python3
"""The state a replay reaches, for the compaction tests: reads JSON lines (the input of `synclog produce --input
json`, or the output of `synclog --json consume`), applies them in order with the applier's rules
(consumer/sync/apply.h, rules 4-6: a lower version is stale, an equal one a duplicate, an unversioned record always
applies and keeps the version; a delete marks the key deleted) and prints one line per key, sorted:
    KEY<TAB>deleted|present<TAB>VERSION<TAB>VALUE (JSON)
With --absent-deleted, deleted keys are left out (what a log whose tombstones expired replays to).
With --check-offsets, offsets (consume output) must strictly increase per partition: exit 1 otherwise."""
import json
import sys


def main():
    absent = "--absent-deleted" in sys.argv
    check = "--check-offsets" in sys.argv
    state = {}
    last = {}
    for n, line in enumerate(sys.stdin, 1):
        line = line.strip()
        if not line:
            continue
        r = json.loads(line)
        if check:
            p, o = r["partition"], r["offset"]
            if p in last and o <= last[p]:
                print(f"line {n}: partition {p} offset {o} after {last[p]}", file=sys.stderr)
                sys.exit(1)
            last[p] = o
        key, version = r["key"], r.get("version")
        op = r.get("op", "upsert")
        cur = state.get(key)
        if cur is not None and version is not None and version <= cur[1]:
            continue  # stale or duplicate
        if cur is None:
            v = version if version is not None else 0
        else:
            v = version if version is not None else cur[1]
        value = None if op == "delete" else json.dumps(r.get("value"), sort_keys=True)
        state[key] = (op == "delete", v, value)
    for key in sorted(state):
        deleted, v, value = state[key]
        if deleted and absent:
            continue
        print(f"{key}\t{'deleted' if deleted else 'present'}\t{v}\t{value if value is not None else ''}")


if __name__ == "__main__":
    main()
