/* What the metrics listener says: the Prometheus text of the broker (names follow Prometheus's conventions: a
 * synclog_ prefix, base units in the name, _total for counters, labels topic, partition, group, origin, kind,
 * state), the standard process_* metrics, and the /healthz and /readyz answers. Every family has its # HELP and
 * # TYPE. Group lag and state come from the last health tick, so a scrape reads no disk.
 *
 * A scrape must not stall the loop: with 10,000 partitions and 1,000 groups the text is ~100,000 lines. So the loop
 * only copies the numbers of the large families (partitions, group partitions, groups) into a snapshot, in one
 * pass without formatting, and renders the small ones; the thread pool formats the snapshot; the loop then sends
 * both parts. bench/scrape.sh measures the scrape and the produce latency meanwhile.
 *
 * Which thread may call: the shard's loop thread, except render_snapshot (any thread: it sees only the snapshot). */
#include <dirent.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "broker/audit.h"
#include "broker/compaction.h"
#include "broker/net/console.h"
#include "broker/net/metrics.h"
#include "broker/security.h"
#include "proto/base/clock.h"
#include "proto/frame.h"
#include "proto/version.h"

/* ---- the text buffer ---- */

static int reserve(struct sl_text *o, size_t more)
{
	if (o->oom)
		return -1;
	if (o->len + more + 1 <= o->cap)
		return 0;
	size_t cap = o->cap ? o->cap : 65536;
	while (cap < o->len + more + 1)
		cap *= 2;
	char *np = realloc(o->p, cap);
	if (np == NULL) {
		o->oom = 1;
		return -1;
	}
	o->p = np;
	o->cap = cap;
	return 0;
}

void sl_text_put(struct sl_text *o, const char *s)
{
	sl_text_putn(o, s, strlen(s));
}

void sl_text_putn(struct sl_text *o, const char *s, size_t n)
{
	if (reserve(o, n) == 0) {
		memcpy(o->p + o->len, s, n);
		o->len += n;
		o->p[o->len] = '\0';
	}
}

static void put_u64(struct sl_text *o, uint64_t v)
{
	char tmp[24];
	int n = 0;
	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v > 0);
	if (reserve(o, (size_t)n) != 0)
		return;
	while (n > 0)
		o->p[o->len++] = tmp[--n];
	o->p[o->len] = '\0';
}

static void put_i64(struct sl_text *o, int64_t v)
{
	if (v < 0) {
		sl_text_put(o, "-");
		put_u64(o, (uint64_t)0 - (uint64_t)v);
	} else {
		put_u64(o, (uint64_t)v);
	}
}

static void put_double(struct sl_text *o, double v)
{
	char tmp[40];
	snprintf(tmp, sizeof(tmp), "%.9g", v);
	sl_text_put(o, tmp);
}

/* "# HELP name help\n# TYPE name type\n" */
static void family(struct sl_text *o, const char *name, const char *type, const char *help)
{
	sl_text_put(o, "# HELP ");
	sl_text_put(o, name);
	sl_text_put(o, " ");
	sl_text_put(o, help);
	sl_text_put(o, "\n# TYPE ");
	sl_text_put(o, name);
	sl_text_put(o, " ");
	sl_text_put(o, type);
	sl_text_put(o, "\n");
}

/* One sample of a family without labels. */
static void sample_u64(struct sl_text *o, const char *name, const char *type, const char *help, uint64_t v)
{
	family(o, name, type, help);
	sl_text_put(o, name);
	sl_text_put(o, " ");
	put_u64(o, v);
	sl_text_put(o, "\n");
}

static void sample_double(struct sl_text *o, const char *name, const char *type, const char *help, double v)
{
	family(o, name, type, help);
	sl_text_put(o, name);
	sl_text_put(o, " ");
	put_double(o, v);
	sl_text_put(o, "\n");
}

/* name{topic="T",partition="P"} (names of topics and groups are [A-Za-z0-9._-]: nothing to escape). */
static void labels_tp(struct sl_text *o, const char *name, const char *topic, uint32_t partition)
{
	sl_text_put(o, name);
	sl_text_put(o, "{topic=\"");
	sl_text_put(o, topic);
	sl_text_put(o, "\",partition=\"");
	put_u64(o, partition);
	sl_text_put(o, "\"} ");
}

static void labels_gtp(struct sl_text *o, const char *name, const char *group, const char *topic, uint32_t partition)
{
	sl_text_put(o, name);
	sl_text_put(o, "{group=\"");
	sl_text_put(o, group);
	sl_text_put(o, "\",topic=\"");
	sl_text_put(o, topic);
	sl_text_put(o, "\",partition=\"");
	put_u64(o, partition);
	sl_text_put(o, "\"");
}

/* The buckets, sum and count of h with labels (may be "": none). */
static void histogram(struct sl_text *o, const char *name, const char *labels, const struct sl_histogram *h)
{
	uint64_t cumulative = 0;
	char le[32];
	for (uint32_t i = 0; i <= SL_HISTOGRAM_BUCKETS; i++) {
		cumulative += h->counts[i];
		if (i < SL_HISTOGRAM_BUCKETS)
			snprintf(le, sizeof(le), "%g", (double)sl_histogram_bounds_ns[i] / 1e9);
		else
			snprintf(le, sizeof(le), "+Inf");
		sl_text_put(o, name);
		sl_text_put(o, "_bucket{");
		sl_text_put(o, labels);
		sl_text_put(o, labels[0] ? ",le=\"" : "le=\"");
		sl_text_put(o, le);
		sl_text_put(o, "\"} ");
		put_u64(o, cumulative);
		sl_text_put(o, "\n");
	}
	const char *open = labels[0] ? "{" : "", *close = labels[0] ? "} " : " ";
	sl_text_put(o, name);
	sl_text_put(o, "_sum");
	sl_text_put(o, open);
	sl_text_put(o, labels);
	sl_text_put(o, close);
	put_double(o, (double)h->sum_ns / 1e9);
	sl_text_put(o, "\n");
	sl_text_put(o, name);
	sl_text_put(o, "_count");
	sl_text_put(o, open);
	sl_text_put(o, labels);
	sl_text_put(o, close);
	put_u64(o, h->count);
	sl_text_put(o, "\n");
}

/* ---- the process ---- */

static void render_process(struct sl_server *srv, struct sl_text *o)
{
	long ticks = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);
	unsigned long utime = 0, stime = 0, vsize = 0;
	long rss = 0;
	char buf[1024];
	FILE *f = fopen("/proc/self/stat", "r");
	if (f != NULL) {
		size_t n = fread(buf, 1, sizeof(buf) - 1, f);
		buf[n] = '\0';
		fclose(f);
		/* The command name (field 2) may hold spaces: fields are counted after its closing parenthesis. */
		const char *p = strrchr(buf, ')');
		if (p != NULL)
			sscanf(p + 2,
			       "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu %*d %*d %*d %*d %*d %*d %*u %lu "
			       "%ld",
			       &utime, &stime, &vsize, &rss);
	}
	struct rlimit rl = {0, 0};
	getrlimit(RLIMIT_NOFILE, &rl);
	sample_double(o, "process_cpu_seconds_total", "counter", "User and system CPU time spent in seconds.",
	              ticks > 0 ? (double)(utime + stime) / (double)ticks : 0);
	sample_u64(o, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.",
	           (uint64_t)rss * (uint64_t)(page > 0 ? page : 4096));
	sample_u64(o, "process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.", vsize);
	sample_u64(o, "process_max_fds", "gauge", "Maximum number of open file descriptors.",
	           rl.rlim_cur == RLIM_INFINITY ? UINT64_MAX : (uint64_t)rl.rlim_cur);
	sample_double(o, "process_start_time_seconds", "gauge",
	              "Start time of the process since unix epoch in seconds.", (double)srv->started_ms / 1000.0);
}

/* ---- the broker ---- */

static void render_requests(struct sl_server *srv, struct sl_text *o)
{
	const struct sl_server_stats *s = &srv->stats;
	const ProtobufCMessageDescriptor *d = &synclog__request__descriptor;
	char labels[96];
	family(o, "synclog_requests_total", "counter", "Requests answered, by kind.");
	for (unsigned k = 0; k < SL_REQUEST_KINDS; k++) {
		if (s->requests_by_kind[k] == 0)
			continue;
		const ProtobufCFieldDescriptor *f = k ? protobuf_c_message_descriptor_get_field(d, k) : NULL;
		snprintf(labels, sizeof(labels), "kind=\"%s\"", f ? f->name : "invalid");
		sl_text_put(o, "synclog_requests_total{");
		sl_text_put(o, labels);
		sl_text_put(o, "} ");
		put_u64(o, s->requests_by_kind[k]);
		sl_text_put(o, "\n");
	}
	family(o, "synclog_request_errors_total", "counter", "Requests answered with an error code, by kind.");
	for (unsigned k = 0; k < SL_REQUEST_KINDS; k++) {
		if (s->requests_by_kind[k] == 0)
			continue;
		const ProtobufCFieldDescriptor *f = k ? protobuf_c_message_descriptor_get_field(d, k) : NULL;
		snprintf(labels, sizeof(labels), "kind=\"%s\"", f ? f->name : "invalid");
		sl_text_put(o, "synclog_request_errors_total{");
		sl_text_put(o, labels);
		sl_text_put(o, "} ");
		put_u64(o, s->request_errors_by_kind[k]);
		sl_text_put(o, "\n");
	}
	family(o, "synclog_request_duration_seconds", "histogram",
	       "Time from decoding a request to handing its answer to the connection, by kind.");
	for (unsigned k = 0; k < SL_REQUEST_KINDS; k++) {
		if (s->requests_by_kind[k] == 0)
			continue;
		const ProtobufCFieldDescriptor *f = k ? protobuf_c_message_descriptor_get_field(d, k) : NULL;
		snprintf(labels, sizeof(labels), "kind=\"%s\"", f ? f->name : "invalid");
		histogram(o, "synclog_request_duration_seconds", labels, &s->request_latency[k]);
	}
	family(o, "synclog_fsync_duration_seconds", "histogram",
	       "Group commits of partition logs: from preparing their fdatasyncs to their completion.");
	histogram(o, "synclog_fsync_duration_seconds", "", &s->fsync_latency);
}

static const char *const origins[3] = {"live", "backfill", "repair"};

static void render_topics(struct sl_server *srv, struct sl_text *o)
{
	family(o, "synclog_produce_records_total", "counter", "Records appended, by topic and origin.");
	for (struct sl_topic *t = srv->topics.head; t; t = t->next)
		for (int k = 0; k < 3; k++) {
			sl_text_put(o, "synclog_produce_records_total{topic=\"");
			sl_text_put(o, t->cfg.name);
			sl_text_put(o, "\",origin=\"");
			sl_text_put(o, origins[k]);
			sl_text_put(o, "\"} ");
			put_u64(o, t->counters.produce_records[k]);
			sl_text_put(o, "\n");
		}
	family(o, "synclog_produce_bytes_total", "counter",
	       "Batch bytes appended, by topic and origin (a batch's bytes shared among origins by record count).");
	for (struct sl_topic *t = srv->topics.head; t; t = t->next)
		for (int k = 0; k < 3; k++) {
			sl_text_put(o, "synclog_produce_bytes_total{topic=\"");
			sl_text_put(o, t->cfg.name);
			sl_text_put(o, "\",origin=\"");
			sl_text_put(o, origins[k]);
			sl_text_put(o, "\"} ");
			put_u64(o, t->counters.produce_bytes[k]);
			sl_text_put(o, "\n");
		}
	family(o, "synclog_fetch_records_total", "counter",
	       "Records returned by fetches, by topic (whole batches, so a fetch from inside a batch counts all of "
	       "it; batches are not decoded to tell origins apart).");
	for (struct sl_topic *t = srv->topics.head; t; t = t->next) {
		sl_text_put(o, "synclog_fetch_records_total{topic=\"");
		sl_text_put(o, t->cfg.name);
		sl_text_put(o, "\"} ");
		put_u64(o, t->counters.fetch_records);
		sl_text_put(o, "\n");
	}
	family(o, "synclog_fetch_bytes_total", "counter", "Batch bytes returned by fetches, by topic.");
	for (struct sl_topic *t = srv->topics.head; t; t = t->next) {
		sl_text_put(o, "synclog_fetch_bytes_total{topic=\"");
		sl_text_put(o, t->cfg.name);
		sl_text_put(o, "\"} ");
		put_u64(o, t->counters.fetch_bytes);
		sl_text_put(o, "\n");
	}
	size_t dlq_suffix = strlen(".dlq");
	family(o, "synclog_dlq_records", "gauge", "Records stored in a dead-letter topic (TOPIC.dlq), by topic.");
	for (struct sl_topic *t = srv->topics.head; t; t = t->next) {
		size_t n = strlen(t->cfg.name);
		if (n <= dlq_suffix || strcmp(t->cfg.name + n - dlq_suffix, ".dlq") != 0)
			continue;
		int64_t records = 0;
		for (uint32_t i = 0; i < t->cfg.partitions; i++)
			if (t->parts[i].log != NULL)
				records += sl_log_next_offset(t->parts[i].log) - sl_log_start_offset(t->parts[i].log);
		sl_text_put(o, "synclog_dlq_records{topic=\"");
		sl_text_put(o, t->cfg.name);
		sl_text_put(o, "\"} ");
		put_i64(o, records);
		sl_text_put(o, "\n");
	}
}

/* ---- the snapshot of the large families ---- */

struct snap_part {
	size_t topic; /* offset of the name in names */
	uint32_t partition;
	uint32_t segments;
	int available;
	int64_t start, next;
	uint64_t bytes;
};

struct snap_gpart {
	size_t group, topic; /* offsets of the names */
	uint32_t partition;
	int state;
	int64_t lag, lag_ms, offset, lost;
};

struct snap_group {
	size_t name;
	uint32_t members;
	struct sl_applier_report applier; /* target unused */
};

struct sl_metrics_snapshot {
	struct sl_text names; /* NUL-terminated names back to back */
	struct snap_part *parts;
	size_t part_count;
	struct snap_gpart *gparts;
	size_t gpart_count;
	struct snap_group *groups;
	size_t group_count;
};

static size_t name_add(struct sl_text *names, const char *s)
{
	size_t at = names->len;
	sl_text_put(names, s);
	if (reserve(names, 1) == 0)
		names->p[names->len++] = '\0';
	return at;
}

void sl_metrics_snapshot_free(struct sl_metrics_snapshot *s)
{
	if (s == NULL)
		return;
	free(s->names.p);
	free(s->parts);
	free(s->gparts);
	free(s->groups);
	free(s);
}

struct sl_metrics_snapshot *sl_metrics_snapshot_take(struct sl_server *srv, uint64_t *bytes_total)
{
	struct sl_metrics_snapshot *s = calloc(1, sizeof(*s));
	struct sl_groups *g = &srv->groups;
	size_t parts = 0, gparts = 0;

	if (s == NULL)
		return NULL;
	for (struct sl_topic *t = srv->topics.head; t; t = t->next)
		parts += t->cfg.partitions;
	for (uint32_t k = 0; k < g->group_count; k++)
		gparts += g->sorted[k]->commit_count;
	s->parts = calloc(parts + 1, sizeof(*s->parts));
	s->gparts = calloc(gparts + 1, sizeof(*s->gparts));
	s->groups = calloc(g->group_count + 1, sizeof(*s->groups));
	if (s->parts == NULL || s->gparts == NULL || s->groups == NULL) {
		sl_metrics_snapshot_free(s);
		return NULL;
	}
	for (struct sl_topic *t = srv->topics.head; t; t = t->next) {
		size_t name = name_add(&s->names, t->cfg.name);
		for (uint32_t i = 0; i < t->cfg.partitions; i++) {
			struct snap_part *p = &s->parts[s->part_count++];
			struct sl_log *log = t->parts[i].log;
			p->topic = name;
			p->partition = i;
			p->available = log != NULL;
			if (log == NULL)
				continue;
			struct sl_log_stats st;
			sl_log_get_stats(log, &st);
			p->start = st.start_offset;
			p->next = st.next_offset;
			p->bytes = st.bytes;
			p->segments = st.segment_count;
			*bytes_total += st.bytes;
		}
	}
	for (uint32_t k = 0; k < g->group_count; k++) {
		struct sl_group *grp = g->sorted[k];
		struct snap_group *sg = &s->groups[s->group_count++];
		sg->name = name_add(&s->names, grp->name);
		sg->members = grp->member_count;
		sg->applier = grp->applier;
		size_t topic = 0;
		for (uint32_t i = 0; i < grp->commit_count; i++) {
			const struct sl_commit *c = &grp->commits[i];
			if (c->lag < 0)
				continue; /* topic gone or partition unavailable */
			if (i == 0 || strcmp(c->topic, grp->commits[i - 1].topic) != 0)
				topic = name_add(&s->names, c->topic);
			s->gparts[s->gpart_count++] =
			        (struct snap_gpart){sg->name, topic,     c->partition, (int)c->state,
			                            c->lag,   c->lag_ms, c->offset,    c->records_lost};
		}
	}
	return s->names.oom ? (sl_metrics_snapshot_free(s), NULL) : s;
}

static void render_snap_parts(const struct sl_metrics_snapshot *s, struct sl_text *o)
{
	static const struct {
		const char *name, *type, *help;
	} fams[] = {
	        {"synclog_partition_available", "gauge",
	         "1 when the partition's log is open, 0 when it failed to open."},
	        {"synclog_log_end_offset", "gauge", "The next offset to be written (the log end), by partition."},
	        {"synclog_log_start_offset", "gauge", "The first offset still stored, by partition."},
	        {"synclog_log_size_bytes", "gauge", "Bytes of the partition's segments."},
	        {"synclog_log_segments", "gauge", "Segments of the partition's log."},
	};
	for (size_t f = 0; f < sizeof(fams) / sizeof(fams[0]); f++) {
		family(o, fams[f].name, fams[f].type, fams[f].help);
		for (size_t i = 0; i < s->part_count; i++) {
			const struct snap_part *p = &s->parts[i];
			if (f > 0 && !p->available)
				continue;
			labels_tp(o, fams[f].name, s->names.p + p->topic, p->partition);
			switch (f) {
			case 0:
				put_u64(o, (uint64_t)p->available);
				break;
			case 1:
				put_i64(o, p->next);
				break;
			case 2:
				put_i64(o, p->start);
				break;
			case 3:
				put_u64(o, p->bytes);
				break;
			default:
				put_u64(o, p->segments);
				break;
			}
			sl_text_put(o, "\n");
		}
	}
}

/* Seconds with millisecond precision, without printf: lag_seconds of ten thousand partitions. */
static void put_ms_as_seconds(struct sl_text *o, int64_t ms)
{
	char frac[5] = {'.', 0, 0, 0, 0};
	if (ms < 0)
		ms = 0;
	put_u64(o, (uint64_t)(ms / 1000));
	frac[1] = (char)('0' + ms / 100 % 10);
	frac[2] = (char)('0' + ms / 10 % 10);
	frac[3] = (char)('0' + ms % 10);
	sl_text_put(o, frac);
}

static void render_snap_groups(const struct sl_metrics_snapshot *s, struct sl_text *o)
{
	const char *names = s->names.p;
	family(o, "synclog_group_members", "gauge", "Live members of a group.");
	for (size_t k = 0; k < s->group_count; k++) {
		sl_text_put(o, "synclog_group_members{group=\"");
		sl_text_put(o, names + s->groups[k].name);
		sl_text_put(o, "\"} ");
		put_u64(o, s->groups[k].members);
		sl_text_put(o, "\n");
	}
	static const char *const fams[][3] = {
	        {"synclog_group_lag_records", "gauge",
	         "Records not yet consumed by the group (as of the last health tick)."},
	        {"synclog_group_lag_seconds", "gauge",
	         "Age of the oldest record not yet consumed by the group; 0 when caught up."},
	        {"synclog_group_committed_offset", "gauge", "The group's committed offset (-1: nothing committed)."},
	        {"synclog_group_state", "gauge",
	         "Health of a group partition: one series per state (ok, idle, lagging, stalled, stopped, lost), 1 for "
	         "the current one."},
	};
	for (size_t f = 0; f < sizeof(fams) / sizeof(fams[0]); f++) {
		family(o, fams[f][0], fams[f][1], fams[f][2]);
		for (size_t i = 0; i < s->gpart_count; i++) {
			const struct snap_gpart *c = &s->gparts[i];
			if (f == 3) {
				for (int st = 0; st < SL_HEALTH_COUNT; st++) {
					labels_gtp(o, fams[f][0], names + c->group, names + c->topic, c->partition);
					sl_text_put(o, ",state=\"");
					sl_text_put(o, sl_health_name((enum sl_health)st));
					sl_text_put(o, c->state == st ? "\"} 1\n" : "\"} 0\n");
				}
				continue;
			}
			labels_gtp(o, fams[f][0], names + c->group, names + c->topic, c->partition);
			sl_text_put(o, "} ");
			if (f == 0)
				put_i64(o, c->lag);
			else if (f == 1)
				put_ms_as_seconds(o, c->lag_ms);
			else
				put_i64(o, c->offset);
			sl_text_put(o, "\n");
		}
	}
	family(o, "synclog_group_records_lost", "gauge",
	       "Records removed by retention before the group consumed them (only partitions in state lost).");
	for (size_t i = 0; i < s->gpart_count; i++) {
		const struct snap_gpart *c = &s->gparts[i];
		if (c->lost <= 0)
			continue;
		labels_gtp(o, "synclog_group_records_lost", names + c->group, names + c->topic, c->partition);
		sl_text_put(o, "} ");
		put_i64(o, c->lost);
		sl_text_put(o, "\n");
	}
	family(o, "synclog_applier_records_total", "counter",
	       "Records an applier handled, by group and outcome, as its target keeps them (reported with its "
	       "commits).");
	for (size_t k = 0; k < s->group_count; k++) {
		const struct sl_applier_report *a = &s->groups[k].applier;
		if (a->reported_ms == 0)
			continue;
		const uint64_t v[5] = {a->applied, a->stale, a->duplicate, a->deleted, a->dead_lettered};
		static const char *const outcome[5] = {"applied", "stale", "duplicate", "deleted", "dead_lettered"};
		for (int i = 0; i < 5; i++) {
			sl_text_put(o, "synclog_applier_records_total{group=\"");
			sl_text_put(o, names + s->groups[k].name);
			sl_text_put(o, "\",outcome=\"");
			sl_text_put(o, outcome[i]);
			sl_text_put(o, "\"} ");
			put_u64(o, v[i]);
			sl_text_put(o, "\n");
		}
	}
}

/* Open descriptors: a walk of /proc/self/fd, tens of thousands of entries on a big broker, so it is made here,
 * off the loop. */
static void render_fds(struct sl_text *o)
{
	uint64_t n = 0;
	DIR *d = opendir("/proc/self/fd");
	if (d != NULL) {
		while (readdir(d) != NULL)
			n++;
		closedir(d);
	}
	sample_u64(o, "process_open_fds", "gauge", "Number of open file descriptors.",
	           n >= 3 ? n - 3 : 0); /* ".", ".." and the directory's own descriptor */
}

void sl_metrics_snapshot_render(const struct sl_metrics_snapshot *s, struct sl_text *o)
{
	render_fds(o);
	if (s == NULL)
		return;
	render_snap_parts(s, o);
	render_snap_groups(s, o);
}

static void render_groups_small(struct sl_server *srv, struct sl_text *o)
{
	struct sl_groups *g = &srv->groups;
	sample_u64(o, "synclog_groups", "gauge", "Consumer groups held by the broker.", g->group_count);
	sample_u64(o, "synclog_groups_max", "gauge", "Groups at most (--groups-max).", g->settings.groups_max);
	uint64_t log_bytes = 0;
	if (g->log != NULL) {
		struct sl_log_stats st;
		sl_log_get_stats(g->log, &st);
		log_bytes = st.bytes;
	}
	sample_u64(o, "synclog_groups_offset_log_bytes", "gauge", "Bytes of the group offset log.", log_bytes);
	sample_u64(o, "synclog_groups_compactions_total", "counter",
	           "Online compactions of the group offset log since start.", g->compactions);
}

static void render_runs(struct sl_server *srv, struct sl_text *o)
{
	static const char *const fams[][2] = {
	        {"synclog_run_last_timestamp_seconds",
	         "When the last backfill, reconcile or contract check run of a topic finished."},
	        {"synclog_run_last_success", "1 when the last run of that kind on the topic succeeded."},
	        {"synclog_run_last_rows",
	         "Rows the last run handled (backfill: produced; reconcile: compared; contract: clauses checked)."},
	        {"synclog_reconcile_last_differences", "Keys that differed in the last reconcile run."},
	        {"synclog_reconcile_last_diff_ratio", "Differences over compared keys in the last reconcile run."},
	        {"synclog_reconcile_last_repaired",
	         "Keys the last reconcile run repaired through the log (reconcile --repair; 0 without)."},
	};
	for (size_t f = 0; f < sizeof(fams) / sizeof(fams[0]); f++) {
		family(o, fams[f][0], "gauge", fams[f][1]);
		for (uint32_t i = 0; i < srv->run_count; i++) {
			const struct sl_run *r = &srv->runs[i];
			if (f >= 3 && strcmp(r->kind, "reconcile") != 0)
				continue;
			sl_text_put(o, fams[f][0]);
			if (f < 3) {
				sl_text_put(o, "{kind=\"");
				sl_text_put(o, r->kind);
				sl_text_put(o, "\",topic=\"");
			} else {
				sl_text_put(o, "{topic=\"");
			}
			sl_text_put(o, r->topic);
			sl_text_put(o, "\"} ");
			switch (f) {
			case 0:
				put_double(o, (double)r->finished_ms / 1000.0);
				break;
			case 1:
				put_u64(o, r->ok != 0);
				break;
			case 2:
				put_u64(o, r->rows);
				break;
			case 3:
				put_u64(o, r->differences);
				break;
			case 4:
				put_double(o, r->diff_ratio);
				break;
			default:
				put_u64(o, r->repaired);
				break;
			}
			sl_text_put(o, "\n");
		}
	}
}

/* The cleaner of compacted topics (broker/compaction.h): totals since start, and per partition of compacted
 * topics (few, so rendered here rather than snapshotted). */
static void render_cleaner(struct sl_server *srv, struct sl_text *o)
{
	const struct sl_compaction_totals *t = sl_compaction_totals(srv);
	sample_u64(o, "synclog_cleaner_runs_total", "counter", "Cleans of compacted partitions since start.", t->runs);
	sample_u64(o, "synclog_cleaner_failures_total", "counter", "Cleans that failed since start.", t->failures);
	sample_u64(o, "synclog_cleaner_bytes_read_total", "counter", "Bytes the cleaner read.", t->bytes_read);
	sample_u64(o, "synclog_cleaner_bytes_written_total", "counter", "Bytes the cleaner wrote.", t->bytes_written);
	sample_u64(o, "synclog_cleaner_records_removed_total", "counter",
	           "Records the cleaner removed (superseded by a later record of their key).", t->records_removed);
	sample_u64(o, "synclog_cleaner_tombstones_removed_total", "counter",
	           "Tombstones the cleaner removed once past delete.retention.ms and every group.",
	           t->tombstones_removed);
	sample_double(o, "synclog_cleaner_last_run_duration_seconds", "gauge", "How long the last clean took.",
	              (double)t->last_duration_ms / 1000.0);
	family(o, "synclog_partition_dirty_ratio", "gauge",
	       "Of a compacted partition's sealed bytes, the share not cleaned yet.");
	for (struct sl_topic *topic = srv->topics.head; topic; topic = topic->next)
		for (uint32_t i = 0; topic->cfg.compact && i < topic->cfg.partitions; i++) {
			if (topic->parts[i].log == NULL)
				continue;
			labels_tp(o, "synclog_partition_dirty_ratio", topic->cfg.name, i);
			put_double(o, sl_compaction_dirty_ratio(&topic->parts[i]));
			sl_text_put(o, "\n");
		}
	family(o, "synclog_partition_tombstones_kept", "gauge",
	       "Tombstones the last clean of a compacted partition kept (too young, or a group is behind them).");
	for (struct sl_topic *topic = srv->topics.head; topic; topic = topic->next)
		for (uint32_t i = 0; topic->cfg.compact && i < topic->cfg.partitions; i++) {
			const struct sl_partition *p = &topic->parts[i];
			if (p->log == NULL)
				continue;
			labels_tp(o, "synclog_partition_tombstones_kept", topic->cfg.name, i);
			put_u64(o, p->clean ? p->clean->last.tombstones_kept : 0);
			sl_text_put(o, "\n");
		}
}

/* Memory, connection and descriptor limits (broker/limits.h) and the partition file cache. */
static void render_limits(struct sl_server *srv, struct sl_text *o)
{
	const struct sl_limits *l = &srv->limits;
	const struct sl_files *f = &srv->files;
	static const char *const fams[][3] = {
	        {"synclog_memory_bytes", "gauge", "Bytes held for clients now, all connections together."},
	        {"synclog_memory_max_bytes", "gauge", "The memory budget for clients (--memory-max)."},
	        {"synclog_memory_peak_bytes", "gauge", "The most bytes held for clients at once since start."},
	        {"synclog_connections_waiting_memory", "gauge", "Connections waiting for the memory budget now."},
	        {"synclog_memory_waits_total", "counter", "Times a connection began waiting for the memory budget."},
	        {"synclog_connections_evicted_total", "counter",
	         "Idle connections closed to make room for a new one at the connection limit."},
	        {"synclog_connections_timed_out_total", "counter",
	         "Connections closed by the handshake or idle timeout."},
	        {"synclog_metrics_connections_refused_total", "counter",
	         "Metrics connections closed at accept because too many were open."},
	        {"synclog_metrics_connections_timed_out_total", "counter",
	         "Metrics connections not answered and written within their timeout."},
	        {"synclog_descriptors_max", "gauge", "The process's descriptor limit after raising it."},
	        {"synclog_partition_files_open", "gauge", "Partition files open in the descriptor cache."},
	        {"synclog_partition_files_max", "gauge", "Partition files the descriptor cache may keep open."},
	        {"synclog_partition_files_closed_total", "counter",
	         "Partition files the descriptor cache closed to make room."},
	        {"synclog_partition_files_over_budget_total", "counter",
	         "Times the descriptor cache found every entry busy and went over its budget."},
	};
	const uint64_t v[] = {l->memory_used,
	                      l->memory_max,
	                      l->memory_used_peak,
	                      l->memory_waiting,
	                      l->memory_waits,
	                      l->connections_evicted,
	                      l->connections_timed_out,
	                      l->metrics_refused,
	                      l->metrics_timed_out,
	                      l->nofile,
	                      f->fds_open,
	                      f->fds_max,
	                      f->closed_count,
	                      f->over_budget_count};
	_Static_assert(sizeof(fams) / sizeof(fams[0]) == sizeof(v) / sizeof(v[0]), "one value per family");
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++)
		sample_u64(o, fams[i][0], fams[i][1], fams[i][2], v[i]);
}

/* Authentication, authorisation, quotas and the audit log (broker/security.h, broker/audit.h). */
static void render_security(struct sl_server *srv, struct sl_text *o)
{
	const struct sl_security *sec = srv->security;
	if (sec == NULL)
		return;
	sample_u64(o, "synclog_auth_successes_total", "counter", "Authentications that succeeded.",
	           sec->stats.auth_succeeded);
	sample_u64(o, "synclog_auth_failures_total", "counter", "Authentications that failed.", sec->stats.auth_failed);
	sample_u64(o, "synclog_requests_denied_total", "counter", "Requests refused by an ACL.", sec->stats.denied);
	sample_u64(o, "synclog_connections_rate_limited_total", "counter",
	           "Connections closed at accept by --connection-rate-max.", sec->stats.connections_rate_limited);
	sample_u64(o, "synclog_connections_principal_limited_total", "counter",
	           "Connections refused by --principal-connections-max.", sec->stats.connections_principal_limited);
	sample_u64(o, "synclog_quota_throttle_ms_total", "counter", "Milliseconds clients were slowed down by quotas.",
	           sec->stats.throttle_ms);
	sample_u64(o, "synclog_audit_dropped_total", "counter", "Audit lines dropped because the writer fell behind.",
	           sec->audit.dropped);
	sample_u64(o, "synclog_audit_write_errors_total", "counter", "Audit log writes that failed.",
	           sec->audit.write_errors);
	family(o, "synclog_quota_throttled_total", "counter", "Requests slowed down by a quota, by kind.");
	sl_text_put(o, "synclog_quota_throttled_total{kind=\"produce\"} ");
	put_u64(o, sec->stats.throttled_produce);
	sl_text_put(o, "\nsynclog_quota_throttled_total{kind=\"fetch\"} ");
	put_u64(o, sec->stats.throttled_fetch);
	sl_text_put(o, "\n");
	family(o, "synclog_audit_events_total", "counter",
	       "Administrative actions and failed authentications, by action and result.");
	for (int a = 0; a < SL_AUDIT_ACTION_COUNT; a++) {
		for (int r = 0; r < SL_AUDIT_RESULT_COUNT; r++) {
			sl_text_put(o, "synclog_audit_events_total{action=\"");
			sl_text_put(o, sl_audit_action_name((enum sl_audit_action)a));
			sl_text_put(o, "\",result=\"");
			sl_text_put(o, sl_audit_result_name((enum sl_audit_result)r));
			sl_text_put(o, "\"} ");
			put_u64(o, sec->audit.events[a][r]);
			sl_text_put(o, "\n");
		}
	}
}

struct sl_metrics_snapshot *sl_metrics_render(struct sl_server *srv, struct sl_text *o)
{
	int64_t t0 = sl_clock_mono_ns();
	const struct sl_server_stats *s = &srv->stats;
	family(o, "synclog_build_info", "gauge", "The broker's version (value 1).");
	sl_text_put(o, "synclog_build_info{version=\"" SL_VERSION "\"} 1\n");
	sample_u64(o, "synclog_ready", "gauge", "1 once recovery finished and the listener accepts (see /readyz).",
	           (uint64_t)srv->ready);
	render_process(srv, o);
	if (!srv->ready)
		return NULL; /* recovery is still running on its worker thread: topics and groups are not ours yet */
	sample_u64(o, "synclog_connections", "gauge", "Open client connections.", s->connections_open);
	sample_u64(o, "synclog_connections_accepted_total", "counter", "Client connections accepted.",
	           s->connections_accepted);
	sample_u64(o, "synclog_connections_refused_total", "counter", "Client connections refused at the limit.",
	           s->connections_refused);
	sample_u64(o, "synclog_bad_frames_total", "counter", "Frames that could not be decoded.", s->bad_frames);
	sample_u64(o, "synclog_produce_errors_total", "counter", "Produce batches refused or failed.",
	           s->produce_errors);
	sample_u64(o, "synclog_fetch_sendfile_answers_total", "counter",
	           "Fetch answers sent from segment files to the socket by the kernel, without a copy.",
	           s->fetch_sendfile_answers);
	sample_u64(o, "synclog_fetch_sendfile_bytes_total", "counter",
	           "Bytes of fetch answers sent from segment files to the socket by the kernel.",
	           s->fetch_sendfile_bytes);
	sample_u64(o, "synclog_fetch_sendfile_failed_total", "counter",
	           "Fetch answers sent from segment files that an error or a closed connection cut.",
	           s->fetch_sendfile_failed);
	sample_u64(o, "synclog_fetch_sendfile_disk_splices_total", "counter",
	           "Moves of fetch answer bytes from segment files whose pages were not in memory, done by io_uring's "
	           "workers off the loop.",
	           s->fetch_sendfile_disk_splices);
	render_limits(srv, o);
	render_security(srv, o);
	render_requests(srv, o);
	render_topics(srv, o);
	render_groups_small(srv, o);
	render_runs(srv, o);
	render_cleaner(srv, o);
	uint64_t bytes = 0;
	struct sl_metrics_snapshot *snap = sl_metrics_snapshot_take(srv, &bytes);
	struct statvfs vfs;
	if (statvfs(srv->cfg.data_dir, &vfs) == 0) {
		sample_u64(o, "synclog_disk_free_bytes", "gauge",
		           "Bytes available to the broker on the file system of its data directory.",
		           (uint64_t)vfs.f_bavail * vfs.f_frsize);
		sample_u64(o, "synclog_disk_total_bytes", "gauge", "Size of the file system of the data directory.",
		           (uint64_t)vfs.f_blocks * vfs.f_frsize);
	}
	sample_u64(o, "synclog_data_bytes", "gauge", "Bytes of every partition's segments.", bytes);
	sample_u64(o, "synclog_scrapes_total", "counter", "Scrapes of /metrics answered.", s->scrapes);
	sample_double(o, "synclog_scrape_loop_seconds", "gauge",
	              "How long the previous scrape held the loop (small families and the snapshot).",
	              (double)s->last_scrape_ns / 1e9);
	sample_double(o, "synclog_scrape_duration_seconds", "gauge",
	              "How long the previous scrape took from request to answer, thread pool included.",
	              (double)s->last_scrape_total_ns / 1e9);
	struct sl_console_stats cs;
	sl_console_stats_get(srv, &cs);
	sample_u64(o, "synclog_console_requests_total", "counter", "Requests of the console's API (/api/v1/) answered.",
	           cs.requests);
	sample_double(o, "synclog_console_request_loop_seconds", "gauge",
	              "How long the last console API request held the loop (its handlers and packing their answers).",
	              (double)cs.loop_ns_last / 1e9);
	sample_double(o, "synclog_console_request_loop_max_seconds", "gauge",
	              "The longest any console API request held the loop since start.", (double)cs.loop_ns_max / 1e9);
	srv->stats.scrapes++;
	srv->stats.last_scrape_ns = sl_clock_mono_ns() - t0;
	return snap;
}

/* A /metrics answer being rendered on the thread pool. */
struct render_job {
	uv_work_t work;
	struct sl_server *srv;
	struct sl_metrics_snapshot *snap;
	struct sl_text body;  /* the small families, then the snapshot's */
	struct sl_text large; /* rendered by the worker */
	int64_t start_ns;
	sl_metrics_answer_cb cb;
	void *arg;
};

static void render_work_cb(uv_work_t *w)
{
	struct render_job *j = w->data;
	sl_metrics_snapshot_render(j->snap, &j->large);
}

static void render_after_cb(uv_work_t *w, int status)
{
	struct render_job *j = w->data;
	(void)status;
	sl_metrics_snapshot_free(j->snap);
	j->srv->stats.last_scrape_total_ns = sl_clock_mono_ns() - j->start_ns;
	if (j->body.oom || j->large.oom) {
		free(j->large.p);
		j->large = (struct sl_text){0};
		j->cb(j->arg, 500, &j->body, NULL);
	} else {
		j->cb(j->arg, 200, &j->body, &j->large); /* two parts, sent as they are: nothing is copied */
	}
	free(j);
}

void sl_metrics_route(struct sl_server *srv, const char *request, sl_metrics_answer_cb cb, void *arg)
{
	struct sl_text body = {0};
	if (strncmp(request, "GET /metrics ", 13) == 0 || strncmp(request, "GET /metrics?", 13) == 0 ||
	    strncmp(request, "GET / ", 6) == 0) {
		struct render_job *j = calloc(1, sizeof(*j));
		if (j == NULL) {
			cb(arg, 500, &body, NULL);
			return;
		}
		j->srv = srv;
		j->cb = cb;
		j->arg = arg;
		j->start_ns = sl_clock_mono_ns();
		j->snap = sl_metrics_render(srv, &j->body);
		j->work.data = j;
		if (uv_queue_work(&srv->loop, &j->work, render_work_cb, render_after_cb) != 0) {
			render_work_cb(&j->work); /* no thread pool: render here rather than not at all */
			render_after_cb(&j->work, 0);
		}
		return;
	}
	if (strncmp(request, "GET /healthz ", 13) == 0) {
		sl_text_put(&body, "ok\n");
		cb(arg, 200, &body, NULL);
		return;
	}
	if (strncmp(request, "GET /readyz ", 12) == 0) {
		if (srv->ready && !srv->shutting_down) {
			sl_text_put(&body, "ready\n");
			cb(arg, 200, &body, NULL);
			return;
		}
		sl_text_put(&body,
		            srv->shutting_down ? "shutting down\n" : "recovering: not accepting connections yet\n");
		cb(arg, 503, &body, NULL);
		return;
	}
	sl_text_put(&body, "not found: GET /metrics, /healthz, /readyz, the console at /ui/ or its API at /api/v1/\n");
	cb(arg, 404, &body, NULL);
}
