#!/usr/bin/env python3
"""Change events for the applier's acceptance tests, as `synclog produce --input json` lines on stdout, and the
source's final state (what every target must end with) as JSON in --state FILE.

Each key's versions go 1, 2, 3, ... in emission order; about one event in --delete-every is a delete (with a version,
no value). --rate paces the output (events per second, flushed every 10 ms) for --seconds (or until the file --until
exists); otherwise --count events are written at once. --ik gives every event an idempotency key "evt-<seq>". --start continues an earlier state file.
"""
import argparse, json, os, random, sys, time

ap = argparse.ArgumentParser()
ap.add_argument("--keys", type=int, default=1000)
ap.add_argument("--count", type=int, default=0)
ap.add_argument("--rate", type=float, default=0)
ap.add_argument("--seconds", type=float, default=0)
ap.add_argument("--until", help="with --rate: also stop as soon as this file exists")
ap.add_argument("--delete-every", type=int, default=0)
ap.add_argument("--ik", action="store_true")
ap.add_argument("--seed", type=int, default=1)
ap.add_argument("--state", required=True)
ap.add_argument("--start", help="state file of an earlier run to continue from")
args = ap.parse_args()
rnd = random.Random(args.seed)
state = {}  # key -> {"version": v, "deleted": 0|1, "value": value or None}
seq = 0
if args.start:
    with open(args.start) as f:
        saved = json.load(f)
    state, seq = saved["keys"], saved["events"]


def emit(out):
    global seq
    key = "key-%05d" % rnd.randrange(args.keys)
    prev = state.get(key)
    version = (prev["version"] if prev else 0) + 1
    ev = {"key": key, "version": version}
    if args.delete_every and rnd.randrange(args.delete_every) == 0 and prev:
        ev["op"] = "delete"
        state[key] = {"version": version, "deleted": 1, "value": prev["value"]}
    else:
        ev["value"] = {"id": key, "v": version, "seq": seq, "status": rnd.choice(["trial", "active", "past_due"])}
        state[key] = {"version": version, "deleted": 0, "value": ev["value"]}
    if args.ik:
        ev["idempotency_key"] = "evt-%d" % seq
    seq += 1
    out.append(json.dumps(ev))


out = []
if args.rate > 0:
    start = time.monotonic()
    sent = 0
    while True:
        elapsed = time.monotonic() - start
        if elapsed >= args.seconds or (args.until and os.path.exists(args.until)):
            break
        due = int(elapsed * args.rate)
        while sent < due:
            emit(out)
            sent += 1
        if out:
            sys.stdout.write("\n".join(out) + "\n")
            sys.stdout.flush()
            out = []
        time.sleep(0.01)
else:
    for _ in range(args.count):
        emit(out)
    sys.stdout.write("\n".join(out) + ("\n" if out else ""))
with open(args.state, "w") as f:
    json.dump({"keys": state, "events": seq}, f)
