/* The io_uring of one shard: prepares SQEs during a pass, submits them once, reaps completions in a batch and
 * dispatches each to the sl_io its user_data points at. See ring.h for the contract. */
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "proto/base/assert.h"
#include "broker/storage/ring.h"

int sl_ring_init(struct sl_ring *ring, int with_eventfd)
{
	memset(ring, 0, sizeof(*ring));
	ring->event_fd = -1;
	/* A completion queue 16 times the submission queue: completions of many passes can wait for one reap
	 * without the kernel refusing submissions (-EBUSY), which would force a reap inside an append. */
	struct io_uring_params params;
	memset(&params, 0, sizeof(params));
	params.flags = IORING_SETUP_CQSIZE;
	params.cq_entries = SL_RING_ENTRIES * 16;
	int rc = io_uring_queue_init_params(SL_RING_ENTRIES, &ring->uring, &params);
	if (rc < 0)
		return rc;
	if (with_eventfd) {
		ring->event_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		if (ring->event_fd < 0) {
			rc = -errno;
			io_uring_queue_exit(&ring->uring);
			return rc;
		}
		rc = io_uring_register_eventfd(&ring->uring, ring->event_fd);
		if (rc < 0) {
			close(ring->event_fd);
			io_uring_queue_exit(&ring->uring);
			return rc;
		}
	}
	return 0;
}

void sl_ring_close(struct sl_ring *ring)
{
	/* Completions still owed would point at memory the owners are about to free: owners drain first. */
	SL_ASSERT(ring->inflight_count == 0);
	if (ring->event_fd >= 0)
		close(ring->event_fd);
	io_uring_queue_exit(&ring->uring);
	ring->event_fd = -1;
}

int sl_ring_submit(struct sl_ring *ring)
{
	if (io_uring_sq_ready(&ring->uring) == 0)
		return 0;
	int rc;
	do {
		rc = io_uring_submit(&ring->uring);
	} while (rc == -EINTR);
	ring->submit_seq++;
	return rc;
}

struct io_uring_sqe *sl_ring_get_sqe(struct sl_ring *ring, struct sl_io *io)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&ring->uring);
	while (sqe == NULL) {
		/* The SQ is full: send what is queued. If the kernel cannot take more (CQ overflow protection),
		 * reap to make room; callbacks may run here, which every owner must allow. */
		int rc = sl_ring_submit(ring);
		if (rc == -EBUSY || rc == -EAGAIN)
			sl_ring_wait(ring);
		else
			SL_ASSERT(rc >= 0);
		sqe = io_uring_get_sqe(&ring->uring);
	}
	io_uring_sqe_set_data(sqe, io);
	ring->inflight_count++;
	return sqe;
}

unsigned sl_ring_sq_space(const struct sl_ring *ring)
{
	return io_uring_sq_space_left(&ring->uring);
}

int sl_ring_reap(struct sl_ring *ring)
{
	int reaped = 0;
	if (ring->event_fd >= 0) {
		uint64_t v;
		/* Drain before reaping: a completion arriving after the drain re-arms the eventfd. */
		ssize_t n = read(ring->event_fd, &v, sizeof(v));
		(void)n;
	}
	for (;;) {
		struct io_uring_cqe *cqe;
		unsigned head;
		unsigned count = 0;
		/* Copy the batch out before running callbacks: a callback may prepare and submit new work. */
		struct {
			struct sl_io *io;
			int res;
		} done[64];
		io_uring_for_each_cqe(&ring->uring, head, cqe)
		{
			done[count].io = io_uring_cqe_get_data(cqe);
			done[count].res = cqe->res;
			if (++count == 64)
				break;
		}
		if (count == 0) {
			/* Completions past the CQ's size wait in the kernel's overflow list, and reaching the CQ from
			 * there signals no eventfd: fetch them now, or they would wait for an unrelated completion (a
			 * burst of thousands of fetch reads stalled their requests for good). */
			if (!io_uring_cq_has_overflow(&ring->uring) || io_uring_get_events(&ring->uring) < 0)
				break;
			continue;
		}
		io_uring_cq_advance(&ring->uring, count);
		SL_ASSERT(ring->inflight_count >= count);
		ring->inflight_count -= count;
		for (unsigned i = 0; i < count; i++) {
			SL_ASSERT(done[i].io != NULL && done[i].io->done_cb != NULL);
			done[i].io->done_cb(done[i].io, done[i].res);
		}
		reaped += (int)count;
	}
	/* Callbacks queue follow-up work (requeued short writes, the next group commit): send it now. */
	int rc = sl_ring_submit(ring);
	if (rc < 0)
		return rc;
	return reaped;
}

int sl_ring_wait(struct sl_ring *ring)
{
	int rc = sl_ring_submit(ring);
	if (rc < 0)
		return rc;
	if (ring->inflight_count == 0)
		return 0;
	struct io_uring_cqe *cqe;
	do {
		rc = io_uring_wait_cqe(&ring->uring, &cqe);
	} while (rc == -EINTR);
	if (rc < 0)
		return rc;
	return sl_ring_reap(ring);
}
