/* A small Kafka client on librdkafka, for the Kafka listener's integration tests (built by `make test-build` only):
 *
 *   kafka_client produce BROKER TOPIC RECORDS KEYS [--resume] [--slow] [--age-ms N]
 *       An idempotent producer (acks=all) of RECORDS keyed records: record i has key "k<i % KEYS>" and value
 *       "<i / KEYS>", its position among that key's records. With --resume it first reads the topic to the end
 *       and skips, for each key, the records already there, so a run killed with SIGKILL and restarted with
 *       --resume completes the sequence without writing a record twice. --slow pauses 2 ms every 100
 *       records, so a test can kill the run in the middle. --age-ms N stamps every record N ms in the past (a
 *       lag in time without waiting for it). Prints "produced N".
 *   kafka_client consume BROKER TOPIC GROUP OUT RECORDS [ASSIGNOR]
 *       A group member (subscribe, auto commit) that appends "partition offset key value" per record to OUT,
 *       flushed per record, and exits 0 once the topic holds RECORDS records, the group's assignment gives it
 *       every partition and it has read each to its end. ASSIGNOR is librdkafka's partition.assignment.strategy
 *       (default range,roundrobin). KAFKA_DEBUG in the environment sets librdkafka's debug contexts.
 *   kafka_client admin BROKER TOPIC
 *       librdkafka's admin API: CreateTopics (3 partitions, retention.ms and segment.ms; then again, with
 *       replication factor 3, with an unknown config, with cleanup.policy=compact), DescribeConfigs of the topic,
 *       DeleteTopics (twice). Prints
 *       one line per call: "create OK", "create TOPIC_ALREADY_EXISTS", "config retention.ms=3600000", ...
 *   kafka_client verify BROKER TOPIC RECORDS KEYS
 *       Reads the topic from the beginning: exit 0 when every key holds exactly its values 0, 1, 2, ... in
 *       order (no duplicate, no gap, per-key order), else prints the first difference and exits 1.
 *
 * Exit status: 0 success, 1 failure (reason on stderr), 2 usage. */
#include <errno.h>
#include <inttypes.h>
#include <librdkafka/rdkafka.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Bounds the waits of a test program, so a broken broker makes a test fail instead of hang. */
#define TIMEOUT_MS 60000

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void die(const char *what, const char *detail)
{
	fprintf(stderr, "kafka_client: %s: %s\n", what, detail);
	exit(1);
}

static rd_kafka_conf_t *conf_new(const char *broker)
{
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	char err[512];
	if (rd_kafka_conf_set(conf, "bootstrap.servers", broker, err, sizeof(err)) != RD_KAFKA_CONF_OK)
		die("config", err);
	return conf;
}

static void set(rd_kafka_conf_t *conf, const char *name, const char *value)
{
	char err[512];
	if (rd_kafka_conf_set(conf, name, value, err, sizeof(err)) != RD_KAFKA_CONF_OK)
		die(name, err);
}

/* ---- reading a whole topic (resume and verify) ---- */

typedef void (*record_fn)(void *ctx, int32_t partition, int64_t offset, const char *key, size_t key_len,
                          const char *value, size_t value_len);

/* Read every partition of topic from the beginning to its end as it is now. */
static void read_all(const char *broker, const char *topic, record_fn fn, void *ctx)
{
	rd_kafka_conf_t *conf = conf_new(broker);
	set(conf, "group.id", "kafka-client-reader"); /* required by librdkafka; nothing is committed */
	set(conf, "enable.auto.commit", "false");
	char err[512];
	rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
	if (rk == NULL)
		die("consumer", err);
	const rd_kafka_metadata_t *md;
	rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
	if (rd_kafka_metadata(rk, 0, rkt, &md, TIMEOUT_MS) != RD_KAFKA_RESP_ERR_NO_ERROR || md->topic_cnt != 1 ||
	    md->topics[0].err)
		die("metadata", topic);
	int n = md->topics[0].partition_cnt;
	rd_kafka_metadata_destroy(md);
	rd_kafka_topic_destroy(rkt);
	rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(n);
	int64_t *end = calloc((size_t)n, sizeof(*end));
	int remaining = 0;
	for (int p = 0; p < n; p++) {
		int64_t lo, hi;
		if (rd_kafka_query_watermark_offsets(rk, topic, p, &lo, &hi, TIMEOUT_MS) != 0)
			die("watermarks", topic);
		end[p] = hi;
		if (hi > lo) {
			rd_kafka_topic_partition_list_add(parts, topic, p)->offset = RD_KAFKA_OFFSET_BEGINNING;
			remaining++;
		}
	}
	if (rd_kafka_assign(rk, parts) != 0)
		die("assign", topic);
	int64_t deadline = now_ms() + TIMEOUT_MS;
	while (remaining > 0) {
		if (now_ms() > deadline)
			die("read", "timed out before the end of the topic");
		rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
		if (m == NULL)
			continue;
		if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
			rd_kafka_message_destroy(m);
			continue;
		}
		if (m->err)
			die("consume", rd_kafka_message_errstr(m));
		if (m->offset < end[m->partition]) {
			fn(ctx, m->partition, m->offset, m->key, m->key_len, m->payload, m->len);
			if (m->offset + 1 == end[m->partition])
				remaining--;
		}
		rd_kafka_message_destroy(m);
	}
	rd_kafka_topic_partition_list_destroy(parts);
	free(end);
	rd_kafka_consumer_close(rk);
	rd_kafka_destroy(rk);
}

struct seen {
	long keys;
	long *next; /* per key: the value expected next (verify), or one past the highest seen (resume) */
	long records;
	int bad;
};

static long key_index(const char *key, size_t len, long keys)
{
	char buf[32];
	if (len == 0 || len >= sizeof(buf) || key[0] != 'k')
		return -1;
	memcpy(buf, key + 1, len - 1);
	buf[len - 1] = '\0';
	char *end;
	long k = strtol(buf, &end, 10);
	return *end == '\0' && k >= 0 && k < keys ? k : -1;
}

static long value_of(const char *v, size_t len)
{
	char buf[32];
	if (v == NULL || len == 0 || len >= sizeof(buf))
		return -1;
	memcpy(buf, v, len);
	buf[len] = '\0';
	return strtol(buf, NULL, 10);
}

static void resume_cb(void *ctx, int32_t partition, int64_t offset, const char *key, size_t key_len, const char *value,
                      size_t value_len)
{
	struct seen *s = ctx;
	long k = key_index(key, key_len, s->keys), v = value_of(value, value_len);
	if (k >= 0 && v + 1 > s->next[k])
		s->next[k] = v + 1;
	s->records++;
}

static void verify_cb(void *ctx, int32_t partition, int64_t offset, const char *key, size_t key_len, const char *value,
                      size_t value_len)
{
	struct seen *s = ctx;
	long k = key_index(key, key_len, s->keys), v = value_of(value, value_len);
	s->records++;
	if (k < 0 || v != s->next[k]) {
		if (!s->bad)
			fprintf(stderr, "kafka_client: %d/%" PRId64 ": key %.*s value %.*s, expected value %ld\n",
			        partition, offset, (int)key_len, key, (int)value_len, value, k < 0 ? -1 : s->next[k]);
		s->bad = 1;
		return;
	}
	s->next[k]++;
}

/* ---- produce ---- */

static long delivered, delivery_errors;

static void delivery_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
	if (m->err) {
		delivery_errors++;
		fprintf(stderr, "kafka_client: delivery failed: %s\n", rd_kafka_err2str(m->err));
	} else {
		delivered++;
	}
}

static int produce(const char *broker, const char *topic, long records, long keys, int resume, int slow, long age_ms)
{
	struct seen s = {keys, calloc((size_t)keys, sizeof(long)), 0, 0};
	if (resume)
		read_all(broker, topic, resume_cb, &s);
	rd_kafka_conf_t *conf = conf_new(broker);
	set(conf, "enable.idempotence", "true");
	set(conf, "acks", "all");
	set(conf, "linger.ms", "5");
	rd_kafka_conf_set_dr_msg_cb(conf, delivery_cb);
	char err[512];
	rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
	if (rk == NULL)
		die("producer", err);
	long sent = 0;
	for (long i = 0; i < records; i++) {
		long k = i % keys, v = i / keys;
		if (v < s.next[k])
			continue; /* already in the topic from the run before */
		char key[32], value[32];
		int kl = snprintf(key, sizeof(key), "k%ld", k), vl = snprintf(value, sizeof(value), "%ld", v);
		for (;;) {
			rd_kafka_resp_err_t e =
			        rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(key, (size_t)kl),
			                          RD_KAFKA_V_VALUE(value, (size_t)vl),
			                          RD_KAFKA_V_TIMESTAMP(age_ms > 0 ? wall_ms() - age_ms : 0),
			                          RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
			if (e == RD_KAFKA_RESP_ERR_NO_ERROR)
				break;
			if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL)
				die("produce", rd_kafka_err2str(e));
			rd_kafka_poll(rk, 10);
		}
		sent++;
		rd_kafka_poll(rk, 0);
		if (slow && sent % 100 == 0)
			nanosleep(&(struct timespec){0, 2 * 1000 * 1000}, NULL);
	}
	if (rd_kafka_flush(rk, TIMEOUT_MS) != RD_KAFKA_RESP_ERR_NO_ERROR)
		die("flush", "records still unacknowledged");
	rd_kafka_resp_err_t fatal = rd_kafka_fatal_error(rk, err, sizeof(err));
	rd_kafka_destroy(rk);
	free(s.next);
	if (fatal || delivery_errors) {
		fprintf(stderr, "kafka_client: %ld delivery errors%s%s\n", delivery_errors, fatal ? ", fatal: " : "",
		        fatal ? err : "");
		return 1;
	}
	printf("produced %ld (skipped %ld already there)\n", sent, s.records);
	return sent == delivered ? 0 : 1;
}

static int verify(const char *broker, const char *topic, long records, long keys)
{
	struct seen s = {keys, calloc((size_t)keys, sizeof(long)), 0, 0};
	read_all(broker, topic, verify_cb, &s);
	for (long k = 0; k < keys && !s.bad; k++) {
		long want = records / keys + (k < records % keys);
		if (s.next[k] != want) {
			fprintf(stderr, "kafka_client: key k%ld has %ld values, expected %ld\n", k, s.next[k], want);
			s.bad = 1;
		}
	}
	free(s.next);
	if (!s.bad)
		printf("verified %ld records\n", s.records);
	return s.bad;
}

/* ---- consume in a group ---- */

static int consume(const char *broker, const char *topic, const char *group, const char *out_path, long records,
                   const char *assignor)
{
	FILE *out = fopen(out_path, "a");
	if (out == NULL)
		die(out_path, strerror(errno));
	rd_kafka_conf_t *conf = conf_new(broker);
	set(conf, "group.id", group);
	set(conf, "auto.offset.reset", "earliest");
	set(conf, "enable.auto.commit", "true");
	set(conf, "auto.commit.interval.ms", "200");
	set(conf, "session.timeout.ms", "6000");
	set(conf, "heartbeat.interval.ms", "500");
	set(conf, "partition.assignment.strategy", assignor);
	if (getenv("KAFKA_DEBUG"))
		set(conf, "debug", getenv("KAFKA_DEBUG"));
	char err[512];
	rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
	if (rk == NULL)
		die("consumer", err);
	rd_kafka_poll_set_consumer(rk);
	rd_kafka_topic_partition_list_t *sub = rd_kafka_topic_partition_list_new(1);
	rd_kafka_topic_partition_list_add(sub, topic, RD_KAFKA_PARTITION_UA);
	if (rd_kafka_subscribe(rk, sub) != 0)
		die("subscribe", topic);
	rd_kafka_topic_partition_list_destroy(sub);
	int64_t deadline = now_ms() + 4 * TIMEOUT_MS;
	int done = 0;
	while (!done) {
		if (now_ms() > deadline)
			die("consume", "timed out before owning and reading every partition");
		rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 200);
		if (m != NULL) {
			if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
				fprintf(out, "%d %" PRId64 " %.*s %.*s\n", m->partition, m->offset, (int)m->key_len,
				        (const char *)m->key, (int)m->len, (const char *)m->payload);
				fflush(out);
			} else if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
				fprintf(stderr, "kafka_client: consume: %s\n", rd_kafka_message_errstr(m));
			}
			rd_kafka_message_destroy(m);
			continue;
		}
		/* Idle: done once every partition is ours and read to its end. */
		rd_kafka_topic_partition_list_t *asg = NULL;
		if (rd_kafka_assignment(rk, &asg) != 0 || asg == NULL)
			continue;
		const rd_kafka_metadata_t *md;
		rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
		int partitions = -1;
		if (rd_kafka_metadata(rk, 0, rkt, &md, 5000) == RD_KAFKA_RESP_ERR_NO_ERROR) {
			partitions = md->topics[0].partition_cnt;
			rd_kafka_metadata_destroy(md);
		}
		rd_kafka_topic_destroy(rkt);
		/* A partition this member has read nothing from yet has no position: its committed offset stands
		 * for it (a partition taken over at its end). */
		rd_kafka_topic_partition_list_t *committed = rd_kafka_topic_partition_list_copy(asg);
		if (asg->cnt == partitions && rd_kafka_position(rk, asg) == RD_KAFKA_RESP_ERR_NO_ERROR &&
		    rd_kafka_committed(rk, committed, 5000) == RD_KAFKA_RESP_ERR_NO_ERROR) {
			for (int i = 0; i < asg->cnt; i++)
				if (asg->elems[i].offset < 0)
					asg->elems[i].offset = committed->elems[i].offset;
			done = 1;
			int64_t total = 0;
			for (int i = 0; i < asg->cnt && done; i++) {
				int64_t lo, hi;
				if (rd_kafka_get_watermark_offsets(rk, topic, asg->elems[i].partition, &lo, &hi) != 0 ||
				    rd_kafka_query_watermark_offsets(rk, topic, asg->elems[i].partition, &lo, &hi,
				                                     5000) != 0)
					done = 0;
				else
					done = asg->elems[i].offset >= hi || (hi == lo && asg->elems[i].offset < 0);
				total += hi - lo;
			}
			done &= total >= records;
		}
		rd_kafka_topic_partition_list_destroy(committed);
		rd_kafka_topic_partition_list_destroy(asg);
	}
	rd_kafka_commit(rk, NULL, 0);
	rd_kafka_consumer_close(rk);
	rd_kafka_destroy(rk);
	fclose(out);
	printf("consumed to the end of every partition\n");
	return 0;
}

/* ---- admin ---- */

static rd_kafka_event_t *admin_wait(rd_kafka_queue_t *q, rd_kafka_event_type_t type)
{
	for (;;) {
		rd_kafka_event_t *ev = rd_kafka_queue_poll(q, TIMEOUT_MS);
		if (ev == NULL)
			die("admin", "no result in time");
		if (rd_kafka_event_type(ev) == type)
			return ev;
		rd_kafka_event_destroy(ev);
	}
}

static void admin_create(rd_kafka_t *rk, rd_kafka_queue_t *q, const char *topic, int replication, const char *config,
                         const char *value)
{
	char err[512];
	rd_kafka_NewTopic_t *nt = rd_kafka_NewTopic_new(topic, 3, replication, err, sizeof(err));
	if (nt == NULL)
		die("NewTopic", err);
	rd_kafka_NewTopic_set_config(nt, "retention.ms", "3600000");
	rd_kafka_NewTopic_set_config(nt, config, value);
	rd_kafka_CreateTopics(rk, &nt, 1, NULL, q);
	rd_kafka_event_t *ev = admin_wait(q, RD_KAFKA_EVENT_CREATETOPICS_RESULT);
	size_t n;
	const rd_kafka_topic_result_t **r =
	        rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &n);
	printf("create %s\n", n == 1 ? rd_kafka_err2name(rd_kafka_topic_result_error(r[0])) : "no result");
	rd_kafka_event_destroy(ev);
	rd_kafka_NewTopic_destroy(nt);
}

static void admin_delete(rd_kafka_t *rk, rd_kafka_queue_t *q, const char *topic)
{
	rd_kafka_DeleteTopic_t *dt = rd_kafka_DeleteTopic_new(topic);
	rd_kafka_DeleteTopics(rk, &dt, 1, NULL, q);
	rd_kafka_event_t *ev = admin_wait(q, RD_KAFKA_EVENT_DELETETOPICS_RESULT);
	size_t n;
	const rd_kafka_topic_result_t **r =
	        rd_kafka_DeleteTopics_result_topics(rd_kafka_event_DeleteTopics_result(ev), &n);
	printf("delete %s\n", n == 1 ? rd_kafka_err2name(rd_kafka_topic_result_error(r[0])) : "no result");
	rd_kafka_event_destroy(ev);
	rd_kafka_DeleteTopic_destroy(dt);
}

static void admin_describe(rd_kafka_t *rk, rd_kafka_queue_t *q, const char *topic)
{
	rd_kafka_ConfigResource_t *res = rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC, topic);
	rd_kafka_DescribeConfigs(rk, &res, 1, NULL, q);
	rd_kafka_event_t *ev = admin_wait(q, RD_KAFKA_EVENT_DESCRIBECONFIGS_RESULT);
	size_t n;
	const rd_kafka_ConfigResource_t **rs =
	        rd_kafka_DescribeConfigs_result_resources(rd_kafka_event_DescribeConfigs_result(ev), &n);
	for (size_t i = 0; i < n; i++) {
		if (rd_kafka_ConfigResource_error(rs[i])) {
			printf("describe %s\n", rd_kafka_err2name(rd_kafka_ConfigResource_error(rs[i])));
			continue;
		}
		size_t k;
		const rd_kafka_ConfigEntry_t **es = rd_kafka_ConfigResource_configs(rs[i], &k);
		for (size_t j = 0; j < k; j++)
			printf("config %s=%s\n", rd_kafka_ConfigEntry_name(es[j]),
			       rd_kafka_ConfigEntry_value(es[j]) ? rd_kafka_ConfigEntry_value(es[j]) : "(null)");
	}
	rd_kafka_event_destroy(ev);
	rd_kafka_ConfigResource_destroy(res);
}

static int admin(const char *broker, const char *topic)
{
	rd_kafka_conf_t *conf = conf_new(broker);
	char err[512];
	rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
	if (rk == NULL)
		die("admin", err);
	rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
	admin_create(rk, q, topic, 1, "segment.ms", "600000");
	admin_create(rk, q, topic, 1, "segment.ms", "600000");
	admin_create(rk, q, "replicated", 3, "cleanup.policy", "delete");
	admin_create(rk, q, "configured", 1, "min.compaction.lag.ms", "5");
	admin_create(rk, q, "compacted", 1, "cleanup.policy", "compact");
	admin_describe(rk, q, topic);
	admin_delete(rk, q, topic);
	admin_delete(rk, q, topic);
	rd_kafka_queue_destroy(q);
	rd_kafka_destroy(rk);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc >= 6 && strcmp(argv[1], "produce") == 0) {
		int resume = 0, slow = 0;
		long age_ms = 0;
		for (int i = 6; i < argc; i++) {
			resume |= strcmp(argv[i], "--resume") == 0;
			slow |= strcmp(argv[i], "--slow") == 0;
			if (strcmp(argv[i], "--age-ms") == 0 && i + 1 < argc)
				age_ms = atol(argv[++i]);
		}
		return produce(argv[2], argv[3], atol(argv[4]), atol(argv[5]), resume, slow, age_ms);
	}
	if (argc == 4 && strcmp(argv[1], "admin") == 0)
		return admin(argv[2], argv[3]);
	if (argc == 6 && strcmp(argv[1], "verify") == 0)
		return verify(argv[2], argv[3], atol(argv[4]), atol(argv[5]));
	if ((argc == 7 || argc == 8) && strcmp(argv[1], "consume") == 0)
		return consume(argv[2], argv[3], argv[4], argv[5], atol(argv[6]),
		               argc == 8 ? argv[7] : "range,roundrobin");
	fprintf(stderr, "usage: kafka_client produce BROKER TOPIC RECORDS KEYS [--resume] [--slow] [--age-ms N]\n"
	                "       kafka_client consume BROKER TOPIC GROUP OUT RECORDS [ASSIGNOR]\n"
	                "       kafka_client admin BROKER TOPIC\n"
	                "       kafka_client verify BROKER TOPIC RECORDS KEYS\n");
	return 2;
}
