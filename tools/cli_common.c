/* Helpers every `synclog` command uses: usage and error output with the contract's exit codes, flag and number
 * parsing, and the signal flag that lets a command stop cleanly. */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "consumer/client/synclog.h"
#include "tools/cli.h"

static volatile sig_atomic_t interrupted;

static void vreport(const struct cli_command *cmd, const char *fmt, va_list ap)
{
	fprintf(stderr, "synclog%s%s: ", cmd->name[0] != '\0' ? " " : "", cmd->name);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

int cli_usage_error(const struct cli_command *cmd, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vreport(cmd, fmt, ap);
	va_end(ap);
	/* The whole usage would push the one line that matters off the screen. */
	fprintf(stderr, "try 'synclog %s%s--help'\n", cmd->name, cmd->name[0] != '\0' ? " " : "");
	return CLI_EXIT_USAGE;
}

int cli_fail(const struct cli_command *cmd, const char *fmt, ...)
{
	va_list ap;

	fflush(stdout); /* what was printed so far comes before the error */
	va_start(ap, fmt);
	vreport(cmd, fmt, ap);
	va_end(ap);
	return CLI_EXIT_FAIL;
}

int cli_help(const struct cli_command *cmd)
{
	fputs(cmd->usage, stdout);
	return CLI_EXIT_OK;
}

bool cli_wants_help(int argc, char **argv)
{
	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0)
			return false;
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
			return true;
	}
	return false;
}

int cli_subcommand_run(const struct cli_command *parent, const struct cli_subcommand *subs, int sub_count,
                       const struct cli *cli, int argc, char **argv)
{
	char names[256] = "";
	size_t at = 0;

	for (int k = 0; argc > 0 && k < sub_count; k++)
		if (strcmp(argv[0], subs[k].name) == 0)
			return cli_wants_help(argc - 1, argv + 1) ? cli_help(subs[k].command)
			                                          : subs[k].run(cli, argc - 1, argv + 1);
	if (argc > 0 && (strcmp(argv[0], "--help") == 0 || strcmp(argv[0], "-h") == 0))
		return cli_help(parent);
	for (int k = 0; k < sub_count && at < sizeof(names); k++)
		at += (size_t)snprintf(names + at, sizeof(names) - at, "%s%s", k ? ", " : "", subs[k].name);
	if (argc == 0)
		return cli_usage_error(parent, "a subcommand is required: %s", names);
	return cli_usage_error(parent, "unknown subcommand '%s' (one of: %s)", argv[0], names);
}

int cli_flag(int argc, char **argv, int *i, const char *name, const char **value)
{
	const char *arg = argv[*i];
	size_t n = strlen(name);

	if (strncmp(arg, name, n) != 0)
		return 0;
	if (arg[n] == '=') {
		*value = arg + n + 1;
		return 1;
	}
	if (arg[n] != '\0')
		return 0;
	if (*i + 1 >= argc)
		return -1;
	*value = argv[++*i];
	return 1;
}

int cli_parse_u64(const char *s, uint64_t max, uint64_t *out)
{
	char *end;
	unsigned long long v;

	if (s == NULL || s[0] < '0' || s[0] > '9')
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0' || v > max)
		return -1;
	*out = v;
	return 0;
}

int cli_parse_i64(const char *s, int64_t min, int64_t max, int64_t *out)
{
	char *end;
	long long v;

	if (s == NULL || !((s[0] >= '0' && s[0] <= '9') || (s[0] == '-' && s[1] >= '0' && s[1] <= '9')))
		return -1;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

int cli_parse_double(const char *s, double min, double max, double *out)
{
	char *end;
	double v;

	if (s == NULL || !((s[0] >= '0' && s[0] <= '9') || s[0] == '.' || (s[0] == '-' && s[1] != '\0')))
		return -1;
	errno = 0;
	v = strtod(s, &end);
	if (errno != 0 || *end != '\0' || !(v >= min && v <= max))
		return -1;
	*out = v;
	return 0;
}

int cli_parse_duration_ms(const char *s, int64_t *out)
{
	if (s == NULL || s[0] == '\0')
		return -1;
	if (strspn(s, "0123456789") == strlen(s))
		return cli_parse_i64(s, 0, INT64_MAX, out);
	return sl_duration_parse(s, out) == 0 ? 0 : -1;
}

const char *cli_plural(uint64_t n)
{
	return n == 1 ? "" : "s";
}

void cli_bytes_format(uint64_t bytes, char *buf, size_t size)
{
	static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
	double v = (double)bytes;
	int u = 0;

	while (v >= 1024 && u < 6) {
		v /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(buf, size, "%llu B", (unsigned long long)bytes);
	else if (v < 10)
		snprintf(buf, size, "%.1f %s", v, units[u]);
	else
		snprintf(buf, size, "%.0f %s", v, units[u]);
}

bool cli_is_terminal(FILE *stream)
{
	return isatty(fileno(stream)) == 1;
}

static void on_signal(int sig)
{
	(void)sig;
	interrupted = 1;
}

void cli_signals_install(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = 0; /* no SA_RESTART: poll() returns EINTR and the command notices */
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
}

bool cli_interrupted(void)
{
	return interrupted != 0;
}

const volatile sig_atomic_t *cli_interrupted_flag(void)
{
	return &interrupted;
}

struct sl_conn *cli_connect(const struct cli *cli, const struct cli_command *cmd, const char *client_id)
{
	struct sl_conn *c;

	if (sl_conn_new(&c, cli->broker, client_id) != 0) {
		cli_fail(cmd, "out of memory");
		return NULL;
	}
	if (cli->timeout_ms > 0)
		sl_conn_set_timeout(c, cli->timeout_ms);
	if (sl_conn_set_kafka_config(c, &cli->kafka) != 0 || sl_conn_set_security(c, &cli->security) != 0 ||
	    sl_conn_connect(c) != 0) {
		cli_fail(cmd, "%s", sl_conn_error(c));
		sl_conn_free(c);
		return NULL;
	}
	return c;
}

/* Read one line from fd into out without its line end; echo is off when fd is a terminal. */
static int line_read(FILE *in, char *out, size_t cap)
{
	if (fgets(out, (int)cap, in) == NULL)
		return -1;
	out[strcspn(out, "\r\n")] = '\0';
	return 0;
}

static int prompt_read(const char *prompt, char *out, size_t cap)
{
	struct termios old, quiet;
	int rc;

	fputs(prompt, stderr);
	fflush(stderr);
	if (tcgetattr(STDIN_FILENO, &old) != 0)
		return -1;
	quiet = old;
	quiet.c_lflag &= ~(tcflag_t)ECHO;
	tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
	rc = line_read(stdin, out, cap);
	tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
	fputc('\n', stderr);
	return rc;
}

int cli_password_read(const struct cli_command *cmd, bool from_stdin, bool confirm, char *out, size_t cap)
{
	char again[1024];

	if (from_stdin) {
		if (line_read(stdin, out, cap) != 0 || out[0] == '\0') {
			cli_fail(cmd, "no password on stdin: --password-stdin reads its first line");
			return -1;
		}
		return 0;
	}
	if (!isatty(STDIN_FILENO)) {
		cli_fail(cmd, "stdin is not a terminal to ask for the password on: pipe it in with --password-stdin");
		return -1;
	}
	if (prompt_read("Password: ", out, cap) != 0 || out[0] == '\0') {
		cli_fail(cmd, "no password given");
		return -1;
	}
	if (confirm) {
		if (prompt_read("Password again: ", again, sizeof(again)) != 0 || strcmp(again, out) != 0) {
			memset(again, 0, sizeof(again));
			cli_fail(cmd, "the two passwords differ: nothing changed");
			return -1;
		}
		memset(again, 0, sizeof(again));
	}
	return 0;
}

void cli_time_format(int64_t ms, char *buf, size_t bytes)
{
	time_t secs = (time_t)(ms / 1000);
	struct tm tm;

	if (ms <= 0 || gmtime_r(&secs, &tm) == NULL) {
		snprintf(buf, bytes, "-");
		return;
	}
	snprintf(buf, bytes, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
	         tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));
}

int cli_stall_after_parse(const struct cli *cli, const struct cli_command *cmd, const char *value, int64_t *ms_out)
{
	if (!sl_broker_is_kafka(cli->broker))
		return cli_usage_error(
		        cmd, "--stall-after is for a kafka:// broker, whose states this client judges; synclogd "
		             "judges its own: `synclog group alter GROUP --stall-after D`");
	if (sl_duration_parse(value, ms_out) != 0 || *ms_out < 100)
		return cli_usage_error(cmd, "--stall-after needs a duration of at least 100ms (30s, 5m, PT1M)");
	return 0;
}

void cli_json_string(const char *s)
{
	sl_json_print_string(stdout, s, strlen(s));
}

int cli_print_done(const struct cli *cli, const char *verb, const char *kind, const char *name)
{
	if (cli->json) {
		printf("{\"%s\":", verb);
		cli_json_string(name);
		fputs("}\n", stdout);
	} else {
		printf("%s %s %s\n", verb, kind, name);
	}
	return CLI_EXIT_OK;
}

int cli_operand(const struct cli_command *cmd, const char *arg, const char **operand)
{
	if (arg[0] == '-' && arg[1] != '\0')
		return cli_usage_error(cmd, "unknown flag '%s'", arg);
	if (*operand != NULL)
		return cli_usage_error(cmd, "unexpected argument '%s'", arg);
	*operand = arg;
	return 0;
}

int cli_parse_acks(const char *s, enum sl_acks *out)
{
	if (strcmp(s, "fsync") == 0)
		*out = SL_ACKS_FSYNC;
	else if (strcmp(s, "written") == 0)
		*out = SL_ACKS_WRITTEN;
	else if (strcmp(s, "none") == 0)
		*out = SL_ACKS_NONE;
	else
		return -EINVAL;
	return 0;
}
