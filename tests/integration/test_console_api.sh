#!/usr/bin/env bash
# Issue 22, the console's JSON API against a running broker (fetched with curl): every /api/v1 endpoint with real
# content (produced records in the message browser, newest first and paged; a stalled group first in the
# overview; an applier's counters and dead letters; the same numbers as `synclog status --json` and `group
# describe --json`), the embedded page at /ui/, and hostile paths and query strings that get a 4xx and leave the
# broker serving. Sync contracts: a topic with one (set twice), one without, and a failing `contract check` listed
# on the sync page and the overview.
set -euo pipefail
BUILD=${1:-build/release}
exec python3 - "$BUILD" <<'PY'
import json, os, socket, subprocess, sys, time
sys.path.insert(0, "tests/integration")
from healthlib import fail, wait_for
from console_scenario import Scenario

sc = Scenario(sys.argv[1])
e = sc.e
try:
    sc.build()

    # The page and its files, embedded in synclogd.
    for path, ctype, needle in (("/ui/", "text/html", '<script src="/ui/console.js">'), ("/ui", "text/html", "<main"),
                                ("/ui/console.js", "text/javascript", "function draw"),
                                ("/ui/console.css", "text/css", "table")):
        code, got, body = sc.curl(path)
        if code != 200 or not got.startswith(ctype) or needle not in body:
            fail("%s: %d %s %r" % (path, code, got, body[:200]))

    # Records per second in: the producer keeps going, so a sample after the first shows a rate above 0.
    wait_for("a records/s sample above 0", lambda: any(p["in_per_s"] > 0 for p in sc.api("overview")["rates"]["points"]),
             seconds=30, interval=1)

    # overview: the stalled group first, though it sorts last by name; healthy groups after every troubled one.
    ov = sc.api("overview")
    order = [(g["summary"]["group"], g["summary"]["state"]) for g in ov["groups"]]
    if order[:2] != [("gs", "stalled"), ("go", "stopped")]:
        fail("overview does not put the stalled group first: %r" % order)
    bad = ["lost", "stalled", "stopped"]
    seen_fine = False
    for _, s in order:
        if s not in bad:
            seen_fine = True
        elif seen_fine:
            fail("a troubled group after a healthy one: %r" % order)
    if ov["groups_needing_attention"] != sum(s in bad for _, s in order):
        fail("groups_needing_attention %r for %r" % (ov["groups_needing_attention"], order))
    if not (ov["uptime_ms"] > 0 and ov["disk_free_bytes"] > 0 and ov["disk_total_bytes"] >= ov["disk_free_bytes"]
            and ov["data_bytes"] > 0 and ov["topics"] == 5):
        fail("overview cards: %r" % {k: v for k, v in ov.items() if k not in ("groups", "rates")})
    ledger = [g for g in ov["groups"] if g["summary"]["group"] == "ledger"][0]
    if ledger["applier"] is None or ledger["applier"]["applied"] != 2 or ledger["applier"]["dead_lettered"] != 2:
        fail("overview applier of ledger: %r" % ledger)

    gsd = sc.api("groups/gs")
    if gsd["describe"]["state"] != "stalled" or gsd["describe"]["partitions"][0]["lag"] <= 0:
        fail("groups/gs: %r" % gsd["describe"])
    # The lag chart: the history sampler tracks the group (its first sample 1 s after start, then every 10 s).
    h = wait_for("a lag sample of gs", lambda: (d := sc.api("groups/gs"))["lag_history"]["points"] and d, seconds=25)
    if not h["lag_history"]["tracked"] or h["lag_history"]["interval_ms"] != 10000:
        fail("lag history: %r" % h["lag_history"])

    sc.quiesce()

    # status: what `synclog --json status` prints, key for key, from the same handler.
    VOLATILE = {"uptime_ms", "connections", "lag_ms", "disk_free_bytes", "records_in_per_s", "records_out_per_s", "state_since_ms", "reported_ms"}
    def strip(v):
        if isinstance(v, dict):
            return {k: strip(x) for k, x in v.items() if k not in VOLATILE}
        if isinstance(v, list):
            return [strip(x) for x in v]
        return v
    for attempt in range(20):  # a group's state may change between the two reads: read both again
        api = sc.api("status")
        cli = json.loads(e.cli("--json", "status").stdout.splitlines()[0])
        if strip(api) == strip(cli) and list(api) == list(cli):
            break
        time.sleep(0.5)
    else:
        fail("/api/v1/status differs from synclog --json status:\n%r\n%r" % (strip(api), strip(cli)))
    st = sc.api("status")
    api_topics = {t["name"]: t["records"] for t in st["topics"]}
    if api_topics.get("orders") != 4 or st["dead_letters"] != [{"topic": "orders.dlq", "records": 2}]:
        fail("status topics: %r" % st)
    api_states = {g["group"]: g["state"] for g in st["groups"]}
    if set(api_states) != {"aa-ok", "go", "gs", "ledger"}:
        fail("status groups: %r" % api_states)

    # topics: settings and counts, paged in name order.
    tp = sc.api("topics")
    names = [t["config"]["name"] for t in tp["topics"]]
    if names != sorted(names) or tp["total"] != 5 or tp["next_start_after"] is not None:
        fail("topics: %r" % tp)
    orders = [t for t in tp["topics"] if t["config"]["name"] == "orders"][0]
    if orders["status"]["records"] != 4 or orders["config"]["retention_ms"] != -1 or orders["config"]["compact"]:
        fail("topics/orders row: %r" % orders)
    paged, after, pages = [], None, 0
    while pages == 0 or after is not None:
        pg = sc.api("topics?limit=2" + ("&start_after=" + after if after else ""))
        paged += [t["config"]["name"] for t in pg["topics"]]
        after, pages = pg["next_start_after"], pages + 1
    if paged != names or pages != 3:
        fail("topic pages of 2: %r in %d pages" % (paged, pages))

    t = sc.api("topics/orders")
    part = t["partitions"][0]
    if t["partition_count"] != 1 or part["earliest_offset"] != 0 or part["next_offset"] != 4 or part["bytes"] <= 0:
        fail("topics/orders: %r" % t)

    # The message browser: the produced records, newest first, with their sync fields; paged by offset and time.
    m = sc.api("topics/orders/messages?partition=0")
    if [r["offset"] for r in m["records"]] != [3, 2, 1, 0] or [r["key"] for r in m["records"]] != ["o-4", "", "o-2", "o-1"]:
        fail("messages: %r" % m)
    if json.loads(m["records"][0]["value"]) != {"total": 4, "items": ["a"]} or m["records"][2]["value"] != "not JSON":
        fail("message values: %r" % m["records"])
    if any(r["op"] != "upsert" or r["origin"] != "live" for r in m["records"]) or m["older_offset"] is not None:
        fail("message fields: %r" % m)
    m2 = sc.api("topics/orders/messages?partition=0&limit=2")
    if [r["offset"] for r in m2["records"]] != [3, 2] or m2["older_offset"] != 1:
        fail("limit=2: %r" % m2)
    m3 = sc.api("topics/orders/messages?partition=0&limit=2&offset=%d" % m2["older_offset"])
    if [r["offset"] for r in m3["records"]] != [1, 0] or m3["older_offset"] is not None:
        fail("the older page: %r" % m3)
    if [r["offset"] for r in sc.api("topics/orders/messages?offset=99999999999999")["records"]] != [3, 2, 1, 0]:
        fail("an offset past the end shows the newest")
    ts = m["records"][1]["timestamp_ms"]
    mt = sc.api("topics/orders/messages?time=%d" % ts)
    if not mt["records"] or mt["records"][0]["timestamp_ms"] > ts or any(r["timestamp_ms"] > ts for r in mt["records"]):
        fail("time=%d: %r" % (ts, mt))
    if sc.api("topics/orders/messages?time=0")["records"] != []:
        fail("time=0 shows records from before the epoch")

    # groups: the list, paged, and one group as `group describe --json` shows it, with applier counters.
    gl = sc.api("groups")
    if [g["group"] for g in gl["groups"]] != ["aa-ok", "go", "gs", "ledger"]:
        fail("groups: %r" % gl)
    g1 = sc.api("groups?limit=2")
    if [g["group"] for g in g1["groups"]] != ["aa-ok", "go"] or g1["next_start_after"] != "go":
        fail("groups?limit=2: %r" % g1)
    gd = sc.api("groups/ledger")
    a = gd["describe"]["applier"]
    if (a["applied"], a["stale"], a["duplicate"], a["deleted"], a["dead_lettered"]) != (2, 0, 0, 0, 2):
        fail("ledger's applier counters: %r" % a)
    cli_rows = e.describe("ledger")
    api_rows = gd["describe"]["partitions"]
    for c, r in zip(cli_rows, api_rows):
        for k in ("topic", "partition", "committed", "next_offset", "lag", "state"):
            if c[k] != r[k]:
                fail("group describe --json and the API differ on %s: %r vs %r" % (k, c, r))
    if len(cli_rows) != len(api_rows) or gd["partition_count"] != len(api_rows):
        fail("partition rows: %r vs %r" % (cli_rows, api_rows))
    # sync: the dead-letter topic with its count; its newest letters through the browser.
    sy = sc.api("sync")
    d = sy["dead_letter_topics"]
    if [(x["topic"], x["source_topic"], x["letters"]) for x in d] != [("orders.dlq", "orders", 2)]:
        fail("sync: %r" % sy)
    letters = sc.api("topics/orders.dlq/messages?partition=0&limit=5")["records"]
    if len(letters) != 2 or "not JSON" not in letters[1]["value"] or "ledger" not in letters[0]["value"]:
        fail("dead letters: %r" % letters)
    if sy["runs"] != [] or sy["contract_checks_failed"] != [] or sy["contracts_supported"] is not True:
        fail("sync runs/contracts: %r" % sy)

    # Sync contracts (issue 19): orders gets one with `synclog contract set` (twice: version 2), quiet has none.
    # The topic page shows what `contract show --json` shows; a failing `contract check` of s (its group gs is
    # stalled past the contract's stall_after) is listed on the sync page and the overview as a problem.
    import os
    tq = sc.api("topics/quiet")
    if tq["contract"] is not None or tq["contract_check"] is not None:
        fail("topics/quiet has no contract: %r" % {k: tq[k] for k in ("contract", "contract_check")})
    text = ("# orders: <b>markup</b> stays text\nsource_of_truth:\n  system: billing\n"
            "delivery:\n  duplicates: idempotency-key\n")
    for i, body in enumerate(("source_of_truth:\n  system: shop\n", text)):
        path = os.path.join(e.root, "orders-%d.yaml" % i)
        with open(path, "w") as f:
            f.write(body)
        e.cli("contract", "set", "orders", path, "--set-by", "alice@ops")
    e.produce("orders", ['o-5\t{"total": 5}\n'])
    show = json.loads(e.cli("contract", "show", "orders", "--json").stdout)
    to = sc.api("topics/orders")
    c = to["contract"]
    if (c is None or c["current"]["version"] != 2 or c["current"]["text"] != text or c["current"]["set_at_ms"] <= 0
            or c["current"]["set_by"] != "alice@ops"):
        fail("topics/orders contract: %r" % c)
    for k in ("set_by", "peer", "text", "version", "set_at_ms"):
        if c["current"][k] != show[k]:
            fail("topics/orders contract %s=%r, contract show --json says %r" % (k, c["current"][k], show[k]))
    if json.loads(c["current"]["contract"]) != show["contract"]:
        fail("the normalized contract differs from contract show --json: %r" % c["current"]["contract"])
    enf = c["enforcement"]
    if enf is None or enf["live_records"] != 1 or enf["records_without_idempotency_key"] != 1 or enf["since_ms"] <= 0:
        fail("topics/orders enforcement (one live record without a key since version 2): %r" % enf)
    if {k.replace("records_without", "without"): v for k, v in enf.items()} != show["enforcement"]:
        fail("enforcement %r, contract show --json says %r" % (enf, show["enforcement"]))
    if to["contract_check"] is not None:
        fail("no check of orders was run: %r" % to["contract_check"])
    path = os.path.join(e.root, "s.yaml")
    with open(path, "w") as f:
        f.write("source_of_truth:\n  system: shop\nrecovery:\n  replay_owner: ops\n  alert:\n    stall_after: 2s\n")
    e.cli("contract", "set", "s", path)
    r = e.cli("contract", "check", "s", check=False)
    if r.returncode != 1 or "FAIL stall" not in r.stdout:
        fail("contract check s did not fail the stall clause (exit %d): %s%s" % (r.returncode, r.stdout, r.stderr))
    ts = sc.api("topics/s")
    k = ts["contract_check"]
    if k is None or k["kind"] != "contract" or k["ok"] is not False or k["differences"] < 1 or "stall" not in k["summary"]:
        fail("topics/s contract_check: %r" % k)
    if ts["contract"]["current"]["version"] != 1:
        fail("topics/s contract: %r" % ts["contract"])
    sy = sc.api("sync")
    if [x["topic"] for x in sy["contract_checks_failed"]] != ["s"] or not any(x["kind"] == "contract" for x in sy["runs"]):
        fail("sync does not list s's failed contract check: %r" % sy)
    if [x["topic"] for x in sc.api("overview")["contract_checks_failed"]] != ["s"]:
        fail("overview does not list s's failed contract check")

    # Bytes that are not UTF-8, controls and markup in a key and value: valid JSON, escaped, nothing lost but
    # the invalid byte (U+FFFD).
    e.cli("topic", "create", "weird", "--partitions", "1")
    r = subprocess.run([e.build + "/bin/synclog", "produce", "weird"], input=b"k\xff\x01\t<script>alert(1)</script>\"\\\n",
                       env=e.env, capture_output=True)
    if r.returncode != 0:
        fail("produce weird: %r" % r.stderr)
    code, _, raw = sc.curl("/api/v1/topics/weird/messages")
    rec = json.loads(raw)["records"][0]
    if rec["key"] != "k\ufffd\x01" or rec["value"] != '<script>alert(1)</script>"\\' or "<script>" in raw:
        fail("escaping: %r in %r" % (rec, raw))

    # A topic of 250 partitions: pages of at most 100 partitions unless asked for fewer, 1,000 at most.
    e.cli("topic", "create", "wide", "--partitions", "250")
    seen, nxt = [], 0
    while nxt is not None:
        w = sc.api("topics/wide?from_partition=%d" % nxt)
        if len(w["partitions"]) > 100 or w["partition_count"] != 250:
            fail("a page of %d partitions" % len(w["partitions"]))
        seen += [p["partition"] for p in w["partitions"]]
        nxt = w["next_from_partition"]
    if seen != list(range(250)) or len(sc.api("topics/wide?limit=1000")["partitions"]) != 250:
        fail("wide's pages: %r" % seen)

    # Every header of a record produced through the Kafka listener (kcat -H), in order: text as text, bytes that
    # are not UTF-8 as base64, the sync header v among them (and read as the version); past 4 KiB of values and 64
    # headers a record's headers are cut and say so.
    sc.produce_headers()
    h2, h1 = sc.api("topics/hdr/messages?partition=0")["records"]
    want = [{"key": "trace-id", "value": "abc-123", "encoding": "utf8", "value_truncated": False},
            {"key": "v", "value": "7", "encoding": "utf8", "value_truncated": False},
            {"key": "bin", "value": "//6A", "encoding": "base64", "value_truncated": False},
            {"key": "note", "value": "caf\u00e9 <b>", "encoding": "utf8", "value_truncated": False}]
    if (h1["key"], h1["version"], h1["headers"], h1["headers_truncated"]) != ("h1", 7, want, False) or "headers_error" in h1:
        fail("h1's headers: %r" % h1)
    hs = h2["headers"]
    if len(hs) != 64 or not h2["headers_truncated"] or hs[0] != {"key": "big", "value": "z" * 4096, "encoding": "utf8",
                                                                  "value_truncated": True} \
            or [h["key"] for h in hs[1:]] != ["x%d" % i for i in range(63)] or hs[1]["value"] != "" or not hs[1]["value_truncated"]:
        fail("h2's headers are not bounded: %d %r %r" % (len(hs), h2["headers_truncated"], hs[:3]))
    if any("headers" not in r or r["headers_truncated"] for r in sc.api("topics/orders/messages")["records"]):
        fail("orders' records have no headers list")

    # A reconcile --repair run: the target lacks 3 of the source's 8 keys, each repaired through the log; the
    # count of repaired keys is in status --json, the sync page's runs and the metrics.
    e.cli("topic", "create", "rp", "--partitions", "1")
    e.produce("rp", ['r%d\t{"n":%d}\n' % (i, i) for i in range(5)])
    e.cli("apply", "rp", "--group", "rpg", "--target", "sqlite:" + os.path.join(e.root, "rp.db"))
    with open(os.path.join(e.root, "rp.jsonl"), "w") as f:
        f.write("".join('{"key":"r%d","version":0,"n":%d}\n' % (i, i) for i in range(8)))
    r = e.cli("reconcile", "--source", "jsonl:" + os.path.join(e.root, "rp.jsonl"), "--target",
              "sqlite:" + os.path.join(e.root, "rp.db"), "--repair", "rp", check=False)
    if r.returncode != 1 or not r.stdout.startswith("compared 8 missing 3 extra 0 "):
        fail("reconcile --repair exited %d: %s%s" % (r.returncode, r.stdout, r.stderr))
    runs = [x for x in json.loads(e.cli("--json", "status").stdout)["runs"] if x["kind"] == "reconcile"]
    if [(x["topic"], x["differences"], x["repaired"]) for x in runs] != [("rp", 3, 3)]:
        fail("status --json runs: %r" % runs)
    if "repaired 3" not in e.cli("status").stdout:
        fail("status does not show the repaired count: %s" % e.cli("status").stdout)
    runs = [x for x in sc.api("sync")["runs"] if x["kind"] == "reconcile"]
    if [(x["topic"], x["differences"], x["repaired"]) for x in runs] != [("rp", 3, 3)]:
        fail("sync runs: %r" % runs)
    if 'synclog_reconcile_last_repaired{topic="rp"} 3\n' not in e.metrics():
        fail("no synclog_reconcile_last_repaired in /metrics")

    # Hostile input: a 4xx, never a crash.
    hostile = {
        "/api/v1/nope": 404, "/api/v1/topics/nope": 404, "/api/v1/groups/nope": 404, "/api/v1/topics/orders/x": 404,
        "/api/v1/topics/orders/messages?partition=7": 404, "/api/v1/topics/orders/messages?partition=4294967296": 400,
        "/api/v1/topics/orders/messages?offset=-1": 400, "/api/v1/topics/orders/messages?offset=99999999999999999999": 400,
        "/api/v1/topics/orders/messages?limit=0": 400, "/api/v1/topics/orders/messages?limit=101": 400,
        "/api/v1/topics/orders/messages?limit=1e3": 400, "/api/v1/topics/orders/messages?offset=1&time=2": 400,
        "/api/v1/topics/orders/messages?bogus=1": 400, "/api/v1/topics?limit=abc": 400, "/api/v1/topics?start_after=%": 400,
        "/api/v1/topics?start_after=%zz": 400, "/api/v1/status?x": 400, "/api/v1/status?limit=1": 400,
        "/api/v1/topics/%2e%2e": 400, "/api/v1/topics/a%00b/messages": 400, "/api/v1/groups/%ZZ": 400,
        "/api/v1/topics/" + "a" * 300: 400, "/api/v1/topics?start_after=" + "b" * 300: 400, "/ui/nope.js": 404,
        "/api/v1/groups/gs?from=99999999999": 400, "/api/v2/status": 404,
        "/api/v1/topics/wide?limit=1001": 400, "/api/v1/topics/wide?from_partition=-1": 400,
        "/api/v1/topics/orders/contract": 404, "/api/v1/topics/nope?from_partition=0": 404,
    }
    for path, want in hostile.items():
        code, ctype, body = sc.curl(path, "--path-as-is")
        if code != want:
            fail("%s answered %d, expected %d: %s" % (path, code, want, body[:200]))
        if path.startswith("/api/") and "error" not in json.loads(body):
            fail("%s: no error message: %s" % (path, body))
    code, _, _ = sc.curl("/api/v1/status", "-X", "POST")
    if code != 405:
        fail("POST answered %d" % code)
    # Beyond the page: paging past the end is an empty page, not an error.
    if sc.api("groups/gs?from=1000")["describe"]["partitions"] != [] or sc.api("topics/orders?from_partition=5")["partitions"] != []:
        fail("pages past the end are not empty")
    # Raw garbage and an oversized request line on the listener.
    for raw in (b"GARBAGE\r\n\r\n", b"GET /api/v1/" + b"x" * 9000 + b" HTTP/1.0\r\n\r\n", b"GET /api/v1/status\x00 HTTP/1.0\r\n\r\n"):
        s = socket.create_connection(("127.0.0.1", e.metrics_port), timeout=5)
        s.sendall(raw)
        try:
            s.recv(4096)
        except OSError:
            pass
        s.close()
    if e.broker.poll() is not None or sc.api("status")["broker"]["version"] != st["broker"]["version"]:
        fail("the broker stopped serving after hostile input: %s" % e.log()[-500:])
    print("console API: ok")
finally:
    sc.close()
PY
