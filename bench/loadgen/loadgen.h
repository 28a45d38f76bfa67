/* synclog-bench's shared pieces: the options every mode reads, one producer's result, and the modes themselves
 * (produce.c, replay.c, latency.c), each built only on the public client library (consumer/synclog.h), as a
 * user's program would be. */
#ifndef SL_BENCH_LOADGEN_H
#define SL_BENCH_LOADGEN_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "bench/common/hist.h"
#include "bench/common/load.h"
#include "consumer/client/synclog.h"

/* A run uses at most this many producers: a 2-core machine is saturated long before, and each producer holds
 * its own connection and buffer (32 MiB by default). */
#define LOADGEN_PRODUCERS_MAX   64
/* Record values carry their intended send time and sequence in their first 16 bytes (latency mode). */
#define LOADGEN_STAMP_BYTES     16
/* produce --timeline-ms keeps at most this many samples: 10 minutes at 10 ms. */
#define LOADGEN_TIMELINE_MAX    60000
/* idle and produce-topics: a machine's descriptors run out long before (the broker's own default is 1,024). */
#define LOADGEN_CONNECTIONS_MAX 100000
#define LOADGEN_TOPICS_MAX      100000

enum producer_kind { PRODUCER_THREAD = 0, PRODUCER_PROCESS = 1 };

struct loadgen_options {
	const char *mode;
	const char *broker;
	const char *topic;
	const char *label;
	const char *json_path; /* NULL: stdout */
	bool create;           /* create the topic first (an existing one is used as it is) */
	uint32_t partitions;
	uint32_t record_bytes; /* value bytes of each record */
	uint32_t key_bytes;    /* 0: keyless records, spread by the sticky partitioner */
	/* Produce: record i has key i % key_space (0: key i), and with versioned the version i / key_space + 1, so
	 * a topic holds key_space keys of count / key_space versions each (the compaction benchmark). */
	uint64_t key_space;
	bool versioned;
	uint64_t count;    /* records in all (produce: split over the producers; replay: expected) */
	double duration_s; /* latency mode: how long to offer load; produce and idle: see duration_set */
	bool duration_set; /* --duration-s given: produce stops sending after it, idle holds that long */
	double warmup_s;   /* latency mode: samples of this first part are not counted */
	double rate;       /* latency mode: records per second offered */
	/* Latency mode: print every measured record slower than this, end to end or to its acknowledgement, to stderr
	 * with its time since the start (where a tail comes from: both slow, the broker's write path; only e2e, the
	 * fetch side). 0: none. */
	uint64_t slow_us;
	/* Latency mode: the sender wakes at most once per tick and sends every record that is due, each stamped with
	 * its own intended time. Waking for each record would cost a system call every 2 us at 500,000 records/s on
	 * the core the consumer thread shares; a record sent up to a tick late is charged the delay. Every load
	 * generator of the benchmark takes the same tick. */
	uint32_t tick_us;
	uint32_t producers;
	enum producer_kind kind;
	enum sl_acks acks;
	bool one_at_a_time; /* produce: send one record, wait for its acknowledgement, then the next */
	int codec;
	uint32_t linger_ms;
	uint32_t batch_bytes;
	uint32_t inflight; /* requests in flight per producer */
	uint64_t buffer_bytes;
	uint32_t fetch_bytes; /* replay and latency: bytes asked per partition per Fetch */
	/* produce: sample the acknowledged count at most once per timeline_ms (0: no timeline); one producer thread */
	uint32_t timeline_ms;
	uint32_t connections;   /* idle: connections to open and hold */
	uint32_t topics;        /* create-topics, produce-topics: topics named TOPIC-0 .. TOPIC-(N-1) */
	int64_t from_ms, to_ms; /* list-time: the timestamps asked for are spread over [from_ms, to_ms] */
	/* TLS and SCRAM for every connection (--tls-ca, --user, --password): the security benchmark's. */
	struct sl_security_options security;
};

/* What one producer did. Plain data, so a producer process can hand it to its parent through a pipe. */
struct producer_result {
	uint64_t acked;
	uint64_t failed;
	int64_t start_ns;
	int64_t end_ns;
	struct hist ack_latency; /* from the send call (or intended send time) to the delivery callback */
	char error[SL_ERROR_BYTES];
};

const char *acks_name(enum sl_acks acks);
/* A producer with the options' settings and the given delivery callback. Returns 0 or a negative errno, with a
 * message in err. */
int loadgen_producer_new(const struct loadgen_options *o, struct sl_producer **out, sl_producer_delivery_cb cb,
                         void *cb_arg, char *err, size_t err_bytes);
/* Stored bytes and records of the topic, from the broker (for bytes per record on disk). */
int loadgen_topic_usage(const struct loadgen_options *o, uint64_t *bytes_out, uint64_t *records_out, char *err,
                        size_t err_bytes);
/* Open the output (stdout or --json FILE). */
FILE *loadgen_out_open(const struct loadgen_options *o);
void loadgen_out_close(const struct loadgen_options *o, FILE *out);
/* Open a result object with the members every mode prints: tool, mode, label, options. */
void loadgen_print_header(FILE *out, const struct loadgen_options *o);
/* Close a result object with its last member, "error": the message, or null when error is NULL. */
void loadgen_print_error_end(FILE *out, const char *error);

int loadgen_produce(const struct loadgen_options *o);
/* Open --count connections one after another (TCP, TLS with --tls-ca, Hello, SCRAM with --user), each closed
 * before the next, and report connections per second. */
int loadgen_handshake(const struct loadgen_options *o);
int loadgen_replay(const struct loadgen_options *o);
int loadgen_latency(const struct loadgen_options *o);
int loadgen_idle(const struct loadgen_options *o);
int loadgen_list_time(const struct loadgen_options *o);
int loadgen_create_topics(const struct loadgen_options *o);
int loadgen_produce_topics(const struct loadgen_options *o);

#endif
