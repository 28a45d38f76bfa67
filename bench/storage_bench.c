/* storage-bench: measures the partition log (broker/log.h) where a broker spends its disk time, appending batches
 * at durability written and fsync and reopening after kill -9, so that bench/storage.sh can put its figures beside
 * fio's on the same filesystem. One process per measurement; storage.sh runs the interleaved rounds and
 * `storage-bench report` folds the per-run files into bench/results/storage.json (see bench/README.md).
 *
 * Commands:
 *   batch-size  print the exact byte size of the batch `append` writes: fio's block size must equal it
 *   warm-memory touch --bytes of huge pages and free them, right before a run of either tool (see below)
 *   append      append --bytes of copies of one pre-built batch through one ring with --inflight appends queued;
 *               time the run and every append from sl_log_append to its callback
 *   reopen      in a child, build --reopen-sealed-bytes of sealed segments and an unflushed tail of
 *               --reopen-tail-bytes, then SIGKILL it; time sl_log_open after the crash, then after a clean close
 *   report      read the per-run JSON files of a runs directory (ours and fio's), write medians with min-max and
 *               the ratios to --json, print a table
 *   retain      on an existing log (--dir, e.g. a stopped broker's DATA/topics/T/0): time sl_log_open, a retention
 *               pass that drops nothing, and one that drops the --rounds oldest segments (sl_log_retain_detach, on
 *               the broker's loop, apart from sl_log_garbage_remove, on its thread pool): the log-size curve of
 *               bench/curve_logsize.sh. It deletes those segments.
 *
 * Each timed sl_log_open runs in a fresh child process, like a restarted broker: the crash state must survive one
 * measurement to be measured again, and only a process that exits without sl_log_close leaves it. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "proto/base/clock.h"
#include "proto/base/assert.h"
#include "broker/storage/log.h"
#include "broker/storage/ring.h"
#include "proto/batch.h"

/* The append window, and fio's iodepth with it: 1 MiB (64 KiB batches) to 16 MiB (1 MiB batches) queued, enough to
 * keep a virtio queue busy, few enough that the ack latency of one append stays readable. */
#define INFLIGHT_DEFAULT     16
/* An append needs at most one SQE of its own, so a window no deeper than the ring never waits on the ring. */
#define INFLIGHT_MAX         SL_RING_ENTRIES
/* The sealed part of the reopen log is cut into this many segments: at 10 GiB that is Kafka's default 1 GiB
 * segment, and enough files that a recovery visiting every segment would show in the timing. */
#define SEALED_SEGMENT_COUNT 10
/* Bounds of the per-round arrays; storage.sh runs 3 to 5 rounds. */
#define ROUNDS_MAX           32
#define REPORT_CASES_MAX     16
/* A child left waiting for its SIGKILL gives up after this, should the parent die without sending it. */
#define CHILD_WAIT_S_MAX     600
/* Targets of the issue: fraction of fio's throughput per durability level, and the crash reopen time. */
#define TARGET_RATIO_WRITTEN 0.85
#define TARGET_RATIO_FSYNC   0.80
#define TARGET_REOPEN_MS     1000.0

struct options {
	const char *command;
	const char *dir;
	const char *json_path;
	const char *runs_dir;
	uint64_t bytes;
	uint64_t batch_bytes_max;
	uint32_t record_bytes;
	enum sl_durability level;
	uint32_t inflight;
	uint64_t reopen_sealed_bytes;
	uint64_t reopen_tail_bytes;
	uint32_t rounds;
};

/* ---- small helpers ---------------------------------------------------------------------------------------- */

static const char *level_name(enum sl_durability level)
{
	switch (level) {
	case SL_DURABILITY_NONE:
		return "none";
	case SL_DURABILITY_WRITTEN:
		return "written";
	case SL_DURABILITY_FSYNC:
		return "fsync";
	}
	return "?";
}

static int level_parse(const char *s, enum sl_durability *out)
{
	if (strcmp(s, "none") == 0)
		*out = SL_DURABILITY_NONE;
	else if (strcmp(s, "written") == 0)
		*out = SL_DURABILITY_WRITTEN;
	else if (strcmp(s, "fsync") == 0)
		*out = SL_DURABILITY_FSYNC;
	else
		return -EINVAL;
	return 0;
}

/* "2g", "64k", "100MiB", "1048576": binary multiples, as the sizes of the issue are. */
static int bytes_parse(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;
	unsigned shift = 0;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s)
		return -EINVAL;
	switch (*end) {
	case 'k':
	case 'K':
		shift = 10;
		break;
	case 'm':
	case 'M':
		shift = 20;
		break;
	case 'g':
	case 'G':
		shift = 30;
		break;
	case 't':
	case 'T':
		shift = 40;
		break;
	case '\0':
		break;
	default:
		return -EINVAL;
	}
	if (shift) {
		end++;
		if (strcmp(end, "iB") == 0 || strcmp(end, "B") == 0)
			end += strlen(end);
	}
	if (*end != '\0' || (shift && v > (UINT64_MAX >> shift)))
		return -EINVAL;
	*out = (uint64_t)v << shift;
	return 0;
}

/* The machine's 1-minute load when a run starts: another tenant's compile on a 2-CPU box shows up here. */
static double loadavg_1m(void)
{
	double load = NAN;
	FILE *f = fopen("/proc/loadavg", "r");

	if (f) {
		if (fscanf(f, "%lf", &load) != 1)
			load = NAN;
		fclose(f);
	}
	return load;
}

static const char *fs_name(const char *dir)
{
	struct statfs sf;

	if (statfs(dir, &sf) < 0)
		return "unknown";
	switch ((unsigned long)sf.f_type) {
	case 0xEF53:
		return "ext4";
	case 0x58465342:
		return "xfs";
	case 0x9123683E:
		return "btrfs";
	case 0x01021994:
		return "tmpfs";
	case 0x794c7630:
		return "overlayfs";
	default:
		return "other";
	}
}

/* The benchmarks create their log from nothing; they never write into a directory that holds something, so a
 * wrong --dir cannot damage data. */
static int dir_check_fresh(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int entries = 0;

	if (!d)
		return errno == ENOENT ? 0 : -errno;
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
			entries++;
	}
	closedir(d);
	if (entries) {
		fprintf(stderr, "storage-bench: %s is not empty: give --dir a new or empty directory\n", dir);
		return -EEXIST;
	}
	return 0;
}

static json_t *jreal_or_null(double v)
{
	return isnan(v) ? json_null() : json_real(v);
}

/* Counts read back through jnum are doubles; write them as the integers they are. */
static json_t *jint_or_null(double v)
{
	return isnan(v) ? json_null() : json_integer((json_int_t)llround(v));
}

static int write_full(int fd, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	while (len) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int read_full(int fd, void *buf, size_t len)
{
	uint8_t *p = buf;

	while (len) {
		ssize_t n = read(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EPIPE; /* the child died before it reported */
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* Nearest-rank percentile of sorted values. */
static int64_t percentile_i64(const int64_t *sorted, uint64_t count, double p)
{
	uint64_t rank;

	SL_ASSERT(count > 0);
	rank = (uint64_t)ceil(p * (double)count);
	if (rank < 1)
		rank = 1;
	if (rank > count)
		rank = count;
	return sorted[rank - 1];
}

/* ---- the batch every append copies ------------------------------------------------------------------------- */

struct batch_template {
	uint8_t *bytes;
	size_t len;
	uint32_t record_count;
};

/* One uncompressed batch of record_bytes values, as many as fit in batch_bytes_max. Built once: the hot loop only
 * hands copies of it to the log, so what is measured is the log, not the batch writer. */
static int batch_template_build(struct batch_template *t, uint64_t batch_bytes_max, uint32_t record_bytes)
{
	struct sl_batch_builder b;
	struct sl_batch_header h;
	const uint8_t *p;
	const char *why = NULL;
	uint8_t *value;
	uint64_t x = 0x9E3779B97F4A7C15ull;
	char key[24];
	size_t len;
	uint32_t i;
	int rc;

	memset(t, 0, sizeof(*t));
	rc = sl_batch_builder_init(&b, batch_bytes_max);
	if (rc < 0) {
		fprintf(stderr,
		        "storage-bench: cannot set up a batch builder of %" PRIu64 " bytes: %s (give --batch-bytes "
		        "between %d and %u)\n",
		        batch_bytes_max, strerror(-rc), SL_BATCH_HEADER_BYTES + 64, SL_BATCH_BYTES_MAX);
		return rc;
	}
	value = malloc(record_bytes ? record_bytes : 1);
	if (!value) {
		sl_batch_builder_free(&b);
		return -ENOMEM;
	}
	/* Random bytes: nothing between the log and the disk can compress or deduplicate them. */
	for (i = 0; i < record_bytes; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		value[i] = (uint8_t)x;
	}
	/* Every record takes at least one byte, so the builder says -ENOSPC before the bound. */
	for (i = 0; i < batch_bytes_max; i++) {
		struct sl_record r = {
		        .timestamp_ms = sl_clock_wall_ms(),
		        .key = (const uint8_t *)key,
		        .key_len = snprintf(key, sizeof(key), "key-%012" PRIu32, i),
		        .value = value,
		        .value_len = (int32_t)record_bytes,
		        .version = SL_VERSION_NONE,
		        .op = SL_OP_UPSERT,
		        .origin = SL_ORIGIN_LIVE,
		};
		rc = sl_batch_builder_add(&b, &r);
		if (rc == -ENOSPC)
			break;
		if (rc < 0) {
			fprintf(stderr, "storage-bench: cannot add a %" PRIu32 "-byte record to a batch: %s\n",
			        record_bytes, strerror(-rc));
			goto out;
		}
	}
	if (i == 0) {
		fprintf(stderr,
		        "storage-bench: a %" PRIu32 "-byte record does not fit a batch of %" PRIu64
		        " bytes: raise --batch-bytes or lower --record-bytes\n",
		        record_bytes, batch_bytes_max);
		rc = -EINVAL;
		goto out;
	}
	rc = sl_batch_builder_finish(&b, SL_BATCH_CODEC_NONE, &p, &len);
	if (rc < 0) {
		fprintf(stderr, "storage-bench: cannot finish the batch: %s\n", strerror(-rc));
		goto out;
	}
	/* The log takes only validated batches; check the builder's output as a reader would. */
	rc = sl_batch_validate(p, len, &h, NULL, 0, &why);
	if (rc < 0) {
		fprintf(stderr, "storage-bench: the built batch does not validate: %s\n", why ? why : strerror(-rc));
		goto out;
	}
	SL_ASSERT(h.record_count == (int32_t)i);
	t->bytes = malloc(len);
	if (!t->bytes) {
		rc = -ENOMEM;
		goto out;
	}
	memcpy(t->bytes, p, len);
	t->len = len;
	t->record_count = i;
out:
	free(value);
	sl_batch_builder_free(&b);
	return rc;
}

/* ---- the appender: a bounded window of appends through one log -------------------------------------------- */

struct appender;

/* One append in the window, with its own copy of the batch (the log writes the base offset into it). */
struct slot {
	struct sl_append append;
	uint8_t *batch;
	uint64_t batch_index;
	int64_t start_ns;
	struct appender *app;
};

struct appender {
	struct sl_log *log;
	struct sl_ring *ring;
	const struct batch_template *tmpl;
	enum sl_durability level;
	struct slot *slots;
	struct slot **free_slots; /* a stack of the slots not in the log */
	uint32_t slot_count;
	uint32_t free_count;
	uint64_t queued_count; /* appends the log took */
	uint64_t acked_count;  /* callbacks run */
	uint64_t eagain_count; /* times the log pushed back */
	uint64_t pass_count;   /* submit-and-wait passes */
	int64_t *latency_ns;   /* by batch index, latency_cap entries; NULL when not recorded */
	uint64_t latency_cap;
	int status; /* the first error an append or its callback met */
};

static void append_done_cb(struct sl_append *a, int status)
{
	struct slot *s = a->data;
	struct appender *app = s->app;

	if (app->latency_ns && s->batch_index < app->latency_cap)
		app->latency_ns[s->batch_index] = sl_clock_mono_ns() - s->start_ns;
	if (status < 0 && app->status == 0)
		app->status = status;
	SL_ASSERT(app->free_count < app->slot_count);
	app->free_slots[app->free_count++] = s;
	app->acked_count++;
}

static int appender_init(struct appender *app, struct sl_log *log, struct sl_ring *ring,
                         const struct batch_template *tmpl, enum sl_durability level, uint32_t slot_count,
                         uint64_t latency_cap)
{
	uint32_t i;

	memset(app, 0, sizeof(*app));
	app->log = log;
	app->ring = ring;
	app->tmpl = tmpl;
	app->level = level;
	app->slot_count = slot_count;
	app->slots = calloc(slot_count, sizeof(*app->slots));
	app->free_slots = calloc(slot_count, sizeof(*app->free_slots));
	if (latency_cap) {
		app->latency_ns = calloc(latency_cap, sizeof(*app->latency_ns));
		app->latency_cap = latency_cap;
	}
	if (!app->slots || !app->free_slots || (latency_cap && !app->latency_ns))
		return -ENOMEM;
	for (i = 0; i < slot_count; i++) {
		struct slot *s = &app->slots[i];
		s->batch = malloc(tmpl->len);
		if (!s->batch)
			return -ENOMEM;
		memcpy(s->batch, tmpl->bytes, tmpl->len);
		s->app = app;
		app->free_slots[app->free_count++] = s;
	}
	return 0;
}

static void appender_free(struct appender *app)
{
	uint32_t i;

	for (i = 0; app->slots && i < app->slot_count; i++)
		free(app->slots[i].batch);
	free(app->slots);
	free(app->free_slots);
	free(app->latency_ns);
}

/* Hand the log appends until queued_target is reached, the window is out of slots or the log pushes back. */
static void appender_fill(struct appender *app, uint64_t queued_target)
{
	while (app->queued_count < queued_target && app->free_count > 0 && app->status == 0) {
		struct slot *s = app->free_slots[app->free_count - 1];
		int rc;

		s->batch_index = app->queued_count;
		s->append = (struct sl_append){
		        .batch = s->batch,
		        .len = app->tmpl->len,
		        .level = app->level,
		        .cb = append_done_cb,
		        .data = s,
		};
		s->start_ns = sl_clock_mono_ns();
		rc = sl_log_append(app->log, &s->append);
		if (rc == -EAGAIN) {
			app->eagain_count++;
			return;
		}
		if (rc < 0) {
			fprintf(stderr, "storage-bench: sl_log_append of batch %" PRIu64 " failed: %s\n",
			        app->queued_count, strerror(-rc));
			app->status = rc;
			return;
		}
		app->free_count--;
		app->queued_count++;
	}
}

/* One pass: send what the pass prepared with one submit, then block until completions arrive and run them. */
static int appender_pass(struct appender *app)
{
	int rc = sl_ring_submit(app->ring);

	app->pass_count++;
	if (rc < 0) {
		fprintf(stderr, "storage-bench: sl_ring_submit failed: %s\n", strerror(-rc));
		return rc;
	}
	if (app->acked_count == app->queued_count)
		return 0;
	do {
		rc = sl_ring_wait(app->ring);
	} while (rc == -EINTR);
	if (rc < 0) {
		fprintf(stderr, "storage-bench: sl_ring_wait failed: %s\n", strerror(-rc));
		return rc;
	}
	if (rc == 0 && app->acked_count < app->queued_count) {
		/* Nothing in flight, yet appends wait for their callback: the log lost track of them. */
		fprintf(stderr,
		        "storage-bench: the log stalled: %" PRIu64 " appends unacknowledged, nothing in flight\n",
		        app->queued_count - app->acked_count);
		return -EPROTO;
	}
	return 0;
}

/* Append until queued_target appends are acknowledged. */
static int appender_run(struct appender *app, uint64_t queued_target)
{
	/* Each pass queues an append or reaps a completion, and an append costs a few completions at most (its
	 * write, a share of an fdatasync, a requeued short write): a generous bound that still catches a livelock. */
	uint64_t pass_max = app->pass_count + 64 * (queued_target - app->acked_count) + 1024;
	int rc;

	while (app->acked_count < queued_target) {
		appender_fill(app, queued_target);
		if (app->status)
			return app->status;
		rc = appender_pass(app);
		if (rc < 0)
			return rc;
		if (app->status) {
			fprintf(stderr, "storage-bench: an append failed: %s\n", strerror(-app->status));
			return app->status;
		}
		if (app->pass_count > pass_max) {
			fprintf(stderr, "storage-bench: no progress after %" PRIu64 " passes\n", app->pass_count);
			return -EPROTO;
		}
	}
	return 0;
}

/* Batch buffers the appender keeps: the write window, plus as many again waiting for the group commit. fio's
 * iodepth counts only writes in flight (a written buffer is free again at once, and the fdatasync waits
 * beside them); the log's window likewise counts only unwritten appends, and the second half holds the
 * batches that are written and wait for their fdatasync, which a real broker's many producers supply. */
static uint32_t slots_for(uint32_t inflight, enum sl_durability level)
{
	return level == SL_DURABILITY_FSYNC ? 2 * inflight : inflight;
}

static void log_config_for(struct sl_log_config *cfg, const struct batch_template *tmpl, uint32_t inflight)
{
	sl_log_config_default(cfg);
	/* The log's window of writes in flight is exactly the benchmark's, the one fio gets as its iodepth. */
	cfg->inflight_appends_max = inflight;
	cfg->inflight_bytes_max = (uint64_t)slots_for(inflight, SL_DURABILITY_FSYNC) * tmpl->len;
}

static int log_open_verbose(struct sl_ring *ring, const char *dir, const struct sl_log_config *cfg, struct sl_log **out)
{
	char err[512] = "";
	int rc = sl_log_open(ring, dir, cfg, out, err, sizeof(err));

	if (rc < 0)
		fprintf(stderr, "storage-bench: sl_log_open %s failed: %s: %s\n", dir, strerror(-rc), err);
	return rc;
}

static int json_write(json_t *root, const char *path)
{
	if (!path)
		return 0;
	if (json_dump_file(root, path, JSON_INDENT(2) | JSON_REAL_PRECISION(15)) < 0) {
		fprintf(stderr, "storage-bench: cannot write %s\n", path);
		return -EIO;
	}
	return 0;
}

/* ---- batch-size ----------------------------------------------------------------------------------------------- */

static int cmd_batch_size(const struct options *o)
{
	struct batch_template tmpl;
	int rc = batch_template_build(&tmpl, o->batch_bytes_max, o->record_bytes);

	if (rc < 0)
		return rc;
	printf("%zu %" PRIu32 "\n", tmpl.len, tmpl.record_count);
	free(tmpl.bytes);
	return 0;
}

/* ---- warm-memory ------------------------------------------------------------------------------------------ */

/* On a VM whose balloon reports free memory to the host (free page reporting, as Firecracker's does), a free 2 MiB
 * block goes back to the host about two seconds after it was freed, and the first write to it afterwards faults on
 * the host. Page-cache folios of 2 MiB are taken from exactly those blocks when a buffered write spans 2 MiB or
 * more, so a tool that writes larger pieces pays a host fault per page: 4x slower copies, a measurement of the VM
 * rather than of the log. Touching huge pages and freeing them just before a run leaves warm 2 MiB blocks on the
 * free lists for the run's page cache; storage.sh does it before every run of both tools. */
static int cmd_warm_memory(const struct options *o)
{
	const size_t huge_bytes = 2u << 20, page_bytes = 4096;
	size_t len = (size_t)o->bytes + huge_bytes, i;
	uint8_t *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uint8_t *aligned;

	if (p == MAP_FAILED) {
		int rc = -errno;

		fprintf(stderr, "storage-bench: cannot map %zu bytes to warm: %s\n", len, strerror(-rc));
		return rc;
	}
	aligned = (uint8_t *)(((uintptr_t)p + huge_bytes - 1) & ~(uintptr_t)(huge_bytes - 1));
	/* Without transparent huge pages the touch still warms 4 KiB pages; nothing to fail for. */
	(void)madvise(aligned, (size_t)o->bytes, MADV_HUGEPAGE);
	for (i = 0; i < o->bytes; i += page_bytes)
		aligned[i] = 1;
	munmap(p, len);
	return 0;
}

/* ---- append ----------------------------------------------------------------------------------------------------- */

static double tv_s(struct timeval tv)
{
	return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

static int cmd_append(const struct options *o)
{
	struct batch_template tmpl;
	struct sl_ring ring;
	struct sl_log_config cfg;
	struct sl_log *log = NULL;
	struct sl_log_stats st;
	struct appender app;
	struct rusage ru0, ru1;
	uint64_t batch_count, fdatasync_every_n = 0, i;
	int64_t t0, t1, c0, c1, *sorted;
	double elapsed_s, mb_per_s, records_per_s, batches_per_fsync = 0, latency_sum_ns = 0;
	json_t *root, *lat;
	double load = loadavg_1m();
	int rc;

	rc = batch_template_build(&tmpl, o->batch_bytes_max, o->record_bytes);
	if (rc < 0)
		return rc;
	batch_count = (o->bytes + tmpl.len - 1) / tmpl.len;
	rc = dir_check_fresh(o->dir);
	if (rc < 0)
		return rc;
	rc = sl_ring_init(&ring, 0);
	if (rc < 0) {
		fprintf(stderr, "storage-bench: sl_ring_init failed: %s\n", strerror(-rc));
		return rc;
	}
	log_config_for(&cfg, &tmpl, o->inflight);
	rc = log_open_verbose(&ring, o->dir, &cfg, &log);
	if (rc < 0)
		return rc;
	rc = appender_init(&app, log, &ring, &tmpl, o->level, slots_for(o->inflight, o->level), batch_count);
	if (rc < 0)
		return rc;

	getrusage(RUSAGE_SELF, &ru0);
	t0 = sl_clock_mono_ns();
	rc = appender_run(&app, batch_count);
	t1 = sl_clock_mono_ns();
	getrusage(RUSAGE_SELF, &ru1);
	if (rc < 0)
		return rc;
	/* Before close: close runs one more fdatasync, which is not part of the timed run. */
	sl_log_get_stats(log, &st);
	c0 = sl_clock_mono_ns();
	rc = sl_log_close(log);
	c1 = sl_clock_mono_ns();
	if (rc < 0) {
		fprintf(stderr, "storage-bench: sl_log_close failed: %s\n", strerror(-rc));
		return rc;
	}
	sl_ring_close(&ring);

	sorted = app.latency_ns;
	qsort(sorted, batch_count, sizeof(*sorted), cmp_i64);
	elapsed_s = (double)(t1 - t0) / 1e9;
	mb_per_s = (double)(batch_count * tmpl.len) / elapsed_s / 1e6;
	records_per_s = (double)(batch_count * tmpl.record_count) / elapsed_s;
	if (st.fsync_count) {
		batches_per_fsync = (double)st.appended_batch_count / (double)st.fsync_count;
		fdatasync_every_n = (uint64_t)llround(batches_per_fsync);
		if (fdatasync_every_n < 1)
			fdatasync_every_n = 1;
	}

	for (i = 0; i < batch_count; i++)
		latency_sum_ns += (double)sorted[i];
	lat = json_pack("{s:f, s:f, s:f, s:f, s:f, s:f}", "p50", percentile_i64(sorted, batch_count, 0.50) / 1e3, "p90",
	                percentile_i64(sorted, batch_count, 0.90) / 1e3, "p99",
	                percentile_i64(sorted, batch_count, 0.99) / 1e3, "p999",
	                percentile_i64(sorted, batch_count, 0.999) / 1e3, "max", sorted[batch_count - 1] / 1e3, "mean",
	                latency_sum_ns / (double)batch_count / 1e3);
	root = json_object();
	json_object_set_new(root, "command", json_string("append"));
	json_object_set_new(root, "level", json_string(level_name(o->level)));
	json_object_set_new(root, "batch_bytes_max", json_integer((json_int_t)o->batch_bytes_max));
	json_object_set_new(root, "batch_bytes", json_integer((json_int_t)tmpl.len));
	json_object_set_new(root, "record_bytes", json_integer(o->record_bytes));
	json_object_set_new(root, "records_per_batch", json_integer(tmpl.record_count));
	json_object_set_new(root, "inflight", json_integer(o->inflight));
	json_object_set_new(root, "batch_count", json_integer((json_int_t)batch_count));
	json_object_set_new(root, "bytes", json_integer((json_int_t)(batch_count * tmpl.len)));
	json_object_set_new(root, "record_count", json_integer((json_int_t)(batch_count * tmpl.record_count)));
	json_object_set_new(root, "elapsed_s", json_real(elapsed_s));
	json_object_set_new(root, "mb_per_s", json_real(mb_per_s));
	json_object_set_new(root, "records_per_s", json_real(records_per_s));
	json_object_set_new(root, "latency_us", lat);
	json_object_set_new(root, "fsync_count", json_integer((json_int_t)st.fsync_count));
	json_object_set_new(root, "appended_batch_count", json_integer((json_int_t)st.appended_batch_count));
	json_object_set_new(root, "write_op_count", json_integer((json_int_t)st.write_op_count));
	json_object_set_new(root, "batches_per_fsync", json_real(batches_per_fsync));
	json_object_set_new(root, "fdatasync_every_n", json_integer((json_int_t)fdatasync_every_n));
	json_object_set_new(root, "segment_count", json_integer(st.segment_count));
	json_object_set_new(root, "eagain_count", json_integer((json_int_t)app.eagain_count));
	json_object_set_new(root, "pass_count", json_integer((json_int_t)app.pass_count));
	json_object_set_new(root, "cpu_user_s", json_real(tv_s(ru1.ru_utime) - tv_s(ru0.ru_utime)));
	json_object_set_new(root, "cpu_sys_s", json_real(tv_s(ru1.ru_stime) - tv_s(ru0.ru_stime)));
	json_object_set_new(root, "close_ms", json_real((double)(c1 - c0) / 1e6));
	json_object_set_new(root, "filesystem", json_string(fs_name(o->dir)));
	json_object_set_new(root, "loadavg_1m", jreal_or_null(load));
	rc = json_write(root, o->json_path);
	json_decref(root);

	printf("synclog  %-7s batch %7zu B x %6" PRIu64 ": %8.1f MB/s %10.0f rec/s  ack p50 %8.1f us p99 %8.1f us  "
	       "%.1f batches/fsync, %" PRIu64 " write ops\n",
	       level_name(o->level), tmpl.len, batch_count, mb_per_s, records_per_s,
	       percentile_i64(sorted, batch_count, 0.50) / 1e3, percentile_i64(sorted, batch_count, 0.99) / 1e3,
	       batches_per_fsync, st.write_op_count);
	appender_free(&app);
	free(tmpl.bytes);
	return rc;
}

/* ---- reopen ----------------------------------------------------------------------------------------------------- */

/* What the building child reports before it is killed. */
struct build_result {
	int status;
	int64_t next_offset; /* one past the last acknowledged record */
	uint64_t log_bytes;
	uint32_t segment_count;
	uint64_t sealed_bytes; /* in the sealed segments, flushed by a syncfs */
	uint64_t tail_bytes;   /* appended after the syncfs: in the page cache only */
	double build_s;
	double syncfs_s;
};

/* What a timing child reports. */
struct open_result {
	int status;
	double open_ms;
	double close_ms; /* when it closed the log cleanly */
	struct sl_log_stats stats;
};

/* The sealed part: append until the log rolls into segment SEALED_SEGMENT_COUNT + 1, drain, flush it all with
 * syncfs (on a running broker the old segments are long on disk). The tail: append tail_bytes more, never flushed.
 * Then report and leave the log open: the process is killed with the tail in the page cache only. */
static int build_log(const struct options *o, const struct sl_log_config *cfg, const struct batch_template *tmpl,
                     struct build_result *res)
{
	struct sl_ring ring;
	struct sl_log *log;
	struct sl_log_stats st;
	struct appender app;
	uint64_t sealed_max, tail_count;
	int64_t t0, s0, s1;
	int dir_fd, rc;

	rc = sl_ring_init(&ring, 0);
	if (rc < 0)
		return rc;
	rc = log_open_verbose(&ring, o->dir, cfg, &log);
	if (rc < 0)
		return rc;
	rc = appender_init(&app, log, &ring, tmpl, SL_DURABILITY_WRITTEN, o->inflight, 0);
	if (rc < 0)
		return rc;
	t0 = sl_clock_mono_ns();
	/* A segment holds at least one batch, so the roll must come before twice the sealed size. */
	sealed_max = 2 * (o->reopen_sealed_bytes / tmpl->len) + 2 * (uint64_t)SEALED_SEGMENT_COUNT;
	sl_log_get_stats(log, &st);
	while (st.segment_count <= SEALED_SEGMENT_COUNT) {
		uint64_t queued_before = app.queued_count;

		if (app.queued_count >= sealed_max) {
			fprintf(stderr,
			        "storage-bench: the log did not roll into segment %d after %" PRIu64 " batches\n",
			        SEALED_SEGMENT_COUNT + 1, app.queued_count);
			return -EPROTO;
		}
		/* One append at a time: the batch that rolls the log is the last one before the flush. */
		appender_fill(&app, app.queued_count + 1);
		if (app.status)
			return app.status;
		if (app.queued_count == queued_before) {
			rc = appender_pass(&app);
			if (rc < 0 || app.status)
				return rc < 0 ? rc : app.status;
		}
		sl_log_get_stats(log, &st);
	}
	rc = appender_run(&app, app.queued_count);
	if (rc < 0)
		return rc;
	/* Only the batch that rolled the log is past the sealed segments. */
	res->sealed_bytes = (app.acked_count - 1) * tmpl->len;
	dir_fd = open(o->dir, O_RDONLY | O_DIRECTORY);
	if (dir_fd < 0)
		return -errno;
	s0 = sl_clock_mono_ns();
	if (syncfs(dir_fd) < 0)
		return -errno;
	s1 = sl_clock_mono_ns();
	close(dir_fd);
	tail_count = (o->reopen_tail_bytes + tmpl->len - 1) / tmpl->len;
	rc = appender_run(&app, app.queued_count + tail_count);
	if (rc < 0)
		return rc;
	sl_log_get_stats(log, &st);
	res->tail_bytes = tail_count * tmpl->len;
	res->next_offset = st.next_offset;
	res->log_bytes = st.bytes;
	res->segment_count = st.segment_count;
	res->build_s = (double)(sl_clock_mono_ns() - t0 - (s1 - s0)) / 1e9;
	res->syncfs_s = (double)(s1 - s0) / 1e9;
	return 0;
}

static pid_t fork_child(int *read_fd)
{
	int fds[2];
	pid_t pid;

	if (pipe(fds) < 0)
		return -errno;
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid < 0) {
		close(fds[0]);
		close(fds[1]);
		return -errno;
	}
	if (pid == 0) {
		close(fds[0]);
		/* Die with the parent: a child left behind would hold the log and its disk space. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		*read_fd = fds[1];
		return 0;
	}
	close(fds[1]);
	*read_fd = fds[0];
	return pid;
}

/* Open the log in a fresh process and time sl_log_open; with close_log, close it cleanly afterwards (timed too),
 * otherwise exit without closing, which leaves the log as a crash would. */
static int open_in_child(const struct options *o, const struct sl_log_config *cfg, int close_log,
                         struct open_result *res)
{
	int fd, wstatus, rc;
	pid_t pid = fork_child(&fd);

	if (pid < 0)
		return (int)pid;
	if (pid == 0) {
		struct open_result r = {0};
		struct sl_ring ring;
		struct sl_log *log;
		int64_t t0, t1;

		r.status = sl_ring_init(&ring, 0);
		if (r.status == 0) {
			t0 = sl_clock_mono_ns();
			r.status = log_open_verbose(&ring, o->dir, cfg, &log);
			t1 = sl_clock_mono_ns();
			r.open_ms = (double)(t1 - t0) / 1e6;
		}
		if (r.status == 0) {
			sl_log_get_stats(log, &r.stats);
			if (close_log) {
				t0 = sl_clock_mono_ns();
				r.status = sl_log_close(log);
				r.close_ms = (double)(sl_clock_mono_ns() - t0) / 1e6;
				sl_ring_close(&ring);
			}
		}
		rc = write_full(fd, &r, sizeof(r));
		_exit(rc == 0 && r.status == 0 ? 0 : 1);
	}
	rc = read_full(fd, res, sizeof(*res));
	close(fd);
	while (waitpid(pid, &wstatus, 0) < 0 && errno == EINTR)
		;
	if (rc < 0)
		return rc;
	if (res->status < 0)
		return res->status;
	if (!WIFEXITED(wstatus) || WEXITSTATUS(wstatus) != 0)
		return -ECHILD;
	return 0;
}

static json_t *open_result_json(const struct open_result *r)
{
	return json_pack("{s:f, s:f, s:I, s:I, s:I, s:I, s:i, s:b}", "open_ms", r->open_ms, "close_ms", r->close_ms,
	                 "recovered_tail_bytes", (json_int_t)r->stats.recovered_tail_bytes, "truncated_bytes",
	                 (json_int_t)r->stats.truncated_bytes, "next_offset", (json_int_t)r->stats.next_offset, "bytes",
	                 (json_int_t)r->stats.bytes, "segment_count", (int)r->stats.segment_count, "clean_open",
	                 r->stats.clean_open != 0);
}

static int cmd_reopen(const struct options *o)
{
	struct batch_template tmpl;
	struct sl_log_config cfg;
	struct build_result br = {0};
	struct open_result crash[ROUNDS_MAX], closing, clean[ROUNDS_MAX];
	json_t *root, *crash_json, *clean_json;
	uint32_t r;
	int fd, wstatus, rc;
	pid_t pid;

	rc = batch_template_build(&tmpl, o->batch_bytes_max, o->record_bytes);
	if (rc < 0)
		return rc;
	rc = dir_check_fresh(o->dir);
	if (rc < 0)
		return rc;
	log_config_for(&cfg, &tmpl, o->inflight);
	cfg.segment_bytes_max = o->reopen_sealed_bytes / SEALED_SEGMENT_COUNT;
	if (cfg.segment_bytes_max < tmpl.len)
		cfg.segment_bytes_max = tmpl.len;

	pid = fork_child(&fd);
	if (pid < 0)
		return (int)pid;
	if (pid == 0) {
		br.status = build_log(o, &cfg, &tmpl, &br);
		rc = write_full(fd, &br, sizeof(br));
		if (rc < 0 || br.status < 0)
			_exit(1);
		/* The tail stays in the page cache only; wait here, log open, for the parent's SIGKILL. */
		alarm(CHILD_WAIT_S_MAX);
		for (;;)
			pause();
	}
	rc = read_full(fd, &br, sizeof(br));
	close(fd);
	kill(pid, SIGKILL);
	while (waitpid(pid, &wstatus, 0) < 0 && errno == EINTR)
		;
	if (rc < 0 || br.status < 0) {
		fprintf(stderr, "storage-bench: building the reopen log in %s failed: %s\n", o->dir,
		        strerror(-(rc < 0 ? rc : br.status)));
		return rc < 0 ? rc : br.status;
	}
	if (!WIFSIGNALED(wstatus) || WTERMSIG(wstatus) != SIGKILL) {
		fprintf(stderr, "storage-bench: the child that built the reopen log ended on its own (status %#x)\n",
		        wstatus);
		return -ECHILD;
	}
	printf("reopen   built %.2f GiB in %u segments (%.1f s, syncfs of the sealed part %.1f s), %.0f MiB tail "
	       "never flushed; killed with SIGKILL\n",
	       (double)br.log_bytes / (1 << 30), br.segment_count, br.build_s, br.syncfs_s,
	       (double)br.tail_bytes / (1 << 20));

	for (r = 0; r < o->rounds; r++) {
		rc = open_in_child(o, &cfg, 0, &crash[r]);
		if (rc < 0) {
			fprintf(stderr, "storage-bench: reopen after kill -9 failed: %s\n", strerror(-rc));
			return rc;
		}
		printf("reopen   after kill -9, round %u: sl_log_open %8.2f ms, recovered_tail_bytes %" PRIu64
		       ", truncated %" PRIu64 ", next offset %" PRId64 " (acknowledged %" PRId64 ")\n",
		       r + 1, crash[r].open_ms, crash[r].stats.recovered_tail_bytes, crash[r].stats.truncated_bytes,
		       crash[r].stats.next_offset, br.next_offset);
	}
	/* One more crash reopen that closes cleanly, leaving the clean-shutdown marker for the clean rounds. */
	rc = open_in_child(o, &cfg, 1, &closing);
	if (rc < 0) {
		fprintf(stderr, "storage-bench: reopen and clean close failed: %s\n", strerror(-rc));
		return rc;
	}
	for (r = 0; r < o->rounds; r++) {
		rc = open_in_child(o, &cfg, 1, &clean[r]);
		if (rc < 0) {
			fprintf(stderr, "storage-bench: reopen after a clean close failed: %s\n", strerror(-rc));
			return rc;
		}
		printf("reopen   after clean close, round %u: sl_log_open %8.2f ms, recovered_tail_bytes %" PRIu64
		       ", clean_open %d\n",
		       r + 1, clean[r].open_ms, clean[r].stats.recovered_tail_bytes, clean[r].stats.clean_open);
	}

	crash_json = json_array();
	clean_json = json_array();
	for (r = 0; r < o->rounds; r++) {
		json_array_append_new(crash_json, open_result_json(&crash[r]));
		json_array_append_new(clean_json, open_result_json(&clean[r]));
	}
	root = json_object();
	json_object_set_new(root, "command", json_string("reopen"));
	json_object_set_new(root, "sealed_bytes", json_integer((json_int_t)br.sealed_bytes));
	json_object_set_new(root, "tail_bytes", json_integer((json_int_t)br.tail_bytes));
	json_object_set_new(root, "log_bytes", json_integer((json_int_t)br.log_bytes));
	json_object_set_new(root, "segment_count", json_integer(br.segment_count));
	json_object_set_new(root, "segment_bytes_max", json_integer((json_int_t)cfg.segment_bytes_max));
	json_object_set_new(root, "batch_bytes", json_integer((json_int_t)tmpl.len));
	json_object_set_new(root, "acknowledged_next_offset", json_integer(br.next_offset));
	json_object_set_new(root, "build_s", json_real(br.build_s));
	json_object_set_new(root, "syncfs_s", json_real(br.syncfs_s));
	json_object_set_new(root, "crash", crash_json);
	json_object_set_new(root, "clean_close", open_result_json(&closing));
	json_object_set_new(root, "clean", clean_json);
	json_object_set_new(root, "filesystem", json_string(fs_name(o->dir)));
	rc = json_write(root, o->json_path);
	json_decref(root);
	free(tmpl.bytes);
	return rc;
}

/* ---- report ----------------------------------------------------------------------------------------------------- */

/* A number at a dotted path ("jobs.0.write.bw_bytes"); NAN when any step is missing. */
static double jnum(json_t *v, const char *path)
{
	char buf[256], *save = NULL, *part;

	if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf))
		return NAN;
	for (part = strtok_r(buf, ".", &save); part && v; part = strtok_r(NULL, ".", &save)) {
		if (json_is_array(v))
			v = json_array_get(v, strtoul(part, NULL, 10));
		else
			v = json_object_get(v, part);
	}
	return v && json_is_number(v) ? json_number_value(v) : NAN;
}

static const char *jstr(json_t *v, const char *key)
{
	json_t *s = json_object_get(v, key);

	return json_is_string(s) ? json_string_value(s) : NULL;
}

/* fio may print a warning line before its JSON: start at the first brace. */
static json_t *json_load_lenient(const char *path)
{
	FILE *f = fopen(path, "r");
	char *text = NULL, *start;
	size_t cap = 0, len = 0, n;
	json_t *root = NULL;
	json_error_t error;

	if (!f)
		return NULL;
	for (;;) {
		if (len + 65536 + 1 > cap) {
			char *t = realloc(text, cap = (len + 65536 + 1) * 2);
			if (!t)
				goto out;
			text = t;
		}
		n = fread(text + len, 1, cap - len - 1, f);
		if (n == 0)
			break;
		len += n;
	}
	text[len] = '\0';
	start = strchr(text, '{');
	if (start)
		root = json_loads(start, JSON_DISABLE_EOF_CHECK, &error);
	if (!root)
		fprintf(stderr, "storage-bench: %s is not JSON: %s\n", path, start ? error.text : "no object");
out:
	free(text);
	fclose(f);
	return root;
}

/* Median with min and max of the values that are not NAN. */
struct spread {
	double median, min, max;
	int count;
};

static struct spread spread_of(const double *values, uint32_t n)
{
	double v[ROUNDS_MAX];
	struct spread s = {NAN, NAN, NAN, 0};
	uint32_t i;

	for (i = 0; i < n && i < ROUNDS_MAX; i++) {
		if (!isnan(values[i]))
			v[s.count++] = values[i];
	}
	if (s.count == 0)
		return s;
	qsort(v, (size_t)s.count, sizeof(v[0]), cmp_double);
	s.min = v[0];
	s.max = v[s.count - 1];
	s.median = s.count % 2 ? v[s.count / 2] : (v[s.count / 2 - 1] + v[s.count / 2]) / 2;
	return s;
}

static json_t *spread_json(struct spread s)
{
	json_t *o = json_object();

	json_object_set_new(o, "median", jreal_or_null(s.median));
	json_object_set_new(o, "min", jreal_or_null(s.min));
	json_object_set_new(o, "max", jreal_or_null(s.max));
	json_object_set_new(o, "rounds", json_integer(s.count));
	return o;
}

struct report_case {
	uint64_t batch_bytes_max;
	enum sl_durability level;
	uint32_t round_count;
};

static int case_order(const void *a, const void *b)
{
	const struct report_case *x = a, *y = b;

	if (x->batch_bytes_max != y->batch_bytes_max)
		return x->batch_bytes_max < y->batch_bytes_max ? -1 : 1;
	return (int)x->level - (int)y->level;
}

/* "synclog-<batch_bytes_max>-<level>-<round>.json", as storage.sh names synclog's runs. */
static int run_name_parse(const char *name, uint64_t *batch_bytes_max, enum sl_durability *level, unsigned *round)
{
	char lv[16];
	int end = 0;

	if (sscanf(name, "synclog-%" SCNu64 "-%15[a-z]-%u.json%n", batch_bytes_max, lv, round, &end) < 3 || end == 0 ||
	    name[end] != '\0')
		return -EINVAL;
	if (level_parse(lv, level) < 0 || *round < 1 || *round > ROUNDS_MAX)
		return -EINVAL;
	return 0;
}

static int report_scan(const char *runs_dir, struct report_case *cases, uint32_t *case_count)
{
	DIR *d = opendir(runs_dir);
	struct dirent *e;

	*case_count = 0;
	if (!d) {
		int rc = -errno;

		fprintf(stderr, "storage-bench: cannot open runs directory %s: %s\n", runs_dir, strerror(-rc));
		return rc;
	}
	while ((e = readdir(d)) != NULL) {
		uint64_t batch_bytes_max;
		unsigned round;
		enum sl_durability lv;
		uint32_t i;

		if (run_name_parse(e->d_name, &batch_bytes_max, &lv, &round) < 0)
			continue;
		for (i = 0; i < *case_count; i++) {
			if (cases[i].batch_bytes_max == batch_bytes_max && cases[i].level == lv)
				break;
		}
		if (i == *case_count) {
			if (*case_count == REPORT_CASES_MAX)
				continue;
			cases[i] = (struct report_case){batch_bytes_max, lv, 0};
			(*case_count)++;
		}
		if (round > cases[i].round_count)
			cases[i].round_count = round;
	}
	closedir(d);
	qsort(cases, *case_count, sizeof(cases[0]), case_order);
	return 0;
}

static void size_label(char *buf, size_t cap, uint64_t bytes)
{
	if (bytes >= (1u << 20) && bytes % (1u << 20) == 0)
		snprintf(buf, cap, "%" PRIu64 " MiB", bytes >> 20);
	else if (bytes >= 1024 && bytes % 1024 == 0)
		snprintf(buf, cap, "%" PRIu64 " KiB", bytes >> 10);
	else
		snprintf(buf, cap, "%" PRIu64 " B", bytes);
}

static void spread_label(char *buf, size_t cap, struct spread s, double scale, int decimals)
{
	if (s.count == 0)
		snprintf(buf, cap, "-");
	else
		snprintf(buf, cap, "%.*f [%.*f-%.*f]", decimals, s.median / scale, decimals, s.min / scale, decimals,
		         s.max / scale);
}

/* Per-round figures of one case, ours and fio's. */
struct case_rounds {
	double mb_per_s[ROUNDS_MAX], records_per_s[ROUNDS_MAX], p50_us[ROUNDS_MAX], p99_us[ROUNDS_MAX];
	double batches_per_fsync[ROUNDS_MAX], cpu_s[ROUNDS_MAX], write_ops_per_batch[ROUNDS_MAX];
	double fio_mb_per_s[ROUNDS_MAX], fio_records_per_s[ROUNDS_MAX], fio_writes_per_sync[ROUNDS_MAX];
	double fio_sync_p50_us[ROUNDS_MAX], fio_sync_p99_us[ROUNDS_MAX], fio_n[ROUNDS_MAX], ratio[ROUNDS_MAX];
	double loadavg_1m[ROUNDS_MAX];
};

/* The fdatasync cadence fio actually ran: the option, an iolog replay (fio before 3.38 issues extra fdatasyncs
 * with --fdatasync=N at iodepth > 1; see bench/README.md), or none. */
static const char *fio_sync_method(json_t *fio)
{
	json_t *opts = json_object_get(json_array_get(json_object_get(fio, "jobs"), 0), "job options");

	if (json_object_get(opts, "read_iolog"))
		return "iolog";
	if (json_object_get(opts, "fdatasync"))
		return "fdatasync-option";
	return "none";
}

/* fio's percentile keys hold dots ("99.000000"), so they are looked up by name, not by jnum's path. */
static double fio_sync_percentile_us(json_t *fio, const char *key)
{
	json_t *job = json_array_get(json_object_get(fio, "jobs"), 0);
	json_t *pct = json_object_get(json_object_get(json_object_get(job, "sync"), "lat_ns"), "percentile");
	json_t *v = json_object_get(pct, key);

	return json_is_number(v) ? json_number_value(v) / 1e3 : NAN;
}

static json_t *report_case(const char *runs_dir, const struct report_case *c, struct case_rounds *cr,
                           const char **fio_version, const char **filesystem, double *ratio_out, double *target_out)
{
	char path[4096];
	json_t *out, *ours_json, *fio_json, *ratio_json, *first_ours = NULL, *first_fio = NULL;
	const char *lv = level_name(c->level);
	double batch_bytes = NAN, records_per_batch = NAN, target, ratio;
	uint32_t r;

	for (r = 0; r < c->round_count; r++) {
		json_t *ours, *fio;
		double sync_count, io_bytes, runtime_s;

		snprintf(path, sizeof(path), "%s/synclog-%" PRIu64 "-%s-%u.json", runs_dir, c->batch_bytes_max, lv,
		         r + 1);
		ours = json_load_lenient(path);
		snprintf(path, sizeof(path), "%s/fio-%" PRIu64 "-%s-%u.json", runs_dir, c->batch_bytes_max, lv, r + 1);
		fio = json_load_lenient(path);
		cr->mb_per_s[r] = jnum(ours, "mb_per_s");
		cr->records_per_s[r] = jnum(ours, "records_per_s");
		cr->p50_us[r] = jnum(ours, "latency_us.p50");
		cr->p99_us[r] = jnum(ours, "latency_us.p99");
		cr->batches_per_fsync[r] = jnum(ours, "batches_per_fsync");
		cr->cpu_s[r] = jnum(ours, "cpu_user_s") + jnum(ours, "cpu_sys_s");
		cr->write_ops_per_batch[r] = jnum(ours, "write_op_count") / jnum(ours, "batch_count");
		cr->fio_n[r] = jnum(ours, "fdatasync_every_n");
		cr->loadavg_1m[r] = jnum(ours, "loadavg_1m");
		if (ours && isnan(batch_bytes)) {
			batch_bytes = jnum(ours, "batch_bytes");
			records_per_batch = jnum(ours, "records_per_batch");
		}
		/* fio counts its fdatasyncs only as latency samples. */
		io_bytes = jnum(fio, "jobs.0.write.io_bytes");
		runtime_s = jnum(fio, "jobs.0.write.runtime") / 1e3;
		sync_count = jnum(fio, "jobs.0.sync.lat_ns.N");
		cr->fio_mb_per_s[r] = jnum(fio, "jobs.0.write.bw_bytes") / 1e6;
		cr->fio_records_per_s[r] = io_bytes / batch_bytes * records_per_batch / runtime_s;
		cr->fio_writes_per_sync[r] = sync_count > 0 ? jnum(fio, "jobs.0.write.total_ios") / sync_count : NAN;
		cr->fio_sync_p50_us[r] = sync_count > 0 ? fio_sync_percentile_us(fio, "50.000000") : NAN;
		cr->fio_sync_p99_us[r] = sync_count > 0 ? fio_sync_percentile_us(fio, "99.000000") : NAN;
		cr->ratio[r] = cr->mb_per_s[r] / cr->fio_mb_per_s[r];
		if (!first_ours && ours)
			first_ours = json_incref(ours);
		if (!first_fio && fio)
			first_fio = json_incref(fio);
		json_decref(ours);
		json_decref(fio);
	}
	if (first_fio && !*fio_version)
		*fio_version = strdup(jstr(first_fio, "fio version") ? jstr(first_fio, "fio version") : "?");
	if (first_ours && !*filesystem)
		*filesystem = strdup(jstr(first_ours, "filesystem") ? jstr(first_ours, "filesystem") : "?");

	ours_json = json_object();
	json_object_set_new(ours_json, "mb_per_s", spread_json(spread_of(cr->mb_per_s, c->round_count)));
	json_object_set_new(ours_json, "records_per_s", spread_json(spread_of(cr->records_per_s, c->round_count)));
	json_object_set_new(ours_json, "ack_latency_p50_us", spread_json(spread_of(cr->p50_us, c->round_count)));
	json_object_set_new(ours_json, "ack_latency_p99_us", spread_json(spread_of(cr->p99_us, c->round_count)));
	json_object_set_new(ours_json, "batches_per_fdatasync",
	                    spread_json(spread_of(cr->batches_per_fsync, c->round_count)));
	json_object_set_new(ours_json, "write_ops_per_batch",
	                    spread_json(spread_of(cr->write_ops_per_batch, c->round_count)));
	json_object_set_new(ours_json, "cpu_s", spread_json(spread_of(cr->cpu_s, c->round_count)));

	fio_json = json_object();
	json_object_set_new(fio_json, "mb_per_s", spread_json(spread_of(cr->fio_mb_per_s, c->round_count)));
	json_object_set_new(fio_json, "records_per_s", spread_json(spread_of(cr->fio_records_per_s, c->round_count)));
	json_object_set_new(fio_json, "sync_method", json_string(first_fio ? fio_sync_method(first_fio) : "missing"));
	if (c->level == SL_DURABILITY_FSYNC) {
		json_object_set_new(fio_json, "fdatasync_every_n", spread_json(spread_of(cr->fio_n, c->round_count)));
		json_object_set_new(fio_json, "writes_per_fdatasync",
		                    spread_json(spread_of(cr->fio_writes_per_sync, c->round_count)));
		json_object_set_new(fio_json, "fdatasync_p50_us",
		                    spread_json(spread_of(cr->fio_sync_p50_us, c->round_count)));
		json_object_set_new(fio_json, "fdatasync_p99_us",
		                    spread_json(spread_of(cr->fio_sync_p99_us, c->round_count)));
	}

	target = c->level == SL_DURABILITY_FSYNC     ? TARGET_RATIO_FSYNC
	         : c->level == SL_DURABILITY_WRITTEN ? TARGET_RATIO_WRITTEN
	                                             : NAN;
	ratio = spread_of(cr->mb_per_s, c->round_count).median / spread_of(cr->fio_mb_per_s, c->round_count).median;
	ratio_json = json_object();
	json_object_set_new(ratio_json, "of_medians", jreal_or_null(ratio));
	json_object_set_new(ratio_json, "per_round", spread_json(spread_of(cr->ratio, c->round_count)));

	out = json_object();
	json_object_set_new(out, "batch_bytes_max", json_integer((json_int_t)c->batch_bytes_max));
	json_object_set_new(out, "batch_bytes", jint_or_null(batch_bytes));
	json_object_set_new(out, "records_per_batch", jint_or_null(records_per_batch));
	json_object_set_new(out, "level", json_string(lv));
	json_object_set_new(out, "rounds", json_integer(c->round_count));
	json_object_set_new(out, "bytes_per_run", jint_or_null(jnum(first_ours, "bytes")));
	json_object_set_new(out, "inflight", jint_or_null(jnum(first_ours, "inflight")));
	json_object_set_new(out, "synclog", ours_json);
	json_object_set_new(out, "fio", fio_json);
	json_object_set_new(out, "ratio", ratio_json);
	json_object_set_new(out, "target_ratio", jreal_or_null(target));
	json_object_set_new(out, "target_met", isnan(target) ? json_null() : json_boolean(ratio >= target));
	json_decref(first_ours);
	json_decref(first_fio);
	*ratio_out = ratio;
	*target_out = target;
	return out;
}

static json_t *report_reopen(json_t *rj, int *met_out)
{
	double crash_ms[ROUNDS_MAX], clean_ms[ROUNDS_MAX], crash_tail[ROUNDS_MAX], clean_tail[ROUNDS_MAX];
	json_t *crash = json_object_get(rj, "crash"), *clean = json_object_get(rj, "clean"), *out;
	struct spread crash_s, clean_s;
	double lost;
	uint32_t i, n = (uint32_t)json_array_size(crash);

	if (n > ROUNDS_MAX)
		n = ROUNDS_MAX;
	for (i = 0; i < n; i++) {
		crash_ms[i] = jnum(json_array_get(crash, i), "open_ms");
		crash_tail[i] = jnum(json_array_get(crash, i), "recovered_tail_bytes");
		clean_ms[i] = jnum(json_array_get(clean, i), "open_ms");
		clean_tail[i] = jnum(json_array_get(clean, i), "recovered_tail_bytes");
	}
	crash_s = spread_of(crash_ms, n);
	clean_s = spread_of(clean_ms, n);
	out = json_object();
	json_object_set_new(out, "sealed_bytes", jint_or_null(jnum(rj, "sealed_bytes")));
	json_object_set_new(out, "tail_bytes", jint_or_null(jnum(rj, "tail_bytes")));
	json_object_set_new(out, "log_bytes", jint_or_null(jnum(rj, "log_bytes")));
	json_object_set_new(out, "segment_count", jint_or_null(jnum(rj, "segment_count")));
	json_object_set_new(out, "acknowledged_next_offset", jint_or_null(jnum(rj, "acknowledged_next_offset")));
	json_object_set_new(out, "crash_open_ms", spread_json(crash_s));
	json_object_set_new(out, "crash_open_first_ms", jreal_or_null(n ? crash_ms[0] : NAN));
	json_object_set_new(out, "crash_recovered_tail_bytes", spread_json(spread_of(crash_tail, n)));
	json_object_set_new(out, "crash_next_offset",
	                    jint_or_null(n ? jnum(json_array_get(crash, 0), "next_offset") : NAN));
	json_object_set_new(out, "crash_truncated_bytes",
	                    jint_or_null(n ? jnum(json_array_get(crash, 0), "truncated_bytes") : NAN));
	json_object_set_new(out, "clean_open_ms", spread_json(clean_s));
	json_object_set_new(out, "clean_recovered_tail_bytes", spread_json(spread_of(clean_tail, n)));
	json_object_set_new(out, "clean_close_ms", jreal_or_null(jnum(rj, "clean_close.close_ms")));
	json_object_set_new(out, "target_ms", json_real(TARGET_REOPEN_MS));
	/* At written, kill -9 loses nothing acknowledged: the page cache outlives the process. */
	lost = jnum(rj, "acknowledged_next_offset") - (n ? jnum(json_array_get(crash, 0), "next_offset") : NAN);
	json_object_set_new(out, "crash_records_lost", jint_or_null(lost));
	*met_out = crash_s.count > 0 && crash_s.median < TARGET_REOPEN_MS && lost == 0;
	json_object_set_new(out, "target_met", json_boolean(*met_out));
	json_object_set_new(out, "rounds", json_pack("{s:O, s:O}", "crash", crash, "clean", clean));
	return out;
}

static void print_reopen(json_t *rep, json_t *rj)
{
	char crash_l[96], clean_l[96];
	struct spread c = {jnum(rep, "crash_open_ms.median"), jnum(rep, "crash_open_ms.min"),
	                   jnum(rep, "crash_open_ms.max"), 1};
	struct spread k = {jnum(rep, "clean_open_ms.median"), jnum(rep, "clean_open_ms.min"),
	                   jnum(rep, "clean_open_ms.max"), 1};

	spread_label(crash_l, sizeof(crash_l), c, 1, 1);
	spread_label(clean_l, sizeof(clean_l), k, 1, 1);
	printf("\nreopen of %.2f GiB in %.0f segments with a %.0f MiB unflushed tail: sl_log_open ms, median "
	       "[min-max]\n",
	       jnum(rj, "log_bytes") / (1 << 30), jnum(rj, "segment_count"), jnum(rj, "tail_bytes") / (1 << 20));
	printf("  after kill -9      %-24s target < %.0f ms: %s\n", crash_l, TARGET_REOPEN_MS,
	       json_is_true(json_object_get(rep, "target_met")) ? "met" : "MISSED");
	printf("                     first open %.1f ms, recovered_tail_bytes %.0f, truncated_bytes %.0f, end offset "
	       "%.0f "
	       "of %.0f acknowledged\n",
	       jnum(rep, "crash_open_first_ms"), jnum(rep, "crash_recovered_tail_bytes.median"),
	       jnum(rep, "crash_truncated_bytes"), jnum(rep, "crash_next_offset"),
	       jnum(rep, "acknowledged_next_offset"));
	printf("  after clean close  %-24s recovered_tail_bytes %.0f\n", clean_l,
	       jnum(rep, "clean_recovered_tail_bytes.median"));
}

static void print_append_tables(const struct report_case *cases, const struct case_rounds *cr, uint32_t case_count,
                                json_t *append)
{
	uint32_t i;

	printf("%-8s %-7s %2s  %-22s %-22s %-14s %-20s %-20s\n", "batch", "level", "n", "synclog MB/s", "fio MB/s",
	       "ratio/target", "synclog krec/s", "fio krec/s");
	for (i = 0; i < case_count; i++) {
		json_t *c = json_array_get(append, i);
		char batch[32], a[64], b[64], rr[32], d[64], e[64];
		uint32_t n = cases[i].round_count;

		size_label(batch, sizeof(batch), cases[i].batch_bytes_max);
		spread_label(a, sizeof(a), spread_of(cr[i].mb_per_s, n), 1, 0);
		spread_label(b, sizeof(b), spread_of(cr[i].fio_mb_per_s, n), 1, 0);
		spread_label(d, sizeof(d), spread_of(cr[i].records_per_s, n), 1e3, 0);
		spread_label(e, sizeof(e), spread_of(cr[i].fio_records_per_s, n), 1e3, 0);
		snprintf(rr, sizeof(rr), "%.2f/%.2f %s", jnum(c, "ratio.of_medians"), jnum(c, "target_ratio"),
		         json_is_true(json_object_get(c, "target_met")) ? "ok" : "MISS");
		printf("%-8s %-7s %2u  %-22s %-22s %-14s %-20s %-20s\n", batch, level_name(cases[i].level), n, a, b, rr,
		       d, e);
	}
	printf("\nat fsync: append-to-ack latency (us), batches per fdatasync, and the cadence fio ran\n");
	printf("%-8s %-22s %-22s %-18s %-10s %-18s %-22s\n", "batch", "synclog ack p50", "synclog ack p99",
	       "batches/fdatasync", "fio every", "fio writes/sync", "fio fdatasync p50/p99");
	for (i = 0; i < case_count; i++) {
		json_t *c = json_array_get(append, i);
		char batch[32], a[64], b[64], d[64], e[64], f[64];
		uint32_t n = cases[i].round_count;

		if (cases[i].level != SL_DURABILITY_FSYNC)
			continue;
		size_label(batch, sizeof(batch), cases[i].batch_bytes_max);
		spread_label(a, sizeof(a), spread_of(cr[i].p50_us, n), 1, 0);
		spread_label(b, sizeof(b), spread_of(cr[i].p99_us, n), 1, 0);
		spread_label(d, sizeof(d), spread_of(cr[i].batches_per_fsync, n), 1, 1);
		spread_label(e, sizeof(e), spread_of(cr[i].fio_writes_per_sync, n), 1, 1);
		snprintf(f, sizeof(f), "%.0f/%.0f", spread_of(cr[i].fio_sync_p50_us, n).median,
		         spread_of(cr[i].fio_sync_p99_us, n).median);
		printf("%-8s %-22s %-22s %-18s %-10.0f %-18s %-22s (%s)\n", batch, a, b, d,
		       spread_of(cr[i].fio_n, n).median, e, f, jstr(json_object_get(c, "fio"), "sync_method"));
	}
}

static int cmd_report(const struct options *o)
{
	struct report_case cases[REPORT_CASES_MAX];
	struct case_rounds *cr;
	uint32_t case_count, i, r;
	const char *fio_version = NULL, *filesystem = NULL;
	char path[4096];
	json_t *root, *append, *reopen = NULL, *rj;
	struct utsname un;
	double load_max = NAN;
	time_t now = time(NULL);
	char utc_now[32];
	int all_met = 1, cpus = (int)sysconf(_SC_NPROCESSORS_ONLN), rc;

	rc = report_scan(o->runs_dir, cases, &case_count);
	if (rc < 0)
		return rc;
	cr = calloc(REPORT_CASES_MAX, sizeof(*cr));
	if (!cr)
		return -ENOMEM;
	append = json_array();
	for (i = 0; i < case_count; i++) {
		double ratio, target;

		json_array_append_new(append, report_case(o->runs_dir, &cases[i], &cr[i], &fio_version, &filesystem,
		                                          &ratio, &target));
		if (!isnan(target) && !(ratio >= target))
			all_met = 0;
		for (r = 0; r < cases[i].round_count; r++) {
			if (isnan(load_max) || cr[i].loadavg_1m[r] > load_max)
				load_max = cr[i].loadavg_1m[r];
		}
	}
	snprintf(path, sizeof(path), "%s/reopen.json", o->runs_dir);
	rj = access(path, F_OK) == 0 ? json_load_lenient(path) : NULL;
	if (rj) {
		int met;

		reopen = report_reopen(rj, &met);
		all_met &= met;
	}

	uname(&un);
	strftime(utc_now, sizeof(utc_now), "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
	root = json_object();
	json_object_set_new(root, "benchmark", json_string("storage"));
	json_object_set_new(root, "generated_at", json_string(utc_now));
	json_object_set_new(root, "host",
	                    json_pack("{s:s, s:s, s:i, s:s, s:s, s:o}", "kernel", un.release, "machine", un.machine,
	                              "cpus", cpus, "filesystem", filesystem ? filesystem : "?", "fio_version",
	                              fio_version ? fio_version : "?", "loadavg_1m_max", jreal_or_null(load_max)));
	json_object_set_new(root, "append", append);
	json_object_set_new(root, "reopen", reopen ? reopen : json_null());
	json_object_set_new(root, "targets_met", json_boolean(all_met));
	rc = json_write(root, o->json_path);

	printf("\nstorage bench: %s, %d CPUs, %s, %s, highest 1-minute load at a run's start %.2f\n", un.release, cpus,
	       filesystem ? filesystem : "?", fio_version ? fio_version : "fio ?", load_max);
	printf("synclog vs fio (io_uring, buffered, same block size, iodepth and fdatasync cadence); median [min-max] "
	       "of the rounds;\nratio = median synclog MB/s / median fio MB/s\n\n");
	print_append_tables(cases, cr, case_count, append);
	if (reopen)
		print_reopen(reopen, rj);
	printf("\ntargets %s; figures in %s\n", all_met ? "met" : "MISSED",
	       o->json_path ? o->json_path : "(not saved)");
	json_decref(rj);
	json_decref(root);
	free(cr);
	return rc;
}

/* ---- retain --------------------------------------------------------------------------------------------------- */

static double ms_since(int64_t t0)
{
	return (double)(sl_clock_mono_ns() - t0) / 1e6;
}

static int cmd_retain(const struct options *o)
{
	struct sl_log_config cfg;
	struct sl_log_stats before, after;
	struct sl_log_garbage *g = calloc(1, sizeof(*g));
	struct sl_ring ring;
	struct sl_log *log = NULL;
	json_t *root;
	int64_t t0;
	double open_ms, idle_pass_ms, detach_ms = 0, remove_ms = 0;
	int rc;

	if (g == NULL)
		return -ENOMEM;
	rc = sl_ring_init(&ring, 0);
	if (rc < 0) {
		free(g);
		return rc;
	}
	sl_log_config_default(&cfg);
	t0 = sl_clock_mono_ns();
	rc = log_open_verbose(&ring, o->dir, &cfg, &log);
	open_ms = ms_since(t0);
	if (rc < 0)
		goto out;
	sl_log_get_stats(log, &before);
	/* A pass with nothing to drop: what every pass costs a log that is within its retention. */
	t0 = sl_clock_mono_ns();
	rc = sl_log_retain_detach(log, sl_clock_wall_ms(), -1, (int64_t)before.bytes, g);
	idle_pass_ms = ms_since(t0);
	SL_ASSERT(rc < 0 || g->count == 0);
	sl_log_garbage_remove(g);
	/* Then drop the oldest --rounds segments by size: keep the bytes of all but them. */
	if (rc == 0 && before.segment_count > o->rounds) {
		uint64_t keep = before.bytes;
		uint32_t dropped = 0;
		struct sl_log_span span;

		/* The bytes of the oldest segments, found by locating each next segment's first offset. */
		for (int64_t off = before.start_offset; dropped < o->rounds && off < before.next_offset; dropped++) {
			if (sl_log_locate(log, off, UINT64_MAX, &span) < 0 || span.len == 0)
				break;
			keep -= span.pos + span.len; /* a span never crosses a segment: this is the segment's length */
			off = span.next_offset;
		}
		t0 = sl_clock_mono_ns();
		rc = sl_log_retain_detach(log, sl_clock_wall_ms(), -1, (int64_t)keep, g);
		detach_ms = ms_since(t0);
		t0 = sl_clock_mono_ns();
		if (rc == 0)
			rc = sl_log_garbage_remove(g);
		remove_ms = ms_since(t0);
	}
	sl_log_get_stats(log, &after);
	root = json_object();
	json_object_set_new(root, "command", json_string("retain"));
	json_object_set_new(root, "dir", json_string(o->dir));
	json_object_set_new(root, "open_ms", json_real(open_ms));
	json_object_set_new(root, "clean_open", json_boolean(before.clean_open));
	json_object_set_new(root, "recovered_tail_bytes", json_integer((json_int_t)before.recovered_tail_bytes));
	json_object_set_new(root, "bytes_before", json_integer((json_int_t)before.bytes));
	json_object_set_new(root, "segments_before", json_integer(before.segment_count));
	json_object_set_new(root, "idle_pass_ms", json_real(idle_pass_ms));
	json_object_set_new(root, "detach_ms", json_real(detach_ms));
	json_object_set_new(root, "remove_ms", json_real(remove_ms));
	json_object_set_new(root, "segments_dropped", json_integer(before.segment_count - after.segment_count));
	json_object_set_new(root, "bytes_after", json_integer((json_int_t)after.bytes));
	json_object_set_new(root, "error", rc < 0 ? json_string(strerror(-rc)) : json_null());
	json_write(root, o->json_path);
	json_decref(root);
	printf("retain %s: open %.1f ms, idle pass %.3f ms, drop %u segments: detach %.3f ms, remove %.1f ms\n", o->dir,
	       open_ms, idle_pass_ms, before.segment_count - after.segment_count, detach_ms, remove_ms);
	sl_log_close(log);
out:
	sl_ring_close(&ring);
	free(g);
	return rc;
}

/* ---- main ----------------------------------------------------------------------------------------------------- */

static void usage(FILE *f)
{
	fprintf(f,
	        "usage: storage-bench batch-size|warm-memory|append|reopen|report|retain [options]\n"
	        "  --dir DIR                    log directory (new or empty; append, reopen; existing: retain)\n"
	        "  --bytes N                    bytes to append per run, or to warm (default 2g)\n"
	        "  --batch-bytes N              batch size limit; records are added while they fit (default 64k)\n"
	        "  --record-bytes N             value bytes of each record (default 1024)\n"
	        "  --level written|fsync|none   durability of every append (append; default written)\n"
	        "  --inflight N                 appends queued at once, 1..%d (default %d)\n"
	        "  --reopen-sealed-bytes N      sealed segments of the reopen log (reopen; default 10g)\n"
	        "  --reopen-tail-bytes N        unflushed tail of the reopen log (reopen; default 100m)\n"
	        "  --rounds N                   timed opens of each kind (reopen; default 3); segments to drop "
	        "(retain)\n"
	        "  --runs DIR                   per-run JSON files to summarize (report)\n"
	        "  --json FILE                  write the figures there\n"
	        "bench/storage.sh runs all of it; see bench/README.md.\n",
	        INFLIGHT_MAX, INFLIGHT_DEFAULT);
}

static int options_parse(int argc, char **argv, struct options *o)
{
	static const struct option long_options[] = {
	        {"dir", required_argument, NULL, 'd'},
	        {"bytes", required_argument, NULL, 'n'},
	        {"batch-bytes", required_argument, NULL, 'b'},
	        {"record-bytes", required_argument, NULL, 'r'},
	        {"level", required_argument, NULL, 'l'},
	        {"inflight", required_argument, NULL, 'i'},
	        {"reopen-sealed-bytes", required_argument, NULL, 's'},
	        {"reopen-tail-bytes", required_argument, NULL, 't'},
	        {"rounds", required_argument, NULL, 'R'},
	        {"runs", required_argument, NULL, 'u'},
	        {"json", required_argument, NULL, 'j'},
	        {"help", no_argument, NULL, 'h'},
	        {NULL, 0, NULL, 0},
	};
	uint64_t v;
	int c, index = 0;

	*o = (struct options){
	        .dir = "build/bench-data/log",
	        .bytes = 2ull << 30,
	        .batch_bytes_max = 64 << 10,
	        .record_bytes = 1024,
	        .level = SL_DURABILITY_WRITTEN,
	        .inflight = INFLIGHT_DEFAULT,
	        .reopen_sealed_bytes = 10ull << 30,
	        .reopen_tail_bytes = 100ull << 20,
	        .rounds = 3,
	};
	if (argc < 2 || argv[1][0] == '-') {
		usage(stderr);
		return -EINVAL;
	}
	o->command = argv[1];
	optind = 2;
	while ((c = getopt_long(argc, argv, "h", long_options, &index)) != -1) {
		int rc = 0;

		switch (c) {
		case 'd':
			o->dir = optarg;
			break;
		case 'u':
			o->runs_dir = optarg;
			break;
		case 'j':
			o->json_path = optarg;
			break;
		case 'l':
			rc = level_parse(optarg, &o->level);
			break;
		case 'n':
			rc = bytes_parse(optarg, &o->bytes);
			break;
		case 'b':
			rc = bytes_parse(optarg, &o->batch_bytes_max);
			break;
		case 's':
			rc = bytes_parse(optarg, &o->reopen_sealed_bytes);
			break;
		case 't':
			rc = bytes_parse(optarg, &o->reopen_tail_bytes);
			break;
		case 'r':
		case 'i':
		case 'R':
			rc = bytes_parse(optarg, &v);
			if (rc == 0 && v > UINT32_MAX)
				rc = -EINVAL;
			if (c == 'r')
				o->record_bytes = (uint32_t)v;
			else if (c == 'i')
				o->inflight = (uint32_t)v;
			else
				o->rounds = (uint32_t)v;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			return -EINVAL;
		}
		if (rc < 0) {
			fprintf(stderr,
			        "storage-bench: bad value '%s' for --%s: give a number, sizes may end in k, m or "
			        "g\n",
			        optarg, long_options[index].name);
			return rc;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "storage-bench: unexpected argument '%s'\n", argv[optind]);
		return -EINVAL;
	}
	if (o->inflight < 1 || o->inflight > INFLIGHT_MAX) {
		fprintf(stderr, "storage-bench: --inflight must be 1..%d\n", INFLIGHT_MAX);
		return -EINVAL;
	}
	if (o->rounds < 1 || o->rounds > ROUNDS_MAX) {
		fprintf(stderr, "storage-bench: --rounds must be 1..%d\n", ROUNDS_MAX);
		return -EINVAL;
	}
	if (o->bytes == 0 || o->batch_bytes_max > SL_BATCH_BYTES_MAX) {
		fprintf(stderr, "storage-bench: --bytes must be > 0 and --batch-bytes at most %u\n",
		        SL_BATCH_BYTES_MAX);
		return -EINVAL;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct options o;
	int rc = options_parse(argc, argv, &o);

	if (rc < 0)
		return 2;
	if (strcmp(o.command, "batch-size") == 0)
		rc = cmd_batch_size(&o);
	else if (strcmp(o.command, "warm-memory") == 0)
		rc = cmd_warm_memory(&o);
	else if (strcmp(o.command, "append") == 0)
		rc = cmd_append(&o);
	else if (strcmp(o.command, "reopen") == 0)
		rc = cmd_reopen(&o);
	else if (strcmp(o.command, "retain") == 0)
		rc = cmd_retain(&o);
	else if (strcmp(o.command, "report") == 0) {
		if (!o.runs_dir) {
			fprintf(stderr, "storage-bench: report needs --runs DIR\n");
			return 2;
		}
		rc = cmd_report(&o);
	} else {
		fprintf(stderr, "storage-bench: unknown command '%s'\n", o.command);
		usage(stderr);
		return 2;
	}
	return rc < 0 ? 1 : 0;
}
