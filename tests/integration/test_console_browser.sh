#!/usr/bin/env bash
# Issue 22, the console in a real browser: headless Chromium (Debian's chromium) loads each page of a broker with
# topics, a stalled group, a stopped one and dead letters, and the test reads the rendered DOM (--dump-dom): the
# stalled group first in the overview, the lag figures, a message in the browser, a page of the browser by its
# address, an applier's counters, the dead letters, a topic's sync contract (its text as text) and a failed
# contract check as an alert on the overview and the sync page. Screenshots of each page (and the overview at a phone's
# width) go to BUILD/test-output/console/.
set -euo pipefail
BUILD=${1:-build/release}
command -v chromium >/dev/null || { echo "FAIL: chromium is not installed (tools/install-deps.sh test installs it)"; exit 1; }
exec python3 - "$BUILD" <<'PY'
import html.parser, os, subprocess, sys, tempfile
sys.path.insert(0, "tests/integration")
from healthlib import fail
from console_scenario import Scenario

OUT = os.path.join(sys.argv[1], "test-output", "console")
os.makedirs(OUT, exist_ok=True)


class Page(html.parser.HTMLParser):
    """The rendered page as the test reads it: headings, alerts, and each table's body rows (cell texts) under
    the heading before it; all the text besides."""

    def __init__(self):
        super().__init__()
        self.heading, self.tables, self.alerts, self.text, self.cards = "", {}, [], [], {}
        self.stack, self.cell, self.row, self.rows = [], None, None, None
        self.card_k = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.stack.append((tag, a))
        if tag in ("h1", "h2"):
            self.heading = ""
        elif tag == "tbody":
            self.rows = []
        elif tag == "tr" and self.rows is not None:
            self.row = []
        elif tag == "td" and self.row is not None:
            self.cell = ""

    def handle_endtag(self, tag):
        while self.stack and self.stack[-1][0] != tag:
            self.stack.pop()
        if not self.stack:
            return
        self.stack.pop()
        if tag == "td" and self.row is not None:
            self.row.append(self.cell.strip())
            self.cell = None
        elif tag == "tr" and self.row is not None:
            self.rows.append(self.row)
            self.row = None
        elif tag == "tbody":
            self.tables.setdefault(self.heading.strip(), []).append(self.rows)
            self.rows = None

    def handle_data(self, data):
        self.text.append(data)
        if self.cell is not None:
            self.cell += data
        classes = [a.get("class", "") for _, a in self.stack]
        tags = [t for t, _ in self.stack]
        if "h1" in tags or "h2" in tags:
            self.heading += data
        if any(a.get("role") == "alert" for _, a in self.stack):
            self.alerts.append(data)
        if classes and classes[-1] == "k":
            self.card_k = data.strip()
        elif classes and classes[-1] == "v" and self.card_k:
            self.cards[self.card_k] = data.strip()
            self.card_k = None


sc = Scenario(sys.argv[1])
profile = tempfile.mkdtemp()
try:
    sc.build()
    # A sync contract on orders (its text with markup, which must stay text) and a failed contract check of s.
    e = sc.e
    for t, body in (("orders", "# <b>billing</b> owns it\nsource_of_truth:\n  system: billing\n"
                               "delivery:\n  duplicates: idempotency-key\n"),
                    ("s", "source_of_truth:\n  system: shop\nrecovery:\n  alert:\n    stall_after: 2s\n")):
        with open(os.path.join(e.root, t + ".yaml"), "w") as f:
            f.write(body)
        e.cli("contract", "set", t, os.path.join(e.root, t + ".yaml"), "--set-by", "alice@ops")
    if e.cli("contract", "check", "s", check=False).returncode != 1:
        fail("contract check of s passed")
    base = "http://127.0.0.1:%d/ui/" % sc.e.metrics_port
    flags = ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
             "--user-data-dir=" + profile, "--virtual-time-budget=5000"]

    def load(route, shot):
        r = subprocess.run(flags + ["--dump-dom", base + route], capture_output=True, text=True, timeout=60)
        if r.returncode != 0 or "<main" not in r.stdout:
            fail("chromium could not load %s: %s" % (route, r.stderr[-500:]))
        with open(os.path.join(OUT, shot + ".html"), "w") as f:
            f.write(r.stdout)
        for name, size in ((shot, "1280,900"),) + (((shot + "-phone"), "390,844"),) * (shot == "overview"):
            subprocess.run(flags + ["--window-size=" + size, "--screenshot=" + os.path.join(OUT, name + ".png"),
                                    base + route], capture_output=True, timeout=60)
        p = Page()
        p.feed(r.stdout)
        if "Could not load this page" in "".join(p.text):
            fail("%s shows an error: %s" % (route, "".join(p.alerts)))
        return p

    # Overview: the stalled group first, with its alert; the stopped group's lag as a figure.
    ov = load("#/", "overview")
    rows = ov.tables["Groups, worst first"][0]
    if rows[0][:2] != ["gs", "stalled"] or rows[1][:2] != ["go", "stopped"]:
        fail("overview's groups: %r" % rows)
    if "gs (stalled)" not in "".join(ov.alerts):
        fail("no alert naming the stalled group: %r" % ov.alerts)
    go = [r for r in rows if r[0] == "go"][0]
    if go[4] != "5,000":
        fail("overview's lag of go: %r" % go)
    if "1 topic failed the last contract check: s (" not in "".join(ov.alerts):
        fail("no alert naming s's failed contract check: %r" % ov.alerts)
    if ov.cards.get("topics") != "5" or not ov.cards.get("broker"):
        fail("overview cards: %r" % ov.cards)

    tp = load("#/topics", "topics")
    orders = [r for r in tp.tables["Topics (5)"][0] if r[0] == "orders"]
    if not orders or orders[0][2] != "4":
        fail("topics page: %r" % tp.tables)

    # The message browser on the topic page: newest first, the JSON value pretty-printed.
    t = load("#/topic/orders", "topic-orders")
    msgs = t.tables["Messages"][0]
    if [m[0] for m in msgs] != ["3", "2", "1", "0"] or msgs[0][2] != "o-4" or '"total": 4' not in msgs[0][7]:
        fail("message browser: %r" % msgs)
    if msgs[2][7] != "not JSON":
        fail("a value that is not JSON is shown as it is: %r" % msgs[2])
    # Its sync contract: version, who set it, the text as written (markup shown as text, not rendered).
    if t.cards.get("version") != "1" or t.cards.get("set by") != "alice@ops" or "UTC" not in t.cards.get("set", ""):
        fail("the topic page's contract cards: %r" % t.cards)
    if t.cards.get("without idempotency key (count)") != "0" or "refused" not in t.cards:
        fail("the topic page's enforcement cards: %r" % t.cards)
    raw = open(os.path.join(OUT, "topic-orders.html")).read()
    if "# &lt;b&gt;billing&lt;/b&gt; owns it" not in raw or "<b>billing" in raw:
        fail("the contract's text is not shown as text")
    if "no `synclog contract check` has been reported" not in "".join(t.text):
        fail("the topic page does not say orders' contract was never checked")
    ts = load("#/topic/s", "topic-s")
    if "last contract check" not in "".join(ts.text) or "FAILED" not in "".join(ts.text):
        fail("topic s does not show its failed contract check: %r" % "".join(ts.text)[-800:])
    if "no produce clause" not in "".join(ts.text) or "refused" in ts.cards:
        fail("topic s (no produce clause) shows enforcement counts: %r" % ts.cards)

    # A page of the browser from the address: two records, then the older page by its link.
    t2 = load("#/topic/orders?partition=0&limit=2", "topic-orders-page")
    if [m[0] for m in t2.tables["Messages"][0]] != ["3", "2"] or "older records" not in "".join(t2.text):
        fail("a page of two: %r" % t2.tables["Messages"])
    t3 = load("#/topic/orders?partition=0&offset=1&limit=2", "topic-orders-older")
    if [m[0] for m in t3.tables["Messages"][0]] != ["1", "0"] or "older records" in "".join(t3.text):
        fail("the older page: %r" % t3.tables["Messages"])

    gl = load("#/groups", "groups")
    if [r[0] for r in gl.tables["Groups"][0]] != ["aa-ok", "go", "gs", "ledger"]:
        fail("groups page: %r" % gl.tables)

    g = load("#/group/go", "group-go")
    part = g.tables["Partitions"][0][0]
    if part[0] != "big" or part[2] != "stopped" or part[6] != "5,000":
        fail("group go's partition row: %r" % part)

    g = load("#/group/gs", "group-gs")
    part = g.tables["Partitions"][0][0]
    if part[2] != "stalled" or int(part[6].replace(",", "")) <= 0:
        fail("group gs's partition row: %r" % part)

    g = load("#/group/ledger", "group-ledger")
    if g.cards.get("applied") != "2" or g.cards.get("dead-lettered") != "2" or g.cards.get("stale") != "0":
        fail("ledger's applier counters: %r" % g.cards)

    s = load("#/sync", "sync")
    dlq = s.tables["Dead-letter topics"][0]
    if dlq != [["orders.dlq", "orders", "2", dlq[0][3]]]:
        fail("sync page's dead-letter topics: %r" % dlq)
    letters = [t for h, t in s.tables.items() if h.startswith("Newest dead letters of orders")]
    if not letters or len(letters[0][0]) != 2 or "not JSON" not in letters[0][0][1][7]:
        fail("newest dead letters: %r" % s.tables)
    if "1 topic failed the last contract check: s (" not in "".join(s.alerts):
        fail("sync page's alert of s's failed contract check: %r" % s.alerts)
    runs = s.tables.get("Last backfill, reconcile and contract check runs", [[]])[0]
    if not any(r[0] == "contract" and r[1] == "s" and r[4] == "failed" for r in runs):
        fail("sync page's runs: %r" % runs)
    # Every header of records produced by kcat, one a line: text as text (markup too), base64 said so, the cut
    # ones marked.
    sc.produce_headers()
    th = load("#/topic/hdr", "topic-hdr")
    h2, h1 = th.tables["Messages"][0]
    for want in ("trace-id=abc-123", "v=7", "bin=//6A (base64)", "note=caf\u00e9 <b>"):
        if want not in h1[6]:
            fail("h1's headers cell has no %r: %r" % (want, h1[6]))
    if h1[3] != "7" or "not shown" in h1[6]:
        fail("h1's row: %r" % h1)
    if "x63=" in h2[6] or "x62= \u2026" not in h2[6] or "big=" + "z" * 4096 + " \u2026" not in h2[6] \
            or "more headers or bytes not shown" not in h2[6]:
        fail("h2's headers are not shown bounded: %r" % h2[6][-300:])
    raw = open(os.path.join(OUT, "topic-hdr.html")).read()
    if "caf\u00e9 &lt;b&gt;" not in raw:
        fail("a header's markup is not shown as text")
    print("console in chromium: ok; screenshots in", OUT)
finally:
    sc.close()
    subprocess.run(["rm", "-rf", profile])
PY
