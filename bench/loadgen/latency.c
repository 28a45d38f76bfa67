/* synclog-bench latency: produce-to-consume latency at a fixed offered load. The producer (this thread) sends
 * --rate records per second on a fixed schedule; record i carries its intended send time t0 + i / rate, and a
 * sender that falls behind sends at once but keeps the intended stamps, so a stall is charged to every record
 * it delayed (no coordinated omission). A consumer thread follows the topic from its end and measures each
 * record's arrival against its stamp. Records stamped in the first --warmup-s are not counted. */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>

#include "proto/base/clock.h"
#include "bench/loadgen/loadgen.h"

/* The consumer's long poll: short, so that it notices the end of the run soon after the last record. */
#define CONSUMER_WAIT_MS 100
/* After the last send, how long the consumer may take to see every record before the run counts it as lost. */
#define DRAIN_TIMEOUT_NS (10 * 1000000000ll)

struct latency_run {
	const struct loadgen_options *o;
	struct sl_fetcher *fetcher;
	int64_t measure_from_ns; /* stamps before this are warmup */
	int64_t t0;              /* the first record's intended time: --slow-us prints times since it */
	atomic_uint_fast64_t sent;
	atomic_bool sending_done;
	uint64_t received;
	uint64_t out_of_order;
	struct hist e2e;
	struct hist ack;
	uint64_t acked, failed;
	int rc;
	char error[SL_ERROR_BYTES];
};

static void stamp_read(const struct sl_record *r, int64_t *stamp_ns, uint64_t *seq)
{
	memcpy(stamp_ns, r->value, sizeof(*stamp_ns));
	memcpy(seq, r->value + 8, sizeof(*seq));
}

static void *consumer_main(void *arg)
{
	struct latency_run *run = arg;
	uint64_t next_seq = 0;
	int64_t drain_deadline = 0;
	struct sl_record r;
	uint32_t partition;
	int rc = 0;

	for (;;) {
		bool done = atomic_load(&run->sending_done);
		uint64_t sent = atomic_load(&run->sent);

		if (done && run->received >= sent)
			break;
		if (done && drain_deadline == 0)
			drain_deadline = sl_clock_mono_ns() + DRAIN_TIMEOUT_NS;
		if (drain_deadline != 0 && sl_clock_mono_ns() > drain_deadline) {
			snprintf(run->error, sizeof(run->error), "consumer saw %llu of %llu records",
			         (unsigned long long)run->received, (unsigned long long)sent);
			rc = -ETIMEDOUT;
			break;
		}
		rc = sl_fetcher_fetch(run->fetcher);
		if (rc != 0) {
			snprintf(run->error, sizeof(run->error), "fetch: %s", sl_fetcher_error(run->fetcher));
			break;
		}
		while ((rc = sl_fetcher_next(run->fetcher, &partition, &r)) == 1) {
			int64_t now = sl_clock_mono_ns(), stamp;
			uint64_t seq;

			if (r.value_len < LOADGEN_STAMP_BYTES)
				continue;
			stamp_read(&r, &stamp, &seq);
			run->received++;
			if (seq != next_seq)
				run->out_of_order++;
			next_seq = seq + 1;
			if (stamp >= run->measure_from_ns)
				hist_add(&run->e2e, (uint64_t)(now - stamp));
			if (run->o->slow_us > 0 && (uint64_t)(now - stamp) > run->o->slow_us * 1000)
				fprintf(stderr, "slow e2e %.3f ms at %.4f s (monotonic %.6f)\n",
				        (double)(now - stamp) / 1e6, (double)(stamp - run->t0) / 1e9,
				        (double)stamp / 1e9);
		}
		if (rc < 0) {
			snprintf(run->error, sizeof(run->error), "read: %s", sl_fetcher_error(run->fetcher));
			break;
		}
		rc = 0;
	}
	run->rc = rc;
	return NULL;
}

static void acked_cb(void *opaque, const struct sl_delivery *d, void *cb_arg)
{
	struct latency_run *run = cb_arg;
	int64_t stamp = (int64_t)(uintptr_t)opaque;

	if (d->status != 0) {
		run->failed++;
		return;
	}
	run->acked++;
	int64_t took = sl_clock_mono_ns() - stamp;
	if (stamp >= run->measure_from_ns)
		hist_add(&run->ack, (uint64_t)took);
	if (run->o->slow_us > 0 && (uint64_t)took > run->o->slow_us * 1000)
		fprintf(stderr, "slow ack %.3f ms at %.4f s (monotonic %.6f)\n", (double)took / 1e6,
		        (double)(stamp - run->t0) / 1e9, (double)stamp / 1e9);
}

/* Wait until deadline_ns or until the producer's socket or timer needs attention, whichever is first. */
static int producer_wait(struct sl_producer *p, int64_t deadline_ns)
{
	struct pollfd pfd;
	int n = sl_producer_pollfd(p, &pfd), timeout_ms = sl_producer_timeout_ms(p);
	int64_t wait_ns = deadline_ns - sl_clock_mono_ns();
	struct timespec ts;

	if (timeout_ms >= 0 && (int64_t)timeout_ms * 1000000 < wait_ns)
		wait_ns = (int64_t)timeout_ms * 1000000;
	if (wait_ns > 0) {
		ts.tv_sec = wait_ns / 1000000000;
		ts.tv_nsec = wait_ns % 1000000000;
		if (ppoll(n ? &pfd : NULL, (nfds_t)n, &ts, NULL) < 0 && errno != EINTR)
			return -errno;
	}
	return sl_producer_poll(p, 0) < 0 ? -EINTR : 0;
}

static int produce_paced(struct latency_run *run, struct sl_producer *p, int64_t t0, uint64_t total)
{
	const struct loadgen_options *o = run->o;
	uint8_t *value = malloc(o->record_bytes);
	struct sl_record r;
	int64_t tick_ns = (int64_t)o->tick_us * 1000;
	uint64_t i = 0;
	int rc = 0;

	if (value == NULL)
		return -ENOMEM;
	bench_fill_value(value, o->record_bytes, 7);
	memset(&r, 0, sizeof(r));
	r.value = value;
	r.value_len = (int32_t)o->record_bytes;
	r.key_len = -1;
	r.version = SL_VERSION_NONE;
	r.idempotency_key_len = -1;
	while (i < total && rc == 0) {
		int64_t now = sl_clock_mono_ns();

		/* Every record whose time has come goes now, each with its own intended time. */
		for (; i < total; i++) {
			int64_t intended = bench_intended_ns(t0, i, o->rate);

			if (intended > now)
				break;
			memcpy(value, &intended, sizeof(intended));
			memcpy(value + 8, &i, sizeof(i));
			r.timestamp_ms = intended / 1000000;
			rc = sl_producer_send(p, SL_PARTITION_ANY, &r, (void *)(uintptr_t)intended);
			if (rc != 0) {
				snprintf(run->error, sizeof(run->error), "send: %s", sl_producer_error(p));
				break;
			}
			atomic_store(&run->sent, i + 1);
		}
		if (rc == 0 && i < total) {
			int64_t next = bench_intended_ns(t0, i, o->rate);

			rc = producer_wait(p, next > now + tick_ns ? next : now + tick_ns);
		}
	}
	if (rc == 0 && sl_producer_flush(p, -1) != 0) {
		snprintf(run->error, sizeof(run->error), "flush: %s", sl_producer_error(p));
		rc = -EIO;
	}
	free(value);
	return rc;
}

int loadgen_latency(const struct loadgen_options *o)
{
	struct latency_run *run = calloc(1, sizeof(*run));
	struct sl_fetcher_options fo;
	struct sl_producer *p = NULL;
	char err[SL_ERROR_BYTES];
	pthread_t consumer;
	uint64_t total = (uint64_t)(o->rate * o->duration_s);
	int64_t t0, t_end;
	double cpu0 = bench_cpu_s();
	FILE *out;
	int rc;

	if (run == NULL)
		return -ENOMEM;
	/* Wake-ups on time: the default timer slack of 50 us would add itself to every wait of the schedule. */
	prctl(PR_SET_TIMERSLACK, 1UL);
	run->o = o;
	hist_init(&run->e2e);
	hist_init(&run->ack);
	rc = loadgen_producer_new(o, &p, acked_cb, run, err, sizeof(err));
	if (rc != 0) {
		fprintf(stderr, "synclog-bench: producer: %s\n", err);
		return rc;
	}
	sl_fetcher_options_init(&fo);
	fo.broker = o->broker;
	fo.security = &o->security;
	fo.client_id = "synclog-bench-consumer";
	fo.topic = o->topic;
	fo.from = SL_FROM_LATEST;
	fo.max_wait_ms = CONSUMER_WAIT_MS;
	fo.partition_bytes_max = o->fetch_bytes;
	rc = sl_fetcher_new(&run->fetcher, &fo, err, sizeof(err));
	if (rc != 0) {
		fprintf(stderr, "synclog-bench: fetcher: %s\n", err);
		sl_producer_free(p);
		return rc;
	}
	t0 = sl_clock_mono_ns() + 20 * 1000000;
	run->measure_from_ns = t0 + (int64_t)(o->warmup_s * 1e9);
	run->t0 = t0;
	if (pthread_create(&consumer, NULL, consumer_main, run) != 0) {
		fprintf(stderr, "synclog-bench: cannot start the consumer thread\n");
		return -EAGAIN;
	}
	rc = produce_paced(run, p, t0, total);
	t_end = sl_clock_mono_ns();
	atomic_store(&run->sending_done, true);
	pthread_join(consumer, NULL);
	sl_producer_free(p);
	sl_fetcher_free(run->fetcher);
	if (rc == 0)
		rc = run->rc;
	out = loadgen_out_open(o);
	if (out == NULL)
		return -EIO;
	loadgen_print_header(out, o);
	fprintf(out,
	        ",\"rate\":%.1f,\"tick_us\":%u,\"duration_s\":%.3f,\"warmup_s\":%.3f,\"sent\":%llu,\"acked\":%llu,"
	        "\"failed\":%llu,"
	        "\"received\":%llu,\"out_of_order\":%llu,\"achieved_rate\":%.1f,\"cpu_s\":%.3f,\"e2e_latency\":{",
	        o->rate, o->tick_us, o->duration_s, o->warmup_s, (unsigned long long)atomic_load(&run->sent),
	        (unsigned long long)run->acked, (unsigned long long)run->failed, (unsigned long long)run->received,
	        (unsigned long long)run->out_of_order, (double)atomic_load(&run->sent) / ((double)(t_end - t0) / 1e9),
	        bench_cpu_s() - cpu0);
	hist_print_json(out, &run->e2e);
	fputs("},\"ack_latency\":{", out);
	hist_print_json(out, &run->ack);
	fputs("},", out);
	loadgen_print_error_end(out, run->error[0] != '\0' ? run->error : NULL);
	loadgen_out_close(o, out);
	if (run->error[0] != '\0')
		fprintf(stderr, "synclog-bench: latency: %s\n", run->error);
	free(run);
	return rc;
}
