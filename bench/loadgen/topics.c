/* synclog-bench create-topics and produce-topics: the "many topics" half of the partition curve
 * (bench/curve_partitions.sh), where the partitions are --topics topics of --partitions each rather than one topic.
 *
 * create-topics creates TOPIC-0 .. TOPIC-(N-1) on one connection, one request each.
 *
 * produce-topics sends --count records over all of them from one connection. The library's producer serves one
 * topic (a user with 10,000 topics would not open 10,000 producers), so this mode speaks the wire protocol itself:
 * one record batch is built once (sl_batch_builder, as the producer builds them; codec none, keyless), and each
 * Produce request carries it to the next topic in turn, partition by partition, with --inflight requests
 * outstanding on the connection. A batch holds at most what --batch-bytes allows and no more records than each
 * partition's share of --count, so the records spread over every partition as a keyed producer would spread
 * them. Throughput is timed from the first request to the last acknowledgement. */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "proto/base/clock.h"
#include "proto/batch.h"
#include "proto/frame.h"
#include "proto/synclog.pb-c.h"
#include "bench/loadgen/loadgen.h"

/* Requests outstanding at most; --inflight picks within it. */
#define TOPICS_INFLIGHT_MAX 64

struct wire {
	int fd;
	uint8_t *buf; /* one frame in or out */
	size_t cap;
	uint32_t correlation;
};

static void topic_name(char *out, size_t cap, const char *prefix, uint32_t i)
{
	snprintf(out, cap, "%s-%u", prefix, i);
}

int loadgen_create_topics(const struct loadgen_options *o)
{
	struct sl_topic_config config = {.partitions = o->partitions, .retention_ms = -1, .retention_bytes = -1};
	struct sl_conn *c;
	uint32_t created = 0, existed = 0;
	char err[SL_ERROR_BYTES] = "";
	int64_t start, end;
	FILE *out;
	int rc = sl_conn_new(&c, o->broker, "synclog-bench");

	if (rc != 0) {
		fprintf(stderr, "synclog-bench: bad broker address %s\n", o->broker);
		return rc;
	}
	start = sl_clock_mono_ns();
	for (uint32_t i = 0; i < o->topics; i++) {
		topic_name(config.name, sizeof(config.name), o->topic, i);
		rc = sl_topic_create(c, &config);
		if (rc == -EEXIST) {
			existed++;
			rc = 0;
		} else if (rc == 0) {
			created++;
		} else {
			snprintf(err, sizeof(err), "create %s: %s", config.name, sl_conn_error(c));
			break;
		}
	}
	end = sl_clock_mono_ns();
	sl_conn_free(c);
	out = loadgen_out_open(o);
	if (out == NULL)
		return -EIO;
	loadgen_print_header(out, o);
	fprintf(out, ",\"topics\":%u,\"created\":%u,\"existed\":%u,\"seconds\":%.3f,\"error\":", o->topics, created,
	        existed, (double)(end - start) / 1e9);
	if (rc != 0)
		sl_json_print_string(out, err, strlen(err));
	else
		fputs("null", out);
	fputs("}\n", out);
	loadgen_out_close(o, out);
	if (rc != 0)
		fprintf(stderr, "synclog-bench: create-topics: %s\n", err);
	return rc;
}

/* ---- the wire, blocking ---- */

static int wire_connect(struct wire *w, const char *broker, char *err, size_t err_bytes)
{
	struct sl_broker_addr addr;
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *ai = NULL;
	int one = 1, rc;

	if (sl_broker_parse(broker, &addr, err, err_bytes) != 0)
		return -EINVAL;
	rc = getaddrinfo(addr.host, addr.port, &hints, &ai);
	if (rc != 0) {
		snprintf(err, err_bytes, "resolve %s: %s", broker, gai_strerror(rc));
		return -EHOSTUNREACH;
	}
	w->fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (w->fd < 0 || connect(w->fd, ai->ai_addr, ai->ai_addrlen) != 0) {
		rc = -errno;
		snprintf(err, err_bytes, "connect %s: %s", broker, strerror(errno));
		freeaddrinfo(ai);
		return rc;
	}
	freeaddrinfo(ai);
	setsockopt(w->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return 0;
}

static int io_all(int fd, uint8_t *p, size_t len, int writing)
{
	while (len > 0) {
		ssize_t n = writing ? write(fd, p, len) : read(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n == 0 ? -ECONNRESET : -errno;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int buf_reserve(struct wire *w, size_t need)
{
	if (need <= w->cap)
		return 0;
	uint8_t *b = realloc(w->buf, need);
	if (b == NULL)
		return -ENOMEM;
	w->buf = b;
	w->cap = need;
	return 0;
}

static int wire_send(struct wire *w, Synclog__Request *req)
{
	size_t len = synclog__request__get_packed_size(req);
	int rc = buf_reserve(w, SL_FRAME_HEADER_BYTES + len);

	if (rc != 0)
		return rc;
	sl_frame_put_length(w->buf, (uint32_t)len);
	synclog__request__pack(req, w->buf + SL_FRAME_HEADER_BYTES);
	return io_all(w->fd, w->buf, SL_FRAME_HEADER_BYTES + len, 1);
}

/* The next response frame, decoded (free with synclog__response__free_unpacked). */
static int wire_recv(struct wire *w, Synclog__Response **out)
{
	uint8_t head[SL_FRAME_HEADER_BYTES];
	uint32_t len;
	int rc = io_all(w->fd, head, sizeof(head), 0);

	if (rc == 0)
		rc = sl_frame_length(head, sizeof(head), SL_FRAME_BYTES_MAX_DEFAULT * 4, &len);
	if (rc == 0)
		rc = buf_reserve(w, len);
	if (rc == 0)
		rc = io_all(w->fd, w->buf, len, 0);
	if (rc != 0)
		return rc;
	*out = synclog__response__unpack(NULL, len, w->buf);
	return *out ? 0 : -EBADMSG;
}

static int wire_hello(struct wire *w, char *err, size_t err_bytes)
{
	Synclog__Request req = SYNCLOG__REQUEST__INIT;
	Synclog__HelloRequest hello = SYNCLOG__HELLO_REQUEST__INIT;
	Synclog__Response *resp;
	int rc;

	hello.protocol_version = SL_PROTOCOL_VERSION;
	hello.client_id = "synclog-bench";
	req.correlation_id = ++w->correlation;
	req.body_case = SYNCLOG__REQUEST__BODY_HELLO;
	req.hello = &hello;
	rc = wire_send(w, &req);
	if (rc == 0)
		rc = wire_recv(w, &resp);
	if (rc != 0) {
		snprintf(err, err_bytes, "hello: %s", strerror(-rc));
		return rc;
	}
	if (resp->body_case != SYNCLOG__RESPONSE__BODY_HELLO) {
		snprintf(err, err_bytes, "the broker answered Hello with something else");
		rc = -EPROTO;
	}
	synclog__response__free_unpacked(resp, NULL);
	return rc;
}

/* ---- produce-topics ---- */

/* One batch of records_per_batch records of --record-bytes, built once. */
static int batch_build(const struct loadgen_options *o, uint32_t records_per_batch, struct sl_batch_builder *b,
                       const uint8_t **batch, size_t *batch_bytes)
{
	uint8_t *value = malloc(o->record_bytes);
	struct sl_record r = {.key_len = -1,
	                      .value_len = (int32_t)o->record_bytes,
	                      .version = SL_VERSION_NONE,
	                      .idempotency_key_len = -1,
	                      .timestamp_ms = 0};
	int rc = value ? sl_batch_builder_init(b, o->batch_bytes) : -ENOMEM;

	if (rc == 0) {
		bench_fill_value(value, o->record_bytes, 3);
		r.value = value;
		r.timestamp_ms = (int64_t)(sl_clock_mono_ns() / 1000000);
		for (uint32_t i = 0; rc == 0 && i < records_per_batch; i++)
			rc = sl_batch_builder_add(b, &r);
		if (rc == 0)
			rc = sl_batch_builder_finish(b, SL_BATCH_CODEC_NONE, batch, batch_bytes);
	}
	free(value);
	return rc;
}

int loadgen_produce_topics(const struct loadgen_options *o)
{
	uint64_t partitions_all = (uint64_t)o->topics * o->partitions;
	uint64_t share = (o->count + partitions_all - 1) / partitions_all;
	uint64_t fit = o->batch_bytes / (o->record_bytes + 16); /* record framing is at most a few bytes more */
	uint32_t per_batch = (uint32_t)(share < fit ? share : fit);
	uint32_t inflight = o->inflight > TOPICS_INFLIGHT_MAX ? TOPICS_INFLIGHT_MAX : o->inflight;
	struct sl_batch_builder b = {0};
	struct wire w = {.fd = -1};
	const uint8_t *batch = NULL;
	size_t batch_bytes = 0;
	uint64_t batches, sent = 0, acked_batches = 0, acked = 0;
	int64_t stamps[TOPICS_INFLIGHT_MAX], start = 0, end = 0;
	struct hist *lat = malloc(sizeof(*lat));
	char err[SL_ERROR_BYTES] = "", name[SL_TOPIC_NAME_BYTES_MAX + 1];
	double cpu0 = bench_cpu_s();
	FILE *out;
	int rc;

	if (lat == NULL)
		return -ENOMEM;
	hist_init(lat);
	if (per_batch < 1)
		per_batch = 1;
	batches = (o->count + per_batch - 1) / per_batch;
	rc = batch_build(o, per_batch, &b, &batch, &batch_bytes);
	if (rc != 0)
		snprintf(err, sizeof(err), "cannot build a batch of %u records: %s", per_batch, strerror(-rc));
	if (rc == 0)
		rc = wire_connect(&w, o->broker, err, sizeof(err));
	if (rc == 0)
		rc = wire_hello(&w, err, sizeof(err));
	start = sl_clock_mono_ns();
	while (rc == 0 && acked_batches < batches) {
		/* Fill the window, then take one answer. */
		while (rc == 0 && sent < batches && sent - acked_batches < inflight) {
			Synclog__Request req = SYNCLOG__REQUEST__INIT;
			Synclog__ProduceRequest pr = SYNCLOG__PRODUCE_REQUEST__INIT;
			Synclog__ProducePartition pp = SYNCLOG__PRODUCE_PARTITION__INIT, *ppp = &pp;
			uint64_t slot = sent % partitions_all;

			topic_name(name, sizeof(name), o->topic, (uint32_t)(slot % o->topics));
			pp.partition = (uint32_t)(slot / o->topics);
			pp.batch.data = (uint8_t *)batch;
			pp.batch.len = batch_bytes;
			pr.topic = name;
			pr.acks = (Synclog__Acks)o->acks;
			pr.n_partitions = 1;
			pr.partitions = &ppp;
			req.correlation_id = ++w.correlation;
			req.body_case = SYNCLOG__REQUEST__BODY_PRODUCE;
			req.produce = &pr;
			stamps[sent % TOPICS_INFLIGHT_MAX] = sl_clock_mono_ns();
			rc = wire_send(&w, &req);
			if (rc != 0)
				snprintf(err, sizeof(err), "send: %s", strerror(-rc));
			sent++;
		}
		Synclog__Response *resp = NULL;
		if (rc == 0 && (rc = wire_recv(&w, &resp)) != 0)
			snprintf(err, sizeof(err), "receive: %s", strerror(-rc));
		if (rc == 0) {
			Synclog__ProduceResponse *p =
			        resp->body_case == SYNCLOG__RESPONSE__BODY_PRODUCE ? resp->produce : NULL;
			int code = resp->error                      ? (int)resp->error
			           : p == NULL || p->n_results != 1 ? -1
			                                            : (int)p->results[0]->error;

			if (code != 0) {
				snprintf(err, sizeof(err), "produce answered %s: %s",
				         code < 0 ? "?" : sl_error_name(code),
				         resp->error_message && resp->error_message[0] ? resp->error_message
				         : p && p->n_results == 1 && p->results[0]->error_message
				                 ? p->results[0]->error_message
				                 : "");
				rc = -EIO;
			}
			hist_add(lat, (uint64_t)(sl_clock_mono_ns() - stamps[acked_batches % TOPICS_INFLIGHT_MAX]));
			acked_batches++;
			acked += per_batch;
			synclog__response__free_unpacked(resp, NULL);
		}
	}
	end = sl_clock_mono_ns();
	if (acked > o->count)
		acked = o->count; /* the last batch counts the records asked for, no more */
	double seconds = end > start ? (double)(end - start) / 1e9 : 0;
	out = loadgen_out_open(o);
	if (out != NULL) {
		loadgen_print_header(out, o);
		fprintf(out,
		        ",\"topics\":%u,\"records_per_batch\":%u,\"batch_bytes_sent\":%zu,\"records\":%llu,"
		        "\"seconds\":%.6f,\"records_per_s\":%.1f,\"mb_per_s\":%.3f,\"stored_mb_per_s\":%.3f,"
		        "\"cpu_s\":%.3f,\"ack_latency\":{",
		        o->topics, per_batch, batch_bytes, (unsigned long long)acked, seconds,
		        seconds > 0 ? (double)acked / seconds : 0,
		        seconds > 0 ? (double)acked * o->record_bytes / seconds / 1e6 : 0,
		        seconds > 0 ? (double)acked_batches * (double)batch_bytes / seconds / 1e6 : 0,
		        bench_cpu_s() - cpu0);
		hist_print_json(out, lat);
		fputs("},", out);
		loadgen_print_error_end(out, rc != 0 ? err : NULL);
		loadgen_out_close(o, out);
	}
	if (rc != 0)
		fprintf(stderr, "synclog-bench: produce-topics: %s\n", err);
	if (w.fd >= 0)
		close(w.fd);
	free(w.buf);
	sl_batch_builder_free(&b);
	free(lat);
	return rc;
}
