/* The fetcher: reads one topic's partitions from a starting point (earliest, latest, an offset, a time), one Fetch
 * for all of them per round trip, and hands out their records in offset order per partition. It checks every
 * batch's CRC before reading it, skips the records of a returned batch that lie below the offset asked, and in
 * stop_at_end mode stops each partition at the log end captured when it was created.
 *
 * State per partition: position, the next offset to hand out. A batch moves position to one past its last offset
 * once its records are handed out, so a reconnect resumes exactly there: no record is lost or repeated. */
#include <errno.h>
#include <poll.h>
#include <string.h>

#include "proto/base/clock.h"
#include "consumer/client/client_impl.h"

/* Decompressed records of one zstd batch: the scratch buffer starts here and doubles up to the batch limit. */
#define SCRATCH_BYTES_INITIAL (1u << 20)

struct fpart {
	uint32_t partition;
	int64_t position;
	int64_t end; /* stop_at_end: the log end at creation */
	bool done;
};

/* An entry of the fetcher's partitions sorted by number: part_find looks an answer's partition up by binary search.
 * A scan of parts for each partition of an answer made one Fetch of N partitions cost N * N steps (100 million at
 * 10,000 partitions). */
struct fpart_key {
	uint32_t partition;
	uint32_t index; /* in parts */
};

struct sl_fetcher {
	struct sl_fetcher_options o;
	char topic[SL_TOPIC_NAME_BYTES_MAX + 1];
	struct sl_conn *conn;
	struct fpart *parts;
	struct fpart_key *keys; /* part_count entries: parts by partition number, then by index */
	uint32_t part_count;
	uint32_t part_cap; /* entries allocated in parts, keys, wire and wire_ptrs */
	Synclog__FetchPartition *wire;
	Synclog__FetchPartition **wire_ptrs;
	uint8_t *scratch;
	size_t scratch_cap;
	uint64_t skipped;
	uint64_t lost;
	uint32_t rotation; /* partition the next Fetch lists first */
	/* The answer being read: result index, the batch bytes left of that result, the batch being iterated. */
	Synclog__Response *resp;
	size_t result_index;
	struct fpart *cur;
	const uint8_t *pos, *end;
	int64_t batch_next; /* one past the last batch of this result handed out, INT64_MIN before the first */
	struct sl_record_iter iter;
	bool iter_active;
	char error[SL_ERROR_BYTES];
	struct sl_kafka_fetcher *kafka; /* the Kafka transport's fetcher (transport.h); NULL: this one */
};

void sl_fetcher_options_init(struct sl_fetcher_options *o)
{
	memset(o, 0, sizeof(*o));
	o->broker = SL_BROKER_DEFAULT;
	o->partition = -1;
	o->from = SL_FROM_EARLIEST;
	o->max_wait_ms = 1000;
	o->partition_bytes_max = 1u << 20;
	o->io_timeout_ms = SL_IO_TIMEOUT_MS_DEFAULT;
	o->reconnect_timeout_ms = 15000;
}

static int key_compare(const void *a, const void *b)
{
	const struct fpart_key *x = a, *y = b;

	if (x->partition != y->partition)
		return x->partition < y->partition ? -1 : 1;
	return x->index < y->index ? -1 : x->index > y->index;
}

/* After parts changed: sort their keys again. */
static void keys_build(struct sl_fetcher *f)
{
	for (uint32_t i = 0; i < f->part_count; i++)
		f->keys[i] = (struct fpart_key){.partition = f->parts[i].partition, .index = i};
	if (f->part_count > 0) /* keys is NULL until the first assignment of a fetcher made unassigned */
		qsort(f->keys, f->part_count, sizeof(*f->keys), key_compare);
}

/* The first entry of parts for partition, or NULL. */
static struct fpart *part_find(const struct sl_fetcher *f, uint32_t partition)
{
	uint32_t lo = 0, hi = f->part_count;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;

		if (f->keys[mid].partition < partition)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < f->part_count && f->keys[lo].partition == partition)
		return &f->parts[f->keys[lo].index];
	return NULL;
}

static int resolve_offsets(struct sl_fetcher *f, const uint32_t *ids)
{
	static const enum sl_offset_spec spec_of[] = {
	        [SL_FROM_EARLIEST] = SL_OFFSET_EARLIEST,
	        [SL_FROM_LATEST] = SL_OFFSET_LATEST,
	        [SL_FROM_TIMESTAMP] = SL_OFFSET_TIMESTAMP,
	        [SL_FROM_BEFORE_END] = SL_OFFSET_LATEST,
	};
	int64_t *offsets = calloc(f->part_count, sizeof(*offsets));
	int rc = 0;

	if (offsets == NULL)
		return -ENOMEM;
	if (f->o.from != SL_FROM_OFFSET)
		rc = sl_offsets_list(f->conn, f->topic, spec_of[f->o.from], f->o.from_timestamp_ms, ids, f->part_count,
		                     offsets);
	for (uint32_t i = 0; rc == 0 && i < f->part_count; i++)
		f->parts[i].position = f->o.from == SL_FROM_OFFSET ? f->o.from_offset : offsets[i];
	if (rc == 0 && f->o.from == SL_FROM_BEFORE_END) {
		/* N before the end, but never before the start: those records are not missing, they never were. */
		rc = sl_offsets_list(f->conn, f->topic, SL_OFFSET_EARLIEST, 0, ids, f->part_count, offsets);
		for (uint32_t i = 0; rc == 0 && i < f->part_count; i++) {
			int64_t want = f->parts[i].position - f->o.from_offset;

			f->parts[i].position = want > offsets[i] ? want : offsets[i];
		}
	}
	if (rc == 0 && f->o.stop_at_end)
		rc = sl_offsets_list(f->conn, f->topic, SL_OFFSET_LATEST, 0, ids, f->part_count, offsets);
	for (uint32_t i = 0; rc == 0 && f->o.stop_at_end && i < f->part_count; i++) {
		f->parts[i].end = offsets[i];
		f->parts[i].done = f->parts[i].position >= offsets[i];
	}
	free(offsets);
	return rc;
}

static int fetcher_setup(struct sl_fetcher *f)
{
	struct sl_topic_config config;
	struct sl_partition_info *infos = NULL;
	uint32_t count = 0, *ids;
	int rc;

	rc = sl_conn_connect(f->conn);
	if (rc == 0)
		rc = sl_topic_describe(f->conn, f->topic, &config, &infos, &count);
	free(infos);
	if (rc != 0)
		return rc;
	if (f->o.partition >= 0 && (uint32_t)f->o.partition >= config.partitions) {
		sl_conn_set_error(f->conn, "topic '%s' has no partition %d: its partitions are 0 to %u", f->topic,
		                  f->o.partition, config.partitions - 1);
		return -ENOENT;
	}
	f->part_count = f->o.partition >= 0 ? 1 : config.partitions;
	f->part_cap = f->part_count;
	f->parts = calloc(f->part_count, sizeof(*f->parts));
	f->keys = calloc(f->part_count, sizeof(*f->keys));
	f->wire = calloc(f->part_count, sizeof(*f->wire));
	f->wire_ptrs = calloc(f->part_count, sizeof(*f->wire_ptrs));
	ids = calloc(f->part_count, sizeof(*ids));
	if (f->parts == NULL || f->keys == NULL || f->wire == NULL || f->wire_ptrs == NULL || ids == NULL) {
		free(ids);
		sl_conn_set_error(f->conn, "out of memory for %u partitions", f->part_count);
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < f->part_count; i++) {
		f->parts[i].partition = f->o.partition >= 0 ? (uint32_t)f->o.partition : i;
		f->parts[i].end = INT64_MAX;
		ids[i] = f->parts[i].partition;
		synclog__fetch_partition__init(&f->wire[i]);
	}
	keys_build(f);
	rc = resolve_offsets(f, ids);
	free(ids);
	return rc;
}

/* The fetcher object and its connection, not connected yet. */
static int fetcher_alloc(struct sl_fetcher **out, const struct sl_fetcher_options *o, char *err, size_t err_bytes)
{
	struct sl_fetcher *f;
	int rc;

	*out = NULL;
	if (o->topic == NULL || o->topic[0] == '\0' || strlen(o->topic) > SL_TOPIC_NAME_BYTES_MAX ||
	    (unsigned)o->from > SL_FROM_BEFORE_END ||
	    ((o->from == SL_FROM_OFFSET || o->from == SL_FROM_BEFORE_END) && o->from_offset < 0)) {
		sl_error_set(err, err_bytes,
		             "fetcher options: a topic of 1 to 200 characters and a valid start are "
		             "required");
		return -EINVAL;
	}
	f = calloc(1, sizeof(*f));
	if (f == NULL)
		return -ENOMEM;
	f->o = *o;
	snprintf(f->topic, sizeof(f->topic), "%s", o->topic);
	f->o.topic = f->topic;
	rc = sl_conn_new(&f->conn, o->broker, o->client_id != NULL ? o->client_id : "synclog-fetcher");
	if (rc != 0) {
		struct sl_broker_addr addr;

		if (rc != -EINVAL || sl_broker_parse(o->broker, &addr, err, err_bytes) == 0)
			sl_error_set(err, err_bytes, "fetcher: out of memory");
		free(f);
		return rc;
	}
	f->o.broker = NULL;
	f->o.client_id = NULL;
	f->o.security = NULL; /* the connection keeps a copy */
	rc = sl_conn_set_security(f->conn, o->security);
	if (rc != 0) {
		sl_error_set(err, err_bytes, "%s", sl_conn_error(f->conn));
		sl_conn_free(f->conn);
		free(f);
		return rc;
	}
	sl_conn_set_timeout(f->conn, o->io_timeout_ms);
	*out = f;
	return 0;
}

int sl_fetcher_new(struct sl_fetcher **out, const struct sl_fetcher_options *o, char *err, size_t err_bytes)
{
	struct sl_fetcher *f;
	int rc;

	*out = NULL;
	if (sl_broker_is_kafka(o->broker)) {
		if (o->topic == NULL || o->topic[0] == '\0' || strlen(o->topic) > SL_TOPIC_NAME_BYTES_MAX ||
		    (unsigned)o->from > SL_FROM_BEFORE_END ||
		    ((o->from == SL_FROM_OFFSET || o->from == SL_FROM_BEFORE_END) && o->from_offset < 0)) {
			sl_error_set(err, err_bytes,
			             "fetcher options: a topic of 1 to 200 characters and a valid start are required");
			return -EINVAL;
		}
		f = calloc(1, sizeof(*f));
		if (f == NULL)
			return -ENOMEM;
		rc = sl_kafka_fetcher_new(&f->kafka, o, err, err_bytes);
		if (rc != 0) {
			free(f);
			return rc;
		}
		*out = f;
		return 0;
	}
	rc = fetcher_alloc(&f, o, err, err_bytes);
	if (rc != 0)
		return rc;
	rc = fetcher_setup(f);
	if (rc != 0) {
		sl_error_set(err, err_bytes, "%s", sl_conn_error(f->conn));
		sl_fetcher_free(f);
		return rc;
	}
	*out = f;
	return 0;
}

void sl_fetcher_free(struct sl_fetcher *f)
{
	if (f == NULL)
		return;
	sl_kafka_fetcher_free(f->kafka);
	sl_conn_free(f->conn);
	free(f->parts);
	free(f->keys);
	free(f->wire);
	free(f->wire_ptrs);
	free(f->scratch);
	free(f);
}

uint64_t sl_fetcher_lost(const struct sl_fetcher *f)
{
	/* A Kafka cluster has no RECORDS_LOST: its lost offsets surface as retention does (skipped). */
	if (f->kafka != NULL)
		return 0;
	return f->lost;
}

const char *sl_fetcher_error(const struct sl_fetcher *f)
{
	if (f->kafka != NULL)
		return sl_kafka_fetcher_error(f->kafka);

	return f->error;
}

uint64_t sl_fetcher_skipped(const struct sl_fetcher *f)
{
	if (f->kafka != NULL)
		return sl_kafka_fetcher_skipped(f->kafka);

	return f->skipped;
}

bool sl_fetcher_done(const struct sl_fetcher *f)
{
	if (f->kafka != NULL)
		return sl_kafka_fetcher_done(f->kafka);

	if (!f->o.stop_at_end)
		return false;
	for (uint32_t i = 0; i < f->part_count; i++)
		if (!f->parts[i].done)
			return false;
	return true;
}

int64_t sl_fetcher_position(const struct sl_fetcher *f, uint32_t partition)
{
	if (f->kafka != NULL)
		return sl_kafka_fetcher_position(f->kafka, partition);

	const struct fpart *fp = part_find(f, partition);

	return fp != NULL ? fp->position : -1;
}

static void position_set(struct sl_fetcher *f, struct fpart *fp, int64_t position)
{
	if (position > fp->position)
		fp->position = position;
	if (f->o.stop_at_end && fp->position >= fp->end)
		fp->done = true;
}

/* Apply what the answer says about one partition besides its records. Returns 0 or a negative errno (error set). */
static int result_check(struct sl_fetcher *f, const Synclog__FetchPartitionResult *r, struct fpart *fp)
{
	if (r->error == SYNCLOG__ERROR_CODE__NONE) {
		/* A log that ends below the end captured at the start (truncated by recovery) has no more to give. */
		if (f->o.stop_at_end && r->records.len == 0 && r->next_offset <= fp->position)
			fp->done = true;
		return 0;
	}
	if (r->error == SYNCLOG__ERROR_CODE__OFFSET_OUT_OF_RANGE && r->log_start_offset > fp->position) {
		/* Retention deleted what was asked for: go on from what is left, and count what was missed. */
		f->skipped += (uint64_t)(r->log_start_offset - fp->position);
		position_set(f, fp, r->log_start_offset);
		return 0;
	}
	if (r->error == SYNCLOG__ERROR_CODE__RECORDS_LOST && r->skip_to_offset > fp->position) {
		if (f->o.skip_lost) {
			f->lost += (uint64_t)(r->skip_to_offset - fp->position);
			position_set(f, fp, r->skip_to_offset);
			return 0;
		}
		snprintf(f->error, sizeof(f->error),
		         "topic '%s' partition %u: offsets %lld..%lld were lost to disk damage and cut out by synclogd "
		         "--repair: read on with --skip-lost, or from offset %lld",
		         f->topic, fp->partition, (long long)fp->position, (long long)r->skip_to_offset - 1,
		         (long long)r->skip_to_offset);
		return -ENODATA;
	}
	if (r->error == SYNCLOG__ERROR_CODE__OFFSET_OUT_OF_RANGE) {
		snprintf(
		        f->error, sizeof(f->error),
		        "topic '%s' partition %u: offset %lld is past the log end %lld: ask for an offset below it, or "
		        "--from latest",
		        f->topic, fp->partition, (long long)fp->position, (long long)r->next_offset);
		return -ERANGE;
	}
	snprintf(f->error, sizeof(f->error), "fetch topic '%s' partition %u: %s: %s", f->topic, fp->partition,
	         sl_error_name(r->error),
	         r->error_message != NULL && r->error_message[0] ? r->error_message : sl_error_message(r->error));
	return sl_errno_of_code(r->error);
}

/* Send one Fetch and wait for its answer. Returns 0 with f->resp set, or a negative errno. */
static int fetch_once(struct sl_fetcher *f)
{
	Synclog__Request req = SYNCLOG__REQUEST__INIT;
	Synclog__FetchRequest body = SYNCLOG__FETCH_REQUEST__INIT;
	Synclog__Response *resp;
	uint64_t cid;
	int64_t deadline_ms;
	size_t n = 0;
	int rc;

	/* The broker fills its answer in request order up to its frame limit: starting each Fetch one partition
	 * further keeps a partition with a backlog from starving the ones listed after it. */
	f->rotation++;
	for (uint32_t k = 0; k < f->part_count; k++) {
		uint32_t i = (f->rotation + k) % f->part_count;

		if (f->parts[i].done)
			continue;
		f->wire[n].partition = f->parts[i].partition;
		f->wire[n].offset = f->parts[i].position;
		f->wire[n].max_bytes = f->o.partition_bytes_max;
		f->wire_ptrs[n] = &f->wire[n];
		n++;
	}
	SL_ASSERT(n > 0);
	body.topic = f->topic;
	body.n_partitions = n;
	body.partitions = f->wire_ptrs;
	/* Reading up to a known end needs no long poll: the records are there. A short wait still keeps a broker
	 * that answers empty from being asked again in a tight loop. */
	body.max_wait_ms = f->o.stop_at_end ? 100 : f->o.max_wait_ms;
	body.min_bytes = 1;
	req.body_case = SYNCLOG__REQUEST__BODY_FETCH;
	req.fetch = &body;
	if (f->conn->fd < 0) {
		rc = sl_conn_connect(f->conn);
		if (rc != 0)
			return rc;
	}
	rc = sl_conn_queue(f->conn, &req, &cid);
	if (rc != 0)
		return rc;
	deadline_ms = sl_clock_mono_ms() + body.max_wait_ms + f->o.io_timeout_ms;
	for (;;) {
		while ((rc = sl_conn_take(f->conn, &resp)) == 1) {
			if (resp->correlation_id == cid) {
				f->resp = resp;
				return 0;
			}
		}
		if (rc < 0)
			return rc;
		if (sl_clock_mono_ms() >= deadline_ms) {
			sl_conn_set_error(f->conn, "broker did not answer a fetch within %u ms",
			                  body.max_wait_ms + f->o.io_timeout_ms);
			sl_conn_close(f->conn);
			return -ETIMEDOUT;
		}
		rc = sl_conn_pump(f->conn, (int)(deadline_ms - sl_clock_mono_ms()), 1);
		if (rc != 0) {
			/* On -EINTR the request is dropped with the connection: an answer arriving later must not
			 * be taken for the next request's. */
			if (rc == -EINTR)
				sl_conn_close(f->conn);
			return rc;
		}
	}
}

static bool connection_error(int rc)
{
	return rc == -ECONNRESET || rc == -ECONNREFUSED || rc == -EPIPE || rc == -ETIMEDOUT || rc == -ENOTCONN ||
	       rc == -EHOSTUNREACH || rc == -ENETUNREACH || rc == -ECONNABORTED || rc == -ESHUTDOWN;
}

int sl_fetcher_fetch(struct sl_fetcher *f)
{
	int64_t give_up_ms = sl_clock_mono_ms() + f->o.reconnect_timeout_ms;
	uint32_t backoff_ms = 100;
	int rc;

	if (f->kafka != NULL)
		return sl_kafka_fetcher_fetch(f->kafka);

	f->resp = NULL;
	f->cur = NULL;
	f->iter_active = false;
	f->error[0] = '\0';
	if (f->part_count == 0 || sl_fetcher_done(f))
		return 0;
	for (;;) {
		rc = fetch_once(f);
		if (rc == 0 && f->resp->error == SYNCLOG__ERROR_CODE__BROKER_SHUTTING_DOWN) {
			sl_conn_close(f->conn);
			rc = -ESHUTDOWN;
		}
		if (rc == 0 || !connection_error(rc) || sl_clock_mono_ms() >= give_up_ms)
			break;
		/* The broker went away: wait and ask again from the same positions. */
		if (poll(NULL, 0, (int)backoff_ms) < 0 && errno == EINTR)
			return -EINTR;
		backoff_ms = backoff_ms * 2 > 1000 ? 1000 : backoff_ms * 2;
	}
	if (rc != 0) {
		if (rc != -EINTR)
			snprintf(f->error, sizeof(f->error), "%s", sl_conn_error(f->conn));
		return rc;
	}
	if (f->resp->error != SYNCLOG__ERROR_CODE__NONE) {
		int code = f->resp->error;

		snprintf(f->error, sizeof(f->error), "fetch topic '%s': %s: %s", f->topic, sl_error_name(code),
		         f->resp->error_message != NULL && f->resp->error_message[0] ? f->resp->error_message
		                                                                     : sl_error_message(code));
		f->resp = NULL;
		return sl_errno_of_code(code);
	}
	if (f->resp->body_case != SYNCLOG__RESPONSE__BODY_FETCH) {
		snprintf(f->error, sizeof(f->error), "fetch topic '%s': the broker answered with another message",
		         f->topic);
		f->resp = NULL;
		return -EPROTO;
	}
	f->result_index = 0;
	/* Errors of each partition first, so that a failing partition is reported before any record is read. */
	for (size_t i = 0; i < f->resp->fetch->n_results; i++) {
		const Synclog__FetchPartitionResult *r = f->resp->fetch->results[i];
		struct fpart *fp = part_find(f, r->partition);

		if (fp == NULL)
			continue;
		rc = result_check(f, r, fp);
		if (rc != 0) {
			f->resp = NULL;
			return rc;
		}
	}
	return 0;
}

/* Start iterating the batch at f->pos. Returns 1, 0 when the bytes left hold no whole batch, or -EBADMSG. */
static int batch_open(struct sl_fetcher *f)
{
	struct sl_batch_header h;
	const char *why = NULL;
	size_t left = (size_t)(f->end - f->pos), total;
	int rc;

	if (sl_batch_header_parse(f->pos, left, &h) != 0)
		goto bad_or_partial;
	total = sl_batch_total_bytes(&h);
	if (total > left)
		return 0; /* a batch cut at the size limit: it comes whole in the next fetch */
	rc = sl_batch_validate_stored(f->pos, total, &h, NULL, 0, &why);
	/* The base offset lies outside the CRC: a damaged one would hand records out under wrong offsets, or
	 * have them skipped as lying before the position asked. Batches follow on and reach the position. */
	if (rc == 0 && (h.base_offset < f->batch_next || h.base_offset + h.last_offset_delta < f->cur->position)) {
		snprintf(f->error, sizeof(f->error),
		         "topic '%s' partition %u: the batch after offset %lld says it starts at offset %lld: the "
		         "broker's copy is damaged (its operator can run synclogd --repair)",
		         f->topic, f->cur->partition,
		         (long long)(f->batch_next == INT64_MIN ? f->cur->position : f->batch_next) - 1,
		         (long long)h.base_offset);
		return -EBADMSG;
	}
	if (rc != 0) {
		snprintf(f->error, sizeof(f->error), "topic '%s' partition %u: corrupt batch at offset %lld: %s",
		         f->topic, f->cur->partition, (long long)h.base_offset,
		         why != NULL ? why : "unsupported codec");
		return -EBADMSG;
	}
	for (;;) {
		rc = sl_record_iter_init(&f->iter, f->pos, total, f->scratch, f->scratch_cap);
		if (rc != -ENOBUFS)
			break;
		/* Decompressed records do not fit the scratch buffer: grow it, once per larger batch seen. */
		size_t cap = f->scratch_cap ? f->scratch_cap * 2 : SCRATCH_BYTES_INITIAL;
		uint8_t *p;

		if (f->scratch_cap >= SL_BATCH_BYTES_MAX || (p = realloc(f->scratch, cap)) == NULL) {
			snprintf(f->error, sizeof(f->error),
			         "topic '%s' partition %u: batch at offset %lld "
			         "decompresses to more than %u bytes",
			         f->topic, f->cur->partition, (long long)h.base_offset, SL_BATCH_BYTES_MAX);
			return -EBADMSG;
		}
		f->scratch = p;
		f->scratch_cap = cap;
	}
	if (rc != 0) {
		snprintf(f->error, sizeof(f->error), "topic '%s' partition %u: batch at offset %lld does not decode",
		         f->topic, f->cur->partition, (long long)h.base_offset);
		return -EBADMSG;
	}
	f->pos += total;
	f->batch_next = h.base_offset + h.last_offset_delta + 1;
	f->iter_active = true;
	return 1;

bad_or_partial:
	if (left < SL_BATCH_HEADER_BYTES)
		return 0;
	snprintf(f->error, sizeof(f->error), "topic '%s' partition %u: invalid batch header in the fetched records",
	         f->topic, f->cur->partition);
	return -EBADMSG;
}

/* Move to the next partition result that has records to hand out. Returns true when there is one. */
static bool result_next(struct sl_fetcher *f)
{
	while (f->result_index < f->resp->fetch->n_results) {
		const Synclog__FetchPartitionResult *r = f->resp->fetch->results[f->result_index++];
		struct fpart *fp = part_find(f, r->partition);

		if (fp == NULL || fp->done || r->error != SYNCLOG__ERROR_CODE__NONE || r->records.len == 0)
			continue;
		f->cur = fp;
		f->pos = r->records.data;
		f->end = r->records.data + r->records.len;
		f->batch_next = INT64_MIN;
		return true;
	}
	f->cur = NULL;
	return false;
}

int sl_fetcher_next(struct sl_fetcher *f, uint32_t *partition_out, struct sl_record *out)
{
	if (f->kafka != NULL)
		return sl_kafka_fetcher_next(f->kafka, partition_out, out);

	if (f->resp == NULL)
		return 0;
	for (;;) {
		if (f->iter_active) {
			int rc = sl_record_iter_next(&f->iter, out);

			if (rc < 0) {
				snprintf(f->error, sizeof(f->error),
				         "topic '%s' partition %u: malformed record in batch "
				         "at offset %lld",
				         f->topic, f->cur->partition, (long long)f->iter.header.base_offset);
				return -EBADMSG;
			}
			if (rc == 1) {
				if (out->offset < f->cur->position)
					continue; /* the batch started before the offset asked */
				if (f->o.stop_at_end && out->offset >= f->cur->end) {
					f->cur->done = true;
					f->iter_active = false;
					f->pos = f->end;
					continue;
				}
				f->cur->position = out->offset + 1;
				*partition_out = f->cur->partition;
				return 1;
			}
			/* Batch used up: skip any offsets it covered without records (compaction). */
			f->iter_active = false;
			position_set(f, f->cur,
			             f->iter.header.base_offset + (int64_t)f->iter.header.last_offset_delta + 1);
		}
		if (f->cur != NULL && !f->cur->done && f->pos < f->end) {
			int rc = batch_open(f);

			if (rc < 0)
				return rc;
			if (rc == 1)
				continue;
		}
		if (!result_next(f))
			return 0;
	}
}

/* ---- for the group consumer: partitions and positions set from outside ---- */

int sl_fetcher_new_unassigned(struct sl_fetcher **out, const struct sl_fetcher_options *o, char *err, size_t err_bytes)
{
	return fetcher_alloc(out, o, err, err_bytes);
}

int sl_fetcher_conn_security_copy(struct sl_fetcher *f, const struct sl_conn *from)
{
	return sl_conn_security_copy(f->conn, from);
}

static void answer_drop(struct sl_fetcher *f)
{
	f->resp = NULL;
	f->cur = NULL;
	f->iter_active = false;
}

int sl_fetcher_assign(struct sl_fetcher *f, const uint32_t *partitions, const int64_t *positions, const int64_t *ends,
                      uint32_t count)
{
	answer_drop(f);
	if (count > f->part_cap) {
		struct fpart *parts = realloc(f->parts, count * sizeof(*parts));
		struct fpart_key *keys;
		Synclog__FetchPartition *wire;
		Synclog__FetchPartition **ptrs;

		if (parts == NULL)
			return -ENOMEM;
		f->parts = parts;
		keys = realloc(f->keys, count * sizeof(*keys));
		if (keys == NULL)
			return -ENOMEM;
		f->keys = keys;
		wire = realloc(f->wire, count * sizeof(*wire));
		if (wire == NULL)
			return -ENOMEM;
		f->wire = wire;
		ptrs = realloc(f->wire_ptrs, count * sizeof(*ptrs));
		if (ptrs == NULL)
			return -ENOMEM;
		f->wire_ptrs = ptrs;
		f->part_cap = count;
	}
	f->part_count = count;
	for (uint32_t i = 0; i < count; i++) {
		SL_ASSERT(positions[i] >= 0);
		f->parts[i].partition = partitions[i];
		f->parts[i].position = positions[i];
		f->parts[i].end = ends != NULL ? ends[i] : INT64_MAX;
		f->parts[i].done = f->o.stop_at_end && f->parts[i].position >= f->parts[i].end;
		synclog__fetch_partition__init(&f->wire[i]);
	}
	keys_build(f);
	return 0;
}

int sl_fetcher_seek(struct sl_fetcher *f, uint32_t partition, int64_t position)
{
	struct fpart *fp = part_find(f, partition);

	if (f->kafka != NULL)
		return sl_kafka_fetcher_seek(f->kafka, partition, position);

	if (fp == NULL || position < 0)
		return -EINVAL;
	answer_drop(f);
	fp->position = position;
	fp->done = f->o.stop_at_end && position >= fp->end;
	return 0;
}

void sl_fetcher_set_max_wait(struct sl_fetcher *f, uint32_t max_wait_ms)
{
	f->o.max_wait_ms = max_wait_ms;
}

int64_t sl_fetcher_position_at(const struct sl_fetcher *f, uint32_t index)
{
	SL_ASSERT(index < f->part_count);
	return f->parts[index].position;
}

bool sl_fetcher_partition_done_at(const struct sl_fetcher *f, uint32_t index)
{
	SL_ASSERT(index < f->part_count);
	return f->parts[index].done;
}

bool sl_fetcher_partition_done(const struct sl_fetcher *f, uint32_t partition)
{
	const struct fpart *fp = part_find(f, partition);

	return fp != NULL ? fp->done : true;
}
