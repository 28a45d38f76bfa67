#!/usr/bin/env python3
"""CPU time used by other people's processes while bench/compare.sh measures: everything outside the harness's
own process tree (the servers and load generators it starts), kernel threads left out. `snap FILE ROOT` records
each process's CPU time (its own and its reaped children's); `diff FILE ROOT` prints the seconds used since."""

import os
import sys

HZ = os.sysconf("SC_CLK_TCK")
PF_KTHREAD = 0x00200000


def uptime_ticks():
    return int(float(open("/proc/uptime").read().split()[0]) * HZ)


def processes():
    procs = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            raw = open(f"/proc/{pid}/stat").read()
        except OSError:
            continue
        fields = raw[raw.rindex(")") + 2:].split()
        # fields[0] is state (field 3); ppid 4, flags 9, utime 14, stime 15, cutime 16, cstime 17, starttime 22.
        if int(fields[6]) & PF_KTHREAD:
            continue
        # Reaped children count too (a make's compilers), except for init's: it reaps orphans, whose whole
        # lifetime would land in the window.
        cpu = sum(int(fields[i]) for i in ((11, 12) if pid == "1" else (11, 12, 13, 14)))
        procs[int(pid)] = (int(fields[1]), int(fields[19]), cpu)
    return procs


def others(procs, root):
    ours = {root}
    changed = True
    while changed:
        changed = False
        for pid, (ppid, _, _) in procs.items():
            if ppid in ours and pid not in ours:
                ours.add(pid)
                changed = True
    return {pid: (start, cpu) for pid, (_, start, cpu) in procs.items() if pid not in ours}


def main():
    cmd, path, root = sys.argv[1], sys.argv[2], int(sys.argv[3])
    now = others(processes(), root)
    if cmd == "snap":
        with open(path, "w") as f:
            f.write(f"{uptime_ticks()}\n")
            for pid, (start, cpu) in now.items():
                f.write(f"{pid} {start} {cpu}\n")
        return
    before = {}
    lines = open(path).read().splitlines()
    snap_ticks = int(lines[0])
    for line in lines[1:]:
        pid, start, cpu = map(int, line.split())
        before[pid] = (start, cpu)
    used = 0
    for pid, (start, cpu) in now.items():
        if pid in before and before[pid][0] == start:
            used += max(0, cpu - before[pid][1])
        elif start >= snap_ticks:
            used += cpu  # started during the measurement
        # Otherwise it is older than the snapshot but was not someone else's then: one of ours, orphaned since.
    print(f"{used / HZ:.2f}")


if __name__ == "__main__":
    main()
