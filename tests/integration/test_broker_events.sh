#!/usr/bin/env bash
# What synclogd tells its operator and its service manager: with --log-format json every stderr line is one JSON
# event; start carries the effective configuration, recovery what opening found (a crash recovered after kill -9),
# ready the bound addresses with the real ports (the metrics port answers); READY=1 and STOPPING=1 arrive on
# $NOTIFY_SOCKET (a path and an abstract socket); SIGTERM logs shutdown_begin and shutdown. Listeners take host
# names and IPv6; a wrong address or a port in use fails with exit 1 and the cause. A config file may carry
# # comments and sets the log level; an unknown key is bad usage.
# Usage: tests/integration/test_broker_events.sh BUILD_DIR.
set -euo pipefail
build=${1:-build/release}
exec python3 - "$build" <<'PY'
import json, os, shutil, signal, socket, subprocess, sys, time, urllib.request
sys.path.insert(0, "tests/integration")
import testenv
from checks import check, finish

build, root, data = testenv.dirs()
synclogd = os.path.join(build, "bin/synclogd")
synclog = os.path.join(build, "bin/synclog")

def start(args, env=None):
    """Start synclogd; return (process, ready address or None, stderr path)."""
    err = os.path.join(root, "err.%d" % len(os.listdir(root)))
    p = subprocess.Popen([synclogd] + args, stdout=subprocess.PIPE, stderr=open(err, "w"), text=True,
                         env=dict(os.environ, **(env or {})))
    line = p.stdout.readline().strip()
    return p, (line[len("synclogd ready on "):] if line.startswith("synclogd ready on ") else None), err

def events(path):
    out = []
    for line in open(path):
        try:
            out.append(json.loads(line))
        except ValueError:
            check(False, "not a JSON event line: %r" % line)
    return out

def stop(p):
    p.send_signal(signal.SIGTERM)
    return p.wait(timeout=30)

def notify_socket(name):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(name)
    s.settimeout(10)
    return s

try:
    # ---- JSON events, notify on a path, a host name to listen on, metrics on port 0 ----
    path = os.path.join(root, "notify.sock")
    ns = notify_socket(path)
    b, addr, err = start(["--data-dir", data, "--listen", "localhost:0", "--metrics", "127.0.0.1:0",
                          "--log-format", "json"], {"NOTIFY_SOCKET": path})
    check(addr is not None and not addr.endswith(":0"), "ready line names a real port: %r" % addr)
    msg = ns.recv(4096).decode()
    check("READY=1" in msg.split("\n") and "STATUS=serving on %s" % addr in msg, "READY=1 on the socket: %r" % msg)
    ev = events(err)
    names = [e.get("event") for e in ev]
    # The security summary and the loopback note come between (synclogd(8), SECURITY).
    check([n for n in names if n not in ("security", "loopback_only")][:3] == ["start", "recovery", "ready"],
          "first events: %r" % names)
    start_ev = next(e for e in ev if e["event"] == "start")
    check(start_ev["data_dir"] == data and start_ev["listen"] == "localhost:0" and start_ev["log_format"] == "json"
          and start_ev["segment_bytes"] == 1073741824 and start_ev["level"] == "info" and "ts" in start_ev,
          "start event: %r" % start_ev)
    ready = next(e for e in ev if e["event"] == "ready")
    check(ready["listen"] == addr, "ready event listen %r vs %r" % (ready["listen"], addr))
    mport = int(ready["metrics"].rsplit(":", 1)[1])
    check(mport != 0, "metrics port is the real one: %r" % ready["metrics"])
    body = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % mport, timeout=10).read().decode()
    check("synclog_" in body, "the logged metrics port serves /metrics")
    r = subprocess.run([synclog, "--broker", addr, "topic", "create", "t", "--partitions", "2"], capture_output=True,
                       text=True)
    check(r.returncode == 0, "topic create against the logged address: " + r.stderr)
    r = subprocess.run([synclog, "--broker", addr, "produce", "t", "--acks", "fsync"], input="a\t1\nb\t2\nc\t3\n",
                       capture_output=True, text=True)
    check(r.returncode == 0, "produce: " + r.stderr)
    check(stop(b) == 0, "exit 0 after SIGTERM")
    msg = ns.recv(4096).decode()
    check("STOPPING=1" in msg.split("\n"), "STOPPING=1 on the socket: %r" % msg)
    names = [e.get("event") for e in events(err)]
    check(names[-2:] == ["shutdown_begin", "shutdown"], "last events: %r" % names)
    down = events(err)[-1]
    check(down["exit_code"] == 0, "shutdown event: %r" % down)
    ns.close()

    # ---- after kill -9 the recovery event says partitions were recovered; abstract notify socket ----
    ans = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    ans.bind("\0synclog-test-%d" % os.getpid())
    ans.settimeout(10)
    b, addr, err = start(["--data-dir", data, "--listen", "127.0.0.1:0", "--metrics", "off", "--log-format", "json"],
                         {"NOTIFY_SOCKET": "@synclog-test-%d" % os.getpid()})
    check("READY=1" in ans.recv(4096).decode(), "READY=1 on an abstract socket")
    rec = next(e for e in events(err) if e["event"] == "recovery")
    check(rec["topics"] == 1 and rec["partitions"] == 2 and rec["clean"] == 2 and rec["recovered"] == 0,
          "recovery after a clean stop: %r" % rec)
    check(next(e for e in events(err) if e["event"] == "ready")["metrics"] == "off", "metrics off in ready")
    b.kill()
    b.wait()
    b, addr, err = start(["--data-dir", data, "--listen", "127.0.0.1:0", "--metrics", "off", "--log-format", "json"])
    rec = next(e for e in events(err) if e["event"] == "recovery")
    check(rec["recovered"] == 2 and rec["clean"] == 0 and rec["unavailable"] == 0, "recovery after kill -9: %r" % rec)
    check(sum(1 for e in events(err) if e["event"] == "partition_recovered") == 2, "one event per recovered partition")
    check(stop(b) == 0, "exit 0")

    # ---- IPv6 loopback, when the machine has it ----
    try:
        probe = socket.socket(socket.AF_INET6)
        probe.bind(("::1", 0))
        probe.close()
        have_v6 = True
    except OSError:
        have_v6 = False
    if have_v6:
        b, addr, err = start(["--data-dir", data, "--listen", "[::1]:0", "--metrics", "off"])
        check(addr is not None and addr.startswith("[::1]:"), "IPv6 ready line: %r" % addr)
        r = subprocess.run([synclog, "--broker", addr, "topic", "list"], capture_output=True, text=True)
        check(r.returncode == 0 and "t " in r.stdout, "a client over IPv6: " + r.stderr)
        check(stop(b) == 0, "exit 0")
    else:
        print("note: no IPv6 loopback here; [::1] not tried")

    # ---- a wrong address and a port in use: exit 1, the cause named ----
    b, addr, err = start(["--data-dir", data, "--listen", "no-such-host.invalid:0", "--metrics", "off"])
    check(b.wait(timeout=30) == 1 and addr is None, "an unresolvable listen host exits 1")
    text = open(err).read()
    check("start_failed" in text and "cannot resolve 'no-such-host.invalid'" in text and "--listen" in text,
          "unresolvable host message: " + text)
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen(1)
    busy = holder.getsockname()[1]
    b, addr, err = start(["--data-dir", data, "--listen", "127.0.0.1:%d" % busy, "--metrics", "off"])
    check(b.wait(timeout=30) == 1, "a port in use exits 1")
    text = open(err).read()
    check("address already in use" in text and "another broker" in text, "port in use message: " + text)
    b, addr, err = start(["--data-dir", data, "--listen", "127.0.0.1:0", "--metrics", "127.0.0.1:%d" % busy])
    check(b.wait(timeout=30) == 1 and "cannot serve metrics" in open(err).read(), "metrics port in use exits 1")
    holder.close()

    # ---- a config file with comments; flags win; an unknown key is bad usage ----
    conf = os.path.join(root, "synclogd.conf")
    with open(conf, "w") as f:
        f.write('# comment line\n{\n  "listen": "127.0.0.1:0",  # trailing comment\n  "metrics": "off",\n'
                '  "log_level": "warn",\n  "log_format": "json",\n  "segment_ms": "1d"  # "quoted" # twice\n}\n')
    b, addr, err = start(["--config", conf, "--data-dir", data])
    check(addr is not None, "broker with a commented config did not start: " + open(err).read())
    check(stop(b) == 0, "exit 0")
    check(events(err) == [], "log_level warn in the config hides info events: %r" % events(err))
    b, addr, err = start(["--config", conf, "--data-dir", data, "--log-level", "info"])
    st = next(e for e in events(err) if e["event"] == "start")
    check(st["segment_ms"] == "1d" and st["log_level"] == "info" and st["config"] == conf,
          "config values and flag override in the start event: %r" % st)
    check(stop(b) == 0, "exit 0")
    with open(conf, "w") as f:
        f.write('{"listen": "127.0.0.1:0", "bogus_key": 1}\n')
    r = subprocess.run([synclogd, "--config", conf, "--data-dir", data], capture_output=True, text=True, timeout=30)
    check(r.returncode == 2 and "unknown key 'bogus_key'" in r.stderr, "unknown config key: %d %s" %
          (r.returncode, r.stderr))
    r = subprocess.run([synclogd, "--version"], capture_output=True, text=True, timeout=30)
    check(r.returncode == 0 and r.stdout.startswith("synclogd ") and len(r.stdout.split()) == 2,
          "synclogd --version: %r" % r.stdout)
finally:
    shutil.rmtree(root, ignore_errors=True)
finish()
PY
