/* synclogd: the broker process. Parses flags and the optional JSON config file, starts the shard, prints the
 * readiness line of ../shared/CLI.md, and runs until SIGTERM/SIGINT. `--repair` opens every partition in
 * repair mode instead, reports what it set aside, and exits. */
#include <errno.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/server.h"
#include "proto/base/duration.h"
#include "proto/base/fs.h"
#include "broker/topics.h"

static const char usage[] =
        "usage: synclogd [--data-dir DIR] [--listen HOST:PORT] [--metrics HOST:PORT|off] [--config FILE]\n"
        "                [--segment-bytes N] [--index-interval-bytes N] [--frame-bytes-max N]\n"
        "                [--connections-max N] [--retention-check-ms MS] [--stall-after DURATION]\n"
        "                [--health-window N] [--initial-rebalance-delay DURATION] [--groups-max N] [--repair]\n"
        "\n"
        "The synclog broker. Defaults: --data-dir ./data, --listen 127.0.0.1:7070, --metrics 127.0.0.1:7071.\n"
        "Port 0 picks a free port; the line 'synclogd ready on HOST:PORT' names it once connections are accepted.\n"
        "SIGTERM or SIGINT: stop accepting, finish in-flight requests, fsync, close, exit 0.\n"
        "--config FILE   JSON object with any of: data_dir, listen, metrics, segment_bytes, index_interval_bytes,\n"
        "                frame_bytes_max, connections_max, retention_check_ms, stall_after, health_window,\n"
        "                initial_rebalance_delay, groups_max. Flags given on the command line win.\n"
        "--retention-check-ms MS  how often retention, roll by age and producer-state snapshots run (30000)\n"
        "--metrics       Prometheus text at /metrics, /healthz (200 while the process runs) and /readyz (200 once\n"
        "                recovery finished and the listener accepts, 503 before).\n"
        "--stall-after D a group partition whose log end moved past a commit that has not moved for D is\n"
        "                `stalled` (`stopped` when no member is live); default 60s. Durations: 500ms, 30s, 5m, 2h,\n"
        "                7d or ISO 8601 (PT30M). Per group: `synclog group alter G --stall-after D`.\n"
        "--health-window N  samples (one per health tick, 1 s or stall-after/4 when shorter) that group health\n"
        "                judges `lagging` over; default 10, 2 to 60.\n"
        "--initial-rebalance-delay D  a group whose first members join together waits D so they share its first\n"
        "                generation; default 3s, 0 to answer at once.\n"
        "--groups-max N  groups at most (a new group beyond it is refused with GROUP_LIMIT); default 100000.\n"
        "--repair        open every partition in repair mode: a corrupt batch before the recovery point is cut\n"
        "                off (the rest of its segment kept as *.corrupt, later segments as *.orphaned), then exit.\n";

static int bad_usage(const char *fmt, const char *arg)
{
	fprintf(stderr, "synclogd: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\n%s", usage);
	return 2;
}

/* "HOST:PORT" -> host, port. */
static int parse_host_port(const char *s, char *host, size_t host_cap, int *port)
{
	const char *colon = strrchr(s, ':');
	if (colon == NULL || colon == s || (size_t)(colon - s) >= host_cap)
		return -EINVAL;
	char *end;
	long p = strtol(colon + 1, &end, 10);
	if (*end != '\0' || end == colon + 1 || p < 0 || p > 65535)
		return -EINVAL;
	memcpy(host, s, (size_t)(colon - s));
	host[colon - s] = '\0';
	*port = (int)p;
	return 0;
}

static int parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || *end != '\0' || end == s || s[0] == '-' || v < min || v > max)
		return -EINVAL;
	*out = v;
	return 0;
}

struct settings {
	const char *data_dir, *listen, *metrics, *segment_bytes, *index_interval, *frame_max, *conn_max,
	        *retention_check;
	const char *stall_after, *health_window, *rebalance_delay, *groups_max;
};

static int settings_apply(struct sl_server_config *cfg, const struct settings *s)
{
	uint64_t v;
	if (s->data_dir) {
		if (strlen(s->data_dir) >= sizeof(cfg->data_dir) || s->data_dir[0] == '\0')
			return bad_usage("invalid --data-dir '%s': 1 to 1023 characters", s->data_dir);
		snprintf(cfg->data_dir, sizeof(cfg->data_dir), "%s", s->data_dir);
	}
	if (s->listen && parse_host_port(s->listen, cfg->listen_host, sizeof(cfg->listen_host), &cfg->listen_port) < 0)
		return bad_usage("invalid --listen '%s': expected HOST:PORT", s->listen);
	if (s->metrics) {
		if (strcmp(s->metrics, "off") == 0)
			cfg->metrics_port = -1;
		else if (parse_host_port(s->metrics, cfg->metrics_host, sizeof(cfg->metrics_host), &cfg->metrics_port) <
		         0)
			return bad_usage("invalid --metrics '%s': expected HOST:PORT or off", s->metrics);
	}
	if (s->segment_bytes) {
		if (parse_u64(s->segment_bytes, 65536, 0x7fffffffu, &v) < 0)
			return bad_usage("invalid --segment-bytes '%s': 65536 to 2147483647", s->segment_bytes);
		cfg->log.segment_bytes_max = v;
	}
	if (s->index_interval) {
		if (parse_u64(s->index_interval, 64, 1u << 24, &v) < 0)
			return bad_usage("invalid --index-interval-bytes '%s': 64 to 16777216", s->index_interval);
		cfg->log.index_interval_bytes = (uint32_t)v;
	}
	if (s->frame_max) {
		if (parse_u64(s->frame_max, 65536, 1u << 30, &v) < 0)
			return bad_usage("invalid --frame-bytes-max '%s': 65536 to 1073741824", s->frame_max);
		cfg->frame_bytes_max = (uint32_t)v;
		cfg->conn_inflight_bytes_max = 4 * v;
	}
	if (s->conn_max) {
		if (parse_u64(s->conn_max, 1, 100000, &v) < 0)
			return bad_usage("invalid --connections-max '%s': 1 to 100000", s->conn_max);
		cfg->connections_max = (uint32_t)v;
	}
	if (s->retention_check) {
		if (parse_u64(s->retention_check, 100, 86400000, &v) < 0)
			return bad_usage("invalid --retention-check-ms '%s': 100 to 86400000", s->retention_check);
		cfg->retention_check_ms = (uint32_t)v;
	}
	int64_t ms;
	if (s->stall_after) {
		if (sl_duration_parse_ms(s->stall_after, &ms) < 0 || ms < SL_STALL_AFTER_MS_MIN)
			return bad_usage("invalid --stall-after '%s': a duration of at least 100ms (30s, 5m, PT1M)",
			                 s->stall_after);
		cfg->groups.stall_after_ms = ms;
	}
	if (s->health_window) {
		if (parse_u64(s->health_window, SL_HEALTH_WINDOW_MIN, SL_HEALTH_WINDOW_MAX, &v) < 0)
			return bad_usage("invalid --health-window '%s': 2 to 60 samples", s->health_window);
		cfg->groups.window = (uint32_t)v;
	}
	if (s->rebalance_delay) {
		if (sl_duration_parse_ms(s->rebalance_delay, &ms) < 0 || ms > SL_INITIAL_REBALANCE_DELAY_MS_MAX)
			return bad_usage("invalid --initial-rebalance-delay '%s': a duration of 0 to 5m (3s, 0)",
			                 s->rebalance_delay);
		cfg->groups.initial_rebalance_delay_ms = ms;
	}
	if (s->groups_max) {
		if (parse_u64(s->groups_max, 1, SL_GROUPS_MAX_MAX, &v) < 0)
			return bad_usage("invalid --groups-max '%s': 1 to 10000000", s->groups_max);
		cfg->groups.groups_max = (uint32_t)v;
	}
	return 0;
}

/* The config file's values, as strings, so they go through the same checks as flags. */
static int load_config(const char *path, struct settings *s, json_t **keep)
{
	json_error_t jerr;
	json_t *j = json_load_file(path, 0, &jerr);
	if (j == NULL || !json_is_object(j)) {
		fprintf(stderr, "synclogd: cannot read config %s: %s (line %d)\n", path,
		        j ? "not a JSON object" : jerr.text, jerr.line);
		json_decref(j);
		return 1;
	}
	static char nums[7][32];
	const char *key;
	json_t *v;
	json_object_foreach(j, key, v)
	{
		const char **slot = NULL;
		int num = -1;
		if (strcmp(key, "data_dir") == 0)
			slot = &s->data_dir;
		else if (strcmp(key, "listen") == 0)
			slot = &s->listen;
		else if (strcmp(key, "metrics") == 0)
			slot = &s->metrics;
		else if (strcmp(key, "segment_bytes") == 0)
			slot = &s->segment_bytes, num = 0;
		else if (strcmp(key, "index_interval_bytes") == 0)
			slot = &s->index_interval, num = 1;
		else if (strcmp(key, "frame_bytes_max") == 0)
			slot = &s->frame_max, num = 2;
		else if (strcmp(key, "connections_max") == 0)
			slot = &s->conn_max, num = 3;
		else if (strcmp(key, "retention_check_ms") == 0)
			slot = &s->retention_check, num = 4;
		else if (strcmp(key, "stall_after") == 0)
			slot = &s->stall_after;
		else if (strcmp(key, "health_window") == 0)
			slot = &s->health_window, num = 5;
		else if (strcmp(key, "initial_rebalance_delay") == 0)
			slot = &s->rebalance_delay;
		else if (strcmp(key, "groups_max") == 0)
			slot = &s->groups_max, num = 6;
		if (slot == NULL) {
			fprintf(stderr, "synclogd: config %s: unknown key '%s'\n", path, key);
			json_decref(j);
			return 2;
		}
		if (num >= 0 && json_is_integer(v)) {
			snprintf(nums[num], sizeof(nums[num]), "%lld", (long long)json_integer_value(v));
			*slot = nums[num];
		} else if (json_is_string(v)) {
			*slot = json_string_value(v);
		} else {
			fprintf(stderr, "synclogd: config %s: key '%s' has the wrong type\n", path, key);
			json_decref(j);
			return 2;
		}
	}
	*keep = j;
	return 0;
}

/* Take DATA/.lock before anything reads or writes the data directory: a second broker (or `--repair`) on the
 * same directory would append to the same segment files and silently replace acknowledged records. The lock is
 * held until the process exits. Returns 0, or 1 with the reason on stderr. */
static int lock_data_dir(const char *dir)
{
	int fd;
	pid_t holder;
	int rc = sl_fs_lock_data_dir(dir, &fd, &holder);
	if (rc == -EWOULDBLOCK) {
		if (holder > 0)
			fprintf(stderr, "synclogd: another synclogd (pid %ld) is using %s\n", (long)holder, dir);
		else
			fprintf(stderr, "synclogd: another synclogd is using %s\n", dir);
		return 1;
	}
	if (rc < 0) {
		fprintf(stderr, "synclogd: cannot lock %s/%s: %s (check --data-dir and its permissions)\n", dir,
		        SL_DATA_DIR_LOCK_FILE, strerror(-rc));
		return 1;
	}
	return 0;
}

static int repair(const struct sl_server_config *cfg)
{
	struct sl_ring ring;
	int rc = sl_ring_init(&ring, 0);
	if (rc < 0) {
		fprintf(stderr, "synclogd: cannot create an io_uring: %s\n", strerror(-rc));
		return 1;
	}
	struct sl_log_config lc = cfg->log;
	lc.repair = 1;
	struct sl_topics topics;
	char err[1024] = "";
	rc = sl_topics_open(&topics, cfg->data_dir, &ring, &lc, err, sizeof(err));
	if (rc < 0) {
		fprintf(stderr, "synclogd: repair: %s\n", err);
		sl_ring_close(&ring);
		return 1;
	}
	int failed = 0;
	for (struct sl_topic *t = topics.head; t; t = t->next) {
		for (uint32_t i = 0; i < t->cfg.partitions; i++) {
			struct sl_partition *p = &t->parts[i];
			if (p->log == NULL) {
				failed = 1;
				continue;
			}
			struct sl_log_stats st;
			sl_log_get_stats(p->log, &st);
			printf("%s/%u: ok, offsets %lld..%lld, %llu bytes cut\n", t->cfg.name, i,
			       (long long)st.start_offset, (long long)st.next_offset,
			       (unsigned long long)st.truncated_bytes);
		}
	}
	rc = sl_topics_close(&topics);
	sl_ring_close(&ring);
	if (rc < 0) {
		fprintf(stderr, "synclogd: repair: closing failed: %s\n", strerror(-rc));
		return 1;
	}
	return failed;
}

/* The readiness line of ../shared/CLI.md, once recovery finished and the listener accepts. */
static void print_ready(const struct sl_server_config *cfg, int port)
{
	printf("synclogd ready on %s:%d\n", cfg->listen_host, port);
	fflush(stdout);
}

int main(int argc, char **argv)
{
	struct sl_server_config cfg;
	sl_server_config_default(&cfg);
	struct settings file = {0}, flags = {0};
	const char *config_path = NULL;
	int do_repair = 0;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char **slot = NULL;
		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			fputs(usage, stdout);
			return 0;
		} else if (strcmp(a, "--repair") == 0) {
			do_repair = 1;
			continue;
		} else if (strcmp(a, "--data-dir") == 0) {
			slot = &flags.data_dir;
		} else if (strcmp(a, "--listen") == 0) {
			slot = &flags.listen;
		} else if (strcmp(a, "--metrics") == 0) {
			slot = &flags.metrics;
		} else if (strcmp(a, "--config") == 0) {
			slot = &config_path;
		} else if (strcmp(a, "--segment-bytes") == 0) {
			slot = &flags.segment_bytes;
		} else if (strcmp(a, "--index-interval-bytes") == 0) {
			slot = &flags.index_interval;
		} else if (strcmp(a, "--frame-bytes-max") == 0) {
			slot = &flags.frame_max;
		} else if (strcmp(a, "--connections-max") == 0) {
			slot = &flags.conn_max;
		} else if (strcmp(a, "--retention-check-ms") == 0) {
			slot = &flags.retention_check;
		} else if (strcmp(a, "--stall-after") == 0) {
			slot = &flags.stall_after;
		} else if (strcmp(a, "--health-window") == 0) {
			slot = &flags.health_window;
		} else if (strcmp(a, "--initial-rebalance-delay") == 0) {
			slot = &flags.rebalance_delay;
		} else if (strcmp(a, "--groups-max") == 0) {
			slot = &flags.groups_max;
		} else {
			return bad_usage("unknown argument '%s'", a);
		}
		if (i + 1 >= argc)
			return bad_usage("%s needs a value", a);
		*slot = argv[++i];
	}
	json_t *keep = NULL;
	if (config_path) {
		int rc = load_config(config_path, &file, &keep);
		if (rc)
			return rc;
	}
	int rc = settings_apply(&cfg, &file);
	if (rc == 0)
		rc = settings_apply(&cfg, &flags);
	json_decref(keep);
	if (rc)
		return rc;

	/* A client that goes away mid-write must not kill the broker; a file-size limit must fail the write, not
	 * the process (the append is then refused and the log cut back). */
	signal(SIGPIPE, SIG_IGN);
	signal(SIGXFSZ, SIG_IGN);
	if (lock_data_dir(cfg.data_dir) != 0)
		return 1;
	if (do_repair)
		return repair(&cfg);

	struct sl_server *srv;
	char err[1024] = "";
	cfg.on_ready = print_ready;
	rc = sl_server_start(&cfg, &srv, err, sizeof(err));
	if (rc < 0) {
		fprintf(stderr, "synclogd: %s\n", err);
		return 1;
	}
	return sl_server_run(srv) == 0 ? 0 : 1;
}
