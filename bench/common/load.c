/* The pieces every load generator of the benchmark shares (load.h): values, CPU time, pacing, peer options and
 * the close of a peer's JSON result. */
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "proto/base/clock.h"
#include "bench/common/load.h"

void bench_fill_value(uint8_t *buf, size_t len, uint64_t seed)
{
	uint64_t x = seed * 0x9e3779b97f4a7c15ull + 1;

	for (size_t i = 0; i < len; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		buf[i] = (uint8_t)('a' + x % 26);
	}
}

double bench_cpu_s(void)
{
	struct rusage self, children;

	getrusage(RUSAGE_SELF, &self);
	getrusage(RUSAGE_CHILDREN, &children);
	return (double)(self.ru_utime.tv_sec + self.ru_stime.tv_sec + children.ru_utime.tv_sec +
	                children.ru_stime.tv_sec) +
	       (double)(self.ru_utime.tv_usec + self.ru_stime.tv_usec + children.ru_utime.tv_usec +
	                children.ru_stime.tv_usec) /
	               1e6;
}

int64_t bench_intended_ns(int64_t t0_ns, uint64_t i, double rate)
{
	return t0_ns + (int64_t)((double)i * 1e9 / rate);
}

int64_t bench_pace_wait_ns(int64_t t0_ns, uint64_t i, double rate, uint32_t tick_us, int64_t tick_start_ns)
{
	int64_t now = sl_clock_mono_ns();
	int64_t wait_ns = bench_intended_ns(t0_ns, i, rate) - now;
	int64_t tick_left_ns = (int64_t)tick_us * 1000 - (now - tick_start_ns);

	return wait_ns < tick_left_ns ? tick_left_ns : wait_ns;
}

void bench_peer_longs(const struct option *own, size_t count, struct option *out)
{
	static const struct option shared[BENCH_PEER_LONGS_COUNT] = {
	        {"record-bytes", required_argument, NULL, BENCH_OPT_RECORD_BYTES},
	        {"count", required_argument, NULL, BENCH_OPT_COUNT},
	        {"one-at-a-time", no_argument, NULL, BENCH_OPT_ONE_AT_A_TIME},
	        {"rate", required_argument, NULL, BENCH_OPT_RATE},
	        {"duration-s", required_argument, NULL, BENCH_OPT_DURATION},
	        {"warmup-s", required_argument, NULL, BENCH_OPT_WARMUP},
	        {"tick-us", required_argument, NULL, BENCH_OPT_TICK},
	        {"label", required_argument, NULL, BENCH_OPT_LABEL},
	        {"json", required_argument, NULL, BENCH_OPT_JSON},
	        {"help", no_argument, NULL, 'h'},
	};

	memcpy(out, own, count * sizeof(*own));
	memcpy(out + count, shared, sizeof(shared));
	memset(&out[count + BENCH_PEER_LONGS_COUNT], 0, sizeof(*out));
}

void bench_peer_options_init(struct bench_peer_options *o)
{
	memset(o, 0, sizeof(*o));
	o->record_bytes = 100;
	o->count = 1000000;
	o->duration_s = 10;
	o->warmup_s = 1;
	o->tick_us = 100;
}

bool bench_peer_option(struct bench_peer_options *o, int c, const char *arg)
{
	switch (c) {
	case BENCH_OPT_RECORD_BYTES:
		o->record_bytes = (uint32_t)strtoul(arg, NULL, 10);
		return true;
	case BENCH_OPT_COUNT:
		o->count = strtoull(arg, NULL, 10);
		return true;
	case BENCH_OPT_ONE_AT_A_TIME:
		o->one_at_a_time = true;
		return true;
	case BENCH_OPT_RATE:
		o->rate = strtod(arg, NULL);
		return true;
	case BENCH_OPT_DURATION:
		o->duration_s = strtod(arg, NULL);
		return true;
	case BENCH_OPT_WARMUP:
		o->warmup_s = strtod(arg, NULL);
		return true;
	case BENCH_OPT_TICK:
		o->tick_us = (uint32_t)strtoul(arg, NULL, 10);
		return true;
	case BENCH_OPT_LABEL:
		o->label = arg;
		return true;
	case BENCH_OPT_JSON:
		o->json_path = arg;
		return true;
	default:
		return false;
	}
}

FILE *bench_json_open(const char *tool, const char *json_path)
{
	FILE *out = json_path ? fopen(json_path, "w") : stdout;

	if (out == NULL)
		fprintf(stderr, "%s: cannot write %s\n", tool, json_path);
	return out;
}

void bench_json_throughput(FILE *out, uint64_t records, int64_t elapsed_ns, uint32_t record_bytes, double cpu_s)
{
	double seconds = (double)elapsed_ns / 1e9;

	fprintf(out, ",\"records\":%llu,\"seconds\":%.6f,\"records_per_s\":%.1f,\"mb_per_s\":%.3f,\"cpu_s\":%.3f",
	        (unsigned long long)records, seconds, seconds > 0 ? (double)records / seconds : 0,
	        seconds > 0 ? (double)records * record_bytes / seconds / 1e6 : 0, cpu_s);
}

void bench_peer_json_close(FILE *out, const char *mode, const struct bench_peer_options *o, uint64_t sent,
                           uint64_t received, const struct hist *ack, const struct hist *e2e, const char *error)
{
	if (strcmp(mode, "latency") == 0)
		fprintf(out, ",\"rate\":%.1f,\"duration_s\":%.3f,\"sent\":%llu,\"received\":%llu", o->rate,
		        o->duration_s, (unsigned long long)sent, (unsigned long long)received);
	fputs(",\"ack_latency\":{", out);
	hist_print_json(out, ack);
	fputs("},\"e2e_latency\":{", out);
	hist_print_json(out, e2e);
	if (error[0])
		fprintf(out, "},\"error\":\"%s\"}\n", error);
	else
		fputs("},\"error\":null}\n", out);
	if (out != stdout)
		fclose(out);
}
