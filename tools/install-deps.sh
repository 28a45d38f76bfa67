#!/usr/bin/env bash
# Installs the Debian packages synclog needs, only those missing. `make`, `make test`, `make demo` and
# `make bench` call it with the set they need. As root it runs apt-get; otherwise it prints the exact command.
# Usage: tools/install-deps.sh build|test|demo|bench
set -euo pipefail

want=${1:-build}
# pkg-config module -> Debian package
declare -A mods=(
	[liburing]=liburing-dev [libzstd]=libzstd-dev [libprotobuf-c]=libprotobuf-c-dev [libuv]=libuv1-dev
	[sqlite3]=libsqlite3-dev [libxxhash]=libxxhash-dev [jansson]=libjansson-dev [libisal]=libisal-dev
	[yaml-0.1]=libyaml-dev [libcurl]=libcurl4-openssl-dev [openssl]=libssl-dev [libpq]=libpq-dev
	[rdkafka]=librdkafka-dev [zlib]=zlib1g-dev [liblz4]=liblz4-dev [snappy]=libsnappy-dev
)
# command -> Debian package
declare -A cmds=([gcc]=gcc [make]=make [pkg-config]=pkg-config [protoc-c]=protobuf-c-compiler [scdoc]=scdoc)
# header-only libraries (no pkg-config module) -> Debian package
declare -A headers=([/usr/include/uthash.h]=uthash-dev)
# Python modules of Debian's python3 -> Debian package
declare -A pymods=()
if [ "$want" = test ] || [ "$want" = bench ]; then
	mods[cmocka]=libcmocka-dev
	cmds[clang]=clang
	# The Kafka listener's tests and benchmark: kcat, and a small program on librdkafka.
	cmds[kcat]=kcat
	# promtool checks the Prometheus alert rules of tools/monitoring/ (tests/integration/test_monitoring.sh).
	cmds[promtool]=prometheus
	cmds[curl]=curl
	# The console's browser test renders its pages in headless Chromium (tests/integration/test_console_browser.sh).
	cmds[chromium]=chromium
	cmds[strace]=strace
	# kafka-python, a Kafka client with its own protocol code, against the Kafka listener
	# (tests/integration/test_kafka_python_*.sh), and the codecs its zstd, lz4 and snappy batches need.
	cmds[python3]=python3
	pymods[kafka]=python3-kafka
	pymods[zstandard]=python3-zstandard
	pymods[lz4]=python3-lz4
	pymods[snappy]=python3-snappy
fi
if [ "$want" = demo ]; then
	cmds[sqlite3]=sqlite3
	cmds[python3]=python3
fi
if [ "$want" = bench ]; then
	cmds[fio]=fio
	cmds[redis-server]=redis-server
	cmds[redis-benchmark]=redis-tools
	cmds[nats-server]=nats-server
	cmds[gnuplot]=gnuplot-nox
	mods[libnats]=libnats-dev
	mods[hiredis]=libhiredis-dev
fi

missing=()
for c in "${!cmds[@]}"; do
	command -v "$c" >/dev/null 2>&1 || missing+=("${cmds[$c]}")
done
for h in "${!headers[@]}"; do
	[ -f "$h" ] || missing+=("${headers[$h]}")
done
for p in "${!pymods[@]}"; do
	/usr/bin/python3 -c "import $p" >/dev/null 2>&1 || missing+=("${pymods[$p]}")
done
for m in "${!mods[@]}"; do
	if ! command -v pkg-config >/dev/null 2>&1 || ! pkg-config --exists "$m" 2>/dev/null; then
		missing+=("${mods[$m]}")
	fi
done
# The PostgreSQL server for the tests and benchmarks of the PostgreSQL store: Debian keeps initdb and pg_ctl out of
# PATH, under /usr/lib/postgresql/VERSION/bin.
if [ "$want" != build ] && [ "$want" != demo ] && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
	missing+=(postgresql)
fi
# libFuzzer's runtime and the sanitizer runtimes for clang come with libclang-rt-14-dev.
if [ "$want" != build ] && ! ls /usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a >/dev/null 2>&1; then
	missing+=(libclang-rt-14-dev)
fi
[ ${#missing[@]} -eq 0 ] && exit 0

mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
cmd="apt-get install -y ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
	echo "synclog needs these Debian packages: ${missing[*]}" >&2
	echo "run as root: apt-get update && $cmd" >&2
	exit 1
fi
echo "installing: ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >&2
apt-get install -y -qq "${missing[@]}" >&2
