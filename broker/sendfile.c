/* Answers sent from segment files to sockets through a pipe, by io_uring splices: see sendfile.h for the journey
 * of an answer and its invariants. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "broker/sendfile.h"
#include "broker/shard.h"
#include "proto/base/assert.h"

enum { OP_NONE, OP_FILL, OP_WAIT, OP_END };

/* cachestat(2), Linux 6.5: the same number on every architecture; older headers do not name it. */
#ifdef __NR_cachestat
#define SL_NR_CACHESTAT __NR_cachestat
#else
#define SL_NR_CACHESTAT 451
#endif

void sl_sendfile_pool_init(struct sl_sendfile_pool *p)
{
	memset(p, 0, sizeof(*p));
	long page = sysconf(_SC_PAGESIZE);
	p->page_bytes = page > 0 ? (uint64_t)page : 4096;
}

void sl_sendfile_pool_free(struct sl_sendfile_pool *p)
{
	while (p->idle_count > 0) {
		p->idle_count--;
		close(p->pipes[p->idle_count][0]);
		close(p->pipes[p->idle_count][1]);
	}
}

int sl_sendfile_reserve(struct sl_sendfile_pool *p, uint32_t file_count)
{
	uint32_t fds = file_count + 1; /* the files and the socket's dup */
	if (p->answers >= SL_SENDFILE_PIPES_MAX || fds > SL_SENDFILE_HELD_FDS_MAX - p->held_fds)
		return -EAGAIN;
	p->answers++;
	p->held_fds += fds;
	return 0;
}

int sl_sendfile_reserve_more(struct sl_sendfile_pool *p, uint32_t file_count)
{
	SL_ASSERT(p->answers > 0);
	if (file_count > SL_SENDFILE_HELD_FDS_MAX - p->held_fds)
		return -EAGAIN;
	p->held_fds += file_count;
	return 0;
}

void sl_sendfile_unreserve(struct sl_sendfile_pool *p, uint32_t file_count)
{
	uint32_t fds = file_count + 1;
	SL_ASSERT(p->answers > 0 && p->held_fds >= fds);
	p->answers--;
	p->held_fds -= fds;
}

/* An idle pipe, or a new one (within the reservation: answers <= SL_SENDFILE_PIPES_MAX pipes exist). */
static int pipe_take(struct sl_sendfile_pool *p, int fds_out[2], uint32_t *bytes_out)
{
	if (p->idle_count > 0) {
		p->idle_count--;
		fds_out[0] = p->pipes[p->idle_count][0];
		fds_out[1] = p->pipes[p->idle_count][1];
		*bytes_out = p->pipe_bytes[p->idle_count];
		return 0;
	}
	if (pipe2(fds_out, O_NONBLOCK | O_CLOEXEC) < 0)
		return -errno;
	int size = fcntl(fds_out[1], F_SETPIPE_SZ, (int)SL_SENDFILE_PIPE_BYTES);
	if (size < 0)
		size = fcntl(fds_out[1], F_GETPIPE_SZ);
	*bytes_out = size > 0 ? (uint32_t)size : 65536u;
	return 0;
}

/* Invariant 2: only an empty pipe is kept. */
static void pipe_give(struct sl_sendfile_pool *p, int r, int w, uint32_t bytes, int empty)
{
	if (empty && p->idle_count < SL_SENDFILE_PIPES_MAX) {
		p->pipes[p->idle_count][0] = r;
		p->pipes[p->idle_count][1] = w;
		p->pipe_bytes[p->idle_count] = bytes;
		p->idle_count++;
		return;
	}
	close(r);
	close(w);
}

static void parts_close(struct sl_sendfile *sf)
{
	for (uint32_t i = 0; i < sf->part_count; i++) {
		if (sf->parts[i].mem == NULL && sf->parts[i].fd >= 0) {
			close(sf->parts[i].fd);
			sf->parts[i].fd = -1;
		}
	}
}

/* n bytes of the current part went into the pipe. */
static void filled(struct sl_sendfile *sf, uint64_t n)
{
	sf->pipe_held += n;
	sf->part_done += n;
	if (sf->part_done == sf->parts[sf->part_index].len) {
		sf->part_index++;
		sf->part_done = 0;
	}
}

static void finish(struct sl_sendfile *sf, int status)
{
	struct sl_sendfile_pool *p = sf->pool;
	parts_close(sf);
	close(sf->sock_fd);
	pipe_give(p, sf->pipe_r, sf->pipe_w, sf->pipe_cap, sf->pipe_held == 0 && status == 0);
	sl_sendfile_unreserve(p, sf->reserved_fds - 1);
	sf->op = OP_NONE;
	sf->done_cb(sf, status);
}

static void step(struct sl_sendfile *sf);

/* The SQE of sf's next operation. Getting one may reap completions (ring.h), among them one that closes the
 * connection and aborts sf: then NULL, with a no-op in its place whose completion finishes sf. */
static struct io_uring_sqe *next_sqe(struct sl_sendfile *sf, int op)
{
	struct io_uring_sqe *sqe = sl_ring_get_sqe(sf->ring, &sf->io);
	sf->op = op;
	if (sf->aborted) {
		io_uring_prep_nop(sqe);
		return NULL;
	}
	return sqe;
}

/* The answer is over (status 0: every byte is in the socket): finish at the completion of a no-op, so that done_cb
 * never runs inside sl_sendfile_start (invariant 4) nor inside a step the owner called. */
static void end(struct sl_sendfile *sf, int status)
{
	sf->status = status;
	struct io_uring_sqe *sqe = sl_ring_get_sqe(sf->ring, &sf->io);
	sf->op = OP_END;
	io_uring_prep_nop(sqe);
}

static void op_done_cb(struct sl_io *io, int res)
{
	struct sl_sendfile *sf = (struct sl_sendfile *)io;
	int op = sf->op;
	sf->op = OP_NONE;
	if (op == OP_END) {
		finish(sf, sf->status);
		return;
	}
	if (sf->aborted) {
		finish(sf, -ECANCELED);
		return;
	}
	switch (op) {
	case OP_FILL:
		if (res == -EAGAIN) {
			/* The pipe's slots are used up before its bytes (partial pages): send what is there. */
			sf->pipe_full = 1;
		} else if (res <= 0) {
			/* 0: the file ends before the span does, which only recovery could do; the frame's length is
			 * already promised, so the stream cannot go on. */
			finish(sf, res < 0 ? res : -EIO);
			return;
		} else {
			filled(sf, (uint64_t)res);
		}
		break;
	case OP_WAIT:
		if (res < 0) {
			finish(sf, res);
			return;
		}
		if (res & (POLLERR | POLLHUP) && !(res & POLLOUT)) {
			finish(sf, -EPIPE);
			return;
		}
		break;
	default:
		SL_ASSERT(!"a completion of no operation");
	}
	step(sf);
}

/* Pipe -> socket, on the loop: both are non-blocking and the pages only change hands, so this never waits.
 * Returns 1 to go on, 0 when an operation was submitted or the answer ended. */
static int drain(struct sl_sendfile *sf, int more)
{
	ssize_t n = splice(sf->pipe_r, NULL, sf->sock_fd, NULL, (size_t)sf->pipe_held,
	                   SPLICE_F_NONBLOCK | (more ? SPLICE_F_MORE : 0));
	if (n > 0) {
		SL_ASSERT((uint64_t)n <= sf->pipe_held);
		sf->pipe_held -= (uint64_t)n;
		sf->pipe_full = 0;
		return 1;
	}
	if (n < 0 && errno == EINTR)
		return 1;
	if (n < 0 && errno == EAGAIN) {
		/* The socket's buffer is full: wait for the client to read, without spinning. */
		struct io_uring_sqe *sqe = next_sqe(sf, OP_WAIT);
		if (sqe != NULL)
			io_uring_prep_poll_add(sqe, sf->sock_fd, POLLOUT);
		return 0;
	}
	end(sf, n < 0 ? -errno : -EPIPE);
	return 0;
}

/* 1 when every page of [pos, pos + len) of fd is in the page cache (cachestat, Linux 6.5), so a splice of it on
 * the loop takes no disk read; 0 when some is not, or the kernel cannot say. */
static int resident(struct sl_sendfile_pool *p, int fd, uint64_t pos, uint64_t len)
{
	if (p->cachestat_missing)
		return 0;
	struct {
		uint64_t off, len;
	} range = {pos, len};
	struct {
		uint64_t nr_cache, nr_dirty, nr_writeback, nr_evicted, nr_recently_evicted;
	} cs;
	if (syscall(SL_NR_CACHESTAT, fd, &range, &cs, 0) < 0) {
		p->cachestat_missing = errno == ENOSYS;
		return 0;
	}
	uint64_t pages = (pos + len + p->page_bytes - 1) / p->page_bytes - pos / p->page_bytes;
	return cs.nr_cache >= pages;
}

/* File -> pipe. Resident pages are spliced on the loop (the pipe is non-blocking: a full one says EAGAIN); pages
 * that must come from the disk are spliced by io_uring, whose io-wq worker waits for them instead of the loop. A
 * page evicted between the check and the splice is read on the loop: a race of microseconds against memory
 * pressure, accepted rather than sending every fill through io-wq (a thread round trip each).
 * Returns 1 to go on, 0 when an operation was submitted or the answer ended. */
static int fill_file(struct sl_sendfile *sf, const struct sl_sendfile_part *part, uint64_t want)
{
	int64_t at = (int64_t)(part->pos + sf->part_done);
	if (!resident(sf->pool, part->fd, (uint64_t)at, want)) {
		struct io_uring_sqe *sqe = next_sqe(sf, OP_FILL);
		if (sqe != NULL)
			io_uring_prep_splice(sqe, part->fd, at, sf->pipe_w, -1, (unsigned)want, SPLICE_F_MOVE);
		sf->ring_fills++;
		return 0;
	}
	loff_t off = (loff_t)at;
	ssize_t n = splice(part->fd, &off, sf->pipe_w, NULL, (size_t)want, SPLICE_F_NONBLOCK | SPLICE_F_MOVE);
	if (n > 0) {
		filled(sf, (uint64_t)n);
		return 1;
	}
	if (n < 0 && errno == EINTR)
		return 1;
	if (n < 0 && errno == EAGAIN) {
		sf->pipe_full = 1; /* slots used up before bytes (partial pages) */
		return 1;
	}
	/* 0: the file ends before the span does (see op_done_cb). */
	end(sf, n < 0 ? -errno : -EIO);
	return 0;
}

/* Fill the pipe from the parts in order and drain it into the socket whenever it is full or every part is in it,
 * on the loop as long as nothing waits: a socket that is full, or pages that are not in memory, hand the next
 * move to the ring. Bounded: every pass moves bytes into the pipe or out of it, or returns; an empty pipe that
 * reports full (cannot happen) ends the answer rather than loop. */
static void step(struct sl_sendfile *sf)
{
	for (;;) {
		int more = sf->part_index < sf->part_count;
		if (!more && sf->pipe_held == 0) {
			end(sf, 0);
			return;
		}
		uint64_t room = sf->pipe_cap > sf->pipe_held ? sf->pipe_cap - sf->pipe_held : 0;
		if (!more || sf->pipe_full || room == 0) {
			if (sf->pipe_held == 0) {
				end(sf, -EIO);
				return;
			}
			if (!drain(sf, more))
				return;
			continue;
		}
		const struct sl_sendfile_part *part = &sf->parts[sf->part_index];
		uint64_t want = part->len - sf->part_done;
		if (want > room)
			want = room;
		if (part->mem == NULL) {
			if (!fill_file(sf, part, want))
				return;
			continue;
		}
		ssize_t n = write(sf->pipe_w, part->mem + sf->part_done, (size_t)want);
		if (n > 0) {
			filled(sf, (uint64_t)n);
		} else if (n < 0 && errno == EAGAIN) {
			sf->pipe_full = 1;
		} else if (!(n < 0 && errno == EINTR)) {
			end(sf, n < 0 ? -errno : -EIO); /* cannot happen to a pipe we hold both ends of */
			return;
		}
	}
}

int sl_sendfile_start(struct sl_sendfile *sf, struct sl_sendfile_pool *pool, struct sl_ring *ring, int sock_fd,
                      uint32_t file_count, sl_sendfile_done_cb done_cb)
{
	sf->io.done_cb = op_done_cb;
	sf->pool = pool;
	sf->ring = ring;
	sf->reserved_fds = file_count + 1;
	sf->done_cb = done_cb;
	sf->pipe_held = 0;
	sf->pipe_full = 0;
	sf->op = OP_NONE;
	sf->aborted = 0;
	sf->part_index = 0;
	sf->part_done = 0;
	sf->ring_fills = 0;
	int fds[2];
	int rc = 0;
	sf->sock_fd = fcntl(sock_fd, F_DUPFD_CLOEXEC, 0);
	if (sf->sock_fd < 0)
		rc = -errno;
	else if ((rc = pipe_take(pool, fds, &sf->pipe_cap)) < 0)
		close(sf->sock_fd);
	if (rc < 0) {
		parts_close(sf);
		sl_sendfile_unreserve(pool, file_count);
		return rc;
	}
	sf->pipe_r = fds[0];
	sf->pipe_w = fds[1];
	/* The first step always submits (there is at least a frame header to send), so done_cb never runs here. */
	SL_ASSERT(sf->part_count > 0);
	step(sf);
	SL_ASSERT(sf->op != OP_NONE);
	return 0;
}

/* A cancel's own completion: nothing to do, the cancelled operation completes on its own. */
static void cancel_done_cb(struct sl_io *io, int res)
{
	(void)io;
	(void)res;
}

static struct sl_io cancel_io = {.done_cb = cancel_done_cb};

void sl_sendfile_abort(struct sl_sendfile *sf)
{
	if (sf->aborted)
		return;
	sf->aborted = 1;
	/* A fill (a disk read at worst) and a drain (the socket is non-blocking) complete by themselves; a wait for
	 * the client to read may never. */
	if (sf->op == OP_WAIT)
		io_uring_prep_cancel(sl_ring_get_sqe(sf->ring, &cancel_io), &sf->io, 0);
}

void sl_sendfile_count(const struct sl_sendfile *sf, int status, struct sl_server_stats *st)
{
	st->fetch_sendfile_disk_splices += sf->ring_fills;
	if (status < 0) {
		st->fetch_sendfile_failed++;
		return;
	}
	st->fetch_sendfile_answers++;
	for (uint32_t i = 0; i < sf->part_count; i++)
		st->fetch_sendfile_bytes += sf->parts[i].len;
}
