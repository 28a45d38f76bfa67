#!/usr/bin/env python3
"""The report of bench/compare.sh: folds the per-run files (each tool's JSON and the harness's .meta) into
bench/results/latest.json, latest.md and latest.png (gnuplot), and issue 3's bench/results/broker.json.
Medians with min-max over the rounds; ratios are ratios of medians. bench/README.md says what each figure is."""

import argparse
import datetime
import glob
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile

# Targets of issue 6 (ratios from the same run) and issue 3.
TARGET_W1_REDIS = 3.0
TARGET_W1_NATS = 8.0
TARGET_W2_DISK = 0.8
TARGET_W3_REDIS = 8.0
TARGET_W4_FIO = 1.3
TARGET_W5_REDIS = 2.0
TARGET_W5_NATS = 5.0
TARGET_W6_P99_US = 2000.0
TARGET_BROKER_RECORDS_PER_S = 1000000.0
TARGET_BROKER_ENGINE_RATIO = 0.9
TARGET_BROKER_P99_US = 2000.0

WORKLOADS = [
    ("W1", "append 100-byte records, batched or pipelined, no fsync per ack"),
    ("W2", "append 1 KiB records, batched or pipelined, no fsync per ack"),
    ("W3", "append 100-byte records, batched, durable (fdatasync) before ack"),
    ("W4", "one 100-byte record at a time, durable before ack: ack latency"),
    ("W4w", "one 100-byte record at a time, acknowledged without fsync: ack latency (extra, for NATS)"),
    ("W5", "replay 1,000,000 100-byte records from the start"),
    ("W6", "produce-to-consume latency of 100-byte records at a fixed load below saturation"),
]


def summary(values):
    values = [v for v in values if v is not None]
    if not values:
        return None
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "rounds": len(values)}


def med(s):
    return s["median"] if s else None


def ratio(a, b):
    return a / b if a is not None and b not in (None, 0) else None


def load_runs(runs_dir):
    runs = []
    for meta_path in sorted(glob.glob(os.path.join(runs_dir, "*.meta"))):
        meta = json.load(open(meta_path))
        data_path = meta_path[: -len(".meta")] + ".json"
        try:
            data = json.load(open(data_path))
        except (OSError, ValueError) as e:
            print(f"report: skipping {data_path}: {e}", file=sys.stderr)
            continue
        runs.append((meta, data))
    return runs


def fio_write(data):
    job = data["jobs"][0]
    return job["write"]


def host_facts(args, runs):
    def cmd(*argv):
        try:
            return subprocess.run(argv, capture_output=True, text=True, check=False).stdout.strip()
        except OSError:
            return ""

    model = ""
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    mem_kb = 0
    for line in open("/proc/meminfo"):
        if line.startswith("MemTotal"):
            mem_kb = int(line.split()[1])
    df = cmd("df", "-PT", args.data_dir if os.path.exists(args.data_dir) else ".").splitlines()
    device, fstype = (df[-1].split()[0], df[-1].split()[1]) if len(df) > 1 else ("", "")
    disk = device
    name = os.path.basename(device)
    base = re.sub(r"p?\d+$", "", name) if not os.path.exists(f"/sys/block/{name}") else name
    if os.path.exists(f"/sys/block/{base}"):
        size_gb = int(open(f"/sys/block/{base}/size").read()) * 512 / 1e9
        driver = os.path.basename(os.path.realpath(f"/sys/block/{base}/device/driver")) if os.path.exists(
            f"/sys/block/{base}/device/driver") else ""
        model_path = f"/sys/block/{base}/device/model"
        disk_model = open(model_path).read().strip() if os.path.exists(model_path) else ""
        disk = f"{device} ({disk_model or driver or 'block device'}, {size_gb:.0f} GB)"
    metas = [m for m, _ in runs]
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "kernel": platform.release(),
        "machine": platform.machine(),
        "memory_gb": round(mem_kb / 1e6, 1),
        "disk": disk,
        "filesystem": fstype,
        "server_cpu": args.server_cpu,
        "client_cpu": args.client_cpu,
        "redis": cmd("redis-server", "--version"),
        "nats": cmd("nats-server", "--version"),
        "fio": cmd("fio", "--version"),
        "loadavg_1m_max": max((m["loadavg_1m"] for m in metas), default=None),
        "other_cpu_s_max": max((m["other_cpu_s"] for m in metas), default=None),
    }


class Report:
    def __init__(self, runs):
        self.runs = runs

    def select(self, **kw):
        out = []
        for meta, data in self.runs:
            if all(meta.get(k) == v for k, v in kw.items()):
                out.append((meta, data))
        return out

    def stat(self, field, **kw):
        return summary([data.get(field) for _, data in self.select(**kw)])

    def lat(self, which, pct, **kw):
        return summary([data.get(which, {}).get(pct) for _, data in self.select(**kw)])


def stored_bytes_per_record(rep, **kw):
    values = [d["stored_bytes"] / d["stored_records"] for _, d in rep.select(**kw) if d.get("stored_records")]
    return statistics.median(values) if values else None


def entry(system, durability, rps=None, mbps=None, latency=None, note=None, **extra):
    e = {"system": system, "durability": durability}
    if rps is not None:
        e["records_per_s"] = rps
    if mbps is not None:
        e["mb_per_s"] = mbps
    if latency is not None:
        e["latency_us"] = latency
    if note:
        e["note"] = note
    e.update(extra)
    return e


def lat_block(rep, which, **kw):
    return {p: rep.lat(which, f"{p}_us", **kw) for p in ("p50", "p99", "p999")}


def target(what, value, goal, higher_is_better=True):
    met = None if value is None else (value >= goal if higher_is_better else value <= goal)
    return {"what": what, "value": value, "target": goal, "met": met}


def build(rep):
    """Every workload: its systems' figures, synclog's ratios to each and the targets."""
    workloads = []
    synclog_written = dict(system="synclog", variant="p1-part1")

    # Disk ceilings, expressed in records at synclog's stored bytes per record of the same workload.
    fio_buf = summary([fio_write(d)["bw_bytes"] / 1e6 for _, d in rep.select(system="fio", variant="buffered")])
    fio_sync = summary([fio_write(d)["bw_bytes"] / 1e6 for m, d in rep.select(system="fio", workload="ceiling")
                        if m["durability"] == "fdatasync"])
    fio_sync_variant = next((m["variant"] for m, _ in rep.select(system="fio", workload="ceiling")
                             if m["durability"] == "fdatasync"), "")
    fio4k = summary([d["jobs"][0]["sync"]["lat_ns"]["percentile"]["50.000000"] / 1e3
                     for _, d in rep.select(system="fio", workload="W4")])
    fio4k_p99 = summary([d["jobs"][0]["sync"]["lat_ns"]["percentile"]["99.000000"] / 1e3
                         for _, d in rep.select(system="fio", workload="W4")])
    fio4k_write = summary([d["jobs"][0]["write"]["lat_ns"]["percentile"]["50.000000"] / 1e3
                           if "percentile" in d["jobs"][0]["write"]["lat_ns"]
                           else d["jobs"][0]["write"]["clat_ns"]["percentile"]["50.000000"] / 1e3
                           for _, d in rep.select(system="fio", workload="W4")])

    def disk_entry(mb, per_record, durability):
        if mb is None or per_record is None:
            return None
        return entry("disk (fio)", durability,
                     rps={k: (v * 1e6 / per_record if k != "rounds" else v) for k, v in mb.items()},
                     mbps=mb, stored_bytes_per_record=per_record)

    for wid, title in WORKLOADS:
        systems, ratios, targets = [], {}, []
        if wid in ("W1", "W2", "W3"):
            s = rep.stat("records_per_s", workload=wid, **synclog_written)
            sm = rep.stat("mb_per_s", workload=wid, **synclog_written)
            per_record = stored_bytes_per_record(rep, workload=wid, **synclog_written)
            systems.append(entry("synclog", "fsync" if wid == "W3" else "written (page cache)", s, sm,
                                 ack_latency=lat_block(rep, "ack_latency", workload=wid, **synclog_written),
                                 stored_bytes_per_record=per_record))
            aofs = ["always"] if wid == "W3" else ["off", "everysec"]
            for aof in aofs:
                r = rep.stat("records_per_s", system="redis", workload=wid, variant=f"aof-{aof}")
                rm = rep.stat("mb_per_s", system="redis", workload=wid, variant=f"aof-{aof}")
                systems.append(entry("redis", f"AOF {aof}", r, rm))
                ratios[f"redis_aof_{aof}"] = ratio(med(s), med(r))
            if wid != "W3":
                n = rep.stat("records_per_s", system="nats", workload=wid)
                nm = rep.stat("mb_per_s", system="nats", workload=wid)
                systems.append(entry("nats", "file store, acknowledged before fsync", n, nm))
                ratios["nats"] = ratio(med(s), med(n))
                d = disk_entry(fio_buf, per_record, "buffered (io_uring, 256 KiB writes, iodepth 16)")
            else:
                d = disk_entry(fio_sync, per_record, f"fdatasync at synclog's cadence ({fio_sync_variant} B)")
            if d:
                systems.append(d)
                ratios["disk"] = ratio(med(s), med(d["records_per_s"]))
            if wid == "W1":
                targets.append(target("synclog / Redis (AOF off)", ratios.get("redis_aof_off"), TARGET_W1_REDIS))
                targets.append(target("synclog / NATS", ratios.get("nats"), TARGET_W1_NATS))
            elif wid == "W2":
                targets.append(target("synclog / buffered disk ceiling", ratios.get("disk"), TARGET_W2_DISK))
            else:
                targets.append(target("synclog / Redis (AOF always)", ratios.get("redis_aof_always"),
                                      TARGET_W3_REDIS))
        elif wid in ("W4", "W4w"):
            sl = lat_block(rep, "ack_latency", system="synclog", workload=wid)
            systems.append(entry("synclog", "fsync" if wid == "W4" else "written", latency=sl,
                                 rps=rep.stat("records_per_s", system="synclog", workload=wid)))
            aof = "always" if wid == "W4" else "off"
            rl = lat_block(rep, "ack_latency", system="redis", workload=wid)
            systems.append(entry("redis", f"AOF {aof}", latency=rl,
                                 rps=rep.stat("records_per_s", system="redis", workload=wid)))
            ratios["p50_vs_redis"] = ratio(med(sl["p50"]), med(rl["p50"]))
            if wid == "W4":
                systems.append(entry("disk (fio)", "4 KiB write + fdatasync, iodepth 1",
                                     latency={"p50": fio4k, "p99": fio4k_p99, "fdatasync_only": True},
                                     write_p50_us=fio4k_write))
                ratios["p50_vs_fio_fdatasync"] = ratio(med(sl["p50"]), med(fio4k))
                targets.append(target("synclog p50 / fio fdatasync p50 of a 4 KiB write",
                                      ratios["p50_vs_fio_fdatasync"], TARGET_W4_FIO, higher_is_better=False))
            else:
                nl = lat_block(rep, "ack_latency", system="nats", workload=wid)
                systems.append(entry("nats", "sync publish, acknowledged before fsync", latency=nl,
                                     rps=rep.stat("records_per_s", system="nats", workload=wid)))
                ratios["p50_vs_nats"] = ratio(med(sl["p50"]), med(nl["p50"]))
        elif wid == "W5":
            s = rep.stat("records_per_s", system="synclog", workload="W5")
            sm = rep.stat("mb_per_s", system="synclog", workload="W5")
            systems.append(entry("synclog", "fetcher from the start (page cache warm)", s, sm))
            r = rep.stat("records_per_s", system="redis", workload="W5")
            systems.append(entry("redis", "XRANGE, COUNT 10000 (in memory)", r,
                                 rep.stat("mb_per_s", system="redis", workload="W5")))
            n = rep.stat("records_per_s", system="nats", workload="W5")
            systems.append(entry("nats", "ordered consumer", n, rep.stat("mb_per_s", system="nats", workload="W5")))
            ratios["redis"] = ratio(med(s), med(r))
            ratios["nats"] = ratio(med(s), med(n))
            targets.append(target("synclog / Redis XRANGE", ratios["redis"], TARGET_W5_REDIS))
            targets.append(target("synclog / NATS ordered consumer", ratios["nats"], TARGET_W5_NATS))
        elif wid == "W6":
            for system, dur in (("synclog", "written, linger 0"), ("redis", "AOF off, XREAD BLOCK"),
                                ("nats", "ordered consumer, acknowledged before fsync")):
                lb = lat_block(rep, "e2e_latency", system=system, workload="W6")
                rate = next((d.get("rate") for m, d in rep.select(system=system, workload="W6")), None)
                systems.append(entry(system, dur, latency=lb, rate=rate))
            sl = systems[0]["latency_us"]
            ratios["p99_vs_redis"] = ratio(med(sl["p99"]), med(systems[1]["latency_us"]["p99"]))
            ratios["p99_vs_nats"] = ratio(med(sl["p99"]), med(systems[2]["latency_us"]["p99"]))
            targets.append(target("synclog p99 (us)", med(sl["p99"]), TARGET_W6_P99_US, higher_is_better=False))
        workloads.append({"id": wid, "title": title, "systems": systems, "ratios": ratios, "targets": targets})
    return workloads


def build_broker(rep, runs_dir):
    produce = []
    for acks in ("written", "fsync"):
        for rb in (100, 1024):
            for producers in (1, 4):
                for parts in (1, 16):
                    sel = [(m, d) for m, d in rep.select(system="synclog", variant=f"p{producers}-part{parts}")
                           if m["durability"] == acks and d.get("record_bytes") == rb]
                    if not sel:
                        continue
                    per = [d["stored_bytes"] / d["stored_records"] for _, d in sel if d.get("stored_records")]
                    produce.append({
                        "acks": acks, "record_bytes": rb, "producers": producers, "partitions": parts,
                        "producer_kind": sel[0][1].get("producer_kind"),
                        "records_per_s": summary([d["records_per_s"] for _, d in sel]),
                        "mb_per_s": summary([d["mb_per_s"] for _, d in sel]),
                        "stored_mb_per_s": summary([d["records_per_s"] * d["stored_bytes"] / d["stored_records"] / 1e6
                                                    for _, d in sel if d.get("stored_records")]),
                        "stored_bytes_per_record": statistics.median(per) if per else None,
                        "ack_latency_p50_us": summary([d["ack_latency"]["p50_us"] for _, d in sel]),
                        "ack_latency_p99_us": summary([d["ack_latency"]["p99_us"] for _, d in sel]),
                    })
    engine = rep.stat("mb_per_s", system="storage-engine")
    one_k = next((p for p in produce if p["acks"] == "written" and p["record_bytes"] == 1024
                  and p["producers"] == 1 and p["partitions"] == 1), None)
    w1 = next((p for p in produce if p["acks"] == "written" and p["record_bytes"] == 100
               and p["producers"] == 1 and p["partitions"] == 1), None)
    lat = {p: rep.lat("e2e_latency", f"{p}_us", system="synclog", workload="peak10") for p in ("p50", "p99", "p999")}
    rates = [d.get("rate") for _, d in rep.select(system="synclog", workload="peak10")]
    engine_ratio = ratio(med(one_k["stored_mb_per_s"]) if one_k else None, med(engine))
    resident = summary([int(open(p).read().strip() or 0) for p in glob.glob(os.path.join(runs_dir, "*.resident"))])
    return {
        "produce": produce,
        "consume": {
            "cold": {"records_per_s": rep.stat("records_per_s", system="synclog", workload="cold"),
                     "mb_per_s": rep.stat("mb_per_s", system="synclog", workload="cold"),
                     "log_bytes_resident_at_start": resident,
                     "how": "broker restarted on the log, its files dropped from the page cache (dd iflag=nocache, "
                            "checked with fincore), fetcher from the earliest offset to the end"},
            "warm": {"records_per_s": rep.stat("records_per_s", system="synclog", workload="W5"),
                     "mb_per_s": rep.stat("mb_per_s", system="synclog", workload="W5"),
                     "how": "right after the records were written"},
            "records": 1000000, "record_bytes": 100,
        },
        "latency": {"rate_records_per_s": summary(rates), "linger_ms": 0,
                    "offered": "10% of the same round's W1 peak (100 B, written, 1 producer, 1 partition)",
                    "e2e_latency_us": lat},
        "storage_engine": {"mb_per_s": engine, "what": "storage-bench append, 256 KiB batches of 1 KiB records, "
                                                       "written, 16 in flight, same run"},
        "targets": [
            target("records/s, 100 B, written, 1 producer process", med(w1["records_per_s"]) if w1 else None,
                   TARGET_BROKER_RECORDS_PER_S),
            target("1 KiB written: broker stored MB/s / storage engine MB/s", engine_ratio,
                   TARGET_BROKER_ENGINE_RATIO),
            target("p99 produce-to-consume at 10% of peak (us)", med(lat["p99"]), TARGET_BROKER_P99_US,
                   higher_is_better=False),
        ],
    }


# ---- text ----

def fmt_num(v, digits=0):
    if v is None:
        return "-"
    if abs(v) >= 100 or digits == 0:
        return f"{v:,.0f}"
    return f"{v:,.{digits}f}"


def fmt_stat(s, digits=0):
    if not s:
        return "-"
    return f"{fmt_num(s['median'], digits)} ({fmt_num(s['min'], digits)}-{fmt_num(s['max'], digits)})"


def fmt_ratio(v):
    return "-" if v is None else f"{v:.2f}x"


def markdown(doc, broker):
    h = doc["host"]
    lines = [
        "# synclog against Redis Streams, NATS JetStream and the disk",
        "",
        f"Generated {doc['generated_at']} by `bench/compare.sh` ({'quick' if doc['quick'] else 'full'} mode, "
        f"{doc['rounds']} interleaved rounds: disk, synclog, Redis, NATS). Figures are medians with min-max over "
        "the rounds; ratios are ratios of medians. bench/README.md says how each figure is measured.",
        "",
        "## Machine",
        "",
        f"- {h['cpus']} cores ({h['cpu_model']}), {h['memory_gb']} GB, kernel {h['kernel']} ({h['machine']})",
        f"- disk {h['disk']}, filesystem {h['filesystem']}",
        f"- every server pinned to core {h['server_cpu']} (`taskset`), every load generator to core "
        f"{h['client_cpu']}",
        f"- {h['redis']}; {h['nats']}; {h['fio']}",
        f"- highest 1-minute load average at the start of a run: {h['loadavg_1m_max']}; most CPU time used by "
        f"other processes during one run: {h['other_cpu_s_max']} s"
        + (f"; {len(doc['disturbed'])} run(s) still disturbed after a re-run: " + ", ".join(doc["disturbed"])
           if doc["disturbed"] else "; no run disturbed after re-runs"),
        "",
        "NATS 2.9 acknowledges a publish before its data reaches the disk, so it is compared only with synclog's "
        "`written` acknowledgements (W1, W2, W4w, W5, W6), never with `fsync` (W3, W4).",
        "",
        "## Throughput",
        "",
        "| workload | system | durability | records/s | MB/s (payload) | synclog / this |",
        "|---|---|---|---|---|---|",
    ]
    for w in doc["workloads"]:
        if w["id"] not in ("W1", "W2", "W3", "W5"):
            continue
        for s in w["systems"]:
            key = {"redis": "redis_aof_" + s["durability"].split()[-1] if w["id"] != "W5" else "redis",
                   "nats": "nats", "disk (fio)": "disk"}.get(s["system"])
            r = w["ratios"].get(key) if key else None
            lines.append(f"| {w['id']} | {s['system']} | {s['durability']} | {fmt_stat(s.get('records_per_s'))} | "
                         f"{fmt_stat(s.get('mb_per_s'), 1)} | {fmt_ratio(r)} |")
    lines += [
        "",
        "Disk rows give fio's MB/s of writes and, as records/s, the records it would hold at synclog's stored "
        "bytes per record in the same workload (batch header and record framing included).",
        "",
        "## Latency",
        "",
        "| workload | system | durability | p50 us | p99 us | p99.9 us |",
        "|---|---|---|---|---|---|",
    ]
    for w in doc["workloads"]:
        if w["id"] not in ("W4", "W4w", "W6"):
            continue
        for s in w["systems"]:
            lb = s.get("latency_us", {})
            lines.append(f"| {w['id']} | {s['system']} | {s['durability']} | {fmt_stat(lb.get('p50'))} | "
                         f"{fmt_stat(lb.get('p99'))} | {fmt_stat(lb.get('p999'))} |")
    lines += ["", "W4 and W4w are each acknowledgement's latency, one record in flight; W6 is from the intended send "
              "time (coordinated omission corrected) to the consumer's receipt, at "
              f"{fmt_num(doc['w6_rate'])} records/s. fio's row is its fdatasync latency alone (write p50 apart).",
              "", "## Targets", "", "| workload | target | value | goal | met |", "|---|---|---|---|---|"]
    for w in doc["workloads"]:
        for t in w["targets"]:
            v = t["value"]
            val = "-" if v is None else (f"{v:,.0f}" if "us" in t["what"] else f"{v:.2f}")
            cmp = "<=" if "p50 /" in t["what"] or "(us)" in t["what"] else ">="
            lines.append(f"| {w['id']} | {t['what']} | {val} | {cmp} {t['target']:g} | "
                         f"{'yes' if t['met'] else 'no' if t['met'] is not None else '-'} |")
    for t in broker["targets"]:
        v = t["value"]
        val = "-" if v is None else (f"{v:,.0f}" if v > 100 else f"{v:.2f}")
        cmp = "<=" if "(us)" in t["what"] else ">="
        lines.append(f"| issue 3 | {t['what']} | {val} | {cmp} {t['target']:g} | "
                     f"{'yes' if t['met'] else 'no' if t['met'] is not None else '-'} |")
    lines += ["", "## Broker matrix (issue 3, bench/results/broker.json)", "",
              "| acks | record | producers | partitions | records/s | MB/s (payload) | stored MB/s |",
              "|---|---|---|---|---|---|---|"]
    for p in broker["produce"]:
        lines.append(f"| {p['acks']} | {p['record_bytes']} B | {p['producers']} | {p['partitions']} | "
                     f"{fmt_stat(p['records_per_s'])} | {fmt_stat(p['mb_per_s'], 1)} | "
                     f"{fmt_stat(p['stored_mb_per_s'], 1)} |")
    c, lat = broker["consume"], broker["latency"]
    lines += ["",
              f"- consume 1M 100 B records, cold (restart, pages dropped): {fmt_stat(c['cold']['records_per_s'])} "
              f"records/s; warm: {fmt_stat(c['warm']['records_per_s'])} records/s",
              f"- storage engine alone, 1 KiB records in 256 KiB batches at `written`: "
              f"{fmt_stat(broker['storage_engine']['mb_per_s'], 1)} MB/s",
              f"- produce-to-consume at 10% of peak ({fmt_stat(lat['rate_records_per_s'])} records/s): p50 "
              f"{fmt_stat(lat['e2e_latency_us']['p50'])} us, p99 {fmt_stat(lat['e2e_latency_us']['p99'])} us, "
              f"p99.9 {fmt_stat(lat['e2e_latency_us']['p999'])} us",
              "", "Where the time goes for each missed target: bench/results/profiles.md.", ""]
    return "\n".join(lines)


# ---- chart ----

def chart(doc, out_png):
    """One panel per workload, with its unit and the workload said in its title; a bar is the median over the
    rounds, its error bar the rounds' min to max; linear axes (bench/charts.py draws them)."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from charts import Chart

    rounds = doc["rounds"]
    c = Chart(f"synclog against Redis Streams, NATS JetStream and the disk: medians of {rounds} interleaved rounds, "
              "min-max bars; servers on one core, load generators on the other")
    titles = dict(WORKLOADS)
    for w in doc["workloads"]:
        wid, systems = w["id"], w["systems"]
        label = lambda e: f"{e['system'].replace(' (fio)', '')}\n{short(e['durability'])}".strip()
        if wid in ("W1", "W2", "W3", "W5"):
            key, unit = ("mb_per_s", "MB/s (10^6 B/s of payload)") if wid == "W2" else ("records_per_s", "records/s")
            shown = [e for e in systems if e.get(key)]
            c.bars(f"{wid}: {titles[wid]}", unit, [label(e) for e in shown],
                   [(f"median, min-max over {rounds} rounds", [e[key] for e in shown])])
        else:
            shown = [e for e in systems if isinstance(e.get("latency_us"), dict) and
                     isinstance(e["latency_us"].get("p50"), dict)]
            rate = f" at {doc['w6_rate']:,.0f} records/s" if wid == "W6" and doc.get("w6_rate") else ""
            c.bars(f"{wid}: {titles[wid]}{rate}", "microseconds", ["p50", "p99", "p99.9"],
                   [(label(e), [e["latency_us"].get(p) if isinstance(e["latency_us"].get(p), dict) else None
                                for p in ("p50", "p99", "p999")]) for e in shown])
    c.draw(out_png, cols=2)


def short(durability):
    """The durability column, short enough for an axis label."""
    d = durability.replace("written (page cache)", "written").replace("acknowledged before fsync", "ack before fsync")
    d = d.replace("buffered (io_uring, 256 KiB writes, iodepth 16)", "buffered")
    d = d.replace("fetcher from the start (page cache warm)", "fetcher, warm").replace(", COUNT 10000 (in memory)", "")
    d = d.replace("file store, ", "").replace("sync publish, ", "").replace("ordered consumer, ", "")
    d = d.replace("acknowledged before fsync", "no fsync").replace("ack before fsync", "no fsync")
    if d.startswith("fdatasync at synclog"):
        d = "fdatasync"
    return d if len(d) <= 24 else d[:22] + ".."


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--quick", default="0")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--data-dir", default=".")
    ap.add_argument("--server-cpu", default="0")
    ap.add_argument("--client-cpu", default="1")
    ap.add_argument("--other-cpu-max", type=float, default=0.15)
    args = ap.parse_args()

    runs = load_runs(args.runs)
    rep = Report(runs)
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    host = host_facts(args, runs)
    # A run counts as disturbed when others used more than the threshold of a core during it; the harness has
    # already run each such measurement a second time, and only the second run is kept.
    disturbed = [m["name"] for m, _ in runs if m["other_cpu_s"] > args.other_cpu_max * max(m["wall_s"], 1)]
    w6_rate = next((d.get("rate") for m, d in rep.select(system="synclog", workload="W6")), None)
    doc = {"benchmark": "compare", "generated_at": now, "quick": args.quick == "1", "rounds": args.rounds,
           "host": host, "w6_rate": w6_rate, "disturbed": disturbed, "workloads": build(rep),
           "runs": [dict(m, records_per_s=d.get("records_per_s")) for m, d in runs]}
    broker = {"benchmark": "broker", "generated_at": now, "quick": args.quick == "1", "rounds": args.rounds,
              "host": host}
    broker.update(build_broker(rep, args.runs))
    os.makedirs(args.out, exist_ok=True)
    json.dump(doc, open(os.path.join(args.out, "latest.json"), "w"), indent=2)
    json.dump(broker, open(os.path.join(args.out, "broker.json"), "w"), indent=2)
    md = markdown(doc, broker)
    open(os.path.join(args.out, "latest.md"), "w").write(md)
    chart(doc, os.path.join(args.out, "latest.png"))
    print(md)


if __name__ == "__main__":
    main()
