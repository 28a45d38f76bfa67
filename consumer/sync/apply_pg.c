/* The PostgreSQL target store of the applier, on libpq: the tables of apply.h in a schema of their own, written in
 * batches so that a transaction costs a few round trips whatever its size, and reconnecting after a lost
 * connection or a server restart. The rules stay in the engine (apply.c); this file only stores.
 *
 * A transaction with prefetch (the engine's batches; apply.h, "Batches"):
 *   begin      BEGIN and the schema's advisory lock are queued, not sent
 *   prefetch   one pipeline: BEGIN, the lock, SELECT the stored state of every key of the batch (key = ANY($1)),
 *              SELECT which of its idempotency keys are stored: one round trip
 *   the rules  key_get and idempotency_seen are answered from the key table below; writes are kept in it
 *   commit     the kept rows go in one binary COPY into a temporary table, then one pipeline: INSERT ... SELECT
 *              ... ON CONFLICT (key) DO UPDATE for the rows, the same for deletes that keep a stored value, INSERT
 *              of the stale events and idempotency keys, the offsets' compare-and-set writes; once their row
 *              counts are checked, COMMIT: four round trips
 * A transaction without prefetch (the last step of the search for a refused record, a purge, a dead letter's
 * offset) sends each call at once; an upsert or a delete runs in a savepoint, so that a row the database refuses
 * leaves the transaction usable.
 *
 * Why COPY into a temporary table and not one INSERT ... SELECT FROM unnest($1::text[], ...) with the columns as
 * arrays, or one INSERT per row in a pipeline: measured with bench/pg/floor.c on the benchmark's workload (1 M
 * upserts over 200,000 keys in transactions of 25,000, synchronous_commit on, this 2-core VM shared with other
 * work), COPY in text format ran at 34-88 k rows/s, faster than unnest in 7 of 9 interleaved rounds (median 78 k
 * against 67 k); binary COPY ran with text COPY (65-73 k against 65-70 k in the same rounds); a pipeline of
 * single-row INSERTs ran at 0.55-0.7 of COPY in every round. The server's cost per row decides: the round trips
 * a COPY adds (two per transaction) are under a millisecond against hundreds of milliseconds of upserts. Binary
 * COPY is used because it needs no escaping: keys and JSON values go as they are.
 *
 * The key table (struct pg_keys): an open-addressing hash of the transaction's distinct keys (xxh3 of the bytes),
 * each entry holding the state the rules see (stored, then as the kept writes left it) and the one write kept for
 * the key: the row as it must end (KEPT_ROW), or a delete of the stored row that keeps its value and its first
 * deletion time (KEPT_DELETE, sent as an upsert whose conflict branch keeps those columns). One write per key,
 * because ON CONFLICT may not touch a row twice in one statement. Entries point into the engine's copy of the
 * records, valid until the transaction ends. The idempotency keys have a table of their own of the same kind.
 *
 * The COPY rows (temporary table synclog_batch, created per connection, ON COMMIT DELETE ROWS), in COPY's binary
 * format (a 19-byte header, then per row a 2-byte field count and per field a 4-byte length, -1 for NULL, and the
 * value; a 2-byte -1 at the end):
 *   kind   'u' a kept row, 'd' a kept delete of a stored row, 's' a stale event, 'i' an idempotency key,
 *          'A' a kept live row a delete archives, 'a' a stored live row a delete archives (--on-delete archive)
 *   key, version, value, deleted, deleted_at_ms, origin, topic, partition, offset, now_ms, stored_version,
 *   idempotency_key, deleted_version, deleted_offset: what each kind needs, NULL otherwise
 * The archive statements run first in the commit's pipeline, so that an 'a' row copies the row as it was before
 * the transaction's writes.
 *
 * Invariants:
 *   1. A transaction holds the advisory lock of its schema from its first statement: appliers on one schema take
 *      turns, as SQLite's BEGIN IMMEDIATE makes them, so the state prefetched stays true until commit.
 *   2. The connection is only replaced between transactions: a lost connection fails the open transaction (the
 *      engine rolls back and resumes from the stored offsets); the next begin or offsets_read reconnects.
 *   3. Every kept write is counted where it is sent: a statement writing n kept rows must report n rows, or the
 *      transaction is rolled back (the table changed under the lock: someone wrote without it).
 *
 * The tables (their SQL, creation and checks, the claim of an entity table, the purges) are apply_pg_tables.c's;
 * the connection, its pipelines and reconnection are pg_link.c's (for a PostgreSQL source to share).
 *
 * Threads: one store belongs to one thread (the engine's). */
#include <endian.h>
#include <errno.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "proto/base/clock.h"
#include "consumer/sync/apply_pg_impl.h"
#include "consumer/sync/value.h"
#include "consumer/client/client_impl.h"
#include "consumer/client/json_text.h"

/* Rows of the COPY: fields per row. */
#define COPY_FIELDS 17
/* An integer field of a COPY row that is NULL (SL_VERSION_NONE is never written: a kept row has a version). */
#define NO_INT      INT64_MIN
/* The temporary table of the kept rows, per connection; its rows go at commit. */
#define COPY_SQL    "COPY pg_temp.synclog_batch FROM STDIN (FORMAT binary)"

/* Empty the table for up to n keys. Returns 0 or -ENOMEM. */
static int keys_reset(struct pg_keys *t, uint32_t n)
{
	uint32_t slots = 64;

	while (slots < 2 * (uint64_t)n)
		slots *= 2;
	if (n > t->cap) {
		struct pg_key *e = realloc(t->entries, n * sizeof(*e));

		if (e == NULL)
			return -ENOMEM;
		t->entries = e;
		t->cap = n;
	}
	if (slots > t->slot_count) {
		uint32_t *s = realloc(t->slots, slots * sizeof(*s));

		if (s == NULL)
			return -ENOMEM;
		t->slots = s;
		t->slot_count = slots;
	}
	memset(t->slots, 0, t->slot_count * sizeof(*t->slots));
	t->count = 0;
	return 0;
}

/* The entry of key, added (zeroed, not existing) when missing and add is set; NULL when missing. An add beyond
 * the count keys_reset made room for is a programmer error. */
static struct pg_key *keys_find(struct pg_keys *t, const uint8_t *key, int32_t len, bool add)
{
	uint64_t h = XXH3_64bits(key, (size_t)len);
	uint32_t mask = t->slot_count - 1, i = (uint32_t)h & mask;
	struct pg_key *e;

	if (t->slot_count == 0)
		return NULL;
	for (;; i = (i + 1) & mask) {
		uint32_t at = t->slots[i];

		if (at == 0)
			break;
		e = &t->entries[at - 1];
		if (e->hash == h && e->key_len == len && memcmp(e->key, key, (size_t)len) == 0)
			return e;
	}
	if (!add)
		return NULL;
	SL_ASSERT(t->count < t->cap);
	e = &t->entries[t->count++];
	memset(e, 0, sizeof(*e));
	e->key = key;
	e->key_len = len;
	e->hash = h;
	t->slots[i] = t->count;
	return e;
}

int sl_apply_pg_fail_memory(struct sl_apply_pg *s, const char *what)
{
	snprintf(s->link.error, sizeof(s->link.error), "postgresql %s: %s: out of memory", s->schema, what);
	return -ENOMEM;
}

/* Queue prepared statement i; see sl_pg_link_send. */
int sl_apply_pg_send(struct sl_apply_pg *s, enum stmt i, int n, const char *const *values, const int *lengths,
                     bool results_binary, struct sl_pg_step step)
{
	char name[STMT_NAME_BYTES];

	snprintf(name, sizeof(name), "s%d", (int)i);
	return sl_pg_link_send(&s->link, name, n, values, lengths, results_binary, step);
}

/* Rows of the prefetch (key, version, deleted; binary) into the key table. */
static int key_states_cb(const PGresult *res, void *out)
{
	struct sl_apply_pg *s = out;

	for (int i = 0; i < PQntuples(res); i++) {
		struct pg_key *e =
		        keys_find(&s->keys, (const uint8_t *)PQgetvalue(res, i, 0), PQgetlength(res, i, 0), false);

		if (e == NULL || PQgetlength(res, i, 1) != 8 || PQgetlength(res, i, 2) != 1) {
			snprintf(s->link.error, sizeof(s->link.error),
			         "postgresql %s: the prefetch returned a key that was not asked for", s->schema);
			return -EPROTO;
		}
		e->exists = true;
		e->version = sl_pg_be64(PQgetvalue(res, i, 1));
		e->deleted = PQgetvalue(res, i, 2)[0] != 0;
	}
	return 0;
}

/* Rows of the prefetch (key, version; binary) of synclog_purged into the key table: floors (rule 5). */
static int floor_states_cb(const PGresult *res, void *out)
{
	struct sl_apply_pg *s = out;

	for (int i = 0; i < PQntuples(res); i++) {
		struct pg_key *e =
		        keys_find(&s->keys, (const uint8_t *)PQgetvalue(res, i, 0), PQgetlength(res, i, 0), false);

		if (e == NULL || PQgetlength(res, i, 1) != 8)
			return -EPROTO;
		if (!e->exists) {
			e->purged = true;
			e->floor_version = sl_pg_be64(PQgetvalue(res, i, 1));
		}
	}
	return 0;
}

/* Rows (key, value as text, deleted; binary) into the key table's stored values. */
static int stored_values_cb(const PGresult *res, void *out)
{
	struct sl_apply_pg *s = out;

	for (int i = 0; i < PQntuples(res); i++) {
		struct pg_key *e =
		        keys_find(&s->keys, (const uint8_t *)PQgetvalue(res, i, 0), PQgetlength(res, i, 0), false);

		if (e == NULL || PQgetlength(res, i, 2) != 1)
			return -EPROTO;
		e->stored_known = true;
		e->stored_deleted = PQgetvalue(res, i, 2)[0] != 0;
		e->stored_value_null = PQgetisnull(res, i, 1);
		e->stored_value_at = (uint32_t)s->stored_values.len;
		e->stored_value_len = (uint32_t)PQgetlength(res, i, 1);
		sl_pg_buf_put(&s->stored_values, PQgetvalue(res, i, 1), (size_t)PQgetlength(res, i, 1));
	}
	return s->stored_values.failed ? -ENOMEM : 0;
}

/* Rows of the prefetch (idempotency_key; binary) into the idempotency key table. */
static int ik_states_cb(const PGresult *res, void *out)
{
	struct sl_apply_pg *s = out;

	for (int i = 0; i < PQntuples(res); i++) {
		struct pg_key *e =
		        keys_find(&s->iks, (const uint8_t *)PQgetvalue(res, i, 0), PQgetlength(res, i, 0), false);

		if (e != NULL)
			e->exists = true;
	}
	return 0;
}

/* Zero or one row (version, deleted; binary) into a struct sl_apply_key_state. */
static int key_get_cb(const PGresult *res, void *out)
{
	struct sl_apply_key_state *ks = out;

	ks->exists = PQntuples(res) == 1;
	ks->version = ks->exists ? sl_pg_be64(PQgetvalue(res, 0, 0)) : 0;
	ks->deleted = ks->exists && PQgetvalue(res, 0, 1)[0] != 0;
	return 0;
}

/* Zero or one row (version; binary) of synclog_purged into a struct sl_apply_key_state. */
static int floor_get_cb(const PGresult *res, void *out)
{
	struct sl_apply_key_state *ks = out;

	ks->purged = PQntuples(res) == 1;
	ks->floor_version = ks->purged ? sl_pg_be64(PQgetvalue(res, 0, 0)) : 0;
	return 0;
}

/* Zero or one row (value as text, deleted; binary) into a struct stored_value. */
struct stored_value {
	bool found;
	bool deleted;
	bool value_null;
	struct sl_pg_buf *buf; /* holds the value */
};

static int value_get_cb(const PGresult *res, void *out)
{
	struct stored_value *v = out;

	v->found = PQntuples(res) == 1;
	sl_pg_buf_reset(v->buf);
	if (!v->found)
		return 0;
	v->deleted = PQgetvalue(res, 0, 1)[0] != 0;
	v->value_null = PQgetisnull(res, 0, 0);
	sl_pg_buf_put(v->buf, PQgetvalue(res, 0, 0), (size_t)PQgetlength(res, 0, 0));
	return v->buf->failed ? -ENOMEM : 0;
}

/* Rows of synclog_offsets (text) to the engine's callback. */
static int offsets_cb(const PGresult *res, void *out)
{
	struct sl_apply_pg *s = out;

	for (int i = 0; i < PQntuples(res) && s->offsets_cb_rc == 0; i++) {
		struct sl_apply_position pos = {
		        .topic = PQgetvalue(res, i, 0),
		        .partition = (uint32_t)strtoul(PQgetvalue(res, i, 1), NULL, 10),
		        .next_offset = strtoll(PQgetvalue(res, i, 2), NULL, 10),
		};
		struct sl_apply_counters totals = {
		        .applied = strtoull(PQgetvalue(res, i, 3), NULL, 10),
		        .stale = strtoull(PQgetvalue(res, i, 4), NULL, 10),
		        .duplicate = strtoull(PQgetvalue(res, i, 5), NULL, 10),
		        .deleted = strtoull(PQgetvalue(res, i, 6), NULL, 10),
		        .dead_lettered = strtoull(PQgetvalue(res, i, 7), NULL, 10),
		};

		if (pos.next_offset < 0) {
			snprintf(s->link.error, sizeof(s->link.error),
			         "postgresql %s: synclog_offsets holds a negative offset for topic '%s' partition %u",
			         s->schema, pos.topic, pos.partition);
			return -EUCLEAN;
		}
		s->offsets_cb_rc = s->offsets_cb(&pos, &totals, s->offsets_cb_arg);
	}
	return s->offsets_cb_rc;
}

/* Send BEGIN and the lock when the transaction has not sent them yet (they then go with the caller's pipeline);
 * reconnect first when the connection was lost since the last transaction. */
int sl_apply_pg_txn_send_begin(struct sl_apply_pg *s)
{
	const char *values[1] = {s->schema};
	int lengths[1] = {(int)strlen(s->schema)};
	int rc;

	SL_ASSERT(s->txn != TXN_NONE);
	if (s->txn == TXN_OPEN)
		return 0;
	rc = sl_pg_link_ready(&s->link);
	if (rc == 0)
		rc = sl_pg_link_send_sql(&s->link, "BEGIN", "begin a transaction");
	if (rc == 0)
		rc = sl_apply_pg_send(
		        s, ST_LOCK, 1, values, lengths, false,
		        (struct sl_pg_step){.check = SL_PG_COMMAND, .what = "take the schema's advisory lock"});
	if (rc == 0)
		s->txn = TXN_OPEN;
	return rc;
}

/* ---- the store's operations ---- */

static void batch_clear(struct sl_apply_pg *s)
{
	s->prefetched = false;
	s->keys.count = 0;
	s->iks.count = 0;
	sl_pg_buf_reset(&s->copy);
	s->copy_stale = s->copy_iks = s->copy_archived_kept = s->copy_archived_stored = s->copy_conflicts = 0;
	sl_pg_buf_reset(&s->stored_values);
	s->offset_count = 0;
}

static int op_begin(void *store, int64_t now_ms)
{
	struct sl_apply_pg *s = store;

	(void)now_ms;
	SL_ASSERT(s->txn == TXN_NONE && s->link.step_count == 0);
	batch_clear(s);
	s->txn = TXN_PENDING;
	return 0;
}

void sl_apply_pg_rollback(void *store)
{
	struct sl_apply_pg *s = store;

	batch_clear(s);
	/* Nothing to do when it fails: a broken connection ends the transaction by itself. */
	if (s->txn == TXN_OPEN && sl_pg_link_up(&s->link) &&
	    sl_pg_link_send_sql(&s->link, "ROLLBACK", "roll back") == 0)
		sl_pg_link_run(&s->link);
	s->link.step_count = 0;
	s->txn = TXN_NONE;
}

static int key_check(struct sl_apply_pg *s, const struct sl_apply_record *r)
{
	s->reject_transient = false;
	if (!sl_utf8_text_valid(r->rec.key, (size_t)r->rec.key_len)) {
		snprintf(s->link.error, sizeof(s->link.error),
		         "offset %lld: the key is not UTF-8 text (or holds NUL bytes)", (long long)r->rec.offset);
		return SL_APPLY_REJECTED;
	}
	return 0;
}

static int value_check(struct sl_apply_pg *s, const struct sl_apply_record *r)
{
	const uint8_t *v = r->rec.value;
	size_t len = (size_t)r->rec.value_len;

	s->reject_transient = false;
	if (v != NULL && s->values == SL_APPLY_VALUES_JSON && !sl_json_valid(v, len)) {
		snprintf(s->link.error, sizeof(s->link.error),
		         "offset %lld: the value is not JSON text (RFC 8259): the target stores JSON entities",
		         (long long)r->rec.offset);
		return SL_APPLY_REJECTED;
	}
	if (v != NULL && s->values == SL_APPLY_VALUES_TEXT && !sl_utf8_text_valid(v, len)) {
		snprintf(s->link.error, sizeof(s->link.error),
		         "offset %lld: the value is not UTF-8 text (or holds NUL bytes)", (long long)r->rec.offset);
		return SL_APPLY_REJECTED;
	}
	return 0;
}

static int ik_check(struct sl_apply_pg *s, const struct sl_apply_record *r)
{
	s->reject_transient = false;
	if (r->rec.idempotency_key_len > SL_APPLY_IDEMPOTENCY_KEY_BYTES_MAX) {
		snprintf(s->link.error, sizeof(s->link.error),
		         "offset %lld: the idempotency key is longer than %d bytes", (long long)r->rec.offset,
		         SL_APPLY_IDEMPOTENCY_KEY_BYTES_MAX);
		return SL_APPLY_REJECTED;
	}
	return 0;
}

/* The entry of a prefetched record; the engine prefetches every record it applies (apply.h). */
static struct pg_key *key_entry(struct sl_apply_pg *s, const struct sl_apply_record *r)
{
	struct pg_key *e = keys_find(&s->keys, r->rec.key, r->rec.key_len, false);

	SL_ASSERT(e != NULL);
	return e;
}

/* Queue the lookup of the array in b (of element type oid) with prepared statement i. */
static int prefetch_send(struct sl_apply_pg *s, enum stmt i, struct sl_pg_buf *b, sl_pg_rows_cb cb, const char *what)
{
	const char *values[1] = {b->p};
	int lengths[1] = {(int)b->len};

	if (b->failed)
		return sl_apply_pg_fail_memory(s, what);
	return sl_apply_pg_send(s, i, 1, values, lengths, true,
	                        (struct sl_pg_step){.check = SL_PG_ROWS, .out = s, .rows_cb = cb, .what = what});
}

/* Queue the lookup of the floors of the keys in the array b (rule 5). */
static int floors_send(struct sl_apply_pg *s, struct sl_pg_buf *b)
{
	const char *values[2] = {s->table, b->p};
	int lengths[2] = {(int)strlen(s->table), (int)b->len};

	return sl_apply_pg_send(s, ST_PREFETCH_FLOORS, 2, values, lengths, true,
	                        (struct sl_pg_step){.check = SL_PG_ROWS,
	                                            .out = s,
	                                            .rows_cb = floor_states_cb,
	                                            .what = "look up the batch's purged keys"});
}

/* The stored values of the keys whose records carry the stored version (a duplicate or a conflict, rule 4: the
 * engine will ask value_same), in one more round trip; none in the usual batch of newer versions. */
static int stored_values_fetch(struct sl_apply_pg *s, const struct sl_apply_record *records, uint32_t count)
{
	struct sl_pg_buf *b = &s->params[0];
	uint32_t n = 0;

	for (uint32_t i = 0; i < count; i++) {
		const struct sl_record *rec = &records[i].rec;
		struct pg_key *e;

		if (rec->version == SL_VERSION_NONE || rec->key == NULL || rec->key_len <= 0)
			continue;
		e = keys_find(&s->keys, rec->key, rec->key_len, false);
		if (e == NULL || !e->exists || e->version != rec->version || e->stored_known)
			continue;
		e->stored_known = true; /* asked for; the answer fills it */
		if (n++ == 0)
			sl_pg_buf_reset(b);
		sl_pg_field_bytes(b, e->key, (size_t)e->key_len);
	}
	if (n == 0)
		return 0;
	{
		/* The elements went in first: put the array's header before them. */
		struct sl_pg_buf *h = &s->params[1];

		sl_pg_array_start(h, SL_PG_OID_TEXT, n);
		sl_pg_buf_put(h, b->p, b->len);
		if (h->failed || b->failed)
			return sl_apply_pg_fail_memory(s, "look up stored values");
		for (uint32_t i = 0; i < s->keys.count; i++)
			if (s->keys.entries[i].stored_known)
				s->keys.entries[i].stored_known = false;
		int rc = prefetch_send(s, ST_PREFETCH_VALUES, h, stored_values_cb, "look up stored values");
		return rc != 0 ? rc : sl_pg_link_run(&s->link);
	}
}

static int op_prefetch(void *store, const struct sl_apply_record *records, uint32_t count)
{
	struct sl_apply_pg *s = store;
	struct sl_pg_buf *keys = &s->params[0], *iks = &s->params[1];
	uint32_t key_count = 0, ik_count = 0;
	int rc;

	if (keys_reset(&s->keys, count) != 0 || keys_reset(&s->iks, count) != 0)
		return sl_apply_pg_fail_memory(s, "prefetch");
	/* Distinct keys the store can look up; one that cannot be is refused later by key_get or its write. */
	for (uint32_t i = 0; i < count; i++) {
		const struct sl_record *rec = &records[i].rec;

		if (rec->key != NULL && rec->key_len > 0 && sl_utf8_text_valid(rec->key, (size_t)rec->key_len) &&
		    keys_find(&s->keys, rec->key, rec->key_len, false) == NULL) {
			keys_find(&s->keys, rec->key, rec->key_len, true);
			key_count++;
		}
		if (rec->idempotency_key != NULL && rec->idempotency_key_len <= SL_APPLY_IDEMPOTENCY_KEY_BYTES_MAX &&
		    keys_find(&s->iks, rec->idempotency_key, rec->idempotency_key_len, false) == NULL) {
			keys_find(&s->iks, rec->idempotency_key, rec->idempotency_key_len, true);
			ik_count++;
		}
	}
	rc = sl_apply_pg_txn_send_begin(s);
	if (rc == 0 && ik_count > 0) {
		sl_pg_array_start(iks, SL_PG_OID_BYTEA, ik_count);
		for (uint32_t i = 0; i < s->iks.count; i++)
			sl_pg_field_bytes(iks, s->iks.entries[i].key, (size_t)s->iks.entries[i].key_len);
		rc = prefetch_send(s, ST_PREFETCH_IKS, iks, ik_states_cb, "look up the batch's idempotency keys");
	}
	if (rc == 0 && key_count > 0) {
		sl_pg_array_start(keys, SL_PG_OID_TEXT, key_count);
		for (uint32_t i = 0; i < s->keys.count; i++)
			sl_pg_field_bytes(keys, s->keys.entries[i].key, (size_t)s->keys.entries[i].key_len);
		rc = prefetch_send(s, ST_PREFETCH_KEYS, keys, key_states_cb, "look up the batch's keys");
		if (rc == 0)
			rc = floors_send(s, keys);
	}
	if (rc == 0)
		rc = sl_pg_link_run(&s->link);
	if (rc == 0)
		rc = stored_values_fetch(s, records, count);
	if (rc == 0)
		s->prefetched = true;
	return rc;
}

static int op_key_get(void *store, const struct sl_apply_record *r, struct sl_apply_key_state *out)
{
	struct sl_apply_pg *s = store;
	const char *values[1] = {(const char *)r->rec.key};
	int lengths[1] = {r->rec.key_len};
	int rc = key_check(s, r);

	if (rc != 0)
		return rc;
	memset(out, 0, sizeof(*out));
	if (s->prefetched) {
		const struct pg_key *e = key_entry(s, r);

		out->exists = e->exists;
		out->deleted = e->deleted;
		out->version = e->version;
		out->purged = !e->exists && e->purged;
		out->floor_version = out->purged ? e->floor_version : 0;
		return 0;
	}
	rc = sl_apply_pg_txn_send_begin(s);
	if (rc == 0)
		rc = sl_apply_pg_send(s, ST_KEY_GET, 1, values, lengths, true,
		                      (struct sl_pg_step){.check = SL_PG_ROWS,
		                                          .out = out,
		                                          .rows_cb = key_get_cb,
		                                          .what = "read a key's version"});
	if (rc == 0)
		rc = sl_pg_link_run(&s->link);
	if (rc == 0 && !out->exists) {
		/* Rule 5: a key that is not stored may have been purged. */
		const char *floor[2] = {s->table, (const char *)r->rec.key};
		int floor_lengths[2] = {(int)strlen(s->table), r->rec.key_len};

		rc = sl_apply_pg_send(s, ST_FLOOR_GET, 2, floor, floor_lengths, true,
		                      (struct sl_pg_step){.check = SL_PG_ROWS,
		                                          .out = out,
		                                          .rows_cb = floor_get_cb,
		                                          .what = "read a purged key's version"});
		if (rc == 0)
			rc = sl_pg_link_run(&s->link);
	}
	return rc;
}

/* Bind the parameters of the upsert and soft delete statements: key, version, value, origin, topic, partition,
 * offset, now. */
static void entity_params(struct sl_apply_pg *s, const struct sl_apply_record *r, int64_t version, int64_t now_ms,
                          const char **values, int *lengths, uint64_t *ints, uint32_t *partition)
{
	const char *origin = sl_origin_name(r->rec.origin);

	values[0] = (const char *)r->rec.key;
	lengths[0] = r->rec.key_len;
	ints[0] = htobe64((uint64_t)version);
	values[1] = (const char *)&ints[0];
	lengths[1] = 8;
	values[2] = NULL;
	lengths[2] = 0;
	if (r->rec.value != NULL && s->values == SL_APPLY_VALUES_JSON) {
		/* jsonb's binary form: a version byte, then the text. */
		sl_pg_buf_reset(&s->params[1]);
		sl_pg_buf_put(&s->params[1], "\x01", 1);
		sl_pg_buf_put(&s->params[1], r->rec.value, (size_t)r->rec.value_len);
		values[2] = s->params[1].p;
		lengths[2] = (int)s->params[1].len;
	} else if (r->rec.value != NULL) {
		values[2] = (const char *)r->rec.value;
		lengths[2] = r->rec.value_len;
	}
	values[3] = origin;
	lengths[3] = (int)strlen(origin);
	values[4] = r->topic;
	lengths[4] = (int)strlen(r->topic);
	*partition = htobe32(r->partition);
	values[5] = (const char *)partition;
	lengths[5] = 4;
	ints[1] = htobe64((uint64_t)r->rec.offset);
	values[6] = (const char *)&ints[1];
	lengths[6] = 8;
	ints[2] = htobe64((uint64_t)now_ms);
	values[7] = (const char *)&ints[2];
	lengths[7] = 8;
}

/* Write r at once, in a savepoint: a refusal by the database rolls back to it and is the record's. */
static int entity_write_now(struct sl_apply_pg *s, enum stmt i, const struct sl_apply_record *r, int64_t version,
                            int64_t now_ms)
{
	const char *what = i == ST_UPSERT ? "write an entity" : "mark an entity deleted";
	const char *values[8];
	int lengths[8];
	uint64_t ints[3];
	uint32_t partition;
	int rc;

	entity_params(s, r, version, now_ms, values, lengths, ints, &partition);
	if (s->params[1].failed)
		return sl_apply_pg_fail_memory(s, what);
	rc = sl_apply_pg_txn_send_begin(s);
	if (rc == 0)
		rc = sl_pg_link_send_sql(&s->link, "SAVEPOINT synclog_record", "set a savepoint");
	if (rc == 0 && i == ST_SOFT_DELETE && s->on_delete == SL_APPLY_ON_DELETE_ARCHIVE) {
		/* key, the delete's version, its offset, now: the same parameters, in another order. */
		const char *archive[4] = {values[0], values[1], values[6], values[7]};
		const int archive_lengths[4] = {lengths[0], 8, 8, 8};

		rc = sl_apply_pg_send(s, ST_ARCHIVE, 4, archive, archive_lengths, false,
		                      (struct sl_pg_step){.check = SL_PG_RECORD_WRITE, .what = "archive an entity"});
	}
	if (rc == 0)
		rc = sl_apply_pg_send(s, i, 8, values, lengths, false,
		                      (struct sl_pg_step){.check = SL_PG_RECORD_WRITE, .what = what});
	if (rc == 0)
		rc = sl_pg_link_send_sql(&s->link, "RELEASE SAVEPOINT synclog_record", "release a savepoint");
	if (rc == 0)
		rc = sl_pg_link_run(&s->link);
	if (rc == SL_APPLY_REJECTED) {
		char refused[SL_ERROR_BYTES];
		int back;

		snprintf(refused, sizeof(refused), "%s", s->link.error);
		/* A constraint (class 23: a unique index, a CHECK, a foreign key the operator added) depends on what
		 * the database holds and may pass later; a data exception (class 22: a value jsonb cannot take) never
		 * will. */
		s->reject_transient = strncmp(s->link.sqlstate, "23", 2) == 0;
		back = sl_pg_link_send_sql(&s->link, "ROLLBACK TO SAVEPOINT synclog_record",
		                           "roll back to a savepoint");
		if (back == 0)
			back = sl_pg_link_run(&s->link);
		if (back != 0)
			return back;
		snprintf(s->link.error, sizeof(s->link.error), "offset %lld: %s", (long long)r->rec.offset, refused);
	}
	return rc;
}

static int op_upsert(void *store, const struct sl_apply_record *r, int64_t version, int64_t now_ms)
{
	struct sl_apply_pg *s = store;
	struct pg_key *e;
	int rc = value_check(s, r);

	if (rc != 0)
		return rc;
	if (!s->prefetched)
		return entity_write_now(s, ST_UPSERT, r, version, now_ms);
	e = key_entry(s, r);
	e->exists = true;
	e->deleted = false;
	e->version = version;
	e->kept = KEPT_ROW;
	e->r = r;
	e->value = r->rec.value;
	e->value_len = r->rec.value_len;
	e->row_deleted = false;
	e->deleted_at_ms = -1;
	e->now_ms = now_ms;
	return 0;
}

/* One row of synclog_batch, field by field in the table's order; NULL pointers and NO_INT are NULLs. */
struct copy_row {
	char kind;
	const uint8_t *key;
	int32_t key_len;
	int64_t version;
	const uint8_t *value; /* the value's text (jsonb or text by the store's values); NULL for NULL */
	int32_t value_len;
	int deleted; /* -1 for NULL */
	int64_t deleted_at_ms;
	const struct sl_apply_record *r; /* origin, topic, partition, offset; NULL for NULLs */
	int64_t now_ms;
	int64_t stored_version;
	const uint8_t *idempotency_key;
	int32_t idempotency_key_len;
	int64_t deleted_version;
	int64_t deleted_offset;
	const char *stored_digest;
	const char *incoming_digest;
};

#define COPY_ROW_INIT(k)                                                                                  \
	{                                                                                                 \
		.kind = (k), .version = NO_INT, .deleted = -1, .deleted_at_ms = NO_INT, .now_ms = NO_INT, \
		.stored_version = NO_INT, .deleted_version = NO_INT, .deleted_offset = NO_INT,            \
	}

static void field_int(struct sl_pg_buf *b, int64_t v)
{
	if (v == NO_INT)
		sl_pg_field_null(b);
	else
		sl_pg_field_i64(b, v);
}

static void field_opt_bytes(struct sl_pg_buf *b, const void *p, int32_t len)
{
	if (p == NULL)
		sl_pg_field_null(b);
	else
		sl_pg_field_bytes(b, p, (size_t)len);
}

static void copy_row(struct sl_apply_pg *s, const struct copy_row *c)
{
	struct sl_pg_buf *b = &s->copy;

	sl_pg_copy_row(b, COPY_FIELDS);
	sl_pg_field_bytes(b, &c->kind, 1);
	field_opt_bytes(b, c->key, c->key_len);
	field_int(b, c->version);
	if (c->value == NULL)
		sl_pg_field_null(b);
	else if (s->values == SL_APPLY_VALUES_JSON)
		sl_pg_field_jsonb(b, c->value, (size_t)c->value_len);
	else
		sl_pg_field_bytes(b, c->value, (size_t)c->value_len);
	if (c->deleted < 0)
		sl_pg_field_null(b);
	else
		sl_pg_field_bool(b, c->deleted != 0);
	field_int(b, c->deleted_at_ms);
	if (c->r != NULL) {
		sl_pg_field_text(b, sl_origin_name(c->r->rec.origin));
		sl_pg_field_text(b, c->r->topic);
		sl_pg_field_i32(b, (int32_t)c->r->partition);
		sl_pg_field_i64(b, c->r->rec.offset);
	} else {
		for (int i = 0; i < 4; i++)
			sl_pg_field_null(b);
	}
	field_int(b, c->now_ms);
	field_int(b, c->stored_version);
	field_opt_bytes(b, c->idempotency_key, c->idempotency_key_len);
	field_int(b, c->deleted_version);
	field_int(b, c->deleted_offset);
	if (c->stored_digest == NULL)
		sl_pg_field_null(b);
	else
		sl_pg_field_text(b, c->stored_digest);
	if (c->incoming_digest == NULL)
		sl_pg_field_null(b);
	else
		sl_pg_field_text(b, c->incoming_digest);
}

/* Keep the archive row of a delete of e (--on-delete archive): the row as kept in this transaction, or as
 * stored (copied by the server at commit, before the transaction's writes); nothing for a row deleted already. */
static void archive_keep(struct sl_apply_pg *s, const struct pg_key *e, const struct sl_apply_record *r,
                         int64_t version, int64_t now_ms)
{
	bool kept_live = e->kept == KEPT_ROW && !e->row_deleted;
	struct copy_row c = COPY_ROW_INIT(kept_live ? 'A' : 'a');

	if (!kept_live && !(e->kept == KEPT_NONE && e->exists && !e->deleted))
		return;
	c.key = e->key;
	c.key_len = e->key_len;
	if (kept_live) {
		/* The row as kept; the server copies a stored row's columns itself. */
		c.version = e->version;
		c.value = e->value;
		c.value_len = e->value_len;
		c.r = e->r;
		s->copy_archived_kept++;
	} else {
		s->copy_archived_stored++;
	}
	c.now_ms = now_ms;
	c.deleted_version = version;
	c.deleted_offset = r->rec.offset;
	copy_row(s, &c);
}

static int op_soft_delete(void *store, const struct sl_apply_record *r, int64_t version, int64_t now_ms)
{
	struct sl_apply_pg *s = store;
	struct pg_key *e;

	if (!s->prefetched)
		return entity_write_now(s, ST_SOFT_DELETE, r, version, now_ms);
	e = key_entry(s, r);
	if (s->on_delete == SL_APPLY_ON_DELETE_ARCHIVE) {
		archive_keep(s, e, r, version, now_ms);
		if (s->copy.failed)
			return sl_apply_pg_fail_memory(s, "keep an archived row");
	}
	if (e->kept == KEPT_ROW) {
		/* The row as kept, now deleted: the time of its first deletion, and its value unless deletes clear it.
		 */
		if (!e->row_deleted)
			e->deleted_at_ms = now_ms;
		e->row_deleted = true;
		if (s->on_delete != SL_APPLY_ON_DELETE_HIDE)
			e->value = NULL;
	} else if (e->kept == KEPT_NONE && !e->exists) {
		e->kept = KEPT_ROW; /* a tombstone */
		e->value = NULL;
		e->row_deleted = true;
		e->deleted_at_ms = now_ms;
	} else {
		e->kept = KEPT_DELETE; /* of the stored row: the database keeps its value and deletion time */
	}
	e->exists = true;
	e->deleted = true;
	e->version = version;
	e->r = r;
	e->now_ms = now_ms;
	return 0;
}

static int op_stale_record(void *store, const struct sl_apply_record *r, int64_t stored_version, int64_t now_ms)
{
	struct sl_apply_pg *s = store;
	const char *values[7];
	int lengths[7];
	uint64_t ints[4];
	uint32_t partition;
	int rc;

	if (s->prefetched) {
		struct copy_row c = COPY_ROW_INIT('s');

		c.key = r->rec.key;
		c.key_len = r->rec.key_len;
		/* 0 for an unversioned backfill or repair record that found the key stored (rule 6). */
		c.version = r->rec.version != SL_VERSION_NONE ? r->rec.version : 0;
		c.r = r;
		c.now_ms = now_ms;
		c.stored_version = stored_version;
		copy_row(s, &c);
		s->copy_stale++;
		return s->copy.failed ? sl_apply_pg_fail_memory(s, "keep a stale event") : 0;
	}
	ints[0] = htobe64((uint64_t)stored_version);
	ints[1] = htobe64((uint64_t)(r->rec.version != SL_VERSION_NONE ? r->rec.version : 0));
	ints[2] = htobe64((uint64_t)r->rec.offset);
	ints[3] = htobe64((uint64_t)now_ms);
	partition = htobe32(r->partition);
	values[0] = (const char *)r->rec.key;
	lengths[0] = r->rec.key_len;
	values[1] = (const char *)&ints[0];
	values[2] = (const char *)&ints[1];
	lengths[1] = lengths[2] = 8;
	values[3] = r->topic;
	lengths[3] = (int)strlen(r->topic);
	values[4] = (const char *)&partition;
	lengths[4] = 4;
	values[5] = (const char *)&ints[2];
	values[6] = (const char *)&ints[3];
	lengths[5] = lengths[6] = 8;
	rc = sl_apply_pg_txn_send_begin(s);
	if (rc == 0)
		rc = sl_apply_pg_send(s, ST_STALE, 7, values, lengths, false,
		                      (struct sl_pg_step){.check = SL_PG_COMMAND, .what = "log a stale event"});
	return rc != 0 ? rc : sl_pg_link_run(&s->link);
}

static int op_idempotency_seen(void *store, const struct sl_apply_record *r, bool *seen_out)
{
	struct sl_apply_pg *s = store;
	const char *values[1] = {(const char *)r->rec.idempotency_key};
	int lengths[1] = {r->rec.idempotency_key_len};
	int rc = ik_check(s, r);

	*seen_out = false;
	if (rc != 0)
		return rc;
	if (s->prefetched) {
		const struct pg_key *e = keys_find(&s->iks, r->rec.idempotency_key, r->rec.idempotency_key_len, false);

		SL_ASSERT(e != NULL);
		*seen_out = e->exists;
		return 0;
	}
	rc = sl_apply_pg_txn_send_begin(s);
	if (rc == 0)
		rc = sl_apply_pg_send(s, ST_IK_SEEN, 1, values, lengths, false,
		                      (struct sl_pg_step){.check = SL_PG_FOUND,
		                                          .out = seen_out,
		                                          .what = "look up an idempotency key"});
	return rc != 0 ? rc : sl_pg_link_run(&s->link);
}

static int op_idempotency_remember(void *store, const struct sl_apply_record *r, int64_t now_ms)
{
	struct sl_apply_pg *s = store;
	const char *values[2] = {(const char *)r->rec.idempotency_key};
	int lengths[2] = {r->rec.idempotency_key_len, 8};
	uint64_t now = htobe64((uint64_t)now_ms);
	int rc;

	if (s->prefetched) {
		struct pg_key *e = keys_find(&s->iks, r->rec.idempotency_key, r->rec.idempotency_key_len, false);

		SL_ASSERT(e != NULL);
		if (e->exists)
			return 0;
		e->exists = true;
		{
			struct copy_row c = COPY_ROW_INIT('i');

			c.now_ms = now_ms;
			c.idempotency_key = r->rec.idempotency_key;
			c.idempotency_key_len = r->rec.idempotency_key_len;
			copy_row(s, &c);
		}
		s->copy_iks++;
		return s->copy.failed ? sl_apply_pg_fail_memory(s, "keep an idempotency key") : 0;
	}
	values[1] = (const char *)&now;
	rc = sl_apply_pg_txn_send_begin(s);
	if (rc == 0)
		rc = sl_apply_pg_send(
		        s, ST_IK_REMEMBER, 2, values, lengths, false,
		        (struct sl_pg_step){.check = SL_PG_COMMAND, .what = "remember an idempotency key"});
	return rc != 0 ? rc : sl_pg_link_run(&s->link);
}

/* Queue the compare-and-set write of one offset. */
static int offset_send(struct sl_apply_pg *s, const struct pg_offset *o)
{
	enum stmt i = o->expected_offset < 0 ? ST_OFFSET_INSERT : ST_OFFSET_UPDATE;
	uint64_t ints[8] = {
	        htobe64((uint64_t)o->next_offset), htobe64(o->delta.applied),
	        htobe64(o->delta.stale),           htobe64(o->delta.duplicate),
	        htobe64(o->delta.deleted),         htobe64(o->delta.dead_lettered),
	        htobe64((uint64_t)o->now_ms),      htobe64((uint64_t)o->expected_offset),
	};
	uint32_t partition = htobe32(o->partition);
	const char *values[11] = {o->group, o->topic, (const char *)&partition};
	int lengths[11] = {(int)strlen(o->group), (int)strlen(o->topic), 4};

	for (int k = 0; k < 8; k++) {
		values[3 + k] = (const char *)&ints[k];
		lengths[3 + k] = 8;
	}
	return sl_apply_pg_send(s, i, i == ST_OFFSET_UPDATE ? 11 : 10, values, lengths, false,
	                        (struct sl_pg_step){.check = SL_PG_ONE_ROW, .what = "write the consumed offset"});
}

static int op_offset_write(void *store, const char *group, const struct sl_apply_position *pos, int64_t expected_offset,
                           const struct sl_apply_counters *delta, int64_t now_ms)
{
	struct sl_apply_pg *s = store;
	struct pg_offset o = {
	        .group = group,
	        .topic = pos->topic,
	        .partition = pos->partition,
	        .next_offset = pos->next_offset,
	        .expected_offset = expected_offset,
	        .delta = *delta,
	        .now_ms = now_ms,
	};
	int rc;

	if (s->prefetched) {
		if (s->offset_count == s->offset_cap) {
			uint32_t cap = s->offset_cap ? s->offset_cap * 2 : 16;
			struct pg_offset *offsets = realloc(s->offsets, cap * sizeof(*offsets));

			if (offsets == NULL)
				return sl_apply_pg_fail_memory(s, "keep an offset");
			s->offsets = offsets;
			s->offset_cap = cap;
		}
		s->offsets[s->offset_count++] = o;
		return 0;
	}
	rc = sl_apply_pg_txn_send_begin(s);
	if (rc == 0)
		rc = offset_send(s, &o);
	if (rc == 0)
		rc = sl_pg_link_run(&s->link);
	return rc == SL_APPLY_REJECTED ? -EIO : rc;
}

/* The kept rows of the key table as COPY rows. */
static void copy_kept_rows(struct sl_apply_pg *s, uint32_t *rows, uint32_t *deletes)
{
	*rows = *deletes = 0;
	for (uint32_t i = 0; i < s->keys.count; i++) {
		const struct pg_key *e = &s->keys.entries[i];
		struct copy_row c = COPY_ROW_INIT(e->kept == KEPT_ROW ? 'u' : 'd');

		if (e->kept == KEPT_NONE)
			continue;
		c.key = e->key;
		c.key_len = e->key_len;
		c.version = e->version;
		if (e->kept == KEPT_ROW) {
			c.value = e->value;
			c.value_len = e->value_len;
		}
		c.deleted = e->kept == KEPT_DELETE || e->row_deleted;
		if (e->kept == KEPT_DELETE)
			c.deleted_at_ms = e->now_ms;
		else if (e->row_deleted)
			c.deleted_at_ms = e->deleted_at_ms;
		c.r = e->r;
		c.now_ms = e->now_ms;
		copy_row(s, &c);
		if (e->kept == KEPT_ROW)
			(*rows)++;
		else
			(*deletes)++;
	}
}

/* Queue the statement that moves the kept rows of one kind from synclog_batch, which must write count rows. */
static int batch_send(struct sl_apply_pg *s, enum stmt i, uint32_t count, const char *what)
{
	if (count == 0)
		return 0;
	return sl_apply_pg_send(s, i, 0, NULL, NULL, false,
	                        (struct sl_pg_step){.check = SL_PG_ROWS_WRITTEN, .expect = count, .what = what});
}

static int op_commit(void *store)
{
	struct sl_apply_pg *s = store;
	uint32_t rows = 0, deletes = 0;
	int rc = 0;

	SL_ASSERT(s->txn != TXN_NONE);
	if (s->txn == TXN_PENDING && s->offset_count == 0) {
		s->txn = TXN_NONE; /* nothing was sent: nothing to commit */
		return 0;
	}
	if (s->prefetched) {
		copy_kept_rows(s, &rows, &deletes);
		if (s->copy.len > 0) {
			sl_pg_copy_end(&s->copy);
			rc = s->copy.failed ? sl_apply_pg_fail_memory(s, "send the batch")
			                    : sl_pg_link_copy_in(&s->link, COPY_SQL, s->copy.p, s->copy.len,
			                                         "send the batch", true);
		}
	}
	if (rc == 0)
		rc = sl_apply_pg_txn_send_begin(s);
	if (rc == 0)
		rc = batch_send(s, ST_BATCH_ARCHIVE_KEPT, s->copy_archived_kept, "archive the batch's deleted rows");
	if (rc == 0)
		rc = batch_send(s, ST_BATCH_ARCHIVE_STORED, s->copy_archived_stored, "archive the stored deleted rows");
	if (rc == 0)
		rc = batch_send(s, ST_BATCH_ROWS, rows, "write the batch's entities");
	if (rc == 0)
		rc = batch_send(s, ST_BATCH_DELETES, deletes, "mark the batch's entities deleted");
	if (rc == 0)
		rc = batch_send(s, ST_BATCH_STALE, s->copy_stale, "log the batch's stale events");
	if (rc == 0)
		rc = batch_send(s, ST_BATCH_IKS, s->copy_iks, "remember the batch's idempotency keys");
	if (rc == 0)
		rc = batch_send(s, ST_BATCH_CONFLICTS, s->copy_conflicts, "keep the batch's conflicts");
	for (uint32_t i = 0; rc == 0 && i < s->offset_count; i++)
		rc = offset_send(s, &s->offsets[i]);
	/* COMMIT only once the writes are checked: a lost compare-and-set or a row count that is off is no error to
	 * the server, which would commit. */
	if (rc == 0)
		rc = sl_pg_link_run(&s->link);
	if (rc == 0)
		rc = sl_pg_link_send_sql(&s->link, "COMMIT", "commit");
	if (rc == 0)
		rc = sl_pg_link_run(&s->link);
	if (rc != 0) {
		/* The transaction failed (a refused row makes it all fail): undo it before saying so. */
		bool kept = s->prefetched;
		char why[SL_ERROR_BYTES];

		snprintf(why, sizeof(why), "%s", s->link.error);
		sl_apply_pg_rollback(s);
		snprintf(s->link.error, sizeof(s->link.error), "%s", why);
		return rc == SL_APPLY_REJECTED && !kept ? -EIO : rc;
	}
	batch_clear(s);
	s->txn = TXN_NONE;
	return 0;
}

static int op_offsets_read(void *store, const char *group, sl_apply_offsets_read_cb cb, void *cb_arg)
{
	struct sl_apply_pg *s = store;
	const char *values[1] = {group};
	int lengths[1] = {(int)strlen(group)};
	int rc;

	SL_ASSERT(s->txn == TXN_NONE);
	s->offsets_cb = cb;
	s->offsets_cb_arg = cb_arg;
	s->offsets_cb_rc = 0;
	rc = sl_pg_link_ready(&s->link);
	if (rc == 0)
		rc = sl_apply_pg_send(s, ST_OFFSETS_READ, 1, values, lengths, false,
		                      (struct sl_pg_step){.check = SL_PG_ROWS,
		                                          .out = s,
		                                          .rows_cb = offsets_cb,
		                                          .what = "read the stored offsets"});
	if (rc == 0)
		rc = sl_pg_link_run(&s->link);
	return s->offsets_cb_rc != 0 ? s->offsets_cb_rc : rc;
}

/* ---- rule 4b/4c: equal versions ---- */

/* What the store holds for r's key now, for value_same and conflict_record: the row as this transaction's kept
 * write left it, as prefetched, or as read at once. Returns 0 or a negative errno. */
static int stored_row(struct sl_apply_pg *s, const struct sl_apply_record *r, bool *deleted, const uint8_t **value,
                      size_t *value_len)
{
	struct stored_value v = {.buf = &s->params[1]};
	const char *values[1] = {(const char *)r->rec.key};
	int lengths[1] = {r->rec.key_len};
	int rc;

	if (s->prefetched) {
		const struct pg_key *e = key_entry(s, r);

		if (e->kept != KEPT_NONE) {
			*deleted = e->kept == KEPT_DELETE || e->row_deleted;
			*value = e->kept == KEPT_ROW ? e->value : NULL;
			*value_len = e->kept == KEPT_ROW && e->value != NULL ? (size_t)e->value_len : 0;
			return 0;
		}
		if (e->stored_known) {
			*deleted = e->stored_deleted;
			*value = e->stored_value_null ? NULL : (const uint8_t *)s->stored_values.p + e->stored_value_at;
			*value_len = e->stored_value_len;
			return 0;
		}
	}
	rc = sl_apply_pg_txn_send_begin(s);
	if (rc == 0)
		rc = sl_apply_pg_send(s, ST_VALUE_GET, 1, values, lengths, true,
		                      (struct sl_pg_step){.check = SL_PG_ROWS,
		                                          .out = &v,
		                                          .rows_cb = value_get_cb,
		                                          .what = "read a stored value"});
	if (rc == 0)
		rc = sl_pg_link_run(&s->link);
	if (rc == 0 && !v.found) {
		snprintf(s->link.error, sizeof(s->link.error), "postgresql %s: the row of a key at its version is gone",
		         s->schema);
		return -EIO;
	}
	*deleted = v.deleted;
	*value = v.value_null ? NULL : (const uint8_t *)v.buf->p;
	*value_len = v.value_null ? 0 : v.buf->len;
	return rc;
}

static int op_value_same(void *store, const struct sl_apply_record *r, bool *same_out)
{
	struct sl_apply_pg *s = store;
	bool del = r->rec.op == SL_OP_DELETE, deleted = false;
	const uint8_t *value = NULL;
	size_t value_len = 0;
	int rc = stored_row(s, r, &deleted, &value, &value_len);

	*same_out = false;
	if (rc != 0)
		return rc;
	if (del || deleted)
		*same_out = del && deleted;
	else
		*same_out = sl_value_equal(value, value_len, r->rec.value,
		                           r->rec.value != NULL ? (size_t)r->rec.value_len : 0);
	return 0;
}

/* The digest of a value in the conflicts table: 16 hex digits, or NULL (a deleted row, a delete). */
static const char *digest_of(const uint8_t *value, size_t len, bool live, char hex[SL_VALUE_DIGEST_HEX_BYTES])
{
	if (!live)
		return NULL;
	sl_value_digest_hex(sl_value_digest(value, len), hex);
	return hex;
}

static int op_conflict_record(void *store, const struct sl_apply_record *r, int64_t stored_version, int64_t now_ms)
{
	struct sl_apply_pg *s = store;
	char stored_hex[SL_VALUE_DIGEST_HEX_BYTES], incoming_hex[SL_VALUE_DIGEST_HEX_BYTES];
	bool deleted = false;
	const uint8_t *value = NULL;
	size_t value_len = 0;
	const char *stored, *incoming;
	int rc = stored_row(s, r, &deleted, &value, &value_len);

	if (rc != 0)
		return rc;
	stored = digest_of(value, value_len, !deleted, stored_hex);
	incoming = digest_of(r->rec.value, r->rec.value != NULL ? (size_t)r->rec.value_len : 0,
	                     r->rec.op != SL_OP_DELETE, incoming_hex);
	if (s->prefetched) {
		struct copy_row c = COPY_ROW_INIT('c');

		c.key = r->rec.key;
		c.key_len = r->rec.key_len;
		c.version = r->rec.version;
		c.r = r;
		c.now_ms = now_ms;
		c.stored_version = stored_version;
		c.stored_digest = stored;
		c.incoming_digest = incoming;
		copy_row(s, &c);
		s->copy_conflicts++;
		return s->copy.failed ? sl_apply_pg_fail_memory(s, "keep a conflict") : 0;
	}
	{
		const char *origin = sl_origin_name(r->rec.origin);
		uint64_t ints[5] = {htobe64((uint64_t)stored_version), htobe64((uint64_t)r->rec.version), 0,
		                    htobe64((uint64_t)r->rec.offset), htobe64((uint64_t)now_ms)};
		uint32_t partition = htobe32(r->partition);
		const char *values[10] = {(const char *)r->rec.key,
		                          (const char *)&ints[0],
		                          (const char *)&ints[1],
		                          stored,
		                          incoming,
		                          origin,
		                          r->topic,
		                          (const char *)&partition,
		                          (const char *)&ints[3],
		                          (const char *)&ints[4]};
		int lengths[10] = {r->rec.key_len,
		                   8,
		                   8,
		                   stored != NULL ? (int)strlen(stored) : 0,
		                   incoming != NULL ? (int)strlen(incoming) : 0,
		                   (int)strlen(origin),
		                   (int)strlen(r->topic),
		                   4,
		                   8,
		                   8};

		rc = sl_apply_pg_txn_send_begin(s);
		if (rc == 0)
			rc = sl_apply_pg_send(s, ST_CONFLICT, 10, values, lengths, false,
			                      (struct sl_pg_step){.check = SL_PG_COMMAND, .what = "keep a conflict"});
		return rc != 0 ? rc : sl_pg_link_run(&s->link);
	}
}

static const char *op_error(void *store)
{
	return ((struct sl_apply_pg *)store)->link.error;
}

/* ---- offset resets (apply.h) ---- */

/* Zero or one row (reset_generation; binary) into an int64_t. */
static int reset_get_cb(const PGresult *res, void *out)
{
	*(int64_t *)out = PQntuples(res) == 1 ? sl_pg_be64(PQgetvalue(res, 0, 0)) : 0;
	return 0;
}

static int op_reset_generation_get(void *store, const char *group, int64_t *generation_out)
{
	struct sl_apply_pg *s = store;
	const char *values[1] = {group};
	int lengths[1] = {(int)strlen(group)};
	int rc;

	SL_ASSERT(s->txn == TXN_NONE);
	*generation_out = 0;
	rc = sl_pg_link_ready(&s->link);
	if (rc == 0)
		rc = sl_apply_pg_send(s, ST_RESET_GET, 1, values, lengths, true,
		                      (struct sl_pg_step){.check = SL_PG_ROWS,
		                                          .out = generation_out,
		                                          .rows_cb = reset_get_cb,
		                                          .what = "read the adopted reset generation"});
	if (rc == 0)
		rc = sl_pg_link_run(&s->link);
	return rc == SL_APPLY_REJECTED ? -EIO : rc;
}

/* Send one statement of an offset reset in the open transaction (begun without prefetch: the engine adopts a
 * reset in a transaction of its own). */
static int reset_send(struct sl_apply_pg *s, enum stmt i, int n, const char *const *values, const int *lengths,
                      const char *what)
{
	int rc;

	SL_ASSERT(!s->prefetched);
	rc = sl_apply_pg_txn_send_begin(s);
	if (rc == 0)
		rc = sl_apply_pg_send(s, i, n, values, lengths, false,
		                      (struct sl_pg_step){.check = SL_PG_COMMAND, .what = what});
	if (rc == 0)
		rc = sl_pg_link_run(&s->link);
	return rc == SL_APPLY_REJECTED ? -EIO : rc;
}

static int op_reset_generation_set(void *store, const char *group, int64_t generation, int64_t now_ms)
{
	uint64_t ints[2] = {htobe64((uint64_t)generation), htobe64((uint64_t)now_ms)};
	const char *values[3] = {group, (const char *)&ints[0], (const char *)&ints[1]};
	int lengths[3] = {(int)strlen(group), 8, 8};

	return reset_send(store, ST_RESET_SET, 3, values, lengths, "record the adopted reset generation");
}

static int op_offset_reset(void *store, const char *group, const struct sl_apply_position *pos, int64_t now_ms)
{
	uint64_t ints[2] = {htobe64((uint64_t)pos->next_offset), htobe64((uint64_t)now_ms)};
	uint32_t partition = htobe32(pos->partition);
	const char *values[5] = {group, pos->topic, (const char *)&partition, (const char *)&ints[0],
	                         (const char *)&ints[1]};
	int lengths[5] = {(int)strlen(group), (int)strlen(pos->topic), 4, 8, 8};

	return reset_send(store, ST_OFFSET_RESET, 5, values, lengths, "write a reset offset");
}

static bool op_rejection_transient(void *store)
{
	return ((struct sl_apply_pg *)store)->reject_transient;
}

static const struct sl_apply_store_ops pg_ops = {
        .begin = op_begin,
        .commit = op_commit,
        .rollback = sl_apply_pg_rollback,
        .key_get = op_key_get,
        .upsert = op_upsert,
        .soft_delete = op_soft_delete,
        .write_if_newer = NULL,
        .stale_record = op_stale_record,
        .duplicate_record = NULL,
        .value_same = op_value_same,
        .conflict_record = op_conflict_record,
        .idempotency_seen = op_idempotency_seen,
        .idempotency_remember = op_idempotency_remember,
        .offsets_read = op_offsets_read,
        .offset_write = op_offset_write,
        .purge = sl_apply_pg_purge,
        .error = op_error,
        .prefetch = op_prefetch,
        .reset_generation_get = op_reset_generation_get,
        .reset_generation_set = op_reset_generation_set,
        .rejection_transient = op_rejection_transient,
        .offset_reset = op_offset_reset,
};

void sl_apply_pg_store(struct sl_apply_pg *db, struct sl_apply_store *out)
{
	db->ops = pg_ops;
	if (db->follow_log) {
		db->ops.tombstones_due = sl_apply_pg_tombstones_due;
		db->ops.tombstone_purge = sl_apply_pg_tombstone_purge;
	}
	out->ops = &db->ops;
	out->ctx = db;
}
