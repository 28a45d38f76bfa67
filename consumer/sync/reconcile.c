/* Reconciliation by range digests, split and walked where they differ (reconcile.h has the method and the classes).
 *
 * Reading a side: struct side turns a source's scan into one row per key (the highest version of a key given twice)
 * by copying each row once into its own buffers, so that a row stays valid while the next one is looked at.
 *
 * A range is (lo, hi]: lo absent means from the first key, hi absent means to the last. Ranges of step 1 follow each
 * other without gaps, the first starting at no key and the last ending at none, so every key of either side falls in
 * exactly one; a range's parts likewise cover it. Invariants:
 *   1. A range's source summary counts the live source rows with lo < key <= hi, and no others.
 *   2. A range with equal summaries contributes its count to compared; one with unequal summaries is either split
 *      into parts that cover it or walked, never both, so no key is compared twice.
 *   3. Every difference is reported once, from a walk. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "consumer/client/client_impl.h"
#include "consumer/sync/reconcile.h"
#include "consumer/sync/value.h"

/* Splitting deeper than this is never needed (8^6 parts of 64 rows is 16 million rows per range). */
#define DEPTH_MAX         6
/* Parts a range is split into at most when the servers summarise (the parts' arrays live on the stack). */
#define SERVER_FANOUT_MAX 64

struct buf {
	uint8_t *data;
	size_t len;
	size_t cap;
};

static int buf_set(struct buf *b, const uint8_t *p, size_t len)
{
	if (len > b->cap) {
		size_t cap = b->cap ? b->cap : 64;
		uint8_t *d;

		while (cap < len)
			cap *= 2;
		d = realloc(b->data, cap);
		if (d == NULL)
			return -ENOMEM;
		b->data = d;
		b->cap = cap;
	}
	if (len > 0)
		memcpy(b->data, p, len);
	b->len = len;
	return 0;
}

/* A row held in a side's own buffers. */
struct held {
	struct buf key;
	struct buf value;
	bool value_null;
	int64_t version;
	bool deleted;
};

struct run;

struct side {
	struct sl_source *src;
	struct run *run;
	bool report_bad; /* count and report bad rows (the source, in step 1 only) */
	struct held cur;
	struct sl_source_row pending; /* read from src, not yet copied; valid until src->next is called again */
	bool has_pending;
	bool ended;
};

struct range {
	struct buf lo, hi;
	bool has_lo, has_hi;
	uint64_t count;
	uint64_t digest;
};

struct run {
	const struct sl_reconcile_options *o;
	struct sl_reconcile_result *res;
	struct side source;
	struct side target;
	uint64_t rng;
	bool server; /* both sides summarise on their servers (ranges_compare_server) */
	char *err;
	size_t err_bytes;
	int rc;
};

void sl_reconcile_options_init(struct sl_reconcile_options *o)
{
	memset(o, 0, sizeof(*o));
	o->sample = 1;
	o->range_rows = 1000;
	o->fanout = 8;
	o->leaf_rows = 64;
}

const char *sl_diff_kind_name(enum sl_diff_kind kind)
{
	switch (kind) {
	case SL_DIFF_MISSING:
		return "missing";
	case SL_DIFF_EXTRA:
		return "extra";
	case SL_DIFF_VERSION:
		return "version";
	default:
		return "value";
	}
}

static int side_fail(struct side *s, int rc)
{
	struct run *r = s->run;

	if (r->rc == 0) {
		r->rc = rc;
		sl_error_set(r->err, r->err_bytes, "%s",
		             rc == -ENOMEM ? "reconcile: out of memory" : s->src->ops->error(s->src->ctx));
	}
	return rc;
}

static int side_scan(struct side *s, const struct range *r)
{
	struct sl_key lo = {r->has_lo ? r->lo.data : NULL, r->lo.len}, hi = {r->has_hi ? r->hi.data : NULL, r->hi.len};
	int rc;

	/* An empty key still bounds: give it a pointer. */
	if (r->has_lo && lo.data == NULL)
		lo.data = (const uint8_t *)"";
	if (r->has_hi && hi.data == NULL)
		hi.data = (const uint8_t *)"";
	s->has_pending = false;
	s->ended = false;
	rc = s->src->ops->scan(s->src->ctx, lo, hi);
	return rc != 0 ? side_fail(s, rc) : 0;
}

/* Read the next usable row of the scan into s->pending. 1, 0 at the end, or a negative errno. */
static int side_read(struct side *s)
{
	for (;;) {
		int rc = s->src->ops->next(s->src->ctx, &s->pending);

		if (rc <= 0) {
			s->ended = rc == 0;
			return rc < 0 ? side_fail(s, rc) : 0;
		}
		if (s->pending.bad == NULL)
			return 1;
		if (s->report_bad) {
			s->run->res->skipped++;
			if (s->run->o->bad_row_cb != NULL)
				s->run->o->bad_row_cb(&s->pending, s->run->o->cb_arg);
		}
	}
}

static int held_set(struct held *h, const struct sl_source_row *row)
{
	if (buf_set(&h->key, row->key, row->key_len) != 0 ||
	    buf_set(&h->value, row->value, row->value != NULL ? row->value_len : 0) != 0)
		return -ENOMEM;
	h->value_null = row->value == NULL;
	h->version = row->version;
	h->deleted = row->deleted;
	return 0;
}

/* The next key's row in s->cur: 1, 0 at the end, or a negative errno. */
static int side_next(struct side *s)
{
	int rc;

	if (!s->has_pending) {
		if (s->ended)
			return 0;
		rc = side_read(s);
		if (rc <= 0)
			return rc;
	}
	if (held_set(&s->cur, &s->pending) != 0)
		return side_fail(s, -ENOMEM);
	s->has_pending = false;
	/* Rows of the same key: keep the highest version, the later one on a tie. */
	while ((rc = side_read(s)) == 1) {
		if (sl_source_key_compare(s->pending.key, s->pending.key_len, s->cur.key.data, s->cur.key.len) != 0) {
			s->has_pending = true;
			break;
		}
		if (s->pending.version >= s->cur.version && held_set(&s->cur, &s->pending) != 0)
			return side_fail(s, -ENOMEM);
	}
	return rc < 0 ? rc : 1;
}

static uint64_t row_hash(const struct held *h)
{
	uint64_t k = XXH3_64bits_withSeed(h->key.data, h->key.len, (uint64_t)h->version);

	return XXH3_64bits_withSeed(h->value.data, h->value_null ? 0 : h->value.len, k ^ (h->value_null ? 1 : 0));
}

/* Summarise the live rows of r on side s (a scan of r). */
static int summarise(struct side *s, const struct range *r, uint64_t *count, uint64_t *digest)
{
	int rc = side_scan(s, r);

	*count = 0;
	*digest = 0;
	while (rc == 0 && (rc = side_next(s)) == 1) {
		rc = 0;
		if (s->cur.deleted)
			continue;
		++*count;
		*digest += row_hash(&s->cur);
	}
	return rc < 0 ? rc : 0;
}

static void range_free(struct range *r)
{
	free(r->lo.data);
	free(r->hi.data);
}

/* ---- walking ---- */

static void report(struct run *r, enum sl_diff_kind kind, const struct held *s, const struct held *t)
{
	struct sl_diff d = {
	        .kind = kind,
	        .key = s != NULL ? s->key.data : t->key.data,
	        .key_len = s != NULL ? s->key.len : t->key.len,
	        .source_version = s != NULL ? s->version : SL_VERSION_NONE,
	        .target_version = t != NULL ? t->version : SL_VERSION_NONE,
	        .source_deleted = s != NULL && s->deleted,
	        .target_deleted = t != NULL && t->deleted,
	};

	if (s != NULL && !s->deleted) {
		d.source_value = s->value_null ? NULL : s->value.data;
		d.source_value_len = s->value.len;
		/* Producing the source's row would be stale at the target: its version is above the source's. */
		d.target_ahead = t != NULL && t->version > s->version;
	}
	switch (kind) {
	case SL_DIFF_MISSING:
		r->res->missing++;
		break;
	case SL_DIFF_EXTRA:
		r->res->extra++;
		break;
	case SL_DIFF_VERSION:
		r->res->version++;
		break;
	case SL_DIFF_VALUE:
		r->res->value++;
		break;
	}
	r->res->target_ahead += d.target_ahead;
	if (r->o->diff_cb != NULL)
		r->o->diff_cb(&d, r->o->cb_arg);
}

/* One key: s and t are its rows (NULL: none on that side). */
static void classify(struct run *r, const struct held *s, const struct held *t)
{
	bool s_live = s != NULL && !s->deleted, t_live = t != NULL && !t->deleted;

	if (!s_live && !t_live)
		return;
	r->res->compared++;
	if (s_live && !t_live)
		report(r, SL_DIFF_MISSING, s, t);
	else if (!s_live)
		report(r, SL_DIFF_EXTRA, s, t);
	else if (s->version != t->version)
		report(r, SL_DIFF_VERSION, s, t);
	else if (!sl_value_equal(s->value_null ? NULL : s->value.data, s->value.len,
	                         t->value_null ? NULL : t->value.data, t->value.len))
		report(r, SL_DIFF_VALUE, s, t);
}

/* Both sides of r row by row, merged in key order. */
static int walk(struct run *r, const struct range *range)
{
	struct side *s = &r->source, *t = &r->target;
	int rs, rt;

	if (side_scan(s, range) != 0 || side_scan(t, range) != 0)
		return r->rc;
	rs = side_next(s);
	rt = side_next(t);
	while (rs == 1 || rt == 1) {
		int c = rs != 1   ? 1
		        : rt != 1 ? -1
		                  : sl_source_key_compare(s->cur.key.data, s->cur.key.len, t->cur.key.data,
		                                          t->cur.key.len);

		r->res->rows_walked += (c <= 0) + (c >= 0);
		classify(r, c <= 0 ? &s->cur : NULL, c >= 0 ? &t->cur : NULL);
		if (c <= 0)
			rs = side_next(s);
		if (c >= 0)
			rt = side_next(t);
	}
	return rs < 0 ? rs : rt < 0 ? rt : 0;
}

/* ---- splitting ---- */

static int bound_copy(struct buf *dst, bool *has, const struct buf *src, bool src_has)
{
	*has = src_has;
	return src_has ? buf_set(dst, src->data, src->len) : 0;
}

/* ---- summaries on the servers (both sides offer them: ranges_compare_server) ---- */

/* The summaries of count ranges on both sides, both servers at work at once: both asked, then both read. */
static int server_summaries_both(struct run *r, const struct sl_key *lo, const struct sl_key *hi, uint32_t count,
                                 uint64_t *sc, uint64_t *sd, uint64_t *tc, uint64_t *td)
{
	struct sl_source *src = r->source.src, *tgt = r->target.src;
	int rc = src->ops->summaries_send(src->ctx, lo, hi, count);

	if (rc != 0)
		return side_fail(&r->source, rc);
	rc = tgt->ops->summaries_send(tgt->ctx, lo, hi, count);
	if (rc != 0) {
		side_fail(&r->target, rc);
		(void)src->ops->summaries_read(src->ctx, sc, sd);
		return rc;
	}
	rc = src->ops->summaries_read(src->ctx, sc, sd);
	if (rc != 0) {
		side_fail(&r->source, rc);
		(void)tgt->ops->summaries_read(tgt->ctx, tc, td);
		return rc;
	}
	rc = tgt->ops->summaries_read(tgt->ctx, tc, td);
	return rc != 0 ? side_fail(&r->target, rc) : 0;
}

static struct sl_key range_key(const struct buf *b, bool has)
{
	return (struct sl_key){has ? (b->data != NULL ? b->data : (const uint8_t *)"") : NULL, b->len};
}

/* compare_range with the servers' summaries: the parts' bounds from the source's server (every per-th live key
 * after the range's start), each part summarised by both servers; no row crosses the network until a part is
 * small enough to walk. */
static int compare_range_server(struct run *r, const struct range *range, int depth)
{
	const struct sl_reconcile_options *o = r->o;
	struct sl_source *src = r->source.src;
	struct sl_key bounds[SERVER_FANOUT_MAX], lo[SERVER_FANOUT_MAX], hi[SERVER_FANOUT_MAX];
	uint64_t sc[SERVER_FANOUT_MAX], sd[SERVER_FANOUT_MAX], tc[SERVER_FANOUT_MAX], td[SERVER_FANOUT_MAX];
	struct range *parts;
	uint32_t fanout = o->fanout < SERVER_FANOUT_MAX ? o->fanout : SERVER_FANOUT_MAX, got = 0, n = 0;
	uint64_t per;
	int rc;

	if (range->count <= o->leaf_rows || depth >= DEPTH_MAX)
		return walk(r, range);
	per = (range->count + fanout - 1) / fanout;
	rc = src->ops->range_bounds(src->ctx, range_key(&range->lo, range->has_lo), (uint32_t)per, fanout - 1, bounds,
	                            &got);
	if (rc != 0)
		return side_fail(&r->source, rc);
	/* The parts: (lo, b0], (b0, b1], ..., (b_last, hi]; a bound past hi (the source changed since) is dropped. */
	for (uint32_t i = 0; i <= got; i++) {
		if (i < got && range->has_hi &&
		    sl_source_key_compare(bounds[i].data, bounds[i].len, range->hi.data, range->hi.len) >= 0)
			continue;
		lo[n] = n == 0 ? range_key(&range->lo, range->has_lo) : hi[n - 1];
		hi[n] = i < got ? bounds[i] : range_key(&range->hi, range->has_hi);
		n++;
	}
	parts = calloc(n, sizeof(*parts));
	if (parts == NULL)
		return side_fail(&r->source, -ENOMEM);
	/* Copied: the bounds point into the source's answer, which the next call replaces. */
	for (uint32_t i = 0; i < n && rc == 0; i++) {
		parts[i].has_lo = lo[i].data != NULL;
		parts[i].has_hi = hi[i].data != NULL;
		if ((parts[i].has_lo && buf_set(&parts[i].lo, lo[i].data, lo[i].len) != 0) ||
		    (parts[i].has_hi && buf_set(&parts[i].hi, hi[i].data, hi[i].len) != 0))
			rc = side_fail(&r->source, -ENOMEM);
		lo[i] = range_key(&parts[i].lo, parts[i].has_lo);
		hi[i] = range_key(&parts[i].hi, parts[i].has_hi);
	}
	if (rc == 0)
		rc = server_summaries_both(r, lo, hi, n, sc, sd, tc, td);
	for (uint32_t i = 0; rc == 0 && i < n; i++) {
		if (sc[i] == tc[i] && sd[i] == td[i]) {
			r->res->compared += sc[i];
			continue;
		}
		parts[i].count = sc[i];
		rc = compare_range_server(r, &parts[i], depth + 1);
	}
	for (uint32_t i = 0; i < n; i++)
		range_free(&parts[i]);
	free(parts);
	return rc < 0 ? rc : 0;
}

/* Compare a range whose summaries differ: split it by its source rows, or walk it when small. */
static int compare_range(struct run *r, const struct range *range, int depth)
{
	const struct sl_reconcile_options *o = r->o;
	struct range *parts;
	uint64_t per, n = 0;
	int rc = 0;

	if (range->count <= o->leaf_rows || depth >= DEPTH_MAX)
		return walk(r, range);
	per = (range->count + o->fanout - 1) / o->fanout;
	parts = calloc(o->fanout + 1, sizeof(*parts));
	if (parts == NULL)
		return side_fail(&r->source, -ENOMEM);
	/* The parts: per live source rows each, the first from the range's lo, the last to its hi. */
	rc = side_scan(&r->source, range);
	if (rc == 0)
		rc = bound_copy(&parts[0].lo, &parts[0].has_lo, &range->lo, range->has_lo);
	while (rc == 0 && (rc = side_next(&r->source)) == 1) {
		struct range *p = &parts[n];

		rc = 0;
		if (r->source.cur.deleted)
			continue;
		p->count++;
		p->digest += row_hash(&r->source.cur);
		if (p->count == per && n + 1 < o->fanout) {
			p->has_hi = true;
			if (buf_set(&p->hi, r->source.cur.key.data, r->source.cur.key.len) != 0 ||
			    bound_copy(&parts[n + 1].lo, &parts[n + 1].has_lo, &p->hi, true) != 0)
				rc = side_fail(&r->source, -ENOMEM);
			n++;
		}
	}
	if (rc == 0)
		rc = bound_copy(&parts[n].hi, &parts[n].has_hi, &range->hi, range->has_hi);
	for (uint64_t i = 0; rc == 0 && i <= n; i++) {
		uint64_t count, digest;

		rc = summarise(&r->target, &parts[i], &count, &digest);
		if (rc != 0)
			break;
		if (count == parts[i].count && digest == parts[i].digest)
			r->res->compared += count;
		else
			rc = compare_range(r, &parts[i], depth + 1);
	}
	for (uint64_t i = 0; i <= o->fanout; i++)
		range_free(&parts[i]);
	free(parts);
	return rc < 0 ? rc : 0;
}

/* ---- step 1 ---- */

/* xorshift64*: the sample's choice of ranges, reproducible from the seed. */
static double rng_next(uint64_t *state)
{
	uint64_t x = *state;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*state = x;
	return (double)((x * 0x2545F4914F6CDD1DULL) >> 11) / (double)(1ULL << 53);
}

struct differing {
	struct range *list;
	size_t count;
	size_t cap;
};

/* Compare the target's summary of a range of step 1; keep the range for step 3 when they differ. */
static int range_done(struct run *r, struct range *range, struct differing *d)
{
	uint64_t count, digest;
	int rc;

	r->res->ranges++;
	if (r->o->sample < 1 && rng_next(&r->rng) >= r->o->sample)
		return 0;
	r->res->ranges_compared++;
	rc = summarise(&r->target, range, &count, &digest);
	if (rc != 0)
		return rc;
	if (count == range->count && digest == range->digest) {
		r->res->compared += count;
		return 0;
	}
	r->res->ranges_differing++;
	if (d->count == d->cap) {
		size_t cap = d->cap ? d->cap * 2 : 64;
		struct range *l = realloc(d->list, cap * sizeof(*l));

		if (l == NULL)
			return side_fail(&r->source, -ENOMEM);
		d->list = l;
		d->cap = cap;
	}
	memset(&d->list[d->count], 0, sizeof(*d->list));
	if (bound_copy(&d->list[d->count].lo, &d->list[d->count].has_lo, &range->lo, range->has_lo) != 0 ||
	    bound_copy(&d->list[d->count].hi, &d->list[d->count].has_hi, &range->hi, range->has_hi) != 0)
		return side_fail(&r->source, -ENOMEM);
	d->list[d->count].count = range->count;
	d->count++;
	return 0;
}

/* Read the source once, cutting it into ranges and comparing each with the target as it closes. */
static int ranges_compare(struct run *r, struct differing *d)
{
	struct range all = {0}, cur = {0};
	struct side *s = &r->source;
	int rc;

	s->report_bad = true;
	rc = side_scan(s, &all);
	while (rc == 0 && (rc = side_next(s)) == 1) {
		rc = 0;
		if (s->cur.deleted)
			continue;
		cur.count++;
		cur.digest += row_hash(&s->cur);
		if (cur.count < r->o->range_rows)
			continue;
		cur.has_hi = true;
		if (buf_set(&cur.hi, s->cur.key.data, s->cur.key.len) != 0) {
			rc = side_fail(s, -ENOMEM);
			break;
		}
		/* The target's summary uses the target side only: the source's scan goes on undisturbed. */
		rc = range_done(r, &cur, d);
		/* The next range starts after this one's last key. */
		if (rc == 0 && bound_copy(&cur.lo, &cur.has_lo, &cur.hi, true) != 0)
			rc = side_fail(s, -ENOMEM);
		cur.has_hi = false;
		cur.count = 0;
		cur.digest = 0;
	}
	s->report_bad = false;
	if (rc == 0)
		rc = range_done(r, &cur, d); /* the last range, open at its end */
	range_free(&cur);
	return rc < 0 ? rc : 0;
}

/* Both sides summarise where their rows are (source.h: the same digest_kind): the ranges of step 1 come from the
 * source's range_bounds, and each side's summaries of them from its server, a round of SERVER_RANGES ranges at a
 * time, both servers working at once; only the ranges that differ are read, as in step 3. */
#define SERVER_RANGES 256

static bool server_summaries(const struct run *r)
{
	const struct sl_source_ops *s = r->source.src->ops, *t = r->target.src->ops;
	const char *sk, *tk;

	if (s->digest_kind == NULL || t->digest_kind == NULL || s->range_bounds == NULL || s->summaries_send == NULL ||
	    s->summaries_read == NULL || t->summaries_send == NULL || t->summaries_read == NULL)
		return false;
	sk = s->digest_kind(r->source.src->ctx);
	tk = t->digest_kind(r->target.src->ctx);
	return sk != NULL && tk != NULL && strcmp(sk, tk) == 0;
}

static int ranges_compare_server(struct run *r, struct differing *d)
{
	struct sl_source *src = r->source.src;
	struct sl_key bounds[SERVER_RANGES], lo[SERVER_RANGES + 1], hi[SERVER_RANGES + 1];
	uint64_t sc[SERVER_RANGES + 1], sd[SERVER_RANGES + 1], tc[SERVER_RANGES + 1], td[SERVER_RANGES + 1];
	struct buf after = {0};
	bool has_after = false, ended = false;
	int rc = 0;

	while (rc == 0 && !ended) {
		struct sl_key a = {has_after ? (after.data != NULL ? after.data : (const uint8_t *)"") : NULL,
		                   after.len};
		uint32_t got = 0, n = 0, m = 0;

		rc = src->ops->range_bounds(src->ctx, a, r->o->range_rows, SERVER_RANGES, bounds, &got);
		if (rc != 0) {
			side_fail(&r->source, rc);
			break;
		}
		/* (after, b0], (b0, b1], ...; when the bounds ran out, the last range runs to the end. */
		ended = got < SERVER_RANGES;
		n = got + (ended ? 1 : 0);
		for (uint32_t i = 0; i < n; i++) {
			r->res->ranges++;
			if (r->o->sample < 1 && rng_next(&r->rng) >= r->o->sample)
				continue;
			lo[m] = i == 0 ? a : bounds[i - 1];
			hi[m] = i < got ? bounds[i] : (struct sl_key){0};
			m++;
		}
		r->res->ranges_compared += m;
		if (m > 0 && (rc = server_summaries_both(r, lo, hi, m, sc, sd, tc, td)) != 0)
			break;
		for (uint32_t i = 0; rc == 0 && i < m; i++) {
			struct range range = {.count = sc[i]};

			if (sc[i] == tc[i] && sd[i] == td[i]) {
				r->res->compared += sc[i];
				continue;
			}
			r->res->ranges_differing++;
			if (d->count == d->cap) {
				size_t cap = d->cap ? d->cap * 2 : 64;
				struct range *l = realloc(d->list, cap * sizeof(*l));

				if (l == NULL) {
					rc = side_fail(&r->source, -ENOMEM);
					break;
				}
				d->list = l;
				d->cap = cap;
			}
			/* The bounds point into the source's last answer: copied before the next round. */
			memset(&d->list[d->count], 0, sizeof(*d->list));
			range.has_lo = lo[i].data != NULL;
			range.has_hi = hi[i].data != NULL;
			if ((range.has_lo && buf_set(&d->list[d->count].lo, lo[i].data, lo[i].len) != 0) ||
			    (range.has_hi && buf_set(&d->list[d->count].hi, hi[i].data, hi[i].len) != 0)) {
				d->count++;
				rc = side_fail(&r->source, -ENOMEM);
				break;
			}
			d->list[d->count].has_lo = range.has_lo;
			d->list[d->count].has_hi = range.has_hi;
			d->list[d->count].count = range.count;
			d->count++;
		}
		if (rc == 0 && got > 0) {
			if (buf_set(&after, bounds[got - 1].data, bounds[got - 1].len) != 0)
				rc = side_fail(&r->source, -ENOMEM);
			has_after = true;
		}
	}
	free(after.data);
	return rc;
}

static void side_free(struct side *s)
{
	free(s->cur.key.data);
	free(s->cur.value.data);
}

int sl_reconcile_run(const struct sl_reconcile_options *o, struct sl_reconcile_result *out, char *err, size_t err_bytes)
{
	struct run r = {.o = o, .res = out, .err = err, .err_bytes = err_bytes};
	struct differing d = {0};
	uint64_t diffs;
	int rc;

	memset(out, 0, sizeof(*out));
	if (o->source == NULL || o->target == NULL || !(o->sample > 0 && o->sample <= 1) || o->range_rows < 1 ||
	    o->fanout < 2 || o->leaf_rows < 1) {
		sl_error_set(err, err_bytes,
		             "reconcile options: a source, a target, sample in (0, 1], range_rows and "
		             "leaf_rows >= 1, fanout >= 2 are required");
		return -EINVAL;
	}
	r.rng = o->seed ? o->seed : 0x9E3779B97F4A7C15ULL;
	r.source = (struct side){.src = o->source, .run = &r};
	r.target = (struct side){.src = o->target, .run = &r};
	r.server = server_summaries(&r);
	rc = r.server ? ranges_compare_server(&r, &d) : ranges_compare(&r, &d);
	for (size_t i = 0; rc == 0 && i < d.count; i++)
		rc = r.server ? compare_range_server(&r, &d.list[i], 0) : compare_range(&r, &d.list[i], 0);
	for (size_t i = 0; i < d.count; i++)
		range_free(&d.list[i]);
	free(d.list);
	side_free(&r.source);
	side_free(&r.target);
	if (rc != 0)
		return r.rc != 0 ? r.rc : rc;
	diffs = out->missing + out->extra + out->version + out->value;
	out->diff_ratio = out->compared > 0 ? (double)diffs / (double)out->compared : 0;
	return 0;
}

int sl_reconcile_repair_record(const struct sl_diff *d, int64_t timestamp_ms, struct sl_record *out)
{
	memset(out, 0, sizeof(*out));
	out->key = d->key;
	out->key_len = (int32_t)d->key_len;
	out->timestamp_ms = timestamp_ms;
	out->origin = SL_ORIGIN_REPAIR;
	if (d->kind == SL_DIFF_EXTRA) {
		/* The target's version: a repair replaces a row of its own version (apply.h rule 4a). */
		out->op = SL_OP_DELETE;
		out->version = d->target_version;
		out->value = NULL;
		out->value_len = -1;
		return 1;
	}
	if (d->target_ahead)
		return 0;
	out->op = SL_OP_UPSERT;
	out->version = d->source_version;
	out->value = d->source_value;
	out->value_len = d->source_value != NULL ? (int32_t)d->source_value_len : -1;
	return 1;
}
