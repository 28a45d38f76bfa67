/* Tests of the producer (consumer/producer*.c) against a broker played by a thread of this test: batches are
 * assembled as configured, keys go to their murmur2 partition, and retries after throttling or a lost connection
 * neither lose nor duplicate a record, while a refused batch fails itself and everything after it in its
 * partition. With 10,000 partitions, a pass of the producer visits only the partitions that have work
 * (producer_impl.h, invariant 7), lingers and expiries are still met, and requests take partitions in turns. The
 * mock keeps idempotent-producer state as the broker does (broker/producer_state.h). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "consumer/client/producer_impl.h" /* one test reaches the producer's socket */
#include "consumer/client/synclog.h"
#include "proto/synclog.pb-c.h"

/* The broker's largest topic (SL_TOPIC_PARTITIONS_MAX in broker/topics.h). */
#define MOCK_PARTITIONS_MAX 10000
#define MOCK_RECORDS_MAX    50000
#define MOCK_KEPT_BATCHES   5
#define MOCK_ARRIVALS_MAX   64

struct mock_record {
	char key[32];
	char value[64];
};

struct mock_kept {
	int32_t base_sequence;
	int32_t count;
	int64_t base_offset;
};

struct mock_partition {
	int32_t next_sequence;
	struct mock_kept kept[MOCK_KEPT_BATCHES];
	uint32_t kept_count;
	struct mock_record *records; /* index = offset; allocated at the partition's first batch */
	int64_t next_offset;
};

struct mock {
	int listen_fd;
	uint16_t port;
	pthread_t thread;
	uint32_t partitions;
	/* Faults, by produce request number (1-based, counted over all connections). */
	int throttle_first;   /* answer the first N with THROTTLED, appending nothing */
	int drop_at[4];       /* append, then close the connection without answering */
	int refuse_at;        /* answer STORAGE_ERROR for every batch, appending nothing */
	int slow_read_us;     /* read 1 KiB at a time, sleeping this long after each read */
	uint32_t frame_bytes; /* the frame limit Hello announces; 0: 16 MiB */
	volatile int hold;    /* read nothing while set: requests wait in the socket */
	volatile int stop;    /* the thread exits */
	volatile int go_away; /* close everything and refuse connections (broker gone) */
	/* What happened. */
	int produce_requests;
	int duplicates;
	int connections;
	int corrupt_batches; /* failed validation: answered CORRUPT_BATCH */
	int32_t records_per_batch_max;
	uint32_t arrivals[MOCK_ARRIVALS_MAX]; /* partition of each batch received, in order */
	int arrival_count;
	struct mock_partition part[MOCK_PARTITIONS_MAX];
	Synclog__ProducePartitionResult results[MOCK_PARTITIONS_MAX];
	Synclog__ProducePartitionResult *result_ptrs[MOCK_PARTITIONS_MAX];
	uint8_t scratch[1 << 20];
};

static struct mock *mock;

static int read_exact(int fd, void *buf, size_t len)
{
	uint8_t *p = buf;

	while (len > 0) {
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		ssize_t n;

		if (mock->stop || mock->go_away)
			return -1;
		if (mock->hold) {
			usleep(1000);
			continue;
		}
		if (poll(&pfd, 1, 50) <= 0)
			continue;
		n = read(fd, p, mock->slow_read_us > 0 && len > 1024 ? 1024 : len);
		if (n <= 0)
			return -1;
		if (mock->slow_read_us > 0)
			usleep((useconds_t)mock->slow_read_us);
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int respond(int fd, Synclog__Response *resp)
{
	size_t len = synclog__response__get_packed_size(resp);
	uint8_t *buf = malloc(len + 4);
	int rc = 0;

	buf[0] = (uint8_t)(len >> 24);
	buf[1] = (uint8_t)(len >> 16);
	buf[2] = (uint8_t)(len >> 8);
	buf[3] = (uint8_t)len;
	synclog__response__pack(resp, buf + 4);
	if (write(fd, buf, len + 4) != (ssize_t)(len + 4))
		rc = -1;
	free(buf);
	return rc;
}

/* Append or recognise one batch; fills the result as the broker would. */
static void mock_batch(uint32_t partition, ProtobufCBinaryData *batch, Synclog__ProducePartitionResult *res)
{
	struct mock_partition *mp = &mock->part[partition];
	struct sl_batch_header h;
	struct sl_record_iter it;
	struct sl_record r;
	const char *why;

	if (sl_batch_validate(batch->data, batch->len, &h, mock->scratch, sizeof(mock->scratch), &why) != 0) {
		res->error = SYNCLOG__ERROR_CODE__CORRUPT_BATCH;
		mock->corrupt_batches++;
		return;
	}
	assert_true(h.producer_id == 7 && h.producer_epoch == 0);
	if (h.record_count > mock->records_per_batch_max)
		mock->records_per_batch_max = h.record_count;
	if (mock->arrival_count < MOCK_ARRIVALS_MAX)
		mock->arrivals[mock->arrival_count++] = partition;
	if (mp->records == NULL)
		assert_non_null(mp->records = calloc(MOCK_RECORDS_MAX, sizeof(*mp->records)));
	for (uint32_t i = 0; i < mp->kept_count; i++) {
		if (mp->kept[i].base_sequence == h.base_sequence && mp->kept[i].count == h.record_count) {
			res->base_offset = mp->kept[i].base_offset;
			res->last_offset = mp->kept[i].base_offset + h.record_count - 1;
			res->duplicate = 1;
			mock->duplicates++;
			return;
		}
	}
	if (h.base_sequence != mp->next_sequence) {
		res->error = SYNCLOG__ERROR_CODE__OUT_OF_ORDER_SEQUENCE;
		return;
	}
	res->base_offset = mp->next_offset;
	assert_int_equal(sl_record_iter_init(&it, batch->data, batch->len, mock->scratch, sizeof(mock->scratch)), 0);
	while (sl_record_iter_next(&it, &r) == 1) {
		struct mock_record *mr = &mp->records[mp->next_offset++];

		assert_true(mp->next_offset <= MOCK_RECORDS_MAX);
		snprintf(mr->key, sizeof(mr->key), "%.*s", r.key_len > 0 ? r.key_len : 0, r.key ? (char *)r.key : "");
		snprintf(mr->value, sizeof(mr->value), "%.*s", r.value_len > 0 ? r.value_len : 0,
		         r.value ? (char *)r.value : "");
	}
	res->last_offset = mp->next_offset - 1;
	if (mp->kept_count == MOCK_KEPT_BATCHES) {
		memmove(&mp->kept[0], &mp->kept[1], sizeof(mp->kept[0]) * (MOCK_KEPT_BATCHES - 1));
		mp->kept_count--;
	}
	mp->kept[mp->kept_count++] = (struct mock_kept){h.base_sequence, h.record_count, res->base_offset};
	mp->next_sequence = h.base_sequence + h.record_count;
}

/* Returns -1 when the connection is to be closed without an answer. */
static int mock_produce(Synclog__ProduceRequest *req, Synclog__Response *resp, Synclog__ProduceResponse *body,
                        Synclog__ProducePartitionResult *results, Synclog__ProducePartitionResult **ptrs)
{
	int number = ++mock->produce_requests;
	bool drop = false;

	for (size_t i = 0; i < sizeof(mock->drop_at) / sizeof(mock->drop_at[0]); i++)
		drop |= mock->drop_at[i] == number;
	assert_true(req->n_partitions <= MOCK_PARTITIONS_MAX);
	body->n_results = req->n_partitions;
	body->results = ptrs;
	for (size_t i = 0; i < req->n_partitions; i++) {
		Synclog__ProducePartitionResult *res = &results[i];

		synclog__produce_partition_result__init(res);
		ptrs[i] = res;
		res->partition = req->partitions[i]->partition;
		assert_true(res->partition < mock->partitions);
		if (number <= mock->throttle_first)
			res->error = SYNCLOG__ERROR_CODE__THROTTLED;
		else if (number == mock->refuse_at)
			res->error = SYNCLOG__ERROR_CODE__STORAGE_ERROR;
		else
			mock_batch(res->partition, &req->partitions[i]->batch, res);
	}
	resp->body_case = SYNCLOG__RESPONSE__BODY_PRODUCE;
	resp->produce = body;
	return drop ? -1 : 0;
}

static void mock_serve(int fd)
{
	for (;;) {
		Synclog__Response resp = SYNCLOG__RESPONSE__INIT;
		Synclog__HelloResponse hello = SYNCLOG__HELLO_RESPONSE__INIT;
		Synclog__DescribeTopicResponse describe = SYNCLOG__DESCRIBE_TOPIC_RESPONSE__INIT;
		Synclog__TopicConfig config = SYNCLOG__TOPIC_CONFIG__INIT;
		Synclog__InitProducerResponse init = SYNCLOG__INIT_PRODUCER_RESPONSE__INIT;
		Synclog__ProduceResponse produce = SYNCLOG__PRODUCE_RESPONSE__INIT;
		Synclog__Request *req;
		uint8_t header[4], *payload;
		uint32_t len;
		int rc = 0;

		if (read_exact(fd, header, 4) != 0)
			return;
		len = (uint32_t)header[0] << 24 | (uint32_t)header[1] << 16 | (uint32_t)header[2] << 8 | header[3];
		payload = malloc(len);
		if (read_exact(fd, payload, len) != 0) {
			free(payload);
			return;
		}
		req = synclog__request__unpack(NULL, len, payload);
		free(payload);
		assert_non_null(req);
		resp.correlation_id = req->correlation_id;
		switch (req->body_case) {
		case SYNCLOG__REQUEST__BODY_HELLO:
			hello.protocol_version = 1;
			hello.max_frame_bytes = mock->frame_bytes ? mock->frame_bytes : 16u << 20;
			resp.body_case = SYNCLOG__RESPONSE__BODY_HELLO;
			resp.hello = &hello;
			break;
		case SYNCLOG__REQUEST__BODY_DESCRIBE_TOPIC:
			config.name = req->describe_topic->name;
			config.partitions = mock->partitions;
			describe.config = &config;
			resp.body_case = SYNCLOG__RESPONSE__BODY_DESCRIBE_TOPIC;
			resp.describe_topic = &describe;
			break;
		case SYNCLOG__REQUEST__BODY_INIT_PRODUCER:
			init.producer_id = 7;
			resp.body_case = SYNCLOG__RESPONSE__BODY_INIT_PRODUCER;
			resp.init_producer = &init;
			break;
		case SYNCLOG__REQUEST__BODY_PRODUCE:
			rc = mock_produce(req->produce, &resp, &produce, mock->results, mock->result_ptrs);
			break;
		default:
			fail_msg("unexpected request %d", req->body_case);
		}
		if (rc == 0)
			rc = respond(fd, &resp);
		synclog__request__free_unpacked(req, NULL);
		if (rc != 0)
			return;
	}
}

static void *mock_main(void *arg)
{
	(void)arg;
	while (!mock->stop) {
		struct pollfd pfd = {.fd = mock->listen_fd, .events = POLLIN};
		int fd;

		if (poll(&pfd, 1, 50) <= 0)
			continue;
		fd = accept(mock->listen_fd, NULL, NULL);
		if (fd < 0)
			continue;
		if (mock->go_away) {
			close(fd); /* a broker on its way down: the connection ends before Hello is answered */
			continue;
		}
		mock->connections++;
		if (mock->slow_read_us > 0) {
			int bytes = 8192; /* a small window: what the mock has not read stays with the producer */

			setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bytes, sizeof(bytes));
		}
		mock_serve(fd);
		close(fd);
	}
	return NULL;
}

static int mock_start(void **state)
{
	struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(addr);

	mock = calloc(1, sizeof(*mock));
	mock->partitions = 1;
	mock->listen_fd = socket(AF_INET, SOCK_STREAM, 0);
	if (bind(mock->listen_fd, (struct sockaddr *)&addr, sizeof(addr)) != 0 || listen(mock->listen_fd, 4) != 0)
		return -1;
	getsockname(mock->listen_fd, (struct sockaddr *)&addr, &len);
	mock->port = ntohs(addr.sin_port);
	return pthread_create(&mock->thread, NULL, mock_main, NULL);
}

static int mock_stop(void **state)
{
	mock->stop = 1;
	pthread_join(mock->thread, NULL);
	close(mock->listen_fd);
	for (int i = 0; i < MOCK_PARTITIONS_MAX; i++)
		free(mock->part[i].records);
	free(mock);
	return 0;
}

/* ---- the producer under test ---- */

#define SENT_MAX MOCK_RECORDS_MAX

struct outcome {
	int reported; /* times the callback ran for this record */
	int status;
	uint32_t partition;
	int64_t offset;
	bool duplicate;
};

static struct outcome outcomes[SENT_MAX];
static char keys[SENT_MAX][32];
static char values[SENT_MAX][64];

static void delivered_cb(void *opaque, const struct sl_delivery *d, void *cb_arg)
{
	struct outcome *o = &outcomes[(uintptr_t)opaque];

	(void)cb_arg;
	o->reported++;
	o->status = d->status;
	o->partition = d->partition;
	o->offset = d->offset;
	o->duplicate = d->duplicate;
	if (d->status != 0)
		assert_non_null(d->error);
}

static struct sl_producer *producer_open(struct sl_producer_options *o)
{
	static char broker[32];
	struct sl_producer *p;
	char err[SL_ERROR_BYTES];

	snprintf(broker, sizeof(broker), "127.0.0.1:%u", mock->port);
	o->broker = broker;
	o->topic = "orders";
	o->delivery_cb = delivered_cb;
	memset(outcomes, 0, sizeof(outcomes));
	if (sl_producer_new(&p, o, err, sizeof(err)) != 0)
		fail_msg("producer: %s", err);
	return p;
}

static void send_n(struct sl_producer *p, int first, int n, bool keyed)
{
	for (int i = first; i < first + n; i++) {
		struct sl_record r = {.version = SL_VERSION_NONE, .timestamp_ms = 1700000000000 + i};

		snprintf(keys[i], sizeof(keys[i]), "key-%d", i % 97);
		snprintf(values[i], sizeof(values[i]), "value-%d", i);
		r.key = keyed ? (const uint8_t *)keys[i] : NULL;
		r.key_len = keyed ? (int32_t)strlen(keys[i]) : -1;
		r.value = (const uint8_t *)values[i];
		r.value_len = (int32_t)strlen(values[i]);
		assert_int_equal(sl_producer_send(p, SL_PARTITION_ANY, &r, (void *)(uintptr_t)i), 0);
	}
}

/* Records first .. first + n - 1, sent to one partition named by the caller. */
static void send_to(struct sl_producer *p, int32_t partition, int first, int n)
{
	for (int i = first; i < first + n; i++) {
		struct sl_record r = {.version = SL_VERSION_NONE, .timestamp_ms = 1700000000000 + i, .key_len = -1};

		snprintf(values[i], sizeof(values[i]), "value-%d", i);
		r.value = (const uint8_t *)values[i];
		r.value_len = (int32_t)strlen(values[i]);
		assert_int_equal(sl_producer_send(p, partition, &r, (void *)(uintptr_t)i), 0);
	}
}

/* Poll without flushing until nothing is pending: what seals here seals by linger, by size, or not at all. */
static void poll_until_reported(struct sl_producer *p)
{
	for (int i = 0; i < 2000 && sl_producer_pending(p) > 0; i++)
		assert_true(sl_producer_poll(p, 10) >= 0);
	assert_true(sl_producer_pending(p) == 0);
}

/* Every record reported once, acknowledged, and stored by the mock exactly once at the offset reported. */
static void assert_all_stored_once(int n)
{
	int64_t stored = 0;

	for (uint32_t pt = 0; pt < mock->partitions; pt++)
		stored += mock->part[pt].next_offset;
	assert_int_equal(stored, n);
	assert_int_equal(mock->corrupt_batches, 0);
	for (int i = 0; i < n; i++) {
		const struct outcome *o = &outcomes[i];

		assert_int_equal(o->reported, 1);
		assert_int_equal(o->status, 0);
		assert_string_equal(mock->part[o->partition].records[o->offset].value, values[i]);
	}
}

static void setup_mock(uint32_t partitions)
{
	mock->partitions = partitions;
	mock->go_away = 0;
	mock->throttle_first = 0;
	mock->refuse_at = 0;
	mock->slow_read_us = 0;
	mock->frame_bytes = 0;
	mock->hold = 0;
	memset(mock->drop_at, 0, sizeof(mock->drop_at));
	mock->produce_requests = mock->duplicates = mock->corrupt_batches = 0;
	mock->records_per_batch_max = 0;
	mock->arrival_count = 0;
	for (int i = 0; i < MOCK_PARTITIONS_MAX; i++) {
		mock->part[i].next_sequence = 0;
		mock->part[i].kept_count = 0;
		mock->part[i].next_offset = 0;
	}
}

static void producer_delivers_every_record_in_key_partition(void **state)
{
	struct sl_producer_options o;
	struct sl_producer *p;
	int64_t next[MOCK_PARTITIONS_MAX] = {0};

	setup_mock(3);
	sl_producer_options_init(&o);
	p = producer_open(&o);
	assert_int_equal(sl_producer_partition_count(p), 3);
	send_n(p, 0, 10000, true);
	assert_int_equal(sl_producer_flush(p, 10000), 0);
	assert_true(sl_producer_pending(p) == 0);
	sl_producer_free(p);
	assert_all_stored_once(10000);
	for (int i = 0; i < 10000; i++) {
		const struct outcome *out = &outcomes[i];

		assert_int_equal(out->partition, sl_partition_for_key(keys[i], strlen(keys[i]), 3));
		/* Send order is offset order within a partition. */
		assert_int_equal(out->offset, next[out->partition]++);
	}
}

static void producer_closes_batches_at_records_max(void **state)
{
	struct sl_producer_options o;
	struct sl_producer *p;

	setup_mock(1);
	sl_producer_options_init(&o);
	o.batch_records_max = 100;
	p = producer_open(&o);
	send_n(p, 0, 1000, true);
	assert_int_equal(sl_producer_flush(p, 10000), 0);
	sl_producer_free(p);
	assert_int_equal(mock->records_per_batch_max, 100);
	assert_true(mock->produce_requests >= 10);
	assert_all_stored_once(1000);
}

static void producer_compresses_with_zstd(void **state)
{
	struct sl_producer_options o;
	struct sl_producer *p;

	setup_mock(2);
	sl_producer_options_init(&o);
	o.codec = SL_BATCH_CODEC_ZSTD;
	p = producer_open(&o);
	send_n(p, 0, 5000, true);
	assert_int_equal(sl_producer_flush(p, 10000), 0);
	sl_producer_free(p);
	assert_all_stored_once(5000);
}

static void producer_retries_throttled_batches(void **state)
{
	struct sl_producer_options o;
	struct sl_producer *p;

	setup_mock(2);
	mock->throttle_first = 3;
	sl_producer_options_init(&o);
	o.retry_backoff_ms = 5;
	p = producer_open(&o);
	send_n(p, 0, 2000, true);
	assert_int_equal(sl_producer_flush(p, 10000), 0);
	sl_producer_free(p);
	assert_true(mock->produce_requests > 3);
	assert_all_stored_once(2000);
}

static void producer_resends_after_lost_connection_without_duplicates(void **state)
{
	struct sl_producer_options o;
	struct sl_producer *p;
	int duplicates_reported = 0;

	setup_mock(1);
	mock->drop_at[0] = 3;
	mock->drop_at[1] = 9;
	sl_producer_options_init(&o);
	o.batch_records_max = 500;
	o.retry_backoff_ms = 5;
	p = producer_open(&o);
	send_n(p, 0, 20000, true);
	assert_int_equal(sl_producer_flush(p, 10000), 0);
	sl_producer_free(p);
	assert_all_stored_once(20000);
	for (int i = 0; i < 20000; i++) {
		assert_int_equal(outcomes[i].offset, i); /* one partition: offsets are the input order */
		duplicates_reported += outcomes[i].duplicate;
	}
	/* The dropped requests were appended before the drop: their retries were recognised. */
	assert_true(mock->duplicates >= 2);
	assert_true(duplicates_reported >= 2 * 1);
	assert_true(mock->connections >= 3);
}

static void producer_refused_batch_fails_it_and_later_records(void **state)
{
	struct sl_producer_options o;
	struct sl_producer *p;
	int i = 0, acked = 0, failed = 0;

	setup_mock(1);
	mock->refuse_at = 3;
	sl_producer_options_init(&o);
	o.batch_records_max = 100;
	o.requests_in_flight_max = 1;
	o.linger_ms = 60000; /* batches close by count only, however slow the machine */
	p = producer_open(&o);
	send_n(p, 0, 1000, true);
	assert_int_equal(sl_producer_flush(p, 10000), 0);
	sl_producer_free(p);
	/* In send order: acknowledged records, then a run of failed ones starting with the refused batch, then
	 * (sent after the failure was reported) acknowledged ones again, stored right after the first run. */
	for (; i < 1000 && outcomes[i].status == 0; i++)
		assert_int_equal(outcomes[i].offset, acked++);
	assert_int_equal(acked, 200);
	assert_int_equal(outcomes[i].status, -EIO);
	for (; i < 1000 && outcomes[i].status != 0; i++) {
		assert_int_equal(outcomes[i].reported, 1);
		assert_true(outcomes[i].status == -EIO || outcomes[i].status == -ECANCELED);
		failed++;
	}
	assert_true(failed >= 100);
	for (; i < 1000; i++) {
		assert_int_equal(outcomes[i].status, 0);
		assert_int_equal(outcomes[i].offset, acked++);
	}
	assert_int_equal(mock->part[0].next_offset, acked);
}

/* A batch fails while its request is still being written (an earlier batch of its partition was refused): its
 * sealed slot returns to the pool and its buffer is refilled by the next batches, yet the bytes the connection
 * still had to send from it go out as they were (producer_impl.h, invariant 6). The broker reads slowly so that
 * most of the second request is still unsent when the first is answered. */
static void producer_reuses_a_failed_batch_only_after_the_connection_let_go(void **state)
{
	struct sl_producer_options o;
	struct sl_producer *p;
	int first = 25000, more = 22000;

	setup_mock(1);
	mock->refuse_at = 1;
	mock->slow_read_us = 100;
	sl_producer_options_init(&o);
	o.linger_ms = 60000; /* batches close when full, and on flush */
	p = producer_open(&o);
	/* A small send buffer too (the kernel would otherwise grow it to megabytes and take whole batches). */
	assert_int_equal(setsockopt(p->conn->fd, SOL_SOCKET, SO_SNDBUF, &(int){16384}, sizeof(int)), 0);
	/* Two full batches of 256 KiB (about 10,000 records each) in two requests, far more than the socket buffers
	 * hold, and a third filling. */
	send_n(p, 0, first, true);
	for (int i = 0; i < 1000 && outcomes[0].reported == 0; i++)
		assert_true(sl_producer_poll(p, 10) >= 0);
	assert_int_equal(outcomes[0].status, -EIO);
	/* Both requests' batches failed and went back to the pool: the next seals refill their buffers. */
	send_n(p, first, more, true);
	assert_int_equal(sl_producer_flush(p, 20000), 0);
	sl_producer_free(p);
	assert_int_equal(mock->corrupt_batches, 0);
	for (int i = 0; i < first; i++) {
		assert_int_equal(outcomes[i].reported, 1);
		assert_true(outcomes[i].status == -EIO || outcomes[i].status == -ECANCELED);
	}
	for (int i = first; i < first + more; i++) {
		assert_int_equal(outcomes[i].reported, 1);
		assert_int_equal(outcomes[i].status, 0);
		assert_int_equal(outcomes[i].offset, i - first);
		assert_string_equal(mock->part[0].records[outcomes[i].offset].value, values[i]);
	}
	assert_int_equal(mock->part[0].next_offset, more);
}

static void producer_fails_records_when_broker_is_gone(void **state)
{
	struct sl_producer_options o;
	struct sl_producer *p;

	setup_mock(1);
	sl_producer_options_init(&o);
	o.delivery_timeout_ms = 300;
	o.retry_backoff_ms = 10;
	p = producer_open(&o);
	mock->go_away = 1;
	usleep(100 * 1000); /* the mock notices and drops the connection */
	send_n(p, 0, 50, true);
	assert_int_equal(sl_producer_flush(p, 5000), 0);
	sl_producer_free(p);
	mock->go_away = 0;
	for (int i = 0; i < 50; i++) {
		assert_int_equal(outcomes[i].reported, 1);
		assert_true(outcomes[i].status == -ETIMEDOUT || outcomes[i].status == -ECANCELED);
		assert_int_equal(outcomes[i].offset, -1);
	}
}

static void producer_sticks_keyless_records_to_a_partition_per_batch(void **state)
{
	struct sl_producer_options o;
	struct sl_producer *p;
	uint32_t seen = 0;

	setup_mock(4);
	sl_producer_options_init(&o);
	o.batch_records_max = 10;
	o.linger_ms = 60000; /* batches close by count only, however slow the machine */
	p = producer_open(&o);
	send_n(p, 0, 40, false);
	assert_int_equal(sl_producer_flush(p, 10000), 0);
	sl_producer_free(p);
	assert_all_stored_once(40);
	for (int b = 0; b < 4; b++) {
		for (int i = b * 10; i < b * 10 + 10; i++)
			assert_int_equal(outcomes[i].partition, outcomes[b * 10].partition);
		seen |= 1u << outcomes[b * 10].partition;
	}
	assert_int_equal(seen, 0xf); /* four batches, four different partitions */
}

static void producer_refuses_record_larger_than_batch(void **state)
{
	struct sl_producer_options o;
	struct sl_producer *p;
	static uint8_t big[8192];
	struct sl_record r = {.version = SL_VERSION_NONE, .key_len = -1, .value = big, .value_len = sizeof(big)};

	setup_mock(1);
	sl_producer_options_init(&o);
	o.batch_bytes_max = 4096;
	p = producer_open(&o);
	assert_int_equal(sl_producer_send(p, SL_PARTITION_ANY, &r, (void *)0), -EMSGSIZE);
	assert_non_null(strstr(sl_producer_error(p), "does not fit"));
	assert_true(sl_producer_pending(p) == 0);
	sl_producer_free(p);
	assert_int_equal(outcomes[0].reported, 0);
}

/* Invariant 7 of producer_impl.h: a pass of the producer visits the partitions with an open batch due or a
 * sealed batch, not the topic's 10,000 partitions. A walk of the partition array in the seal, expiry, send or
 * next-deadline step costs at least 10,000 visits per pass; the lists cost a few here (one hot partition, three
 * cold ones holding one record each until their linger passes). */
#define WALK_VISITS_PER_PASS_MAX 64

static uint64_t visits_per_pass(const struct sl_producer *p)
{
	assert_true(p->io_passes > 0);
	return p->walk_visits / p->io_passes;
}

static void producer_pass_visits_only_partitions_with_work(void **state)
{
	struct sl_producer_options o;
	struct sl_producer *p;

	setup_mock(MOCK_PARTITIONS_MAX);
	sl_producer_options_init(&o);
	o.batch_records_max = 100; /* many batches, many passes */
	p = producer_open(&o);
	assert_int_equal(sl_producer_partition_count(p), MOCK_PARTITIONS_MAX);
	send_to(p, 0, 0, 1);
	send_to(p, 5000, 1, 1);
	send_to(p, MOCK_PARTITIONS_MAX - 1, 2, 1);
	send_to(p, 4321, 3, 20000);
	assert_int_equal(sl_producer_flush(p, 10000), 0);
	print_message("%llu passes, %llu partitions visited, %llu per pass\n", (unsigned long long)p->io_passes,
	              (unsigned long long)p->walk_visits, (unsigned long long)visits_per_pass(p));
	assert_true(p->io_passes >= 200); /* at least one pass per batch sealed */
	assert_true(visits_per_pass(p) <= WALK_VISITS_PER_PASS_MAX);
	sl_producer_free(p);
	assert_all_stored_once(20003);
	for (int i = 3; i < 20003; i++)
		assert_int_equal(outcomes[i].offset, i - 3);
}

/* Open batches of partitions far apart are sealed when their linger passes, with no flush to force them. */
static void producer_seals_by_linger_among_many_partitions(void **state)
{
	struct sl_producer_options o;
	struct sl_producer *p;

	setup_mock(MOCK_PARTITIONS_MAX);
	sl_producer_options_init(&o);
	o.linger_ms = 20;
	p = producer_open(&o);
	send_to(p, MOCK_PARTITIONS_MAX - 1, 0, 1);
	send_to(p, 1, 1, 1);
	send_to(p, 7777, 2, 500);
	send_to(p, 4242, 502, 1);
	poll_until_reported(p);
	assert_true(visits_per_pass(p) <= WALK_VISITS_PER_PASS_MAX);
	sl_producer_free(p);
	assert_all_stored_once(503);
	assert_int_equal(mock->part[MOCK_PARTITIONS_MAX - 1].next_offset, 1);
	assert_int_equal(mock->part[4242].next_offset, 1);
}

/* Batches that cannot be sent (the broker is gone) fail at their delivery timeout in every partition that holds
 * one, found through the busy list, with no flush to wait for them. */
static void producer_expires_batches_among_many_partitions(void **state)
{
	struct sl_producer_options o;
	struct sl_producer *p;

	setup_mock(MOCK_PARTITIONS_MAX);
	sl_producer_options_init(&o);
	o.delivery_timeout_ms = 300;
	o.retry_backoff_ms = 10;
	o.linger_ms = 1;
	p = producer_open(&o);
	mock->go_away = 1;
	usleep(100 * 1000); /* the mock notices and drops the connection */
	send_to(p, 3, 0, 10);
	send_to(p, 6000, 10, 10);
	send_to(p, MOCK_PARTITIONS_MAX - 1, 20, 10);
	poll_until_reported(p);
	assert_true(visits_per_pass(p) <= WALK_VISITS_PER_PASS_MAX);
	sl_producer_free(p);
	mock->go_away = 0;
	for (int i = 0; i < 30; i++) {
		assert_int_equal(outcomes[i].reported, 1);
		/* Each partition's first batch expired; a later one of the same partition fails with it. */
		if (i % 10 == 0)
			assert_int_equal(outcomes[i].status, -ETIMEDOUT);
		assert_true(outcomes[i].status == -ETIMEDOUT || outcomes[i].status == -ECANCELED);
		assert_int_equal(outcomes[i].offset, -1);
	}
}

/* Requests take partitions in turns: with room for one batch per request, a partition with a backlog does not
 * keep the others waiting until it is drained. The broker holds the first request unread while a hot partition
 * queues five batches and five cold ones one each; every cold batch then goes before the hot partition's third. */
static void producer_requests_take_partitions_in_turns(void **state)
{
	static char big[600];
	const int32_t hot = 7000, cold[] = {1, 2500, 5000, 7500, MOCK_PARTITIONS_MAX - 1};
	struct sl_producer_options o;
	struct sl_producer *p;
	int hot_seen = 0, cold_seen = 0, id = 0;

	setup_mock(MOCK_PARTITIONS_MAX);
	/* A request holds one batch of up to 1 KiB, and a batch one record of 600 bytes. */
	mock->frame_bytes = 1024 + REQUEST_OVERHEAD_BYTES + REQUEST_BATCH_OVERHEAD_BYTES;
	memset(big, 'v', sizeof(big));
	sl_producer_options_init(&o);
	o.batch_bytes_max = 1024;
	o.linger_ms = 0;
	o.requests_in_flight_max = 1;
	p = producer_open(&o);
	mock->hold = 1;
	for (int i = 0; i < 6; i++) {
		struct sl_record r = {
		        .version = SL_VERSION_NONE, .key_len = -1, .value = (uint8_t *)big, .value_len = sizeof(big)};

		assert_int_equal(sl_producer_send(p, hot, &r, (void *)(uintptr_t)id++), 0);
	}
	for (size_t c = 0; c < sizeof(cold) / sizeof(cold[0]); c++) {
		struct sl_record r = {
		        .version = SL_VERSION_NONE, .key_len = -1, .value = (uint8_t *)big, .value_len = sizeof(big)};

		assert_int_equal(sl_producer_send(p, cold[c], &r, (void *)(uintptr_t)id++), 0);
	}
	mock->hold = 0;
	assert_int_equal(sl_producer_flush(p, 10000), 0);
	sl_producer_free(p);
	for (int i = 0; i < id; i++)
		assert_int_equal(outcomes[i].status, 0);
	assert_int_equal(mock->arrival_count, id);
	assert_int_equal(mock->produce_requests, id); /* one batch per request: the frame limit held */
	for (int i = 0; i < mock->arrival_count && hot_seen < 3; i++) {
		if ((int32_t)mock->arrivals[i] == hot)
			hot_seen++;
		else
			cold_seen++;
	}
	assert_int_equal(cold_seen, 5);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(producer_delivers_every_record_in_key_partition),
	        cmocka_unit_test(producer_closes_batches_at_records_max),
	        cmocka_unit_test(producer_compresses_with_zstd),
	        cmocka_unit_test(producer_retries_throttled_batches),
	        cmocka_unit_test(producer_resends_after_lost_connection_without_duplicates),
	        cmocka_unit_test(producer_refused_batch_fails_it_and_later_records),
	        cmocka_unit_test(producer_reuses_a_failed_batch_only_after_the_connection_let_go),
	        cmocka_unit_test(producer_fails_records_when_broker_is_gone),
	        cmocka_unit_test(producer_sticks_keyless_records_to_a_partition_per_batch),
	        cmocka_unit_test(producer_refuses_record_larger_than_batch),
	        cmocka_unit_test(producer_pass_visits_only_partitions_with_work),
	        cmocka_unit_test(producer_seals_by_linger_among_many_partitions),
	        cmocka_unit_test(producer_expires_batches_among_many_partitions),
	        cmocka_unit_test(producer_requests_take_partitions_in_turns),
	};

	return cmocka_run_group_tests(tests, mock_start, mock_stop);
}
