/* synclogd: the broker process. Parses flags and the optional config file, sets up the event log, starts the
 * shard, prints the readiness line of the operator contract, tells a service manager it is ready, and runs until
 * SIGTERM/SIGINT. `--repair` opens every partition in repair mode instead, reports what it set aside, and exits.
 *
 * What goes where: the readiness line (and --repair's report) on stdout, for scripts; everything else on stderr
 * as event log lines (proto/base/slog.h), among them the effective configuration at start, the recovery result,
 * the bound addresses, and shutdown. Usage errors (exit 2) are one plain line and a pointer to --help. */
#include <ctype.h>
#include <errno.h>
#include <arpa/inet.h>
#include <jansson.h>
#include <netinet/in.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "broker/limits.h"
#include "broker/notify.h"
#include "broker/server.h"
#include "broker/topics.h"
#include "proto/base/addr.h"
#include "proto/base/duration.h"
#include "proto/base/fs.h"
#include "proto/base/slog.h"
#include "proto/version.h"

static const char usage[] =
        "usage: synclogd [--data-dir DIR] [--listen HOST:PORT] [--kafka-listen HOST:PORT|off]\n"
        "                [--metrics HOST:PORT|off] [--config FILE]\n"
        "                [--log-format text|json] [--log-level error|warn|info|debug]\n"
        "                [--segment-bytes N] [--segment-ms DURATION] [--index-interval-bytes N]\n"
        "                [--frame-bytes-max N] [--connections-max N] [--retention-check-ms MS]\n"
        "                [--backfill-rate-max RECORDS_PER_S] [--cleaner-bytes-per-s B]\n"
        "                [--min-cleanable-ratio R] [--cleaner-map-bytes B] [--cleaner-check-ms MS]\n"
        "                [--auth scram|none] [--super-users NAME,...] [--tls-cert FILE --tls-key FILE]\n"
        "                [--tls-ca FILE] [--tls-client-auth required|optional|none] [--insecure]\n"
        "                [--quota-produce-rate BYTES] [--quota-fetch-rate BYTES] [--principal-connections-max N]\n"
        "                [--principal-inflight-bytes-max N] [--connection-rate-max N]\n"
        "                [--stall-after DURATION] [--health-window N] [--initial-rebalance-delay DURATION]\n"
        "                [--groups-max N] [--memory-max BYTES] [--idle-timeout DURATION]\n"
        "                [--fetch-readahead-bytes N] [--fetch-zero-copy on|off] [--repair] [--version]\n"
        "\n"
        "The synclog broker. Defaults: --data-dir ./data, --listen 127.0.0.1:7070, --metrics 127.0.0.1:7071.\n"
        "HOST is a name, an IPv4 address or an IPv6 address in brackets ([::1]:7070). Port 0 picks a free port;\n"
        "the line 'synclogd ready on HOST:PORT' on stdout names it once connections are accepted.\n"
        "SIGTERM or SIGINT: stop accepting, finish in-flight requests, fsync, close, exit 0.\n"
        "\n"
        "  --data-dir DIR           where topics, groups and offsets live; one broker per directory (DIR/.lock)\n"
        "  --listen HOST:PORT       the client listener\n"
        "  --kafka-listen HOST:PORT|off  also serve Kafka's wire protocol there (IPv4; default off), for Kafka\n"
        "                           clients, tools and connectors: the same topics, records and groups. The ready\n"
        "                           line then ends with 'kafka HOST:PORT'. Kafka acks=-1 (all) is our fsync level,\n"
        "                           acks=1 written, acks=0 none.\n"
        "  --metrics HOST:PORT|off  Prometheus text at /metrics, /healthz (200 while the process runs) and /readyz\n"
        "                           (200 once recovery finished and the listener accepts, 503 before); a\n"
        "                           read-only web console at /ui/ and its JSON at /api/v1/ (status, overview,\n"
        "                           topics, topics/T, topics/T/messages, groups, groups/G, sync). With --auth\n"
        "                           scram they ask for a synclog user (HTTP Basic, over TLS or from loopback)\n"
        "                           and show only what it may describe\n"
        "  --config FILE            a JSON object with any of the keys data_dir, listen, kafka_listen, metrics,\n"
        "                           log_format, log_level, segment_bytes, segment_ms, index_interval_bytes,\n"
        "                           frame_bytes_max, connections_max, retention_check_ms, backfill_rate_max,\n"
        "                           cleaner_bytes_per_s, min_cleanable_ratio, cleaner_map_bytes,\n"
        "                           cleaner_check_ms, stall_after, health_window, initial_rebalance_delay,\n"
        "                           groups_max, memory_max, idle_timeout, auth, super_users, tls_cert,\n"
        "                           tls_key, tls_ca, tls_client_auth, insecure, quota_produce_rate,\n"
        "                           quota_fetch_rate, principal_connections_max, principal_inflight_bytes_max,\n"
        "                           connection_rate_max, fetch_readahead_bytes, fetch_zero_copy; # starts a\n"
        "                           comment.\n"
        "                           Flags win over it.\n"
        "  --log-format text|json   the event log on stderr: one line per event (default text)\n"
        "  --log-level LEVEL        error, warn, info (default) or debug\n"
        "  --segment-bytes N        roll a partition's segment past N bytes (default 1073741824)\n"
        "  --segment-ms DURATION    roll it once its first record is this old (default 7d): milliseconds, or 30s,\n"
        "                           10m, 2h, 7d, ISO 8601. Retention drops whole rolled segments only. A topic may\n"
        "                           set its own.\n"
        "  --index-interval-bytes N one sparse index entry per N bytes (default 4096)\n"
        "  --frame-bytes-max N      the largest request accepted (default 16777216)\n"
        "  --connections-max N      connections at once (default 1024); at the limit a new one takes the place of\n"
        "                           the least recently active idle one\n"
        "  --memory-max BYTES       memory held for clients, all connections together: requests being served and\n"
        "                           answers not yet sent (suffix K, M or G; default a quarter of physical memory).\n"
        "                           When reached, the connections holding most wait to be read, and\n"
        "                           synclog_connections_waiting_memory says how many\n"
        "  --idle-timeout DURATION  close a connection with no request in flight idle this long (default 10m;\n"
        "                           0: never); one that has not sent Hello within 5 s is closed regardless\n"
        "  --retention-check-ms MS  how often retention, roll by age and producer-state snapshots run (30000)\n"
        "  --fetch-readahead-bytes N  a fetch behind the log end has the kernel read N bytes past what it returns\n"
        "                           into the page cache, so a replay from disk does not wait at every fetch\n"
        "                           (default 4194304; 0 turns it off; at most 67108864)\n"
        "  --fetch-zero-copy on|off on (default): fetch answers to plaintext connections, native and Kafka\n"
        "                           listener alike, go from the segment files to the socket by the kernel\n"
        "                           (io_uring splice), never copied through the broker's memory; TLS\n"
        "                           connections always copy. off: every fetch answer is read into memory and\n"
        "                           written\n"
        "  --auth scram|none        scram: every connection authenticates with SCRAM-SHA-256 (users in\n"
        "                           DIR/security/users, `synclog user add`) and every request needs an ACL\n"
        "                           (`synclog acl add`); default none: anyone who connects may do anything\n"
        "  --super-users NAMES      comma-separated users that every ACL check lets through\n"
        "  --tls-cert FILE          TLS (1.2 or later) on every listener with this PEM certificate chain;\n"
        "  --tls-key FILE           and its private key; SIGHUP reloads both\n"
        "  --tls-ca FILE            PEM CA certificates that client certificates are checked against\n"
        "  --tls-client-auth MODE   required: a client without a certificate the CA signed is refused (the\n"
        "                           certificate's CN is its principal); optional: checked when presented;\n"
        "                           none (default)\n"
        "  --insecure               allow a listener beyond loopback without TLS and authentication (warned\n"
        "                           at every start); without it synclogd refuses to start that way\n"
        "  --quota-produce-rate BYTES  produce bytes per second per principal; over it answers carry a\n"
        "                           throttle time and the connection waits that long (default: no quota)\n"
        "  --quota-fetch-rate BYTES the same for fetched bytes\n"
        "  --principal-connections-max N  connections one principal may hold at once (default: no limit)\n"
        "  --principal-inflight-bytes-max N  request bytes one authenticated principal's connections may hold\n"
        "                           unanswered; past it they stop being read (default 268435456, 0: no limit)\n"
        "  --connection-rate-max N  connection attempts per second from one address; more are closed at once\n"
        "                           (default 200, 0: no limit; loopback addresses are not limited)\n"
        "  --cleaner-bytes-per-s B  the cleaner of compacted topics reads plus writes at most B bytes a second\n"
        "                           (default 52428800, 50 MiB/s; 0: unthrottled)\n"
        "  --min-cleanable-ratio R  clean a partition once its dirty bytes (sealed, not cleaned yet) are at least R\n"
        "                           of its sealed bytes (default 0.5); the dirtiest partition goes first\n"
        "  --cleaner-map-bytes B    memory of the cleaner's key map (default 134217728: ~2.8 million keys a clean)\n"
        "  --cleaner-check-ms MS    how often the cleaner looks for work (default 15000)\n"
        "  --backfill-rate-max RECORDS_PER_S\n"
        "                           most origin=backfill records per second each topic takes in (default 0:\n"
        "                           unlimited); above it the broker holds its answers back, as Kafka's quotas do,\n"
        "                           so backfills cannot starve live traffic. Counted per request a producer\n"
        "                           declares backfill (`synclog backfill`, `synclog produce --origin backfill`)\n"
        "  --stall-after DURATION   a group partition whose records wait while its live member's commits stand\n"
        "                           still this long is `stalled` (`stopped` without a live member); default 60s.\n"
        "                           Per group: `synclog group alter G --stall-after D`\n"
        "  --health-window N        samples (one per health tick: 1 s, or stall-after/4 when shorter) over which a\n"
        "                           growing lag makes a group `lagging`; default 10, 2 to 60\n"
        "  --initial-rebalance-delay DURATION  a group whose first members join together waits this long, so\n"
        "                           they share its first generation; default 3s, 0 to answer at once\n"
        "  --groups-max N           groups at most: a new one past it is refused (GROUP_LIMIT); default 100000\n"
        "  --repair                 open every partition in repair mode: a damaged batch is cut out (its bytes\n"
        "                           kept as <segment>.log.corrupt-<byte>), every valid batch after it keeps its\n"
        "                           offset; print one line per partition naming the offsets lost, then exit.\n"
        "                           Fetching lost offsets answers RECORDS_LOST (consume --skip-lost goes on)\n"
        "  --version                print the version and exit\n"
        "  --help                   this text\n";

static int bad_usage(const char *fmt, const char *arg)
{
	fprintf(stderr, "synclogd: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\ntry 'synclogd --help'\n");
	return 2;
}

/* "HOST:PORT" (HOST a name, IPv4, or [IPv6]) -> host, port. */
static int parse_host_port(const char *s, char *host, size_t host_cap, int *port)
{
	if (sl_addr_split(s, host, host_cap, port, NULL, 0) != 0 || *port < 0)
		return -EINVAL;
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

/* Digits alone are milliseconds, as a flag named *-ms says; anything else a duration such as 1d or PT1H. */
static int parse_ms(const char *s, int64_t *out)
{
	uint64_t v;
	if (s[0] != '\0' && strspn(s, "0123456789") == strlen(s)) {
		if (parse_u64(s, 0, INT64_MAX, &v) < 0)
			return -EINVAL;
		*out = (int64_t)v;
		return 0;
	}
	return sl_duration_parse(s, out);
}

/* "N", "NK", "NM" or "NG" (binary multiples) -> bytes, within [min, max]. */
static int parse_bytes(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	static const char units[] = "KMG";
	char num[32];
	size_t n = strlen(s);
	if (n == 0 || n >= sizeof(num))
		return -EINVAL;
	memcpy(num, s, n + 1);
	char unit = (char)toupper((unsigned char)num[n - 1]);
	const char *u = unit != '\0' ? strchr(units, unit) : NULL;
	int shift = u != NULL ? 10 * (int)(u - units + 1) : 0;
	if (shift)
		num[n - 1] = '\0';
	uint64_t v;
	if (parse_u64(num, 0, UINT64_MAX >> 30, &v) < 0 || (v << shift) < min || (v << shift) > max)
		return -EINVAL;
	*out = v << shift;
	return 0;
}

/* Every setting as a string, from a flag or the config file, so both go through the same checks. */
struct settings {
	const char *data_dir, *listen, *kafka_listen, *metrics, *segment_bytes, *segment_ms, *index_interval,
	        *frame_max, *conn_max;
	const char *log_format, *log_level, *retention_check, *backfill_rate, *memory_max, *idle_timeout;
	const char *readahead, *zero_copy;
	const char *auth, *super_users, *tls_cert, *tls_key, *tls_ca, *tls_client_auth, *insecure;
	const char *quota_produce, *quota_fetch, *principal_conn_max, *principal_inflight, *conn_rate;
	const char *cleaner_rate, *cleaner_ratio, *cleaner_map, *cleaner_check; /* the cleaner (compaction.h) */
	const char *stall_after, *health_window, *rebalance_delay, *groups_max;
};

static int cleaner_settings_apply(struct sl_compaction_config *cfg, const struct settings *s)
{
	uint64_t v;
	if (s->cleaner_rate) {
		if (parse_u64(s->cleaner_rate, 0, 1ull << 40, &v) < 0)
			return bad_usage("invalid --cleaner-bytes-per-s '%s': bytes a second, 0 for no limit",
			                 s->cleaner_rate);
		cfg->bytes_per_s_max = v;
	}
	if (s->cleaner_ratio) {
		char *end;
		double r = strtod(s->cleaner_ratio, &end);
		if (end == s->cleaner_ratio || *end != '\0' || !(r >= 0.0 && r <= 1.0))
			return bad_usage("invalid --min-cleanable-ratio '%s': a number from 0 to 1", s->cleaner_ratio);
		cfg->min_cleanable_ratio = r;
	}
	if (s->cleaner_map) {
		if (parse_u64(s->cleaner_map, 1u << 20, 1ull << 40, &v) < 0)
			return bad_usage("invalid --cleaner-map-bytes '%s': at least 1048576", s->cleaner_map);
		cfg->map_bytes_max = v;
	}
	if (s->cleaner_check) {
		if (parse_u64(s->cleaner_check, 10, 86400000, &v) < 0)
			return bad_usage("invalid --cleaner-check-ms '%s': 10 to 86400000", s->cleaner_check);
		cfg->check_ms = (uint32_t)v;
	}
	return 0;
}

/* What the event log is set to; applied once both sources are read. */
struct log_settings {
	enum sl_slog_format format;
	enum sl_slog_level level;
};

/* A file path flag: short enough to keep; "" means none (the config file's way of saying so). */
static int path_apply(char *dst, size_t cap, const char *flag, const char *v)
{
	if (v == NULL)
		return 0;
	if (strlen(v) >= cap)
		return bad_usage(flag, v);
	snprintf(dst, cap, "%s", v);
	return 0;
}

static int security_apply(struct sl_security_config *sc, const struct settings *s)
{
	uint64_t v;
	char why[256];
	if (s->auth) {
		if (strcmp(s->auth, "scram") == 0)
			sc->auth_scram = 1;
		else if (strcmp(s->auth, "none") == 0)
			sc->auth_scram = 0;
		else
			return bad_usage("invalid --auth '%s': scram or none", s->auth);
	}
	if (s->super_users) {
		if (sl_security_super_users_check(s->super_users, why, sizeof(why)) < 0) {
			fprintf(stderr, "synclogd: invalid --super-users '%s': %s\ntry 'synclogd --help'\n",
			        s->super_users, why);
			return 2;
		}
		snprintf(sc->super_users, sizeof(sc->super_users), "%s", s->super_users);
	}
	if (path_apply(sc->tls_cert, sizeof(sc->tls_cert), "invalid --tls-cert '%s': a file path", s->tls_cert) ||
	    path_apply(sc->tls_key, sizeof(sc->tls_key), "invalid --tls-key '%s': a file path", s->tls_key) ||
	    path_apply(sc->tls_ca, sizeof(sc->tls_ca), "invalid --tls-ca '%s': a file path", s->tls_ca))
		return 2;
	if (s->tls_client_auth && sl_tls_client_auth_parse(s->tls_client_auth, &sc->tls_client_auth) < 0)
		return bad_usage("invalid --tls-client-auth '%s': required, optional or none", s->tls_client_auth);
	if (s->insecure) {
		if (strcmp(s->insecure, "1") == 0)
			sc->insecure = 1;
		else if (strcmp(s->insecure, "0") == 0)
			sc->insecure = 0;
		else
			return bad_usage("invalid insecure '%s': true or false", s->insecure);
	}
	if (s->quota_produce) {
		if (parse_u64(s->quota_produce, 0, UINT64_MAX / 2, &v) < 0 || (v > 0 && v < 1024))
			return bad_usage("invalid --quota-produce-rate '%s': bytes per second, at least 1024 (0: none)",
			                 s->quota_produce);
		sc->produce_bytes_per_s = v;
	}
	if (s->quota_fetch) {
		if (parse_u64(s->quota_fetch, 0, UINT64_MAX / 2, &v) < 0 || (v > 0 && v < 1024))
			return bad_usage("invalid --quota-fetch-rate '%s': bytes per second, at least 1024 (0: none)",
			                 s->quota_fetch);
		sc->fetch_bytes_per_s = v;
	}
	if (s->principal_conn_max) {
		if (parse_u64(s->principal_conn_max, 0, 100000, &v) < 0)
			return bad_usage("invalid --principal-connections-max '%s': 0 (no limit) to 100000",
			                 s->principal_conn_max);
		sc->principal_connections_max = (uint32_t)v;
	}
	if (s->principal_inflight) {
		if (parse_u64(s->principal_inflight, 0, UINT64_MAX / 2, &v) < 0 || (v > 0 && v < (1u << 20)))
			return bad_usage("invalid --principal-inflight-bytes-max '%s': at least 1048576 (0: no limit)",
			                 s->principal_inflight);
		sc->principal_inflight_bytes_max = v;
	}
	if (s->conn_rate) {
		if (parse_u64(s->conn_rate, 0, 1000000, &v) < 0)
			return bad_usage("invalid --connection-rate-max '%s': 0 (no limit) to 1000000", s->conn_rate);
		sc->connection_rate_per_s = (uint32_t)v;
	}
	return 0;
}

/* What only the whole configuration can say is wrong (both sources read). */
static int security_validate(const struct sl_security_config *sc)
{
	if ((sc->tls_cert[0] != '\0') != (sc->tls_key[0] != '\0'))
		return bad_usage("%s", "--tls-cert and --tls-key go together: a certificate needs its private key");
	if (sc->tls_ca[0] != '\0' && sc->tls_cert[0] == '\0')
		return bad_usage("%s",
		                 "--tls-ca needs --tls-cert and --tls-key: client certificates are checked over TLS");
	if (sc->tls_client_auth != SL_TLS_CLIENT_AUTH_NONE && sc->tls_ca[0] == '\0')
		return bad_usage("%s", "--tls-client-auth needs --tls-ca: the CA that signs the client certificates");
	if (sc->super_users[0] != '\0' && !sc->auth_scram && sc->tls_client_auth != SL_TLS_CLIENT_AUTH_REQUIRED)
		return bad_usage("%s",
		                 "--super-users needs authentication: --auth scram or --tls-client-auth required");
	return 0;
}

static int settings_apply(struct sl_server_config *cfg, struct log_settings *log, const struct settings *s)
{
	uint64_t v;
	int64_t ms;
	if (s->data_dir) {
		if (strlen(s->data_dir) >= sizeof(cfg->data_dir) || s->data_dir[0] == '\0')
			return bad_usage("invalid --data-dir '%s': 1 to 1023 characters", s->data_dir);
		snprintf(cfg->data_dir, sizeof(cfg->data_dir), "%s", s->data_dir);
	}
	if (s->listen && parse_host_port(s->listen, cfg->listen_host, sizeof(cfg->listen_host), &cfg->listen_port) < 0)
		return bad_usage("invalid --listen '%s': expected HOST:PORT, [IPV6]:PORT", s->listen);
	if (s->kafka_listen) {
		if (strcmp(s->kafka_listen, "off") == 0)
			cfg->kafka_listen_port = -1;
		else if (parse_host_port(s->kafka_listen, cfg->kafka_listen_host, sizeof(cfg->kafka_listen_host),
		                         &cfg->kafka_listen_port) < 0)
			return bad_usage("invalid --kafka-listen '%s': expected HOST:PORT or off", s->kafka_listen);
	}
	if (s->metrics) {
		if (strcmp(s->metrics, "off") == 0)
			cfg->metrics_port = -1;
		else if (parse_host_port(s->metrics, cfg->metrics_host, sizeof(cfg->metrics_host), &cfg->metrics_port) <
		         0)
			return bad_usage("invalid --metrics '%s': expected HOST:PORT, [IPV6]:PORT or off", s->metrics);
	}
	if (s->log_format && sl_slog_format_parse(s->log_format, &log->format) < 0)
		return bad_usage("invalid --log-format '%s': text or json", s->log_format);
	if (s->log_level && sl_slog_level_parse(s->log_level, &log->level) < 0)
		return bad_usage("invalid --log-level '%s': error, warn, info or debug", s->log_level);
	if (s->segment_bytes) {
		if (parse_u64(s->segment_bytes, 65536, 0x7fffffffu, &v) < 0)
			return bad_usage("invalid --segment-bytes '%s': 65536 to 2147483647", s->segment_bytes);
		cfg->log.segment_bytes_max = v;
	}
	if (s->segment_ms) {
		if (parse_ms(s->segment_ms, &ms) < 0 || ms < SL_TOPIC_SEGMENT_MS_MIN)
			return bad_usage(
			        "invalid --segment-ms '%s': a duration of at least 1s (30s, 10m, 2h, 7d, PT1H)",
			        s->segment_ms);
		cfg->log.segment_age_ms_max = ms;
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
	int rc = security_apply(&cfg->security, s);
	if (rc)
		return rc;
	if (s->retention_check) {
		if (parse_u64(s->retention_check, 100, 86400000, &v) < 0)
			return bad_usage("invalid --retention-check-ms '%s': 100 to 86400000", s->retention_check);
		cfg->retention_check_ms = (uint32_t)v;
	}
	if (s->stall_after) {
		if (parse_ms(s->stall_after, &ms) < 0 || ms < SL_STALL_AFTER_MS_MIN)
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
		if (parse_ms(s->rebalance_delay, &ms) < 0 || ms > SL_INITIAL_REBALANCE_DELAY_MS_MAX)
			return bad_usage("invalid --initial-rebalance-delay '%s': a duration of 0 to 5m (3s, 0)",
			                 s->rebalance_delay);
		cfg->groups.initial_rebalance_delay_ms = ms;
	}
	if (s->groups_max) {
		if (parse_u64(s->groups_max, 1, SL_GROUPS_MAX_MAX, &v) < 0)
			return bad_usage("invalid --groups-max '%s': 1 to 10000000", s->groups_max);
		cfg->groups.groups_max = (uint32_t)v;
	}
	if (s->readahead) {
		if (parse_u64(s->readahead, 0, SL_FETCH_READAHEAD_BYTES_MAX, &v) < 0)
			return bad_usage("invalid --fetch-readahead-bytes '%s': 0 to 67108864", s->readahead);
		cfg->fetch_readahead_bytes = (uint32_t)v;
	}
	if (s->zero_copy) {
		if (strcmp(s->zero_copy, "on") == 0)
			cfg->fetch_zero_copy = 1;
		else if (strcmp(s->zero_copy, "off") == 0)
			cfg->fetch_zero_copy = 0;
		else
			return bad_usage("invalid --fetch-zero-copy '%s': on or off", s->zero_copy);
	}
	if (s->backfill_rate) {
		/* A billion records a second is far beyond one broker: a larger number is a typo. */
		if (parse_u64(s->backfill_rate, 0, 1000000000, &v) < 0)
			return bad_usage(
			        "invalid --backfill-rate-max '%s': 0 (unlimited) to 1000000000 records per second",
			        s->backfill_rate);
		cfg->backfill_rate_max = v;
	}
	if (s->memory_max) {
		if (parse_bytes(s->memory_max, 16u << 20, UINT64_MAX >> 1, &v) < 0)
			return bad_usage("invalid --memory-max '%s': bytes, at least 16M (512M, 2G)", s->memory_max);
		cfg->memory_max = v;
	}
	if (s->idle_timeout) {
		if (parse_ms(s->idle_timeout, &ms) < 0 || ms > UINT32_MAX)
			return bad_usage("invalid --idle-timeout '%s': a duration (30s, 10m, PT10M; 0: never)",
			                 s->idle_timeout);
		cfg->idle_timeout_ms = (uint32_t)ms;
	}
	return cleaner_settings_apply(&cfg->compaction, s);
}

/* Blank out comments: from a '#' outside a JSON string to the end of its line, so an example config can say
 * what each key does. Spaces keep every line and column where it was, for jansson's error positions. */
static void comments_blank(char *text, size_t len)
{
	int in_string = 0, escaped = 0, in_comment = 0;
	for (size_t i = 0; i < len; i++) {
		char c = text[i];
		if (in_comment) {
			if (c == '\n')
				in_comment = 0;
			else
				text[i] = ' ';
		} else if (in_string) {
			if (escaped)
				escaped = 0;
			else if (c == '\\')
				escaped = 1;
			else if (c == '"')
				in_string = 0;
		} else if (c == '"') {
			in_string = 1;
		} else if (c == '#') {
			in_comment = 1;
			text[i] = ' ';
		}
	}
}

/* A config file larger than this is not a config file. */
#define CONFIG_BYTES_MAX (1u << 20)

static json_t *config_read(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (f == NULL) {
		fprintf(stderr, "synclogd: cannot read config %s: %s\n", path, strerror(errno));
		return NULL;
	}
	char *text = malloc(CONFIG_BYTES_MAX + 1);
	size_t len = text ? fread(text, 1, CONFIG_BYTES_MAX + 1, f) : 0;
	int bad = text == NULL || ferror(f) || len > CONFIG_BYTES_MAX;
	fclose(f);
	if (bad) {
		fprintf(stderr, "synclogd: cannot read config %s: %s\n", path,
		        text == NULL             ? "out of memory"
		        : len > CONFIG_BYTES_MAX ? "larger than 1 MiB"
		                                 : "read error");
		free(text);
		return NULL;
	}
	comments_blank(text, len);
	json_error_t jerr;
	json_t *j = json_loadb(text, len, 0, &jerr);
	free(text);
	if (j == NULL || !json_is_object(j)) {
		fprintf(stderr, "synclogd: cannot read config %s: %s (line %d)\n", path,
		        j ? "not a JSON object" : jerr.text, j ? 1 : jerr.line);
		json_decref(j);
		return NULL;
	}
	return j;
}

/* The config file's values, as strings, so they go through the same checks as flags. */
static int load_config(const char *path, struct settings *s, json_t **keep)
{
	static const struct {
		const char *key;
		size_t offset;
		/* 1: an integer is accepted too, as its decimal text (2: a real number too; 3: a boolean instead) */
		int number;
	} keys[] = {
	        {"data_dir", offsetof(struct settings, data_dir), 0},
	        {"listen", offsetof(struct settings, listen), 0},
	        {"kafka_listen", offsetof(struct settings, kafka_listen), 0},
	        {"metrics", offsetof(struct settings, metrics), 0},
	        {"log_format", offsetof(struct settings, log_format), 0},
	        {"log_level", offsetof(struct settings, log_level), 0},
	        {"segment_bytes", offsetof(struct settings, segment_bytes), 1},
	        {"segment_ms", offsetof(struct settings, segment_ms), 1},
	        {"index_interval_bytes", offsetof(struct settings, index_interval), 1},
	        {"frame_bytes_max", offsetof(struct settings, frame_max), 1},
	        {"connections_max", offsetof(struct settings, conn_max), 1},
	        {"retention_check_ms", offsetof(struct settings, retention_check), 1},
	        {"fetch_readahead_bytes", offsetof(struct settings, readahead), 1},
	        {"fetch_zero_copy", offsetof(struct settings, zero_copy), 0},
	        {"auth", offsetof(struct settings, auth), 0},
	        {"super_users", offsetof(struct settings, super_users), 0},
	        {"tls_cert", offsetof(struct settings, tls_cert), 0},
	        {"tls_key", offsetof(struct settings, tls_key), 0},
	        {"tls_ca", offsetof(struct settings, tls_ca), 0},
	        {"tls_client_auth", offsetof(struct settings, tls_client_auth), 0},
	        {"insecure", offsetof(struct settings, insecure), 3},
	        {"quota_produce_rate", offsetof(struct settings, quota_produce), 1},
	        {"quota_fetch_rate", offsetof(struct settings, quota_fetch), 1},
	        {"principal_connections_max", offsetof(struct settings, principal_conn_max), 1},
	        {"principal_inflight_bytes_max", offsetof(struct settings, principal_inflight), 1},
	        {"connection_rate_max", offsetof(struct settings, conn_rate), 1},
	        {"cleaner_bytes_per_s", offsetof(struct settings, cleaner_rate), 1},
	        {"min_cleanable_ratio", offsetof(struct settings, cleaner_ratio), 2},
	        {"cleaner_map_bytes", offsetof(struct settings, cleaner_map), 1},
	        {"cleaner_check_ms", offsetof(struct settings, cleaner_check), 1},
	        {"backfill_rate_max", offsetof(struct settings, backfill_rate), 1},
	        {"stall_after", offsetof(struct settings, stall_after), 1},
	        {"health_window", offsetof(struct settings, health_window), 1},
	        {"initial_rebalance_delay", offsetof(struct settings, rebalance_delay), 1},
	        {"groups_max", offsetof(struct settings, groups_max), 1},
	        {"memory_max", offsetof(struct settings, memory_max), 1},
	        {"idle_timeout", offsetof(struct settings, idle_timeout), 1},
	};
	static char nums[sizeof(keys) / sizeof(keys[0])][32];
	json_t *j = config_read(path);
	if (j == NULL)
		return 1;
	const char *key;
	json_t *v;
	json_object_foreach(j, key, v)
	{
		size_t k = 0;
		while (k < sizeof(keys) / sizeof(keys[0]) && strcmp(keys[k].key, key) != 0)
			k++;
		if (k == sizeof(keys) / sizeof(keys[0])) {
			fprintf(stderr, "synclogd: config %s: unknown key '%s'\ntry 'synclogd --help'\n", path, key);
			json_decref(j);
			return 2;
		}
		const char **slot = (const char **)((char *)s + keys[k].offset);
		if (keys[k].number == 3) {
			if (!json_is_boolean(v)) {
				fprintf(stderr, "synclogd: config %s: key '%s' needs true or false\n", path, key);
				json_decref(j);
				return 2;
			}
			*slot = json_is_true(v) ? "1" : "0";
		} else if (keys[k].number && json_is_integer(v)) {
			snprintf(nums[k], sizeof(nums[k]), "%lld", (long long)json_integer_value(v));
			*slot = nums[k];
		} else if (keys[k].number == 2 && json_is_real(v)) {
			snprintf(nums[k], sizeof(nums[k]), "%.17g", json_real_value(v));
			*slot = nums[k];
		} else if (json_is_string(v)) {
			*slot = json_string_value(v);
		} else {
			fprintf(stderr, "synclogd: config %s: key '%s' needs a %s\n", path, key,
			        keys[k].number ? "number" : "string");
			json_decref(j);
			return 2;
		}
	}
	*keep = j;
	return 0;
}

/* Take DATA/.lock before anything reads or writes the data directory: a second broker (or `--repair`) on the
 * same directory would append to the same segment files and silently replace acknowledged records. The lock is
 * held until the process exits. Returns 0, or 1 with the reason logged. */
static int lock_data_dir(const char *dir)
{
	int fd;
	pid_t holder;
	int rc = sl_fs_lock_data_dir(dir, &fd, &holder);
	if (rc == -EWOULDBLOCK) {
		if (holder > 0)
			sl_slog_msg(SL_SLOG_ERROR, "start_failed", "another synclogd (pid %ld) is using %s",
			            (long)holder, dir);
		else
			sl_slog_msg(SL_SLOG_ERROR, "start_failed", "another synclogd is using %s", dir);
		return 1;
	}
	if (rc < 0) {
		sl_slog_msg(SL_SLOG_ERROR, "start_failed",
		            "cannot lock %s/%s: %s (check --data-dir and its permissions)", dir, SL_DATA_DIR_LOCK_FILE,
		            strerror(-rc));
		return 1;
	}
	return 0;
}

/* 1 when host resolves to a loopback address (127.0.0.0/8, ::1, or ::ffff:127.0.0.0/104), 0 when not, -1 when
 * it does not resolve (the listener then says why it cannot bind). */
static int is_loopback(const char *host, int port)
{
	struct sockaddr_storage ss;
	socklen_t len;
	char why[256];
	if (sl_addr_resolve(host, port, 1, &ss, &len, why, sizeof(why)) < 0)
		return -1;
	if (ss.ss_family == AF_INET)
		return (ntohl(((struct sockaddr_in *)&ss)->sin_addr.s_addr) >> 24) == 127;
	if (ss.ss_family == AF_INET6) {
		const struct in6_addr *a = &((struct sockaddr_in6 *)&ss)->sin6_addr;
		return IN6_IS_ADDR_LOOPBACK(a) || (IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127);
	}
	return 0;
}

/* Defaults that cannot surprise: a listener beyond loopback needs TLS and authentication (for the metrics
 * listener, which has no passwords, client certificates), or --insecure, which is then warned about at every
 * start. With no security at all and every listener on loopback, the start says so. Returns 0, or 1 after
 * logging why synclogd refuses to start. */
static int exposure_check(const struct sl_server_config *cfg)
{
	const struct sl_security_config *sc = &cfg->security;
	int tls = sc->tls_cert[0] != '\0';
	int client_certs = sc->tls_client_auth == SL_TLS_CLIENT_AUTH_REQUIRED;
	int auth = sc->auth_scram || client_certs;
	const struct {
		const char *flag;
		const char *host;
		int port;
		int on;
		int secure;
	} listeners[] = {
	        {"--listen", cfg->listen_host, cfg->listen_port, 1, tls && auth},
	        {"--kafka-listen", cfg->kafka_listen_host, cfg->kafka_listen_port, cfg->kafka_listen_port >= 0,
	         tls && auth},
	        {"--metrics", cfg->metrics_host, cfg->metrics_port, cfg->metrics_port >= 0, tls && client_certs},
	};
	int exposed = 0;
	for (size_t i = 0; i < sizeof(listeners) / sizeof(listeners[0]); i++) {
		char where[SL_ADDR_TEXT_BYTES];
		if (!listeners[i].on || is_loopback(listeners[i].host, listeners[i].port) != 0)
			continue;
		exposed = 1;
		if (listeners[i].secure)
			continue;
		sl_addr_join(listeners[i].host, listeners[i].port, where, sizeof(where));
		if (!sc->insecure) {
			sl_slog_msg(
			        SL_SLOG_ERROR, "start_failed",
			        "refusing to listen on %s (%s) beyond loopback without TLS and authentication: anyone "
			        "who reaches it could read and change every topic. Add --tls-cert, --tls-key and %s, "
			        "listen on 127.0.0.1, or pass --insecure to accept the risk",
			        where, listeners[i].flag,
			        i == 0 ? "--auth scram" : "--tls-ca with --tls-client-auth required");
			return 1;
		}
		sl_slog_msg(SL_SLOG_WARN, "insecure",
		            "listening on %s (%s) beyond loopback without TLS and authentication (--insecure): anyone "
		            "who reaches it can read and change every topic",
		            where, listeners[i].flag);
	}
	if (!exposed && !tls && !auth)
		sl_slog_msg(SL_SLOG_INFO, "loopback_only",
		            "no TLS and no authentication configured: listening on loopback only, so only this "
		            "machine's processes can connect (see --auth, --tls-cert and --insecure)");
	return 0;
}

static int repair(const struct sl_server_config *cfg)
{
	struct sl_ring ring;
	int rc = sl_ring_init(&ring, 0);
	if (rc < 0) {
		sl_slog_msg(SL_SLOG_ERROR, "repair_failed", "cannot create an io_uring: %s", strerror(-rc));
		return 1;
	}
	struct sl_log_config lc = cfg->log;
	lc.repair = 1;
	/* Within the descriptor limit, as the broker: partitions' files are opened on use and closed after. */
	struct sl_limits limits;
	struct sl_files files;
	char warning[256];
	sl_limits_init(&limits, 0, 0);
	if (sl_limits_plan_descriptors(&limits, warning, sizeof(warning)) < 0) {
		sl_slog_msg(SL_SLOG_ERROR, "repair_failed", "%s", warning);
		sl_ring_close(&ring);
		return 1;
	}
	sl_files_init(&files, limits.files_fds_max);
	lc.files = &files;
	struct sl_topics topics;
	char err[1024] = "";
	rc = sl_topics_open(&topics, cfg->data_dir, &ring, &lc, err, sizeof(err));
	if (rc < 0) {
		sl_slog_msg(SL_SLOG_ERROR, "repair_failed", "%s", err);
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
			printf("%s/%u: ok, offsets %lld..%lld, %llu bytes cut", t->cfg.name, i,
			       (long long)st.start_offset, (long long)st.next_offset,
			       (unsigned long long)st.truncated_bytes);
			/* Exactly which offsets this repair cut out: consumers see RECORDS_LOST for them. */
			const struct sl_log_lost *lost;
			uint32_t n = sl_log_lost_ranges(p->log, &lost);
			for (uint32_t k = 0; k < n; k++)
				if (lost[k].found_now)
					printf(", offsets %lld..%lld lost", (long long)lost[k].first,
					       (long long)lost[k].next - 1);
			printf("\n");
		}
	}
	rc = sl_topics_close(&topics);
	sl_ring_close(&ring);
	if (rc < 0) {
		sl_slog_msg(SL_SLOG_ERROR, "repair_failed", "closing failed: %s", strerror(-rc));
		return 1;
	}
	return failed;
}

/* The configuration in effect, once, so a log read later says what the broker was running with. */
static void config_log(const struct sl_server_config *cfg, const char *config_path, const struct log_settings *log)
{
	static const char *const formats[] = {"text", "json"};
	static const char *const levels[] = {"error", "warn", "info", "debug"};
	char listen[SL_ADDR_TEXT_BYTES], metrics[SL_ADDR_TEXT_BYTES], age[SL_DURATION_TEXT_BYTES];
	sl_addr_join(cfg->listen_host, cfg->listen_port, listen, sizeof(listen));
	if (cfg->metrics_port < 0)
		snprintf(metrics, sizeof(metrics), "off");
	else
		sl_addr_join(cfg->metrics_host, cfg->metrics_port, metrics, sizeof(metrics));
	sl_duration_format(cfg->log.segment_age_ms_max, age, sizeof(age));
	struct sl_slog *e = sl_slog_begin(SL_SLOG_INFO, "start");
	sl_slog_str(e, "version", SL_VERSION);
	sl_slog_int(e, "pid", (int64_t)getpid());
	sl_slog_str(e, "config", config_path);
	sl_slog_str(e, "data_dir", cfg->data_dir);
	sl_slog_str(e, "listen", listen);
	sl_slog_str(e, "metrics", metrics);
	sl_slog_str(e, "log_format", formats[log->format]);
	sl_slog_str(e, "log_level", levels[log->level]);
	sl_slog_uint(e, "segment_bytes", cfg->log.segment_bytes_max);
	sl_slog_str(e, "segment_ms", age);
	sl_slog_uint(e, "index_interval_bytes", cfg->log.index_interval_bytes);
	sl_slog_uint(e, "frame_bytes_max", cfg->frame_bytes_max);
	sl_slog_uint(e, "connections_max", cfg->connections_max);
	sl_slog_uint(e, "retention_check_ms", cfg->retention_check_ms);
	sl_slog_uint(e, "fetch_readahead_bytes", cfg->fetch_readahead_bytes);
	sl_slog_str(e, "fetch_zero_copy", cfg->fetch_zero_copy ? "on" : "off");
	static const char *const client_auth[] = {"none", "optional", "required"};
	const struct sl_security_config *sc = &cfg->security;
	sl_slog_str(e, "auth", sc->auth_scram ? "scram" : "none");
	sl_slog_str(e, "super_users", sc->super_users);
	sl_slog_str(e, "tls_cert", sc->tls_cert[0] ? sc->tls_cert : "off");
	sl_slog_str(e, "tls_client_auth", client_auth[sc->tls_client_auth]);
	sl_slog_str(e, "insecure", sc->insecure ? "yes" : "no");
	sl_slog_uint(e, "quota_produce_rate", sc->produce_bytes_per_s);
	sl_slog_uint(e, "quota_fetch_rate", sc->fetch_bytes_per_s);
	sl_slog_uint(e, "principal_connections_max", sc->principal_connections_max);
	sl_slog_uint(e, "principal_inflight_bytes_max", sc->principal_inflight_bytes_max);
	sl_slog_uint(e, "connection_rate_max", sc->connection_rate_per_s);
	sl_slog_uint(e, "cleaner_bytes_per_s", cfg->compaction.bytes_per_s_max);
	sl_slog_fmt(e, "min_cleanable_ratio", "%.2f", cfg->compaction.min_cleanable_ratio);
	sl_slog_uint(e, "cleaner_map_bytes", cfg->compaction.map_bytes_max);
	sl_slog_uint(e, "cleaner_check_ms", cfg->compaction.check_ms);
	sl_slog_uint(e, "backfill_rate_max", cfg->backfill_rate_max);
	sl_slog_int(e, "stall_after_ms", cfg->groups.stall_after_ms);
	sl_slog_uint(e, "health_window", cfg->groups.window);
	sl_slog_int(e, "initial_rebalance_delay_ms", cfg->groups.initial_rebalance_delay_ms);
	sl_slog_uint(e, "groups_max", cfg->groups.groups_max);
	sl_slog_uint(e, "memory_max", cfg->memory_max);
	sl_slog_uint(e, "idle_timeout_ms", cfg->idle_timeout_ms);
	sl_slog_end(e);
}

/* Recovery finished and the listener accepts (called on the loop): the readiness line of ../shared/CLI.md, the
 * event, and the service manager's READY=1. */
/* The configuration the broker started with, for print_ready (the server's own copy is not visible here). */
static const struct sl_server_config *ready_cfg;

static void print_ready(struct sl_server *srv)
{
	const char *listen_addr, *metrics_addr;
	sl_server_addresses(srv, &listen_addr, &metrics_addr);
	struct sl_slog *e = sl_slog_begin(SL_SLOG_INFO, "ready");
	sl_slog_str(e, "listen", listen_addr);
	sl_slog_str(e, "metrics", metrics_addr[0] != '\0' ? metrics_addr : "off");
	sl_slog_end(e);
	int kafka_port = sl_server_kafka_port(srv);
	if (kafka_port >= 0) {
		char kafka_addr[SL_ADDR_TEXT_BYTES];
		sl_addr_join(ready_cfg->kafka_listen_host, kafka_port, kafka_addr, sizeof(kafka_addr));
		printf("synclogd ready on %s kafka %s\n", listen_addr, kafka_addr);
	} else {
		printf("synclogd ready on %s\n", listen_addr);
	}
	fflush(stdout);
	char state[SL_ADDR_TEXT_BYTES + 64];
	snprintf(state, sizeof(state), "READY=1\nSTATUS=serving on %s", listen_addr);
	int notify_rc = sl_notify(state);
	if (notify_rc < 0)
		sl_slog_msg(SL_SLOG_WARN, "notify_failed", "cannot tell the service manager we are ready: %s",
		            strerror(-notify_rc));
}

int main(int argc, char **argv)
{
	struct sl_server_config cfg;
	sl_server_config_default(&cfg);
	struct settings file = {0}, flags = {0};
	struct log_settings log = {SL_SLOG_TEXT, SL_SLOG_INFO};
	const char *config_path = NULL;
	int do_repair = 0;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char **slot = NULL;
		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			fputs(usage, stdout);
			return 0;
		} else if (strcmp(a, "--version") == 0) {
			printf("synclogd %s\n", SL_VERSION);
			return 0;
		} else if (strcmp(a, "--repair") == 0) {
			do_repair = 1;
			continue;
		} else if (strcmp(a, "--insecure") == 0) {
			flags.insecure = "1";
			continue;
		} else if (strcmp(a, "--auth") == 0) {
			slot = &flags.auth;
		} else if (strcmp(a, "--super-users") == 0) {
			slot = &flags.super_users;
		} else if (strcmp(a, "--tls-cert") == 0) {
			slot = &flags.tls_cert;
		} else if (strcmp(a, "--tls-key") == 0) {
			slot = &flags.tls_key;
		} else if (strcmp(a, "--tls-ca") == 0) {
			slot = &flags.tls_ca;
		} else if (strcmp(a, "--tls-client-auth") == 0) {
			slot = &flags.tls_client_auth;
		} else if (strcmp(a, "--quota-produce-rate") == 0) {
			slot = &flags.quota_produce;
		} else if (strcmp(a, "--quota-fetch-rate") == 0) {
			slot = &flags.quota_fetch;
		} else if (strcmp(a, "--principal-connections-max") == 0) {
			slot = &flags.principal_conn_max;
		} else if (strcmp(a, "--principal-inflight-bytes-max") == 0) {
			slot = &flags.principal_inflight;
		} else if (strcmp(a, "--connection-rate-max") == 0) {
			slot = &flags.conn_rate;
		} else if (strcmp(a, "--data-dir") == 0) {
			slot = &flags.data_dir;
		} else if (strcmp(a, "--listen") == 0) {
			slot = &flags.listen;
		} else if (strcmp(a, "--kafka-listen") == 0) {
			slot = &flags.kafka_listen;
		} else if (strcmp(a, "--metrics") == 0) {
			slot = &flags.metrics;
		} else if (strcmp(a, "--config") == 0) {
			slot = &config_path;
		} else if (strcmp(a, "--log-format") == 0) {
			slot = &flags.log_format;
		} else if (strcmp(a, "--log-level") == 0) {
			slot = &flags.log_level;
		} else if (strcmp(a, "--segment-bytes") == 0) {
			slot = &flags.segment_bytes;
		} else if (strcmp(a, "--segment-ms") == 0) {
			slot = &flags.segment_ms;
		} else if (strcmp(a, "--index-interval-bytes") == 0) {
			slot = &flags.index_interval;
		} else if (strcmp(a, "--frame-bytes-max") == 0) {
			slot = &flags.frame_max;
		} else if (strcmp(a, "--connections-max") == 0) {
			slot = &flags.conn_max;
		} else if (strcmp(a, "--retention-check-ms") == 0) {
			slot = &flags.retention_check;
		} else if (strcmp(a, "--fetch-readahead-bytes") == 0) {
			slot = &flags.readahead;
		} else if (strcmp(a, "--fetch-zero-copy") == 0) {
			slot = &flags.zero_copy;
		} else if (strcmp(a, "--cleaner-bytes-per-s") == 0) {
			slot = &flags.cleaner_rate;
		} else if (strcmp(a, "--min-cleanable-ratio") == 0) {
			slot = &flags.cleaner_ratio;
		} else if (strcmp(a, "--cleaner-map-bytes") == 0) {
			slot = &flags.cleaner_map;
		} else if (strcmp(a, "--cleaner-check-ms") == 0) {
			slot = &flags.cleaner_check;
		} else if (strcmp(a, "--backfill-rate-max") == 0) {
			slot = &flags.backfill_rate;
		} else if (strcmp(a, "--stall-after") == 0) {
			slot = &flags.stall_after;
		} else if (strcmp(a, "--health-window") == 0) {
			slot = &flags.health_window;
		} else if (strcmp(a, "--initial-rebalance-delay") == 0) {
			slot = &flags.rebalance_delay;
		} else if (strcmp(a, "--groups-max") == 0) {
			slot = &flags.groups_max;
		} else if (strcmp(a, "--memory-max") == 0) {
			slot = &flags.memory_max;
		} else if (strcmp(a, "--idle-timeout") == 0) {
			slot = &flags.idle_timeout;
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
	int rc = settings_apply(&cfg, &log, &file);
	if (rc == 0)
		rc = settings_apply(&cfg, &log, &flags);
	json_decref(keep);
	if (rc == 0)
		rc = security_validate(&cfg.security);
	if (rc)
		return rc;
	sl_slog_configure(STDERR_FILENO, log.level, log.format);

	/* A client that goes away mid-write must not kill the broker; a file-size limit must fail the write, not
	 * the process (the append is then refused and the log cut back). */
	signal(SIGPIPE, SIG_IGN);
	signal(SIGXFSZ, SIG_IGN);
	if (lock_data_dir(cfg.data_dir) != 0)
		return 1;
	if (do_repair)
		return repair(&cfg);
	if (exposure_check(&cfg) != 0)
		return 1;

	config_log(&cfg, config_path, &log);
	struct sl_server *srv;
	char err[1024] = "";
	ready_cfg = &cfg;
	cfg.on_ready = print_ready;
	rc = sl_server_start(&cfg, &srv, err, sizeof(err));
	if (rc < 0) {
		sl_slog_msg(SL_SLOG_ERROR, "start_failed", "%s", err);
		return 1;
	}
	rc = sl_server_run(srv) == 0 ? 0 : 1;
	struct sl_slog *e = sl_slog_begin(rc == 0 ? SL_SLOG_INFO : SL_SLOG_ERROR, "shutdown");
	sl_slog_int(e, "exit_code", rc);
	sl_slog_str(e, "clean", rc == 0 ? "yes" : "no: the next start recovers");
	sl_slog_end(e);
	return rc;
}
