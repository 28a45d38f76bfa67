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
 * A transaction without prefetch (a replay after a refusal, a purge) sends each call at once; an upsert or a
 * delete runs in a savepoint, so that a row the database refuses leaves the transaction usable.
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
 *   kind   'u' a kept row, 'd' a kept delete of a stored row, 's' a stale event, 'i' an idempotency key
 *   key, version, value, deleted, deleted_at_ms, origin, topic, partition, offset, now_ms, stored_version,
 *   idempotency_key: what each kind needs, NULL otherwise
 *
 * Invariants:
 *   1. A transaction holds the advisory lock of its schema from its first statement: appliers on one schema take
 *      turns, as SQLite's BEGIN IMMEDIATE makes them, so the state prefetched stays true until commit.
 *   2. The connection is only replaced between transactions: a lost connection fails the open transaction (the
 *      engine rolls back and resumes from the stored offsets); the next begin or offsets_read reconnects.
 *   3. Every kept write is counted where it is sent: a statement writing n kept rows must report n rows, or the
 *      transaction is rolled back (the table changed under the lock: someone wrote without it).
 *
 * Threads: one store belongs to one thread (the engine's). */
#include <endian.h>
#include <errno.h>
#include <libpq-fe.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <xxhash.h>

#include "proto/base/clock.h"
#include "consumer/sync/apply.h"
#include "consumer/client/client_impl.h"
#include "consumer/client/json_text.h"

#define SCHEMA_VERSION           1
#define SCHEMA_BYTES_MAX         63 /* PostgreSQL's NAMEDATALEN - 1 */
#define CONNINFO_BYTES_MAX       4096
/* The advisory lock of a schema: (this class, hashtext(schema)). The class is "sync" in ASCII, so that the lock is
 * recognisable in pg_locks and does not collide with a service's own locks on small integers. */
#define LOCK_CLASS               1937337955
/* Reconnect backoff: from 100 ms, doubling up to 2 s, until the reconnect timeout. */
#define RECONNECT_BACKOFF_MS_MIN 100
#define RECONNECT_BACKOFF_MS_MAX 2000
/* Rows of the COPY: fields per row. */
#define COPY_FIELDS              13

/* Type OIDs (pg_type.dat): the binary parameters and arrays name their types. */
#define OID_BOOL  16
#define OID_BYTEA 17
#define OID_INT8  20
#define OID_INT4  23
#define OID_TEXT  25
#define OID_JSONB 3802

/* ---- growable byte buffers, reused for the life of the store ---- */

struct pg_buf {
	char *p;
	size_t len;
	size_t cap;
	bool failed; /* an allocation failed: the buffer's content is incomplete */
};

static void buf_put(struct pg_buf *b, const void *p, size_t len)
{
	if (b->failed)
		return;
	if (b->len + len > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		char *q;

		while (cap < b->len + len)
			cap *= 2;
		q = realloc(b->p, cap);
		if (q == NULL) {
			b->failed = true;
			return;
		}
		b->p = q;
		b->cap = cap;
	}
	memcpy(b->p + b->len, p, len);
	b->len += len;
}

static void buf_u16(struct pg_buf *b, uint16_t v)
{
	uint8_t x[2] = {(uint8_t)(v >> 8), (uint8_t)v};

	buf_put(b, x, 2);
}

static void buf_u32(struct pg_buf *b, uint32_t v)
{
	uint8_t x[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};

	buf_put(b, x, 4);
}

static void buf_u64(struct pg_buf *b, uint64_t v)
{
	buf_u32(b, (uint32_t)(v >> 32));
	buf_u32(b, (uint32_t)v);
}

static void buf_reset(struct pg_buf *b)
{
	b->len = 0;
	b->failed = false;
}

/* Fields of a binary COPY row or array element: a 4-byte length, then the bytes. */
static void field_bytes(struct pg_buf *b, const void *p, size_t len)
{
	buf_u32(b, (uint32_t)len);
	buf_put(b, p, len);
}

static void field_null(struct pg_buf *b)
{
	buf_u32(b, UINT32_MAX); /* -1 */
}

static void field_i64(struct pg_buf *b, int64_t v)
{
	buf_u32(b, 8);
	buf_u64(b, (uint64_t)v);
}

static void field_i32(struct pg_buf *b, int32_t v)
{
	buf_u32(b, 4);
	buf_u32(b, (uint32_t)v);
}

static void field_bool(struct pg_buf *b, bool v)
{
	uint8_t x = v;

	buf_u32(b, 1);
	buf_put(b, &x, 1);
}

static void field_text(struct pg_buf *b, const char *s)
{
	field_bytes(b, s, strlen(s));
}

/* A binary one-dimensional array of count elements of type oid, no NULLs: the elements follow as fields. */
static void array_start(struct pg_buf *b, uint32_t oid, uint32_t count)
{
	buf_reset(b);
	buf_u32(b, 1);
	buf_u32(b, 0);
	buf_u32(b, oid);
	buf_u32(b, count);
	buf_u32(b, 1);
}

static int64_t be64(const char *p)
{
	const uint8_t *u = (const uint8_t *)p;
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = v << 8 | u[i];
	return (int64_t)v;
}

/* ---- the key table ---- */

enum kept { KEPT_NONE, KEPT_ROW, KEPT_DELETE };

struct pg_key {
	const uint8_t *key;
	int32_t key_len;
	uint64_t hash;
	/* The key's state as the rules see it (for an idempotency key: exists = stored or remembered). */
	bool exists;
	bool deleted;
	int64_t version;
	/* The write kept for commit: the record it came from (origin, topic, partition, offset), the row's value and
	 * deletion, and the time of the call. */
	enum kept kept;
	const struct sl_apply_record *r;
	const uint8_t *value;
	int32_t value_len;
	bool row_deleted;
	int64_t deleted_at_ms;
	int64_t now_ms;
};

struct pg_keys {
	struct pg_key *entries;
	uint32_t count;
	uint32_t cap;
	uint32_t *slots;     /* index + 1 into entries, 0 for an empty slot */
	uint32_t slot_count; /* a power of two, at least twice count */
};

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

/* ---- the store ---- */

/* What a result of the pipeline is, so that it can be checked and used. */
enum step {
	STEP_COMMAND,      /* BEGIN, the lock, SAVEPOINT, COMMIT, ...: any success */
	STEP_KEY_STATES,   /* rows (key, version, deleted) of the prefetch, into the key table */
	STEP_IK_STATES,    /* rows (idempotency_key) of the prefetch, into the idempotency key table */
	STEP_KEY_GET,      /* zero or one row (version, deleted) into *out (struct sl_apply_key_state) */
	STEP_FOUND,        /* zero or one row: *out (bool) says which */
	STEP_RECORD_WRITE, /* a write of one record: a refusal is the record's */
	STEP_BATCH_WRITE,  /* a write of kept rows: a refusal is one of the batch's; exactly expect rows */
	STEP_OFFSET,       /* a compare-and-set offset write: one row, else -ESTALE */
	STEP_COUNT,        /* rows changed, added to *out (uint64_t) */
	STEP_OFFSETS,      /* rows of synclog_offsets, to offsets_cb */
};

struct pg_step {
	enum step step;
	int64_t expect;
	void *out;
	const char *what;
};

/* An offset write kept for the commit of a prefetched transaction. Its strings belong to the engine and outlive
 * the transaction. */
struct pg_offset {
	const char *group;
	const char *topic;
	uint32_t partition;
	int64_t next_offset;
	int64_t expected_offset;
	struct sl_apply_counters delta;
	int64_t now_ms;
};

enum txn_state {
	TXN_NONE,    /* no transaction */
	TXN_PENDING, /* begun: BEGIN and the lock not sent yet */
	TXN_OPEN,    /* BEGIN sent on this connection */
};

enum stmt {
	ST_KEY_GET,
	ST_UPSERT,
	ST_SOFT_DELETE,
	ST_STALE,
	ST_IK_SEEN,
	ST_IK_REMEMBER,
	ST_OFFSETS_READ,
	ST_OFFSET_INSERT,
	ST_OFFSET_UPDATE,
	ST_PURGE_TOMBSTONES,
	ST_PURGE_STALE,
	ST_PURGE_IK_AGE,
	ST_PURGE_IK_COUNT,
	ST_PREFETCH_KEYS,
	ST_PREFETCH_IKS,
	ST_BATCH_ROWS,
	ST_BATCH_DELETES,
	ST_BATCH_STALE,
	ST_BATCH_IKS,
	ST_LOCK,
	ST_COUNT
};

struct sl_apply_pg {
	PGconn *conn;
	char conninfo[CONNINFO_BYTES_MAX];
	char schema[SCHEMA_BYTES_MAX + 1];
	enum sl_apply_values values;
	uint32_t reconnect_timeout_ms;
	int64_t down_since_ms; /* monotonic; -1 while connected */
	char *sql[ST_COUNT];   /* the statements, with the schema quoted in; prepared on every connection */
	enum txn_state txn;
	bool prefetched; /* the open transaction began with a prefetch: writes are kept */
	struct pg_keys keys;
	struct pg_keys iks;
	struct pg_buf copy; /* the COPY rows of the kept stale events and idempotency keys, then of the rows */
	uint32_t copy_rows;
	uint32_t copy_stale;
	uint32_t copy_iks;
	struct pg_offset *offsets;
	uint32_t offset_count;
	uint32_t offset_cap;
	struct pg_step *steps; /* results expected from the pipeline, in order */
	uint32_t step_count;
	uint32_t step_cap;
	struct pg_buf params[2]; /* array parameters, and a jsonb value with its version byte */
	sl_apply_offsets_read_cb offsets_cb;
	void *offsets_cb_arg;
	int offsets_cb_rc;
	char error[SL_ERROR_BYTES];
};

/* ---- errors ---- */

static const char *server_message(const PGresult *res, PGconn *conn)
{
	const char *m = res != NULL ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;

	if (m == NULL && conn != NULL)
		m = PQerrorMessage(conn);
	return m != NULL && m[0] != '\0' ? m : "no message from the server";
}

/* Error lines are one line: libpq's messages end with a newline and may hold more. */
static void error_tidy(struct sl_apply_pg *s)
{
	size_t len = strlen(s->error);

	for (size_t i = 0; i < len; i++)
		if (s->error[i] == '\n' || s->error[i] == '\r' || s->error[i] == '\t')
			s->error[i] = ' ';
	while (len > 0 && s->error[len - 1] == ' ')
		s->error[--len] = '\0';
}

/* The errno of a SQLSTATE: the record's fault (a data exception, a constraint), the server's state, or the link. */
static int errno_of_sqlstate(const char *state)
{
	if (state == NULL)
		return -ECONNRESET;
	if (strncmp(state, "22", 2) == 0 || strncmp(state, "23", 2) == 0)
		return SL_APPLY_REJECTED;
	if (strcmp(state, "53100") == 0)
		return -ENOSPC;
	if (strcmp(state, "53200") == 0)
		return -ENOMEM;
	if (strncmp(state, "40", 2) == 0 || strcmp(state, "55P03") == 0 || strcmp(state, "53300") == 0)
		return -EBUSY;
	if (strncmp(state, "08", 2) == 0 || strncmp(state, "57P", 3) == 0)
		return -ECONNRESET;
	if (strcmp(state, "57014") == 0)
		return -ECANCELED;
	if (strcmp(state, "25006") == 0)
		return -EROFS;
	return -EIO;
}

/* Set the error of a failed statement and return its errno; a refusal counts as the record's only where the
 * statement wrote records. */
static int fail_result(struct sl_apply_pg *s, const PGresult *res, const char *what, bool of_records)
{
	const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
	const char *detail = PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL);
	int rc = errno_of_sqlstate(state);
	const char *hint = "";

	if (rc == -ENOSPC)
		hint = ": free disk space on the database server, then start the applier again";
	snprintf(s->error, sizeof(s->error), "postgresql %s: %s: %s%s%s (SQLSTATE %s)%s", s->schema, what,
	         server_message(res, s->conn), detail != NULL ? ": " : "", detail != NULL ? detail : "",
	         state != NULL ? state : "none", hint);
	error_tidy(s);
	if (rc == SL_APPLY_REJECTED && !of_records)
		return -EIO;
	return rc;
}

/* The connection failed (libpq said so, without a result): the open transaction is lost. */
static int fail_link(struct sl_apply_pg *s, const char *what)
{
	snprintf(s->error, sizeof(s->error), "postgresql %s: %s: lost the connection: %s", s->schema, what,
	         server_message(NULL, s->conn));
	error_tidy(s);
	s->txn = TXN_NONE;
	if (s->conn != NULL && PQstatus(s->conn) != CONNECTION_OK)
		return -ECONNRESET;
	/* libpq failed without losing the connection (out of memory, a protocol surprise): start afresh. */
	PQfinish(s->conn);
	s->conn = NULL;
	return -EIO;
}

static int fail_memory(struct sl_apply_pg *s, const char *what)
{
	snprintf(s->error, sizeof(s->error), "postgresql %s: %s: out of memory", s->schema, what);
	return -ENOMEM;
}

/* ---- the link: nonblocking sends, so that a large result can never stall a large request ---- */

/* Wait until the socket is readable (and writable, when write is set); reads what arrived into libpq's buffer.
 * Returns 0 or fail_link's errno. */
static int link_wait(struct sl_apply_pg *s, bool write, const char *what)
{
	struct pollfd pfd = {.fd = PQsocket(s->conn), .events = POLLIN | (write ? POLLOUT : 0)};

	if (pfd.fd < 0)
		return fail_link(s, what);
	if (poll(&pfd, 1, -1) < 0 && errno != EINTR)
		return fail_link(s, what);
	if ((pfd.revents & (POLLIN | POLLERR | POLLHUP)) != 0 && !PQconsumeInput(s->conn))
		return fail_link(s, what);
	return 0;
}

/* Send everything libpq holds, reading meanwhile. */
static int link_flush(struct sl_apply_pg *s, const char *what)
{
	for (;;) {
		int rc = PQflush(s->conn);

		if (rc == 0)
			return 0;
		if (rc < 0)
			return fail_link(s, what);
		rc = link_wait(s, true, what);
		if (rc != 0)
			return rc;
	}
}

/* The next result, waiting for it; NULL with *rc set when the link failed. A NULL with *rc 0 is libpq's end of
 * one statement's results. */
static PGresult *link_result(struct sl_apply_pg *s, const char *what, int *rc)
{
	*rc = 0;
	while (PQisBusy(s->conn)) {
		*rc = link_wait(s, false, what);
		if (*rc != 0)
			return NULL;
	}
	return PQgetResult(s->conn);
}

/* ---- pipelines ---- */

static int step_push(struct sl_apply_pg *s, enum step step, int64_t expect, void *out, const char *what)
{
	if (s->step_count == s->step_cap) {
		uint32_t cap = s->step_cap ? s->step_cap * 2 : 16;
		struct pg_step *steps = realloc(s->steps, cap * sizeof(*steps));

		if (steps == NULL)
			return fail_memory(s, what);
		s->steps = steps;
		s->step_cap = cap;
	}
	s->steps[s->step_count++] = (struct pg_step){.step = step, .expect = expect, .out = out, .what = what};
	return 0;
}

static int pipeline_on(struct sl_apply_pg *s)
{
	if (PQpipelineStatus(s->conn) == PQ_PIPELINE_OFF && !PQenterPipelineMode(s->conn))
		return fail_link(s, "enter pipeline mode");
	return 0;
}

/* Queue a prepared statement with binary parameters (and binary results when results_binary). */
static int send_stmt(struct sl_apply_pg *s, enum stmt i, int n, const char *const *values, const int *lengths,
                     bool results_binary, enum step step, int64_t expect, void *out, const char *what)
{
	static const int binary[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1};
	char name[8];

	SL_ASSERT(n <= 16);
	snprintf(name, sizeof(name), "s%d", (int)i);
	if (!PQsendQueryPrepared(s->conn, name, n, values, lengths, binary, results_binary))
		return fail_link(s, what);
	return step_push(s, step, expect, out, what);
}

static int send_sql(struct sl_apply_pg *s, const char *sql, const char *what)
{
	if (!PQsendQueryParams(s->conn, sql, 0, NULL, NULL, NULL, NULL, 0))
		return fail_link(s, what);
	return step_push(s, STEP_COMMAND, -1, NULL, what);
}

static int step_rows(struct sl_apply_pg *s, const struct pg_step *st, const PGresult *res)
{
	const char *tuples = PQcmdTuples((PGresult *)res);
	int64_t n = tuples[0] != '\0' ? strtoll(tuples, NULL, 10) : 0;

	if (st->step == STEP_OFFSET && n != 1) {
		snprintf(s->error, sizeof(s->error), "postgresql %s: the stored offset moved: %s", s->schema, st->what);
		return -ESTALE;
	}
	if (st->step == STEP_BATCH_WRITE && n != st->expect) {
		snprintf(s->error, sizeof(s->error),
		         "postgresql %s: %s: %lld rows written where %lld were sent: the tables changed under the "
		         "applier's lock; run one applier per schema",
		         s->schema, st->what, (long long)n, (long long)st->expect);
		return -EIO;
	}
	if (st->step == STEP_COUNT)
		*(uint64_t *)st->out += (uint64_t)n;
	return 0;
}

static int step_offsets(struct sl_apply_pg *s, const PGresult *res)
{
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
			snprintf(s->error, sizeof(s->error),
			         "postgresql %s: synclog_offsets holds a negative offset for topic '%s' partition %u",
			         s->schema, pos.topic, pos.partition);
			return -EUCLEAN;
		}
		s->offsets_cb_rc = s->offsets_cb(&pos, &totals, s->offsets_cb_arg);
	}
	return s->offsets_cb_rc;
}

/* Use one successful result. */
static int step_handle(struct sl_apply_pg *s, const struct pg_step *st, const PGresult *res)
{
	switch (st->step) {
	case STEP_KEY_STATES:
		for (int i = 0; i < PQntuples(res); i++) {
			struct pg_key *e = keys_find(&s->keys, (const uint8_t *)PQgetvalue(res, i, 0),
			                             PQgetlength(res, i, 0), false);

			if (e == NULL || PQgetlength(res, i, 1) != 8 || PQgetlength(res, i, 2) != 1) {
				snprintf(s->error, sizeof(s->error),
				         "postgresql %s: the prefetch returned a key that was not asked for",
				         s->schema);
				return -EPROTO;
			}
			e->exists = true;
			e->version = be64(PQgetvalue(res, i, 1));
			e->deleted = PQgetvalue(res, i, 2)[0] != 0;
		}
		return 0;
	case STEP_IK_STATES:
		for (int i = 0; i < PQntuples(res); i++) {
			struct pg_key *e = keys_find(&s->iks, (const uint8_t *)PQgetvalue(res, i, 0),
			                             PQgetlength(res, i, 0), false);

			if (e != NULL)
				e->exists = true;
		}
		return 0;
	case STEP_KEY_GET: {
		struct sl_apply_key_state *ks = st->out;

		ks->exists = PQntuples(res) == 1;
		ks->version = ks->exists ? be64(PQgetvalue(res, 0, 0)) : 0;
		ks->deleted = ks->exists && PQgetvalue(res, 0, 1)[0] != 0;
		return 0;
	}
	case STEP_FOUND:
		*(bool *)st->out = PQntuples(res) > 0;
		return 0;
	case STEP_BATCH_WRITE:
	case STEP_OFFSET:
	case STEP_COUNT:
		return step_rows(s, st, res);
	case STEP_OFFSETS:
		return step_offsets(s, res);
	case STEP_COMMAND:
	case STEP_RECORD_WRITE:
		return 0;
	}
	return 0;
}

/* Send a Sync after the queued statements and read every result. Returns 0, or the errno of the first failure
 * (the statements after it were skipped by the server) with s->error set. */
static int pipeline_run(struct sl_apply_pg *s)
{
	int first = 0, rc;
	PGresult *res;

	if (!PQpipelineSync(s->conn))
		return fail_link(s, "send a pipeline");
	rc = link_flush(s, "send a pipeline");
	for (uint32_t i = 0; rc == 0 && i < s->step_count; i++) {
		const struct pg_step *st = &s->steps[i];
		ExecStatusType status;

		res = link_result(s, st->what, &rc);
		if (res == NULL) {
			if (rc == 0)
				rc = fail_link(s, st->what);
			break;
		}
		status = PQresultStatus(res);
		if (status == PGRES_FATAL_ERROR && first == 0)
			first = fail_result(s, res, st->what,
			                    st->step == STEP_RECORD_WRITE || st->step == STEP_BATCH_WRITE);
		else if ((status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK) && first == 0)
			first = step_handle(s, st, res);
		else if (status != PGRES_PIPELINE_ABORTED && status != PGRES_FATAL_ERROR && first == 0)
			first = fail_result(s, res, st->what, false);
		PQclear(res);
		res = link_result(s, st->what, &rc); /* the end of this statement's results */
		if (res != NULL) {
			PQclear(res);
			rc = fail_link(s, st->what);
		}
	}
	if (rc == 0) {
		res = link_result(s, "end a pipeline", &rc);
		if (res != NULL && PQresultStatus(res) != PGRES_PIPELINE_SYNC && rc == 0)
			rc = fail_link(s, "end a pipeline");
		PQclear(res);
	}
	s->step_count = 0;
	return rc != 0 ? rc : first;
}

/* ---- connection ---- */

/* Sleep; false when a signal cut it short (the caller stops waiting: the process is asked to stop). */
static bool sleep_ms(uint32_t ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000};

	return nanosleep(&ts, NULL) == 0;
}

/* Run SQL without parameters on a connection in blocking mode (at open: the schema and the session). */
static int exec_simple(struct sl_apply_pg *s, const char *sql, const char *what)
{
	PGresult *res = PQexec(s->conn, sql);
	int rc = 0;

	if (res == NULL)
		rc = fail_link(s, what);
	else if (PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK)
		rc = fail_result(s, res, what, false);
	PQclear(res);
	return rc;
}

/* The parameter types of each statement (every parameter is sent binary). */
static void stmt_types(const struct sl_apply_pg *s, enum stmt i, Oid *types, int *n)
{
	Oid value = s->values == SL_APPLY_VALUES_JSON ? OID_JSONB : OID_TEXT;
	static const Oid entity[] = {OID_TEXT, OID_INT8, 0, OID_TEXT, OID_TEXT, OID_INT4, OID_INT8, OID_INT8};
	static const Oid offset[] = {OID_TEXT, OID_TEXT, OID_INT4, OID_INT8, OID_INT8, OID_INT8,
	                             OID_INT8, OID_INT8, OID_INT8, OID_INT8, OID_INT8};

	*n = 0;
	switch (i) {
	case ST_KEY_GET:
		types[(*n)++] = OID_TEXT;
		break;
	case ST_UPSERT:
	case ST_SOFT_DELETE:
		memcpy(types, entity, sizeof(entity));
		types[2] = value;
		*n = 8;
		break;
	case ST_STALE:
		types[0] = OID_TEXT;
		types[1] = types[2] = OID_INT8;
		types[3] = OID_TEXT;
		types[4] = OID_INT4;
		types[5] = types[6] = OID_INT8;
		*n = 7;
		break;
	case ST_IK_SEEN:
		types[(*n)++] = OID_BYTEA;
		break;
	case ST_IK_REMEMBER:
		types[0] = OID_BYTEA;
		types[1] = OID_INT8;
		*n = 2;
		break;
	case ST_OFFSETS_READ:
		types[(*n)++] = OID_TEXT;
		break;
	case ST_OFFSET_INSERT:
	case ST_OFFSET_UPDATE:
		memcpy(types, offset, sizeof(offset));
		*n = i == ST_OFFSET_UPDATE ? 11 : 10;
		break;
	case ST_PURGE_TOMBSTONES:
	case ST_PURGE_STALE:
	case ST_PURGE_IK_AGE:
	case ST_PURGE_IK_COUNT:
		types[(*n)++] = OID_INT8;
		break;
	case ST_PREFETCH_KEYS:
		types[(*n)++] = 1009; /* text[] */
		break;
	case ST_PREFETCH_IKS:
		types[(*n)++] = 1001; /* bytea[] */
		break;
	case ST_LOCK:
		types[(*n)++] = OID_TEXT;
		break;
	case ST_BATCH_ROWS:
	case ST_BATCH_DELETES:
	case ST_BATCH_STALE:
	case ST_BATCH_IKS:
	case ST_COUNT:
		break;
	}
}

/* Session settings, the temporary table and the prepared statements of a new connection. */
static int session_setup(struct sl_apply_pg *s)
{
	char sql[1024];
	int rc;

	snprintf(sql, sizeof(sql),
	         "CREATE TEMPORARY TABLE IF NOT EXISTS synclog_batch (kind text NOT NULL, key text, version bigint,"
	         " value %s, deleted boolean, deleted_at_ms bigint, origin text, topic text, \"partition\" integer,"
	         " \"offset\" bigint, now_ms bigint, stored_version bigint, idempotency_key bytea)"
	         " ON COMMIT DELETE ROWS",
	         s->values == SL_APPLY_VALUES_JSON ? "jsonb" : "text");
	rc = exec_simple(s, sql, "create the temporary table synclog_batch");
	for (int i = 0; rc == 0 && i < ST_COUNT; i++) {
		Oid types[16];
		int n;
		char name[8];
		PGresult *res;

		stmt_types(s, (enum stmt)i, types, &n);
		snprintf(name, sizeof(name), "s%d", i);
		res = PQprepare(s->conn, name, s->sql[i], n, types);
		if (res == NULL)
			rc = fail_link(s, "prepare a statement");
		else if (PQresultStatus(res) != PGRES_COMMAND_OK)
			rc = fail_result(s, res, "prepare a statement", false);
		PQclear(res);
	}
	if (rc == 0 && PQsetnonblocking(s->conn, 1) != 0)
		rc = fail_link(s, "switch to nonblocking mode");
	return rc;
}

/* One attempt to connect. Returns 0 or a negative errno with s->error set. */
static int connect_once(struct sl_apply_pg *s)
{
	/* Defaults first, then the user's string (which may override them), then what this store needs. */
	const char *const keys[] = {"connect_timeout", "fallback_application_name", "dbname", "client_encoding", NULL};
	const char *const vals[] = {"10", "synclog-apply", s->conninfo, "UTF8", NULL};
	const char *encoding;

	PQfinish(s->conn);
	s->conn = PQconnectdbParams(keys, vals, 1);
	if (s->conn == NULL)
		return fail_memory(s, "connect");
	if (PQstatus(s->conn) != CONNECTION_OK) {
		snprintf(s->error, sizeof(s->error), "postgresql: cannot connect: %s", server_message(NULL, s->conn));
		error_tidy(s);
		PQfinish(s->conn);
		s->conn = NULL;
		return -ECONNREFUSED;
	}
	encoding = PQparameterStatus(s->conn, "server_encoding");
	if (encoding == NULL || (strcmp(encoding, "UTF8") != 0 && strcmp(encoding, "SQL_ASCII") != 0)) {
		snprintf(s->error, sizeof(s->error),
		         "postgresql: the database's encoding is %s; synclog stores keys and values as UTF-8: use a "
		         "database created with ENCODING 'UTF8'",
		         encoding != NULL ? encoding : "unknown");
		return -EINVAL;
	}
	/* CREATE ... IF NOT EXISTS says NOTICE for what exists: not worth a line on the operator's terminal. */
	return exec_simple(s, "SET client_min_messages = warning", "set up the session");
}

/* Make sure the connection is up, reconnecting with backoff for at most the reconnect timeout since it was
 * lost. Only between transactions (invariant 2). */
static int conn_ready(struct sl_apply_pg *s)
{
	uint32_t backoff_ms = RECONNECT_BACKOFF_MS_MIN;
	int64_t start;
	int rc;

	if (s->conn != NULL && PQstatus(s->conn) == CONNECTION_OK)
		return 0;
	start = sl_clock_mono_ms();
	if (s->down_since_ms < 0)
		s->down_since_ms = start;
	for (;;) {
		rc = connect_once(s);
		if (rc == 0)
			rc = session_setup(s);
		if (rc == 0) {
			s->down_since_ms = -1;
			return 0;
		}
		if (rc == -EINVAL || sl_clock_mono_ms() - s->down_since_ms >= (int64_t)s->reconnect_timeout_ms)
			break;
		if (!sleep_ms(backoff_ms)) {
			snprintf(s->error, sizeof(s->error), "postgresql: reconnecting was interrupted by a signal");
			return -EINTR;
		}
		backoff_ms = backoff_ms * 2 > RECONNECT_BACKOFF_MS_MAX ? RECONNECT_BACKOFF_MS_MAX : backoff_ms * 2;
	}
	if (rc != -EINVAL) {
		size_t len = strlen(s->error);

		snprintf(s->error + len, sizeof(s->error) - len, " (tried for %lld s; is the server up?)",
		         (long long)((sl_clock_mono_ms() - s->down_since_ms) / 1000));
	}
	return rc;
}

/* Send BEGIN and the lock when the transaction has not sent them yet (they then go with the caller's pipeline). */
static int txn_send_begin(struct sl_apply_pg *s)
{
	const char *values[1] = {s->schema};
	int lengths[1] = {(int)strlen(s->schema)};
	int rc;

	SL_ASSERT(s->txn != TXN_NONE);
	if (s->txn == TXN_OPEN)
		return s->conn != NULL && PQstatus(s->conn) == CONNECTION_OK ? pipeline_on(s)
		                                                             : fail_link(s, "continue a transaction");
	rc = conn_ready(s);
	if (rc == 0)
		rc = pipeline_on(s);
	if (rc == 0)
		rc = send_sql(s, "BEGIN", "begin a transaction");
	if (rc == 0)
		rc = send_stmt(s, ST_LOCK, 1, values, lengths, false, STEP_COMMAND, -1, NULL,
		               "take the schema's advisory lock");
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
	buf_reset(&s->copy);
	s->copy_rows = s->copy_stale = s->copy_iks = 0;
	s->offset_count = 0;
}

static int op_begin(void *store, int64_t now_ms)
{
	struct sl_apply_pg *s = store;

	(void)now_ms;
	SL_ASSERT(s->txn == TXN_NONE && s->step_count == 0);
	batch_clear(s);
	s->txn = TXN_PENDING;
	return 0;
}

static void op_rollback(void *store)
{
	struct sl_apply_pg *s = store;

	batch_clear(s);
	if (s->txn == TXN_OPEN && s->conn != NULL && PQstatus(s->conn) == CONNECTION_OK) {
		/* Nothing to do when it fails: a broken connection ends the transaction by itself. */
		if (pipeline_on(s) == 0 && send_sql(s, "ROLLBACK", "roll back") == 0)
			pipeline_run(s);
	}
	s->txn = TXN_NONE;
	s->step_count = 0;
}

static int key_check(struct sl_apply_pg *s, const struct sl_apply_record *r)
{
	if (!sl_utf8_text_valid(r->rec.key, (size_t)r->rec.key_len)) {
		snprintf(s->error, sizeof(s->error), "offset %lld: the key is not UTF-8 text (or holds NUL bytes)",
		         (long long)r->rec.offset);
		return SL_APPLY_REJECTED;
	}
	return 0;
}

static int value_check(struct sl_apply_pg *s, const struct sl_apply_record *r)
{
	const uint8_t *v = r->rec.value;
	size_t len = (size_t)r->rec.value_len;

	if (v != NULL && s->values == SL_APPLY_VALUES_JSON && !sl_json_valid(v, len)) {
		snprintf(s->error, sizeof(s->error),
		         "offset %lld: the value is not JSON text (RFC 8259): the target stores JSON entities",
		         (long long)r->rec.offset);
		return SL_APPLY_REJECTED;
	}
	if (v != NULL && s->values == SL_APPLY_VALUES_TEXT && !sl_utf8_text_valid(v, len)) {
		snprintf(s->error, sizeof(s->error), "offset %lld: the value is not UTF-8 text (or holds NUL bytes)",
		         (long long)r->rec.offset);
		return SL_APPLY_REJECTED;
	}
	return 0;
}

static int ik_check(struct sl_apply_pg *s, const struct sl_apply_record *r)
{
	if (r->rec.idempotency_key_len > SL_APPLY_IDEMPOTENCY_KEY_BYTES_MAX) {
		snprintf(s->error, sizeof(s->error), "offset %lld: the idempotency key is longer than %d bytes",
		         (long long)r->rec.offset, SL_APPLY_IDEMPOTENCY_KEY_BYTES_MAX);
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

static int op_prefetch(void *store, const struct sl_apply_record *records, uint32_t count)
{
	struct sl_apply_pg *s = store;
	struct pg_buf *keys = &s->params[0], *iks = &s->params[1];
	uint32_t key_count = 0, ik_count = 0;
	const char *values[1];
	int lengths[1];
	int rc;

	if (keys_reset(&s->keys, count) != 0 || keys_reset(&s->iks, count) != 0)
		return fail_memory(s, "prefetch");
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
	rc = txn_send_begin(s);
	if (rc == 0 && ik_count > 0) {
		array_start(iks, OID_BYTEA, ik_count);
		for (uint32_t i = 0; i < s->iks.count; i++)
			field_bytes(iks, s->iks.entries[i].key, (size_t)s->iks.entries[i].key_len);
		if (iks->failed)
			return fail_memory(s, "prefetch");
		values[0] = iks->p;
		lengths[0] = (int)iks->len;
		rc = send_stmt(s, ST_PREFETCH_IKS, 1, values, lengths, true, STEP_IK_STATES, -1, NULL,
		               "look up the batch's idempotency keys");
	}
	if (rc == 0 && key_count > 0) {
		array_start(keys, OID_TEXT, key_count);
		for (uint32_t i = 0; i < s->keys.count; i++)
			field_bytes(keys, s->keys.entries[i].key, (size_t)s->keys.entries[i].key_len);
		if (keys->failed)
			return fail_memory(s, "prefetch");
		values[0] = keys->p;
		lengths[0] = (int)keys->len;
		rc = send_stmt(s, ST_PREFETCH_KEYS, 1, values, lengths, true, STEP_KEY_STATES, -1, NULL,
		               "look up the batch's keys");
	}
	if (rc == 0)
		rc = pipeline_run(s);
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
	if (s->prefetched) {
		const struct pg_key *e = key_entry(s, r);

		out->exists = e->exists;
		out->deleted = e->deleted;
		out->version = e->version;
		return 0;
	}
	rc = txn_send_begin(s);
	if (rc == 0)
		rc = send_stmt(s, ST_KEY_GET, 1, values, lengths, true, STEP_KEY_GET, -1, out, "read a key's version");
	return rc != 0 ? rc : pipeline_run(s);
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
		buf_reset(&s->params[1]);
		buf_put(&s->params[1], "\x01", 1);
		buf_put(&s->params[1], r->rec.value, (size_t)r->rec.value_len);
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
	const char *values[8];
	int lengths[8];
	uint64_t ints[3];
	uint32_t partition;
	int rc;

	entity_params(s, r, version, now_ms, values, lengths, ints, &partition);
	if (s->params[1].failed)
		return fail_memory(s, "write an entity");
	rc = txn_send_begin(s);
	if (rc == 0)
		rc = send_sql(s, "SAVEPOINT synclog_record", "set a savepoint");
	if (rc == 0)
		rc = send_stmt(s, i, 8, values, lengths, false, STEP_RECORD_WRITE, -1, NULL,
		               i == ST_UPSERT ? "write an entity" : "mark an entity deleted");
	if (rc == 0)
		rc = send_sql(s, "RELEASE SAVEPOINT synclog_record", "release a savepoint");
	if (rc == 0)
		rc = pipeline_run(s);
	if (rc == SL_APPLY_REJECTED) {
		char refused[SL_ERROR_BYTES];
		int back;

		snprintf(refused, sizeof(refused), "%s", s->error);
		back = send_sql(s, "ROLLBACK TO SAVEPOINT synclog_record", "roll back to a savepoint");
		if (back == 0)
			back = pipeline_run(s);
		if (back != 0)
			return back;
		snprintf(s->error, sizeof(s->error), "offset %lld: %s", (long long)r->rec.offset, refused);
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

static int op_soft_delete(void *store, const struct sl_apply_record *r, int64_t version, int64_t now_ms)
{
	struct sl_apply_pg *s = store;
	struct pg_key *e;

	if (!s->prefetched)
		return entity_write_now(s, ST_SOFT_DELETE, r, version, now_ms);
	e = key_entry(s, r);
	if (e->kept == KEPT_ROW) {
		/* The row as kept, now deleted: its value stays, and the time of its first deletion. */
		if (!e->row_deleted)
			e->deleted_at_ms = now_ms;
		e->row_deleted = true;
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

/* Start a COPY row of kind, with its key (all kinds but 'i' have one). */
static void copy_row_start(struct pg_buf *b, char kind)
{
	if (b->len == 0) {
		buf_put(b, "PGCOPY\n\377\r\n\0", 11);
		buf_u32(b, 0); /* flags */
		buf_u32(b, 0); /* header extension length */
	}
	buf_u16(b, COPY_FIELDS);
	field_bytes(b, &kind, 1);
}

static int op_stale_record(void *store, const struct sl_apply_record *r, int64_t stored_version, int64_t now_ms)
{
	struct sl_apply_pg *s = store;
	struct pg_buf *b = &s->copy;
	const char *values[7];
	int lengths[7];
	uint64_t ints[4];
	uint32_t partition;
	int rc;

	if (s->prefetched) {
		copy_row_start(b, 's');
		field_bytes(b, r->rec.key, (size_t)r->rec.key_len);
		field_i64(b, r->rec.version);
		for (int i = 0; i < 3; i++)
			field_null(b); /* value, deleted, deleted_at_ms */
		field_null(b);         /* origin */
		field_text(b, r->topic);
		field_i32(b, (int32_t)r->partition);
		field_i64(b, r->rec.offset);
		field_i64(b, now_ms);
		field_i64(b, stored_version);
		field_null(b);
		s->copy_stale++;
		return b->failed ? fail_memory(s, "keep a stale event") : 0;
	}
	ints[0] = htobe64((uint64_t)stored_version);
	ints[1] = htobe64((uint64_t)r->rec.version);
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
	rc = txn_send_begin(s);
	if (rc == 0)
		rc = send_stmt(s, ST_STALE, 7, values, lengths, false, STEP_COMMAND, -1, NULL, "log a stale event");
	return rc != 0 ? rc : pipeline_run(s);
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
	rc = txn_send_begin(s);
	if (rc == 0)
		rc = send_stmt(s, ST_IK_SEEN, 1, values, lengths, false, STEP_FOUND, -1, seen_out,
		               "look up an idempotency key");
	return rc != 0 ? rc : pipeline_run(s);
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
		copy_row_start(&s->copy, 'i');
		for (int i = 0; i < 9; i++)
			field_null(&s->copy); /* key .. offset */
		field_i64(&s->copy, now_ms);
		field_null(&s->copy);
		field_bytes(&s->copy, r->rec.idempotency_key, (size_t)r->rec.idempotency_key_len);
		s->copy_iks++;
		return s->copy.failed ? fail_memory(s, "keep an idempotency key") : 0;
	}
	values[1] = (const char *)&now;
	rc = txn_send_begin(s);
	if (rc == 0)
		rc = send_stmt(s, ST_IK_REMEMBER, 2, values, lengths, false, STEP_COMMAND, -1, NULL,
		               "remember an idempotency key");
	return rc != 0 ? rc : pipeline_run(s);
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
	return send_stmt(s, i, i == ST_OFFSET_UPDATE ? 11 : 10, values, lengths, false, STEP_OFFSET, 1, NULL,
	                 "write the consumed offset");
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
				return fail_memory(s, "keep an offset");
			s->offsets = offsets;
			s->offset_cap = cap;
		}
		s->offsets[s->offset_count++] = o;
		return 0;
	}
	rc = txn_send_begin(s);
	if (rc == 0)
		rc = offset_send(s, &o);
	if (rc == 0)
		rc = pipeline_run(s);
	if (rc == SL_APPLY_REJECTED)
		rc = -EIO;
	return rc;
}

/* The kept rows of the key table as COPY rows. */
static void copy_kept_rows(struct sl_apply_pg *s, uint32_t *rows, uint32_t *deletes)
{
	struct pg_buf *b = &s->copy;

	*rows = *deletes = 0;
	for (uint32_t i = 0; i < s->keys.count; i++) {
		const struct pg_key *e = &s->keys.entries[i];
		const struct sl_apply_record *r = e->r;

		if (e->kept == KEPT_NONE)
			continue;
		copy_row_start(b, e->kept == KEPT_ROW ? 'u' : 'd');
		field_bytes(b, e->key, (size_t)e->key_len);
		field_i64(b, e->version);
		if (e->kept == KEPT_ROW && e->value != NULL && s->values == SL_APPLY_VALUES_JSON) {
			buf_u32(b, (uint32_t)e->value_len + 1);
			buf_put(b, "\x01", 1); /* jsonb's binary form: a version byte, then the text */
			buf_put(b, e->value, (size_t)e->value_len);
		} else if (e->kept == KEPT_ROW && e->value != NULL) {
			field_bytes(b, e->value, (size_t)e->value_len);
		} else {
			field_null(b);
		}
		field_bool(b, e->kept == KEPT_DELETE || e->row_deleted);
		if (e->kept == KEPT_ROW && !e->row_deleted)
			field_null(b);
		else
			field_i64(b, e->kept == KEPT_DELETE ? e->now_ms : e->deleted_at_ms);
		field_text(b, sl_origin_name(r->rec.origin));
		field_text(b, r->topic);
		field_i32(b, (int32_t)r->partition);
		field_i64(b, r->rec.offset);
		field_i64(b, e->now_ms);
		field_null(b); /* stored_version */
		field_null(b); /* idempotency_key */
		if (e->kept == KEPT_ROW)
			(*rows)++;
		else
			(*deletes)++;
	}
}

/* COPY the kept rows into synclog_batch (outside pipeline mode: COPY cannot be pipelined). */
static int copy_send(struct sl_apply_pg *s)
{
	PGresult *res;
	int rc = 0;

	buf_u16(&s->copy, 0xffff); /* the end of the rows */
	if (s->copy.failed)
		return fail_memory(s, "send the batch");
	if (!PQexitPipelineMode(s->conn) ||
	    !PQsendQueryParams(s->conn, "COPY pg_temp.synclog_batch FROM STDIN (FORMAT binary)", 0, NULL, NULL, NULL,
	                       NULL, 0))
		return fail_link(s, "send the batch");
	rc = link_flush(s, "send the batch");
	res = rc == 0 ? link_result(s, "send the batch", &rc) : NULL;
	if (res == NULL || PQresultStatus(res) != PGRES_COPY_IN) {
		int link = rc;

		if (res != NULL && rc == 0)
			rc = fail_result(s, res, "send the batch", false);
		else if (rc == 0)
			rc = fail_link(s, "send the batch");
		PQclear(res);
		while (link == 0 && s->conn != NULL && (res = link_result(s, "send the batch", &link)) != NULL)
			PQclear(res);
		return rc;
	}
	PQclear(res);
	if (PQputCopyData(s->conn, s->copy.p, (int)s->copy.len) != 1 || PQputCopyEnd(s->conn, NULL) != 1)
		return fail_link(s, "send the batch");
	rc = link_flush(s, "send the batch");
	/* Read to the end of the COPY's results, a refusal included, so that the connection is idle again. */
	for (int link = rc; link == 0;) {
		res = link_result(s, "send the batch", &link);
		if (res == NULL) {
			rc = rc != 0 ? rc : link;
			break;
		}
		if (PQresultStatus(res) != PGRES_COMMAND_OK && rc == 0)
			rc = fail_result(s, res, "send the batch", true);
		PQclear(res);
	}
	return rc;
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
		if (s->copy.len > 0)
			rc = copy_send(s);
	}
	if (rc == 0)
		rc = txn_send_begin(s);
	if (rc == 0 && rows > 0)
		rc = send_stmt(s, ST_BATCH_ROWS, 0, NULL, NULL, false, STEP_BATCH_WRITE, rows, NULL,
		               "write the batch's entities");
	if (rc == 0 && deletes > 0)
		rc = send_stmt(s, ST_BATCH_DELETES, 0, NULL, NULL, false, STEP_BATCH_WRITE, deletes, NULL,
		               "mark the batch's entities deleted");
	if (rc == 0 && s->copy_stale > 0)
		rc = send_stmt(s, ST_BATCH_STALE, 0, NULL, NULL, false, STEP_BATCH_WRITE, s->copy_stale, NULL,
		               "log the batch's stale events");
	if (rc == 0 && s->copy_iks > 0)
		rc = send_stmt(s, ST_BATCH_IKS, 0, NULL, NULL, false, STEP_BATCH_WRITE, s->copy_iks, NULL,
		               "remember the batch's idempotency keys");
	for (uint32_t i = 0; rc == 0 && i < s->offset_count; i++)
		rc = offset_send(s, &s->offsets[i]);
	/* COMMIT only once the writes are checked: a lost compare-and-set or a row count that is off is no error to
	 * the server, which would commit. */
	if (rc == 0 && s->step_count > 0)
		rc = pipeline_run(s);
	if (rc == 0)
		rc = send_sql(s, "COMMIT", "commit");
	if (rc == 0)
		rc = pipeline_run(s);
	if (rc != 0) {
		/* The transaction failed (a refused row makes it all fail): undo it before saying so. */
		bool kept = s->prefetched;
		char why[SL_ERROR_BYTES];

		snprintf(why, sizeof(why), "%s", s->error);
		op_rollback(s);
		snprintf(s->error, sizeof(s->error), "%s", why);
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
	rc = conn_ready(s);
	if (rc == 0)
		rc = pipeline_on(s);
	if (rc == 0)
		rc = send_stmt(s, ST_OFFSETS_READ, 1, values, lengths, false, STEP_OFFSETS, -1, NULL,
		               "read the stored offsets");
	if (rc == 0)
		rc = pipeline_run(s);
	return s->offsets_cb_rc != 0 ? s->offsets_cb_rc : rc;
}

static int op_purge(void *store, int64_t now_ms, int64_t retention_ms, struct sl_apply_purge_counts *out)
{
	struct sl_apply_pg *s = store;
	uint64_t before = htobe64((uint64_t)(now_ms - retention_ms));
	uint64_t keys_max = htobe64(SL_APPLY_IDEMPOTENCY_KEYS_MAX);
	const char *values[1] = {(const char *)&before};
	const char *bound[1] = {(const char *)&keys_max};
	int lengths[1] = {8};
	int rc;

	memset(out, 0, sizeof(*out));
	rc = txn_send_begin(s);
	if (rc == 0)
		rc = send_stmt(s, ST_PURGE_TOMBSTONES, 1, values, lengths, false, STEP_COUNT, -1, &out->tombstones,
		               "purge tombstones");
	if (rc == 0)
		rc = send_stmt(s, ST_PURGE_STALE, 1, values, lengths, false, STEP_COUNT, -1, &out->stale_events,
		               "purge stale events");
	if (rc == 0)
		rc = send_stmt(s, ST_PURGE_IK_AGE, 1, values, lengths, false, STEP_COUNT, -1, &out->idempotency_keys,
		               "expire idempotency keys");
	if (rc == 0)
		rc = send_stmt(s, ST_PURGE_IK_COUNT, 1, bound, lengths, false, STEP_COUNT, -1, &out->idempotency_keys,
		               "bound the idempotency keys");
	return rc != 0 ? rc : pipeline_run(s);
}

static const char *op_error(void *store)
{
	return ((struct sl_apply_pg *)store)->error;
}

static const struct sl_apply_store_ops pg_ops = {
        .begin = op_begin,
        .commit = op_commit,
        .rollback = op_rollback,
        .key_get = op_key_get,
        .upsert = op_upsert,
        .soft_delete = op_soft_delete,
        .write_if_newer = NULL,
        .stale_record = op_stale_record,
        .duplicate_record = NULL,
        .idempotency_seen = op_idempotency_seen,
        .idempotency_remember = op_idempotency_remember,
        .offsets_read = op_offsets_read,
        .offset_write = op_offset_write,
        .purge = op_purge,
        .error = op_error,
        .prefetch = op_prefetch,
};

void sl_apply_pg_store(struct sl_apply_pg *db, struct sl_apply_store *out)
{
	out->ops = &pg_ops;
	out->ctx = db;
}

/* ---- schema and statements ---- */

/* The statements of the store with the quoted schema q put in. */
static int statements_build(struct sl_apply_pg *s, const char *q)
{
	const char *vt = s->values == SL_APPLY_VALUES_JSON ? "jsonb" : "text";
	const char *cols = "key, version, value, deleted, deleted_at_ms, origin, topic, \"partition\", \"offset\","
	                   " applied_at_ms";
	const char *row_set =
	        "version = excluded.version, value = excluded.value, deleted = excluded.deleted,"
	        " deleted_at_ms = excluded.deleted_at_ms, origin = excluded.origin, topic = excluded.topic,"
	        " \"partition\" = excluded.\"partition\", \"offset\" = excluded.\"offset\","
	        " applied_at_ms = excluded.applied_at_ms";
	/* A delete keeps the stored value, and the time of the first deletion when the row was deleted already. */
	const char *delete_set = "version = excluded.version, deleted = true, deleted_at_ms = CASE WHEN"
	                         " entities.deleted THEN entities.deleted_at_ms ELSE excluded.deleted_at_ms END,"
	                         " origin = excluded.origin, topic = excluded.topic,"
	                         " \"partition\" = excluded.\"partition\", \"offset\" = excluded.\"offset\","
	                         " applied_at_ms = excluded.applied_at_ms";
	const char *batch_cols = "key, version, value, deleted, deleted_at_ms, origin, topic, \"partition\","
	                         " \"offset\", now_ms";
	const char *offsets = "\"group\", topic, \"partition\", next_offset, applied, stale, duplicate, deleted,"
	                      " dead_lettered, updated_at_ms";

#define SQL(i, ...)                                          \
	do {                                                 \
		if (asprintf(&s->sql[i], __VA_ARGS__) < 0) { \
			s->sql[i] = NULL;                    \
			return -ENOMEM;                      \
		}                                            \
	} while (0)
	SQL(ST_KEY_GET, "SELECT version, deleted FROM %s.entities WHERE key = $1", q);
	SQL(ST_UPSERT,
	    "INSERT INTO %s.entities AS entities (%s) VALUES ($1, $2, $3::%s, false, NULL, $4, $5, $6, $7, $8)"
	    " ON CONFLICT (key) DO UPDATE SET %s",
	    q, cols, vt, row_set);
	SQL(ST_SOFT_DELETE,
	    "INSERT INTO %s.entities AS entities (%s) VALUES ($1, $2, NULL, true, $8, $4, $5, $6, $7, $8)"
	    " ON CONFLICT (key) DO UPDATE SET %s",
	    q, cols, delete_set);
	SQL(ST_STALE,
	    "INSERT INTO %s.stale_events (key, stored_version, incoming_version, topic, \"partition\", \"offset\","
	    " seen_at_ms) VALUES ($1, $2, $3, $4, $5, $6, $7)",
	    q);
	SQL(ST_IK_SEEN, "SELECT 1 FROM %s.synclog_idempotency_keys WHERE idempotency_key = $1", q);
	SQL(ST_IK_REMEMBER,
	    "INSERT INTO %s.synclog_idempotency_keys (idempotency_key, seen_at_ms) VALUES ($1, $2)"
	    " ON CONFLICT (idempotency_key) DO UPDATE SET seen_at_ms = excluded.seen_at_ms",
	    q);
	SQL(ST_OFFSETS_READ,
	    "SELECT topic, \"partition\", next_offset, applied, stale, duplicate, deleted, dead_lettered"
	    " FROM %s.synclog_offsets WHERE \"group\" = $1 ORDER BY topic, \"partition\"",
	    q);
	SQL(ST_OFFSET_INSERT,
	    "INSERT INTO %s.synclog_offsets (%s) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT DO "
	    "NOTHING",
	    q, offsets);
	SQL(ST_OFFSET_UPDATE,
	    "UPDATE %s.synclog_offsets SET next_offset = $4, applied = applied + $5, stale = stale + $6,"
	    " duplicate = duplicate + $7, deleted = deleted + $8, dead_lettered = dead_lettered + $9,"
	    " updated_at_ms = $10 WHERE \"group\" = $1 AND topic = $2 AND \"partition\" = $3 AND next_offset = $11",
	    q);
	SQL(ST_PURGE_TOMBSTONES, "DELETE FROM %s.entities WHERE deleted AND deleted_at_ms <= $1", q);
	SQL(ST_PURGE_STALE, "DELETE FROM %s.stale_events WHERE seen_at_ms <= $1", q);
	SQL(ST_PURGE_IK_AGE, "DELETE FROM %s.synclog_idempotency_keys WHERE seen_at_ms <= $1", q);
	SQL(ST_PURGE_IK_COUNT,
	    "DELETE FROM %s.synclog_idempotency_keys WHERE idempotency_key IN (SELECT idempotency_key FROM"
	    " %s.synclog_idempotency_keys ORDER BY seen_at_ms LIMIT greatest(0, (SELECT count(*) FROM"
	    " %s.synclog_idempotency_keys) - $1))",
	    q, q, q);
	SQL(ST_PREFETCH_KEYS, "SELECT key, version, deleted FROM %s.entities WHERE key = ANY($1)", q);
	SQL(ST_PREFETCH_IKS, "SELECT idempotency_key FROM %s.synclog_idempotency_keys WHERE idempotency_key = ANY($1)",
	    q);
	SQL(ST_BATCH_ROWS,
	    "INSERT INTO %s.entities AS entities (%s) SELECT %s FROM pg_temp.synclog_batch WHERE kind = 'u'"
	    " ON CONFLICT (key) DO UPDATE SET %s",
	    q, cols, batch_cols, row_set);
	SQL(ST_BATCH_DELETES,
	    "INSERT INTO %s.entities AS entities (%s) SELECT %s FROM pg_temp.synclog_batch WHERE kind = 'd'"
	    " ON CONFLICT (key) DO UPDATE SET %s",
	    q, cols, batch_cols, delete_set);
	SQL(ST_BATCH_STALE,
	    "INSERT INTO %s.stale_events (key, stored_version, incoming_version, topic, \"partition\", \"offset\","
	    " seen_at_ms) SELECT key, stored_version, version, topic, \"partition\", \"offset\", now_ms"
	    " FROM pg_temp.synclog_batch WHERE kind = 's'",
	    q);
	SQL(ST_BATCH_IKS,
	    "INSERT INTO %s.synclog_idempotency_keys (idempotency_key, seen_at_ms) SELECT idempotency_key, now_ms"
	    " FROM pg_temp.synclog_batch WHERE kind = 'i'"
	    " ON CONFLICT (idempotency_key) DO UPDATE SET seen_at_ms = excluded.seen_at_ms",
	    q);
	SQL(ST_LOCK, "SELECT pg_advisory_xact_lock(%d, hashtext($1))", LOCK_CLASS);
#undef SQL
	return 0;
}

/* Create what is missing, in one transaction under the schema's lock (two appliers starting together must not
 * both create), and check what exists: the schema version and the value column's type. */
static int schema_setup(struct sl_apply_pg *s, const char *q, char *lit)
{
	const char *vt = s->values == SL_APPLY_VALUES_JSON ? "jsonb" : "text";
	char *sql = NULL;
	PGresult *res;
	int rc, version = -1;

	if (asprintf(&sql,
	             "BEGIN; SELECT pg_advisory_xact_lock(%d, hashtext(%s));"
	             "CREATE SCHEMA IF NOT EXISTS %s;"
	             "CREATE TABLE IF NOT EXISTS %s.synclog_schema (version integer NOT NULL);"
	             "CREATE TABLE IF NOT EXISTS %s.entities (key text PRIMARY KEY, version bigint NOT NULL, value %s,"
	             " deleted boolean NOT NULL, deleted_at_ms bigint, origin text, topic text, \"partition\" integer,"
	             " \"offset\" bigint, applied_at_ms bigint);"
	             "CREATE INDEX IF NOT EXISTS entities_tombstones ON %s.entities (deleted_at_ms) WHERE deleted;"
	             "CREATE TABLE IF NOT EXISTS %s.stale_events (key text NOT NULL, stored_version bigint NOT NULL,"
	             " incoming_version bigint NOT NULL, topic text, \"partition\" integer, \"offset\" bigint,"
	             " seen_at_ms bigint NOT NULL);"
	             "CREATE INDEX IF NOT EXISTS stale_events_seen ON %s.stale_events (seen_at_ms);"
	             "CREATE TABLE IF NOT EXISTS %s.synclog_offsets (\"group\" text NOT NULL, topic text NOT NULL,"
	             " \"partition\" integer NOT NULL, next_offset bigint NOT NULL, applied bigint NOT NULL,"
	             " stale bigint NOT NULL, duplicate bigint NOT NULL, deleted bigint NOT NULL,"
	             " dead_lettered bigint NOT NULL, updated_at_ms bigint NOT NULL,"
	             " PRIMARY KEY (\"group\", topic, \"partition\"));"
	             "CREATE TABLE IF NOT EXISTS %s.synclog_idempotency_keys (idempotency_key bytea PRIMARY KEY,"
	             " seen_at_ms bigint NOT NULL);"
	             "CREATE INDEX IF NOT EXISTS synclog_idempotency_keys_seen ON %s.synclog_idempotency_keys"
	             " (seen_at_ms);"
	             "INSERT INTO %s.synclog_schema (version) SELECT %d WHERE NOT EXISTS (SELECT FROM"
	             " %s.synclog_schema);"
	             "COMMIT",
	             LOCK_CLASS, lit, q, q, q, vt, q, q, q, q, q, q, q, SCHEMA_VERSION, q) < 0)
		return fail_memory(s, "create the tables");
	rc = exec_simple(s, sql, "create the tables");
	free(sql);
	if (rc != 0)
		return rc;
	if (asprintf(&sql,
	             "SELECT (SELECT max(version) FROM %s.synclog_schema), (SELECT format_type(atttypid, atttypmod)"
	             " FROM pg_attribute WHERE attrelid = '%s.entities'::regclass AND attname = 'value')",
	             q, q) < 0)
		return fail_memory(s, "read the schema version");
	res = PQexec(s->conn, sql);
	free(sql);
	if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
		rc = res != NULL ? fail_result(s, res, "read the schema version", false)
		                 : fail_link(s, "read the schema version");
		PQclear(res);
		return rc;
	}
	version = atoi(PQgetvalue(res, 0, 0));
	if (version > SCHEMA_VERSION) {
		snprintf(
		        s->error, sizeof(s->error),
		        "postgresql %s: schema version %d was written by a newer synclog (this one knows %d): use that "
		        "version",
		        s->schema, version, SCHEMA_VERSION);
		rc = -EINVAL;
	} else if (strcmp(PQgetvalue(res, 0, 1), vt) != 0) {
		snprintf(s->error, sizeof(s->error),
		         "postgresql %s: entities.value is %s but the values are %s: apply with --values %s, or into "
		         "another schema",
		         s->schema, PQgetvalue(res, 0, 1), vt,
		         strcmp(PQgetvalue(res, 0, 1), "jsonb") == 0 ? "json" : "text");
		rc = -EINVAL;
	}
	PQclear(res);
	return rc;
}

int sl_apply_pg_open(struct sl_apply_pg **out, const struct sl_apply_pg_options *o, char *err, size_t err_bytes)
{
	const char *schema = o->schema != NULL ? o->schema : SL_APPLY_PG_SCHEMA_DEFAULT;
	struct sl_apply_pg *s;
	char *q = NULL, *lit = NULL;
	int rc;

	*out = NULL;
	if (o->conninfo == NULL || strlen(o->conninfo) >= CONNINFO_BYTES_MAX) {
		sl_error_set(err, err_bytes, "postgresql target: the connection string must be shorter than %d bytes",
		             CONNINFO_BYTES_MAX);
		return -EINVAL;
	}
	if (schema[0] == '\0' || strlen(schema) > SCHEMA_BYTES_MAX ||
	    !sl_utf8_text_valid((const uint8_t *)schema, strlen(schema))) {
		sl_error_set(err, err_bytes, "postgresql target: the schema name must be 1 to %d bytes of UTF-8 text",
		             SCHEMA_BYTES_MAX);
		return -EINVAL;
	}
	s = calloc(1, sizeof(*s));
	if (s == NULL) {
		sl_error_set(err, err_bytes, "postgresql target: out of memory");
		return -ENOMEM;
	}
	snprintf(s->conninfo, sizeof(s->conninfo), "%s", o->conninfo);
	snprintf(s->schema, sizeof(s->schema), "%s", schema);
	s->values = o->values;
	s->reconnect_timeout_ms =
	        o->reconnect_timeout_ms != 0 ? o->reconnect_timeout_ms : SL_APPLY_PG_RECONNECT_TIMEOUT_MS_DEFAULT;
	s->down_since_ms = -1;
	rc = connect_once(s);
	if (rc == 0) {
		q = PQescapeIdentifier(s->conn, schema, strlen(schema));
		lit = PQescapeLiteral(s->conn, schema, strlen(schema));
		rc = q == NULL || lit == NULL ? fail_memory(s, "quote the schema name") : 0;
	}
	if (rc == 0)
		rc = statements_build(s, q) == 0 ? 0 : fail_memory(s, "build the statements");
	if (rc == 0)
		rc = schema_setup(s, q, lit);
	if (rc == 0)
		rc = session_setup(s);
	PQfreemem(q);
	PQfreemem(lit);
	if (rc != 0) {
		sl_error_set(err, err_bytes, "%s", s->error);
		sl_apply_pg_close(s);
		return rc;
	}
	*out = s;
	return 0;
}

void sl_apply_pg_close(struct sl_apply_pg *s)
{
	if (s == NULL)
		return;
	PQfinish(s->conn);
	for (int i = 0; i < ST_COUNT; i++)
		free(s->sql[i]);
	free(s->keys.entries);
	free(s->keys.slots);
	free(s->iks.entries);
	free(s->iks.slots);
	free(s->copy.p);
	free(s->params[0].p);
	free(s->params[1].p);
	free(s->offsets);
	free(s->steps);
	free(s);
}
