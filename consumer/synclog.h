/* The synclog client library: a connection with the admin calls, an idempotent batching producer, a fetcher that
 * reads a topic's partitions, the Kafka-compatible partitioner, and the text formats of records. Installed with
 * proto/batch.h, which defines the record (struct sl_record) it sends and returns.
 *
 * Conventions, for every function below:
 *   - Errors are returned as a negative errno; 0 (or a count, where said) is success. The object the call was
 *     made on keeps a one-line message saying what failed, on what and what to do (sl_conn_error,
 *     sl_producer_error, sl_fetcher_error); functions without an object take an err buffer.
 *   - Threads: an object (connection, producer, fetcher, parser) belongs to one thread at a time. The library
 *     has no global state, so different objects may be used from different threads at once. Callbacks run on
 *     the thread that called into the object, from inside that call.
 *   - Nothing here installs signal handlers. A signal delivered to a handler installed without SA_RESTART
 *     interrupts a blocking wait; the call then returns -EINTR with its object in a consistent state. */
#ifndef SL_CONSUMER_SYNCLOG_H
#define SL_CONSUMER_SYNCLOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <poll.h>
#include <stdio.h>

#include "proto/batch.h"
#include "proto/frame.h" /* sl_error_name, sl_error_message: the broker's error codes */

/* ---- addresses ---- */

#define SL_BROKER_DEFAULT      "127.0.0.1:7070"
#define SL_BROKER_PORT_DEFAULT "7070"
/* A DNS name is at most 253 characters; an IPv6 literal far less. */
#define SL_HOST_BYTES_MAX      256
#define SL_ERROR_BYTES         512

struct sl_broker_addr {
	char host[SL_HOST_BYTES_MAX];
	char port[8];
};

/* Parse "HOST:PORT", "[IPV6]:PORT" or "HOST" (port 7070). Returns 0 or -EINVAL with a message in err. */
int sl_broker_parse(const char *s, struct sl_broker_addr *out, char *err, size_t err_bytes);

/* ---- connection and admin calls ---- */

/* Topic names are at most 200 characters (the broker's rule, proto/frame.c). */
#define SL_TOPIC_NAME_BYTES_MAX  200
/* Requests that get no answer within this time fail with -ETIMEDOUT: long enough for a broker that is busy
 * fsyncing a large group commit, short enough that a stuck one is noticed. */
#define SL_IO_TIMEOUT_MS_DEFAULT 30000

struct sl_conn;

/* Create a connection object for broker ("HOST:PORT"); it does not connect yet. client_id names this client in
 * the broker's logs (may be NULL). Returns 0, -EINVAL (bad address; *out is NULL), -ENOMEM. */
int sl_conn_new(struct sl_conn **out, const char *broker, const char *client_id);
/* Connect (TCP_NODELAY) and say Hello, waiting at most the connection's timeout. A connection already open is
 * closed first. Returns 0, or -ECONNREFUSED, -ETIMEDOUT, -EHOSTUNREACH, -EPROTO (the peer is not a synclog
 * broker or speaks another version), ... with sl_conn_error set. */
int sl_conn_connect(struct sl_conn *c);
/* Close the socket (sl_conn_connect may open it again) and drop whatever was queued or unanswered. */
void sl_conn_close(struct sl_conn *c);
void sl_conn_free(struct sl_conn *c);
void sl_conn_set_timeout(struct sl_conn *c, uint32_t io_timeout_ms);
/* The last failure: one line for a person. */
const char *sl_conn_error(const struct sl_conn *c);
/* The broker's error code (Synclog__ErrorCode) of the last failed call, or 0 when it failed on this side (network,
 * timeout). Lets a caller tell UNKNOWN_TOPIC from TOPIC_EXISTS without parsing text. */
int sl_conn_broker_error(const struct sl_conn *c);
/* The largest frame the broker accepts (from Hello). */
uint32_t sl_conn_frame_bytes_max(const struct sl_conn *c);

struct sl_topic_config {
	char name[SL_TOPIC_NAME_BYTES_MAX + 1];
	uint32_t partitions;
	int64_t retention_ms;    /* -1: keep forever */
	int64_t retention_bytes; /* per partition; -1: no limit */
	bool compact;
};

struct sl_partition_info {
	uint32_t partition;
	int64_t earliest_offset;
	int64_t next_offset;
	uint64_t bytes;
	uint32_t segments;
	int error; /* Synclog__ErrorCode; 0 when the partition is healthy */
	char error_message[256];
};

enum sl_offset_spec { SL_OFFSET_EARLIEST = 0, SL_OFFSET_LATEST = 1, SL_OFFSET_TIMESTAMP = 2 };

/* The admin calls below send one request on c (connecting first if it is not connected) and wait for its answer.
 * They need c to have nothing else in flight. A broker error is returned as a negative errno:
 * UNKNOWN_TOPIC -ENOENT, TOPIC_EXISTS -EEXIST, INVALID_* -EINVAL, THROTTLED -EAGAIN, NOT_ENOUGH_SPACE -ENOSPC,
 * STORAGE_ERROR -EIO, BROKER_SHUTTING_DOWN -ESHUTDOWN, anything else -EPROTO; sl_conn_broker_error says which. */
int sl_topic_create(struct sl_conn *c, const struct sl_topic_config *config);
int sl_topic_delete(struct sl_conn *c, const char *name);
/* *topics_out is an array of *count_out configs, allocated; the caller frees it with free(). */
int sl_topic_list(struct sl_conn *c, struct sl_topic_config **topics_out, uint32_t *count_out);
/* Config and per-partition state of one topic; *partitions_out (allocated, sorted by partition, free() it) has
 * *count_out entries. A partition that failed to open is reported in its entry, not as a failure of the call. */
int sl_topic_describe(struct sl_conn *c, const char *name, struct sl_topic_config *config_out,
                      struct sl_partition_info **partitions_out, uint32_t *count_out);
/* The offset per spec (timestamp_ms is used with SL_OFFSET_TIMESTAMP: the first offset whose record timestamp is
 * >= it, or the log end) of each of count partitions, into offsets_out[i]. Fails as a whole if one partition
 * fails. */
int sl_offsets_list(struct sl_conn *c, const char *topic, enum sl_offset_spec spec, int64_t timestamp_ms,
                    const uint32_t *partitions, uint32_t count, int64_t *offsets_out);
/* A new idempotent producer id from the broker. */
int sl_producer_id_init(struct sl_conn *c, int64_t *producer_id_out, int16_t *producer_epoch_out);

/* ---- partitioner ---- */

/* Kafka's murmur2 (org.apache.kafka.common.utils.Utils.murmur2, seed 0x9747b28c), as a signed 32-bit value. */
int32_t sl_murmur2(const void *key, size_t len);
/* Kafka's default partition of a keyed record: (murmur2(key) & 0x7fffffff) % partition_count, so synclog's
 * clients, Kafka's Java clients and librdkafka's murmur2_random put every key in the same partition.
 * partition_count must be >= 1. */
uint32_t sl_partition_for_key(const void *key, size_t len, uint32_t partition_count);

/* ---- producer ---- */

/* Values equal to the wire protocol's Acks. */
enum sl_acks { SL_ACKS_FSYNC = 0, SL_ACKS_WRITTEN = 1, SL_ACKS_NONE = 2 };

/* The result of one record, as the delivery callback sees it. */
struct sl_delivery {
	int status;         /* 0: acknowledged at the requested level; else a negative errno */
	uint32_t partition; /* the partition the record was sent to */
	int64_t offset;     /* its offset when status is 0, else -1; also -1 with SL_ACKS_NONE (answered before offsets
	                       exist) */
	bool duplicate;     /* acknowledged as a retry of a batch the broker had already appended */
	const char *error;  /* NULL when status is 0; else one line: what failed, on what, what to do */
};

/* Called once per record sent, in send order within a partition, on the thread that called sl_producer_send,
 * _poll, _flush or _free. opaque is the value given to sl_producer_send. The callback must not call the
 * producer. d and d->error are valid only during the call. */
typedef void (*sl_producer_delivery_cb)(void *opaque, const struct sl_delivery *d, void *cb_arg);

struct sl_producer_options {
	const char *broker;    /* "HOST:PORT" */
	const char *client_id; /* may be NULL */
	const char *topic;
	enum sl_acks acks;
	int codec; /* SL_BATCH_CODEC_NONE or SL_BATCH_CODEC_ZSTD */
	/* How long the first record of a batch waits for company before the batch is sent. */
	uint32_t linger_ms;
	/* Bytes of one batch. Also the largest record the producer accepts. */
	uint32_t batch_bytes_max;
	/* Records of one batch: sizes the per-batch array of callback opaques. */
	uint32_t batch_records_max;
	/* Produce requests sent and not yet answered. At most SL_PRODUCER_REQUESTS_IN_FLIGHT_MAX. */
	uint32_t requests_in_flight_max;
	/* Bytes of closed batches held (waiting to be sent, in flight, waiting for a retry). When it is reached,
	 * sl_producer_send waits for acknowledgements: the producer pushes back on its caller instead of growing. */
	uint64_t buffer_bytes_max;
	/* A record not acknowledged this long after it was sent fails with -ETIMEDOUT. */
	uint32_t delivery_timeout_ms;
	/* First wait before a retry (throttled, disk full, reconnect); doubles up to retry_backoff_ms_max. */
	uint32_t retry_backoff_ms;
	uint32_t retry_backoff_ms_max;
	/* Connect, Hello and each request's answer. */
	uint32_t io_timeout_ms;
	sl_producer_delivery_cb delivery_cb;
	void *delivery_cb_arg;
};

/* The broker keeps the last 5 batches per producer and partition (broker/producer_state.h): a retry further back
 * than that could not be recognised as a duplicate. One request holds at most one batch per partition, so 5
 * requests in flight keep every retry within reach. */
#define SL_PRODUCER_REQUESTS_IN_FLIGHT_MAX 5

/* Defaults, each with its reason:
 *   linger_ms 5: a batch fills for at most 5 ms, which adds at most that to a record's latency while letting a
 *     busy producer send thousands of records per request instead of one.
 *   batch_bytes_max 256 KiB: at linger 5 ms a partition can move 50 MB/s before the size, not the linger, closes
 *     batches, and past ~256 KiB the per-batch costs (61-byte header, request, CRC, one fsync wait) are already
 *     below 0.1%, so a bigger batch only adds latency and memory held for retries; zstd's ratio on JSON has
 *     mostly levelled off at that size; and 62 partitions' batches still fit the broker's default 16 MiB frame.
 *     Builders are allocated on a partition's first record and their pages touched only as they fill.
 *   batch_records_max 16384: a 256 KiB batch of records of 16 bytes; the opaque array costs 128 KiB per batch.
 *   requests_in_flight_max 5: SL_PRODUCER_REQUESTS_IN_FLIGHT_MAX, so group commits on the broker see several
 *     requests at once.
 *   buffer_bytes_max 32 MiB: 128 full batches held for sending or retrying (Kafka's buffer.memory).
 *   delivery_timeout_ms 15 s: a single broker that restarts and recovers is back well within it; waiting longer
 *     only delays telling the caller that the broker is gone.
 *   retry_backoff_ms 100 up to 1000: Kafka's retry.backoff.ms and its exponential cap. */
void sl_producer_options_init(struct sl_producer_options *o);

struct sl_producer;

/* Connect, check the topic exists and learn its partition count, get a producer id. Returns 0, -EINVAL (bad
 * option), -ENOENT (no such topic), -ENOMEM, or a connection error; err says which. */
int sl_producer_new(struct sl_producer **out, const struct sl_producer_options *o, char *err, size_t err_bytes);

/* Partition value asking the producer to choose: by the key's murmur2 hash, or for a record without a key, the
 * partition of the batch being filled (sticky, Kafka's default), moving to the next partition once it is sent. */
#define SL_PARTITION_ANY (-1)

/* Append a copy of r (its key, value and headers are copied; its offset is ignored, timestamp_ms used as given)
 * to the batch of its partition. The result arrives through the delivery callback, with opaque. Does no I/O
 * unless a batch closes or a linger time has passed; when the buffer is full it waits for acknowledgements.
 * Returns 0 (the callback will run exactly once for this record), or with no callback: -EMSGSIZE (the record is
 * larger than a batch), -EINVAL (invalid fields or partition), -ENOMEM, -ETIMEDOUT (the buffer stayed full for
 * the delivery timeout), -EINTR (a signal interrupted the wait for room). */
int sl_producer_send(struct sl_producer *p, int32_t partition, const struct sl_record *r, void *opaque);
/* Do the I/O that is due and run the callbacks of the answers that arrived, waiting at most timeout_ms for one
 * (0: do not wait). Returns the number of records sent and not yet reported, or -EINTR. */
int sl_producer_poll(struct sl_producer *p, uint32_t timeout_ms);
/* Close every open batch now, and poll until every record sent is reported or timeout_ms passed (-1: until done;
 * the delivery timeout bounds that). Returns 0, -ETIMEDOUT or -EINTR. */
int sl_producer_flush(struct sl_producer *p, int timeout_ms);
/* For a caller that waits on its own descriptors too: fills *out with the producer's socket and the events to
 * wait for and returns 1, or returns 0 when there is nothing to wait for on it. When it is ready, or when
 * sl_producer_timeout_ms passed, call sl_producer_poll(p, 0). */
int sl_producer_pollfd(const struct sl_producer *p, struct pollfd *out);
/* Records sent and not yet reported. */
uint64_t sl_producer_pending(const struct sl_producer *p);
uint32_t sl_producer_partition_count(const struct sl_producer *p);
/* Milliseconds until the producer has something to do (a linger deadline, a retry), for a caller that waits on
 * its own input meanwhile; 0 when something is due, -1 when nothing is pending. */
int sl_producer_timeout_ms(const struct sl_producer *p);
const char *sl_producer_error(const struct sl_producer *p);
/* Free everything. Records not yet reported are reported first with -ECANCELED: flush before, to deliver them. */
void sl_producer_free(struct sl_producer *p);

/* ---- fetcher ---- */

enum sl_from { SL_FROM_EARLIEST = 0, SL_FROM_LATEST, SL_FROM_OFFSET, SL_FROM_TIMESTAMP };

struct sl_fetcher_options {
	const char *broker;
	const char *client_id;
	const char *topic;
	int32_t partition; /* one partition, or -1 for every partition of the topic */
	enum sl_from from;
	int64_t from_offset;       /* SL_FROM_OFFSET: the same offset in every partition read */
	int64_t from_timestamp_ms; /* SL_FROM_TIMESTAMP: the first record at or after it */
	/* Stop at the log end of each partition as it was when the fetcher was created (sl_fetcher_done then says
	 * so); otherwise follow the log, long-polling for new records. */
	bool stop_at_end;
	/* Long poll: the broker holds a Fetch this long when it has nothing new. Bounds how late an interrupted
	 * reader notices a flag set by its signal handler when the handler does not interrupt the wait. */
	uint32_t max_wait_ms;
	/* Bytes asked per partition per Fetch (the broker returns at least one whole batch). */
	uint32_t partition_bytes_max;
	uint32_t io_timeout_ms;
	/* After a lost connection, keep trying to reconnect this long before sl_fetcher_fetch fails. */
	uint32_t reconnect_timeout_ms;
};

/* Defaults: max_wait_ms 1000, partition_bytes_max 1 MiB (whole batches of several producers per round trip),
 * io_timeout_ms 30 s, reconnect_timeout_ms 15 s (as the producer's delivery timeout), every partition, from
 * earliest, following. */
void sl_fetcher_options_init(struct sl_fetcher_options *o);

struct sl_fetcher;

/* Connect, check the topic (and partition), resolve the starting offsets (ListOffsets for earliest, latest and
 * timestamps) and, with stop_at_end, the end offsets. Returns 0, -ENOENT (no such topic or partition), -EINVAL,
 * -ENOMEM or a connection error, with err set. */
int sl_fetcher_new(struct sl_fetcher **out, const struct sl_fetcher_options *o, char *err, size_t err_bytes);
/* Send one Fetch for every partition not yet at its end and wait for the answer (a long poll when the partitions
 * have nothing new). Records returned by sl_fetcher_next before this call become invalid. Reconnects after a lost
 * connection, resuming at the exact next offsets, for up to reconnect_timeout_ms. Returns 0 (maybe with no
 * records), -EINTR (a signal; call again or stop), -ERANGE (an offset past the log end), -ENOENT (the topic or
 * partition went away), -EBADMSG (a corrupt batch), or a connection error. */
int sl_fetcher_fetch(struct sl_fetcher *f);
/* The next record of the last Fetch, skipping records below the offsets asked and, with stop_at_end, at or past
 * the end offsets. Returns 1 with *partition_out and *out set (pointers valid until the next fetch), 0 when the
 * answer is used up, -EBADMSG for a corrupt batch (sl_fetcher_error says where). */
int sl_fetcher_next(struct sl_fetcher *f, uint32_t *partition_out, struct sl_record *out);
/* With stop_at_end: true once every partition reached its end offset. Always false when following. */
bool sl_fetcher_done(const struct sl_fetcher *f);
/* Next offset to read of partition (or -1 when it is not read). */
int64_t sl_fetcher_position(const struct sl_fetcher *f, uint32_t partition);
/* Records that retention deleted before they could be read (the reader skipped to the log start). */
uint64_t sl_fetcher_skipped(const struct sl_fetcher *f);
const char *sl_fetcher_error(const struct sl_fetcher *f);
void sl_fetcher_free(struct sl_fetcher *f);

/* ---- record text formats (what `synclog produce` reads and `synclog consume` prints) ---- */

/* A parser of input lines. A record it fills points into the line given and into the parser's own buffers:
 * valid until the next parse or free. */
struct sl_line_parser;

enum sl_input_format { SL_INPUT_TSV = 0, SL_INPUT_JSON = 1 };

int sl_line_parser_new(struct sl_line_parser **out, enum sl_input_format format);
void sl_line_parser_free(struct sl_line_parser *lp);
/* Parse one line (without its newline) into *out, with origin and timestamp_ms set as given.
 *   TSV: KEY<TAB>VALUE; the key is everything before the first tab, the value everything after it (it may hold
 *        more tabs), both taken as bytes.
 *   JSON: one object {"key": string (required), "value": any JSON, stored as its compact JSON text; absent
 *        means JSON null, "version": integer, "op": "upsert"|"delete", "idempotency_key": string,
 *        "schema_version": integer, "origin": "live"|"backfill"|"repair" (overrides the origin given)}. A delete
 *        has no value (absent or null) and is stored as a tombstone (null value). Other members are ignored.
 * Returns 1 with *out filled, 0 for a blank line (nothing to send), -EINVAL with a message in err for a line that
 * cannot be parsed, -ENOMEM. */
int sl_line_parse(struct sl_line_parser *lp, const char *line, size_t len, enum sl_origin origin, int64_t timestamp_ms,
                  struct sl_record *out, char *err, size_t err_bytes);

/* Print one record as a line (with its newline).
 *   text: PARTITION<TAB>OFFSET<TAB>KEY<TAB>VALUE, key and value as their bytes, a null key or value as nothing.
 *   JSON: {"partition":P,"offset":O,"key":K,"value":V,"version":N,"op":"...","origin":"...","timestamp_ms":T,
 *         "idempotency_key":I} where K and I are strings or null; V is the value itself when it is valid JSON
 *         (printed compact, so the line stays one line), else the value as a string, and null for a tombstone;
 *         version is null when the record has none. Bytes that are not UTF-8 are printed as \u00XX, each byte as
 *         the code point of its value. "schema_version" is added when it is not 0.
 * Return 0 or -EIO when out reports an error. */
int sl_record_print_text(FILE *out, uint32_t partition, const struct sl_record *r);
int sl_record_print_json(FILE *out, uint32_t partition, const struct sl_record *r);
/* JSON helpers the printers use, for other tools: a JSON string of the bytes; and the bytes as JSON if they are
 * valid JSON text (RFC 8259, nesting up to 256 deep), minified, else as a JSON string. */
int sl_json_print_string(FILE *out, const void *bytes, size_t len);
int sl_json_print_value(FILE *out, const void *bytes, size_t len);
/* True when bytes[0..len) is one valid JSON value (RFC 8259), surrounding whitespace allowed. */
bool sl_json_valid(const void *bytes, size_t len);

/* ---- time ---- */

/* Parse an ISO 8601 date-time: YYYY-MM-DD, optionally followed by T (or a space) HH:MM, :SS, .fraction (up to 9
 * digits, kept to the millisecond), and a zone: Z, +HH:MM, +HHMM or +HH (or -). Without a zone the time is UTC.
 * Returns 0 with milliseconds since the epoch, or -EINVAL. */
int sl_time_parse_iso8601(const char *s, int64_t *ms_out);

#endif
