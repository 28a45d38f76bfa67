#!/usr/bin/env bash
# Issue 19: what `synclog status` shows when a contract clause breaks. Topic customers has a contract with
# stall_after 2s; the CRM group (a member that committed 3 of 30 records and stands still) becomes `stalled` on the
# contract's stall-after, and `contract check` fails the stall clause (exit 1). Then:
#   - status's GROUPS line says crm is stalled, and its RUNS line says the contract check FAILED, naming the clause;
#   - status --json has the run (kind contract, ok false, differences 1) and /metrics
#     synclog_run_last_success{kind="contract",topic="customers"} 0;
#   - once the CRM catches up, contract check passes (exit 0) and status and the metrics say ok;
#   - a topic without a contract: contract check exits 1 and status says the topic has no contract.
# With SHOW=1 in the environment it prints the outputs (tools/doc/contracts.md quotes one run).
set -euo pipefail
BUILD=${1:-build/release}
exec python3 - "$BUILD" <<'PY'
import json, os, re, sys
sys.path.insert(0, "tests/integration")
from healthlib import Env, fail, wait_for
import wire

e = Env(sys.argv[1])
show = os.environ.get("SHOW") == "1"

def out(title, text):
    if show:
        print("---- %s\n%s" % (title, text.rstrip()))

def run_line(status_text, topic):
    lines = [l for l in status_text.splitlines() if l.startswith("contract ") and (" %s " % topic) in l]
    return lines[0] if len(lines) == 1 else fail("status shows %d contract runs of %s:\n%s"
                                                  % (len(lines), topic, status_text))

def json_run(topic):
    s = json.loads(e.cli("--json", "status").stdout)
    runs = [r for r in s["runs"] if r["kind"] == "contract" and r["topic"] == topic]
    return runs[0] if len(runs) == 1 else fail("status --json has %d contract runs of %s: %s" % (len(runs), topic, s))

try:
    e.start_broker("--initial-rebalance-delay", "0")
    e.cli("topic", "create", "customers", "--partitions", "1")
    e.cli("topic", "create", "bare", "--partitions", "1")
    path = os.path.join(e.root, "customers.yaml")
    with open(path, "w") as f:
        f.write("source_of_truth:\n  system: billing\nrecovery:\n  replay_owner: crm-team\n"
                "  alert:\n    stall_after: 2s\n    notify: '#sync-oncall'\n")
    e.cli("contract", "set", "customers", path)
    e.produce("customers", ["cust-%d\t{\"status\":\"active\"}\n" % i for i in range(30)])
    sock = wire.connect(e.port)
    sock.sendall(wire.hello())
    wire.read_frame(sock)
    sock.sendall(wire.join(2, "crm", ["customers"], session_timeout_ms=60000))
    member, gen = wire.joined(wire.read_frame(sock))
    sock.sendall(wire.commit(3, "crm", "customers", {0: 3}, member, gen))
    if wire.error_of(wire.read_frame(sock)) != 0:
        fail("the CRM's commit was refused")
    wait_for("crm to become stalled", lambda: any(r["state"] == "stalled" for r in e.describe("crm")), seconds=30)

    r = e.cli("contract", "check", "customers", check=False)
    out("synclog contract check customers (exit %d)" % r.returncode, r.stdout + r.stderr)
    if r.returncode != 1 or not re.search(r"^FAIL stall: ", r.stdout, re.M):
        fail("contract check did not fail the stall clause (exit %d):\n%s%s" % (r.returncode, r.stdout, r.stderr))
    clauses = len(r.stdout.splitlines())
    st = e.cli("status").stdout
    out("synclog status", st)
    if not re.search(r"^crm\s+1 stalled\s+27 ", st, re.M):
        fail("status does not show crm stalled with 27 records to read:\n" + st)
    line = run_line(st, "customers")
    if "FAILED" not in line or ("version 1: 1 of %d clauses FAIL: stall" % clauses) not in line:
        fail("status's RUNS line does not say the contract check failed the stall clause: %r" % line)
    j = json_run("customers")
    if j["ok"] is not False or j["differences"] != 1 or j["rows"] != clauses:
        fail("status --json: the contract run is %s" % j)
    if 'synclog_run_last_success{kind="contract",topic="customers"} 0' not in e.metrics():
        fail("/metrics does not say the last contract check of customers failed")

    # The CRM catches up: the clause passes, and status says so.
    sock.sendall(wire.commit(4, "crm", "customers", {0: 30}, member, gen))
    if wire.error_of(wire.read_frame(sock)) != 0:
        fail("the CRM's second commit was refused")
    r = e.cli("contract", "check", "customers", check=False)
    out("synclog contract check customers, after the CRM caught up (exit %d)" % r.returncode, r.stdout)
    if r.returncode != 0:
        fail("contract check still fails after the CRM caught up:\n" + r.stdout)
    line = run_line(e.cli("status").stdout, "customers")
    out("synclog status, RUNS", line)
    if " ok " not in line or ("version 1: %d clauses ok" % clauses) not in line:
        fail("status's RUNS line does not say the contract check passed: %r" % line)
    if 'synclog_run_last_success{kind="contract",topic="customers"} 1' not in e.metrics():
        fail("/metrics does not say the last contract check of customers passed")

    # A topic without a contract.
    r = e.cli("contract", "check", "bare", check=False)
    if r.returncode != 1:
        fail("contract check of a topic without a contract exited %d" % r.returncode)
    line = run_line(e.cli("status").stdout, "bare")
    if "FAILED" not in line or "the topic has no contract" not in line:
        fail("status does not say topic bare has no contract: %r" % line)
    print("ok: status shows the stalled group and the failed contract check (clause named), then ok; "
          "a topic without a contract is a failed check")
finally:
    e.close()
PY
