# synclog build. `make` builds the binaries and libraries, `make test` runs every test and ends with
# "N passed, N failed", `make bench` runs the benchmarks, `make SANITIZE=address,undefined test` runs the tests
# under sanitizers (in its own build directory), `make soak DURATION=1h` runs the long soak with kill -9,
# `make format` / `make format-check` use .clang-format.

ifeq ($(origin CC),default)
CC := gcc
endif
SANITIZE ?=
comma := ,
ifeq ($(SANITIZE),)
BUILD := build/release
OPT := -O2
else
BUILD := build/san-$(subst $(comma),-,$(SANITIZE))
OPT := -O1 -fno-omit-frame-pointer -fsanitize=$(SANITIZE) -fno-sanitize-recover=all
endif

# openssl: TLS in the connection layers and SCRAM-SHA-256 (proto/scram.c). libpq: the PostgreSQL store and source.
# zlib, liblz4, snappy: the Kafka listener makes compressed batches of Kafka clients plain (broker/kafka/inflate.c).
PKGS := liburing libzstd libuv sqlite3 libxxhash jansson libprotobuf-c openssl libpq zlib liblz4 snappy
# The sync layer's own: contract files (libyaml) and thin events' fetches (libcurl); linked only into what uses
# libsynclog_sync.a (the CLI, its tests and benchmarks), never the broker.
SYNC_PKGS := yaml-0.1 libcurl
# ISA-L's CRC32C when it is installed (tools/install-deps.sh installs it), proto/crc32c.c's own otherwise.
HAVE_ISAL := $(shell pkg-config --exists libisal 2>/dev/null && echo 1)
ISAL_CFLAGS := $(if $(HAVE_ISAL),-DSL_HAVE_ISAL)
ISAL_LIBS := $(if $(HAVE_ISAL),-lisal)
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) $(SYNC_PKGS) rdkafka 2>/dev/null) $(ISAL_CFLAGS)
PKG_LIBS = $(shell pkg-config --libs $(PKGS) 2>/dev/null) $(ISAL_LIBS)
SYNC_LIBS = $(shell pkg-config --libs $(SYNC_PKGS) 2>/dev/null)
# The client library's Kafka transport (consumer/client/kafka_*.c) is on librdkafka: what links libsynclog.a links
# it too; synclogd does not.
CLIENT_LIBS = $(shell pkg-config --libs rdkafka 2>/dev/null)

GEN := $(BUILD)/gen
# -Wno-format-truncation: paths are built from a data dir of at most 1023 bytes and names of at most 200 into
# 4096-byte buffers; gcc cannot see those bounds and would flag every such snprintf.
CFLAGS := -std=c11 -D_GNU_SOURCE -g $(OPT) -Wall -Wextra -Werror -Wshadow -Wno-unused-parameter -Wno-format-truncation \
	-I. -I$(GEN) -MMD -MP $(EXTRA_CFLAGS)
LDFLAGS := $(if $(SANITIZE),-fsanitize=$(SANITIZE),)
LDLIBS = $(PKG_LIBS) -lpthread -lm

PROTO_SRC := $(wildcard proto/*.c proto/base/*.c)
PROTO_GEN := $(GEN)/proto/synclog.pb-c.c
# The layers, bottom up (README's layout table): proto/ and proto/base/ (wire codec, shared helpers), the storage
# engine (broker/storage/, no libuv), the broker daemon (broker/, broker/net/, broker/handlers/), the client
# library (consumer/client/: only what the wire needs) and the sync layer on top of it (consumer/sync/: the applier
# and its stores, with SQLite and jansson). tools/check-layers.sh checks that includes only point downward.
STORAGE_SRC := $(wildcard broker/storage/*.c)
BROKER_SRC := $(wildcard broker/*.c broker/net/*.c broker/handlers/*.c broker/kafka/*.c)
CLIENT_SRC := $(wildcard consumer/client/*.c)
SYNC_SRC := $(wildcard consumer/sync/*.c)
CLI_SRC := $(wildcard tools/*.c)
TEST_UNIT_SRC := $(wildcard tests/unit/test_*.c)
TEST_BIN := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(TEST_UNIT_SRC))
TEST_HELPERS := $(filter-out $(TEST_UNIT_SRC),$(wildcard tests/unit/*.c))

LIB_PROTO := $(BUILD)/lib/libsynclog_proto.a
LIB_STORAGE := $(BUILD)/lib/libsynclog_storage.a
LIB_CLIENT := $(BUILD)/lib/libsynclog.a
LIB_SYNC := $(BUILD)/lib/libsynclog_sync.a
BENCH_BIN := $(BUILD)/bin/storage-bench
# The cleaner on the storage engine alone (bench/clean.sh).
CLEAN_BENCH_BIN := $(BUILD)/bin/clean-bench
# The load generator (bench/loadgen/*.c, on the client library), the NATS peer client (bench/peers/nats*.c, on
# Debian's libnats) and the Redis peer client (bench/peers/redis*.c, on Debian's hiredis), all three sharing the
# latency histogram of bench/common/: built by `make bench` only, so `make` needs no benchmark packages.
BENCH_COMMON_SRC := $(wildcard bench/common/*.c)
LOADGEN_SRC := $(wildcard bench/loadgen/*.c)
NATS_PEER_SRC := $(wildcard bench/peers/nats*.c)
REDIS_PEER_SRC := $(wildcard bench/peers/redis*.c)
LOADGEN_BIN := $(if $(LOADGEN_SRC),$(BUILD)/bin/synclog-bench)
NATS_PEER_BIN := $(if $(NATS_PEER_SRC),$(BUILD)/bin/nats-bench)
REDIS_PEER_BIN := $(if $(REDIS_PEER_SRC),$(BUILD)/bin/redis-bench)
SYNCLOGD := $(BUILD)/bin/synclogd
SYNCLOG := $(BUILD)/bin/synclog

.PHONY: all deps deps-test deps-bench test test-build test-build-bench test-interop layer-check bench bench-quick \
	bench-scale bench-scale-quick demo install uninstall man format format-check clean FORCE soak
all: deps $(LIB_PROTO) $(LIB_STORAGE) $(BENCH_BIN) bin/synclogd bin/synclog $(LIB_CLIENT) $(LIB_SYNC) man

# Manual pages: tools/man/NAME.SECTION.scd (scdoc, readable as they are) -> BUILD/man/NAME.SECTION (roff).
MAN_SRC := $(wildcard tools/man/*.scd)
MAN_PAGES := $(patsubst tools/man/%.scd,$(BUILD)/man/%,$(MAN_SRC))
man: $(MAN_PAGES)
$(BUILD)/man/%: tools/man/%.scd
	@mkdir -p $(dir $@)
	scdoc <$< >$@.tmp && mv $@.tmp $@

deps:
	@tools/install-deps.sh build
deps-test:
	@tools/install-deps.sh test
deps-bench:
	@tools/install-deps.sh bench

$(GEN)/proto/synclog.pb-c.c $(GEN)/proto/synclog.pb-c.h: proto/synclog.proto
	@mkdir -p $(GEN)
	protoc-c --c_out=$(GEN) proto/synclog.proto

# The version (tools/version.sh: `git describe`) as SL_VERSION. Checked on every make, rewritten only when it
# changed, so only the files that include it are rebuilt, and only then.
VERSION_H := $(GEN)/proto/version.h
$(VERSION_H): FORCE
	@mkdir -p $(dir $@)
	@printf '/* Generated by the Makefile from tools/version.sh. */\n#define SL_VERSION "%s"\n' \
		"$$(tools/version.sh)" >$@.tmp
	@if cmp -s $@.tmp $@; then rm -f $@.tmp; else mv $@.tmp $@; fi
FORCE:

$(BUILD)/%.o: %.c | $(GEN)/proto/synclog.pb-c.h $(VERSION_H)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(PKG_CFLAGS) -c $< -o $@

# Generated code is not ours to hold to -Wextra -Werror.
$(GEN)/%.o: $(GEN)/%.c
	$(CC) -std=c11 -g $(OPT) -I$(GEN) $(PKG_CFLAGS) -c $< -o $@

# The console's page, script and style sheet are compiled into synclogd (.incbin in console_assets.c): rebuilt
# when one of them changes.
$(BUILD)/broker/net/console_assets.o: $(wildcard broker/net/console/*)

$(LIB_PROTO): $(PROTO_SRC:%.c=$(BUILD)/%.o) $(PROTO_GEN:.c=.o)
	@mkdir -p $(dir $@)
	$(AR) rcs $@ $^
$(LIB_STORAGE): $(STORAGE_SRC:%.c=$(BUILD)/%.o)
	@mkdir -p $(dir $@)
	$(AR) rcs $@ $^

$(LIB_CLIENT): $(CLIENT_SRC:%.c=$(BUILD)/%.o)
	@mkdir -p $(dir $@)
	$(AR) rcs $@ $^
$(LIB_SYNC): $(SYNC_SRC:%.c=$(BUILD)/%.o)
	@mkdir -p $(dir $@)
	$(AR) rcs $@ $^

$(SYNCLOGD): $(BROKER_SRC:%.c=$(BUILD)/%.o) $(LIB_STORAGE) $(LIB_PROTO)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $^ -o $@ $(LDLIBS)
$(SYNCLOG): $(CLI_SRC:%.c=$(BUILD)/%.o) $(LIB_SYNC) $(LIB_CLIENT) $(LIB_PROTO)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $^ -o $@ $(LDLIBS) $(SYNC_LIBS) $(CLIENT_LIBS)
# bin/ holds the binaries of the last build, whichever configuration it was.
bin/synclogd: $(SYNCLOGD)
	@mkdir -p bin
	cp $< $@
bin/synclog: $(SYNCLOG)
	@mkdir -p bin
	cp $< $@

$(BUILD)/tests/%: $(BUILD)/tests/unit/%.o $(TEST_HELPERS:%.c=$(BUILD)/%.o) $(LIB_SYNC) $(LIB_CLIENT) \
		$(LIB_STORAGE) $(LIB_PROTO)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $(filter %.o,$^) $(filter %.a,$^) -o $@ $(LDLIBS) $(SYNC_LIBS) $(CLIENT_LIBS) -lcmocka
# Unit tests of broker files that need no loop: the object joins the test's link line.
$(BUILD)/tests/test_acl: $(BUILD)/broker/acl.o
$(BUILD)/tests/test_audit_log: $(BUILD)/broker/audit.o
$(BUILD)/tests/test_sendfile_order: $(BUILD)/broker/sendfile.o
$(BUILD)/tests/test_kafka_inflate: $(BUILD)/broker/kafka/inflate.o $(BUILD)/broker/kafka/decode.o \
		$(BUILD)/broker/kafka/wire.o

$(BENCH_BIN): $(BUILD)/bench/storage_bench.o $(LIB_STORAGE) $(LIB_PROTO)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $^ -o $@ $(LDLIBS)
$(CLEAN_BENCH_BIN): $(BUILD)/bench/clean_bench.o $(LIB_STORAGE) $(LIB_PROTO)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $^ -o $@ $(LDLIBS)

# libFuzzer targets (clang), built with the release test build only: the sanitizer build already covers the
# same code with gcc. tests/run.sh runs each for FUZZ_SECONDS.
FUZZ_SRC := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BIN := $(if $(SANITIZE),,$(patsubst tests/fuzz/%.c,$(BUILD)/fuzz/%,$(FUZZ_SRC)))
FUZZ_SECONDS ?= 20
$(BUILD)/fuzz/%: tests/fuzz/%.c $(PROTO_SRC) $(PROTO_GEN)
	@mkdir -p $(dir $@)
	clang -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE -I. -I$(GEN) $< $(PROTO_SRC) $(PROTO_GEN) \
		$(ISAL_CFLAGS) -o $@ -lzstd -lprotobuf-c -lssl -lcrypto -lpthread $(ISAL_LIBS)
# The Kafka request decoder sits in broker/kafka/ but needs only proto/: its fuzz target links just those files.
KAFKA_DECODE_SRC := broker/kafka/decode.c broker/kafka/wire.c
$(BUILD)/fuzz/fuzz_kafka_request: tests/fuzz/fuzz_kafka_request.c $(KAFKA_DECODE_SRC) $(PROTO_SRC) $(PROTO_GEN)
	@mkdir -p $(dir $@)
	clang -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE -I. -I$(GEN) $< $(KAFKA_DECODE_SRC) \
		$(PROTO_SRC) $(PROTO_GEN) $(ISAL_CFLAGS) -o $@ -lzstd -lprotobuf-c -lssl -lcrypto -lpthread $(ISAL_LIBS)

# The listener's decompression of Kafka clients' batches: inflate.c with the decoder's arena and the codecs.
$(BUILD)/fuzz/fuzz_kafka_inflate: tests/fuzz/fuzz_kafka_inflate.c broker/kafka/inflate.c $(KAFKA_DECODE_SRC) \
		$(PROTO_SRC) $(PROTO_GEN)
	@mkdir -p $(dir $@)
	clang -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE -I. -I$(GEN) $(PKG_CFLAGS) $< \
		broker/kafka/inflate.c $(KAFKA_DECODE_SRC) $(PROTO_SRC) $(PROTO_GEN) $(ISAL_CFLAGS) -o $@ -lzstd \
		-lprotobuf-c -lssl -lcrypto -lz -llz4 -lsnappy -lpthread $(ISAL_LIBS)

# The Kafka listener's tests drive it with a small program on librdkafka (librdkafka-dev, a test package only).
KAFKA_CLIENT_BIN := $(BUILD)/tests/kafka_client
$(KAFKA_CLIENT_BIN): tests/integration/kafka_client.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) $< -o $@ $$(pkg-config --cflags --libs rdkafka)
# librdkafka's mock Kafka cluster as a process (3 brokers, leader moves, brokers down): the sync tools' tests
# against a cluster of several brokers.
KAFKA_MOCK_BIN := $(BUILD)/tests/kafka_mock
$(KAFKA_MOCK_BIN): tests/integration/kafka_mock.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) $< -o $@ $$(pkg-config --cflags --libs rdkafka)
# The JSON scanner of the client library against jansson: that one file of the client on top of the protocol.
$(BUILD)/fuzz/fuzz_json: tests/fuzz/fuzz_json.c consumer/client/json_text.c $(PROTO_SRC) $(PROTO_GEN) | $(VERSION_H)
	@mkdir -p $(dir $@)
	clang -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE -I. -I$(GEN) $< consumer/client/json_text.c \
		$(PROTO_SRC) $(PROTO_GEN) $(ISAL_CFLAGS) -o $@ -lzstd -lprotobuf-c -ljansson -lssl -lcrypto -lpthread \
		$(ISAL_LIBS)

# `make test` says what it runs and how each step ended; apt's and the compiler's output go to logs in $(BUILD),
# shown (their last lines) only when a step fails.
test:
	@tools/run-quiet.sh "checking the Debian packages the tests need" $(BUILD)/logs/deps.log \
		tools/install-deps.sh test
	@tools/run-quiet.sh "building the tests ($(BUILD))" $(BUILD)/logs/build.log \
		$(MAKE) --no-print-directory test-build
	@FUZZ_SECONDS=$(FUZZ_SECONDS) tests/run.sh $(BUILD)
test-build: $(TEST_BIN) $(FUZZ_BIN) $(LIB_PROTO) $(LIB_STORAGE) $(SYNCLOGD) $(SYNCLOG) $(KAFKA_CLIENT_BIN) \
		$(KAFKA_MOCK_BIN) $(MAN_PAGES) test-build-bench \
		layer-check

# Kafka clients with their own protocol code that Debian does not package, from npm (tests/interop/): not in
# `make test`, as CI may not reach npm's registry; when npm cannot install them the script says so and exits 2.
test-interop: all
	tests/interop/kafkajs.sh $(BUILD)

# The long soak (tests/integration/soak.py): random clients, good and hostile, for DURATION, with kill -9 of the
# broker at random moments; memory and descriptors bounded, every acknowledged record and commit checked at the
# end. `make test` runs the same for 90 s without the kills (tests/integration/test_soak.sh).
DURATION ?= 10m
soak: deps-test all
	tests/integration/soak.py $(BUILD) --duration $(DURATION) --kill9

# Includes point downward only, and each library links only its own layer's packages (tools/check-layers.sh).
layer-check: | $(GEN)/proto/synclog.pb-c.h
	@tools/check-layers.sh $(GEN)

$(BUILD)/bin/synclog-bench: $(LOADGEN_SRC:%.c=$(BUILD)/%.o) $(BENCH_COMMON_SRC:%.c=$(BUILD)/%.o) $(LIB_CLIENT) \
		$(LIB_PROTO)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $^ -o $@ $(LDLIBS) $(CLIENT_LIBS)
$(BUILD)/bin/nats-bench: $(NATS_PEER_SRC:%.c=$(BUILD)/%.o) $(BENCH_COMMON_SRC:%.c=$(BUILD)/%.o)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $^ -o $@ $(LDLIBS) -lnats
$(BUILD)/bin/redis-bench: $(REDIS_PEER_SRC:%.c=$(BUILD)/%.o) $(BENCH_COMMON_SRC:%.c=$(BUILD)/%.o)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $^ -o $@ $(LDLIBS) -lhiredis

# The consumer-group benchmark's measurements (bench/groups/*.c, on the client library).
GROUPS_BENCH_SRC := $(wildcard bench/groups/*.c)
GROUPS_BENCH_BIN := $(if $(GROUPS_BENCH_SRC),$(BUILD)/bin/groups-bench)
$(BUILD)/bin/groups-bench: $(GROUPS_BENCH_SRC:%.c=$(BUILD)/%.o) $(BENCH_COMMON_SRC:%.c=$(BUILD)/%.o) $(LIB_CLIENT) \
		$(LIB_PROTO)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $^ -o $@ $(LDLIBS) $(CLIENT_LIBS)

# The floor of the PostgreSQL applier benchmark (bench/pg/floor.c, on libpq alone).
PG_FLOOR_SRC := $(wildcard bench/pg/*.c)
PG_FLOOR_BIN := $(if $(PG_FLOOR_SRC),$(BUILD)/bin/pg-apply-floor)
$(BUILD)/bin/pg-apply-floor: $(PG_FLOOR_SRC:%.c=$(BUILD)/%.o)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $^ -o $@ -lpq

# The backfill and reconcile benchmark's measurements (bench/sync/*.c, on the sync library: SQLite scans, the
# applier's produce-to-apply latency).
SYNC_BENCH_SRC := $(wildcard bench/sync/*.c)
SYNC_BENCH_BIN := $(if $(SYNC_BENCH_SRC),$(BUILD)/bin/sync-bench)
$(BUILD)/bin/sync-bench: $(SYNC_BENCH_SRC:%.c=$(BUILD)/%.o) $(BENCH_COMMON_SRC:%.c=$(BUILD)/%.o) $(LIB_SYNC) \
		$(LIB_CLIENT) $(LIB_PROTO)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $^ -o $@ $(LDLIBS) $(SYNC_LIBS) $(CLIENT_LIBS)

# The Kafka listener's peer load generator (bench/kafka/*.c, on librdkafka, with bench/common/'s values and CPU time).
KAFKA_BENCH_SRC := $(wildcard bench/kafka/*.c)
KAFKA_BENCH_BIN := $(if $(KAFKA_BENCH_SRC),$(BUILD)/bin/kafka-bench)
$(BUILD)/bin/kafka-bench: $(KAFKA_BENCH_SRC) $(BENCH_COMMON_SRC)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) $^ -o $@ $$(pkg-config --cflags --libs rdkafka)

# The CPU-stall watcher of the W6 tail benchmark (bench/hiccup/hiccup.c, libc alone: bench/tail.sh).
HICCUP_BIN := $(BUILD)/bin/hiccup
$(HICCUP_BIN): $(BUILD)/bench/hiccup/hiccup.o
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $^ -o $@ -pthread

BENCH_BINS := $(LOADGEN_BIN) $(NATS_PEER_BIN) $(REDIS_PEER_BIN) $(GROUPS_BENCH_BIN) $(CLEAN_BENCH_BIN) $(SYNC_BENCH_BIN) \
	$(KAFKA_BENCH_BIN) $(PG_FLOOR_BIN) $(HICCUP_BIN)
# The benchmark programs that need no package beyond the tests' are built by `make test` too, so that a change of an
# API they use cannot leave `make bench` broken unnoticed (the peers' clients need libnats and hiredis: bench only).
test-build-bench: $(BENCH_BIN) $(LOADGEN_BIN) $(GROUPS_BENCH_BIN) $(CLEAN_BENCH_BIN) $(SYNC_BENCH_BIN) $(KAFKA_BENCH_BIN) \
		$(PG_FLOOR_BIN) $(HICCUP_BIN)

bench: deps-bench all $(BENCH_BINS)
	bench/run.sh $(BUILD)
bench-quick: deps-bench all $(BENCH_BINS)
	BENCH_QUICK=1 bench/run.sh $(BUILD)
# Issue 21's scale benchmarks (cold replay, interference, many groups, offered load, timeline, the curves): about an
# hour in full; bench-scale-quick runs their smoke modes in a few minutes (bench/README.md, "Scale").
bench-scale: deps-bench all $(BENCH_BINS)
	bench/scale.sh $(BUILD)
bench-scale-quick: deps-bench all $(BENCH_BINS)
	BENCH_QUICK=1 bench/scale.sh $(BUILD)

# Programs, the client library (one archive), its headers and synclog.pc, the manual pages, the systemd unit and
# the example config; DESTDIR is honoured. uninstall removes exactly what install listed in its manifest.
PREFIX ?= /usr/local
install: all
	tools/install.sh $(BUILD) $(PREFIX)
uninstall:
	tools/uninstall.sh $(PREFIX)

demo: all
	@tools/install-deps.sh demo
	tools/demo.sh $(BUILD)

FORMAT_FILES = $(shell git ls-files '*.c' '*.h' 2>/dev/null)
format:
	clang-format -i $(FORMAT_FILES)
format-check:
	@clang-format --dry-run --Werror $(FORMAT_FILES) && echo "format ok"

clean:
	rm -rf build bin

-include $(shell find build -name '*.d' 2>/dev/null)
