/* The benchmark's latency histogram (hist.h): log-linear buckets, percentiles from the bucket bounds. */
#include <string.h>
#include <time.h>

#include "proto/base/clock.h"
#include "bench/common/hist.h"

_Static_assert(HIST_SUB_COUNT == 128, "sub-buckets per power of two set the 0.8% precision promised in hist.h");

void hist_init(struct hist *h)
{
	memset(h, 0, sizeof(*h));
	h->min_ns = UINT64_MAX;
}

/* Values below 128 ns have one bucket each; above, the magnitude (position of the top bit) picks a row of 128
 * buckets and the next 7 bits the bucket in it. */
static uint32_t bucket_of(uint64_t ns)
{
	uint32_t magnitude;

	if (ns < HIST_SUB_COUNT)
		return (uint32_t)ns;
	magnitude = 63u - (uint32_t)__builtin_clzll(ns) - HIST_SUB_BITS + 1;
	if (magnitude > HIST_MAGNITUDES)
		return HIST_BUCKET_COUNT - 1;
	return magnitude * HIST_SUB_COUNT + (uint32_t)((ns >> (magnitude - 1)) & (HIST_SUB_COUNT - 1));
}

/* The largest value that falls in bucket b. */
static uint64_t bucket_upper_ns(uint32_t b)
{
	uint32_t magnitude = b / HIST_SUB_COUNT, sub = b % HIST_SUB_COUNT;

	if (magnitude == 0)
		return sub;
	return (((uint64_t)(HIST_SUB_COUNT + sub) + 1) << (magnitude - 1)) - 1;
}

void hist_add(struct hist *h, uint64_t ns)
{
	h->buckets[bucket_of(ns)]++;
	h->count++;
	h->sum_ns += (double)ns;
	if (ns < h->min_ns)
		h->min_ns = ns;
	if (ns > h->max_ns)
		h->max_ns = ns;
}

void hist_merge(struct hist *into, const struct hist *from)
{
	for (uint32_t i = 0; i < HIST_BUCKET_COUNT; i++)
		into->buckets[i] += from->buckets[i];
	into->count += from->count;
	into->sum_ns += from->sum_ns;
	if (from->min_ns < into->min_ns)
		into->min_ns = from->min_ns;
	if (from->max_ns > into->max_ns)
		into->max_ns = from->max_ns;
}

uint64_t hist_quantile_ns(const struct hist *h, double q)
{
	uint64_t rank, seen = 0;

	if (h->count == 0)
		return 0;
	/* The sample of rank ceil(q * count), counting from 1: p50 of 1..100 is 50, p99.9 of 1000 is the 999th. */
	rank = (uint64_t)(q * (double)h->count + 0.999999);
	if (rank < 1)
		rank = 1;
	if (rank > h->count)
		rank = h->count;
	for (uint32_t b = 0; b < HIST_BUCKET_COUNT; b++) {
		seen += h->buckets[b];
		if (seen >= rank) {
			uint64_t v = bucket_upper_ns(b);

			return v > h->max_ns ? h->max_ns : v;
		}
	}
	return h->max_ns;
}

void hist_print_json(FILE *out, const struct hist *h)
{
	fprintf(out,
	        "\"count\":%llu,\"mean_us\":%.3f,\"min_us\":%.3f,\"p50_us\":%.3f,\"p90_us\":%.3f,\"p99_us\":%.3f,"
	        "\"p999_us\":%.3f,\"max_us\":%.3f",
	        (unsigned long long)h->count, h->count ? h->sum_ns / (double)h->count / 1e3 : 0.0,
	        h->count ? (double)h->min_ns / 1e3 : 0.0, (double)hist_quantile_ns(h, 0.50) / 1e3,
	        (double)hist_quantile_ns(h, 0.90) / 1e3, (double)hist_quantile_ns(h, 0.99) / 1e3,
	        (double)hist_quantile_ns(h, 0.999) / 1e3, (double)h->max_ns / 1e3);
}
