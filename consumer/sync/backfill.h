/* Backfill: produce a source's rows (source.h) into a topic as origin=backfill records with the rows' own versions,
 * in key order, in chunks, resumable after a crash without producing a chunk twice, at a bounded rate.
 *
 * A run, chunk by chunk (chunk_rows rows each, read ahead while the chunk before is being acknowledged):
 *   1. read the chunk from the source (key order, after the last key read);
 *   2. ask the broker for every partition's log end (the chunk's mark: its records will all lie after it);
 *   3. write the checkpoint: the last key acknowledged with everything before it (done_key), the last key of the
 *      chunks now sent (sent_key), the mark of the oldest chunk not yet acknowledged, and the counts and checksum as
 *      of done_key;
 *   4. send the chunk's rows through an idempotent backfill producer (sl_producer_options.backfill), paced by the
 *      token buckets of rate_records_per_s and rate_bytes_per_s; bad rows are reported, counted and skipped;
 *   5. once a chunk is acknowledged, done_key moves to its last key (written with the next chunk's checkpoint).
 * At most CHUNKS_IN_FLIGHT chunks are unacknowledged at once.
 *
 * Resuming: the checkpoint says that every row up to done_key is in the topic, and rows after it up to sent_key may
 * be. The run first waits a moment for requests the dead run left in flight to land, then reads the topic from the
 * mark to its end and notes every origin=backfill record with done_key < key <= sent_key (key and version); those
 * rows are counted as acknowledged and not produced again, the rest are. So a kill -9 at any point costs neither a
 * row nor a second copy of one (unless another backfill of the same keys and versions runs at the same time: its
 * records count as this run's, which is what the target needs anyway).
 *
 * The checksum: XXH3-64 chained over every (key, version) produced or found, in key order, so two runs over the
 * same snapshot print the same checksum whatever their chunking, interruptions or resumption.
 *
 * Threads: a run belongs to the thread that calls sl_backfill_run; the callbacks run on it. */
#ifndef SL_CONSUMER_SYNC_BACKFILL_H
#define SL_CONSUMER_SYNC_BACKFILL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "consumer/client/synclog.h"
#include "consumer/sync/source.h"

struct sl_backfill_progress {
	uint64_t rows;         /* rows produced or found, this run and the runs it resumed */
	uint64_t acknowledged; /* of those, acknowledged at the requested level */
	uint64_t skipped;      /* bad rows */
	int64_t total;         /* rows the source holds, or -1 */
	double rows_per_s;     /* over this run */
	double eta_s;          /* -1 when unknown */
	uint64_t checksum;
	uint64_t recovered; /* rows found in the topic after a crash and not produced again */
	bool resumed;
	bool finished;
};

typedef void (*sl_backfill_progress_cb)(const struct sl_backfill_progress *p, void *cb_arg);
typedef void (*sl_backfill_bad_row_cb)(const struct sl_source_row *row, void *cb_arg);
typedef bool (*sl_backfill_stop_cb)(void *cb_arg);

struct sl_backfill_options {
	const char *broker;
	const struct sl_security_options *security; /* TLS and credentials; NULL: none */
	const char *topic;
	struct sl_source *source;
	/* What identifies the run in its checkpoint besides the topic and the source's spec: the column names. */
	const struct sl_source_columns *columns;
	const char *checkpoint_path;
	bool restart; /* forget the checkpoint and start over */
	uint32_t chunk_rows;
	uint64_t rate_records_per_s; /* 0: unlimited */
	uint64_t rate_bytes_per_s;   /* key and value bytes; 0: unlimited */
	enum sl_acks acks;
	/* Connecting and each answer of the broker (0: the client library's default). */
	uint32_t io_timeout_ms;
	/* Called after every chunk, at most every progress_interval_ms while sending, and at the end. */
	sl_backfill_progress_cb progress_cb;
	uint32_t progress_interval_ms;
	sl_backfill_bad_row_cb bad_row_cb;
	/* Asked between rows: true stops the run cleanly (what was sent is acknowledged and checkpointed). */
	sl_backfill_stop_cb stop_cb;
	void *cb_arg;
	/* librdkafka settings when broker is a Kafka cluster (may be NULL). */
	const struct sl_kafka_config *kafka_config;
};

/* Defaults: chunk_rows 10,000 (a chunk is ~1-2 MB of 100-byte rows: the checkpoint is written every few
 * milliseconds at full speed, and a crash re-reads at most two chunks of the topic), no rate limit, acks fsync,
 * progress every 200 ms. */
void sl_backfill_options_init(struct sl_backfill_options *o);

/* Run (or resume) the backfill to the source's end. Returns 0 when every row is acknowledged (bad rows skipped and
 * reported), -EINTR when stop_cb stopped it (the checkpoint holds the progress), -EALREADY when the checkpoint says
 * this backfill finished (use restart to run it again), or another negative errno with err set. *out holds the
 * final counts in every case. */
int sl_backfill_run(const struct sl_backfill_options *o, struct sl_backfill_progress *out, char *err, size_t err_bytes);

/* Chunks sent and not yet acknowledged at most: one being acknowledged while the next is read and sent. */
#define SL_BACKFILL_CHUNKS_IN_FLIGHT 2

#endif
