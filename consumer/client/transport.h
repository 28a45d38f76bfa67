/* The transport interface of the client library: every object of synclog.h (connection, producer, fetcher, group
 * consumer) is made for one of two transports, and every public call goes to that transport's implementation:
 *
 *   native   synclogd's protocol: conn.c, admin.c, group_admin.c, producer*.c, fetcher.c, group.c (the objects'
 *            own state)
 *   kafka    a Kafka cluster through librdkafka: kafka_*.c (the state hangs off the object's kafka pointer)
 *
 *   sl_conn_new(broker), sl_producer_new(o), sl_fetcher_new(o), sl_consumer_subscribe(o)
 *        |  sl_broker_is_kafka(broker)?
 *        +-- no:  the native object, kafka == NULL
 *        +-- yes: the same struct with kafka set, made by sl_kafka_*_new below
 *   every later call:  if (x->kafka != NULL) return sl_kafka_<call>(...);  else the native code
 *
 * So the dispatch is one branch at the top of each public call, and callers (the applier, backfill, reconcile,
 * copy, the CLI) never see which transport they use. Errors follow the same conventions on both: a negative errno,
 * and the object's one-line message (the kafka side writes into the same error buffers).
 *
 * INVARIANTS
 *   1. An object's transport is fixed when it is made: kafka is set by its constructor and never changes.
 *   2. A kafka object's native state is never used: the native code is only reached when kafka is NULL. A kafka
 *      connection shares only its client id, io timeout and error fields with the native one (sl_conn_error and
 *      sl_conn_broker_error read them for both).
 *   3. The kafka side takes only types of synclog.h here; librdkafka's types stay in kafka_impl.h, so the rest
 *      of the library (and the sync layer, which includes client_impl.h) never includes librdkafka's header.
 *
 * Threads: as synclog.h; librdkafka's own threads never call back into these objects (its callbacks are served
 * from the calls below, on the caller's thread). */
#ifndef SL_CONSUMER_TRANSPORT_H
#define SL_CONSUMER_TRANSPORT_H

#include "consumer/client/synclog.h"

struct sl_kafka_conn;
struct sl_kafka_producer;
struct sl_kafka_fetcher;
struct sl_kafka_consumer;

/* ---- connection and admin (c->kafka != NULL) ---- */

/* Set up c (allocated, zeroed, its io timeout and client id set) for the Kafka cluster broker names. Returns 0,
 * -EINVAL (a bad address), -ENOMEM. */
int sl_kafka_conn_new(struct sl_conn *c, const char *broker);
int sl_kafka_conn_set_config(struct sl_conn *c, const struct sl_kafka_config *cfg);
/* sl_conn_set_security on a Kafka cluster: o (may be NULL) becomes librdkafka settings (sl_kafka_config_secure),
 * under those of sl_conn_set_kafka_config, from the next connect on. Returns 0, -EINVAL or -ENOMEM. */
int sl_kafka_conn_set_security(struct sl_conn *c, const struct sl_security_options *o);
/* Create the librdkafka handle and read the cluster's metadata: 0, or -ECONNREFUSED/-ETIMEDOUT with c's error. */
int sl_kafka_conn_connect(struct sl_conn *c);
void sl_kafka_conn_close(struct sl_conn *c);
void sl_kafka_conn_free(struct sl_conn *c);

int sl_kafka_topic_create(struct sl_conn *c, const struct sl_topic_config *config,
                          const struct sl_topic_setting *settings, uint32_t count);
int sl_kafka_topic_delete(struct sl_conn *c, const char *name);
int sl_kafka_topic_list(struct sl_conn *c, struct sl_topic_config **topics_out, uint32_t *count_out);
int sl_kafka_topic_describe(struct sl_conn *c, const char *name, struct sl_topic_config *config_out,
                            struct sl_partition_info **partitions_out, uint32_t *count_out);
int sl_kafka_offsets_list(struct sl_conn *c, const char *topic, enum sl_offset_spec spec, int64_t timestamp_ms,
                          const uint32_t *partitions, uint32_t count, int64_t *offsets_out);
int sl_kafka_group_list(struct sl_conn *c, struct sl_group_summary **groups_out, uint32_t *count_out);
int sl_kafka_status_get(struct sl_conn *c, struct sl_status **out);
int sl_kafka_conn_set_stall_after(struct sl_conn *c, int64_t stall_after_ms);

/* An operator's commit on a Kafka cluster (offsets reset) carries this metadata followed by its time in ms: the
 * generation of that reset, which an applier adopts as on synclogd (its reset generation), since Kafka has none.
 * The applier's own commits carry no metadata, so the mark goes once they follow. */
#define SL_KAFKA_RESET_MARK "synclog-reset "

/* ---- a group partition's health on a Kafka cluster, judged client-side from one snapshot (kafka_health.c) ---- */

/* The states in order of severity, the worst being a group's, as synclogd's (broker/groups.h). */
enum sl_kafka_health {
	SL_KAFKA_HEALTH_IDLE = 0,
	SL_KAFKA_HEALTH_OK,
	SL_KAFKA_HEALTH_LAGGING,
	SL_KAFKA_HEALTH_STOPPED,
	SL_KAFKA_HEALTH_STALLED,
	SL_KAFKA_HEALTH_LOST,
};
/* The samples synclogd watches a lag grow over by default (its --health-window). */
#define SL_KAFKA_HEALTH_WINDOW 10
struct sl_kafka_health_input {
	int64_t log_start, committed; /* committed -1: nothing */
	int64_t lag, lag_ms;          /* as sl_group_lag */
	bool members_known;
	uint32_t members;
	int64_t stall_after_ms, now_ms;
};
/* The rules at the top of kafka_health.c; *since_ms_out 0 when unknown. */
enum sl_kafka_health sl_kafka_health_judge(const struct sl_kafka_health_input *in, int64_t *since_ms_out,
                                           int64_t *records_lost_out);
/* How long the oldest waiting record may wait before its partition is lagging. */
int64_t sl_kafka_health_lagging_ms(int64_t stall_after_ms);
const char *sl_kafka_health_name(enum sl_kafka_health h);
/* The state of a name sl_kafka_health_name gives ("" or an unknown name: idle). */
enum sl_kafka_health sl_kafka_health_of_name(const char *name);
int sl_kafka_group_describe(struct sl_conn *c, const char *group, struct sl_group_description **out);
int sl_kafka_group_delete(struct sl_conn *c, const char *group, bool force);
int sl_kafka_group_committed_get(struct sl_conn *c, const char *group, const char *topic, const uint32_t *partitions,
                                 uint32_t count, struct sl_committed *out);
int sl_kafka_group_offsets_commit(struct sl_conn *c, const char *group, const struct sl_topic_partition_offset *offsets,
                                  uint32_t count, bool force);
int sl_kafka_group_offsets_commit_metadata(struct sl_conn *c, const char *group, const char *topic,
                                           const uint32_t *partitions, const int64_t *offsets,
                                           const char *const *metadata, uint32_t count);
/* Whether the log still holds a delete at topic/partition/offset (the applier's purge that follows the log). */
int sl_kafka_delete_in_log(struct sl_conn *c, const char *topic, uint32_t partition, int64_t offset, bool *present_out);
/* Set c's error for a call Kafka has no equivalent of and return -EOPNOTSUPP. */
int sl_kafka_unsupported(struct sl_conn *c, const char *what, const char *instead);

/* ---- producer (p->kafka != NULL) ---- */

/* o has passed the native producer's option checks. */
int sl_kafka_producer_new(struct sl_kafka_producer **out, const struct sl_producer_options *o, char *err,
                          size_t err_bytes);
int sl_kafka_producer_send(struct sl_kafka_producer *k, int32_t partition, const struct sl_record *r, void *opaque);
int sl_kafka_producer_poll(struct sl_kafka_producer *k, uint32_t timeout_ms);
int sl_kafka_producer_flush(struct sl_kafka_producer *k, int timeout_ms);
int sl_kafka_producer_pollfd(const struct sl_kafka_producer *k, struct pollfd *out);
uint64_t sl_kafka_producer_pending(const struct sl_kafka_producer *k);
uint32_t sl_kafka_producer_partition_count(const struct sl_kafka_producer *k);
int sl_kafka_producer_timeout_ms(const struct sl_kafka_producer *k);
const char *sl_kafka_producer_error(const struct sl_kafka_producer *k);
void sl_kafka_producer_free(struct sl_kafka_producer *k);

/* ---- fetcher (f->kafka != NULL) ---- */

int sl_kafka_fetcher_new(struct sl_kafka_fetcher **out, const struct sl_fetcher_options *o, char *err,
                         size_t err_bytes);
int sl_kafka_fetcher_fetch(struct sl_kafka_fetcher *k);
int sl_kafka_fetcher_next(struct sl_kafka_fetcher *k, uint32_t *partition_out, struct sl_record *out);
bool sl_kafka_fetcher_done(const struct sl_kafka_fetcher *k);
int64_t sl_kafka_fetcher_position(const struct sl_kafka_fetcher *k, uint32_t partition);
uint64_t sl_kafka_fetcher_skipped(const struct sl_kafka_fetcher *k);
const char *sl_kafka_fetcher_error(const struct sl_kafka_fetcher *k);
int sl_kafka_fetcher_seek(struct sl_kafka_fetcher *k, uint32_t partition, int64_t position);
void sl_kafka_fetcher_free(struct sl_kafka_fetcher *k);

/* ---- group consumer (c->kafka != NULL) ---- */

struct sl_consumer;
int sl_kafka_consumer_subscribe(struct sl_kafka_consumer **out, struct sl_consumer *owner,
                                const struct sl_consumer_options *o, char *err, size_t err_bytes);
int sl_kafka_consumer_poll(struct sl_kafka_consumer *k, int timeout_ms, struct sl_consumer_record *records,
                           uint32_t records_max);
int sl_kafka_consumer_commit_offsets(struct sl_kafka_consumer *k, const struct sl_topic_partition_offset *offsets,
                                     uint32_t count);
int sl_kafka_consumer_commit_consumed(struct sl_kafka_consumer *k);
int sl_kafka_consumer_seek(struct sl_kafka_consumer *k, const char *topic, uint32_t partition, int64_t offset);
int64_t sl_kafka_consumer_position(const struct sl_kafka_consumer *k, const char *topic, uint32_t partition);
const struct sl_consumer_partition *sl_kafka_consumer_assignment(struct sl_kafka_consumer *k, uint32_t *count_out);
bool sl_kafka_consumer_done(const struct sl_kafka_consumer *k);
const char *sl_kafka_consumer_member_id(const struct sl_kafka_consumer *k);
int32_t sl_kafka_consumer_generation(const struct sl_kafka_consumer *k);
void sl_kafka_consumer_stats_get(const struct sl_kafka_consumer *k, struct sl_consumer_stats *out);
const char *sl_kafka_consumer_error(const struct sl_kafka_consumer *k);
int sl_kafka_consumer_close(struct sl_kafka_consumer *k);
/* Leaves the group with nothing committed (sl_consumer_leave). */
int sl_kafka_consumer_leave(struct sl_kafka_consumer *k);
void sl_kafka_consumer_free(struct sl_kafka_consumer *k);

#endif
