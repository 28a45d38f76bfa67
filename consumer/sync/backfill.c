/* The backfill engine (backfill.h has the run and its guarantees).
 *
 * CHECKPOINT FORMAT: one JSON object, replaced atomically (sl_fs_replace_atomic) before every chunk is sent and at
 * the end:
 *   format        1
 *   topic         the topic                                   \
 *   source        the source's spec                            > identity: a checkpoint of another backfill is
 *   key, version, value   the column names (value: null)      /  refused, never resumed
 *   chunk_rows    rows per chunk when it was written
 *   done_key      hex of the last key whose row and every row before it are acknowledged; null: none yet
 *   sent_key      hex of the last key sent; rows in (done_key, sent_key] may or may not be in the topic
 *   mark          per partition, an offset at or before the first record of any row after done_key
 *   rows, acknowledged, skipped, recovered   counts as of done_key
 *   checksum      16 hex digits: the chained XXH3 of (key, version) of every row up to done_key
 *   finished      true once every row is acknowledged
 *   started_at_ms, updated_at_ms
 * Keys are written in hex because a key is any bytes and a JSON string must be UTF-8.
 *
 * INVARIANTS
 *   1. Before a record of a row after done_key is sent, a checkpoint whose sent_key is at or after that row's key
 *      and whose mark is at or before the log end of that moment is on disk.
 *   2. done_key only moves past a chunk once every record of it (and of every chunk before) is acknowledged.
 *   3. The counts and checksum of a checkpoint are those of the rows up to its done_key, in key order.
 *   4. A resumed run keeps the window it recovered in every checkpoint until done_key passes it: sent_key at or
 *      after the window's sent_key, and mark at or before the window's mark. The dead run's records of the window
 *      lie before any mark this run takes, and its last chunks may reach past this run's first ones, so a
 *      checkpoint with this run's own mark or sent_key would hide them from the next resume, which would produce
 *      them again (a kill -9 of the resumed run before its first chunk was acknowledged did). */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <xxhash.h>

#include "proto/base/clock.h"
#include "proto/base/fs.h"
#include "proto/base/rate.h"
#include "consumer/client/client_impl.h"
#include "consumer/sync/backfill.h"

#define CHECKPOINT_FORMAT    1
#define CHECKPOINT_BYTES_MAX (4u << 20)
/* How long a resumed run waits before it reads what the dead run left in the topic: a request the dead process had
 * written to its socket reaches the log within the broker's request time, far below this. */
#define SETTLE_MS            2000
/* A backfill's records may wait on the broker's quota (synclogd --backfill-rate-max): it waits, it does not fail. */
#define DELIVERY_TIMEOUT_MS  120000
/* Rows of the recovery window at most: CHUNKS_IN_FLIGHT chunks, and another backfill's records in the same keys. */
#define RECOVERY_ROWS_MAX    10000000u
/* How long a backfill record waits for company before its batch goes: nobody waits for a backfill record, and a
 * paced backfill (a few records each millisecond) would otherwise send a request, and cost the broker an append
 * and an fsync, for every handful of records, beside live traffic that does wait. At full speed batches fill up
 * long before. */
#define LINGER_MS            50
/* The clock is read every this many rows when not rate limited (timestamps, progress). */
#define CLOCK_ROWS           64

struct buf {
	uint8_t *data;
	size_t len;
	size_t cap;
};

static int buf_room(struct buf *b, size_t more)
{
	size_t cap = b->cap ? b->cap : 4096;
	uint8_t *d;

	if (b->len + more <= b->cap)
		return 0;
	while (cap < b->len + more)
		cap *= 2;
	d = realloc(b->data, cap);
	if (d == NULL)
		return -ENOMEM;
	b->data = d;
	b->cap = cap;
	return 0;
}

static int buf_set(struct buf *b, const void *p, size_t len)
{
	b->len = 0;
	if (buf_room(b, len) != 0)
		return -ENOMEM;
	if (len > 0)
		memcpy(b->data, p, len);
	b->len = len;
	return 0;
}

/* A row of a chunk: offsets into the chunk's arena. */
struct crow {
	size_t key_off, value_off, bad_off;
	uint32_t key_len, value_len, bad_len;
	bool has_key, has_value, bad, deleted;
	int64_t version;
	uint64_t position;
};

/* What the counts and the checksum are after some row. */
struct tally {
	uint64_t rows, acknowledged, skipped, recovered, checksum;
};

struct chunk {
	struct crow *rows;
	uint32_t count;
	uint32_t cap;
	struct buf arena;
	uint64_t to_ack; /* records sent */
	uint64_t acked;  /* acknowledgements received */
	uint64_t failed;
	int64_t *mark;     /* per partition */
	bool has_last_key; /* the chunk's last key: arena[last_off, +last_len) */
	size_t last_off;
	uint32_t last_len;
	struct tally end; /* after its last row */
};

/* The rows a dead run may have left in the topic: (key, version), open addressing. */
struct seen {
	uint64_t *hash; /* 0: empty slot */
	int64_t *version;
	size_t *key_off;
	uint32_t *key_len;
	size_t cap;
	size_t count;
	struct buf keys;
};

struct ckpt {
	bool has_done, has_sent;
	struct buf done_key, sent_key;
	int64_t *mark;
	uint32_t mark_count;
	struct tally at_done;
	uint32_t chunk_rows;
	bool finished;
	int64_t started_at_ms;
};

struct bf {
	const struct sl_backfill_options *o;
	struct sl_producer *p;
	struct sl_conn *admin;
	uint32_t partitions;
	uint32_t *partition_ids;
	struct chunk chunks[SL_BACKFILL_CHUNKS_IN_FLIGHT];
	uint32_t oldest; /* index of the oldest chunk in flight */
	uint32_t in_flight;
	bool source_done;
	struct ckpt ck;        /* what the checkpoint says (as read, then as written) */
	struct tally run;      /* after the last row sent */
	struct tally start;    /* as the run started (from the checkpoint) */
	uint64_t acknowledged; /* records acknowledged and rows recovered, this run and those it resumed */
	struct buf last_sent_key;
	bool has_last_sent;
	struct seen seen; /* the recovery window's rows already in the topic */
	/* Invariant 4: the window recovered at the start (window_mark NULL: none). */
	struct buf window_sent_key;
	int64_t *window_mark;
	struct sl_rate rate_records, rate_bytes;
	struct sl_backfill_progress progress;
	int64_t started_ns;
	int64_t next_progress_ns;
	int64_t now_ms; /* wall clock of the last reading, for record timestamps */
	uint32_t unclocked;
	char first_failure[SL_ERROR_BYTES];
	char *err;
	size_t err_bytes;
};

void sl_backfill_options_init(struct sl_backfill_options *o)
{
	memset(o, 0, sizeof(*o));
	o->chunk_rows = 10000;
	o->acks = SL_ACKS_FSYNC;
	o->progress_interval_ms = 200;
}

static uint64_t checksum_add(uint64_t sum, const uint8_t *key, size_t key_len, int64_t version)
{
	uint8_t v[8];

	for (int i = 0; i < 8; i++)
		v[i] = (uint8_t)((uint64_t)version >> (8 * i));
	return XXH3_64bits_withSeed(v, sizeof(v), XXH3_64bits_withSeed(key, key_len, sum));
}

/* ---- checkpoint ---- */

static void hex_put(char *out, const uint8_t *p, size_t len)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < len; i++) {
		out[2 * i] = digits[p[i] >> 4];
		out[2 * i + 1] = digits[p[i] & 15];
	}
	out[2 * len] = '\0';
}

static json_t *hex_json(const struct buf *b, bool has)
{
	char *hex;
	json_t *j;

	if (!has)
		return json_null();
	hex = malloc(2 * b->len + 1);
	if (hex == NULL)
		return NULL;
	hex_put(hex, b->data, b->len);
	j = json_string(hex);
	free(hex);
	return j;
}

static int hex_get(const json_t *j, struct buf *b, bool *has)
{
	const char *s;
	size_t n;

	*has = false;
	if (json_is_null(j))
		return 0;
	if (!json_is_string(j))
		return -EINVAL;
	s = json_string_value(j);
	n = strlen(s);
	if (n % 2 != 0)
		return -EINVAL;
	b->len = 0;
	if (buf_room(b, n / 2 + 1) != 0)
		return -ENOMEM;
	for (size_t i = 0; i < n; i += 2) {
		unsigned v;

		if (sscanf(s + i, "%2x", &v) != 1)
			return -EINVAL;
		b->data[b->len++] = (uint8_t)v;
	}
	*has = true;
	return 0;
}

static const char *str_or_null(const json_t *j)
{
	return json_is_string(j) ? json_string_value(j) : NULL;
}

static bool same_name(const json_t *j, const char *want)
{
	const char *have = str_or_null(j);

	return want == NULL ? json_is_null(j) : have != NULL && strcmp(have, want) == 0;
}

static int ckpt_write(struct bf *b, bool finished)
{
	const struct sl_backfill_options *o = b->o;
	char sum[17];
	json_t *j = json_object(), *mark = json_array();
	char *text;
	int rc;

	snprintf(sum, sizeof(sum), "%016llx", (unsigned long long)b->ck.at_done.checksum);
	for (uint32_t i = 0; i < b->ck.mark_count; i++)
		json_array_append_new(mark, json_integer(b->ck.mark[i]));
	json_object_set_new(j, "format", json_integer(CHECKPOINT_FORMAT));
	json_object_set_new(j, "topic", json_string(o->topic));
	json_object_set_new(j, "source", json_string(o->source->spec));
	json_object_set_new(j, "key", json_string(o->columns->key));
	json_object_set_new(j, "version", json_string(o->columns->version));
	json_object_set_new(j, "value", o->columns->value != NULL ? json_string(o->columns->value) : json_null());
	json_object_set_new(j, "chunk_rows", json_integer(o->chunk_rows));
	json_object_set_new(j, "done_key", hex_json(&b->ck.done_key, b->ck.has_done));
	json_object_set_new(j, "sent_key", hex_json(&b->ck.sent_key, b->ck.has_sent));
	json_object_set_new(j, "mark", mark);
	json_object_set_new(j, "rows", json_integer((json_int_t)b->ck.at_done.rows));
	json_object_set_new(j, "acknowledged", json_integer((json_int_t)b->ck.at_done.acknowledged));
	json_object_set_new(j, "skipped", json_integer((json_int_t)b->ck.at_done.skipped));
	json_object_set_new(j, "recovered", json_integer((json_int_t)b->ck.at_done.recovered));
	json_object_set_new(j, "checksum", json_string(sum));
	json_object_set_new(j, "finished", json_boolean(finished));
	json_object_set_new(j, "started_at_ms", json_integer(b->ck.started_at_ms));
	json_object_set_new(j, "updated_at_ms", json_integer(sl_clock_wall_ms()));
	text = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	if (text == NULL) {
		sl_error_set(b->err, b->err_bytes, "out of memory writing the checkpoint");
		return -ENOMEM;
	}
	rc = sl_fs_replace_atomic(o->checkpoint_path, text, strlen(text));
	free(text);
	if (rc != 0)
		sl_error_set(b->err, b->err_bytes,
		             "cannot write the checkpoint %s: %s (check the directory, or give --checkpoint "
		             "PATH)",
		             o->checkpoint_path, strerror(-rc));
	return rc;
}

static int ckpt_bad(struct bf *b, const char *why)
{
	sl_error_set(b->err, b->err_bytes,
	             "checkpoint %s %s: give --restart to start over, or --checkpoint PATH for another run",
	             b->o->checkpoint_path, why);
	return -EINVAL;
}

/* Read the checkpoint into b->ck. 1 when there is one to resume, 0 when none, or a negative errno. */
static int ckpt_read(struct bf *b)
{
	const struct sl_backfill_options *o = b->o;
	char *text = malloc(CHECKPOINT_BYTES_MAX);
	json_t *j, *mark;
	json_error_t jerr;
	size_t len;
	int rc = text == NULL ? -ENOMEM : sl_fs_read_small(o->checkpoint_path, text, CHECKPOINT_BYTES_MAX, &len);
	unsigned long long sum;

	if (rc == -ENOENT) {
		free(text);
		return 0;
	}
	if (rc != 0) {
		free(text);
		sl_error_set(b->err, b->err_bytes, "cannot read the checkpoint %s: %s", o->checkpoint_path,
		             strerror(-rc));
		return rc;
	}
	j = json_loadb(text, len, 0, &jerr);
	free(text);
	if (!json_is_object(j)) {
		json_decref(j);
		return ckpt_bad(b, "is not a backfill checkpoint");
	}
	if (json_integer_value(json_object_get(j, "format")) != CHECKPOINT_FORMAT ||
	    !same_name(json_object_get(j, "topic"), o->topic) ||
	    !same_name(json_object_get(j, "source"), o->source->spec) ||
	    !same_name(json_object_get(j, "key"), o->columns->key) ||
	    !same_name(json_object_get(j, "version"), o->columns->version) ||
	    !same_name(json_object_get(j, "value"), o->columns->value)) {
		json_decref(j);
		return ckpt_bad(b, "belongs to another backfill (topic, source or columns differ)");
	}
	mark = json_object_get(j, "mark");
	b->ck.mark_count = (uint32_t)json_array_size(mark);
	b->ck.mark = calloc(b->ck.mark_count ? b->ck.mark_count : 1, sizeof(*b->ck.mark));
	rc = b->ck.mark == NULL ? -ENOMEM : 0;
	for (uint32_t i = 0; rc == 0 && i < b->ck.mark_count; i++)
		b->ck.mark[i] = json_integer_value(json_array_get(mark, i));
	if (rc == 0)
		rc = hex_get(json_object_get(j, "done_key"), &b->ck.done_key, &b->ck.has_done);
	if (rc == 0)
		rc = hex_get(json_object_get(j, "sent_key"), &b->ck.sent_key, &b->ck.has_sent);
	if (rc == 0 &&
	    sscanf(str_or_null(json_object_get(j, "checksum")) ? str_or_null(json_object_get(j, "checksum")) : "",
	           "%16llx", &sum) != 1)
		rc = -EINVAL;
	b->ck.at_done = (struct tally){
	        .rows = (uint64_t)json_integer_value(json_object_get(j, "rows")),
	        .acknowledged = (uint64_t)json_integer_value(json_object_get(j, "acknowledged")),
	        .skipped = (uint64_t)json_integer_value(json_object_get(j, "skipped")),
	        .recovered = (uint64_t)json_integer_value(json_object_get(j, "recovered")),
	        .checksum = rc == 0 ? sum : 0,
	};
	b->ck.chunk_rows = (uint32_t)json_integer_value(json_object_get(j, "chunk_rows"));
	b->ck.finished = json_is_true(json_object_get(j, "finished"));
	b->ck.started_at_ms = json_integer_value(json_object_get(j, "started_at_ms"));
	json_decref(j);
	if (rc == -ENOMEM) {
		sl_error_set(b->err, b->err_bytes, "out of memory");
		return rc;
	}
	if (rc != 0)
		return ckpt_bad(b, "is damaged");
	return 1;
}

/* ---- the topic ---- */

/* Every partition's log end now, into mark. */
static int marks_take(struct bf *b, int64_t *mark)
{
	int rc = sl_offsets_list(b->admin, b->o->topic, SL_OFFSET_LATEST, 0, b->partition_ids, b->partitions, mark);

	if (rc != 0)
		sl_error_set(b->err, b->err_bytes, "reading the log ends of '%s': %s", b->o->topic,
		             sl_conn_error(b->admin));
	return rc;
}

static void delivered_cb(void *opaque, const struct sl_delivery *d, void *cb_arg)
{
	struct bf *b = cb_arg;
	struct chunk *c = opaque;

	if (d->status == 0) {
		c->acked++;
		b->acknowledged++;
		return;
	}
	if (c->failed++ == 0 && b->first_failure[0] == '\0')
		snprintf(b->first_failure, sizeof(b->first_failure), "%s", d->error);
}

/* ---- recovery ---- */

static uint64_t seen_hash(const uint8_t *key, size_t len, int64_t version)
{
	uint64_t h = XXH3_64bits_withSeed(key, len, (uint64_t)version);

	return h ? h : 1;
}

static int seen_grow(struct seen *s)
{
	struct seen n = {.cap = s->cap ? s->cap * 2 : 1024, .keys = s->keys};

	n.hash = calloc(n.cap, sizeof(*n.hash));
	n.version = calloc(n.cap, sizeof(*n.version));
	n.key_off = calloc(n.cap, sizeof(*n.key_off));
	n.key_len = calloc(n.cap, sizeof(*n.key_len));
	if (n.hash == NULL || n.version == NULL || n.key_off == NULL || n.key_len == NULL) {
		free(n.hash);
		free(n.version);
		free(n.key_off);
		free(n.key_len);
		return -ENOMEM;
	}
	for (size_t i = 0; i < s->cap; i++) {
		size_t j;

		if (s->hash[i] == 0)
			continue;
		for (j = s->hash[i] & (n.cap - 1); n.hash[j] != 0; j = (j + 1) & (n.cap - 1))
			;
		n.hash[j] = s->hash[i];
		n.version[j] = s->version[i];
		n.key_off[j] = s->key_off[i];
		n.key_len[j] = s->key_len[i];
	}
	n.count = s->count;
	free(s->hash);
	free(s->version);
	free(s->key_off);
	free(s->key_len);
	*s = n;
	return 0;
}

/* Find (key, version); with add, insert it when missing. Returns 1 found, 0 not, negative errno. */
static int seen_find(struct seen *s, const uint8_t *key, size_t len, int64_t version, bool add)
{
	uint64_t h = seen_hash(key, len, version);
	size_t i;

	if (s->cap > 0) {
		for (i = h & (s->cap - 1); s->hash[i] != 0; i = (i + 1) & (s->cap - 1))
			if (s->hash[i] == h && s->version[i] == version && s->key_len[i] == len &&
			    memcmp(s->keys.data + s->key_off[i], key, len) == 0)
				return 1;
	}
	if (!add)
		return 0;
	if (s->count >= RECOVERY_ROWS_MAX)
		return -E2BIG;
	if ((s->count + 1) * 2 > s->cap && seen_grow(s) != 0)
		return -ENOMEM;
	if (buf_room(&s->keys, len) != 0)
		return -ENOMEM;
	for (i = h & (s->cap - 1); s->hash[i] != 0; i = (i + 1) & (s->cap - 1))
		;
	s->hash[i] = h;
	s->version[i] = version;
	s->key_off[i] = s->keys.len;
	s->key_len[i] = (uint32_t)len;
	memcpy(s->keys.data + s->keys.len, key, len);
	s->keys.len += len;
	s->count++;
	return 0;
}

static void seen_free(struct seen *s)
{
	free(s->hash);
	free(s->version);
	free(s->key_off);
	free(s->key_len);
	free(s->keys.data);
	memset(s, 0, sizeof(*s));
}

static bool in_window(const struct ckpt *ck, const uint8_t *key, size_t len)
{
	if (ck->has_done && sl_source_key_compare(key, len, ck->done_key.data, ck->done_key.len) <= 0)
		return false;
	return sl_source_key_compare(key, len, ck->sent_key.data, ck->sent_key.len) <= 0;
}

/* Read the topic from the checkpoint's mark to its end and note the backfill records of the window (done_key,
 * sent_key] (backfill.h, "Resuming"). */
static int recover(struct bf *b)
{
	struct sl_fetcher_options fo;
	struct sl_fetcher *f = NULL;
	struct timespec settle = {.tv_sec = SETTLE_MS / 1000, .tv_nsec = (SETTLE_MS % 1000) * 1000000L};
	int rc;

	if (!b->ck.has_sent || b->ck.mark_count != b->partitions)
		return b->ck.has_sent ? ckpt_bad(b, "was written when the topic had another number of partitions") : 0;
	nanosleep(&settle, NULL);
	sl_fetcher_options_init(&fo);
	fo.broker = b->o->broker;
	fo.security = b->o->security;
	fo.client_id = "synclog-backfill-recover";
	fo.topic = b->o->topic;
	fo.stop_at_end = true;
	fo.kafka_config = b->o->kafka_config;
	if (b->o->io_timeout_ms > 0)
		fo.io_timeout_ms = b->o->io_timeout_ms;
	rc = sl_fetcher_new(&f, &fo, b->err, b->err_bytes);
	for (uint32_t p = 0; rc == 0 && p < b->partitions; p++)
		rc = sl_fetcher_seek(f, p, b->ck.mark[p] >= 0 ? b->ck.mark[p] : 0);
	while (rc == 0 && !sl_fetcher_done(f)) {
		struct sl_record r;
		uint32_t part;

		rc = sl_fetcher_fetch(f);
		while (rc == 0 && (rc = sl_fetcher_next(f, &part, &r)) == 1) {
			rc = 0;
			if (r.origin != SL_ORIGIN_BACKFILL || r.key == NULL || r.key_len <= 0 ||
			    !in_window(&b->ck, r.key, (size_t)r.key_len))
				continue;
			rc = seen_find(&b->seen, r.key, (size_t)r.key_len, r.version, true);
			if (rc == 1)
				rc = 0;
		}
	}
	if (rc == -E2BIG)
		sl_error_set(b->err, b->err_bytes,
		             "more than %u backfill records in the keys to recover: is another backfill of "
		             "the same keys running? Let it finish, or give --restart",
		             RECOVERY_ROWS_MAX);
	else if (rc < 0 && f != NULL)
		sl_error_set(b->err, b->err_bytes, "reading the topic to resume: %s", sl_fetcher_error(f));
	sl_fetcher_free(f);
	return rc < 0 ? rc : 0;
}

/* ---- chunks ---- */

static int arena_add(struct chunk *c, const void *p, size_t len, size_t *off)
{
	if (buf_room(&c->arena, len) != 0)
		return -ENOMEM;
	*off = c->arena.len;
	if (len > 0)
		memcpy(c->arena.data + c->arena.len, p, len);
	c->arena.len += len;
	return 0;
}

static int chunk_add(struct chunk *c, const struct sl_source_row *row)
{
	struct crow *r;
	int rc = 0;

	if (c->count == c->cap) {
		uint32_t cap = c->cap ? c->cap * 2 : 1024;
		struct crow *rows = realloc(c->rows, cap * sizeof(*rows));

		if (rows == NULL)
			return -ENOMEM;
		c->rows = rows;
		c->cap = cap;
	}
	r = &c->rows[c->count];
	memset(r, 0, sizeof(*r));
	r->version = row->version;
	r->position = row->position;
	r->deleted = row->deleted;
	r->has_key = row->key != NULL;
	if (r->has_key) {
		rc = arena_add(c, row->key, row->key_len, &r->key_off);
		r->key_len = (uint32_t)row->key_len;
	}
	r->has_value = row->value != NULL;
	if (rc == 0 && r->has_value) {
		rc = arena_add(c, row->value, row->value_len, &r->value_off);
		r->value_len = (uint32_t)row->value_len;
	}
	r->bad = row->bad != NULL;
	if (rc == 0 && r->bad) {
		rc = arena_add(c, row->bad, strlen(row->bad) + 1, &r->bad_off);
		r->bad_len = (uint32_t)strlen(row->bad);
	}
	if (rc != 0)
		return rc;
	if (r->has_key) {
		c->has_last_key = true;
		c->last_off = r->key_off;
		c->last_len = r->key_len;
	}
	c->count++;
	return 0;
}

/* Read the next chunk from the source into c. */
static int chunk_read(struct bf *b, struct chunk *c)
{
	struct sl_source *src = b->o->source;

	c->count = 0;
	c->arena.len = 0;
	c->to_ack = c->acked = c->failed = 0;
	c->has_last_key = false;
	while (c->count < b->o->chunk_rows) {
		struct sl_source_row row;
		int rc = src->ops->next(src->ctx, &row);

		if (rc == 0) {
			b->source_done = true;
			break;
		}
		if (rc < 0) {
			sl_error_set(b->err, b->err_bytes, "%s", src->ops->error(src->ctx));
			return rc;
		}
		if (chunk_add(c, &row) != 0) {
			sl_error_set(b->err, b->err_bytes, "out of memory reading a chunk");
			return -ENOMEM;
		}
	}
	return 0;
}

static void progress_report(struct bf *b, bool force)
{
	int64_t now = sl_clock_mono_ns();
	struct sl_backfill_progress *p = &b->progress;
	double elapsed_s = (double)(now - b->started_ns) / 1e9;
	uint64_t this_run = b->run.rows + b->run.skipped - b->start.rows - b->start.skipped;

	if (!force && now < b->next_progress_ns)
		return;
	b->next_progress_ns = now + (int64_t)b->o->progress_interval_ms * 1000000;
	p->rows = b->run.rows;
	p->skipped = b->run.skipped;
	p->recovered = b->run.recovered;
	p->checksum = b->run.checksum;
	p->acknowledged = b->acknowledged;
	p->rows_per_s = elapsed_s > 0 ? (double)this_run / elapsed_s : 0;
	p->eta_s = p->total >= 0 && p->rows_per_s > 0 ? (double)((uint64_t)p->total > p->rows + p->skipped
	                                                                 ? (uint64_t)p->total - p->rows - p->skipped
	                                                                 : 0) /
	                                                        p->rows_per_s
	                                              : -1;
	if (b->o->progress_cb != NULL)
		b->o->progress_cb(p, b->o->cb_arg);
}

/* Wait until the rate limits let n records of bytes go, keeping the producer's I/O going meanwhile. */
static int pace(struct bf *b, uint64_t records, uint64_t bytes)
{
	int64_t now = sl_clock_mono_ns();
	int64_t wait = sl_rate_take(&b->rate_records, (double)records, now);
	int64_t wait_bytes = sl_rate_take(&b->rate_bytes, (double)bytes, now);
	int64_t until = now + (wait > wait_bytes ? wait : wait_bytes);

	while (now < until) {
		int64_t left_ms = (until - now) / 1000000;

		if (left_ms >= 1) {
			int rc = sl_producer_poll(b->p, (uint32_t)left_ms);

			if (rc < 0 && rc != -EINTR)
				return rc;
		} else {
			struct timespec ts = {.tv_nsec = (long)(until - now)};

			nanosleep(&ts, NULL);
		}
		if (b->o->stop_cb != NULL && b->o->stop_cb(b->o->cb_arg))
			return -EINTR;
		now = sl_clock_mono_ns();
	}
	b->now_ms = sl_clock_wall_ms();
	return 0;
}

/* A row is in the topic (sent or found there): count it into the checksum, and remember its key as the last. */
static int row_counted(struct bf *b, const uint8_t *key, const struct crow *r)
{
	b->run.rows++;
	b->run.checksum = checksum_add(b->run.checksum, key, r->key_len, r->version);
	b->has_last_sent = true;
	return buf_set(&b->last_sent_key, key, r->key_len);
}

/* Send the rows of c (invariant 1: its checkpoint is written). Bad rows are reported; rows a dead run left in the
 * topic are counted and not sent again. Returns 0, -EINTR (stopped between rows) or a negative errno. */
static int chunk_send(struct bf *b, struct chunk *c)
{
	const struct sl_backfill_options *o = b->o;
	bool paced = o->rate_records_per_s > 0 || o->rate_bytes_per_s > 0;
	/* Records per pacing step: a millisecond's worth, so pacing costs no clock reading per record. */
	uint64_t step = o->rate_records_per_s >= 2000 ? o->rate_records_per_s / 1000 : 1;
	uint64_t in_step = 0;

	for (uint32_t i = 0; i < c->count; i++) {
		struct crow *r = &c->rows[i];
		const uint8_t *key = c->arena.data + r->key_off;
		struct sl_record rec = {0};
		int rc;

		if (r->bad) {
			struct sl_source_row bad = {.key = r->has_key ? key : NULL,
			                            .key_len = r->key_len,
			                            .version = r->version,
			                            .position = r->position,
			                            .bad = (const char *)c->arena.data + r->bad_off};

			b->run.skipped++;
			if (o->bad_row_cb != NULL)
				o->bad_row_cb(&bad, o->cb_arg);
			continue;
		}
		if (b->seen.count > 0 && seen_find(&b->seen, key, r->key_len, r->version, false) == 1) {
			/* A dead run's record of this row is in the topic already. */
			b->run.recovered++;
			b->acknowledged++;
			if ((rc = row_counted(b, key, r)) != 0)
				return rc;
			continue;
		}
		if (paced && in_step++ % step == 0 &&
		    (rc = pace(b, step, step * ((uint64_t)r->key_len + r->value_len))) != 0)
			return rc;
		if (!paced && b->unclocked++ % CLOCK_ROWS == 0)
			b->now_ms = sl_clock_wall_ms();
		rec.key = key;
		rec.key_len = (int32_t)r->key_len;
		rec.version = r->version;
		rec.origin = SL_ORIGIN_BACKFILL;
		rec.timestamp_ms = b->now_ms;
		rec.op = r->deleted ? SL_OP_DELETE : SL_OP_UPSERT;
		rec.value = r->has_value && !r->deleted ? c->arena.data + r->value_off : NULL;
		rec.value_len = rec.value != NULL ? (int32_t)r->value_len : -1;
		while ((rc = sl_producer_send(b->p, SL_PARTITION_ANY, &rec, c)) == -EINTR)
			if (o->stop_cb != NULL && o->stop_cb(o->cb_arg))
				return -EINTR;
		if (rc != 0) {
			sl_error_set(b->err, b->err_bytes, "row at key '%.*s': %s",
			             (int)(r->key_len > 200 ? 200 : r->key_len), (const char *)key,
			             sl_producer_error(b->p));
			return rc;
		}
		c->to_ack++;
		if ((rc = row_counted(b, key, r)) != 0)
			return rc;
		if (o->stop_cb != NULL && (i & 1023) == 0 && o->stop_cb(o->cb_arg))
			return -EINTR;
		if ((i & 1023) == 0)
			progress_report(b, false);
	}
	c->end = b->run;
	return 0;
}

/* Wait until the oldest chunk in flight is acknowledged, then move done_key past it (invariant 2). */
static int chunk_retire(struct bf *b)
{
	struct chunk *c = &b->chunks[b->oldest];

	while (c->acked + c->failed < c->to_ack) {
		int rc = sl_producer_poll(b->p, 100);

		if (rc < 0 && rc != -EINTR)
			return rc;
		if (b->o->stop_cb != NULL && b->o->stop_cb(b->o->cb_arg))
			return -EINTR;
		progress_report(b, false);
	}
	if (c->failed > 0) {
		sl_error_set(b->err, b->err_bytes,
		             "%llu record(s) were not acknowledged: %s; run the same command again to resume",
		             (unsigned long long)c->failed, b->first_failure);
		return -EIO;
	}
	b->ck.at_done = c->end;
	/* Acknowledged now: the counts as of done_key include this chunk's acknowledgements. */
	b->ck.at_done.acknowledged = c->end.rows;
	if (c->has_last_key) {
		b->ck.has_done = true;
		if (buf_set(&b->ck.done_key, c->arena.data + c->last_off, c->last_len) != 0)
			return -ENOMEM;
	}
	b->oldest = (b->oldest + 1) % SL_BACKFILL_CHUNKS_IN_FLIGHT;
	b->in_flight--;
	if (b->seen.count > 0 && b->ck.has_done && b->ck.has_sent &&
	    sl_source_key_compare(b->ck.done_key.data, b->ck.done_key.len, b->ck.sent_key.data, b->ck.sent_key.len) >=
	            0)
		seen_free(&b->seen); /* past the recovery window */
	progress_report(b, true);
	return 0;
}

/* Invariant 4: while done_key has not reached the recovered window's sent_key, the checkpoint's sent_key and mark
 * cover the window too. */
static int window_keep(struct bf *b)
{
	if (b->window_mark == NULL ||
	    (b->ck.has_done && sl_source_key_compare(b->ck.done_key.data, b->ck.done_key.len, b->window_sent_key.data,
	                                             b->window_sent_key.len) >= 0))
		return 0;
	for (uint32_t i = 0; i < b->partitions; i++)
		if (b->window_mark[i] < b->ck.mark[i])
			b->ck.mark[i] = b->window_mark[i];
	if (b->ck.has_sent && sl_source_key_compare(b->ck.sent_key.data, b->ck.sent_key.len, b->window_sent_key.data,
	                                            b->window_sent_key.len) >= 0)
		return 0;
	b->ck.has_sent = true;
	return buf_set(&b->ck.sent_key, b->window_sent_key.data, b->window_sent_key.len);
}

/* Mark, checkpoint, send: invariants 1 and 4 for the chunk c. */
static int chunk_start(struct bf *b, struct chunk *c)
{
	int rc = marks_take(b, c->mark);

	if (rc != 0)
		return rc;
	/* The mark to resume from is that of the oldest chunk not yet acknowledged. */
	memcpy(b->ck.mark, b->in_flight > 0 ? b->chunks[b->oldest].mark : c->mark, b->partitions * sizeof(*c->mark));
	if (c->has_last_key) {
		b->ck.has_sent = true;
		if (buf_set(&b->ck.sent_key, c->arena.data + c->last_off, c->last_len) != 0)
			return -ENOMEM;
	}
	if (window_keep(b) != 0)
		return -ENOMEM;
	rc = ckpt_write(b, false);
	if (rc != 0)
		return rc;
	b->in_flight++;
	return chunk_send(b, c);
}

/* Stopped by the caller: everything sent gets acknowledged, and the checkpoint moves to the last row sent. */
static int stop_cleanly(struct bf *b)
{
	int rc;

	while ((rc = sl_producer_flush(b->p, -1)) == -EINTR)
		;
	for (uint32_t i = 0; i < SL_BACKFILL_CHUNKS_IN_FLIGHT; i++)
		if (b->chunks[i].failed > 0 || rc != 0)
			return -EIO; /* the last checkpoint's window covers it: the next run recovers */
	b->ck.at_done = b->run;
	b->ck.at_done.acknowledged = b->run.rows;
	b->ck.has_done = b->has_last_sent || b->ck.has_done;
	if (b->has_last_sent && buf_set(&b->ck.done_key, b->last_sent_key.data, b->last_sent_key.len) != 0)
		return -ENOMEM;
	b->ck.has_sent = b->ck.has_done;
	if (b->ck.has_sent && buf_set(&b->ck.sent_key, b->ck.done_key.data, b->ck.done_key.len) != 0)
		return -ENOMEM;
	/* Stopped inside the recovered window: its rows after done_key may be in the topic (invariant 4). */
	if (window_keep(b) != 0)
		return -ENOMEM;
	b->in_flight = 0;
	rc = ckpt_write(b, false);
	return rc != 0 ? rc : -EINTR;
}

static int loop(struct bf *b)
{
	int rc = 0;

	while (rc == 0 && !(b->source_done && b->in_flight == 0)) {
		if (!b->source_done && b->in_flight < SL_BACKFILL_CHUNKS_IN_FLIGHT) {
			struct chunk *c = &b->chunks[(b->oldest + b->in_flight) % SL_BACKFILL_CHUNKS_IN_FLIGHT];

			rc = chunk_read(b, c);
			if (rc == 0 && c->count > 0)
				rc = chunk_start(b, c);
			continue;
		}
		rc = chunk_retire(b);
	}
	return rc;
}

/* ---- the run ---- */

static int setup(struct bf *b)
{
	const struct sl_backfill_options *o = b->o;
	struct sl_producer_options po;
	int rc;

	sl_producer_options_init(&po);
	po.broker = o->broker;
	po.security = o->security;
	po.client_id = "synclog-backfill";
	po.topic = o->topic;
	po.acks = o->acks;
	po.backfill = true;
	po.linger_ms = LINGER_MS;
	po.delivery_timeout_ms = DELIVERY_TIMEOUT_MS;
	if (o->io_timeout_ms > 0)
		po.io_timeout_ms = o->io_timeout_ms;
	po.delivery_cb = delivered_cb;
	po.delivery_cb_arg = b;
	po.kafka_config = o->kafka_config;
	rc = sl_producer_new(&b->p, &po, b->err, b->err_bytes);
	if (rc != 0)
		return rc;
	b->partitions = sl_producer_partition_count(b->p);
	b->partition_ids = calloc(b->partitions, sizeof(*b->partition_ids));
	if (!b->progress.resumed) {
		free(b->ck.mark);
		b->ck.mark = calloc(b->partitions, sizeof(*b->ck.mark));
		b->ck.mark_count = b->partitions;
	} else if (b->ck.mark_count != b->partitions) {
		/* recover() refuses it; the array is still sized for chunk_start's copy. */
		free(b->ck.mark);
		b->ck.mark = calloc(b->partitions, sizeof(*b->ck.mark));
	}
	for (uint32_t i = 0; i < SL_BACKFILL_CHUNKS_IN_FLIGHT; i++)
		b->chunks[i].mark = calloc(b->partitions, sizeof(*b->chunks[i].mark));
	if (b->partition_ids == NULL || b->ck.mark == NULL || b->chunks[0].mark == NULL || b->chunks[1].mark == NULL) {
		sl_error_set(b->err, b->err_bytes, "out of memory");
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < b->partitions; i++)
		b->partition_ids[i] = i;
	rc = sl_conn_new(&b->admin, o->broker, "synclog-backfill-admin");
	if (rc == 0)
		rc = sl_conn_set_kafka_config(b->admin, o->kafka_config);
	if (rc == 0 && o->io_timeout_ms > 0)
		sl_conn_set_timeout(b->admin, o->io_timeout_ms);
	if (rc == 0 && (rc = sl_conn_set_security(b->admin, o->security)) != 0)
		sl_error_set(b->err, b->err_bytes, "%s", sl_conn_error(b->admin));
	if (rc == 0 && (rc = sl_conn_connect(b->admin)) != 0)
		sl_error_set(b->err, b->err_bytes, "%s", sl_conn_error(b->admin));
	return rc;
}

static void teardown(struct bf *b)
{
	sl_producer_free(b->p);
	sl_conn_free(b->admin);
	free(b->partition_ids);
	for (uint32_t i = 0; i < SL_BACKFILL_CHUNKS_IN_FLIGHT; i++) {
		free(b->chunks[i].rows);
		free(b->chunks[i].arena.data);
		free(b->chunks[i].mark);
	}
	free(b->ck.mark);
	free(b->ck.done_key.data);
	free(b->ck.sent_key.data);
	free(b->last_sent_key.data);
	free(b->window_sent_key.data);
	free(b->window_mark);
	seen_free(&b->seen);
}

static int run(struct bf *b)
{
	const struct sl_backfill_options *o = b->o;
	struct sl_source *src = o->source;
	int rc = o->restart ? 0 : ckpt_read(b);
	struct sl_key after = {0}, none = {0};
	bool resumed_window = false;

	if (rc < 0)
		return rc;
	b->progress.resumed = rc == 1;
	if (rc == 0) {
		memset(&b->ck, 0, sizeof(b->ck));
		b->ck.started_at_ms = sl_clock_wall_ms();
	}
	b->run = b->ck.at_done;
	b->start = b->ck.at_done;
	b->acknowledged = b->ck.at_done.acknowledged;
	if (b->ck.finished) {
		b->progress.finished = true;
		return -EALREADY;
	}
	rc = setup(b);
	if (rc == 0 && b->progress.resumed) {
		resumed_window = b->ck.has_sent && (!b->ck.has_done ||
		                                    sl_source_key_compare(b->ck.done_key.data, b->ck.done_key.len,
		                                                          b->ck.sent_key.data, b->ck.sent_key.len) < 0);
		if (resumed_window)
			rc = recover(b);
		if (rc == 0 && resumed_window) {
			int64_t *mark = malloc(b->partitions * sizeof(*mark));

			if (mark == NULL ||
			    buf_set(&b->window_sent_key, b->ck.sent_key.data, b->ck.sent_key.len) != 0) {
				free(mark);
				return -ENOMEM;
			}
			memcpy(mark, b->ck.mark, b->partitions * sizeof(*mark));
			b->window_mark = mark;
		}
	}
	if (rc != 0)
		return rc;
	b->progress.total = src->ops->count(src->ctx);
	if (b->ck.has_done) {
		after.data = b->ck.done_key.len > 0 ? b->ck.done_key.data : (const uint8_t *)"";
		after.len = b->ck.done_key.len;
	}
	rc = src->ops->scan(src->ctx, after, none);
	if (rc != 0) {
		sl_error_set(b->err, b->err_bytes, "%s", src->ops->error(src->ctx));
		return rc;
	}
	rc = loop(b);
	if (rc == -EINTR)
		return stop_cleanly(b);
	if (rc != 0)
		return rc;
	b->ck.at_done = b->run;
	b->ck.at_done.acknowledged = b->run.rows;
	b->ck.has_sent = b->ck.has_done;
	if (b->ck.has_done)
		buf_set(&b->ck.sent_key, b->ck.done_key.data, b->ck.done_key.len);
	b->progress.finished = true;
	return ckpt_write(b, true);
}

int sl_backfill_run(const struct sl_backfill_options *o, struct sl_backfill_progress *out, char *err, size_t err_bytes)
{
	struct bf *b = calloc(1, sizeof(*b));
	int rc;

	memset(out, 0, sizeof(*out));
	if (b == NULL) {
		sl_error_set(err, err_bytes, "out of memory");
		return -ENOMEM;
	}
	if (o->source == NULL || o->columns == NULL || o->topic == NULL || o->checkpoint_path == NULL ||
	    o->chunk_rows < 1) {
		sl_error_set(err, err_bytes,
		             "backfill options: a source, its columns, a topic, a checkpoint path and "
		             "chunk_rows >= 1 are required");
		free(b);
		return -EINVAL;
	}
	b->o = o;
	b->err = err;
	b->err_bytes = err_bytes;
	b->started_ns = sl_clock_mono_ns();
	b->now_ms = sl_clock_wall_ms();
	b->progress.total = -1;
	/* Half a second of burst: pacing catches up after a stall of the machine, but never runs ahead by more. */
	sl_rate_init(&b->rate_records, (double)o->rate_records_per_s, (double)o->rate_records_per_s / 2, b->started_ns);
	sl_rate_init(&b->rate_bytes, (double)o->rate_bytes_per_s, (double)o->rate_bytes_per_s / 2, b->started_ns);
	rc = run(b);
	if (rc == 0 || rc == -EINTR)
		progress_report(b, true);
	else
		b->progress.rows = b->run.rows, b->progress.skipped = b->run.skipped,
		b->progress.acknowledged = b->acknowledged, b->progress.checksum = b->run.checksum;
	*out = b->progress;
	teardown(b);
	free(b);
	return rc;
}
