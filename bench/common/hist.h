/* A latency histogram shared by every load generator of the benchmark (synclog-bench, nats-bench, redis-bench), so
 * that each system's percentiles come from the same buckets and the same arithmetic. Log-linear buckets, in the
 * manner of HdrHistogram: 128 sub-buckets per power of two, so a percentile is exact to within 1/128 (0.8%). */
#ifndef SL_BENCH_HIST_H
#define SL_BENCH_HIST_H

#include <stdint.h>
#include <stdio.h>

/* Values are nanoseconds. 2^40 ns is 18 minutes: longer than any run, so no sample is clipped. */
#define HIST_SUB_BITS     7
#define HIST_SUB_COUNT    (1u << HIST_SUB_BITS)
#define HIST_MAGNITUDES   (40 - HIST_SUB_BITS + 1)
#define HIST_BUCKET_COUNT (HIST_MAGNITUDES * HIST_SUB_COUNT + HIST_SUB_COUNT)

struct hist {
	uint64_t count;
	uint64_t min_ns;
	uint64_t max_ns;
	double sum_ns;
	uint64_t buckets[HIST_BUCKET_COUNT];
};

void hist_init(struct hist *h);
/* Record one value; values past 2^40 ns land in the last bucket (max_ns keeps the exact value). */
void hist_add(struct hist *h, uint64_t ns);
/* Add every sample of from into into. */
void hist_merge(struct hist *into, const struct hist *from);
/* The value at quantile q (0..1): the upper bound of the bucket that holds it, never above max_ns. 0 when empty. */
uint64_t hist_quantile_ns(const struct hist *h, double q);
/* Print the summary as JSON members (no braces): "count":N,"mean_us":..,"p50_us":..,"p90_us":..,"p99_us":..,
 * "p999_us":..,"max_us":.. */
void hist_print_json(FILE *out, const struct hist *h);

/* Every latency here is measured with sl_clock_mono_ns (proto/base/clock.h): system-wide, so two processes on
 * the machine can compare their readings. */
#include "proto/base/clock.h"

#endif
