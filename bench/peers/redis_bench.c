/* redis-bench: the Redis Streams peer of `make bench`, on hiredis (Redis's own C client, Debian's libhiredis), so
 * that the comparison cannot be put down to a weak client. It measures what synclog-bench measures, with the same
 * histogram and JSON fields: XADD pipelined with a window of replies outstanding or one acknowledged XADD at a
 * time, replay of a stream from its start with XRANGE, and produce-to-consume latency at a fixed offered load
 * (XADD stamped with intended send times, read back with XREAD BLOCK). The XADD throughput of W1-W3 is measured
 * with redis-benchmark itself; this client covers what redis-benchmark cannot: p99.9 of one command at a time,
 * reading the entries back, and the latency of a reader.
 *
 * Pipelining is hiredis's own: commands are appended to the context's output buffer (redisAppendCommandArgv), up to
 * WRITE_BATCH_MAX of them go out in one flush (redisBufferWrite), and the replies are taken one by one
 * (redisGetReply), reading the socket again only when the reader has no whole reply left. The window of replies
 * outstanding is --pipeline, as in the RESP client this replaced.
 *
 * Every entry is XADD KEY * d VALUE, VALUE the record's bytes; its first 16 bytes carry a send time and a sequence
 * number, as in synclog-bench. */
#include <errno.h>
#include <getopt.h>
#include <hiredis/hiredis.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#include "proto/base/clock.h"
#include "bench/common/hist.h"
#include "bench/common/load.h"

#define STAMP_BYTES      16
/* Commands appended per pass of the pipelining loop: one flush carries them all. */
#define WRITE_BATCH_MAX  1024
#define DRAIN_TIMEOUT_NS (10 * 1000000000ll)
/* Pipelined XADDs: one in this many is stamped for the ack latency (reading the clock for each would be the
 * client's largest cost at a million commands a second). */
#define SAMPLE_EVERY     16
/* Sequence numbers of pipelined XADDs not yet answered in latency mode, to charge each reply to its send time. */
#define OUTSTANDING_MAX  (1u << 20)
/* A stalled server fails the run instead of hanging it. */
#define IO_TIMEOUT_S     30

struct options {
	const char *mode;
	const char *host;
	int port;
	const char *key;
	uint32_t pipeline;
	uint32_t batch;
	struct bench_peer_options load;
};

struct run {
	const struct options *o;
	struct hist ack;
	struct hist e2e;
	uint64_t acked;
	uint64_t received;
	uint64_t bytes;
	int64_t seconds_ns;
	int64_t measure_from_ns;
	atomic_uint_fast64_t sent;
	atomic_bool sending_done;
	char error[512];
};

static const char usage[] =
        "usage: redis-bench xadd|replay|latency --port PORT [options]\n"
        "  xadd      --count N entries, --pipeline P replies outstanding, or --one-at-a-time\n"
        "  replay    read --count N entries from the start with XRANGE ... COUNT --batch\n"
        "  latency   XADD --rate R entries/s for --duration-s S, read back with XREAD BLOCK\n"
        "  --host H (127.0.0.1)  --key NAME (bench)  --record-bytes N (100)  --pipeline N (64)  --batch N (1000)\n"
        "  --warmup-s S (1)  --tick-us N (100)  --label TEXT  --json FILE\n"
        "The client is hiredis (redisAppendCommandArgv, one flush, redisGetReply); its version is in the JSON.\n";

static redisContext *connect_to(const struct options *o, char *err, size_t err_bytes)
{
	struct timeval tv = {.tv_sec = IO_TIMEOUT_S};
	redisContext *c = redisConnectWithTimeout(o->host, o->port, tv);

	if (c == NULL || c->err) {
		snprintf(err, err_bytes, "cannot connect to %s:%d: %s", o->host, o->port,
		         c ? c->errstr : "out of memory");
		redisFree(c);
		return NULL;
	}
	/* redisConnect sets TCP_NODELAY; the timeout bounds every blocking read and write after it. */
	redisSetTimeout(c, tv);
	return c;
}

static int context_error(struct run *r, redisContext *c, const char *what)
{
	snprintf(r->error, sizeof(r->error), "%s: %s", what, c->errstr[0] ? c->errstr : "connection lost");
	return -EIO;
}

/* A reply that is an error fails the run with Redis's own message. */
static int reply_check(struct run *r, const redisReply *reply)
{
	if (reply->type == REDIS_REPLY_ERROR) {
		snprintf(r->error, sizeof(r->error), "redis error: %.*s", (int)reply->len, reply->str);
		return -EPROTO;
	}
	return 0;
}

static void append_xadd(redisContext *c, const char *key, const uint8_t *value, size_t len)
{
	const char *argv[] = {"XADD", key, "*", "d", (const char *)value};
	size_t lens[] = {4, strlen(key), 1, 1, len};

	redisAppendCommandArgv(c, 5, argv, lens);
}

/* Write every appended command (blocking socket: redisBufferWrite returns once the buffer is out or fails). */
static int flush_all(redisContext *c)
{
	int done = 0;

	while (!done)
		if (redisBufferWrite(c, &done) != REDIS_OK)
			return -EIO;
	return 0;
}

/* An entry [id, [field, value, ...]]: the value of its first field, or NULL. */
static const redisReply *entry_value(const redisReply *entry)
{
	if (entry->type != REDIS_REPLY_ARRAY || entry->elements != 2)
		return NULL;
	const redisReply *fields = entry->element[1];
	if (fields->type != REDIS_REPLY_ARRAY || fields->elements < 2 || fields->element[1]->type != REDIS_REPLY_STRING)
		return NULL;
	return fields->element[1];
}

static int xadd_pipelined(struct run *r, redisContext *c, uint8_t *value)
{
	const struct options *o = r->o;
	uint32_t window = o->load.one_at_a_time ? 1 : o->pipeline;
	uint64_t sent = 0, answered = 0;
	int64_t *stamps = calloc(window, sizeof(*stamps));
	int64_t start = sl_clock_mono_ns();
	int rc = 0;

	if (stamps == NULL)
		return -ENOMEM;
	while (answered < o->load.count && rc == 0) {
		/* Top the window up with one flush, then take every reply that arrived. */
		uint32_t queued = 0;

		while (sent < o->load.count && sent - answered < window && queued < WRITE_BATCH_MAX) {
			int64_t stamp = o->load.one_at_a_time || sent % SAMPLE_EVERY == 0 ? sl_clock_mono_ns() : 0;

			memcpy(value, &stamp, sizeof(stamp));
			memcpy(value + 8, &sent, sizeof(sent));
			stamps[sent % window] = stamp;
			append_xadd(c, o->key, value, o->load.record_bytes);
			sent++;
			queued++;
		}
		if (flush_all(c) != 0) {
			rc = context_error(r, c, "write");
			break;
		}
		/* One blocking read for the first reply, then the replies already in the reader's buffer. */
		void *reply = NULL;
		int got = redisGetReply(c, &reply);
		while (got == REDIS_OK && reply != NULL) {
			rc = reply_check(r, reply);
			freeReplyObject(reply);
			if (rc != 0)
				break;
			if (stamps[answered % window] != 0)
				hist_add(&r->ack, (uint64_t)(sl_clock_mono_ns() - stamps[answered % window]));
			answered++;
			reply = NULL;
			if (answered == sent)
				break;
			got = redisGetReplyFromReader(c, &reply);
		}
		if (got != REDIS_OK)
			rc = context_error(r, c, "read");
	}
	r->seconds_ns = sl_clock_mono_ns() - start;
	r->acked = answered;
	free(stamps);
	return rc;
}

static int replay(struct run *r, redisContext *c)
{
	const struct options *o = r->o;
	char start_id[80] = "-", count[32];
	int64_t start = sl_clock_mono_ns();
	uint64_t entries = 0;
	int rc = 0;

	snprintf(count, sizeof(count), "%u", o->batch);
	for (;;) {
		const char *argv[] = {"XRANGE", o->key, start_id, "+", "COUNT", count};
		size_t lens[6];
		redisReply *reply;
		size_t n;

		for (int i = 0; i < 6; i++)
			lens[i] = strlen(argv[i]);
		reply = redisCommandArgv(c, 6, argv, lens);
		if (reply == NULL)
			return context_error(r, c, "XRANGE");
		rc = reply_check(r, reply);
		if (rc == 0 && reply->type != REDIS_REPLY_ARRAY) {
			snprintf(r->error, sizeof(r->error), "XRANGE answered a reply of type %d", reply->type);
			rc = -EPROTO;
		}
		n = rc == 0 ? reply->elements : 0;
		for (size_t i = 0; i < n; i++) {
			const redisReply *v = entry_value(reply->element[i]);

			if (v != NULL)
				r->bytes += v->len;
			entries++;
		}
		/* Next call starts just past the last id read: "(" makes the start exclusive. */
		if (n > 0) {
			const redisReply *id = reply->element[n - 1]->element[0];
			snprintf(start_id, sizeof(start_id), "(%.*s", (int)id->len, id->str);
		}
		freeReplyObject(reply);
		if (rc != 0 || n == 0 || entries >= o->load.count)
			break;
	}
	r->seconds_ns = sl_clock_mono_ns() - start;
	r->received = entries;
	if (rc == 0 && entries != o->load.count) {
		snprintf(r->error, sizeof(r->error), "replay read %llu entries, expected %llu",
		         (unsigned long long)entries, (unsigned long long)o->load.count);
		return -EIO;
	}
	return rc;
}

/* ---- latency ---- */

struct latency_ctx {
	struct run *r;
	redisContext *c;
};

static void on_value(struct run *r, const redisReply *v)
{
	int64_t now = sl_clock_mono_ns(), stamp;

	if (v == NULL || v->len < STAMP_BYTES)
		return;
	memcpy(&stamp, v->str, sizeof(stamp));
	if (stamp >= r->measure_from_ns)
		hist_add(&r->e2e, (uint64_t)(now - stamp));
}

/* XREAD's reply: [[key, [entry, ...]]], or nil when BLOCK timed out. Returns the entries seen. */
static uint64_t xread_entries(struct run *r, const redisReply *reply, char *last_id, size_t last_id_bytes)
{
	uint64_t n = 0;

	if (reply->type != REDIS_REPLY_ARRAY)
		return 0;
	for (size_t s = 0; s < reply->elements; s++) {
		const redisReply *stream = reply->element[s];

		if (stream->type != REDIS_REPLY_ARRAY || stream->elements != 2 ||
		    stream->element[1]->type != REDIS_REPLY_ARRAY)
			continue;
		const redisReply *entries = stream->element[1];
		for (size_t i = 0; i < entries->elements; i++) {
			const redisReply *e = entries->element[i];

			on_value(r, entry_value(e));
			if (e->type == REDIS_REPLY_ARRAY && e->elements == 2 &&
			    e->element[0]->type == REDIS_REPLY_STRING)
				snprintf(last_id, last_id_bytes, "%.*s", (int)e->element[0]->len, e->element[0]->str);
			n++;
		}
	}
	return n;
}

static void *reader_main(void *arg)
{
	struct latency_ctx *lc = arg;
	struct run *r = lc->r;
	int64_t drain_deadline = 0;
	char id[80] = "$";

	for (;;) {
		bool done = atomic_load(&r->sending_done);
		const char *argv[] = {"XREAD", "COUNT", "10000", "BLOCK", "100", "STREAMS", r->o->key, id};
		size_t lens[8];
		redisReply *reply;

		if (done && r->received >= atomic_load(&r->sent))
			break;
		if (done && drain_deadline == 0)
			drain_deadline = sl_clock_mono_ns() + DRAIN_TIMEOUT_NS;
		if (drain_deadline && sl_clock_mono_ns() > drain_deadline) {
			snprintf(r->error, sizeof(r->error), "reader saw %llu of %llu entries",
			         (unsigned long long)r->received, (unsigned long long)atomic_load(&r->sent));
			break;
		}
		for (int i = 0; i < 8; i++)
			lens[i] = strlen(argv[i]);
		reply = redisCommandArgv(lc->c, 8, argv, lens);
		if (reply == NULL) {
			context_error(r, lc->c, "XREAD");
			break;
		}
		if (reply_check(r, reply) != 0) {
			freeReplyObject(reply);
			break;
		}
		r->received += xread_entries(r, reply, id, sizeof(id));
		freeReplyObject(reply);
	}
	return NULL;
}

/* Take every XADD reply the socket has now, without waiting. */
static int take_replies(struct run *r, redisContext *c, const int64_t *stamps, uint64_t *answered)
{
	void *reply = NULL;

	if (redisBufferRead(c) != REDIS_OK)
		return context_error(r, c, "read");
	while (redisGetReplyFromReader(c, &reply) == REDIS_OK && reply != NULL) {
		int rc = reply_check(r, reply);

		freeReplyObject(reply);
		reply = NULL;
		if (rc != 0)
			return rc;
		int64_t stamp = stamps[*answered % OUTSTANDING_MAX];
		if (stamp >= r->measure_from_ns)
			hist_add(&r->ack, (uint64_t)(sl_clock_mono_ns() - stamp));
		(*answered)++;
	}
	return c->err ? context_error(r, c, "read") : 0;
}

static int latency(struct run *r, redisContext *c, uint8_t *value)
{
	const struct options *o = r->o;
	uint64_t total = (uint64_t)(o->load.rate * o->load.duration_s), i = 0, answered = 0;
	int64_t *stamps = calloc(OUTSTANDING_MAX, sizeof(*stamps));
	struct latency_ctx lc = {.r = r};
	pthread_t reader;
	int64_t t0;
	int rc = 0;

	if (stamps == NULL)
		return -ENOMEM;
	prctl(PR_SET_TIMERSLACK, 1UL);
	lc.c = connect_to(o, r->error, sizeof(r->error));
	if (lc.c == NULL) {
		free(stamps);
		return -ECONNREFUSED;
	}
	t0 = sl_clock_mono_ns() + 50 * 1000000;
	r->measure_from_ns = t0 + (int64_t)(o->load.warmup_s * 1e9);
	pthread_create(&reader, NULL, reader_main, &lc);
	while (answered < total && rc == 0) {
		int64_t now = sl_clock_mono_ns(), wait_ns;
		struct pollfd pfd = {.fd = c->fd, .events = POLLIN};
		struct timespec ts;
		bool queued = false;

		for (; i < total && i - answered < OUTSTANDING_MAX; i++) {
			int64_t intended = bench_intended_ns(t0, i, o->load.rate);

			if (intended > now)
				break;
			memcpy(value, &intended, sizeof(intended));
			memcpy(value + 8, &i, sizeof(i));
			stamps[i % OUTSTANDING_MAX] = intended;
			append_xadd(c, o->key, value, o->load.record_bytes);
			queued = true;
		}
		if (queued) {
			if (flush_all(c) != 0) {
				rc = context_error(r, c, "write");
				break;
			}
			atomic_store(&r->sent, i);
		}
		/* Sleep until the next send time or a reply, then take the replies that came. */
		wait_ns = i < total ? bench_pace_wait_ns(t0, i, o->load.rate, o->load.tick_us, now) : 100000000;
		if (wait_ns < 0)
			wait_ns = 0;
		ts.tv_sec = wait_ns / 1000000000;
		ts.tv_nsec = wait_ns % 1000000000;
		if (answered < i && ppoll(&pfd, 1, &ts, NULL) > 0)
			rc = take_replies(r, c, stamps, &answered);
		else if (answered == i)
			nanosleep(&ts, NULL);
	}
	r->seconds_ns = sl_clock_mono_ns() - t0;
	r->acked = answered;
	atomic_store(&r->sending_done, true);
	pthread_join(reader, NULL);
	redisFree(lc.c);
	free(stamps);
	return r->error[0] ? -EIO : rc;
}

static void print_result(const struct run *r, double cpu)
{
	const struct options *o = r->o;
	FILE *out = bench_json_open("redis-bench", o->load.json_path);
	uint64_t records = strcmp(o->mode, "replay") == 0 ? r->received : r->acked;

	if (out == NULL)
		return;
	fprintf(out,
	        "{\"tool\":\"redis-bench\",\"client\":\"hiredis %d.%d.%d\",\"mode\":\"%s\",\"label\":\"%s\","
	        "\"key\":\"%s\",\"record_bytes\":%u,\"pipeline\":%u,\"batch\":%u,\"one_at_a_time\":%s",
	        HIREDIS_MAJOR, HIREDIS_MINOR, HIREDIS_PATCH, o->mode, o->load.label ? o->load.label : "", o->key,
	        o->load.record_bytes, o->pipeline, o->batch, o->load.one_at_a_time ? "true" : "false");
	bench_json_throughput(out, records, r->seconds_ns, o->load.record_bytes, cpu);
	bench_peer_json_close(out, o->mode, &o->load, atomic_load(&r->sent), r->received, &r->ack, &r->e2e, r->error);
}

static int parse(int argc, char **argv, struct options *o)
{
	static const struct option own[] = {
	        {"host", required_argument, NULL, 'H'},  {"port", required_argument, NULL, 'p'},
	        {"key", required_argument, NULL, 'k'},   {"pipeline", required_argument, NULL, 'P'},
	        {"batch", required_argument, NULL, 'B'},
	};
	struct option longs[sizeof(own) / sizeof(own[0]) + BENCH_PEER_LONGS_COUNT + 1];
	int c;

	bench_peer_longs(own, sizeof(own) / sizeof(own[0]), longs);
	memset(o, 0, sizeof(*o));
	bench_peer_options_init(&o->load);
	o->host = "127.0.0.1";
	o->key = "bench";
	o->pipeline = 64;
	o->batch = 1000;
	while ((c = getopt_long(argc, argv, "", longs, NULL)) != -1) {
		if (bench_peer_option(&o->load, c, optarg))
			continue;
		switch (c) {
		case 'H':
			o->host = optarg;
			break;
		case 'p':
			o->port = atoi(optarg);
			break;
		case 'k':
			o->key = optarg;
			break;
		case 'P':
			o->pipeline = (uint32_t)strtoul(optarg, NULL, 10);
			break;
		case 'B':
			o->batch = (uint32_t)strtoul(optarg, NULL, 10);
			break;
		case 'h':
			fputs(usage, stdout);
			exit(0);
		default:
			fputs(usage, stderr);
			return 2;
		}
	}
	if (optind != argc - 1 || o->port <= 0 || o->load.record_bytes < STAMP_BYTES || o->load.count < 1 ||
	    o->pipeline < 1 || o->batch < 1 || o->batch > 10000 || o->load.tick_us < 1 ||
	    (strcmp(argv[optind], "latency") == 0 && o->load.rate <= 0)) {
		fputs(usage, stderr);
		return 2;
	}
	o->mode = argv[optind];
	return 0;
}

int main(int argc, char **argv)
{
	struct options o;
	struct run *r;
	redisContext *c;
	uint8_t *value;
	double cpu0 = bench_cpu_s();
	int rc = parse(argc, argv, &o);

	if (rc != 0)
		return rc;
	if (strcmp(o.mode, "xadd") != 0 && strcmp(o.mode, "replay") != 0 && strcmp(o.mode, "latency") != 0) {
		fprintf(stderr, "redis-bench: unknown mode %s\n%s", o.mode, usage);
		return 2;
	}
	r = calloc(1, sizeof(*r));
	value = malloc(o.load.record_bytes);
	if (r == NULL || value == NULL)
		return 1;
	r->o = &o;
	hist_init(&r->ack);
	hist_init(&r->e2e);
	bench_fill_value(value, o.load.record_bytes, 1);
	c = connect_to(&o, r->error, sizeof(r->error));
	if (c == NULL) {
		fprintf(stderr, "redis-bench: %s\n", r->error);
		return 1;
	}
	if (strcmp(o.mode, "xadd") == 0)
		rc = xadd_pipelined(r, c, value);
	else if (strcmp(o.mode, "replay") == 0)
		rc = replay(r, c);
	else
		rc = latency(r, c, value);
	print_result(r, bench_cpu_s() - cpu0);
	if (r->error[0])
		fprintf(stderr, "redis-bench: %s\n", r->error);
	redisFree(c);
	free(value);
	free(r);
	return rc == 0 ? 0 : 1;
}
