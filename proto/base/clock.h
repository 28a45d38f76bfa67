/* The one clock helper. Wall-clock milliseconds are what records, commits and retention carry (they cross
 * processes and restarts); the monotonic clock measures waits and timeouts inside one process, where a wall-clock
 * step (NTP, an operator) must not fire or stall a timer. */
#ifndef SL_BASE_CLOCK_H
#define SL_BASE_CLOCK_H

#include <stdint.h>
#include <time.h>

/* Milliseconds since the Unix epoch (CLOCK_REALTIME). */
static inline int64_t sl_clock_wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Nanoseconds of CLOCK_MONOTONIC: only differences mean anything. */
static inline int64_t sl_clock_mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static inline int64_t sl_clock_mono_ms(void)
{
	return sl_clock_mono_ns() / 1000000;
}

#endif
