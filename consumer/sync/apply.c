/* The applier engine: the version, duplicate, delete and dead-letter rules of apply.h, applied to the batches of a
 * record source inside the transactions of a store, with the positions committed in the same transactions.
 *
 * State of the engine, per (topic, partition) it has seen (struct apply_part):
 *   committed   the next offset to apply as the store holds it (-1: the store has no row)
 *   next        the same inside the open transaction; equals committed when none is open
 *   txn         what the open transaction counted for that partition; added to the run's totals at commit
 * Invariants:
 *   1. No transaction open => next == committed and txn is zero for every part.
 *   2. committed only moves forward, and only after the store's commit returned 0.
 *   3. After a rollback the source is sought to committed positions: no record is lost or handed out twice.
 *   4. A record set aside after a rejection (struct deferred) is resolved (applied or dead-lettered) before the
 *      transaction that holds it commits, or, when stopping, its partition's next offset goes back to it.
 *   5. While a key has a record set aside, every later record of that key is set aside too, so a key's records
 *      apply in offset order whatever is rejected.
 *   6. A held partition (rule 9) applies nothing at or after held_offset, and its committed position is at most
 *      held_offset, so that the held record is read again once the hold ends (the source is sought then).
 *
 * A transaction goes: closed --begin (first record)--> open --resolve set-aside records, flush dead letters,
 * commit--> closed, or --failure--> rollback, reload positions, seek, closed.
 *
 * With a store that prefetches, a poll gathers the fetched batch into the engine's own memory in chunks (struct
 * apply_gather: the records, and their keys, values and idempotency keys copied into one buffer), and each chunk is
 * one transaction that starts with a prefetch of its records; records the store refuses when called are set aside
 * as above. When a commit comes back SL_APPLY_REJECTED (the database refused a kept write of the chunk and cannot
 * say which), the chunk is searched by halves: fetched again from the committed positions, its records go in
 * chunks of half the size (replay_chunk_max) while replay_records of it remain; a half that commits is done, a
 * half that is refused again is halved in turn, and a chunk of one record is applied without prefetch, where the
 * refusal names the record and is set aside and retried in rounds like any other. A refused record among n costs
 * about 2 log2(n) transactions instead of n round trips, and every chunk that commits moves the positions
 * forward, so the search always ends. The dead letters the refused chunk sent (records the store refused when
 * called) were made durable before its commit: while the search goes on, such a record is counted dead-lettered
 * again without a second letter (struct apply_sent). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "proto/base/clock.h"
#include "proto/base/slog.h"
#include "consumer/sync/apply.h"
#include "consumer/sync/apply_policy.h"
#include "consumer/client/client_impl.h"

#define GROUP_BYTES_MAX 200

enum outcome { OUT_APPLIED, OUT_STALE, OUT_DUPLICATE, OUT_DELETED, OUT_DEAD_LETTERED, OUT_CONFLICT };

/* A rejected record set aside for the next retry round, with its own copy of the bytes (the source's records are
 * valid only until its next call). */
struct deferred {
	struct sl_apply_record r;
	uint8_t *mem;
	/* The record itself, when it outlives the transaction (one of a gathered chunk: a store that prefetched may
	 * keep pointers to it until commit); else NULL and r is a copy. */
	const struct sl_apply_record *stable;
	uint64_t key_hash;
	uint32_t attempts; /* tries so far; past reject_retries_max: dead-lettered when its turn comes */
	bool doomed;       /* dead-lettered without a try (why says why): retrying cannot change it */
	bool transient;    /* the last rejection depended on the target's state */
	char *why;         /* the last rejection's message (allocated) */
};

struct apply_part {
	char *topic;
	uint32_t partition;
	int64_t committed;
	int64_t next;
	struct sl_apply_counters txn;
	bool touched;
	/* Rule 9 holds (invariant 6): until retry_at_ms (INT64_MAX: until the applier starts again). attempts are the
	 * failed fetches of the thin event at attempts_offset. */
	bool held;
	int64_t held_offset;
	int64_t retry_at_ms;
	uint32_t attempts;
	int64_t attempts_offset;
	bool reported;      /* a state other than ok was reported */
	bool round_blocked; /* in this retry round, an earlier set-aside record of the partition is still held */
};

/* Records rule 9 prepared (an upcast or fetched value: apply_policy.c's memory, reused by the next record), copied
 * while the engine gathers (apply.h, "Batches": a store that prefetched keeps pointers to the records it is handed
 * until commit), in blocks kept until the next transaction begins. */
struct kept_block {
	struct kept_block *next;
	size_t used, cap;
	uint8_t data[];
};
#define KEPT_BLOCK_BYTES (64u << 10)

/* A dead letter sent, by the index of its part and its offset. */
struct apply_sent {
	uint32_t part;
	int64_t offset;
};

/* A chunk of a fetched batch, copied so that it outlives the source's next calls (apply.h, "Batches"). */
struct apply_gather {
	struct sl_apply_record *records;
	uint32_t count;
	uint32_t cap;
	uint8_t *bytes;
	size_t bytes_len;
	size_t bytes_cap;
};

struct sl_apply {
	struct sl_apply_options o;
	char group[GROUP_BYTES_MAX + 1];
	struct sl_apply_store store;
	struct sl_apply_source source;
	struct apply_part *parts;
	uint32_t part_count;
	uint32_t part_cap;
	uint32_t last_part; /* index of the part of the last record: records come in runs of one partition */
	struct sl_apply_position *positions; /* part_cap entries: scratch for seek and commit */
	bool in_txn;
	int64_t txn_now_ms;
	uint32_t txn_records;
	struct sl_apply_counters totals;
	uint32_t failures; /* failed transactions in a row */
	int64_t next_purge_ms;
	int64_t last_commit_ms;
	bool commit_due;
	/* The source still reads past a rolled-back transaction: nothing may be fetched until a seek succeeded. */
	bool seek_pending;
	struct sl_apply_policy *policy; /* rule 9; NULL when no contract rule applies */
	struct kept_block *kept;        /* prepared records of the open transaction while gathering, newest first */
	struct apply_gather gather;
	/* After a commit refused a kept write: records of the refused chunk still to apply, in chunks of at most
	 * replay_chunk_max (1: without prefetch). */
	uint32_t replay_records;
	uint32_t replay_chunk_max;
	/* The records handled come from the gathered chunk, valid until the transaction ends. */
	bool gathering;
	/* Dead letters sent: [0, sent_kept) by refused chunks while their search goes on, sorted; [sent_kept,
	 * sent_count) by the open transaction. */
	struct apply_sent *sent;
	uint32_t sent_kept, sent_count, sent_cap;
	/* The open transaction began with a prefetch, and holds this many records. */
	bool txn_prefetched;
	uint32_t txn_chunk_records;
	/* Records set aside after a rejection (invariants 4 and 5), and an open-addressing set of their key hashes
	 * (keyset_cap slots, 0 = empty) to tell in one probe whether a key has one set aside. */
	struct deferred *deferred;
	uint32_t deferred_count, deferred_cap;
	uint64_t *keyset;
	uint32_t keyset_cap;
	bool dead_letters_pending;     /* handed to the sink since its last flush */
	struct sl_apply_counters base; /* the store's running counts at start */
	bool resets_supported;
	int64_t reset_generation; /* as the store holds it */
	uint64_t resets_adopted;
	char error[SL_ERROR_BYTES];
};

void sl_apply_options_init(struct sl_apply_options *o)
{
	memset(o, 0, sizeof(*o));
	o->tombstone_retention_ms = 7LL * 24 * 3600 * 1000;
	o->purge_interval_ms = 60000;
	o->reject_retries_max = 3;
	o->failure_retries_max = 5;
	o->retry_backoff_ms = 10;
	o->retry_backoff_ms_max = 1000;
	o->transaction_records_max = 100000;
	o->commit_interval_ms = 1000;
	o->conflicts = SL_CONFLICTS_VERSION;
	o->on_unknown_schema = SL_ON_UNKNOWN_HOLD;
	o->fetch_retries_max = 8;
	o->fetch_backoff_ms = 100;
	o->fetch_backoff_ms_max = 30000;
}

static int64_t clock_now_ms(void *arg)
{
	(void)arg;
	return sl_clock_wall_ms();
}

static void clock_sleep_ms(uint32_t ms, void *arg)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000};

	(void)arg;
	nanosleep(&ts, NULL);
}

static int64_t now_ms(const struct sl_apply *a)
{
	return a->o.now_ms(a->o.clock_arg);
}

static uint32_t backoff_ms(const struct sl_apply *a, uint32_t attempt)
{
	uint64_t ms = a->o.retry_backoff_ms;

	for (uint32_t i = 0; i < attempt && ms < a->o.retry_backoff_ms_max; i++)
		ms *= 2;
	return ms > a->o.retry_backoff_ms_max ? a->o.retry_backoff_ms_max : (uint32_t)ms;
}

static uint32_t purge_interval_ms(const struct sl_apply_options *o)
{
	int64_t half = o->tombstone_retention_ms / 2;
	int64_t ms = half < (int64_t)o->purge_interval_ms ? half : (int64_t)o->purge_interval_ms;

	return ms < 1000 ? 1000 : (uint32_t)ms;
}

static const char *options_check(const struct sl_apply_options *o, const struct sl_apply_store *store,
                                 const struct sl_apply_source *source)
{
	if (o->group == NULL || o->group[0] == '\0' || strlen(o->group) > GROUP_BYTES_MAX)
		return "group must be 1 to 200 characters";
	if (o->tombstone_retention_ms < 0)
		return "tombstone_retention_ms must not be negative";
	if (o->transaction_records_max < 1)
		return "transaction_records_max must be at least 1";
	if (o->dead_letter_cb == NULL)
		return "a dead-letter callback is required: poison records must go somewhere";
	if (store == NULL || store->ops == NULL || source == NULL || source->ops == NULL)
		return "a store and a source are required";
	if (store->ops->begin == NULL || store->ops->commit == NULL || store->ops->rollback == NULL ||
	    store->ops->key_get == NULL || store->ops->upsert == NULL || store->ops->soft_delete == NULL ||
	    store->ops->stale_record == NULL || store->ops->idempotency_seen == NULL ||
	    store->ops->idempotency_remember == NULL || store->ops->offsets_read == NULL ||
	    store->ops->offset_write == NULL || store->ops->purge == NULL || store->ops->error == NULL)
		return "the store lacks a required operation";
	if ((store->ops->tombstones_due == NULL) != (store->ops->tombstone_purge == NULL))
		return "the store has one of tombstones_due and tombstone_purge: both or neither";
	if (source->ops->seek == NULL || source->ops->fetch == NULL || source->ops->next == NULL ||
	    source->ops->done == NULL || source->ops->error == NULL)
		return "the source lacks a required operation";
	return NULL;
}

int sl_apply_new(struct sl_apply **out, const struct sl_apply_options *o, const struct sl_apply_store *store,
                 const struct sl_apply_source *source, char *err, size_t err_bytes)
{
	const char *bad = options_check(o, store, source);
	struct sl_apply *a;

	*out = NULL;
	if (bad != NULL) {
		sl_error_set(err, err_bytes, "apply options: %s", bad);
		return -EINVAL;
	}
	a = calloc(1, sizeof(*a));
	if (a == NULL) {
		sl_error_set(err, err_bytes, "apply: out of memory");
		return -ENOMEM;
	}
	a->o = *o;
	snprintf(a->group, sizeof(a->group), "%s", o->group);
	a->o.group = a->group;
	if (a->o.now_ms == NULL)
		a->o.now_ms = clock_now_ms;
	if (a->o.sleep_ms == NULL)
		a->o.sleep_ms = clock_sleep_ms;
	a->store = *store;
	a->source = *source;
	if (sl_apply_policy_new(&a->policy, &a->o, &a->store, err, err_bytes) != 0) {
		free(a);
		return -EINVAL;
	}
	*out = a;
	return 0;
}

static void deferred_clear(struct sl_apply *a);

/* Free the kept blocks; keep_one: all but one, emptied, for the next transaction. */
static void kept_free(struct sl_apply *a, bool keep_one)
{
	struct kept_block *b = a->kept, *next;

	if (b != NULL && keep_one) {
		b->used = 0;
		next = b->next;
		b->next = NULL;
		b = next;
	} else {
		a->kept = NULL;
	}
	for (; b != NULL; b = next) {
		next = b->next;
		free(b);
	}
}

static uint8_t *kept_alloc(struct sl_apply *a, size_t bytes)
{
	struct kept_block *b = a->kept;

	bytes = (bytes + 7) & ~(size_t)7;
	if (b == NULL || b->cap - b->used < bytes) {
		size_t cap = bytes > KEPT_BLOCK_BYTES ? bytes : KEPT_BLOCK_BYTES;

		b = malloc(sizeof(*b) + cap);
		if (b == NULL)
			return NULL;
		b->used = 0;
		b->cap = cap;
		b->next = a->kept;
		a->kept = b;
	}
	b->used += bytes;
	return b->data + b->used - bytes;
}

static const uint8_t *kept_copy(uint8_t **at, const uint8_t *p, int32_t len)
{
	const uint8_t *out = *at;

	if (p == NULL)
		return NULL;
	if (len > 0) {
		memcpy(*at, p, (size_t)len);
		*at += len;
	}
	return out;
}

/* A copy of the prepared record r, valid until the next transaction begins; NULL when out of memory. */
static const struct sl_apply_record *keep_prepared(struct sl_apply *a, const struct sl_apply_record *r)
{
	const struct sl_record *rec = &r->rec;
	size_t bytes = sizeof(struct sl_apply_record) + (size_t)(rec->key_len > 0 ? rec->key_len : 0) +
	               (size_t)(rec->value_len > 0 ? rec->value_len : 0) +
	               (size_t)(rec->idempotency_key_len > 0 ? rec->idempotency_key_len : 0) +
	               (size_t)(rec->origin_system_len > 0 ? rec->origin_system_len : 0);
	uint8_t *mem = kept_alloc(a, bytes), *at;
	struct sl_apply_record *out = (struct sl_apply_record *)mem;

	if (mem == NULL)
		return NULL;
	*out = *r;
	at = mem + sizeof(*out);
	out->rec.key = kept_copy(&at, rec->key, rec->key_len);
	out->rec.value = kept_copy(&at, rec->value, rec->value_len);
	out->rec.idempotency_key = kept_copy(&at, rec->idempotency_key, rec->idempotency_key_len);
	out->rec.origin_system = kept_copy(&at, rec->origin_system, rec->origin_system_len);
	return out;
}

void sl_apply_free(struct sl_apply *a)
{
	if (a == NULL)
		return;
	if (a->in_txn)
		a->store.ops->rollback(a->store.ctx);
	sl_apply_policy_free(a->policy);
	deferred_clear(a);
	free(a->deferred);
	free(a->keyset);
	for (uint32_t i = 0; i < a->part_count; i++)
		free(a->parts[i].topic);
	free(a->parts);
	free(a->positions);
	free(a->gather.records);
	free(a->gather.bytes);
	kept_free(a, false);
	free(a->sent);
	free(a);
}

const char *sl_apply_error(const struct sl_apply *a)
{
	return a->error;
}

uint32_t sl_apply_failures(const struct sl_apply *a)
{
	return a->failures;
}

void sl_apply_counters_get(const struct sl_apply *a, struct sl_apply_counters *out)
{
	*out = a->totals;
}

uint64_t sl_apply_resets_adopted(const struct sl_apply *a)
{
	return a->resets_adopted;
}

static void counters_add(struct sl_apply_counters *to, const struct sl_apply_counters *c)
{
	to->applied += c->applied;
	to->stale += c->stale;
	to->duplicate += c->duplicate;
	to->deleted += c->deleted;
	to->dead_lettered += c->dead_lettered;
	to->conflicts += c->conflicts;
}

void sl_apply_totals_get(const struct sl_apply *a, struct sl_apply_counters *out)
{
	*out = a->base;
	counters_add(out, &a->totals);
}

static void counters_count(struct sl_apply_counters *c, enum outcome outcome)
{
	switch (outcome) {
	case OUT_APPLIED:
		c->applied++;
		break;
	case OUT_STALE:
		c->stale++;
		break;
	case OUT_DUPLICATE:
		c->duplicate++;
		break;
	case OUT_DELETED:
		c->deleted++;
		break;
	case OUT_DEAD_LETTERED:
		c->dead_lettered++;
		break;
	case OUT_CONFLICT:
		c->conflicts++;
		break;
	}
}

/* ---- positions ---- */

/* Index of the part of topic/partition, added (with no committed position) when missing; -1 when out of
 * memory. Allocates only for a partition not seen before. */
static int64_t part_find(struct sl_apply *a, const char *topic, uint32_t partition, bool add)
{
	struct apply_part *p;

	if (a->last_part < a->part_count) {
		p = &a->parts[a->last_part];
		if (p->partition == partition && (p->topic == topic || strcmp(p->topic, topic) == 0))
			return a->last_part;
	}
	for (uint32_t i = 0; i < a->part_count; i++) {
		p = &a->parts[i];
		if (p->partition == partition && strcmp(p->topic, topic) == 0) {
			a->last_part = i;
			return i;
		}
	}
	if (!add)
		return -1;
	if (a->part_count == a->part_cap) {
		uint32_t cap = a->part_cap ? a->part_cap * 2 : 16;
		struct apply_part *parts = realloc(a->parts, cap * sizeof(*parts));
		struct sl_apply_position *positions;

		if (parts == NULL)
			return -1;
		a->parts = parts;
		positions = realloc(a->positions, cap * sizeof(*positions));
		if (positions == NULL)
			return -1;
		a->positions = positions;
		a->part_cap = cap;
	}
	p = &a->parts[a->part_count];
	memset(p, 0, sizeof(*p));
	p->topic = strdup(topic);
	if (p->topic == NULL)
		return -1;
	p->partition = partition;
	p->committed = -1;
	p->next = -1;
	a->last_part = a->part_count;
	return a->part_count++;
}

int64_t sl_apply_position_get(const struct sl_apply *a, const char *topic, uint32_t partition)
{
	for (uint32_t i = 0; i < a->part_count; i++)
		if (a->parts[i].partition == partition && strcmp(a->parts[i].topic, topic) == 0)
			return a->parts[i].committed;
	return -1;
}

static int position_loaded_cb(const struct sl_apply_position *pos, const struct sl_apply_counters *totals, void *cb_arg)
{
	struct sl_apply *a = cb_arg;
	int64_t i = part_find(a, pos->topic, pos->partition, true);

	(void)totals;
	if (i < 0)
		return -ENOMEM;
	SL_ASSERT(pos->next_offset >= 0);
	a->parts[i].committed = pos->next_offset;
	a->parts[i].next = pos->next_offset;
	return 0;
}

/* Fill a->positions with the committed positions; returns their count. */
static uint32_t positions_fill(struct sl_apply *a)
{
	uint32_t n = 0;

	for (uint32_t i = 0; i < a->part_count; i++) {
		if (a->parts[i].committed < 0)
			continue;
		a->positions[n].topic = a->parts[i].topic;
		a->positions[n].partition = a->parts[i].partition;
		a->positions[n].next_offset = a->parts[i].committed;
		n++;
	}
	return n;
}

static int source_seek(struct sl_apply *a)
{
	int rc = a->source.ops->seek(a->source.ctx, a->positions, positions_fill(a));

	a->seek_pending = rc != 0;
	if (rc != 0)
		snprintf(a->error, sizeof(a->error), "%s", a->source.ops->error(a->source.ctx));
	return rc;
}

static int base_loaded_cb(const struct sl_apply_position *pos, const struct sl_apply_counters *totals, void *cb_arg)
{
	struct sl_apply *a = cb_arg;
	int rc = position_loaded_cb(pos, totals, cb_arg);

	if (rc == 0)
		counters_add(&a->base, totals);
	return rc;
}

static int reset_check(struct sl_apply *a);

int sl_apply_start(struct sl_apply *a)
{
	const struct sl_apply_store_ops *ops = a->store.ops;
	int rc = ops->offsets_read(a->store.ctx, a->group, base_loaded_cb, a);

	if (rc != 0) {
		snprintf(a->error, sizeof(a->error), "reading the stored offsets of group '%s': %s", a->group,
		         rc == -ENOMEM ? "out of memory" : ops->error(a->store.ctx));
		return rc;
	}
	a->resets_supported = ops->reset_generation_get != NULL && ops->reset_generation_set != NULL &&
	                      ops->offset_reset != NULL && a->source.ops->reset_poll != NULL;
	if (a->resets_supported &&
	    (rc = ops->reset_generation_get(a->store.ctx, a->group, &a->reset_generation)) != 0) {
		snprintf(a->error, sizeof(a->error), "reading the reset generation of group '%s': %s", a->group,
		         ops->error(a->store.ctx));
		return rc;
	}
	a->next_purge_ms = now_ms(a);
	a->last_commit_ms = now_ms(a);
	rc = reset_check(a);
	if (rc < 0)
		return rc;
	return rc == 1 ? 0 : source_seek(a); /* an adopted reset sought already */
}

/* ---- transactions ---- */

static int txn_begin(struct sl_apply *a)
{
	int64_t now = now_ms(a);
	int rc = a->store.ops->begin(a->store.ctx, now);

	if (rc != 0) {
		snprintf(a->error, sizeof(a->error), "%s", a->store.ops->error(a->store.ctx));
		return rc;
	}
	a->in_txn = true;
	a->txn_now_ms = now;
	a->txn_records = 0;
	a->txn_prefetched = false;
	kept_free(a, true); /* the last transaction's store is done with them */
	return 0;
}

/* Begin a transaction for the records of the gathered chunk from index first on, with a prefetch of them unless
 * the search for a refused record is down to one. */
static int txn_begin_chunk(struct sl_apply *a, uint32_t first)
{
	const struct apply_gather *g = &a->gather;
	int rc = txn_begin(a);

	if (rc != 0 || (a->replay_records > 0 && a->replay_chunk_max == 1))
		return rc;
	rc = a->store.ops->prefetch(a->store.ctx, g->records + first, g->count - first);
	if (rc != 0) {
		snprintf(a->error, sizeof(a->error), "%s", a->store.ops->error(a->store.ctx));
		return rc;
	}
	a->txn_prefetched = true;
	a->txn_chunk_records = g->count - first;
	return 0;
}

static int sent_cmp(const void *x, const void *y)
{
	const struct apply_sent *l = x, *r = y;

	if (l->part != r->part)
		return l->part < r->part ? -1 : 1;
	return l->offset < r->offset ? -1 : l->offset > r->offset;
}

/* Whether a refused chunk whose search goes on sent the record at (part, offset) to the sink already. */
static bool sent_kept_has(const struct sl_apply *a, uint32_t part, int64_t offset)
{
	const struct apply_sent key = {.part = part, .offset = offset};

	return a->sent_kept > 0 && bsearch(&key, a->sent, a->sent_kept, sizeof(*a->sent), sent_cmp) != NULL;
}

/* The search by halves is over: forget its dead letters. */
static void sent_forget(struct sl_apply *a)
{
	a->sent_kept = a->sent_count = 0;
}

static int txn_commit(struct sl_apply *a)
{
	const struct sl_apply_store_ops *ops = a->store.ops;
	int rc;

	SL_ASSERT(a->in_txn);
	for (uint32_t i = 0; i < a->part_count; i++) {
		struct apply_part *p = &a->parts[i];
		struct sl_apply_position pos = {.topic = p->topic, .partition = p->partition, .next_offset = p->next};

		if (!p->touched)
			continue;
		rc = ops->offset_write(a->store.ctx, a->group, &pos, p->committed, &p->txn, a->txn_now_ms);
		if (rc == -ESTALE) {
			snprintf(a->error, sizeof(a->error),
			         "topic '%s' partition %u: the stored offset of group '%s' is no longer %lld: another "
			         "applier writes this target for the same group; run one applier per target and group",
			         p->topic, p->partition, a->group, (long long)p->committed);
			return rc;
		}
		if (rc != 0) {
			snprintf(a->error, sizeof(a->error), "%s", ops->error(a->store.ctx));
			return rc;
		}
	}
	rc = ops->commit(a->store.ctx);
	if (rc == SL_APPLY_REJECTED && a->txn_prefetched) {
		/* A kept write was refused and the store cannot say which: search the chunk by halves. Its dead letters
		 * are durable already: keep them so that the search sends none twice. */
		a->sent_kept = a->sent_count;
		if (a->sent_kept > 0)
			qsort(a->sent, a->sent_kept, sizeof(*a->sent), sent_cmp);
		a->replay_records = a->txn_chunk_records;
		a->replay_chunk_max = a->txn_chunk_records > 1 ? a->txn_chunk_records / 2 : 1;
		snprintf(a->error, sizeof(a->error),
		         "the target refused a record of a batch of %u at commit (%s); applying them again in halves",
		         a->txn_chunk_records, ops->error(a->store.ctx));
		return rc;
	}
	if (rc == -ESTALE) {
		/* A store that keeps its offset writes to commit reports the compare-and-set there. */
		snprintf(a->error, sizeof(a->error),
		         "the stored offsets of group '%s' moved (%s): another applier writes this target for the same "
		         "group; run one applier per target and group",
		         a->group, ops->error(a->store.ctx));
		return rc;
	}
	if (rc != 0) {
		snprintf(a->error, sizeof(a->error), "%s", ops->error(a->store.ctx));
		return rc == SL_APPLY_REJECTED ? -EIO : rc;
	}
	for (uint32_t i = 0; i < a->part_count; i++) {
		struct apply_part *p = &a->parts[i];

		if (!p->touched)
			continue;
		SL_ASSERT(p->next >= p->committed);
		if (p->next != p->committed)
			a->commit_due = true;
		p->committed = p->next;
		counters_add(&a->totals, &p->txn);
		memset(&p->txn, 0, sizeof(p->txn));
		p->touched = false;
	}
	a->in_txn = false;
	a->sent_count = a->sent_kept;
	return 0;
}

/* Undo the open transaction, take the positions from the store again (another applier may have moved them) and
 * seek the source there. */
static void txn_abort(struct sl_apply *a)
{
	if (a->in_txn)
		a->store.ops->rollback(a->store.ctx);
	a->in_txn = false;
	deferred_clear(a);
	a->dead_letters_pending = false;
	a->sent_count = a->sent_kept; /* not committed: sent again when their records come again */
	for (uint32_t i = 0; i < a->part_count; i++) {
		struct apply_part *p = &a->parts[i];

		p->next = p->committed;
		memset(&p->txn, 0, sizeof(p->txn));
		p->touched = false;
	}
	/* If the store cannot be read now, the positions in memory are still the last committed ones. A failed seek
	 * is tried again before the next fetch (sl_apply_poll). */
	a->store.ops->offsets_read(a->store.ctx, a->group, position_loaded_cb, a);
	a->seek_pending = a->source.ops->seek(a->source.ctx, a->positions, positions_fill(a)) != 0;
}

/* ---- one record ---- */

/* Rule 4b/4c: a record at the version the store holds for its key. */
static int equal_version(struct sl_apply *a, const struct sl_apply_record *r, int64_t stored_version, enum outcome *out)
{
	const struct sl_apply_store_ops *ops = a->store.ops;
	void *st = a->store.ctx;
	bool same = true;
	int rc;

	if (ops->value_same != NULL && ops->conflict_record != NULL && (rc = ops->value_same(st, r, &same)) != 0)
		return rc;
	if (same) {
		*out = OUT_DUPLICATE;
		return ops->duplicate_record != NULL ? ops->duplicate_record(st, r, a->txn_now_ms) : 0;
	}
	*out = OUT_CONFLICT;
	return ops->conflict_record(st, r, stored_version, a->txn_now_ms);
}

/* Which version an applying record writes (rule 6 for records without one). */
static int64_t version_written(const struct sl_record *rec, const struct sl_apply_key_state *ks)
{
	if (rec->version != SL_VERSION_NONE)
		return rec->version;
	return ks->exists ? ks->version : ks->purged ? ks->floor_version : 0;
}

/* Whether r is older than what the store holds (rules 4, 5 and 6); *stored_out gets the version it lost to. */
static bool record_stale(const struct sl_record *rec, const struct sl_apply_key_state *ks, int64_t *stored_out)
{
	*stored_out = ks->exists ? ks->version : ks->floor_version;
	if (rec->version == SL_VERSION_NONE)
		return rec->origin != SL_ORIGIN_LIVE && (ks->exists || ks->purged);
	if (ks->exists)
		return rec->version < ks->version;
	/* A repair at the floor's version replaces it as it would a tombstone of that version (rule 4a). */
	return ks->purged && (rec->version < ks->floor_version ||
	                      (rec->version == ks->floor_version && rec->origin != SL_ORIGIN_REPAIR));
}

/* Apply r by the rules of apply.h. Returns 0 with *out, SL_APPLY_REJECTED when the store refused r before writing
 * anything, or another negative errno when the store failed (the transaction must be rolled back). */
static int record_apply(struct sl_apply *a, const struct sl_apply_record *r, enum outcome *out)
{
	const struct sl_apply_store_ops *ops = a->store.ops;
	void *st = a->store.ctx;
	const struct sl_record *rec = &r->rec;
	bool has_ik = rec->idempotency_key != NULL, seen = false;
	struct sl_apply_key_state ks = {0};
	int64_t version, stored;
	int rc;

	if (has_ik) {
		rc = ops->idempotency_seen(st, r, &seen);
		if (rc != 0)
			return rc;
		if (seen) {
			*out = OUT_DUPLICATE;
			return ops->duplicate_record != NULL ? ops->duplicate_record(st, r, a->txn_now_ms) : 0;
		}
	}
	if (sl_apply_policy_decides(a->policy)) {
		enum sl_policy_outcome pol;

		rc = sl_apply_policy_record(a->policy, r, a->txn_now_ms, &pol);
		if (rc != 0)
			return rc;
		*out = pol == SL_POLICY_APPLIED     ? OUT_APPLIED
		       : pol == SL_POLICY_DELETED   ? OUT_DELETED
		       : pol == SL_POLICY_STALE     ? OUT_STALE
		       : pol == SL_POLICY_DUPLICATE ? OUT_DUPLICATE
		                                    : OUT_CONFLICT;
		goto remember;
	}
	if (rec->version != SL_VERSION_NONE && ops->write_if_newer != NULL) {
		bool written = false;

		rc = ops->write_if_newer(st, r, a->txn_now_ms, &written);
		if (rc != 0)
			return rc;
		if (written) {
			*out = rec->op == SL_OP_DELETE ? OUT_DELETED : OUT_APPLIED;
			goto remember;
		}
	}
	rc = ops->key_get(st, r, &ks);
	if (rc != 0)
		return rc;
	if (record_stale(rec, &ks, &stored)) {
		*out = OUT_STALE;
		rc = ops->stale_record(st, r, stored, a->txn_now_ms);
	} else if (rec->version != SL_VERSION_NONE && ops->write_if_newer != NULL && !ks.exists && !ks.purged) {
		snprintf(a->error, sizeof(a->error), "the store's write_if_newer did not write a key it does not hold");
		return -EPROTO;
	} else if (rec->version != SL_VERSION_NONE && ks.exists && rec->version == ks.version &&
	           rec->origin != SL_ORIGIN_REPAIR) {
		return equal_version(a, r, ks.version, out);
	} else {
		/* A newer version, a new key, a live record without a version, or a repair at the stored version
		 * (rule 4a). */
		version = version_written(rec, &ks);
		if (rec->op == SL_OP_DELETE) {
			*out = OUT_DELETED;
			rc = ops->soft_delete(st, r, version, a->txn_now_ms);
		} else {
			*out = OUT_APPLIED;
			rc = ops->upsert(st, r, version, a->txn_now_ms);
		}
	}
	if (rc != 0)
		return rc;
remember:
	if (!has_ik)
		return 0;
	/* After the record's first write a refusal would leave half of it written: a failure of the store. */
	rc = ops->idempotency_remember(st, r, a->txn_now_ms);
	return rc == SL_APPLY_REJECTED ? -EPROTO : rc;
}

static bool stop_requested(const struct sl_apply *a)
{
	return a->o.stop != NULL && *a->o.stop != 0;
}

/* Sleep ms, waking every 50 ms to see whether the engine is asked to stop: a stop is honoured within that. */
static void sleep_interruptible(struct sl_apply *a, uint32_t ms)
{
	while (ms > 0 && !stop_requested(a)) {
		uint32_t slice = ms < 50 ? ms : 50;

		a->o.sleep_ms(slice, a->o.clock_arg);
		ms -= slice;
	}
}

static int dead_letter(struct sl_apply *a, const struct sl_apply_record *r, const char *why, bool transient)
{
	int rc = a->o.dead_letter_cb(r, why, transient, a->o.dead_letter_cb_arg);

	if (rc != 0) {
		snprintf(a->error, sizeof(a->error),
		         "topic '%s' partition %u offset %lld: could not dead-letter the record (%s): %s", r->topic,
		         r->partition, (long long)r->rec.offset, why, strerror(-rc));
		return rc;
	}
	a->dead_letters_pending = true;
	/* Remembered for a search by halves, should the commit be refused (batches only). */
	if (a->txn_prefetched) {
		if (a->sent_count == a->sent_cap) {
			uint32_t cap = a->sent_cap ? a->sent_cap * 2 : 64;
			struct apply_sent *sent = realloc(a->sent, cap * sizeof(*sent));

			if (sent == NULL) {
				snprintf(a->error, sizeof(a->error), "apply: out of memory for a dead letter");
				return -ENOMEM;
			}
			a->sent = sent;
			a->sent_cap = cap;
		}
		a->sent[a->sent_count++] = (struct apply_sent){
		        .part = (uint32_t)part_find(a, r->topic, r->partition, false), .offset = r->rec.offset};
	}
	return 0;
}

/* ---- rule 9 holds ---- */

static void state_report(struct sl_apply *a, struct apply_part *p, const char *state, const char *reason,
                         int64_t offset)
{
	p->reported = strcmp(state, "ok") != 0;
	if (a->o.state_cb != NULL)
		a->o.state_cb(p->topic, p->partition, state, reason, offset, a->o.state_cb_arg);
	/* Where an operator looks in the target; a failure here is the store's and fails the transaction's commit
	 * later if it persists, so it is not checked twice. */
	if (a->store.ops->partition_state_set != NULL && a->in_txn)
		a->store.ops->partition_state_set(a->store.ctx, a->group, p->topic, p->partition, state, reason,
		                                  a->txn_now_ms);
}

/* Hold p at r (invariant 6): until retry_at_ms. */
static void hold(struct sl_apply *a, struct apply_part *p, const struct sl_apply_record *r, int64_t retry_at_ms,
                 const char *state, const char *why)
{
	char reason[SL_ERROR_BYTES];

	p->held = true;
	p->held_offset = r->rec.offset;
	p->retry_at_ms = retry_at_ms;
	if (retry_at_ms != INT64_MAX)
		snprintf(reason, sizeof(reason), "%s (try %u of %u)", why, p->attempts, a->o.fetch_retries_max);
	else
		snprintf(reason, sizeof(reason), "%s", why);
	state_report(a, p, state, reason, r->rec.offset);
}

static uint32_t fetch_backoff_ms(const struct sl_apply *a, uint32_t attempt)
{
	uint64_t ms = a->o.fetch_backoff_ms;

	for (uint32_t i = 0; i < attempt && ms < a->o.fetch_backoff_ms_max; i++)
		ms *= 2;
	return ms > a->o.fetch_backoff_ms_max ? a->o.fetch_backoff_ms_max : (uint32_t)ms;
}

/* Rule 9a/9b before the other rules. Returns 1 with *r_out to apply, 0 when r is held (nothing to do now), or
 * SL_APPLY_REJECTED with why (dead-letter it). */
static int record_prepare(struct sl_apply *a, struct apply_part *p, const struct sl_apply_record *r,
                          const struct sl_apply_record **r_out, char *why, size_t why_bytes)
{
	char detail[SL_ERROR_BYTES] = "";

	switch (sl_apply_policy_prepare(a->policy, r, r_out, detail, sizeof(detail))) {
	case SL_PREP_GO:
		return 1;
	case SL_PREP_HOLD:
		hold(a, p, r, INT64_MAX, "held", detail);
		return 0;
	case SL_PREP_RETRY:
		if (p->attempts_offset != r->rec.offset) {
			p->attempts_offset = r->rec.offset;
			p->attempts = 0;
		}
		if (++p->attempts < a->o.fetch_retries_max) {
			hold(a, p, r, now_ms(a) + fetch_backoff_ms(a, p->attempts - 1), "stalled", detail);
			return 0;
		}
		snprintf(why, why_bytes, "fetching the thin event's entity failed %u times: %s", p->attempts, detail);
		return SL_APPLY_REJECTED;
	case SL_PREP_DEAD:
		snprintf(why, why_bytes, "%s", detail);
		return SL_APPLY_REJECTED;
	}
	return SL_APPLY_REJECTED;
}

/* ---- records set aside after a rejection (invariants 4 and 5) ---- */

static uint64_t key_hash(const struct sl_record *rec)
{
	uint64_t h = 14695981039346656037ull; /* FNV-1a */

	for (int32_t i = 0; i < rec->key_len; i++)
		h = (h ^ rec->key[i]) * 1099511628211ull;
	return h | 1; /* 0 marks an empty slot */
}

static void keyset_add(struct sl_apply *a, uint64_t h)
{
	uint32_t mask = a->keyset_cap - 1;

	for (uint32_t i = (uint32_t)h & mask;; i = (i + 1) & mask) {
		if (a->keyset[i] == h)
			return;
		if (a->keyset[i] == 0) {
			a->keyset[i] = h;
			return;
		}
	}
}

/* Whether a record of this key hash is set aside. Hashes, not keys: a collision only sets a record aside for a
 * round, which changes no outcome. */
static bool keyset_has(const struct sl_apply *a, uint64_t h)
{
	uint32_t mask = a->keyset_cap - 1;

	if (a->keyset_cap == 0)
		return false;
	for (uint32_t i = (uint32_t)h & mask; a->keyset[i] != 0; i = (i + 1) & mask)
		if (a->keyset[i] == h)
			return true;
	return false;
}

/* Rebuild the set from the records still set aside (after a round), with room for twice as many. */
static int keyset_rebuild(struct sl_apply *a, uint32_t want)
{
	uint32_t cap = 64;

	while (cap < 2 * want)
		cap *= 2;
	if (cap != a->keyset_cap) {
		uint64_t *ks = calloc(cap, sizeof(*ks));

		if (ks == NULL)
			return -ENOMEM;
		free(a->keyset);
		a->keyset = ks;
		a->keyset_cap = cap;
	} else {
		memset(a->keyset, 0, cap * sizeof(*a->keyset));
	}
	for (uint32_t i = 0; i < a->deferred_count; i++)
		keyset_add(a, a->deferred[i].key_hash);
	return 0;
}

static void deferred_clear(struct sl_apply *a)
{
	for (uint32_t i = 0; i < a->deferred_count; i++) {
		free(a->deferred[i].mem);
		free(a->deferred[i].why);
	}
	a->deferred_count = 0;
	if (a->keyset != NULL)
		memset(a->keyset, 0, a->keyset_cap * sizeof(*a->keyset));
}

static const uint8_t *copy_field(uint8_t **at, const uint8_t *p, int32_t len)
{
	const uint8_t *out;

	if (p == NULL || len < 0)
		return p;
	memcpy(*at, p, (size_t)len);
	out = *at;
	*at += len;
	return out;
}

/* Set r aside after `attempts` tries; doomed_why not NULL: to be dead-lettered with that reason, untried. */
static int defer(struct sl_apply *a, const struct sl_apply_record *r, uint64_t h, uint32_t attempts,
                 const char *doomed_why)
{
	const struct sl_record *rec = &r->rec;
	size_t bytes = (size_t)(rec->key_len > 0 ? rec->key_len : 0) +
	               (size_t)(rec->value_len > 0 ? rec->value_len : 0) +
	               (size_t)(rec->idempotency_key_len > 0 ? rec->idempotency_key_len : 0) +
	               (size_t)(rec->origin_system_len > 0 ? rec->origin_system_len : 0) + 1;
	char *why = NULL;
	struct deferred *d;
	uint8_t *at;

	if (a->deferred_count == a->deferred_cap) {
		uint32_t cap = a->deferred_cap ? a->deferred_cap * 2 : 16;
		struct deferred *nd = realloc(a->deferred, cap * sizeof(*nd));

		if (nd == NULL)
			return -ENOMEM;
		a->deferred = nd;
		a->deferred_cap = cap;
	}
	if (a->keyset_cap < 2 * (a->deferred_count + 1) && keyset_rebuild(a, a->deferred_count + 1) != 0)
		return -ENOMEM;
	if (doomed_why != NULL && (why = strdup(doomed_why)) == NULL)
		return -ENOMEM;
	d = &a->deferred[a->deferred_count];
	d->r = *r;
	d->mem = NULL;
	/* A gathered record stays valid until the transaction ends (a prepared one is kept so: keep_prepared). */
	d->stable = a->gathering ? r : NULL;
	if (!a->gathering) {
		d->mem = malloc(bytes);
		if (d->mem == NULL) {
			free(why);
			return -ENOMEM;
		}
		at = d->mem;
		d->r.rec.key = copy_field(&at, rec->key, rec->key_len);
		d->r.rec.value = copy_field(&at, rec->value, rec->value_len);
		d->r.rec.idempotency_key = copy_field(&at, rec->idempotency_key, rec->idempotency_key_len);
		d->r.rec.origin_system = copy_field(&at, rec->origin_system, rec->origin_system_len);
		/* The raw headers section stays in the fetched batch, which this copy outlives: not kept. */
		d->r.rec.headers = NULL;
		d->r.rec.headers_len = 0;
		d->r.rec.header_count = 0;
	}
	d->key_hash = h;
	d->attempts = attempts;
	d->doomed = why != NULL;
	d->transient = false;
	d->why = why;
	a->deferred_count++;
	keyset_add(a, h);
	return 0;
}

static bool rejection_transient(const struct sl_apply *a)
{
	return a->store.ops->rejection_transient != NULL && a->store.ops->rejection_transient(a->store.ctx);
}

/* Keep the store's message of the rejection d just met (the store's error changes with the next call). */
static int deferred_note(struct sl_apply *a, struct deferred *d)
{
	free(d->why);
	d->why = strdup(a->store.ops->error(a->store.ctx));
	d->transient = rejection_transient(a);
	return d->why != NULL ? 0 : -ENOMEM;
}

/* The part of a record that is known to exist (it was processed). */
static struct apply_part *part_of(struct sl_apply *a, const struct sl_apply_record *r)
{
	int64_t i = part_find(a, r->topic, r->partition, false);

	SL_ASSERT(i >= 0);
	return &a->parts[i];
}

static int store_failed(struct sl_apply *a, const struct sl_apply_record *r, int rc)
{
	const char *msg = a->store.ops->error(a->store.ctx);

	snprintf(a->error, sizeof(a->error), "topic '%s' partition %u offset %lld: %s", r->topic, r->partition,
	         (long long)r->rec.offset, msg[0] != '\0' ? msg : strerror(-rc));
	return rc;
}

/* Retry rounds: before each, wait the backoff of the least-tried record set aside; then try each record in order
 * (one whose key has an earlier record still set aside waits for the next round); a record rejected for the
 * (reject_retries_max + 1)-th time is dead-lettered. Ends when nothing is set aside, or early when the engine is
 * asked to stop. Returns 0 or a failure of the store or the sink. */
static int deferred_resolve(struct sl_apply *a)
{
	char why[SL_ERROR_BYTES];
	int rc;

	while (a->deferred_count > 0 && !stop_requested(a)) {
		uint32_t least = UINT32_MAX, kept = 0;

		/* Records never tried (behind an earlier one of their key) and records only waiting to be dead-lettered
		 * wait for no backoff of their own. */
		for (uint32_t i = 0; i < a->deferred_count; i++)
			if (a->deferred[i].attempts > 0 && a->deferred[i].attempts <= a->o.reject_retries_max &&
			    a->deferred[i].attempts < least)
				least = a->deferred[i].attempts;
		if (least != UINT32_MAX)
			sleep_interruptible(a, backoff_ms(a, least - 1));
		if (stop_requested(a))
			break;
		memset(a->keyset, 0, a->keyset_cap * sizeof(*a->keyset));
		for (uint32_t i = 0; i < a->part_count; i++)
			a->parts[i].round_blocked = false;
		for (uint32_t i = 0; i < a->deferred_count; i++) {
			struct deferred *d = &a->deferred[i];
			const struct sl_apply_record *dr = d->stable != NULL ? d->stable : &d->r;
			struct apply_part *p = part_of(a, dr);
			enum outcome outcome = OUT_APPLIED;
			/* Dead letters leave in offset order: one waits while an earlier record of its partition is
			 * held. */
			bool doomed = d->doomed || d->attempts > a->o.reject_retries_max;

			if (keyset_has(a, d->key_hash) || stop_requested(a) || (doomed && p->round_blocked)) {
				a->deferred[kept++] = *d;
				keyset_add(a, d->key_hash);
				p->round_blocked = true;
				continue;
			}
			if (d->doomed) {
				rc = dead_letter(a, dr, d->why, false);
				outcome = OUT_DEAD_LETTERED;
				goto resolved;
			}
			bool tried = d->attempts <= a->o.reject_retries_max;

			if (!tried) {
				rc = SL_APPLY_REJECTED; /* rejected as often as allowed already: its turn to be
				                           dead-lettered */
			} else {
				rc = record_apply(a, dr, &outcome);
				d->attempts++;
			}
			if (rc == SL_APPLY_REJECTED && tried && deferred_note(a, d) != 0) {
				rc = -ENOMEM;
			} else if (rc == SL_APPLY_REJECTED && d->attempts <= a->o.reject_retries_max) {
				a->deferred[kept++] = *d;
				keyset_add(a, d->key_hash);
				p->round_blocked = true;
				continue;
			} else if (rc == SL_APPLY_REJECTED) {
				snprintf(why, sizeof(why), "rejected by the target %u time%s: %s", d->attempts,
				         d->attempts == 1 ? "" : "s", d->why != NULL ? d->why : "");
				rc = dead_letter(a, dr, why, d->transient);
				outcome = OUT_DEAD_LETTERED;
			} else if (rc != 0) {
				rc = store_failed(a, dr, rc);
			}
		resolved:
			if (rc != 0) {
				/* The whole transaction goes: keep the rest so deferred_clear frees it. */
				for (uint32_t j = i; j < a->deferred_count; j++)
					a->deferred[kept++] = a->deferred[j];
				a->deferred_count = kept;
				return rc;
			}
			counters_count(&part_of(a, dr)->txn, outcome);
			free(d->mem);
			free(d->why);
		}
		a->deferred_count = kept;
	}
	return 0;
}

/* Handle one record in the open transaction. Returns 0 or a negative errno (the transaction must be aborted). */
static int record_process(struct sl_apply *a, const struct sl_apply_record *r_in)
{
	const struct sl_apply_record *r = r_in;
	char why[SL_ERROR_BYTES];
	enum outcome outcome = OUT_APPLIED;
	struct apply_part *p;
	int64_t i = part_find(a, r->topic, r->partition, true);
	uint64_t h;
	bool set_aside = false;
	int rc = 0;

	if (i < 0) {
		snprintf(a->error, sizeof(a->error), "apply: out of memory for a new partition");
		return -ENOMEM;
	}
	p = &a->parts[i];
	SL_ASSERT(r->rec.offset >= 0);
	/* Invariant 6: nothing at or after a hold is applied, nor counted; the partition is not written. */
	if (p->held && r->rec.offset >= p->held_offset)
		return 0;
	if (p->next >= 0 && r->rec.offset < p->next) {
		/* Delivered again (the source went back): the store already holds its effect. */
		p->touched = true;
		p->txn.duplicate++;
		return 0;
	}
	if (sent_kept_has(a, (uint32_t)i, r->rec.offset)) {
		/* Dead-lettered (durably) by a chunk whose commit was refused: its letter is not sent twice. */
		counters_count(&p->txn, OUT_DEAD_LETTERED);
		p->touched = true;
		p->next = r->rec.offset + 1;
		a->txn_records++;
		return 0;
	}
	/* Dead letters leave in offset order: a record to dead-letter is set aside too, and sent when the set-aside
	 * records are resolved, in order. */
	if (r->rec.key == NULL || r->rec.key_len <= 0) {
		rc = defer(a, r, key_hash(&r->rec), 0, "the record has no key: a target entity needs one");
		set_aside = true;
	} else if ((rc = record_prepare(a, p, r_in, &r, why, sizeof(why))) == 0) {
		return 0; /* held: the partition waits at it, and is written only if a record before it was handled */
	} else if (a->gathering && r != r_in && (r = keep_prepared(a, r)) == NULL) {
		snprintf(a->error, sizeof(a->error), "apply: out of memory for a prepared record");
		return -ENOMEM;
	} else if (rc == SL_APPLY_REJECTED) {
		rc = defer(a, r, key_hash(&r->rec), 0, why);
		set_aside = true;
	} else if (keyset_has(a, h = key_hash(&r->rec))) {
		/* An earlier record of its key is set aside: it waits its turn (as prepared: upcast or fetched). */
		rc = defer(a, r, h, 0, NULL);
		set_aside = true;
	} else {
		rc = record_apply(a, r, &outcome);
		if (rc == SL_APPLY_REJECTED) {
			rc = defer(a, r, h, 1, NULL);
			if (rc == 0)
				rc = deferred_note(a, &a->deferred[a->deferred_count - 1]);
			set_aside = true;
		} else if (rc != 0) {
			return store_failed(a, r, rc);
		}
	}
	if (rc != 0)
		return rc;
	if (p->reported && r->rec.offset >= p->attempts_offset) {
		/* The record the partition waited at went through (applied, set aside or to be dead-lettered): it moves
		 * again. */
		p->attempts = 0;
		p->attempts_offset = -1;
		state_report(a, p, "ok", "", r->rec.offset);
	}
	if (!set_aside)
		counters_count(&p->txn, outcome);
	p->touched = true;
	p->next = r->rec.offset + 1;
	a->txn_records++;
	return 0;
}

/* Close the open transaction: resolve what is set aside, make the dead letters durable, commit. When stopping,
 * records still set aside keep their offsets: each partition's next offset goes back to its first one. */
static int txn_finish(struct sl_apply *a)
{
	int rc = deferred_resolve(a);

	if (rc != 0)
		return rc;
	if (a->deferred_count > 0) {
		for (uint32_t i = 0; i < a->deferred_count; i++) {
			struct apply_part *p = part_of(a, &a->deferred[i].r);

			if (a->deferred[i].r.rec.offset < p->next)
				p->next = a->deferred[i].r.rec.offset;
		}
		deferred_clear(a);
		a->seek_pending = true; /* the source read past them */
	}
	if (a->dead_letters_pending && a->o.dead_letter_flush_cb != NULL) {
		rc = a->o.dead_letter_flush_cb(a->o.dead_letter_cb_arg);
		if (rc != 0) {
			snprintf(a->error, sizeof(a->error), "making the dead letters durable failed: %s",
			         strerror(-rc));
			return rc;
		}
	}
	a->dead_letters_pending = false;
	return txn_commit(a);
}

/* ---- offset resets ---- */

/* The broker's reset generation, when newer than the store's, is adopted: its offsets become the target's
 * positions, with the generation, in one transaction (a target with no positions yet only records the
 * generation). Returns 1 when adopted (the source was sought there), 0 when nothing changed, or a negative
 * errno. */
static int reset_check(struct sl_apply *a)
{
	const struct sl_apply_store_ops *ops = a->store.ops;
	const struct sl_apply_position *pos = NULL;
	uint32_t n = 0;
	int64_t gen = 0, now = now_ms(a);
	bool has_positions = false;
	int rc;

	if (!a->resets_supported)
		return 0;
	SL_ASSERT(!a->in_txn);
	rc = a->source.ops->reset_poll(a->source.ctx, &gen, &pos, &n);
	if (rc < 0) {
		snprintf(a->error, sizeof(a->error), "%s", a->source.ops->error(a->source.ctx));
		return rc;
	}
	if (rc == 0 || gen <= a->reset_generation)
		return 0;
	for (uint32_t i = 0; i < a->part_count; i++)
		has_positions |= a->parts[i].committed >= 0;
	rc = ops->begin(a->store.ctx, now);
	for (uint32_t i = 0; rc == 0 && has_positions && i < n; i++)
		rc = ops->offset_reset(a->store.ctx, a->group, &pos[i], now);
	if (rc == 0)
		rc = ops->reset_generation_set(a->store.ctx, a->group, gen, now);
	if (rc == 0)
		rc = ops->commit(a->store.ctx);
	if (rc != 0) {
		snprintf(a->error, sizeof(a->error), "adopting offset reset %lld of group '%s': %s", (long long)gen,
		         a->group, ops->error(a->store.ctx));
		ops->rollback(a->store.ctx);
		return rc;
	}
	a->reset_generation = gen;
	a->replay_records = 0; /* a search by halves was about positions that are gone */
	sent_forget(a);
	if (!has_positions)
		return 0;
	for (uint32_t i = 0; i < n; i++) {
		int64_t k = part_find(a, pos[i].topic, pos[i].partition, true);

		if (k < 0)
			return -ENOMEM;
		a->parts[k].committed = a->parts[k].next = pos[i].next_offset;
	}
	a->resets_adopted++;
	a->commit_due = true;
	struct sl_slog *e = sl_slog_begin(SL_SLOG_WARN, "apply_reset_adopted");
	sl_slog_str(e, "group", a->group);
	sl_slog_int(e, "reset_generation", gen);
	sl_slog_uint(e, "partitions", n);
	for (uint32_t i = 0; i < n && i < 8; i++) {
		char key[32];

		snprintf(key, sizeof(key), "p%u", pos[i].partition);
		sl_slog_int(e, key, pos[i].next_offset);
	}
	sl_slog_end(e);
	rc = source_seek(a);
	return rc != 0 ? rc : 1;
}

/* ---- the loop ---- */

/* After a failed transaction: abort it and decide whether to go on. Returns 0 (retry) or rc (give up). */
static int failure(struct sl_apply *a, int rc)
{
	txn_abort(a);
	/* A refused chunk is no failure of the store: its search by halves goes on at once, and ends by itself. */
	if (rc == SL_APPLY_REJECTED && a->replay_records > 0)
		return 0;
	if (++a->failures > a->o.failure_retries_max)
		return rc;
	sleep_interruptible(a, backoff_ms(a, a->failures - 1));
	return 0;
}

static void commit_to_source(struct sl_apply *a)
{
	uint32_t n;
	int rc;

	if (a->source.ops->commit == NULL || !a->commit_due)
		return;
	struct sl_apply_counters totals;

	sl_apply_totals_get(a, &totals);
	n = positions_fill(a);
	rc = a->source.ops->commit(a->source.ctx, a->positions, n, &totals);
	if (rc != 0) {
		/* Not fatal: the store's positions are the ones that count; the broker only shows lag. */
		snprintf(a->error, sizeof(a->error), "committing the offsets to the broker: %s",
		         a->source.ops->error(a->source.ctx));
		return;
	}
	a->commit_due = false;
	a->last_commit_ms = now_ms(a);
}

int sl_apply_store_purge(const struct sl_apply_store *store, int64_t now, int64_t retention_ms,
                         struct sl_apply_purge_counts *out)
{
	struct sl_apply_purge_counts counts = {0};
	int rc = store->ops->begin(store->ctx, now);

	if (rc == 0)
		rc = store->ops->purge(store->ctx, now, retention_ms, &counts);
	if (rc == 0)
		rc = store->ops->commit(store->ctx);
	if (rc != 0)
		store->ops->rollback(store->ctx);
	if (out != NULL)
		*out = counts;
	return rc;
}

/* The purge that follows the log (apply.h, tombstones_due): deleted rows past the retention go once the source
 * says the log no longer holds their delete, or at once when the topic keeps deletes by retention alone. The
 * questions to the broker are asked outside the transaction; a broker that cannot answer leaves the rows for the
 * next pass. Returns 0 or the store's error. */
static int purge_following_log(struct sl_apply *a, int64_t now, uint64_t *purged_out)
{
	const struct sl_apply_store_ops *ops = a->store.ops;
	const struct sl_apply_source_ops *src = a->source.ops;
	if (ops->tombstones_due == NULL)
		return 0;
	struct sl_apply_tombstone *t = calloc(SL_APPLY_TOMBSTONE_CHECKS_MAX, sizeof(*t));
	uint8_t *go = calloc(SL_APPLY_TOMBSTONE_CHECKS_MAX, 1);
	uint32_t n = 0;
	int rc = t != NULL && go != NULL ? 0 : -ENOMEM;
	if (rc == 0)
		rc = ops->tombstones_due(a->store.ctx, now - a->o.tombstone_retention_ms, t,
		                         SL_APPLY_TOMBSTONE_CHECKS_MAX, &n);
	for (uint32_t i = 0; rc == 0 && i < n; i++) {
		bool present = false;
		int q = src->tombstone_in_log ? src->tombstone_in_log(a->source.ctx, t[i].topic, t[i].partition,
		                                                      t[i].offset, &present)
		                              : -ENOTSUP;
		if (q < 0 && q != -ENOTSUP)
			break; /* the broker cannot answer now: these rows wait for the next pass */
		go[i] = q == -ENOTSUP || !present;
	}
	if (rc == 0)
		rc = ops->begin(a->store.ctx, now);
	for (uint32_t i = 0; rc == 0 && i < n; i++) {
		bool purged = false;
		if (go[i] && (rc = ops->tombstone_purge(a->store.ctx, &t[i], &purged)) == 0 && purged)
			(*purged_out)++;
	}
	if (rc == 0)
		rc = ops->commit(a->store.ctx);
	if (rc != 0)
		ops->rollback(a->store.ctx);
	for (uint32_t i = 0; t != NULL && i < n; i++)
		free(t[i].key);
	free(t);
	free(go);
	return rc;
}

int sl_apply_purge(struct sl_apply *a, struct sl_apply_purge_counts *out)
{
	int64_t now = now_ms(a);
	struct sl_apply_purge_counts counts = {0};
	int rc;

	SL_ASSERT(!a->in_txn);
	rc = sl_apply_store_purge(&a->store, now, a->o.tombstone_retention_ms, &counts);
	if (rc == 0)
		rc = purge_following_log(a, now, &counts.tombstones);
	if (out != NULL)
		*out = counts;
	if (rc != 0)
		snprintf(a->error, sizeof(a->error), "purging tombstones: %s", a->store.ops->error(a->store.ctx));
	a->next_purge_ms = now + purge_interval_ms(&a->o);
	return rc;
}

/* End the holds whose retry is due, and seek the source back to the positions (the held records come again).
 * Returns the earliest retry still to come (INT64_MAX: none). */
static int64_t holds_release(struct sl_apply *a)
{
	int64_t now = now_ms(a), next = INT64_MAX;

	for (uint32_t i = 0; i < a->part_count; i++) {
		struct apply_part *p = &a->parts[i];

		if (!p->held || p->retry_at_ms == INT64_MAX)
			continue;
		if (p->retry_at_ms <= now) {
			p->held = false;
			a->seek_pending = true;
		} else if (p->retry_at_ms < next) {
			next = p->retry_at_ms;
		}
	}
	return next;
}

uint32_t sl_apply_held_count(const struct sl_apply *a)
{
	uint32_t n = 0;

	for (uint32_t i = 0; i < a->part_count; i++)
		n += a->parts[i].held && a->parts[i].retry_at_ms == INT64_MAX;
	return n;
}

/* The position of a copied field while the chunk is gathered: its offset in bytes plus one, NULL for none (the
 * buffer may still move). gather() turns these into pointers. */
static const uint8_t *gather_copy(struct apply_gather *g, const uint8_t *p, int32_t len)
{
	size_t at = g->bytes_len;

	if (p == NULL)
		return NULL;
	if (len > 0) {
		memcpy(g->bytes + at, p, (size_t)len);
		g->bytes_len += (size_t)len;
	}
	return (const uint8_t *)(uintptr_t)(at + 1);
}

static const uint8_t *gather_pointer(const struct apply_gather *g, const uint8_t *kept)
{
	return kept != NULL ? g->bytes + ((uintptr_t)kept - 1) : NULL;
}

/* Copy r into the gathered chunk. Returns 0 or -ENOMEM. Allocates only when the chunk outgrows every earlier one. */
static int gather_add(struct apply_gather *g, const struct sl_apply_record *r)
{
	const struct sl_record *rec = &r->rec;
	size_t need = g->bytes_len;
	struct sl_apply_record *out;

	need += rec->key != NULL && rec->key_len > 0 ? (size_t)rec->key_len : 0;
	need += rec->value != NULL && rec->value_len > 0 ? (size_t)rec->value_len : 0;
	need += rec->idempotency_key != NULL && rec->idempotency_key_len > 0 ? (size_t)rec->idempotency_key_len : 0;
	need += rec->origin_system != NULL && rec->origin_system_len > 0 ? (size_t)rec->origin_system_len : 0;
	if (g->count == g->cap) {
		uint32_t cap = g->cap ? g->cap * 2 : 1024;
		struct sl_apply_record *records = realloc(g->records, cap * sizeof(*records));

		if (records == NULL)
			return -ENOMEM;
		g->records = records;
		g->cap = cap;
	}
	if (need > g->bytes_cap) {
		size_t cap = need > g->bytes_cap * 2 ? need : g->bytes_cap * 2;
		uint8_t *bytes = realloc(g->bytes, cap);

		if (bytes == NULL)
			return -ENOMEM;
		g->bytes = bytes;
		g->bytes_cap = cap;
	}
	out = &g->records[g->count++];
	*out = *r;
	out->rec.key = gather_copy(g, rec->key, rec->key_len);
	out->rec.value = gather_copy(g, rec->value, rec->value_len);
	out->rec.idempotency_key = gather_copy(g, rec->idempotency_key, rec->idempotency_key_len);
	out->rec.origin_system = gather_copy(g, rec->origin_system, rec->origin_system_len);
	out->rec.headers = NULL; /* the raw section stays in the fetched batch, which the gather outlives */
	out->rec.headers_len = 0;
	out->rec.header_count = 0;
	return 0;
}

/* Gather the next chunk of the fetched batch: up to limit records, and past SL_APPLY_GATHER_BYTES_MAX bytes by
 * one record at most. Returns the number of records (0 at the end of the batch) or a negative errno (a->error
 * set). */
static int gather(struct sl_apply *a, uint32_t limit)
{
	struct apply_gather *g = &a->gather;
	struct sl_apply_record r;
	int rc;

	g->count = 0;
	g->bytes_len = 0;
	while (g->count < limit && g->bytes_len < SL_APPLY_GATHER_BYTES_MAX) {
		rc = a->source.ops->next(a->source.ctx, &r);
		if (rc == 0)
			break;
		if (rc < 0) {
			snprintf(a->error, sizeof(a->error), "%s", a->source.ops->error(a->source.ctx));
			return rc;
		}
		if (gather_add(g, &r) != 0) {
			snprintf(a->error, sizeof(a->error), "apply: out of memory for a batch of %u records",
			         g->count);
			return -ENOMEM;
		}
	}
	for (uint32_t i = 0; i < g->count; i++) {
		struct sl_record *rec = &g->records[i].rec;

		rec->key = gather_pointer(g, rec->key);
		rec->value = gather_pointer(g, rec->value);
		rec->idempotency_key = gather_pointer(g, rec->idempotency_key);
		rec->origin_system = gather_pointer(g, rec->origin_system);
	}
	return (int)g->count;
}

/* The engine was asked to stop with records pulled from the source and not handled: the source must go back to
 * the committed positions before reading on; a search by halves ends (the next run begins it again if need be). */
static void poll_stop(struct sl_apply *a, bool *stopped)
{
	a->seek_pending = true;
	a->replay_records = 0;
	sent_forget(a);
	*stopped = true;
}

/* Apply the fetched batch in gathered chunks, each one transaction that begins with a prefetch (apply.h,
 * "Batches"). Returns the records handled with *failed false (*stopped true when the engine was asked to stop);
 * after a failure, *failed true and what sl_apply_poll returns then. */
static int poll_gathered(struct sl_apply *a, bool *failed, bool *stopped)
{
	int handled = 0, rc;

	*failed = true;
	while (!*stopped) {
		uint32_t limit = a->o.transaction_records_max, done = 0;
		int count;

		if (a->replay_records > 0 && a->replay_chunk_max < limit)
			limit = a->replay_chunk_max;
		if (a->replay_records > 0 && a->replay_records < limit)
			limit = a->replay_records;
		count = gather(a, limit);
		if (count < 0) {
			txn_abort(a);
			return count;
		}
		if (count == 0)
			break;
		for (; done < (uint32_t)count; done++) {
			if (stop_requested(a)) {
				poll_stop(a, stopped);
				break;
			}
			rc = !a->in_txn ? txn_begin_chunk(a, done) : 0;
			if (rc == 0)
				rc = record_process(a, &a->gather.records[done]);
			if (rc != 0)
				return failure(a, rc);
			handled++;
		}
		if (a->in_txn && (rc = txn_finish(a)) != 0)
			return failure(a, rc);
		/* A chunk of the search committed: that part of the refused chunk is done. */
		a->replay_records -= a->replay_records < done ? a->replay_records : done;
		if (a->replay_records == 0)
			sent_forget(a);
	}
	*failed = false;
	return handled;
}

/* Apply the fetched batch record by record as the source hands them out; returns as poll_gathered. */
static int poll_streamed(struct sl_apply *a, bool *failed, bool *stopped)
{
	const struct sl_apply_source_ops *src = a->source.ops;
	struct sl_apply_record r;
	int handled = 0, rc;

	*failed = true;
	while ((rc = src->next(a->source.ctx, &r)) == 1) {
		if (stop_requested(a)) {
			/* r is not handled: the source must go back to the committed positions before reading on. */
			poll_stop(a, stopped);
			rc = 0;
			break;
		}
		if (!a->in_txn && (rc = txn_begin(a)) != 0)
			return failure(a, rc);
		rc = record_process(a, &r);
		if (rc == 0 && a->in_txn && a->txn_records >= a->o.transaction_records_max)
			rc = txn_finish(a);
		if (rc != 0)
			return failure(a, rc);
		handled++;
	}
	if (rc < 0) {
		snprintf(a->error, sizeof(a->error), "%s", src->error(a->source.ctx));
		txn_abort(a);
		return rc;
	}
	if (a->in_txn && (rc = txn_finish(a)) != 0)
		return failure(a, rc);
	*failed = false;
	return handled;
}

int sl_apply_poll(struct sl_apply *a)
{
	const struct sl_apply_source_ops *src = a->source.ops;
	bool failed = false, stopped = false;
	int64_t retry_at;
	int rc;

	SL_ASSERT(!a->in_txn);
	if (stop_requested(a))
		return -EINTR;
	if (now_ms(a) >= a->next_purge_ms) {
		rc = sl_apply_purge(a, NULL);
		if (rc != 0)
			return failure(a, rc);
	}
	retry_at = holds_release(a);
	if ((rc = reset_check(a)) < 0)
		return rc;
	if (a->seek_pending && (rc = source_seek(a)) != 0)
		return rc;
	if (retry_at != INT64_MAX && src->done(a->source.ctx)) {
		/* Everything else is applied: wait for the retry here rather than spin on an ended source. */
		int64_t wait = retry_at - now_ms(a);
		a->o.sleep_ms(wait > 200 ? 200 : wait > 0 ? (uint32_t)wait : 0, a->o.clock_arg);
		return 0;
	}
	rc = src->fetch(a->source.ctx);
	if (rc == SL_APPLY_SOURCE_RESEEK) {
		/* The partitions read changed (a rebalance, perhaps for an offset reset): from the store's positions.
		 */
		if ((rc = reset_check(a)) < 0)
			return rc;
		return rc == 1 ? 0 : source_seek(a);
	}
	if (rc == -EINTR)
		return rc;
	if (rc != 0) {
		snprintf(a->error, sizeof(a->error), "%s", src->error(a->source.ctx));
		return rc;
	}
	a->gathering = a->store.ops->prefetch != NULL;
	rc = a->gathering ? poll_gathered(a, &failed, &stopped) : poll_streamed(a, &failed, &stopped);
	a->gathering = false;
	if (failed)
		return rc;
	a->failures = 0;
	if (stopped || stop_requested(a))
		return -EINTR;
	if (now_ms(a) - a->last_commit_ms >= a->o.commit_interval_ms)
		commit_to_source(a);
	return rc;
}

bool sl_apply_done(const struct sl_apply *a)
{
	for (uint32_t i = 0; i < a->part_count; i++)
		if (a->parts[i].held && a->parts[i].retry_at_ms != INT64_MAX)
			return false; /* a thin event waits for its retry */
	return !a->in_txn && a->source.ops->done(a->source.ctx);
}

int sl_apply_flush(struct sl_apply *a)
{
	if (a->source.ops->commit == NULL || !a->commit_due)
		return 0;
	commit_to_source(a);
	return a->commit_due ? -EIO : 0;
}
