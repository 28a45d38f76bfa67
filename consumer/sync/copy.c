/* Copy a topic between two brokers, resumable, with a read back and digests of both sides (copy.h).
 *
 * A run goes: open -> (each partition) checkpoint or fresh start -> settle (a resumed run lets a dead one's last
 * records land) -> rounds of read, produce, await, commit -> read back -> compare. The state of one partition is
 * struct cpart: the committed checkpoint (s, d, count, digest), what the running round read and sent, and how
 * many of the records after s a dead run already put in the destination (skip, copy.h invariant 1). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <xxhash.h>

#include "proto/base/clock.h"
#include "proto/base/rate.h"
#include "consumer/client/client_impl.h"
#include "consumer/sync/copy.h"

/* How long a resumed run waits for the records a killed run had in flight: a broker appends a request it received
 * whole even after its sender died. The ends are read until they stop moving over one interval. */
#define SETTLE_INTERVAL_MS 500
#define SETTLE_ROUNDS_MAX  10
/* A checkpoint's text: the tag, a topic of at most 200 characters and five numbers. */
#define CHECKPOINT_BYTES   (SL_TOPIC_NAME_BYTES_MAX + 160)
_Static_assert(CHECKPOINT_BYTES <= SL_COMMIT_METADATA_BYTES_MAX, "a checkpoint fits a commit's metadata");

struct cpart {
	uint32_t partition;
	/* The checkpoint (copy.h): committed, or about to be with the round. */
	int64_t s0, d0, s, d;
	uint64_t count, digest;
	bool committed; /* the group holds a checkpoint of this partition */
	/* The round. */
	int64_t skip;       /* records at or after s a dead run put in the destination: read, not produced */
	int64_t read_next;  /* the source position after the last record read */
	uint64_t run_count; /* count and digest over every record read so far */
	uint64_t run_digest;
	uint64_t round_found, round_sent, round_acked;
	int64_t round_last_offset; /* destination offset of the last acknowledged record of the round, -1 */
};

struct copy {
	const struct sl_copy_options *o;
	struct sl_copy_result *res;
	struct sl_conn *src, *dst;
	struct sl_fetcher *f;
	struct sl_producer *p;
	struct cpart *parts;
	uint32_t n;
	XXH3_state_t *hash;
	struct sl_rate rate;
	struct sl_copy_progress progress;
	int64_t started_ms, next_progress_ms;
	int failed; /* a delivery failed: its errno */
	char *err;
	size_t err_bytes;
	char failure[SL_ERROR_BYTES];
};

void sl_copy_options_init(struct sl_copy_options *o)
{
	memset(o, 0, sizeof(*o));
	o->round_records_max = 100000;
	o->round_bytes_max = 16u << 20;
	o->progress_interval_ms = 200;
}

void sl_copy_result_free(struct sl_copy_result *r)
{
	free(r->partitions);
	r->partitions = NULL;
}

/* ---- the digest ---- */

static void hash_len(XXH3_state_t *h, int32_t len)
{
	XXH3_64bits_update(h, &len, sizeof(len));
}

/* Chain seed with one record: its timestamp, key and value (lengths first, so null and empty differ) and every
 * header's name and value, in order. */
static uint64_t record_digest(XXH3_state_t *h, const struct sl_record *r, uint64_t seed)
{
	const uint8_t *p = r->headers, *end = r->headers + (r->headers != NULL ? r->headers_len : 0);
	struct sl_record_header hd;

	XXH3_64bits_reset_withSeed(h, seed);
	XXH3_64bits_update(h, &r->timestamp_ms, sizeof(r->timestamp_ms));
	hash_len(h, r->key_len);
	if (r->key_len > 0)
		XXH3_64bits_update(h, r->key, (size_t)r->key_len);
	hash_len(h, r->value_len);
	if (r->value_len > 0)
		XXH3_64bits_update(h, r->value, (size_t)r->value_len);
	while (p != NULL && sl_record_header_next(&p, end, &hd) == 1) {
		hash_len(h, hd.name_len);
		XXH3_64bits_update(h, hd.name, (size_t)hd.name_len);
		hash_len(h, hd.value_len);
		if (hd.value_len > 0)
			XXH3_64bits_update(h, hd.value, (size_t)hd.value_len);
	}
	return XXH3_64bits_digest(h);
}

/* ---- checkpoints ---- */

static void checkpoint_format(const struct copy *c, const struct cpart *p, int64_t d, uint64_t count, uint64_t digest,
                              char out[CHECKPOINT_BYTES])
{
	snprintf(out, CHECKPOINT_BYTES,
	         SL_COPY_CHECKPOINT_TAG " topic=%s start=%" PRId64 " dstart=%" PRId64 " dnext=%" PRId64
	                                " count=%" PRIu64 " digest=%016" PRIx64,
	         c->res->to_topic, p->s0, p->d0, d, count, digest);
}

/* Read a committed checkpoint of partition p (offset s). Returns 0, or -EINVAL when the metadata is not this
 * copy's. */
static int checkpoint_parse(const struct copy *c, struct cpart *p, int64_t s, const char *meta)
{
	char topic[SL_TOPIC_NAME_BYTES_MAX + 1];
	long long s0, d0, d;
	unsigned long long count, digest;
	int used = 0;

	if (strncmp(meta, SL_COPY_CHECKPOINT_TAG " ", strlen(SL_COPY_CHECKPOINT_TAG) + 1) != 0 ||
	    sscanf(meta + strlen(SL_COPY_CHECKPOINT_TAG) + 1,
	           "topic=%200s start=%lld dstart=%lld dnext=%lld count=%llu "
	           "digest=%llx%n",
	           topic, &s0, &d0, &d, &count, &digest, &used) != 6 ||
	    strcmp(topic, c->res->to_topic) != 0 || s0 < 0 || d0 < 0 || d < d0 || s < s0)
		return -EINVAL;
	p->s0 = s0, p->d0 = d0, p->s = s, p->d = d, p->count = count, p->digest = digest;
	p->committed = true;
	return 0;
}

/* Commit the checkpoints of the partitions in which (all when which is NULL) to the group on the source. */
static int checkpoints_commit(struct copy *c, const bool *which)
{
	uint32_t *ids = calloc(c->n, sizeof(*ids));
	int64_t *offsets = calloc(c->n, sizeof(*offsets));
	char(*texts)[CHECKPOINT_BYTES] = calloc(c->n, sizeof(*texts));
	const char **meta = calloc(c->n, sizeof(*meta));
	uint32_t k = 0;
	int rc = ids && offsets && texts && meta ? 0 : -ENOMEM;

	for (uint32_t i = 0; rc == 0 && i < c->n; i++) {
		const struct cpart *p = &c->parts[i];

		if (which != NULL && !which[i])
			continue;
		ids[k] = p->partition;
		offsets[k] = p->s;
		checkpoint_format(c, p, p->d, p->count, p->digest, texts[k]);
		meta[k] = texts[k];
		k++;
	}
	if (rc == 0 && k > 0) {
		rc = sl_group_offsets_commit_metadata(c->src, c->res->group, c->o->topic, ids, offsets, meta, k);
		if (rc != 0)
			sl_error_set(c->err, c->err_bytes,
			             "committing the copy's checkpoint to group '%s' on the source: %s", c->res->group,
			             sl_conn_error(c->src));
	}
	for (uint32_t i = 0; rc == 0 && i < c->n; i++)
		if (which == NULL || which[i])
			c->parts[i].committed = true;
	free(ids);
	free(offsets);
	free(texts);
	free(meta);
	return rc;
}

/* ---- opening ---- */

static int conn_open(struct copy *c, const char *broker, struct sl_conn **out, const char *what)
{
	int rc = sl_conn_new(out, broker, "synclog-copy");

	if (rc != 0) {
		sl_error_set(c->err, c->err_bytes, "%s broker address '%s' is not HOST:PORT or kafka://HOST:PORT,...",
		             what, broker);
		return rc;
	}
	if (c->o->io_timeout_ms > 0)
		sl_conn_set_timeout(*out, c->o->io_timeout_ms);
	rc = sl_conn_set_kafka_config(*out, c->o->kafka_config);
	if (rc == 0 && ((rc = sl_conn_set_security(*out, c->o->security)) != 0 || (rc = sl_conn_connect(*out)) != 0))
		sl_error_set(c->err, c->err_bytes, "%s: %s", what, sl_conn_error(*out));
	return rc;
}

/* Describe the destination, creating it like the source when missing; its log starts and ends into starts and
 * ends (n entries each). */
static int target_prepare(struct copy *c, const struct sl_topic_config *src, int64_t *starts, int64_t *ends)
{
	struct sl_topic_config cfg;
	struct sl_partition_info *parts = NULL;
	uint32_t count = 0;
	int rc = sl_topic_describe(c->dst, c->res->to_topic, &cfg, &parts, &count);

	if (rc == -ENOENT) {
		struct sl_topic_config create = *src;

		snprintf(create.name, sizeof(create.name), "%s", c->res->to_topic);
		create.replication_factor = 0; /* the destination cluster's default */
		if (src->settings_unknown) {
			create.retention_ms = -1;
			create.retention_bytes = -1;
			create.segment_bytes = 0;
			create.segment_ms = 0;
		}
		rc = sl_topic_create(c->dst, &create);
		if (rc != 0) {
			sl_error_set(c->err, c->err_bytes, "creating the destination topic: %s", sl_conn_error(c->dst));
			return rc;
		}
		c->res->created = true;
		rc = sl_topic_describe(c->dst, c->res->to_topic, &cfg, &parts, &count);
	}
	if (rc != 0) {
		sl_error_set(c->err, c->err_bytes, "destination: %s", sl_conn_error(c->dst));
		free(parts);
		return rc;
	}
	if (count != c->n) {
		sl_error_set(
		        c->err, c->err_bytes,
		        "the destination topic '%s' has %u partitions and the source %u: a copy keeps every record "
		        "in its partition; copy into a topic of %u partitions (or a new name, --to-topic)",
		        c->res->to_topic, count, c->n, c->n);
		free(parts);
		return -EINVAL;
	}
	for (uint32_t i = 0; i < count; i++) {
		starts[i] = parts[i].earliest_offset;
		ends[i] = parts[i].next_offset;
	}
	free(parts);
	return 0;
}

/* The destination's log ends, read until they stop moving (a resumed run: what a dead run had sent lands). */
static int target_ends_settled(struct copy *c, int64_t *ends)
{
	uint32_t *ids = calloc(c->n, sizeof(*ids));
	int64_t *again = calloc(c->n, sizeof(*again));
	int rc = ids && again ? 0 : -ENOMEM;

	for (uint32_t i = 0; i < c->n; i++)
		if (ids != NULL)
			ids[i] = i;
	if (rc == 0)
		rc = sl_offsets_list(c->dst, c->res->to_topic, SL_OFFSET_LATEST, 0, ids, c->n, ends);
	for (int round = 0; rc == 0 && round < SETTLE_ROUNDS_MAX; round++) {
		struct timespec ts = {SETTLE_INTERVAL_MS / 1000, (SETTLE_INTERVAL_MS % 1000) * 1000000L};

		nanosleep(&ts, NULL);
		rc = sl_offsets_list(c->dst, c->res->to_topic, SL_OFFSET_LATEST, 0, ids, c->n, again);
		if (rc == 0 && memcmp(again, ends, c->n * sizeof(*ends)) == 0)
			break;
		if (rc == 0)
			memcpy(ends, again, c->n * sizeof(*ends));
	}
	if (rc != 0 && rc != -ENOMEM)
		sl_error_set(c->err, c->err_bytes, "destination: %s", sl_conn_error(c->dst));
	free(ids);
	free(again);
	return rc;
}

/* Where each partition stands: its checkpoint, or a fresh start (which needs an empty destination partition). */
static int positions_load(struct copy *c, const struct sl_partition_info *src, const int64_t *target_starts,
                          const int64_t *target_ends)
{
	uint32_t *ids = calloc(c->n, sizeof(*ids));
	struct sl_committed *got = calloc(c->n, sizeof(*got));
	bool *fresh = calloc(c->n, sizeof(*fresh));
	int rc = ids && got && fresh ? 0 : -ENOMEM;

	for (uint32_t i = 0; rc == 0 && i < c->n; i++)
		ids[i] = i;
	if (rc == 0 && (rc = sl_group_committed_get(c->src, c->res->group, c->o->topic, ids, c->n, got)) != 0)
		sl_error_set(c->err, c->err_bytes, "reading the copy's checkpoint from group '%s': %s", c->res->group,
		             sl_conn_error(c->src));
	for (uint32_t i = 0; rc == 0 && i < c->n; i++) {
		struct cpart *p = &c->parts[i];

		p->partition = i;
		if (got[i].offset >= 0) {
			if (checkpoint_parse(c, p, got[i].offset, got[i].metadata) != 0) {
				sl_error_set(
				        c->err, c->err_bytes,
				        "group '%s' has a commit on partition %u that is not a copy of topic '%s' to "
				        "'%s' (metadata '%.100s'): give this copy its own group (--group)",
				        c->res->group, i, c->o->topic, c->res->to_topic, got[i].metadata);
				rc = -EINVAL;
			}
			c->res->resumed = true;
			continue;
		}
		if (target_ends[i] > target_starts[i]) {
			/* Records that no checkpoint of this group accounts for. */
			sl_error_set(c->err, c->err_bytes,
			             "destination partition %u already holds records (up to offset %" PRId64
			             ") and group '%s' has no checkpoint for it: copy into an empty topic, or give the "
			             "group of the copy that filled it (--group)",
			             i, target_ends[i], c->res->group);
			rc = -EEXIST;
			break;
		}
		p->s0 = p->s = src[i].earliest_offset;
		p->d0 = p->d = target_ends[i];
		p->digest = 0;
		fresh[i] = true;
	}
	/* A fresh partition's checkpoint is committed before anything is produced to it: otherwise a run killed before
	 * its first commit would leave records that no checkpoint accounts for. */
	bool any = false;
	for (uint32_t i = 0; rc == 0 && i < c->n; i++)
		any |= fresh[i];
	if (rc == 0 && any)
		rc = checkpoints_commit(c, fresh);
	free(ids);
	free(got);
	free(fresh);
	return rc;
}

/* ---- rounds ---- */

static void delivered_cb(void *opaque, const struct sl_delivery *d, void *cb_arg)
{
	struct copy *c = cb_arg;
	struct cpart *p = &c->parts[(uintptr_t)opaque];

	if (d->status != 0) {
		if (c->failed == 0) {
			c->failed = d->status;
			snprintf(c->failure, sizeof(c->failure), "%s", d->error);
		}
		return;
	}
	p->round_acked++;
	if (d->offset > p->round_last_offset)
		p->round_last_offset = d->offset;
}

static void progress_report(struct copy *c, bool force)
{
	int64_t now = sl_clock_mono_ms();
	double secs;

	if (c->o->progress_cb == NULL || (!force && now < c->next_progress_ms))
		return;
	c->next_progress_ms = now + c->o->progress_interval_ms;
	c->progress.records = 0;
	for (uint32_t i = 0; i < c->n; i++)
		c->progress.records += c->parts[i].run_count;
	secs = (double)(now - c->started_ms) / 1000.0;
	c->progress.bytes = c->res->bytes;
	c->progress.bytes_per_s = secs > 0 ? (double)c->res->bytes / secs : 0;
	uint64_t left = c->progress.total > c->progress.records ? c->progress.total - c->progress.records : 0;
	double rate = secs > 0 ? (double)(c->res->copied + c->res->found) / secs : 0;
	c->progress.eta_s = rate > 0 ? (double)left / rate : -1;
	c->o->progress_cb(&c->progress, c->o->cb_arg);
}

/* Await everything sent in the round, check invariant 2, and commit the new checkpoints. */
static int round_end(struct copy *c)
{
	bool *moved = calloc(c->n, sizeof(*moved));
	int rc;

	if (moved == NULL)
		return -ENOMEM;
	while ((rc = sl_producer_flush(c->p, -1)) == -EINTR)
		;
	if (rc == 0 && c->failed != 0) {
		rc = c->failed;
		sl_error_set(c->err, c->err_bytes, "the destination refused a record: %s", c->failure);
	} else if (rc != 0) {
		sl_error_set(c->err, c->err_bytes, "the destination did not acknowledge every record: %s",
		             sl_producer_error(c->p));
	}
	for (uint32_t i = 0; rc == 0 && i < c->n; i++) {
		struct cpart *p = &c->parts[i];
		int64_t d = p->d + (int64_t)p->round_found + (int64_t)p->round_sent;

		if (p->read_next == p->s)
			continue;
		if (p->round_sent > 0 && (p->round_acked != p->round_sent || p->round_last_offset + 1 != d)) {
			sl_error_set(c->err, c->err_bytes,
			             "destination partition %u: the round's last record landed at offset %" PRId64
			             ", not %" PRId64 ": another producer writes to the destination topic; a copy "
			             "must be its only writer",
			             i, p->round_last_offset, d - 1);
			rc = -EBADE;
			break;
		}
		p->s = p->read_next;
		p->d = d;
		p->count = p->run_count;
		p->digest = p->run_digest;
		moved[i] = true;
	}
	if (rc == 0)
		rc = checkpoints_commit(c, moved);
	for (uint32_t i = 0; i < c->n; i++) {
		c->parts[i].round_found = c->parts[i].round_sent = c->parts[i].round_acked = 0;
		c->parts[i].round_last_offset = -1;
	}
	free(moved);
	return rc;
}

/* Wait until the rate lets one more record go, serving the producer meanwhile. Returns 0, -EINTR (a stop was
 * asked for) or the producer's failure. */
static int pace(struct copy *c)
{
	int64_t now = sl_clock_mono_ns(), until = now + sl_rate_take(&c->rate, 1, now);

	while (now < until) {
		int64_t left_ms = (until - now) / 1000000;

		if (left_ms >= 1) {
			int rc = sl_producer_poll(c->p, (uint32_t)left_ms);

			if (rc < 0 && rc != -EINTR)
				return rc;
		} else {
			struct timespec ts = {.tv_nsec = (long)(until - now)};

			nanosleep(&ts, NULL);
		}
		if (c->o->stop_cb != NULL && c->o->stop_cb(c->o->cb_arg))
			return -EINTR;
		now = sl_clock_mono_ns();
	}
	return 0;
}

/* Read the source to its end, producing what the destination lacks, in rounds. */
static int copy_records(struct copy *c)
{
	uint64_t round_records = 0, round_bytes = 0;
	int rc = 0;

	for (;;) {
		uint32_t partition;
		struct sl_record r;
		bool stop = c->o->stop_cb != NULL && c->o->stop_cb(c->o->cb_arg);

		rc = stop ? 0 : sl_fetcher_next(c->f, &partition, &r);
		if (rc < 0) {
			sl_error_set(c->err, c->err_bytes, "reading the source: %s", sl_fetcher_error(c->f));
			return rc;
		}
		if (rc == 0 && !stop && !sl_fetcher_done(c->f) && round_records < c->o->round_records_max &&
		    round_bytes < c->o->round_bytes_max) {
			rc = sl_fetcher_fetch(c->f);
			if (rc == -EINTR)
				continue;
			if (rc != 0) {
				sl_error_set(c->err, c->err_bytes, "reading the source: %s", sl_fetcher_error(c->f));
				return rc;
			}
			if (sl_fetcher_skipped(c->f) > 0) {
				c->res->lost = sl_fetcher_skipped(c->f);
				sl_error_set(c->err, c->err_bytes,
				             "%llu records of the source were removed by retention before they were "
				             "copied: the copy cannot be complete",
				             (unsigned long long)c->res->lost);
				return -ENODATA;
			}
			continue;
		}
		if (rc == 0) {
			/* A round is full, the source is at its end, or a stop was asked for: await and commit. */
			if ((rc = round_end(c)) != 0)
				return rc;
			round_records = round_bytes = 0;
			progress_report(c, true);
			if (stop)
				return -EINTR;
			if (sl_fetcher_done(c->f))
				return 0;
			continue;
		}
		struct cpart *p = &c->parts[partition];
		/* Paced before the record counts: a stop meanwhile leaves it for the next run (the round's checkpoint
		 * stays before it). */
		if (p->skip == 0 && c->o->rate_records_per_s > 0 && (rc = pace(c)) != 0) {
			if (rc != -EINTR) {
				sl_error_set(c->err, c->err_bytes, "the destination: %s", sl_producer_error(c->p));
				return rc;
			}
			rc = round_end(c);
			return rc != 0 ? rc : -EINTR;
		}
		p->run_digest = record_digest(c->hash, &r, p->run_digest);
		p->run_count++;
		p->read_next = r.offset + 1;
		if (p->skip > 0) {
			p->skip--;
			p->round_found++;
			c->res->found++;
		} else {
			uint64_t bytes = (r.key_len > 0 ? (uint64_t)r.key_len : 0) +
			                 (r.value_len > 0 ? (uint64_t)r.value_len : 0) +
			                 (r.headers_len > 0 ? (uint64_t)r.headers_len : 0);

			while ((rc = sl_producer_send(c->p, (int32_t)partition, &r, (void *)(uintptr_t)partition)) ==
			       -EINTR)
				;
			if (rc != 0) {
				sl_error_set(c->err, c->err_bytes, "destination partition %u: %s", partition,
				             sl_producer_error(c->p));
				return rc;
			}
			p->round_sent++;
			c->res->copied++;
			c->res->bytes += bytes;
			round_bytes += bytes;
			round_records++;
		}
		progress_report(c, false);
	}
}

/* ---- read back ---- */

static int target_verify(struct copy *c)
{
	struct sl_fetcher_options fo;
	struct sl_fetcher *f = NULL;
	uint64_t *count = calloc(c->n, sizeof(*count)), *digest = calloc(c->n, sizeof(*digest));
	int rc = count && digest ? 0 : -ENOMEM;

	sl_fetcher_options_init(&fo);
	fo.broker = c->o->to;
	fo.client_id = "synclog-copy-verify";
	fo.topic = c->res->to_topic;
	fo.stop_at_end = true;
	fo.kafka_config = c->o->kafka_config;
	fo.security = c->o->security;
	if (c->o->io_timeout_ms > 0)
		fo.io_timeout_ms = c->o->io_timeout_ms;
	if (rc == 0)
		rc = sl_fetcher_new(&f, &fo, c->err, c->err_bytes);
	for (uint32_t i = 0; rc == 0 && i < c->n; i++)
		rc = sl_fetcher_seek(f, i, c->parts[i].d0);
	c->progress.verifying = true;
	while (rc == 0 && !sl_fetcher_done(f)) {
		uint32_t partition;
		struct sl_record r;

		rc = sl_fetcher_fetch(f);
		if (rc == -EINTR) {
			rc = 0;
			continue;
		}
		while ((rc = sl_fetcher_next(f, &partition, &r)) == 1) {
			digest[partition] = record_digest(c->hash, &r, digest[partition]);
			count[partition]++;
		}
		if (rc > 0)
			rc = 0;
		progress_report(c, false);
	}
	if (rc != 0 && f != NULL)
		sl_error_set(c->err, c->err_bytes, "reading the destination back: %s", sl_fetcher_error(f));
	sl_fetcher_free(f);
	c->res->match = rc == 0;
	for (uint32_t i = 0; rc == 0 && i < c->n; i++) {
		struct sl_copy_partition *out = &c->res->partitions[i];

		out->target_records = count[i];
		out->target_digest = digest[i];
		out->match = count[i] == out->records && digest[i] == out->source_digest;
		c->res->match &= out->match;
	}
	free(count);
	free(digest);
	return rc;
}

/* ---- the run ---- */

static int copy_open(struct copy *c, struct sl_partition_info **src_parts, struct sl_topic_config *src_cfg)
{
	const struct sl_copy_options *o = c->o;
	uint32_t count;
	int rc = conn_open(c, o->from, &c->src, "source");

	if (rc == 0)
		rc = conn_open(c, o->to, &c->dst, "destination");
	if (rc != 0)
		return rc;
	rc = sl_topic_describe(c->src, o->topic, src_cfg, src_parts, &count);
	if (rc != 0) {
		sl_error_set(c->err, c->err_bytes, "source: %s", sl_conn_error(c->src));
		return rc;
	}
	c->n = count;
	c->parts = calloc(count ? count : 1, sizeof(*c->parts));
	c->res->partitions = calloc(count ? count : 1, sizeof(*c->res->partitions));
	c->hash = XXH3_createState();
	if (c->parts == NULL || c->res->partitions == NULL || c->hash == NULL)
		return -ENOMEM;
	c->res->partition_count = count;
	return 0;
}

static int streams_open(struct copy *c)
{
	struct sl_fetcher_options fo;
	struct sl_producer_options po;
	int rc;

	sl_fetcher_options_init(&fo);
	fo.broker = c->o->from;
	fo.client_id = "synclog-copy";
	fo.topic = c->o->topic;
	fo.stop_at_end = true;
	fo.kafka_config = c->o->kafka_config;
	fo.security = c->o->security;
	if (c->o->io_timeout_ms > 0)
		fo.io_timeout_ms = c->o->io_timeout_ms;
	rc = sl_fetcher_new(&c->f, &fo, c->err, c->err_bytes);
	for (uint32_t i = 0; rc == 0 && i < c->n; i++)
		rc = sl_fetcher_seek(c->f, i, c->parts[i].s);
	if (rc != 0)
		return rc;
	sl_producer_options_init(&po);
	po.broker = c->o->to;
	po.client_id = "synclog-copy";
	po.topic = c->res->to_topic;
	po.acks = SL_ACKS_FSYNC;
	po.delivery_cb = delivered_cb;
	po.delivery_cb_arg = c;
	po.kafka_config = c->o->kafka_config;
	po.security = c->o->security;
	if (c->o->io_timeout_ms > 0)
		po.io_timeout_ms = c->o->io_timeout_ms;
	return sl_producer_new(&c->p, &po, c->err, c->err_bytes);
}

int sl_copy_run(const struct sl_copy_options *o, struct sl_copy_result *out, char *err, size_t err_bytes)
{
	struct copy c = {.o = o, .res = out, .err = err, .err_bytes = err_bytes};
	struct sl_topic_config src_cfg;
	struct sl_partition_info *src_parts = NULL;
	int64_t *ends = NULL, *starts = NULL;
	int rc;

	memset(out, 0, sizeof(*out));
	snprintf(out->to_topic, sizeof(out->to_topic), "%s", o->to_topic != NULL ? o->to_topic : o->topic);
	if (o->group != NULL)
		snprintf(out->group, sizeof(out->group), "%s", o->group);
	else
		snprintf(out->group, sizeof(out->group), SL_COPY_GROUP_PREFIX "%s", out->to_topic);
	if (strlen(SL_COPY_GROUP_PREFIX) + strlen(out->to_topic) > SL_GROUP_NAME_BYTES_MAX && o->group == NULL) {
		sl_error_set(err, err_bytes, "the default group name would be too long: give one with --group");
		return -EINVAL;
	}
	rc = copy_open(&c, &src_parts, &src_cfg);
	if (rc == 0 && ((ends = calloc(c.n ? c.n : 1, sizeof(*ends))) == NULL ||
	                (starts = calloc(c.n ? c.n : 1, sizeof(*starts))) == NULL))
		rc = -ENOMEM;
	if (rc == 0)
		rc = target_prepare(&c, &src_cfg, starts, ends);
	if (rc == 0)
		rc = positions_load(&c, src_parts, starts, ends);
	/* A resumed run: the destination's records past each checkpoint are what a dead run got there. */
	if (rc == 0 && out->resumed)
		rc = target_ends_settled(&c, ends);
	for (uint32_t i = 0; rc == 0 && i < c.n; i++) {
		struct cpart *p = &c.parts[i];

		if (ends[i] < p->d) {
			sl_error_set(err, err_bytes,
			             "destination partition %u ends at offset %" PRId64
			             ", before the copy's checkpoint "
			             "(%" PRId64 "): it lost records (was the topic deleted and created again?)",
			             i, ends[i], p->d);
			rc = -ERANGE;
			break;
		}
		p->skip = ends[i] - p->d;
		p->read_next = p->s;
		p->run_count = p->count;
		p->run_digest = p->digest;
		p->round_last_offset = -1;
		c.progress.total +=
		        p->count + (uint64_t)(src_parts[i].next_offset > p->s ? src_parts[i].next_offset - p->s : 0);
	}
	c.started_ms = sl_clock_mono_ms();
	/* A tenth of a second's worth of burst: the pace holds over any second. */
	sl_rate_init(&c.rate, (double)o->rate_records_per_s, (double)o->rate_records_per_s / 10, sl_clock_mono_ns());
	if (rc == 0)
		rc = streams_open(&c);
	if (rc == 0)
		rc = copy_records(&c);
	out->seconds = (double)(sl_clock_mono_ms() - c.started_ms) / 1000.0;
	for (uint32_t i = 0; i < c.n && out->partitions != NULL; i++) {
		out->partitions[i].partition = i;
		out->partitions[i].records = c.parts[i].count;
		out->partitions[i].source_digest = c.parts[i].digest;
		out->records += c.parts[i].count;
	}
	sl_producer_free(c.p);
	c.p = NULL;
	if (rc == 0)
		rc = target_verify(&c);
	if (rc == 0)
		progress_report(&c, true);
	if (rc == 0 && !out->match) {
		sl_error_set(err, err_bytes,
		             "the destination does not match the source: see the partitions marked DIFFER");
		rc = -EBADE;
	}
	sl_fetcher_free(c.f);
	sl_conn_free(c.src);
	sl_conn_free(c.dst);
	if (c.hash != NULL)
		XXH3_freeState(c.hash);
	free(c.parts);
	free(src_parts);
	free(ends);
	free(starts);
	return rc;
}
