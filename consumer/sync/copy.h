/* Copy: move a topic between two brokers, synclogd and a Kafka cluster either way (or between two of a kind), with
 * every record's key, value, headers and timestamp, each record in the partition it had, in its order; resumable
 * after a crash without copying a record twice; ending with per-partition counts and digests of both sides. It is
 * the migration path from one node to a cluster, written only on the client library (synclog.h), so the same code
 * runs whichever transports the two sides use.
 *
 * A run, partition by partition in parallel:
 *   1. the destination topic is created with the source's partition count and settings when it is missing (a
 *      topic of another partition count is refused: placement must be kept);
 *   2. where each partition stands is read from the source cluster's group (the checkpoint below), or, for a
 *      partition never copied, the source's log start and the destination's log end (which must then be empty);
 *   3. records are read from the source and produced to the same partition of the destination, in rounds; a
 *      round ends when everything sent is acknowledged (idempotent producer, acks fsync), and then its checkpoint
 *      is committed to the group on the source (offset = the next source offset, metadata = the rest);
 *   4. at the source's end (as it was when the run started) the destination is read back from where the copy
 *      began, and its count and digest are compared with those the copy computed from the source.
 *
 * The checkpoint of one partition, kept as the metadata of the group's commit on the source, whose offset is S:
 *
 *   synclog-copy 1 topic=DEST start=S0 dstart=D0 dnext=D count=N digest=HEX
 *
 *   S0, D0  where the first run began in the source and the destination partition
 *   S, D    the next source offset and the next destination offset once every record before S is acknowledged
 *   N, HEX  records copied from S0 up to S, and the digest chained over them
 *
 * INVARIANTS
 *   1. The destination partition holds exactly the source's records from S0 on, in order, one for one, from
 *      offset D0: the copy is its only writer, and a partition's acknowledged records are a prefix of what was
 *      sent (the producers' promise). So its log end E, read when a run starts, says how far a dead run got:
 *      the first E - D records at or after S are in the destination already; they are read and counted, not
 *      produced again. That is why a kill -9 at any point copies no record twice.
 *   2. Destination offsets are contiguous (records from one idempotent producer, no transactions): a round that
 *      ends at another offset than D plus the records it sent means another writer, and the copy stops.
 *   3. A checkpoint is committed only when every record before S is acknowledged, so D <= E always.
 *
 * The digest: XXH3-64 chained record by record (partition order) over the timestamp, the key, the value (null
 * told from empty) and each header's name and value; the destination is read back and digested the same way.
 *
 * Threads: a run belongs to the thread that calls sl_copy_run; the callbacks run on it. */
#ifndef SL_CONSUMER_SYNC_COPY_H
#define SL_CONSUMER_SYNC_COPY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "consumer/client/synclog.h"

/* The checkpoint's metadata: its first word, and the longest it gets (a 200-character topic and six numbers). */
#define SL_COPY_CHECKPOINT_TAG "synclog-copy 1"
/* A group name of the copy when none is given: this prefix and the destination topic. */
#define SL_COPY_GROUP_PREFIX   "synclog-copy."

struct sl_copy_progress {
	uint64_t records;   /* copied or found at the destination, this run and the ones it resumed */
	uint64_t total;     /* records the copy will hold at the end */
	uint64_t bytes;     /* of keys, values and headers sent this run */
	double bytes_per_s; /* this run */
	double eta_s;       /* -1 when unknown */
	bool verifying;     /* reading the destination back */
};

typedef void (*sl_copy_progress_cb)(const struct sl_copy_progress *p, void *cb_arg);
typedef bool (*sl_copy_stop_cb)(void *cb_arg);

struct sl_copy_options {
	const char *from; /* broker addresses (HOST:PORT or kafka://...) */
	const char *to;
	const struct sl_kafka_config *kafka_config; /* for whichever side is a Kafka cluster (may be NULL) */
	/* TLS and credentials for both sides (may be NULL): on a Kafka cluster they become SASL and TLS settings,
	 * under kafka_config's (synclog.h, "transports"). */
	const struct sl_security_options *security;
	const char *topic;
	const char *to_topic; /* NULL: the same name */
	const char *group;    /* on the source; NULL: SL_COPY_GROUP_PREFIX + the destination topic */
	uint32_t io_timeout_ms;
	/* Records and bytes of one round: what is sent before everything is awaited and the checkpoint committed. */
	uint32_t round_records_max;
	uint64_t round_bytes_max;
	/* At most this many records per second are produced (0: no limit), so that a migration does not take the
	 * destination cluster's whole capacity. Records found after a crash are not produced and not paced. */
	uint64_t rate_records_per_s;
	sl_copy_progress_cb progress_cb; /* at most every progress_interval_ms, and at the end of each phase */
	uint32_t progress_interval_ms;
	sl_copy_stop_cb stop_cb; /* true: stop after the round being sent (its checkpoint is committed) */
	void *cb_arg;
};

/* Defaults: rounds of 100,000 records or 16 MiB (a checkpoint every fraction of a second at full speed, and at
 * most one round read again after a crash), progress every 200 ms. */
void sl_copy_options_init(struct sl_copy_options *o);

struct sl_copy_partition {
	uint32_t partition;
	uint64_t records;        /* copied from the partition, all runs */
	uint64_t source_digest;  /* computed from the records read */
	uint64_t target_records; /* read back from the destination */
	uint64_t target_digest;
	bool match;
};

struct sl_copy_result {
	struct sl_copy_partition *partitions; /* allocated: free with sl_copy_result_free */
	uint32_t partition_count;
	uint64_t records; /* in the copy, all runs */
	uint64_t copied;  /* produced by this run */
	uint64_t found;   /* found at the destination after a crash, not produced again */
	uint64_t bytes;   /* sent by this run */
	uint64_t lost;    /* source records retention removed before they were copied */
	double seconds;   /* this run, without the read back */
	bool created;     /* the destination topic was created */
	bool resumed;     /* a checkpoint was found */
	bool match;       /* every partition's destination matches its source */
	char group[SL_GROUP_NAME_BYTES_MAX + 1];
	char to_topic[SL_TOPIC_NAME_BYTES_MAX + 1];
};

/* Run (or resume) the copy. Returns 0 when every record is copied and the destination matches (result->match),
 * -EBADE when it was copied but does not match, -EINTR when stop_cb stopped it (its progress is committed), or
 * another negative errno with err set. *out holds what is known in every case. */
int sl_copy_run(const struct sl_copy_options *o, struct sl_copy_result *out, char *err, size_t err_bytes);
void sl_copy_result_free(struct sl_copy_result *r);

#endif
