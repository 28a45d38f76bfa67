/* The io_uring of one shard: every segment write and fsync of the partitions a shard owns goes through here.
 * Work is prepared during a loop pass and submitted once at its end (sl_ring_submit); completions are reaped in
 * a batch and each is handed to the callback stored in its sl_io (user_data carries the sl_io pointer).
 *
 * Which thread may call: only the shard's own thread. Nothing here blocks except sl_ring_wait. */
#ifndef SL_BROKER_RING_H
#define SL_BROKER_RING_H

#include <liburing.h>
#include <stdint.h>

/* Submission queue depth. 256 entries hold the writes and fsyncs of many partitions in one pass; a pass that
 * needs more submits early and goes on (sl_ring_get_sqe), so the depth bounds memory, not throughput. */
#define SL_RING_ENTRIES 256

struct sl_io;
/* res is the CQE result: bytes transferred or a negative errno. */
typedef void (*sl_io_cb)(struct sl_io *io, int res);

/* Embedded by the owner of an I/O (a write op, an fsync op); must stay alive until its callback ran. */
struct sl_io {
	sl_io_cb done_cb;
};

struct sl_ring {
	struct io_uring uring;
	int event_fd;            /* readable when completions are waiting; -1 if not requested */
	uint32_t inflight_count; /* SQEs prepared or submitted whose CQE has not been reaped */
	uint64_t submit_seq;     /* bumped by every submit: an SQE prepared at the current seq is still editable */
};

/* Create the ring. With_eventfd != 0 also registers an eventfd that becomes readable on completions, for an
 * event loop to watch. Returns 0 or a negative errno. */
int sl_ring_init(struct sl_ring *ring, int with_eventfd);
void sl_ring_close(struct sl_ring *ring);
/* An SQE for io, with user_data set. Submits what is queued when the SQ is full. Never returns NULL: when even
 * a submit cannot free a slot it waits for completions (only possible with SL_RING_ENTRIES in flight). */
struct io_uring_sqe *sl_ring_get_sqe(struct sl_ring *ring, struct sl_io *io);
/* SQEs that can be prepared before a submit is forced: a linked pair must not be split by one. */
unsigned sl_ring_sq_space(const struct sl_ring *ring);
/* Submit everything prepared. Returns the number submitted or a negative errno. */
int sl_ring_submit(struct sl_ring *ring);
/* Run the callbacks of every completion available now; returns how many ran. Drains the eventfd. */
int sl_ring_reap(struct sl_ring *ring);
/* Submit, then block until at least one completion arrives, then reap. Returns the number reaped, 0 when
 * nothing is in flight, or a negative errno. For tests, tools and shutdown; the event loop uses the eventfd. */
int sl_ring_wait(struct sl_ring *ring);

#endif
