/* The synclog client library: a connection with the admin calls, an idempotent batching producer, a fetcher that
 * reads a topic's partitions, the Kafka-compatible partitioner, and the text formats of records. Installed with
 * proto/batch.h, which defines the record (struct sl_record) it sends and returns.
 *
 * Two transports sit behind every object: synclogd's own protocol, and a Kafka or Redpanda cluster (or synclogd's
 * Kafka listener) through librdkafka. The broker address an object is made with chooses ("HOST:PORT" or
 * "kafka://HOST:PORT,..."; see "transports" below), and the calls are the same on both: a program written on this
 * header, such as the applier, runs on either without knowing which.
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
#include "proto/frame.h"         /* sl_error_name, sl_error_message: the broker's error codes */
#include "proto/limits.h"        /* SL_PRODUCER_REQUESTS_IN_FLIGHT_MAX */
#include "proto/base/duration.h" /* sl_duration_parse, sl_duration_parse_iso8601, sl_duration_format */

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

/* Parse "HOST:PORT", "[IPV6]:PORT" or "HOST" (port 7070), or a Kafka cluster's address (below: out gets its first
 * bootstrap server). Returns 0 or -EINVAL with a message in err. */
int sl_broker_parse(const char *s, struct sl_broker_addr *out, char *err, size_t err_bytes);

/* ---- transports ----
 *
 * "kafka://HOST:PORT[,HOST:PORT...]" names a Kafka cluster by its bootstrap servers (port 9092 when left out). The
 * objects made with it talk to the cluster through librdkafka:
 *   - the producer is librdkafka's idempotent producer (enable.idempotence, acks=all) at acks fsync; written and
 *     none map to acks=1 and acks=0, where Kafka allows no idempotence. Keys are partitioned by librdkafka's
 *     murmur2_random, which is sl_partition_for_key: a key lands in the same partition on either transport.
 *   - the fetcher and the group consumer are librdkafka consumers; group commits, group listing and description
 *     and operator commits go through Kafka's group coordinator and Admin API (AlterConsumerGroupOffsets, ...).
 *   - lag and the times of a group's partitions are computed here from ListOffsets and the committed offsets.
 *   - the security options below become librdkafka settings: a user is SASL SCRAM-SHA-256 (sasl.username,
 *     sasl.password), TLS is security.protocol SSL or SASL_SSL with ssl.ca.location, ssl.certificate.location and
 *     ssl.key.location from its files; settings given in an sl_kafka_config replace them.
 * What Kafka has no equivalent for is refused with -EOPNOTSUPP and a message saying so: the cleaner on demand
 * (sl_topic_compact), synclogd's retention for groups, forced commits while a group has members (Kafka never
 * allows them), and the per-partition bytes and segments of sl_topic_describe (reported as unknown). */
#define SL_KAFKA_SCHEME            "kafka://"
#define SL_KAFKA_PORT_DEFAULT      "9092"
/* Servers in one Kafka address, and the characters of the address: far more than any cluster lists. */
#define SL_KAFKA_SERVERS_MAX       64
#define SL_KAFKA_ADDRESS_BYTES_MAX 4096

/* True when broker names a Kafka cluster (starts with kafka://). */
bool sl_broker_is_kafka(const char *broker);

/* librdkafka settings for the objects made on a Kafka cluster: security (security.protocol, sasl.*, ssl.*),
 * timeouts, ... (CONFIGURATION.md of librdkafka). They are applied after the library's own (so they may replace
 * them; replacing partitioner or enable.idempotence gives up what the section above promises) and ignored by the
 * native transport. bootstrap.servers is refused there: the broker address names the servers. The strings are
 * owned by the config. */
struct sl_kafka_setting {
	char *key;
	char *value;
};
struct sl_kafka_config {
	struct sl_kafka_setting *settings;
	uint32_t count;
	uint32_t cap;
};
/* Settings one config holds at most: a bound on what a settings file may cost. */
#define SL_KAFKA_SETTINGS_MAX 1024
/* Add "KEY=VALUE" (a later setting of a key replaces the earlier one). Returns 0, -EINVAL (no '=' or an empty key,
 * err says so), -E2BIG (SL_KAFKA_SETTINGS_MAX), -ENOMEM. */
int sl_kafka_config_add(struct sl_kafka_config *cfg, const char *key_value, char *err, size_t err_bytes);
/* Add the settings of a file in the Java properties form librdkafka's and Kafka's tools take: KEY=VALUE lines,
 * blank lines and lines starting with # or ! skipped, spaces around the key and the value trimmed. Returns 0, or
 * -ENOENT/-EACCES/-EIO (cannot read it) or -EINVAL (a line that is no setting, with its number) with err set. */
int sl_kafka_config_read_file(struct sl_kafka_config *cfg, const char *path, char *err, size_t err_bytes);
/* The value of key in cfg, or NULL. */
const char *sl_kafka_config_get(const struct sl_kafka_config *cfg, const char *key);
void sl_kafka_config_free(struct sl_kafka_config *cfg);

/* ---- connection and admin calls ---- */

/* ---- security: TLS and SCRAM-SHA-256 ---- */

/* A principal's name (a user, or a client certificate's CN) as the broker reports it, with its NUL. */
#define SL_PRINCIPAL_BYTES_MAX 65

/* How to reach a broker that wants TLS or authentication (synclogd --tls-cert, --auth scram), or a Kafka cluster
 * that wants SASL SCRAM-SHA-256 or TLS ("transports" above). NULL fields are unset. The strings are copied by the
 * calls that take these options. */
struct sl_security_options {
	const char *user;     /* authenticate as this user with SCRAM-SHA-256; NULL: do not authenticate */
	const char *password; /* the user's password */
	bool tls;             /* connect with TLS (1.2 or later); implied by tls_ca and tls_cert */
	const char *tls_ca;   /* PEM CA certificates that must have signed the broker's; NULL: the system's */
	const char *tls_cert; /* a client certificate (PEM chain) for mutual TLS, with tls_key */
	const char *tls_key;
};

/* Fill o from the environment: SYNCLOG_USER, SYNCLOG_PASSWORD, SYNCLOG_TLS (1, true or yes), SYNCLOG_TLS_CA,
 * SYNCLOG_TLS_CERT, SYNCLOG_TLS_KEY; unset variables leave their fields NULL (false). The pointers are into the
 * environment. */
void sl_security_options_from_env(struct sl_security_options *o);

/* Topic names are at most 200 characters (the broker's rule, proto/frame.c). */
#define SL_TOPIC_NAME_BYTES_MAX  200
/* Requests that get no answer within this time fail with -ETIMEDOUT: long enough for a broker that is busy
 * fsyncing a large group commit, short enough that a stuck one is noticed. */
#define SL_IO_TIMEOUT_MS_DEFAULT 30000

struct sl_conn;

/* Create a connection object for broker ("HOST:PORT"); it does not connect yet. client_id names this client in
 * the broker's logs (may be NULL). Returns 0, -EINVAL (bad address; *out is NULL), -ENOMEM. */
int sl_conn_new(struct sl_conn **out, const char *broker, const char *client_id);
/* Use o (NULL: none) for this connection from its next connect on: TLS, a client certificate, SCRAM-SHA-256
 * credentials. Reads the certificate files now. Returns 0, -EINVAL (a certificate without its key, a user
 * without a password), -EIO (a CA, certificate or key file that cannot be used), -ENOMEM; sl_conn_error says
 * which. */
int sl_conn_set_security(struct sl_conn *c, const struct sl_security_options *o);
/* The principal the broker authenticated this connection as ("" when none). */
const char *sl_conn_principal(const struct sl_conn *c);
/* Connect (TCP_NODELAY; TLS when set), say Hello and authenticate when credentials are set, waiting at most the
 * connection's timeout. A connection already open is closed first. Returns 0, or -ECONNREFUSED, -ETIMEDOUT,
 * -EHOSTUNREACH, -EPROTO (the peer is not a synclog broker or speaks another version, or TLS failed: an untrusted
 * certificate, a name that does not match), -EACCES (authentication failed, or the broker requires it and no
 * user was set), ... with sl_conn_error set. */
int sl_conn_connect(struct sl_conn *c);
/* Use cfg (copied; NULL: none) for a connection to a Kafka cluster, from its next connect on; a native connection
 * ignores it. Returns 0 or -ENOMEM. */
int sl_conn_set_kafka_config(struct sl_conn *c, const struct sl_kafka_config *cfg);
/* True when c talks to a Kafka cluster. */
bool sl_conn_is_kafka(const struct sl_conn *c);
/* On a Kafka cluster, the health states of group describe, group list and status are judged by this client from
 * one snapshot (consumer/client/kafka_health.c), with this stall-after (default 60 s, as synclogd's). synclogd
 * judges its own (sl_group_alter): -EOPNOTSUPP there, with c's error saying so. */
int sl_conn_set_stall_after(struct sl_conn *c, int64_t stall_after_ms);
/* The stall-after a Kafka group is judged with unless the caller sets one (synclogd's default --stall-after). */
#define SL_KAFKA_STALL_AFTER_MS_DEFAULT 60000
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
	bool compact;            /* keep only the newest version of each key (the cleaner) */
	/* The active segment rolls past this size or age; sealed segments are what retention drops. 0 in a create:
	 * the broker's default; list and describe return the values in effect. */
	int64_t segment_bytes;
	int64_t segment_ms;
	/* Read back from the broker (list, describe, alter); set them at create with sl_topic_create_settings. */
	int64_t delete_retention_ms; /* compacted topics: how long a tombstone outlives its first clean */
	bool retain_for_groups;      /* retention keeps what a group with a commit has not consumed */
	/* Kafka clusters: copies of each partition (0 in a create: the cluster's default.replication.factor; read
	 * back from its metadata). Always 1 on synclogd, a single node. */
	int32_t replication_factor;
	/* Read back: true when the cluster did not describe the topic's settings (a Kafka cluster without a
	 * controller to answer DescribeConfigs, such as librdkafka's mock): the settings above are then defaults,
	 * not the topic's. */
	bool settings_unknown;
};

/* A topic setting in the operator's form: key retention.ms, retention.bytes, compact, delete.retention.ms,
 * segment.bytes, segment.ms, retain.for.groups; value as text. */
struct sl_topic_setting {
	const char *key;
	const char *value;
};

/* What the cleaner did on one partition (sl_topic_compact with wait). */
struct sl_compact_result {
	uint32_t partition;
	int error; /* Synclog__ErrorCode; 0 when it was cleaned */
	char error_message[256];
	uint64_t bytes_before; /* of the segments cleaned */
	uint64_t bytes_after;
	uint64_t records_removed;
	uint64_t tombstones_removed;
	int64_t duration_ms;
};

struct sl_partition_info {
	uint32_t partition;
	int64_t earliest_offset;
	int64_t next_offset;
	uint64_t bytes;
	uint32_t segments;
	int error; /* Synclog__ErrorCode; 0 when the partition is healthy */
	char error_message[256];
	/* Compacted topics: dirty bytes over sealed bytes, and the cleaner's work on it since the broker started. */
	double dirty_ratio;
	int64_t last_clean_ms; /* 0: not cleaned since the broker started */
	int64_t last_clean_duration_ms;
	uint64_t cleaner_records_removed;
	uint64_t cleaner_tombstones_removed;
	uint64_t tombstones_kept; /* by the last clean */
	char cleaner_error[256];  /* of the last clean; empty when it succeeded */
	/* true on a Kafka cluster, whose brokers keep bytes and segments to themselves: bytes and segments are 0 */
	bool size_unknown;
};

enum sl_offset_spec { SL_OFFSET_EARLIEST = 0, SL_OFFSET_LATEST = 1, SL_OFFSET_TIMESTAMP = 2 };

/* The admin calls below send one request on c (connecting first if it is not connected) and wait for its answer.
 * They need c to have nothing else in flight. A broker error is returned as a negative errno:
 * UNKNOWN_TOPIC -ENOENT, TOPIC_EXISTS -EEXIST, INVALID_* -EINVAL, THROTTLED -EAGAIN, NOT_ENOUGH_SPACE -ENOSPC,
 * STORAGE_ERROR -EIO, BROKER_SHUTTING_DOWN -ESHUTDOWN, UNSUPPORTED_FEATURE -EOPNOTSUPP, AUTHENTICATION_FAILED
 * -EACCES, TOPIC_, GROUP_ and CLUSTER_AUTHORIZATION_FAILED -EPERM, UNKNOWN_USER -ENOENT, anything else -EPROTO;
 * sl_conn_broker_error says which. */
int sl_topic_create(struct sl_conn *c, const struct sl_topic_config *config);
/* sl_topic_create with settings applied after config (checked as sl_topic_alter checks them): -EINVAL with the
 * broker's message for a bad key or value. */
int sl_topic_create_settings(struct sl_conn *c, const struct sl_topic_config *config,
                             const struct sl_topic_setting *settings, uint32_t count);
/* Change settings of a topic, all or none, in effect without a restart; *config_out (may be NULL) gets the
 * settings in effect after it. */
int sl_topic_alter(struct sl_conn *c, const char *name, const struct sl_topic_setting *settings, uint32_t count,
                   struct sl_topic_config *config_out);
/* Run the cleaner on every partition of a compacted topic now (its active segments are rolled first). With wait,
 * return once every partition was cleaned, with one result per partition in *results_out (allocated, free()
 * it; may be NULL): set a long timeout on c first (sl_conn_set_timeout), a clean of a large topic takes minutes.
 * -EINVAL when the topic is not compacted, -EIO when a partition failed (its result says why). */
int sl_topic_compact(struct sl_conn *c, const char *name, bool wait, struct sl_compact_result **results_out,
                     uint32_t *count_out);
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
/* Whether the log still holds a delete (a record with op delete or a null value) at topic/partition/offset: false
 * when retention or the cleaner removed it. For the applier, which purges a target's deleted row only once the log
 * no longer holds its delete. Returns 0 with *present_out, or a negative errno. */
int sl_delete_in_log(struct sl_conn *c, const char *topic, uint32_t partition, int64_t offset, bool *present_out);

/* ---- sync contracts (a topic's contract, stored and versioned by the broker; consumer/sync/contract.h reads it) ----
 */

struct sl_contract_record {
	uint32_t version;
	char set_by[256];  /* who the client that set it said it was */
	char peer[64];     /* the address it set it from */
	int64_t set_at_ms; /* wall clock */
	char *text;        /* the file as written (allocated) */
	char *contract;    /* the normalized JSON object (allocated) */
};
/* What the broker's produce path saw of the contract's idempotency-key clause since the current version was set
 * (or the broker started: since_ms). */
struct sl_contract_enforcement {
	uint32_t current_version;
	int64_t since_ms;
	uint64_t live_records;
	uint64_t records_without_idempotency_key;
	uint64_t batches_refused;
	uint64_t records_refused;
};
/* Store a new version of topic's contract: text (the file) and contract (its normalized JSON, which the broker reads
 * its produce clause from), set_by naming who sets it. expected_version not 0: refused (-EINVAL) unless the current
 * version is that one; SL_CONTRACT_EXPECT_NONE: unless the topic has none yet. *out (may be NULL) gets the version
 * stored; free it with sl_contract_record_free. Returns 0, -ENOENT (no such topic), -EINVAL (CONTRACT_INVALID, or not
 * the expected version), -EAGAIN (another change is being written), ... */
#define SL_CONTRACT_EXPECT_NONE UINT32_MAX
int sl_topic_contract_set(struct sl_conn *c, const char *topic, const char *text, const char *contract,
                          const char *set_by, uint32_t expected_version, struct sl_contract_record *out);
/* Read topic's contract: version (0: the current one) into *out (may be NULL), with history every version kept,
 * oldest first, into *history_out (an array of *history_count_out; free each record, then the array), and the
 * produce path's counts into *enforcement_out (may be NULL). Returns 0, -ENOENT (no such topic), -ENODATA (no
 * contract, or not that version), ... */
int sl_topic_contract_get(struct sl_conn *c, const char *topic, uint32_t version, struct sl_contract_record *out,
                          bool history, struct sl_contract_record **history_out, uint32_t *history_count_out,
                          struct sl_contract_enforcement *enforcement_out);
void sl_contract_record_free(struct sl_contract_record *r);

/* ---- users and ACLs (the broker's, over the connection; need the cluster admin operation) ---- */

struct sl_user_info {
	char name[SL_PRINCIPAL_BYTES_MAX];
	uint32_t iterations; /* of its SCRAM-SHA-256 verifier */
	bool super_user;     /* named by synclogd --super-users */
};
/* Add user name with password, or replace its password. The verifier (salt, iterations, keys) is computed here:
 * the password never leaves this process. iterations 0: 4096. Returns 0 (*created_out: whether the user is new;
 * may be NULL), -EINVAL (name not 1 to 64 of [A-Za-z0-9._@-]), -EPERM (not allowed), ... */
int sl_user_set_password(struct sl_conn *c, const char *name, const char *password, uint32_t iterations,
                         bool *created_out);
/* Returns 0, -ENOENT (no such user), -EPERM, ... */
int sl_user_delete(struct sl_conn *c, const char *name);
/* *users_out (allocated, sorted by name, free() it) has *count_out entries. */
int sl_user_list(struct sl_conn *c, struct sl_user_info **users_out, uint32_t *count_out);

/* One ACL (synclogd's broker/acl.h): principal a user or "*"; resource "topic", "group" or "cluster"; name a
 * resource name, a prefix (prefix true) or "*", "" for the cluster; op one of the resource's operations (topic:
 * produce, consume, describe, alter, delete; group: read, describe, delete, reset; cluster: admin). */
struct sl_acl_entry {
	char principal[SL_PRINCIPAL_BYTES_MAX];
	char resource[16];
	char name[SL_TOPIC_NAME_BYTES_MAX + 1];
	bool prefix;
	char op[16];
};
/* *enforced_out (may be NULL) says whether the broker checks ACLs (it runs with authentication). Add returns 0
 * (*created_out false: it was there), -EINVAL (an ACL the broker refuses: sl_conn_error says why), -EPERM, ...;
 * remove returns 0 with *removed_out 0 or 1. */
int sl_acl_add(struct sl_conn *c, const struct sl_acl_entry *acl, bool *created_out, bool *enforced_out);
int sl_acl_remove(struct sl_conn *c, const struct sl_acl_entry *acl, uint32_t *removed_out, bool *enforced_out);
/* The ACLs of principal (NULL or "": all): *acls_out (allocated, free() it) has *count_out entries. */
int sl_acl_list(struct sl_conn *c, const char *principal, struct sl_acl_entry **acls_out, uint32_t *count_out,
                bool *enforced_out);

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
	const char *broker;                         /* "HOST:PORT" */
	const char *client_id;                      /* may be NULL */
	const struct sl_security_options *security; /* TLS and credentials; NULL: none */
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
	/* Every record this producer sends has origin=backfill (sl_producer_send refuses any other with -EINVAL),
	 * and its requests say so (ProduceRequest.backfill): the broker counts them against the topic's backfill
	 * quota, from the batch headers alone, and holds its answers back when they go faster; the producer then
	 * also waits out the throttle time the answer names before it sends again. */
	bool backfill;
	sl_producer_delivery_cb delivery_cb;
	void *delivery_cb_arg;
	/* librdkafka settings when broker is a Kafka cluster (may be NULL). */
	const struct sl_kafka_config *kafka_config;
};

/* The broker keeps the last SL_PRODUCER_BATCHES_KEPT batches per producer and partition (proto/limits.h): a retry
 * further back than that could not be recognised as a duplicate. One request holds at most one batch per
 * partition, so SL_PRODUCER_REQUESTS_IN_FLIGHT_MAX requests in flight keep every retry within reach. */

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

/* SL_FROM_BEFORE_END: from_offset (start_offset) records before the log end of each partition, or its start when it
 * holds fewer (kcat's -o -N). */
enum sl_from { SL_FROM_EARLIEST = 0, SL_FROM_LATEST, SL_FROM_OFFSET, SL_FROM_TIMESTAMP, SL_FROM_BEFORE_END };

struct sl_fetcher_options {
	const char *broker;
	const char *client_id;
	const struct sl_security_options *security; /* TLS and credentials; NULL: none */
	const char *topic;
	int32_t partition; /* one partition, or -1 for every partition of the topic */
	enum sl_from from;
	int64_t from_offset;       /* SL_FROM_OFFSET: the same offset in every partition read; SL_FROM_BEFORE_END: N */
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
	/* Offsets the broker says were lost to disk damage (RECORDS_LOST, cut out by synclogd --repair): false
	 * (default) makes sl_fetcher_fetch fail with -ENODATA naming the range; true goes on after them and counts
	 * them in sl_fetcher_lost. */
	bool skip_lost;
	/* librdkafka settings when broker is a Kafka cluster (may be NULL). */
	const struct sl_kafka_config *kafka_config;
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
 * partition went away), -EBADMSG (a corrupt batch), -ENODATA (offsets lost to disk damage, without skip_lost),
 * or a connection error. */
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
/* Offsets lost to disk damage that skip_lost went past. */
uint64_t sl_fetcher_lost(const struct sl_fetcher *f);
const char *sl_fetcher_error(const struct sl_fetcher *f);
void sl_fetcher_free(struct sl_fetcher *f);

/* ---- record text format (what `synclog consume` prints; the input side is consumer/sync/record_input.h) ---- */

/* Print one record as a line (with its newline).
 *   text: PARTITION<TAB>OFFSET<TAB>KEY<TAB>VALUE, key and value as their bytes except that a tab, newline or
 *         carriage return in them is written \t, \n, \r (so a line is always one record of four fields; a
 *         backslash itself is written as it is, so a JSON value stays the JSON it was); a null key or value as
 *         nothing.
 *   JSON: {"partition":P,"offset":O,"key":K,"value":V,"version":N,"op":"...","origin":"...","timestamp_ms":T,
 *         "idempotency_key":I} where K and I are strings or null; V is the value itself when it is valid JSON
 *         (printed compact, so the line stays one line), else the value as a string, and null for a tombstone;
 *         version is null when the record has none. Bytes that are not UTF-8 are printed as \u00XX, each byte as
 *         the code point of its value. "schema_version" is added when it is not 0.
 * Return 0 or -EIO when out reports an error. */
int sl_record_print_text(FILE *out, uint32_t partition, const struct sl_record *r);
/* One key or value as the text format writes it (tab, newline, carriage return escaped). */
int sl_record_print_tsv_field(FILE *out, const void *bytes, size_t len);
int sl_record_print_json(FILE *out, uint32_t partition, const struct sl_record *r);
/* JSON helpers the printers use, for other tools: a JSON string of the bytes; and the bytes as JSON if they are
 * valid JSON text (RFC 8259 as jansson reads it: nesting up to 2048 deep, integers within int64, no number that
 * overflows a double, no lone UTF-16 surrogate escape), minified, else as a JSON string. */
int sl_json_print_string(FILE *out, const void *bytes, size_t len);
int sl_json_print_value(FILE *out, const void *bytes, size_t len);
/* True when bytes[0..len) is one valid JSON value (as above), surrounding whitespace allowed. */
bool sl_json_valid(const void *bytes, size_t len);

/* ---- time ---- */

/* Parse an ISO 8601 date-time: YYYY-MM-DD, optionally followed by T (or a space) HH:MM, :SS, .fraction (up to 9
 * digits, kept to the millisecond), and a zone: Z, +HH:MM, +HHMM or +HH (or -). Without a zone the time is UTC.
 * Returns 0 with milliseconds since the epoch, or -EINVAL. */
int sl_time_parse_iso8601(const char *s, int64_t *ms_out);
/* A point in time as the tools take it (`consume --from @TIME`, `offsets reset --to-datetime TIME`): an ISO 8601
 * date-time as above, milliseconds since the epoch (digits only: 1714564800000), or "-" and a duration before
 * now_ms (-10m, -PT2H: sl_duration_parse). Returns 0 with milliseconds since the epoch, or -EINVAL. */
int sl_time_parse(const char *s, int64_t now_ms, int64_t *ms_out);

/* ==== consumer groups (consumer/group.c, consumer/group_admin.c, consumer/offset_reset.c) ====
 *
 * A group is one target: its members share the partitions of the topics they subscribe to, the broker stores
 * its committed offsets durably, and groups are independent of each other. The group consumer below joins a
 * group, reads the partitions the broker assigns to it, heartbeats, follows rebalances and commits offsets;
 * the admin calls list, describe and delete groups and commit offsets as an operator (offset reset).
 *
 * Delivery is at-least-once: a record is committed only after poll returned it and the caller came back for
 * more (or committed by hand), and a partition that moves to another member is read again from its last commit.
 * The broker bumps a group's generation the moment a member joins, leaves or expires, so the commit a member
 * attempts after learning of a rebalance is normally refused (ILLEGAL_GENERATION): the records read since the
 * last commit are then read again by the new owner. The refusal is never hidden: it is counted in the stats and
 * reported to the rebalance callback (committed == false). */

#define SL_GROUP_NAME_BYTES_MAX 200
#define SL_MEMBER_ID_BYTES_MAX  256
/* A group consumer subscribes to at most this many topics (the broker's limit per member). */
#define SL_CONSUMER_TOPICS_MAX  64

struct sl_consumer;

/* One record handed out by sl_consumer_poll. */
struct sl_consumer_record {
	const char *topic; /* one of the subscribed names: valid until sl_consumer_free */
	uint32_t partition;
	struct sl_record record; /* record.offset is its offset; pointers valid until the next sl_consumer_poll */
};

/* One partition in a rebalance callback. */
struct sl_consumer_partition {
	const char *topic;
	uint32_t partition;
	/* SL_CONSUMER_ASSIGNED: where reading starts (the committed offset, else the start position of the options);
	 * SL_CONSUMER_REVOKED: the consumed position (the offset after the last record poll returned). */
	int64_t offset;
	/* SL_CONSUMER_REVOKED: false when records read from it since its last commit will be read again by the next
	 * owner (the commit was refused or failed: at-least-once); true when that position is committed or nothing
	 * was read since the partition was assigned. Always true for SL_CONSUMER_ASSIGNED. */
	bool committed;
};

enum sl_consumer_change { SL_CONSUMER_ASSIGNED = 1, SL_CONSUMER_REVOKED = 2 };

/* Called from sl_consumer_subscribe and sl_consumer_poll when the assignment changes: first REVOKED with the
 * partitions this member lost, then ASSIGNED with those it gained (partitions kept across a rebalance appear in
 * neither and keep their positions). From inside the callback the consumer may be asked for its stats, error,
 * member id and generation, and sl_consumer_seek may move an ASSIGNED partition (for a target that keeps its
 * own offsets, such as the SQLite applier). Commits of REVOKED partitions are refused: they belong to another
 * member now. */
typedef void (*sl_consumer_rebalance_cb)(struct sl_consumer *c, enum sl_consumer_change change,
                                         const struct sl_consumer_partition *partitions, uint32_t count, void *cb_arg);

struct sl_consumer_options {
	const char *broker;                         /* "HOST:PORT" */
	const char *client_id;                      /* may be NULL; prefixes the member id the broker gives */
	const struct sl_security_options *security; /* TLS and credentials; NULL: none */
	/* Static membership (may be NULL): joining with the instance id of a member still in the group replaces it at
	 * once instead of waiting for its session to expire (a process restarted after a crash takes its partitions
	 * back). One instance id per process: two live members with one id fence each other. */
	const char *instance_id;
	const char *group;
	const char *const *topics; /* topic_count names, copied */
	uint32_t topic_count;
	/* Where a partition with no committed offset starts: SL_FROM_EARLIEST (default), SL_FROM_LATEST,
	 * SL_FROM_OFFSET (start_offset, clamped to the log), SL_FROM_BEFORE_END (start_offset records before the log
	 * end) or SL_FROM_TIMESTAMP (the first record at or after start_timestamp_ms, else the log end). A partition
	 * with a commit starts there (clamped to the log). */
	enum sl_from start;
	int64_t start_offset;
	int64_t start_timestamp_ms;
	/* The broker removes a member it has not heard from for this long: 0 means the broker's default (10 s);
	 * allowed 1000 to 300000. Heartbeats are sent from sl_consumer_poll at the interval the broker answers. */
	uint32_t session_timeout_ms;
	/* Commit the consumed positions every auto_commit_interval_ms (checked in poll; 0: at every poll), before a
	 * rebalance and in sl_consumer_close. Off: only sl_consumer_commit* commit. */
	bool auto_commit;
	uint32_t auto_commit_interval_ms;
	/* Stop each partition at the log end as it was when the partition was assigned (sl_consumer_done says when
	 * every assigned partition is there); otherwise follow the log. */
	bool stop_at_end;
	/* Longest wait of one Fetch (long poll); a consumer of several topics divides it among them. */
	uint32_t max_wait_ms;
	uint32_t partition_bytes_max;
	uint32_t io_timeout_ms;
	uint32_t reconnect_timeout_ms;
	sl_consumer_rebalance_cb rebalance_cb; /* may be NULL */
	void *rebalance_cb_arg;
	/* librdkafka settings when broker is a Kafka cluster (may be NULL). */
	const struct sl_kafka_config *kafka_config;
	/* Count records found removed by retention when a partition is assigned (its commit is behind the log start,
	 * or a new group starts from the earliest record after some expired) in stats.records_lost and report them
	 * to the broker with the next commit (default). Off for a caller that keeps its own positions (the applier)
	 * and reports with sl_consumer_add_lost. */
	bool report_lost;
};

/* Defaults: start earliest, session timeout 0 (the broker's 10 s), auto_commit on every 5000 ms (Kafka's
 * auto.commit.interval.ms: at most 5 s of records read again after a crash or rebalance), following,
 * max_wait_ms 500 (a consumer with nothing to read still comes back to its caller's loop twice a second; poll
 * shortens the wait further to the next heartbeat), partition_bytes_max 1 MiB (as the fetcher),
 * io_timeout_ms 30 s, reconnect_timeout_ms 15 s (as the fetcher). */
void sl_consumer_options_init(struct sl_consumer_options *o);

/* Connect, join the group with the topics and learn this member's partitions and where each starts (the
 * rebalance callback runs with them). Returns 0, -EINVAL (bad options or names), -ENOENT (a topic does not
 * exist), -ENOMEM, or a connection error, with err set. */
int sl_consumer_subscribe(struct sl_consumer **out, const struct sl_consumer_options *o, char *err, size_t err_bytes);

/* Up to records_max records of the assigned partitions, in offset order per partition. Waits at most timeout_ms
 * for the first one (-1: until one arrives or, with stop_at_end, sl_consumer_done). Heartbeats, auto-commits and
 * rebalances happen inside; before handing out records it also checks the group's generation when its last check
 * is 50 ms old, so a member replaced by a rebalance stops within that. The records of the previous poll count as
 * consumed once this is called. Records
 * returned before become invalid. Returns the number of records (0: none within the timeout), -EINTR (a signal
 * interrupted a wait; call again), or a failure the consumer cannot get past: the broker unreachable for
 * reconnect_timeout_ms, a topic deleted (-ENOENT), a corrupt batch (-EBADMSG), -ENOMEM. Does no allocation or
 * system call per record. */
int sl_consumer_poll(struct sl_consumer *c, int timeout_ms, struct sl_consumer_record *records, uint32_t records_max);

/* Commit offset (the next offset to consume) of one assigned partition now, and wait until the broker made it
 * durable. Returns 0, -ESTALE (the partition is not assigned to this member, or the group has a new generation:
 * the next poll joins it again), -EIDRM (this member expired from the group), or a connection error. */
int sl_consumer_commit(struct sl_consumer *c, const char *topic, uint32_t partition, int64_t offset);
/* Same, for several partitions in one request (all or none). */
struct sl_topic_partition_offset {
	const char *topic;
	uint32_t partition;
	int64_t offset;
};
/* Metadata a commit may carry: synclogd keeps up to 1024 bytes (broker/groups.h), Kafka 4096 by default. */
#define SL_COMMIT_METADATA_BYTES_MAX 1024
int sl_consumer_commit_offsets(struct sl_consumer *c, const struct sl_topic_partition_offset *offsets, uint32_t count);
/* Commit the consumed position of every assigned partition that moved since its last commit (what auto-commit
 * does). Returns 0 (also when nothing moved) or as sl_consumer_commit. */
int sl_consumer_commit_consumed(struct sl_consumer *c);

/* Read partition (assigned to this member) from offset on; records of the last poll not yet handed out are
 * dropped. Returns 0, -ESTALE (not assigned) or -EINVAL. */
int sl_consumer_seek(struct sl_consumer *c, const char *topic, uint32_t partition, int64_t offset);
/* The consumed position of an assigned partition, or -1. */
int64_t sl_consumer_position(const struct sl_consumer *c, const char *topic, uint32_t partition);
/* The current assignment: *count_out partitions (offset: the consumed position), valid until the next call on c. */
const struct sl_consumer_partition *sl_consumer_assignment(struct sl_consumer *c, uint32_t *count_out);
/* With stop_at_end: true once every assigned partition reached its end (also with no partitions assigned). */
bool sl_consumer_done(const struct sl_consumer *c);
const char *sl_consumer_member_id(const struct sl_consumer *c);
int32_t sl_consumer_generation(const struct sl_consumer *c);
/* The group's reset generation as last heard (join answers): it grows with every operator commit (offset reset).
 * When it changes while a member, every assigned partition starts again from the committed offsets. */
int64_t sl_consumer_reset_generation(const struct sl_consumer *c);
/* Counters sent with every later commit (an applier's running totals: shown by the broker). */
struct sl_applier_info;
void sl_consumer_set_applier_info(struct sl_consumer *c, const struct sl_applier_info *a);
/* Report records of an assigned partition found removed by retention before they were read (sent with the next
 * commit of that partition). Returns 0, -ESTALE (not assigned) or -EINVAL. */
int sl_consumer_add_lost(struct sl_consumer *c, const char *topic, uint32_t partition, int64_t records);
/* Leave the group without committing (a consumer that refuses to read past a gap). After it, only _error,
 * _stats_get and _free may be called. */
int sl_consumer_leave(struct sl_consumer *c);

struct sl_consumer_stats {
	uint64_t records;         /* handed out by poll */
	uint64_t commits;         /* commit requests the broker acknowledged */
	uint64_t commits_refused; /* refused: a new generation (zombie), or this member expired */
	uint64_t commit_failures; /* failed otherwise (connection, storage) */
	uint64_t rebalances;      /* joins after the first */
	uint64_t skipped;         /* records deleted by retention before they could be read */
	uint64_t records_lost;    /* found lost when partitions were assigned (options report_lost) */
	uint64_t resets;          /* offset resets of the group seen while a member (all partitions re-read) */
};
void sl_consumer_stats_get(const struct sl_consumer *c, struct sl_consumer_stats *out);
const char *sl_consumer_error(const struct sl_consumer *c);

/* Commit the consumed positions (with auto_commit; refused ones are retried once after joining the current
 * generation, for the partitions this member still owns), then leave the group so that its partitions move to
 * the other members at once. Returns 0 or the first failure (the member is gone either way). After it, only
 * _error, _stats_get and _free may be called. */
int sl_consumer_close(struct sl_consumer *c);
/* Free everything. Without a close before, the member does not leave: the broker removes it after its session
 * timeout (what a crash looks like). */
void sl_consumer_free(struct sl_consumer *c);

/* ---- group admin calls (on a connection, like the topic calls above) ---- */

/* Broker group errors as errno: UNKNOWN_GROUP -ENOENT, UNKNOWN_MEMBER -EIDRM, ILLEGAL_GENERATION and
 * REBALANCE_IN_PROGRESS -ESTALE, GROUP_NOT_EMPTY -EBUSY, INVALID_GROUP_NAME -EINVAL, GROUP_LIMIT -EUSERS. */

/* A group partition's health as the broker judges it: "ok", "idle", "lagging", "stalled", "stopped", "lost". */
#define SL_GROUP_STATE_BYTES 16

struct sl_group_summary {
	char group[SL_GROUP_NAME_BYTES_MAX + 1];
	uint32_t members;
	int32_t generation;
	char state[SL_GROUP_STATE_BYTES]; /* the worst of its partitions' states */
	int64_t state_since_ms;
	int64_t lag;    /* records, all partitions */
	int64_t lag_ms; /* the largest of its partitions */
};
/* Every group: *groups_out (allocated, sorted by name, free() it) has *count_out entries. The broker answers in
 * pages of 1,000; this asks page after page. */
int sl_group_list(struct sl_conn *c, struct sl_group_summary **groups_out, uint32_t *count_out);

/* An applier's running totals as its target keeps them, reported with its commits. */
struct sl_applier_info {
	uint64_t applied, stale, duplicate, deleted, dead_lettered;
	char target[512];
	int64_t reported_ms; /* 0: no applier reported */
};

struct sl_group_member_info {
	char member_id[SL_MEMBER_ID_BYTES_MAX];
	char client_id[128];
	char client_host[64];
	int64_t last_heartbeat_ms;
	uint32_t partition_count; /* partitions assigned, all topics */
};
/* One partition of a group (proto GroupPartitionLag). */
struct sl_group_lag {
	char topic[SL_TOPIC_NAME_BYTES_MAX + 1];
	uint32_t partition;
	int64_t committed;   /* -1: nothing committed */
	int64_t next_offset; /* the log end */
	int64_t lag;         /* records not yet consumed (from the log start when nothing is committed) */
	int64_t lag_ms;      /* now minus the timestamp of the oldest unconsumed record; 0 when caught up */
	char member_id[SL_MEMBER_ID_BYTES_MAX]; /* "": not assigned */
	int64_t last_commit_ms;                 /* wall clock; 0: never */
	char state[SL_GROUP_STATE_BYTES];
	int64_t state_since_ms;
	int64_t records_lost; /* removed by retention before the group read them (state lost) */
	/* The stall-after its state is judged with: the group's, else its topic's sync contract's, else the
	 * broker's. */
	int64_t stall_after_ms;
	/* "" when nothing is at risk; else why the group may miss records or deletes (retention keeps records only
	 * for it, or its lag nears the topic's delete.retention.ms). */
	char at_risk[320];
};
struct sl_group_description {
	char group[SL_GROUP_NAME_BYTES_MAX + 1];
	int32_t generation;
	int64_t reset_generation;
	char state[SL_GROUP_STATE_BYTES]; /* the worst of its partitions' */
	int64_t stall_after_ms;           /* effective health settings */
	uint32_t window;
	struct sl_applier_info applier;
	struct sl_group_member_info *members;
	uint32_t member_count;
	struct sl_group_lag *partitions; /* by topic, then partition */
	uint32_t partition_count;
	/* A Kafka cluster that does not answer DescribeGroups (librdkafka's mock): the members are not known, and
	 * member_count is 0 for that reason only. Kafka keeps no commit times either: last_commit_ms is 0 there. */
	bool members_unknown;
};
/* Every partition of every topic the group commits to or subscribes to. *out is allocated: free it with
 * sl_group_description_free. Returns 0, -ENOENT (no such group), ... */
int sl_group_describe(struct sl_conn *c, const char *group, struct sl_group_description **out);
void sl_group_description_free(struct sl_group_description *d);
/* Delete a group and its offsets; refused with -EBUSY while it has live members, unless force. */
int sl_group_delete(struct sl_conn *c, const char *group, bool force);
/* Set a group's health settings (0: the broker's --stall-after / --health-window). */
int sl_group_alter(struct sl_conn *c, const char *group, int64_t stall_after_ms, uint32_t window);

/* ---- operations: status and run reports (consumer/client/status.c) ---- */

struct sl_status_topic {
	char name[SL_TOPIC_NAME_BYTES_MAX + 1];
	uint32_t partitions, partitions_unavailable;
	uint64_t bytes;
	int64_t records;
	double records_in_per_s, records_out_per_s;
};
struct sl_run_report {
	char kind[16]; /* "backfill", "reconcile" or "contract" (a contract check) */
	char topic[SL_TOPIC_NAME_BYTES_MAX + 1];
	char target[512];
	int64_t started_ms, finished_ms;
	bool ok;
	char summary[256];
	uint64_t rows, differences;
	double diff_ratio;
	uint64_t repaired; /* reconcile --repair: keys repaired through the log (acknowledged); 0 otherwise */
};
struct sl_status {
	char broker_version[64];
	int64_t started_ms, now_ms;
	char data_dir[1024];
	uint64_t data_bytes, disk_free_bytes, disk_total_bytes;
	uint32_t connections;
	struct sl_status_topic *topics;
	uint32_t topic_count;
	struct sl_group_summary *groups;
	struct sl_applier_info *appliers; /* parallel to groups */
	uint32_t group_count;
	struct sl_run_report *runs;
	uint32_t run_count;
	/* A Kafka cluster (sl_kafka_status_get): the broker's version, start, data directory and sizes, disk,
	 * connections, topic bytes and rates, applier counters and runs are unknown (left 0); kafka_brokers is the
	 * brokers its metadata names. groups_unknown: the cluster does not list groups (groups_why says why). */
	bool kafka;
	uint32_t kafka_brokers;
	bool groups_unknown;
	char groups_why[SL_ERROR_BYTES];
};
/* One screen's worth from the broker; free with sl_status_free. */
int sl_status_get(struct sl_conn *c, struct sl_status **out);
void sl_status_free(struct sl_status *s);
/* Tell the broker how a backfill, reconcile or contract check run ended (kept for `synclog status` and the metrics; a
 * successful backfill clears the `lost` state of the groups reading the topic). */
int sl_run_report(struct sl_conn *c, const struct sl_run_report *run);
/* The committed offsets of count partitions of topic (-1: nothing committed) and their commit times (may be
 * NULL; 0 when nothing is committed). */
int sl_group_offsets_fetch(struct sl_conn *c, const char *group, const char *topic, const uint32_t *partitions,
                           uint32_t count, int64_t *offsets_out, int64_t *commit_ms_out);
/* What a group has committed for one partition, with the metadata kept with it (sl_group_committed_get). */
struct sl_committed {
	int64_t offset;    /* -1: nothing committed */
	int64_t commit_ms; /* 0 when nothing is committed, or the cluster does not say (Kafka) */
	char metadata[SL_COMMIT_METADATA_BYTES_MAX + 1];
};
/* sl_group_offsets_fetch with the metadata of each commit, into out[i] for partitions[i]. */
int sl_group_committed_get(struct sl_conn *c, const char *group, const char *topic, const uint32_t *partitions,
                           uint32_t count, struct sl_committed *out);
/* An operator's commit of count partitions of one topic, with metadata[i] (at most SL_COMMIT_METADATA_BYTES_MAX
 * bytes; NULL: none) kept beside offsets[i], for a tool that resumes from its commits (`synclog copy`). Refused
 * with -EBUSY while the group has live members. All or nothing. */
int sl_group_offsets_commit_metadata(struct sl_conn *c, const char *group, const char *topic,
                                     const uint32_t *partitions, const int64_t *offsets, const char *const *metadata,
                                     uint32_t count);
/* An operator's commit (no member, generation -1): refused with -EBUSY while the group has live members, unless
 * force. All or nothing. */
int sl_group_offsets_commit(struct sl_conn *c, const char *group, const struct sl_topic_partition_offset *offsets,
                            uint32_t count, bool force);

/* ---- offset reset planning (pure: no I/O; `synclog offsets reset` and its tests) ---- */

enum sl_reset_kind {
	SL_RESET_EARLIEST = 0,
	SL_RESET_LATEST,
	SL_RESET_OFFSET,   /* value: the offset */
	SL_RESET_DATETIME, /* value: ms since the epoch; --by-duration is resolved to this (now minus duration) */
	SL_RESET_SHIFT,    /* value: records to move, negative to go back */
};

struct sl_reset_spec {
	enum sl_reset_kind kind;
	int64_t value;
};

/* What the plan of one partition needs to know. */
struct sl_reset_input {
	int64_t earliest;  /* the log start */
	int64_t next;      /* the log end */
	int64_t committed; /* -1: nothing committed */
	int64_t at_time;   /* SL_RESET_DATETIME: the broker's first offset with a timestamp >= the time, or next */
};

/* The rules (each has a test in tests/unit/test_offset_reset.c):
 *   1. The new offset is always within [earliest, next]; a value outside is clamped and *clamped_out set so the
 *      tool can warn.
 *   2. DATETIME after the last record gives next (the log end), never -1.
 *   3. SHIFT moves from the effective position: the commit clamped to [earliest, next], or earliest when
 *      nothing is committed (where a consumer starting from the log start would begin).
 *   4. EARLIEST, LATEST, OFFSET and DATETIME do not depend on the commit: a partition with no commit moves to
 *      the position the spec names. */
int64_t sl_reset_plan(const struct sl_reset_spec *spec, const struct sl_reset_input *in, bool *clamped_out);

/* Durations (sl_duration_parse: 30s, 10m, 2h, 7d or ISO 8601 such as PT30M; sl_duration_parse_iso8601: ISO 8601
 * only, as Java's Duration.parse) come from proto/base/duration.h, included above: one parser for every tool. */

/* A planned reset of one partition, as `offsets reset` prints and exports it. */
struct sl_offset_row {
	char topic[SL_TOPIC_NAME_BYTES_MAX + 1];
	uint32_t partition;
	int64_t old_offset; /* -1: nothing was committed */
	int64_t new_offset;
};
/* Rows a plan file may hold: far more than any real reset (about 40 MB of CSV), and a bound on what reading one
 * file can cost. */
#define SL_OFFSET_ROWS_MAX 1000000u
/* CSV plan files: a header line "topic,partition,old_offset,new_offset", then one line per row. Reading finds
 * the columns by the header: topic, partition and new_offset (or offset) are required, old_offset and any
 * other column are ignored; blank lines are skipped. A file whose first line is a row of three fields
 * topic,partition,offset is read as Kafka's headerless format (kafka-consumer-groups --from-file). Topic names never
 * hold commas or quotes, so no field is quoted. Write returns 0 or -EIO; read returns 0 with *rows_out (allocated,
 * free() it) or -EINVAL with the line number in err, -E2BIG, -ENOMEM, -EIO. */
int sl_offset_rows_write_csv(FILE *out, const struct sl_offset_row *rows, size_t count);
int sl_offset_rows_read_csv(FILE *in, struct sl_offset_row **rows_out, size_t *count_out, char *err, size_t err_bytes);

#endif
