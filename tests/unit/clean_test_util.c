/* Helpers of the cleaner tests; see clean_test_util.h. */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clean_test_util.h"

/* A read of the replay: larger than any batch the tests build. */
#define READ_BYTES (1u << 20)

static int fail(int rc, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "clean_test_util: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	return rc;
}

static struct ct_rec *push(struct ct_stream *s)
{
	if (s->count == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 1024;
		struct ct_rec *r = realloc(s->recs, cap * sizeof(*r));
		if (r == NULL)
			return NULL;
		s->recs = r;
		s->cap = cap;
	}
	struct ct_rec *r = &s->recs[s->count++];
	memset(r, 0, sizeof(*r));
	r->offset = -1;
	return r;
}

int ct_stream_gen(uint64_t *rng, struct ct_stream *s, size_t count, uint32_t keys)
{
	if (keys == 0 || keys > CT_KEYS_MAX)
		return -EINVAL;
	if (s->count == 0) {
		for (uint32_t k = 0; k < keys; k++) {
			int64_t m = lt_rand_range(rng, 0, 9);
			s->mode[k] = m == 0 ? 1 : m == 1 ? 2 : 0;
		}
	}
	for (size_t n = 0; n < count; n++) {
		uint32_t k = (uint32_t)lt_rand_range(rng, 0, keys - 1);
		int64_t roll = lt_rand_range(rng, 0, 99);
		if (roll < 5) {
			/* An exact duplicate of an earlier record of the key (a redelivery), if there is one. */
			struct ct_rec *orig = NULL;
			for (size_t i = s->count; i-- > 0 && s->count - i < 4000;)
				if (s->recs[i].key == k) {
					orig = &s->recs[i];
					break;
				}
			if (orig != NULL) {
				struct ct_rec copy = *orig;
				struct ct_rec *r = push(s);
				if (r == NULL)
					return -ENOMEM;
				*r = copy;
				r->offset = -1;
				continue;
			}
		}
		struct ct_rec *r = push(s);
		if (r == NULL)
			return -ENOMEM;
		r->key = k;
		int versioned = s->mode[k] == 0 || (s->mode[k] == 2 && lt_rand_range(rng, 0, 1) == 0);
		if (!versioned) {
			r->version = SL_VERSION_NONE;
		} else if (roll < 15 && s->last_version[k] >= 2) {
			r->version = s->last_version[k] - lt_rand_range(rng, 1, s->last_version[k] < 4 ? 1 : 3);
		} else {
			s->last_version[k] += lt_rand_range(rng, 1, 3);
			r->version = s->last_version[k];
		}
		r->op = roll >= 15 && roll < 27 ? SL_OP_DELETE : SL_OP_UPSERT;
		snprintf(r->value, sizeof(r->value), "v%u.%" PRId64 ".%" PRIu64, k, r->version, s->seq++);
	}
	return 0;
}

void ct_stream_free(struct ct_stream *s)
{
	free(s->recs);
	memset(s, 0, sizeof(*s));
}

int64_t ct_timestamp_ms(size_t index)
{
	return CT_TIMESTAMP_MS_BASE + (int64_t)index * 10;
}

static void key_text(uint32_t k, char *buf, size_t cap)
{
	snprintf(buf, cap, "k%u", k);
}

int ct_append(struct lt_fixture *fx, uint64_t *rng, struct ct_stream *s, size_t from, size_t to)
{
	while (from < to) {
		size_t n = (size_t)lt_rand_range(rng, 1, 20);
		if (n > to - from)
			n = to - from;
		int codec = lt_rand_range(rng, 0, 3) == 0 ? SL_BATCH_CODEC_ZSTD : SL_BATCH_CODEC_NONE;
		struct sl_batch_builder *b = &fx->builder;
		sl_batch_builder_reset(b);
		char keys[20][16];
		for (size_t i = 0; i < n; i++) {
			const struct ct_rec *c = &s->recs[from + i];
			key_text(c->key, keys[i], sizeof(keys[i]));
			struct sl_record r = {.timestamp_ms = ct_timestamp_ms(from + i),
			                      .key = (const uint8_t *)keys[i],
			                      .key_len = (int32_t)strlen(keys[i]),
			                      .value = c->op == SL_OP_DELETE ? NULL : (const uint8_t *)c->value,
			                      .value_len = c->op == SL_OP_DELETE ? -1 : (int32_t)strlen(c->value),
			                      .version = c->version,
			                      .op = c->op};
			int rc = sl_batch_builder_add(b, &r);
			if (rc < 0)
				return fail(rc, "sl_batch_builder_add: %s", strerror(-rc));
		}
		const uint8_t *batch;
		size_t len;
		int rc = sl_batch_builder_finish(b, codec, &batch, &len);
		if (rc < 0)
			return fail(rc, "sl_batch_builder_finish: %s", strerror(-rc));
		struct lt_acks acks = {0};
		struct lt_append la;
		lt_append_init(&la, &acks, (uint8_t *)batch, len, SL_DURABILITY_WRITTEN);
		rc = lt_append_wait(&fx->ring, fx->log, &la);
		if (rc < 0)
			return fail(rc, "append: %s", strerror(-rc));
		for (size_t i = 0; i < n; i++)
			s->recs[from + i].offset = la.a.base_offset + (int64_t)i;
		from += n;
	}
	return 0;
}

int ct_roll_and_seal(struct lt_fixture *fx)
{
	int rc = sl_log_roll_now(fx->log);
	if (rc < 0)
		return fail(rc, "roll: %s", strerror(-rc));
	return lt_wait_idle(&fx->ring, fx->log);
}

void ct_state_init(struct ct_state *st)
{
	memset(st, 0, sizeof(*st));
	st->last_offset = -1;
}

void ct_state_apply_rec(struct ct_state *st, uint32_t key, int64_t version, int op, const char *value)
{
	struct ct_key_state *k = &st->keys[key];
	st->records++;
	if (k->exists && version != SL_VERSION_NONE && version <= k->version)
		return; /* stale or duplicate */
	if (!k->exists)
		k->version = version != SL_VERSION_NONE ? version : 0;
	else if (version != SL_VERSION_NONE)
		k->version = version;
	k->exists = 1;
	k->deleted = op == SL_OP_DELETE;
	snprintf(k->value, sizeof(k->value), "%s", op == SL_OP_DELETE ? "" : value);
}

void ct_state_of_stream(const struct ct_stream *s, size_t count, struct ct_state *st)
{
	ct_state_init(st);
	for (size_t i = 0; i < count; i++)
		ct_state_apply_rec(st, s->recs[i].key, s->recs[i].version, s->recs[i].op, s->recs[i].value);
}

static const struct ct_rec *stream_at(const struct ct_stream *s, int64_t offset)
{
	size_t lo = 0, hi = s->count;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (s->recs[mid].offset < offset)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < s->count && s->recs[lo].offset == offset ? &s->recs[lo] : NULL;
}

int ct_state_of_log(struct sl_log *log, const struct ct_stream *s, struct ct_state *st)
{
	uint8_t *buf = malloc(READ_BYTES), *scratch = malloc(SL_BATCH_BYTES_MAX);
	int rc = buf && scratch ? 0 : -ENOMEM;
	ct_state_init(st);
	int64_t at = sl_log_start_offset(log), end = sl_log_next_offset(log);
	while (rc == 0 && at < end) {
		size_t len;
		int64_t next;
		rc = sl_log_read(log, at, buf, READ_BYTES, &len, &next);
		if (rc < 0) {
			fail(rc, "sl_log_read at %" PRId64 ": %s", at, strerror(-rc));
			break;
		}
		if (next <= at || len == 0) {
			rc = fail(-EIO, "sl_log_read at %" PRId64 " made no progress (next %" PRId64 ", %zu bytes)", at,
			          next, len);
			break;
		}
		for (size_t p = 0; rc == 0 && p < len;) {
			struct sl_batch_header h;
			const char *why = NULL;
			if (sl_batch_header_parse(buf + p, len - p, &h) != 0 || sl_batch_total_bytes(&h) > len - p) {
				rc = fail(-EBADMSG, "read at %" PRId64 " returned a partial batch", at);
				break;
			}
			size_t blen = sl_batch_total_bytes(&h);
			rc = sl_batch_validate_stored(buf + p, blen, &h, scratch, SL_BATCH_BYTES_MAX, &why);
			if (rc < 0) {
				fail(rc, "batch at %" PRId64 " invalid: %s", h.base_offset, why ? why : "?");
				break;
			}
			struct sl_record_iter it;
			rc = sl_record_iter_init(&it, buf + p, blen, scratch, SL_BATCH_BYTES_MAX);
			struct sl_record r;
			while (rc == 0 && (rc = sl_record_iter_next(&it, &r)) == 1) {
				rc = 0;
				if (r.offset < at)
					continue; /* the batch began before the offset asked */
				if (r.offset <= st->last_offset) {
					rc = fail(-EBADMSG, "offset %" PRId64 " after %" PRId64, r.offset,
					          st->last_offset);
					break;
				}
				st->last_offset = r.offset;
				char key[16] = "";
				unsigned k;
				if (r.key_len <= 0 || r.key_len >= (int32_t)sizeof(key)) {
					rc = fail(-EBADMSG, "record at %" PRId64 " has no usable key", r.offset);
					break;
				}
				memcpy(key, r.key, (size_t)r.key_len);
				if (sscanf(key, "k%u", &k) != 1 || k >= CT_KEYS_MAX) {
					rc = fail(-EBADMSG, "record at %" PRId64 " has key %s", r.offset, key);
					break;
				}
				char value[40] = "";
				if (r.value_len > 0 && r.value_len < (int32_t)sizeof(value))
					memcpy(value, r.value, (size_t)r.value_len);
				if (s != NULL) {
					const struct ct_rec *c = stream_at(s, r.offset);
					if (c == NULL || c->key != k || c->version != r.version || c->op != (int)r.op ||
					    (c->op == SL_OP_UPSERT && strcmp(c->value, value) != 0)) {
						rc = fail(-EBADMSG,
						          "record at %" PRId64 " is not the one appended there",
						          r.offset);
						break;
					}
				}
				ct_state_apply_rec(st, k, r.version, r.op, value);
			}
			if (rc < 0) {
				if (rc != -EBADMSG || why == NULL)
					fail(rc, "records of the batch at %" PRId64 " do not decode", h.base_offset);
				break;
			}
			p += blen;
		}
		at = next;
	}
	free(buf);
	free(scratch);
	return rc;
}

int ct_state_compare(const struct ct_state *want, const struct ct_state *got, int deleted_absent)
{
	for (uint32_t k = 0; k < CT_KEYS_MAX; k++) {
		const struct ct_key_state *w = &want->keys[k], *g = &got->keys[k];
		if (deleted_absent && w->exists && w->deleted) {
			if (g->exists)
				return fail(-EBADMSG,
				            "key k%u: deleted and its tombstone expired, but a replay still sees "
				            "it (version %" PRId64 ", deleted %d)",
				            k, g->version, g->deleted);
			continue;
		}
		if (w->exists != g->exists || w->deleted != g->deleted || (w->exists && w->version != g->version) ||
		    strcmp(w->value, g->value) != 0)
			return fail(-EBADMSG,
			            "key k%u: want exists %d deleted %d version %" PRId64
			            " value '%s', replay has exists "
			            "%d deleted %d version %" PRId64 " value '%s'",
			            k, w->exists, w->deleted, w->version, w->value, g->exists, g->deleted, g->version,
			            g->value);
	}
	return 0;
}

void ct_params(struct sl_clean_params *p)
{
	memset(p, 0, sizeof(*p));
	p->now_ms = sl_clock_wall_ms();
	p->delete_retention_ms = SL_CLEAN_DELETE_RETENTION_MS_DEFAULT;
	p->groups_min_committed = INT64_MAX;
	p->map_bytes_max = 16u << 20;
}

int ct_clean(struct lt_fixture *fx, const struct sl_clean_params *p, struct sl_clean_stats *stats_out)
{
	struct sl_clean_job *job;
	int rc = sl_clean_prepare(fx->log, p, &job);
	if (rc < 0)
		return fail(rc, "sl_clean_prepare: %s", strerror(-rc));
	rc = sl_clean_run(job);
	if (rc < 0)
		fail(rc, "sl_clean_run: %s: %s", strerror(-rc), job->error);
	sl_clean_finish(job);
	if (stats_out)
		*stats_out = job->stats;
	sl_clean_job_free(job);
	return rc;
}
