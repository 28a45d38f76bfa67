/* pg-apply-floor: the floor of the PostgreSQL applier benchmark (issue 17; bench/pg_apply.sh). A bare program that
 * sends the final upserts of the applier's workload (key i % keys at version i / keys + 1, ~90-byte JSON values, as
 * bench/apply.sh produces them) into a table shaped like the applier's `entities`, in batches of a given size, one
 * transaction per batch, with no log, no decoding and no bookkeeping. It also measures the ways a batch can be
 * written, which is how the applier's PostgreSQL store chose its own (consumer/sync/apply_pg.c):
 *   copy-binary  COPY of the batch into a temporary table in COPY's binary format, then one INSERT ... SELECT ...
 *                ON CONFLICT (key) DO UPDATE and COMMIT: what the applier does, and the floor it is held to
 *   copy         the same with COPY's text format
 *   unnest       one INSERT ... SELECT FROM unnest($1::text[], ...) ON CONFLICT (key) DO UPDATE, the columns sent
 *                as binary arrays, pipelined with BEGIN and COMMIT: one round trip per batch
 *   pipeline     one prepared INSERT ... ON CONFLICT per row, all of a batch in one pipeline with COMMIT
 *   copy-final   COPY of the final rows (one per key) into the empty table, one transaction: the fastest way in
 * Prints one JSON object. Every method checks that the table ends with one row per key at its last version. */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/base/clock.h"

#define VALUE_BYTES_MAX 128
#define KEY_BYTES_MAX   32
#define COLUMNS         10

static const char usage[] =
        "usage: pg-apply-floor --conninfo CONNINFO [--records N] [--keys K] [--batch B]\n"
        "                      [--method copy-binary|copy|unnest|pipeline|copy-final] [--schema NAME]\n"
        "                      [--label TEXT]\n"
        "Writes N records over K keys (defaults 2000000, 200000) in transactions of B records (10000) into\n"
        "SCHEMA.entities (floor), created fresh; prints one JSON object with records/s.\n";

struct floor_args {
	const char *conninfo;
	const char *method;
	const char *schema;
	const char *label;
	uint64_t records;
	uint64_t keys;
	uint64_t batch;
};

/* A growing byte buffer; the arrays of a batch are built in these and reused. */
struct buf {
	char *p;
	size_t len;
	size_t cap;
};

static void buf_need(struct buf *b, size_t more)
{
	if (b->len + more <= b->cap)
		return;
	b->cap = (b->len + more) * 2;
	b->p = realloc(b->p, b->cap);
	if (b->p == NULL) {
		fprintf(stderr, "pg-apply-floor: out of memory\n");
		exit(1);
	}
}

static void buf_put(struct buf *b, const void *p, size_t len)
{
	buf_need(b, len);
	memcpy(b->p + b->len, p, len);
	b->len += len;
}

static void buf_u32(struct buf *b, uint32_t v)
{
	v = htonl(v);
	buf_put(b, &v, 4);
}

static void buf_u64(struct buf *b, uint64_t v)
{
	buf_u32(b, (uint32_t)(v >> 32));
	buf_u32(b, (uint32_t)v);
}

/* Binary array header (array_send): 1 dimension, no NULLs, element type, count, lower bound 1. */
static void array_start(struct buf *b, uint32_t elem_oid, uint32_t count)
{
	b->len = 0;
	buf_u32(b, 1);
	buf_u32(b, 0);
	buf_u32(b, elem_oid);
	buf_u32(b, count);
	buf_u32(b, 1);
}

static void die(PGconn *c, const char *what)
{
	fprintf(stderr, "pg-apply-floor: %s: %s", what, PQerrorMessage(c));
	exit(1);
}

static void exec_ok(PGconn *c, const char *sql)
{
	PGresult *r = PQexec(c, sql);

	if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
		die(c, sql);
	PQclear(r);
}

/* Record i of the workload, as bench/apply.sh writes it. */
static int key_of(const struct floor_args *a, uint64_t i, char *out)
{
	return snprintf(out, KEY_BYTES_MAX, "customer-%07" PRIu64, i % a->keys);
}

static int value_of(const struct floor_args *a, uint64_t i, char *out)
{
	return snprintf(out, VALUE_BYTES_MAX,
	                "{\"id\":%" PRIu64 ",\"status\":\"active\",\"plan\":\"pro\",\"seq\":%" PRIu64 "}", i % a->keys,
	                i);
}

#define UPSERT_SET                                                                                              \
	" ON CONFLICT (key) DO UPDATE SET version = excluded.version, value = excluded.value, deleted = false," \
	" deleted_at_ms = NULL, origin = excluded.origin, topic = excluded.topic, \"partition\" = "             \
	"excluded.\"partition\","                                                                               \
	" \"offset\" = excluded.\"offset\", applied_at_ms = excluded.applied_at_ms"

static void schema_create(PGconn *c, const struct floor_args *a)
{
	char sql[2048];

	snprintf(sql, sizeof(sql),
	         "SET client_min_messages = warning; DROP SCHEMA IF EXISTS %s CASCADE; CREATE SCHEMA %s; SET "
	         "search_path = %s;"
	         "CREATE TABLE entities (key text PRIMARY KEY, version bigint NOT NULL, value jsonb,"
	         " deleted boolean NOT NULL, deleted_at_ms bigint, origin text, topic text, \"partition\" integer,"
	         " \"offset\" bigint, applied_at_ms bigint);"
	         "CREATE TEMP TABLE batch (key text, version bigint, value jsonb, \"partition\" integer, \"offset\" "
	         "bigint)"
	         " ON COMMIT DELETE ROWS",
	         a->schema, a->schema, a->schema);
	exec_ok(c, sql);
}

/* ---- unnest: one statement per batch, the columns as binary arrays ---- */

static void batch_unnest(PGconn *c, const struct floor_args *a, uint64_t first, uint64_t n, int64_t now_ms,
                         struct buf *cols)
{
	static const char sql[] =
	        "INSERT INTO entities (key, version, value, deleted, deleted_at_ms, origin, topic, \"partition\","
	        " \"offset\", applied_at_ms) SELECT k, v, d, false, NULL, 'live', 'orders', p, o, $6"
	        " FROM unnest($1::text[], $2::int8[], $3::jsonb[], $4::int4[], $5::int8[]) AS t(k, v, d, p, "
	        "o)" UPSERT_SET;
	const char *values[6];
	int lengths[6], formats[6] = {1, 1, 1, 1, 1, 1};
	uint64_t now_be = 0;
	PGresult *r;

	array_start(&cols[0], 25, (uint32_t)n);
	array_start(&cols[1], 20, (uint32_t)n);
	array_start(&cols[2], 3802, (uint32_t)n);
	array_start(&cols[3], 23, (uint32_t)n);
	array_start(&cols[4], 20, (uint32_t)n);
	for (uint64_t i = first; i < first + n; i++) {
		char key[KEY_BYTES_MAX], value[VALUE_BYTES_MAX];
		int kl = key_of(a, i, key), vl = value_of(a, i, value);

		buf_u32(&cols[0], (uint32_t)kl);
		buf_put(&cols[0], key, (size_t)kl);
		buf_u32(&cols[1], 8);
		buf_u64(&cols[1], i / a->keys + 1);
		buf_u32(&cols[2], (uint32_t)vl + 1);
		buf_put(&cols[2], "\x01", 1); /* jsonb's binary form: version 1, then the text */
		buf_put(&cols[2], value, (size_t)vl);
		buf_u32(&cols[3], 4);
		buf_u32(&cols[3], (uint32_t)(i % 4));
		buf_u32(&cols[4], 8);
		buf_u64(&cols[4], i);
	}
	for (int i = 0; i < 5; i++) {
		values[i] = cols[i].p;
		lengths[i] = (int)cols[i].len;
	}
	now_be = ((uint64_t)htonl((uint32_t)now_ms) << 32) | htonl((uint32_t)((uint64_t)now_ms >> 32));
	values[5] = (const char *)&now_be;
	lengths[5] = 8;
	if (!PQsendQueryParams(c, "BEGIN", 0, NULL, NULL, NULL, NULL, 0) ||
	    !PQsendQueryParams(c, sql, 6, NULL, values, lengths, formats, 0) ||
	    !PQsendQueryParams(c, "COMMIT", 0, NULL, NULL, NULL, NULL, 0) || !PQpipelineSync(c))
		die(c, "send a batch");
	for (int i = 0; i < 3; i++) {
		r = PQgetResult(c);
		if (PQresultStatus(r) != PGRES_COMMAND_OK)
			die(c, "batch");
		PQclear(r);
		PQclear(PQgetResult(c)); /* the NULL after each statement's result */
	}
	r = PQgetResult(c);
	if (PQresultStatus(r) != PGRES_PIPELINE_SYNC)
		die(c, "pipeline sync");
	PQclear(r);
}

/* COPY data (text or binary, as copy_sql says) into a table, inside the caller's transaction. */
static void copy_in(PGconn *c, const char *copy_sql, const struct buf *data)
{
	PGresult *r = PQexec(c, copy_sql);

	if (PQresultStatus(r) != PGRES_COPY_IN)
		die(c, "COPY");
	PQclear(r);
	if (PQputCopyData(c, data->p, (int)data->len) != 1 || PQputCopyEnd(c, NULL) != 1)
		die(c, "COPY data");
	r = PQgetResult(c);
	if (PQresultStatus(r) != PGRES_COMMAND_OK)
		die(c, "COPY end");
	PQclear(r);
}

/* The rows COPYed into the temporary table batch go into entities, newer versions only, and the transaction
 * commits. */
static void upsert_batch_and_commit(PGconn *c, int64_t now_ms)
{
	char sql[1024];

	snprintf(sql, sizeof(sql),
	         "INSERT INTO entities (key, version, value, deleted, deleted_at_ms, origin, topic, \"partition\","
	         " \"offset\", applied_at_ms) SELECT key, version, value, false, NULL, 'live', 'orders', \"partition\","
	         " \"offset\", %lld FROM batch" UPSERT_SET ";COMMIT",
	         (long long)now_ms);
	exec_ok(c, sql);
}

/* ---- copy: COPY the batch into a temporary table, then one INSERT ... SELECT ---- */

static void batch_copy(PGconn *c, const struct floor_args *a, uint64_t first, uint64_t n, int64_t now_ms,
                       struct buf *text)
{
	text->len = 0;
	for (uint64_t i = first; i < first + n; i++) {
		char key[KEY_BYTES_MAX], value[VALUE_BYTES_MAX], line[256];
		int len;

		key_of(a, i, key);
		value_of(a, i, value);
		len = snprintf(line, sizeof(line), "%s\t%" PRIu64 "\t%s\t%" PRIu64 "\t%" PRIu64 "\n", key,
		               i / a->keys + 1, value, i % 4, i);
		buf_put(text, line, (size_t)len);
	}
	exec_ok(c, "BEGIN");
	copy_in(c, "COPY batch FROM STDIN", text);
	upsert_batch_and_commit(c, now_ms);
}

/* ---- copy-binary: as copy, in COPY's binary format (no escaping, no number parsing) ---- */

static void buf_u16(struct buf *b, uint16_t v)
{
	v = htons(v);
	buf_put(b, &v, 2);
}

static void batch_copy_binary(PGconn *c, const struct floor_args *a, uint64_t first, uint64_t n, int64_t now_ms,
                              struct buf *data)
{
	data->len = 0;
	buf_put(data, "PGCOPY\n\377\r\n\0", 11);
	buf_u32(data, 0);
	buf_u32(data, 0);
	for (uint64_t i = first; i < first + n; i++) {
		char key[KEY_BYTES_MAX], value[VALUE_BYTES_MAX];
		int kl = key_of(a, i, key), vl = value_of(a, i, value);

		buf_u16(data, 5);
		buf_u32(data, (uint32_t)kl);
		buf_put(data, key, (size_t)kl);
		buf_u32(data, 8);
		buf_u64(data, i / a->keys + 1);
		buf_u32(data, (uint32_t)vl + 1);
		buf_put(data, "\x01", 1);
		buf_put(data, value, (size_t)vl);
		buf_u32(data, 4);
		buf_u32(data, (uint32_t)(i % 4));
		buf_u32(data, 8);
		buf_u64(data, i);
	}
	buf_u16(data, 0xffff);
	exec_ok(c, "BEGIN");
	copy_in(c, "COPY batch FROM STDIN (FORMAT binary)", data);
	upsert_batch_and_commit(c, now_ms);
}

/* ---- pipeline: one prepared statement per row ---- */

static void batch_pipeline(PGconn *c, const struct floor_args *a, uint64_t first, uint64_t n, int64_t now_ms)
{
	PGresult *r;

	if (!PQsendQueryParams(c, "BEGIN", 0, NULL, NULL, NULL, NULL, 0))
		die(c, "BEGIN");
	for (uint64_t i = first; i < first + n; i++) {
		char key[KEY_BYTES_MAX], value[VALUE_BYTES_MAX], version[24], partition[8], offset[24], now[24];
		const char *values[6] = {key, version, value, partition, offset, now};

		key_of(a, i, key);
		value_of(a, i, value);
		snprintf(version, sizeof(version), "%" PRIu64, i / a->keys + 1);
		snprintf(partition, sizeof(partition), "%" PRIu64, i % 4);
		snprintf(offset, sizeof(offset), "%" PRIu64, i);
		snprintf(now, sizeof(now), "%lld", (long long)now_ms);
		if (!PQsendQueryPrepared(c, "upsert", 6, values, NULL, NULL, 0))
			die(c, "send a row");
	}
	if (!PQsendQueryParams(c, "COMMIT", 0, NULL, NULL, NULL, NULL, 0) || !PQpipelineSync(c))
		die(c, "COMMIT");
	for (uint64_t i = 0; i < n + 2; i++) {
		r = PQgetResult(c);
		if (PQresultStatus(r) != PGRES_COMMAND_OK)
			die(c, "row");
		PQclear(r);
		PQclear(PQgetResult(c));
	}
	r = PQgetResult(c);
	if (PQresultStatus(r) != PGRES_PIPELINE_SYNC)
		die(c, "pipeline sync");
	PQclear(r);
}

/* ---- copy-final: the last version of every key, COPY into the empty table ---- */

static void final_copy(PGconn *c, const struct floor_args *a, int64_t now_ms, struct buf *text)
{
	uint64_t first = a->records > a->keys ? a->records - a->keys : 0;

	text->len = 0;
	for (uint64_t i = first; i < a->records; i++) {
		char key[KEY_BYTES_MAX], value[VALUE_BYTES_MAX], line[320];
		int len;

		key_of(a, i, key);
		value_of(a, i, value);
		len = snprintf(line, sizeof(line),
		               "%s\t%" PRIu64 "\t%s\tf\t\\N\tlive\torders\t%" PRIu64 "\t%" PRIu64 "\t%lld\n", key,
		               i / a->keys + 1, value, i % 4, i, (long long)now_ms);
		buf_put(text, line, (size_t)len);
	}
	exec_ok(c, "BEGIN");
	copy_in(c, "COPY entities FROM STDIN", text);
	exec_ok(c, "COMMIT");
}

static int64_t query_int(PGconn *c, const char *sql)
{
	PGresult *r = PQexec(c, sql);
	int64_t v;

	if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1)
		die(c, sql);
	v = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
	PQclear(r);
	return v;
}

static int parse_u64(const char *s, uint64_t *out)
{
	char *end;

	errno = 0;
	*out = strtoull(s, &end, 10);
	return errno != 0 || end == s || *end != '\0' || s[0] == '-' || *out == 0 ? -EINVAL : 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
	        {"conninfo", required_argument, NULL, 'c'},
	        {"records", required_argument, NULL, 'n'},
	        {"keys", required_argument, NULL, 'k'},
	        {"batch", required_argument, NULL, 'b'},
	        {"method", required_argument, NULL, 'm'},
	        {"schema", required_argument, NULL, 's'},
	        {"label", required_argument, NULL, 'l'},
	        {"help", no_argument, NULL, 'h'},
	        {NULL, 0, NULL, 0},
	};
	struct floor_args a = {
	        .method = "unnest", .schema = "floor", .label = "", .records = 2000000, .keys = 200000, .batch = 10000};
	struct buf bufs[COLUMNS] = {{0}};
	uint64_t transactions = 0;
	int64_t start_ns, now_ms, want;
	double seconds;
	PGconn *c;
	int opt;

	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		int bad = 0;

		switch (opt) {
		case 'c':
			a.conninfo = optarg;
			break;
		case 'n':
			bad = parse_u64(optarg, &a.records);
			break;
		case 'k':
			bad = parse_u64(optarg, &a.keys);
			break;
		case 'b':
			bad = parse_u64(optarg, &a.batch);
			break;
		case 'm':
			a.method = optarg;
			break;
		case 's':
			a.schema = optarg;
			break;
		case 'l':
			a.label = optarg;
			break;
		case 'h':
			fputs(usage, stdout);
			return 0;
		default:
			bad = 1;
		}
		if (bad) {
			fprintf(stderr, "pg-apply-floor: bad value '%s'\n%s", optarg ? optarg : "", usage);
			return 2;
		}
	}
	if (a.conninfo == NULL ||
	    (strcmp(a.method, "unnest") != 0 && strcmp(a.method, "copy") != 0 && strcmp(a.method, "copy-binary") != 0 &&
	     strcmp(a.method, "pipeline") != 0 && strcmp(a.method, "copy-final") != 0)) {
		fputs(usage, stderr);
		return 2;
	}
	c = PQconnectdb(a.conninfo);
	if (PQstatus(c) != CONNECTION_OK)
		die(c, "connect");
	schema_create(c, &a);
	if (strcmp(a.method, "pipeline") == 0) {
		PGresult *r =
		        PQprepare(c, "upsert",
		                  "INSERT INTO entities (key, version, value, deleted, deleted_at_ms, origin, topic,"
		                  " \"partition\", \"offset\", applied_at_ms) VALUES ($1, $2, $3, false, NULL, 'live',"
		                  " 'orders', $4, $5, $6)" UPSERT_SET,
		                  6, NULL);

		if (PQresultStatus(r) != PGRES_COMMAND_OK)
			die(c, "prepare");
		PQclear(r);
	}
	if ((strcmp(a.method, "unnest") == 0 || strcmp(a.method, "pipeline") == 0) && !PQenterPipelineMode(c))
		die(c, "pipeline mode");
	start_ns = sl_clock_mono_ns();
	now_ms = sl_clock_wall_ms();
	if (strcmp(a.method, "copy-final") == 0) {
		final_copy(c, &a, now_ms, &bufs[0]);
		transactions = 1;
	} else {
		for (uint64_t first = 0; first < a.records; first += a.batch, transactions++) {
			uint64_t n = a.records - first < a.batch ? a.records - first : a.batch;

			if (strcmp(a.method, "unnest") == 0)
				batch_unnest(c, &a, first, n, now_ms, bufs);
			else if (strcmp(a.method, "copy") == 0)
				batch_copy(c, &a, first, n, now_ms, &bufs[0]);
			else if (strcmp(a.method, "copy-binary") == 0)
				batch_copy_binary(c, &a, first, n, now_ms, &bufs[0]);
			else
				batch_pipeline(c, &a, first, n, now_ms);
		}
	}
	seconds = (double)(sl_clock_mono_ns() - start_ns) / 1e9;
	if (PQpipelineStatus(c) != PQ_PIPELINE_OFF)
		PQexitPipelineMode(c);
	want = (int64_t)(a.records < a.keys ? a.records : a.keys);
	{
		char sql[256];

		snprintf(sql, sizeof(sql),
		         "SELECT count(*) FROM entities WHERE \"offset\" >= %" PRIu64
		         " AND version = \"offset\" / %" PRIu64 " + 1",
		         a.records - (uint64_t)want, a.keys);
		if (query_int(c, "SELECT count(*) FROM entities") != want || query_int(c, sql) != want) {
			fprintf(stderr, "pg-apply-floor: the table does not hold the last version of every key\n");
			return 1;
		}
	}
	{
		uint64_t rows = strcmp(a.method, "copy-final") == 0 ? (uint64_t)want : a.records;

		printf("{\"method\":\"%s\",\"label\":\"%s\",\"records\":%" PRIu64 ",\"keys\":%" PRIu64
		       ",\"batch\":%" PRIu64 ",\"transactions\":%" PRIu64 ",\"seconds\":%.3f,\"records_per_s\":%.0f}\n",
		       a.method, a.label, rows, a.keys, a.batch, transactions, seconds, (double)rows / seconds);
	}
	PQfinish(c);
	for (int i = 0; i < COLUMNS; i++)
		free(bufs[i].p);
	return 0;
}
