/* synclog-bench produce: --producers producers, threads or processes, each with its own connection, send --count
 * records in all, either batched (the producer's linger, batch size and bounded requests in flight) or one at a
 * time (send, flush, wait for the acknowledgement). Throughput is timed from the first send to the last
 * acknowledgement of any producer. With --duration-s a producer stops sending once that time has passed (the
 * count is then a cap); with --timeline-ms the one producer notes its acknowledged count at most once per that
 * many milliseconds, so a stall of the broker shows as a flat stretch in throughput over time. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "proto/base/clock.h"
#include "bench/loadgen/loadgen.h"

/* Batched mode times one record in this many: a clock read per record would cost a few percent of the client's
 * time at a million records per second, and 1 in 16 still gives tens of thousands of samples per run. */
#define SAMPLE_EVERY 16

/* --timeline-ms: (time since the first send, records acknowledged by then) pairs of the one producer thread. */
struct timeline {
	uint32_t count;
	int64_t t_ns[LOADGEN_TIMELINE_MAX];
	uint64_t acked[LOADGEN_TIMELINE_MAX];
};

struct producer_ctx {
	const struct loadgen_options *o;
	struct timeline *timeline; /* NULL unless --timeline-ms */
	uint32_t index;
	uint64_t count;
	struct producer_result *res;
	pthread_t thread;
};

static void delivered_cb(void *opaque, const struct sl_delivery *d, void *cb_arg)
{
	struct producer_result *res = cb_arg;

	if (d->status != 0) {
		if (res->failed++ == 0)
			snprintf(res->error, sizeof(res->error), "%s", d->error ? d->error : "delivery failed");
		return;
	}
	res->acked++;
	if (opaque != NULL)
		hist_add(&res->ack_latency, (uint64_t)(sl_clock_mono_ns() - (int64_t)(uintptr_t)opaque));
}

static int64_t wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME_COARSE, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* One producer's whole run; fills ctx->res. */
static void producer_run(struct producer_ctx *ctx)
{
	const struct loadgen_options *o = ctx->o;
	struct producer_result *res = ctx->res;
	struct sl_producer *p = NULL;
	struct sl_record r;
	uint8_t *value = malloc(o->record_bytes), *key = o->key_bytes ? calloc(1, o->key_bytes) : NULL;
	char err[SL_ERROR_BYTES];
	int rc;

	hist_init(&res->ack_latency);
	if (value == NULL || (o->key_bytes && key == NULL)) {
		snprintf(res->error, sizeof(res->error), "out of memory");
		goto out;
	}
	bench_fill_value(value, o->record_bytes, ctx->index + 1);
	rc = loadgen_producer_new(o, &p, delivered_cb, res, err, sizeof(err));
	if (rc != 0) {
		snprintf(res->error, sizeof(res->error), "producer: %s", err);
		goto out;
	}
	memset(&r, 0, sizeof(r));
	r.value = value;
	r.value_len = (int32_t)o->record_bytes;
	r.key = key;
	r.key_len = key ? (int32_t)o->key_bytes : -1;
	r.version = SL_VERSION_NONE;
	r.idempotency_key_len = -1;
	res->start_ns = sl_clock_mono_ns();
	int64_t stop_ns = o->duration_set ? res->start_ns + (int64_t)(o->duration_s * 1e9) : INT64_MAX;
	int64_t next_note_ns = res->start_ns;
	struct timeline *tl = ctx->timeline;
	for (uint64_t i = 0; i < ctx->count; i++) {
		bool sample = o->one_at_a_time || i % SAMPLE_EVERY == 0;
		void *opaque = sample ? (void *)(uintptr_t)sl_clock_mono_ns() : NULL;

		if (i % 1024 == 0) {
			int64_t now = sl_clock_mono_ns();

			r.timestamp_ms = wall_ms();
			if (now >= stop_ns)
				break;
			if (tl != NULL && now >= next_note_ns && tl->count < LOADGEN_TIMELINE_MAX) {
				tl->t_ns[tl->count] = now - res->start_ns;
				tl->acked[tl->count++] = res->acked;
				next_note_ns = now + (int64_t)o->timeline_ms * 1000000;
			}
		}
		if (key != NULL) {
			uint64_t k = o->key_space ? i % o->key_space : i;
			memcpy(key, &k, o->key_bytes < sizeof(k) ? o->key_bytes : sizeof(k));
			if (o->versioned)
				r.version = (int64_t)(o->key_space ? i / o->key_space : 0) + 1;
		}
		rc = sl_producer_send(p, SL_PARTITION_ANY, &r, opaque);
		if (rc == 0 && o->one_at_a_time)
			rc = sl_producer_flush(p, -1);
		if (rc != 0) {
			snprintf(res->error, sizeof(res->error), "send: %s", sl_producer_error(p));
			break;
		}
	}
	rc = sl_producer_flush(p, -1);
	if (rc != 0 && res->error[0] == '\0')
		snprintf(res->error, sizeof(res->error), "flush: %s", sl_producer_error(p));
	res->end_ns = sl_clock_mono_ns();
	if (tl != NULL && tl->count < LOADGEN_TIMELINE_MAX) {
		tl->t_ns[tl->count] = res->end_ns - res->start_ns;
		tl->acked[tl->count++] = res->acked;
	}
out:
	sl_producer_free(p);
	free(value);
	free(key);
}

static void *producer_thread(void *arg)
{
	producer_run(arg);
	return NULL;
}

static int write_all(int fd, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int read_all(int fd, void *buf, size_t len)
{
	uint8_t *p = buf;

	while (len > 0) {
		ssize_t n = read(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Run every producer as a thread, or as a child process that sends its result back through a pipe. */
static int producers_run(const struct loadgen_options *o, struct producer_ctx *ctxs)
{
	pid_t pids[LOADGEN_PRODUCERS_MAX];
	int fds[LOADGEN_PRODUCERS_MAX];

	if (o->kind == PRODUCER_THREAD) {
		for (uint32_t i = 0; i < o->producers; i++)
			if (pthread_create(&ctxs[i].thread, NULL, producer_thread, &ctxs[i]) != 0) {
				fprintf(stderr, "synclog-bench: cannot start producer thread %u\n", i);
				exit(1);
			}
		for (uint32_t i = 0; i < o->producers; i++)
			pthread_join(ctxs[i].thread, NULL);
		return 0;
	}
	for (uint32_t i = 0; i < o->producers; i++) {
		int pipefd[2];

		if (pipe(pipefd) != 0 || (pids[i] = fork()) < 0) {
			fprintf(stderr, "synclog-bench: cannot start producer process %u: %s\n", i, strerror(errno));
			exit(1);
		}
		if (pids[i] == 0) {
			close(pipefd[0]);
			producer_run(&ctxs[i]);
			_exit(write_all(pipefd[1], ctxs[i].res, sizeof(*ctxs[i].res)) == 0 ? 0 : 1);
		}
		close(pipefd[1]);
		fds[i] = pipefd[0];
	}
	for (uint32_t i = 0; i < o->producers; i++) {
		int status;

		if (read_all(fds[i], ctxs[i].res, sizeof(*ctxs[i].res)) != 0) {
			memset(ctxs[i].res, 0, sizeof(*ctxs[i].res));
			hist_init(&ctxs[i].res->ack_latency);
			snprintf(ctxs[i].res->error, sizeof(ctxs[i].res->error), "producer process %u died", i);
		}
		close(fds[i]);
		waitpid(pids[i], &status, 0);
	}
	return 0;
}

int loadgen_produce(const struct loadgen_options *o)
{
	struct producer_ctx ctxs[LOADGEN_PRODUCERS_MAX];
	struct producer_result *results = calloc(o->producers, sizeof(*results));
	struct hist *all = malloc(sizeof(*all));
	struct timeline *tl = o->timeline_ms ? calloc(1, sizeof(*tl)) : NULL;
	uint64_t acked = 0, failed = 0, stored_bytes = 0, stored_records = 0;
	int64_t start = INT64_MAX, end = 0;
	const char *error = NULL;
	char err[SL_ERROR_BYTES];
	double cpu0 = bench_cpu_s(), seconds, record_bytes = (double)o->record_bytes + o->key_bytes;
	FILE *out;

	if (results == NULL || all == NULL || (o->timeline_ms && tl == NULL)) {
		fprintf(stderr, "synclog-bench: out of memory\n");
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < o->producers; i++) {
		ctxs[i] = (struct producer_ctx){.o = o, .index = i, .res = &results[i]};
		ctxs[i].count = o->count / o->producers + (i < o->count % o->producers ? 1 : 0);
	}
	ctxs[0].timeline = tl; /* --timeline-ms is refused with more than one producer */
	producers_run(o, ctxs);
	hist_init(all);
	for (uint32_t i = 0; i < o->producers; i++) {
		acked += results[i].acked;
		failed += results[i].failed;
		if (results[i].start_ns && results[i].start_ns < start)
			start = results[i].start_ns;
		if (results[i].end_ns > end)
			end = results[i].end_ns;
		hist_merge(all, &results[i].ack_latency);
		if (error == NULL && results[i].error[0] != '\0')
			error = results[i].error;
	}
	seconds = end > start ? (double)(end - start) / 1e9 : 0;
	if (loadgen_topic_usage(o, &stored_bytes, &stored_records, err, sizeof(err)) != 0 && error == NULL)
		error = err;
	out = loadgen_out_open(o);
	if (out == NULL)
		return -EIO;
	loadgen_print_header(out, o);
	fprintf(out,
	        ",\"records\":%llu,\"failed\":%llu,\"seconds\":%.6f,\"records_per_s\":%.1f,\"mb_per_s\":%.3f,"
	        "\"cpu_s\":%.3f,\"stored_bytes\":%llu,\"stored_records\":%llu,\"ack_latency\":{",
	        (unsigned long long)acked, (unsigned long long)failed, seconds,
	        seconds > 0 ? (double)acked / seconds : 0,
	        seconds > 0 ? (double)acked * record_bytes / seconds / 1e6 : 0, bench_cpu_s() - cpu0,
	        (unsigned long long)stored_bytes, (unsigned long long)stored_records);
	hist_print_json(out, all);
	fputc('}', out);
	if (tl != NULL) {
		fprintf(out, ",\"timeline\":{\"interval_ms\":%u,\"t_ms\":[", o->timeline_ms);
		for (uint32_t i = 0; i < tl->count; i++)
			fprintf(out, "%s%.3f", i ? "," : "", (double)tl->t_ns[i] / 1e6);
		fputs("],\"acked\":[", out);
		for (uint32_t i = 0; i < tl->count; i++)
			fprintf(out, "%s%llu", i ? "," : "", (unsigned long long)tl->acked[i]);
		fputs("]}", out);
	}
	fprintf(out, ",\"error\":");
	if (error != NULL)
		sl_json_print_string(out, error, strlen(error));
	else
		fputs("null", out);
	fputs("}\n", out);
	loadgen_out_close(o, out);
	if (error != NULL)
		fprintf(stderr, "synclog-bench: %s\n", error);
	free(results);
	free(all);
	free(tl);
	/* With --duration-s the count is a cap: a record sent and not acknowledged shows as an error or a failure. */
	return error != NULL || failed > 0 || (!o->duration_set && acked != o->count) ? -EIO : 0;
}
