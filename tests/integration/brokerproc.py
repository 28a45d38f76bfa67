"""A synclogd process for Python integration tests: start it on 127.0.0.1 port 0 (and a free metrics port when
asked), read its memory and descriptors from /proc, scrape its metrics, stop it by PID."""
import os
import re
import resource
import socket
import subprocess
import time


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def raise_nofile(n):
    """Raise this process's descriptor limit (tests that open thousands of sockets)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(n, hard) if hard != resource.RLIM_INFINITY else n
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


class Broker:
    def __init__(self, build, data, args=(), metrics=False, nofile=None, nofile_soft=None, stderr_path=None):
        """nofile: the broker's descriptor limit, hard (and soft unless nofile_soft is given); the broker raises
        its soft limit to the hard one."""
        self.metrics_port = free_port() if metrics else None
        cmd = [os.path.join(build, "bin/synclogd"), "--data-dir", data, "--listen", "127.0.0.1:0",
               "--metrics", "127.0.0.1:%d" % self.metrics_port if metrics else "off"] + list(args)
        limit = None
        if nofile is not None:
            def limit():
                resource.setrlimit(resource.RLIMIT_NOFILE, (nofile_soft or nofile, nofile))
        self.stderr = open(stderr_path or os.devnull, "ab")
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self.stderr, text=True,
                                     preexec_fn=limit)
        line = self.proc.stdout.readline().strip()
        if not line.startswith("synclogd ready on "):
            self.proc.wait(timeout=20)
            raise RuntimeError("synclogd did not start (exit %s): %r" % (self.proc.returncode, line))
        self.port = int(line.rsplit(":", 1)[1])
        self.addr = "127.0.0.1:%d" % self.port
        self.pid = self.proc.pid

    def rss_mb(self):
        with open("/proc/%d/status" % self.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
        return 0.0

    def fds(self):
        return len(os.listdir("/proc/%d/fd" % self.pid))

    def nofile_soft(self):
        with open("/proc/%d/limits" % self.pid) as f:
            for line in f:
                if line.startswith("Max open files"):
                    return int(line.split()[3])
        return -1

    def alive(self):
        return self.proc.poll() is None

    def scrape(self, timeout=5):
        """{metric name with labels: value} from GET /metrics."""
        s = socket.create_connection(("127.0.0.1", self.metrics_port), timeout=timeout)
        s.sendall(b"GET /metrics HTTP/1.0\r\n\r\n")
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        s.close()
        out = {}
        for line in data.decode(errors="replace").split("\r\n\r\n", 1)[-1].splitlines():
            m = re.match(r"^([a-z_]+(?:\{[^}]*\})?) (\S+)$", line)
            if m:
                out[m.group(1)] = float(m.group(2))
        return out

    def stop(self, timeout=30):
        """SIGTERM, wait; returns the exit code."""
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        self.stderr.close()
        return rc

    def kill9(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.stderr.close()


def cli(build, addr, *args, input_text=None, timeout=120):
    """Run bin/synclog against addr; returns (exit code, stdout, stderr)."""
    env = dict(os.environ, SYNCLOG_BROKER=addr)
    p = subprocess.run([os.path.join(build, "bin/synclog")] + list(args), input=input_text, capture_output=True,
                       text=True, env=env, timeout=timeout)
    return p.returncode, p.stdout, p.stderr


def wait_until(cond, timeout, step=0.1):
    """Poll cond() until true or timeout seconds passed; returns its last value."""
    end = time.monotonic() + timeout
    v = cond()
    while not v and time.monotonic() < end:
        time.sleep(step)
        v = cond()
    return v
