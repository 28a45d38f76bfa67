"""Shared by the operations tests (group health, resets, endpoints, monitoring): a broker with a known metrics port,
the CLI, and small HTTP and JSON helpers."""
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import wire  # noqa: E402
from brokerproc import free_port  # noqa: E402


def fail(msg):
    print("FAIL:", msg)
    sys.exit(1)


class Env:
    def __init__(self, build):
        self.build = build
        self.root = tempfile.mkdtemp()
        self.data = os.path.join(self.root, "data")
        self.procs = []
        self.env = dict(os.environ)
        self.broker = None
        self.metrics_port = None

    def start_broker(self, *flags, wait_ready=True):
        self.metrics_port = free_port()
        self.err = open(os.path.join(self.root, "broker.err"), "a")
        p = subprocess.Popen([os.path.join(self.build, "bin/synclogd"), "--data-dir", self.data, "--listen",
                              "127.0.0.1:0", "--metrics", "127.0.0.1:%d" % self.metrics_port, *flags],
                             stdout=subprocess.PIPE, stderr=self.err, text=True)
        self.procs.append(p)
        self.broker = p
        if wait_ready:
            self.wait_ready()
        return p

    def wait_ready(self):
        line = self.broker.stdout.readline().strip()
        if not line.startswith("synclogd ready on "):
            fail("no readiness line: %r; %s" % (line, self.log()))
        # "synclogd ready on HOST:PORT", then " kafka HOST:PORT" with --kafka-listen.
        words = line.split()
        self.env["SYNCLOG_BROKER"] = words[3]
        self.port = int(words[3].rsplit(":", 1)[1])
        self.kafka = words[5] if len(words) > 5 and words[4] == "kafka" else None

    def log(self):
        self.err.flush()
        return open(os.path.join(self.root, "broker.err")).read()

    def cli(self, *args, check=True, stdin=None, timeout=60):
        r = subprocess.run([os.path.join(self.build, "bin/synclog"), *args], env=self.env, input=stdin,
                           capture_output=True, text=True, timeout=timeout)
        if check and r.returncode != 0:
            fail("synclog %s exited %d: %s" % (" ".join(args), r.returncode, r.stderr))
        return r

    def spawn(self, *args, stdout=subprocess.PIPE):
        p = subprocess.Popen([os.path.join(self.build, "bin/synclog"), *args], env=self.env, stdout=stdout,
                             stderr=subprocess.PIPE, text=True)
        self.procs.append(p)
        return p

    def produce(self, topic, lines):
        self.cli("produce", topic, stdin="".join(lines))

    def describe(self, group):
        r = self.cli("--json", "group", "describe", group, check=False)
        return [json.loads(l) for l in r.stdout.splitlines()] if r.returncode == 0 else []

    def http(self, path):
        try:
            with urllib.request.urlopen("http://127.0.0.1:%d%s" % (self.metrics_port, path), timeout=5) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()
        except (urllib.error.URLError, ConnectionError) as e:
            return 0, str(e)  # not listening (yet, or any more)

    def metrics(self):
        status, body = self.http("/metrics")
        if status != 200:
            fail("/metrics answered %d" % status)
        return body

    def close(self):
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        subprocess.run(["rm", "-rf", self.root])


def wait_for(what, cond, seconds=30, interval=0.1):
    deadline = time.time() + seconds
    while True:
        v = cond()
        if v:
            return v
        if time.time() > deadline:
            fail("timed out after %d s waiting for %s" % (seconds, what))
        time.sleep(interval)
