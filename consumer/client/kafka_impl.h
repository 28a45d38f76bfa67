/* Internals of the Kafka transport (transport.h), shared by kafka_*.c: the librdkafka handles behind a connection,
 * the configuration every handle starts from, the mapping of Kafka's errors to errno, the wake-up pipe that lets a
 * wait on librdkafka be interrupted by a signal, and records to and from librdkafka's messages. Not installed; the
 * only files that include librdkafka's header are the kafka_*.c files that include this one.
 *
 * Why a pipe: librdkafka waits on condition variables, which a signal does not interrupt, while the library
 * promises -EINTR when a signal arrives during a wait (synclog.h). Each handle's queue writes one byte into a
 * pipe when an element arrives on it while it was empty (rd_kafka_queue_io_event_enable); the library waits in
 * poll() on that pipe, which a signal does interrupt, and then serves the queue without waiting. The queue is
 * served until it is empty (or a batch is full, when it is checked again before the next wait), so no wake-up
 * is lost. */
#ifndef SL_CONSUMER_KAFKA_IMPL_H
#define SL_CONSUMER_KAFKA_IMPL_H

#include <librdkafka/rdkafka.h>

#include "consumer/client/client_impl.h"
#include "consumer/client/transport.h"

/* A connection on a Kafka cluster: an admin handle (a producer handle that never produces: metadata, offsets, the
 * Admin API) and, made when first needed, a reader (a consumer handle that only reads single records: the
 * timestamps of group lag, the deletes the applier asks about). */
struct sl_kafka_conn {
	char *broker;    /* "kafka://..." as given */
	char *bootstrap; /* "HOST:PORT,..." */
	struct sl_kafka_config config;
	rd_kafka_t *rk;
	rd_kafka_queue_t *admin_queue;
	rd_kafka_t *reader;
	struct sl_kafka_config security; /* the settings of sl_conn_set_security's options */
	/* The last authentication or TLS failure librdkafka reported on rk (its error callback, served on the
	 * caller's thread by rd_kafka_poll): connecting gives up on it instead of waiting out its timeout. */
	rd_kafka_resp_err_t auth_error;
	char auth_why[256];
	int64_t stall_after_ms; /* the health states' (kafka_health.c) */
};

/* One of the settings the transport chooses for a handle. */
struct sl_kafka_pair {
	const char *key;
	const char *value;
};

/* A librdkafka configuration: bootstrap servers and client id, then ours (count pairs), then the settings of the
 * security options (sl_kafka_config_secure of no user settings; may be NULL), then the user's settings (which may
 * replace any of those). librdkafka's own log lines are dropped unless the user set debug or log_level: what fails
 * reaches the caller as an error instead. NULL with err set when a setting is refused. */
rd_kafka_conf_t *sl_kafka_conf_new(const char *bootstrap, const char *client_id, const struct sl_kafka_pair *ours,
                                   size_t count, const struct sl_kafka_config *security,
                                   const struct sl_kafka_config *user, char *err, size_t err_bytes);

/* The errno of a Kafka error code (synclog.h's conventions: -ENOENT for an unknown topic, -EEXIST, -EINVAL,
 * -ETIMEDOUT, -ECONNREFUSED, -EMSGSIZE, -ERANGE, group errors as the native ones, -EPERM, -EACCES, ...). */
int sl_kafka_errno(rd_kafka_resp_err_t e);
/* The Synclog__ErrorCode closest to a Kafka error, for sl_conn_broker_error. */
int sl_kafka_code(rd_kafka_resp_err_t e);

/* ---- waiting ---- */

struct sl_kafka_wake {
	int fds[2]; /* a non-blocking pipe: librdkafka writes into [1], poll() waits on [0] */
	rd_kafka_queue_t *queue;
};

/* Make q write into a new pipe when it gets an element while empty. The wake takes q's reference: it releases it
 * in sl_kafka_wake_free, or at once when it fails. Returns 0 or a negative errno. */
int sl_kafka_wake_init(struct sl_kafka_wake *w, rd_kafka_queue_t *q);
/* Wait up to timeout_ms (-1: no bound) until the queue has something (returns at once when it has). Returns 0, or
 * -EINTR when a signal interrupted the wait. */
int sl_kafka_wake_wait(struct sl_kafka_wake *w, int timeout_ms);
/* Close the pipe and release the queue (nothing when the wake was never made). */
void sl_kafka_wake_free(struct sl_kafka_wake *w);
/* A librdkafka handle of type (producer or consumer) from conf, which it takes (destroyed when it fails), and a
 * wake on the queue its owner polls (a consumer's consumer queue, with the main queue forwarded to it; a producer's
 * main queue). Returns 0, -EINVAL with *rk_out NULL and a message in err when librdkafka refused the conf, or the
 * wake's error (the handle is then made: the caller destroys it). */
int sl_kafka_handle_new(rd_kafka_type_t type, rd_kafka_conf_t *conf, rd_kafka_t **rk_out, struct sl_kafka_wake *wake,
                        char *err, size_t err_bytes);

/* ---- records ---- */

/* Bytes the headers of m take in a record's headers section (sl_record.headers). */
size_t sl_kafka_headers_bytes(const rd_kafka_message_t *m);
/* Fill out from message m of partition: key, value, timestamp, offset, the headers section encoded at *hpos (which
 * moves; at least sl_kafka_headers_bytes(m) bytes before hend) and the sync fields it carries. Returns 0, or
 * -EBADMSG with *why (a sync header that is not well formed: the record is corrupt for synclog). */
int sl_kafka_message_record(const rd_kafka_message_t *m, struct sl_record *out, uint8_t **hpos, const uint8_t *hend,
                            const char **why);
/* librdkafka headers for r: its headers section when it has one, else its sync fields; NULL when it has none.
 * *bad is set when the section is malformed. The caller owns the result (producev takes it on success). */
rd_kafka_headers_t *sl_kafka_record_headers(const struct sl_record *r, bool *bad);

/* ---- offsets ---- */

/* Kafka's ListOffsets for count partitions of topic: at (a timestamp, or RD_KAFKA_OFFSET_BEGINNING (-2) or
 * RD_KAFKA_OFFSET_END (-1)). A timestamp after the last record gives the log end, as synclogd does. Returns 0, or a
 * negative errno with err set (the first partition that failed, or the request). */
int sl_kafka_offsets_at(rd_kafka_t *rk, const char *topic, const uint32_t *partitions, uint32_t count, int64_t at,
                        int timeout_ms, int64_t *offsets_out, char *err, size_t err_bytes);
/* Partition count of topic from all-topic metadata (a request for the topic alone would make a cluster with
 * auto.create.topics.enable create it). Returns 0, -ENOENT, or a negative errno with err set. */
int sl_kafka_partition_count(rd_kafka_t *rk, const char *topic, int timeout_ms, uint32_t *count_out, char *err,
                             size_t err_bytes);

#endif
