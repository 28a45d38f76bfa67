/* What the metrics listener says: the Prometheus text of the broker (names follow Prometheus's conventions: a
 * synclog_ prefix, base units in the name, _total for counters, labels topic, partition, group, origin, kind,
 * state), the standard process_* metrics, and the /healthz and /readyz answers. Every family has its # HELP and
 * # TYPE. Group lag and state come from the last health tick, so a scrape reads no disk; lines are written with
 * a small formatter instead of printf, so 10,000 partitions and 1,000 groups render in milliseconds (measured by
 * bench/, reported as synclog_scrape_duration_seconds).
 *
 * Which thread may call: the shard's loop thread only. */
#include <dirent.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "broker/net/metrics.h"
#include "proto/base/clock.h"
#include "proto/frame.h"

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
	size_t n = strlen(s);
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
	uint64_t fds = 0;
	DIR *d = opendir("/proc/self/fd");
	if (d != NULL) {
		while (readdir(d) != NULL)
			fds++;
		closedir(d);
		fds = fds >= 3 ? fds - 3 : 0; /* ".", ".." and the directory's own descriptor */
	}
	struct rlimit rl = {0, 0};
	getrlimit(RLIMIT_NOFILE, &rl);
	sample_double(o, "process_cpu_seconds_total", "counter", "User and system CPU time spent in seconds.",
	              ticks > 0 ? (double)(utime + stime) / (double)ticks : 0);
	sample_u64(o, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.",
	           (uint64_t)rss * (uint64_t)(page > 0 ? page : 4096));
	sample_u64(o, "process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.", vsize);
	sample_u64(o, "process_open_fds", "gauge", "Number of open file descriptors.", fds);
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

static void render_partitions(struct sl_server *srv, struct sl_text *o, uint64_t *bytes_total)
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
		for (struct sl_topic *t = srv->topics.head; t; t = t->next) {
			for (uint32_t i = 0; i < t->cfg.partitions; i++) {
				struct sl_log *log = t->parts[i].log;
				if (f > 0 && log == NULL)
					continue;
				struct sl_log_stats st;
				if (log != NULL)
					sl_log_get_stats(log, &st);
				labels_tp(o, fams[f].name, t->cfg.name, i);
				switch (f) {
				case 0:
					put_u64(o, log != NULL);
					break;
				case 1:
					put_i64(o, st.next_offset);
					break;
				case 2:
					put_i64(o, st.start_offset);
					break;
				case 3:
					put_u64(o, st.bytes);
					*bytes_total += st.bytes;
					break;
				default:
					put_u64(o, st.segment_count);
					break;
				}
				sl_text_put(o, "\n");
			}
		}
	}
}

static void render_groups(struct sl_server *srv, struct sl_text *o)
{
	struct sl_groups *g = &srv->groups;
	sample_u64(o, "synclog_groups", "gauge", "Consumer groups held by the broker.", g->group_count);
	sample_u64(o, "synclog_groups_max", "gauge", "Groups at most (--groups-max).", g->settings.groups_max);
	family(o, "synclog_group_members", "gauge", "Live members of a group.");
	for (uint32_t k = 0; k < g->group_count; k++) {
		sl_text_put(o, "synclog_group_members{group=\"");
		sl_text_put(o, g->sorted[k]->name);
		sl_text_put(o, "\"} ");
		put_u64(o, g->sorted[k]->member_count);
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
		for (uint32_t k = 0; k < g->group_count; k++) {
			struct sl_group *grp = g->sorted[k];
			for (uint32_t i = 0; i < grp->commit_count; i++) {
				const struct sl_commit *c = &grp->commits[i];
				if (c->lag < 0)
					continue; /* topic gone or partition unavailable */
				if (f == 3) {
					for (int s = 0; s < SL_HEALTH_COUNT; s++) {
						labels_gtp(o, fams[f][0], grp->name, c->topic, c->partition);
						sl_text_put(o, ",state=\"");
						sl_text_put(o, sl_health_name((enum sl_health)s));
						sl_text_put(o, (int)c->state == s ? "\"} 1\n" : "\"} 0\n");
					}
					continue;
				}
				labels_gtp(o, fams[f][0], grp->name, c->topic, c->partition);
				sl_text_put(o, "} ");
				if (f == 0)
					put_i64(o, c->lag);
				else if (f == 1)
					put_double(o, (double)c->lag_ms / 1000.0);
				else
					put_i64(o, c->offset);
				sl_text_put(o, "\n");
			}
		}
	}
	family(o, "synclog_group_records_lost", "gauge",
	       "Records removed by retention before the group consumed them (only partitions in state lost).");
	for (uint32_t k = 0; k < g->group_count; k++) {
		struct sl_group *grp = g->sorted[k];
		for (uint32_t i = 0; i < grp->commit_count; i++) {
			const struct sl_commit *c = &grp->commits[i];
			if (c->records_lost <= 0)
				continue;
			labels_gtp(o, "synclog_group_records_lost", grp->name, c->topic, c->partition);
			sl_text_put(o, "} ");
			put_i64(o, c->records_lost);
			sl_text_put(o, "\n");
		}
	}
	family(o, "synclog_applier_records_total", "counter",
	       "Records an applier handled, by group and outcome, as its target keeps them (reported with its "
	       "commits).");
	for (uint32_t k = 0; k < g->group_count; k++) {
		const struct sl_group *grp = g->sorted[k];
		if (grp->applier.reported_ms == 0)
			continue;
		const uint64_t v[5] = {grp->applier.applied, grp->applier.stale, grp->applier.duplicate,
		                       grp->applier.deleted, grp->applier.dead_lettered};
		static const char *const outcome[5] = {"applied", "stale", "duplicate", "deleted", "dead_lettered"};
		for (int i = 0; i < 5; i++) {
			sl_text_put(o, "synclog_applier_records_total{group=\"");
			sl_text_put(o, grp->name);
			sl_text_put(o, "\",outcome=\"");
			sl_text_put(o, outcome[i]);
			sl_text_put(o, "\"} ");
			put_u64(o, v[i]);
			sl_text_put(o, "\n");
		}
	}
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
	        {"synclog_run_last_timestamp_seconds", "When the last backfill or reconcile run of a topic finished."},
	        {"synclog_run_last_success", "1 when the last run of that kind on the topic succeeded."},
	        {"synclog_run_last_rows", "Rows the last run handled (backfill: produced; reconcile: compared)."},
	        {"synclog_reconcile_last_differences", "Keys that differed in the last reconcile run."},
	        {"synclog_reconcile_last_diff_ratio", "Differences over compared keys in the last reconcile run."},
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
			default:
				put_double(o, r->diff_ratio);
				break;
			}
			sl_text_put(o, "\n");
		}
	}
}

void sl_metrics_render(struct sl_server *srv, struct sl_text *o)
{
	int64_t t0 = sl_clock_mono_ns();
	const struct sl_server_stats *s = &srv->stats;
	family(o, "synclog_build_info", "gauge", "The broker's version (value 1).");
	sl_text_put(o, "synclog_build_info{version=\"" SL_SOFTWARE_VERSION "\"} 1\n");
	sample_u64(o, "synclog_ready", "gauge", "1 once recovery finished and the listener accepts (see /readyz).",
	           (uint64_t)srv->ready);
	render_process(srv, o);
	if (!srv->ready)
		return; /* recovery is still running on its worker thread: topics and groups are not ours yet */
	sample_u64(o, "synclog_connections", "gauge", "Open client connections.", s->connections_open);
	sample_u64(o, "synclog_connections_accepted_total", "counter", "Client connections accepted.",
	           s->connections_accepted);
	sample_u64(o, "synclog_connections_refused_total", "counter", "Client connections refused at the limit.",
	           s->connections_refused);
	sample_u64(o, "synclog_bad_frames_total", "counter", "Frames that could not be decoded.", s->bad_frames);
	sample_u64(o, "synclog_produce_errors_total", "counter", "Produce batches refused or failed.",
	           s->produce_errors);
	render_requests(srv, o);
	render_topics(srv, o);
	uint64_t bytes = 0;
	render_partitions(srv, o, &bytes);
	render_groups(srv, o);
	render_runs(srv, o);
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
	sample_double(o, "synclog_scrape_duration_seconds", "gauge", "How long rendering the previous scrape took.",
	              (double)s->last_scrape_ns / 1e9);
	srv->stats.scrapes++;
	srv->stats.last_scrape_ns = sl_clock_mono_ns() - t0;
}

int sl_metrics_route(struct sl_server *srv, const char *request, struct sl_text *body)
{
	if (strncmp(request, "GET /metrics ", 13) == 0 || strncmp(request, "GET /metrics?", 13) == 0 ||
	    strncmp(request, "GET / ", 6) == 0) {
		sl_metrics_render(srv, body);
		return 200;
	}
	if (strncmp(request, "GET /healthz ", 13) == 0) {
		sl_text_put(body, "ok\n");
		return 200;
	}
	if (strncmp(request, "GET /readyz ", 12) == 0) {
		if (srv->ready && !srv->shutting_down) {
			sl_text_put(body, "ready\n");
			return 200;
		}
		sl_text_put(body,
		            srv->shutting_down ? "shutting down\n" : "recovering: not accepting connections yet\n");
		return 503;
	}
	sl_text_put(body, "not found: GET /metrics, /healthz or /readyz\n");
	return 404;
}
