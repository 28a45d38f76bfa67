/* nats-bench: the NATS JetStream peer of `make bench`, on Debian's libnats (nats.c 3.4), measuring what
 * synclog-bench measures with the same record sizes, the same histogram and the same JSON fields: async publish
 * with a window of acknowledgements in flight, sync publish (one acknowledged message at a time), replay through
 * an ordered consumer, and produce-to-consume latency at a fixed offered load with intended-time stamps.
 *
 * The stream uses file storage. NATS 2.9 acknowledges a publish once the message is in its file store's buffer,
 * before it reaches the disk (it fsyncs on its own schedule), so its figures compare with synclog's `written`
 * acknowledgements, never with `fsync`. */
#include <errno.h>
#include <getopt.h>
#include <nats/nats.h>
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

/* Every message carries its send time (intended, in latency mode) and its sequence in its first 16 bytes. */
#define STAMP_BYTES      16
/* After the last publish, how long the consumer may take to see every message before the run fails. */
#define DRAIN_TIMEOUT_NS (10 * 1000000000ll)
/* Async publish samples one message in this many for the ack latency, as synclog-bench does. */
#define SAMPLE_EVERY     16

struct options {
	const char *mode;
	const char *url;
	const char *stream;
	bool create;
	int64_t window;
	struct bench_peer_options load;
};

struct run {
	const struct options *o;
	natsConnection *nc;
	jsCtx *js;
	char subject[128];
	struct hist ack;
	struct hist e2e;
	atomic_uint_fast64_t acked;
	atomic_uint_fast64_t failed;
	atomic_uint_fast64_t received;
	atomic_uint_fast64_t sent;
	uint64_t bytes;
	int64_t measure_from_ns;
	int64_t last_ns;
	char error[512];
};

static const char usage[] =
        "usage: nats-bench publish|replay|latency --url nats://127.0.0.1:PORT [options]\n"
        "  publish   --count N messages, async with --window acks in flight, or --one-at-a-time (sync publish)\n"
        "  replay    read --count N messages of the stream from its start with an ordered consumer\n"
        "  latency   publish --rate R msgs/s for --duration-s S, read them back through an ordered consumer\n"
        "  --stream NAME (bench, subject NAME)  --create (a file-storage stream)  --record-bytes N (100)\n"
        "  --window N (4096)  --warmup-s S (1)  --tick-us N (100)  --label TEXT  --json FILE\n";

static int fail(struct run *r, const char *what, natsStatus s)
{
	snprintf(r->error, sizeof(r->error), "%s: %s (%s)", what, natsStatus_GetText(s), nats_GetLastError(NULL));
	return -EIO;
}

static void ack_cb(jsCtx *js, natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae, void *closure)
{
	struct run *r = closure;
	int64_t stamp;

	(void)js;
	if (pa == NULL || pae != NULL) {
		atomic_fetch_add(&r->failed, 1);
	} else {
		atomic_fetch_add(&r->acked, 1);
		if (natsMsg_GetDataLength(msg) >= STAMP_BYTES) {
			memcpy(&stamp, natsMsg_GetData(msg), sizeof(stamp));
			if (stamp != 0 && stamp >= r->measure_from_ns)
				hist_add(&r->ack, (uint64_t)(sl_clock_mono_ns() - stamp));
		}
	}
	natsMsg_Destroy(msg);
}

static int connect_js(struct run *r)
{
	const struct options *o = r->o;
	natsOptions *opts = NULL;
	jsOptions jo;
	natsStatus s;

	s = natsOptions_Create(&opts);
	if (s == NATS_OK)
		s = natsOptions_SetURL(opts, o->url);
	/* A large socket buffer: the client must not be what limits the peer. Subscriptions lift their pending limits.
	 */
	if (s == NATS_OK)
		s = natsOptions_SetIOBufSize(opts, 1 << 20);
	if (s == NATS_OK)
		s = natsConnection_Connect(&r->nc, opts);
	natsOptions_Destroy(opts);
	if (s != NATS_OK)
		return fail(r, "connect", s);
	jsOptions_Init(&jo);
	jo.PublishAsync.MaxPending = o->window;
	jo.PublishAsync.AckHandler = ack_cb;
	jo.PublishAsync.AckHandlerClosure = r;
	s = natsConnection_JetStream(&r->js, r->nc, &jo);
	if (s != NATS_OK)
		return fail(r, "jetstream context", s);
	if (o->create) {
		jsStreamConfig cfg;
		jsStreamInfo *si = NULL;
		jsErrCode jerr = 0;
		const char *subjects[] = {r->subject};

		jsStreamConfig_Init(&cfg);
		cfg.Name = o->stream;
		cfg.Subjects = subjects;
		cfg.SubjectsLen = 1;
		cfg.Storage = js_FileStorage;
		s = js_AddStream(&si, r->js, &cfg, NULL, &jerr);
		jsStreamInfo_Destroy(si);
		if (s != NATS_OK)
			return fail(r, "create stream", s);
	}
	return 0;
}

static int publish_async(struct run *r, uint8_t *value)
{
	const struct options *o = r->o;
	int64_t start, end;
	natsStatus s;

	start = sl_clock_mono_ns();
	for (uint64_t i = 0; i < o->load.count; i++) {
		int64_t stamp = i % SAMPLE_EVERY == 0 ? sl_clock_mono_ns() : 0;

		memcpy(value, &stamp, sizeof(stamp));
		memcpy(value + 8, &i, sizeof(i));
		s = js_PublishAsync(r->js, r->subject, value, (int)o->load.record_bytes, NULL);
		if (s != NATS_OK)
			return fail(r, "publish async", s);
	}
	s = js_PublishAsyncComplete(r->js, NULL);
	end = sl_clock_mono_ns();
	if (s != NATS_OK)
		return fail(r, "publish async complete", s);
	r->last_ns = end - start;
	return 0;
}

static int publish_sync(struct run *r, uint8_t *value)
{
	const struct options *o = r->o;
	int64_t start = sl_clock_mono_ns();

	for (uint64_t i = 0; i < o->load.count; i++) {
		int64_t t0 = sl_clock_mono_ns();
		jsPubAck *pa = NULL;
		jsErrCode jerr = 0;
		natsStatus s;

		memcpy(value, &t0, sizeof(t0));
		memcpy(value + 8, &i, sizeof(i));
		s = js_Publish(&pa, r->js, r->subject, value, (int)o->load.record_bytes, NULL, &jerr);
		if (s != NATS_OK)
			return fail(r, "publish", s);
		hist_add(&r->ack, (uint64_t)(sl_clock_mono_ns() - t0));
		atomic_fetch_add(&r->acked, 1);
		jsPubAck_Destroy(pa);
	}
	r->last_ns = sl_clock_mono_ns() - start;
	return 0;
}

static int replay(struct run *r)
{
	const struct options *o = r->o;
	natsSubscription *sub = NULL;
	jsSubOptions so;
	jsErrCode jerr = 0;
	uint64_t checksum = 0;
	int64_t start;
	natsStatus s;

	jsSubOptions_Init(&so);
	so.Ordered = true;
	so.Config.DeliverPolicy = js_DeliverAll;
	start = sl_clock_mono_ns();
	s = js_SubscribeSync(&sub, r->js, r->subject, NULL, &so, &jerr);
	if (s != NATS_OK)
		return fail(r, "ordered consumer", s);
	natsSubscription_SetPendingLimits(sub, -1, -1);
	while (atomic_load(&r->received) < o->load.count) {
		natsMsg *msg = NULL;
		int len;

		s = natsSubscription_NextMsg(&msg, sub, 10000);
		if (s != NATS_OK) {
			natsSubscription_Destroy(sub);
			return fail(r, "next message", s);
		}
		len = natsMsg_GetDataLength(msg);
		r->bytes += (uint64_t)len;
		if (len > 0)
			checksum += (uint8_t)natsMsg_GetData(msg)[len - 1];
		atomic_fetch_add(&r->received, 1);
		natsMsg_Destroy(msg);
	}
	r->last_ns = sl_clock_mono_ns() - start;
	natsSubscription_Unsubscribe(sub);
	natsSubscription_Destroy(sub);
	(void)checksum;
	return 0;
}

static void latency_msg_cb(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
	struct run *r = closure;
	int64_t now = sl_clock_mono_ns(), stamp;

	(void)nc;
	(void)sub;
	if (natsMsg_GetDataLength(msg) >= STAMP_BYTES) {
		memcpy(&stamp, natsMsg_GetData(msg), sizeof(stamp));
		if (stamp >= r->measure_from_ns)
			hist_add(&r->e2e, (uint64_t)(now - stamp));
		atomic_fetch_add(&r->received, 1);
	}
	natsMsg_Destroy(msg);
}

/* Publish --rate messages per second on a fixed schedule; each carries its intended send time, so a publisher
 * that stalls is charged for the delay it caused. */
static int latency(struct run *r, uint8_t *value)
{
	const struct options *o = r->o;
	uint64_t total = (uint64_t)(o->load.rate * o->load.duration_s), i = 0;
	natsSubscription *sub = NULL;
	jsSubOptions so;
	jsErrCode jerr = 0;
	int64_t t0, deadline;
	natsStatus s;

	prctl(PR_SET_TIMERSLACK, 1UL);
	jsSubOptions_Init(&so);
	so.Ordered = true;
	so.Config.DeliverPolicy = js_DeliverNew;
	s = js_Subscribe(&sub, r->js, r->subject, latency_msg_cb, r, NULL, &so, &jerr);
	if (s != NATS_OK)
		return fail(r, "ordered consumer", s);
	natsSubscription_SetPendingLimits(sub, -1, -1);
	t0 = sl_clock_mono_ns() + 20 * 1000000;
	r->measure_from_ns = t0 + (int64_t)(o->load.warmup_s * 1e9);
	while (i < total) {
		int64_t now = sl_clock_mono_ns(), next;

		for (; i < total; i++) {
			int64_t intended = bench_intended_ns(t0, i, o->load.rate);

			if (intended > now)
				break;
			memcpy(value, &intended, sizeof(intended));
			memcpy(value + 8, &i, sizeof(i));
			s = js_PublishAsync(r->js, r->subject, value, (int)o->load.record_bytes, NULL);
			if (s != NATS_OK) {
				natsSubscription_Destroy(sub);
				return fail(r, "publish async", s);
			}
			atomic_store(&r->sent, i + 1);
		}
		next = bench_pace_wait_ns(t0, i, o->load.rate, o->load.tick_us, now);
		if (i < total && next > 0) {
			struct timespec ts = {.tv_sec = next / 1000000000, .tv_nsec = next % 1000000000};

			nanosleep(&ts, NULL);
		}
	}
	r->last_ns = sl_clock_mono_ns() - t0;
	s = js_PublishAsyncComplete(r->js, NULL);
	deadline = sl_clock_mono_ns() + DRAIN_TIMEOUT_NS;
	while (atomic_load(&r->received) < total && sl_clock_mono_ns() < deadline)
		nats_Sleep(1);
	natsSubscription_Unsubscribe(sub);
	natsSubscription_Destroy(sub);
	if (s != NATS_OK)
		return fail(r, "publish async complete", s);
	if (atomic_load(&r->received) < total) {
		snprintf(r->error, sizeof(r->error), "consumer saw %llu of %llu messages",
		         (unsigned long long)atomic_load(&r->received), (unsigned long long)total);
		return -ETIMEDOUT;
	}
	return 0;
}

static void print_result(const struct run *r, double cpu)
{
	const struct options *o = r->o;
	FILE *out = bench_json_open("nats-bench", o->load.json_path);
	uint64_t records = strcmp(o->mode, "replay") == 0 ? atomic_load(&r->received) : atomic_load(&r->acked);

	if (out == NULL)
		return;
	fprintf(out,
	        "{\"tool\":\"nats-bench\",\"mode\":\"%s\",\"label\":\"%s\",\"stream\":\"%s\",\"record_bytes\":%u,"
	        "\"window\":%lld,\"one_at_a_time\":%s,\"failed\":%llu",
	        o->mode, o->load.label ? o->load.label : "", o->stream, o->load.record_bytes, (long long)o->window,
	        o->load.one_at_a_time ? "true" : "false", (unsigned long long)atomic_load(&r->failed));
	bench_json_throughput(out, records, r->last_ns, o->load.record_bytes, cpu);
	bench_peer_json_close(out, o->mode, &o->load, atomic_load(&r->sent), atomic_load(&r->received), &r->ack,
	                      &r->e2e, r->error);
}

static int parse(int argc, char **argv, struct options *o)
{
	static const struct option own[] = {
	        {"url", required_argument, NULL, 'u'},
	        {"stream", required_argument, NULL, 's'},
	        {"create", no_argument, NULL, 'c'},
	        {"window", required_argument, NULL, 'w'},
	};
	struct option longs[sizeof(own) / sizeof(own[0]) + BENCH_PEER_LONGS_COUNT + 1];
	int c;

	bench_peer_longs(own, sizeof(own) / sizeof(own[0]), longs);
	memset(o, 0, sizeof(*o));
	bench_peer_options_init(&o->load);
	o->stream = "bench";
	o->window = 4096;
	while ((c = getopt_long(argc, argv, "", longs, NULL)) != -1) {
		if (bench_peer_option(&o->load, c, optarg))
			continue;
		switch (c) {
		case 'u':
			o->url = optarg;
			break;
		case 's':
			o->stream = optarg;
			break;
		case 'c':
			o->create = true;
			break;
		case 'w':
			o->window = strtoll(optarg, NULL, 10);
			break;
		case 'h':
			fputs(usage, stdout);
			exit(0);
		default:
			fputs(usage, stderr);
			return 2;
		}
	}
	if (optind != argc - 1 || o->url == NULL || o->load.record_bytes < STAMP_BYTES || o->load.count < 1 ||
	    o->window < 1 || (strcmp(argv[optind], "latency") == 0 && o->load.rate <= 0)) {
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
	uint8_t *value;
	double cpu0 = bench_cpu_s();
	int rc = parse(argc, argv, &o);

	if (rc != 0)
		return rc;
	r = calloc(1, sizeof(*r));
	value = malloc(o.load.record_bytes);
	if (r == NULL || value == NULL)
		return 1;
	r->o = &o;
	hist_init(&r->ack);
	hist_init(&r->e2e);
	snprintf(r->subject, sizeof(r->subject), "%s", o.stream);
	bench_fill_value(value, o.load.record_bytes, 1);
	rc = connect_js(r);
	if (rc == 0) {
		if (strcmp(o.mode, "publish") == 0)
			rc = o.load.one_at_a_time ? publish_sync(r, value) : publish_async(r, value);
		else if (strcmp(o.mode, "replay") == 0)
			rc = replay(r);
		else if (strcmp(o.mode, "latency") == 0)
			rc = latency(r, value);
		else {
			fprintf(stderr, "nats-bench: unknown mode %s\n%s", o.mode, usage);
			return 2;
		}
	}
	print_result(r, bench_cpu_s() - cpu0);
	if (r->error[0])
		fprintf(stderr, "nats-bench: %s\n", r->error);
	jsCtx_Destroy(r->js);
	natsConnection_Destroy(r->nc);
	nats_Close();
	free(value);
	free(r);
	return rc == 0 ? 0 : 1;
}
