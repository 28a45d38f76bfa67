/* redis-bench: the Redis Streams peer of `make bench`, a small RESP client over a TCP socket that measures what
 * synclog-bench measures, with the same histogram and JSON fields: XADD pipelined with a window of replies
 * outstanding or one acknowledged XADD at a time, replay of a stream from its start with XRANGE, and
 * produce-to-consume latency at a fixed offered load (XADD stamped with intended send times, read back with
 * XREAD BLOCK). The XADD throughput of W1-W3 is measured with redis-benchmark itself; this client covers what
 * redis-benchmark cannot: p99.9 of one command at a time, reading the entries back, and the latency of a reader.
 *
 * Every entry is XADD KEY * d VALUE, VALUE the record's bytes; its first 16 bytes carry a send time and a sequence
 * number, as in synclog-bench. */
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "proto/base/clock.h"
#include "bench/common/hist.h"

#define STAMP_BYTES      16
/* Read buffer: a whole XRANGE reply of the largest --batch (10,000 entries of 1 KiB) fits several times. */
#define RBUF_BYTES       (64u << 20)
/* Commands written per pass of the pipelining loop: one write() carries them all. */
#define WRITE_BATCH_MAX  1024
#define DRAIN_TIMEOUT_NS (10 * 1000000000ll)
#define SAMPLE_EVERY     16
/* Sequence numbers of pipelined XADDs not yet answered, to charge each reply to its send time. */
#define OUTSTANDING_MAX  (1u << 20)

struct options {
	const char *mode;
	const char *host;
	int port;
	const char *key;
	const char *label;
	const char *json_path;
	uint32_t record_bytes;
	uint64_t count;
	uint32_t pipeline;
	uint32_t batch;
	bool one_at_a_time;
	double rate;
	double duration_s;
	double warmup_s;
	/* Latency mode: the sender wakes at most once per tick and sends every message that is due, each stamped
	 * with its intended time (as synclog-bench --tick-us does). */
	uint32_t tick_us;
};

struct conn {
	int fd;
	uint8_t *rbuf;
	size_t rpos, rlen;
	uint8_t *wbuf;
	size_t wlen, wcap;
};

/* One parsed reply element of interest: XRANGE/XREAD entries are walked by the parser itself. */
struct reply_stats {
	int entry_depth; /* depth of the entries: 1 in an XRANGE reply, 3 in an XREAD reply */
	uint64_t entries;
	uint64_t value_bytes;
	char last_id[64];
	int64_t (*on_value)(void *arg, const uint8_t *v, size_t len);
	void *arg;
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
        "  --warmup-s S (1)  --tick-us N (100)  --label TEXT  --json FILE\n";

static double cpu_s(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
	       (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static void fill_value(uint8_t *buf, size_t len, uint64_t seed)
{
	uint64_t x = seed * 0x9e3779b97f4a7c15ull + 1;

	for (size_t i = 0; i < len; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		buf[i] = (uint8_t)('a' + x % 26);
	}
}

static int conn_open(struct conn *c, const struct options *o)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)o->port)};
	int one = 1;

	memset(c, 0, sizeof(*c));
	c->rbuf = malloc(RBUF_BYTES);
	c->wcap = 1u << 20;
	c->wbuf = malloc(c->wcap);
	if (c->rbuf == NULL || c->wbuf == NULL || inet_pton(AF_INET, o->host, &sa.sin_addr) != 1)
		return -EINVAL;
	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->fd < 0 || connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
		return -errno;
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return 0;
}

static void conn_close(struct conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	free(c->rbuf);
	free(c->wbuf);
}

static void put(struct conn *c, const void *p, size_t len)
{
	if (c->wlen + len > c->wcap) {
		while (c->wlen + len > c->wcap)
			c->wcap *= 2;
		c->wbuf = realloc(c->wbuf, c->wcap);
		if (c->wbuf == NULL)
			abort();
	}
	memcpy(c->wbuf + c->wlen, p, len);
	c->wlen += len;
}

static void put_bulk(struct conn *c, const void *p, size_t len)
{
	char head[32];
	int n = snprintf(head, sizeof(head), "$%zu\r\n", len);

	put(c, head, (size_t)n);
	put(c, p, len);
	put(c, "\r\n", 2);
}

static void put_command(struct conn *c, int argc, const char **argv, const size_t *lens)
{
	char head[32];
	int n = snprintf(head, sizeof(head), "*%d\r\n", argc);

	put(c, head, (size_t)n);
	for (int i = 0; i < argc; i++)
		put_bulk(c, argv[i], lens[i]);
}

static void put_xadd(struct conn *c, const char *key, const uint8_t *value, size_t len)
{
	const char *argv[] = {"XADD", key, "*", "d", (const char *)value};
	size_t lens[] = {4, strlen(key), 1, 1, len};

	put_command(c, 5, argv, lens);
}

static int flush_all(struct conn *c)
{
	size_t off = 0;

	while (off < c->wlen) {
		ssize_t n = write(c->fd, c->wbuf + off, c->wlen - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -errno;
		off += (size_t)n;
	}
	c->wlen = 0;
	return 0;
}

/* Read what the socket has (waiting for at least one byte). */
static int fill(struct conn *c)
{
	ssize_t n;

	if (c->rpos > 0 && c->rpos == c->rlen)
		c->rpos = c->rlen = 0;
	if (c->rlen == RBUF_BYTES) {
		memmove(c->rbuf, c->rbuf + c->rpos, c->rlen - c->rpos);
		c->rlen -= c->rpos;
		c->rpos = 0;
		if (c->rlen == RBUF_BYTES)
			return -ENOBUFS;
	}
	do
		n = read(c->fd, c->rbuf + c->rlen, RBUF_BYTES - c->rlen);
	while (n < 0 && errno == EINTR);
	if (n <= 0)
		return n == 0 ? -ECONNRESET : -errno;
	c->rlen += (size_t)n;
	return 0;
}

/* The line at p (up to CRLF) as a number; *next past the CRLF. -EAGAIN when the line is not complete. */
static int line_num(const uint8_t *p, const uint8_t *end, long long *out, const uint8_t **next)
{
	const uint8_t *cr = memchr(p, '\r', (size_t)(end - p));

	if (cr == NULL || cr + 1 >= end)
		return -EAGAIN;
	*out = strtoll((const char *)p, NULL, 10);
	*next = cr + 2;
	return 0;
}

/* Parse one reply at p. Entries ([id, [field, value, ...]]) found at depth are counted into st (when not NULL).
 * Returns 0 with *next set, -EAGAIN when incomplete, -EPROTO on an error reply or bad input. */
static int parse_reply(const uint8_t *p, const uint8_t *end, const uint8_t **next, struct reply_stats *st, int depth,
                       char *err, size_t err_bytes)
{
	long long n;
	int rc;

	if (p >= end)
		return -EAGAIN;
	switch (*p) {
	case '+':
	case ':': {
		const uint8_t *cr = memchr(p, '\r', (size_t)(end - p));

		if (cr == NULL || cr + 1 >= end)
			return -EAGAIN;
		*next = cr + 2;
		return 0;
	}
	case '-': {
		const uint8_t *cr = memchr(p, '\r', (size_t)(end - p));

		if (cr == NULL || cr + 1 >= end)
			return -EAGAIN;
		snprintf(err, err_bytes, "redis error: %.*s", (int)(cr - p - 1), p + 1);
		return -EPROTO;
	}
	case '$':
		rc = line_num(p + 1, end, &n, &p);
		if (rc != 0)
			return rc;
		if (n < 0) {
			*next = p;
			return 0;
		}
		if (end - p < n + 2)
			return -EAGAIN;
		*next = p + n + 2;
		return 0;
	case '*': {
		rc = line_num(p + 1, end, &n, &p);
		if (rc != 0)
			return rc;
		/* An entry is [id, [field, value]]: depth 1 of XRANGE's reply, 3 of XREAD's. */
		bool entry = st != NULL && depth == st->entry_depth && n == 2 && p < end && *p == '$';
		const uint8_t *id = NULL, *fields = NULL;

		for (long long i = 0; i < (n < 0 ? 0 : n); i++) {
			const uint8_t *elem = p;

			rc = parse_reply(p, end, &p, entry ? NULL : st, depth + 1, err, err_bytes);
			if (rc != 0)
				return rc;
			if (entry && i == 0)
				id = elem;
			if (entry && i == 1)
				fields = elem;
		}
		if (entry && id != NULL && fields != NULL && *fields == '*') {
			long long idlen = 0, nf = 0, vlen = 0;
			const uint8_t *q = id;

			line_num(id + 1, end, &idlen, &q);
			if (idlen > 0 && (size_t)idlen < sizeof(st->last_id)) {
				memcpy(st->last_id, q, (size_t)idlen);
				st->last_id[idlen] = '\0';
			}
			line_num(fields + 1, end, &nf, &q);
			if (nf >= 2) {
				long long flen = 0;

				line_num(q + 1, end, &flen, &q); /* field name */
				q += flen + 2;
				line_num(q + 1, end, &vlen, &q);
				st->value_bytes += (uint64_t)vlen;
				if (st->on_value != NULL)
					st->on_value(st->arg, q, (size_t)vlen);
			}
			st->entries++;
		}
		*next = p;
		return 0;
	}
	default:
		snprintf(err, err_bytes, "unexpected reply byte 0x%02x", *p);
		return -EPROTO;
	}
}

/* Wait for and parse the next whole reply. A reply that arrives in parts is parsed again from its start once
 * more bytes came: the counts of st are restored first, and with a per-value callback the reply is first only
 * checked for completeness, so that no value is seen twice. */
static int read_reply(struct conn *c, struct reply_stats *st, char *err, size_t err_bytes)
{
	for (;;) {
		struct reply_stats saved;
		const uint8_t *next;
		int rc;

		if (st != NULL && st->on_value != NULL) {
			rc = parse_reply(c->rbuf + c->rpos, c->rbuf + c->rlen, &next, NULL, 0, err, err_bytes);
			if (rc == 0)
				rc = parse_reply(c->rbuf + c->rpos, c->rbuf + c->rlen, &next, st, 0, err, err_bytes);
		} else {
			if (st != NULL)
				saved = *st;
			rc = parse_reply(c->rbuf + c->rpos, c->rbuf + c->rlen, &next, st, 0, err, err_bytes);
			if (rc == -EAGAIN && st != NULL)
				*st = saved;
		}
		if (rc == 0) {
			c->rpos = (size_t)(next - c->rbuf);
			return 0;
		}
		if (rc != -EAGAIN)
			return rc;
		rc = fill(c);
		if (rc != 0) {
			snprintf(err, err_bytes, "read: %s", strerror(-rc));
			return rc;
		}
	}
}

static int xadd_pipelined(struct run *r, struct conn *c, uint8_t *value)
{
	const struct options *o = r->o;
	uint32_t window = o->one_at_a_time ? 1 : o->pipeline;
	uint64_t sent = 0, answered = 0;
	int64_t *stamps = calloc(window, sizeof(*stamps));
	int64_t start = sl_clock_mono_ns();

	if (stamps == NULL)
		return -ENOMEM;
	while (answered < o->count) {
		/* Top the window up with one write, then take every reply that arrived. */
		uint32_t queued = 0;

		while (sent < o->count && sent - answered < window && queued < WRITE_BATCH_MAX) {
			int64_t stamp = o->one_at_a_time || sent % SAMPLE_EVERY == 0 ? sl_clock_mono_ns() : 0;

			memcpy(value, &stamp, sizeof(stamp));
			memcpy(value + 8, &sent, sizeof(sent));
			stamps[sent % window] = stamp;
			put_xadd(c, o->key, value, o->record_bytes);
			sent++;
			queued++;
		}
		if (flush_all(c) != 0) {
			snprintf(r->error, sizeof(r->error), "write: %s", strerror(errno));
			return -EIO;
		}
		do {
			int rc = read_reply(c, NULL, r->error, sizeof(r->error));

			if (rc != 0)
				return rc;
			if (stamps[answered % window] != 0)
				hist_add(&r->ack, (uint64_t)(sl_clock_mono_ns() - stamps[answered % window]));
			answered++;
			/* Keep reading while replies are buffered; refill the window once the buffer is empty. */
		} while (answered < sent && c->rpos < c->rlen);
	}
	r->seconds_ns = sl_clock_mono_ns() - start;
	r->acked = answered;
	free(stamps);
	return 0;
}

static int replay(struct run *r, struct conn *c)
{
	const struct options *o = r->o;
	struct reply_stats st = {.entry_depth = 1, .last_id = "-"};
	char start_id[80], count[32];
	int64_t start = sl_clock_mono_ns();

	snprintf(count, sizeof(count), "%u", o->batch);
	for (;;) {
		uint64_t before = st.entries;
		const char *argv[] = {"XRANGE", o->key, start_id, "+", "COUNT", count};
		size_t lens[6];
		int rc;

		/* After the first call, start just past the last id read: "(" makes the start exclusive. */
		if (strcmp(st.last_id, "-") == 0)
			snprintf(start_id, sizeof(start_id), "-");
		else
			snprintf(start_id, sizeof(start_id), "(%s", st.last_id);
		for (int i = 0; i < 6; i++)
			lens[i] = strlen(argv[i]);
		put_command(c, 6, argv, lens);
		if (flush_all(c) != 0)
			return -EIO;
		rc = read_reply(c, &st, r->error, sizeof(r->error));
		if (rc != 0)
			return rc;
		if (st.entries == before || st.entries >= o->count)
			break;
	}
	r->seconds_ns = sl_clock_mono_ns() - start;
	r->received = st.entries;
	r->bytes = st.value_bytes;
	if (st.entries != o->count) {
		snprintf(r->error, sizeof(r->error), "replay read %llu entries, expected %llu",
		         (unsigned long long)st.entries, (unsigned long long)o->count);
		return -EIO;
	}
	return 0;
}

/* ---- latency ---- */

struct latency_ctx {
	struct run *r;
	struct conn c;
};

static int64_t on_value(void *arg, const uint8_t *v, size_t len)
{
	struct run *r = arg;
	int64_t now = sl_clock_mono_ns(), stamp;

	if (len < STAMP_BYTES)
		return 0;
	memcpy(&stamp, v, sizeof(stamp));
	if (stamp >= r->measure_from_ns)
		hist_add(&r->e2e, (uint64_t)(now - stamp));
	return 0;
}

static void *reader_main(void *arg)
{
	struct latency_ctx *lc = arg;
	struct run *r = lc->r;
	struct reply_stats st = {.entry_depth = 3, .on_value = on_value, .arg = r};
	int64_t drain_deadline = 0;
	char id[80];

	snprintf(st.last_id, sizeof(st.last_id), "$");
	for (;;) {
		bool done = atomic_load(&r->sending_done);
		const char *argv[] = {"XREAD", "COUNT", "10000", "BLOCK", "100", "STREAMS", r->o->key, id};
		size_t lens[8];

		if (done && st.entries >= atomic_load(&r->sent))
			break;
		if (done && drain_deadline == 0)
			drain_deadline = sl_clock_mono_ns() + DRAIN_TIMEOUT_NS;
		if (drain_deadline && sl_clock_mono_ns() > drain_deadline) {
			snprintf(r->error, sizeof(r->error), "reader saw %llu of %llu entries",
			         (unsigned long long)st.entries, (unsigned long long)atomic_load(&r->sent));
			break;
		}
		snprintf(id, sizeof(id), "%s", st.last_id);
		for (int i = 0; i < 8; i++)
			lens[i] = strlen(argv[i]);
		put_command(&lc->c, 8, argv, lens);
		if (flush_all(&lc->c) != 0 || read_reply(&lc->c, &st, r->error, sizeof(r->error)) != 0)
			break;
	}
	r->received = st.entries;
	return NULL;
}

static int latency(struct run *r, struct conn *c, uint8_t *value)
{
	const struct options *o = r->o;
	uint64_t total = (uint64_t)(o->rate * o->duration_s), i = 0, answered = 0;
	int64_t *stamps = calloc(OUTSTANDING_MAX, sizeof(*stamps));
	struct latency_ctx lc = {.r = r};
	pthread_t reader;
	int64_t t0;
	int rc;

	if (stamps == NULL)
		return -ENOMEM;
	prctl(PR_SET_TIMERSLACK, 1UL);
	rc = conn_open(&lc.c, o);
	if (rc != 0) {
		snprintf(r->error, sizeof(r->error), "connect: %s", strerror(-rc));
		return rc;
	}
	t0 = sl_clock_mono_ns() + 50 * 1000000;
	r->measure_from_ns = t0 + (int64_t)(o->warmup_s * 1e9);
	pthread_create(&reader, NULL, reader_main, &lc);
	while (answered < total) {
		int64_t now = sl_clock_mono_ns(), wait_ns;
		struct pollfd pfd = {.fd = c->fd, .events = POLLIN};
		struct timespec ts;

		for (; i < total && i - answered < OUTSTANDING_MAX; i++) {
			int64_t intended = t0 + (int64_t)((double)i * 1e9 / o->rate);

			if (intended > now)
				break;
			memcpy(value, &intended, sizeof(intended));
			memcpy(value + 8, &i, sizeof(i));
			stamps[i % OUTSTANDING_MAX] = intended;
			put_xadd(c, o->key, value, o->record_bytes);
		}
		if (c->wlen > 0) {
			if (flush_all(c) != 0) {
				snprintf(r->error, sizeof(r->error), "write: %s", strerror(errno));
				break;
			}
			atomic_store(&r->sent, i);
		}
		/* Sleep until the next send time or a reply, then take the replies that came. */
		wait_ns = i < total ? t0 + (int64_t)((double)i * 1e9 / o->rate) - sl_clock_mono_ns() : 100000000;
		if (wait_ns < (int64_t)o->tick_us * 1000 - (sl_clock_mono_ns() - now))
			wait_ns = (int64_t)o->tick_us * 1000 - (sl_clock_mono_ns() - now);
		if (wait_ns < 0)
			wait_ns = 0;
		ts.tv_sec = wait_ns / 1000000000;
		ts.tv_nsec = wait_ns % 1000000000;
		if (answered < i && ppoll(&pfd, 1, &ts, NULL) > 0) {
			if (fill(c) != 0)
				break;
			for (;;) {
				const uint8_t *next;

				if (parse_reply(c->rbuf + c->rpos, c->rbuf + c->rlen, &next, NULL, 0, r->error,
				                sizeof(r->error)) != 0)
					break;
				c->rpos = (size_t)(next - c->rbuf);
				if (stamps[answered % OUTSTANDING_MAX] >= r->measure_from_ns)
					hist_add(&r->ack,
					         (uint64_t)(sl_clock_mono_ns() - stamps[answered % OUTSTANDING_MAX]));
				answered++;
			}
		} else if (answered == i) {
			nanosleep(&ts, NULL);
		}
	}
	r->seconds_ns = sl_clock_mono_ns() - t0;
	r->acked = answered;
	atomic_store(&r->sending_done, true);
	pthread_join(reader, NULL);
	conn_close(&lc.c);
	free(stamps);
	return r->error[0] ? -EIO : 0;
}

static void print_result(const struct run *r, double cpu)
{
	const struct options *o = r->o;
	FILE *out = o->json_path ? fopen(o->json_path, "w") : stdout;
	double seconds = (double)r->seconds_ns / 1e9;
	uint64_t records = strcmp(o->mode, "replay") == 0 ? r->received : r->acked;

	if (out == NULL) {
		fprintf(stderr, "redis-bench: cannot write %s\n", o->json_path);
		return;
	}
	fprintf(out,
	        "{\"tool\":\"redis-bench\",\"mode\":\"%s\",\"label\":\"%s\",\"key\":\"%s\",\"record_bytes\":%u,"
	        "\"pipeline\":%u,\"batch\":%u,\"one_at_a_time\":%s,\"records\":%llu,\"seconds\":%.6f,"
	        "\"records_per_s\":%.1f,\"mb_per_s\":%.3f,\"cpu_s\":%.3f",
	        o->mode, o->label ? o->label : "", o->key, o->record_bytes, o->pipeline, o->batch,
	        o->one_at_a_time ? "true" : "false", (unsigned long long)records, seconds,
	        seconds > 0 ? (double)records / seconds : 0,
	        seconds > 0 ? (double)records * o->record_bytes / seconds / 1e6 : 0, cpu);
	if (strcmp(o->mode, "latency") == 0)
		fprintf(out, ",\"rate\":%.1f,\"duration_s\":%.3f,\"sent\":%llu,\"received\":%llu", o->rate,
		        o->duration_s, (unsigned long long)atomic_load(&r->sent), (unsigned long long)r->received);
	fputs(",\"ack_latency\":{", out);
	hist_print_json(out, &r->ack);
	fputs("},\"e2e_latency\":{", out);
	hist_print_json(out, &r->e2e);
	if (r->error[0])
		fprintf(out, "},\"error\":\"%s\"}\n", r->error);
	else
		fputs("},\"error\":null}\n", out);
	if (out != stdout)
		fclose(out);
}

static int parse(int argc, char **argv, struct options *o)
{
	static const struct option longs[] = {
	        {"host", required_argument, NULL, 'H'},     {"port", required_argument, NULL, 'p'},
	        {"key", required_argument, NULL, 'k'},      {"record-bytes", required_argument, NULL, 'b'},
	        {"count", required_argument, NULL, 'n'},    {"pipeline", required_argument, NULL, 'P'},
	        {"batch", required_argument, NULL, 'B'},    {"one-at-a-time", no_argument, NULL, '1'},
	        {"rate", required_argument, NULL, 'r'},     {"duration-s", required_argument, NULL, 'd'},
	        {"warmup-s", required_argument, NULL, 'W'}, {"tick-us", required_argument, NULL, 'T'},
	        {"label", required_argument, NULL, 'l'},    {"json", required_argument, NULL, 'j'},
	        {"help", no_argument, NULL, 'h'},           {NULL, 0, NULL, 0},
	};
	int c;

	memset(o, 0, sizeof(*o));
	o->host = "127.0.0.1";
	o->key = "bench";
	o->record_bytes = 100;
	o->count = 1000000;
	o->pipeline = 64;
	o->batch = 1000;
	o->duration_s = 10;
	o->warmup_s = 1;
	o->tick_us = 100;
	while ((c = getopt_long(argc, argv, "", longs, NULL)) != -1) {
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
		case 'b':
			o->record_bytes = (uint32_t)strtoul(optarg, NULL, 10);
			break;
		case 'n':
			o->count = strtoull(optarg, NULL, 10);
			break;
		case 'P':
			o->pipeline = (uint32_t)strtoul(optarg, NULL, 10);
			break;
		case 'B':
			o->batch = (uint32_t)strtoul(optarg, NULL, 10);
			break;
		case '1':
			o->one_at_a_time = true;
			break;
		case 'r':
			o->rate = strtod(optarg, NULL);
			break;
		case 'd':
			o->duration_s = strtod(optarg, NULL);
			break;
		case 'W':
			o->warmup_s = strtod(optarg, NULL);
			break;
		case 'T':
			o->tick_us = (uint32_t)strtoul(optarg, NULL, 10);
			break;
		case 'l':
			o->label = optarg;
			break;
		case 'j':
			o->json_path = optarg;
			break;
		case 'h':
			fputs(usage, stdout);
			exit(0);
		default:
			fputs(usage, stderr);
			return 2;
		}
	}
	if (optind != argc - 1 || o->port <= 0 || o->record_bytes < STAMP_BYTES || o->count < 1 || o->pipeline < 1 ||
	    o->batch < 1 || o->batch > 10000 || (strcmp(argv[optind], "latency") == 0 && o->rate <= 0)) {
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
	struct conn c;
	uint8_t *value;
	double cpu0 = cpu_s();
	int rc = parse(argc, argv, &o);

	if (rc != 0)
		return rc;
	r = calloc(1, sizeof(*r));
	value = malloc(o.record_bytes);
	if (r == NULL || value == NULL)
		return 1;
	r->o = &o;
	hist_init(&r->ack);
	hist_init(&r->e2e);
	fill_value(value, o.record_bytes, 1);
	rc = conn_open(&c, &o);
	if (rc != 0) {
		fprintf(stderr, "redis-bench: cannot connect to %s:%d: %s\n", o.host, o.port, strerror(-rc));
		return 1;
	}
	if (strcmp(o.mode, "xadd") == 0)
		rc = xadd_pipelined(r, &c, value);
	else if (strcmp(o.mode, "replay") == 0)
		rc = replay(r, &c);
	else if (strcmp(o.mode, "latency") == 0)
		rc = latency(r, &c, value);
	else {
		fprintf(stderr, "redis-bench: unknown mode %s\n%s", o.mode, usage);
		return 2;
	}
	print_result(r, cpu_s() - cpu0);
	if (r->error[0])
		fprintf(stderr, "redis-bench: %s\n", r->error);
	conn_close(&c);
	free(value);
	free(r);
	return rc == 0 ? 0 : 1;
}
