# synclog build. `make` builds the binaries and libraries, `make test` runs every test and ends with
# "N passed, N failed", `make bench` runs the benchmarks, `make SANITIZE=address,undefined test` runs the tests
# under sanitizers (in its own build directory), `make format` / `make format-check` use .clang-format.

ifeq ($(origin CC),default)
CC := gcc
endif
SANITIZE ?=
ifeq ($(SANITIZE),)
BUILD := build/release
OPT := -O2
else
BUILD := build/san-$(subst $(comma),-,$(SANITIZE))
OPT := -O1 -fno-omit-frame-pointer -fsanitize=$(SANITIZE) -fno-sanitize-recover=all
endif
comma := ,

PKGS := liburing libzstd libuv sqlite3 libxxhash jansson libprotobuf-c
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS = $(shell pkg-config --libs $(PKGS) 2>/dev/null)

CFLAGS := -std=c11 -D_GNU_SOURCE -g $(OPT) -Wall -Wextra -Werror -Wshadow -Wno-unused-parameter \
	-I. -MMD -MP $(EXTRA_CFLAGS)
LDFLAGS := $(if $(SANITIZE),-fsanitize=$(SANITIZE),)
LDLIBS = $(PKG_LIBS) -lpthread -lm

PROTO_SRC := $(wildcard proto/*.c)
STORAGE_SRC := broker/ring.c broker/segment.c broker/index.c broker/log.c broker/recovery.c
TEST_UNIT_SRC := $(wildcard tests/unit/test_*.c)
TEST_BIN := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(TEST_UNIT_SRC))
TEST_HELPERS := $(filter-out $(TEST_UNIT_SRC),$(wildcard tests/unit/*.c))

LIB_PROTO := $(BUILD)/lib/libsynclog_proto.a
LIB_STORAGE := $(BUILD)/lib/libsynclog_storage.a
BENCH_BIN := $(BUILD)/bin/storage-bench

.PHONY: all deps deps-test deps-bench test test-unit bench bench-storage demo format format-check clean
all: deps $(LIB_PROTO) $(LIB_STORAGE) $(BENCH_BIN)

deps:
	@tools/install-deps.sh build
deps-test:
	@tools/install-deps.sh test
deps-bench:
	@tools/install-deps.sh bench

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(PKG_CFLAGS) -c $< -o $@

$(LIB_PROTO): $(PROTO_SRC:%.c=$(BUILD)/%.o)
	@mkdir -p $(dir $@)
	$(AR) rcs $@ $^
$(LIB_STORAGE): $(STORAGE_SRC:%.c=$(BUILD)/%.o)
	@mkdir -p $(dir $@)
	$(AR) rcs $@ $^

$(BUILD)/tests/%: $(BUILD)/tests/unit/%.o $(TEST_HELPERS:%.c=$(BUILD)/%.o) $(LIB_STORAGE) $(LIB_PROTO)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $^ -o $@ $(LDLIBS) -lcmocka

$(BENCH_BIN): $(BUILD)/bench/storage_bench.o $(LIB_STORAGE) $(LIB_PROTO)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $^ -o $@ $(LDLIBS)

test: deps-test
	@$(MAKE) --no-print-directory test-build
	@tests/run.sh $(BUILD)
test-build: $(TEST_BIN) $(LIB_PROTO) $(LIB_STORAGE)

bench: deps-bench all
	bench/storage.sh $(BUILD)

demo: all
	tools/demo.sh $(BUILD)

FORMAT_FILES = $(shell git ls-files '*.c' '*.h' 2>/dev/null)
format:
	clang-format -i $(FORMAT_FILES)
format-check:
	@clang-format --dry-run --Werror $(FORMAT_FILES) && echo "format ok"

clean:
	rm -rf build bin

-include $(shell find build -name '*.d' 2>/dev/null)
