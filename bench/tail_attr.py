#!/usr/bin/env python3
"""What a latency run's tail owes to the machine: stalls of the CPUs themselves against the slow records.

This machine is a shared VM. When its host runs something else, a virtual CPU stops for milliseconds (steal); the
guest kernel can also hold a CPU (interrupts, softirq). bench/hiccup/hiccup.c watches every CPU with a thread of
the highest real-time priority that wakes every millisecond and notes each late wake-up: while it was late,
nothing of lower priority (the broker, the peer, the load generator) could run on that CPU either.

  tail_attr.py HICCUP_OUT SLOW_LINES RESULT_JSON SLOW_MS
      HICCUP_OUT   hiccup's output during the run ("MONO_START_S CPU LATE_MS" lines)
      SLOW_LINES   the run's stderr from synclog-bench latency --slow-us ("slow e2e L ms at T s (monotonic S)")
      RESULT_JSON  the run's --json result
  prints one JSON object: the run's records and percentiles, the stalls seen (count, total and longest), the slow
  records (end-to-end over SLOW_MS, after the warm-up) and how many of them the stalls explain.

A slow record of latency L, stamped at S, is the machine's when the CPU stalls overlapping [S, S + L] add up to at
least L - SLOW_MS: without them it would have arrived in time. Records that queued behind a stall but were sent
after it ended count as the subject's own: the split favours nobody. "p999_under_outside_stalls" says whether the
records that were not the machine's keep p99.9 under SLOW_MS (fewer than 0.1% of all records over it).
"""
import json
import sys


def merged(intervals):
    out = []
    for lo, hi in sorted(intervals):
        if out and lo <= out[-1][1]:
            out[-1][1] = max(out[-1][1], hi)
        else:
            out.append([lo, hi])
    return out


def overlap(stalls, lo, hi):
    return sum(max(0.0, min(hi, b) - max(lo, a)) for a, b in stalls if b > lo and a < hi)


def main(hiccup_path, slow_path, result_path, slow_ms):
    raw = []
    for line in open(hiccup_path):
        f = line.split()
        if len(f) != 3 or line.startswith("#"):
            continue
        start, late_s = float(f[0]), float(f[2]) / 1e3
        raw.append((start, start + late_s))
    stalls = merged(raw)
    r = json.load(open(result_path))
    warmup = r.get("warmup_s", 0.0)
    slow_machine = slow_own = 0
    for line in open(slow_path):
        f = line.split()
        if len(f) < 9 or f[0] != "slow" or f[1] != "e2e":
            continue
        latency_s, at_s, stamp = float(f[2]) / 1e3, float(f[5]), float(f[8].rstrip(")"))
        if at_s < warmup or latency_s * 1e3 <= slow_ms:
            continue
        if overlap(stalls, stamp, stamp + latency_s) >= latency_s - slow_ms / 1e3:
            slow_machine += 1
        else:
            slow_own += 1
    e = r["e2e_latency"]
    lengths = [(b - a) * 1e3 for a, b in stalls]
    print(json.dumps({
        "records": e["count"], "p50_us": e["p50_us"], "p99_us": e["p99_us"], "p999_us": e["p999_us"],
        "stalls": len(stalls), "stall_ms_total": round(sum(lengths), 1),
        "stall_ms_max": round(max(lengths), 1) if lengths else 0.0,
        "slow_ms": slow_ms, "slow_records": slow_machine + slow_own,
        "slow_explained_by_stalls": slow_machine, "slow_outside_stalls": slow_own,
        "p999_under_outside_stalls": slow_own < e["count"] / 1000,
    }))


if __name__ == "__main__":
    if len(sys.argv) != 5:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4]))
