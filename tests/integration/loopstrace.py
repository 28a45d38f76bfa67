"""Which thread of a running broker made which system calls, for the tests that check the loop never blocks:
strace follows every thread of the broker's process into a file, and its lines are split into the loop's (the
main thread, whose thread id is the process id) and the workers'."""
import subprocess
import time


class LoopTrace:
    def __init__(self, pid, calls, path):
        """Attach to every thread of pid, tracing calls (strace's trace= list, comma-separated) into path."""
        self.pid = pid
        self.path = path
        self.proc = subprocess.Popen(["strace", "-f", "-qq", "-p", str(pid), "-o", path, "-e", "trace=" + calls],
                                     stderr=subprocess.DEVNULL)
        time.sleep(0.5)  # strace attaches to every thread

    def detach(self):
        """Stop tracing; a no-op when already detached. SIGTERM, never SIGKILL: strace detaches on SIGTERM, a
        SIGKILLed tracer can leave the broker stopped."""
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait()
            self.proc = None

    def split(self):
        """Detach, then (the loop thread's lines, the other threads' lines) of the trace, each line without its
        newline."""
        self.detach()
        lines = open(self.path).read().splitlines()
        mark = str(self.pid) + " "
        return [l for l in lines if l.startswith(mark)], [l for l in lines if not l.startswith(mark)]
