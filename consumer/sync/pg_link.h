/* A PostgreSQL connection for the sync layer's stores and sources (libpq): connecting with a session set up by its
 * user, reconnecting with backoff between transactions, statements queued in a pipeline and read back in one round
 * trip with each result checked as its caller said, binary COPY in, and SQLSTATEs turned into errno values (a data
 * exception or a constraint is SL_APPLY_REJECTED: the record's fault). Everything is sent in nonblocking mode, so
 * that a large result can never stall a large request (libpq's advice for pipelines).
 *
 * Also the binary encodings the callers build their parameters and COPY rows with (PostgreSQL's send/recv
 * formats: big-endian integers, a 4-byte length before each field, -1 for NULL).
 *
 * Not installed: it includes libpq. Threads: a link belongs to one thread. */
#ifndef SL_CONSUMER_SYNC_PG_LINK_H
#define SL_CONSUMER_SYNC_PG_LINK_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "consumer/client/synclog.h"

/* Type OIDs (pg_type.dat) of the binary parameters and arrays. */
#define SL_PG_OID_BOOL        16
#define SL_PG_OID_BYTEA       17
#define SL_PG_OID_INT8        20
#define SL_PG_OID_INT4        23
#define SL_PG_OID_TEXT        25
#define SL_PG_OID_BYTEA_ARRAY 1001
#define SL_PG_OID_TEXT_ARRAY  1009
#define SL_PG_OID_JSONB       3802

/* ---- binary encodings, in growable buffers reused for the life of their owner ---- */

struct sl_pg_buf {
	char *p;
	size_t len;
	size_t cap;
	bool failed; /* an allocation failed: the content is incomplete (checked once, when it is sent) */
};

void sl_pg_buf_put(struct sl_pg_buf *b, const void *p, size_t len);
void sl_pg_buf_u16(struct sl_pg_buf *b, uint16_t v);
void sl_pg_buf_u32(struct sl_pg_buf *b, uint32_t v);
void sl_pg_buf_u64(struct sl_pg_buf *b, uint64_t v);
void sl_pg_buf_reset(struct sl_pg_buf *b);
void sl_pg_buf_free(struct sl_pg_buf *b);
/* A field of a COPY row or an array element: the 4-byte length, then the bytes (or -1 for NULL). */
void sl_pg_field_bytes(struct sl_pg_buf *b, const void *p, size_t len);
void sl_pg_field_null(struct sl_pg_buf *b);
void sl_pg_field_i64(struct sl_pg_buf *b, int64_t v);
void sl_pg_field_i32(struct sl_pg_buf *b, int32_t v);
void sl_pg_field_bool(struct sl_pg_buf *b, bool v);
void sl_pg_field_text(struct sl_pg_buf *b, const char *s);
/* jsonb's binary form: a version byte (1), then the JSON text. */
void sl_pg_field_jsonb(struct sl_pg_buf *b, const void *p, size_t len);
/* Empty b and start a one-dimensional array of count elements of type oid, without NULLs; fields follow. */
void sl_pg_array_start(struct sl_pg_buf *b, uint32_t oid, uint32_t count);
/* Start a row of fields of a binary COPY (with the 19-byte file header first when b is empty); end the rows with
 * sl_pg_copy_end. */
void sl_pg_copy_row(struct sl_pg_buf *b, uint16_t fields);
void sl_pg_copy_end(struct sl_pg_buf *b);
/* A big-endian integer of a binary result. */
int64_t sl_pg_be64(const char *p);

/* ---- the link ---- */

/* What a queued statement's result must be, and where it goes. */
enum sl_pg_check {
	SL_PG_COMMAND,      /* any success */
	SL_PG_RECORD_WRITE, /* a write of one record: a refusal (data exception, constraint) is the record's */
	SL_PG_ROWS_WRITTEN, /* a write of expect rows the caller kept: a refusal is one of theirs; a count that is
	                     * off is -EIO (the table changed under the caller's lock) */
	SL_PG_ONE_ROW,      /* a compare-and-set: exactly one row, else -ESTALE */
	SL_PG_COUNT,        /* rows changed, added to *(uint64_t *)out */
	SL_PG_FOUND,        /* *(bool *)out = the result has rows */
	SL_PG_ROWS,         /* rows_cb(result, out) reads the rows; its non-zero return is the pipeline's */
	SL_PG_KEEP,         /* the result itself goes to *(PGresult **)out, the caller's to PQclear */
};

typedef int (*sl_pg_rows_cb)(const PGresult *res, void *out);

struct sl_pg_step {
	enum sl_pg_check check;
	int64_t expect;
	void *out;
	sl_pg_rows_cb rows_cb;
	const char *what; /* for errors: "write the batch's entities" */
};

struct sl_pg_link;
/* Called on every new connection (the first and each reconnect), in blocking mode: session settings, temporary
 * tables, prepared statements. Returns 0 or a negative errno with the link's error set. */
typedef int (*sl_pg_session_cb)(struct sl_pg_link *l, void *cb_arg);

struct sl_pg_link_options {
	const char *conninfo; /* a libpq URI or key=value string */
	const char *label;    /* what errors name: "postgresql synclog" (a schema), "postgresql source t" */
	/* The session's application_name unless the connection string sets one: "synclog-apply", what an operator
	 * sees in pg_stat_activity. */
	const char *application_name;
	/* A lost connection is tried again for this long (from when it was lost) before a call fails. */
	uint32_t reconnect_timeout_ms;
	sl_pg_session_cb session_cb;
	void *session_cb_arg;
};

#define SL_PG_CONNINFO_BYTES_MAX 4096
#define SL_PG_LABEL_BYTES_MAX    128

struct sl_pg_link {
	PGconn *conn;
	char conninfo[SL_PG_CONNINFO_BYTES_MAX];
	char label[SL_PG_LABEL_BYTES_MAX];
	char application_name[SL_PG_LABEL_BYTES_MAX];
	uint32_t reconnect_timeout_ms;
	sl_pg_session_cb session_cb;
	void *session_cb_arg;
	int64_t down_since_ms;    /* monotonic; -1 while connected */
	struct sl_pg_step *steps; /* results expected from the pipeline, in order */
	uint32_t step_count;
	uint32_t step_cap;
	char sqlstate[6]; /* of the last failure the server reported ("" for one it did not) */
	char error[SL_ERROR_BYTES];
};

/* Set the link up (no connection yet). Returns 0 or -EINVAL with l->error set (a connection string too long). */
int sl_pg_link_init(struct sl_pg_link *l, const struct sl_pg_link_options *o);
/* One attempt to connect (client_encoding UTF8, a UTF-8 or SQL_ASCII database, NOTICEs off), then the session
 * callback, then nonblocking mode. Returns 0, -ECONNREFUSED (cannot connect), -EINVAL (a database that is not
 * UTF-8) or the callback's error. */
int sl_pg_link_connect(struct sl_pg_link *l);
/* Connected, or reconnected with backoff (100 ms doubling to 2 s) until the reconnect timeout since the
 * connection was lost; -EINTR when a signal cut a wait short. Only between transactions: a transaction does not
 * survive its connection. */
int sl_pg_link_ready(struct sl_pg_link *l);
bool sl_pg_link_up(const struct sl_pg_link *l);
/* In the session callback (blocking mode): run SQL without parameters; prepare a statement. */
int sl_pg_link_exec(struct sl_pg_link *l, const char *sql, const char *what);
int sl_pg_link_prepare(struct sl_pg_link *l, const char *name, const char *sql, int n, const Oid *types);
/* Queue a prepared statement (binary parameters; binary results when results_binary) or SQL without parameters
 * in the pipeline, with what its result must be. Returns 0 or a negative errno (the link failed). */
int sl_pg_link_send(struct sl_pg_link *l, const char *name, int n, const char *const *values, const int *lengths,
                    bool results_binary, struct sl_pg_step step);
int sl_pg_link_send_sql(struct sl_pg_link *l, const char *sql, const char *what);
/* Queue the preparation of a statement (outside the session callback: a connection set up already). */
int sl_pg_link_send_prepare(struct sl_pg_link *l, const char *name, const char *sql, int n, const Oid *types);
/* Queue SQL with n binary parameters of the given types (a NULL value is SQL NULL), parsed where it is sent: for
 * statements whose text is built at run time (a source's scans). Results as text unless results_binary. */
int sl_pg_link_send_params(struct sl_pg_link *l, const char *sql, int n, const Oid *types, const char *const *values,
                           const int *lengths, bool results_binary, struct sl_pg_step step);
/* Sync, send and read every queued result. Returns 0, or the errno of the first failure (the server skipped the
 * statements after it) with l->error set. */
int sl_pg_link_run(struct sl_pg_link *l);
/* sl_pg_link_run in two halves, so that two links' servers work at once: send the pipeline (0 or the errno of a
 * failed link, the pipeline then forgotten), and later read its results as sl_pg_link_run does. */
int sl_pg_link_sync(struct sl_pg_link *l);
int sl_pg_link_read(struct sl_pg_link *l);
/* COPY ... FROM STDIN of data (outside the pipeline: COPY cannot be pipelined), reading to the end of its
 * results so that the connection is idle again even after a refusal, which is of_records's when set. */
int sl_pg_link_copy_in(struct sl_pg_link *l, const char *sql, const void *data, size_t len, const char *what,
                       bool of_records);
/* Set l->error for a failed result (what failed, the server's message, SQLSTATE) and return its errno; a refusal
 * is SL_APPLY_REJECTED only when of_records, else -EIO. */
int sl_pg_link_fail_result(struct sl_pg_link *l, const PGresult *res, const char *what, bool of_records);
/* The link failed without a result (lost, or libpq refused): l->error says what; the next sl_pg_link_ready
 * reconnects. Returns -ECONNRESET (lost) or -EIO. */
int sl_pg_link_fail(struct sl_pg_link *l, const char *what);
void sl_pg_link_close(struct sl_pg_link *l);

#endif
