/* synclog-bench: the load generator of `make bench`, built on the client library. Parses the flags, creates the
 * topic when asked, and runs one mode: produce (batched or one acknowledged record at a time), replay (read a
 * backlog from the start), latency (produce-to-consume at a fixed offered load), idle (hold connections),
 * list-time (fetch-by-timestamp latency), create-topics and produce-topics (many topics). Prints one JSON
 * object. */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "bench/loadgen/loadgen.h"

static const char usage[] =
        "usage: synclog-bench MODE --broker HOST:PORT [options]\n"
        "\n"
        "  produce   send --count records through --producers producers (each its own connection), batched with\n"
        "            a bounded number of requests in flight, or with --one-at-a-time one acknowledged record at\n"
        "            a time; reports records/s, MB/s and the ack latency of every record\n"
        "  replay    read the topic from the start to its end as it was at the start (--count: records expected)\n"
        "  latency   offer --rate records/s for --duration-s seconds and read them back as they arrive; every\n"
        "            record carries its intended send time, so a stalled sender is charged (coordinated omission)\n"
        "  idle      open --connections connections (each says Hello) and hold them until SIGTERM or for\n"
        "            --duration-s; the JSON is written once all are open\n"
        "  list-time --count ListOffsets-by-timestamp requests (all partitions each) at timestamps spread over\n"
        "            [--from-ms, --to-ms]; reports the first request's latency and the percentiles of the rest\n"
        "  create-topics   create --topics topics named TOPIC-0 .. TOPIC-(N-1) of --partitions each\n"
        "  produce-topics  send --count records over those topics' partitions, one batch per request (built once),\n"
        "            --inflight requests outstanding on one connection\n"
        "  handshake open --count connections one after another (TCP, TLS, Hello, SCRAM) and report them per second\n"
        "\n"
        "  --topic NAME          (bench)            --create            create the topic first\n"
        "  --partitions N        (1)                --record-bytes N    value bytes per record (100)\n"
        "  --key-bytes N         (0: keyless)       --count N           records (1000000)\n"
        "  --key-space N         key i mod N (0: i)  --versioned         version i / key-space + 1\n"
        "  --producers N         (1)                --producer-kind thread|process (thread)\n"
        "  --acks none|written|fsync (written)      --one-at-a-time\n"
        "  --linger-ms N         (5)                --batch-bytes N     (262144)\n"
        "  --inflight N          (5, at most 5; produce-topics at most 64) --buffer-bytes N (33554432)\n"
        "  --codec none|zstd     (none)             --fetch-bytes N     per partition per Fetch (1048576)\n"
        "  --rate R              records/s          --duration-s S      (10; produce: stop sending after S)\n"
        "  --timeline-ms N       produce: note the acknowledged count every N ms (one producer thread)\n"
        "  --slow-us N           latency: print each record slower than N us (e2e or ack) with its time\n"
        "  --connections N       idle (1000)        --topics N          create-topics, produce-topics (100)\n"
        "  --from-ms MS --to-ms MS                  list-time: the span of record timestamps to ask for\n"
        "  --warmup-s S          (1)                --tick-us N         latency mode send tick (100)\n"
        "  --tls-ca FILE         TLS, trusting FILE      --user NAME         SCRAM-SHA-256 as NAME\n"
        "  --password TEXT       the user's password\n"
        "  --label TEXT          copied to the output\n"
        "  --json FILE           write the result there instead of stdout\n";

static int bad_usage(const char *what, const char *arg)
{
	fprintf(stderr, "synclog-bench: %s '%s'\n%s", what, arg ? arg : "", usage);
	return 2;
}

static int parse_u64(const char *s, uint64_t *out)
{
	char *end;

	errno = 0;
	*out = strtoull(s, &end, 10);
	return errno != 0 || end == s || *end != '\0' || s[0] == '-' ? -EINVAL : 0;
}

static int parse_double(const char *s, double *out)
{
	char *end;

	errno = 0;
	*out = strtod(s, &end);
	return errno != 0 || end == s || *end != '\0' || *out < 0 ? -EINVAL : 0;
}

const char *acks_name(enum sl_acks acks)
{
	return acks == SL_ACKS_FSYNC ? "fsync" : acks == SL_ACKS_WRITTEN ? "written" : "none";
}

int loadgen_producer_new(const struct loadgen_options *o, struct sl_producer **out, sl_producer_delivery_cb cb,
                         void *cb_arg, char *err, size_t err_bytes)
{
	struct sl_producer_options po;

	sl_producer_options_init(&po);
	po.broker = o->broker;
	po.client_id = "synclog-bench";
	po.topic = o->topic;
	po.acks = o->acks;
	po.codec = o->codec;
	po.linger_ms = o->linger_ms;
	po.batch_bytes_max = o->batch_bytes;
	/* A batch never holds more records than fit its bytes: at least 8 bytes of framing each. */
	po.batch_records_max = o->batch_bytes / (o->record_bytes + o->key_bytes + 8) + 1;
	po.requests_in_flight_max = o->inflight;
	po.buffer_bytes_max = o->buffer_bytes;
	po.delivery_cb = cb;
	po.delivery_cb_arg = cb_arg;
	po.security = &o->security;
	return sl_producer_new(out, &po, err, err_bytes);
}

int loadgen_topic_usage(const struct loadgen_options *o, uint64_t *bytes_out, uint64_t *records_out, char *err,
                        size_t err_bytes)
{
	struct sl_topic_config config;
	struct sl_partition_info *parts = NULL;
	struct sl_conn *c;
	uint32_t n = 0;
	int rc;

	*bytes_out = *records_out = 0;
	rc = sl_conn_new(&c, o->broker, "synclog-bench");
	if (rc != 0) {
		snprintf(err, err_bytes, "bad broker address %s", o->broker);
		return rc;
	}
	rc = sl_conn_set_security(c, &o->security);
	if (rc == 0)
		rc = sl_topic_describe(c, o->topic, &config, &parts, &n);
	if (rc != 0)
		snprintf(err, err_bytes, "%s", sl_conn_error(c));
	for (uint32_t i = 0; rc == 0 && i < n; i++) {
		*bytes_out += parts[i].bytes;
		*records_out += (uint64_t)(parts[i].next_offset - parts[i].earliest_offset);
	}
	free(parts);
	sl_conn_free(c);
	return rc;
}

static int topic_create(const struct loadgen_options *o)
{
	struct sl_topic_config config = {.partitions = o->partitions, .retention_ms = -1, .retention_bytes = -1};
	struct sl_conn *c;
	int rc;

	snprintf(config.name, sizeof(config.name), "%s", o->topic);
	rc = sl_conn_new(&c, o->broker, "synclog-bench");
	if (rc != 0) {
		fprintf(stderr, "synclog-bench: bad broker address %s\n", o->broker);
		return rc;
	}
	rc = sl_conn_set_security(c, &o->security);
	if (rc == 0)
		rc = sl_topic_create(c, &config);
	if (rc == -EEXIST)
		rc = 0;
	else if (rc != 0)
		fprintf(stderr, "synclog-bench: cannot create topic %s: %s\n", o->topic, sl_conn_error(c));
	sl_conn_free(c);
	return rc;
}

FILE *loadgen_out_open(const struct loadgen_options *o)
{
	FILE *out = o->json_path ? fopen(o->json_path, "w") : stdout;

	if (out == NULL)
		fprintf(stderr, "synclog-bench: cannot write %s: %s\n", o->json_path, strerror(errno));
	return out;
}

void loadgen_out_close(const struct loadgen_options *o, FILE *out)
{
	if (out != stdout)
		fclose(out);
	else
		fflush(out);
	(void)o;
}

void loadgen_print_header(FILE *out, const struct loadgen_options *o)
{
	fprintf(out,
	        "{\"tool\":\"synclog-bench\",\"mode\":\"%s\",\"label\":\"%s\",\"topic\":\"%s\",\"partitions\":%u,"
	        "\"record_bytes\":%u,\"key_bytes\":%u,\"acks\":\"%s\",\"producers\":%u,\"producer_kind\":\"%s\","
	        "\"one_at_a_time\":%s,\"codec\":\"%s\",\"linger_ms\":%u,\"batch_bytes\":%u,\"inflight\":%u,"
	        "\"buffer_bytes\":%llu,\"fetch_bytes\":%u",
	        o->mode, o->label ? o->label : "", o->topic, o->partitions, o->record_bytes, o->key_bytes,
	        acks_name(o->acks), o->producers, o->kind == PRODUCER_PROCESS ? "process" : "thread",
	        o->one_at_a_time ? "true" : "false", o->codec == SL_BATCH_CODEC_ZSTD ? "zstd" : "none", o->linger_ms,
	        o->batch_bytes, o->inflight, (unsigned long long)o->buffer_bytes, o->fetch_bytes);
}

void loadgen_print_error_end(FILE *out, const char *error)
{
	fputs("\"error\":", out);
	if (error != NULL)
		sl_json_print_string(out, error, strlen(error));
	else
		fputs("null", out);
	fputs("}\n", out);
}

enum {
	OPT_BROKER = 256,
	OPT_TOPIC,
	OPT_CREATE,
	OPT_PARTITIONS,
	OPT_RECORD_BYTES,
	OPT_KEY_BYTES,
	OPT_KEY_SPACE,
	OPT_VERSIONED,
	OPT_COUNT,
	OPT_PRODUCERS,
	OPT_KIND,
	OPT_ACKS,
	OPT_ONE,
	OPT_LINGER,
	OPT_BATCH_BYTES,
	OPT_INFLIGHT,
	OPT_BUFFER_BYTES,
	OPT_CODEC,
	OPT_FETCH_BYTES,
	OPT_RATE,
	OPT_DURATION,
	OPT_WARMUP,
	OPT_TICK,
	OPT_LABEL,
	OPT_JSON,
	OPT_TLS_CA,
	OPT_USER,
	OPT_PASSWORD,
	OPT_HELP,
	OPT_TIMELINE,
	OPT_CONNECTIONS,
	OPT_TOPICS,
	OPT_FROM_MS,
	OPT_TO_MS,
	OPT_SLOW_US,
};

static const struct option long_options[] = {
        {"broker", required_argument, NULL, OPT_BROKER},
        {"topic", required_argument, NULL, OPT_TOPIC},
        {"create", no_argument, NULL, OPT_CREATE},
        {"partitions", required_argument, NULL, OPT_PARTITIONS},
        {"record-bytes", required_argument, NULL, OPT_RECORD_BYTES},
        {"key-bytes", required_argument, NULL, OPT_KEY_BYTES},
        {"key-space", required_argument, NULL, OPT_KEY_SPACE},
        {"versioned", no_argument, NULL, OPT_VERSIONED},
        {"count", required_argument, NULL, OPT_COUNT},
        {"producers", required_argument, NULL, OPT_PRODUCERS},
        {"producer-kind", required_argument, NULL, OPT_KIND},
        {"acks", required_argument, NULL, OPT_ACKS},
        {"one-at-a-time", no_argument, NULL, OPT_ONE},
        {"linger-ms", required_argument, NULL, OPT_LINGER},
        {"batch-bytes", required_argument, NULL, OPT_BATCH_BYTES},
        {"inflight", required_argument, NULL, OPT_INFLIGHT},
        {"buffer-bytes", required_argument, NULL, OPT_BUFFER_BYTES},
        {"codec", required_argument, NULL, OPT_CODEC},
        {"fetch-bytes", required_argument, NULL, OPT_FETCH_BYTES},
        {"rate", required_argument, NULL, OPT_RATE},
        {"duration-s", required_argument, NULL, OPT_DURATION},
        {"warmup-s", required_argument, NULL, OPT_WARMUP},
        {"tick-us", required_argument, NULL, OPT_TICK},
        {"label", required_argument, NULL, OPT_LABEL},
        {"json", required_argument, NULL, OPT_JSON},
        {"tls-ca", required_argument, NULL, OPT_TLS_CA},
        {"user", required_argument, NULL, OPT_USER},
        {"password", required_argument, NULL, OPT_PASSWORD},
        {"help", no_argument, NULL, OPT_HELP},
        {"timeline-ms", required_argument, NULL, OPT_TIMELINE},
        {"connections", required_argument, NULL, OPT_CONNECTIONS},
        {"topics", required_argument, NULL, OPT_TOPICS},
        {"from-ms", required_argument, NULL, OPT_FROM_MS},
        {"to-ms", required_argument, NULL, OPT_TO_MS},
        {"slow-us", required_argument, NULL, OPT_SLOW_US},
        {NULL, 0, NULL, 0},
};

static int parse_options(int argc, char **argv, struct loadgen_options *o)
{
	uint64_t v;
	int c;

	memset(o, 0, sizeof(*o));
	o->topic = "bench";
	o->partitions = 1;
	o->record_bytes = 100;
	o->count = 1000000;
	o->duration_s = 10;
	o->warmup_s = 1;
	o->tick_us = 100;
	o->producers = 1;
	o->acks = SL_ACKS_WRITTEN;
	o->codec = SL_BATCH_CODEC_NONE;
	o->linger_ms = 5;
	o->batch_bytes = 256 * 1024;
	o->inflight = SL_PRODUCER_REQUESTS_IN_FLIGHT_MAX;
	o->buffer_bytes = 32u << 20;
	o->fetch_bytes = 1u << 20;
	o->connections = 1000;
	o->topics = 100;
	while ((c = getopt_long(argc, argv, "", long_options, NULL)) != -1) {
		switch (c) {
		case OPT_BROKER:
			o->broker = optarg;
			break;
		case OPT_TOPIC:
			o->topic = optarg;
			break;
		case OPT_CREATE:
			o->create = true;
			break;
		case OPT_PARTITIONS:
			if (parse_u64(optarg, &v) || v < 1 || v > 10000)
				return bad_usage("--partitions must be 1 to 10000, not", optarg);
			o->partitions = (uint32_t)v;
			break;
		case OPT_RECORD_BYTES:
			if (parse_u64(optarg, &v) || v < LOADGEN_STAMP_BYTES || v > (16u << 20))
				return bad_usage("--record-bytes must be 16 to 16777216, not", optarg);
			o->record_bytes = (uint32_t)v;
			break;
		case OPT_KEY_BYTES:
			if (parse_u64(optarg, &v) || v > 4096)
				return bad_usage("--key-bytes must be 0 to 4096, not", optarg);
			o->key_bytes = (uint32_t)v;
			break;
		case OPT_KEY_SPACE:
			if (parse_u64(optarg, &v))
				return bad_usage("--key-space must be a number of keys, not", optarg);
			o->key_space = v;
			break;
		case OPT_VERSIONED:
			o->versioned = true;
			break;
		case OPT_COUNT:
			if (parse_u64(optarg, &v) || v < 1)
				return bad_usage("--count must be at least 1, not", optarg);
			o->count = v;
			break;
		case OPT_PRODUCERS:
			if (parse_u64(optarg, &v) || v < 1 || v > LOADGEN_PRODUCERS_MAX)
				return bad_usage("--producers must be 1 to 64, not", optarg);
			o->producers = (uint32_t)v;
			break;
		case OPT_KIND:
			if (strcmp(optarg, "thread") == 0)
				o->kind = PRODUCER_THREAD;
			else if (strcmp(optarg, "process") == 0)
				o->kind = PRODUCER_PROCESS;
			else
				return bad_usage("--producer-kind must be thread or process, not", optarg);
			break;
		case OPT_ACKS:
			if (strcmp(optarg, "fsync") == 0)
				o->acks = SL_ACKS_FSYNC;
			else if (strcmp(optarg, "written") == 0)
				o->acks = SL_ACKS_WRITTEN;
			else if (strcmp(optarg, "none") == 0)
				o->acks = SL_ACKS_NONE;
			else
				return bad_usage("--acks must be none, written or fsync, not", optarg);
			break;
		case OPT_ONE:
			o->one_at_a_time = true;
			break;
		case OPT_LINGER:
			if (parse_u64(optarg, &v) || v > 10000)
				return bad_usage("--linger-ms must be 0 to 10000, not", optarg);
			o->linger_ms = (uint32_t)v;
			break;
		case OPT_BATCH_BYTES:
			if (parse_u64(optarg, &v) || v < 1024 || v > SL_BATCH_BYTES_MAX)
				return bad_usage("--batch-bytes must be 1024 to 67108864, not", optarg);
			o->batch_bytes = (uint32_t)v;
			break;
		case OPT_INFLIGHT:
			/* produce-topics speaks the protocol itself and may keep more outstanding (checked below). */
			if (parse_u64(optarg, &v) || v < 1 || v > 64)
				return bad_usage("--inflight must be 1 to 64, not", optarg);
			o->inflight = (uint32_t)v;
			break;
		case OPT_BUFFER_BYTES:
			if (parse_u64(optarg, &v) || v < 1024)
				return bad_usage("--buffer-bytes must be at least 1024, not", optarg);
			o->buffer_bytes = v;
			break;
		case OPT_CODEC:
			if (strcmp(optarg, "none") == 0)
				o->codec = SL_BATCH_CODEC_NONE;
			else if (strcmp(optarg, "zstd") == 0)
				o->codec = SL_BATCH_CODEC_ZSTD;
			else
				return bad_usage("--codec must be none or zstd, not", optarg);
			break;
		case OPT_FETCH_BYTES:
			if (parse_u64(optarg, &v) || v < 1024 || v > (64u << 20))
				return bad_usage("--fetch-bytes must be 1024 to 67108864, not", optarg);
			o->fetch_bytes = (uint32_t)v;
			break;
		case OPT_SLOW_US:
			if (parse_u64(optarg, &o->slow_us))
				return bad_usage("--slow-us must be a whole number of microseconds, not", optarg);
			break;
		case OPT_RATE:
			if (parse_double(optarg, &o->rate) || o->rate < 1)
				return bad_usage("--rate must be at least 1 record/s, not", optarg);
			break;
		case OPT_DURATION:
			if (parse_double(optarg, &o->duration_s) || o->duration_s <= 0)
				return bad_usage("--duration-s must be positive, not", optarg);
			o->duration_set = true;
			break;
		case OPT_WARMUP:
			if (parse_double(optarg, &o->warmup_s))
				return bad_usage("--warmup-s must be 0 or more, not", optarg);
			break;
		case OPT_TICK:
			if (parse_u64(optarg, &v) || v < 1 || v > 1000000)
				return bad_usage("--tick-us must be 1 to 1000000, not", optarg);
			o->tick_us = (uint32_t)v;
			break;
		case OPT_LABEL:
			o->label = optarg;
			break;
		case OPT_TIMELINE:
			if (parse_u64(optarg, &v) || v < 1 || v > 60000)
				return bad_usage("--timeline-ms must be 1 to 60000, not", optarg);
			o->timeline_ms = (uint32_t)v;
			break;
		case OPT_CONNECTIONS:
			if (parse_u64(optarg, &v) || v < 1 || v > LOADGEN_CONNECTIONS_MAX)
				return bad_usage("--connections must be 1 to 100000, not", optarg);
			o->connections = (uint32_t)v;
			break;
		case OPT_TOPICS:
			if (parse_u64(optarg, &v) || v < 1 || v > LOADGEN_TOPICS_MAX)
				return bad_usage("--topics must be 1 to 100000, not", optarg);
			o->topics = (uint32_t)v;
			break;
		case OPT_FROM_MS:
		case OPT_TO_MS:
			if (parse_u64(optarg, &v) || v > INT64_MAX)
				return bad_usage("--from-ms and --to-ms must be milliseconds since the epoch, not",
				                 optarg);
			*(c == OPT_FROM_MS ? &o->from_ms : &o->to_ms) = (int64_t)v;
			break;
		case OPT_JSON:
			o->json_path = optarg;
			break;
		case OPT_TLS_CA:
			o->security.tls = true;
			o->security.tls_ca = optarg;
			break;
		case OPT_USER:
			o->security.user = optarg;
			break;
		case OPT_PASSWORD:
			o->security.password = optarg;
			break;
		case OPT_HELP:
			fputs(usage, stdout);
			exit(0);
		default:
			fputs(usage, stderr);
			return 2;
		}
	}
	if (optind != argc - 1)
		return bad_usage("expected one mode (see --help), got", optind < argc ? argv[optind] : "");
	o->mode = argv[optind];
	if (o->broker == NULL)
		return bad_usage("--broker HOST:PORT is required", "");
	if (strcmp(o->mode, "latency") == 0 && o->rate <= 0)
		return bad_usage("latency mode needs --rate", "");
	if (o->batch_bytes < o->record_bytes + o->key_bytes + 256)
		return bad_usage("--batch-bytes must exceed a record by 256 bytes", "");
	if (strcmp(o->mode, "produce-topics") != 0 && o->inflight > SL_PRODUCER_REQUESTS_IN_FLIGHT_MAX)
		return bad_usage("--inflight must be at most 5 with the library's producer, not", "more");
	if (o->timeline_ms && (o->producers != 1 || o->kind != PRODUCER_THREAD))
		return bad_usage("--timeline-ms needs one producer thread", "");
	if (strcmp(o->mode, "list-time") == 0 && o->to_ms < o->from_ms)
		return bad_usage("list-time needs --from-ms <= --to-ms", "");
	return 0;
}

int main(int argc, char **argv)
{
	struct loadgen_options o;
	int rc = parse_options(argc, argv, &o);

	if (rc != 0)
		return rc;
	if (o.create && strcmp(o.mode, "handshake") != 0 && topic_create(&o) != 0)
		return 1;
	if (strcmp(o.mode, "produce") == 0)
		rc = loadgen_produce(&o);
	else if (strcmp(o.mode, "replay") == 0)
		rc = loadgen_replay(&o);
	else if (strcmp(o.mode, "latency") == 0)
		rc = loadgen_latency(&o);
	else if (strcmp(o.mode, "idle") == 0)
		rc = loadgen_idle(&o);
	else if (strcmp(o.mode, "list-time") == 0)
		rc = loadgen_list_time(&o);
	else if (strcmp(o.mode, "create-topics") == 0)
		rc = loadgen_create_topics(&o);
	else if (strcmp(o.mode, "produce-topics") == 0)
		rc = loadgen_produce_topics(&o);
	else if (strcmp(o.mode, "handshake") == 0)
		rc = loadgen_handshake(&o);
	else
		return bad_usage("unknown mode", o.mode);
	return rc == 0 ? 0 : 1;
}
