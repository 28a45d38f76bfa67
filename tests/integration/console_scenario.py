"""The broker the console tests look at (issue 22): topics with records, dead letters, an applier's counters, a
stalled group, a stopped one and a healthy one. Shared by test_console_api.sh and test_console_browser.sh."""
import json
import os
import signal
import subprocess
import threading
import time

from healthlib import Env, fail, wait_for


class Scenario:
    def __init__(self, build):
        self.e = Env(build)
        self.stop = threading.Event()

    def curl(self, path, *extra):
        """GET path with curl: (status, content type, body)."""
        r = subprocess.run(["curl", "-sS", "--max-time", "10", "-o", "-", "-w", "\n%{http_code} %{content_type}",
                            *extra, "http://127.0.0.1:%d%s" % (self.e.metrics_port, path)],
                           capture_output=True, text=True)
        body, _, tail = r.stdout.rpartition("\n")
        code, _, ctype = tail.partition(" ")
        return int(code or 0), ctype, body

    def api(self, path):
        code, ctype, body = self.curl("/api/v1/" + path)
        if code != 200 or not ctype.startswith("application/json"):
            fail("/api/v1/%s answered %d %s: %s" % (path, code, ctype, body[:300]))
        return json.loads(body)

    def _produce_loop(self):
        i = 0
        while not self.stop.is_set():
            self.e.produce("s", ["k%d\tv%d\n" % (i + j, i + j) for j in range(5)])
            i += 5
            time.sleep(0.2)

    def build(self):
        e = self.e
        e.start_broker("--stall-after", "2s", "--health-window", "4", "--initial-rebalance-delay", "0",
                       "--kafka-listen", "127.0.0.1:0")
        for t in ("orders", "s", "quiet", "big"):
            e.cli("topic", "create", t, "--partitions", "1")
        # orders: two good events, one whose value is not JSON and one without a key (both dead-lettered).
        e.produce("orders", ['o-1\t{"total": 1}\n', "o-2\tnot JSON\n", '\t{"total": 3}\n', 'o-4\t{"total": 4, "items": ["a"]}\n'])
        out = e.cli("apply", "orders", "--group", "ledger", "--target", "sqlite:" + os.path.join(e.root, "ledger.db")).stdout
        if out.strip() != "applied 2 stale 0 duplicate 0 deleted 0 dead_lettered 2":
            fail("apply: %r" % out)
        e.produce("quiet", ["q\tv\n"])
        e.cli("consume", "quiet", "--group", "aa-ok")
        # stopped: offsets only, no member, records waiting: more of them than the stalled group will have, so
        # that the overview's order (stalled, then stopped) is not the order of lag.
        e.produce("big", ["b%d\tv\n" % i for i in range(5000)])
        e.cli("offsets", "reset", "--group", "go", "--topic", "big", "--to-offset", "0", "--execute")
        # stalled: a member that stops (SIGSTOP) while records keep coming; its session (the longest the broker
        # allows) outlasts the test, even under sanitizers, so it stays a member and the group stays stalled.
        self.producer = threading.Thread(target=self._produce_loop, daemon=True)
        self.producer.start()
        cs = e.spawn("consume", "s", "--group", "gs", "--follow", "--session-timeout-ms", "300000",
                     "--commit-interval-ms", "100", stdout=open(os.devnull, "w"))
        wait_for("gs to consume", lambda: any(r["committed"] > 0 for r in e.describe("gs")))
        cs.send_signal(signal.SIGSTOP)
        self.stalled_consumer = cs
        wait_for("gs to become stalled", lambda: any(r["state"] == "stalled" for r in e.describe("gs")), seconds=30)

    def produce_headers(self):
        """Topic hdr, produced through the Kafka listener by kcat with headers of its own (the browser shows every
        header): h1 with text headers, one whose value is not UTF-8 (base64 //6A) and a sync header (v=7); h2 with
        a 5,000-byte header and 70 more (past the bounds: its first value cut at 4 KiB, 64 headers shown)."""
        e = self.e
        e.cli("topic", "create", "hdr", "--partitions", "1")
        kcat = ["kcat", "-b", e.kafka, "-X", "socket.timeout.ms=10000", "-X", "topic.request.timeout.ms=10000",
                "-P", "-t", "hdr", "-K", "#"]
        for hdrs, line in (([b"trace-id=abc-123", b"v=7", b"bin=\xff\xfe\x80", "note=caf\u00e9 <b>".encode()],
                            b'h1#{"n": 1}\n'),
                           ([b"big=" + b"z" * 5000] + [b"x%d=y%d" % (i, i) for i in range(70)], b'h2#{"n": 2}\n')):
            args = [a.encode() for a in kcat]
            for h in hdrs:
                args += [b"-H", h]
            r = subprocess.run(args, input=line, capture_output=True, timeout=60)
            if r.returncode != 0:
                fail("kcat -P: %s" % r.stderr.decode(errors="replace"))

    def quiesce(self):
        """Stop producing, so that lag figures hold still."""
        self.stop.set()
        self.producer.join()

    def close(self):
        self.stop.set()
        if getattr(self, "stalled_consumer", None) is not None and self.stalled_consumer.poll() is None:
            self.stalled_consumer.send_signal(signal.SIGCONT)
        self.e.close()
