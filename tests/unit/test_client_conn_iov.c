/* Tests of the connection's queue of unsent segments (consumer/conn.c): requests queued with sl_conn_queue_ref,
 * whose large bytes fields are sent from the caller's memory, reach the socket byte for byte as
 * synclog__request__pack would write them, in queue order with copied requests, across partial sends; and the
 * caller's memory can be reused once sl_conn_release copied what still referred to it. The peer is the other end
 * of a socketpair, read in small pieces so that sends stop in the middle of segments. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "consumer/client/client_impl.h"

#define PARTS_MAX       8
/* The peer reads at most this much at a time: odd, so that reads and sends end inside segments. */
#define PEER_READ_BYTES 3001

struct produce {
	Synclog__Request req;
	Synclog__ProduceRequest body;
	Synclog__ProducePartition parts[PARTS_MAX];
	Synclog__ProducePartition *ptrs[PARTS_MAX];
};

struct peer {
	int fd;
	uint8_t *got;
	size_t len, cap;
};

static struct sl_conn *conn_open(struct peer *peer)
{
	struct sl_conn *c;
	int sv[2], bytes = 4096;

	assert_int_equal(sl_conn_new(&c, "127.0.0.1:1", "test"), 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	/* A small send buffer: a large reference takes many sends, most of them ending inside it. */
	assert_int_equal(setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &bytes, sizeof(bytes)), 0);
	assert_int_equal(fcntl(sv[1], F_SETFL, O_NONBLOCK), 0);
	c->fd = sv[0];
	memset(peer, 0, sizeof(*peer));
	peer->fd = sv[1];
	return c;
}

static void conn_done(struct sl_conn *c, struct peer *peer)
{
	sl_conn_free(c);
	close(peer->fd);
	free(peer->got);
}

static void fill(uint8_t *buf, size_t len, unsigned seed)
{
	for (size_t i = 0; i < len; i++)
		buf[i] = (uint8_t)(i * 31 + seed * 7 + (i >> 8));
}

static void produce_init(struct produce *pr, uint8_t **batches, const size_t *lens, uint32_t n)
{
	assert_true(n <= PARTS_MAX);
	synclog__request__init(&pr->req);
	synclog__produce_request__init(&pr->body);
	for (uint32_t i = 0; i < n; i++) {
		synclog__produce_partition__init(&pr->parts[i]);
		pr->parts[i].partition = i;
		pr->parts[i].batch.data = batches[i];
		pr->parts[i].batch.len = lens[i];
		pr->ptrs[i] = &pr->parts[i];
	}
	pr->body.topic = "orders";
	pr->body.acks = SYNCLOG__ACKS__ACKS_WRITTEN;
	pr->body.n_partitions = n;
	pr->body.partitions = pr->ptrs;
	pr->req.body_case = SYNCLOG__REQUEST__BODY_PRODUCE;
	pr->req.produce = &pr->body;
}

/* Append the frame synclog__request__pack makes of req (its correlation id as queued) to *buf. */
static void expect_frame(const Synclog__Request *req, uint8_t **buf, size_t *len)
{
	size_t size = synclog__request__get_packed_size(req);

	*buf = realloc(*buf, *len + SL_FRAME_HEADER_BYTES + size);
	assert_non_null(*buf);
	sl_frame_put_length(*buf + *len, (uint32_t)size);
	assert_int_equal(synclog__request__pack(req, *buf + *len + SL_FRAME_HEADER_BYTES), size);
	*len += SL_FRAME_HEADER_BYTES + size;
}

static void peer_read(struct peer *peer, size_t max)
{
	ssize_t n;

	if (peer->cap - peer->len < max) {
		peer->cap = peer->len + max + (1u << 20);
		peer->got = realloc(peer->got, peer->cap);
		assert_non_null(peer->got);
	}
	n = read(peer->fd, peer->got + peer->len, max);
	if (n < 0)
		assert_true(errno == EAGAIN);
	else
		peer->len += (size_t)n;
}

/* Send everything queued while the peer reads it in small pieces. Returns how many times a send stopped inside a
 * referenced segment (its head no longer at one of the starts given). */
static int drain(struct sl_conn *c, struct peer *peer, uint8_t *const *starts, uint32_t start_count)
{
	int partial_refs = 0;

	for (int round = 0; sl_conn_unsent(c) > 0; round++) {
		assert_true(round < 1000000);
		assert_int_equal(sl_conn_pump(c, 0, 0), 0); /* the peer reads only between pumps: never wait */
		if (c->segment_count > 0 && c->segments[c->segment_head].ref != NULL) {
			bool at_start = false;

			for (uint32_t i = 0; i < start_count; i++)
				at_start |= c->segments[c->segment_head].ref == starts[i];
			partial_refs += !at_start;
		}
		peer_read(peer, PEER_READ_BYTES);
	}
	for (;;) {
		size_t before = peer->len;

		peer_read(peer, 1u << 20);
		if (peer->len == before)
			break;
	}
	return partial_refs;
}

static void queue_ref_sends_the_bytes_pack_writes(void **state)
{
	/* Around the threshold, far above it, and below: the small ones are copied, the others referenced. */
	static const size_t lens[] = {100, SL_CONN_REF_BYTES_MIN - 1, SL_CONN_REF_BYTES_MIN, 300000, 70001};
	const uint32_t n = SL_ARRAY_COUNT(lens);
	uint8_t *batches[SL_ARRAY_COUNT(lens)], *tail_batch, *expected = NULL;
	size_t expected_len = 0, tail_len = 5000;
	Synclog__Request describe = SYNCLOG__REQUEST__INIT, hello = SYNCLOG__REQUEST__INIT;
	Synclog__DescribeTopicRequest describe_body = SYNCLOG__DESCRIBE_TOPIC_REQUEST__INIT;
	Synclog__HelloRequest hello_body = SYNCLOG__HELLO_REQUEST__INIT;
	struct produce pr, tail;
	struct peer peer;
	struct sl_conn *c = conn_open(&peer);

	for (uint32_t i = 0; i < n; i++) {
		batches[i] = malloc(lens[i]);
		fill(batches[i], lens[i], i);
	}
	tail_batch = malloc(tail_len);
	fill(tail_batch, tail_len, 99);
	produce_init(&pr, batches, lens, n);
	produce_init(&tail, &tail_batch, &tail_len, 1);
	describe_body.name = "orders";
	describe.body_case = SYNCLOG__REQUEST__BODY_DESCRIBE_TOPIC;
	describe.describe_topic = &describe_body;
	hello_body.protocol_version = 1;
	hello_body.client_id = "test";
	hello.body_case = SYNCLOG__REQUEST__BODY_HELLO;
	hello.hello = &hello_body;

	/* One FIFO: copied, referenced, copied, referenced. */
	assert_int_equal(sl_conn_queue(c, &describe, NULL), 0);
	assert_int_equal(sl_conn_queue_ref(c, &pr.req, NULL), 0);
	assert_true(c->ref_bytes == SL_CONN_REF_BYTES_MIN + 300000 + 70001);
	assert_int_equal(sl_conn_queue(c, &hello, NULL), 0);
	assert_int_equal(sl_conn_queue_ref(c, &tail.req, NULL), 0);
	expect_frame(&describe, &expected, &expected_len);
	expect_frame(&pr.req, &expected, &expected_len);
	expect_frame(&hello, &expected, &expected_len);
	expect_frame(&tail.req, &expected, &expected_len);
	assert_true(sl_conn_unsent(c) == expected_len);

	assert_true(drain(c, &peer, batches, n) > 0);
	assert_true(peer.len == expected_len);
	assert_memory_equal(peer.got, expected, expected_len);
	assert_true(c->segment_count == 0 && c->ref_bytes == 0 && c->wpos == 0 && c->wlen == 0);

	for (uint32_t i = 0; i < n; i++)
		free(batches[i]);
	free(tail_batch);
	free(expected);
	conn_done(c, &peer);
}

static void release_copies_what_still_refers_to_the_memory(void **state)
{
	size_t lens[2] = {200000, 150000};
	uint8_t *batches[2], *other = malloc(8192), *expected = NULL;
	size_t expected_len = 0;
	struct produce pr;
	struct peer peer;
	struct sl_conn *c = conn_open(&peer);

	for (int i = 0; i < 2; i++) {
		batches[i] = malloc(lens[i]);
		fill(batches[i], lens[i], (unsigned)i + 10);
	}
	produce_init(&pr, batches, lens, 2);
	assert_int_equal(sl_conn_queue_ref(c, &pr.req, NULL), 0);
	expect_frame(&pr.req, &expected, &expected_len);
	/* A first send fills the socket and stops inside the first batch. */
	assert_int_equal(sl_conn_pump(c, 0, 0), 0); /* the peer reads only between pumps: never wait */
	assert_true(c->ref_bytes > 0 && c->segments[c->segment_head].ref != NULL);
	assert_true(c->segments[c->segment_head].ref != batches[0]);

	/* Memory the connection does not refer to: nothing changes. */
	assert_int_equal(sl_conn_release(c, other, 8192), 0);
	assert_true(c->ref_bytes > 0);
	/* The second batch is to be reused: every reference is copied, and the memory may then change. */
	assert_int_equal(sl_conn_release(c, batches[1], lens[1]), 0);
	assert_true(c->ref_bytes == 0);
	memset(batches[0], 0xee, lens[0]);
	memset(batches[1], 0xee, lens[1]);

	drain(c, &peer, NULL, 0);
	assert_true(peer.len == expected_len);
	assert_memory_equal(peer.got, expected, expected_len);

	free(batches[0]);
	free(batches[1]);
	free(other);
	free(expected);
	conn_done(c, &peer);
}

static void queue_ref_copies_fields_once_the_segment_ring_is_full(void **state)
{
	enum { REQUESTS = SL_CONN_SEGMENTS_MAX };
	size_t len = SL_CONN_REF_BYTES_MIN;
	uint8_t *batches[REQUESTS], *expected = NULL;
	size_t expected_len = 0;
	struct peer peer;
	struct sl_conn *c = conn_open(&peer);

	for (int i = 0; i < REQUESTS; i++) {
		struct produce pr;

		batches[i] = malloc(len);
		fill(batches[i], len, (unsigned)i);
		produce_init(&pr, &batches[i], &len, 1);
		assert_int_equal(sl_conn_queue_ref(c, &pr.req, NULL), 0);
		expect_frame(&pr.req, &expected, &expected_len);
		assert_true(c->segment_count <= SL_CONN_SEGMENTS_MAX);
	}
	/* Two segments per request until the ring filled; the rest were copied. */
	assert_true(c->ref_bytes > 0 && c->ref_bytes < (size_t)REQUESTS * len);
	assert_true(sl_conn_unsent(c) == expected_len);

	drain(c, &peer, batches, REQUESTS);
	assert_true(peer.len == expected_len);
	assert_memory_equal(peer.got, expected, expected_len);

	for (int i = 0; i < REQUESTS; i++)
		free(batches[i]);
	free(expected);
	conn_done(c, &peer);
}

static void queue_ref_refuses_a_frame_over_the_limit_and_queues_nothing(void **state)
{
	size_t len = 10000;
	uint8_t *batch = malloc(len);
	struct produce pr;
	struct peer peer;
	struct sl_conn *c = conn_open(&peer);

	fill(batch, len, 1);
	produce_init(&pr, &batch, &len, 1);
	c->frame_bytes_max = 8192;
	assert_int_equal(sl_conn_queue_ref(c, &pr.req, NULL), -EMSGSIZE);
	assert_non_null(strstr(c->error, "frame limit"));
	assert_true(sl_conn_unsent(c) == 0 && c->segment_count == 0);

	/* Closing drops what is queued, references included. */
	c->frame_bytes_max = SL_FRAME_BYTES_MAX_DEFAULT;
	assert_int_equal(sl_conn_queue_ref(c, &pr.req, NULL), 0);
	assert_true(c->ref_bytes == len);
	sl_conn_close(c);
	assert_true(sl_conn_unsent(c) == 0 && c->segment_count == 0 && c->ref_bytes == 0);
	assert_int_equal(sl_conn_queue_ref(c, &pr.req, NULL), -ENOTCONN);

	free(batch);
	conn_done(c, &peer);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(queue_ref_sends_the_bytes_pack_writes),
	        cmocka_unit_test(release_copies_what_still_refers_to_the_memory),
	        cmocka_unit_test(queue_ref_copies_fields_once_the_segment_ring_is_full),
	        cmocka_unit_test(queue_ref_refuses_a_frame_over_the_limit_and_queues_nothing),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
