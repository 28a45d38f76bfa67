/* groups-bench: the measurements of the consumer-group benchmark (bench/groups.sh), one per invocation, each
 * printing one JSON object: `produce` writes the backlog (and is the produce throughput of the same run), `replay`
 * reads it with a new group from the start (or from --start-offset, for --records records), `commits` times a
 * group member's synchronous commits, `commit-groups` keeps --groups groups of one member each committing once
 * per --interval-ms (the group curve of bench/curve_groups.sh). */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "proto/base/clock.h"
#include "bench/common/hist.h"
#include "consumer/client/synclog.h"

/* Records handed out per poll in replay: the CLI's batch, large enough that the call costs nothing per record. */
#define REPLAY_POLL_RECORDS 4096
/* Latency samples kept by `commits`: one per commit, a run of seconds makes at most a few tens of thousands. */
#define COMMIT_SAMPLES_MAX  1000000
/* commit-groups: groups per run at most, and threads that share them (each thread commits its groups one after
 * the other, so a thread holds at most GROUPS_MAX / GROUP_THREADS_MAX = 157 commits per interval). */
#define GROUPS_MAX          10000
#define GROUP_THREADS_MAX   64
/* commit-groups: while a thread's later groups join and the other threads finish joining theirs, the groups already
 * joined are polled at most this often (their heartbeats go out from poll when due). Joins can take seconds each
 * (a broker's initial rebalance delay, 3 s by default, is waited once per group, and a thread joins its groups one
 * after the other), so a member not polled meanwhile outlives its session and is removed before the first tick.
 * 250 ms is far inside the shortest session (1 s, heartbeats at a third of it) and costs one fetch per group. */
#define KEEPALIVE_MS        250

struct options {
	const char *mode;
	const char *broker;
	const char *topic;
	const char *group;
	uint64_t records;
	uint32_t key_bytes;
	uint32_t value_bytes;
	double seconds;
	const char *commit_scope;    /* "all": every partition per commit; "one": one partition per commit */
	int64_t start_offset;        /* replay: -1 from the earliest offset, else from this one */
	uint32_t groups;             /* commit-groups */
	uint32_t interval_ms;        /* commit-groups: each group commits once per interval */
	uint32_t session_timeout_ms; /* commit-groups: each member's session */
};

static double cpu_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int usage(void)
{
	fputs("usage: groups-bench produce --broker B --topic T --records N [--key-bytes K] [--value-bytes V]\n"
	      "       groups-bench replay  --broker B --topic T --group G\n"
	      "                    [--start-offset N --records N]   (from offset N, stop after N records)\n"
	      "       groups-bench commits --broker B --topic T --group G --seconds S --scope all|one\n"
	      "       groups-bench commit-groups --broker B --topic T --group PREFIX --groups N --seconds S\n"
	      "                    [--interval-ms MS]   (N groups PREFIX-0.., one member each, one commit per MS)\n"
	      "                    [--session-timeout-ms MS]   (each member's session, default 30000)\n"
	      "Prints one JSON object: records, bytes (keys and values), seconds, records_per_s, mb_per_s (10^6 B/s),\n"
	      "cpu_s; commits: commits, offsets_per_commit, commits_per_s and the latency percentiles in us.\n",
	      stderr);
	return 2;
}

/* ---- produce ---- */

struct produce_state {
	uint64_t acked;
	uint64_t failed;
	char error[256];
};

static void delivery_cb(void *opaque, const struct sl_delivery *d, void *cb_arg)
{
	struct produce_state *st = cb_arg;

	(void)opaque;
	if (d->status == 0) {
		st->acked++;
	} else {
		if (st->failed++ == 0)
			snprintf(st->error, sizeof(st->error), "%s", d->error);
	}
}

static int bench_produce(const struct options *o)
{
	struct sl_producer_options po;
	struct sl_producer *p;
	struct produce_state st = {0};
	char err[SL_ERROR_BYTES], key[64];
	uint8_t *value = malloc(o->value_bytes + 1);
	int64_t start, end;
	double cpu0;
	int rc;

	if (value == NULL || o->key_bytes < 8 || o->key_bytes >= sizeof(key))
		return -EINVAL;
	for (uint32_t i = 0; i < o->value_bytes; i++)
		value[i] = (uint8_t)('a' + (i * 7) % 26);
	sl_producer_options_init(&po);
	po.broker = o->broker;
	po.client_id = "groups-bench";
	po.topic = o->topic;
	po.acks = SL_ACKS_FSYNC;
	po.codec = SL_BATCH_CODEC_NONE; /* MB/s of the bytes as they are, not of what zstd makes of a pattern */
	po.delivery_cb = delivery_cb;
	po.delivery_cb_arg = &st;
	rc = sl_producer_new(&p, &po, err, sizeof(err));
	if (rc != 0) {
		fprintf(stderr, "groups-bench: producer: %s\n", err);
		free(value);
		return rc;
	}
	cpu0 = cpu_s();
	start = sl_clock_mono_ns();
	for (uint64_t i = 0; i < o->records && rc == 0; i++) {
		struct sl_record r = {0};

		/* Distinct keys, spread over the partitions by the partitioner; the value varies in its first bytes. */
		snprintf(key, sizeof(key), "%0*llu", (int)o->key_bytes, (unsigned long long)i);
		memcpy(value, &i, sizeof(i) < o->value_bytes ? sizeof(i) : o->value_bytes);
		r.key = (const uint8_t *)key;
		r.key_len = (int32_t)o->key_bytes;
		r.value = value;
		r.value_len = (int32_t)o->value_bytes;
		r.version = SL_VERSION_NONE;
		r.timestamp_ms = (int64_t)time(NULL) * 1000;
		rc = sl_producer_send(p, SL_PARTITION_ANY, &r, NULL);
	}
	if (rc == 0)
		rc = sl_producer_flush(p, -1);
	end = sl_clock_mono_ns();
	if (rc != 0 || st.failed > 0)
		fprintf(stderr, "groups-bench: produce: %s\n", st.failed ? st.error : sl_producer_error(p));
	sl_producer_free(p);
	free(value);
	double seconds = (double)(end - start) / 1e9;
	uint64_t bytes = st.acked * (o->key_bytes + o->value_bytes);
	printf("{\"mode\":\"produce\",\"acks\":\"fsync\",\"codec\":\"none\",\"records\":%llu,\"failed\":%llu,"
	       "\"record_bytes\":%u,\"bytes\":%llu,\"seconds\":%.3f,\"records_per_s\":%.0f,\"mb_per_s\":%.1f,"
	       "\"cpu_s\":%.2f}\n",
	       (unsigned long long)st.acked, (unsigned long long)st.failed, o->key_bytes + o->value_bytes,
	       (unsigned long long)bytes, seconds, (double)st.acked / seconds, (double)bytes / seconds / 1e6,
	       cpu_s() - cpu0);
	return rc != 0 ? rc : st.failed ? -EIO : 0;
}

/* ---- replay ---- */

static int bench_replay(const struct options *o)
{
	static struct sl_consumer_record recs[REPLAY_POLL_RECORDS];
	struct sl_consumer_options co;
	struct sl_consumer_stats st;
	struct sl_consumer *c;
	const char *topics[1] = {o->topic};
	uint64_t records = 0, bytes = 0, checksum = 0, polls = 0;
	char err[SL_ERROR_BYTES];
	int64_t start, joined, end;
	double cpu0;
	int rc = 0, n;

	sl_consumer_options_init(&co);
	co.broker = o->broker;
	co.client_id = "groups-bench";
	co.group = o->group;
	co.topics = topics;
	co.topic_count = 1;
	co.start = o->start_offset >= 0 ? SL_FROM_OFFSET : SL_FROM_EARLIEST;
	co.start_offset = o->start_offset;
	co.stop_at_end = true;
	cpu0 = cpu_s();
	start = sl_clock_mono_ns();
	rc = sl_consumer_subscribe(&c, &co, err, sizeof(err));
	if (rc != 0) {
		fprintf(stderr, "groups-bench: subscribe: %s\n", err);
		return rc;
	}
	joined = sl_clock_mono_ns();
	while (!sl_consumer_done(c) && (o->records == 0 || records < o->records)) {
		n = sl_consumer_poll(c, 1000, recs, REPLAY_POLL_RECORDS);
		polls++;
		if (n < 0) {
			rc = n;
			fprintf(stderr, "groups-bench: poll: %s\n", sl_consumer_error(c));
			break;
		}
		for (int i = 0; i < n; i++) {
			const struct sl_record *r = &recs[i].record;

			bytes += (uint64_t)(r->key_len > 0 ? r->key_len : 0) +
			         (uint64_t)(r->value_len > 0 ? r->value_len : 0);
			/* Look at every value, as a consumer would. */
			if (r->value_len > 0)
				checksum += r->value[r->value_len - 1];
		}
		records += (uint64_t)n;
	}
	if (rc == 0 && (rc = sl_consumer_close(c)) != 0)
		fprintf(stderr, "groups-bench: close: %s\n", sl_consumer_error(c));
	end = sl_clock_mono_ns();
	sl_consumer_stats_get(c, &st);
	sl_consumer_free(c);
	double seconds = (double)(end - start) / 1e9;
	printf("{\"mode\":\"replay\",\"group\":\"%s\",\"start_offset\":%lld,\"records\":%llu,\"bytes\":%llu,"
	       "\"seconds\":%.3f,\"start_mono_ns\":%lld,\"end_mono_ns\":%lld,\"join_ms\":%.1f,"
	       "\"records_per_s\":%.0f,\"mb_per_s\":%.1f,\"cpu_s\":%.2f,\"polls\":%llu,\"commits\":%llu,"
	       "\"checksum\":%llu}\n",
	       o->group, (long long)o->start_offset, (unsigned long long)records, (unsigned long long)bytes, seconds,
	       (long long)start, (long long)end, (double)(joined - start) / 1e6, (double)records / seconds,
	       (double)bytes / seconds / 1e6, cpu_s() - cpu0, (unsigned long long)polls, (unsigned long long)st.commits,
	       (unsigned long long)checksum);
	return rc;
}

/* ---- commits ---- */

static int compare_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

static double percentile_us(const int64_t *sorted_ns, uint64_t n, double q)
{
	uint64_t i = (uint64_t)(q * (double)(n - 1) + 0.5);

	return n == 0 ? 0 : (double)sorted_ns[i] / 1e3;
}

static int bench_commits(const struct options *o)
{
	struct sl_consumer_options co;
	struct sl_consumer *c;
	const struct sl_consumer_partition *assigned;
	struct sl_topic_partition_offset *offsets;
	const char *topics[1] = {o->topic};
	int64_t *lat = calloc(COMMIT_SAMPLES_MAX, sizeof(*lat));
	uint64_t commits = 0;
	uint32_t count, per_commit;
	char err[SL_ERROR_BYTES];
	int64_t start, end, deadline;
	double cpu0;
	int rc;

	bool all = strcmp(o->commit_scope, "all") == 0;
	if (lat == NULL)
		return -ENOMEM;
	sl_consumer_options_init(&co);
	co.broker = o->broker;
	co.client_id = "groups-bench";
	co.group = o->group;
	co.topics = topics;
	co.topic_count = 1;
	co.auto_commit = false;
	co.session_timeout_ms = 30000; /* timed commits must not be interrupted by a rebalance */
	rc = sl_consumer_subscribe(&c, &co, err, sizeof(err));
	if (rc != 0) {
		fprintf(stderr, "groups-bench: subscribe: %s\n", err);
		free(lat);
		return rc;
	}
	assigned = sl_consumer_assignment(c, &count);
	offsets = calloc(count + 1, sizeof(*offsets));
	if (offsets == NULL || count == 0) {
		fprintf(stderr, "groups-bench: %u partitions assigned\n", count);
		sl_consumer_free(c);
		free(lat);
		free(offsets);
		return count == 0 ? -ENOENT : -ENOMEM;
	}
	for (uint32_t i = 0; i < count; i++)
		offsets[i] = (struct sl_topic_partition_offset){o->topic, assigned[i].partition, 0};
	per_commit = all ? count : 1;
	cpu0 = cpu_s();
	start = sl_clock_mono_ns();
	deadline = start + (int64_t)(o->seconds * 1e9);
	while (rc == 0 && sl_clock_mono_ns() < deadline && commits < COMMIT_SAMPLES_MAX) {
		/* Every commit moves its offsets, as a consumer's would. */
		int64_t t0 = sl_clock_mono_ns();

		if (all) {
			for (uint32_t i = 0; i < count; i++)
				offsets[i].offset = (int64_t)commits + 1;
			rc = sl_consumer_commit_offsets(c, offsets, count);
		} else {
			struct sl_topic_partition_offset *one = &offsets[commits % count];

			one->offset++;
			rc = sl_consumer_commit_offsets(c, one, 1);
		}
		lat[commits++] = sl_clock_mono_ns() - t0;
	}
	end = sl_clock_mono_ns();
	if (rc != 0)
		fprintf(stderr, "groups-bench: commit: %s\n", sl_consumer_error(c));
	double cpu = cpu_s() - cpu0;
	sl_consumer_close(c);
	sl_consumer_free(c);
	qsort(lat, commits, sizeof(*lat), compare_i64);
	double seconds = (double)(end - start) / 1e9;
	printf("{\"mode\":\"commits\",\"scope\":\"%s\",\"partitions\":%u,\"offsets_per_commit\":%u,\"commits\":%llu,"
	       "\"seconds\":%.3f,\"commits_per_s\":%.1f,\"offsets_per_s\":%.0f,\"latency_us\":{\"p50\":%.0f,"
	       "\"p90\":%.0f,\"p99\":%.0f,\"max\":%.0f},\"cpu_s\":%.2f}\n",
	       o->commit_scope, count, per_commit, (unsigned long long)commits, seconds, (double)commits / seconds,
	       (double)commits * per_commit / seconds, percentile_us(lat, commits, 0.5),
	       percentile_us(lat, commits, 0.9), percentile_us(lat, commits, 0.99),
	       commits ? (double)lat[commits - 1] / 1e3 : 0.0, cpu);
	free(lat);
	free(offsets);
	return rc;
}

/* ---- commit-groups ---- */

/* One thread's share of the groups: it joins them, then at every tick commits each of them once, one after the
 * other (each commit waits for the broker's fsync), and polls each once so that its heartbeats go out. Until the
 * ticks start, every group it has joined is kept alive (KEEPALIVE_MS). */
struct group_thread {
	const struct options *o;
	uint32_t index, threads;
	pthread_t thread;
	struct hist lat;
	uint64_t commits, failed, late_ticks;
	int64_t join_ns;
	char error[SL_ERROR_BYTES];
};

/* The threads count themselves in once their groups are joined (or failed to); the main thread then sets the first
 * tick and lets them go. */
static atomic_uint threads_joined;
static atomic_bool ticks_go;
static int64_t start_tick_ns; /* written before ticks_go is set */

/* Poll the joined groups cs[0..n) when KEEPALIVE_MS passed since *last_ns: their heartbeats go out when due.
 * There is nothing to read (they start at the latest offset). */
static void keep_alive(struct group_thread *t, struct sl_consumer **cs, uint32_t n, int64_t *last_ns)
{
	static __thread struct sl_consumer_record recs[16];
	int64_t now = sl_clock_mono_ns();

	if (now - *last_ns < (int64_t)KEEPALIVE_MS * 1000000)
		return;
	*last_ns = now;
	for (uint32_t k = 0; k < n; k++)
		if (sl_consumer_poll(cs[k], 0, recs, 16) < 0 && t->failed++ == 0)
			snprintf(t->error, sizeof(t->error), "poll: %s", sl_consumer_error(cs[k]));
}

static void *group_thread_main(void *arg)
{
	struct group_thread *t = arg;
	const struct options *o = t->o;
	uint32_t mine = (o->groups - t->index + t->threads - 1) / t->threads, joined = 0;
	struct sl_consumer **cs = calloc(mine ? mine : 1, sizeof(*cs));
	static __thread struct sl_consumer_record recs[16];
	const char *topics[1] = {o->topic};
	char name[SL_GROUP_NAME_BYTES_MAX + 1];
	int rc = cs ? 0 : -ENOMEM;
	int64_t t0 = sl_clock_mono_ns(), alive_ns = t0;

	for (uint32_t k = 0; rc == 0 && k < mine; k++) {
		struct sl_consumer_options co;
		char err[SL_ERROR_BYTES];

		snprintf(name, sizeof(name), "%s-%u", o->group, t->index + k * t->threads);
		sl_consumer_options_init(&co);
		co.broker = o->broker;
		co.client_id = "groups-bench";
		co.group = name;
		co.topics = topics;
		co.topic_count = 1;
		co.start = SL_FROM_LATEST;
		co.auto_commit = false;
		co.session_timeout_ms = o->session_timeout_ms;
		rc = sl_consumer_subscribe(&cs[k], &co, err, sizeof(err));
		if (rc != 0)
			snprintf(t->error, sizeof(t->error), "subscribe %s: %s", name, err);
		else
			joined++;
		keep_alive(t, cs, joined, &alive_ns);
	}
	t->join_ns = sl_clock_mono_ns() - t0;
	atomic_fetch_add(&threads_joined, 1);
	while (!atomic_load(&ticks_go)) {
		struct timespec ts = {.tv_sec = 0, .tv_nsec = 10000000};

		keep_alive(t, cs, joined, &alive_ns);
		nanosleep(&ts, NULL);
	}
	int64_t interval_ns = (int64_t)o->interval_ms * 1000000;
	uint64_t ticks = (uint64_t)(o->seconds * 1e3 / o->interval_ms);
	for (uint64_t tick = 0; rc == 0 && tick < ticks; tick++) {
		int64_t due = start_tick_ns + (int64_t)tick * interval_ns, now;

		while ((now = sl_clock_mono_ns()) < due) {
			struct timespec ts = {.tv_sec = (due - now) / 1000000000, .tv_nsec = (due - now) % 1000000000};
			nanosleep(&ts, NULL);
		}
		if (now - due > interval_ns / 10)
			t->late_ticks++;
		for (uint32_t k = 0; k < mine; k++) {
			int64_t c0 = sl_clock_mono_ns();
			int crc = sl_consumer_commit(cs[k], o->topic, 0, (int64_t)(tick % 1000) + 1);

			if (crc != 0) {
				if (t->failed++ == 0)
					snprintf(t->error, sizeof(t->error), "commit: %s", sl_consumer_error(cs[k]));
				continue;
			}
			hist_add(&t->lat, (uint64_t)(sl_clock_mono_ns() - c0));
			t->commits++;
		}
		/* Heartbeats go out from poll when they are due; there is nothing to read (start latest). */
		for (uint32_t k = 0; k < mine; k++)
			if (sl_consumer_poll(cs[k], 0, recs, 16) < 0 && t->failed++ == 0)
				snprintf(t->error, sizeof(t->error), "poll: %s", sl_consumer_error(cs[k]));
	}
	if (rc != 0) /* a group that could not join: the run is not the one asked for */
		t->failed++;
	for (uint32_t k = 0; cs != NULL && k < mine; k++) {
		if (cs[k] != NULL)
			sl_consumer_close(cs[k]);
		sl_consumer_free(cs[k]);
	}
	free(cs);
	return NULL;
}

static int bench_commit_groups(const struct options *o)
{
	uint32_t threads = o->groups < GROUP_THREADS_MAX ? o->groups : GROUP_THREADS_MAX;
	struct group_thread *ts = calloc(threads, sizeof(*ts));
	struct hist *all = malloc(sizeof(*all));
	pthread_attr_t attr;
	uint64_t commits = 0, failed = 0, late = 0;
	int64_t join_max = 0;
	const char *error = NULL;
	double cpu0 = cpu_s();

	if (ts == NULL || all == NULL)
		return -ENOMEM;
	hist_init(all);
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 256 * 1024);
	for (uint32_t i = 0; i < threads; i++) {
		ts[i] = (struct group_thread){.o = o, .index = i, .threads = threads};
		hist_init(&ts[i].lat);
		if (pthread_create(&ts[i].thread, &attr, group_thread_main, &ts[i]) != 0) {
			fprintf(stderr, "groups-bench: cannot start thread %u\n", i);
			exit(1);
		}
	}
	/* Every thread has joined its groups (they keep them alive meanwhile); the ticks start a little after. */
	while (atomic_load(&threads_joined) < threads) {
		struct timespec ts10 = {.tv_sec = 0, .tv_nsec = 10000000};
		nanosleep(&ts10, NULL);
	}
	start_tick_ns = sl_clock_mono_ns() + 100000000ll;
	atomic_store(&ticks_go, true);
	/* A script measuring the broker during the commits alone starts at this line. */
	fprintf(stderr, "groups-bench: %u groups joined\n", o->groups);
	for (uint32_t i = 0; i < threads; i++) {
		pthread_join(ts[i].thread, NULL);
		commits += ts[i].commits;
		failed += ts[i].failed;
		late += ts[i].late_ticks;
		join_max = ts[i].join_ns > join_max ? ts[i].join_ns : join_max;
		hist_merge(all, &ts[i].lat);
		if (error == NULL && ts[i].error[0] != '\0')
			error = ts[i].error;
	}
	/* The run is its ticks: commits per second is what the groups asked for when none fell behind. */
	double seconds = (double)(uint64_t)(o->seconds * 1e3 / o->interval_ms) * o->interval_ms / 1e3;
	printf("{\"mode\":\"commit-groups\",\"groups\":%u,\"threads\":%u,\"interval_ms\":%u,\"seconds\":%.3f,"
	       "\"join_seconds\":%.3f,\"commits\":%llu,\"failed\":%llu,\"late_ticks\":%llu,\"commits_per_s\":%.1f,"
	       "\"cpu_s\":%.2f,\"latency\":{",
	       o->groups, threads, o->interval_ms, seconds, (double)join_max / 1e9, (unsigned long long)commits,
	       (unsigned long long)failed, (unsigned long long)late, seconds > 0 ? (double)commits / seconds : 0,
	       cpu_s() - cpu0);
	hist_print_json(stdout, all);
	printf("},\"error\":");
	if (error != NULL)
		sl_json_print_string(stdout, error, strlen(error));
	else
		fputs("null", stdout);
	fputs("}\n", stdout);
	free(ts);
	free(all);
	return failed > 0 ? -EIO : 0;
}

static int flag(int argc, char **argv, int *i, const char *name, const char **value)
{
	if (strcmp(argv[*i], name) != 0)
		return 0;
	if (*i + 1 >= argc)
		return -1;
	*value = argv[++*i];
	return 1;
}

int main(int argc, char **argv)
{
	struct options o = {.broker = SL_BROKER_DEFAULT,
	                    .key_bytes = 16,
	                    .value_bytes = 84,
	                    .seconds = 5,
	                    .commit_scope = "all",
	                    .start_offset = -1,
	                    .groups = 1,
	                    .interval_ms = 1000,
	                    .session_timeout_ms = 30000}; /* a slow tick must not expire a member */
	const char *v;
	int rc;

	if (argc < 2)
		return usage();
	o.mode = argv[1];
	for (int i = 2; i < argc; i++) {
		if ((rc = flag(argc, argv, &i, "--broker", &o.broker)) ||
		    (rc = flag(argc, argv, &i, "--topic", &o.topic)) ||
		    (rc = flag(argc, argv, &i, "--group", &o.group)) ||
		    (rc = flag(argc, argv, &i, "--scope", &o.commit_scope))) {
			if (rc < 0)
				return usage();
		} else if ((rc = flag(argc, argv, &i, "--records", &v)) != 0) {
			o.records = strtoull(v, NULL, 10);
		} else if ((rc = flag(argc, argv, &i, "--key-bytes", &v)) != 0) {
			o.key_bytes = (uint32_t)strtoul(v, NULL, 10);
		} else if ((rc = flag(argc, argv, &i, "--value-bytes", &v)) != 0) {
			o.value_bytes = (uint32_t)strtoul(v, NULL, 10);
		} else if ((rc = flag(argc, argv, &i, "--seconds", &v)) != 0) {
			o.seconds = strtod(v, NULL);
		} else if ((rc = flag(argc, argv, &i, "--start-offset", &v)) != 0) {
			o.start_offset = strtoll(v, NULL, 10);
		} else if ((rc = flag(argc, argv, &i, "--groups", &v)) != 0) {
			o.groups = (uint32_t)strtoul(v, NULL, 10);
		} else if ((rc = flag(argc, argv, &i, "--interval-ms", &v)) != 0) {
			o.interval_ms = (uint32_t)strtoul(v, NULL, 10);
		} else if ((rc = flag(argc, argv, &i, "--session-timeout-ms", &v)) != 0) {
			o.session_timeout_ms = (uint32_t)strtoul(v, NULL, 10);
		} else {
			return usage();
		}
		if (rc < 0)
			return usage();
	}
	if (o.topic == NULL)
		return usage();
	if (strcmp(o.mode, "produce") == 0)
		rc = bench_produce(&o);
	else if (strcmp(o.mode, "replay") == 0 && o.group != NULL)
		rc = bench_replay(&o);
	else if (strcmp(o.mode, "commits") == 0 && o.group != NULL)
		rc = bench_commits(&o);
	else if (strcmp(o.mode, "commit-groups") == 0 && o.group != NULL && o.groups >= 1 && o.groups <= GROUPS_MAX &&
	         o.interval_ms >= 10 && o.session_timeout_ms >= 1000)
		rc = bench_commit_groups(&o);
	else
		return usage();
	return rc == 0 ? 0 : 1;
}
