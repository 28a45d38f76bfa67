/* sync-bench: the measurements of the backfill and reconcile benchmark (bench/sync.sh) that the CLI cannot take.
 *
 *   sync-bench scan DB TABLE
 *       The floor of a reconciliation: SELECT key, version, value FROM TABLE read to the end, every column's bytes
 *       touched, as bare as SQLite allows. Prints {"rows":N,"seconds":S}.
 *   sync-bench apply-latency --broker B --topic T --target PATH [--rate R] [--seconds S] [--warmup-s W]
 *       Live produce-to-apply latency: a producer thread offers R records/s for S seconds on a fixed schedule (each
 *       record stamped with its intended send time, so a stall is charged to every record it delays, as
 *       synclog-bench latency does), and this thread runs the applier (consumer/sync/apply.h over its SQLite store
 *       and the broker) from the topic's start. A record's latency is from its stamp to the commit of the store
 *       transaction that applied it. Records of other producers (a backfill) are applied and not measured. Prints
 *       {"sent":N,"measured":M,...latency in us}. */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench/common/hist.h"
#include "consumer/client/synclog.h"
#include "consumer/sync/apply.h"

/* Keys the live producer cycles through: like a service updating its entities, each update a newer version. */
#define LIVE_KEYS        100000
/* Records one store transaction holds at most (the engine's transaction_records_max). */
#define PENDING_MAX      100000
#define VALUE_PAD_BYTES  64
/* After the last send, how long the applier may take to apply everything before the run fails. */
#define DRAIN_TIMEOUT_NS (30 * 1000000000ll)

static int usage(void)
{
	fputs("usage: sync-bench scan DB TABLE\n"
	      "       sync-bench apply-latency --broker HOST:PORT --topic T --target PATH [--rate R] [--seconds S]\n"
	      "                                [--warmup-s W]\n",
	      stderr);
	return 2;
}

/* ---- scan ---- */

static int scan(const char *path, const char *table)
{
	sqlite3 *db;
	sqlite3_stmt *st;
	char sql[512];
	uint64_t rows = 0, bytes = 0;
	int64_t t0;
	int rc;

	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
		fprintf(stderr, "sync-bench: cannot open %s\n", path);
		return 1;
	}
	snprintf(sql, sizeof(sql), "SELECT key, version, value FROM \"%s\"", table);
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
		fprintf(stderr, "sync-bench: %s\n", sqlite3_errmsg(db));
		return 1;
	}
	t0 = sl_clock_mono_ns();
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const unsigned char *k = sqlite3_column_text(st, 0), *v = sqlite3_column_text(st, 2);

		bytes += (uint64_t)sqlite3_column_bytes(st, 0) + (uint64_t)sqlite3_column_bytes(st, 2) +
		         (uint64_t)sqlite3_column_int64(st, 1) + (k != NULL ? k[0] : 0) + (v != NULL ? v[0] : 0);
		rows++;
	}
	printf("{\"rows\":%llu,\"seconds\":%.4f,\"checksum\":%llu}\n", (unsigned long long)rows,
	       (double)(sl_clock_mono_ns() - t0) / 1e9, (unsigned long long)bytes);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return rc == SQLITE_DONE ? 0 : 1;
}

/* ---- apply-latency ---- */

struct lat {
	const char *broker, *topic, *target;
	double rate, seconds, warmup_s;
	int64_t t0_ns;
	atomic_uint_fast64_t sent;
	atomic_bool sending_done;
	uint64_t acked, failed;
	/* The applier's side. */
	struct sl_apply_store real;
	int64_t pending[PENDING_MAX];
	uint32_t pending_count;
	uint64_t measured, applied_live;
	struct hist h;
	/* Where the time goes: each live record's acknowledgement (from its stamp, at the producer), each store
	 * transaction's length and its commit's. */
	struct hist ack, txn, commit;
	int64_t txn_begin_ns;
	uint64_t txn_records, transactions;
	char error[SL_ERROR_BYTES];
};

static struct lat *the_run; /* the store wrapper's context: one run per process */

static void delivered_cb(void *opaque, const struct sl_delivery *d, void *cb_arg)
{
	struct lat *l = cb_arg;

	if (d->status == 0) {
		int64_t stamp = (int64_t)(intptr_t)opaque;

		l->acked++;
		if (stamp >= l->t0_ns + (int64_t)(l->warmup_s * 1e9))
			hist_add(&l->ack, (uint64_t)(sl_clock_mono_ns() - stamp));
	} else if (l->failed++ == 0) {
		snprintf(l->error, sizeof(l->error), "produce: %s", d->error);
	}
}

/* Send rate records per second on a fixed schedule, stamped with their intended times, woken once a millisecond. */
static void *producer_main(void *arg)
{
	struct lat *l = arg;
	struct sl_producer_options o;
	struct sl_producer *p;
	char err[SL_ERROR_BYTES], value[VALUE_PAD_BYTES + 64], key[32], pad[VALUE_PAD_BYTES + 1];
	uint64_t total = (uint64_t)(l->rate * l->seconds), seq = 0;

	memset(pad, 'x', VALUE_PAD_BYTES);
	pad[VALUE_PAD_BYTES] = '\0';
	sl_producer_options_init(&o);
	o.broker = l->broker;
	o.topic = l->topic;
	o.client_id = "sync-bench-live";
	o.linger_ms = 1;
	o.delivery_cb = delivered_cb;
	o.delivery_cb_arg = l;
	if (sl_producer_new(&p, &o, err, sizeof(err)) != 0) {
		snprintf(l->error, sizeof(l->error), "%s", err);
		atomic_store(&l->sending_done, true);
		return NULL;
	}
	while (seq < total) {
		int64_t now = sl_clock_mono_ns();
		uint64_t due = now < l->t0_ns ? 0 : (uint64_t)((double)(now - l->t0_ns) / 1e9 * l->rate) + 1;

		for (; seq < due && seq < total; seq++) {
			int64_t stamp = l->t0_ns + (int64_t)((double)seq / l->rate * 1e9);
			struct sl_record r = {.key = (const uint8_t *)key,
			                      .value = (const uint8_t *)value,
			                      .version = (int64_t)(seq / LIVE_KEYS) + 1,
			                      .timestamp_ms = sl_clock_wall_ms()};

			r.key_len = snprintf(key, sizeof(key), "live-%06" PRIu64, seq % LIVE_KEYS);
			r.value_len = snprintf(value, sizeof(value), "{\"t\":%" PRId64 ",\"pad\":\"%s\"}", stamp, pad);
			if (sl_producer_send(p, SL_PARTITION_ANY, &r, (void *)(intptr_t)stamp) != 0) {
				snprintf(l->error, sizeof(l->error), "send: %s", sl_producer_error(p));
				seq = total;
				break;
			}
			atomic_store(&l->sent, seq + 1);
		}
		sl_producer_poll(p, 1);
	}
	sl_producer_flush(p, -1);
	sl_producer_free(p);
	atomic_store(&l->sending_done, true);
	return NULL;
}

/* The stamp of a live record's value, or -1 for another record (a backfill's). */
static int64_t stamp_of(const struct sl_apply_record *r)
{
	const char *v = (const char *)r->rec.value;

	if (v == NULL || r->rec.value_len < 6 || memcmp(v, "{\"t\":", 5) != 0)
		return -1;
	return strtoll(v + 5, NULL, 10);
}

static void pending_add(const struct sl_apply_record *r)
{
	int64_t t = stamp_of(r);

	if (t >= 0 && the_run->pending_count < PENDING_MAX)
		the_run->pending[the_run->pending_count++] = t;
}

#define REAL (the_run->real.ops)
#define DB   (the_run->real.ctx)

static int w_begin(void *st, int64_t now)
{
	the_run->pending_count = 0;
	the_run->txn_begin_ns = sl_clock_mono_ns();
	return REAL->begin(DB, now);
}
static int w_commit(void *st)
{
	int64_t start = sl_clock_mono_ns();
	int rc = REAL->commit(DB);
	int64_t now = sl_clock_mono_ns(), from = the_run->t0_ns + (int64_t)(the_run->warmup_s * 1e9);

	if (rc == 0 && start >= from) {
		hist_add(&the_run->commit, (uint64_t)(now - start));
		hist_add(&the_run->txn, (uint64_t)(now - the_run->txn_begin_ns));
		the_run->transactions++;
	}

	if (rc == 0)
		for (uint32_t i = 0; i < the_run->pending_count; i++) {
			the_run->applied_live++;
			if (the_run->pending[i] < from)
				continue;
			hist_add(&the_run->h, (uint64_t)(now - the_run->pending[i]));
			the_run->measured++;
		}
	the_run->pending_count = 0;
	return rc;
}
static void w_rollback(void *st)
{
	the_run->pending_count = 0;
	REAL->rollback(DB);
}
static int w_key_get(void *st, const struct sl_apply_record *r, struct sl_apply_key_state *out)
{
	return REAL->key_get(DB, r, out);
}
static int w_upsert(void *st, const struct sl_apply_record *r, int64_t v, int64_t now)
{
	int rc = REAL->upsert(DB, r, v, now);

	if (rc == 0)
		pending_add(r);
	return rc;
}
static int w_soft_delete(void *st, const struct sl_apply_record *r, int64_t v, int64_t now)
{
	return REAL->soft_delete(DB, r, v, now);
}
static int w_write_if_newer(void *st, const struct sl_apply_record *r, int64_t now, bool *written)
{
	int rc = REAL->write_if_newer(DB, r, now, written);

	if (rc == 0 && *written)
		pending_add(r);
	return rc;
}
static int w_stale(void *st, const struct sl_apply_record *r, int64_t v, int64_t now)
{
	return REAL->stale_record(DB, r, v, now);
}
static int w_value_same(void *st, const struct sl_apply_record *r, bool *same)
{
	return REAL->value_same(DB, r, same);
}
static int w_conflict(void *st, const struct sl_apply_record *r, int64_t v, int64_t now)
{
	return REAL->conflict_record(DB, r, v, now);
}
static int w_ik_seen(void *st, const struct sl_apply_record *r, bool *seen)
{
	return REAL->idempotency_seen(DB, r, seen);
}
static int w_ik_remember(void *st, const struct sl_apply_record *r, int64_t now)
{
	return REAL->idempotency_remember(DB, r, now);
}
static int w_offsets_read(void *st, const char *group, sl_apply_offsets_read_cb cb, void *cb_arg)
{
	return REAL->offsets_read(DB, group, cb, cb_arg);
}
static int w_offset_write(void *st, const char *group, const struct sl_apply_position *pos, int64_t expected,
                          const struct sl_apply_counters *delta, int64_t now)
{
	return REAL->offset_write(DB, group, pos, expected, delta, now);
}
static int w_purge(void *st, int64_t now, int64_t retention, struct sl_apply_purge_counts *out)
{
	return REAL->purge(DB, now, retention, out);
}
static const char *w_error(void *st)
{
	return REAL->error(DB);
}

static const struct sl_apply_store_ops timing_ops = {
        .begin = w_begin,
        .commit = w_commit,
        .rollback = w_rollback,
        .key_get = w_key_get,
        .upsert = w_upsert,
        .soft_delete = w_soft_delete,
        .write_if_newer = w_write_if_newer,
        .stale_record = w_stale,
        .value_same = w_value_same,
        .conflict_record = w_conflict,
        .idempotency_seen = w_ik_seen,
        .idempotency_remember = w_ik_remember,
        .offsets_read = w_offsets_read,
        .offset_write = w_offset_write,
        .purge = w_purge,
        .error = w_error,
};

static int dead_letter_cb(const struct sl_apply_record *r, const char *error, bool transient, void *cb_arg)
{
	(void)r;
	(void)transient;
	(void)cb_arg;
	fprintf(stderr, "sync-bench: a record was refused: %s\n", error);
	return -EIO;
}

static int apply_latency(struct lat *l)
{
	struct sl_apply_fetch_source_options so = {.broker = l->broker,
	                                           .client_id = "sync-bench-apply",
	                                           .topic = l->topic,
	                                           .group = "sync-bench",
	                                           .follow = true};
	struct sl_apply_fetch_source *src;
	struct sl_apply_sqlite *db;
	struct sl_apply_source source;
	struct sl_apply_store store = {.ops = &timing_ops, .ctx = l};
	struct sl_apply_options o;
	struct sl_apply *engine;
	pthread_t producer;
	char err[SL_ERROR_BYTES];
	int64_t drain_deadline = 0;
	int rc;

	the_run = l;
	hist_init(&l->h);
	hist_init(&l->ack);
	hist_init(&l->txn);
	hist_init(&l->commit);
	if (sl_apply_sqlite_open(&db, l->target, SL_APPLY_VALUES_JSON, err, sizeof(err)) != 0 ||
	    sl_apply_fetch_source_new(&src, &so, err, sizeof(err)) != 0) {
		fprintf(stderr, "sync-bench: %s\n", err);
		return 1;
	}
	sl_apply_sqlite_store(db, &l->real);
	sl_apply_fetch_source_get(src, &source);
	sl_apply_options_init(&o);
	o.group = "sync-bench";
	o.dead_letter_cb = dead_letter_cb;
	if (sl_apply_new(&engine, &o, &store, &source, err, sizeof(err)) != 0 || sl_apply_start(engine) != 0) {
		fprintf(stderr, "sync-bench: %s\n", err);
		return 1;
	}
	l->t0_ns = sl_clock_mono_ns() + 100000000; /* the schedule starts in 100 ms, once the applier polls */
	pthread_create(&producer, NULL, producer_main, l);
	for (;;) {
		bool done = atomic_load(&l->sending_done);

		if (done && l->applied_live >= atomic_load(&l->sent))
			break;
		if (done && drain_deadline == 0)
			drain_deadline = sl_clock_mono_ns() + DRAIN_TIMEOUT_NS;
		if (drain_deadline != 0 && sl_clock_mono_ns() > drain_deadline) {
			snprintf(l->error, sizeof(l->error), "applied %llu of %llu live records",
			         (unsigned long long)l->applied_live, (unsigned long long)atomic_load(&l->sent));
			break;
		}
		rc = sl_apply_poll(engine);
		if (rc < 0 && rc != -EINTR) {
			snprintf(l->error, sizeof(l->error), "apply: %s", sl_apply_error(engine));
			break;
		}
	}
	pthread_join(producer, NULL);
	printf("{\"rate\":%.0f,\"seconds\":%.1f,\"sent\":%llu,\"acked\":%llu,\"applied\":%llu,", l->rate, l->seconds,
	       (unsigned long long)atomic_load(&l->sent), (unsigned long long)l->acked,
	       (unsigned long long)l->applied_live);
	hist_print_json(stdout, &l->h);
	printf(",\"ack\":{");
	hist_print_json(stdout, &l->ack);
	printf("},\"transactions\":%llu,\"transaction\":{", (unsigned long long)l->transactions);
	hist_print_json(stdout, &l->txn);
	printf("},\"commit\":{");
	hist_print_json(stdout, &l->commit);
	printf("},\"error\":\"%s\"}\n", l->error);
	sl_apply_free(engine);
	sl_apply_fetch_source_free(src);
	sl_apply_sqlite_close(db);
	return l->error[0] != '\0' ? 1 : 0;
}

int main(int argc, char **argv)
{
	static struct lat l = {.rate = 20000, .seconds = 20, .warmup_s = 2};

	if (argc == 4 && strcmp(argv[1], "scan") == 0)
		return scan(argv[2], argv[3]);
	if (argc < 2 || strcmp(argv[1], "apply-latency") != 0)
		return usage();
	for (int i = 2; i + 1 < argc; i += 2) {
		if (strcmp(argv[i], "--broker") == 0)
			l.broker = argv[i + 1];
		else if (strcmp(argv[i], "--topic") == 0)
			l.topic = argv[i + 1];
		else if (strcmp(argv[i], "--target") == 0)
			l.target = argv[i + 1];
		else if (strcmp(argv[i], "--rate") == 0)
			l.rate = atof(argv[i + 1]);
		else if (strcmp(argv[i], "--seconds") == 0)
			l.seconds = atof(argv[i + 1]);
		else if (strcmp(argv[i], "--warmup-s") == 0)
			l.warmup_s = atof(argv[i + 1]);
		else
			return usage();
	}
	if (l.broker == NULL || l.topic == NULL || l.target == NULL || !(l.rate > 0) || !(l.seconds > 0))
		return usage();
	return apply_latency(&l);
}
