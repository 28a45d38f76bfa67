#!/usr/bin/env python3
"""Summaries and charts of the scale benchmarks (issue 21): `charts.py NAME RESULT.json OUT.png` reads what
bench/NAME.sh wrote, adds a "summary" (medians with min-max over the rounds, ratios, targets, and for the curves
how each cost grows with its variable) to the same JSON, prints it as a short table and draws OUT.png with gnuplot.

How the charts read, everywhere: one panel per measured quantity, its unit on the axis, the workload said in the
panel's title; a bar or point is the median over the rounds and its error bar spans the rounds' min to max; axes
are linear unless the variable spans decades (the curves' partitions, connections, groups: log x, said on the
axis).

How a curve's growth is judged (the issue: anything worse than linear in its own variable is a bug): between the
smallest and the largest point, exponent k = log(cost ratio) / log(variable ratio). k < 0.25 is flat, < 0.85
sub-linear, <= 1.15 linear, above that super-linear. A cost that is meant to be per unit (RSS per connection) is
judged on its total."""

import bisect, json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile


def summary(values):
    values = [v for v in values if v is not None]
    if not values:
        return None
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "rounds": len(values)}


def med(s):
    return s["median"] if isinstance(s, dict) else s


def growth(points, var, cost):
    """Growth class of cost(var) between the smallest and largest var with a value."""
    pts = sorted((p[var], med(p.get(cost))) for p in points
                 if p.get(var) and isinstance(med(p.get(cost)), (int, float)))
    pts = [(x, y) for x, y in pts if y is not None and y > 0]
    if len(pts) < 2 or pts[-1][0] <= pts[0][0]:
        return None
    (x0, y0), (x1, y1) = pts[0], pts[-1]
    k = math.log(y1 / y0) / math.log(x1 / x0)
    cls = "flat" if k < 0.25 else "sub-linear" if k < 0.85 else "linear" if k <= 1.15 else "super-linear"
    return {"cost": cost, "variable": var, "from": [x0, y0], "to": [x1, y1], "exponent": round(k, 3), "class": cls}


def fmt(v, digits=0):
    if v is None:
        return "-"
    if isinstance(v, dict):
        return f"{fmt(v['median'], digits)} ({fmt(v['min'], digits)}-{fmt(v['max'], digits)})"
    if abs(v) >= 100 or digits == 0:
        return f"{v:,.0f}"
    return f"{v:,.{digits}f}"


# ---- gnuplot ----

class Chart:
    """A multiplot of panels, each a bar panel or a line panel, written as data files and one gnuplot script."""

    def __init__(self, title):
        self.title = title
        self.panels = []
        self.tmp = tempfile.mkdtemp()

    def _data(self, rows):
        path = os.path.join(self.tmp, f"d{len(os.listdir(self.tmp))}.dat")
        with open(path, "w") as f:
            for r in rows:
                f.write(" ".join(r) + "\n")
        return path

    def bars(self, title, ylabel, categories, series):
        """categories: labels on x; series: [(name, [summary per category])]: clustered bars, min-max bars."""
        rows, top = [], 0
        for i, c in enumerate(categories):
            row = ['"%s"' % c.replace('"', "'").replace("\n", "\\n")]  # a label may take two lines
            for _, vals in series:
                s = vals[i]
                if s is None:
                    row += ["-", "-", "-"]
                elif isinstance(s, dict):
                    row += [f"{s['median']:.6g}", f"{s['min']:.6g}", f"{s['max']:.6g}"]
                    top = max(top, s["max"])
                else:
                    row += [f"{s:.6g}"] * 3
                    top = max(top, s)
            rows.append(row)
        path = self._data(rows)
        plots = []
        for j, (name, _) in enumerate(series):
            c = 2 + 3 * j
            xt = ":xtic(1)" if j == 0 else ""
            plots.append(f'"{path}" using {c}:{c + 1}:{c + 2}{xt} title "{esc(name.replace(chr(10), " "))}"')
        self.panels.append(("bars", title, ylabel, plots, top))

    def lines(self, title, xlabel, ylabel, series, logx=False, logy=False, hlines=()):
        """series: [(name, [(x, summary)])]; hlines: [(y, label)] drawn as dashed lines (targets)."""
        plots, top = [], 0
        for name, pts in series:
            rows = []
            for x, s in pts:
                if s is None:
                    continue
                if isinstance(s, dict):
                    rows.append([f"{x:.6g}", f"{s['median']:.6g}", f"{s['min']:.6g}", f"{s['max']:.6g}"])
                    top = max(top, s["max"])
                else:
                    rows.append([f"{x:.6g}", f"{s:.6g}", f"{s:.6g}", f"{s:.6g}"])
                    top = max(top, s)
            if not rows:
                continue
            path = self._data(rows)
            plots.append(f'"{path}" using 1:2:3:4 with yerrorlines title "{esc(name.replace(chr(10), " "))}"')
        for y, label in hlines:
            plots.append(f'{y} with lines dashtype 2 lc rgb "#888888" title "{label}"')
        self.panels.append(("lines", title, (xlabel, ylabel, logx, logy), plots, top))

    def draw(self, png, cols=2, width=560):
        if shutil.which("gnuplot") is None:
            print("charts: gnuplot is missing: no chart", file=sys.stderr)
            return
        n = len(self.panels)
        rows = (n + cols - 1) // cols
        cols = min(cols, n)
        out = [f'set terminal pngcairo size {width * cols},{420 * rows + 40} font "sans,9"',
               f'set output "{png}"', "set termoption noenhanced", "set datafile missing \"-\"",
               f'set multiplot layout {rows},{cols} title "{esc(self.title, width * cols // 8)}" font "sans,11"',
               "set grid ytics", "set key top left font \"sans,8\"", "set tmargin 5"]
        for kind, title, axes, plots, top in self.panels:
            out.append(f'set title "{esc(title, width // 6)}"')
            # Large values with an SI prefix (4.2M), small ones as they are.
            out.append('set format y "%.1s%c"' if top >= 10000 and not (kind == "lines" and axes[3])
                       else 'set format y "%g"')
            if kind == "bars":
                out += ["unset logscale", "set style data histograms",
                        "set style histogram errorbars gap 1 lw 1", "set style fill solid 0.6 border -1",
                        "set boxwidth 0.9", "set xtics rotate by 0", "set yrange [0:*]", "set xrange [*:*]",
                        f'set ylabel "{esc(axes)}"', 'set xlabel ""']
            else:
                xlabel, ylabel, logx, logy = axes
                out += ["unset logscale", "set style data lines", "set xtics autofreq", "set yrange [0:*]",
                        "set xrange [*:*]", f'set xlabel "{esc(xlabel)}"', f'set ylabel "{esc(ylabel)}"']
                if logx:
                    out.append("set logscale x")
                if logy:
                    out += ["set logscale y", "set yrange [*:*]"]
            out.append("plot " + ", \\\n     ".join(plots) if plots else "plot 0 notitle")
        out.append("unset multiplot")
        script = os.path.join(self.tmp, "chart.gp")
        open(script, "w").write("\n".join(out) + "\n")
        r = subprocess.run(["gnuplot", script], capture_output=True, text=True)
        if r.returncode != 0:
            print("charts: gnuplot failed: " + r.stderr, file=sys.stderr)
        shutil.rmtree(self.tmp, ignore_errors=True)


def esc(s, width=0):
    """A gnuplot double-quoted string's content; with width, wrapped at words into lines of about that many."""
    s = s.replace("\\", "\\\\").replace('"', "'").replace("`", "'")  # a backquote runs a command in gnuplot
    if width:
        lines, cur = [], ""
        for w in s.split(" "):
            if cur and len(cur) + 1 + len(w) > width:
                lines.append(cur)
                cur = w
            else:
                cur = f"{cur} {w}" if cur else w
        lines.append(cur)
        s = "\\n".join(lines)
    return s


def gib(b):
    return f"{b / (1 << 30):.1f} GiB" if b >= (1 << 30) else f"{b / (1 << 20):.0f} MiB"


# ---- cold_replay ----

def cold_replay(d, png):
    rs = d["rounds"]
    s = {
        "synclog_mb_per_s": summary([r["synclog"]["mb_per_s"] for r in rs]),
        "fio_mb_per_s": summary([r["fio"]["mb_per_s"] for r in rs]),
        "broker_cpu_s_per_gb": summary([r["synclog"]["broker_cpu_s_per_gb"] for r in rs]),
        "resident_bytes_at_start": summary([r["resident_bytes_at_start"] for r in rs]),
    }
    s["ratio"] = med(s["synclog_mb_per_s"]) / med(s["fio_mb_per_s"]) if s["fio_mb_per_s"] else None
    s["target"] = 0.8
    s["met"] = s["ratio"] is not None and s["ratio"] >= 0.8
    d["summary"] = s
    print(f"cold replay of {gib(d['log_bytes'])}: synclog {fmt(s['synclog_mb_per_s'])} MB/s, fio "
          f"{fmt(s['fio_mb_per_s'])} MB/s, ratio {s['ratio']:.2f} (target 0.8: {'met' if s['met'] else 'missed'}); "
          f"broker CPU {fmt(s['broker_cpu_s_per_gb'], 2)} s per GB")
    what = (f"{gib(d['log_bytes'])} of {d['record_bytes']} B records in {d['segments']} segment(s), page cache "
            f"dropped before each run")
    c = Chart(f"Cold replay: {what}")
    c.bars("Read rate from disk: synclog replay (fetcher, 1 MiB per Fetch) vs fio sequential buffered read "
           "(io_uring, bs 1 MiB, iodepth 1)", "MB/s (10^6 B/s) of segment bytes", ["synclog", "fio"],
           [("median, min-max over rounds", [s["synclog_mb_per_s"], s["fio_mb_per_s"]])])
    c.bars("Broker CPU per GB replayed (every thread, io_uring workers included)", "CPU seconds per GB",
           [d.get("broker_flags") or "synclogd defaults"], [("median, min-max", [s["broker_cpu_s_per_gb"]])])
    c.draw(png)


# ---- replay_interference ----

def replay_interference(d, png):
    rs = d["rounds"]
    s = {}
    for case in ("alone", "with_replay"):
        for p in ("p50_us", "p99_us", "p999_us"):
            s[f"{case}_{p}"] = summary([r[case]["e2e"][p] for r in rs])
        s[f"{case}_ack_p99_us"] = summary([r[case]["ack"]["p99_us"] for r in rs])
    s["replay_mb_per_s"] = summary([r["with_replay"]["replay_mb_per_s"] for r in rs])
    s["ratio_p99"] = med(s["with_replay_p99_us"]) / med(s["alone_p99_us"]) if s["alone_p99_us"] else None
    s["target"] = 1.5
    s["met"] = s["ratio_p99"] is not None and s["ratio_p99"] <= 1.5
    d["summary"] = s
    print(f"live p99 at {d['rate']:,} records/s: alone {fmt(s['alone_p99_us'])} us, while replaying "
          f"{gib(d['replay_bytes'])} cold {fmt(s['with_replay_p99_us'])} us: {s['ratio_p99']:.2f}x "
          f"(target <= 1.5: {'met' if s['met'] else 'missed'}); replay {fmt(s['replay_mb_per_s'])} MB/s")
    c = Chart(f"Produce-to-consume latency at {d['rate']:,} records/s of {d['record_bytes']} B, alone and while "
              f"one consumer replays {gib(d['replay_bytes'])} "
              + ("from disk (page cache dropped)" if d.get("cold", True) else "from the page cache (warm)"))
    cats = ["p50", "p99", "p99.9"]
    c.bars("Live produce-to-consume latency (intended send time to receipt)", "microseconds", cats,
           [("alone", [s["alone_p50_us"], s["alone_p99_us"], s["alone_p999_us"]]),
            ("with a cold replay", [s["with_replay_p50_us"], s["with_replay_p99_us"], s["with_replay_p999_us"]])])
    c.bars("The cold replay running meanwhile", "MB/s of segment bytes", ["replay"],
           [("median, min-max", [s["replay_mb_per_s"]])])
    c.draw(png)


# ---- many_groups ----

def many_groups(d, png):
    rs = d["rounds"]
    s = {}
    for case in ("baseline", "one", "many"):
        if case != "baseline":
            s[f"{case}_mb_per_s"] = summary([r[case]["replay_mb_per_s"] for r in rs])
        s[f"{case}_ack_p99_us"] = summary([r[case]["producer"]["ack"]["p99_us"] for r in rs])
        s[f"{case}_e2e_p99_us"] = summary([r[case]["producer"]["e2e"]["p99_us"] for r in rs])
    s["replay_ratio"] = med(s["many_mb_per_s"]) / med(s["one_mb_per_s"]) if s["one_mb_per_s"] else None
    d["summary"] = s
    n = d["groups"]
    print(f"{n} groups from {n} points: {fmt(s['many_mb_per_s'])} MB/s in all, 1 group {fmt(s['one_mb_per_s'])} "
          f"MB/s ({s['replay_ratio']:.2f}x); producer ack p99: none {fmt(s['baseline_ack_p99_us'])} us, 1 group "
          f"{fmt(s['one_ack_p99_us'])} us, {n} groups {fmt(s['many_ack_p99_us'])} us")
    c = Chart(f"{n} consumer groups replaying one topic from {n} different points ({gib(d['bytes_per_group'])} "
              f"each, {'cold' if d['cold'] else 'warm'}) while a producer appends {d['producer_rate']:,} records/s")
    c.bars("Total replay rate of the groups", "MB/s of keys and values", ["1 group", f"{n} groups"],
           [("median, min-max", [s["one_mb_per_s"], s["many_mb_per_s"]])])
    c.bars("The producer's p99 meanwhile (acknowledgement, and produce-to-consume)", "microseconds", ["no replay", "1 group", f"{n} groups"],
           [("ack p99", [s["baseline_ack_p99_us"], s["one_ack_p99_us"], s["many_ack_p99_us"]]),
            ("produce-to-consume p99", [s["baseline_e2e_p99_us"], s["one_e2e_p99_us"], s["many_e2e_p99_us"]])])
    c.draw(png)


# ---- offered_load ----

def offered_load(d, png):
    s = {"peak_records_per_s": summary(d["peak_rounds"]), "points": []}
    for p in d["points"]:
        s["points"].append({"percent": p["percent"], "rate": p["rate"],
                            "p50_us": summary([r["p50_us"] for r in p["rounds"]]),
                            "p99_us": summary([r["p99_us"] for r in p["rounds"]]),
                            "p999_us": summary([r["p999_us"] for r in p["rounds"]]),
                            "achieved_rate": summary([r["achieved_rate"] for r in p["rounds"]])})
    d["summary"] = s
    if "w1_rounds" in d:
        s["w1_records_per_s"] = summary(d["w1_rounds"])
    print(f"peak {fmt(s['peak_records_per_s'])} records/s (W6's path offered more than it takes: 100 B, written, "
          f"linger 0, its consumer on the same core)")
    for p in s["points"]:
        print(f"  {p['percent']:>3}% = {p['rate']:>10,.0f} records/s: p50 {fmt(p['p50_us'])} us, p99 "
              f"{fmt(p['p99_us'])} us, p99.9 {fmt(p['p999_us'])} us")
    c = Chart("W6 latency against offered load: produce-to-consume of 100 B records (written, linger 0), offered "
              "at a share of the peak rate of the same path measured in the same run")
    ms = lambda v: None if v is None else {k: (x / 1000 if k != "rounds" else x) for k, x in v.items()}
    c.lines("Produce-to-consume latency (coordinated omission corrected)", "offered load, % of peak",
            "milliseconds (log scale)",
            [(lab, [(p["percent"], ms(p[k])) for p in s["points"]]) for k, lab in
             (("p50_us", "p50"), ("p99_us", "p99"), ("p999_us", "p99.9"))], logy=True,
            hlines=[(2, "2 ms")])
    c.lines("Offered and achieved rate", "offered load, % of peak", "records/s",
            [("achieved", [(p["percent"], p["achieved_rate"]) for p in s["points"]]),
             ("offered", [(p["percent"], p["rate"]) for p in s["points"]])])
    c.draw(png)


# ---- timeline ----

def rebin(t_ms, acked, interval_ms, duration_ms):
    """Records/s per fixed interval from (time, cumulative acknowledged) samples, linearly interpolated."""
    out = []
    def at(t):
        if t <= t_ms[0]:
            return acked[0]
        for i in range(1, len(t_ms)):
            if t <= t_ms[i]:
                f = (t - t_ms[i - 1]) / (t_ms[i] - t_ms[i - 1]) if t_ms[i] > t_ms[i - 1] else 1
                return acked[i - 1] + f * (acked[i] - acked[i - 1])
        return acked[-1]
    t = 0
    while t + interval_ms <= min(duration_ms, t_ms[-1]) + 1e-9:
        out.append((t + interval_ms, (at(t + interval_ms) - at(t)) * 1000 / interval_ms))
        t += interval_ms
    return out


def timeline(d, png):
    s = {"rounds": []}
    series, dirty_series = [], []
    for r in d["rounds"]:
        bins = rebin(r["t_ms"], r["acked"], d["bin_ms"], d["duration_s"] * 1000)
        rates = [v for _, v in bins]
        # After the first second: the run's start (connect, first batches) is not a stall.
        steady = [v for t, v in bins if t > 1000]
        mean = statistics.mean(steady) if steady else None
        stalls = [t / 1000 for t, v in bins if t > 1000 and mean and v < 0.5 * mean]
        s["rounds"].append({"round": r["round"], "mean_records_per_s": mean,
                            "min_bin_records_per_s": min(steady) if steady else None,
                            "p1_bin_records_per_s": sorted(steady)[len(steady) // 100] if steady else None,
                            "bins_below_half_mean": len(stalls), "stall_times_s": stalls[:50]})
        series.append((f"round {r['round']}", [(t / 1000, v) for t, v in bins]))
        if r.get("dirty_t_ms"):
            # Dirty pages at each bin's end (the sample at or before it), against the bin's rate.
            def dirty_at(t):
                i = max(0, bisect.bisect_right(r["dirty_t_ms"], t) - 1)
                return r["dirty_kb"][i] / 1048576
            def share_in(key, t):
                """CPU share (1.0 = one CPU) of the ticks counter key over the bin that ends at t."""
                ts, v = r["dirty_t_ms"], r[key]
                i = max(1, min(len(ts) - 1, bisect.bisect_left(ts, t)))
                j = max(0, bisect.bisect_left(ts, t - d["bin_ms"]) - 1)
                dt = (ts[i] - ts[j]) / 1000
                return (v[i] - v[j]) / r.get("clk_tck", 100) / dt if dt > 0 and i > j else 0
            stall_t = [t for t, v in bins if t > 1000 and mean and v < 0.5 * mean]
            other_t = [t for t, v in bins if t > 1000 and mean and v >= 0.5 * mean]
            avg = lambda xs: statistics.mean(xs) if xs else None
            s["rounds"][-1].update({"dirty_gib_mean_in_stalls": avg([dirty_at(t) for t in stall_t]),
                                    "dirty_gib_mean_otherwise": avg([dirty_at(t) for t in other_t])})
            if "steal_ticks" in r:
                s["rounds"][-1].update({
                        "steal_cpus_in_stalls": avg([share_in("steal_ticks", t) for t in stall_t]),
                        "steal_cpus_otherwise": avg([share_in("steal_ticks", t) for t in other_t]),
                        "broker_cpus_in_stalls": avg([share_in("broker_cpu_ticks", t) for t in stall_t]),
                        "broker_cpus_otherwise": avg([share_in("broker_cpu_ticks", t) for t in other_t])})
            if "broker_loop_cpu_ticks" in r:
                s["rounds"][-1].update({
                        "broker_loop_cpus_in_stalls": avg([share_in("broker_loop_cpu_ticks", t) for t in stall_t]),
                        "broker_loop_cpus_otherwise": avg([share_in("broker_loop_cpu_ticks", t) for t in other_t])})
            dirty_series.append((f"round {r['round']}: Dirty", [(t / 1000, kb / 1048576) for t, kb in
                                                                 zip(r["dirty_t_ms"], r["dirty_kb"])]))
            dirty_series.append((f"round {r['round']}: Writeback", [(t / 1000, kb / 1048576) for t, kb in
                                                                     zip(r["dirty_t_ms"], r["writeback_kb"])]))
    d["summary"] = s
    for r in s["rounds"]:
        print(f"round {r['round']}: mean {fmt(r['mean_records_per_s'])} records/s, lowest {d['bin_ms']} ms bin "
              f"{fmt(r['min_bin_records_per_s'])}, bins under half the mean: {r['bins_below_half_mean']}"
              + (f"; dirty page cache {r['dirty_gib_mean_in_stalls']:.2f} GiB in those bins, "
                 f"{r['dirty_gib_mean_otherwise']:.2f} GiB in the others"
                 if r.get("dirty_gib_mean_in_stalls") is not None and r.get("dirty_gib_mean_otherwise") is not None
                 else "")
              + (f"; host steal {r['steal_cpus_in_stalls']:.2f} CPUs in them, {r['steal_cpus_otherwise']:.2f} in the "
                 f"others; broker CPU {r['broker_cpus_in_stalls']:.2f} and {r['broker_cpus_otherwise']:.2f}"
                 + (f" (its loop {r['broker_loop_cpus_in_stalls']:.2f} and {r['broker_loop_cpus_otherwise']:.2f})"
                    if r.get("broker_loop_cpus_in_stalls") is not None else "")
                 if r.get("steal_cpus_in_stalls") is not None and r.get("steal_cpus_otherwise") is not None else ""))
    c = Chart(f"Throughput over a {d['duration_s']} s run: one producer, {d['record_bytes']} B records at "
              f"`{d['acks']}`, {d['partitions']} partition(s); acknowledged records per {d['bin_ms']} ms")
    c.lines("Acknowledged records per second over time (a stall shows as a dip)", "seconds since the first send",
            "records/s", series)
    if dirty_series:
        c.lines("Page cache not yet on disk (/proc/meminfo Dirty, Writeback): past vm.dirty_ratio "
                f"({d.get('vm_dirty_ratio')}% of memory) the broker's writes wait for the disk",
                "seconds since the first send", "GiB", dirty_series)
    c.draw(png, cols=1, width=1100)


# ---- curves ----

def curve_partitions(d, png):
    pts = d["points"]
    s = {"growth": {}}
    for layout in ("one-topic", "many-topics"):
        lp = [p for p in pts if p["layout"] == layout]
        s["growth"][layout] = [g for g in (growth(lp, "partitions", c) for c in
                                           ("rss_kb_after", "fds", "start_ms_clean", "start_ms_crash"))
                               if g]
        for p in lp:
            if p.get("rss_kb_idle") is not None and p.get("rss_kb_empty") is not None and p["partitions"] > 1:
                p["rss_bytes_per_idle_partition"] = (p["rss_kb_idle"] - p["rss_kb_empty"]) * 1024 / p["partitions"]
            if p.get("fds") is not None and p.get("fds_empty") is not None and p["partitions"] > 1:
                p["fds_per_partition"] = (p["fds"] - p["fds_empty"]) / p["partitions"]
    d["summary"] = s
    for p in pts:
        print(f"{p['layout']:>11} {p['partitions']:>6}: {fmt(p.get('records_per_s'))} records/s, RSS "
              f"{fmt((p.get('rss_kb_after') or 0) / 1024)} MiB, {fmt(p.get('fds'))} fds, start "
              f"{fmt(med(p.get('start_ms_clean')), 1)} ms clean / {fmt(med(p.get('start_ms_crash')), 1)} ms after kill -9"
              + (f"  ERROR {p['error']}" if p.get("error") else ""))
    for layout, gs in s["growth"].items():
        for g in gs:
            print(f"  {layout}: {g['cost']} grows {g['class']} (exponent {g['exponent']})")
    c = Chart(f"Partition curve: one topic of N partitions, or N topics of one partition; {d['records_per_point']:,}"
              f" records of {d['record_bytes']} B keyed over all of them, then stop and start")
    layouts = [("one topic", "one-topic"), ("many topics", "many-topics")]
    def ser(key, scale=1.0):
        return [(lab, [(p["partitions"], None if med(p.get(key)) is None else
                        (p[key] if isinstance(p[key], dict) else p[key] * scale)) for p in pts
                       if p["layout"] == lay]) for lab, lay in layouts]
    c.lines("Produce rate over all partitions", "partitions (log scale)", "records/s", ser("records_per_s"),
            logx=True)
    c.lines("Broker RSS after producing", "partitions (log scale)", "MiB", ser("rss_kb_after", 1 / 1024),
            logx=True)
    c.lines("Open file descriptors of the broker", "partitions (log scale)", "descriptors", ser("fds"), logx=True)
    c.lines("Start time to readiness after a clean stop (median, min-max)", "partitions (log scale)", "ms",
            ser("start_ms_clean"), logx=True)
    c.lines("Start time to readiness after kill -9 (target: 10,000 partitions under 5 s)",
            "partitions (log scale)", "ms", ser("start_ms_crash"), logx=True, hlines=[(5000, "5 s")])
    c.draw(png)


def curve_connections(d, png):
    pts = d["points"]
    for p in pts:
        p["rss_bytes_per_connection"] = ((p["rss_kb_held"] - p["rss_kb_before"]) * 1024 / p["connections"]
                                         if p.get("rss_kb_held") is not None else None)
    s = {"growth": [g for g in (growth(pts, "connections", "rss_kb_held"),
                                growth(pts, "connections", "ack_p99_us")) if g]}
    d["summary"] = s
    base = d.get("baseline", {})
    print(f"no idle connections: ack p99 {fmt(base.get('ack_p99_us'))} us, produce-to-consume p99 "
          f"{fmt(base.get('e2e_p99_us'))} us")
    for p in pts:
        print(f"{p['connections']:>6} idle: RSS +{fmt((p['rss_kb_held'] - p['rss_kb_before']) / 1024, 1)} MiB "
              f"({fmt(p['rss_bytes_per_connection'])} B each), {p['fds']} fds; with them open: ack p99 "
              f"{fmt(p.get('ack_p99_us'))} us, produce-to-consume p99 {fmt(p.get('e2e_p99_us'))} us"
              + (f"  ERROR {p['error']}" if p.get("error") else ""))
    c = Chart(f"Idle connection curve: N connections that said Hello and then nothing; meanwhile one producer "
              f"offers {d['rate']:,} records/s of 100 B and a consumer follows")
    xs = lambda key: [(p["connections"], p.get(key)) for p in pts]
    c.lines("Broker memory per idle connection", "idle connections (log scale)", "bytes of RSS per connection",
            [("RSS growth / connections", xs("rss_bytes_per_connection"))], logx=True)
    c.lines("Live latency with the idle connections open", "idle connections (log scale)", "microseconds",
            [("ack p99", xs("ack_p99_us")), ("produce-to-consume p99", xs("e2e_p99_us"))], logx=True,
            hlines=[(base["ack_p99_us"], "ack p99, none open")] if base.get("ack_p99_us") else [])
    c.draw(png)


def curve_groups(d, png):
    pts = d["points"]
    s = {"growth": [g for g in (growth(pts, "groups", "broker_cpu_percent"), growth(pts, "groups", "commit_p99_us"))
                    if g]}
    d["summary"] = s
    for p in pts:
        print(f"{p['groups']:>5} groups: {fmt(p.get('commits_per_s'))} commits/s, p50 {fmt(p.get('commit_p50_us'))}"
              f" us, p99 {fmt(p.get('commit_p99_us'))} us, broker CPU {fmt(p.get('broker_cpu_percent'), 1)}%"
              + (f"  ERROR {p['error']}" if p.get("error") else ""))
    for g in s["growth"]:
        print(f"  {g['cost']} grows {g['class']} (exponent {g['exponent']})")
    c = Chart(f"Group curve: N consumer groups of one member each, each committing one offset every "
              f"{d['interval_ms']} ms (fsync before the answer) for {d['seconds']} s")
    xs = lambda key: [(p["groups"], p.get(key)) for p in pts]
    c.lines("Commit latency (request to durable answer)", "groups (log scale)", "microseconds",
            [("p50", xs("commit_p50_us")), ("p99", xs("commit_p99_us"))], logx=True)
    c.lines("Broker CPU while they commit", "groups (log scale)", "% of one core",
            [("broker", xs("broker_cpu_percent"))], logx=True)
    c.draw(png)


def curve_logsize(d, png):
    pts = d["points"]
    s = {"growth": [g for g in (growth(pts, "gib", c) for c in
                                ("start_ms_clean", "start_ms_crash", "list_time_p99_us", "list_time_first_us",
                                 "retention_detach_ms", "retention_idle_ms")) if g]}
    d["summary"] = s
    for p in pts:
        print(f"{p['gib']:>5} GiB ({p.get('segments')} segments): start {fmt(med(p.get('start_ms_clean')), 1)} ms "
              f"clean / {fmt(med(p.get('start_ms_crash')), 1)} ms after kill -9; by timestamp first "
              f"{fmt(p.get('list_time_first_us'))} us, p99 {fmt(p.get('list_time_p99_us'))} us; retention pass "
              f"{fmt(p.get('retention_idle_ms'), 3)} ms idle, {fmt(p.get('retention_detach_ms'), 3)} ms to detach "
              f"{p.get('retention_dropped')} segment(s) + {fmt(p.get('retention_remove_ms'), 1)} ms to remove them"
              + (f"  ERROR {p['error']}" if p.get("error") else ""))
    for g in s["growth"]:
        print(f"  {g['cost']} grows {g['class']} (exponent {g['exponent']})")
    c = Chart(f"Log size curve: one partition holding N GiB of {d['record_bytes']} B records in "
              f"{gib(d['segment_bytes'])} segments")
    xs = lambda key: [(p["gib"], p.get(key)) for p in pts]
    c.lines("Broker start time to readiness", "GiB of sealed data", "ms",
            [("after a clean stop", xs("start_ms_clean")), ("after kill -9", xs("start_ms_crash"))])
    c.lines("Fetch by timestamp (ListOffsets), page cache dropped first", "GiB of sealed data", "microseconds",
            [("first request", xs("list_time_first_us")), ("p99 of the rest", xs("list_time_p99_us"))])
    c.lines("Retention pass (storage engine, on the loop)", "GiB of sealed data", "ms",
            [("pass dropping nothing", xs("retention_idle_ms")), ("pass detaching segments", xs("retention_detach_ms"))])
    c.draw(png)




def tail(d, png):
    rs = d["rounds"]
    names = [f"round {r['round']}" for r in rs]
    print(f"W6 at {d['rate']:,} records/s, {len(rs)} rounds: p99.9 synclog {fmt(d['median']['synclog_p999_us'])} us, "
          f"Redis {fmt(d['median']['redis_p999_us'])} us (medians); synclog rounds whose records outside CPU stalls "
          f"keep p99.9 under {d['slow_ms']:g} ms: {d['synclog_rounds_p999_under_outside_stalls']} of {len(rs)}")
    c = Chart(f"W6 tail: produce-to-consume at {d['rate']:,} records/s of 100 B, {d['seconds']} s a run "
              f"({'both at SCHED_FIFO 50' if d['realtime'] else 'normal priority'}), against the VM's CPU stalls")
    c.bars("p99.9 produce-to-consume, each round (synclog; Redis Streams XADD to XREAD BLOCK, AOF off)",
           "microseconds", names,
           [("synclog", [r["synclog"]["p999_us"] for r in rs]), ("Redis", [r["redis"]["p999_us"] for r in rs])])
    c.bars(f"synclog's records over {d['slow_ms']:g} ms, split by the CPU stalls", "records", names,
           [("explained by stalls", [r["synclog"]["slow_explained_by_stalls"] for r in rs]),
            ("not explained", [r["synclog"]["slow_outside_stalls"] for r in rs]),
            ("0.1% of records: p99.9's budget", [r["synclog"]["records"] / 1000 for r in rs])])
    c.bars("CPU stalls during each run (a real-time thread woken late), total", "milliseconds", names,
           [("synclog's run", [r["synclog"]["stall_ms_total"] for r in rs]),
            ("Redis's run", [r["redis"]["late_ms_total"] for r in rs])])
# ---- zerocopy ----

def zerocopy(d, png):
    rs = d["rounds"]
    caches = [(c, label) for c, label in (("warm", "native, warm"), ("cold", "native, cold"),
                                          ("kafka", "Kafka listener, warm"))
              if any(r["cache"] == c for r in rs)]

    def over(setting, key):
        return [summary([r[key] for r in rs if r["setting"] == setting and r["cache"] == c]) for c, _ in caches]

    series = lambda key: [("copy path (--fetch-zero-copy off)", over("off", key)),
                          ("from the segment files (on)", over("on", key))]
    c = Chart(f"Replay of {gib(d['log_bytes'])} of {d['record_bytes']} B records (synclog-bench replay, 1 MiB per "
              f"Fetch; a librdkafka consumer on the Kafka listener): fetch answers copied through the broker against "
              f"sent from the segment files by the kernel, settings alternating per round")
    c.bars("Broker CPU per GB replayed (every thread, io_uring workers included)", "CPU seconds per GB",
           [label for _, label in caches], series("broker_cpu_s_per_gb"))
    c.bars("Replay rate (the client checks every CRC and is often the bound)", "MB/s (10^6 B/s) of segment bytes",
           [label for _, label in caches], series("mb_per_s"))
    c.draw(png)


KINDS = {f.__name__: f for f in (cold_replay, replay_interference, many_groups, offered_load, timeline,
                                 curve_partitions, curve_connections, curve_groups, curve_logsize, tail, zerocopy)}


def main():
    if len(sys.argv) != 4 or sys.argv[1] not in KINDS:
        print("usage: charts.py " + "|".join(KINDS) + " RESULT.json OUT.png", file=sys.stderr)
        return 2
    path = sys.argv[2]
    d = json.load(open(path))
    KINDS[sys.argv[1]](d, sys.argv[3])
    json.dump(d, open(path, "w"), indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
