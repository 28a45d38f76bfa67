/* The Kafka listener's load generator on librdkafka (built by `make bench`), the peer of synclog-bench on the
 * native listener for bench/kafka.sh:
 *
 *   kafka-bench produce BROKER TOPIC COUNT RECORD_BYTES KEY_BYTES ACKS
 *       COUNT records of RECORD_BYTES value bytes and KEY_BYTES distinct key bytes (partitioned by librdkafka's
 *       murmur2_random, as our client partitions), acks 1 or -1, no compression; timed from the first produce
 *       call to the last delivery report.
 *   kafka-bench consume BROKER TOPIC COUNT
 *       reads the first COUNT records of every partition (assigned, from the beginning, no group), timed from
 *       the assignment to the last record, looking at every value.
 *
 * Prints one JSON object: records, seconds, records_per_s, mb_per_s (key and value bytes), client_cpu_s (this
 * process: librdkafka's cost, which is not the broker's). Exit 1 on any delivery or consume error. */
#include <inttypes.h>
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench/common/load.h"

/* A run that has not finished after this long has failed. */
#define RUN_TIMEOUT_S 600

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void set(rd_kafka_conf_t *conf, const char *name, const char *value)
{
	char err[512];
	if (rd_kafka_conf_set(conf, name, value, err, sizeof(err)) != RD_KAFKA_CONF_OK) {
		fprintf(stderr, "kafka-bench: %s: %s\n", name, err);
		exit(1);
	}
}

static long delivered, failed;
static double last_delivery_s;

static void delivery_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
	if (m->err)
		failed++;
	else
		delivered++;
	last_delivery_s = now_s();
}

static int produce(const char *broker, const char *topic, long count, size_t record_bytes, size_t key_bytes,
                   const char *acks)
{
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	set(conf, "bootstrap.servers", broker);
	set(conf, "acks", acks);
	set(conf, "linger.ms", "5");
	set(conf, "partitioner", "murmur2_random");
	set(conf, "queue.buffering.max.kbytes", "1048576");
	set(conf, "queue.buffering.max.messages", "1000000");
	rd_kafka_conf_set_dr_msg_cb(conf, delivery_cb);
	char err[512];
	rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
	if (rk == NULL) {
		fprintf(stderr, "kafka-bench: %s\n", err);
		return 1;
	}
	char *value = malloc(record_bytes), key[64];
	bench_fill_value((uint8_t *)value, record_bytes, 1);
	double cpu0 = bench_cpu_s(), t0 = now_s();
	for (long i = 0; i < count; i++) {
		/* Distinct keys: the record's number, zero-padded to key_bytes. */
		int kl = key_bytes ? snprintf(key, sizeof(key), "%0*ld", (int)key_bytes, i) : 0;
		for (;;) {
			rd_kafka_resp_err_t e = rd_kafka_producev(
			        rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(kl ? key : NULL, (size_t)kl),
			        RD_KAFKA_V_VALUE(value, record_bytes), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
			        RD_KAFKA_V_END);
			if (e == RD_KAFKA_RESP_ERR_NO_ERROR)
				break;
			if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
				fprintf(stderr, "kafka-bench: produce: %s\n", rd_kafka_err2str(e));
				return 1;
			}
			rd_kafka_poll(rk, 1);
		}
		if ((i & 1023) == 0)
			rd_kafka_poll(rk, 0);
	}
	while (delivered + failed < count && now_s() - t0 < RUN_TIMEOUT_S)
		rd_kafka_poll(rk, 10);
	double seconds = last_delivery_s - t0, cpu = bench_cpu_s() - cpu0;
	rd_kafka_destroy(rk);
	free(value);
	double bytes = (double)count * (double)(record_bytes + key_bytes);
	printf("{\"client\":\"librdkafka %s\",\"records\":%ld,\"failed\":%ld,\"seconds\":%.6f,\"records_per_s\":%.1f,"
	       "\"mb_per_s\":%.3f,\"client_cpu_s\":%.3f}\n",
	       rd_kafka_version_str(), delivered, failed, seconds, (double)delivered / seconds, bytes / seconds / 1e6,
	       cpu);
	return failed || delivered != count;
}

static int consume(const char *broker, const char *topic, long count)
{
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	set(conf, "bootstrap.servers", broker);
	set(conf, "group.id", "kafka-bench"); /* librdkafka needs one for its consumer; nothing is committed */
	set(conf, "enable.auto.commit", "false");
	set(conf, "enable.partition.eof", "false");
	char err[512];
	rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
	if (rk == NULL) {
		fprintf(stderr, "kafka-bench: %s\n", err);
		return 1;
	}
	const rd_kafka_metadata_t *md;
	rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
	if (rd_kafka_metadata(rk, 0, rkt, &md, 10000) != RD_KAFKA_RESP_ERR_NO_ERROR || md->topics[0].err) {
		fprintf(stderr, "kafka-bench: no metadata for %s\n", topic);
		return 1;
	}
	int partitions = md->topics[0].partition_cnt;
	rd_kafka_metadata_destroy(md);
	rd_kafka_topic_destroy(rkt);
	rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(partitions);
	for (int p = 0; p < partitions; p++)
		rd_kafka_topic_partition_list_add(parts, topic, p)->offset = RD_KAFKA_OFFSET_BEGINNING;
	double cpu0 = bench_cpu_s(), t0 = now_s();
	rd_kafka_assign(rk, parts);
	long got = 0;
	uint64_t sum = 0, bytes = 0;
	while (got < count && now_s() - t0 < RUN_TIMEOUT_S) {
		rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
		if (m == NULL)
			continue;
		if (m->err) {
			fprintf(stderr, "kafka-bench: consume: %s\n", rd_kafka_message_errstr(m));
			rd_kafka_message_destroy(m);
			return 1;
		}
		got++;
		bytes += m->len + m->key_len;
		if (m->len > 0)
			sum += ((const uint8_t *)m->payload)[m->len - 1]; /* look at every value */
		rd_kafka_message_destroy(m);
	}
	double seconds = now_s() - t0, cpu = bench_cpu_s() - cpu0;
	rd_kafka_topic_partition_list_destroy(parts);
	rd_kafka_consumer_close(rk);
	rd_kafka_destroy(rk);
	printf("{\"client\":\"librdkafka "
	       "%s\",\"records\":%ld,\"seconds\":%.6f,\"records_per_s\":%.1f,\"mb_per_s\":%.3f,"
	       "\"client_cpu_s\":%.3f,\"checksum\":%" PRIu64 "}\n",
	       rd_kafka_version_str(), got, seconds, (double)got / seconds, (double)bytes / seconds / 1e6, cpu, sum);
	return got != count;
}

int main(int argc, char **argv)
{
	if (argc == 8 && strcmp(argv[1], "produce") == 0)
		return produce(argv[2], argv[3], atol(argv[4]), (size_t)atol(argv[5]), (size_t)atol(argv[6]), argv[7]);
	if (argc == 5 && strcmp(argv[1], "consume") == 0)
		return consume(argv[2], argv[3], atol(argv[4]));
	fprintf(stderr, "usage: kafka-bench produce BROKER TOPIC COUNT RECORD_BYTES KEY_BYTES ACKS\n"
	                "       kafka-bench consume BROKER TOPIC COUNT\n");
	return 2;
}
