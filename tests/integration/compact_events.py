#!/usr/bin/env python3
"""Change events for the compaction tests, as `synclog produce --input json` lines: COUNT records over KEYS keys
(k0..), about 12% deletes, 10% out-of-order (older) versions, 5% exact duplicates of an earlier record of the key,
a tenth of the keys without versions. Versions of round R start above R * 100000, so rounds add newer versions.
Usage: compact_events.py SEED COUNT KEYS ROUND"""
import json
import random
import sys


def main():
    seed, count, keys, rnd = (int(a) for a in sys.argv[1:5])
    rng = random.Random(seed)
    last = {}
    history = {}
    base = rnd * 100000
    for i in range(count):
        k = f"k{rng.randrange(keys)}"
        roll = rng.randrange(100)
        if roll < 5 and history.get(k):
            print(history[k][-1])
            continue
        rec = {"key": k}
        if int(k[1:]) % 10 != 0:
            cur = last.get(k, base)
            if roll < 15 and cur > base + 3:
                rec["version"] = cur - rng.randint(1, 3)
            else:
                cur += rng.randint(1, 3)
                last[k] = cur
                rec["version"] = cur
        if 15 <= roll < 27:
            rec["op"] = "delete"
        else:
            rec["value"] = {"k": k, "i": i, "r": rnd}
        line = json.dumps(rec, separators=(",", ":"))
        history.setdefault(k, []).append(line)
        print(line)


if __name__ == "__main__":
    main()
