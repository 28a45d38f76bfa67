/* Fetch: read whole batches as stored from each asked partition, up to the asked bytes, and
 * long-poll (park the request on its partitions until new records arrive or max_wait_ms passes) when fewer
 * than min_bytes are available.
 *
 * A fetch goes through two steps, and the loop never waits on the disk in either:
 *   1. plan:  for each partition, find the span of whole batches to send (sl_log_locate_cached: the in-memory
 *             index and a scan of a few batch headers near it, from the page cache; see cold data below) and add up the
 * bytes; no record is read. Parking and waking decide on these sums.
 *   2. read:  one io_uring read per partition span into the response's buffer, submitted at once (so that the
 *             kernel holds the segment file before anything on the loop can close its descriptor); the answer
 *             goes out when the last read completes. A cold segment is read by the kernel's workers while the
 *             loop serves everyone else. Each span is pinned (storage/log.h) just before its read is prepared
 *             and unpinned once it is submitted: preparing the next may otherwise close its file to make room
 *             (files.h). Reads are submitted early when the file cache is near its budget, so a fetch of
 *             thousands of partitions never needs more descriptors than the budget. The answer's bytes are held
 *             with the connection's (request.h, sl_req_hold) from then until it is sent.
 *      or, by reference: when the front end can send stored bytes from their files itself (request.h,
 *             files_reserve: a plaintext connection of either listener), nothing is read: each span's file is
 *             held by a descriptor of the request's own and the answer goes out at once, its records marking
 *             the spans; broker/sendfile.h moves the bytes from the page cache to the socket in the kernel.
 *             Answers to TLS connections, and spans of compacted segments, are read as above
 *             (fetch_by_reference says why).
 *
 * Cold data, planned off the loop: the plan finds spans from memory and the page cache only
 * (sl_log_locate_cached). A partition whose span needs a sealed segment's index loaded (the first fetch there
 * since the start) or batch headers read from the disk is cold: the request is parked (its cancel hook answers
 * or drops it when the client goes) while a job of the thread pool does that disk work (storage/log.h,
 * sl_log_warm_*: the log's descriptor dup'ed, the index files re-checked against the segment), then the loop
 * adopts the loaded index and plans again, which finds everything in memory now. A fetch of warm data never
 * leaves the loop. Rules:
 *   1. At most FETCH_WARMS_MAX requests have a warm-up in flight; past that a cold partition answers without
 *      records this time (no error: the consumer asks again, after its long poll when it has one), so a flood
 *      of cold fetches cannot queue without bound behind the pool's threads.
 *   2. While a warm-up runs its topic counts it (jobs_inflight), so a deletion waits for it; retention and the
 *      cleaner may act meanwhile: the job reads through its own descriptor and the next plan re-checks.
 *   3. A request warms up at most WARM_ROUNDS_MAX times (pages evicted again, a compacted segment's end leading
 *      into a cold next segment); after that its plan reads from the disk on the loop as it always did, so
 *      every fetch ends.
 *
 * Long polls, bounded and linear:
 *   1. A request lists each partition at most once and at most SL_REQUEST_ENTRIES_MAX of them (duplicates are
 *      refused), so it waits once per partition.
 *   2. A parked request holds no records and no pins: only its waits, one per partition (broker/limits.h,
 *      rule 5). It is planned again when it is answered.
 *   3. A wake of partition p costs O(1) per request waiting on p: each wait counts the bytes p made visible since
 *      it last looked (sl_log_visible_bytes), up to what the partition may still add to the answer, into the
 *      request's ready bytes; the request is planned and answered (O(its partitions)) once, when they reach
 *      min_bytes, or at its timeout. Planning every partition on every wake made a 640 KB Fetch freeze the loop.
 *
 * Read-ahead: a partition whose span stops short of the log end (a consumer replaying history, not one tailing it)
 * also gets an io_uring fadvise(POSIX_FADV_WILLNEED) of the fetch_readahead_bytes that follow its span in the same
 * segment file: the kernel's workers read them into the page cache while the response travels and the consumer
 * takes it in, so the next fetch's plan (which reads a few batch headers on the loop, when cached) and its read find
 * the pages there instead of waiting for the disk. WILLNEED on pages already cached or on their way costs a page-cache
 * walk, nothing more, so each fetch simply advises the whole window past its span; a window past the end of the file is
 * ignored by the kernel. A span that ends where its segment ends advises nothing: the next segment's start is
 * read when asked. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

#include "proto/base/assert.h"
#include "broker/handlers/handlers.h"
#include "proto/base/slog.h"
#include "proto/batch.h"
#include "proto/errors.h"
#include "proto/limits.h"

/* Rule 1 of cold data: as many as ListOffsets's time lookups, far more than the pool's four threads work on. */
#define FETCH_WARMS_MAX 1024
/* Rule 3 of cold data: one round warms a plan; the others are for what changed meanwhile. */
#define WARM_ROUNDS_MAX 3

/* Room kept in a response frame for everything but the records. */
#define FETCH_OVERHEAD_BYTES          (64u * 1024)
/* A fetch asking for no limit per partition gets this much: 1 MiB, Kafka's max.partition.fetch.bytes. */
#define FETCH_PARTITION_BYTES_DEFAULT (1u << 20)

/* One parked fetch waiting on one partition, linked into that partition's list. */
struct sl_fetch_wait {
	struct sl_req *req;
	struct sl_fetch_wait *next, *prev;
	struct sl_partition *part;
	struct sl_fetch_wait **list; /* &part->waiters, or &part->waking during a wake; NULL when on none */
	uint64_t seen_bytes;         /* sl_log_visible_bytes of the partition when last counted */
	uint64_t room_bytes; /* what this partition may still add to the answer (its max_bytes less what it had) */
};

#define WAITERS(p) ((p)->waiters)

static void wait_push(struct sl_fetch_wait **list, struct sl_fetch_wait *w)
{
	w->list = list;
	w->prev = NULL;
	w->next = *list;
	if (w->next)
		w->next->prev = w;
	*list = w;
}

static void wait_unlink(struct sl_fetch_wait *w)
{
	if (w->list == NULL)
		return;
	if (w->prev)
		w->prev->next = w->next;
	else
		*w->list = w->next;
	if (w->next)
		w->next->prev = w->prev;
	w->next = w->prev = NULL;
	w->list = NULL;
}

/* Step 2 of one partition: its span, read through the shard's io_uring into buf. */
struct sl_fetch_read {
	struct sl_io io; /* the completion's context */
	struct sl_req *req;
	Synclog__FetchPartitionResult *result;
	struct sl_log *log; /* whose span it is */
	struct sl_log_span span;
	int behind; /* the span stops short of the log end: read ahead past it */
	int pinned; /* span pinned from just before its read is prepared until it is submitted */
	int by_ref; /* result->records marks req->files[]: the front end sends the span from the file */
	int cold;   /* the plan needs disk work first: cold_span and cold_want are what to warm up */
	uint64_t cold_want;
	struct sl_log_span cold_span;
	uint8_t *buf;
};

/* The disk work of one cold plan, on the thread pool; kept by its request across rounds. */
struct sl_fetch_warm {
	uv_work_t work;
	struct sl_req *req;
	struct sl_topic *topic; /* counted in its jobs_inflight while the work runs */
	int unparked;           /* the plan answers a long poll: read after it, never park again */
	uint32_t rounds;
	uint32_t count; /* jobs of this round */
	struct {
		struct sl_log *log;
		struct sl_log_warm_job job;
	} parts[];
};

static void read_unpin(struct sl_fetch_read *rd);

/* Read-ahead completions: nothing to do (an error only means the pages come when read). Shared by every fadvise,
 * which carries no state of its own. */
static void readahead_done_cb(struct sl_io *io, int res)
{
	(void)io;
	(void)res;
}

static struct sl_io readahead_io = {.done_cb = readahead_done_cb};

static void fetch_free_body(struct sl_req *req)
{
	for (size_t i = 0; req->fetch_reads && i < req->fetch.n_results; i++)
		read_unpin(&req->fetch_reads[i]);
	for (size_t i = 0; req->fetch_results && i < req->fetch.n_results; i++)
		if (req->fetch_reads == NULL || !req->fetch_reads[i].by_ref)
			free(req->fetch_results[i].records.data);
	free(req->fetch_results);
	free(req->fetch_result_ptrs);
	free(req->waits);
	free(req->fetch_reads);
	free(req->fetch_warm);
}

/* A planned span no longer needs its file held open by us: read submitted (the kernel holds the file), or dropped. */
static void read_unpin(struct sl_fetch_read *rd)
{
	if (rd->pinned) {
		sl_log_span_unpin(rd->log, &rd->span);
		rd->pinned = 0;
	}
}

/* Submit what is prepared (the kernel takes each read's file then) and let go of the pins of reads [from, to). */
static void reads_submit(struct sl_req *req, size_t from, size_t to)
{
	int rc = sl_ring_submit(&req->srv->ring);
	if (rc < 0)
		sl_slog_msg(SL_SLOG_ERROR, "io_uring_submit_failed", "fetch reads: %s", strerror(-rc));
	for (size_t i = from; i < to; i++)
		read_unpin(&req->fetch_reads[i]);
}

/* Step 1: each partition's span (no record read, pinned) and its result's offsets or error. Returns the bytes the
 * reads would gather; *cold_out counts the partitions that need disk work first (rd->cold). */
static uint64_t fetch_plan(struct sl_req *req, size_t *cold_out)
{
	/* Rule 3 of cold data: past its rounds a request reads on the loop. */
	int cached_only = req->fetch_warm == NULL || req->fetch_warm->rounds < WARM_ROUNDS_MAX;
	*cold_out = 0;
	Synclog__FetchRequest *fr = req->msg->fetch;
	struct sl_server *srv = req->srv;
	struct sl_topic *topic = sl_topics_find(&srv->topics, fr->topic ? fr->topic : "");
	uint64_t budget = srv->cfg.frame_bytes_max > FETCH_OVERHEAD_BYTES
	                          ? srv->cfg.frame_bytes_max - FETCH_OVERHEAD_BYTES
	                          : srv->cfg.frame_bytes_max / 2;
	/* Within the broker's memory budget too (broker/limits.h, rule 4). */
	uint64_t memory_left = sl_limits_response_bytes_max(&srv->limits);
	if (budget > memory_left)
		budget = memory_left;
	uint64_t total = 0;
	for (size_t i = 0; i < fr->n_partitions; i++) {
		Synclog__FetchPartition *fp = fr->partitions[i];
		Synclog__FetchPartitionResult *r = &req->fetch_results[i];
		struct sl_fetch_read *rd = &req->fetch_reads[i];
		SL_ASSERT(r->records.data == NULL && rd->buf == NULL);
		synclog__fetch_partition_result__init(r);
		read_unpin(rd);
		rd->span.len = 0;
		rd->behind = 0;
		rd->by_ref = 0;
		rd->cold = 0;
		r->partition = fp->partition;
		r->log_start_offset = -1;
		r->next_offset = -1;
		if (topic == NULL) {
			r->error = SYNCLOG__ERROR_CODE__UNKNOWN_TOPIC;
			continue;
		}
		if (fp->partition >= topic->cfg.partitions) {
			r->error = SYNCLOG__ERROR_CODE__UNKNOWN_PARTITION;
			continue;
		}
		struct sl_partition *p = &topic->parts[fp->partition];
		if (p->log == NULL) {
			r->error = SYNCLOG__ERROR_CODE__PARTITION_UNAVAILABLE;
			r->error_message = p->open_error;
			continue;
		}
		r->log_start_offset = sl_log_start_offset(p->log);
		r->next_offset = sl_log_next_offset(p->log);
		if (fp->offset < r->log_start_offset || fp->offset > r->next_offset) {
			r->error = SYNCLOG__ERROR_CODE__OFFSET_OUT_OF_RANGE;
			continue;
		}
		if (fp->offset == r->next_offset || budget == 0)
			continue;
		uint64_t want = fp->max_bytes ? fp->max_bytes : FETCH_PARTITION_BYTES_DEFAULT;
		if (want > budget)
			want = budget;
		struct sl_log_span span;
		int rc = cached_only ? sl_log_locate_cached(p->log, fp->offset, want, &span)
		                     : sl_log_locate(p->log, fp->offset, want, &span);
		if (rc == -EWOULDBLOCK) {
			rd->cold = 1;
			rd->log = p->log;
			rd->cold_span = span;
			rd->cold_want = want;
			(*cold_out)++;
			continue;
		}
		if (rc == 0 && span.len > budget) {
			/* One batch larger than what is left of the frame: leave it for the next fetch, unless it is
			 * the only thing this response would carry. */
			if (total > 0)
				continue;
			rc = span.len > srv->cfg.frame_bytes_max - FETCH_OVERHEAD_BYTES / 2 ? -EMSGSIZE : 0;
		}
		if (rc == 0 && span.len > 0) {
			rd->log = p->log;
			rd->span = span;
			rd->behind = span.next_offset < r->next_offset;
			total += span.len;
			budget -= span.len < budget ? span.len : budget;
		}
		if (rc < 0)
			r->error = sl_errno_to_code(rc);
		if (rc == -EBADMSG)
			r->error_message =
			        "a batch at this offset is damaged on disk: the operator must stop the broker "
			        "and run synclogd --repair";
		if (rc == -ENODATA) {
			/* A range repair cut out (RECORDS_LOST): the client decides whether to go on after it. */
			r->skip_to_offset = span.next_offset;
			r->error_message = "offsets lost to disk damage and cut out by synclogd --repair: fetch from "
			                   "skip_to_offset to go on without them";
		}
	}
	return total;
}

/* Answer a fetch, counting what it returns in its topic's counters: records from the batch headers (a walk from
 * header to header, no record is decoded) and bytes. */
static void fetch_respond(struct sl_req *req)
{
	Synclog__FetchRequest *fr = req->msg->fetch;
	struct sl_topic *topic = sl_topics_find(&req->srv->topics, fr->topic ? fr->topic : "");
	for (size_t i = 0; topic != NULL && req->fetch_results != NULL && i < req->fetch.n_results; i++) {
		const Synclog__FetchPartitionResult *r = &req->fetch_results[i];
		const struct sl_fetch_read *rd = &req->fetch_reads[i];
		if (rd->by_ref) {
			/* Never read: a span of an uncompacted segment holds one record per offset. */
			topic->counters.fetch_records += (uint64_t)(rd->span.next_offset - rd->span.first_offset);
			topic->counters.fetch_bytes += r->records.len;
			continue;
		}
		const uint8_t *p = r->records.data;
		size_t len = r->records.len, at = 0;
		struct sl_batch_header h;
		while (p != NULL && at < len && sl_batch_header_parse(p + at, len - at, &h) == 0) {
			topic->counters.fetch_records += (uint64_t)h.record_count;
			at += sl_batch_total_bytes(&h);
		}
		topic->counters.fetch_bytes += len;
	}
	sl_req_respond(req);
}

static void fetch_read_done_cb(struct sl_io *io, int res)
{
	struct sl_fetch_read *rd = (struct sl_fetch_read *)io;
	struct sl_req *req = rd->req;
	if (res >= 0 && (uint64_t)res == rd->span.len) {
		rd->result->records.data = rd->buf;
		rd->result->records.len = rd->span.len;
		req->srv->stats.fetch_bytes += rd->span.len;
	} else {
		/* A short read means the segment shrank under us, which only recovery does: report, never guess. */
		free(rd->buf);
		rd->result->error = sl_errno_to_code(res < 0 ? res : -EIO);
	}
	rd->buf = NULL;
	SL_ASSERT(req->pending > 0 && req->fetch_reads_pending > 0);
	req->pending--;
	if (--req->fetch_reads_pending == 0)
		fetch_respond(req);
}

static void readahead_after(struct sl_server *srv, const struct sl_fetch_read *rd, int fd)
{
	if (!rd->behind || srv->cfg.fetch_readahead_bytes == 0)
		return;
	struct io_uring_sqe *sqe = sl_ring_get_sqe(&srv->ring, &readahead_io);
	io_uring_prep_fadvise(sqe, fd, rd->span.pos + rd->span.len, srv->cfg.fetch_readahead_bytes,
	                      POSIX_FADV_WILLNEED);
}

/* Step 2 without a read, when the front end can send stored bytes from their file to the client itself (a
 * plaintext connection, request.h: files_reserve): each span's file is held by a descriptor of the request's own (so
 * retention or the cleaner deleting the segment meanwhile changes nothing of what is sent) and its result's records
 * mark it; nothing is read or held in memory. Not taken, and the spans are read as usual, when the front end declines
 * (TLS, its descriptors for this are in use, or the option is off) or a span comes from a compacted segment, whose
 * records the counters could not count without reading the batch headers. Returns 1 when the request was answered
 * this way. */
static int fetch_by_reference(struct sl_req *req)
{
	struct sl_server *srv = req->srv;
	size_t n = req->msg->fetch->n_partitions;
	uint32_t count = 0;
	for (size_t i = 0; i < n; i++) {
		const struct sl_fetch_read *rd = &req->fetch_reads[i];
		if (rd->span.len > 0 && rd->span.compacted)
			return 0;
		count += rd->span.len > 0;
	}
	if (count == 0 || req->fe->files_reserve == NULL || req->fe->files_reserve(req, count) < 0)
		return 0;
	req->files = calloc(count, sizeof(*req->files));
	if (req->files == NULL)
		return 0; /* the front end gives the reservation back when it sees no files */
	int readahead = 0;
	for (size_t i = 0; i < n; i++) {
		struct sl_fetch_read *rd = &req->fetch_reads[i];
		if (rd->span.len == 0)
			continue;
		int fd = sl_log_span_pin(rd->log, &rd->span);
		if (fd == 0) {
			fd = fcntl(rd->span.fd, F_DUPFD_CLOEXEC, 0);
			if (fd < 0)
				fd = -errno;
			sl_log_span_unpin(rd->log, &rd->span);
		}
		if (fd < 0) {
			rd->result->error = sl_errno_to_code(fd);
			continue;
		}
		struct sl_req_file *f = &req->files[req->file_count++];
		f->fd = fd;
		f->pos = rd->span.pos;
		f->len = rd->span.len;
		rd->by_ref = 1;
		rd->result->records.data = (uint8_t *)f;
		rd->result->records.len = rd->span.len;
		srv->stats.fetch_bytes += rd->span.len;
		readahead_after(srv, rd, fd);
		readahead |= rd->behind;
	}
	if (readahead) {
		int rc = sl_ring_submit(&srv->ring);
		if (rc < 0)
			sl_slog_msg(SL_SLOG_ERROR, "io_uring_submit_failed", "fetch read-ahead: %s", strerror(-rc));
	}
	fetch_respond(req);
	return 1;
}

/* Room for one more pinned file (a partition's folder and active segment at most) in the file cache. */
#define READ_PIN_FDS 4

/* Step 2: read every planned span, then answer (at once when there is nothing to read). */
static void fetch_read_and_respond(struct sl_req *req)
{
	struct sl_server *srv = req->srv;
	size_t n = req->msg->fetch->n_partitions;
	SL_ASSERT(req->fetch_reads_pending == 0);
	uint64_t bytes = 0;
	for (size_t i = 0; i < n; i++)
		bytes += req->fetch_reads[i].span.len;
	if (bytes == 0) {
		fetch_respond(req);
		return;
	}
	if (fetch_by_reference(req))
		return;
	/* The buffers are the answer: counted with the connection's bytes in flight from now on. */
	sl_req_hold(req, bytes);
	/* One count held while the reads are prepared: a completion reaped meanwhile (sl_ring_get_sqe reaps when
	 * the queue is full) must not answer the request before its last read is even queued. */
	req->pending++;
	req->fetch_reads_pending++;
	size_t unpinned_from = 0;
	for (size_t i = 0; i < n; i++) {
		struct sl_fetch_read *rd = &req->fetch_reads[i];
		if (rd->span.len == 0)
			continue;
		if (i > unpinned_from && srv->files.fds_open + READ_PIN_FDS > srv->files.fds_max) {
			reads_submit(req, unpinned_from, i);
			unpinned_from = i;
		}
		int rc = sl_log_span_pin(rd->log, &rd->span);
		if (rc < 0) {
			rd->result->error = sl_errno_to_code(rc);
			continue;
		}
		rd->pinned = 1;
		rd->buf = malloc(rd->span.len);
		if (rd->buf == NULL) {
			rd->result->error = sl_errno_to_code(-ENOMEM);
			read_unpin(rd);
			continue;
		}
		rd->io.done_cb = fetch_read_done_cb;
		struct io_uring_sqe *sqe = sl_ring_get_sqe(&srv->ring, &rd->io);
		io_uring_prep_read(sqe, rd->span.fd, rd->buf, (unsigned)rd->span.len, rd->span.pos);
		req->pending++;
		req->fetch_reads_pending++;
		readahead_after(srv, rd, rd->span.fd);
	}
	/* Now, not at the end of the loop pass: the kernel takes its reference on each segment file at submission,
	 * and then the file cache may close our descriptors. */
	reads_submit(req, unpinned_from, n);
	SL_ASSERT(req->pending > 0 && req->fetch_reads_pending > 0);
	req->pending--;
	if (--req->fetch_reads_pending == 0)
		fetch_respond(req);
}

static void fetch_plan_and_go(struct sl_req *req, int unparked, int may_warm);

/* The cancel hook of a request waiting on its warm-up: the client went (drop) or the broker stops. Either way it
 * is answered now without records (planned spans are not pinned and may be gone by now); the warm-up's
 * completion then only finishes its jobs and frees the request. */
static void warm_cancel(struct sl_req *req, int drop)
{
	sl_req_unpark(req);
	for (size_t i = 0; i < req->fetch.n_results; i++)
		req->fetch_reads[i].span.len = 0;
	fetch_respond(req);
}

static void warm_work_cb(uv_work_t *w)
{
	struct sl_fetch_warm *fw = w->data;
	for (uint32_t i = 0; i < fw->count; i++)
		sl_log_warm_run(&fw->parts[i].job);
}

static void warm_after_cb(uv_work_t *w, int status)
{
	struct sl_fetch_warm *fw = w->data;
	struct sl_req *req = fw->req;
	struct sl_server *srv = req->srv;
	for (uint32_t i = 0; i < fw->count; i++) {
		if (status < 0) /* canceled: the pool never ran it */
			fw->parts[i].job.rc = status;
		/* An error here (-ESTALE, a damaged file) is met again by the next plan, which reports it. */
		sl_log_warm_finish(fw->parts[i].log, &fw->parts[i].job);
	}
	fw->count = 0;
	SL_ASSERT(fw->topic->jobs_inflight > 0 && srv->offload.fetch_warms > 0 && req->pending > 0);
	fw->topic->jobs_inflight--;
	srv->offload.fetch_warms--;
	req->pending--;
	if (req->responded) { /* warm_cancel answered it */
		sl_req_release(req);
		return;
	}
	sl_req_unpark(req);
	fetch_plan_and_go(req, fw->unparked, 1);
}

/* Hand the cold partitions' disk work to the thread pool and park the request until it is done. Returns 0, or a
 * negative errno when no work was started (rule 1: -EBUSY), the request untouched but for the errors of
 * partitions whose work could not be prepared. */
static int warm_start(struct sl_req *req, int unparked)
{
	struct sl_server *srv = req->srv;
	size_t n = req->msg->fetch->n_partitions;
	if (srv->offload.fetch_warms >= FETCH_WARMS_MAX)
		return -EBUSY;
	struct sl_fetch_warm *fw = req->fetch_warm;
	if (fw == NULL) {
		fw = calloc(1, sizeof(*fw) + n * sizeof(fw->parts[0]));
		if (fw == NULL)
			return -ENOMEM;
		req->fetch_warm = fw;
	}
	fw->count = 0;
	for (size_t i = 0; i < n; i++) {
		struct sl_fetch_read *rd = &req->fetch_reads[i];
		if (!rd->cold)
			continue;
		int rc = sl_log_warm_prepare(rd->log, &rd->cold_span, rd->cold_want, &fw->parts[fw->count].job);
		if (rc < 0) {
			rd->result->error = sl_errno_to_code(rc);
			continue;
		}
		fw->parts[fw->count++].log = rd->log;
	}
	if (fw->count == 0)
		return -EAGAIN;
	fw->req = req;
	fw->topic = sl_topics_find(&srv->topics, req->msg->fetch->topic);
	SL_ASSERT(fw->topic != NULL); /* a cold partition is one of its logs */
	fw->unparked = unparked;
	fw->rounds++;
	fw->work.data = fw;
	fw->topic->jobs_inflight++;
	srv->offload.fetch_warms++;
	req->pending++;
	sl_req_park(req, warm_cancel);
	int rc = uv_queue_work(&srv->loop, &fw->work, warm_work_cb, warm_after_cb);
	SL_ASSERT(rc == 0); /* uv_queue_work fails only for a NULL callback */
	return 0;
}

static void waits_unlink(struct sl_req *req)
{
	Synclog__FetchRequest *fr = req->msg->fetch;
	for (size_t i = 0; req->waits && i < fr->n_partitions; i++) {
		wait_unlink(&req->waits[i]);
		req->waits[i].part = NULL;
	}
}

static void timer_free_cb(uv_handle_t *h)
{
	free(h);
}

/* Take a parked fetch off its partitions and its session and answer it with what is there now, or drop it
 * unanswered (drop != 0: the client is gone). may_warm == 0 (the cancel hook: the hooks of the session are
 * being run, none may park again): cold partitions answer without records. */
static void fetch_unpark(struct sl_req *req, int drop, int may_warm)
{
	waits_unlink(req);
	if (req->wait_timer) {
		uv_timer_t *t = req->wait_timer;
		uv_timer_stop(t);
		uv_close((uv_handle_t *)t, timer_free_cb);
		req->wait_timer = NULL;
	}
	sl_req_unpark(req);
	if (drop) {
		sl_req_respond(req); /* the client is gone: the front end drops the answer */
		return;
	}
	fetch_plan_and_go(req, 1, may_warm);
}

/* The cancel hook of request.h for a long poll. */
static void fetch_cancel(struct sl_req *req, int drop)
{
	fetch_unpark(req, drop, 0);
}

static void wait_timeout_cb(uv_timer_t *t)
{
	fetch_unpark(t->data, 0, 1);
}

void sl_fetch_answer_all(struct sl_partition *p)
{
	while (WAITERS(p))
		fetch_unpark(WAITERS(p)->req, 0, 1);
}

/* Bytes the partition's log made visible since w last looked, up to its room, into the request's ready bytes. */
static void wait_count(struct sl_fetch_wait *w)
{
	struct sl_log *log = w->part->log;
	if (log == NULL)
		return;
	uint64_t now = sl_log_visible_bytes(log);
	uint64_t added = now - w->seen_bytes;
	w->seen_bytes = now;
	if (added > w->room_bytes)
		added = w->room_bytes;
	w->room_bytes -= added;
	w->req->fetch_ready_bytes += added;
}

void sl_fetch_wake(struct sl_partition *p)
{
	/* The waiters move to p->waking and each is taken from there in turn: answered, or put back on p->waiters.
	 * Answering one may unlink others anywhere (its waits on other partitions; a connection closed on the way
	 * drops its parked requests), which wait_unlink does on whichever list they are, so the loop ends. */
	if (p->waking != NULL)
		return; /* woken from inside a wake of p: the outer loop counts what is new */
	struct sl_fetch_wait *w;
	while ((w = WAITERS(p)) != NULL) {
		wait_unlink(w);
		wait_push(&p->waking, w);
	}
	while ((w = p->waking) != NULL) {
		wait_unlink(w);
		wait_count(w);
		struct sl_req *req = w->req;
		if (req->fetch_ready_bytes >= req->msg->fetch->min_bytes)
			fetch_unpark(req, 0, 1);
		else
			wait_push(&WAITERS(p), w);
	}
}

static void park(struct sl_req *req, uint32_t wait_ms)
{
	Synclog__FetchRequest *fr = req->msg->fetch;
	struct sl_server *srv = req->srv;
	struct sl_topic *topic = sl_topics_find(&srv->topics, fr->topic);
	req->waits = calloc(fr->n_partitions, sizeof(*req->waits));
	req->wait_timer = malloc(sizeof(*req->wait_timer));
	if (req->waits == NULL || req->wait_timer == NULL) {
		free(req->wait_timer);
		req->wait_timer = NULL;
		fetch_read_and_respond(req);
		return;
	}
	req->fetch_ready_bytes = 0;
	for (size_t i = 0; i < fr->n_partitions; i++) {
		Synclog__FetchPartition *fp = fr->partitions[i];
		/* Parking follows a plan without errors: the topic and every partition exist and are open. */
		SL_ASSERT(topic != NULL && fp->partition < topic->cfg.partitions);
		struct sl_partition *p = &topic->parts[fp->partition];
		SL_ASSERT(p->log != NULL);
		struct sl_fetch_read *rd = &req->fetch_reads[i];
		uint64_t had = rd->span.len;
		uint64_t want = fp->max_bytes ? fp->max_bytes : FETCH_PARTITION_BYTES_DEFAULT;
		struct sl_fetch_wait *w = &req->waits[i];
		w->req = req;
		w->part = p;
		w->seen_bytes = sl_log_visible_bytes(p->log);
		w->room_bytes = want > had ? want - had : 0;
		req->fetch_ready_bytes += had;
		wait_push(&WAITERS(p), w);
		/* Rule 2: the plan is made again when the request is answered. */
		read_unpin(rd);
		rd->span.len = 0;
	}
	uv_timer_t *t = req->wait_timer;
	uv_timer_init(&srv->loop, t);
	t->data = req;
	uv_timer_start(t, wait_timeout_cb, wait_ms, 0);
	sl_req_park(req, fetch_cancel);
}

/* Plan, then: warm up what was cold (may_warm: the request comes back here after), park a long poll that has too
 * little (unless this answers one), or read and answer. */
static void fetch_plan_and_go(struct sl_req *req, int unparked, int may_warm)
{
	Synclog__FetchRequest *fr = req->msg->fetch;
	struct sl_server *srv = req->srv;
	size_t cold;
	uint64_t got = fetch_plan(req, &cold);
	if (cold > 0 && may_warm && !srv->shutting_down && warm_start(req, unparked) == 0)
		return;
	/* Long poll: a min of 0 never waits; a bounded wait keeps a stuck client from holding memory forever. */
	uint32_t wait_ms = fr->max_wait_ms > 30000 ? 30000 : fr->max_wait_ms;
	if (!unparked && got < fr->min_bytes && wait_ms > 0 && !srv->shutting_down) {
		int any_error = 0;
		for (size_t i = 0; i < fr->n_partitions; i++)
			any_error |= req->fetch_results[i].error != SYNCLOG__ERROR_CODE__NONE;
		if (!any_error) {
			park(req, wait_ms);
			return;
		}
	}
	fetch_read_and_respond(req);
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

/* Rule 1: at most SL_REQUEST_ENTRIES_MAX entries, each partition once. Returns 0, or a negative errno with the
 * request failed. */
static int fetch_check_entries(struct sl_req *req)
{
	Synclog__FetchRequest *fr = req->msg->fetch;
	size_t n = fr->n_partitions;
	if (n > SL_REQUEST_ENTRIES_MAX) {
		sl_req_fail(req, SYNCLOG__ERROR_CODE__INVALID_REQUEST,
		            "Fetch lists %zu partitions; at most %d per request", n, SL_REQUEST_ENTRIES_MAX);
		return -EINVAL;
	}
	if (n < 2)
		return 0;
	uint32_t *ids = malloc(n * sizeof(*ids));
	if (ids == NULL) {
		sl_req_fail(req, SYNCLOG__ERROR_CODE__INTERNAL, "out of memory");
		return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++)
		ids[i] = fr->partitions[i]->partition;
	qsort(ids, n, sizeof(*ids), cmp_u32);
	int rc = 0;
	for (size_t i = 1; i < n && rc == 0; i++) {
		if (ids[i] == ids[i - 1]) {
			sl_req_fail(req, SYNCLOG__ERROR_CODE__INVALID_REQUEST,
			            "Fetch lists partition %u more than once: list each partition once", ids[i]);
			rc = -EINVAL;
		}
	}
	free(ids);
	return rc;
}

void sl_handle_fetch(struct sl_req *req)
{
	Synclog__FetchRequest *fr = req->msg->fetch;
	struct sl_server *srv = req->srv;
	srv->stats.fetch_requests++;
	if (sl_topics_find(&srv->topics, fr->topic ? fr->topic : "") == NULL) {
		sl_req_fail(req, SYNCLOG__ERROR_CODE__UNKNOWN_TOPIC, "unknown topic '%.200s'",
		            fr->topic ? fr->topic : "");
		sl_req_respond(req);
		return;
	}
	if (fetch_check_entries(req) < 0) {
		sl_req_respond(req);
		return;
	}
	size_t n = fr->n_partitions;
	req->fetch_results = calloc(n ? n : 1, sizeof(*req->fetch_results));
	req->fetch_result_ptrs = calloc(n ? n : 1, sizeof(*req->fetch_result_ptrs));
	req->fetch_reads = calloc(n ? n : 1, sizeof(*req->fetch_reads));
	req->free_body = fetch_free_body;
	if (req->fetch_results == NULL || req->fetch_result_ptrs == NULL || req->fetch_reads == NULL) {
		sl_req_fail(req, SYNCLOG__ERROR_CODE__INTERNAL, "out of memory");
		sl_req_respond(req);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		req->fetch_result_ptrs[i] = &req->fetch_results[i];
		req->fetch_reads[i].req = req;
		req->fetch_reads[i].result = &req->fetch_results[i];
	}
	synclog__fetch_response__init(&req->fetch);
	req->fetch.n_results = n;
	req->fetch.results = req->fetch_result_ptrs;
	req->resp.body_case = SYNCLOG__RESPONSE__BODY_FETCH;
	req->resp.fetch = &req->fetch;
	fetch_plan_and_go(req, 0, 1);
}
