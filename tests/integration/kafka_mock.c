/* librdkafka's mock Kafka cluster (rdkafka_mock.h) as a process, for the tests that run the sync tools against a
 * cluster of several brokers (built by `make test-build` only; Debian's librdkafka-dev):
 *
 *   kafka_mock [--brokers N]
 *       Starts a cluster of N brokers (default 3) on 127.0.0.1 ports librdkafka picks, prints
 *       "mock ready on HOST:PORT,HOST:PORT,..." (its bootstrap servers) and then serves commands from stdin, one
 *       a line, answering each with one line "ok" or "error WHAT" on stdout:
 *         topic NAME PARTITIONS [REPLICAS]   create a topic (replicas default: every broker, at most 3)
 *         leader TOPIC PARTITION BROKER      move a partition's leader to broker BROKER (1..N)
 *         down BROKER / up BROKER            take a broker down (its connections are closed and it refuses new
 *                                            ones) or bring it back
 *       It exits 0 at the end of stdin or on SIGTERM. The test keeps stdin open through a FIFO.
 *
 * The mock is an independent implementation of a Kafka broker (Produce, Fetch, ListOffsets, Metadata, the group
 * coordinator, InitProducerId, OffsetCommit and OffsetFetch); it has no controller, so CreateTopics and
 * DescribeConfigs go unanswered: the tests create topics here. */
#include <errno.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static volatile sig_atomic_t stop;

static void on_term(int sig)
{
	(void)sig;
	stop = 1;
}

static void answer(rd_kafka_resp_err_t e)
{
	if (e == RD_KAFKA_RESP_ERR_NO_ERROR)
		puts("ok");
	else
		printf("error %s\n", rd_kafka_err2str(e));
	fflush(stdout);
}

int main(int argc, char **argv)
{
	int brokers = 3;
	char err[512], line[1024];

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--brokers") == 0 && i + 1 < argc) {
			brokers = atoi(argv[++i]);
		} else {
			fprintf(stderr, "usage: kafka_mock [--brokers N]\n");
			return 2;
		}
	}
	if (brokers < 1 || brokers > 16) {
		fprintf(stderr, "kafka_mock: --brokers must be 1 to 16\n");
		return 2;
	}
	struct sigaction sa = {.sa_handler = on_term};
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	/* The mock cluster lives in a librdkafka handle of its own; it never connects anywhere. */
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	rd_kafka_conf_set(conf, "log_level", "0", err, sizeof(err));
	rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
	if (rk == NULL) {
		fprintf(stderr, "kafka_mock: %s\n", err);
		return 1;
	}
	rd_kafka_mock_cluster_t *mc = rd_kafka_mock_cluster_new(rk, brokers);
	if (mc == NULL) {
		fprintf(stderr, "kafka_mock: could not start the mock cluster\n");
		return 1;
	}
	printf("mock ready on %s\n", rd_kafka_mock_cluster_bootstraps(mc));
	fflush(stdout);
	while (!stop && fgets(line, sizeof(line), stdin) != NULL) {
		char name[256];
		int a, b;

		if (sscanf(line, "topic %255s %d %d", name, &a, &b) == 3)
			answer(rd_kafka_mock_topic_create(mc, name, a, b));
		else if (sscanf(line, "topic %255s %d", name, &a) == 2)
			answer(rd_kafka_mock_topic_create(mc, name, a, brokers < 3 ? brokers : 3));
		else if (sscanf(line, "leader %255s %d %d", name, &a, &b) == 3)
			answer(rd_kafka_mock_partition_set_leader(mc, name, a, b));
		else if (sscanf(line, "down %d", &a) == 1)
			answer(rd_kafka_mock_broker_set_down(mc, a));
		else if (sscanf(line, "up %d", &a) == 1)
			answer(rd_kafka_mock_broker_set_up(mc, a));
		else {
			printf("error unknown command: %s", line);
			fflush(stdout);
		}
	}
	rd_kafka_mock_cluster_destroy(mc);
	rd_kafka_destroy(rk);
	return 0;
}
