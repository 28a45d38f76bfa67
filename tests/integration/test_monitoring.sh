#!/usr/bin/env bash
# Issue 14: tools/monitoring/ holds Prometheus alert rules and a Grafana dashboard. promtool accepts the rules, the
# dashboard is valid JSON whose panels all query Prometheus, and every metric the rules and the dashboard name
# appears in the /metrics output of a running broker that has seen the traffic they describe (produce, fetch, an
# applier with a dead letter, a stuck group, a reconcile run). Every family in that output has # HELP and # TYPE.
set -euo pipefail
BUILD=${1:-build/release}
command -v promtool >/dev/null || { echo "FAIL: promtool missing: tools/install-deps.sh test installs prometheus"; exit 1; }
promtool check rules tools/monitoring/synclog-alerts.yml >/dev/null || { promtool check rules tools/monitoring/synclog-alerts.yml; exit 1; }
exec python3 - "$BUILD" <<'PY'
import json, os, re, sys
sys.path.insert(0, "tests/integration")
from healthlib import Env, fail, wait_for

NAME = re.compile(r"\b((?:synclog|process)_[a-z0-9_]+)\b")
names = {}
rules = open("tools/monitoring/synclog-alerts.yml").read()
for m in re.finditer(r"^\s*expr:\s*(>-\n(?:\s{10,}.*\n)+|.*)$", rules, re.M):
    for n in NAME.findall(m.group(1)):
        names.setdefault(n, "rules")
dash = json.load(open("tools/monitoring/synclog-dashboard.json"))
for p in dash["panels"]:
    if p.get("datasource", {}).get("type") != "prometheus" or not p.get("targets"):
        fail("panel %r does not query Prometheus" % p.get("title"))
    for t in p["targets"]:
        for n in NAME.findall(t["expr"]):
            names.setdefault(n, "dashboard")
if len(names) < 15:
    fail("found only %d metric names in the rules and dashboard: %s" % (len(names), sorted(names)))

e = Env(sys.argv[1])
try:
    e.start_broker("--stall-after", "1s", "--initial-rebalance-delay", "0")
    e.cli("topic", "create", "t", "--partitions", "2")
    e.produce("t", ["k%d\t{\"n\":%d}\n" % (i, i) for i in range(100)] + ["bad\tnot json\n"])
    e.cli("apply", "t", "--group", "app", "--target", "sqlite:" + os.path.join(e.root, "t.db"))
    e.cli("consume", "t", "--max", "10")
    e.cli("offsets", "reset", "--group", "stuck", "--topic", "t", "--to-offset", "0", "--execute")
    # A reconcile run against the applier's target, reported by `synclog reconcile` itself: one key of the
    # source differs (k1 at a newer version), so the run alerts, exits 1 and is reported as failed.
    src = os.path.join(e.root, "src.jsonl")
    with open(src, "w") as f:
        f.write("".join('{"key":"k%d","version":%d,"n":%d}\n' % (i, 10**12 if i == 1 else 0, i) for i in range(100)))
    r = e.cli("reconcile", "--source", "jsonl:" + src, "--target", "sqlite:" + os.path.join(e.root, "t.db"),
              check=False)
    if r.returncode != 1 or "ALERT reconcile" not in r.stderr or "not reported" in r.stderr:
        fail("reconcile exited %d: %s" % (r.returncode, r.stderr))
    out = e.metrics()
    for want in ('synclog_run_last_success{kind="reconcile",topic="t"} 0',
                 'synclog_reconcile_last_differences{topic="t"} ',
                 'synclog_run_last_rows{kind="reconcile",topic="t"} 100\n'):
        if want not in out:
            fail("the reconcile run is not in /metrics: no %r" % want)
    st = json.loads(e.cli("--json", "status").stdout)
    runs = [x for x in st["runs"] if x["kind"] == "reconcile"]
    if len(runs) != 1 or runs[0]["topic"] != "t" or runs[0]["ok"] or runs[0]["differences"] != 1 \
            or not runs[0]["target"].endswith("t.db") or "above threshold" not in runs[0]["summary"]:
        fail("status runs: %r" % st["runs"])
    wait_for("the stuck group to be stopped", lambda: 'group="stuck"' in e.metrics()
             and 'synclog_group_state{group="stuck",topic="t",partition="0",state="stopped"} 1' in e.metrics(), 20)
    out = e.metrics()
    present = set(re.findall(r"^([a-z_][a-z0-9_]*)[{ ]", out, re.M))
    missing = sorted(n for n in names if n not in present)
    if missing:
        fail("named by the rules or the dashboard but not in /metrics: %s" % ", ".join(
            "%s (%s)" % (n, names[n]) for n in missing))
    # Every family has HELP and TYPE; every sample belongs to a declared family.
    helps = set(re.findall(r"^# HELP ([a-z0-9_]+) ", out, re.M))
    types = dict(re.findall(r"^# TYPE ([a-z0-9_]+) (\w+)$", out, re.M))
    if helps != set(types):
        fail("families with TYPE but no HELP or the other way: %s" % sorted(helps ^ set(types)))
    for n in present:
        base = re.sub(r"_(bucket|sum|count)$", "", n) if n not in types else n
        if base not in types:
            fail("sample %s has no # TYPE" % n)
        if types[base] == "counter" and not base.endswith("_total"):
            fail("counter %s does not end in _total" % base)
    if 'synclog_build_info{version="' not in out:
        fail("no synclog_build_info")
    print("ok: %d metric names of the rules and dashboard all in /metrics; %d families with HELP and TYPE"
          % (len(names), len(types)))
finally:
    e.close()
PY
