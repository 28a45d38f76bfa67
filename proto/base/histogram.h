/* Latency histograms in Prometheus's shape: fixed bucket bounds from 100 us to 10 s, a count per bucket (not
 * cumulative: the renderer adds them up), the count and the sum. Observing is a short scan and three additions:
 * no allocation, no system call, cheap enough for every request and every fdatasync.
 *
 * Which thread may call: the one that owns the histogram (the shard's loop thread for the broker's). */
#ifndef SL_BASE_HISTOGRAM_H
#define SL_BASE_HISTOGRAM_H

#include <stdint.h>

#define SL_HISTOGRAM_BUCKETS 16

/* Upper bounds in nanoseconds; the renderer prints them in seconds ("le" labels). From a fast request on
 * loopback (~100 us) to a stuck disk (10 s), roughly 2.5x apart. */
static const int64_t sl_histogram_bounds_ns[SL_HISTOGRAM_BUCKETS] = {
        100000,   250000,    500000,    1000000,   2500000,    5000000,    10000000,   25000000,
        50000000, 100000000, 250000000, 500000000, 1000000000, 2500000000, 5000000000, 10000000000,
};

struct sl_histogram {
	uint64_t counts[SL_HISTOGRAM_BUCKETS + 1]; /* the last: above the largest bound (+Inf) */
	uint64_t count;
	int64_t sum_ns;
};

static inline void sl_histogram_observe_ns(struct sl_histogram *h, int64_t ns)
{
	uint32_t i = 0;
	if (ns < 0)
		ns = 0;
	while (i < SL_HISTOGRAM_BUCKETS && ns > sl_histogram_bounds_ns[i])
		i++;
	h->counts[i]++;
	h->count++;
	h->sum_ns += ns;
}

#endif
