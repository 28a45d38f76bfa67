"""Which thread of a running broker made which system calls, for the tests that check the loop never blocks:
strace follows every thread of the broker's process into a file, and its lines are split into the loop's (the
main thread, whose thread id is the process id) and the workers'."""
import subprocess
import time

UNFINISHED = "<unfinished ...>"


def joined(lines):
    """strace -f cuts a call of one thread that another thread's call interrupts in two: 'PID  NAME(args
    <unfinished ...>', later 'PID  <... NAME resumed>args) = result'. Each such pair as one line, where the first
    part stood, so that a check sees the whole call (preadv2's flags come last)."""
    out, open_at = [], {}
    for line in lines:
        pid, _, call = line.partition(" ")
        call = call.lstrip()
        if call.endswith(UNFINISHED):
            open_at[pid] = len(out)
            out.append(line[:-len(UNFINISHED)].rstrip())
        elif call.startswith("<... ") and "resumed>" in call and pid in open_at:
            out[open_at.pop(pid)] += call.split("resumed>", 1)[1]
        else:
            out.append(line)
    return out


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
        newline and each call whole on one line."""
        self.detach()
        lines = joined(open(self.path).read().splitlines())
        mark = str(self.pid) + " "
        return [l for l in lines if l.startswith(mark)], [l for l in lines if not l.startswith(mark)]
