/* The fetcher on a Kafka cluster (transport.h): a librdkafka consumer that is assigned the topic's partitions at
 * explicit offsets (no group is joined and nothing is committed: the group.id librdkafka insists on is never
 * used), handing out records in offset order per partition with the native fetcher's semantics: positions count
 * only records handed out, stop_at_end stops each partition at the log end captured at creation, records below a
 * position are never handed out, and a position retention removed is skipped forward and counted.
 *
 * State per partition (struct kpart): position, the next offset to hand out; end and done as the native fetcher.
 * A fetch waits (interruptibly, kafka_impl.h) for the consumer queue, then takes what is there in one batch; the
 * messages stay alive until the next fetch, since the records handed out point into them.
 *
 * INVARIANTS
 *   1. librdkafka reads each partition from its position: after a seek, the next fetch assigns every partition at
 *      its position again (which drops what librdkafka had fetched ahead), before taking anything.
 *   2. A record is handed out only when its offset is at or past its partition's position, and below end with
 *      stop_at_end; the position then moves past it.
 *   3. A partition is done (stop_at_end) once its position reaches end, or librdkafka reports its end
 *      (PARTITION_EOF) at or past end and the records before that report are handed out: offsets the cleaner
 *      removed never arrive, so the position alone could stop short of end.
 *
 * Offsets out of range (auto.offset.reset=error): a position below the log start is moved to it and the records
 * between are counted skipped; a position past the log end fails the fetch with -ERANGE, as natively. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/base/clock.h"
#include "consumer/client/kafka_impl.h"

/* Messages taken per fetch: a batch that one fetch of a busy topic fills, and a bound on what it holds. */
#define FETCH_MESSAGES_MAX 4096

struct kpart {
	uint32_t partition;
	int64_t position;
	int64_t end; /* stop_at_end: the log end at creation; else INT64_MAX */
	bool done;
	bool ended; /* librdkafka reported its end in the batch being handed out: done once that batch is */
};

struct sl_kafka_fetcher {
	struct sl_fetcher_options o;
	char topic[SL_TOPIC_NAME_BYTES_MAX + 1];
	char *bootstrap;
	rd_kafka_t *rk;
	struct sl_kafka_wake wake;
	struct kpart *parts;
	uint32_t part_count;
	bool assign_due; /* invariant 1 */
	rd_kafka_message_t **msgs;
	uint32_t msg_count, msg_next;
	uint8_t *headers; /* the headers sections of the records handed out from the messages held */
	size_t headers_cap;
	size_t headers_used;
	uint64_t skipped;
	int64_t down_since_ms; /* the cluster unreachable since (librdkafka's ALL_BROKERS_DOWN), or -1 */
	char error[SL_ERROR_BYTES];
};

static int io_timeout(const struct sl_kafka_fetcher *k)
{
	return k->o.io_timeout_ms > INT32_MAX ? INT32_MAX : (int)k->o.io_timeout_ms;
}

/* parts holds partition i at index i, or only the one partition asked for (sl_kafka_fetcher_new), so a message's
 * partition is found without a search: this runs once per message, and a scan of parts cost partitions x
 * messages. */
static struct kpart *part_find(const struct sl_kafka_fetcher *k, int32_t partition)
{
	uint32_t i = k->part_count == 1 ? 0 : (uint32_t)partition;

	if (partition < 0 || i >= k->part_count || k->parts[i].partition != (uint32_t)partition)
		return NULL;
	return &k->parts[i];
}

static void messages_drop(struct sl_kafka_fetcher *k)
{
	for (uint32_t i = 0; i < k->msg_count; i++)
		rd_kafka_message_destroy(k->msgs[i]);
	k->msg_count = k->msg_next = 0;
}

/* Where each partition starts, by the options (the native fetcher's rules), and its end with stop_at_end. */
static int positions_resolve(struct sl_kafka_fetcher *k)
{
	uint32_t n = k->part_count, *ids = calloc(n, sizeof(*ids));
	int64_t *offs = calloc(n, sizeof(*offs));
	int rc = ids != NULL && offs != NULL ? 0 : -ENOMEM;
	int64_t at = k->o.from == SL_FROM_EARLIEST    ? RD_KAFKA_OFFSET_BEGINNING
	             : k->o.from == SL_FROM_TIMESTAMP ? k->o.from_timestamp_ms
	                                              : RD_KAFKA_OFFSET_END;

	for (uint32_t i = 0; rc == 0 && i < n; i++)
		ids[i] = k->parts[i].partition;
	if (rc == 0 && k->o.from != SL_FROM_OFFSET)
		rc = sl_kafka_offsets_at(k->rk, k->topic, ids, n, at, io_timeout(k), offs, k->error, sizeof(k->error));
	for (uint32_t i = 0; rc == 0 && i < n; i++)
		k->parts[i].position = k->o.from == SL_FROM_OFFSET ? k->o.from_offset : offs[i];
	if (rc == 0 && k->o.from == SL_FROM_BEFORE_END) {
		/* N before the end, never before the start. */
		rc = sl_kafka_offsets_at(k->rk, k->topic, ids, n, RD_KAFKA_OFFSET_BEGINNING, io_timeout(k), offs,
		                         k->error, sizeof(k->error));
		for (uint32_t i = 0; rc == 0 && i < n; i++) {
			int64_t want = k->parts[i].position - k->o.from_offset;

			k->parts[i].position = want > offs[i] ? want : offs[i];
		}
	}
	if (rc == 0 && k->o.stop_at_end)
		rc = sl_kafka_offsets_at(k->rk, k->topic, ids, n, RD_KAFKA_OFFSET_END, io_timeout(k), offs, k->error,
		                         sizeof(k->error));
	for (uint32_t i = 0; rc == 0 && i < n; i++) {
		k->parts[i].end = k->o.stop_at_end ? offs[i] : INT64_MAX;
		k->parts[i].done = k->o.stop_at_end && k->parts[i].position >= k->parts[i].end;
	}
	free(ids);
	free(offs);
	return rc;
}

int sl_kafka_fetcher_new(struct sl_kafka_fetcher **out, const struct sl_fetcher_options *o, char *err, size_t err_bytes)
{
	char wait[16], bytes[16], socket[16];
	struct sl_kafka_fetcher *k;
	uint32_t count = 0;
	int rc;

	*out = NULL;
	k = calloc(1, sizeof(*k));
	if (k == NULL)
		return -ENOMEM;
	k->o = *o;
	snprintf(k->topic, sizeof(k->topic), "%s", o->topic);
	k->o.topic = k->topic;
	k->o.broker = NULL;
	k->o.client_id = NULL;
	k->o.kafka_config = NULL;
	k->o.security = NULL;
	k->wake.fds[0] = k->wake.fds[1] = -1;
	k->down_since_ms = -1;
	k->msgs = calloc(FETCH_MESSAGES_MAX, sizeof(*k->msgs));
	k->headers = malloc(1); /* grown by each fetch to what its records' headers take */
	k->headers_cap = 1;
	rc = k->msgs != NULL && k->headers != NULL ? sl_kafka_bootstrap_text(o->broker, &k->bootstrap, err, err_bytes)
	                                           : -ENOMEM;
	struct sl_kafka_config security = {0};
	if (rc == 0)
		rc = sl_kafka_config_secure(&security, o->security, NULL, err, err_bytes);
	if (rc != 0) {
		sl_kafka_fetcher_free(k);
		return rc;
	}
	/* librdkafka's long poll is bounded by our own wait; a reader up to a known end needs none. */
	snprintf(wait, sizeof(wait), "%u", o->stop_at_end ? 100 : (o->max_wait_ms < 1 ? 1 : o->max_wait_ms));
	snprintf(bytes, sizeof(bytes), "%u", o->partition_bytes_max < 1024 ? 1024 : o->partition_bytes_max);
	snprintf(socket, sizeof(socket), "%u", o->io_timeout_ms < 10 ? 10 : o->io_timeout_ms);
	/* queued.max.messages.kbytes: what librdkafka fetches ahead of us is bounded at 16 MiB (its default is 64), a
	 * few answers of the native fetcher's size: enough to keep a reader busy, and a bound on its memory. */
	const struct sl_kafka_pair ours[] = {
	        {"queued.max.messages.kbytes", "16384"},
	        {"group.id", "synclog-fetcher"},
	        {"enable.auto.commit", "false"},
	        {"enable.auto.offset.store", "false"},
	        {"enable.partition.eof", "true"},
	        {"auto.offset.reset", "error"},
	        {"fetch.wait.max.ms", wait},
	        {"max.partition.fetch.bytes", bytes},
	        {"check.crcs", "true"},
	        {"socket.timeout.ms", socket},
	};
	rd_kafka_conf_t *conf =
	        sl_kafka_conf_new(k->bootstrap, o->client_id != NULL ? o->client_id : "synclog-fetcher", ours,
	                          SL_ARRAY_COUNT(ours), &security, o->kafka_config, err, err_bytes);
	sl_kafka_config_free(&security);
	if (conf == NULL) {
		sl_kafka_fetcher_free(k);
		return -EINVAL;
	}
	rc = sl_kafka_handle_new(RD_KAFKA_CONSUMER, conf, &k->rk, &k->wake, err, err_bytes);
	if (rc == 0)
		rc = sl_kafka_partition_count(k->rk, k->topic, io_timeout(k), &count, err, err_bytes);
	if (rc == 0 && o->partition >= 0 && (uint32_t)o->partition >= count) {
		sl_error_set(err, err_bytes, "topic '%s' has no partition %d: its partitions are 0 to %u", k->topic,
		             o->partition, count - 1);
		rc = -ENOENT;
	}
	if (rc == 0) {
		k->part_count = o->partition >= 0 ? 1 : count;
		k->parts = calloc(k->part_count ? k->part_count : 1, sizeof(*k->parts));
		rc = k->parts != NULL ? 0 : -ENOMEM;
	}
	for (uint32_t i = 0; rc == 0 && i < k->part_count; i++)
		k->parts[i].partition = o->partition >= 0 ? (uint32_t)o->partition : i;
	if (rc == 0 && (rc = positions_resolve(k)) != 0)
		sl_error_set(err, err_bytes, "%s", k->error);
	if (rc != 0) {
		sl_kafka_fetcher_free(k);
		return rc;
	}
	k->assign_due = true;
	*out = k;
	return 0;
}

void sl_kafka_fetcher_free(struct sl_kafka_fetcher *k)
{
	if (k == NULL)
		return;
	messages_drop(k);
	sl_kafka_wake_free(&k->wake);
	if (k->rk != NULL) {
		rd_kafka_consumer_close(k->rk);
		rd_kafka_destroy(k->rk);
	}
	free(k->msgs);
	free(k->headers);
	free(k->parts);
	free(k->bootstrap);
	free(k);
}

static int assign(struct sl_kafka_fetcher *k)
{
	rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new((int)k->part_count);
	rd_kafka_resp_err_t e;

	for (uint32_t i = 0; i < k->part_count; i++)
		if (!k->parts[i].done)
			rd_kafka_topic_partition_list_add(list, k->topic, (int32_t)k->parts[i].partition)->offset =
			        k->parts[i].position;
	e = rd_kafka_assign(k->rk, list);
	rd_kafka_topic_partition_list_destroy(list);
	if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
		snprintf(k->error, sizeof(k->error), "read topic '%s': %s", k->topic, rd_kafka_err2str(e));
		return sl_kafka_errno(e);
	}
	k->assign_due = false;
	return 0;
}

/* A partition whose position librdkafka found out of range: forward to the log start (counting what retention
 * removed), or -ERANGE when the position is past the log end. */
static int out_of_range(struct sl_kafka_fetcher *k, struct kpart *p)
{
	int64_t low, high;
	rd_kafka_resp_err_t e =
	        rd_kafka_query_watermark_offsets(k->rk, k->topic, (int32_t)p->partition, &low, &high, io_timeout(k));

	if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
		snprintf(k->error, sizeof(k->error),
		         "topic '%s' partition %u: offset %lld out of range, and its range "
		         "cannot be read: %s",
		         k->topic, p->partition, (long long)p->position, rd_kafka_err2str(e));
		return sl_kafka_errno(e);
	}
	if (p->position < low) {
		k->skipped += (uint64_t)(low - p->position);
		p->position = low;
		p->done = k->o.stop_at_end && p->position >= p->end;
		k->assign_due = true;
		return 0;
	}
	if (p->position > high) {
		snprintf(
		        k->error, sizeof(k->error),
		        "topic '%s' partition %u: offset %lld is past the log end %lld: ask for an offset below it, or "
		        "--from latest",
		        k->topic, p->partition, (long long)p->position, (long long)high);
		return -ERANGE;
	}
	k->assign_due = true; /* in range after all (the log grew): read on from it */
	return 0;
}

/* Invariant 3: librdkafka says partition p ends at eof. */
static void end_reached(struct sl_kafka_fetcher *k, struct kpart *p, int64_t eof)
{
	int64_t low, high;

	if (!k->o.stop_at_end || p->done)
		return;
	if (eof >= p->end) {
		p->ended = true;
		return;
	}
	/* Below the end captured at creation: a log cut back since (an unclean leader election), or a leader that
	 * has not caught up with the old one's high watermark yet. Only the first has no more to give. */
	if (rd_kafka_query_watermark_offsets(k->rk, k->topic, (int32_t)p->partition, &low, &high, io_timeout(k)) ==
	            RD_KAFKA_RESP_ERR_NO_ERROR &&
	    high < p->end && p->position >= high)
		p->ended = true;
}

/* The batch is handed out: partitions whose end came with it are done (invariant 3). */
static void ends_settle(struct sl_kafka_fetcher *k)
{
	for (uint32_t i = 0; i < k->part_count; i++) {
		if (k->parts[i].ended)
			k->parts[i].done = true;
		k->parts[i].ended = false;
	}
}

/* Handle a message that is an event (an error or an end) rather than a record. Returns 0 or a negative errno. */
static int event_handle(struct sl_kafka_fetcher *k, const rd_kafka_message_t *m)
{
	struct kpart *p = m->rkt != NULL ? part_find(k, m->partition) : NULL;

	switch (m->err) {
	case RD_KAFKA_RESP_ERR__PARTITION_EOF:
		if (p != NULL)
			end_reached(k, p, m->offset);
		return 0;
	case RD_KAFKA_RESP_ERR__AUTO_OFFSET_RESET:
	case RD_KAFKA_RESP_ERR_OFFSET_OUT_OF_RANGE:
		return p != NULL ? out_of_range(k, p) : 0;
	case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
	case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
	case RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION:
		snprintf(k->error, sizeof(k->error), "topic '%s' is gone from the Kafka cluster: %s", k->topic,
		         rd_kafka_message_errstr(m));
		return -ENOENT;
	case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
	case RD_KAFKA_RESP_ERR__AUTHENTICATION:
	case RD_KAFKA_RESP_ERR__FATAL:
		snprintf(k->error, sizeof(k->error), "read topic '%s': %s", k->topic, rd_kafka_message_errstr(m));
		return m->err == RD_KAFKA_RESP_ERR__FATAL ? -EPROTO : sl_kafka_errno(m->err);
	case RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN:
		if (k->down_since_ms < 0)
			k->down_since_ms = sl_clock_mono_ms();
		snprintf(k->error, sizeof(k->error), "read topic '%s': %s", k->topic, rd_kafka_message_errstr(m));
		return 0;
	default:
		/* Transport errors, leader changes: librdkafka retries them itself. */
		return 0;
	}
}

/* Keep the records of msgs[0..n) worth handing out (invariant 2) at the front; events are handled. */
static int batch_sort(struct sl_kafka_fetcher *k, uint32_t n)
{
	uint32_t kept = 0;
	size_t hbytes = 0;
	int rc = 0;

	for (uint32_t i = 0; i < n; i++) {
		rd_kafka_message_t *m = k->msgs[i];
		struct kpart *p = m->rkt != NULL ? part_find(k, m->partition) : NULL;
		bool keep = false;

		if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
			if (rc == 0)
				rc = event_handle(k, m);
		} else if (p != NULL && !p->done && m->offset >= p->position) {
			if (k->o.stop_at_end && m->offset >= p->end)
				p->done = true;
			else
				keep = true;
		}
		if (keep) {
			k->msgs[kept++] = m;
			hbytes += sl_kafka_headers_bytes(m);
		} else {
			rd_kafka_message_destroy(m);
		}
	}
	k->msg_count = kept;
	k->msg_next = 0;
	k->headers_used = 0;
	if (hbytes > k->headers_cap) {
		uint8_t *h = realloc(k->headers, hbytes);

		if (h == NULL)
			return -ENOMEM;
		k->headers = h;
		k->headers_cap = hbytes;
	}
	if (kept > 0)
		k->down_since_ms = -1;
	return rc;
}

bool sl_kafka_fetcher_done(const struct sl_kafka_fetcher *k)
{
	if (!k->o.stop_at_end)
		return false;
	for (uint32_t i = 0; i < k->part_count; i++)
		if (!k->parts[i].done)
			return false;
	return true;
}

int sl_kafka_fetcher_fetch(struct sl_kafka_fetcher *k)
{
	int64_t deadline = sl_clock_mono_ms() + (k->o.stop_at_end ? 100 : k->o.max_wait_ms);
	rd_kafka_queue_t *q = k->wake.queue;
	int rc = 0, n = 0;

	messages_drop(k);
	ends_settle(k);
	k->error[0] = '\0';
	if (k->part_count == 0 || sl_kafka_fetcher_done(k))
		return 0;
	if (k->assign_due && (rc = assign(k)) != 0)
		return rc;
	for (;;) {
		n = (int)rd_kafka_consume_batch_queue(q, 0, k->msgs, FETCH_MESSAGES_MAX);
		if (n < 0) {
			snprintf(k->error, sizeof(k->error), "read topic '%s': %s", k->topic,
			         rd_kafka_err2str(rd_kafka_last_error()));
			return -EPROTO;
		}
		if (n > 0)
			break;
		int64_t left = deadline - sl_clock_mono_ms();
		if (left <= 0)
			break;
		rc = sl_kafka_wake_wait(&k->wake, (int)left);
		if (rc != 0)
			return rc;
	}
	rc = batch_sort(k, (uint32_t)n);
	if (rc == 0 && k->down_since_ms >= 0 && sl_clock_mono_ms() - k->down_since_ms > k->o.reconnect_timeout_ms) {
		snprintf(k->error + strlen(k->error), sizeof(k->error) - strlen(k->error),
		         ": no broker of the Kafka cluster reachable for %u ms", k->o.reconnect_timeout_ms);
		rc = -ECONNREFUSED;
	}
	if (rc != 0)
		messages_drop(k);
	return rc;
}

int sl_kafka_fetcher_next(struct sl_kafka_fetcher *k, uint32_t *partition_out, struct sl_record *out)
{
	while (k->msg_next < k->msg_count) {
		rd_kafka_message_t *m = k->msgs[k->msg_next++];
		struct kpart *p = part_find(k, m->partition);
		/* Sections of the records handed out before stay where they are: the fetch sized the buffer for all of
		 * them. */
		uint8_t *hpos = k->headers + k->headers_used, *hend = k->headers + k->headers_cap;
		const char *why = NULL;

		if (p == NULL || p->done || m->offset < p->position)
			continue; /* a seek or the end came in between */
		if (sl_kafka_message_record(m, out, &hpos, hend, &why) != 0) {
			snprintf(k->error, sizeof(k->error), "topic '%s' partition %u offset %lld: %s", k->topic,
			         p->partition, (long long)m->offset, why != NULL ? why : "malformed record");
			return -EBADMSG;
		}
		k->headers_used = (size_t)(hpos - k->headers);
		p->position = m->offset + 1;
		if (k->o.stop_at_end && p->position >= p->end)
			p->done = true;
		*partition_out = p->partition;
		return 1;
	}
	ends_settle(k);
	return 0;
}

int64_t sl_kafka_fetcher_position(const struct sl_kafka_fetcher *k, uint32_t partition)
{
	const struct kpart *p = partition <= INT32_MAX ? part_find(k, (int32_t)partition) : NULL;

	return p != NULL ? p->position : -1;
}

uint64_t sl_kafka_fetcher_skipped(const struct sl_kafka_fetcher *k)
{
	return k->skipped;
}

const char *sl_kafka_fetcher_error(const struct sl_kafka_fetcher *k)
{
	return k->error;
}

int sl_kafka_fetcher_seek(struct sl_kafka_fetcher *k, uint32_t partition, int64_t position)
{
	struct kpart *p = part_find(k, (int32_t)partition);

	if (p == NULL || position < 0)
		return -EINVAL;
	messages_drop(k);
	p->position = position;
	p->done = k->o.stop_at_end && position >= p->end;
	p->ended = false;
	k->assign_due = true;
	return 0;
}
