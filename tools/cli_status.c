/* `synclog status [--watch]`: one screen for an operator, from one Status request: the broker (version, uptime,
 * data size, free space), topics (partitions, size, records per second in and out), groups (members, lag in
 * records and time, health state, applier counters), dead-letter topics with their counts, and the last backfill
 * and reconcile runs. Colour only on a terminal and never with NO_COLOR; --watch redraws every 2 s in place. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "consumer/client/synclog.h"
#include "tools/cli.h"

/* How often --watch redraws: often enough to see a lag move, rare enough to read the screen. */
#define WATCH_INTERVAL_MS     2000
/* The longest a finished backfill or reconcile waits to report its run: the run is done, the report is a courtesy
 * to the operator's screen and must not hold the tool (or the next run of --every) for the full --timeout. */
#define RUN_REPORT_TIMEOUT_MS 5000

static const struct cli_command status_command = {
        .name = "status",
        .usage = "usage: synclog status [--watch] [--stall-after DURATION]\n"
                 "\n"
                 "One screen: the broker (version, uptime, data size, free disk), topics (partitions, size, records\n"
                 "per second in and out over the last ~10 s), groups (members, lag in records and time, health state\n"
                 "as in `group describe`, an applier's counters), dead-letter topics (TOPIC.dlq) with their counts,\n"
                 "and the last backfill, reconcile and contract check runs the tools reported. --watch redraws it\n"
                 "every 2 s (in place on a terminal) until interrupted. Colour on a terminal unless NO_COLOR is set.\n"
                 "--json: one object "
                 "{\"broker\":{...},\"topics\":[...],\"groups\":[...],\"dead_letters\":[...],\"runs\":[...]}.\n"
                 "\n"
                 "On a kafka:// broker: the cluster's brokers from its metadata; topics with their records (log end\n"
                 "minus log start; sizes and rates unknown); groups with state and lag judged by this client as in\n"
                 "`group describe` (--stall-after D, default 60s), or unknown on a cluster that does not list groups;\n"
                 "dead-letter topics; version, uptime, disk, connections, applier counters and runs are unknown (a\n"
                 "Kafka cluster does not keep or tell them) and are shown as such (null in --json).\n",
};

struct style {
	bool colour;
};

static const char *state_colour(const struct style *st, const char *state)
{
	if (!st->colour)
		return "";
	if (strcmp(state, "stalled") == 0 || strcmp(state, "stopped") == 0 || strcmp(state, "lost") == 0)
		return "\033[31m"; /* red */
	if (strcmp(state, "lagging") == 0)
		return "\033[33m"; /* yellow */
	return "\033[32m";         /* green */
}

static const char *reset_colour(const struct style *st)
{
	return st->colour ? "\033[0m" : "";
}

static void bytes_human(uint64_t b, char *out, size_t cap)
{
	static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
	double v = (double)b;
	int u = 0;

	while (v >= 1024 && u < 4) {
		v /= 1024;
		u++;
	}
	snprintf(out, cap, u == 0 ? "%.0f %s" : "%.1f %s", v, units[u]);
}

static void duration_human(int64_t ms, char *out, size_t cap)
{
	int64_t s = ms / 1000;

	if (s < 120)
		snprintf(out, cap, "%" PRId64 "s", s);
	else if (s < 7200)
		snprintf(out, cap, "%" PRId64 "m", s / 60);
	else if (s < 172800)
		snprintf(out, cap, "%" PRId64 "h%02" PRId64 "m", s / 3600, s / 60 % 60);
	else
		snprintf(out, cap, "%" PRId64 "d%02" PRId64 "h", s / 86400, s / 3600 % 24);
}

static bool is_dlq(const char *name)
{
	size_t n = strlen(name);
	return n > 4 && strcmp(name + n - 4, ".dlq") == 0;
}

/* "dead_letters":[{"topic":T,"records":N}, ...] of the dead-letter topics (records null where a Kafka cluster does
 * not tell). */
static void print_json_dead_letters(const struct sl_status *s)
{
	bool first = true;

	fputs("\"dead_letters\":[", stdout);
	for (uint32_t i = 0; i < s->topic_count; i++) {
		if (!is_dlq(s->topics[i].name))
			continue;
		printf("%s{\"topic\":", first ? "" : ",");
		cli_json_string(s->topics[i].name);
		if (s->topics[i].records >= 0)
			printf(",\"records\":%" PRId64 "}", s->topics[i].records);
		else
			fputs(",\"records\":null}", stdout);
		first = false;
	}
	putchar(']');
}

/* A Kafka cluster's status: what it does not tell is null. */
static void print_json_kafka(const struct sl_status *s)
{
	printf("{\"broker\":{\"kafka\":true,\"address\":");
	cli_json_string(s->data_dir);
	printf(",\"brokers\":%u,\"version\":null,\"started_ms\":null,\"uptime_ms\":null,\"data_bytes\":null,"
	       "\"disk_free_bytes\":null,\"disk_total_bytes\":null,\"connections\":null},\"topics\":[",
	       s->kafka_brokers);
	for (uint32_t i = 0; i < s->topic_count; i++) {
		const struct sl_status_topic *t = &s->topics[i];
		printf("%s{\"name\":", i ? "," : "");
		cli_json_string(t->name);
		printf(",\"partitions\":%u,\"partitions_unavailable\":%u,\"bytes\":null,\"records\":", t->partitions,
		       t->partitions_unavailable);
		if (t->records >= 0)
			printf("%" PRId64, t->records);
		else
			fputs("null", stdout);
		fputs(",\"records_in_per_s\":null,\"records_out_per_s\":null}", stdout);
	}
	if (s->groups_unknown) {
		fputs("],\"groups\":null,\"groups_unknown\":", stdout);
		cli_json_string(s->groups_why);
	} else {
		fputs("],\"groups\":[", stdout);
		for (uint32_t i = 0; i < s->group_count; i++) {
			const struct sl_group_summary *g = &s->groups[i];
			printf("%s{\"group\":", i ? "," : "");
			cli_json_string(g->group);
			printf(",\"members\":%u,\"state\":\"%s\",\"state_since_ms\":%" PRId64 ",\"lag\":%" PRId64
			       ",\"lag_ms\":%" PRId64 ",\"applier\":null}",
			       g->members, g->state, g->state_since_ms, g->lag, g->lag_ms);
		}
		putchar(']');
	}
	putchar(',');
	print_json_dead_letters(s);
	printf(",\"runs\":null}\n");
}

static void print_json(const struct sl_status *s)
{
	if (s->kafka) {
		print_json_kafka(s);
		return;
	}
	printf("{\"broker\":{\"version\":");
	cli_json_string(s->broker_version);
	printf(",\"started_ms\":%" PRId64 ",\"uptime_ms\":%" PRId64 ",\"data_dir\":", s->started_ms,
	       s->now_ms - s->started_ms);
	cli_json_string(s->data_dir);
	printf(",\"data_bytes\":%" PRIu64 ",\"disk_free_bytes\":%" PRIu64 ",\"disk_total_bytes\":%" PRIu64
	       ",\"connections\":%u},\"topics\":[",
	       s->data_bytes, s->disk_free_bytes, s->disk_total_bytes, s->connections);
	for (uint32_t i = 0; i < s->topic_count; i++) {
		const struct sl_status_topic *t = &s->topics[i];
		printf("%s{\"name\":", i ? "," : "");
		cli_json_string(t->name);
		printf(",\"partitions\":%u,\"partitions_unavailable\":%u,\"bytes\":%" PRIu64 ",\"records\":%" PRId64
		       ",\"records_in_per_s\":%.1f,\"records_out_per_s\":%.1f}",
		       t->partitions, t->partitions_unavailable, t->bytes, t->records, t->records_in_per_s,
		       t->records_out_per_s);
	}
	printf("],\"groups\":[");
	for (uint32_t i = 0; i < s->group_count; i++) {
		const struct sl_group_summary *g = &s->groups[i];
		const struct sl_applier_info *a = &s->appliers[i];
		printf("%s{\"group\":", i ? "," : "");
		cli_json_string(g->group);
		printf(",\"members\":%u,\"state\":\"%s\",\"state_since_ms\":%" PRId64 ",\"lag\":%" PRId64
		       ",\"lag_ms\":%" PRId64 ",\"applier\":",
		       g->members, g->state, g->state_since_ms, g->lag, g->lag_ms);
		if (a->reported_ms == 0) {
			fputs("null}", stdout);
			continue;
		}
		printf("{\"target\":");
		cli_json_string(a->target);
		printf(",\"applied\":%" PRIu64 ",\"stale\":%" PRIu64 ",\"duplicate\":%" PRIu64 ",\"deleted\":%" PRIu64
		       ",\"dead_lettered\":%" PRIu64 ",\"reported_ms\":%" PRId64 "}}",
		       a->applied, a->stale, a->duplicate, a->deleted, a->dead_lettered, a->reported_ms);
	}
	printf("],");
	print_json_dead_letters(s);
	printf(",\"runs\":[");
	for (uint32_t i = 0; i < s->run_count; i++) {
		const struct sl_run_report *r = &s->runs[i];
		printf("%s{\"kind\":\"%s\",\"topic\":", i ? "," : "", r->kind);
		cli_json_string(r->topic);
		printf(",\"target\":");
		cli_json_string(r->target);
		printf(",\"finished_ms\":%" PRId64 ",\"ok\":%s,\"rows\":%" PRIu64 ",\"differences\":%" PRIu64
		       ",\"diff_ratio\":%g,\"repaired\":%" PRIu64 ",\"summary\":",
		       r->finished_ms, r->ok ? "true" : "false", r->rows, r->differences, r->diff_ratio, r->repaired);
		cli_json_string(r->summary);
		putchar('}');
	}
	printf("]}\n");
}

/* A Kafka cluster's status: what it does not tell is said to be unknown. */
static void print_text_kafka(const struct sl_status *s, const struct style *st, int64_t stall_after_ms)
{
	char a[32];
	const char *bold = st->colour ? "\033[1m" : "", *plain = reset_colour(st);

	printf("%sKafka cluster %s%s  %u broker%s  version, uptime, disk and connections unknown (not told to "
	       "clients)\n",
	       bold, s->data_dir, plain, s->kafka_brokers, s->kafka_brokers == 1 ? "" : "s");
	printf("\n%sTOPICS%s\n%-32s %10s %10s %12s %10s %10s\n", bold, plain, "NAME", "PARTITIONS", "SIZE", "RECORDS",
	       "IN/S", "OUT/S");
	for (uint32_t i = 0; i < s->topic_count; i++) {
		const struct sl_status_topic *t = &s->topics[i];
		if (is_dlq(t->name))
			continue;
		if (t->records >= 0)
			snprintf(a, sizeof(a), "%" PRId64, t->records);
		else
			snprintf(a, sizeof(a), "unknown");
		printf("%-32s %10u %10s %12s %10s %10s%s\n", t->name, t->partitions, "-", a, "-", "-",
		       t->partitions_unavailable ? "  (partitions unavailable)" : "");
	}
	printf("\n%sGROUPS%s (states judged by this client, stall-after %" PRId64 " ms)\n", bold, plain,
	       stall_after_ms);
	if (s->groups_unknown) {
		printf("unknown: %s\n", s->groups_why);
	} else {
		printf("%-32s %7s %-8s %10s %10s  %s\n", "NAME", "MEMBERS", "STATE", "LAG", "LAG_TIME", "APPLIER");
		for (uint32_t i = 0; i < s->group_count; i++) {
			const struct sl_group_summary *g = &s->groups[i];
			duration_human(g->lag_ms, a, sizeof(a));
			printf("%-32s %7u %s%-8s%s %10" PRId64 " %10s  unknown\n", g->group, g->members,
			       state_colour(st, g->state), g->state, plain, g->lag, a);
		}
	}
	printf("\n%sDEAD LETTERS%s\n", bold, plain);
	bool any = false;
	for (uint32_t i = 0; i < s->topic_count; i++) {
		if (!is_dlq(s->topics[i].name))
			continue;
		if (s->topics[i].records >= 0)
			printf("%-32s %12" PRId64 " letters%s\n", s->topics[i].name, s->topics[i].records,
			       s->topics[i].records > 0 ? "  (synclog dlq list)" : "");
		else
			printf("%-32s      unknown letters\n", s->topics[i].name);
		any = true;
	}
	if (!any)
		printf("none\n");
	printf("\n%sRUNS%s\nunknown: run reports are kept by synclogd, not by a Kafka cluster\n", bold, plain);
}

static void print_text(const struct sl_status *s, const struct style *st)
{
	char a[32], b[32], c[32];
	const char *bold = st->colour ? "\033[1m" : "", *plain = reset_colour(st);

	duration_human(s->now_ms - s->started_ms, a, sizeof(a));
	bytes_human(s->data_bytes, b, sizeof(b));
	bytes_human(s->disk_free_bytes, c, sizeof(c));
	printf("%ssynclogd %s%s  up %s  data %s in %s  disk free %s (%.0f%%)  connections %u\n", bold,
	       s->broker_version, plain, a, b, s->data_dir, c,
	       s->disk_total_bytes ? 100.0 * (double)s->disk_free_bytes / (double)s->disk_total_bytes : 0.0,
	       s->connections);
	printf("\n%sTOPICS%s\n%-32s %10s %10s %12s %10s %10s\n", bold, plain, "NAME", "PARTITIONS", "SIZE", "RECORDS",
	       "IN/S", "OUT/S");
	for (uint32_t i = 0; i < s->topic_count; i++) {
		const struct sl_status_topic *t = &s->topics[i];
		if (is_dlq(t->name))
			continue;
		bytes_human(t->bytes, a, sizeof(a));
		printf("%-32s %10u %10s %12" PRId64 " %10.1f %10.1f%s\n", t->name, t->partitions, a, t->records,
		       t->records_in_per_s, t->records_out_per_s,
		       t->partitions_unavailable ? "  (partitions unavailable)" : "");
	}
	printf("\n%sGROUPS%s\n%-32s %7s %-8s %10s %10s  %s\n", bold, plain, "NAME", "MEMBERS", "STATE", "LAG",
	       "LAG_TIME", "APPLIER");
	for (uint32_t i = 0; i < s->group_count; i++) {
		const struct sl_group_summary *g = &s->groups[i];
		const struct sl_applier_info *ap = &s->appliers[i];
		duration_human(g->lag_ms, a, sizeof(a));
		printf("%-32s %7u %s%-8s%s %10" PRId64 " %10s  ", g->group, g->members, state_colour(st, g->state),
		       g->state, plain, g->lag, a);
		if (ap->reported_ms > 0)
			printf("applied %" PRIu64 " stale %" PRIu64 " duplicate %" PRIu64 " deleted %" PRIu64
			       " dead_lettered %" PRIu64 "\n",
			       ap->applied, ap->stale, ap->duplicate, ap->deleted, ap->dead_lettered);
		else
			printf("-\n");
	}
	printf("\n%sDEAD LETTERS%s\n", bold, plain);
	bool any = false;
	for (uint32_t i = 0; i < s->topic_count; i++) {
		if (!is_dlq(s->topics[i].name))
			continue;
		printf("%-32s %12" PRId64 " letters%s\n", s->topics[i].name, s->topics[i].records,
		       s->topics[i].records > 0 ? "  (synclog dlq list)" : "");
		any = true;
	}
	if (!any)
		printf("none\n");
	printf("\n%sRUNS%s\n", bold, plain);
	if (s->run_count == 0)
		printf("no backfill, reconcile or contract check run reported\n");
	for (uint32_t i = 0; i < s->run_count; i++) {
		const struct sl_run_report *r = &s->runs[i];
		duration_human(s->now_ms - r->finished_ms, a, sizeof(a));
		printf("%-10s %-32s %s%s%s %s ago: %s", r->kind, r->topic,
		       r->ok ? state_colour(st, "ok") : state_colour(st, "lost"), r->ok ? "ok" : "FAILED", plain, a,
		       r->summary);
		if (strcmp(r->kind, "reconcile") == 0)
			printf(" repaired %" PRIu64, r->repaired);
		putchar('\n');
	}
}

int cli_run_report(const struct cli *cli, const struct cli_command *cmd, const struct sl_run_report *run)
{
	struct sl_conn *c;
	int rc;

	if (sl_broker_is_kafka(cli->broker)) {
		fprintf(stderr,
		        "synclog %s: note: this run is not recorded: run reports are kept by synclogd, and a Kafka "
		        "cluster has no place for them (synclog status there shows the last runs as unknown)\n",
		        cmd->name);
		return -EOPNOTSUPP;
	}
	if (sl_conn_new(&c, cli->broker, "synclog-run-report") != 0) {
		fprintf(stderr, "synclog %s: warning: out of memory; the run was not reported to the broker\n",
		        cmd->name);
		return -ENOMEM;
	}
	sl_conn_set_timeout(c, cli->timeout_ms > 0 && cli->timeout_ms < RUN_REPORT_TIMEOUT_MS ? cli->timeout_ms
	                                                                                      : RUN_REPORT_TIMEOUT_MS);
	rc = sl_conn_set_security(c, &cli->security);
	if (rc == 0)
		rc = sl_conn_connect(c);
	if (rc == 0)
		rc = sl_run_report(c, run);
	if (rc != 0)
		fprintf(stderr,
		        "synclog %s: warning: the run was not reported to the broker (synclog status and the "
		        "metrics will not show it): %s\n",
		        cmd->name, sl_conn_error(c));
	sl_conn_free(c);
	return rc;
}

int cli_status(const struct cli *cli, int argc, char **argv)
{
	bool watch = false;
	struct style st = {.colour = isatty(STDOUT_FILENO) && getenv("NO_COLOR") == NULL};
	bool tty = isatty(STDOUT_FILENO);
	struct sl_conn *c;
	int64_t stall_after_ms = 0;
	int rc = CLI_EXIT_OK;

	if (cli_wants_help(argc, argv))
		return cli_help(&status_command);
	for (int i = 0; i < argc; i++) {
		const char *value;
		int f;

		if (strcmp(argv[i], "--watch") == 0) {
			watch = true;
		} else if ((f = cli_flag(argc, argv, &i, "--stall-after", &value)) != 0) {
			if (f < 0)
				return cli_usage_error(&status_command, "--stall-after needs a duration");
			if (cli_stall_after_parse(cli, &status_command, value, &stall_after_ms) != 0)
				return CLI_EXIT_USAGE;
		} else {
			return cli_usage_error(&status_command, "unexpected argument '%s'", argv[i]);
		}
	}
	c = cli_connect(cli, &status_command, "synclog-status");
	if (c == NULL)
		return CLI_EXIT_FAIL;
	if (stall_after_ms > 0 && sl_conn_set_stall_after(c, stall_after_ms) != 0) {
		rc = cli_fail(&status_command, "%s", sl_conn_error(c));
		sl_conn_free(c);
		return rc;
	}
	if (watch)
		cli_signals_install();
	do {
		struct sl_status *s;

		rc = sl_status_get(c, &s);
		if (rc == -EINTR && cli_interrupted()) {
			rc = CLI_EXIT_OK;
			break;
		}
		if (rc != 0) {
			rc = cli_fail(&status_command, "%s", sl_conn_error(c));
			break;
		}
		if (watch && tty && !cli->json)
			fputs("\033[H\033[2J", stdout); /* home, clear: redraw in place */
		if (cli->json)
			print_json(s);
		else if (s->kafka)
			print_text_kafka(s, &st, stall_after_ms > 0 ? stall_after_ms : SL_KAFKA_STALL_AFTER_MS_DEFAULT);
		else
			print_text(s, &st);
		sl_status_free(s);
		if (watch && !tty && !cli->json)
			putchar('\n');
		fflush(stdout);
		rc = CLI_EXIT_OK;
		if (watch) {
			struct timespec ts = {WATCH_INTERVAL_MS / 1000, (WATCH_INTERVAL_MS % 1000) * 1000000L};
			nanosleep(&ts, NULL); /* a signal ends the wait, and the loop */
		}
	} while (watch && !cli_interrupted());
	sl_conn_free(c);
	return rc;
}
