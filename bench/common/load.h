/* What every load generator of the benchmark (synclog-bench, nats-bench, redis-bench) does the same way, so that a
 * difference in their figures comes from the system measured and never from the client: record values that do
 * not compress, CPU time, the pacing of the latency mode, and for the two peers the options they share and the
 * closing members of their JSON result. */
#ifndef SL_BENCH_LOAD_H
#define SL_BENCH_LOAD_H

#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "bench/common/hist.h"

/* Fill buf[0..len) with bytes that do not compress (a fixed xorshift stream of printable letters, so a record can
 * be looked at with `synclog consume`), the same in every run for the same seed. */
void bench_fill_value(uint8_t *buf, size_t len, uint64_t seed);
/* CPU seconds, user and system, of this process and the children it waited for (synclog-bench's producer
 * processes; the peers have none, so for them it is their own). */
double bench_cpu_s(void);

/* Latency mode sends record i at its intended time t0_ns + i / rate. */
int64_t bench_intended_ns(int64_t t0_ns, uint64_t i, double rate);
/* How long a paced sender that woke at tick_start_ns sleeps before record i is due: until its intended time, but
 * at least to the end of the tick, so the sender wakes at most once per tick_us. Zero or less: it is due now. */
int64_t bench_pace_wait_ns(int64_t t0_ns, uint64_t i, double rate, uint32_t tick_us, int64_t tick_start_ns);

/* The options both peer clients (nats-bench, redis-bench) take under the same names, with the same defaults. */
struct bench_peer_options {
	const char *label;
	const char *json_path; /* NULL: stdout */
	uint32_t record_bytes;
	uint64_t count;
	bool one_at_a_time;
	double rate;       /* latency mode: messages per second offered */
	double duration_s; /* latency mode: how long to offer load */
	double warmup_s;   /* latency mode: samples of this first part are not counted */
	/* Latency mode: the sender wakes at most once per tick and sends every message that is due, each stamped
	 * with its intended time (as synclog-bench --tick-us does). */
	uint32_t tick_us;
};

/* The getopt_long values of the shared options; a peer's own options use other values. */
enum {
	BENCH_OPT_RECORD_BYTES = 'b',
	BENCH_OPT_COUNT = 'n',
	BENCH_OPT_ONE_AT_A_TIME = '1',
	BENCH_OPT_RATE = 'r',
	BENCH_OPT_DURATION = 'd',
	BENCH_OPT_WARMUP = 'W',
	BENCH_OPT_TICK = 'T',
	BENCH_OPT_LABEL = 'l',
	BENCH_OPT_JSON = 'j',
};

/* The shared options' getopt_long entries and --help ('h', which each peer answers with its own usage). */
#define BENCH_PEER_LONGS_COUNT 10
/* A peer's getopt_long table: its own count entries, then the shared ones, then the terminator; out holds
 * count + BENCH_PEER_LONGS_COUNT + 1 entries. */
void bench_peer_longs(const struct option *own, size_t count, struct option *out);
/* The defaults: 100-byte records, a million of them, 10 s of latency load after 1 s of warm-up, 100 us ticks. */
void bench_peer_options_init(struct bench_peer_options *o);
/* Take option c (a getopt_long value) with its argument when it is a shared one: true, or false when it is not. */
bool bench_peer_option(struct bench_peer_options *o, int c, const char *arg);

/* Open the result file (stdout without --json); NULL with a message naming the tool when it cannot be written. */
FILE *bench_json_open(const char *tool, const char *json_path);
/* The throughput members of a result, each after a comma: "records", "seconds", "records_per_s", "mb_per_s" (of
 * record_bytes values) and "cpu_s". */
void bench_json_throughput(FILE *out, uint64_t records, int64_t elapsed_ns, uint32_t record_bytes, double cpu_s);
/* Close the result of a peer: the latency mode's counts, both histograms and the error (or null), then the file
 * (unless it is stdout). */
void bench_peer_json_close(FILE *out, const char *mode, const struct bench_peer_options *o, uint64_t sent,
                           uint64_t received, const struct hist *ack, const struct hist *e2e, const char *error);

#endif
