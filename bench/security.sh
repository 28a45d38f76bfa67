#!/usr/bin/env bash
# The security benchmark (issue 18): what TLS costs the broker, measured in the same run against plaintext, and how
# many new authenticated connections a second a client gets. Writes bench/results/security.json and prints a table.
#
#   produce  COUNT records (100 B and 1 KiB values, no keys, no compression) from one producer at acks written to a
#            one-partition topic, through a plaintext broker and a TLS broker started side by side with the same
#            settings; the ratio TLS/plaintext of records/s is the figure (issue 18's target: >= 0.7 for 1 KiB).
#   replay   the same topic read back from the start to its end by one fetcher.
#   handshake  connections opened one after another by one client, each closed before the next: plaintext
#            (TCP + Hello), TLS (+ the TLS 1.3 handshake) and TLS + SCRAM-SHA-256 (+ two round trips and the
#            client's 4096 PBKDF2 iterations). The certificates are ECDSA P-256, made by this script.
# Plaintext and TLS alternate within each round, ROUNDS rounds, and the medians are reported, so that a change of
# load on the machine hits both sides alike. Every topic is deleted after its replay. Each run also records the CPU
# seconds its broker spent (/proc/PID/stat, all threads) beside the client's, which a loaded machine disturbs far
# less than records/s, and the load average and the CPU time the host stole (/proc/stat) while it ran.
#
# Usage: bench/security.sh [BUILD_DIR]        (default build/release; needs synclog-bench: make bench builds it)
#   SECURITY_BENCH_QUICK=1   small counts, one round, about 30 s: tests this script; the figures go to
#                            BUILD_DIR/security-quick.json instead
#   SECURITY_BENCH_ROUNDS=N  rounds (default 3)
set -euo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bench_paths "${1:-}" synclog-bench synclogd synclog
bench=$build/bin/synclog-bench
command -v openssl >/dev/null || { echo "security.sh: needs the openssl command" >&2; exit 1; }

quick=${SECURITY_BENCH_QUICK:-0}
if [ "$quick" = 1 ]; then
	rounds=1
	count_small=200000
	count_large=50000
	handshakes=100
	out=$build/security-quick.json
else
	rounds=${SECURITY_BENCH_ROUNDS:-3}
	count_small=2000000
	count_large=500000
	handshakes=1000
	out=$root/bench/results/security.json
fi

work=$root/build/bench-data-security
rm -rf "$work"
mkdir -p "$work/pki" "$(dirname "$out")"
pids=()
cleanup() {
	for p in "${pids[@]}"; do
		kill -KILL "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
	rm -rf "$work"
}
trap cleanup EXIT

pki=$work/pki
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$pki/ca.key" -out "$pki/ca.pem" \
	-days 2 -subj /CN=bench-ca 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$pki/server.key" -out "$pki/server.csr" \
	-subj /CN=localhost 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1\n' >"$pki/san"
openssl x509 -req -in "$pki/server.csr" -CA "$pki/ca.pem" -CAkey "$pki/ca.key" -CAcreateserial -days 2 \
	-extfile "$pki/san" -out "$pki/server.pem" 2>/dev/null

# start NAME FLAG...: a broker on loopback port 0; sets the variable NAME to its address.
start() {
	local name=$1
	shift
	"$build/bin/synclogd" --data-dir "$work/$name" --listen 127.0.0.1:0 --metrics off --connection-rate-max 0 "$@" \
		>"$work/$name.out" 2>"$work/$name.err" &
	pids+=($!)
	printf -v "${name}_pid" '%s' "$!"
	for _ in $(seq 1 300); do
		if grep -q '^synclogd ready on ' "$work/$name.out"; then
			printf -v "$name" '%s' "$(sed -n 's/^synclogd ready on //p' "$work/$name.out")"
			return 0
		fi
		sleep 0.1
	done
	echo "security.sh: broker $name did not start: $(cat "$work/$name.err")" >&2
	exit 1
}
printf 'bench-pw\n' | "$build/bin/synclog" user add bench --password-stdin --data-dir "$work/scram" >/dev/null
start plain
start tls --tls-cert "$pki/server.pem" --tls-key "$pki/server.key"
start scram --tls-cert "$pki/server.pem" --tls-key "$pki/server.key" --auth scram --super-users bench
tls_flags=(--tls-ca "$pki/ca.pem")

results=$work/results.jsonl
: >"$results"
# cpu_ticks PID: user + system clock ticks of a process, all its threads.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# steal_ticks: clock ticks the host stole from this machine, all CPUs.
steal_ticks() { awk '/^cpu /{print $9}' /proc/stat; }
# run KIND ADDR MODE LABEL FLAG...: one synclog-bench run, its JSON appended with the kind, the broker's CPU seconds,
# the steal and the load average.
run() {
	local kind=$1 addr=$2 mode=$3 label=$4
	shift 4
	local flags=()
	[ "$kind" = plain ] || flags=("${tls_flags[@]}")
	[ "$kind" = scram ] && flags+=(--user bench --password bench-pw)
	local pid_var=${kind}_pid
	local pid=${!pid_var} cpu0 steal0
	cpu0=$(cpu_ticks "$pid")
	steal0=$(steal_ticks)
	"$bench" "$mode" --broker "$addr" --label "$label" "${flags[@]}" "$@" --json "$work/one.json"
	python3 -c 'import json,os,sys
d = json.load(open(sys.argv[1]))
hz = os.sysconf("SC_CLK_TCK")
d["kind"] = sys.argv[2]
d["broker_cpu_s"] = (int(sys.argv[3]) - int(sys.argv[4])) / hz
d["steal_s"] = (int(sys.argv[5]) - int(sys.argv[6])) / hz
d["load1"] = float(open("/proc/loadavg").read().split()[0])
print(json.dumps(d))' "$work/one.json" "$kind" "$(cpu_ticks "$pid")" "$cpu0" "$(steal_ticks)" "$steal0" >>"$results"
}

for round in $(seq 1 "$rounds"); do
	for size in 100 1024; do
		count=$count_small
		[ "$size" = 1024 ] && count=$count_large
		for kind in plain tls; do
			addr=${!kind}
			topic="t$size-r$round"
			flags=()
			[ "$kind" = plain ] || flags=("${tls_flags[@]}")
			run "$kind" "$addr" produce "produce-$size" --topic "$topic" --create --record-bytes "$size" \
				--count "$count" --acks written
			run "$kind" "$addr" replay "replay-$size" --topic "$topic" --record-bytes "$size" --count "$count"
			"$build/bin/synclog" --broker "$addr" "${flags[@]}" topic delete "$topic" >/dev/null
		done
	done
	run plain "$plain" handshake handshake --count "$handshakes"
	run tls "$tls" handshake handshake --count "$handshakes"
	run scram "$scram" handshake handshake --count "$handshakes"
	echo "security.sh: round $round of $rounds done" >&2
done

python3 - "$results" "$out" "$rounds" "$quick" <<'PY'
import json, statistics, sys, time
rows = [json.loads(l) for l in open(sys.argv[1])]
def med(kind, label, key):
    vals = [r[key] for r in rows if r["kind"] == kind and r["label"] == label]
    return statistics.median(vals) if vals else None
summary = {"rounds": int(sys.argv[3]), "quick": sys.argv[4] == "1", "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
           "produce": {}, "replay": {}, "handshake": {}, "runs": rows}
for size in (100, 1024):
    for what in ("produce", "replay"):
        label = "%s-%d" % (what, size)
        p = med("plain", label, "records_per_s")
        t = med("tls", label, "records_per_s")
        cpu = {k: (med(k, label, "cpu_s") or 0) + (med(k, label, "broker_cpu_s") or 0) for k in ("plain", "tls")}
        summary[what][str(size)] = {"plain_records_per_s": p, "tls_records_per_s": t,
                                    "plain_mb_per_s": med("plain", label, "mb_per_s"),
                                    "tls_mb_per_s": med("tls", label, "mb_per_s"),
                                    "ratio": t / p if p and t else None,
                                    "plain_client_cpu_s": med("plain", label, "cpu_s"),
                                    "tls_client_cpu_s": med("tls", label, "cpu_s"),
                                    "plain_broker_cpu_s": med("plain", label, "broker_cpu_s"),
                                    "tls_broker_cpu_s": med("tls", label, "broker_cpu_s"),
                                    "cpu_ratio": cpu["plain"] / cpu["tls"] if cpu["tls"] else None}
loads = [r["load1"] for r in rows]
steals = [r["steal_s"] for r in rows]
summary["load1"] = {"min": min(loads), "median": statistics.median(loads), "max": max(loads)}
summary["steal_s"] = {"total": round(sum(steals), 2), "max_one_run": max(steals)}
for kind in ("plain", "tls", "scram"):
    summary["handshake"][kind] = {"connections_per_s": med(kind, "handshake", "connections_per_s"),
                                  "client_cpu_s": med(kind, "handshake", "client_cpu_s")}
json.dump(summary, open(sys.argv[2], "w"), indent=1)
print("%-22s %14s %14s %7s %10s" % ("", "plaintext", "TLS", "ratio", "CPU ratio"))
for what in ("produce", "replay"):
    for size in ("100", "1024"):
        s = summary[what][size]
        print("%-22s %14s %14s %7s %10s" % ("%s %s B records/s" % (what, size), "%.0f" % s["plain_records_per_s"],
                                            "%.0f" % s["tls_records_per_s"], "%.2f" % s["ratio"],
                                            "%.2f" % s["cpu_ratio"]))
print("load average %.1f to %.1f (median %.1f), %.1f s stolen" % (summary["load1"]["min"], summary["load1"]["max"],
                                                                 summary["load1"]["median"], summary["steal_s"]["total"]))
h = summary["handshake"]
print("new connections/s: plaintext+Hello %.0f, TLS %.0f, TLS+SCRAM %.0f" %
      (h["plain"]["connections_per_s"], h["tls"]["connections_per_s"], h["scram"]["connections_per_s"]))
PY
echo "security.sh: wrote $out" >&2
