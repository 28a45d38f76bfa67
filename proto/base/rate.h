/* The one token bucket: the backfill client's --rate and --rate-bytes and the broker's per-topic backfill quota
 * (synclogd --backfill-rate-max) pace with it. It reads no clock: the caller passes the time, so the broker can
 * hand it the loop's cached time (no system call per request) and tests can hand it any time.
 *
 * Semantics: tokens flow in at per_s per second up to burst. sl_rate_take removes n tokens at once, even when
 * fewer are there; the balance then goes negative (a debt) and the call says how long the caller must wait until
 * the debt is paid. A caller that waits that long before going on (the client sleeps, the broker delays the
 * response) moves at per_s on average, whatever the size of its steps.
 *
 * Invariants:
 *   1. tokens <= burst at all times.
 *   2. A bucket starts empty, so the first second moves at per_s too: no burst at the start (a rate measured from
 *      the first record on is per_s, not per_s plus burst).
 *   3. per_s == 0 means unlimited: take never asks to wait. */
#ifndef SL_BASE_RATE_H
#define SL_BASE_RATE_H

#include <stdint.h>

struct sl_rate {
	double per_s;
	double burst;
	double tokens;
	int64_t last_ns;
};

static inline void sl_rate_init(struct sl_rate *r, double per_s, double burst, int64_t now_ns)
{
	r->per_s = per_s > 0 ? per_s : 0;
	r->burst = burst > 0 ? burst : 0;
	r->tokens = 0;
	r->last_ns = now_ns;
}

/* Take n tokens at now_ns; returns the nanoseconds to wait before what they pay for may happen (0: at once). */
static inline int64_t sl_rate_take(struct sl_rate *r, double n, int64_t now_ns)
{
	double wait_ns;

	if (r->per_s == 0)
		return 0;
	if (now_ns > r->last_ns) {
		r->tokens += (double)(now_ns - r->last_ns) * r->per_s / 1e9;
		if (r->tokens > r->burst)
			r->tokens = r->burst;
		r->last_ns = now_ns;
	}
	r->tokens -= n;
	if (r->tokens >= 0)
		return 0;
	wait_ns = -r->tokens * 1e9 / r->per_s;
	return wait_ns >= 9e18 ? INT64_MAX : (int64_t)wait_ns + 1;
}

#endif
