/* What the files of the `synclog` CLI share: the global options, exit codes, flag parsing and the one-line error
 * reporting that ../shared/CLI.md asks for. */
#ifndef SL_TOOLS_CLI_H
#define SL_TOOLS_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "consumer/client/synclog.h"

/* Exit codes of the operator contract. */
#define CLI_EXIT_OK    0
#define CLI_EXIT_FAIL  1 /* an operating error: one line on stderr says what failed and what to do */
#define CLI_EXIT_USAGE 2 /* bad usage: the message and a pointer to the command's --help on stderr */

#include "consumer/client/synclog.h"

/* Global options, valid for every command, before or after it. */
struct cli {
	const char *broker;  /* --broker, else $SYNCLOG_BROKER, else 127.0.0.1:7070 */
	bool json;           /* --json: machine output, one JSON object per line */
	uint32_t timeout_ms; /* --timeout: connecting and each answer of the broker (default 30 s) */
	/* --kafka-config-file, then --kafka-config KEY=VALUE over it: librdkafka settings for a kafka:// broker
	 * (every object on it gets them; refused with another broker). */
	struct sl_kafka_config kafka;
	/* TLS and credentials: the SYNCLOG_* environment (sl_security_options_from_env), then --user,
	 * --password-file, --tls, --tls-ca, --tls-cert, --tls-key over it. Every connection uses them. */
	struct sl_security_options security;
};

/* A command's usage text, printed by --help (stdout, exit 0); a usage error points to it (stderr, exit 2). */
struct cli_command {
	const char *name;  /* "topic create" */
	const char *usage; /* the whole text, ending with a newline */
};

/* Print "synclog NAME: message" and "try 'synclog NAME --help'" to stderr; returns CLI_EXIT_USAGE. */
int cli_usage_error(const struct cli_command *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Print "synclog NAME: message" to stderr, one line; returns CLI_EXIT_FAIL. */
int cli_fail(const struct cli_command *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Print the usage to stdout; returns CLI_EXIT_OK. */
int cli_help(const struct cli_command *cmd);
/* True when argv holds --help or -h (before a "--"). */
bool cli_wants_help(int argc, char **argv);

/* One subcommand of a command with subcommands (`topic create`): its name, its usage and what runs it. */
struct cli_subcommand {
	const char *name; /* "create" */
	const struct cli_command *command;
	int (*run)(const struct cli *cli, int argc, char **argv);
};
/* Run the subcommand argv[0] names with the arguments after it, or print its usage when they ask for help; with
 * no subcommand or an unknown one, a usage error of parent naming the subcommands there are. */
int cli_subcommand_run(const struct cli_command *parent, const struct cli_subcommand *subs, int sub_count,
                       const struct cli *cli, int argc, char **argv);

/* Flag parsing. cli_flag matches argv[*i] against name as "--name VALUE" or "--name=VALUE": returns 1 with *value
 * set (and *i advanced past the value), 0 when argv[*i] is another argument, -1 when the value is missing. */
int cli_flag(int argc, char **argv, int *i, const char *name, const char **value);
/* The one operand a command takes (its TOPIC, GROUP or NAME) into *operand: an argument that looks like a flag no
 * one took is an unknown flag, a second operand an unexpected argument. Returns 0, or CLI_EXIT_USAGE with the
 * usage error printed. */
int cli_operand(const struct cli_command *cmd, const char *arg, const char **operand);
/* --stall-after D of group list, group describe and status: the stall-after a Kafka cluster's health states are
 * judged with by this client (consumer/client/kafka_health.c). At least 100ms; refused (a usage error, returns
 * nonzero after printing it) for synclogd, which judges its own (`group alter`). */
int cli_stall_after_parse(const struct cli *cli, const struct cli_command *cmd, const char *value, int64_t *ms_out);
/* Strict decimal numbers: digits only (a leading '-' for signed), within [min, max]. Return 0 or -1. */
int cli_parse_u64(const char *s, uint64_t max, uint64_t *out);
int cli_parse_i64(const char *s, int64_t min, int64_t max, int64_t *out);
/* "2024-05-01T12:00:00.123Z" for a wall-clock time in ms, or "-" for 0 or less. */
void cli_time_format(int64_t ms, char *buf, size_t bytes);
/* A decimal number (digits, an optional fraction and exponent) within [min, max]. Returns 0 or -1. */
int cli_parse_double(const char *s, double min, double max, double *out);

/* A duration flag: 30s, 10m, 2h, 7d or ISO 8601 (sl_duration_parse), or with digits only, milliseconds (what the
 * flags named *-ms took before). Returns 0 or -1. */
int cli_parse_duration_ms(const char *s, int64_t *out);
/* --acks none|written|fsync: 0, or -EINVAL for another word. */
int cli_parse_acks(const char *s, enum sl_acks *out);

/* A connection to cli->broker (Hello done, cli->timeout_ms applied) named client_id, or NULL after cli_fail has
 * said why (the caller returns CLI_EXIT_FAIL). */
struct sl_conn;
struct sl_conn *cli_connect(const struct cli *cli, const struct cli_command *cmd, const char *client_id);

/* For text tables people read (--json prints raw numbers instead):
 * "s" when n is not 1, for "1 partition" and "3 partitions". */
const char *cli_plural(uint64_t n);
/* 512 B, 1.5 KiB, 20 MiB, 1.0 GiB. */
void cli_bytes_format(uint64_t bytes, char *buf, size_t size);
/* A string as a JSON string on stdout, quoted and escaped. */
void cli_json_string(const char *s);
/* What a command that changed one named thing prints once it went through: {"VERB":NAME} with --json, else
 * "VERB KIND NAME" ("deleted topic orders"). Returns CLI_EXIT_OK. */
int cli_print_done(const struct cli *cli, const char *verb, const char *kind, const char *name);
/* Room for any text cli_bytes_format writes. */
#define CLI_BYTES_TEXT 16
/* True when stream (stdout or stderr) is a terminal: progress lines go there, never into a pipe or a file. */
bool cli_is_terminal(FILE *stream);

int cli_topic(const struct cli *cli, int argc, char **argv);
int cli_produce(const struct cli *cli, int argc, char **argv);
int cli_consume(const struct cli *cli, int argc, char **argv);
int cli_group(const struct cli *cli, int argc, char **argv);     /* tools/cli_group.c */
int cli_offsets(const struct cli *cli, int argc, char **argv);   /* tools/cli_offsets.c */
int cli_apply(const struct cli *cli, int argc, char **argv);     /* tools/cli_apply.c */
int cli_backfill(const struct cli *cli, int argc, char **argv);  /* tools/cli_backfill.c */
int cli_reconcile(const struct cli *cli, int argc, char **argv); /* tools/cli_reconcile.c */
int cli_contract(const struct cli *cli, int argc, char **argv);  /* tools/cli_contract.c */
int cli_conflicts(const struct cli *cli, int argc, char **argv); /* tools/cli_conflicts.c */
int cli_copy(const struct cli *cli, int argc, char **argv);      /* tools/cli_copy.c */
int cli_user(const struct cli *cli, int argc, char **argv);      /* tools/cli_user.c */
int cli_acl(const struct cli *cli, int argc, char **argv);       /* tools/cli_acl.c */

/* A password typed at the terminal without echo (prompt on stderr), or the first line of stdin: its newline
 * removed, at most cap - 1 bytes. Returns 0, or -1 after saying why on stderr (the caller exits 1). */
int cli_password_read(const struct cli_command *cmd, bool from_stdin, bool confirm, char *out, size_t cap);
int cli_dlq(const struct cli *cli, int argc, char **argv);    /* tools/cli_dlq.c */
int cli_status(const struct cli *cli, int argc, char **argv); /* tools/cli_status.c */

/* Tell the broker how a backfill or reconcile run of cmd ended (synclog status and the metrics show the last one
 * per kind and topic; a successful backfill clears the `lost` state of the groups reading the topic). Waits at most
 * 5 s; a failure is one warning line on stderr and does not change the command's result. Returns 0 or the
 * negative errno. (tools/cli_status.c) */
struct sl_run_report;
int cli_run_report(const struct cli *cli, const struct cli_command *cmd, const struct sl_run_report *run);

/* Install handlers for SIGINT and SIGTERM that set the flag cli_interrupted reads, without SA_RESTART so that a
 * blocking wait returns EINTR and the command can finish cleanly. */
void cli_signals_install(void);
bool cli_interrupted(void);
/* The flag itself, for a library that checks it between steps (the applier's options.stop). */
#include <signal.h>
const volatile sig_atomic_t *cli_interrupted_flag(void);

#endif
