/* The PostgreSQL link of the sync layer (pg_link.h): binary encodings, connecting and reconnecting, pipelines of
 * checked statements, COPY in, and the errno of a SQLSTATE.
 *
 * A pipeline goes: statements queued (sl_pg_link_send, each with the check of its result) --sl_pg_link_run-->
 * Sync, flush (reading what arrives meanwhile into libpq's buffer), then per statement its result and libpq's
 * NULL after it, then PGRES_PIPELINE_SYNC. After a failed statement the server skips the rest until the Sync
 * (PGRES_PIPELINE_ABORTED), and an explicit transaction stays aborted until its ROLLBACK. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "proto/base/clock.h"
#include "consumer/sync/apply.h"
#include "consumer/sync/pg_link.h"
#include "consumer/client/client_impl.h"

/* Reconnect backoff: from 100 ms, doubling up to 2 s, until the reconnect timeout. */
#define RECONNECT_BACKOFF_MS_MIN 100
#define RECONNECT_BACKOFF_MS_MAX 2000
/* Binary parameters at most per statement (the widest statement of the stores has 11). */
#define PARAMS_MAX               16

/* ---- binary encodings ---- */

void sl_pg_buf_put(struct sl_pg_buf *b, const void *p, size_t len)
{
	if (b->failed || len == 0) /* nothing to copy: memcpy must not see an empty buffer's NULL */
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

void sl_pg_buf_u16(struct sl_pg_buf *b, uint16_t v)
{
	uint8_t x[2] = {(uint8_t)(v >> 8), (uint8_t)v};

	sl_pg_buf_put(b, x, 2);
}

void sl_pg_buf_u32(struct sl_pg_buf *b, uint32_t v)
{
	uint8_t x[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};

	sl_pg_buf_put(b, x, 4);
}

void sl_pg_buf_u64(struct sl_pg_buf *b, uint64_t v)
{
	sl_pg_buf_u32(b, (uint32_t)(v >> 32));
	sl_pg_buf_u32(b, (uint32_t)v);
}

void sl_pg_buf_reset(struct sl_pg_buf *b)
{
	b->len = 0;
	b->failed = false;
}

void sl_pg_buf_free(struct sl_pg_buf *b)
{
	free(b->p);
	memset(b, 0, sizeof(*b));
}

void sl_pg_field_bytes(struct sl_pg_buf *b, const void *p, size_t len)
{
	sl_pg_buf_u32(b, (uint32_t)len);
	sl_pg_buf_put(b, p, len);
}

void sl_pg_field_null(struct sl_pg_buf *b)
{
	sl_pg_buf_u32(b, UINT32_MAX); /* -1 */
}

void sl_pg_field_i64(struct sl_pg_buf *b, int64_t v)
{
	sl_pg_buf_u32(b, 8);
	sl_pg_buf_u64(b, (uint64_t)v);
}

void sl_pg_field_i32(struct sl_pg_buf *b, int32_t v)
{
	sl_pg_buf_u32(b, 4);
	sl_pg_buf_u32(b, (uint32_t)v);
}

void sl_pg_field_bool(struct sl_pg_buf *b, bool v)
{
	uint8_t x = v;

	sl_pg_buf_u32(b, 1);
	sl_pg_buf_put(b, &x, 1);
}

void sl_pg_field_text(struct sl_pg_buf *b, const char *s)
{
	sl_pg_field_bytes(b, s, strlen(s));
}

void sl_pg_field_jsonb(struct sl_pg_buf *b, const void *p, size_t len)
{
	sl_pg_buf_u32(b, (uint32_t)len + 1);
	sl_pg_buf_put(b, "\x01", 1);
	sl_pg_buf_put(b, p, len);
}

void sl_pg_array_start(struct sl_pg_buf *b, uint32_t oid, uint32_t count)
{
	sl_pg_buf_reset(b);
	sl_pg_buf_u32(b, 1); /* dimensions */
	sl_pg_buf_u32(b, 0); /* no NULLs */
	sl_pg_buf_u32(b, oid);
	sl_pg_buf_u32(b, count);
	sl_pg_buf_u32(b, 1); /* lower bound */
}

void sl_pg_copy_row(struct sl_pg_buf *b, uint16_t fields)
{
	if (b->len == 0) {
		sl_pg_buf_put(b, "PGCOPY\n\377\r\n\0", 11);
		sl_pg_buf_u32(b, 0); /* flags */
		sl_pg_buf_u32(b, 0); /* header extension length */
	}
	sl_pg_buf_u16(b, fields);
}

void sl_pg_copy_end(struct sl_pg_buf *b)
{
	sl_pg_buf_u16(b, 0xffff);
}

int64_t sl_pg_be64(const char *p)
{
	const uint8_t *u = (const uint8_t *)p;
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = v << 8 | u[i];
	return (int64_t)v;
}

/* ---- errors ---- */

static const char *server_message(const PGresult *res, PGconn *conn)
{
	const char *m = res != NULL ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;

	if (m == NULL && conn != NULL)
		m = PQerrorMessage(conn);
	return m != NULL && m[0] != '\0' ? m : "no message from the server";
}

/* Error lines are one line: libpq's messages end with a newline and may hold more. */
static void error_tidy(struct sl_pg_link *l)
{
	size_t len = strlen(l->error);

	for (size_t i = 0; i < len; i++)
		if (l->error[i] == '\n' || l->error[i] == '\r' || l->error[i] == '\t')
			l->error[i] = ' ';
	while (len > 0 && l->error[len - 1] == ' ')
		l->error[--len] = '\0';
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

int sl_pg_link_fail_result(struct sl_pg_link *l, const PGresult *res, const char *what, bool of_records)
{
	const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
	const char *detail = PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL);
	int rc = errno_of_sqlstate(state);
	const char *hint = "";

	snprintf(l->sqlstate, sizeof(l->sqlstate), "%s", state != NULL ? state : "");
	if (rc == -ENOSPC)
		hint = ": free disk space on the database server, then start again";
	snprintf(l->error, sizeof(l->error), "%s: %s: %s%s%s (SQLSTATE %s)%s", l->label, what,
	         server_message(res, l->conn), detail != NULL ? ": " : "", detail != NULL ? detail : "",
	         state != NULL ? state : "none", hint);
	error_tidy(l);
	if (rc == SL_APPLY_REJECTED && !of_records)
		return -EIO;
	return rc;
}

int sl_pg_link_fail(struct sl_pg_link *l, const char *what)
{
	l->sqlstate[0] = '\0';
	snprintf(l->error, sizeof(l->error), "%s: %s: lost the connection: %s", l->label, what,
	         server_message(NULL, l->conn));
	error_tidy(l);
	if (l->conn != NULL && PQstatus(l->conn) != CONNECTION_OK)
		return -ECONNRESET;
	/* libpq failed without losing the connection (out of memory, a protocol surprise): start afresh. */
	PQfinish(l->conn);
	l->conn = NULL;
	return -EIO;
}

static int fail_memory(struct sl_pg_link *l, const char *what)
{
	snprintf(l->error, sizeof(l->error), "%s: %s: out of memory", l->label, what);
	return -ENOMEM;
}

/* ---- nonblocking sends and waits ---- */

/* Wait until the socket is readable (or writable, when write is set); read what arrived into libpq's buffer. */
static int link_wait(struct sl_pg_link *l, bool write, const char *what)
{
	struct pollfd pfd = {.fd = PQsocket(l->conn), .events = POLLIN | (write ? POLLOUT : 0)};

	if (pfd.fd < 0)
		return sl_pg_link_fail(l, what);
	if (poll(&pfd, 1, -1) < 0 && errno != EINTR)
		return sl_pg_link_fail(l, what);
	if ((pfd.revents & (POLLIN | POLLERR | POLLHUP)) != 0 && !PQconsumeInput(l->conn))
		return sl_pg_link_fail(l, what);
	return 0;
}

/* Send everything libpq holds, reading meanwhile. */
static int link_flush(struct sl_pg_link *l, const char *what)
{
	for (;;) {
		int rc = PQflush(l->conn);

		if (rc == 0)
			return 0;
		if (rc < 0)
			return sl_pg_link_fail(l, what);
		rc = link_wait(l, true, what);
		if (rc != 0)
			return rc;
	}
}

/* The next result, waiting for it; NULL with *rc set when the link failed. A NULL with *rc 0 is libpq's end of
 * one statement's results. */
static PGresult *link_result(struct sl_pg_link *l, const char *what, int *rc)
{
	*rc = 0;
	while (PQisBusy(l->conn)) {
		*rc = link_wait(l, false, what);
		if (*rc != 0)
			return NULL;
	}
	return PQgetResult(l->conn);
}

/* ---- connecting ---- */

int sl_pg_link_init(struct sl_pg_link *l, const struct sl_pg_link_options *o)
{
	memset(l, 0, sizeof(*l));
	snprintf(l->label, sizeof(l->label), "%s", o->label);
	snprintf(l->application_name, sizeof(l->application_name), "%s",
	         o->application_name != NULL ? o->application_name : "synclog");
	l->reconnect_timeout_ms = o->reconnect_timeout_ms;
	l->session_cb = o->session_cb;
	l->session_cb_arg = o->session_cb_arg;
	l->down_since_ms = -1;
	if (o->conninfo == NULL || strlen(o->conninfo) >= sizeof(l->conninfo)) {
		snprintf(l->error, sizeof(l->error), "%s: the connection string must be shorter than %d bytes",
		         l->label, SL_PG_CONNINFO_BYTES_MAX);
		return -EINVAL;
	}
	snprintf(l->conninfo, sizeof(l->conninfo), "%s", o->conninfo);
	return 0;
}

int sl_pg_link_exec(struct sl_pg_link *l, const char *sql, const char *what)
{
	PGresult *res = PQexec(l->conn, sql);
	int rc = 0;

	if (res == NULL)
		rc = sl_pg_link_fail(l, what);
	else if (PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK)
		rc = sl_pg_link_fail_result(l, res, what, false);
	PQclear(res);
	return rc;
}

int sl_pg_link_prepare(struct sl_pg_link *l, const char *name, const char *sql, int n, const Oid *types)
{
	PGresult *res = PQprepare(l->conn, name, sql, n, types);
	int rc = 0;

	if (res == NULL)
		rc = sl_pg_link_fail(l, "prepare a statement");
	else if (PQresultStatus(res) != PGRES_COMMAND_OK)
		rc = sl_pg_link_fail_result(l, res, "prepare a statement", false);
	PQclear(res);
	return rc;
}

int sl_pg_link_connect(struct sl_pg_link *l)
{
	/* Defaults first, then the user's string (which may override them), then what the sync layer needs: its
	 * bytes are UTF-8. */
	const char *const keys[] = {"connect_timeout", "fallback_application_name", "dbname", "client_encoding", NULL};
	const char *const vals[] = {"10", l->application_name, l->conninfo, "UTF8", NULL};
	const char *encoding;
	int rc;

	PQfinish(l->conn);
	l->conn = PQconnectdbParams(keys, vals, 1);
	if (l->conn == NULL)
		return fail_memory(l, "connect");
	if (PQstatus(l->conn) != CONNECTION_OK) {
		snprintf(l->error, sizeof(l->error), "%s: cannot connect: %s", l->label, server_message(NULL, l->conn));
		error_tidy(l);
		PQfinish(l->conn);
		l->conn = NULL;
		return -ECONNREFUSED;
	}
	encoding = PQparameterStatus(l->conn, "server_encoding");
	if (encoding == NULL || (strcmp(encoding, "UTF8") != 0 && strcmp(encoding, "SQL_ASCII") != 0)) {
		snprintf(l->error, sizeof(l->error),
		         "%s: the database's encoding is %s; synclog stores keys and values as UTF-8: use a database "
		         "created with ENCODING 'UTF8'",
		         l->label, encoding != NULL ? encoding : "unknown");
		return -EINVAL;
	}
	/* CREATE ... IF NOT EXISTS says NOTICE for what exists: not worth a line on the operator's terminal. */
	rc = sl_pg_link_exec(l, "SET client_min_messages = warning", "set up the session");
	if (rc == 0 && l->session_cb != NULL)
		rc = l->session_cb(l, l->session_cb_arg);
	if (rc == 0 && PQsetnonblocking(l->conn, 1) != 0)
		rc = sl_pg_link_fail(l, "switch to nonblocking mode");
	return rc;
}

bool sl_pg_link_up(const struct sl_pg_link *l)
{
	return l->conn != NULL && PQstatus(l->conn) == CONNECTION_OK;
}

/* Sleep; false when a signal cut it short (the caller stops waiting: the process is asked to stop). */
static bool sleep_ms(uint32_t ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000};

	return nanosleep(&ts, NULL) == 0;
}

int sl_pg_link_ready(struct sl_pg_link *l)
{
	uint32_t backoff_ms = RECONNECT_BACKOFF_MS_MIN;
	int rc;

	if (sl_pg_link_up(l))
		return 0;
	if (l->down_since_ms < 0)
		l->down_since_ms = sl_clock_mono_ms();
	for (;;) {
		rc = sl_pg_link_connect(l);
		if (rc == 0) {
			l->down_since_ms = -1;
			return 0;
		}
		if (rc == -EINVAL || sl_clock_mono_ms() - l->down_since_ms >= (int64_t)l->reconnect_timeout_ms)
			break;
		if (!sleep_ms(backoff_ms)) {
			snprintf(l->error, sizeof(l->error), "%s: reconnecting was interrupted by a signal", l->label);
			return -EINTR;
		}
		backoff_ms = backoff_ms * 2 > RECONNECT_BACKOFF_MS_MAX ? RECONNECT_BACKOFF_MS_MAX : backoff_ms * 2;
	}
	if (rc != -EINVAL) {
		size_t len = strlen(l->error);

		snprintf(l->error + len, sizeof(l->error) - len, " (tried for %lld s; is the server up?)",
		         (long long)((sl_clock_mono_ms() - l->down_since_ms) / 1000));
	}
	return rc;
}

void sl_pg_link_close(struct sl_pg_link *l)
{
	PQfinish(l->conn);
	l->conn = NULL;
	free(l->steps);
	l->steps = NULL;
	l->step_count = l->step_cap = 0;
}

/* ---- pipelines ---- */

static int step_push(struct sl_pg_link *l, const struct sl_pg_step *step)
{
	if (l->step_count == l->step_cap) {
		uint32_t cap = l->step_cap ? l->step_cap * 2 : 16;
		struct sl_pg_step *steps = realloc(l->steps, cap * sizeof(*steps));

		if (steps == NULL)
			return fail_memory(l, step->what);
		l->steps = steps;
		l->step_cap = cap;
	}
	l->steps[l->step_count++] = *step;
	return 0;
}

static int pipeline_on(struct sl_pg_link *l, const char *what)
{
	if (!sl_pg_link_up(l))
		return sl_pg_link_fail(l, what);
	if (PQpipelineStatus(l->conn) == PQ_PIPELINE_OFF && !PQenterPipelineMode(l->conn))
		return sl_pg_link_fail(l, what);
	return 0;
}

int sl_pg_link_send(struct sl_pg_link *l, const char *name, int n, const char *const *values, const int *lengths,
                    bool results_binary, struct sl_pg_step step)
{
	static const int binary[PARAMS_MAX] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1};
	int rc = pipeline_on(l, step.what);

	SL_ASSERT(n <= PARAMS_MAX);
	if (rc != 0)
		return rc;
	if (!PQsendQueryPrepared(l->conn, name, n, values, lengths, binary, results_binary))
		return sl_pg_link_fail(l, step.what);
	return step_push(l, &step);
}

int sl_pg_link_send_sql(struct sl_pg_link *l, const char *sql, const char *what)
{
	struct sl_pg_step step = {.check = SL_PG_COMMAND, .what = what};
	int rc = pipeline_on(l, what);

	if (rc != 0)
		return rc;
	if (!PQsendQueryParams(l->conn, sql, 0, NULL, NULL, NULL, NULL, 0))
		return sl_pg_link_fail(l, what);
	return step_push(l, &step);
}

int sl_pg_link_send_prepare(struct sl_pg_link *l, const char *name, const char *sql, int n, const Oid *types)
{
	struct sl_pg_step step = {.check = SL_PG_COMMAND, .what = "prepare a statement"};
	int rc = pipeline_on(l, step.what);

	if (rc != 0)
		return rc;
	if (!PQsendPrepare(l->conn, name, sql, n, types))
		return sl_pg_link_fail(l, step.what);
	return step_push(l, &step);
}

int sl_pg_link_send_params(struct sl_pg_link *l, const char *sql, int n, const Oid *types, const char *const *values,
                           const int *lengths, bool results_binary, struct sl_pg_step step)
{
	static const int binary[PARAMS_MAX] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1};
	int rc = pipeline_on(l, step.what);

	SL_ASSERT(n <= PARAMS_MAX);
	if (rc != 0)
		return rc;
	if (!PQsendQueryParams(l->conn, sql, n, types, values, lengths, binary, results_binary))
		return sl_pg_link_fail(l, step.what);
	return step_push(l, &step);
}

static int step_check(struct sl_pg_link *l, const struct sl_pg_step *st, const PGresult *res)
{
	const char *tuples = PQcmdTuples((PGresult *)res);
	int64_t n = tuples[0] != '\0' ? strtoll(tuples, NULL, 10) : 0;

	switch (st->check) {
	case SL_PG_COMMAND:
	case SL_PG_RECORD_WRITE:
		return 0;
	case SL_PG_ROWS_WRITTEN:
		if (n == st->expect)
			return 0;
		snprintf(l->error, sizeof(l->error),
		         "%s: %s: %lld rows written where %lld were sent: the tables changed under the applier's lock; "
		         "run "
		         "one applier per schema",
		         l->label, st->what, (long long)n, (long long)st->expect);
		return -EIO;
	case SL_PG_ONE_ROW:
		if (n == 1)
			return 0;
		snprintf(l->error, sizeof(l->error), "%s: %s: the stored value moved", l->label, st->what);
		return -ESTALE;
	case SL_PG_COUNT:
		*(uint64_t *)st->out += (uint64_t)n;
		return 0;
	case SL_PG_FOUND:
		*(bool *)st->out = PQntuples(res) > 0;
		return 0;
	case SL_PG_ROWS:
		return st->rows_cb(res, st->out);
	case SL_PG_KEEP:
		return 0;
	}
	return 0;
}

int sl_pg_link_sync(struct sl_pg_link *l)
{
	int rc = 0;

	if (l->step_count == 0)
		return 0;
	if (!PQpipelineSync(l->conn))
		rc = sl_pg_link_fail(l, "send a pipeline");
	if (rc == 0)
		rc = link_flush(l, "send a pipeline");
	if (rc != 0)
		l->step_count = 0;
	return rc;
}

int sl_pg_link_run(struct sl_pg_link *l)
{
	int rc = sl_pg_link_sync(l);

	return rc != 0 ? rc : sl_pg_link_read(l);
}

int sl_pg_link_read(struct sl_pg_link *l)
{
	char first_error[SL_ERROR_BYTES] = "";
	int first = 0, rc = 0;
	PGresult *res;

	if (l->step_count == 0)
		return 0;
	for (uint32_t i = 0; rc == 0 && i < l->step_count; i++) {
		const struct sl_pg_step *st = &l->steps[i];
		ExecStatusType status;

		res = link_result(l, st->what, &rc);
		if (res == NULL) {
			if (rc == 0)
				rc = sl_pg_link_fail(l, st->what);
			break;
		}
		status = PQresultStatus(res);
		if (first == 0 && status == PGRES_FATAL_ERROR)
			first = sl_pg_link_fail_result(
			        l, res, st->what, st->check == SL_PG_RECORD_WRITE || st->check == SL_PG_ROWS_WRITTEN);
		else if (first == 0 && (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK))
			first = step_check(l, st, res);
		else if (first == 0 && status != PGRES_PIPELINE_ABORTED)
			first = sl_pg_link_fail_result(l, res, st->what, false);
		if (first != 0 && first_error[0] == '\0')
			snprintf(first_error, sizeof(first_error), "%s", l->error);
		if (st->check == SL_PG_KEEP && first == 0 && status == PGRES_TUPLES_OK) {
			PQclear(*(PGresult **)st->out);
			*(PGresult **)st->out = res; /* the caller's now */
			res = NULL;
		}
		PQclear(res);
		res = link_result(l, st->what, &rc); /* the end of this statement's results */
		if (res != NULL) {
			PQclear(res);
			rc = sl_pg_link_fail(l, st->what);
		}
	}
	if (rc == 0) {
		res = link_result(l, "end a pipeline", &rc);
		if (rc == 0 && (res == NULL || PQresultStatus(res) != PGRES_PIPELINE_SYNC))
			rc = sl_pg_link_fail(l, "end a pipeline");
		PQclear(res);
	}
	l->step_count = 0;
	if (rc != 0 && first != 0 && first_error[0] != '\0') {
		/* The link failed after a statement did: the statement's error says why (a shutdown, most often). */
		snprintf(l->error, sizeof(l->error), "%s", first_error);
		return rc;
	}
	return rc != 0 ? rc : first;
}

int sl_pg_link_copy_in(struct sl_pg_link *l, const char *sql, const void *data, size_t len, const char *what,
                       bool of_records)
{
	PGresult *res;
	int rc = 0, link = 0;

	SL_ASSERT(l->step_count == 0);
	if (!sl_pg_link_up(l) || !PQexitPipelineMode(l->conn) ||
	    !PQsendQueryParams(l->conn, sql, 0, NULL, NULL, NULL, NULL, 0))
		return sl_pg_link_fail(l, what);
	rc = link_flush(l, what);
	res = rc == 0 ? link_result(l, what, &rc) : NULL;
	if (res != NULL && PQresultStatus(res) == PGRES_COPY_IN) {
		PQclear(res);
		if (PQputCopyData(l->conn, data, (int)len) != 1 || PQputCopyEnd(l->conn, NULL) != 1)
			return sl_pg_link_fail(l, what);
		rc = link_flush(l, what);
		res = rc == 0 ? link_result(l, what, &rc) : NULL;
	}
	if (res == NULL && rc == 0)
		rc = sl_pg_link_fail(l, what);
	/* Read to the end of the results, a refusal included, so that the connection is idle again. */
	while (res != NULL) {
		if (rc == 0 && PQresultStatus(res) != PGRES_COMMAND_OK)
			rc = sl_pg_link_fail_result(l, res, what, of_records);
		PQclear(res);
		res = link_result(l, what, &link);
		if (link != 0)
			return rc != 0 ? rc : link;
	}
	return rc;
}
