/* Internals shared by the client library's files: the connection (framing over a socket, the response arena),
 * error helpers and the assert. Not installed; users see only synclog.h. */
#ifndef SL_CONSUMER_CLIENT_IMPL_H
#define SL_CONSUMER_CLIENT_IMPL_H

#include <protobuf-c/protobuf-c.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "consumer/client/synclog.h"
#include "consumer/client/tls.h"
#include "consumer/client/transport.h"
#include "proto/base/assert.h"
#include "proto/frame.h"
#include "proto/synclog.pb-c.h"

#define SL_ARRAY_COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* ---- arena: where responses are unpacked ----
 *
 * protobuf-c allocates every submessage and copies every bytes field when it unpacks. The arena hands out that
 * memory from chunks that are kept and reused: unpacking a response costs no malloc once the chunks are as big
 * as the largest response seen. Resetting the arena frees every response unpacked from it at once. */
struct sl_arena_chunk {
	struct sl_arena_chunk *next;
	size_t cap;
	size_t used;
	_Alignas(16) unsigned char data[];
};

struct sl_arena {
	struct sl_arena_chunk *head;
	struct sl_arena_chunk *current;
	size_t bytes_total;
	size_t bytes_max; /* a response needing more is refused: it bounds what one hostile frame can cost */
	ProtobufCAllocator allocator;
};

void sl_arena_init(struct sl_arena *a, size_t bytes_max);
void sl_arena_reset(struct sl_arena *a);
void sl_arena_free(struct sl_arena *a);

/* ---- connection ----
 *
 * Buffers, reused for the life of the connection:
 *
 *   wbuf: [ sent | to send ................ | free ]      bytes queued by sl_conn_queue, sl_conn_queue_ref
 *          0     wpos                        wlen   wcap
 *   rbuf: [ consumed | received, not parsed | free ]      sl_conn_pump reads into it, sl_conn_take parses frames
 *          0         rpos                    rlen  rcap
 *
 * Both grow to the largest frame seen (bounded by frame_bytes_max) and never shrink.
 *
 * What is still to send is a FIFO of segments, oldest first, written with one sendmsg over an iovec of them:
 *
 *   segments: [ own 40 | ref 262144 | own 38 | ref 262144 | own 1200 ]
 *                 |         |           |
 *                 |         |           +-- the next 38 bytes of wbuf after the first run
 *                 |         +-- a large bytes field of a request, sent from the caller's memory (sl_conn_queue_ref)
 *                 +-- wbuf[wpos .. wpos + 40)
 *
 * INVARIANTS
 *   1. The own segments, in queue order, are wbuf[wpos .. wlen) in order: their lengths sum to wlen - wpos.
 *   2. The ref segments' lengths sum to ref_bytes; no segment is empty.
 *   3. The head segment is what the next byte written comes from; a partial send shortens it from the front.
 *   4. A ref segment points into memory its caller keeps unchanged until the segment is sent, the connection
 *      is closed, or sl_conn_own_unsent copied it into wbuf (sl_conn_release). */
struct ssl_st;
struct ssl_ctx_st;

struct sl_conn_segment {
	const uint8_t *ref; /* NULL: the next len bytes of wbuf */
	size_t len;
};

/* Unsent segments a connection holds. Each referenced field costs two (its bytes and the run of wbuf after it),
 * so 256 hold 127 referenced batches: with 256 KiB batches about 32 MiB, the producer's default buffer_bytes_max, all
 * unsent at once. Past it a field is copied instead, which costs a memcpy and never correctness. 4 KiB a
 * connection. */
#define SL_CONN_SEGMENTS_MAX  256
/* sl_conn_queue_ref references fields of at least this many bytes and copies smaller ones: below it the copy
 * costs less than a segment's bookkeeping and iovec entry. Batches of 1 KiB records are far above it. */
#define SL_CONN_REF_BYTES_MIN 4096

struct sl_conn {
	int fd;
	struct sl_broker_addr addr;
	char client_id[64];
	uint32_t io_timeout_ms;
	uint32_t frame_bytes_max;
	uint64_t correlation_next;
	uint8_t *wbuf;
	size_t wpos, wlen, wcap;
	struct sl_conn_segment segments[SL_CONN_SEGMENTS_MAX]; /* a ring */
	uint32_t segment_head, segment_count;
	size_t ref_bytes;
	uint8_t *rbuf;
	size_t rpos, rlen, rcap;
	struct sl_arena arena;
	int broker_error;
	char error[SL_ERROR_BYTES];
	/* Security (sl_conn_set_security), kept across reconnects: SCRAM-SHA-256 credentials and the TLS context. */
	char *user;
	char *password;
	struct ssl_ctx_st *tls_ctx;             /* NULL: plaintext */
	struct ssl_st *ssl;                     /* the open connection's TLS session (tls.h), or NULL */
	struct sl_tls_out tls_out;              /* ciphertext not yet sent, written there by the session (tls.h) */
	char principal[SL_PRINCIPAL_BYTES_MAX]; /* who the broker says we are; "" when not authenticated */
	struct sl_kafka_conn *kafka;            /* the Kafka transport's state (transport.h); NULL: the native one */
};

/* Give to a fresh connection the TLS context and credentials of another (the group consumer's fetchers use its
 * coordinator's). Returns 0 or -ENOMEM. */
int sl_conn_security_copy(struct sl_conn *to, const struct sl_conn *from);

/* ---- the Kafka transport's addresses and settings (kafka_config.c) ---- */

/* sl_broker_parse of a kafka:// address. */
int sl_kafka_broker_parse(const char *s, struct sl_broker_addr *out, char *err, size_t err_bytes);
/* Bootstrap servers ("HOST:PORT,...", default ports filled in, IPv6 in brackets) of a kafka:// address, into a
 * string to free(). Returns 0, -EINVAL (err says what is wrong) or -ENOMEM. */
int sl_kafka_bootstrap_text(const char *broker, char **out, char *err, size_t err_bytes);
/* Add every setting of src (may be NULL) to dst. Returns 0, -E2BIG or -ENOMEM. */
int sl_kafka_config_copy(struct sl_kafka_config *dst, const struct sl_kafka_config *src);
/* Into out (fresh; free it with sl_kafka_config_free): the librdkafka settings of the security options o (may be
 * NULL: none; SCRAM-SHA-256 credentials, TLS and its files), then user's settings (may be NULL) over them, so that
 * an explicit --kafka-config wins. Returns 0, -EINVAL (a certificate without its key, a user without a password),
 * -E2BIG or -ENOMEM, with err set. */
int sl_kafka_config_secure(struct sl_kafka_config *out, const struct sl_security_options *o,
                           const struct sl_kafka_config *user, char *err, size_t err_bytes);

/* Monotonic and wall clocks in milliseconds (vDSO: no syscall). */

/* Format a message into buf, truncating. */
void sl_error_set(char *buf, size_t bytes, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* The errno of a broker error code (see synclog.h, admin calls). */
int sl_errno_of_code(int code);

/* Serialize req as one frame at the end of the queue, copied into wbuf, with a fresh correlation id (returned through
 * *cid_out). Returns 0, -EMSGSIZE (larger than the broker's frame limit), -ENOMEM, -ENOTCONN. */
int sl_conn_queue(struct sl_conn *c, Synclog__Request *req, uint64_t *cid_out);
/* Like sl_conn_queue, but the bytes fields of req of at least SL_CONN_REF_BYTES_MIN bytes are not copied: the
 * connection sends them from the caller's memory, which must stay unchanged until they are sent, the connection
 * is closed, or sl_conn_release is called on it. The bytes sent are those sl_conn_queue would send. Returns 0,
 * -EMSGSIZE, -ENOMEM (nothing was queued), -ENOTCONN. */
int sl_conn_queue_ref(struct sl_conn *c, Synclog__Request *req, uint64_t *cid_out);
/* The memory [data, data + len) is about to be reused: when an unsent segment refers into it, every unsent
 * reference is copied into wbuf (sl_conn_own_unsent). Returns 0, or -ENOMEM after closing the connection, which
 * drops what was unsent: either way nothing refers to the memory any more. */
int sl_conn_release(struct sl_conn *c, const void *data, size_t len);
/* Copy every unsent referenced byte into wbuf, in order, so that the connection refers to no caller's memory.
 * Returns 0, or -ENOMEM after closing the connection (its error set). */
int sl_conn_own_unsent(struct sl_conn *c);
/* Bytes queued and not yet written. */
size_t sl_conn_unsent(const struct sl_conn *c);
/* Write what is queued and read what arrived, waiting at most timeout_ms (-1: forever) for the socket to be
 * ready; want_read says whether responses are expected. Returns 0 (progress or timeout), -EINTR, or a
 * connection error (then the connection is closed and the error set). */
int sl_conn_pump(struct sl_conn *c, int timeout_ms, int want_read);
/* Unpack the next whole response received, if any: returns 1 with *out set (valid until the next take on c,
 * which resets the arena), 0 when no whole frame is buffered, -EPROTO / -EMSGSIZE for a bad frame (the
 * connection is closed). */
int sl_conn_take(struct sl_conn *c, Synclog__Response **out);
/* Queue req and wait for its answer within the io timeout (responses to other ids are dropped: use it on a
 * connection with nothing else in flight). Connects first when not connected. Returns 0 with *out set, or a
 * negative errno. A broker error in the response is not a failure here: the caller reads out->error. */
int sl_conn_call(struct sl_conn *c, Synclog__Request *req, Synclog__Response **out);
/* Set c's error from a response that carries an error code, prefixed with what (the operation), and return its
 * errno. */
int sl_conn_fail_response(struct sl_conn *c, const char *what, int code, const char *broker_message);
void sl_conn_set_error(struct sl_conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* 0 when resp answers with body_case and no error; else c's error is set (prefixed with what) and the errno of the
 * broker's code, or -EPROTO for another body, is returned. */
int sl_conn_expect_body(struct sl_conn *c, const Synclog__Response *resp, int body_case, const char *what);
/* sl_conn_call, then sl_conn_expect_body: 0 with the response (owned as sl_conn_call's) in *resp_out, or c's error
 * set and a negative errno. */
int sl_conn_request(struct sl_conn *c, Synclog__Request *req, int body_case, const char *what,
                    Synclog__Response **resp_out);

/* What a member's commit may carry besides offsets: records found removed by retention (per offset, may be NULL)
 * and an applier's counters (may be NULL). */
struct sl_commit_extras {
	const int64_t *records_lost;
	const struct sl_applier_info *applier;
};
/* One OffsetCommit request for a group: a member's (member_id and generation) or an operator's ("" and -1, with
 * force). extras may be NULL. Returns 0 once the broker made it durable, or a negative errno with c's error set. */
int sl_group_commit_request(struct sl_conn *c, const char *group, const char *member_id, int32_t generation,
                            const struct sl_topic_partition_offset *offsets, uint32_t count, bool force,
                            const struct sl_commit_extras *extras);
/* Wire to plain structs (group_admin.c), shared with status.c. */
void sl_group_summary_from_wire(struct sl_group_summary *out, const Synclog__GroupSummary *g);
void sl_applier_info_from_wire(struct sl_applier_info *out, const Synclog__ApplierCounters *in);

/* ---- the fetcher, driven by the group consumer (consumer/consumer.c) ----
 *
 * A fetcher made by sl_fetcher_new_unassigned reads no partition until sl_fetcher_assign names them with their
 * positions (and, with stop_at_end, their end offsets; ends NULL means no end). Assign and seek drop the records
 * of the last answer not yet handed out; positions only count records handed out, so nothing is lost. */
int sl_fetcher_new_unassigned(struct sl_fetcher **out, const struct sl_fetcher_options *o, char *err, size_t err_bytes);
/* The fetcher's connection takes the TLS context and credentials of from (sl_conn_security_copy). */
int sl_fetcher_conn_security_copy(struct sl_fetcher *f, const struct sl_conn *from);
int sl_fetcher_assign(struct sl_fetcher *f, const uint32_t *partitions, const int64_t *positions, const int64_t *ends,
                      uint32_t count);
/* Returns 0, or -EINVAL when partition is not read by f or position is negative. */
int sl_fetcher_seek(struct sl_fetcher *f, uint32_t partition, int64_t position);
void sl_fetcher_set_max_wait(struct sl_fetcher *f, uint32_t max_wait_ms);
/* With stop_at_end: partition reached its end (true also for a partition f does not read). */
bool sl_fetcher_partition_done(const struct sl_fetcher *f, uint32_t partition);
/* Position and end state of the index-th partition given to sl_fetcher_assign (no search: commits of a thousand
 * partitions read them all). */
int64_t sl_fetcher_position_at(const struct sl_fetcher *f, uint32_t index);
bool sl_fetcher_partition_done_at(const struct sl_fetcher *f, uint32_t index);

#endif
