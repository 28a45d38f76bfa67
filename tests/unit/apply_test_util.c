/* The applier tests' fake source, failing store wrapper, dead-letter recorder, fake clock and table queries
 * (apply_test_util.h). */
#include <errno.h>
#include <libpq-fe.h>
#include <setjmp.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "proto/base/assert.h"
#include "proto/base/fs.h"
#include "consumer/client/synclog.h"
#include "consumer/client/json_text.h"
#include "tests/unit/apply_test_util.h"
#include "tests/unit/log_test_util.h"

/* ---- fake source ---- */

static int src_seek(void *ctx, const struct sl_apply_position *positions, uint32_t count)
{
	struct at_source *s = ctx;

	s->seeks++;
	if (s->seek_failures > 0) {
		s->seek_failures--;
		return -EIO;
	}
	s->cur = s->part_count;
	for (uint32_t p = 0; p < s->part_count; p++) {
		s->position[p] = s->ignore_seek ? s->redeliver_from : 0;
		s->batch_end[p] = s->position[p];
		for (uint32_t i = 0; i < count && !s->ignore_seek; i++)
			if (positions[i].partition == p && strcmp(positions[i].topic, AT_TOPIC) == 0)
				s->position[p] = positions[i].next_offset;
	}
	return 0;
}

static int src_fetch(void *ctx)
{
	struct at_source *s = ctx;

	for (uint32_t p = 0; p < s->part_count; p++) {
		int64_t end = s->position[p] + s->batch_records_max;

		s->batch_end[p] = end < s->count[p] ? end : s->count[p];
	}
	s->cur = 0;
	return 0;
}

static int src_next(void *ctx, struct sl_apply_record *out)
{
	struct at_source *s = ctx;

	while (s->cur < s->part_count) {
		uint32_t p = s->cur;
		const struct at_record *r;

		if (s->position[p] >= s->batch_end[p]) {
			s->cur++;
			continue;
		}
		r = &s->recs[p][s->position[p]];
		memset(out, 0, sizeof(*out));
		out->topic = AT_TOPIC;
		out->partition = p;
		out->rec.offset = s->position[p];
		out->rec.timestamp_ms = AT_CLOCK_START_MS;
		out->rec.key = r->has_key ? (const uint8_t *)r->key : NULL;
		out->rec.key_len = r->has_key ? (int32_t)strlen(r->key) : -1;
		out->rec.value = r->has_value ? (const uint8_t *)r->value : NULL;
		out->rec.value_len = r->has_value ? (int32_t)strlen(r->value) : -1;
		out->rec.version = r->version;
		out->rec.op = r->op;
		out->rec.origin = r->origin;
		out->rec.idempotency_key = r->has_ik ? (const uint8_t *)r->ik : NULL;
		out->rec.idempotency_key_len = r->has_ik ? (int32_t)strlen(r->ik) : 0;
		out->rec.origin_system = r->origin_system[0] != '\0' ? (const uint8_t *)r->origin_system : NULL;
		out->rec.origin_system_len = (int32_t)strlen(r->origin_system);
		out->rec.changed_at_ms = r->changed_at_ms;
		out->rec.schema_version = r->schema_version;
		s->position[p]++;
		return 1;
	}
	return 0;
}

static bool src_done(void *ctx)
{
	struct at_source *s = ctx;

	for (uint32_t p = 0; p < s->part_count; p++)
		if (s->position[p] < s->count[p])
			return false;
	return true;
}

static int src_commit(void *ctx, const struct sl_apply_position *positions, uint32_t count,
                      const struct sl_apply_counters *totals)
{
	struct at_source *s = ctx;

	s->commits++;
	for (uint32_t i = 0; i < count; i++)
		if (positions[i].partition < s->part_count)
			s->committed[positions[i].partition] = positions[i].next_offset;
	return 0;
}

static const char *src_error(void *ctx)
{
	(void)ctx;
	return "fake source error";
}

static const struct sl_apply_source_ops fake_source_ops = {
        .seek = src_seek,
        .fetch = src_fetch,
        .next = src_next,
        .done = src_done,
        .commit = src_commit,
        .error = src_error,
};

int64_t at_add(struct at_source *s, uint32_t partition, const char *key, int64_t version, enum sl_op op,
               const char *value, const char *ik)
{
	int64_t offset = s->count[partition]++;
	struct at_record *r = &s->recs[partition][offset];

	memset(r, 0, sizeof(*r));
	r->has_key = key != NULL;
	if (key != NULL)
		snprintf(r->key, sizeof(r->key), "%s", key);
	r->has_value = value != NULL;
	if (value != NULL)
		snprintf(r->value, sizeof(r->value), "%s", value);
	r->has_ik = ik != NULL;
	if (ik != NULL)
		snprintf(r->ik, sizeof(r->ik), "%s", ik);
	r->version = version;
	r->op = op;
	return offset;
}

int64_t at_upsert(struct at_source *s, uint32_t partition, const char *key, int64_t version, const char *value)
{
	return at_add(s, partition, key, version, SL_OP_UPSERT, value, NULL);
}

int64_t at_delete(struct at_source *s, uint32_t partition, const char *key, int64_t version)
{
	return at_add(s, partition, key, version, SL_OP_DELETE, NULL, NULL);
}

void at_system_set(struct at_source *s, uint32_t partition, int64_t offset, const char *system, int64_t changed_at_ms)
{
	snprintf(s->recs[partition][offset].origin_system, sizeof(s->recs[partition][offset].origin_system), "%s",
	         system != NULL ? system : "");
	s->recs[partition][offset].changed_at_ms = changed_at_ms;
}

void at_schema_set(struct at_source *s, uint32_t partition, int64_t offset, int32_t schema_version)
{
	s->recs[partition][offset].schema_version = schema_version;
}

void at_origin_set(struct at_source *s, uint32_t partition, int64_t offset, enum sl_origin origin)
{
	s->recs[partition][offset].origin = origin;
}

/* ---- dead-letter sink and clock ---- */

static int sink_cb(const struct sl_apply_record *r, const char *error, bool transient, void *cb_arg)
{
	struct at_sink *k = cb_arg;
	struct at_dead *d;

	k->calls++;
	if (k->fail_rc != 0)
		return k->fail_rc;
	if (k->count == AT_DEAD_MAX)
		return -ENOSPC;
	d = &k->dead[k->count++];
	d->partition = r->partition;
	d->offset = r->rec.offset;
	snprintf(d->key, sizeof(d->key), "%.*s", r->rec.key != NULL ? (int)r->rec.key_len : 0,
	         r->rec.key != NULL ? (const char *)r->rec.key : "");
	snprintf(d->error, sizeof(d->error), "%s", error);
	d->transient = transient;
	return 0;
}

static int64_t clock_now(void *arg)
{
	return ((struct at_clock *)arg)->now_ms;
}

static void clock_sleep(uint32_t ms, void *arg)
{
	struct at_clock *c = arg;

	c->now_ms += ms;
	c->slept_ms += ms;
	c->sleeps++;
}

/* ---- failing store wrapper: forwards to SQLite, fails the named op on demand ---- */

static struct at_env *wrapped; /* the store wrapper's context is the env; one env per test */

static int fault(const char *op)
{
	struct at_faults *f = &wrapped->faults;

	wrapped->error[0] = '\0';
	if (f->op == NULL || strcmp(f->op, op) != 0)
		return 0;
	if (f->calls++ < f->after || f->calls > f->after + f->times)
		return 0;
	if (f->exit_instead)
		_exit(0);
	if (f->meanwhile != NULL) {
		f->meanwhile();
		return 0;
	}
	return f->rc;
}

#define REAL (wrapped->real_store.ops)
#define DB   (wrapped->real_store.ctx)
#define FORWARD(op, ...)                          \
	do {                                      \
		int frc = fault(#op);             \
		if (frc != 0)                     \
			return frc;               \
		return REAL->op(DB, __VA_ARGS__); \
	} while (0)

static bool prefetched_at(const struct at_env *e, uint32_t i, const struct sl_apply_record *r)
{
	return e->prefetched[i][0] == r->partition && e->prefetched[i][1] == (uint32_t)r->rec.offset;
}

/* In a prefetched transaction, every record the engine applies must be one prefetched: the next one (or a later
 * one: a record can be looked at by several calls), or an earlier one that was set aside after a rejection and
 * is retried at the end of the transaction. */
static void prefetched_check(const struct sl_apply_record *r)
{
	struct at_env *e = wrapped;
	uint32_t i = e->prefetched_next;

	if (!e->txn_prefetched)
		return;
	while (i < e->prefetched_count && !prefetched_at(e, i, r))
		i++;
	if (i < e->prefetched_count) {
		e->prefetched_next = i;
		return;
	}
	for (i = 0; i < e->prefetched_next && !prefetched_at(e, i, r); i++)
		;
	if (i == e->prefetched_next) {
		fprintf(stderr, "at_env: partition %u offset %lld was applied without being prefetched\n", r->partition,
		        (long long)r->rec.offset);
		e->prefetch.violations++;
	}
}

/* Whether the wrapper refuses r's write: at once (returns SL_APPLY_REJECTED), or at commit when the transaction
 * was prefetched (returns 1: the write is "kept" and dropped). 0: forward it. */
static int refusal(const struct sl_apply_record *r)
{
	struct at_env *e = wrapped;

	if (e->refuse_key == NULL || r->rec.key == NULL || (size_t)r->rec.key_len != strlen(e->refuse_key) ||
	    memcmp(r->rec.key, e->refuse_key, (size_t)r->rec.key_len) != 0)
		return 0;
	if (e->txn_prefetched) {
		e->txn_refused = true;
		return 1;
	}
	snprintf(e->error, sizeof(e->error), "offset %lld: refused by a constraint of the target",
	         (long long)r->rec.offset);
	return SL_APPLY_REJECTED;
}

static void txn_state_clear(void)
{
	wrapped->txn_prefetched = false;
	wrapped->txn_refused = false;
	wrapped->prefetched_count = 0;
	wrapped->prefetched_next = 0;
}

static int w_begin(void *st, int64_t now)
{
	txn_state_clear();
	FORWARD(begin, now);
}
static int w_commit(void *st)
{
	int frc = fault("commit");

	if (frc != 0)
		return frc;
	if (wrapped->txn_refused) {
		/* The database refused a kept write: the whole transaction is gone. */
		REAL->rollback(DB);
		txn_state_clear();
		wrapped->prefetch.refused_commits++;
		snprintf(wrapped->error, sizeof(wrapped->error), "a kept write was refused by a constraint at commit");
		return SL_APPLY_REJECTED;
	}
	txn_state_clear();
	return REAL->commit(DB);
}
static void w_rollback(void *st)
{
	txn_state_clear();
	REAL->rollback(DB);
}
static int w_key_get(void *st, const struct sl_apply_record *r, struct sl_apply_key_state *out)
{
	prefetched_check(r);
	if (!wrapped->txn_prefetched && wrapped->prefetch.direct_last != r->rec.offset + 1) {
		wrapped->prefetch.direct_records++;
		wrapped->prefetch.direct_last = r->rec.offset + 1;
	}
	FORWARD(key_get, r, out);
}
static int w_upsert(void *st, const struct sl_apply_record *r, int64_t v, int64_t now)
{
	int refused = refusal(r);

	if (refused != 0)
		return refused < 0 ? refused : 0;
	FORWARD(upsert, r, v, now);
}
static int w_soft_delete(void *st, const struct sl_apply_record *r, int64_t v, int64_t now)
{
	int refused = refusal(r);

	if (refused != 0)
		return refused < 0 ? refused : 0;
	FORWARD(soft_delete, r, v, now);
}
/* Faults named "upsert" hit the fast path too: it is the same first write. */
static int w_write_if_newer(void *st, const struct sl_apply_record *r, int64_t now, bool *written)
{
	int frc = fault("upsert");

	if (frc != 0)
		return frc;
	frc = refusal(r);
	if (frc != 0)
		return frc;
	return REAL->write_if_newer(DB, r, now, written);
}
static int w_prefetch(void *st, const struct sl_apply_record *records, uint32_t count)
{
	struct at_env *e = wrapped;
	int frc = fault("prefetch");

	if (frc != 0)
		return frc;
	SL_ASSERT(count >= 1 && count <= AT_PARTITIONS_MAX * AT_RECORDS_MAX);
	e->prefetch.calls++;
	e->prefetch.records += count;
	for (uint32_t i = 0; i < count; i++) {
		e->prefetched[i][0] = records[i].partition;
		e->prefetched[i][1] = (uint32_t)records[i].rec.offset;
	}
	e->prefetched_count = count;
	e->prefetched_next = 0;
	e->txn_prefetched = true;
	/* A store that prefetches by itself (PostgreSQL) gets the call; over SQLite the wrapper only pretends. */
	return REAL->prefetch != NULL ? REAL->prefetch(DB, records, count) : 0;
}
static int w_stale(void *st, const struct sl_apply_record *r, int64_t v, int64_t now)
{
	FORWARD(stale_record, r, v, now);
}
static int w_value_same(void *st, const struct sl_apply_record *r, bool *same)
{
	FORWARD(value_same, r, same);
}
static int w_conflict(void *st, const struct sl_apply_record *r, int64_t v, int64_t now)
{
	FORWARD(conflict_record, r, v, now);
}
static int w_ik_seen(void *st, const struct sl_apply_record *r, bool *seen)
{
	prefetched_check(r);
	FORWARD(idempotency_seen, r, seen);
}
static int w_ik_remember(void *st, const struct sl_apply_record *r, int64_t now)
{
	FORWARD(idempotency_remember, r, now);
}
static int w_offsets_read(void *st, const char *group, sl_apply_offsets_read_cb cb, void *cb_arg)
{
	FORWARD(offsets_read, group, cb, cb_arg);
}
static int w_offset_write(void *st, const char *group, const struct sl_apply_position *pos, int64_t expected,
                          const struct sl_apply_counters *delta, int64_t now)
{
	FORWARD(offset_write, group, pos, expected, delta, now);
}
static int w_purge(void *st, int64_t now, int64_t retention, struct sl_apply_purge_counts *out)
{
	FORWARD(purge, now, retention, out);
}
static const char *w_error(void *st)
{
	return wrapped->error[0] != '\0' ? wrapped->error : REAL->error(DB);
}
/* An injected rejection is the record's (permanent); the store's own says what it says. */
static bool w_rejection_transient(void *st)
{
	return wrapped->error[0] == '\0' && REAL->rejection_transient != NULL && REAL->rejection_transient(DB);
}
static int w_reset_get(void *st, const char *group, int64_t *generation_out)
{
	FORWARD(reset_generation_get, group, generation_out);
}
static int w_reset_set(void *st, const char *group, int64_t generation, int64_t now)
{
	FORWARD(reset_generation_set, group, generation, now);
}
static int w_offset_reset(void *st, const char *group, const struct sl_apply_position *pos, int64_t now)
{
	FORWARD(offset_reset, group, pos, now);
}
static int w_row_get(void *st, const struct sl_apply_record *r, struct sl_apply_row *out)
{
	FORWARD(row_get, r, out);
}
static int w_conflict_note(void *st, const struct sl_apply_record *r, int64_t v,
                           const struct sl_apply_conflict_note *note, int64_t now)
{
	FORWARD(conflict_note, r, v, note, now);
}
static int w_conflicts_list(void *st, const char *status, int64_t after, uint32_t limit, sl_apply_conflict_cb cb,
                            void *cb_arg)
{
	FORWARD(conflicts_list, status, after, limit, cb, cb_arg);
}
static int w_conflict_get(void *st, int64_t id, sl_apply_conflict_cb cb, void *cb_arg)
{
	FORWARD(conflict_get, id, cb, cb_arg);
}
static int w_conflict_mark(void *st, int64_t id, enum sl_apply_conflict_status status, const char *resolution,
                           int64_t now)
{
	FORWARD(conflict_mark, id, status, resolution, now);
}
static int w_partition_state_set(void *st, const char *group, const char *topic, uint32_t partition, const char *state,
                                 const char *reason, int64_t since)
{
	FORWARD(partition_state_set, group, topic, partition, state, reason, since);
}

#define WRAPPER_OPS                                                                                             \
	.begin = w_begin, .commit = w_commit, .rollback = w_rollback, .key_get = w_key_get, .upsert = w_upsert, \
	.soft_delete = w_soft_delete, .stale_record = w_stale, .value_same = w_value_same,                      \
	.conflict_record = w_conflict, .idempotency_seen = w_ik_seen, .idempotency_remember = w_ik_remember,    \
	.offsets_read = w_offsets_read, .offset_write = w_offset_write, .purge = w_purge, .error = w_error,     \
	.rejection_transient = w_rejection_transient, .reset_generation_get = w_reset_get,                      \
	.reset_generation_set = w_reset_set, .offset_reset = w_offset_reset
/* What a sync contract's rules need (apply.h rule 9): the SQLite store has them, the PostgreSQL store not. */
#define WRAPPER_CONTRACT_OPS                                                                        \
	.row_get = w_row_get, .conflict_note = w_conflict_note, .conflicts_list = w_conflicts_list, \
	.conflict_get = w_conflict_get, .conflict_mark = w_conflict_mark, .partition_state_set = w_partition_state_set

/* The engine's three ways to apply a record (apply_test_util.h, enum at_path). */
static const struct sl_apply_store_ops wrapper_ops[] = {
        [AT_PATH_CONDITIONAL_WRITE] = {WRAPPER_OPS, WRAPPER_CONTRACT_OPS, .write_if_newer = w_write_if_newer},
        [AT_PATH_KEY_GET] = {WRAPPER_OPS, WRAPPER_CONTRACT_OPS},
        [AT_PATH_PREFETCH] = {WRAPPER_OPS, WRAPPER_CONTRACT_OPS, .prefetch = w_prefetch},
        [AT_PATH_POSTGRESQL] = {WRAPPER_OPS, .prefetch = w_prefetch},
};

/* ---- the PostgreSQL server of a run ---- */

static char pg_dir[256];
static char pg_conninfo[512];

/* Start a server in a directory of its own (tests/integration/pg_lib.sh; the tests run from the repository's
 * root). Returns 0 or -1. */
static int pg_server_start(void)
{
	char cmd[512];
	FILE *f;
	size_t n;

	snprintf(pg_dir, sizeof(pg_dir), "/tmp/synclog-apply-pg.XXXXXX");
	if (mkdtemp(pg_dir) == NULL) {
		pg_dir[0] = '\0';
		return -1;
	}
	snprintf(cmd, sizeof(cmd), "tests/integration/pg_lib.sh start %s/pg %d", pg_dir, (int)getpid());
	f = popen(cmd, "r");
	if (f == NULL)
		return -1;
	n = fread(pg_conninfo, 1, sizeof(pg_conninfo) - 1, f);
	pg_conninfo[n] = '\0';
	while (n > 0 && pg_conninfo[n - 1] == '\n')
		pg_conninfo[--n] = '\0';
	if (pclose(f) != 0 || n == 0) {
		fprintf(stderr, "at_env: could not start PostgreSQL (%s)\n", cmd);
		return -1;
	}
	return 0;
}

static void pg_server_stop(void)
{
	char cmd[512];

	if (pg_dir[0] == '\0')
		return;
	snprintf(cmd, sizeof(cmd), "tests/integration/pg_lib.sh stop %s/pg", pg_dir);
	if (system(cmd) != 0)
		fprintf(stderr, "at_env: could not stop PostgreSQL (%s)\n", cmd);
	if (sl_fs_rm_rf(pg_dir) != 0)
		fprintf(stderr, "at_env: could not remove %s\n", pg_dir);
	pg_dir[0] = '\0';
}

/* ---- environment ---- */

enum at_path at_path;

int at_run_all_paths(const struct CMUnitTest *tests, size_t count)
{
	int failed;

	at_path = AT_PATH_CONDITIONAL_WRITE;
	failed = _cmocka_run_group_tests("conditional write", tests, count, NULL, NULL);
	at_path = AT_PATH_KEY_GET;
	failed += _cmocka_run_group_tests("key_get then write", tests, count, NULL, NULL);
	at_path = AT_PATH_PREFETCH;
	failed += _cmocka_run_group_tests("prefetch, writes kept to commit", tests, count, NULL, NULL);
	return failed + at_run_postgresql(tests, count);
}

int at_run_sqlite_paths(const struct CMUnitTest *tests, size_t count)
{
	int failed;

	at_path = AT_PATH_CONDITIONAL_WRITE;
	failed = _cmocka_run_group_tests("conditional write", tests, count, NULL, NULL);
	at_path = AT_PATH_KEY_GET;
	failed += _cmocka_run_group_tests("key_get then write", tests, count, NULL, NULL);
	at_path = AT_PATH_PREFETCH;
	return failed + _cmocka_run_group_tests("prefetch, writes kept to commit", tests, count, NULL, NULL);
}

int at_run_postgresql(const struct CMUnitTest *tests, size_t count)
{
	int failed = 1;

	at_path = AT_PATH_POSTGRESQL;
	if (pg_server_start() == 0)
		failed = _cmocka_run_group_tests("the PostgreSQL store", tests, count, NULL, NULL);
	pg_server_stop();
	return failed;
}

const char *at_pg_conninfo(void)
{
	return pg_conninfo;
}

int at_db_open(struct at_env *e)
{
	struct sl_apply_target_options o = {.schema = at_path == AT_PATH_POSTGRESQL ? e->schema : NULL};
	char err[SL_ERROR_BYTES];

	if (sl_apply_target_open(&e->db, e->target, &o, err, sizeof(err)) != 0) {
		fprintf(stderr, "at_env: %s\n", err);
		return -1;
	}
	sl_apply_target_store(e->db, &e->real_store);
	e->store.ops = &wrapper_ops[at_path];
	e->store.ctx = e;
	return 0;
}

int at_use_deletes(struct at_env *e, enum sl_apply_on_delete on_delete, bool follow_log)
{
	struct sl_apply_target_options o = {
	        .schema = at_path == AT_PATH_POSTGRESQL ? e->schema : NULL,
	        .on_delete = on_delete,
	        .follow_log = follow_log,
	};
	char err[SL_ERROR_BYTES];

	at_engine_stop(e);
	sl_apply_target_close(e->db);
	if (sl_apply_target_open(&e->db, e->target, &o, err, sizeof(err)) != 0) {
		fprintf(stderr, "at_env: %s\n", err);
		e->db = NULL;
		return -1;
	}
	sl_apply_target_store(e->db, &e->real_store);
	e->store = e->real_store;
	return 0;
}

int at_run_both_stores(const struct CMUnitTest *tests, size_t count)
{
	at_path = AT_PATH_CONDITIONAL_WRITE;
	return _cmocka_run_group_tests("SQLite", tests, count, NULL, NULL) + at_run_postgresql(tests, count);
}

int at_store_open_another(struct at_env *e, struct sl_apply_target **out, struct sl_apply_store *store)
{
	struct sl_apply_target_options o = {.schema = at_path == AT_PATH_POSTGRESQL ? e->schema : NULL};
	char err[SL_ERROR_BYTES];

	if (sl_apply_target_open(out, e->target, &o, err, sizeof(err)) != 0) {
		fprintf(stderr, "at_env: %s\n", err);
		return -1;
	}
	sl_apply_target_store(*out, store);
	return 0;
}

int at_env_init(struct at_env *e, uint32_t part_count)
{
	memset(e, 0, sizeof(*e));
	if (lt_tmpdir_make(e->dir, sizeof(e->dir)) != 0)
		return -1;
	snprintf(e->path, sizeof(e->path), "%s/target.db", e->dir);
	if (at_path == AT_PATH_POSTGRESQL) {
		static unsigned tests;

		snprintf(e->schema, sizeof(e->schema), "t%d_%u", (int)getpid(), ++tests);
		snprintf(e->target, sizeof(e->target), "postgres:%s", pg_conninfo);
	} else {
		snprintf(e->target, sizeof(e->target), "sqlite:%s", e->path);
	}
	e->src = calloc(1, sizeof(*e->src));
	if (e->src == NULL)
		return -1;
	e->prefetched = calloc(AT_PARTITIONS_MAX * AT_RECORDS_MAX, sizeof(*e->prefetched));
	if (e->prefetched == NULL)
		return -1;
	e->src->part_count = part_count;
	e->src->batch_records_max = 100;
	for (uint32_t p = 0; p < AT_PARTITIONS_MAX; p++)
		e->src->committed[p] = -1;
	e->source.ops = &fake_source_ops;
	e->source.ctx = e->src;
	e->clock.now_ms = AT_CLOCK_START_MS;
	sl_apply_options_init(&e->options);
	e->options.group = AT_GROUP;
	e->options.dead_letter_cb = sink_cb;
	e->options.dead_letter_cb_arg = &e->sink;
	e->options.now_ms = clock_now;
	e->options.sleep_ms = clock_sleep;
	e->options.clock_arg = &e->clock;
	wrapped = e;
	return at_db_open(e);
}

void at_env_cleanup(struct at_env *e)
{
	at_engine_stop(e);
	sl_apply_target_close(e->db);
	e->db = NULL;
	if (e->query_conn != NULL) {
		char sql[128];

		snprintf(sql, sizeof(sql), "DROP SCHEMA \"%s\" CASCADE", e->schema);
		PQclear(PQexec(e->query_conn, sql));
		PQfinish(e->query_conn);
		e->query_conn = NULL;
	}
	free(e->src);
	e->src = NULL;
	free(e->prefetched);
	e->prefetched = NULL;
	if (sl_fs_rm_rf(e->dir) != 0)
		fprintf(stderr, "at_env: could not remove %s\n", e->dir);
}

void at_db_close(struct at_env *e)
{
	at_engine_stop(e);
	sl_apply_target_close(e->db);
	e->db = NULL;
	/* A forked child must not share the query connection either. */
	PQfinish(e->query_conn);
	e->query_conn = NULL;
}

void at_source_get(struct at_source *s, struct sl_apply_source *out)
{
	out->ops = &fake_source_ops;
	out->ctx = s;
}

struct sl_apply_counters at_stored_totals(struct at_env *e)
{
	struct sl_apply_counters c = {
	        .applied = (uint64_t)at_query_int(e, "SELECT sum(applied) FROM synclog_offsets"),
	        .stale = (uint64_t)at_query_int(e, "SELECT sum(stale) FROM synclog_offsets"),
	        .duplicate = (uint64_t)at_query_int(e, "SELECT sum(duplicate) FROM synclog_offsets"),
	        .deleted = (uint64_t)at_query_int(e, "SELECT sum(deleted) FROM synclog_offsets"),
	        .dead_lettered = (uint64_t)at_query_int(e, "SELECT sum(dead_lettered) FROM synclog_offsets"),
	};
	return c;
}

int at_engine_start(struct at_env *e)
{
	char err[SL_ERROR_BYTES];
	int rc = sl_apply_new(&e->engine, &e->options, &e->store, &e->source, err, sizeof(err));

	if (rc != 0) {
		fprintf(stderr, "at_engine_start: %s\n", err);
		return rc;
	}
	rc = sl_apply_start(e->engine);
	if (rc != 0)
		fprintf(stderr, "at_engine_start: %s\n", sl_apply_error(e->engine));
	return rc;
}

void at_engine_stop(struct at_env *e)
{
	sl_apply_free(e->engine);
	e->engine = NULL;
}

int at_restart(struct at_env *e)
{
	at_engine_stop(e);
	sl_apply_target_close(e->db);
	e->db = NULL;
	if (at_db_open(e) != 0)
		return -1;
	return at_engine_start(e);
}

int at_run(struct at_env *e, uint32_t polls_max)
{
	for (uint32_t i = 0; i < polls_max && !sl_apply_done(e->engine); i++) {
		int rc = sl_apply_poll(e->engine);

		if (rc < 0) {
			fprintf(stderr, "at_run: %s\n", sl_apply_error(e->engine));
			return rc;
		}
	}
	return sl_apply_done(e->engine) ? 0 : -ETIMEDOUT;
}

/* ---- queries, on a connection of their own ---- */

/* The PostgreSQL connection of the queries, in the test's schema. */
static PGconn *pg_query_conn(struct at_env *e)
{
	char sql[128];
	PGresult *res;

	if (e->query_conn != NULL)
		return e->query_conn;
	e->query_conn = PQconnectdb(pg_conninfo);
	if (PQstatus(e->query_conn) != CONNECTION_OK) {
		fprintf(stderr, "at_env: %s", PQerrorMessage(e->query_conn));
		PQfinish(e->query_conn);
		e->query_conn = NULL;
		return NULL;
	}
	snprintf(sql, sizeof(sql), "SET search_path = \"%s\"; SET client_min_messages = warning", e->schema);
	res = PQexec(e->query_conn, sql);
	PQclear(res);
	return e->query_conn;
}

int at_pg_exec(struct at_env *e, const char *sql)
{
	PGconn *c = pg_query_conn(e);
	PGresult *res;
	int rc = -1;

	if (c == NULL)
		return -1;
	res = PQexec(c, sql);
	if (PQresultStatus(res) == PGRES_COMMAND_OK || PQresultStatus(res) == PGRES_TUPLES_OK)
		rc = 0;
	else
		fprintf(stderr, "at_pg_exec: %s: %s", sql, PQerrorMessage(c));
	PQclear(res);
	return rc;
}

static int pg_row_get(struct at_env *e, const char *key, struct at_row *out)
{
	const char *params[1] = {key};
	PGconn *c = pg_query_conn(e);
	PGresult *res;
	int found = -1;

	if (c == NULL)
		return -1;
	res = PQexecParams(c,
	                   "SELECT version, value::text, deleted::int, deleted_at_ms, \"offset\" FROM entities"
	                   " WHERE key = $1",
	                   1, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) == PGRES_TUPLES_OK) {
		found = PQntuples(res) == 1;
		if (found) {
			const char *v = PQgetvalue(res, 0, 1);

			out->version = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
			out->value_null = PQgetisnull(res, 0, 1);
			/* jsonb prints with spaces: compare as the source wrote it, without them. */
			out->value[sl_json_minify(v, strlen(v) < sizeof(out->value) ? strlen(v) : 0, out->value)] =
			        '\0';
			out->deleted = atoi(PQgetvalue(res, 0, 2));
			out->deleted_at_ms = PQgetisnull(res, 0, 3) ? -1 : strtoll(PQgetvalue(res, 0, 3), NULL, 10);
			out->offset = strtoll(PQgetvalue(res, 0, 4), NULL, 10);
		}
	} else {
		fprintf(stderr, "at_row_get: %s", PQerrorMessage(c));
	}
	PQclear(res);
	return found;
}

static int64_t pg_query_int(struct at_env *e, const char *sql)
{
	PGconn *c = pg_query_conn(e);
	PGresult *res;
	int64_t v = -1;

	if (c == NULL)
		return -1;
	res = PQexec(c, sql);
	if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1)
		v = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	else
		fprintf(stderr, "at_query_int: %s: %s", sql, PQerrorMessage(c));
	PQclear(res);
	return v;
}

int at_row_get(struct at_env *e, const char *key, struct at_row *out)
{
	sqlite3 *db;
	sqlite3_stmt *st;
	int rc, found = -1;

	memset(out, 0, sizeof(*out));
	if (at_path == AT_PATH_POSTGRESQL)
		return pg_row_get(e, key, out);
	if (sqlite3_open_v2(e->path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK)
		return -1;
	if (sqlite3_prepare_v2(db,
	                       "SELECT version, value, deleted, deleted_at_ms, \"offset\" FROM entities WHERE key = ?1",
	                       -1, &st, NULL) == SQLITE_OK) {
		sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
		rc = sqlite3_step(st);
		found = rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -1;
		if (found == 1) {
			const unsigned char *v = sqlite3_column_text(st, 1);

			out->version = sqlite3_column_int64(st, 0);
			out->value_null = v == NULL;
			snprintf(out->value, sizeof(out->value), "%s", v != NULL ? (const char *)v : "");
			out->deleted = sqlite3_column_int(st, 2);
			out->deleted_at_ms =
			        sqlite3_column_type(st, 3) == SQLITE_NULL ? -1 : sqlite3_column_int64(st, 3);
			out->offset = sqlite3_column_int64(st, 4);
		}
		sqlite3_finalize(st);
	}
	sqlite3_close(db);
	return found;
}

int64_t at_query_int(struct at_env *e, const char *sql)
{
	sqlite3 *db;
	sqlite3_stmt *st;
	int64_t v = -1;

	if (at_path == AT_PATH_POSTGRESQL)
		return pg_query_int(e, sql);
	if (sqlite3_open_v2(e->path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK)
		return -1;
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK) {
		if (sqlite3_step(st) == SQLITE_ROW)
			v = sqlite3_column_int64(st, 0);
		sqlite3_finalize(st);
	} else {
		fprintf(stderr, "at_query_int: %s: %s\n", sql, sqlite3_errmsg(db));
	}
	sqlite3_close(db);
	return v;
}

int at_setup(void **state, uint32_t part_count)
{
	struct at_env *e = calloc(1, sizeof(*e));

	if (e == NULL || at_env_init(e, part_count) != 0) {
		free(e);
		return -1;
	}
	*state = e;
	return 0;
}

int at_setup_retention(void **state, uint32_t part_count, int64_t tombstone_retention_ms)
{
	if (at_setup(state, part_count) != 0)
		return -1;
	((struct at_env *)*state)->options.tombstone_retention_ms = tombstone_retention_ms;
	return 0;
}

int at_teardown(void **state)
{
	struct at_env *e = *state;
	uint32_t violations = e->prefetch.violations;

	at_env_cleanup(e);
	free(e);
	/* A record applied without its prefetch breaks the store contract whatever the test checked. */
	return violations == 0 ? 0 : -1;
}

struct sl_apply_counters at_counters(struct at_env *e)
{
	struct sl_apply_counters c;

	sl_apply_counters_get(e->engine, &c);
	return c;
}
